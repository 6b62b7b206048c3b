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
	"github.com/nodeagent/nodeagent/volumes"
)

// Node-pressure eviction, as the kubelet's eviction manager does it. Every
// period the signals with a threshold are read: memory.available (the
// node's capacity less the working set of its root cgroup, the summary's
// memory.availableBytes), nodefs.available and nodefs.inodesFree (the root
// directory's filesystem), imagefs.available and imagefs.inodesFree (the
// runtime's image filesystem) and pid.available (the node's process
// limit less its tasks). The Tracker (thresholds.go) tells which
// thresholds evict: a hard one as soon as it is met, a soft one once it
// has stayed met for its grace period, either until its minimum reclaim
// is available again.
//
// Memory comes first, then nodefs, imagefs (space before inodes) and pids
// (the kubelet's byEvictionPriority puts memory first and leaves the
// others in no set order). An EvictionThresholdMet event on the Node says
// "Attempting to reclaim <resource>" (memory, ephemeral-storage, inodes or
// pids). For disk space and inodes, unused images are removed first (the
// kubelet's reclaimNodeLevelResources; nodeagent removes exited containers
// with their pods already) and the signals read again: when no threshold
// is met any more, counting the minimum reclaims, no pod is evicted.
// Otherwise one pod is, the first of
//
//   - pods without stats,
//   - then pods whose use is above their request,
//   - then lower priority,
//   - then the larger use above the request
//
// (the kubelet's rankMemoryPressure and rankDiskPressureFunc, by working
// set, by local ephemeral storage, or by inodes: see inodeUse; a pod with
// pod-level resources by its pod-level request, podRequest), or for
// pid.available the first by lower priority, then pods without stats,
// then the most processes (rankPIDPressure). Critical pods are passed
// over. The evicted pod ends Failed, reason Evicted, with the kubelet's
// message ("The node was low on resource: memory. Threshold quantity: …,
// available: …. [Pod p was using …, request is …, has larger consumption
// of memory. ]Container c was using …, request is …, has larger
// consumption of memory. ", the pod's part for a pod-level memory
// request, the containers named for memory and ephemeral-storage only, as
// there) and a DisruptionTarget condition
// (reason TerminationByKubelet), through its worker with a grace period
// of 1 s for a hard threshold, and for a soft one
// evictionMaxPodGracePeriod, or the pod's terminationGracePeriodSeconds
// when shorter, never below 1 s (the kubelet's pod worker raises anything
// lower to 1 s).

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

