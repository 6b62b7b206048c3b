package eviction

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/nodeagent/nodeagent/configs"
)

// The Tracker's rules, observation by observation: a soft threshold sets
// its condition at once and evicts after its grace period; a break resets
// the grace period; the condition outlives the threshold by the
// transition period; a threshold that evicted stays met until its minimum
// reclaim is available.
func TestTracker(t *testing.T) {
	soft := configs.EvictionThreshold{Signal: "memory.available", Threshold: configs.Threshold{Quantity: q("100Mi")},
		GracePeriod: time.Minute, MinReclaim: &configs.Threshold{Quantity: q("50Mi")}}
	disk := configs.EvictionThreshold{Signal: "nodefs.available", Threshold: configs.Threshold{Percentage: 0.1}}
	mem := func(avail int64) Observations {
		return Observations{"memory.available": {Available: avail * mi, Capacity: 1024 * mi}, "nodefs.available": {Available: 50, Capacity: 100}}
	}
	type step struct {
		after     time.Duration // since the previous observation
		obs       Observations
		evict     bool // soft is to evict
		condition bool // MemoryPressure
	}
	for _, tc := range []struct {
		name       string
		transition time.Duration
		steps      []step
	}{
		{name: "grace period", transition: 5 * time.Minute, steps: []step{
			{0, mem(99), false, true},                // met: condition on, no eviction yet
			{59 * time.Second, mem(99), false, true}, // not yet
			{time.Second, mem(99), true, true},       // a minute met: evicts
		}},
		{name: "a break restarts the grace period", steps: []step{
			{0, mem(99), false, true},
			{50 * time.Second, mem(100), false, false}, // not below: not met
			{10 * time.Second, mem(99), false, true},
			{59 * time.Second, mem(99), false, true},
			{time.Second, mem(99), true, true},
		}},
		{name: "transition period", transition: 5 * time.Minute, steps: []step{
			{0, mem(99), false, true},
			{time.Minute, mem(500), false, true},                             // recovered: the condition stays
			{4*time.Minute - time.Second, mem(500), false, true},             // 5m since last met: not yet
			{time.Second, mem(500), false, false},                            // 5m: off
			{time.Second, Observations{}, false, false},                      // nothing read: nothing met
			{time.Second, mem(99), false, true},                              // met again
			{time.Second, Observations{"nodefs.available": {}}, false, true}, // unreadable memory: kept for the transition period
		}},
		{name: "minimum reclaim once evicting", steps: []step{
			{0, mem(99), false, true},
			{30 * time.Second, mem(120), false, false}, // not evicting yet: the minimum reclaim does not hold it
			{time.Second, mem(99), false, true},
			{time.Minute, mem(99), true, true},
			{10 * time.Second, mem(149), true, true},   // below 100Mi+50Mi: still met, still evicting
			{10 * time.Second, mem(150), false, false}, // reclaimed
			{10 * time.Second, mem(120), false, false}, // above the threshold: not met
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTracker([]configs.EvictionThreshold{disk, soft}, tc.transition)
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			for i, s := range tc.steps {
				now = now.Add(s.after)
				st := tr.Observe(s.obs, now)
				evicts := len(st.Evict) == 1 && st.Evict[0].Signal == "memory.available"
				if len(st.Evict) > 1 || (len(st.Evict) == 1 && !evicts) {
					t.Fatalf("step %d: evict %+v", i, st.Evict)
				}
				if evicts != s.evict || st.Pressure[v1.NodeMemoryPressure] != s.condition {
					t.Errorf("step %d: evict %v, MemoryPressure %v; want %v, %v", i, evicts, st.Pressure[v1.NodeMemoryPressure], s.evict, s.condition)
				}
				if st.Pressure[v1.NodeDiskPressure] {
					t.Errorf("step %d: DiskPressure without its threshold met", i)
				}
			}
		})
	}
}

// A hard threshold evicts at once; its condition is the one of its signal.
func TestTrackerHard(t *testing.T) {
	tr := NewTracker([]configs.EvictionThreshold{
		{Signal: "nodefs.inodesFree", Threshold: configs.Threshold{Percentage: 0.05}},
		{Signal: "pid.available", Threshold: configs.Threshold{Percentage: 0.05}},
	}, time.Minute)
	st := tr.Observe(Observations{"nodefs.inodesFree": {Available: 4, Capacity: 100}, "pid.available": {Available: 5, Capacity: 100}}, time.Now())
	if len(st.Evict) != 1 || st.Evict[0].Signal != "nodefs.inodesFree" {
		t.Errorf("evict %+v, want nodefs.inodesFree", st.Evict)
	}
	if !st.Pressure[v1.NodeDiskPressure] || st.Pressure[v1.NodePIDPressure] || st.Pressure[v1.NodeMemoryPressure] {
		t.Errorf("pressure %v, want DiskPressure alone", st.Pressure)
	}
	if !tr.Watches("pid.available") || tr.Watches("memory.available") {
		t.Error("Watches")
	}
}

// Met with and without the minimum reclaim, as the kubelet's thresholdsMet.
func TestMet(t *testing.T) {
	th := []configs.EvictionThreshold{{Signal: "imagefs.available", Threshold: configs.Threshold{Percentage: 0.15},
		MinReclaim: &configs.Threshold{Percentage: 0.05}}}
	for _, tc := range []struct {
		available      int64
		plain, reclaim bool
	}{{149, true, true}, {150, false, true}, {199, false, true}, {200, false, false}} {
		obs := Observations{"imagefs.available": {Available: tc.available, Capacity: 1000}}
		if got := len(Met(th, obs, false)) == 1; got != tc.plain {
			t.Errorf("available %d: met %v, want %v", tc.available, got, tc.plain)
		}
		if got := len(Met(th, obs, true)) == 1; got != tc.reclaim {
			t.Errorf("available %d: met with minimum reclaim %v, want %v", tc.available, got, tc.reclaim)
		}
	}
	if len(Met(th, Observations{}, true)) != 0 {
		t.Error("met without an observation")
	}
}
