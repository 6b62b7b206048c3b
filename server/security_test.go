package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDebuggingHandlersDisabled(t *testing.T) {
	f := newFixtureWith(t, func(c *Config) { c.Debugging.Disabled = true })
	disabled := []string{
		"/exec/ns1/pod1/c1?command=ls&output=1", "/exec/ns1/pod1/uid-1/c1", "/attach/ns1/pod1/c1",
		"/portForward/ns1/pod1", "/run/ns1/pod1/c1?cmd=ls", "/containerLogs/ns1/pod1/c1",
		"/runningpods/", "/runningpods/x", "/debug/pprof/", "/debug/pprof/heap", "/debug/flags/v", "/debug/anything",
		"/logs/", "/logs/syslog",
	}
	for _, path := range disabled {
		for _, method := range []string{"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
			w := f.do(method, path)
			if w.Code != http.StatusMethodNotAllowed || w.Body.String() != "Debug endpoints are disabled.\n" {
				t.Errorf("%s %s: %d %q, want 405", method, path, w.Code, w.Body.String())
			}
		}
	}
	// The rest is served as before; /configz is gone, as in the kubelet.
	for path, code := range map[string]int{"/pods": 200, "/healthz": 200, "/stats/summary": 200, "/metrics": 200, "/configz": 404, "/nope": 404} {
		if w := f.do("GET", path); w.Code != code {
			t.Errorf("GET %s: %d, want %d: %.200s", path, w.Code, code, w.Body.String())
		}
	}
}

func TestDebuggingHandlersSwitches(t *testing.T) {
	tests := []struct {
		name    string
		d       Debugging
		path    string
		code    int
		message string
	}{
		{"profiling on", Debugging{}, "/debug/pprof/", 200, ""},
		{"profiling off", Debugging{ProfilingDisabled: true}, "/debug/pprof/heap", 405, "profiling endpoint is disabled.\n"},
		{"system log not served", Debugging{}, "/logs/", 404, ""},
		{"system log off", Debugging{SystemLogDisabled: true}, "/logs/messages", 405, "logs endpoint is disabled.\n"},
		{"flags not served", Debugging{}, "/debug/flags/v", 404, ""},
		{"flags off", Debugging{FlagsDisabled: true}, "/debug/flags/v", 405, "flags endpoint is disabled.\n"},
		{"exec stays with profiling off", Debugging{ProfilingDisabled: true, SystemLogDisabled: true, FlagsDisabled: true}, "/runningpods/", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixtureWith(t, func(c *Config) { c.Debugging = tt.d })
			w := f.do("GET", tt.path)
			if w.Code != tt.code || (tt.message != "" && w.Body.String() != tt.message) {
				t.Errorf("GET %s: %d %q, want %d %q", tt.path, w.Code, w.Body.String(), tt.code, tt.message)
			}
		})
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

// runServer runs f's server until the test ends.
func runServer(t *testing.T, f *fixture) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// dial connects to addr, retrying while nothing listens yet, and returns
// the handshake's error.
func dialTLS(t *testing.T, addr string, cfg *tls.Config) error {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, cfg)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		var opErr *net.OpError
		if !errors.As(err, &opErr) || opErr.Op != "dial" || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServingTLS(t *testing.T) {
	tests := []struct {
		name   string
		server func(*Config)
		client *tls.Config
		ok     bool
	}{
		{"default allows TLS 1.2", func(*Config) {}, &tls.Config{MaxVersion: tls.VersionTLS12}, true},
		{"default refuses TLS 1.1", func(*Config) {}, &tls.Config{MaxVersion: tls.VersionTLS11}, false},
		{"min 1.3 refuses 1.2", func(c *Config) { c.TLSMinVersion = tls.VersionTLS13 }, &tls.Config{MaxVersion: tls.VersionTLS12}, false},
		{"min 1.3 allows 1.3", func(c *Config) { c.TLSMinVersion = tls.VersionTLS13 }, &tls.Config{MinVersion: tls.VersionTLS13}, true},
		{"cipher allowed", func(c *Config) { c.TLSCipherSuites = []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256} },
			&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}, true},
		{"cipher refused", func(c *Config) { c.TLSCipherSuites = []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256} },
			&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}}, false},
		{"curve refused", func(c *Config) { c.TLSCurvePreferences = []tls.CurveID{tls.CurveP384} },
			&tls.Config{CurvePreferences: []tls.CurveID{tls.X25519}}, false},
		{"curve allowed", func(c *Config) { c.TLSCurvePreferences = []tls.CurveID{tls.CurveP384} },
			&tls.Config{CurvePreferences: []tls.CurveID{tls.CurveP384}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := freePort(t)
			f := newFixtureWith(t, func(c *Config) {
				c.Address, c.Port, c.RootDir = "127.0.0.1", port, t.TempDir()
				tt.server(c)
			})
			runServer(t, f)
			tt.client.InsecureSkipVerify = true //nolint:gosec // the self-signed certificate is not what is tested
			err := dialTLS(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))), tt.client)
			if tt.ok && err != nil {
				t.Errorf("handshake failed: %v", err)
			}
			if !tt.ok && err == nil {
				t.Error("handshake succeeded")
			}
		})
	}
}

// With enableServer false nothing listens on the API port and the other
// servers still run.
func TestServerDisabled(t *testing.T) {
	port, healthz := freePort(t), freePort(t)
	f := newFixtureWith(t, func(c *Config) {
		c.Address, c.Port, c.RootDir, c.ServerDisabled = "127.0.0.1", port, t.TempDir(), true
		c.HealthzBindAddress, c.HealthzPort = "127.0.0.1", healthz
	})
	runServer(t, f)
	var resp *http.Response
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err = http.Get("http://127.0.0.1:" + strconv.Itoa(int(healthz)) + "/healthz"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("healthz: %v", err)
	}
	_ = resp.Body.Close()
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))), time.Second)
	if err == nil {
		_ = conn.Close()
		t.Fatal("something listens on the API port with the server disabled")
	}
	if !strings.Contains(err.Error(), "refused") {
		t.Errorf("dial: %v, want connection refused", err)
	}
}
