package podsync

import (
	"reflect"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// hugePagesPod is a pod whose container asks for huge pages (requests and
// limits equal, as the API makes them).
func hugePagesPod(uid string, huge v1.ResourceList) *v1.Pod {
	pod := testPod(uid, v1.RestartPolicyAlways)
	r := v1.ResourceRequirements{
		Requests: v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")},
		Limits:   v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")},
	}
	for name, q := range huge {
		r.Requests[name], r.Limits[name] = q, q
	}
	pod.Spec.Containers[0].Resources = r
	return pod
}

// Every container gets a limit of each huge page size of the machine, 0
// unless it asks for that size: the kubelet's
// GetHugepageLimitsFromResources.
func TestHugepageLimits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sizes  []int64
		limits v1.ResourceList
		want   []*runtimeapi.HugepageLimit
	}{
		{name: "no huge pages on the machine", limits: v1.ResourceList{"hugepages-2Mi": resource.MustParse("4Mi")}},
		{name: "asks for none", sizes: []int64{2 << 20, 1 << 30},
			want: []*runtimeapi.HugepageLimit{{PageSize: "2MB"}, {PageSize: "1GB"}}},
		{name: "asks for one size", sizes: []int64{2 << 20, 1 << 30},
			limits: v1.ResourceList{v1.ResourceMemory: resource.MustParse("1Gi"), "hugepages-2Mi": resource.MustParse("4Mi")},
			want:   []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 4 << 20}, {PageSize: "1GB"}}},
		{name: "a size the machine does not have", sizes: []int64{2 << 20},
			limits: v1.ResourceList{"hugepages-1Gi": resource.MustParse("1Gi")},
			want:   []*runtimeapi.HugepageLimit{{PageSize: "2MB"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := hugepageLimits(tc.sizes, tc.limits); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("hugepageLimits = %v, want %v", got, tc.want)
			}
		})
	}
}

// The containers get their huge page limits through CRI; without the
// hugetlb controller the pod still runs, as with the kubelet, and the
// user is told its huge pages are not limited.
func TestSyncPodHugePages(t *testing.T) {
	for _, tc := range []struct {
		name        string
		limited     bool
		huge        v1.ResourceList
		wantLimit   uint64
		wantWarning bool
	}{
		{name: "limited", limited: true, huge: v1.ResourceList{"hugepages-2Mi": resource.MustParse("4Mi")}, wantLimit: 4 << 20},
		{name: "no hugetlb controller", huge: v1.ResourceList{"hugepages-2Mi": resource.MustParse("4Mi")}, wantLimit: 4 << 20, wantWarning: true},
		{name: "no hugetlb controller, no huge pages asked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.s.cfg.HugePageSizes = []int64{2 << 20}
			e.s.cfg.HugetlbLimited = tc.limited
			pod := hugePagesPod("h1", tc.huge)
			e.sync(t, pod)
			e.rt.mu.Lock()
			containers := e.rt.containers
			e.rt.mu.Unlock()
			if len(containers) != 1 {
				t.Fatalf("%d containers created, want 1", len(containers))
			}
			got := containers[0].GetLinux().GetResources().GetHugepageLimits()
			want := []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: tc.wantLimit}}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("HugepageLimits = %v, want %v", got, want)
			}
			events := e.events()
			if hasEvent(events, "HugePagesNotLimited") != tc.wantWarning {
				t.Errorf("events = %q, want a HugePagesNotLimited warning: %v", events, tc.wantWarning)
			}
			if tc.wantWarning && !hasEvent(events, "hugepages-2Mi: 4Mi") {
				t.Errorf("the warning does not say what the pod asks for: %q", events)
			}
		})
	}
}

// Huge pages are counted against the node's allocatable as any resource:
// a size the node does not have is none of it (the scheduler's Fits).
func TestAdmitHugePages(t *testing.T) {
	alloc := v1.ResourceList{
		v1.ResourceCPU: resource.MustParse("4"), v1.ResourceMemory: resource.MustParse("8Gi"),
		v1.ResourcePods: resource.MustParse("110"), "hugepages-2Mi": resource.MustParse("16Mi"),
	}
	four := v1.ResourceList{"hugepages-2Mi": resource.MustParse("4Mi")}
	var others []*v1.Pod
	for i := range 4 {
		p := hugePagesPod("h"+string(rune('a'+i)), four)
		if reason, msg := fitsResources(p, others, alloc, 110); reason != "" {
			t.Fatalf("pod %d of 4Mi refused: %s %s", i, reason, msg)
		}
		others = append(others, p)
	}
	reason, msg := fitsResources(hugePagesPod("h5", four), others, alloc, 110)
	if reason != "OutOfhugepages-2Mi" || !strings.Contains(msg, "hugepages-2Mi, requested: 4194304, used: 16777216, capacity: 16777216") {
		t.Errorf("fifth pod: %s %q, want OutOfhugepages-2Mi", reason, msg)
	}
	reason, _ = fitsResources(hugePagesPod("g", v1.ResourceList{"hugepages-1Gi": resource.MustParse("1Gi")}), nil, alloc, 110)
	if reason != "OutOfhugepages-1Gi" {
		t.Errorf("a size the node does not have: %q, want OutOfhugepages-1Gi", reason)
	}
}
