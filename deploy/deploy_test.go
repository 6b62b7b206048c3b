// Package deploy holds the files that run nodeagent outside its harness:
// systemd/ (the unit and default config `make install` installs) and
// daemonset/ (the manifest that takes over a node of an existing cluster).
// Its tests check them without root: the unit with systemd-analyze, make
// build and make install into a temporary DESTDIR, the manifest decoded
// strictly into the API types. test/e2e/deploy_test.go applies the
// manifest to the harness's apiserver with --dry-run=server.
package deploy

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/nodeagent/nodeagent/version"
)

// The kubeadm drop-in's lines (10-kubeadm.conf of the kubelet's packages)
// and the unit's other promises.
var unitLines = []string{
	`Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"`,
	`Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"`,
	`EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env`,
	`EnvironmentFile=-/etc/default/kubelet`,
	`ExecStart=/usr/bin/nodeagent $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS`,
	`Restart=always`,
	`KillMode=process`,
	`After=network-online.target containerd.service crio.service`,
	`Conflicts=kubelet.service`,
	`WantedBy=multi-user.target`,
}

func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("systemd/nodeagent.service")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, l := range strings.Split(string(unit), "\n") {
		have[strings.TrimSpace(l)] = true
	}
	for _, l := range unitLines {
		if !have[l] {
			t.Errorf("the unit has no line %s", l)
		}
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found (Debian's systemd package has it; installing it starts nothing where systemd is not PID 1): the unit was not verified")
	}
	// verify wants ExecStart's binary to exist: any executable will do.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	verifyUnit(t, analyze, strings.ReplaceAll(string(unit), "/usr/bin/nodeagent", self))
}

// verifyUnit runs systemd-analyze verify on the unit text; any complaint
// about it fails the test (verify exits 0 on unknown keys).
func verifyUnit(t *testing.T, analyze, unit string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "nodeagent.service")
	if err := os.WriteFile(p, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "verify", "--man=no", p)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(out), "nodeagent") {
		t.Errorf("systemd-analyze verify %s: %v\n%s", p, err, out)
	}
}

// makeIn runs make in the repository with args and returns its stderr.
// The Makefile's variables come from args alone: not from the environment,
// nor from an outer make (`make unit FORCE=1` passes FORCE in MAKEFLAGS).
func makeIn(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("make", append([]string{"-C", "..", "--no-print-directory"}, args...)...)
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DESTDIR", "PREFIX", "BINDIR", "CNI_BIN_DIR", "UNITDIR", "KUBELET_DIR",
			"OUT_DIR", "FORCE", "GIT_COMMIT", "BUILD_DATE", "SOURCE_DATE_EPOCH", "LDFLAGS":
		default:
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stderr.String()
}

func TestMakeBuildAndInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds nodeagent")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not found")
	}
	out := filepath.Join(t.TempDir(), "out")
	makeIn(t, "build", "OUT_DIR="+out, "GIT_COMMIT=0123456789ab", "BUILD_DATE=2026-01-02T03:04:05Z")

	t.Run("static", func(t *testing.T) {
		for _, b := range []string{"nodeagent", "nodeagent-cni"} {
			assertStatic(t, filepath.Join(out, b))
		}
	})
	t.Run("--version", func(t *testing.T) {
		cmd := exec.Command(filepath.Join(out, "nodeagent"), "--version")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("nodeagent --version: %v\n%s", err, stderr.String())
		}
		if want := "Kubernetes " + version.Version + "\n"; stdout.String() != want {
			t.Errorf("stdout %q, want %q", stdout.String(), want)
		}
		if want := "nodeagent " + version.Version + " (commit 0123456789ab, built 2026-01-02T03:04:05Z, go"; !strings.HasPrefix(stderr.String(), want) {
			t.Errorf("stderr %q, want it to start with %q", stderr.String(), want)
		}
	})

	// The install target proper, without building again (-o build).
	install := func(t *testing.T, dest string, args ...string) string {
		t.Helper()
		return makeIn(t, append([]string{"-o", "build", "install", "OUT_DIR=" + out, "DESTDIR=" + dest}, args...)...)
	}
	unitSrc, err := os.ReadFile("systemd/nodeagent.service")
	if err != nil {
		t.Fatal(err)
	}
	configSrc, err := os.ReadFile("systemd/config.yaml")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("fresh", func(t *testing.T) {
		dest := t.TempDir()
		log := install(t, dest)
		assertFile(t, dest+"/usr/bin/nodeagent", 0o755, nil)
		assertFile(t, dest+"/opt/cni/bin/nodeagent-delegate", 0o755, nil)
		assertFile(t, dest+"/etc/systemd/system/nodeagent.service", 0o644, unitSrc)
		assertFile(t, dest+"/var/lib/kubelet/config.yaml", 0o644, configSrc)
		if fi, err := os.Stat(dest + "/var/lib/kubelet"); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("/var/lib/kubelet: %v, want mode 0700", fi.Mode())
		}
		if !strings.Contains(log, "Nothing was started") {
			t.Errorf("no next steps in the output:\n%s", log)
		}
		// Again: nothing differs, nothing is replaced.
		if log := install(t, dest); !strings.Contains(log, "/etc/systemd/system/nodeagent.service unchanged") ||
			!strings.Contains(log, "/var/lib/kubelet/config.yaml unchanged") {
			t.Errorf("second install:\n%s", log)
		}
	})

	t.Run("existing files kept unless FORCE=1", func(t *testing.T) {
		dest := t.TempDir()
		mine := []byte("# the administrator's\n")
		for _, p := range []string{"/etc/systemd/system/nodeagent.service", "/var/lib/kubelet/config.yaml"} {
			if err := os.MkdirAll(filepath.Dir(dest+p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dest+p, mine, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		log := install(t, dest)
		for _, p := range []string{"/etc/systemd/system/nodeagent.service", "/var/lib/kubelet/config.yaml"} {
			assertFile(t, dest+p, 0o600, mine)
			if !strings.Contains(log, p+" exists and differs: kept (FORCE=1 replaces it)") {
				t.Errorf("%s: not said to be kept:\n%s", p, log)
			}
		}
		if fi, err := os.Stat(dest + "/var/lib/kubelet"); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("an existing /var/lib/kubelet changed mode: %v", fi.Mode())
		}
		install(t, dest, "FORCE=1")
		assertFile(t, dest+"/etc/systemd/system/nodeagent.service", 0o644, unitSrc)
		assertFile(t, dest+"/var/lib/kubelet/config.yaml", 0o644, configSrc)
		assertFile(t, dest+"/etc/systemd/system/nodeagent.service.bak", 0o600, mine)
		assertFile(t, dest+"/var/lib/kubelet/config.yaml.bak", 0o600, mine)
	})

	t.Run("PREFIX", func(t *testing.T) {
		dest := t.TempDir()
		install(t, dest, "PREFIX=/usr/local")
		assertFile(t, dest+"/usr/local/bin/nodeagent", 0o755, nil)
		if _, err := os.Stat(dest + "/usr/bin/nodeagent"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("/usr/bin/nodeagent installed with PREFIX=/usr/local: %v", err)
		}
		want := strings.ReplaceAll(string(unitSrc), "/usr/bin/nodeagent", "/usr/local/bin/nodeagent")
		assertFile(t, dest+"/etc/systemd/system/nodeagent.service", 0o644, []byte(want))
	})

	t.Run("installed unit verifies", func(t *testing.T) {
		analyze, err := exec.LookPath("systemd-analyze")
		if err != nil {
			t.Skip("systemd-analyze not found")
		}
		// Without DESTDIR, every path in a temporary tree: ExecStart then
		// names the binary just installed.
		root := t.TempDir()
		makeIn(t, "-o", "build", "install", "OUT_DIR="+out, "BINDIR="+root+"/bin", "CNI_BIN_DIR="+root+"/cni",
			"UNITDIR="+root+"/units", "KUBELET_DIR="+root+"/kubelet")
		unit, err := os.ReadFile(root + "/units/nodeagent.service")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(unit), "ExecStart="+root+"/bin/nodeagent ") {
			t.Fatalf("ExecStart does not follow BINDIR:\n%s", unit)
		}
		verifyUnit(t, analyze, string(unit))
	})
}

// assertStatic fails unless the ELF file asks for no interpreter and no
// shared library (what `file` calls statically linked, `ldd` not a
// dynamic executable).
func assertStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s is dynamically linked (program header %v)", path, p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s needs %v", path, libs)
	}
}

// assertFile checks a file's mode and, unless want is nil, its content.
func assertFile(t *testing.T, path string, mode os.FileMode, want []byte) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Error(err)
		return
	}
	if fi.Mode().Perm() != mode {
		t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), mode)
	}
	if want == nil {
		return
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s: %v\n%s\nwant\n%s", path, err, got, want)
	}
}

