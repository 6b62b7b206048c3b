package podcgroups

import (
	"path/filepath"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// withPodLevel is p with spec.resources r.
func withPodLevel(p *v1.Pod, r v1.ResourceRequirements) *v1.Pod {
	p.Spec.Resources = &r
	return p
}

// The QoS class of a pod with pod-level resources is that of
// spec.resources alone, as the API's ComputePodQOS.
func TestPodLevelQOSClass(t *testing.T) {
	for _, tc := range []struct {
		name string
		pod  *v1.Pod
		want v1.PodQOSClass
	}{
		{"pod-level requests equal to limits", withPodLevel(pod("g", res("", "", "", "")), res("1", "1", "1Gi", "1Gi")), v1.PodQOSGuaranteed},
		// The containers would make it guaranteed; the pod's limits do not.
		{"pod-level limits only cpu", withPodLevel(pod("b", res("1", "1", "1Gi", "1Gi")), res("1", "1", "", "")), v1.PodQOSBurstable},
		{"pod-level requests below limits", withPodLevel(pod("b2", res("", "", "", "")), res("500m", "1", "512Mi", "1Gi")), v1.PodQOSBurstable},
		{"pod-level requests only", withPodLevel(pod("b3", res("", "", "", "")), res("500m", "", "", "")), v1.PodQOSBurstable},
		// Containers' resources do not count beside pod-level ones.
		{"pod-level guaranteed, containers burstable", withPodLevel(pod("g2", res("100m", "", "", "")), res("1", "1", "1Gi", "1Gi")), v1.PodQOSGuaranteed},
		// Upstream's rule: a spec.resources present, even empty, decides.
		{"empty spec.resources", withPodLevel(pod("e", res("1", "1", "1Gi", "1Gi")), v1.ResourceRequirements{}), v1.PodQOSBestEffort},
		{"only other resources", withPodLevel(pod("o", res("", "", "", "")), v1.ResourceRequirements{
			Limits: v1.ResourceList{"hugepages-2Mi": resource.MustParse("2Mi")}}), v1.PodQOSBestEffort},
	} {
		if got := QOSClass(tc.pod); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// The pod's cgroup takes pod-level requests and limits in place of the
// containers' sums, and a pod-level limit bounds it even when containers
// declare none (the kubelet's ResourceConfigForPod).
func TestPodLevelSettings(t *testing.T) {
	m := New(Config{Mount: t.TempDir(), PodPidsLimit: 1024})
	overhead := withPodLevel(pod("o", res("", "", "", "")), res("1", "1", "128Mi", "128Mi"))
	overhead.Spec.Overhead = v1.ResourceList{v1.ResourceCPU: resource.MustParse("100m"), v1.ResourceMemory: resource.MustParse("16Mi")}
	for _, tc := range []struct {
		name string
		pod  *v1.Pod
		want Settings
	}{
		{"guaranteed at pod level, containers without resources",
			withPodLevel(pod("g", res("", "", "", ""), res("", "", "", "")), res("1", "1", "128Mi", "128Mi")),
			Settings{Shares: 1024, Quota: 100000, Memory: 128 << 20, Pids: 1024}},
		{"burstable: pod-level limits, one container unlimited",
			withPodLevel(pod("b", res("100m", "200m", "16Mi", "32Mi"), res("", "", "", "")), res("500m", "2", "64Mi", "256Mi")),
			Settings{Shares: 512, Quota: 200000, Memory: 256 << 20, Pids: 1024}},
		{"burstable: pod-level cpu limit only, containers without memory limits",
			withPodLevel(pod("c", res("", "", "", "")), res("250m", "500m", "", "")),
			Settings{Shares: 256, Quota: 50000, Memory: -1, Pids: 1024}},
		{"burstable: pod-level requests only, containers limited",
			// The containers' limits bound the pod as without pod-level
			// resources; the shares are the pod's request.
			withPodLevel(pod("r", res("", "300m", "", "64Mi")), res("100m", "", "", "")),
			Settings{Shares: 102, Quota: 30000, Memory: 64 << 20, Pids: 1024}},
		{"overhead added", overhead,
			Settings{Shares: 1126, Quota: 110000, Memory: 144 << 20, Pids: 1024}},
	} {
		if got := m.PodSettings(tc.pod); !got.Equal(tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// The files of a pod with pod-level resources on cgroup v1, where the
// end-to-end test reads them, and the burstable cgroup's shares counting
// its pod-level request.
func TestPodLevelCgroupV1(t *testing.T) {
	mount := v1Mount(t, "cpu", "memory", "pids")
	var active []*v1.Pod
	m := New(Config{Mount: mount, Root: "/na", ActivePods: func() []*v1.Pod { return active }})
	if err := m.SetupNode(v1.ResourceList{v1.ResourceCPU: resource.MustParse("4"), v1.ResourceMemory: resource.MustParse("4Gi")}); err != nil {
		t.Fatal(err)
	}
	p := withPodLevel(pod("p", res("", "", "", ""), res("", "", "", "")), res("200m", "400m", "64Mi", "128Mi"))
	active = []*v1.Pod{p}
	if got := QOSClass(p); got != v1.PodQOSBurstable {
		t.Fatalf("QoS %s", got)
	}
	path := PodPath("/na", QOSClass(p), p.UID)
	if err := m.EnsurePod(path, p, false); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"cpu" + path + "/cpu.shares":               "204",
		"cpu" + path + "/cpu.cfs_quota_us":         "40000",
		"memory" + path + "/memory.limit_in_bytes": "134217728",
		"cpu/na/kubepods/burstable/cpu.shares":     "204",
	} {
		if got := read(t, filepath.Join(mount, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
}
