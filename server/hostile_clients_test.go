package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	remotecommandserver "k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"k8s.io/cri-streaming/pkg/streaming"

	"github.com/nodeagent/nodeagent/cri"
)

// serveLoopback serves h on a loopback port through the http.Server the
// agent builds (httpServer: its timeouts and header limit), without TLS,
// and returns the address.
func serveLoopback(t *testing.T, s *Server, h http.Handler) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := s.httpServer(ctx, "127.0.0.1", 0, h)
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		cancel()
		<-done
	})
	return ln.Addr().String()
}

// dial opens a raw connection closed at the end of the test.
func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*net.TCPConn)
}

// getPromptly makes a request on a fresh connection and fails unless it
// is answered with 200 within limit.
func getPromptly(t *testing.T, addr, path string, limit time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: limit, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	resp, err := client.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s while hostile clients are connected: %v", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatalf("GET %s: reading the body: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", path, resp.StatusCode)
	}
	if d := time.Since(start); d > limit {
		t.Fatalf("GET %s took %v", path, d)
	}
}

// waitGoroutines waits until no more than limit goroutines run.
func waitGoroutines(t *testing.T, limit int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= limit {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want at most %d:\n%s", n, limit, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSlowHeaders: 50 clients that send their headers one byte at a time
// do not keep the server from answering others, and each is disconnected
// once the header timeout has passed.
func TestSlowHeaders(t *testing.T) {
	f := newFixture(t, false)
	const headerTimeout = 2 * time.Second
	f.srv.timeouts.readHeader = headerTimeout
	addr := serveLoopback(t, f.srv, f.srv.Handler())

	const slow = 50
	type result struct {
		open time.Duration
		err  error
	}
	results := make(chan result, slow)
	stop := make(chan struct{})
	defer close(stop)
	for range slow {
		conn := dial(t, addr)
		opened := time.Now()
		go func() {
			// Never ends its headers.
			req := "GET /healthz HTTP/1.1\r\nHost: node\r\nX-Slow: " + strings.Repeat("a", 1<<16)
			for i := range len(req) {
				if _, err := conn.Write([]byte{req[i]}); err != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
		go func() {
			// The server answers nothing; the read ends when it closes.
			_ = conn.SetReadDeadline(time.Now().Add(headerTimeout + 10*time.Second))
			n, err := conn.Read(make([]byte, 1))
			if n > 0 {
				err = fmt.Errorf("server wrote %d bytes", n)
			} else if errors.Is(err, os.ErrDeadlineExceeded) {
				err = fmt.Errorf("still open: %w", err)
			} else {
				err = nil
			}
			results <- result{open: time.Since(opened), err: err}
		}()
	}

	// The others are answered while the slow clients trickle in.
	for _, path := range []string{"/healthz", "/pods", "/containerLogs/ns1/pod1/c1", "/metrics"} {
		getPromptly(t, addr, path, headerTimeout/2)
	}

	for range slow {
		r := <-results
		if r.err != nil {
			t.Fatalf("slow client: %v", r.err)
		}
		if r.open < headerTimeout*9/10 {
			t.Fatalf("slow client disconnected after %v, before the header timeout %v", r.open, headerTimeout)
		}
	}
}

// sendRaw writes req in a goroutine and reads the response at the same
// time, as the server may answer before it has read everything. It
// returns the response's status code and body, and how much of req was
// written before the server closed the connection.
func sendRaw(t *testing.T, addr string, req io.Reader) (int, string, int64) {
	t.Helper()
	conn := dial(t, addr)
	written := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(conn, req)
		written <- n
	}()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	// The server closes the connection rather than read on; the write
	// then fails.
	select {
	case n := <-written:
		return resp.StatusCode, string(body), n
	case <-time.After(30 * time.Second):
		t.Fatal("the server still reads the request after answering it")
		return 0, "", 0
	}
}

func TestOversizedHeaders(t *testing.T) {
	f := newFixture(t, false)
	addr := serveLoopback(t, f.srv, f.srv.Handler())
	for _, tc := range []struct {
		name string
		size int
		code int
	}{
		{"under the limit", maxHeaderBytes / 2, http.StatusOK},
		{"over the limit", maxHeaderBytes + 64<<10, http.StatusRequestHeaderFieldsTooLarge},
		{"far over the limit", 64 * maxHeaderBytes, http.StatusRequestHeaderFieldsTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := "GET /healthz HTTP/1.1\r\nHost: node\r\nConnection: close\r\nX-Big: " + strings.Repeat("a", tc.size) + "\r\n\r\n"
			code, _, n := sendRaw(t, addr, strings.NewReader(req))
			if code != tc.code {
				t.Fatalf("status %d, want %d", code, tc.code)
			}
			// What the server did not read stays in the kernel's socket
			// buffers: a few MiB at most on loopback.
			if tc.code != http.StatusOK && n >= int64(len(req)) && len(req) > 32<<20 {
				t.Fatalf("the server read all %d bytes of headers", n)
			}
		})
	}
}

// endless is a never-ending request body of the given pattern.
type endless struct {
	pattern []byte
	off     int
	limit   int64 // gives up here, far beyond what the server may read
	n       int64
}

func (e *endless) Read(p []byte) (int, error) {
	if e.n >= e.limit {
		return 0, io.EOF
	}
	for i := range p {
		p[i] = e.pattern[e.off]
		e.off = (e.off + 1) % len(e.pattern)
	}
	e.n += int64(len(p))
	return len(p), nil
}

// TestOversizedBodies: a request body beyond maxRequestBodyBytes is refused
// and not read on, whether its length is declared or not.
func TestOversizedBodies(t *testing.T) {
	f := newFixture(t, false)
	addr := serveLoopback(t, f.srv, f.srv.Handler())
	const sent = 256 << 20
	// What the server did not read stays in socket buffers; loopback's
	// hold a few MiB.
	const bound = maxRequestBodyBytes + 32<<20
	// A program counter /debug/pprof/symbol resolves: each one in the body
	// adds a line to the answer it buffers.
	pc := fmt.Sprintf("%#x+", reflect.ValueOf(TestOversizedBodies).Pointer())

	t.Run("declared length", func(t *testing.T) {
		for _, path := range []string{"/run/ns1/pod1/c1?cmd=ls", "/exec/ns1/pod1/c1?command=ls&output=1", "/debug/pprof/symbol", "/pods"} {
			head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: node\r\nContent-Length: %d\r\n\r\n", path, sent)
			code, _, n := sendRaw(t, addr, io.MultiReader(strings.NewReader(head), &endless{pattern: []byte(pc), limit: sent}))
			if code != http.StatusRequestEntityTooLarge {
				t.Errorf("POST %s with %d bytes: status %d, want 413", path, sent, code)
			}
			if n > bound {
				t.Errorf("POST %s: the server read %d bytes", path, n)
			}
		}
	})
	t.Run("chunked", func(t *testing.T) {
		// One chunk as long as the body; the server reads only the start.
		// Addresses that resolve to nothing keep the answer short: the
		// server closes the connection soon after it, unread data or not.
		head := fmt.Sprintf("POST /debug/pprof/symbol HTTP/1.1\r\nHost: node\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n", sent)
		code, body, n := sendRaw(t, addr, io.MultiReader(strings.NewReader(head), &endless{pattern: []byte("0x1+"), limit: sent}))
		if !strings.Contains(body, "request body too large") {
			t.Errorf("status %d, body %.200q: the body was not cut", code, body)
		}
		if n > bound {
			t.Errorf("the server read %d bytes", n)
		}
	})
	t.Run("small body still served", func(t *testing.T) {
		body := strings.Repeat(pc, 100)
		req := fmt.Sprintf("POST /debug/pprof/symbol HTTP/1.1\r\nHost: node\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		code, got, _ := sendRaw(t, addr, strings.NewReader(req))
		if code != http.StatusOK || strings.Count(got, "TestOversizedBodies") != 100 {
			t.Fatalf("status %d, body %.300q", code, got)
		}
	})
}

// trackHandler counts the requests under prefix that are being served.
type trackHandler struct {
	h        http.Handler
	prefix   string
	inflight atomic.Int32
	ended    chan struct{}
}

func (th *trackHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, th.prefix) {
		th.inflight.Add(1)
		defer func() {
			th.inflight.Add(-1)
			th.ended <- struct{}{}
		}()
	}
	th.h.ServeHTTP(w, r)
}

func (th *trackHandler) waitStarted(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for th.inflight.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no request under %s started", th.prefix)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (th *trackHandler) waitEnded(t *testing.T) {
	t.Helper()
	select {
	case <-th.ended:
	case <-time.After(15 * time.Second):
		t.Fatalf("the handler of %s still runs after its client went away", th.prefix)
	}
}

// logLine is a CRI log line of about 1 KiB.
var logLine = "2024-01-01T00:00:03.000000000Z stdout F " + strings.Repeat("x", 1000) + "\n"

// TestFollowLogsClientNeverReads: a client that follows a growing log and
// never reads what it asked for blocks only its own handler, which ends
// once the client goes away.
func TestFollowLogsClientNeverReads(t *testing.T) {
	f := newFixture(t, false)
	logPath := filepath.Join(cri.PodLogDir(f.logsDir, "ns1", "pod1", testUID), "c1", "1.log")
	// More than the socket buffers of both ends hold: the handler's
	// writes block.
	lf, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lf.Close() }()
	if _, err := lf.WriteString(strings.Repeat(logLine, 16<<10)); err != nil {
		t.Fatal(err)
	}
	th := &trackHandler{h: f.srv.Handler(), prefix: "/containerLogs/", ended: make(chan struct{}, 16)}
	addr := serveLoopback(t, f.srv, th)
	getPromptly(t, addr, "/healthz", 5*time.Second)
	baseline := runtime.NumGoroutine()

	// The log keeps growing.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if _, err := lf.WriteString(logLine); err != nil {
				t.Errorf("append to the log: %v", err)
				return
			}
		}
	})
	defer func() {
		close(stop)
		wg.Wait()
	}()

	stalled := dial(t, addr)
	if err := stalled.SetReadBuffer(4 << 10); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(stalled, "GET /containerLogs/ns1/pod1/c1?follow=true HTTP/1.1\r\nHost: node\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	th.waitStarted(t)
	time.Sleep(500 * time.Millisecond)

	for _, path := range []string{"/healthz", "/pods", "/containerLogs/ns1/pod1/c1?tailLines=1", "/containerLogs/ns1/pod1/c1?previous=true", "/metrics"} {
		getPromptly(t, addr, path, 5*time.Second)
	}
	for range 2 { // the two containerLogs requests above
		th.waitEnded(t)
	}
	if n := th.inflight.Load(); n != 1 {
		t.Fatalf("%d log streams served, want the stalled one", n)
	}

	_ = stalled.Close()
	th.waitEnded(t)
	// The stream's goroutines (log reader, file watcher, flush timer,
	// connection) are gone too; a few of the runtime's may come and go.
	waitGoroutines(t, baseline+3)
}