// The resources of the inode and pid signals in messages and events (the
// kubelet's resourceInodes and resourcePids, no API resources).
const (
	resourceInodes v1.ResourceName = "inodes"
	resourcePids   v1.ResourceName = "pids"
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
	{signalNodeFsInodesFree, resourceInodes},
	{signalImageFsAvailable, v1.ResourceEphemeralStorage},
	{signalImageFsInodesFree, resourceInodes},
	{signalPIDAvailable, resourcePids},
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
	// The pods' storage (read before images are removed, which does not
	// change it) also tells whether the image filesystem is dedicated.
	var stats []statsapi.PodStats
	var dedicatedImageFs bool
	var statsErr error
	if name != v1.ResourceMemory {
		stats, dedicatedImageFs, statsErr = m.cfg.Stats(ctx)
	}
	if reclaimsImages(name, t.Signal, dedicatedImageFs) && m.cfg.ReclaimDisk != nil {
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
	if name == v1.ResourceMemory {
		return m.evictRanked(logger, pods, summary.Pods, name, t, obs[t.Signal], memoryUse, containerMemoryUse)
	}
	if statsErr != nil {
		logger.Error(statsErr, "Eviction manager: reading the pods' storage usage")
		return nil
	}
	switch name {
	case resourceInodes:
		return m.evictRanked(logger, pods, stats, name, t, obs[t.Signal], inodeUse(t.Signal, dedicatedImageFs), nil)
	case resourcePids:
		return m.evictRanked(logger, pods, stats, name, t, obs[t.Signal], nil, nil)
	}
	return m.evictRanked(logger, pods, stats, name, t, obs[t.Signal], diskUse, containerDiskUse)
}

// reclaimsImages reports whether the pressure of resource, for a
// threshold of signal, is relieved first by removing unused images, as
// the kubelet's buildSignalToNodeReclaimFuncs: for a disk signal, except
// a nodefs one with a dedicated image filesystem, where images take no
// room (the kubelet evicts at once then). When the pods' stats could not
// be read the image filesystem is taken as shared: images are removed.
func reclaimsImages(resource v1.ResourceName, signal string, dedicatedImageFs bool) bool {
	if resource != v1.ResourceEphemeralStorage && resource != resourceInodes {
		return false
	}
	return !dedicatedImageFs || (signal != signalNodeFsAvailable && signal != signalNodeFsInodesFree)
}

// evicting are the thresholds whose signal evicts pods (every signal
// observed does).
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
// kubelet's order for the pressure of resource (rank, or rankPIDs for
// pids), with the kubelet's message and a DisruptionTarget condition; it
// returns the pod, if any. t is the threshold met as observed in o; use
// reads a pod's use of resource (nil for pids), containerUse a
// container's (nil: no container is named in the message).
func (m *Manager) evictRanked(logger klog.Logger, pods []*v1.Pod, all []statsapi.PodStats, name v1.ResourceName,
	t configs.EvictionThreshold, o Observation, use podUse, containerUse func(*statsapi.ContainerStats) *int64) []evictedPod {
	stats := make(map[string]*statsapi.PodStats, len(all))
	for i := range all {
		stats[all[i].PodRef.UID] = &all[i]
	}
	var ranked []*v1.Pod
	if name == resourcePids {
		ranked = rankPIDs(pods, stats)
	} else {
		ranked = rank(pods, stats, name, use)
	}
	logger.Info("Eviction manager: pods ranked for eviction", "resourceName", name,
		"available", o.Available, "threshold", t.Value(o.Capacity), "pods", klog.KObjSlice(ranked))
	// Counts (inodes, pids) show in decimal units, bytes in binary ones,
	// as the kubelet's signal observations.
	format := resource.BinarySI
	if name == resourceInodes || name == resourcePids {
		format = resource.DecimalSI
	}
	for _, pod := range ranked {
		if staticpods.IsCritical(pod) {
			continue
		}
		msg := fmt.Sprintf(nodeLowMessageFmt, name) +
			fmt.Sprintf(thresholdMetMessageFmt, thresholdQuantity(t, o.Capacity), resource.NewQuantity(o.Available, format)) +
			podOver(pod, stats[string(pod.UID)], name)
		if containerUse != nil {
			msg += containersOver(pod, stats[string(pod.UID)], name, containerUse)
		}
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

// podUse reads a pod's use of the resource under pressure from its
// stats (nil when it has none).
type podUse func(pod *v1.Pod, st *statsapi.PodStats) int64

// diskUse is a pod's local ephemeral storage, 0 when unknown.
func diskUse(_ *v1.Pod, st *statsapi.PodStats) int64 {
	if st == nil || st.EphemeralStorage == nil || st.EphemeralStorage.UsedBytes == nil {
		return 0
	}
	return int64(*st.EphemeralStorage.UsedBytes)
}

// inodeUse reads a pod's inodes on the filesystem of signal, as the
// kubelet's rankDiskPressureFunc measures them (podDiskUsage): its
// containers' writable layers and logs and its local volumes (hostPath,
// emptyDir on disk, configMap, gitRepo: localVolumeNames) when the
// images share the root dir's filesystem; with a dedicated image
// filesystem, the logs and local volumes for nodefs.inodesFree and the
// writable layers for imagefs.inodesFree. What a stat lacks counts 0.
func inodeUse(signal string, dedicatedImageFs bool) podUse {
	root, logs, volumes := true, true, true
	if dedicatedImageFs {
		root = signal == signalImageFsInodesFree
		logs, volumes = !root, !root
	}
	inodes := func(fs *statsapi.FsStats) int64 {
		if fs == nil || fs.InodesUsed == nil {
			return 0
		}
		return int64(*fs.InodesUsed)
	}
	return func(pod *v1.Pod, st *statsapi.PodStats) int64 {
		if st == nil {
			return 0
		}
		var n int64
		for _, c := range st.Containers {
			if root {
				n += inodes(c.Rootfs)
			}
			if logs {
				n += inodes(c.Logs)
			}
		}
		if volumes {
			for _, name := range localVolumeNames(pod) {
				for i := range st.VolumeStats {
					if st.VolumeStats[i].Name == name {
						n += inodes(&st.VolumeStats[i].FsStats)
						break
					}
				}
			}
		}
		return n
	}
}

// localVolumeNames are the pod's volumes on the node's disk, as the
// kubelet's localVolumeNames: hostPath and the local ephemeral ones
// (util.IsLocalEphemeralVolume: gitRepo, emptyDir on disk, configMap).
func localVolumeNames(pod *v1.Pod) []string {
	var out []string
	for i := range pod.Spec.Volumes {
		if v := &pod.Spec.Volumes[i]; v.HostPath != nil || volumes.IsLocalEphemeral(v) {
			out = append(out, v.Name)
		}
	}
	return out
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
func memoryUse(_ *v1.Pod, st *statsapi.PodStats) int64 {
	if st == nil || st.Memory == nil || st.Memory.WorkingSetBytes == nil {
		return 0
	}
	return int64(*st.Memory.WorkingSetBytes)
}

// rank orders pods for eviction under the pressure of resource, as the
// kubelet's rankMemoryPressure and rankDiskPressureFunc: pods without stats
// first, then those using more than they request, then lower priority,
// then the larger use above the request; use reads a pod's stats. For
// inodes, as there, the request a use exceeds is that of "inodes", which
// no pod has (0: any use exceeds it), and the use is ranked above the
// pod's ephemeral-storage request (a number of inodes less bytes).
func rank(pods []*v1.Pod, stats map[string]*statsapi.PodStats, name v1.ResourceName, use podUse) []*v1.Pod {
	type ranked struct {
		pod               *v1.Pod
		found, exceeds    bool
		priority          int32
		aboveRequestBytes int64
	}
	offset := name
	if name == resourceInodes {
		offset = v1.ResourceEphemeralStorage
	}
	rs := make([]ranked, 0, len(pods))
	for _, p := range pods {
		st, found := stats[string(p.UID)]
		req, off := podRequest(p, name), podRequest(p, offset)
		used := use(p, st)
		r := ranked{pod: p, found: found, exceeds: used > req.Value(), aboveRequestBytes: used - off.Value(), priority: priority(p)}
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

// rankPIDs orders pods for eviction under pid pressure, as the kubelet's
// rankPIDPressure: lower priority first, then pods without stats, then
// the most processes (the pod's process count; 0 when its stats lack it,
// as when the agent does not know the pod's cgroup).
func rankPIDs(pods []*v1.Pod, stats map[string]*statsapi.PodStats) []*v1.Pod {
	processes := func(p *v1.Pod) (uint64, bool) {
		st, ok := stats[string(p.UID)]
		if !ok {
			return 0, false
		}
		if st.ProcessStats == nil || st.ProcessStats.ProcessCount == nil {
			return 0, true
		}
		return *st.ProcessStats.ProcessCount, true
	}
	out := slices.Clone(pods)
	slices.SortStableFunc(out, func(a, b *v1.Pod) int {
		if pa, pb := priority(a), priority(b); pa != pb {
			if pa < pb {
				return -1
			}
			return 1
		}
		na, foundA := processes(a)
		nb, foundB := processes(b)
		switch {
		case foundA != foundB:
			return boolFirst(!foundA, !foundB)
		case na > nb:
			return -1
		case na < nb:
			return 1
		}
		return 0
	})
	return out
}

// priority is the pod's priority, 0 when it has none.
func priority(p *v1.Pod) int32 {
	if p.Spec.Priority != nil {
		return *p.Spec.Priority
	}
	return 0
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
	return fmt.Sprintf(podMessageFmt, pod.Name, resource.NewQuantity(memoryUse(pod, st), resource.BinarySI).String(), req.String(), name)
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
