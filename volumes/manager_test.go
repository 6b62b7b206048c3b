package volumes

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeagent/nodeagent/podenv"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func mustQ(s string) resource.Quantity { return resource.MustParse(s) }

func cmVolume(name, cm string, items ...v1.KeyToPath) v1.Volume {
	return v1.Volume{Name: name, VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
		LocalObjectReference: v1.LocalObjectReference{Name: cm}, Items: items}}}
}

func TestConfigMapAtomicUpdate(t *testing.T) {
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "ns"},
		Data: map[string]string{"a": "one", "b": "two"}, BinaryData: map[string][]byte{"bin": {0, 1}}}
	e := newEnv(t, cm)
	pod := basePod(cmVolume("config", "cfg"))

	paths, err := e.m.Setup(t.Context(), pod)
	if err != nil {
		t.Fatal(err)
	}
	dir := paths["config"]
	if want := filepath.Join(e.root, "pods", "uid-1", "volumes", "kubernetes.io~configmap", "config"); dir != want {
		t.Fatalf("path = %q, want %q", dir, want)
	}
	if got := readFile(t, filepath.Join(dir, "a")); got != "one" {
		t.Errorf("a = %q", got)
	}
	if got := readFile(t, filepath.Join(dir, "bin")); got != "\x00\x01" {
		t.Errorf("bin = %q", got)
	}
	if link, _ := os.Readlink(filepath.Join(dir, "a")); link != "..data/a" {
		t.Errorf("a links to %q", link)
	}
	if m := fileMode(t, filepath.Join(dir, "a")); m != 0o644 {
		t.Errorf("mode = %o", m)
	}
	first, _ := os.Readlink(filepath.Join(dir, "..data"))

	// Unchanged: nothing rewritten.
	if _, err := e.m.Setup(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.Readlink(filepath.Join(dir, "..data")); again != first {
		t.Errorf("unchanged payload rewritten: %q -> %q", first, again)
	}

	cm.Data = map[string]string{"a": "uno", "c": "tres"}
	cm.BinaryData = nil
	if _, err := e.client.CoreV1().ConfigMaps("ns").Update(t.Context(), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Setup(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "a")); got != "uno" {
		t.Errorf("after update a = %q", got)
	}
	if got := readFile(t, filepath.Join(dir, "c")); got != "tres" {
		t.Errorf("after update c = %q", got)
	}
	for _, gone := range []string{"b", "bin"} {
		if _, err := os.Lstat(filepath.Join(dir, gone)); !os.IsNotExist(err) {
			t.Errorf("%s still present: %v", gone, err)
		}
	}
	if d := dataDirs(t, dir); len(d) != 1 {
		t.Errorf("data dirs = %v, want one", d)
	}
	if _, err := os.Lstat(filepath.Join(dir, "..data_tmp")); !os.IsNotExist(err) {
		t.Errorf("..data_tmp left behind")
	}
}

func TestSecretItemsAndModes(t *testing.T) {
	sec := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"},
		Data: map[string][]byte{"user": []byte("admin"), "pw": []byte("hunter2")}}
	e := newEnv(t, sec)
	pod := basePod(v1.Volume{Name: "creds", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{
		SecretName: "s", DefaultMode: ptr(int32(0o400)),
		Items: []v1.KeyToPath{{Key: "user", Path: "conf/user"}, {Key: "pw", Path: "pw", Mode: ptr(int32(0o600))}},
	}}})
	paths, err := e.m.Setup(t.Context(), pod)
	if err != nil {
		t.Fatal(err)
	}
	dir := paths["creds"]
	if !strings.Contains(dir, "kubernetes.io~secret") {
		t.Errorf("dir = %s", dir)
	}
	if got := readFile(t, filepath.Join(dir, "conf", "user")); got != "admin" {
		t.Errorf("conf/user = %q", got)
	}
	if m := fileMode(t, filepath.Join(dir, "conf", "user")); m != 0o400 {
		t.Errorf("conf/user mode = %o", m)
	}
	if m := fileMode(t, filepath.Join(dir, "pw")); m != 0o600 {
		t.Errorf("pw mode = %o", m)
	}
}

