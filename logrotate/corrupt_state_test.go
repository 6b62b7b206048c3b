package logrotate

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestRotateGarbageInLogDir: what a crash, or a pod that mounts the pod
// logs directory, leaves beside a container's log is never followed nor
// read: links, a FIFO and a directory named like rotated files, a
// truncated .gz. A link in the way of the compression's temporary file
// stops that compression with an error; its target is not written.
func TestRotateGarbageInLogDir(t *testing.T) {
	e := newEnv(t, 5)
	host := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(host, []byte("host data"), 0o600); err != nil {
		t.Fatal(err)
	}
	older := "0.log.20240506-060000"
	e.write(t, filepath.Join(e.dir, older), "an older rotation\n")
	plant := map[string]func(p string) error{
		older + ".tmp":             func(p string) error { return os.Symlink(host, p) },
		"0.log.20240506-050000":    func(p string) error { return os.Symlink(host, p) },
		"0.log.20240506-040000":    func(p string) error { return syscall.Mkfifo(p, 0o644) },
		"0.log.20240506-030000":    func(p string) error { return os.Mkdir(p, 0o755) },
		"0.log.20240506-020000.gz": func(p string) error { return os.WriteFile(p, []byte("\x1f\x8b\x08trunc"), 0o644) },
	}
	for name, f := range plant {
		if err := f(filepath.Join(e.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	e.write(t, e.path, "a line past the limit\n")

	done := make(chan struct{})
	go func() {
		defer close(done)
		e.rotate(t)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("rotation blocks")
	}
	if b, _ := os.ReadFile(host); string(b) != "host data" {
		t.Errorf("written through a link: %q", b)
	}
	for name := range plant {
		if _, err := os.Lstat(filepath.Join(e.dir, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got := read(t, filepath.Join(e.dir, older)); got != "an older rotation\n" {
		t.Errorf("%s: %q", older, got)
	}
}
