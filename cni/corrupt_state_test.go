package cni

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestCorruptCacheEntry: after a restart, a sandbox whose CNI cache entry
// is damaged gets an error naming the file from CachedResult and Check
// (never ErrNotSetUp, which would make the caller set the network up
// again), its teardown still runs DEL with the current config, and the
// other sandboxes' entries read as before.
func TestCorruptCacheEntry(t *testing.T) {
	good := func(t *testing.T, path string) []byte {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"truncated", func(t *testing.T, path string) {
			b := good(t, path)
			writeFiles(t, filepath.Dir(path), map[string]string{filepath.Base(path): string(b[:len(b)/2])})
		}},
		{"zero length", func(t *testing.T, path string) {
			writeFiles(t, filepath.Dir(path), map[string]string{filepath.Base(path): ""})
		}},
		{"garbage", func(t *testing.T, path string) {
			writeFiles(t, filepath.Dir(path), map[string]string{filepath.Base(path): "\x00\xff\x13garbage{{{"})
		}},
		{"directory", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{"dangling symlink", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(t.TempDir(), "nothing"), path); err != nil {
				t.Fatal(err)
			}
		}},
		{"garbage config in valid JSON", func(t *testing.T, path string) {
			b := good(t, path)
			cfg := base64.StdEncoding.EncodeToString([]byte("not a network config"))
			i := strings.Index(string(b), `"config":"`)
			if i < 0 {
				t.Fatalf("no config in %s", b)
			}
			j := strings.Index(string(b[i+10:]), `"`)
			writeFiles(t, filepath.Dir(path), map[string]string{filepath.Base(path): string(b[:i+10]) + cfg + string(b[i+10+j:])})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, fe, _ := testManager(t, map[string]string{"10-net.conflist": bridgeList("podnet", "cni0")})
			mustLoad(t, m)
			other := testPod()
			other.SandboxID = "sb2"
			for _, pn := range []PodNetwork{testPod(), other} {
				if _, err := m.Setup(context.Background(), pn); err != nil {
					t.Fatalf("Setup: %v", err)
				}
			}
			fe.take()
			entry := filepath.Join(m.cfg.CacheDir, "results", "podnet-sb1-eth0")
			otherEntry := filepath.Join(m.cfg.CacheDir, "results", "podnet-sb2-eth0")
			tc.damage(t, entry)

			// The agent restarts over the same cache.
			m2 := New(m.cfg, fe)
			mustLoad(t, m2)
			pn := testPod()
			if _, err := m2.CachedResult(pn); !errors.Is(err, ErrUnreadableCache) || IsNotSetUp(err) || !strings.Contains(err.Error(), entry) {
				t.Errorf("CachedResult = %v, want ErrUnreadableCache naming %s", err, entry)
			}
			if err := m2.Check(context.Background(), pn); !errors.Is(err, ErrUnreadableCache) || !strings.Contains(err.Error(), entry) {
				t.Errorf("Check = %v, want ErrUnreadableCache naming %s", err, entry)
			}
			if c := fe.take(); len(c) != 0 {
				t.Errorf("plugins ran for a sandbox without a readable entry: %v", commands(c))
			}
			if res, err := m2.CachedResult(other); err != nil || len(res.IPs) != 2 {
				t.Errorf("CachedResult of the other sandbox = %v, %v", res, err)
			}

			// Teardown still releases the address, with the current config.
			if err := m2.Remove(context.Background(), pn); err != nil {
				t.Fatalf("Remove: %v", err)
			}
			if got, want := commands(fe.take()), []string{"DEL bandwidth", "DEL portmap", "DEL bridge"}; !reflect.DeepEqual(got, want) {
				t.Errorf("Remove ran %v, want %v", got, want)
			}
			if _, err := os.Stat(otherEntry); err != nil {
				t.Errorf("the other sandbox's entry: %v", err)
			}
		})
	}
}

// TestCorruptConfFile: a damaged file in the conf dir is named and
// skipped; the next valid file is used.
func TestCorruptConfFile(t *testing.T) {
	m, _, confDir := testManager(t, map[string]string{
		"10-truncated.conflist": bridgeList("broken", "cni0")[:40],
		"11-empty.conflist":     "",
		"12-garbage.conf":       "\x00\xffgarbage",
		"20-net.conflist":       bridgeList("podnet", "cni0"),
	})
	if err := os.Mkdir(filepath.Join(confDir, "15-dir.conflist"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustLoad(t, m)
	if list, err := m.current(); err != nil || list.Name != "podnet" {
		t.Fatalf("loaded %v, %v; want podnet", list, err)
	}

	// Nothing valid: not ready, and the error names every file.
	m, _, _ = testManager(t, map[string]string{"10-truncated.conflist": bridgeList("broken", "cni0")[:40], "11-empty.conf": ""})
	err := m.Load(context.Background())
	if !IsNotReady(err) || !strings.Contains(err.Error(), "10-truncated.conflist") || !strings.Contains(err.Error(), "11-empty.conf") {
		t.Fatalf("Load = %v, want not ready naming both files", err)
	}
}
