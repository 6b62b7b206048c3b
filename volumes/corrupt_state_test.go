package volumes

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// host is a directory outside the agent's root dir that a link planted in
// a pod directory could lead to.
type host struct{ dir string }

func newHost(t *testing.T) host {
	t.Helper()
	h := host{dir: t.TempDir()}
	must(t, os.Chmod(h.dir, 0o700))
	must(t, os.WriteFile(filepath.Join(h.dir, "precious"), []byte("host data"), 0o600))
	return h
}

// untouched fails unless the host directory is as newHost made it.
func (h host) untouched(t *testing.T) {
	t.Helper()
	entries, err := os.ReadDir(h.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "precious" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("host directory now holds %v", names)
	}
	if got := readFile(t, filepath.Join(h.dir, "precious")); got != "host data" {
		t.Errorf("host file now %q", got)
	}
	if m := fileMode(t, h.dir); m != 0o700 {
		t.Errorf("host directory mode now %o", m)
	}
}

// TestVolumeDirNotADirectory: a link or a file where a pod's volume
// directory, or one above it, is expected fails that volume with an error
// naming the path; the link is never followed (no chmod, mount, write or
// pruning of its target), the file is left as it is, and the pod's other
// volumes are set up.
func TestVolumeDirNotADirectory(t *testing.T) {
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "ns"}, Data: map[string]string{"a": "1"}}
	memory := v1.Volume{Name: "mem", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory}}}
	vols := []v1.Volume{
		{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
		memory,
		cmVolume("config", "cfg"),
		{Name: "info", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{Items: []v1.DownwardAPIVolumeFile{
			{Path: "name", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}},
		}}}},
	}
	// The volume's own directory, relative to the pod directory.
	volPath := map[string]string{
		"scratch": "volumes/kubernetes.io~empty-dir/scratch",
		"mem":     "volumes/kubernetes.io~empty-dir/mem",
		"config":  "volumes/kubernetes.io~configmap/config",
		"info":    "volumes/kubernetes.io~downward-api/info",
	}
	for _, vol := range vols {
		for _, level := range []string{"volume", "plugin", "volumes"} {
			for _, kind := range []string{"link", "file"} {
				t.Run(vol.Name+"/"+level+"/"+kind, func(t *testing.T) {
					e := newEnv(t, cm)
					h := newHost(t)
					pod := basePod(vols...)
					podDir := filepath.Join(e.root, "pods", string(pod.UID))
					planted := filepath.Join(podDir, volPath[vol.Name])
					switch level {
					case "plugin":
						planted = filepath.Dir(planted)
					case "volumes":
						planted = filepath.Join(podDir, "volumes")
					}
					must(t, os.MkdirAll(filepath.Dir(planted), 0o755))
					if kind == "link" {
						must(t, os.Symlink(h.dir, planted))
					} else {
						must(t, os.WriteFile(planted, []byte("garbage"), 0o644))
					}

					paths, err := e.m.Setup(context.Background(), pod)
					if err == nil || !strings.Contains(err.Error(), planted) {
						t.Fatalf("Setup = %v, want an error naming %s", err, planted)
					}
					h.untouched(t)
					if fi, err := os.Lstat(planted); err != nil || (kind == "link") != (fi.Mode()&os.ModeSymlink != 0) {
						t.Errorf("what was planted changed: %v, %v", fi, err)
					}
					for name, p := range e.mounter.mounted {
						if !strings.HasPrefix(name, podDir+"/") || strings.HasPrefix(name, planted) {
							t.Errorf("mounted %s (%d)", name, p)
						}
					}
					// The volumes not below what was planted are ready.
					for _, other := range vols {
						below := strings.HasPrefix(filepath.Join(podDir, volPath[other.Name]), planted+"/") || filepath.Join(podDir, volPath[other.Name]) == planted
						if _, ok := paths[other.Name]; ok == below {
							t.Errorf("volume %s set up: %v", other.Name, ok)
						}
					}
				})
			}
		}
	}
}

