package server

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critesting "k8s.io/cri-api/pkg/apis/testing"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"

	"github.com/nodeagent/nodeagent/cri"
	"github.com/nodeagent/nodeagent/staticpods"
)

// The static pod of the tests, kube-system/etcd-node1, runs under
// staticUID; its mirror in the apiserver has mirrorUID. victimUID is
// another pod the runtime runs, with containers of the same names, which
// the mirror's annotation and status point at.
const (
	staticNS  = "kube-system"
	staticPod = "etcd-node1"
	staticUID = types.UID("static-uid")
	mirrorUID = types.UID("mirror-uid")
	victimUID = types.UID("victim-uid")
)

// recordingRuntime records which container or sandbox the server asked
// the runtime to stream from or run in, and gives stream URLs.
type recordingRuntime struct {
	*critesting.FakeRuntimeService
	mu    sync.Mutex
	asked []string
}

var _ internalapi.RuntimeService = (*recordingRuntime)(nil)

func (r *recordingRuntime) record(id string) {
	r.mu.Lock()
	r.asked = append(r.asked, id)
	r.mu.Unlock()
}

// last returns the id asked for last and forgets the record.
func (r *recordingRuntime) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.asked) == 0 {
		return ""
	}
	id := r.asked[len(r.asked)-1]
	r.asked = nil
	return id
}

func (r *recordingRuntime) Exec(_ context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	r.record(req.ContainerId)
	return &runtimeapi.ExecResponse{Url: "http://127.0.0.1:1/exec/token"}, nil
}

func (r *recordingRuntime) Attach(_ context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	r.record(req.ContainerId)
	return &runtimeapi.AttachResponse{Url: "http://127.0.0.1:1/attach/token"}, nil
}

func (r *recordingRuntime) PortForward(_ context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	r.record(req.PodSandboxId)
	return &runtimeapi.PortForwardResponse{Url: "http://127.0.0.1:1/portforward/token"}, nil
}

func (r *recordingRuntime) ExecSync(_ context.Context, id string, _ []string, _ time.Duration) ([]byte, []byte, error) {
	r.record(id)
	return []byte("ran"), nil, nil
}

// staticFixture serves a node that runs the static pod (containers s-old,
// exited, and s-cur, running, of c1 in sandbox s-sb) and the victim pod
// (v-cur of c1 in v-sb), each with a log file holding its id. objs are
// the apiserver's pods (Deps.Pods), static what Deps.StaticPod finds,
// agent the agent's own statuses (Deps.PodStatus).
type staticFixture struct {
	srv    *Server
	rt     *recordingRuntime
	objs   []*v1.Pod
	static *v1.Pod
	agent  map[types.UID]*v1.PodStatus
}

