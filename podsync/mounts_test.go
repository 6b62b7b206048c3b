package podsync

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestMountsReadOnlyAndSubPathExpr(t *testing.T) {
	e := newEnv(t)
	pod := testPod("uid1", v1.RestartPolicyAlways)
	rro := v1.RecursiveReadOnlyEnabled
	pod.Spec.Volumes = []v1.Volume{
		{Name: "cm", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{}}},
		{Name: "sec", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{}}},
		{Name: "dapi", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{}}},
		{Name: "proj", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{}}},
		{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
	}
	c := &pod.Spec.Containers[0]
	c.VolumeMounts = []v1.VolumeMount{
		{Name: "cm", MountPath: "/cm"},
		{Name: "sec", MountPath: "/sec", ReadOnly: false},
		{Name: "dapi", MountPath: "/dapi"},
		{Name: "proj", MountPath: "/proj"},
		{Name: "scratch", MountPath: "/scratch"},
		{Name: "scratch", MountPath: "/ro", ReadOnly: true},
		{Name: "scratch", MountPath: "/expr", SubPathExpr: "$(POD_NAME)/logs"},
		{Name: "scratch", MountPath: "/rro", ReadOnly: true, RecursiveReadOnly: &rro},
	}
	_, err := e.s.mounts(context.Background(), pod, c, "10.1.0.5", map[string]string{"POD_NAME": "web"}, nil)
	if err == nil || !strings.Contains(err.Error(), "recursive read-only mode, but it is not supported by the runtime") {
		t.Fatalf("recursiveReadOnly Enabled on a runtime without it: %v", err)
	}
	c.VolumeMounts = c.VolumeMounts[:len(c.VolumeMounts)-1]
	mounts, err := e.s.mounts(context.Background(), pod, c, "10.1.0.5", map[string]string{"POD_NAME": "web"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	hosts := map[string]string{}
	for _, m := range mounts {
		got[m.ContainerPath] = m.Readonly
		hosts[m.ContainerPath] = m.HostPath
	}
	for path, want := range map[string]bool{"/cm": true, "/sec": true, "/dapi": true, "/proj": true, "/scratch": false, "/ro": true, "/expr": false} {
		if got[path] != want {
			t.Errorf("%s read-only = %v, want %v", path, got[path], want)
		}
	}
	if want := filepath.Join(e.vols.dir, "uid1", "scratch", "web/logs"); hosts["/expr"] != want {
		t.Errorf("subPathExpr mounted %q, want %q", hosts["/expr"], want)
	}

	for _, tc := range []struct{ expr, err string }{
		{"$(MISSING)/x", "missing value for MISSING"},
		{"$(EMPTY)", "missing value for EMPTY"},
		{"$(UP)/x", "must not contain '..'"},
		{"/$(POD_NAME)", "must not be an absolute path"},
	} {
		c.VolumeMounts = []v1.VolumeMount{{Name: "scratch", MountPath: "/expr", SubPathExpr: tc.expr}}
		_, err := e.s.mounts(context.Background(), pod, c, "10.1.0.5", map[string]string{"POD_NAME": "web", "EMPTY": "", "UP": ".."}, nil)
		if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errConfig) {
			t.Errorf("subPathExpr %q: %v; want a config error %q", tc.expr, err, tc.err)
		}
	}
}
