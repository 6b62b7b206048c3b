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

// Node-pressure eviction, as the kubelet's eviction manager does it. Every
// period the signals with a threshold are read: memory.available (the
// node's capacity less the working set of its root cgroup, the summary's
// memory.availableBytes), nodefs.available (the root directory's
// filesystem) and imagefs.available (the runtime's image filesystem).
// The Tracker (thresholds.go) tells which thresholds evict: a hard one as
// soon as it is met, a soft one once it has stayed met for its grace
// period, either until its minimum reclaim is available again.
//
// Memory comes first, then nodefs, then imagefs (the kubelet's
// byEvictionPriority). An EvictionThresholdMet event on the Node says
// "Attempting to reclaim <resource>". For disk, unused images are removed
// first (the kubelet's reclaimNodeLevelResources; nodeagent removes exited
// containers with their pods already) and the signals read again: when no
// threshold is met any more, counting the minimum reclaims, no pod is
// evicted. Otherwise one pod is, the first of
//
//   - pods without stats,
//   - then pods whose use is above their request,
//   - then lower priority,
//   - then the larger use above the request
//
// (the kubelet's rankMemoryPressure and rankDiskPressureFunc, by working
// set or by local ephemeral storage; a pod with pod-level resources by its
// pod-level request, podRequest). Critical pods are passed over. The
// evicted pod ends Failed, reason Evicted, with the kubelet's message
// ("The node was low on resource: memory. Threshold quantity: …,
// available: …. [Pod p was using …, request is …, has larger consumption
// of memory. ]Container c was using …, request is …, has larger
// consumption of memory. ", the pod's part for a pod-level memory
// request) and a DisruptionTarget condition (reason
// TerminationByKubelet), through its worker with a grace period of 1 s
// for a hard threshold, and for a soft one evictionMaxPodGracePeriod, or
// the pod's terminationGracePeriodSeconds when shorter, never below 1 s
// (the kubelet's pod worker raises anything lower to 1 s).

// Messages and reasons of node-pressure evictions
// (pkg/kubelet/eviction/helpers.go, eviction_manager.go).
const (
	nodeLowMessageFmt       = "The node was low on resource: %v. "
	thresholdMetMessageFmt  = "Threshold quantity: %v, available: %v. "
	containerMessageFmt     = "Container %s was using %s, request is %s, has larger consumption of %v. "
	podMessageFmt           = "Pod %s was using %s, request is %s, has larger consumption of %v. "
	thresholdMetReason      = "EvictionThresholdMet"
	reclaimMessageFmt       = "Attempting to reclaim %s"
	signalMemoryAvailable   = "memory.available"
	signalNodeFsAvailable   = "nodefs.available"
	signalNodeFsInodesFree  = "nodefs.inodesFree"
	signalImageFsAvailable  = "imagefs.available"
	signalImageFsInodesFree = "imagefs.inodesFree"
	signalPIDAvailable      = "pid.available"
)

// reclaimableSignal is a signal that evicts pods, with the resource its
// evictions reclaim.
type reclaimableSignal struct {
	signal   string
	resource v1.ResourceName
}

// reclaimable are the signals that evict pods, in the order they are
// relieved, with the resource each reclaims.
var reclaimable = []reclaimableSignal{
	{signalMemoryAvailable, v1.ResourceMemory},
	{signalNodeFsAvailable, v1.ResourceEphemeralStorage},
	{signalImageFsAvailable, v1.ResourceEphemeralStorage},
}

