package staticpods

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

const webManifest = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: busybox:1.37}]\n"

// TestReadCorruptManifests: every damaged file is named in a warning and
// skipped, none blocks or panics, and the good manifest is read.
func TestReadCorruptManifests(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("web.yaml", webManifest)
	write("truncated.yaml", webManifest[:len(webManifest)/2])
	write("empty.yaml", "")
	write("garbage.yaml", "\x00\xff\xfe{{[[")
	if err := os.Mkdir(filepath.Join(dir, "subdir.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "nowhere"), filepath.Join(dir, "dangling.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(t.TempDir(), filepath.Join(dir, "linkdir.yaml")); err != nil {
		t.Fatal(err)
	}
	// Opening a FIFO for reading blocks until a writer comes.
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}

	done := make(chan struct{})
	var pods []*v1.Pod
	var warnings []string
	go func() {
		defer close(done)
		pods, warnings = Read(dir, "node1")
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Read blocks")
	}
	if len(pods) != 1 || pods[0].Name != "web-node1" {
		t.Fatalf("pods = %v, want web-node1 only", pods)
	}
	for _, name := range []string{"truncated.yaml", "empty.yaml", "garbage.yaml", "dangling.yaml", "fifo.yaml"} {
		found := false
		for _, w := range warnings {
			found = found || strings.Contains(w, filepath.Join(dir, name))
		}
		if !found {
			t.Errorf("no warning names %s: %q", name, warnings)
		}
	}
	if len(warnings) != 5 {
		t.Errorf("warnings = %q, want the five bad files", warnings)
	}
	for _, name := range []string{"web.yaml", "truncated.yaml", "empty.yaml", "garbage.yaml", "subdir.yaml", "dangling.yaml", "linkdir.yaml", "fifo.yaml"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestWatchKeepsPodOfHalfWrittenManifest: a manifest that stops parsing
// keeps its pod until it parses again or goes; a directory that cannot be
// read keeps every pod.
func TestWatchKeepsPodOfHalfWrittenManifest(t *testing.T) {
	// The directory is reached through a link, so that a test step can
	// swap it atomically.
	root := t.TempDir()
	real := filepath.Join(root, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "manifests")
	pointTo := func(target string) {
		t.Helper()
		tmp := filepath.Join(root, "tmp")
		if err := os.Symlink(target, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, dir); err != nil {
			t.Fatal(err)
		}
	}
	pointTo(real)
	path := filepath.Join(real, "web.yaml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(webManifest)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	updates := make(chan []*v1.Pod, 16)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		Watch(ctx, dir, "node1", 10*time.Millisecond, func(p []*v1.Pod) { updates <- p })
	}()
	defer func() {
		cancel()
		<-stopped
	}()
	next := func() []*v1.Pod {
		t.Helper()
		select {
		case p := <-updates:
			return p
		case <-time.After(10 * time.Second):
			t.Fatal("no update")
			return nil
		}
	}
	quiet := func(what string) {
		t.Helper()
		select {
		case p := <-updates:
			t.Fatalf("%s: update with %d pods", what, len(p))
		case <-time.After(200 * time.Millisecond):
		}
	}
	first := next()
	if len(first) != 1 {
		t.Fatalf("first update: %d pods", len(first))
	}

	write(webManifest[:len(webManifest)/2])
	quiet("half-written manifest")
	write("")
	quiet("emptied manifest")

	// A file in the directory's place: reading it fails (ENOTDIR), which
	// does not mean "no manifests".
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	pointTo(file)
	quiet("unreadable directory")
	pointTo(real)

	write(webManifest)
	quiet("the same manifest again")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if p := next(); len(p) != 0 {
		t.Fatalf("after removing the manifest: %d pods", len(p))
	}
}