// TestAtomicVolumeGarbage: what a crash leaves in an atomic-writer volume
// (a half-written version, no ..data, a dangling ..data, stray files) is
// repaired by the next Setup; an emptyDir's content is the pod's and stays.
func TestAtomicVolumeGarbage(t *testing.T) {
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "ns"}, Data: map[string]string{"a": "1", "b": "2"}}
	for name, damage := range map[string]func(t *testing.T, dir string){
		"half-written version, link not swapped": func(t *testing.T, dir string) {
			v := filepath.Join(dir, "..2020_01_01_00_00_00.123")
			must(t, os.Mkdir(v, 0o755))
			must(t, os.WriteFile(filepath.Join(v, "a"), []byte("tru"), 0o644))
		},
		"..data gone": func(t *testing.T, dir string) {
			must(t, os.Remove(filepath.Join(dir, dataDirName)))
		},
		"..data dangling": func(t *testing.T, dir string) {
			relink(t, filepath.Join(dir, dataDirName), "..2020_01_01_00_00_00.999")
		},
		"..data a file": func(t *testing.T, dir string) {
			must(t, os.Remove(filepath.Join(dir, dataDirName)))
			must(t, os.WriteFile(filepath.Join(dir, dataDirName), []byte("garbage"), 0o644))
		},
		"leftover ..data_tmp": func(t *testing.T, dir string) {
			must(t, os.Symlink("..2020_01_01_00_00_00.999", filepath.Join(dir, newDataDirName)))
		},
		"truncated file in the version": func(t *testing.T, dir string) {
			v, _ := os.Readlink(filepath.Join(dir, dataDirName))
			must(t, os.WriteFile(filepath.Join(dir, v, "a"), nil, 0o644))
		},
		"stray file": func(t *testing.T, dir string) {
			must(t, os.WriteFile(filepath.Join(dir, "stray"), []byte("x"), 0o644))
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, cm)
			pod := basePod(cmVolume("config", "cfg"), v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}})
			paths, err := e.m.Setup(context.Background(), pod)
			if err != nil {
				t.Fatal(err)
			}
			dir := paths["config"]
			// The pod's own data in its emptyDir, links and all.
			scratch := paths["scratch"]
			must(t, os.WriteFile(filepath.Join(scratch, "..data"), []byte("pod data"), 0o644))
			must(t, os.Symlink("/etc", filepath.Join(scratch, "link")))
			damage(t, dir)

			// The agent restarts: a new manager over the same root.
			m := NewManager(e.client, e.root, e.clock)
			m.Mounter = e.mounter
			if _, err := m.Setup(context.Background(), pod); err != nil {
				t.Fatalf("Setup after the damage: %v", err)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, en := range entries {
				if !versionName.MatchString(en.Name()) {
					names = append(names, en.Name())
				}
			}
			if strings.Join(names, ",") != "..data,a,b" || len(entries) != 4 {
				t.Errorf("volume holds %d entries, the plain ones %v", len(entries), names)
			}
			if readFile(t, filepath.Join(dir, "a")) != "1" || readFile(t, filepath.Join(dir, "b")) != "2" {
				t.Errorf("content not repaired")
			}
			if readFile(t, filepath.Join(scratch, "..data")) != "pod data" {
				t.Errorf("the emptyDir's content changed")
			}
			if l, err := os.Readlink(filepath.Join(scratch, "link")); err != nil || l != "/etc" {
				t.Errorf("the emptyDir's link changed: %q, %v", l, err)
			}
		})
	}
}

// TestTeardownSubPathGarbage: links and files where Teardown expects the
// directories of subPath mount points are removed as they are, never
// followed.
func TestTeardownSubPathGarbage(t *testing.T) {
	for _, rel := range []string{"", "vol", "vol/c"} {
		for _, kind := range []string{"link", "file"} {
			t.Run(rel+"/"+kind, func(t *testing.T) {
				e := newEnv(t)
				h := newHost(t)
				podDir := filepath.Join(e.root, "pods", "uid-1")
				planted := filepath.Join(podDir, subPathsDir, rel)
				must(t, os.MkdirAll(filepath.Dir(planted), 0o750))
				if kind == "link" {
					must(t, os.Symlink(h.dir, planted))
				} else {
					must(t, os.WriteFile(planted, []byte("garbage"), 0o644))
				}
				if err := e.m.Teardown(context.Background(), "uid-1"); err != nil {
					t.Fatalf("Teardown: %v", err)
				}
				h.untouched(t)
				if _, err := os.Lstat(podDir); !os.IsNotExist(err) {
					t.Errorf("pod directory not removed: %v", err)
				}
			})
		}
	}
}

// TestSubPathTargetParentLink: a link where a parent of a subPath mount
// point is expected is refused, not followed: the bind mount would land
// on its target.
func TestSubPathTargetParentLink(t *testing.T) {
	e := newEnv(t)
	h := newHost(t)
	vol := filepath.Join(t.TempDir(), "vol")
	must(t, os.MkdirAll(filepath.Join(vol, "data"), 0o755))
	planted := filepath.Join(e.root, "pods", "uid", subPathsDir, "vol")
	must(t, os.MkdirAll(filepath.Dir(planted), 0o750))
	must(t, os.Symlink(h.dir, planted))
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "uid", Name: "p", Namespace: "ns"}}
	_, err := e.m.SubPath(context.Background(), pod, "vol", "c", 0, vol, "data")
	if err == nil || !strings.Contains(err.Error(), planted) {
		t.Fatalf("SubPath = %v, want an error naming %s", err, planted)
	}
	h.untouched(t)
	if len(e.mounter.mounted) != 0 {
		t.Errorf("mounted %v", e.mounter.mounted)
	}
}
