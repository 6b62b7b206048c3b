package server

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	certutil "k8s.io/client-go/util/cert"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critesting "k8s.io/cri-api/pkg/apis/testing"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"

	"github.com/nodeagent/nodeagent/cri"
)

// fakeRuntime gives the fake runtime stream URLs.
type fakeRuntime struct {
	*critesting.FakeRuntimeService
	streamBase string
}

func (f *fakeRuntime) Exec(ctx context.Context, r *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if _, err := f.FakeRuntimeService.Exec(ctx, r); err != nil {
		return nil, err
	}
	return &runtimeapi.ExecResponse{Url: f.streamBase + "/exec/token"}, nil
}

func (f *fakeRuntime) PortForward(ctx context.Context, r *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	if _, err := f.FakeRuntimeService.PortForward(ctx, r); err != nil {
		return nil, err
	}
	return &runtimeapi.PortForwardResponse{Url: f.streamBase + "/portforward/token"}, nil
}

const testUID = types.UID("uid-1")

type fixture struct {
	srv     *Server
	rt      *fakeRuntime
	logsDir string
	// pod is what Deps.Pods serves; a test may change its status.
	pod *v1.Pod
}

// newFixture serves pod ns1/pod1 with container c1: one exited instance
// (restart 0) and one running (restart 1), each with a CRI log file, as
// its status says (fixtureStatus).
func newFixture(t *testing.T, redirect bool) *fixture {
	t.Helper()
	return newFixtureWith(t, func(c *Config) { c.RedirectStreaming = redirect })
}

// newFixtureWith is newFixture with changes to the server's Config.
func newFixtureWith(t *testing.T, mutate func(*Config)) *fixture {
	t.Helper()
	logsDir := t.TempDir()
	podDir := cri.PodLogDir(logsDir, "ns1", "pod1", testUID)
	if err := os.MkdirAll(filepath.Join(podDir, "c1"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) string {
		p := filepath.Join(podDir, "c1", name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old := write("0.log", "2024-01-01T00:00:00.000000000Z stdout F old-1\n")
	cur := write("1.log", "2024-01-01T00:00:01.000000000Z stdout F new-1\n2024-01-01T00:00:02.000000000Z stderr F new-2\n")
	rt := &fakeRuntime{FakeRuntimeService: critesting.NewFakeRuntimeService(), streamBase: "http://127.0.0.1:1"}
	ctr := func(id string, restart int, state runtimeapi.ContainerState, logPath string) *critesting.FakeContainer {
		return &critesting.FakeContainer{ContainerStatus: runtimeapi.ContainerStatus{
			Id: id, Metadata: &runtimeapi.ContainerMetadata{Name: "c1", Attempt: uint32(restart)},
			State: state, CreatedAt: int64(restart), LogPath: logPath,
			Labels:      cri.ContainerLabels("pod1", "ns1", testUID, "c1"),
			Annotations: map[string]string{cri.ContainerRestartCountAnnotation: string(rune('0' + restart))},
		}, SandboxID: "sb1"}
	}
	rt.SetFakeContainers([]*critesting.FakeContainer{
		ctr("old", 0, runtimeapi.ContainerState_CONTAINER_EXITED, old),
		ctr("cur", 1, runtimeapi.ContainerState_CONTAINER_RUNNING, cur),
	})
	rt.SetFakeSandboxes([]*critesting.FakePodSandbox{{PodSandboxStatus: runtimeapi.PodSandboxStatus{
		Id: "sb1", State: runtimeapi.PodSandboxState_SANDBOX_READY,
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "pod1", Namespace: "ns1", Uid: string(testUID)},
		Labels:   cri.PodLabels(nil, "pod1", "ns1", testUID),
	}}})
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "pod1", Namespace: "ns1", UID: testUID},
		Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "c1"}, {Name: "never"}}},
		Status:     fixtureStatus("cur", "old"),
	}
	cfg := Config{
		NodeName:       "node1",
		PodLogsDir:     logsDir,
		Authentication: kubeletconfigv1beta1.KubeletAuthentication{Anonymous: kubeletconfigv1beta1.KubeletAnonymousAuthentication{Enabled: ptr.To(true)}},
		Authorization:  kubeletconfigv1beta1.KubeletAuthorization{Mode: kubeletconfigv1beta1.KubeletAuthorizationModeAlwaysAllow},
		KubeletConfig:  &kubeletconfigv1beta1.KubeletConfiguration{MaxPods: 7},
		GetCertificate: selfSigned(t),
	}
	mutate(&cfg)
	srv, err := New(cfg, Deps{Runtime: rt, Pods: func() []*v1.Pod { return []*v1.Pod{pod} }})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: srv, rt: rt, logsDir: logsDir, pod: pod}
}

