package eviction

import (
	"context"
	"fmt"
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/klog/v2"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/nodeagent/nodeagent/configs"
	"github.com/nodeagent/nodeagent/staticpods"
)

// Node-pressure eviction for memory, as the kubelet's eviction manager
// does for a hard threshold: when the node's available memory (capacity
// less the working set of the node's root cgroup, the summary's
// memory.availableBytes) falls below the evictionHard memory.available
// threshold, one pod is evicted per period, the first of:
//
//   - pods whose memory use is above their request before the others,
//   - then lower priority first,
//   - then the larger use above the request first,
//
// pods without stats first of all (the kubelet's rankMemoryPressure).
// Critical pods are passed over. The evicted pod ends Failed, reason
// Evicted, with the kubelet's message ("The node was low on resource:
// memory. Threshold quantity: …, available: …. Container c was using …,
// request is …, has larger consumption of memory. ") and a
// DisruptionTarget condition (reason TerminationByKubelet), through its
// worker with a grace period of 1 s.
//
// nodefs/imagefs pressure evicts nothing: the kubelet first reclaims
// images and dead containers there, which nodeagent does not tie in yet;
// the DiskPressure condition is reported (package nodestatus).

// Messages of node-pressure evictions (pkg/kubelet/eviction/helpers.go).
const (
	nodeLowMessageFmt      = "The node was low on resource: %v. "
	thresholdMetMessageFmt = "Threshold quantity: %v, available: %v. "
	containerMessageFmt    = "Container %s was using %s, request is %s, has larger consumption of %v. "
	signalMemoryAvailable  = "memory.available"
)

// memoryPressure evicts one pod when memory.available is below its hard
// threshold; it returns the pod, or nil.
func (m *Manager) memoryPressure(ctx context.Context, pods []*v1.Pod) *v1.Pod {
	t, ok := m.cfg.Thresholds[signalMemoryAvailable]
	if !ok || m.cfg.Summary == nil || len(pods) == 0 {
		return nil
	}
	logger := klog.FromContext(ctx)
	summary, err := m.cfg.Summary(ctx)
	if err != nil {
		logger.Error(err, "Eviction manager: reading the node's memory")
		return nil
	}
	mem := summary.Node.Memory
	if mem == nil || mem.AvailableBytes == nil {
		return nil
	}
	threshold := t.Value(m.cfg.MemoryCapacity)
	available := int64(*mem.AvailableBytes)
	if available >= threshold {
		return nil
	}
	stats := map[string]*statsapi.PodStats{}
	for i := range summary.Pods {
		stats[summary.Pods[i].PodRef.UID] = &summary.Pods[i]
	}
	ranked := rankMemory(pods, stats)
	logger.Info("Eviction manager: attempting to reclaim", "resourceName", v1.ResourceMemory,
		"available", available, "threshold", threshold, "pods", klog.KObjSlice(ranked))
	for _, pod := range ranked {
		if staticpods.IsCritical(pod) {
			continue
		}
		msg := fmt.Sprintf(nodeLowMessageFmt, v1.ResourceMemory) +
			fmt.Sprintf(thresholdMetMessageFmt, resource.NewQuantity(threshold, resource.BinarySI), resource.NewQuantity(available, resource.BinarySI)) +
			containersOverRequest(pod, stats[string(pod.UID)])
		if m.evictPod(logger, pod, msg, &v1.PodCondition{
			Type: v1.DisruptionTarget, Status: v1.ConditionTrue, Reason: v1.PodReasonTerminationByKubelet, Message: msg,
		}) {
			return pod
		}
	}
	return nil
}

// memoryUse is a pod's working set, 0 when unknown.
func memoryUse(st *statsapi.PodStats) int64 {
	if st == nil || st.Memory == nil || st.Memory.WorkingSetBytes == nil {
		return 0
	}
	return int64(*st.Memory.WorkingSetBytes)
}

// rankMemory orders pods for eviction under memory pressure.
func rankMemory(pods []*v1.Pod, stats map[string]*statsapi.PodStats) []*v1.Pod {
	type ranked struct {
		pod               *v1.Pod
		found, exceeds    bool
		priority          int32
		aboveRequestBytes int64
	}
	rs := make([]ranked, 0, len(pods))
	for _, p := range pods {
		st, found := stats[string(p.UID)]
		req := resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{})[v1.ResourceMemory]
		use := memoryUse(st)
		r := ranked{pod: p, found: found, exceeds: use > req.Value(), aboveRequestBytes: use - req.Value()}
		if p.Spec.Priority != nil {
			r.priority = *p.Spec.Priority
		}
		rs = append(rs, r)
	}
	slices.SortStableFunc(rs, func(a, b ranked) int {
		switch {
		case a.found != b.found:
			return boolFirst(!a.found, !b.found)
		case a.exceeds != b.exceeds:
			return boolFirst(a.exceeds, b.exceeds)
		case a.priority != b.priority:
			if a.priority < b.priority {
				return -1
			}
			return 1
		case a.aboveRequestBytes != b.aboveRequestBytes:
			if a.aboveRequestBytes > b.aboveRequestBytes {
				return -1
			}
			return 1
		}
		return 0
	})
	out := make([]*v1.Pod, len(rs))
	for i := range rs {
		out[i] = rs[i].pod
	}
	return out
}

// boolFirst orders the true one first.
func boolFirst(a, b bool) int {
	if a && !b {
		return -1
	}
	if b && !a {
		return 1
	}
	return 0
}

// containersOverRequest names, as the kubelet's evictionMessage, the
// containers (app and init) using more memory than they request.
func containersOverRequest(pod *v1.Pod, st *statsapi.PodStats) string {
	if st == nil {
		return ""
	}
	containers := append(append([]v1.Container{}, pod.Spec.Containers...), pod.Spec.InitContainers...)
	out := ""
	for _, cs := range st.Containers {
		for i := range containers {
			if containers[i].Name != cs.Name {
				continue
			}
			if cs.Memory != nil && cs.Memory.WorkingSetBytes != nil {
				use := resource.NewQuantity(int64(*cs.Memory.WorkingSetBytes), resource.BinarySI)
				req := containers[i].Resources.Requests[v1.ResourceMemory]
				if use.Cmp(req) > 0 {
					out += fmt.Sprintf(containerMessageFmt, cs.Name, use.String(), req.String(), v1.ResourceMemory)
				}
			}
			break
		}
	}
	return out
}

// Thresholds are the hard eviction thresholds (configs.Threshold).
type Thresholds = map[string]configs.Threshold
