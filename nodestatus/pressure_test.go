package nodestatus

import (
	"errors"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/nodeagent/nodeagent/configs"
)

// The pressure conditions follow the hard eviction thresholds (the
// harness has the kubelet's defaults); a signal without a threshold never
// sets its condition.
func TestPressureConditions(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	const containerd = "/var/lib/containerd"
	onlyMemory := map[string]configs.Threshold{signalMemoryAvailable: {Quantity: ptr.To(resource.MustParse("100Mi"))}}
	for _, tc := range []struct {
		name         string
		evictionHard map[string]configs.Threshold // nil: the kubelet's defaults
		imageFs      string                       // the runtime's image filesystem
		modify       func(*fakeHost)
		typ          v1.NodeConditionType
		want         v1.ConditionStatus
		wantReason   string
	}{
		{name: "memory ok", modify: func(h *fakeHost) { h.memAvail = 100 * mi },
			typ: v1.NodeMemoryPressure, want: v1.ConditionFalse, wantReason: "KubeletHasSufficientMemory"},
		{name: "memory low", modify: func(h *fakeHost) { h.memAvail = 100*mi - 1 },
			typ: v1.NodeMemoryPressure, want: v1.ConditionTrue, wantReason: "KubeletHasInsufficientMemory"},
		{name: "memory percentage", evictionHard: map[string]configs.Threshold{signalMemoryAvailable: {Percentage: 0.5}},
			modify: func(h *fakeHost) { h.memAvail = 4*gi - 1 }, typ: v1.NodeMemoryPressure, want: v1.ConditionTrue},
		{name: "memory unreadable", modify: func(h *fakeHost) { h.memErr = errors.New("no") },
			typ: v1.NodeMemoryPressure, want: v1.ConditionUnknown, wantReason: "NodeStatusUnknown"},
		{name: "memory without threshold", evictionHard: map[string]configs.Threshold{}, modify: func(h *fakeHost) { h.memAvail = 0 },
			typ: v1.NodeMemoryPressure, want: v1.ConditionFalse},

		{name: "disk ok", modify: func(h *fakeHost) { h.setFs(rootDir, func(s *FsStats) { s.Available = 11 * gi }) },
			typ: v1.NodeDiskPressure, want: v1.ConditionFalse, wantReason: "KubeletHasNoDiskPressure"},
		{name: "disk low", modify: func(h *fakeHost) { h.setFs(rootDir, func(s *FsStats) { s.Available = 10*gi - 1 }) },
			typ: v1.NodeDiskPressure, want: v1.ConditionTrue, wantReason: "KubeletHasDiskPressure"},
		{name: "inodes low", modify: func(h *fakeHost) { h.setFs(rootDir, func(s *FsStats) { s.InodesFree = 49999 }) },
			typ: v1.NodeDiskPressure, want: v1.ConditionTrue},
		{name: "no inodes reported", modify: func(h *fakeHost) { h.setFs(rootDir, func(s *FsStats) { s.Inodes, s.InodesFree = 0, 0 }) },
			typ: v1.NodeDiskPressure, want: v1.ConditionFalse},
		{name: "images on the root disk", imageFs: rootDir,
			modify: func(h *fakeHost) { h.setFs(rootDir, func(s *FsStats) { s.Available = 14 * gi }) },
			typ:    v1.NodeDiskPressure, want: v1.ConditionTrue},
		{name: "images on the root disk, no imagefs threshold", imageFs: rootDir,
			evictionHard: map[string]configs.Threshold{signalNodeFsAvailable: {Percentage: 0.10}},
			modify:       func(h *fakeHost) { h.setFs(rootDir, func(s *FsStats) { s.Available = 14 * gi }) },
			typ:          v1.NodeDiskPressure, want: v1.ConditionFalse},
		{name: "image filesystem low", imageFs: containerd,
			modify: func(h *fakeHost) {
				h.fs[containerd] = FsStats{Capacity: 100 * gi, Available: 10 * gi, Inodes: 100, InodesFree: 50}
			},
			typ: v1.NodeDiskPressure, want: v1.ConditionTrue},
		{name: "image filesystem inodes low", imageFs: containerd,
			modify: func(h *fakeHost) {
				h.fs[containerd] = FsStats{Capacity: 100 * gi, Available: 50 * gi, Inodes: 100, InodesFree: 4}
			},
			typ: v1.NodeDiskPressure, want: v1.ConditionTrue},
		{name: "image filesystem unreadable", imageFs: "/missing",
			typ: v1.NodeDiskPressure, want: v1.ConditionFalse},
		{name: "disk unreadable", modify: func(h *fakeHost) { h.fsErr = errors.New("no") },
			typ: v1.NodeDiskPressure, want: v1.ConditionUnknown},
		{name: "disk without thresholds", evictionHard: onlyMemory, imageFs: rootDir,
			modify: func(h *fakeHost) { h.setFs(rootDir, func(s *FsStats) { s.Available, s.InodesFree = 0, 0 }) },
			typ:    v1.NodeDiskPressure, want: v1.ConditionFalse},

		// The kubelet's defaults have no pid.available.
		{name: "pids without threshold", modify: func(h *fakeHost) { h.pids, h.pidMax = 1000, 1000 },
			typ: v1.NodePIDPressure, want: v1.ConditionFalse, wantReason: "KubeletHasSufficientPID"},
		{name: "pids ok", evictionHard: map[string]configs.Threshold{signalPIDAvailable: {Percentage: 0.10}},
			modify: func(h *fakeHost) { h.pids, h.pidMax = 900, 1000 }, typ: v1.NodePIDPressure, want: v1.ConditionFalse},
		{name: "pids high", evictionHard: map[string]configs.Threshold{signalPIDAvailable: {Percentage: 0.10}},
			modify: func(h *fakeHost) { h.pids, h.pidMax = 901, 1000 },
			typ:    v1.NodePIDPressure, want: v1.ConditionTrue, wantReason: "KubeletHasInsufficientPID"},
		{name: "pids quantity", evictionHard: map[string]configs.Threshold{signalPIDAvailable: {Quantity: ptr.To(resource.MustParse("1k"))}},
			modify: func(h *fakeHost) { h.pids, h.pidMax = 4193305, 4194304 }, typ: v1.NodePIDPressure, want: v1.ConditionTrue},
		{name: "pids above the limit", evictionHard: map[string]configs.Threshold{signalPIDAvailable: {Quantity: ptr.To(resource.MustParse("1"))}},
			modify: func(h *fakeHost) { h.pids, h.pidMax = 1001, 1000 }, typ: v1.NodePIDPressure, want: v1.ConditionTrue},
		{name: "pids unreadable", evictionHard: map[string]configs.Threshold{signalPIDAvailable: {Percentage: 0.10}},
			modify: func(h *fakeHost) { h.pErr = errors.New("no") }, typ: v1.NodePIDPressure, want: v1.ConditionUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if tc.evictionHard != nil {
				h.c.setThresholds(hardThresholds(tc.evictionHard), 0)
			}
			h.rt.imageFs = tc.imageFs
			if tc.modify != nil {
				tc.modify(h.host)
			}
			node := &v1.Node{}
			h.c.setStatus(ctx, node, h.clock.Now())
			c := condition(node, tc.typ)
			if c == nil || c.Status != tc.want {
				t.Fatalf("%s = %+v, want %s", tc.typ, c, tc.want)
			}
			if tc.wantReason != "" && c.Reason != tc.wantReason {
				t.Errorf("%s reason = %q, want %q", tc.typ, c.Reason, tc.wantReason)
			}
		})
	}
}