// fixtureStatus is the status of the fixtures' pod: c1 running as
// container cur after an instance old that ended, "never" waiting to be
// created.
func fixtureStatus(cur, old string) v1.PodStatus {
	return v1.PodStatus{ContainerStatuses: []v1.ContainerStatus{
		{
			Name: "c1", ContainerID: "containerd://" + cur, RestartCount: 1,
			State:                v1.ContainerState{Running: &v1.ContainerStateRunning{}},
			LastTerminationState: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ContainerID: "containerd://" + old}},
		},
		{Name: "never", State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ContainerCreating"}}},
	}}
}

// selfSigned serves a self-signed certificate made for the test.
func selfSigned(t *testing.T) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	t.Helper()
	crt, key, err := certutil.GenerateSelfSignedCertKey("node1", []net.IP{net.ParseIP("127.0.0.1")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	return func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &pair, nil }
}

func (f *fixture) do(method, target string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	w := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(w, req)
	return w
}

func TestRoutes(t *testing.T) {
	f := newFixture(t, false)
	tests := []struct {
		name, method, path string
		code               int
		body               string
	}{
		{"healthz", "GET", "/healthz", 200, "ok"},
		{"unknown route", "GET", "/nope", 404, ""},
		{"pods", "GET", "/pods", 200, `"name":"pod1"`},
		{"runningpods", "GET", "/runningpods/", 200, `"uid":"uid-1"`},
		{"configz", "GET", "/configz", 200, `"maxPods":7`},
		{"logs", "GET", "/containerLogs/ns1/pod1/c1", 200, "new-1\nnew-2\n"},
		{"logs tail", "GET", "/containerLogs/ns1/pod1/c1?tailLines=1", 200, "new-2\n"},
		{"logs old tail", "GET", "/containerLogs/ns1/pod1/c1?tail=1", 200, "new-2\n"},
		{"logs tail all", "GET", "/containerLogs/ns1/pod1/c1?tail=all", 200, "new-1\nnew-2\n"},
		{"logs limit", "GET", "/containerLogs/ns1/pod1/c1?limitBytes=3", 200, "new"},
		{"logs timestamps", "GET", "/containerLogs/ns1/pod1/c1?timestamps=true&tailLines=1", 200, "2024-01-01T00:00:02.000000000Z new-2\n"},
		{"logs previous", "GET", "/containerLogs/ns1/pod1/c1?previous=true", 200, "old-1\n"},
		{"logs since time", "GET", "/containerLogs/ns1/pod1/c1?sinceTime=2024-01-01T00:00:02Z", 200, "new-2\n"},
		{"logs unknown pod", "GET", "/containerLogs/ns1/nopod/c1", 404, ""},
		{"logs unknown container", "GET", "/containerLogs/ns1/pod1/zz", 404, ""},
		{"logs never ran", "GET", "/containerLogs/ns1/pod1/never", 400, ""},
		{"logs undecodable", "GET", "/containerLogs/ns1/pod1/c1?tailLines=x", 400, ""},
		{"logs undecodable time", "GET", "/containerLogs/ns1/pod1/c1?sinceTime=yesterday", 400, ""},
		{"logs negative tail", "GET", "/containerLogs/ns1/pod1/c1?tailLines=-1", 422, ""},
		{"logs zero limit", "GET", "/containerLogs/ns1/pod1/c1?limitBytes=0", 422, ""},
		{"logs both since", "GET", "/containerLogs/ns1/pod1/c1?sinceSeconds=1&sinceTime=2024-01-01T00:00:02Z", 422, ""},
		{"logs bad stream", "GET", "/containerLogs/ns1/pod1/c1?stream=x", 422, ""},
		{"logs stdout stream", "GET", "/containerLogs/ns1/pod1/c1?stream=Stdout", 400, ""},
		{"logs all stream", "GET", "/containerLogs/ns1/pod1/c1?stream=All", 200, "new-1"},
		{"exec no streams", "POST", "/exec/ns1/pod1/c1?command=ls", 400, ""},
		{"exec unknown pod", "POST", "/exec/ns1/nopod/c1?command=ls&output=1", 404, ""},
		{"exec wrong uid", "POST", "/exec/ns1/pod1/other/c1?command=ls&output=1", 404, ""},
		{"exec unknown container", "POST", "/exec/ns1/pod1/zz?command=ls&output=1", 404, ""},
		{"exec not running", "POST", "/exec/ns1/pod1/never?command=ls&output=1", 404, ""},
		// The kubelet answers a request that is not an upgrade with 500.
		{"exec not upgraded", "POST", "/exec/ns1/pod1/c1?command=ls&output=1", 500, "Upgrade request required"},
		{"attach method", "PUT", "/attach/ns1/pod1/c1?output=1", 405, ""},
		{"portForward not upgraded", "GET", "/portForward/ns1/pod1", 500, ""},
		{"run", "POST", "/run/ns1/pod1/c1?cmd=ls", 200, ""},
		{"run unknown pod", "POST", "/run/ns1/nopod/c1?cmd=ls", 404, ""},
		{"metrics pods", "GET", "/metrics", 200, "kubelet_running_pods 1\n"},
		{"metrics containers", "GET", "/metrics", 200, `kubelet_running_containers{container_state="running"} 1`},
		{"metrics exited", "GET", "/metrics", 200, `kubelet_running_containers{container_state="exited"} 1`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := f.do(tc.method, tc.path)
			if w.Code != tc.code {
				t.Fatalf("status %d, want %d; body %q", w.Code, tc.code, w.Body.String())
			}
			if tc.body != "" && !strings.Contains(w.Body.String(), tc.body) {
				t.Fatalf("body %q does not contain %q", w.Body.String(), tc.body)
			}
		})
	}
}

