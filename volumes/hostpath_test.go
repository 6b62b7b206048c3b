package volumes

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestSetupHostPath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	typ := func(t v1.HostPathType) *v1.HostPathType { return &t }
	for _, tc := range []struct {
		path string
		typ  *v1.HostPathType
		err  string
	}{
		{dir, nil, ""},
		{filepath.Join(dir, "missing"), nil, ""},
		{dir, typ(v1.HostPathDirectory), ""},
		{file, typ(v1.HostPathDirectory), "is not a directory"},
		{filepath.Join(dir, "missing"), typ(v1.HostPathDirectory), "does not exist"},
		{filepath.Join(dir, "made/deep"), typ(v1.HostPathDirectoryOrCreate), ""},
		{file, typ(v1.HostPathDirectoryOrCreate), "is not a directory"},
		{file, typ(v1.HostPathFile), ""},
		{dir, typ(v1.HostPathFile), "is not a file"},
		{filepath.Join(dir, "newfile"), typ(v1.HostPathFileOrCreate), ""},
		{sock, typ(v1.HostPathSocket), ""},
		{file, typ(v1.HostPathSocket), "is not a socket"},
		{"/dev/null", typ(v1.HostPathCharDev), ""},
		{file, typ(v1.HostPathBlockDev), "is not a block device"},
		{"relative", nil, "not an absolute path"},
	} {
		got, err := setupHostPath(&v1.HostPathVolumeSource{Path: tc.path, Type: tc.typ})
		name := tc.path
		if tc.typ != nil {
			name += " " + string(*tc.typ)
		}
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %q, %v; want error %q", name, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != filepath.Clean(tc.path) {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
	if info, err := os.Stat(filepath.Join(dir, "made/deep")); err != nil || !info.IsDir() {
		t.Errorf("DirectoryOrCreate did not create the directory: %v", err)
	}
	if info, err := os.Stat(filepath.Join(dir, "newfile")); err != nil || !info.Mode().IsRegular() {
		t.Errorf("FileOrCreate did not create the file: %v", err)
	}
}
