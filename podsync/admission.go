package podsync

import (
	"context"
	"sort"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// admission decides, one pod at a time, which new pods the node runs: the
// kubelet's HandlePodAdditions. Each pod is checked against the pods
// admitted before it and only those, never against a pod that arrived with
// it and is still waiting, so two pods that do not fit together do not
// reject each other: the older one runs.
//
// Pod workers run concurrently, so the worker of a newer pod may ask first.
// Then every waiting pod older than it is decided first, in creation order
// (ties in the order the pods reached the agent, which is the order
// Config.ActivePods lists them in), and its verdict is kept for its own
// worker. A verdict is kept while the pod is active (Config.ActivePods): a
// retried status write finds the same answer.
type admission struct {
	mu sync.Mutex
	// verdicts holds the reason a pod was refused, "" when admitted.
	verdicts map[types.UID]verdict
	// allocated holds the resources granted to the containers of each
	// admitted pod (resize.go); admission counts those of the others.
	allocated map[types.UID]allocation
	// restored holds the grants read from the checkpoint (checkpoint.go)
	// of pods not allocated since the agent started; loaded tells that
	// the checkpoint was read (or found missing or unusable), loadFailed
	// that reading it failed and was logged (it is tried again),
	// podsKnown that the agent's pod list is complete (or nothing was
	// restored), written what was last written.
	restored   map[types.UID]allocation
	loaded     bool
	loadFailed bool
	podsKnown  bool
	written    []byte
}

type verdict struct{ reason, message string }

// admit returns the reason and message for refusing a new pod, or "".
func (s *Syncer) admit(ctx context.Context, pod *v1.Pod) (string, string) {
	a := &s.admission
	a.mu.Lock()
	defer a.mu.Unlock()
	s.restoreGrants(ctx)
	defer s.saveGrants(ctx)
	if v, ok := a.verdicts[pod.UID]; ok {
		return v.reason, v.message
	}
	var active []*v1.Pod
	if s.cfg.ActivePods != nil {
		active = s.cfg.ActivePods()
	}
	a.forgetGone(active)
	var node *v1.Node
	if s.cfg.Node != nil {
		node = s.cfg.Node()
	}
	admitted, waiting := a.split(pod, active)
	for i, p := range admitted {
		admitted[i] = a.grantOf(p.UID).apply(p)
	}
	for _, p := range waiting {
		// A grant from the checkpoint is what the pod was admitted
		// with before an agent restart, as the kubelet's AddPod.
		p = a.restored[p.UID].apply(p)
		reason, msg := s.admitOne(p, admitted, node)
		if reason == "" {
			a.allocated[p.UID] = specAllocation(p)
			delete(a.restored, p.UID)
		}
		if p.UID == pod.UID {
			a.verdicts[pod.UID] = verdict{reason, msg}
			return reason, msg
		}
		// An older pod decided for its worker. Only an admission is
		// kept: a refused pod is asked again by its worker, and refused
		// again since the node only filled up meanwhile.
		if reason == "" {
			a.verdicts[p.UID] = verdict{}
			admitted = append(admitted, p)
		}
	}
	return "", "" // unreachable: pod is among the waiting
}

// split returns the pods admitted already and, in admission order, those
// waiting for a verdict up to and including pod. A pod that has a start
// time ran on this node (before an agent restart, for instance) and counts
// as admitted; a pod in a terminal phase or refused counts for nothing.
func (a *admission) split(pod *v1.Pod, active []*v1.Pod) (admitted, waiting []*v1.Pod) {
	found := false
	for _, p := range active {
		if p.UID == pod.UID {
			waiting = append(waiting, pod) // the newest version, in its place
			found = true
			continue
		}
		if p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed {
			continue
		}
		if v, ok := a.verdicts[p.UID]; ok {
			if v.reason == "" {
				admitted = append(admitted, p)
			}
			continue
		}
		if p.Status.StartTime != nil {
			admitted = append(admitted, p)
			continue
		}
		waiting = append(waiting, p)
	}
	if !found {
		waiting = append(waiting, pod)
	}
	sort.SliceStable(waiting, func(i, j int) bool {
		return waiting[i].CreationTimestamp.Before(&waiting[j].CreationTimestamp)
	})
	for i, p := range waiting {
		if p.UID == pod.UID {
			return admitted, waiting[:i+1]
		}
	}
	return admitted, waiting
}

// forgetGone drops the verdicts and grants of pods no longer active: their
// workers ended, or their objects are gone (the kubelet's
// allocationManager.RemovePod). Grants restored from the checkpoint are
// not pruned here: a pod the agent knows may not have reached its worker
// yet, and its grant must wait for it; only forgetGoneGrants, which sees
// the agent's whole pod list, drops them (the kubelet's
// RemoveOrphanedPods).
func (a *admission) forgetGone(active []*v1.Pod) {
	if a.verdicts == nil {
		a.verdicts = map[types.UID]verdict{}
	}
	if a.allocated == nil {
		a.allocated = map[types.UID]allocation{}
	}
	live := make(map[types.UID]bool, len(active))
	for _, p := range active {
		live[p.UID] = true
	}
	for uid := range a.verdicts {
		if !live[uid] {
			delete(a.verdicts, uid)
		}
	}
	for uid := range a.allocated {
		if !live[uid] {
			delete(a.allocated, uid)
		}
	}
}