// observe reads the signals with a threshold, and the summary when
// memory.available has one (for ranking pods by memory). A signal that
// cannot be read is left out; a filesystem that reports no inodes has no
// inode signal.
func (m *Manager) observe(ctx context.Context) (Observations, *statsapi.Summary, bool) {
	logger := klog.FromContext(ctx)
	obs := Observations{}
	var summary *statsapi.Summary
	if m.tracker.Watches(signalMemoryAvailable) && m.cfg.Summary != nil {
		s, err := m.cfg.Summary(ctx)
		if err != nil {
			// As the kubelet's synchronize: no summary, no check; the
			// conditions and grace periods stay as they were.
			logger.Error(err, "Eviction manager: reading the node's memory")
			return nil, nil, false
		} else {
			summary = s
			if mem := s.Node.Memory; mem != nil && mem.AvailableBytes != nil {
				obs[signalMemoryAvailable] = Observation{Available: int64(*mem.AvailableBytes), Capacity: m.cfg.MemoryCapacity}
			}
		}
	}
	for _, f := range []struct {
		space, inodes string
		read          func(context.Context) (*statsapi.FsStats, error)
	}{
		{signalNodeFsAvailable, signalNodeFsInodesFree, m.cfg.NodeFs},
		{signalImageFsAvailable, signalImageFsInodesFree, m.cfg.ImageFs},
	} {
		if f.read == nil || !m.tracker.Watches(f.space) && !m.tracker.Watches(f.inodes) {
			continue
		}
		fs, err := f.read(ctx)
		if err != nil {
			logger.V(2).Info("Eviction manager: unable to read a filesystem", "signal", f.space, "err", err)
			continue
		}
		if fs == nil {
			continue
		}
		if fs.CapacityBytes != nil && fs.AvailableBytes != nil {
			obs[f.space] = Observation{Available: int64(*fs.AvailableBytes), Capacity: int64(*fs.CapacityBytes)}
		}
		if fs.Inodes != nil && *fs.Inodes > 0 && fs.InodesFree != nil {
			obs[f.inodes] = Observation{Available: int64(*fs.InodesFree), Capacity: int64(*fs.Inodes)}
		}
	}
	if m.tracker.Watches(signalPIDAvailable) && m.cfg.PIDs != nil {
		running, limit, err := m.cfg.PIDs()
		if err != nil {
			logger.V(2).Info("Eviction manager: unable to read the process counts", "err", err)
		} else {
			obs[signalPIDAvailable] = Observation{Available: int64(limit) - int64(running), Capacity: int64(limit)}
		}
	}
	return obs, summary, true
}

// nodePressure evicts at most one pod for the first of the thresholds to
// evict (evict) whose signal evicts pods, as read in obs and summary; it
// returns the pod evicted, if any.
func (m *Manager) nodePressure(ctx context.Context, pods []*v1.Pod, evict []configs.EvictionThreshold, obs Observations, summary *statsapi.Summary) []evictedPod {
	logger := klog.FromContext(ctx)
	t, name, ok := thresholdToReclaim(evict)
	if !ok {
		return nil
	}
	logger.Info("Eviction manager: attempting to reclaim", "resourceName", name)
	if m.cfg.Recorder != nil && m.cfg.NodeRef != nil {
		m.cfg.Recorder.Eventf(m.cfg.NodeRef, v1.EventTypeWarning, thresholdMetReason, reclaimMessageFmt, name)
	}
	if name == v1.ResourceEphemeralStorage && m.cfg.ReclaimDisk != nil {
		freed, err := m.cfg.ReclaimDisk(ctx)
		if err != nil {
			logger.Error(err, "Eviction manager: removing unused images")
		}
		logger.Info("Eviction manager: removed unused images under disk pressure", "freedBytes", freed)
		if after, _, ok := m.observe(ctx); ok && len(Met(evicting(m.cfg.Thresholds), after, true)) == 0 {
			logger.Info("Eviction manager: able to reduce resource pressure without evicting pods.", "resourceName", name)
			return nil
		}
	}
	if len(pods) == 0 {
		logger.Error(nil, "Eviction manager: eviction thresholds have been met, but no pods are active to evict")
		return nil
	}
	var stats []statsapi.PodStats
	use, containerUse := diskUse, containerDiskUse
	if name == v1.ResourceMemory {
		stats, use, containerUse = summary.Pods, memoryUse, containerMemoryUse
	} else {
		var err error
		if stats, _, err = m.cfg.Stats(ctx); err != nil {
			logger.Error(err, "Eviction manager: reading the pods' storage usage")
			return nil
		}
	}
	return m.evictRanked(logger, pods, stats, name, t, obs[t.Signal], use, containerUse)
}

// evicting are the thresholds whose signal evicts pods: not the inode and
// pid ones, which set their conditions only.
func evicting(thresholds []configs.EvictionThreshold) []configs.EvictionThreshold {
	return slices.DeleteFunc(slices.Clone(thresholds), func(t configs.EvictionThreshold) bool {
		return !slices.ContainsFunc(reclaimable, func(r reclaimableSignal) bool { return r.signal == t.Signal })
	})
}

// thresholdToReclaim is the threshold to relieve first among those to
// evict, and its resource: memory first (the kubelet's
// byEvictionPriority), a hard threshold before a soft one of its signal.
func thresholdToReclaim(evict []configs.EvictionThreshold) (configs.EvictionThreshold, v1.ResourceName, bool) {
	for _, r := range reclaimable {
		for _, t := range evict {
			if t.Signal == r.signal {
				return t, r.resource, true
			}
		}
	}
	return configs.EvictionThreshold{}, "", false
}

