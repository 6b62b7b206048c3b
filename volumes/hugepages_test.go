package volumes

import (
	"os"
	"strings"
	"syscall"
	"testing"

	v1 "k8s.io/api/core/v1"
)

// hugeVolume is an emptyDir of a huge page medium.
func hugeVolume(medium v1.StorageMedium) v1.Volume {
	return v1.Volume{Name: "huge", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: medium}}}
}

// withHugePages has the pod's containers (and init containers) request
// the given huge page resources, a quantity each.
func withHugePages(pod *v1.Pod, init bool, names ...v1.ResourceName) *v1.Pod {
	c := v1.Container{Name: "huge", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{}, Limits: v1.ResourceList{}}}
	for _, n := range names {
		c.Resources.Requests[n], c.Resources.Limits[n] = mustQ("2Gi"), mustQ("2Gi")
	}
	if init {
		pod.Spec.InitContainers = append(pod.Spec.InitContainers, c)
	} else {
		pod.Spec.Containers = append(pod.Spec.Containers, c)
	}
	return pod
}

// An emptyDir of medium HugePages or HugePages-<size> is a hugetlbfs of
// the page size the pod requests, as the kubelet's setupHugepages and
// getPageSizeMountOption.
func TestHugePagesEmptyDir(t *testing.T) {
	for _, tc := range []struct {
		name     string
		medium   v1.StorageMedium
		pod      func() *v1.Pod
		pageSize int64
		wantErr  string
	}{
		{name: "HugePages, one size", medium: v1.StorageMediumHugePages,
			pod: func() *v1.Pod { return withHugePages(basePod(), false, "hugepages-2Mi") }, pageSize: 2 << 20},
		{name: "HugePages, asked by an init container", medium: v1.StorageMediumHugePages,
			pod: func() *v1.Pod { return withHugePages(basePod(), true, "hugepages-1Gi") }, pageSize: 1 << 30},
		{name: "HugePages-2Mi of two sizes", medium: "HugePages-2Mi",
			pod: func() *v1.Pod { return withHugePages(basePod(), false, "hugepages-2Mi", "hugepages-1Gi") }, pageSize: 2 << 20},
		{name: "HugePages-1Gi of two sizes in two containers", medium: "HugePages-1Gi",
			pod: func() *v1.Pod {
				return withHugePages(withHugePages(basePod(), false, "hugepages-2Mi"), true, "hugepages-1Gi")
			}, pageSize: 1 << 30},
		{name: "HugePages of two sizes", medium: v1.StorageMediumHugePages,
			pod:     func() *v1.Pod { return withHugePages(basePod(), false, "hugepages-2Mi", "hugepages-1Gi") },
			wantErr: "medium HugePages can't be used if containers request several huge page sizes"},
		{name: "HugePages of two sizes in two containers", medium: v1.StorageMediumHugePages,
			pod: func() *v1.Pod {
				return withHugePages(withHugePages(basePod(), false, "hugepages-2Mi"), false, "hugepages-1Gi")
			},
			wantErr: "several huge page sizes"},
		{name: "HugePages, none asked", medium: v1.StorageMediumHugePages, pod: func() *v1.Pod { return basePod() },
			wantErr: "medium HugePages: huge page storage requested, but no container requests huge pages"},
		{name: "HugePages-1Gi, another size asked", medium: "HugePages-1Gi",
			pod:     func() *v1.Pod { return withHugePages(basePod(), false, "hugepages-2Mi") },
			wantErr: "no container requests hugepages-1Gi"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			pod := tc.pod()
			pod.Spec.Volumes = []v1.Volume{hugeVolume(tc.medium)}
			paths, err := e.m.Setup(t.Context(), pod)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				if len(e.mounter.hugetlbfs) != 0 {
					t.Errorf("mounted %v", e.mounter.hugetlbfs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := e.mounter.hugetlbfs[paths["huge"]]; got != tc.pageSize {
				t.Errorf("hugetlbfs page size = %d, want %d (mounts %v)", got, tc.pageSize, e.mounter.hugetlbfs)
			}
			// As the kubelet mounts it: no mode, the root stays 0755.
			if m := fileMode(t, paths["huge"]); m != 0o755 {
				t.Errorf("mode = %o, want 755", m)
			}
			// Idempotent: no second mount; Teardown unmounts it.
			delete(e.mounter.hugetlbfs, paths["huge"])
			if _, err := e.m.Setup(t.Context(), pod); err != nil {
				t.Fatal(err)
			}
			if len(e.mounter.hugetlbfs) != 0 {
				t.Errorf("mounted again: %v", e.mounter.hugetlbfs)
			}
			if err := e.m.Teardown(t.Context(), pod.UID); err != nil {
				t.Fatal(err)
			}
			if len(e.mounter.mounted) != 0 {
				t.Errorf("left mounted: %v", e.mounter.mounted)
			}
		})
	}
}

// The pod's fsGroup may write a hugetlbfs emptyDir, as the kubelet's
// SetVolumeOwnership makes it: the root's group, read, write and search
// for the group, setgid (0755 becomes 2775); other users may not. An
// emptyDir on disk stays world-writable, setgid with an fsGroup.
func TestEmptyDirFSGroup(t *testing.T) {
	gid := int64(os.Getgid()) // one the test may chown to without root
	for _, tc := range []struct {
		name    string
		medium  v1.StorageMedium
		fsGroup *int64
		want    os.FileMode
	}{
		{"hugetlbfs", v1.StorageMediumHugePages, nil, 0o755},
		{"hugetlbfs with fsGroup", v1.StorageMediumHugePages, &gid, 0o775 | os.ModeSetgid},
		{"disk", v1.StorageMediumDefault, nil, 0o777},
		{"disk with fsGroup", v1.StorageMediumDefault, &gid, 0o777 | os.ModeSetgid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			vol := hugeVolume(tc.medium)
			pod := withHugePages(basePod(vol), false, "hugepages-2Mi")
			pod.Spec.SecurityContext = &v1.PodSecurityContext{FSGroup: tc.fsGroup}
			paths, err := e.m.Setup(t.Context(), pod)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // and again, as each sync sets the pod up
				fi, err := os.Lstat(paths["huge"])
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.Mode() & (os.ModePerm | os.ModeSetgid | os.ModeSticky); got != tc.want {
					t.Errorf("mode = %v, want %v", got, tc.want)
				}
				if st := fi.Sys().(*syscall.Stat_t); tc.fsGroup != nil && int64(st.Gid) != gid {
					t.Errorf("group %d, want %d", st.Gid, gid)
				}
				if _, err := e.m.Setup(t.Context(), pod); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// Without root the agent mounts nothing: a huge page emptyDir is refused
// rather than given as a plain directory.
func TestHugePagesEmptyDirNotRoot(t *testing.T) {
	e := newEnv(t)
	e.m.Mounter = nil
	pod := withHugePages(basePod(hugeVolume(v1.StorageMediumHugePages)), false, "hugepages-2Mi")
	_, err := e.m.Setup(t.Context(), pod)
	if err == nil || !strings.Contains(err.Error(), "hugetlbfs mount, which the agent makes only when it runs as root") {
		t.Errorf("err = %v", err)
	}
}
