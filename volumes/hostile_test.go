package volumes

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// What a container with write access to an atomic-writer volume could
// leave there (before the volumes were forced read-only, or through a
// runtime bug): the writer must neither follow nor delete through any of it.
func TestAtomicWriterTrustsNothingInTheVolume(t *testing.T) {
	payload := map[string]file{"key": {data: []byte("v2"), mode: 0o644}, "dir/nested": {data: []byte("n"), mode: 0o600}}
	for name, plant := range map[string]func(t *testing.T, dir, host string){
		"..data relinked to a host directory by a climbing relative link": func(t *testing.T, dir, host string) {
			rel, _ := filepath.Rel(dir, host)
			relink(t, filepath.Join(dir, dataDirName), rel)
		},
		"..data relinked to an absolute host path": func(t *testing.T, dir, host string) {
			relink(t, filepath.Join(dir, dataDirName), host)
		},
		"..data pointing at a version-named link to the host": func(t *testing.T, dir, host string) {
			must(t, os.Symlink(host, filepath.Join(dir, "..2020_01_01_00_00_00.1")))
			relink(t, filepath.Join(dir, dataDirName), "..2020_01_01_00_00_00.1")
		},
		"user link replaced by a link to the host": func(t *testing.T, dir, host string) {
			relink(t, filepath.Join(dir, "key"), host)
		},
		"file in the version replaced by a link to a host file": func(t *testing.T, dir, host string) {
			v, _ := os.Readlink(filepath.Join(dir, dataDirName))
			must(t, os.Remove(filepath.Join(dir, v, "key")))
			must(t, os.Symlink(filepath.Join(host, "precious"), filepath.Join(dir, v, "key")))
		},
		"directory in the version replaced by a link to the host": func(t *testing.T, dir, host string) {
			v, _ := os.Readlink(filepath.Join(dir, dataDirName))
			must(t, os.RemoveAll(filepath.Join(dir, v, "dir")))
			must(t, os.Symlink(host, filepath.Join(dir, v, "dir")))
		},
		"stray link to the host": func(t *testing.T, dir, host string) {
			must(t, os.Symlink(host, filepath.Join(dir, "stray")))
		},
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			host := filepath.Join(root, "host")
			must(t, os.MkdirAll(host, 0o755))
			must(t, os.WriteFile(filepath.Join(host, "precious"), []byte("host data"), 0o644))
			dir := filepath.Join(root, "pods", "uid", "volumes", pluginDownward, "vol")
			if _, err := writeAtomic(dir, map[string]file{"key": {data: []byte("v1"), mode: 0o644}, "dir/nested": {data: []byte("n"), mode: 0o600}}, -1); err != nil {
				t.Fatal(err)
			}
			plant(t, dir, host)
			if _, err := writeAtomic(dir, payload, -1); err != nil {
				t.Fatal(err)
			}
			// The host is untouched.
			if b, err := os.ReadFile(filepath.Join(host, "precious")); err != nil || string(b) != "host data" {
				t.Fatalf("host file: %q, %v", b, err)
			}
			// The volume holds exactly the payload, as links into a version.
			entries, err := os.ReadDir(dir)
			must(t, err)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if len(names) != 4 {
				t.Errorf("volume entries %v, want ..data, one version, key, dir", names)
			}
			if v := currentVersion(dir); v == "" || !sameContent(dir, v, payload) {
				t.Errorf("volume does not hold the payload (version %q)", v)
			}
			for _, n := range []string{"key", "dir"} {
				if l, err := os.Readlink(filepath.Join(dir, n)); err != nil || l != filepath.Join(dataDirName, n) {
					t.Errorf("user link %s = %q, %v", n, l, err)
				}
			}
		})
	}
}

