package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadCorruptConfigFile: a damaged config file is an error that starts
// with its path, never a panic nor a config of defaults. The file is the
// administrator's, not state of the agent: the agent refuses to start with
// it, as the kubelet does, and leaves it as it is.
func TestLoadCorruptConfigFile(t *testing.T) {
	full := header + "port: 11250\nauthorization:\n  mode: AlwaysAllow\nclusterDNS: [10.96.0.10]\n"
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
	}{
		{"zero length", func(t *testing.T, p string) { write(t, p, "") }},
		{"truncated in the header", func(t *testing.T, p string) { write(t, p, full[:20]) }},
		{"truncated in a value", func(t *testing.T, p string) { write(t, p, strings.TrimSuffix(full, "10.96.0.10]\n")+"10.96") }},
		{"garbage", func(t *testing.T, p string) { write(t, p, "\x00\xff\xfe\x01garbage{{") }},
		{"NUL bytes", func(t *testing.T, p string) { write(t, p, strings.Repeat("\x00", 4096)) }},
		{"directory", func(t *testing.T, p string) {
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{"dangling symlink", func(t *testing.T, p string) {
			if err := os.Symlink(filepath.Join(filepath.Dir(p), "nowhere"), p); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "config.yaml")
			tc.setup(t, p)
			for name, load := range map[string]func(string) error{
				"Load":    func(p string) error { _, _, err := Load(p); return err },
				"loadRaw": func(p string) error { _, _, err := loadRaw(p); return err },
			} {
				err := load(p)
				if err == nil || !strings.HasPrefix(err.Error(), "config file "+p+": ") {
					t.Errorf("%s = %v, want an error starting with the path", name, err)
				}
			}
			if _, err := os.Lstat(p); err != nil {
				t.Errorf("the file is gone: %v", err)
			}
		})
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
