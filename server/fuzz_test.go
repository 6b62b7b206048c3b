package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critesting "k8s.io/cri-api/pkg/apis/testing"
	"k8s.io/klog/v2"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"

	"github.com/nodeagent/nodeagent/cri"
)

// FuzzContainerLogsPath fuzzes the request path and query of /containerLogs
// and the log path the runtime reports: the server must never panic and
// never return a byte of a file outside the pod's log directory.
func FuzzContainerLogsPath(f *testing.F) {
	f.Add("ns1/pod1/c1", "tailLines=1&timestamps=true", "c1/1.log")
	f.Add("ns1/pod1/../../etc/passwd", "previous=true", "../../outside.log")
	f.Add("ns1/pod1/c1", "sinceTime=2024-01-01T00:00:00Z&limitBytes=1", "/etc/passwd")
	f.Add("ns1/pod1/c1", "tail=all&sinceSeconds=-1", "c1/link.log")
	fx := newSharedFixture(f, false)
	outside := filepath.Join(fx.logsDir, "outside.log")
	if err := os.WriteFile(outside, []byte("2024-01-01T00:00:00Z stdout F SECRETDATA\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	podDir := cri.PodLogDir(fx.logsDir, "ns1", "pod1", testUID)
	if err := os.Symlink(outside, filepath.Join(podDir, "c1", "link.log")); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, path, query, logPath string) {
		if !strings.HasPrefix(logPath, "/") {
			logPath = filepath.Join(podDir, logPath)
		}
		fx.rt.Lock()
		fx.rt.Called = nil
		fx.rt.Containers["cur"].LogPath = logPath
		fx.rt.Containers["old"].LogPath = logPath
		fx.rt.Unlock()
		u := &url.URL{Path: "/containerLogs/" + path, RawQuery: query}
		req, err := http.NewRequestWithContext(fuzzRequestContext(t), "GET", u.String(), nil)
		if err != nil {
			return
		}
		w := httptest.NewRecorder()
		fx.srv.Handler().ServeHTTP(w, req)
		if strings.Contains(w.Body.String(), "SECRETDATA") {
			t.Fatalf("read outside the pod log dir: %s?%s with log path %q", path, query, logPath)
		}
	})
}

// FuzzExecQuery fuzzes the path and query of /exec and /portForward: never
// a panic, and a stream URL only for the known pod and container.
func FuzzExecQuery(f *testing.F) {
	f.Add("exec", "ns1/pod1/c1", "command=ls&output=1&tty=1&error=1")
	f.Add("exec", "ns1/pod1/uid-1/c1", "command=sh&input=1")
	f.Add("portForward", "ns1/pod1", "port=80")
	f.Add("attach", "ns1/x/%2e%2e/c1", "output=0")
	fx := newSharedFixture(f, true)
	f.Fuzz(func(t *testing.T, kind, path, query string) {
		fx.rt.Lock()
		fx.rt.Called = nil
		fx.rt.Unlock()
		u := &url.URL{Path: "/" + kind + "/" + path, RawQuery: query}
		req, err := http.NewRequestWithContext(fuzzRequestContext(t), "POST", u.String(), nil)
		if err != nil {
			return
		}
		w := httptest.NewRecorder()
		fx.srv.Handler().ServeHTTP(w, req)
		if w.Code == http.StatusFound {
			p := strings.Trim(req.URL.Path, "/")
			ok := p == "exec/ns1/pod1/c1" || p == "exec/ns1/pod1/uid-1/c1" || p == "attach/ns1/pod1/c1" ||
				p == "attach/ns1/pod1/uid-1/c1" || p == "portForward/ns1/pod1" || p == "portForward/ns1/pod1/uid-1"
			if !ok {
				t.Fatalf("redirected for %q", req.URL.Path)
			}
		}
	})
}

// newSharedFixture is newFixture for a whole fuzzing process (a fixture per
// input made a few inputs a second, most of it the test certificate's key):
// the same pod, containers and logs, without a serving certificate, which
// the handler does not use.
func newSharedFixture(f *testing.F, redirect bool) *fixture {
	logsDir := f.TempDir()
	podDir := cri.PodLogDir(logsDir, "ns1", "pod1", testUID)
	if err := os.MkdirAll(filepath.Join(podDir, "c1"), 0o755); err != nil {
		f.Fatal(err)
	}
	write := func(name, body string) string {
		p := filepath.Join(podDir, "c1", name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			f.Fatal(err)
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
			Annotations: map[string]string{cri.ContainerRestartCountAnnotation: strconv.Itoa(restart)},
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
	srv, err := New(Config{
		NodeName:          "node1",
		PodLogsDir:        logsDir,
		Authentication:    kubeletconfigv1beta1.KubeletAuthentication{Anonymous: kubeletconfigv1beta1.KubeletAnonymousAuthentication{Enabled: ptr.To(true)}},
		Authorization:     kubeletconfigv1beta1.KubeletAuthorization{Mode: kubeletconfigv1beta1.KubeletAuthorizationModeAlwaysAllow},
		KubeletConfig:     &kubeletconfigv1beta1.KubeletConfiguration{MaxPods: 7},
		RedirectStreaming: redirect,
	}, Deps{Runtime: rt, Pods: func() []*v1.Pod { return []*v1.Pod{pod} }})
	if err != nil {
		f.Fatal(err)
	}
	return &fixture{srv: srv, rt: rt, logsDir: logsDir, pod: pod}
}

// fuzzRequestContext is the context of a fuzzed request: quiet, and ended
// soon, since a followed log or a profile waits for it. A handler still
// running long after that hangs: the fuzzer reports it as a crash.
func fuzzRequestContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(klog.NewContext(context.Background(), logr.Discard()), fuzzRequestTimeout)
	timer := time.AfterFunc(10*time.Second, func() { panic(t.Name() + ": the request did not end") })
	t.Cleanup(func() {
		timer.Stop()
		cancel()
	})
	return ctx
}

// fuzzRequestTimeout ends a fuzzed request.
const fuzzRequestTimeout = 50 * time.Millisecond
