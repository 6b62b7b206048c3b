package volumes

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDownwardAPI(t *testing.T) {
	e := newEnv(t)
	e.m.NodeAllocatable = func() v1.ResourceList { return v1.ResourceList{v1.ResourceCPU: mustQ("3")} }
	pod := basePod(v1.Volume{Name: "info", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{Items: []v1.DownwardAPIVolumeFile{
		{Path: "name", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}},
		{Path: "labels", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
		{Path: "app", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}},
		{Path: "ip", FieldRef: &v1.ObjectFieldSelector{FieldPath: "status.podIP"}},
		{Path: "mem", ResourceFieldRef: &v1.ResourceFieldSelector{ContainerName: "app", Resource: "requests.memory", Divisor: mustQ("1Mi")}},
		{Path: "cpu", ResourceFieldRef: &v1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.cpu"}, Mode: ptr(int32(0o400))},
	}}}})
	paths, err := e.m.Setup(t.Context(), pod)
	if err != nil {
		t.Fatal(err)
	}
	dir := paths["info"]
	if filepath.Base(filepath.Dir(dir)) != "kubernetes.io~downward-api" {
		t.Errorf("dir = %s", dir)
	}
	want := map[string]string{"name": "web", "labels": `app="web"`, "app": "web", "ip": "10.1.0.5", "mem": "64", "cpu": "3"}
	for f, v := range want {
		if got := readFile(t, filepath.Join(dir, f)); got != v {
			t.Errorf("%s = %q, want %q", f, got, v)
		}
	}
	if m := fileMode(t, filepath.Join(dir, "cpu")); m != 0o400 {
		t.Errorf("cpu mode = %o", m)
	}

	// Label changes show up on the next Setup.
	pod.Labels["app"] = "web2"
	if _, err := e.m.Setup(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "app")); got != "web2" {
		t.Errorf("app after update = %q", got)
	}
}

func TestProjectedServiceAccountToken(t *testing.T) {
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-root-ca.crt", Namespace: "ns"}, Data: map[string]string{"ca.crt": "CA"}}
	e := newEnv(t, cm)
	pod := basePod(v1.Volume{Name: "kube-api-access", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{
		DefaultMode: ptr(int32(0o644)),
		Sources: []v1.VolumeProjection{
			{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token", Audience: "vault", ExpirationSeconds: ptr(int64(3600))}},
			{ConfigMap: &v1.ConfigMapProjection{LocalObjectReference: v1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items: []v1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &v1.DownwardAPIProjection{Items: []v1.DownwardAPIVolumeFile{
				{Path: "namespace", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
		},
	}}})

	if _, ok := e.m.NextRefresh(pod.UID); ok {
		t.Fatal("refresh needed before any token")
	}
	paths, err := e.m.Setup(t.Context(), pod)
	if err != nil {
		t.Fatal(err)
	}
	dir := paths["kube-api-access"]
	if filepath.Base(filepath.Dir(dir)) != "kubernetes.io~projected" {
		t.Errorf("dir = %s", dir)
	}
	for f, v := range map[string]string{"token": "token-1", "ca.crt": "CA", "namespace": "ns"} {
		if got := readFile(t, filepath.Join(dir, f)); got != v {
			t.Errorf("%s = %q, want %q", f, got, v)
		}
	}
	if len(e.requests) != 1 {
		t.Fatalf("token requests = %d", len(e.requests))
	}
	req := e.requests[0].Spec
	if len(req.Audiences) != 1 || req.Audiences[0] != "vault" || *req.ExpirationSeconds != 3600 ||
		req.BoundObjectRef == nil || req.BoundObjectRef.Kind != "Pod" || req.BoundObjectRef.Name != "web" || req.BoundObjectRef.UID != "uid-1" {
		t.Errorf("unexpected TokenRequest spec %+v", req)
	}

	next, due := e.m.NextRefresh(pod.UID)
	if due || !next.Equal(t0.Add(48*time.Minute)) {
		t.Errorf("NextRefresh = %v, %v; want %v, false", next, due, t0.Add(48*time.Minute))
	}

	// Before 80% of the TTL the cached token is reused.
	e.clock.SetTime(t0.Add(47 * time.Minute))
	if _, err := e.m.Setup(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
	if len(e.requests) != 1 {
		t.Errorf("token renewed too early")
	}

	e.clock.SetTime(t0.Add(48 * time.Minute))
	if _, due := e.m.NextRefresh(pod.UID); !due {
		t.Errorf("refresh not due at 80%% of the TTL")
	}
	if _, err := e.m.Setup(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "token")); got != "token-2" {
		t.Errorf("token after renewal = %q", got)
	}
	if next, due := e.m.NextRefresh(pod.UID); due || !next.Equal(t0.Add(96*time.Minute)) {
		t.Errorf("NextRefresh after renewal = %v, %v", next, due)
	}

	if err := e.m.Teardown(t.Context(), pod.UID); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.m.NextRefresh(pod.UID); ok {
		t.Errorf("tokens not forgotten")
	}
}

func TestTokenRefreshCappedAt24h(t *testing.T) {
	e := newEnv(t)
	pod := basePod(v1.Volume{Name: "t", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{
		{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr(int64(7 * 24 * 3600))}},
	}}}})
	if _, err := e.m.Setup(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
	if e.requests[0].Spec.Audiences != nil {
		t.Errorf("audiences = %v, want nil", e.requests[0].Spec.Audiences)
	}
	if next, _ := e.m.NextRefresh(pod.UID); !next.Equal(t0.Add(24 * time.Hour)) {
		t.Errorf("NextRefresh = %v, want 24h after issue", next)
	}
}

func TestEmptyDirAndTeardown(t *testing.T) {
	e := newEnv(t)
	pod := basePod(
		v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
		v1.Volume{Name: "shm", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{
			Medium: v1.StorageMediumMemory, SizeLimit: ptr(mustQ("1Mi"))}}},
	)
	paths, err := e.m.Setup(t.Context(), pod)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"scratch", "shm"} {
		if filepath.Base(filepath.Dir(paths[name])) != "kubernetes.io~empty-dir" {
			t.Errorf("%s dir = %s", name, paths[name])
		}
		if m := fileMode(t, paths[name]); m != 0o777 {
			t.Errorf("%s mode = %o", name, m)
		}
	}
	if size, ok := e.mounter.mounted[paths["shm"]]; !ok || size != 1<<20 {
		t.Errorf("tmpfs mounts = %v", e.mounter.mounted)
	}
	if _, ok := e.mounter.mounted[paths["scratch"]]; ok {
		t.Errorf("disk emptyDir mounted")
	}
	// Idempotent: no second mount, content kept.
	if err := os.WriteFile(filepath.Join(paths["scratch"], "f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Setup(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(paths["scratch"], "f")); got != "x" {
		t.Errorf("emptyDir content lost")
	}

	if err := e.m.Teardown(t.Context(), pod.UID); err != nil {
		t.Fatal(err)
	}
	if len(e.mounter.mounted) != 0 {
		t.Errorf("still mounted: %v", e.mounter.mounted)
	}
	if _, err := os.Stat(filepath.Join(e.root, "pods", "uid-1")); !os.IsNotExist(err) {
		t.Errorf("pod dir not removed: %v", err)
	}
	if err := e.m.Teardown(t.Context(), pod.UID); err != nil {
		t.Errorf("second Teardown: %v", err)
	}
}
