package podcgroups

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

func res(cpuReq, cpuLim, memReq, memLim string) v1.ResourceRequirements {
	r := v1.ResourceRequirements{Requests: v1.ResourceList{}, Limits: v1.ResourceList{}}
	set := func(l v1.ResourceList, name v1.ResourceName, q string) {
		if q != "" {
			l[name] = resource.MustParse(q)
		}
	}
	set(r.Requests, v1.ResourceCPU, cpuReq)
	set(r.Requests, v1.ResourceMemory, memReq)
	set(r.Limits, v1.ResourceCPU, cpuLim)
	set(r.Limits, v1.ResourceMemory, memLim)
	return r
}

func pod(uid string, rs ...v1.ResourceRequirements) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: types.UID("uid-" + uid)}}
	for i, r := range rs {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: string(rune('a' + i)), Resources: r})
	}
	return p
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestPodSettings(t *testing.T) {
	m := New(Config{Mount: t.TempDir(), PodPidsLimit: 1024})
	for _, tc := range []struct {
		name string
		pod  *v1.Pod
		want Settings
	}{
		{"guaranteed", pod("g", res("500m", "500m", "64Mi", "64Mi"), res("250m", "250m", "32Mi", "32Mi")),
			Settings{Shares: 768, Quota: 75000, Memory: 96 << 20, Pids: 1024}},
		{"burstable, all limited", pod("b1", res("100m", "200m", "", "64Mi"), res("", "300m", "", "32Mi")),
			// The second container's request defaults to its limit in
			// the API; here it has none: only the first counts.
			Settings{Shares: 102, Quota: 50000, Memory: 96 << 20, Pids: 1024}},
		{"burstable, one unlimited", pod("b2", res("100m", "200m", "", "64Mi"), res("100m", "", "", "")),
			Settings{Shares: 204, Quota: -1, Memory: -1, Pids: 1024}},
		{"best effort", pod("be", res("", "", "", "")),
			Settings{Shares: 2, Quota: -1, Memory: -1, Pids: 1024}},
	} {
		if got := m.PodSettings(tc.pod); !got.Equal(tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
	// Overhead counts in the pod's cgroup.
	p := pod("o", res("500m", "500m", "64Mi", "64Mi"))
	p.Spec.Overhead = v1.ResourceList{v1.ResourceCPU: resource.MustParse("100m"), v1.ResourceMemory: resource.MustParse("16Mi")}
	if got, want := m.PodSettings(p), (Settings{Shares: 614, Quota: 60000, Memory: 80 << 20, Pids: 1024}); !got.Equal(want) {
		t.Errorf("overhead: %+v, want %+v", got, want)
	}
	// Sidecars and init containers count as the scheduler counts them.
	p = pod("i", res("100m", "100m", "10Mi", "10Mi"))
	p.Spec.InitContainers = []v1.Container{
		{Name: "init", Resources: res("1", "1", "100Mi", "100Mi")},
		{Name: "side", RestartPolicy: ptr.To(v1.ContainerRestartPolicyAlways), Resources: res("50m", "50m", "5Mi", "5Mi")},
	}
	if got, want := m.PodSettings(p), (Settings{Shares: 1024, Quota: 100000, Memory: 100 << 20, Pids: 1024}); !got.Equal(want) {
		t.Errorf("init containers: %+v, want %+v", got, want)
	}
}

// v1Mount is a cgroup v1 layout with the given hierarchies.
func v1Mount(t *testing.T, hierarchies ...string) string {
	dir := t.TempDir()
	for _, h := range hierarchies {
		if err := os.Mkdir(filepath.Join(dir, h), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, h, "cgroup.procs"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Without the pids controller, podPidsLimit is refused and nothing is
// written for pids.
func TestMissingPidsController(t *testing.T) {
	mount := v1Mount(t, "cpu", "memory")
	if err := New(Config{Mount: mount, PodPidsLimit: 10}).SetupNode(nil); err == nil || !strings.Contains(err.Error(), "podPidsLimit 10 needs the pids cgroup controller") {
		t.Errorf("SetupNode with podPidsLimit and no pids controller: %v", err)
	}
	m := New(Config{Mount: mount})
	if err := m.SetupNode(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(mount, "pids")); !os.IsNotExist(err) {
		t.Errorf("wrote into a pids hierarchy the host does not have: %v", err)
	}
}

func TestCgroupV1(t *testing.T) {
	mount := v1Mount(t, "cpu", "memory", "pids")
	var active []*v1.Pod
	m := New(Config{Mount: mount, Root: "/na", PodPidsLimit: 100, ActivePods: func() []*v1.Pod { return active }})
	if m.v2 {
		t.Fatal("detected v2")
	}
	limits := v1.ResourceList{v1.ResourceCPU: resource.MustParse("1500m"), v1.ResourceMemory: resource.MustParse("1Gi")}
	if err := m.SetupNode(limits); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"cpu/na/kubepods/cpu.shares":                         "1536",
		"cpu/na/kubepods/cpu.cfs_quota_us":                   "-1",
		"memory/na/kubepods/memory.limit_in_bytes":           "1073741824",
		"pids/na/kubepods/pids.max":                          "max",
		"cpu/na/kubepods/besteffort/cpu.shares":              "2",
		"cpu/na/kubepods/burstable/cpu.shares":               "2",
		"memory/na/kubepods/burstable/memory.limit_in_bytes": "-1",
	} {
		if got := read(t, filepath.Join(mount, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}

	b := pod("b", res("300m", "400m", "32Mi", "64Mi"))
	active = []*v1.Pod{b}
	path := "/na/kubepods/burstable/pod" + string(b.UID)
	if err := m.EnsurePod(path, b, false); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"cpu" + path + "/cpu.shares":               "307",
		"cpu" + path + "/cpu.cfs_quota_us":         "40000",
		"cpu" + path + "/cpu.cfs_period_us":        "100000",
		"memory" + path + "/memory.limit_in_bytes": "67108864",
		"pids" + path + "/pids.max":                "100",
		"cpu/na/kubepods/burstable/cpu.shares":     "307",
	} {
		if got := read(t, filepath.Join(mount, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}

	// A resize: growOnly widens, then the full write narrows.
	b2 := b.DeepCopy()
	b2.Spec.Containers[0].Resources = res("200m", "600m", "32Mi", "32Mi")
	if err := m.EnsurePod(path, b2, true); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(mount, "cpu", path, "cpu.cfs_quota_us")); got != "60000" {
		t.Errorf("quota after growOnly = %s, want 60000", got)
	}
	if got := read(t, filepath.Join(mount, "memory", path, "memory.limit_in_bytes")); got != "67108864" {
		t.Errorf("memory after growOnly = %s, want it unchanged", got)
	}
	if err := m.EnsurePod(path, b2, false); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(mount, "memory", path, "memory.limit_in_bytes")); got != "33554432" {
		t.Errorf("memory after the full write = %s", got)
	}

	// Nothing is rewritten when nothing changed.
	if err := os.WriteFile(filepath.Join(mount, "cpu", path, "cpu.shares"), []byte("7"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.EnsurePod(path, b2, false); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(mount, "cpu", path, "cpu.shares")); got != "7" {
		t.Errorf("rewritten although unchanged: %s", got)
	}

	if err := m.EnsurePod("/elsewhere/pod1", b, false); err == nil {
		t.Error("a path outside kubepods was accepted")
	}
}

func TestCgroupV2(t *testing.T) {
	mount := t.TempDir()
	if err := os.WriteFile(filepath.Join(mount, "cgroup.controllers"), []byte("cpu memory pids"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := New(Config{Mount: mount, Root: "/"})
	if !m.v2 {
		t.Fatal("v2 not detected")
	}
	g := pod("g", res("500m", "500m", "64Mi", "64Mi"))
	path := "/kubepods/pod" + string(g.UID)
	if err := m.EnsurePod(path, g, false); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		path + "/cpu.max":                  "50000 100000",
		path + "/cpu.weight":               "20",
		path + "/memory.max":               "67108864",
		path + "/pids.max":                 "max",
		"/kubepods/cgroup.subtree_control": "+pids", // one controller a write: a regular file keeps the last
		"/cgroup.subtree_control":          "+pids",
	} {
		if got := read(t, filepath.Join(mount, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
}

func TestConversions(t *testing.T) {
	for _, tc := range []struct{ milli, shares, back int64 }{{0, 2, 2}, {1, 2, 2}, {20, 20, 20}, {100, 102, 100}, {1000, 1024, 1000}} {
		if got := MilliToShares(tc.milli); got != tc.shares {
			t.Errorf("MilliToShares(%d) = %d, want %d", tc.milli, got, tc.shares)
		}
		if got := SharesToMilli(tc.shares); got != tc.back {
			t.Errorf("SharesToMilli(%d) = %d, want %d", tc.shares, got, tc.back)
		}
	}
	if MilliToQuota(5) != 1000 || MilliToQuota(0) != -1 || QuotaToMilli(40000, 100000) != 400 || QuotaToMilli(-1, 100000) != 0 {
		t.Error("quota conversions")
	}
}

// hugePod is a guaranteed pod whose container asks for huge pages.
func hugePod(uid string, huge v1.ResourceList) *v1.Pod {
	r := res("100m", "100m", "64Mi", "64Mi")
	for name, q := range huge {
		r.Requests[name], r.Limits[name] = q, q
	}
	return pod(uid, r)
}

// Each huge page size gets a hugetlb limit: kubepods the node's huge
// pages, the QoS cgroups none, a pod what it asks for and 0 of the sizes
// it does not ask for (the kubelet's ResourceConfigForPod,
// setHugePagesUnbounded and maybeSetHugetlb).
func TestHugetlbV1(t *testing.T) {
	mount := v1Mount(t, "cpu", "memory", "pids", "hugetlb")
	m := New(Config{Mount: mount, HugePageSizes: []int64{2 << 20, 1 << 30}})
	if !HasController(mount, "hugetlb") {
		t.Fatal("hugetlb not detected")
	}
	if err := m.SetupNode(v1.ResourceList{"hugepages-2Mi": resource.MustParse("16Mi")}); err != nil {
		t.Fatal(err)
	}
	p := hugePod("h", v1.ResourceList{"hugepages-2Mi": resource.MustParse("4Mi")})
	path := "/kubepods/pod" + string(p.UID)
	if err := m.EnsurePod(path, p, false); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"hugetlb/kubepods/hugetlb.2MB.limit_in_bytes":            "16777216",
		"hugetlb/kubepods/hugetlb.1GB.limit_in_bytes":            "0",
		"hugetlb/kubepods/burstable/hugetlb.2MB.limit_in_bytes":  "-1",
		"hugetlb/kubepods/besteffort/hugetlb.1GB.limit_in_bytes": "-1",
		"hugetlb" + path + "/hugetlb.2MB.limit_in_bytes":         "4194304",
		"hugetlb" + path + "/hugetlb.1GB.limit_in_bytes":         "0",
	} {
		if got := read(t, filepath.Join(mount, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	// A pod that asks for none may use none.
	b := pod("b", res("100m", "", "", ""))
	bpath := "/kubepods/burstable/pod" + string(b.UID)
	if err := m.EnsurePod(bpath, b, false); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(mount, "hugetlb", bpath, "hugetlb.2MB.limit_in_bytes")); got != "0" {
		t.Errorf("hugetlb.2MB.limit_in_bytes of a pod asking none = %s, want 0", got)
	}
}

func TestHugetlbV2(t *testing.T) {
	mount := t.TempDir()
	if err := os.WriteFile(filepath.Join(mount, "cgroup.controllers"), []byte("cpu memory pids hugetlb"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := New(Config{Mount: mount, HugePageSizes: []int64{2 << 20}})
	if err := m.SetupNode(v1.ResourceList{"hugepages-2Mi": resource.MustParse("8Mi")}); err != nil {
		t.Fatal(err)
	}
	p := hugePod("h", v1.ResourceList{"hugepages-2Mi": resource.MustParse("2Mi")})
	path := "/kubepods/pod" + string(p.UID)
	if err := m.EnsurePod(path, p, false); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"/kubepods/hugetlb.2MB.max":           "8388608",
		"/kubepods/burstable/hugetlb.2MB.max": "max",
		path + "/hugetlb.2MB.max":             "2097152",
		"/kubepods/cgroup.subtree_control":    "+hugetlb",
	} {
		if got := read(t, filepath.Join(mount, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
}

// Where the kernel has them (Linux 5.7+), the limits of reserved huge
// pages (hugetlb.<size>.rsvd.*) get the same values as the limits of the
// pages faulted in, as the kubelet's cgroup library writes them; where it
// has none they are not created. The fake cgroupfs has them only where
// the test puts them.
func TestHugetlbReservations(t *testing.T) {
	p := hugePod("h", v1.ResourceList{"hugepages-2Mi": resource.MustParse("4Mi")})
	path := "/kubepods/pod" + string(p.UID)
	for _, tc := range []struct {
		name, controllers, dir, suffix string
		have                           map[string]string // rsvd file → value written
		missing                        []string          // rsvd files not created
	}{
		{
			name: "v1", dir: "hugetlb", suffix: ".limit_in_bytes",
			have: map[string]string{
				"/kubepods/hugetlb.2MB.rsvd.limit_in_bytes": "16777216",
				path + "/hugetlb.2MB.rsvd.limit_in_bytes":   "4194304",
			},
			missing: []string{"/kubepods/burstable/hugetlb.2MB.rsvd.limit_in_bytes"},
		},
		{
			name: "v2", controllers: "cpu memory pids hugetlb", suffix: ".max",
			have: map[string]string{
				"/kubepods/hugetlb.2MB.rsvd.max":           "16777216",
				"/kubepods/burstable/hugetlb.2MB.rsvd.max": "max",
				path + "/hugetlb.2MB.rsvd.max":             "4194304",
			},
			missing: []string{"/kubepods/besteffort/hugetlb.2MB.rsvd.max"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mount string
			if tc.controllers == "" {
				mount = v1Mount(t, "cpu", "memory", "pids", "hugetlb")
			} else {
				mount = t.TempDir()
				if err := os.WriteFile(filepath.Join(mount, "cgroup.controllers"), []byte(tc.controllers), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			root := filepath.Join(mount, tc.dir)
			for file := range tc.have {
				if err := os.MkdirAll(filepath.Dir(filepath.Join(root, file)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(root, file), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			m := New(Config{Mount: mount, HugePageSizes: []int64{2 << 20}})
			if err := m.SetupNode(v1.ResourceList{"hugepages-2Mi": resource.MustParse("16Mi")}); err != nil {
				t.Fatal(err)
			}
			if err := m.EnsurePod(path, p, false); err != nil {
				t.Fatal(err)
			}
			for file, want := range tc.have {
				if got := read(t, filepath.Join(root, file)); got != want {
					t.Errorf("%s = %q, want %q", file, got, want)
				}
				// The limit of the pages faulted in is the same.
				main := strings.Replace(file, ".rsvd", "", 1)
				if got := read(t, filepath.Join(root, main)); got != want {
					t.Errorf("%s = %q, want %q", main, got, want)
				}
			}
			for _, file := range tc.missing {
				if _, err := os.Stat(filepath.Join(root, file)); !os.IsNotExist(err) {
					t.Errorf("%s created where the kernel has none: %v", file, err)
				}
				if got := read(t, filepath.Join(root, strings.Replace(file, ".rsvd", "", 1))); got == "" {
					t.Errorf("no limit next to the missing %s", file)
				}
			}
		})
	}
}

// Without the hugetlb controller (cgroup v1 does not mount it by default)
// nothing is written for huge pages, as the kubelet skips them.
func TestHugetlbNotMounted(t *testing.T) {
	mount := v1Mount(t, "cpu", "memory", "pids")
	if HasController(mount, "hugetlb") {
		t.Fatal("hugetlb detected")
	}
	m := New(Config{Mount: mount, HugePageSizes: []int64{2 << 20}})
	if err := m.SetupNode(nil); err != nil {
		t.Fatal(err)
	}
	p := hugePod("h", v1.ResourceList{"hugepages-2Mi": resource.MustParse("4Mi")})
	if err := m.EnsurePod("/kubepods/pod"+string(p.UID), p, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(mount, "hugetlb")); !os.IsNotExist(err) {
		t.Errorf("wrote into a hugetlb hierarchy the host does not have: %v", err)
	}
}

func TestGrownHugetlb(t *testing.T) {
	old := Settings{Hugetlb: map[int64]int64{2 << 20: 4 << 20, 1 << 30: 0}}
	s := Settings{Hugetlb: map[int64]int64{2 << 20: 2 << 20, 1 << 30: 1 << 30}}
	got := grown(old, s)
	if want := map[int64]int64{2 << 20: 4 << 20, 1 << 30: 1 << 30}; !maps.Equal(got.Hugetlb, want) {
		t.Errorf("grown hugetlb = %v, want %v", got.Hugetlb, want)
	}
}