func TestRedirect(t *testing.T) {
	f := newFixture(t, true)
	for path, want := range map[string]string{
		"/exec/ns1/pod1/c1?command=ls&output=1":       "http://127.0.0.1:1/exec/token",
		"/exec/ns1/pod1/uid-1/c1?command=ls&output=1": "http://127.0.0.1:1/exec/token",
		"/portForward/ns1/pod1":                       "http://127.0.0.1:1/portforward/token",
	} {
		w := f.do("POST", path)
		if w.Code != http.StatusFound || w.Header().Get("Location") != want {
			t.Errorf("%s: status %d location %q, want 302 %q", path, w.Code, w.Header().Get("Location"), want)
		}
	}
}

func TestLogPathOutsidePodDir(t *testing.T) {
	f := newFixture(t, false)
	outside := filepath.Join(t.TempDir(), "outside.log")
	if err := os.WriteFile(outside, []byte("2024-01-01T00:00:00Z stdout F SECRETDATA\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(cri.PodLogDir(f.logsDir, "ns1", "pod1", testUID), "c1", "link.log")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{outside, link, cri.PodLogDir(f.logsDir, "ns1", "pod1", testUID) + "/../x/1.log", "relative.log", ""} {
		f.rt.Containers["cur"].LogPath = p
		w := f.do("GET", "/containerLogs/ns1/pod1/c1")
		if w.Code != http.StatusBadRequest || strings.Contains(w.Body.String(), "SECRETDATA") {
			t.Errorf("log path %q: status %d body %q", p, w.Code, w.Body.String())
		}
	}
}

func TestParseLogOptions(t *testing.T) {
	since := metav1.NewTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	tests := []struct {
		query string
		want  v1.PodLogOptions
		err   error
	}{
		{"", v1.PodLogOptions{}, nil},
		{"follow=true&previous=1&timestamps=yes", v1.PodLogOptions{Follow: true, Previous: true, Timestamps: true}, nil},
		{"follow=false&previous=0", v1.PodLogOptions{}, nil},
		{"tailLines=5&limitBytes=10&sinceSeconds=3", v1.PodLogOptions{TailLines: ptr.To[int64](5), LimitBytes: ptr.To[int64](10), SinceSeconds: ptr.To[int64](3)}, nil},
		{"sinceTime=2024-01-01T00:00:00Z", v1.PodLogOptions{SinceTime: &since}, nil},
		{"tailLines=", v1.PodLogOptions{}, nil},
		{"tailLines=1.5", v1.PodLogOptions{}, errBadRequest},
		{"sinceSeconds=0", v1.PodLogOptions{}, errInvalid},
		{"stream=Stderr&tailLines=1", v1.PodLogOptions{}, errInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			q, _ := parseQuery(tc.query)
			got, err := parseLogOptions(q)
			if tc.err != nil {
				if httpStatus(err) != httpStatus(tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !equalLogOptions(*got, tc.want) {
				t.Fatalf("got %+v, want %+v", *got, tc.want)
			}
		})
	}
}
