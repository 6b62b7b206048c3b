package cni

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"k8s.io/klog/v2"
)

const loConf = `{"cniVersion": "1.0.0", "name": "lo-net", "type": "loopback"}`

// logCapture returns a context whose logger records the lines.
func logCapture() (context.Context, func() string) {
	var mu sync.Mutex
	var b strings.Builder
	logger := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		b.WriteString(args + "\n")
	}, funcr.Options{})
	return klog.NewContext(context.Background(), logger), func() string {
		mu.Lock()
		defer mu.Unlock()
		return b.String()
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name        string
		files       map[string]string
		missing     []string // plugins not installed
		wantNetwork string
		wantFile    string
		wantErr     []string // substrings of the error
		wantWarning []string // substrings of the log
	}{
		{name: "empty dir", wantErr: []string{"no network config found in"}},
		{
			name:        "lexical order",
			files:       map[string]string{"20-b.conflist": bridgeList("b", "br-b"), "10-a.conflist": bridgeList("a", "br-a"), "30-c.json": loConf},
			wantNetwork: "a", wantFile: "10-a.conflist",
		},
		{
			name:        "single conf wrapped into a list",
			files:       map[string]string{"05-lo.conf": loConf, "10-a.conflist": bridgeList("a", "br-a")},
			wantNetwork: "lo-net", wantFile: "05-lo.conf",
		},
		{
			name:        "list in a .json file",
			files:       map[string]string{"05-a.json": bridgeList("a", "br-a")},
			wantNetwork: "a", wantFile: "05-a.json",
		},
		{
			name:        "files that do not parse are skipped with a warning",
			files:       map[string]string{"00-bad.conf": "{not json", "01-notype.conf": `{"cniVersion":"1.0.0","name":"x"}`, "10-a.conflist": bridgeList("a", "br-a")},
			wantNetwork: "a", wantFile: "10-a.conflist",
			wantWarning: []string{"00-bad.conf", "01-notype.conf", "missing 'type'"},
		},
		{
			name:    "nothing parses",
			files:   map[string]string{"00-bad.conf": "{not json", "10-empty.conflist": `{"cniVersion":"1.0.0","name":"e","plugins":[]}`, "README": "ignored"},
			wantErr: []string{"no valid network config in", "00-bad.conf", "10-empty.conflist", "no plugins"},
		},
		{
			name:    "plugin not installed",
			files:   map[string]string{"10-a.conflist": bridgeList("a", "br-a")},
			missing: []string{"portmap"},
			wantErr: []string{"10-a.conflist", `"a"`, `plugin "portmap"`},
		},
		{
			name:    "cniVersion the plugins do not support",
			files:   map[string]string{"10-a.conflist": strings.Replace(bridgeList("a", "br-a"), `"1.0.0"`, `"1.1.0"`, 1)},
			wantErr: []string{"does not support config version \"1.1.0\""},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, fe, _ := testManager(t, tc.files)
			for _, p := range tc.missing {
				fe.missing[p] = true
			}
			ctx, logs := logCapture()
			err := m.Load(ctx)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatal("Load succeeded, want an error")
				}
				if !IsNotReady(err) || m.Status() == nil || m.Status().Error() != err.Error() {
					t.Errorf("error %v, Status %v: want the same not-ready error", err, m.Status())
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if m.Status() != nil {
				t.Errorf("Status = %v after a good Load", m.Status())
			}
			if m.list.Name != tc.wantNetwork || filepath.Base(m.file) != tc.wantFile {
				t.Errorf("loaded network %q from %s, want %q from %s", m.list.Name, m.file, tc.wantNetwork, tc.wantFile)
			}
			for _, s := range tc.wantWarning {
				if !strings.Contains(logs(), s) {
					t.Errorf("log does not contain %q:\n%s", s, logs())
				}
			}
		})
	}
}

func TestLoadMissingDir(t *testing.T) {
	m := New(Config{ConfDir: filepath.Join(t.TempDir(), "nope"), BinDirs: []string{"/fake"}}, newFakeExec())
	if err := m.Load(context.Background()); err == nil || !strings.Contains(err.Error(), "no network config found") {
		t.Fatalf("Load = %v", err)
	}
}

func TestStatusTransitions(t *testing.T) {
	m, _, confDir := testManager(t, nil)
	if err := m.Status(); !IsNotReady(err) || !strings.Contains(err.Error(), "not loaded yet") {
		t.Fatalf("Status before Load = %v", err)
	}
	ctx := context.Background()
	writeFiles(t, confDir, map[string]string{"10-a.conflist": bridgeList("a", "br-a")})
	mustLoad(t, m)
	if err := m.Status(); err != nil {
		t.Fatalf("Status = %v", err)
	}
	writeFiles(t, confDir, map[string]string{"10-a.conflist": "{broken"})
	if err := m.Load(ctx); err == nil {
		t.Fatal("Load of a broken config succeeded")
	}
	if err := m.Status(); !IsNotReady(err) || !strings.Contains(err.Error(), "10-a.conflist") {
		t.Fatalf("Status with a broken config = %v", err)
	}
	writeFiles(t, confDir, map[string]string{"10-a.conflist": bridgeList("a", "br-a")})
	mustLoad(t, m)
	if err := m.Status(); err != nil {
		t.Fatalf("Status after the fix = %v", err)
	}
}

func TestWatch(t *testing.T) {
	dir := t.TempDir()
	confDir := filepath.Join(dir, "net.d") // created only later
	fe := newFakeExec()
	m := New(Config{ConfDir: confDir, BinDirs: []string{"/fake"}, CacheDir: filepath.Join(dir, "cache")}, fe)
	m.pollInterval = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := m.Load(ctx); err == nil {
		t.Fatal("Load without a conf dir succeeded")
	}
	changes := make(chan error, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Watch(ctx, func(err error) { changes <- err })
	}()
	next := func() error {
		t.Helper()
		select {
		case err := <-changes:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("no reload")
			return nil
		}
	}
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, confDir, map[string]string{"10-a.conflist": bridgeList("a", "br-a")})
	for err := next(); err != nil; err = next() {
		// The empty dir may be seen first.
	}
	if m.Status() != nil {
		t.Fatalf("Status = %v", m.Status())
	}
	fe.mu.Lock()
	fe.missing["nosuch"] = true
	fe.mu.Unlock()
	writeFiles(t, confDir, map[string]string{"00-broken.conflist": `{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"nosuch"}]}`})
	if err := next(); !IsNotReady(err) || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("reload after a broken config = %v", err)
	}
	// Installing the plugin fixes it without a change of the conf dir.
	fe.mu.Lock()
	fe.missing["nosuch"] = false
	fe.mu.Unlock()
	if err := next(); err != nil {
		t.Fatalf("reload after the plugin appeared = %v", err)
	}
	cancel()
	<-done
}
