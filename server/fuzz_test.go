package server

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzContainerLogsPath fuzzes the request path and query of /containerLogs
// and the log path the runtime reports: the server must never panic and
// never return a byte of a file outside the pod's log directory.
func FuzzContainerLogsPath(f *testing.F) {
	f.Add("ns1/pod1/c1", "tailLines=1&timestamps=true", "c1/1.log")
	f.Add("ns1/pod1/../../etc/passwd", "previous=true", "../../outside.log")
	f.Add("ns1/pod1/c1", "sinceTime=2024-01-01T00:00:00Z&limitBytes=1", "/etc/passwd")
	f.Add("ns1/pod1/c1", "tail=all&sinceSeconds=-1", "c1/link.log")
	f.Fuzz(func(t *testing.T, path, query, logPath string) {
		fx := newFixture(t, false)
		outside := filepath.Join(fx.logsDir, "outside.log")
		if err := os.WriteFile(outside, []byte("2024-01-01T00:00:00Z stdout F SECRETDATA\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		podDir := podLogDir(fx.logsDir, "ns1", "pod1", testUID)
		_ = os.Symlink(outside, filepath.Join(podDir, "c1", "link.log"))
		if !strings.HasPrefix(logPath, "/") {
			logPath = filepath.Join(podDir, logPath)
		}
		fx.rt.Containers["cur"].LogPath = logPath
		fx.rt.Containers["old"].LogPath = logPath
		u := &url.URL{Path: "/containerLogs/" + path, RawQuery: query}
		req, err := http.NewRequest("GET", u.String(), nil)
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
	f.Fuzz(func(t *testing.T, kind, path, query string) {
		fx := newFixture(t, true)
		u := &url.URL{Path: "/" + kind + "/" + path, RawQuery: query}
		req, err := http.NewRequest("POST", u.String(), nil)
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
