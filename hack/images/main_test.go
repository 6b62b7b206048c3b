package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// needHost skips the test when a host file the builders copy is missing
// (busybox-static, dash, bash and hostname are there on the harness host).
func needHost(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("host has no %s: %v", p, err)
		}
	}
}

// entry is what a test reads of a file in an image: its type, mode,
// link target and contents.
type entry struct {
	typ      byte
	mode     int64
	linkname string
	data     []byte
}

// readImage loads the image tagged ref from the docker archive file and
// returns its config and its files with the layers applied in order (a
// later entry replaces an earlier one of the same name, as unpacking does).
func readImage(t *testing.T, file, ref string) (*v1.ConfigFile, map[string]entry) {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(file, &tag)
	if err != nil {
		t.Fatalf("load %s from %s: %v", ref, file, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]entry{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = entry{typ: h.Typeflag, mode: h.Mode, linkname: h.Linkname, data: data}
		}
		rc.Close()
	}
	return cf, files
}

func TestNonroot(t *testing.T) {
	needHost(t, "/bin/busybox")
	dir := t.TempDir()
	if err := runNonroot("/bin/busybox", dir); err != nil {
		t.Fatal(err)
	}
	cf, files := readImage(t, filepath.Join(dir, "nonroot.tar"), "registry.k8s.io/e2e-test-images/nonroot:1.5")
	if cf.Config.User != "1234" {
		t.Errorf("user %q, want 1234 (the spec expects `id -u` to print it)", cf.Config.User)
	}
	if !slices.Equal(cf.Config.Cmd, []string{"/bin/sh"}) || len(cf.Config.Entrypoint) != 0 {
		t.Errorf("entrypoint %q cmd %q, want upstream's cmd /bin/sh", cf.Config.Entrypoint, cf.Config.Cmd)
	}
	if e, ok := files["bin/id"]; !ok || e.typ != tar.TypeSymlink || e.linkname != "busybox" {
		t.Errorf("bin/id: %+v, want the busybox applet the spec runs", e)
	}
}

func TestGlibcDNSTesting(t *testing.T) {
	needHost(t, "/bin/busybox", "/bin/dash", "/bin/bash", "/bin/hostname")
	dir := t.TempDir()
	if err := runGlibcDNSTesting("/bin/busybox", dir); err != nil {
		t.Fatal(err)
	}
	cf, files := readImage(t, filepath.Join(dir, "glibc-dns-testing.tar"), "registry.k8s.io/e2e-test-images/glibc-dns-testing:2.0.0")
	if !slices.Equal(cf.Config.Cmd, []string{"bash"}) || cf.Config.User != "" {
		t.Errorf("cmd %q user %q, want upstream's cmd bash as root", cf.Config.Cmd, cf.Config.User)
	}
	// The host's programs replace busybox's applet links: sh must not be
	// busybox (its ash runs the hostname applet before PATH).
	for path, src := range map[string]string{"bin/hostname": "/bin/hostname", "bin/sh": "/bin/dash", "bin/bash": "/bin/bash"} {
		want, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		e := files[path]
		if e.typ != tar.TypeReg || e.mode != 0o755 || !bytes.Equal(e.data, want) {
			t.Errorf("%s: type %q mode %o, %d bytes; want %s, mode 755", path, e.typ, e.mode, len(e.data), src)
		}
	}
	for _, bin := range []string{"/bin/hostname", "/bin/dash", "/bin/bash"} {
		libs, err := lddPaths(bin)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range libs {
			if e, ok := files[l[1:]]; !ok || e.typ != tar.TypeReg {
				t.Errorf("%s needs %s, not in the image as a file", bin, l)
			}
		}
	}
	if e := files["etc/nsswitch.conf"]; e.typ != tar.TypeReg || e.mode != 0o644 || string(e.data) != "hosts: files dns\n" {
		t.Errorf("etc/nsswitch.conf: type %q mode %o %q, want `hosts: files dns`", e.typ, e.mode, e.data)
	}
}
