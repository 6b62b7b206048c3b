package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critesting "k8s.io/cri-api/pkg/apis/testing"
	"k8s.io/klog/v2"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"

	"github.com/nodeagent/nodeagent/cri"
)

// Markers of the fuzzed handler's fixture. secretMarker is in files
// beside the pods' log directories, which no response may carry; the
// others are what only a request authorized beyond stats, metrics and
// healthz may see.
const (
	secretMarker = "SECRET-0f3c9a"
	logMarker    = "LOGLINE-7d21e4"
	runMarker    = "RUNOUTPUT-51b8c0"
)

// restrictedMarkers are the bodies of routes a metrics scraper (stats,
// metrics and healthz only) must never get: logs, /run, the pod lists,
// /configz and the pprof pages.
var restrictedMarkers = []string{
	logMarker, runMarker, `"PodList"`, `"kubeletconfig"`,
	"Types of profiles available", "goroutine profile:", "heap profile:", "server.test",
}

// fuzzRuntime answers /run with runMarker.
type fuzzRuntime struct{ *fakeRuntime }

func (r fuzzRuntime) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) ([]byte, []byte, error) {
	if _, _, err := r.FakeRuntimeService.ExecSync(ctx, id, cmd, timeout); err != nil {
		return nil, nil, err
	}
	return []byte(runMarker), nil, nil
}

// handlerFuzzFixture is one set of servers over one log tree for the
// whole fuzzing process: a request changes none of their state but the
// fake runtime's call log, which is cleared.
type handlerFuzzFixture struct {
	rt *fakeRuntime
	// full and redirect allow everyone (anonymous, AlwaysAllow); redirect
	// answers streams with a 302.
	full, redirect http.Handler
	// scraper is redirect's routes behind an authorizer that allows only
	// the stats, metrics and healthz subresources.
	scraper http.Handler
}

