package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	remotecommandserver "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// streamRuntime is a runtime whose stream URLs come from a real CRI
// stream server (the library containerd's is derived from), speaking SPDY
// only, as runtimes do.
type streamRuntime struct {
	*fakeRuntime
	streams streaming.Server
}

func (r *streamRuntime) Exec(_ context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	return r.streams.GetExec(req)
}

func (r *streamRuntime) Attach(_ context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	return r.streams.GetAttach(req)
}

func (r *streamRuntime) PortForward(_ context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	return r.streams.GetPortForward(req)
}

// containerStreams is what the stream server runs: exec "echo" writes its
// arguments, "cat" copies stdin to stdout, "fail" exits 3; attach writes
// "attached"; a forwarded port echoes what it receives after "port N: ".
type containerStreams struct{}

func (containerStreams) Exec(_ context.Context, _ string, cmd []string, in io.Reader, out, errOut io.WriteCloser, _ bool, _ <-chan remotecommandserver.TerminalSize) error {
	switch cmd[0] {
	case "echo":
		_, err := fmt.Fprintln(out, strings.Join(cmd[1:], " "))
		return err
	case "cat":
		_, err := io.Copy(out, in)
		return err
	case "fail":
		_, _ = fmt.Fprintln(errOut, "failing")
		return utilexec.CodeExitError{Err: errors.New("exit status 3"), Code: 3}
	}
	return fmt.Errorf("unknown command %q", cmd)
}

func (containerStreams) Attach(_ context.Context, _ string, _ io.Reader, out, _ io.WriteCloser, _ bool, _ <-chan remotecommandserver.TerminalSize) error {
	_, err := fmt.Fprintln(out, "attached")
	return err
}

func (containerStreams) PortForward(_ context.Context, _ string, port int32, stream io.ReadWriteCloser) error {
	defer func() { _ = stream.Close() }()
	if _, err := fmt.Fprintf(stream, "port %d: ", port); err != nil {
		return err
	}
	_, err := io.Copy(stream, stream)
	return err
}

// newWebSocketFixture serves the node API over HTTP in front of a real
// SPDY stream server.
func newWebSocketFixture(t *testing.T, redirect bool) *httptest.Server {
	t.Helper()
	f := newFixture(t, redirect)
	var streams streaming.Server
	runtimeSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { streams.ServeHTTP(w, r) }))
	t.Cleanup(runtimeSrv.Close)
	base, err := url.Parse(runtimeSrv.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg := streaming.DefaultConfig
	cfg.Addr, cfg.BaseURL = base.Host, base
	if streams, err = streaming.NewServer(cfg, containerStreams{}); err != nil {
		t.Fatal(err)
	}
	f.srv.deps.Runtime = &streamRuntime{fakeRuntime: f.rt, streams: streams}
	node := httptest.NewServer(f.srv.Handler())
	t.Cleanup(node.Close)
	return node
}

func TestWebSocketExec(t *testing.T) {
	for _, redirect := range []bool{false, true} {
		node := newWebSocketFixture(t, redirect)
		tests := []struct {
			name, query, stdin string
			want, wantErr      string
			exitCode           int
		}{
			{name: "echo", query: "command=echo&command=hello&command=world&output=1&error=1", want: "hello world\n"},
			{name: "stdin", query: "command=cat&input=1&output=1&error=1", stdin: "from stdin", want: "from stdin"},
			{name: "exit code", query: "command=fail&output=1&error=1", wantErr: "failing\n", exitCode: 3},
			{name: "tty", query: "command=echo&command=tty&output=1&tty=1", want: "tty\n"},
		}
		for _, tc := range tests {
			t.Run(fmt.Sprintf("redirect=%v/%s", redirect, tc.name), func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				err := webSocketStream(t, node.URL+"/exec/ns1/pod1/c1?"+tc.query, tc.stdin, &stdout, &stderr, strings.Contains(tc.query, "tty=1"))
				var exitErr utilexec.ExitError
				switch {
				case tc.exitCode != 0:
					if !errors.As(err, &exitErr) || exitErr.ExitStatus() != tc.exitCode {
						t.Fatalf("error %v, want exit code %d", err, tc.exitCode)
					}
				case err != nil:
					t.Fatal(err)
				}
				if stdout.String() != tc.want || stderr.String() != tc.wantErr {
					t.Fatalf("stdout %q stderr %q, want %q and %q", stdout.String(), stderr.String(), tc.want, tc.wantErr)
				}
			})
		}
	}
}

func TestWebSocketAttach(t *testing.T) {
	node := newWebSocketFixture(t, false)
	var stdout, stderr bytes.Buffer
	if err := webSocketStream(t, node.URL+"/attach/ns1/pod1/c1?output=1&error=1", "", &stdout, &stderr, false); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "attached\n" {
		t.Fatalf("stdout %q, want %q", stdout.String(), "attached\n")
	}
}

// webSocketStream runs an exec or attach as kubectl 1.36 does: over
// WebSockets, v5.channel.k8s.io first.
func webSocketStream(t *testing.T, target, stdin string, stdout, stderr io.Writer, tty bool) error {
	t.Helper()
	exec, err := remotecommand.NewWebSocketExecutor(&rest.Config{Host: "http://unused"}, "GET", target)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opts := remotecommand.StreamOptions{Stdout: stdout, Tty: tty}
	if !tty {
		opts.Stderr = stderr
	}
	if stdin != "" {
		opts.Stdin = strings.NewReader(stdin)
	}
	return exec.StreamWithContext(ctx, opts)
}

func TestWebSocketPortForward(t *testing.T) {
	node := newWebSocketFixture(t, false)
	u, err := url.Parse(node.URL + "/portForward/ns1/pod1")
	if err != nil {
		t.Fatal(err)
	}
	dialer, err := portforward.NewSPDYOverWebsocketDialer(u, &rest.Config{Host: node.URL})
	if err != nil {
		t.Fatal(err)
	}
	stop, ready := make(chan struct{}), make(chan struct{})
	defer close(stop)
	var out, errOut bytes.Buffer
	pf, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:8080"}, stop, ready, &out, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	fwdErr := make(chan error, 1)
	go func() { fwdErr <- pf.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-fwdErr:
		t.Fatalf("port-forward ended: %v (%s)", err, errOut.String())
	case <-time.After(20 * time.Second):
		t.Fatal("port-forward not ready")
	}
	ports, err := pf.GetPorts()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0].Local), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	want := "port 8080: ping"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatalf("read %q: %v", got, err)
	}
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
