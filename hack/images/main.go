// Command images builds the container images the harness needs without a
// registry: a pause image and a busybox image, both made of the host's
// busybox-static binary with every applet linked. It writes docker-archive
// tarballs that `ctr images import` loads.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
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
	flag.Parse()
	if err := run(*busybox, *out); err != nil {
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
		img, err := mutate.AppendLayers(empty.Image, layer)
		if err != nil {
			return err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return err
		}
		cf = cf.DeepCopy()
		cf.Architecture, cf.OS, cf.Config = "amd64", "linux", im.cfg
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			return err
		}
		refs := map[name.Reference]v1.Image{}
		for _, t := range im.tags {
			tag, err := name.NewTag(t)
			if err != nil {
				return err
			}
			refs[tag] = img
		}
		if err := tarball.MultiRefWriteToFile(out+"/"+im.file, refs); err != nil {
			return fmt.Errorf("write %s: %w", im.file, err)
		}
	}
	return nil
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