// newHandlerFuzzFixture serves pod ns1/pod1 (uid-1) whose container c1 has
// two well-formed logs, and pod ns1/pod2 (uid-2) whose runtime reports
// log paths that leave its log directory: a symbolic link to a file beside
// the log root, and a path through "..". Both files hold secretMarker.
func newHandlerFuzzFixture(f *testing.F) *handlerFuzzFixture {
	root := f.TempDir()
	logsDir := filepath.Join(root, "logs")
	secretLine := "2024-01-01T00:00:00.000000000Z stdout F " + secretMarker + "\n"
	secret := filepath.Join(root, "secret.log")
	outside := filepath.Join(logsDir, "outside.log")
	pod1Dir := cri.PodLogDir(logsDir, "ns1", "pod1", "uid-1")
	pod2Dir := cri.PodLogDir(logsDir, "ns1", "pod2", "uid-2")
	for _, d := range []string{filepath.Join(pod1Dir, "c1"), filepath.Join(pod2Dir, "c1"), filepath.Join(root, "agent")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			f.Fatal(err)
		}
	}
	files := map[string]string{
		secret:                                secretLine,
		outside:                               secretLine,
		filepath.Join(pod1Dir, "c1", "0.log"): "2024-01-01T00:00:00.000000000Z stdout F " + logMarker + "-old\n",
		filepath.Join(pod1Dir, "c1", "1.log"): "2024-01-01T00:00:01.000000000Z stdout P " + logMarker + "\n2024-01-01T00:00:02.000000000Z stderr F -new\n",
	}
	for p, body := range files {
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	link := filepath.Join(pod2Dir, "c1", "1.log")
	if err := os.Symlink(secret, link); err != nil {
		f.Fatal(err)
	}

	rt := &fakeRuntime{FakeRuntimeService: critesting.NewFakeRuntimeService(), streamBase: "http://127.0.0.1:1"}
	ctr := func(id, pod string, uid types.UID, restart int, state runtimeapi.ContainerState, logPath string) *critesting.FakeContainer {
		return &critesting.FakeContainer{ContainerStatus: runtimeapi.ContainerStatus{
			Id: id, Metadata: &runtimeapi.ContainerMetadata{Name: "c1", Attempt: uint32(restart)},
			State: state, CreatedAt: int64(restart), LogPath: logPath,
			Labels:      cri.ContainerLabels(pod, "ns1", uid, "c1"),
			Annotations: map[string]string{cri.ContainerRestartCountAnnotation: fmt.Sprint(restart)},
		}, SandboxID: "sb-" + pod}
	}
	rt.SetFakeContainers([]*critesting.FakeContainer{
		ctr("p1-old", "pod1", "uid-1", 0, runtimeapi.ContainerState_CONTAINER_EXITED, filepath.Join(pod1Dir, "c1", "0.log")),
		ctr("p1-cur", "pod1", "uid-1", 1, runtimeapi.ContainerState_CONTAINER_RUNNING, filepath.Join(pod1Dir, "c1", "1.log")),
		ctr("p2-old", "pod2", "uid-2", 0, runtimeapi.ContainerState_CONTAINER_EXITED, pod2Dir+"/../outside.log"),
		ctr("p2-cur", "pod2", "uid-2", 1, runtimeapi.ContainerState_CONTAINER_RUNNING, link),
	})
	sandbox := func(pod string, uid types.UID) *critesting.FakePodSandbox {
		return &critesting.FakePodSandbox{PodSandboxStatus: runtimeapi.PodSandboxStatus{
			Id: "sb-" + pod, State: runtimeapi.PodSandboxState_SANDBOX_READY,
			Metadata: &runtimeapi.PodSandboxMetadata{Name: pod, Namespace: "ns1", Uid: string(uid)},
			Labels:   cri.PodLabels(nil, pod, "ns1", uid),
		}}
	}
	rt.SetFakeSandboxes([]*critesting.FakePodSandbox{sandbox("pod1", "uid-1"), sandbox("pod2", "uid-2")})
	pods := []*v1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Name: "pod1", Namespace: "ns1", UID: "uid-1"}, Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c1"}, {Name: "never"}}}, Status: fixtureStatus("p1-cur", "p1-old")},
		{ObjectMeta: metav1.ObjectMeta{Name: "pod2", Namespace: "ns1", UID: "uid-2"}, Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c1"}}}, Status: fixtureStatus("p2-cur", "p2-old")},
	}

	build := func(redirect bool) *Server {
		srv, err := New(Config{
			NodeName:          "node1",
			RootDir:           filepath.Join(root, "agent"),
			PodLogsDir:        logsDir,
			Authentication:    kubeletconfigv1beta1.KubeletAuthentication{Anonymous: kubeletconfigv1beta1.KubeletAnonymousAuthentication{Enabled: ptr.To(true)}},
			Authorization:     kubeletconfigv1beta1.KubeletAuthorization{Mode: kubeletconfigv1beta1.KubeletAuthorizationModeAlwaysAllow},
			KubeletConfig:     &kubeletconfigv1beta1.KubeletConfiguration{MaxPods: 7},
			RedirectStreaming: redirect,
		}, Deps{Runtime: fuzzRuntime{rt}, Pods: func() []*v1.Pod { return pods }})
		if err != nil {
			f.Fatal(err)
		}
		return srv
	}
	full, redirect := build(false), build(true)
	scraper := &authHandler{
		nodeName: "node1",
		authn:    redirect.auth.authn,
		authz: authorizer.AuthorizerFunc(func(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
			switch a.GetSubresource() {
			case "stats", "metrics", "healthz":
				return authorizer.DecisionAllow, "", nil
			}
			return authorizer.DecisionNoOpinion, "", nil
		}),
	}
	return &handlerFuzzFixture{rt: rt, full: full.Handler(), redirect: redirect.Handler(), scraper: scraper.wrap(redirect.secureContainer())}
}

