package eviction

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/nodeagent/nodeagent/configs"
)

// readings are what the fixture's Manager reads, as the agent's sources.
type readings struct {
	memAvailable                uint64 // the summary's node memory.availableBytes
	nodeInodesFree, imageInodes uint64
	pids, pidMax                uint64
}

func (f *fixture) read(r *readings) {
	f.m.cfg.MemoryCapacity = 8 * gi
	f.m.cfg.Summary = func(context.Context) (*statsapi.Summary, error) {
		return &statsapi.Summary{Node: statsapi.NodeStats{Memory: &statsapi.MemoryStats{AvailableBytes: ptr.To(r.memAvailable)}}}, nil
	}
	fs := func(inodesFree uint64) *statsapi.FsStats {
		return &statsapi.FsStats{CapacityBytes: ptr.To(uint64(100 * gi)), AvailableBytes: ptr.To(uint64(50 * gi)),
			Inodes: ptr.To(uint64(1000)), InodesFree: ptr.To(inodesFree)}
	}
	f.m.cfg.NodeFs = func(context.Context) (*statsapi.FsStats, error) { return fs(r.nodeInodesFree), nil }
	f.m.cfg.ImageFs = func(context.Context) (*statsapi.FsStats, error) { return fs(r.imageInodes), nil }
	f.m.cfg.PIDs = func() (uint64, uint64, error) { return r.pids, r.pidMax, nil }
}

const gi = 1024 * mi

// The conditions follow the signals the Manager reads, memory from the
// summary; every signal met evicts a pod, the inode and pid ones too.
func TestUnderPressure(t *testing.T) {
	calm := readings{memAvailable: 4 * gi, nodeInodesFree: 500, imageInodes: 500, pids: 300, pidMax: 1000}
	thresholds := []configs.EvictionThreshold{
		hard("memory.available", configs.Threshold{Quantity: q("100Mi")}),
		hard("nodefs.inodesFree", configs.Threshold{Percentage: 0.05}),
		hard("imagefs.inodesFree", configs.Threshold{Percentage: 0.05}),
		hard("pid.available", configs.Threshold{Percentage: 0.1}),
	}
	for _, tc := range []struct {
		name       string
		modify     func(*readings)
		thresholds []configs.EvictionThreshold // nil: thresholds
		want       v1.NodeConditionType        // "": none
	}{
		{name: "calm"},
		{name: "memory", modify: func(r *readings) { r.memAvailable = 50 * mi }, want: v1.NodeMemoryPressure},
		{name: "nodefs inodes", modify: func(r *readings) { r.nodeInodesFree = 49 }, want: v1.NodeDiskPressure},
		{name: "imagefs inodes", modify: func(r *readings) { r.imageInodes = 10 }, want: v1.NodeDiskPressure},
		{name: "pid", modify: func(r *readings) { r.pids = 901 }, want: v1.NodePIDPressure},
		{name: "no thresholds", thresholds: []configs.EvictionThreshold{},
			modify: func(r *readings) { *r = readings{pidMax: 1000, pids: 1000} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(clocktesting.NewFakeClock(time.Now()))
			r := calm
			if tc.modify != nil {
				tc.modify(&r)
			}
			f.read(&r)
			ts := thresholds
			if tc.thresholds != nil {
				ts = tc.thresholds
			}
			f.setThresholds(ts...)
			f.pods = []*v1.Pod{memPod("a", "", 0)}
			f.stats = []statsapi.PodStats{memStats("a", 10*mi)}
			evicted := f.m.Synchronize(context.Background())
			for _, c := range []v1.NodeConditionType{v1.NodeMemoryPressure, v1.NodeDiskPressure, v1.NodePIDPressure} {
				if got := f.m.UnderPressure(c); got != (c == tc.want) {
					t.Errorf("UnderPressure(%s) = %v", c, got)
				}
			}
			if wantEvict := tc.want != ""; (len(evicted) == 1) != wantEvict {
				t.Errorf("evicted %v, want a pod: %v", evicted, wantEvict)
			}
		})
	}
}