func relink(t *testing.T, link, target string) {
	t.Helper()
	must(t, os.RemoveAll(link))
	must(t, os.Symlink(target, link))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestSubPath(t *testing.T) {
	root := t.TempDir()
	vol := filepath.Join(root, "vol")
	outside := filepath.Join(root, "outside")
	must(t, os.MkdirAll(filepath.Join(vol, "data"), 0o750))
	must(t, os.MkdirAll(outside, 0o755))
	must(t, os.WriteFile(filepath.Join(vol, "data", "f"), nil, 0o644))
	// Links a container could plant in a shared volume.
	must(t, os.Symlink(outside, filepath.Join(vol, "escape")))
	must(t, os.Symlink("../../outside", filepath.Join(vol, "data", "climb")))
	must(t, os.Symlink("data", filepath.Join(vol, "inside")))
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "uid", Name: "p", Namespace: "ns"}}

	for _, mounter := range []bool{false, true} {
		e := newEnv(t)
		if !mounter {
			e.m.Mounter = nil
		}
		for i, tc := range []struct {
			sub, resolved, err string
			dir                bool
		}{
			{sub: "data", resolved: filepath.Join(vol, "data"), dir: true},
			{sub: "data/f", resolved: filepath.Join(vol, "data/f")},
			{sub: "new/dir", resolved: filepath.Join(vol, "new/dir"), dir: true},
			{sub: "inside", resolved: filepath.Join(vol, "data"), dir: true},
			{sub: "escape", err: "outside the volume"},
			{sub: "escape/sub", err: "outside the volume"},
			{sub: "data/climb/x", err: "outside the volume"},
			{sub: "../x", err: "stay inside"},
			{sub: "/etc", err: "stay inside"},
		} {
			got, err := e.m.SubPath(context.Background(), pod, "vol", "c", i, vol, tc.sub)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("mounter %v, %s: %q, %v; want error %q", mounter, tc.sub, got, err, tc.err)
				}
				continue
			}
			want := tc.resolved
			if mounter {
				want = filepath.Join(e.root, "pods", "uid", subPathsDir, "vol", "c", strconv.Itoa(i))
			}
			if err != nil || got != want {
				t.Errorf("mounter %v, %s: %q, %v; want %q", mounter, tc.sub, got, err, want)
				continue
			}
			if mounter {
				fi, err := os.Lstat(got)
				if err != nil || fi.IsDir() != tc.dir {
					t.Errorf("%s: mount point %v, %v; want dir %v", tc.sub, fi, err, tc.dir)
				}
				if e.mounter.mounted[got] != -1 {
					t.Errorf("%s: %s not bind-mounted", tc.sub, got)
				}
			}
		}
		if _, err := os.Stat(filepath.Join(outside, "x")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a directory was created outside the volume: %v", err)
		}
		if mounter {
			// Teardown unmounts the binds before removing the pod directory.
			must(t, e.m.Teardown(context.Background(), "uid"))
			if n, _ := e.mounter.MountPoints(filepath.Join(e.root, "pods", "uid")); len(n) != 0 {
				t.Errorf("still mounted after teardown: %v", n)
			}
		}
	}
	// The created directory has the volume's mode.
	if fi, err := os.Stat(filepath.Join(vol, "new/dir")); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("created subPath: %v, %v; want mode 0750", fi, err)
	}
}

// A link swapped in after the path was resolved is not followed: the
// component-wise open refuses it.
func TestOpenBeneathRefusesLinks(t *testing.T) {
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "a"), 0o755))
	must(t, os.Symlink("/etc", filepath.Join(root, "a", "b")))
	must(t, os.Symlink("a", filepath.Join(root, "l")))
	for _, rel := range []string{"a/b", "a/b/passwd", "l", "l/b"} {
		if fd, err := openBeneath(root, rel, 0, 0); err == nil || !errors.Is(err, errSymlink) {
			t.Errorf("%s: fd %d, err %v; want errSymlink", rel, fd, err)
		}
	}
	if _, err := openBeneath(root, "a/b/new", 0, 0o755); err == nil {
		t.Errorf("created a directory through a link")
	}
	if _, err := os.Stat("/etc/new"); err == nil {
		t.Fatal("/etc/new exists")
	}
}

func TestMemoryVolumeSize(t *testing.T) {
	mi := func(n int64) resource.Quantity { return *resource.NewQuantity(n<<20, resource.BinarySI) }
	limited := func(mb ...int64) *v1.Pod {
		p := &v1.Pod{}
		for _, m := range mb {
			c := v1.Container{}
			if m > 0 {
				c.Resources.Limits = v1.ResourceList{v1.ResourceMemory: mi(m)}
			}
			p.Spec.Containers = append(p.Spec.Containers, c)
		}
		return p
	}
	q := func(mb int64) *resource.Quantity { v := mi(mb); return &v }
	// podLevel sets pod-level limits (and requests equal to them).
	podLevel := func(p *v1.Pod, cpu, memMB string) *v1.Pod {
		l := v1.ResourceList{}
		if cpu != "" {
			l[v1.ResourceCPU] = resource.MustParse(cpu)
		}
		if memMB != "" {
			l[v1.ResourceMemory] = resource.MustParse(memMB + "Mi")
		}
		p.Spec.Resources = &v1.ResourceRequirements{Limits: l, Requests: l.DeepCopy()}
		return p
	}
	for _, tc := range []struct {
		name  string
		alloc int64
		pod   *v1.Pod
		limit *resource.Quantity
		want  int64
	}{
		{"node allocatable without limits", 1024, limited(0), nil, 1024},
		{"pod limit when every container has one", 1024, limited(64, 64), nil, 128},
		{"no pod limit when one container has none", 1024, limited(64, 0), nil, 1024},
		{"sizeLimit when smaller", 1024, limited(64), q(16), 16},
		{"pod limit when sizeLimit is larger", 1024, limited(64), q(512), 64},
		{"sizeLimit over allocatable ignored", 1024, limited(0), q(4096), 1024},
		{"nothing known", 0, limited(0), nil, 0},
		{"pod-level memory limit", 1024, podLevel(limited(64, 0), "", "256"), nil, 256},
		{"pod-level memory limit over allocatable", 1024, podLevel(limited(0), "", "2048"), nil, 1024},
		// A pod-level cpu limit alone leaves memory as the containers
		// declare it: one has none, the pod's cgroup has no memory limit.
		{"pod-level cpu limit, a container without memory limit", 1024, podLevel(limited(64, 0), "1", ""), nil, 1024},
		{"pod-level cpu limit, containers limited", 1024, podLevel(limited(64, 32), "1", ""), nil, 96},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &Manager{NodeAllocatable: func() v1.ResourceList {
				if tc.alloc == 0 {
					return nil
				}
				return v1.ResourceList{v1.ResourceMemory: mi(tc.alloc)}
			}}
			if got := m.memoryVolumeSize(tc.pod, tc.limit); got != tc.want<<20 {
				t.Errorf("size = %d MiB, want %d", got>>20, tc.want)
			}
		})
	}
}

