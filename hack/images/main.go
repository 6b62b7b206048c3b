// Command images builds the container images the harness needs without a
// registry: a busybox image, made of the host's busybox-static binary with
// every applet linked, and a pause image, the busybox layer and /pause (the
// pause program of ./pause, built static) as entrypoint and user
// 65535:65535, as upstream's image has them. It writes docker-archive
// tarballs that `ctr images import` loads. Run it from this directory (as
// hack/cluster.sh does): it builds ./pause with the go command.
//
// With -agnhost BINARY and/or -nonewprivs BINARY it writes only the upstream
// e2e images for make conformance instead:
//   - agnhost.tar: /agnhost (entrypoint, default arg pause) and a second
//     name for it, /agnhost-2 (the Containers specs override the command
//     with it), over the busybox layer, plus the host's curl,
//     netcat-openbsd (as /bin/nc), dash (as /bin/sh) and bash with the shared
//     libraries ldd names, at the same paths, and agnhost's test TLS pair
//     /localhost.crt and /localhost.key from -porter DIR (upstream's
//     test/images/agnhost/porter, of the k8s.io/kubernetes module agnhost
//     is built from), which the upstream image ADDs: the https lifecycle
//     hook specs run `agnhost netexec --tls-cert-file /localhost.crt`.
//   - nonewprivs.tar: the busybox layer and the nonewprivs binary (which
//     prints its effective uid) setuid root as /usr/local/bin/nnp, default
//     command nnp, as the upstream image has it.
//
// With -nonroot and/or -glibc-dns-testing (no binary to give: the busybox
// layer and host tools) it writes these upstream e2e images of make
// conformance too, likewise instead of pause and busybox:
//   - nonroot.tar: the busybox layer with user 1234 and command /bin/sh, as
//     the upstream image (a Debian base with USER 1234) has them; the
//     runAsNonRoot spec "should run with an image specified user ID" runs
//     `id -u` in it as the image's user.
//   - glibc-dns-testing.tar: the busybox layer plus the host's hostname
//     (Debian's, glibc), dash as /bin/sh and bash with the shared
//     libraries ldd names, and an /etc/nsswitch.conf of `hosts: files dns`,
//     so that `hostname -f` resolves the pod's name through glibc and the
//     /etc/hosts the agent mounts, as in upstream's Debian-based image; the
//     HostnameOverride specs run `sh -c "echo $(hostname)';'$(hostname -f)';'"`.
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
	agnhost := flag.String("agnhost", "", "path of an agnhost binary: build agnhost.tar (and no pause or busybox image)")
	porter := flag.String("porter", "", "with -agnhost: directory of agnhost's localhost.crt and localhost.key (k8s.io/kubernetes test/images/agnhost/porter)")
	nonewprivs := flag.String("nonewprivs", "", "path of a static nonewprivs binary: build nonewprivs.tar (and no pause or busybox image)")
	nonroot := flag.Bool("nonroot", false, "build nonroot.tar (and no pause or busybox image)")
	glibcDNS := flag.Bool("glibc-dns-testing", false, "build glibc-dns-testing.tar from the host's hostname, dash and bash (and no pause or busybox image)")
	flag.Parse()
	var err error
	switch {
	case *agnhost != "" && *porter == "":
		err = fmt.Errorf("-agnhost needs -porter: the image carries /localhost.crt and /localhost.key")
	case *agnhost != "":
		err = runAgnhost(*busybox, *agnhost, *porter, *out)
	}
	if err == nil && *nonewprivs != "" {
		err = runNonewprivs(*busybox, *nonewprivs, *out)
	}
	if err == nil && *nonroot {
		err = runNonroot(*busybox, *out)
	}
	if err == nil && *glibcDNS {
		err = runGlibcDNSTesting(*busybox, *out)
	}
	if *agnhost == "" && *nonewprivs == "" && !*nonroot && !*glibcDNS {
		err = run(*busybox, *out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

// run writes pause.tar and busybox.tar. The pause image keeps the busybox
// layer under /pause: upstream's has /pause only, but the e2e test of an
// image change (test/e2e TestContainerImageChanged) runs sh in it. Its
// user is upstream's 65535:65535: containerd runs the sandbox's pause as
// the image's user unless the pod sets runAsUser, and pause needs no
// privilege to wait for signals and reap the children the kernel hands it.
func run(busybox, out string) error {
	layer, err := busyboxLayer(busybox)
	if err != nil {
		return err
	}
	pause, err := pauseLayer()
	if err != nil {
		return err
	}
	images := []struct {
		file   string
		tags   []string
		cfg    v1.Config
		layers []v1.Layer
	}{
		{"pause.tar", []string{"registry.k8s.io/pause:3.10.2"},
			v1.Config{Entrypoint: []string{"/pause"}, User: "65535:65535", Env: []string{"PATH=/bin"}},
			[]v1.Layer{layer, pause}},
		{"busybox.tar", []string{"registry.k8s.io/e2e-test-images/busybox:1.37.0-1", "docker.io/library/busybox:1.37"},
			v1.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
			[]v1.Layer{layer}},
	}
	for _, im := range images {
		if err := writeImage(out+"/"+im.file, im.tags, im.cfg, im.layers...); err != nil {
			return err
		}
	}
	return nil
}

// pauseLayer builds the pause program of ./pause as a static linux/amd64
// binary (the images are amd64) in a temporary directory and makes a layer
// of it as /pause.
func pauseLayer() (v1.Layer, error) {
	dir, err := os.MkdirTemp("", "pause-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := dir + "/pause"
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w", "-o", bin, "./pause")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("build ./pause: %w", err)
	}
	// filesLayer reads the binary now, before the directory goes.
	return filesLayer([]layerFile{{name: "pause", src: bin, mode: 0o755}})
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

func runAgnhost(busybox, agnhost, porter, out string) error {
	base, err := busyboxLayer(busybox)
	if err != nil {
		return err
	}
	// Image path -> host path. /bin/nc replaces busybox's nc applet, which
	// has no -u (the node-pod UDP spec runs `sh -c "... | nc -w 1 -u ..."`).
	// Debian's busybox ash runs its own applets before anything in PATH
	// (FEATURE_SH_STANDALONE), so /bin/sh is Debian's dash here, or that
	// spec's sh would still run the applet.
	// /bin/bash as the upstream image (Debian-based) has it: specs run
	// `/bin/bash -c` in agnhost (the probe spec "should mark readiness on
	// pods to false ... while pod is in progress of terminating").
	files := map[string]string{"agnhost": agnhost, "usr/bin/curl": "/usr/bin/curl", "bin/nc": "/bin/nc.openbsd", "bin/sh": "/bin/dash", "bin/bash": "/bin/bash"}
	for _, bin := range []string{"/usr/bin/curl", "/bin/nc.openbsd", "/bin/dash", "/bin/bash"} {
		libs, err := lddPaths(bin)
		if err != nil {
			return err
		}
		for _, l := range libs {
			files[strings.TrimPrefix(l, "/")] = l
		}
	}
	entries := make([]layerFile, 0, len(files)+1)
	for p, src := range files {
		entries = append(entries, layerFile{name: p, src: src, mode: 0o755})
	}
	// The upstream image's ADD porter/localhost.crt and .key: a test
	// certificate for localhost and its key, mode 0644 as in the source.
	for _, f := range []string{"localhost.crt", "localhost.key"} {
		entries = append(entries, layerFile{name: f, src: porter + "/" + f, mode: 0o644})
	}
	// The upstream image copies /agnhost to /agnhost-2; a hard link is the
	// same file under a second name without a second 60 MB in the layer.
	entries = append(entries, layerFile{name: "agnhost-2", link: "agnhost", mode: 0o755})
	extra, err := filesLayer(entries)
	if err != nil {
		return err
	}
	cfg := v1.Config{Entrypoint: []string{"/agnhost"}, Cmd: []string{"pause"},
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}
	return writeImage(out+"/agnhost.tar", []string{"registry.k8s.io/e2e-test-images/agnhost:2.63.0"}, cfg, base, extra)
}

// runNonewprivs writes nonewprivs.tar, the image of the Security Context
// AllowPrivilegeEscalation specs: they run its default command as uid 1000
// and read "Effective uid: N" from the log, 0 when the setuid bit took
// effect, 1000 when no_new_privs kept it from doing so. The upstream image
// is alpine with the binary setuid root as /usr/local/bin/nnp; the busybox
// layer stands in for alpine here.
func runNonewprivs(busybox, nonewprivs, out string) error {
	base, err := busyboxLayer(busybox)
	if err != nil {
		return err
	}
	extra, err := filesLayer([]layerFile{{name: "usr/local/bin/nnp", src: nonewprivs, mode: 0o4755}})
	if err != nil {
		return err
	}
	cfg := v1.Config{Cmd: []string{"nnp"},
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}
	return writeImage(out+"/nonewprivs.tar", []string{"registry.k8s.io/e2e-test-images/nonewprivs:1.4"}, cfg, base, extra)
}

// runNonroot writes nonroot.tar, the image of the runAsNonRoot spec "should
// run with an image specified user ID": it runs `id -u` with runAsNonRoot
// and no runAsUser, so the agent must take the user from the image, and
// expects 1234. Upstream's image is its Debian base (command /bin/sh) with
// USER 1234; the busybox layer stands in for the base, which is all `id`
// needs. No /etc/passwd entry names 1234, in upstream's image neither.
func runNonroot(busybox, out string) error {
	base, err := busyboxLayer(busybox)
	if err != nil {
		return err
	}
	cfg := v1.Config{User: "1234", Cmd: []string{"/bin/sh"},
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}
	return writeImage(out+"/nonroot.tar", []string{"registry.k8s.io/e2e-test-images/nonroot:1.5"}, cfg, base)
}

// runGlibcDNSTesting writes glibc-dns-testing.tar, the image of the
// HostnameOverride specs: they run `sh -c "echo $(hostname)';'$(hostname
// -f)';'"` and expect the override twice, so hostname -f must resolve the
// pod's hostname through glibc's resolver and the /etc/hosts the agent
// mounts. Upstream's image is debian:bookworm-slim (command bash) with
// dnsutils and a coredns binary, so the spec runs Debian's hostname
// program (its README: hostname behaves differently between glibc and musl,
// upstream issue 134737). Here it is the busybox layer for the other tools
// plus:
//   - the host's /bin/hostname (Debian's hostname package, glibc) with its
//     shared libraries, over busybox's applet link;
//   - dash as /bin/sh, as in the agnhost image: Debian's busybox ash runs
//     its own applets before anything in PATH (FEATURE_SH_STANDALONE), so
//     the spec's `sh -c` would run busybox's hostname applet instead;
//   - bash, the command of upstream's image;
//   - /etc/nsswitch.conf with `hosts: files dns`, Debian's line: the
//     order of /etc/hosts and DNS is the image's, not the default of
//     whichever glibc (2.36 defaults to the same, older ones to DNS first).
//     The files and dns modules are part of libc.so.6 since glibc 2.34
//     (Debian 12's libnss_files.so.2 and libnss_dns.so.2 are empty
//     compatibility stubs), so no libnss_* file is copied.
//
// dig, nslookup and coredns are left out: the DNS specs that use them need
// a cluster DNS, which this harness does not run.
func runGlibcDNSTesting(busybox, out string) error {
	base, err := busyboxLayer(busybox)
	if err != nil {
		return err
	}
	// Image path -> host path.
	files := map[string]string{"bin/hostname": "/bin/hostname", "bin/sh": "/bin/dash", "bin/bash": "/bin/bash"}
	for _, bin := range []string{"/bin/hostname", "/bin/dash", "/bin/bash"} {
		libs, err := lddPaths(bin)
		if err != nil {
			return err
		}
		for _, l := range libs {
			files[strings.TrimPrefix(l, "/")] = l
		}
	}
	entries := make([]layerFile, 0, len(files)+1)
	for p, src := range files {
		entries = append(entries, layerFile{name: p, src: src, mode: 0o755})
	}
	entries = append(entries, layerFile{name: "etc/nsswitch.conf", data: []byte("hosts: files dns\n"), mode: 0o644})
	extra, err := filesLayer(entries)
	if err != nil {
		return err
	}
	cfg := v1.Config{Cmd: []string{"bash"},
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}
	return writeImage(out+"/glibc-dns-testing.tar", []string{"registry.k8s.io/e2e-test-images/glibc-dns-testing:2.0.0"}, cfg, base, extra)
}

// layerFile is one entry of filesLayer: a regular file with the contents of
// the host file src (symlinks followed), or with data when src is empty,
// and the given mode; or, when link is set, a hard link to the entry named
// link. A link's mode must be its target's: containerd's unpacking chmods
// the link's path, hence the shared inode, to the mode of the link's header.
type layerFile struct {
	name, src, link string
	data            []byte
	mode            int64
}

// filesLayer makes one layer of the given files, with their parent
// directories (mode 0755) ahead of them. Regular files come first, sorted
// by name, then the hard links, so that each link's target precedes it.
func filesLayer(files []layerFile) (v1.Layer, error) {
	sorted := append([]layerFile(nil), files...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if (sorted[i].link == "") != (sorted[j].link == "") {
			return sorted[i].link == ""
		}
		return sorted[i].name < sorted[j].name
	})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mod := time.Unix(0, 0)
	dirs := map[string]bool{}
	for _, f := range sorted {
		// Parent directories first (bin/, usr/ and usr/bin/ are in the
		// busybox layer already; writing them again is harmless).
		parts := strings.Split(f.name, "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/") + "/"
			if !dirs[d] {
				dirs[d] = true
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: mod}); err != nil {
					return nil, err
				}
			}
		}
		if f.link != "" {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: f.name, Linkname: f.link, Mode: f.mode, ModTime: mod}); err != nil {
				return nil, err
			}
			continue
		}
		data := f.data
		if f.src != "" {
			var err error
			if data, err = os.ReadFile(f.src); err != nil { // follows symlinks: the real library
				return nil, err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(data)), ModTime: mod}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
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