func TestMissingSources(t *testing.T) {
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "ns"}, Data: map[string]string{"a": "1"}}
	tests := []struct {
		name     string
		vol      v1.Volume
		wantErr  bool
		notFound bool
	}{
		{name: "missing configmap", vol: cmVolume("v", "nope"), wantErr: true, notFound: true},
		{name: "optional configmap", vol: v1.Volume{Name: "v", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
			LocalObjectReference: v1.LocalObjectReference{Name: "nope"}, Optional: ptr(true)}}}},
		{name: "missing secret", vol: v1.Volume{Name: "v", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "nope"}}},
			wantErr: true, notFound: true},
		{name: "optional secret", vol: v1.Volume{Name: "v", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "nope", Optional: ptr(true)}}}},
		{name: "missing key", vol: cmVolume("v", "cfg", v1.KeyToPath{Key: "zzz", Path: "z"}), wantErr: true},
		{name: "missing key optional", vol: v1.Volume{Name: "v", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
			LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}, Optional: ptr(true),
			Items: []v1.KeyToPath{{Key: "zzz", Path: "z"}, {Key: "a", Path: "a"}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, cm)
			paths, err := e.m.Setup(t.Context(), basePod(tt.vol))
			if !tt.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(paths["v"]); err != nil {
					t.Errorf("volume dir: %v", err)
				}
				return
			}
			if !errors.Is(err, podenv.ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			if tt.notFound && !apierrors.IsNotFound(err) {
				t.Errorf("err = %v, want NotFound", err)
			}
			if !strings.Contains(err.Error(), `volume "v"`) {
				t.Errorf("error does not name the volume: %v", err)
			}
		})
	}
}

func TestPathEscapeRejected(t *testing.T) {
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "ns"}, Data: map[string]string{"a": "1"}}
	for _, p := range []string{"../escape", "/etc/escape", "x/../../escape", "..data/escape", "..hidden", "", "x/..", "a/b/../../../escape"} {
		t.Run(p, func(t *testing.T) {
			e := newEnv(t, cm)
			_, err := e.m.Setup(t.Context(), basePod(cmVolume("v", "cfg", v1.KeyToPath{Key: "a", Path: p})))
			if err == nil {
				t.Fatalf("path %q accepted", p)
			}
			if _, err := os.Stat(filepath.Join(e.root, "pods", "uid-1", "volumes", "kubernetes.io~configmap", "escape")); !os.IsNotExist(err) {
				t.Errorf("file written outside the volume")
			}
		})
	}
	if err := validatePath("ok/..dots/file"); err != nil {
		t.Errorf("nested ..dots rejected: %v", err)
	}
	if _, err := validatePayload(map[string]file{"a": {}, "a/b": {}}); err == nil {
		t.Errorf("file/directory clash accepted")
	}
}

func TestUnsupported(t *testing.T) {
	tests := []struct {
		src  v1.VolumeSource
		kind string
	}{
		{v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "c"}}, "persistentVolumeClaim"},
		{v1.VolumeSource{CSI: &v1.CSIVolumeSource{Driver: "d"}}, "csi"},
		{v1.VolumeSource{Ephemeral: &v1.EphemeralVolumeSource{}}, "ephemeral"},
		{v1.VolumeSource{NFS: &v1.NFSVolumeSource{}}, "nfs"},
		{v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{
			{ClusterTrustBundle: &v1.ClusterTrustBundleProjection{Path: "b"}}}}}, "clusterTrustBundle projection"},
		{v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: "Tape"}}, `emptyDir medium "Tape"`},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			e := newEnv(t)
			_, err := e.m.Setup(t.Context(), basePod(v1.Volume{Name: "data", VolumeSource: tt.src}))
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("err = %v, want ErrUnsupported", err)
			}
			want := `volume "data": ` + tt.kind + " volumes are not supported by nodeagent yet"
			if !strings.Contains(err.Error(), want) {
				t.Errorf("err = %q, want it to contain %q", err, want)
			}
		})
	}
}

// An image volume is the runtime's to mount: Setup reports it with no
// path and makes nothing for it in the pod's directory, as the kubelet's
// image plugin.
func TestImageVolumeHasNoDirectory(t *testing.T) {
	e := newEnv(t)
	pod := basePod(v1.Volume{Name: "data", VolumeSource: v1.VolumeSource{Image: &v1.ImageVolumeSource{Reference: "busybox:1.36"}}})
	paths, err := e.m.Setup(t.Context(), pod)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := paths["data"]; !ok || p != "" {
		t.Errorf("paths = %v, want data with an empty path", paths)
	}
	if _, err := os.Lstat(filepath.Join(e.m.podDir(pod.UID), "volumes")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("volumes directory of a pod with only an image volume: %v, want none", err)
	}
}

func TestSetupKeepsGoodVolumes(t *testing.T) {
	e := newEnv(t)
	paths, err := e.m.Setup(t.Context(), basePod(
		v1.Volume{Name: "bad", VolumeSource: v1.VolumeSource{NFS: &v1.NFSVolumeSource{Server: "x", Path: "/"}}},
		v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
	))
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("err = %v", err)
	}
	if paths["scratch"] == "" {
		t.Errorf("good volume not returned: %v", paths)
	}
}
