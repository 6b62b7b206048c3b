package nodestatus

import (
	"errors"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2/ktesting"
)

// The pressure conditions are what the eviction manager says, whatever
// the host's readings; with no manager (nil UnderPressure), or one that
// has not checked yet, they are False.
func TestPressureConditions(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	type reasons struct{ ok, bad string }
	want := map[v1.NodeConditionType]reasons{
		v1.NodeMemoryPressure: {"KubeletHasSufficientMemory", "KubeletHasInsufficientMemory"},
		v1.NodeDiskPressure:   {"KubeletHasNoDiskPressure", "KubeletHasDiskPressure"},
		v1.NodePIDPressure:    {"KubeletHasSufficientPID", "KubeletHasInsufficientPID"},
	}
	for _, tc := range []struct {
		name      string
		under     []v1.NodeConditionType
		noManager bool
		modify    func(*fakeHost)
	}{
		{name: "no pressure"},
		{name: "no eviction manager", noManager: true},
		{name: "memory", under: []v1.NodeConditionType{v1.NodeMemoryPressure}},
		{name: "disk", under: []v1.NodeConditionType{v1.NodeDiskPressure}},
		{name: "pid", under: []v1.NodeConditionType{v1.NodePIDPressure}},
		{name: "all", under: []v1.NodeConditionType{v1.NodeMemoryPressure, v1.NodeDiskPressure, v1.NodePIDPressure}},
		{name: "meminfo says low, the manager does not",
			modify: func(h *fakeHost) { h.memAvail = mi }},
		{name: "unreadable host, the manager says memory", under: []v1.NodeConditionType{v1.NodeMemoryPressure},
			modify: func(h *fakeHost) { h.memErr, h.fsErr = errors.New("no meminfo"), errors.New("no statfs") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if tc.noManager {
				h.c.cfg.UnderPressure = nil
			}
			for _, c := range tc.under {
				h.pressure.set(c, true)
			}
			if tc.modify != nil {
				tc.modify(h.host)
			}
			node := &v1.Node{}
			h.c.setStatus(ctx, node, h.clock.Now())
			for typ, r := range want {
				under := false
				for _, u := range tc.under {
					under = under || u == typ
				}
				wantStatus, wantReason := v1.ConditionFalse, r.ok
				if under {
					wantStatus, wantReason = v1.ConditionTrue, r.bad
				}
				c := condition(node, typ)
				if c == nil || c.Status != wantStatus || c.Reason != wantReason {
					t.Errorf("%s = %+v, want %s %s", typ, c, wantStatus, wantReason)
				}
			}
		})
	}
}

// A condition follows the manager from one status computation to the
// next, its lastTransitionTime moving only when it flips.
func TestPressureConditionsFollowTheManager(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	h := newHarness(t)
	node := &v1.Node{}
	for i, s := range []struct {
		under bool
		want  v1.ConditionStatus
	}{{false, v1.ConditionFalse}, {true, v1.ConditionTrue}, {true, v1.ConditionTrue}, {false, v1.ConditionFalse}} {
		h.pressure.set(v1.NodeDiskPressure, s.under)
		before := condition(node, v1.NodeDiskPressure)
		var prev *v1.NodeCondition
		if before != nil {
			c := *before
			prev = &c
		}
		h.c.setStatus(ctx, node, h.clock.Now())
		c := condition(node, v1.NodeDiskPressure)
		if c == nil || c.Status != s.want {
			t.Fatalf("step %d: DiskPressure = %+v, want %s", i, c, s.want)
		}
		flipped := prev == nil || prev.Status != c.Status
		if moved := prev == nil || !c.LastTransitionTime.Equal(&prev.LastTransitionTime); moved != flipped {
			t.Errorf("step %d: lastTransitionTime moved %v, status flipped %v", i, moved, flipped)
		}
		h.clock.Step(10 * time.Second)
	}
}
