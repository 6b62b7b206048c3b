package podsync

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSubPathWithin(t *testing.T) {
	root := t.TempDir()
	vol := filepath.Join(root, "vol")
	outside := filepath.Join(root, "outside")
	for _, d := range []string{filepath.Join(vol, "data"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Links a container could plant in a shared volume.
	if err := os.Symlink(outside, filepath.Join(vol, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("data", filepath.Join(vol, "inside")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sub, want, err string
	}{
		{"data", filepath.Join(vol, "data"), ""},
		{"new/dir", filepath.Join(vol, "new/dir"), ""},
		{"inside", filepath.Join(vol, "inside"), ""},
		{"escape", "", "outside the volume"},
		{"escape/sub", "", "outside the volume"},
	} {
		got, err := subPathWithin(vol, tc.sub)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %q, %v; want error %q", tc.sub, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.sub, got, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "sub")); !os.IsNotExist(err) {
		t.Errorf("a directory was created outside the volume: %v", err)
	}
}
