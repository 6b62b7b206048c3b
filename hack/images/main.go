// Command images builds the container images the harness needs without a
// registry: a pause image and a busybox image, both made of the host's
// busybox-static binary with every applet linked. It writes docker-archive
// tarballs that `ctr images import` loads.
//
// With -agnhost BINARY it writes only agnhost.tar instead, the upstream e2e
// image for make conformance: /agnhost (entrypoint, default arg pause) over
// the busybox layer, plus the host's curl, netcat-openbsd (as /bin/nc) and
// dash (as /bin/sh) with the shared libraries ldd names, at the same paths.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	busybox := flag.String("busybox", "/bin/busybox", "path of a static busybox binary")
	out := flag.String("out", ".", "output directory")
	agnhost := flag.String("agnhost", "", "path of an agnhost binary: build only agnhost.tar")
	flag.Parse()
	var err error
	if *agnhost != "" {
		err = runAgnhost(*busybox, *agnhost, *out)
	} else {
		err = run(*busybox, *out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func run(busybox, out string) error {
	layer, err := busyboxLayer(busybox)
	if err != nil {
		return err
	}
	images := []struct {
		file string
		tags []string
		cfg  v1.Config
	}{
		{"pause.tar", []string{"registry.k8s.io/pause:3.10.2"},
			v1.Config{Entrypoint: []string{"/bin/sleep"}, Cmd: []string{"infinity"}, Env: []string{"PATH=/bin"}}},
		{"busybox.tar", []string{"registry.k8s.io/e2e-test-images/busybox:1.37.0-1", "docker.io/library/busybox:1.37"},
			v1.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}},
	}
	for _, im := range images {
		if err := writeImage(out+"/"+im.file, im.tags, im.cfg, layer); err != nil {
			return err
		}
	}
	return nil
}

func writeImage(file string, tags []string, cfg v1.Config, layers ...v1.Layer) error {
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Config = "amd64", "linux", cfg
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	refs := map[name.Reference]v1.Image{}
	for _, t := range tags {
		tag, err := name.NewTag(t)
		if err != nil {
			return err
		}
		refs[tag] = img
	}
	if err := tarball.MultiRefWriteToFile(file, refs); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}

func runAgnhost(busybox, agnhost, out string) error {
	base, err := busyboxLayer(busybox)
	if err != nil {
		return err
	}
	// Image path -> host path. /bin/nc replaces busybox's nc applet, which
	// has no -u (the node-pod UDP spec runs `sh -c "... | nc -w 1 -u ..."`).
	// Debian's busybox ash runs its own applets before anything in PATH
	// (FEATURE_SH_STANDALONE), so /bin/sh is Debian's dash here, or that
	// spec's sh would still run the applet.
	files := map[string]string{"agnhost": agnhost, "usr/bin/curl": "/usr/bin/curl", "bin/nc": "/bin/nc.openbsd", "bin/sh": "/bin/dash"}
	for _, bin := range []string{"/usr/bin/curl", "/bin/nc.openbsd", "/bin/dash"} {
		libs, err := lddPaths(bin)
		if err != nil {
			return err
		}
		for _, l := range libs {
			files[strings.TrimPrefix(l, "/")] = l
		}
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mod := time.Unix(0, 0)
	dirs := map[string]bool{}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		// Parent directories first (bin/, usr/ and usr/bin/ are in the
		// busybox layer already; writing them again is harmless).
		parts := strings.Split(p, "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/") + "/"
			if !dirs[d] {
				dirs[d] = true
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: mod}); err != nil {
					return err
				}
			}
		}
		data, err := os.ReadFile(files[p]) // follows symlinks: the real library
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: 0o755, Size: int64(len(data)), ModTime: mod}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	data := buf.Bytes()
	extra, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		return err
	}
	cfg := v1.Config{Entrypoint: []string{"/agnhost"}, Cmd: []string{"pause"},
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}
	return writeImage(out+"/agnhost.tar", []string{"registry.k8s.io/e2e-test-images/agnhost:2.63.0"}, cfg, base, extra)
}

// lddPaths lists the absolute paths of the shared libraries (and the
// dynamic loader) that ldd names for bin.
func lddPaths(bin string) ([]string, error) {
	o, err := exec.Command("ldd", bin).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", bin, err)
	}
	var paths []string
	for _, line := range strings.Split(string(o), "\n") {
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, "/") {
				paths = append(paths, f)
				break
			}
		}
	}
	return paths, nil
}

// busyboxLayer makes one layer: /bin/busybox, a link per applet, /tmp with
// mode 1777 and minimal /etc files.
func busyboxLayer(busybox string) (v1.Layer, error) {
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return nil, err
	}
	list, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mod := time.Unix(0, 0)
	dir := func(name string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: mod})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: mod}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []string{"bin/", "etc/", "usr/", "usr/bin/", "usr/sbin/", "sbin/", "root/", "var/", "proc/", "sys/", "dev/", "home/"} {
		if err := dir(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := dir("tmp/", 0o1777); err != nil {
		return nil, err
	}
	if err := file("bin/busybox", 0o755, bin); err != nil {
		return nil, err
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet == "busybox" {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + applet, Linkname: "busybox", ModTime: mod, Mode: 0o777}); err != nil {
			return nil, err
		}
	}
	if err := file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")); err != nil {
		return nil, err
	}
	if err := file("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}