// evictRanked evicts the first pod, critical ones passed over, in the
// kubelet's order for the pressure of resource (rank), with the kubelet's
// message and a DisruptionTarget condition; it returns the pod, if any.
// t is the threshold met as observed in o; use and containerUse read a
// pod's and a container's use of resource.
func (m *Manager) evictRanked(logger klog.Logger, pods []*v1.Pod, all []statsapi.PodStats, name v1.ResourceName,
	t configs.EvictionThreshold, o Observation, use func(*statsapi.PodStats) int64, containerUse func(*statsapi.ContainerStats) *int64) []evictedPod {
	stats := make(map[string]*statsapi.PodStats, len(all))
	for i := range all {
		stats[all[i].PodRef.UID] = &all[i]
	}
	ranked := rank(pods, stats, name, use)
	logger.Info("Eviction manager: pods ranked for eviction", "resourceName", name,
		"available", o.Available, "threshold", t.Value(o.Capacity), "pods", klog.KObjSlice(ranked))
	for _, pod := range ranked {
		if staticpods.IsCritical(pod) {
			continue
		}
		msg := fmt.Sprintf(nodeLowMessageFmt, name) +
			fmt.Sprintf(thresholdMetMessageFmt, thresholdQuantity(t, o.Capacity), resource.NewQuantity(o.Available, resource.BinarySI)) +
			podOver(pod, stats[string(pod.UID)], name) +
			containersOver(pod, stats[string(pod.UID)], name, containerUse)
		if e, ok := m.evictPod(logger, pod, m.evictionGracePeriod(t, pod), msg, &v1.PodCondition{
			Type: v1.DisruptionTarget, Status: v1.ConditionTrue, Reason: v1.PodReasonTerminationByKubelet, Message: msg,
		}); ok {
			return []evictedPod{e}
		}
	}
	logger.Info("Eviction manager: unable to evict any pods from the node")
	return nil
}

// evictionGracePeriod is the grace period of a pod evicted for t, as the
// kubelet's synchronize: immediateEvictionGracePeriodSeconds for a hard
// threshold; for a soft one evictionMaxPodGracePeriod, or the pod's
// terminationGracePeriodSeconds when shorter, raised to 1 s as the
// kubelet's pod worker raises any grace period (so that with
// evictionMaxPodGracePeriod 0, its default, or negative, it is 1 s).
func (m *Manager) evictionGracePeriod(t configs.EvictionThreshold, pod *v1.Pod) int64 {
	if t.Hard() {
		return gracePeriod
	}
	g := m.cfg.MaxPodGracePeriod
	if tg := pod.Spec.TerminationGracePeriodSeconds; tg != nil {
		g = min(g, *tg)
	}
	return max(g, 1)
}

// thresholdQuantity is the threshold as a quantity, the kubelet's
// GetThresholdQuantity: its own quantity, or its percentage of capacity.
func thresholdQuantity(t configs.EvictionThreshold, capacity int64) *resource.Quantity {
	if t.Quantity != nil {
		q := t.Quantity.DeepCopy()
		return &q
	}
	return resource.NewQuantity(t.Value(capacity), resource.BinarySI)
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
		req := podRequest(p, name)
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

// podRequest is the pod's request of resource name as eviction ranks by
// it, the kubelet's GetResourceRequestQuantity: the pod-level requests
// alone when the pod has pod-level resources (a resource they do not name
// counts as not requested, container requests aside), else its
// containers' effective request; the overhead added to a request that is
// not zero.
func podRequest(pod *v1.Pod, name v1.ResourceName) resource.Quantity {
	q := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{
		SkipContainerLevelResources: resourcehelper.IsPodLevelResourcesSet(pod),
		ExcludeOverhead:             true,
	})[name]
	if o, ok := pod.Spec.Overhead[name]; ok && !q.IsZero() {
		q.Add(o)
	}
	return q
}

// podOver is, as the kubelet's evictionMessage, the pod's memory use
// beside its pod-level memory request, for a pod that has one.
func podOver(pod *v1.Pod, st *statsapi.PodStats, name v1.ResourceName) string {
	if name != v1.ResourceMemory || st == nil || st.Memory == nil || !resourcehelper.IsPodLevelResourcesSet(pod) {
		return ""
	}
	req, ok := pod.Spec.Resources.Requests[name]
	if !ok {
		return ""
	}
	return fmt.Sprintf(podMessageFmt, pod.Name, resource.NewQuantity(memoryUse(st), resource.BinarySI).String(), req.String(), name)
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