// floodStreams is a runtime's stream side whose exec writes to stdout
// until the write fails, and counts the execs that run.
type floodStreams struct {
	running atomic.Int32
	ended   chan struct{}
}

func (fs *floodStreams) Exec(_ context.Context, _ string, _ []string, _ io.Reader, out, _ io.WriteCloser, _ bool, _ <-chan remotecommandserver.TerminalSize) error {
	fs.running.Add(1)
	defer func() {
		fs.running.Add(-1)
		fs.ended <- struct{}{}
	}()
	chunk := []byte(strings.Repeat("y\n", 16<<10))
	for {
		if _, err := out.Write(chunk); err != nil {
			return err
		}
	}
}

func (fs *floodStreams) Attach(context.Context, string, io.Reader, io.WriteCloser, io.WriteCloser, bool, <-chan remotecommandserver.TerminalSize) error {
	return errors.New("not supported")
}

func (fs *floodStreams) PortForward(context.Context, string, int32, io.ReadWriteCloser) error {
	return errors.New("not supported")
}

// TestWebSocketClientNeverReads: an exec over WebSocket whose output the
// client never reads blocks only its own stream; when the client goes
// away the handler and the runtime's exec end.
func TestWebSocketClientNeverReads(t *testing.T) {
	f := newFixture(t, false)
	fs := &floodStreams{ended: make(chan struct{}, 1)}
	var streams streaming.Server
	runtimeSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { streams.ServeHTTP(w, r) }))
	t.Cleanup(runtimeSrv.Close)
	base, err := url.Parse(runtimeSrv.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg := streaming.DefaultConfig
	cfg.Addr, cfg.BaseURL = base.Host, base
	if streams, err = streaming.NewServer(cfg, fs); err != nil {
		t.Fatal(err)
	}
	f.srv.deps.Runtime = &streamRuntime{fakeRuntime: f.rt, streams: streams}
	th := &trackHandler{h: f.srv.Handler(), prefix: "/exec/", ended: make(chan struct{}, 1)}
	addr := serveLoopback(t, f.srv, th)
	getPromptly(t, addr, "/healthz", 5*time.Second)
	baseline := runtime.NumGoroutine()

	stalled := dial(t, addr)
	if err := stalled.SetReadBuffer(4 << 10); err != nil {
		t.Fatal(err)
	}
	handshake := "GET /exec/ns1/pod1/c1?command=flood&output=1 HTTP/1.1\r\nHost: node\r\n" +
		"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n"
	if _, err := io.WriteString(stalled, handshake); err != nil {
		t.Fatal(err)
	}
	// Only the status line: what follows is never read.
	_ = stalled.SetReadDeadline(time.Now().Add(10 * time.Second))
	status, err := bufio.NewReaderSize(stalled, 16).ReadString('\n')
	if err != nil || !strings.Contains(status, "101") {
		t.Fatalf("handshake answered %q: %v", status, err)
	}
	th.waitStarted(t)
	deadline := time.Now().Add(10 * time.Second)
	for fs.running.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the exec did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)

	for _, path := range []string{"/healthz", "/pods", "/containerLogs/ns1/pod1/c1", "/metrics"} {
		getPromptly(t, addr, path, 5*time.Second)
	}

	_ = stalled.Close()
	th.waitEnded(t)
	select {
	case <-fs.ended:
	case <-time.After(15 * time.Second):
		t.Fatal("the runtime's exec still runs after the client went away")
	}
	waitGoroutines(t, baseline+3)
}