// "./..data" is "..data" once cleaned: it must be refused, or every sync
// would replace the live link with one to itself.
func TestPayloadPathCleanedBeforeCheck(t *testing.T) {
	for _, p := range []string{"./..data", "a/../..data", "./..2020_01_01_00_00_00.1/x", ".", "a/.."} {
		if _, err := validatePayload(map[string]file{p: {data: []byte("x"), mode: 0o644}}); err == nil {
			t.Errorf("payload path %q accepted", p)
		}
	}
}

func TestMountPointsUnder(t *testing.T) {
	info := `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
100 22 0:50 / /var/lib/na/pods/u1/volumes/kubernetes.io~secret/s rw,nosuid,nodev - tmpfs tmpfs rw
101 22 8:1 /data /var/lib/na/pods/u1/volume-subpaths/v/c/0 rw - ext4 /dev/sda1 rw
102 22 8:1 /x /var/lib/na/pods/u1/volume-subpaths/with\040space/c/1 rw - ext4 /dev/sda1 rw
103 22 8:1 /x /var/lib/na/pods/u10/volumes/x rw - ext4 /dev/sda1 rw
`
	got, err := mountPointsUnder(bufio.NewScanner(strings.NewReader(info)), "/var/lib/na/pods/u1")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/var/lib/na/pods/u1/volume-subpaths/with space/c/1",
		"/var/lib/na/pods/u1/volume-subpaths/v/c/0",
		"/var/lib/na/pods/u1/volumes/kubernetes.io~secret/s",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("mount points\n got %q\nwant %q", got, want)
	}
}

// With an fsGroup, a new version's files and directories belong to the
// group, directories setgid, files group-readable, as the kubelet's
// SetVolumeOwnership of read-only volumes.
func TestAtomicWriterFSGroup(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	gid := os.Getgid()
	payload := map[string]file{"secret": {data: []byte("x"), mode: 0o600}, "d/nested": {data: []byte("y"), mode: 0o600}}
	withFSGroup(payload)
	if _, err := writeAtomic(dir, payload, gid); err != nil {
		t.Fatal(err)
	}
	v := currentVersion(dir)
	for rel, want := range map[string]os.FileMode{".": 0o755 | fsGroupDirBits, v: 0o755 | fsGroupDirBits, v + "/d": 0o755 | fsGroupDirBits, v + "/secret": 0o640, v + "/d/nested": 0o640} {
		fi, err := os.Lstat(filepath.Join(dir, rel))
		must(t, err)
		if got := fi.Mode() & (os.ModePerm | os.ModeSetgid); got != want {
			t.Errorf("%s: mode %v, want %v", rel, got, want)
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Gid) != gid {
			t.Errorf("%s: group %d, want %d", rel, st.Gid, gid)
		}
	}
	// Unchanged content is not rewritten.
	if changed, err := writeAtomic(dir, payload, gid); err != nil || changed {
		t.Errorf("second write: changed %v, %v", changed, err)
	}
}

// A subPath directory the agent creates has its volume's mode with the
// setgid (fsGroup) and sticky (tmpfs) bits, as the kubelet's: the
// upstream "nonexistent volume subPath should have the correct mode and
// owner using FSGroup" spec expects dgtrwxrwxrwx.
func TestSubPathDirKeepsSpecialBits(t *testing.T) {
	root := t.TempDir()
	if err := os.Chmod(root, os.ModeSetgid|os.ModeSticky|0o777); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := makeSubPathDirs(root, root, []string{"a", "b"}, unixMode(fi.Mode())); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"a", "a/b"} {
		st, err := os.Stat(filepath.Join(root, dir))
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode(); got != os.ModeDir|os.ModeSetgid|os.ModeSticky|0o777 {
			t.Errorf("%s: mode %v, want dgtrwxrwxrwx", dir, got)
		}
	}
}