// A soft threshold sets its condition before its grace period; the
// condition stays on for the transition period after it was last met.
// Nothing is on before the first check, nor on a nil Manager.
func TestUnderPressureTransition(t *testing.T) {
	var none *Manager
	if none.UnderPressure(v1.NodeMemoryPressure) {
		t.Error("a nil Manager is under pressure")
	}
	clk := clocktesting.NewFakeClock(time.Now())
	f := newFixture(clk)
	r := readings{memAvailable: 4 * gi, pidMax: 1000}
	f.read(&r)
	soft := configs.EvictionThreshold{Signal: "memory.available", Threshold: configs.Threshold{Quantity: q("1Gi")},
		GracePeriod: time.Minute}
	f.m.cfg.Thresholds = []configs.EvictionThreshold{soft}
	f.m.tracker = NewTracker(f.m.cfg.Thresholds, 5*time.Minute)
	if f.m.UnderPressure(v1.NodeMemoryPressure) {
		t.Fatal("under pressure before the first check")
	}
	for i, s := range []struct {
		after     time.Duration
		available uint64
		want      bool
	}{
		{0, gi, false},
		{10 * time.Second, gi - 1, true}, // soft, within its grace period: no eviction
		{10 * time.Second, 4 * gi, true},
		{5*time.Minute - 10*time.Second - time.Nanosecond, 4 * gi, true},
		{time.Nanosecond, 4 * gi, false},
	} {
		clk.Step(s.after)
		r.memAvailable = s.available
		if ev := f.m.Synchronize(context.Background()); len(ev) != 0 {
			t.Fatalf("step %d: evicted %v", i, ev)
		}
		if got := f.m.UnderPressure(v1.NodeMemoryPressure); got != s.want {
			t.Fatalf("step %d: UnderPressure = %v, want %v", i, got, s.want)
		}
	}
}

// Without localStorageCapacityIsolation the limits are not enforced, and
// the thresholds still are.
func TestNoLocalStorageLimits(t *testing.T) {
	f := newFixture(clocktesting.NewFakeClock(time.Now()))
	f.m.cfg.LocalStorageLimits = false
	f.pods = []*v1.Pod{pod("a", "10Mi")}
	f.stats = []statsapi.PodStats{usage("a", 20*mi, 0, 0, 20*mi)}
	if ev := f.m.Synchronize(context.Background()); len(ev) != 0 || f.reads != 0 {
		t.Fatalf("evicted %v after %d reads, want none", ev, f.reads)
	}
}

// A summary that cannot be read leaves the conditions as they were, as the
// kubelet's synchronize returns early: MemoryPressure does not lapse for
// want of a reading, and nothing is evicted.
func TestSummaryErrorKeepsConditions(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	f := newFixture(clk)
	r := readings{memAvailable: 50 * mi, pidMax: 1000}
	f.read(&r)
	f.m.cfg.Thresholds = []configs.EvictionThreshold{hard("memory.available", configs.Threshold{Quantity: q("100Mi")})}
	f.m.tracker = NewTracker(f.m.cfg.Thresholds, time.Minute)
	f.m.Synchronize(context.Background())
	if !f.m.UnderPressure(v1.NodeMemoryPressure) {
		t.Fatal("no memory pressure at 50Mi available")
	}
	f.m.cfg.Summary = func(context.Context) (*statsapi.Summary, error) { return nil, context.DeadlineExceeded }
	clk.Step(2 * time.Minute)
	if ev := f.m.Synchronize(context.Background()); len(ev) != 0 {
		t.Fatalf("evicted %v without a reading", ev)
	}
	if !f.m.UnderPressure(v1.NodeMemoryPressure) {
		t.Error("memory pressure lapsed while the summary could not be read")
	}
}
