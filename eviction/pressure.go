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
// Disk pressure likewise: when the root directory's filesystem (nodefs)
// or the runtime's image filesystem (imagefs) has less available than its
// evictionHard threshold, unused images are removed first (the kubelet's
// reclaimNodeLevelResources; nodeagent removes exited containers with
// their pods already); if the filesystem is still short, one pod is
// evicted, ranked by local ephemeral storage: above its request first,
// then lower priority, then the larger use above the request.

// Messages of node-pressure evictions (pkg/kubelet/eviction/helpers.go).
const (
	nodeLowMessageFmt      = "The node was low on resource: %v. "
	thresholdMetMessageFmt = "Threshold quantity: %v, available: %v. "
	containerMessageFmt    = "Container %s was using %s, request is %s, has larger consumption of %v. "
	signalMemoryAvailable  = "memory.available"
	signalNodeFsAvailable  = "nodefs.available"
	signalImageFsAvailable = "imagefs.available"
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
	return m.evictRanked(logger, pods, summary.Pods, v1.ResourceMemory, threshold, available, memoryUse, containerMemoryUse)
}

// diskPressure evicts one pod when nodefs.available or imagefs.available
// is below its hard threshold after unused images were removed; it
// returns the pod, or nil.
func (m *Manager) diskPressure(ctx context.Context, pods []*v1.Pod) *v1.Pod {
	logger := klog.FromContext(ctx)
	short := func() (threshold, available int64, ok bool) {
		for _, s := range []struct {
			signal string
			read   func(context.Context) (*statsapi.FsStats, error)
		}{{signalNodeFsAvailable, m.cfg.NodeFs}, {signalImageFsAvailable, m.cfg.ImageFs}} {
			t, has := m.cfg.Thresholds[s.signal]
			if !has || s.read == nil {
				continue
			}
			fs, err := s.read(ctx)
			if err != nil || fs == nil || fs.CapacityBytes == nil || fs.AvailableBytes == nil {
				continue
			}
			threshold, available := t.Value(int64(*fs.CapacityBytes)), int64(*fs.AvailableBytes)
			if available < threshold {
				return threshold, available, true
			}
		}
		return 0, 0, false
	}
	if _, _, ok := short(); !ok || len(pods) == 0 {
		return nil
	}
	if m.cfg.ReclaimDisk != nil {
		freed, err := m.cfg.ReclaimDisk(ctx)
		if err != nil {
			logger.Error(err, "Eviction manager: removing unused images")
		}
		logger.Info("Eviction manager: removed unused images under disk pressure", "freedBytes", freed)
	}
	threshold, available, ok := short()
	if !ok {
		return nil
	}
	stats, _, err := m.cfg.Stats(ctx)
	if err != nil {
		logger.Error(err, "Eviction manager: reading the pods' storage usage")
		return nil
	}
	return m.evictRanked(logger, pods, stats, v1.ResourceEphemeralStorage, threshold, available, diskUse, containerDiskUse)
}

// evictRanked evicts the first pod, critical ones passed over, in the
// kubelet's order for the pressure of resource (rank), with the kubelet's
// message and a DisruptionTarget condition; it returns the pod, or nil.
// use and containerUse read a pod's and a container's use of resource.
func (m *Manager) evictRanked(logger klog.Logger, pods []*v1.Pod, all []statsapi.PodStats, name v1.ResourceName, threshold, available int64,
	use func(*statsapi.PodStats) int64, containerUse func(*statsapi.ContainerStats) *int64) *v1.Pod {
	stats := make(map[string]*statsapi.PodStats, len(all))
	for i := range all {
		stats[all[i].PodRef.UID] = &all[i]
	}
	ranked := rank(pods, stats, name, use)
	logger.Info("Eviction manager: attempting to reclaim", "resourceName", name,
		"available", available, "threshold", threshold, "pods", klog.KObjSlice(ranked))
	for _, pod := range ranked {
		if staticpods.IsCritical(pod) {
			continue
		}
		msg := fmt.Sprintf(nodeLowMessageFmt, name) +
			fmt.Sprintf(thresholdMetMessageFmt, resource.NewQuantity(threshold, resource.BinarySI), resource.NewQuantity(available, resource.BinarySI)) +
			containersOver(pod, stats[string(pod.UID)], name, containerUse)
		if m.evictPod(logger, pod, msg, &v1.PodCondition{
			Type: v1.DisruptionTarget, Status: v1.ConditionTrue, Reason: v1.PodReasonTerminationByKubelet, Message: msg,
		}) {
			return pod
		}
	}
	return nil
}

// diskUse is a pod's local ephemeral storage, 0 when unknown.
func diskUse(st *statsapi.PodStats) int64 {
	if st == nil || st.EphemeralStorage == nil || st.EphemeralStorage.UsedBytes == nil {
		return 0
	}
	return int64(*st.EphemeralStorage.UsedBytes)
}

// containerDiskUse is a container's writable layer and logs, nil when the
// stats lack either (the kubelet's evictionMessage).
func containerDiskUse(cs *statsapi.ContainerStats) *int64 {
	if cs.Rootfs == nil || cs.Rootfs.UsedBytes == nil || cs.Logs == nil || cs.Logs.UsedBytes == nil {
		return nil
	}
	v := int64(*cs.Rootfs.UsedBytes + *cs.Logs.UsedBytes)
	return &v
}

// containerMemoryUse is a container's working set, nil when unknown.
func containerMemoryUse(cs *statsapi.ContainerStats) *int64 {
	if cs.Memory == nil || cs.Memory.WorkingSetBytes == nil {
		return nil
	}
	v := int64(*cs.Memory.WorkingSetBytes)
	return &v
}

// memoryUse is a pod's working set, 0 when unknown.
func memoryUse(st *statsapi.PodStats) int64 {
	if st == nil || st.Memory == nil || st.Memory.WorkingSetBytes == nil {
		return 0
	}
	return int64(*st.Memory.WorkingSetBytes)
}

// rank orders pods for eviction under the pressure of resource, as the
// kubelet's rankMemoryPressure and rankDiskPressureFunc: pods without stats
// first, then those using more than they request, then lower priority,
// then the larger use above the request; use reads a pod's stats.
func rank(pods []*v1.Pod, stats map[string]*statsapi.PodStats, name v1.ResourceName, use func(*statsapi.PodStats) int64) []*v1.Pod {
	type ranked struct {
		pod               *v1.Pod
		found, exceeds    bool
		priority          int32
		aboveRequestBytes int64
	}
	rs := make([]ranked, 0, len(pods))
	for _, p := range pods {
		st, found := stats[string(p.UID)]
		req := resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{})[name]
		used := use(st)
		r := ranked{pod: p, found: found, exceeds: used > req.Value(), aboveRequestBytes: used - req.Value()}
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

// containersOver names, as the kubelet's evictionMessage, the containers
// (app and init) using more of resource than they request.
func containersOver(pod *v1.Pod, st *statsapi.PodStats, name v1.ResourceName, use func(*statsapi.ContainerStats) *int64) string {
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
			if u := use(&cs); u != nil {
				used := resource.NewQuantity(*u, resource.BinarySI)
				req := containers[i].Resources.Requests[name]
				if used.Cmp(req) > 0 {
					out += fmt.Sprintf(containerMessageFmt, cs.Name, used.String(), req.String(), name)
				}
			}
			break
		}
	}
	return out
}

// Thresholds are the hard eviction thresholds (configs.Threshold).
type Thresholds = map[string]configs.Threshold