func newStaticFixture(t *testing.T) *staticFixture {
	t.Helper()
	logsDir := t.TempDir()
	rt := &recordingRuntime{FakeRuntimeService: critesting.NewFakeRuntimeService()}
	var ctrs []*critesting.FakeContainer
	var sbs []*critesting.FakePodSandbox
	for _, p := range []struct {
		uid      types.UID
		sandbox  string
		ids      []string
		restarts []int
	}{
		{staticUID, "s-sb", []string{"s-old", "s-cur"}, []int{0, 1}},
		{victimUID, "v-sb", []string{"v-cur"}, []int{0}},
	} {
		dir := filepath.Join(cri.PodLogDir(logsDir, staticNS, staticPod, p.uid), "c1")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, id := range p.ids {
			path := filepath.Join(dir, id+".log")
			if err := os.WriteFile(path, []byte("2024-01-01T00:00:00.000000000Z stdout F log of "+id+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			state := runtimeapi.ContainerState_CONTAINER_RUNNING
			if i < len(p.ids)-1 {
				state = runtimeapi.ContainerState_CONTAINER_EXITED
			}
			ctrs = append(ctrs, &critesting.FakeContainer{ContainerStatus: runtimeapi.ContainerStatus{
				Id: id, Metadata: &runtimeapi.ContainerMetadata{Name: "c1", Attempt: uint32(p.restarts[i])},
				State: state, CreatedAt: int64(p.restarts[i]), LogPath: path,
				Labels:      cri.ContainerLabels(staticPod, staticNS, p.uid, "c1"),
				Annotations: map[string]string{cri.ContainerRestartCountAnnotation: string(rune('0' + p.restarts[i]))},
			}, SandboxID: p.sandbox})
		}
		sbs = append(sbs, &critesting.FakePodSandbox{PodSandboxStatus: runtimeapi.PodSandboxStatus{
			Id: p.sandbox, State: runtimeapi.PodSandboxState_SANDBOX_READY,
			Metadata: &runtimeapi.PodSandboxMetadata{Name: staticPod, Namespace: staticNS, Uid: string(p.uid)},
			Labels:   cri.PodLabels(nil, staticPod, staticNS, p.uid),
		}})
	}
	rt.SetFakeContainers(ctrs)
	rt.SetFakeSandboxes(sbs)

	spec := v1.PodSpec{Containers: []v1.Container{{Name: "c1"}}}
	// The mirror as an admin may have edited it: its annotation and its
	// status name the victim pod.
	mirror := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: staticPod, Namespace: staticNS, UID: mirrorUID, Annotations: map[string]string{
			staticpods.ConfigMirrorAnnotation: string(victimUID),
			staticpods.ConfigSourceAnnotation: staticpods.FileSource,
		}},
		Spec: spec,
		Status: v1.PodStatus{ContainerStatuses: []v1.ContainerStatus{{
			Name: "c1", ContainerID: cid("v-cur"), State: running(),
		}}},
	}
	static := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: staticPod, Namespace: staticNS, UID: staticUID, Annotations: map[string]string{
			staticpods.ConfigSourceAnnotation: staticpods.FileSource,
		}},
		Spec: spec,
	}
	agentStatus := fixtureStatus("s-cur", "s-old")
	f := &staticFixture{
		rt: rt, objs: []*v1.Pod{mirror}, static: static,
		agent: map[types.UID]*v1.PodStatus{staticUID: &agentStatus},
	}
	cfg := Config{
		NodeName:          "node1",
		PodLogsDir:        logsDir,
		RedirectStreaming: true,
		Authentication:    kubeletconfigv1beta1.KubeletAuthentication{Anonymous: kubeletconfigv1beta1.KubeletAnonymousAuthentication{Enabled: ptr.To(true)}},
		Authorization:     kubeletconfigv1beta1.KubeletAuthorization{Mode: kubeletconfigv1beta1.KubeletAuthorizationModeAlwaysAllow},
		KubeletConfig:     &kubeletconfigv1beta1.KubeletConfiguration{},
		GetCertificate:    selfSigned(t),
	}
	srv, err := New(cfg, Deps{
		Runtime: rt,
		Pods:    func() []*v1.Pod { return f.objs },
		StaticPod: func(ns, name string) (*v1.Pod, bool) {
			if f.static != nil && f.static.Namespace == ns && f.static.Name == name {
				return f.static, true
			}
			return nil, false
		},
		PodStatus: func(uid types.UID) (*v1.PodStatus, bool) {
			st, ok := f.agent[uid]
			return st, ok
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	return f
}

func (f *staticFixture) do(method, target string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	w := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(w, req)
	return w
}

// TestStaticPodThroughMirror: every route that names a pod reaches the
// static pod the agent runs when the name is its mirror's, with or
// without a pod UID, the static pod's or the mirror's, as the kubelet's
// GetPodByName and TranslatePodUID; the mirror's annotation and status,
// which point at another pod, are not followed.
func TestStaticPodThroughMirror(t *testing.T) {
	f := newStaticFixture(t)
	base := "/" + staticNS + "/" + staticPod
	tests := []struct {
		name, method, path string
		code               int
		// asked is the container or sandbox the runtime is asked for.
		asked string
	}{
		{"exec", "POST", "/exec" + base + "/c1?command=ls&output=1", 302, "s-cur"},
		{"exec static uid", "POST", "/exec" + base + "/static-uid/c1?command=ls&output=1", 302, "s-cur"},
		{"exec mirror uid", "POST", "/exec" + base + "/mirror-uid/c1?command=ls&output=1", 302, "s-cur"},
		{"exec annotation's uid", "POST", "/exec" + base + "/victim-uid/c1?command=ls&output=1", 404, ""},
		{"exec other uid", "POST", "/exec" + base + "/other/c1?command=ls&output=1", 404, ""},
		{"exec unknown container", "POST", "/exec" + base + "/zz?command=ls&output=1", 404, ""},
		{"attach", "POST", "/attach" + base + "/c1?output=1", 302, "s-cur"},
		{"attach static uid", "GET", "/attach" + base + "/static-uid/c1?output=1", 302, "s-cur"},
		{"attach mirror uid", "GET", "/attach" + base + "/mirror-uid/c1?output=1", 302, "s-cur"},
		{"attach annotation's uid", "GET", "/attach" + base + "/victim-uid/c1?output=1", 404, ""},
		{"portForward", "POST", "/portForward" + base, 302, "s-sb"},
		{"portForward static uid", "GET", "/portForward" + base + "/static-uid", 302, "s-sb"},
		{"portForward mirror uid", "GET", "/portForward" + base + "/mirror-uid", 302, "s-sb"},
		{"portForward annotation's uid", "GET", "/portForward" + base + "/victim-uid", 404, ""},
		{"run", "POST", "/run" + base + "/c1?cmd=ls", 200, "s-cur"},
		{"run static uid", "POST", "/run" + base + "/static-uid/c1?cmd=ls", 200, "s-cur"},
		{"run mirror uid", "POST", "/run" + base + "/mirror-uid/c1?cmd=ls", 200, "s-cur"},
		{"run annotation's uid", "POST", "/run" + base + "/victim-uid/c1?cmd=ls", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := f.do(tc.method, tc.path)
			if w.Code != tc.code {
				t.Fatalf("status %d, want %d; body %q", w.Code, tc.code, w.Body.String())
			}
			if got := f.rt.last(); got != tc.asked {
				t.Fatalf("runtime asked for %q, want %q", got, tc.asked)
			}
		})
	}
}

// TestStaticPodLogsThroughMirror: kubectl logs of a mirror pod reads the
// static pod's log, by the agent's own status of the static pod (not the
// mirror's status), else by the static pod's as the agent has it; a
// status that points at another pod's container is refused.
func TestStaticPodLogsThroughMirror(t *testing.T) {
	f := newStaticFixture(t)
	path := "/containerLogs/" + staticNS + "/" + staticPod + "/c1"
	get := func(t *testing.T, target string, code int, body string) {
		t.Helper()
		w := f.do("GET", target)
		if w.Code != code || !strings.Contains(w.Body.String(), body) {
			t.Fatalf("%s: got %d %q, want %d with %q", target, w.Code, w.Body.String(), code, body)
		}
		if strings.Contains(w.Body.String(), "log of v-cur") {
			t.Fatalf("%s: served the victim's log: %q", target, w.Body.String())
		}
	}
	get(t, path, 200, "log of s-cur")
	get(t, path+"?previous=true", 200, "log of s-old")

	// Without the agent's status (just restarted): the static pod's own,
	// which the agent takes from its mirror when that is the mirror of
	// this static pod.
	delete(f.agent, staticUID)
	get(t, path, 400, `container "c1" in pod "etcd-node1" is not available`)
	f.static.Status = fixtureStatus("s-cur", "s-old")
	get(t, path, 200, "log of s-cur")
	f.static.Status = f.objs[0].Status // pointing at v-cur
	get(t, path, 400, `not container "c1" of pod "etcd-node1"`)
}

// TestStaticPodResolution: which pod a namespace/name resolves to when a
// static pod is involved.
func TestStaticPodResolution(t *testing.T) {
	base := "/" + staticNS + "/" + staticPod
	exec := func(uid string) string {
		if uid != "" {
			uid = "/" + uid
		}
		return "/exec" + base + uid + "/c1?command=ls&output=1"
	}
	tests := []struct {
		name   string
		mutate func(*staticFixture)
		path   string
		code   int
		asked  string
	}{
		// The mirror is not created yet (or the apiserver's copy lags):
		// the static pod is still served, as the kubelet's pod manager
		// holds static pods whether or not their mirror exists.
		{"no mirror", func(f *staticFixture) { f.objs = nil }, exec(""), 302, "s-cur"},
		{"no mirror static uid", func(f *staticFixture) { f.objs = nil }, exec("static-uid"), 302, "s-cur"},
		{"no mirror, old mirror uid", func(f *staticFixture) { f.objs = nil }, exec("mirror-uid"), 404, ""},
		// A mirror whose static pod the agent does not run (its manifest
		// is gone): the kubelet's "pod does not exist".
		{"orphaned mirror", func(f *staticFixture) { f.static = nil }, exec(""), 404, ""},
		{"orphaned mirror logs", func(f *staticFixture) { f.static = nil }, "/containerLogs" + base + "/c1", 404, ""},
		{"orphaned mirror mirror uid", func(f *staticFixture) { f.static = nil }, exec("mirror-uid"), 404, ""},
		// A pod of the apiserver that is not a mirror is itself, even
		// with a static pod of the same name.
		{"regular pod of the same name", func(f *staticFixture) {
			f.objs = []*v1.Pod{{
				ObjectMeta: metav1.ObjectMeta{Name: staticPod, Namespace: staticNS, UID: victimUID},
				Spec:       f.static.Spec,
			}}
		}, exec(""), 302, "v-cur"},
		{"regular pod of the same name, static uid", func(f *staticFixture) {
			f.objs = []*v1.Pod{{
				ObjectMeta: metav1.ObjectMeta{Name: staticPod, Namespace: staticNS, UID: victimUID},
				Spec:       f.static.Spec,
			}}
		}, exec("static-uid"), 404, ""},
		// The agent's static pod must carry the name asked for.
		{"static pod of another name", func(f *staticFixture) {
			f.srv.deps.StaticPod = func(string, string) (*v1.Pod, bool) {
				p := f.static.DeepCopy()
				p.Name = "other"
				return p, true
			}
		}, exec(""), 404, ""},
		// Without a static pod source a mirror is not found.
		{"no static pod source", func(f *staticFixture) { f.srv.deps.StaticPod = nil }, exec(""), 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newStaticFixture(t)
			tc.mutate(f)
			method := "POST"
			if strings.HasPrefix(tc.path, "/containerLogs/") {
				method = "GET"
			}
			w := f.do(method, tc.path)
			if w.Code != tc.code {
				t.Fatalf("status %d, want %d; body %q", w.Code, tc.code, w.Body.String())
			}
			if got := f.rt.last(); got != tc.asked {
				t.Fatalf("runtime asked for %q, want %q", got, tc.asked)
			}
		})
	}
}