func TestLdflagsWithoutGit(t *testing.T) {
	// A PATH with bash, dirname and date but no git.
	bin := t.TempDir()
	for _, name := range []string{"bash", "dirname", "date"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Skipf("%s not found", name)
		}
		if err := os.Symlink(p, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		env  []string
		want *regexp.Regexp
	}{
		{"no git", []string{"PATH=" + bin}, regexp.MustCompile(`^-X \S+/version\.Commit=unknown -X \S+/version\.Date=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)},
		{"not a checkout", []string{"PATH=" + os.Getenv("PATH"), "GIT_DIR=" + t.TempDir()}, regexp.MustCompile(`Commit=unknown `)},
		{"given", []string{"PATH=" + bin, "GIT_COMMIT=abc", "SOURCE_DATE_EPOCH=0"}, regexp.MustCompile(`Commit=abc -X \S+Date=1970-01-01T00:00:00Z$`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(filepath.Join(bin, "bash"), "../hack/ldflags.sh")
			cmd.Env = tt.env
			out, err := cmd.Output()
			if got := strings.TrimSpace(string(out)); err != nil || !tt.want.MatchString(got) {
				t.Errorf("hack/ldflags.sh: %v, %q, want %v", err, got, tt.want)
			}
		})
	}
}

// decodeAll decodes every document of the manifests in dir strictly: an
// unknown or duplicated field is an error, as with kubectl's server-side
// field validation.
func decodeAll(t *testing.T, dir string) []runtime.Object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	decoder := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	var objs []runtime.Object
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			obj, _, err := decoder.Decode(doc, nil, nil)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			objs = append(objs, obj)
		}
	}
	return objs
}

func TestDaemonSetManifest(t *testing.T) {
	var ns *v1.Namespace
	var ds *appsv1.DaemonSet
	for _, o := range decodeAll(t, "daemonset") {
		switch o := o.(type) {
		case *v1.Namespace:
			ns = o
		case *appsv1.DaemonSet:
			ds = o
		default:
			t.Errorf("unexpected object %T", o)
		}
	}
	if ns == nil || ds == nil {
		t.Fatalf("want a Namespace and a DaemonSet, got %v and %v", ns, ds)
	}
	if ds.Namespace != ns.Name || ns.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Errorf("DaemonSet in %q, namespace %q labelled %v", ds.Namespace, ns.Name, ns.Labels)
	}
	spec := ds.Spec.Template.Spec
	if !spec.HostNetwork || !spec.HostPID || spec.NodeSelector["nodeagent.io/agent"] != "true" {
		t.Errorf("hostNetwork %v hostPID %v nodeSelector %v", spec.HostNetwork, spec.HostPID, spec.NodeSelector)
	}
	if ds.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType {
		t.Errorf("updateStrategy %q, want OnDelete", ds.Spec.UpdateStrategy.Type)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers", len(spec.Containers))
	}
	c := spec.Containers[0]
	if c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged {
		t.Error("the agent's container is not privileged")
	}
	hostPaths := map[string]string{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	mounts := map[string]v1.VolumeMount{} // by host path
	for _, m := range c.VolumeMounts {
		hp, ok := hostPaths[m.Name]
		if !ok {
			t.Errorf("mount %s is not a hostPath", m.Name)
		}
		if hp != m.MountPath && !strings.HasPrefix(m.MountPath, "/host/") {
			t.Errorf("host %s mounted at %s: the agent must see host paths where they are", hp, m.MountPath)
		}
		mounts[hp] = m
	}
	bidirectional := v1.MountPropagationBidirectional
	for hp, prop := range map[string]*v1.MountPropagationMode{
		"/run/containerd": nil, "/var/lib/kubelet": &bidirectional, "/var/lib/nodeagent": &bidirectional,
		"/var/log/pods": nil, "/etc/cni": nil, "/opt/cni/bin": nil, "/etc/kubernetes": nil, "/sys/fs/cgroup": nil,
	} {
		m, ok := mounts[hp]
		if !ok {
			t.Errorf("%s not mounted", hp)
			continue
		}
		if prop != nil && (m.MountPropagation == nil || *m.MountPropagation != *prop) {
			t.Errorf("%s: propagation %v, want %s", hp, m.MountPropagation, *prop)
		}
	}

	// The scripts parse, and the agent's runs nodeagent only after its wait.
	sh := shell(t)
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		if len(c.Command) != 3 || c.Command[0] != "/bin/sh" || c.Command[1] != "-c" {
			t.Errorf("%s: command %q, want /bin/sh -c SCRIPT", c.Name, c.Command)
			continue
		}
		if out, err := exec.Command(sh[0], append(sh[1:], "-n", "-c", c.Command[2])...).CombinedOutput(); err != nil {
			t.Errorf("%s: script does not parse: %v\n%s", c.Name, err, out)
		}
	}
	script := c.Command[2]
	run := strings.Index(script, "exec /usr/bin/nodeagent")
	for _, wait := range []string{"while [ ! -e /var/lib/nodeagent/takeover ] || kubelet_runs || port_taken; do"} {
		if i := strings.Index(script, wait); i < 0 || run < i {
			t.Errorf("the agent does not wait for %s before it starts:\n%s", wait, script)
		}
	}
}

// TestDaemonSetWaits runs the agent container's script with its host
// paths moved to a temporary directory (/proc included) and a fake
// nodeagent: it starts the agent only once the takeover file exists, no
// kubelet runs and nothing listens on port 10248, with kubeadm's and the
// administrator's arguments.
func TestDaemonSetWaits(t *testing.T) {
	sh := shell(t)
	var ds *appsv1.DaemonSet
	for _, o := range decodeAll(t, "daemonset") {
		if d, ok := o.(*appsv1.DaemonSet); ok {
			ds = d
		}
	}
	if ds == nil {
		t.Fatal("no DaemonSet")
	}
	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }
	write := func(name, content string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(file(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file(name), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(name string) bool { _, err := os.Stat(file(name)); return err == nil }
	const tcpHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	write("proc/1/comm", "systemd\n", 0o644)
	write("proc/42/comm", "kubelet\n", 0o644)
	write("proc/net/tcp", tcpHeader+
		"   0: 0100007F:2808 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n", 0o644)
	write("proc/net/tcp6", tcpHeader, 0o644)
	write("nodeagent", "#!/bin/sh\necho \"$@\" >"+file("args.tmp")+" && mv "+file("args.tmp")+" "+file("args")+"\n", 0o755)
	write("kubeadm-flags.env", `KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock --node-ip=10.0.0.5"`+"\n", 0o644)
	write("default-kubelet", "KUBELET_EXTRA_ARGS=-v=3\n", 0o644)
	script := strings.NewReplacer(
		"/proc/", file("proc")+"/",
		"/var/lib/nodeagent/takeover", file("takeover"),
		"/var/lib/kubelet/kubeadm-flags.env", file("kubeadm-flags.env"),
		"/host/etc/default/kubelet", file("default-kubelet"),
		"/usr/bin/nodeagent", file("nodeagent"),
		"sleep 5", "sleep 0.05",
	).Replace(ds.Spec.Template.Spec.Containers[0].Command[2])
	cmd := exec.Command(sh[0], append(sh[1:], "-c", script)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "NETWORK_PLUGIN=runtime"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	for _, step := range []struct {
		what   string
		change func()
	}{
		{"no takeover file, a kubelet, port 10248 taken", func() {}},
		{"a kubelet, port 10248 taken", func() { write("takeover", "", 0o644) }},
		{"port 10248 taken (tcp6)", func() {
			write("proc/42/comm", "nodeagent\n", 0o644)
			write("proc/net/tcp6", tcpHeader+
				"   0: 00000000000000000000000000000000:2808 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0 100 0 0 10 0\n", 0o644)
			write("proc/net/tcp", tcpHeader, 0o644)
		}},
	} {
		step.change()
		time.Sleep(300 * time.Millisecond)
		if exists("args") {
			t.Fatalf("nodeagent started with %s\n%s", step.what, out.String())
		}
	}
	// Free: port 10248 only connected, another port listening.
	write("proc/net/tcp", tcpHeader+
		"   1: 0100007F:2808 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1\n"+
		"   2: 00000000:2809 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0\n", 0o644)
	write("proc/net/tcp6", tcpHeader, 0o644)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("script: %v\n%s", err, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("nodeagent not started once the node was free\n%s", out.String())
	}
	args, err := os.ReadFile(file("args"))
	if err != nil {
		t.Fatal(err)
	}
	want := "--kubeconfig=/etc/kubernetes/kubelet.conf --config=/var/lib/kubelet/config.yaml --network-plugin=runtime " +
		"--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock --node-ip=10.0.0.5 -v=3\n"
	if string(args) != want {
		t.Errorf("nodeagent %s want %s", args, want)
	}
	if n := strings.Count(out.String(), "nodeagent: waiting"); n != 1 {
		t.Errorf("said %d times that it waits:\n%s", n, out.String())
	}
}

// shell is the image's shell, busybox sh, where the host has busybox;
// another POSIX sh otherwise.
func shell(t *testing.T) []string {
	t.Helper()
	if p, err := exec.LookPath("busybox"); err == nil {
		return []string{p, "sh"}
	}
	p, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	return []string{p}
}