// The conditions follow the eviction manager's rules: a soft threshold
// sets its condition as soon as it is met, before its grace period; the
// condition stays True for the transition period after the last time a
// threshold was met; a threshold past its grace period stays met until
// its minimum reclaim is available.
func TestPressureConditionsOverTime(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	soft := configs.EvictionThreshold{Signal: signalMemoryAvailable, Threshold: configs.Threshold{Quantity: ptr.To(resource.MustParse("1Gi"))},
		GracePeriod: time.Minute, MinReclaim: &configs.Threshold{Quantity: ptr.To(resource.MustParse("512Mi"))}}
	type step struct {
		after    time.Duration
		memAvail uint64
		want     v1.ConditionStatus
	}
	for _, tc := range []struct {
		name       string
		transition time.Duration
		steps      []step
	}{
		{name: "soft threshold within its grace period", steps: []step{
			{0, gi, v1.ConditionFalse},
			{10 * time.Second, gi - 1, v1.ConditionTrue},
			{10 * time.Second, gi, v1.ConditionFalse}, // within its grace period: no minimum reclaim
		}},
		{name: "transition period", transition: 5 * time.Minute, steps: []step{
			{0, gi - 1, v1.ConditionTrue},
			{10 * time.Second, 4 * gi, v1.ConditionTrue},
			{5*time.Minute - 10*time.Second - time.Nanosecond, 4 * gi, v1.ConditionTrue},
			{time.Nanosecond, 4 * gi, v1.ConditionFalse},
		}},
		{name: "minimum reclaim", steps: []step{
			{0, gi - 1, v1.ConditionTrue},
			{time.Minute, gi - 1, v1.ConditionTrue}, // past the grace period
			{10 * time.Second, gi + 512*mi - 1, v1.ConditionTrue},
			{10 * time.Second, gi + 512*mi, v1.ConditionFalse},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.c.setThresholds([]configs.EvictionThreshold{soft}, tc.transition)
			for i, s := range tc.steps {
				h.clock.Step(s.after)
				h.host.memAvail = s.memAvail
				node := &v1.Node{}
				h.c.setStatus(ctx, node, h.clock.Now())
				if c := condition(node, v1.NodeMemoryPressure); c == nil || c.Status != s.want {
					t.Fatalf("step %d: MemoryPressure = %+v, want %s", i, c, s.want)
				}
			}
		})
	}
}