// upgradeHeaders are the stream upgrades a client may ask for, picked by
// the fuzzer: none, SPDY, WebSocket exec/attach, WebSocket port-forward.
var upgradeHeaders = []map[string]string{
	{},
	{"Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": "v4.channel.k8s.io"},
	{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-Websocket-Version": "13", "Sec-Websocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-Websocket-Protocol": "v5.channel.k8s.io"},
	{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-Websocket-Version": "13", "Sec-Websocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-Websocket-Protocol": "SPDY/3.1+portforward.k8s.io"},
}

// hijackRecorder is a ResponseRecorder that an upgrade can take over, as
// an HTTP/1.1 server's writer (HTTP/2 refuses upgrade headers before a
// handler sees them). The client's end of the connection reads and drops
// what the handler writes, and closes when the request's context ends.
type hijackRecorder struct {
	*httptest.ResponseRecorder
	ctx context.Context
}

func (w hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	server, client := net.Pipe()
	go func() { _, _ = io.Copy(io.Discard, client) }()
	context.AfterFunc(w.ctx, func() { _ = client.Close() })
	return server, bufio.NewReadWriter(bufio.NewReader(server), bufio.NewWriter(server)), nil
}

// serveFuzz serves one request built from the fuzzer's method, raw path,
// raw query and upgrade kind, as the HTTP server would hand it over, or
// returns nil if no server would.
func serveFuzz(h http.Handler, method, path, query string, upgrade uint8) *httptest.ResponseRecorder {
	target := path
	if query != "" {
		target += "?" + query
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil
	}
	// Every request ends: a followed log, a CPU profile or a trace waits
	// for its context, the rest must not wait at all.
	ctx, cancel := context.WithTimeout(klog.NewContext(context.Background(), logr.Discard()), fuzzRequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "/", strings.NewReader(query))
	if err != nil {
		return nil
	}
	req.URL, req.RequestURI, req.Host = u, target, "node1:10250"
	for k, v := range upgradeHeaders[int(upgrade)%len(upgradeHeaders)] {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(hijackRecorder{ResponseRecorder: w, ctx: ctx}, req)
	return w
}

// FuzzHandler drives every route of the authenticated port (and unknown
// ones) with an arbitrary method, path, query and stream upgrade: no
// panic, no hang once the request's context ends, a valid status code, no
// byte of a file outside a pod's log directory, and nothing but stats,
// metrics and healthz for a caller authorized only for those.
func FuzzHandler(f *testing.F) {
	seeds := []struct {
		method, path, query string
		upgrade             uint8
	}{
		{"GET", "/healthz", "", 0},
		{"GET", "/pods", "", 0},
		{"GET", "/runningpods/", "", 0},
		{"GET", "/configz", "", 0},
		{"GET", "/stats/summary", "only_cpu_and_memory=true", 0},
		{"POST", "/stats/summary", "only_cpu_and_memory=%zz", 0},
		{"GET", "/metrics", "", 0},
		{"GET", "/metrics/cadvisor", "", 0},
		{"GET", "/metrics/resource", "", 0},
		{"GET", "/metrics/probes", "", 0},
		{"GET", "/logs/", "", 0},
		{"GET", "/logs/../containerLogs/ns1/pod1/c1", "", 0},
		{"GET", "/debug/pprof/", "", 0},
		{"GET", "/debug/pprof/goroutine", "debug=1", 0},
		{"GET", "/debug/pprof/heap", "gc=1", 0},
		{"GET", "/debug/pprof/cmdline", "", 0},
		{"POST", "/debug/pprof/symbol", "0x1", 0},
		{"GET", "/debug/pprof/profile", "seconds=1", 0},
		{"GET", "/debug/pprof/trace", "seconds=-1", 0},
		{"GET", "/debug/flags/v", "", 0},
		{"PUT", "/debug/flags/v", "", 0},
		{"GET", "/containerLogs/ns1/pod1/c1", "tailLines=1&timestamps=true", 0},
		{"GET", "/containerLogs/ns1/pod1/c1", "previous=true&limitBytes=3", 0},
		{"GET", "/containerLogs/ns1/pod1/c1", "follow=true&sinceSeconds=10", 0},
		{"GET", "/containerLogs/ns1/pod1/c1", "sinceTime=2024-01-01T00:00:01Z&tail=all&stream=All", 0},
		{"GET", "/containerLogs/ns1/pod2/c1", "", 0},
		{"GET", "/containerLogs/ns1/pod2/c1", "previous=1", 0},
		{"GET", "/containerLogs/ns1/pod1/../../secret.log", "", 0},
		{"GET", "/containerLogs/ns1/pod1/%2e%2e%2f%2e%2e%2fsecret.log", "", 0},
		{"GET", "/containerLogs/ns1/pod1/c1%00", "tailLines=%00", 0},
		{"GET", "//containerLogs//ns1/pod1/c1", "", 0},
		{"GET", "/containerLogs/ns1/pod1/c1/", "", 0},
		{"GET", "/metrics/../containerLogs/ns1/pod1/c1", "", 0},
		{"GET", "/stats/%2e%2e/containerLogs/ns1/pod1/c1", "", 0},
		{"GET", "/healthz/../pods", "", 0},
		{"GET", "/Metrics/../configz", "", 0},
		{"GET", "http://node1/containerLogs/ns1/pod1/c1", "", 0},
		{"POST", "/exec/ns1/pod1/c1", "command=ls&output=1&tty=1&error=1", 0},
		{"POST", "/exec/ns1/pod1/uid-1/c1", "command=sh&input=1", 1},
		{"GET", "/exec/ns1/pod1/c1", "command=sh&input=1&output=1", 2},
		{"POST", "/attach/ns1/pod1/c1", "output=1", 1},
		{"GET", "/attach/ns1/pod1/c1", "output=1&error=1", 2},
		{"POST", "/portForward/ns1/pod1", "port=80", 1},
		{"GET", "/portForward/ns1/pod1/uid-1", "", 3},
		{"POST", "/run/ns1/pod1/c1", "cmd=ls -l", 0},
		{"POST", "/run/ns1/pod1/uid-1/c1", "cmd=", 0},
		{"DELETE", "/run/ns1/pod1/c1", "", 0},
		{"OPTIONS", "*", "", 0},
		{"CONNECT", "/exec/ns1/pod1/c1", "output=1", 0},
		{"GET", "/", "", 0},
		{"GET", "/containerLogs/ns1/pod1/" + strings.Repeat("c", 4096), strings.Repeat("tailLines=1&", 512), 0},
		{"GET", "/containerLogs/ns1/pod1/c\u00e9\u2028", "since\u00e9=1", 0},
		{"", "", "", 0},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.query, s.upgrade)
	}
	fx := newHandlerFuzzFixture(f)
	f.Fuzz(func(t *testing.T, method, path, query string, upgrade uint8) {
		fx.rt.Lock()
		fx.rt.Called = nil
		fx.rt.Unlock()
		// A handler that outlives its request's context by far hangs.
		input := fmt.Sprintf("%q %q ? %q (upgrade %d)", method, path, query, upgrade)
		timer := time.AfterFunc(10*time.Second, func() { panic("request did not end: " + input) })
		defer timer.Stop()

		echoes := func(marker string) bool {
			raw := strings.ToLower(path + "?" + query)
			unescaped, _ := url.PathUnescape(raw)
			unquoted, _ := url.QueryUnescape(raw)
			m := strings.ToLower(marker)
			return strings.Contains(raw, m) || strings.Contains(unescaped, m) || strings.Contains(unquoted, m)
		}
		for _, c := range []struct {
			name string
			h    http.Handler
		}{{"full", fx.full}, {"redirect", fx.redirect}, {"scraper", fx.scraper}} {
			name := c.name
			w := serveFuzz(c.h, method, path, query, upgrade)
			if w == nil {
				return
			}
			if w.Code < 100 || w.Code > 599 {
				t.Fatalf("%s: %s: status %d", name, input, w.Code)
			}
			body := w.Body.String()
			if strings.Contains(body, secretMarker) && !echoes(secretMarker) {
				t.Fatalf("%s: %s: read outside the pod log dir: %d %q", name, input, w.Code, body)
			}
			if name != "scraper" || w.Code == http.StatusForbidden || w.Code == http.StatusUnauthorized {
				continue
			}
			if loc := w.Header().Get("Location"); strings.Contains(loc, "/token") {
				t.Fatalf("scraper: %s: redirected to the stream %q", input, loc)
			}
			if w.Code == http.StatusOK && w.Header().Get("Content-Type") == "application/octet-stream" {
				t.Fatalf("scraper: %s: served a profile", input)
			}
			for _, m := range restrictedMarkers {
				if strings.Contains(body, m) && !echoes(m) {
					t.Fatalf("scraper: %s: got %q: %d %q", input, m, w.Code, body)
				}
			}
		}
	})
}
