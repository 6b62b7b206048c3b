package podsync

import (
	"maps"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/hugepages"
	"github.com/nodeagent/nodeagent/podcgroups"
	"github.com/nodeagent/nodeagent/staticpods"
)

// containerLinux maps resources and the security context (security.go)
// to CRI.
func (s *Syncer) containerLinux(pod *v1.Pod, c *v1.Container, user *imageUser) *runtimeapi.LinuxContainerConfig {
	return &runtimeapi.LinuxContainerConfig{
		Resources:       s.linuxResources(pod, c),
		SecurityContext: s.containerSecurity(pod, c, user),
	}
}

// linuxResources are the cgroup settings of c, the kubelet's
// generateLinuxContainerResources: CPU shares from the request (or the
// limit), a CFS quota from the CPU limit, the memory limit, the OOM
// score adjustment of the pod's QoS class and a limit of each huge page
// size (hugepageLimits). In a pod with pod-level resources a container
// without a CPU or memory limit of its own runs with the pod's
// (containerLimits). A resize (resize.go) sends the same values to a
// running container.
func (s *Syncer) linuxResources(pod *v1.Pod, c *v1.Container) *runtimeapi.LinuxContainerResources {
	cpuLimit, memLimit := containerLimits(pod, c)
	res := &runtimeapi.LinuxContainerResources{}
	if req, ok := c.Resources.Requests[v1.ResourceCPU]; ok {
		res.CpuShares = podcgroups.MilliToShares(req.MilliValue())
	} else {
		// No request: the limit stands for it (MinShares without one).
		res.CpuShares = podcgroups.MilliToShares(cpuLimit.MilliValue())
	}
	if q := podcgroups.MilliToQuota(cpuLimit.MilliValue()); q > 0 {
		res.CpuPeriod, res.CpuQuota = podcgroups.CPUPeriod, q
	}
	if !memLimit.IsZero() {
		res.MemoryLimitInBytes = memLimit.Value()
	}
	res.OomScoreAdj = oomScoreAdj(pod, c, s.memoryCapacity())
	res.HugepageLimits = hugepageLimits(s.cfg.HugePageSizes, c.Resources.Limits)
	return res
}

// hugepageLimits are a container's limits of each huge page size of the
// machine, the kubelet's GetHugepageLimitsFromResources: what its
// hugepages-<size> limit says, 0 for a size it does not ask for, so that
// it can use no huge pages it was not granted. A size the machine does
// not have is left out (admission refuses a pod asking for one: the node
// has none of it). The runtime applies them only where the host has the
// hugetlb cgroup controller (see hugetlbWarning).
func hugepageLimits(sizes []int64, limits v1.ResourceList) []*runtimeapi.HugepageLimit {
	if len(sizes) == 0 {
		return nil
	}
	asked := hugepages.Limits(limits)
	out := make([]*runtimeapi.HugepageLimit, 0, len(sizes))
	for _, size := range sizes {
		out = append(out, &runtimeapi.HugepageLimit{PageSize: hugepages.UnitSize(size), Limit: uint64(max(asked[size], 0))})
	}
	return out
}

// hugetlbWarning tells the user, with a HugePagesNotLimited event on the
// pod, that the huge pages it asks for are not limited: the host has no
// hugetlb cgroup controller (cgroup v1 does not mount it by default).
// The pod runs, as with the kubelet, which then skips the pod's hugetlb
// limits and whose runtime (containerd's tolerate_missing_hugetlb_controller,
// on by default) drops the containers'; admission still counts its huge
// pages against the node's.
func (s *Syncer) hugetlbWarning(pod *v1.Pod) {
	if s.cfg.HugetlbLimited {
		return
	}
	var asked []string
	reqs := podRequests(pod)
	for _, name := range slices.Sorted(maps.Keys(reqs)) {
		if q := reqs[name]; hugepages.IsResourceName(name) && !q.IsZero() {
			asked = append(asked, string(name)+": "+q.String())
		}
	}
	if len(asked) == 0 {
		return
	}
	s.recorder.Eventf(pod, v1.EventTypeWarning, "HugePagesNotLimited",
		"The node has no hugetlb cgroup controller: the pod's huge pages (%s) are counted at admission but not limited", strings.Join(asked, ", "))
}

// containerLimits are the CPU and memory limits c runs with, the
// kubelet's getCPULimit and getMemoryLimit: its own, or, in a pod with
// pod-level resources, the pod's for one it does not set (zero: no
// limit). Without that a container would be bounded only by the pod's
// cgroup, and what reads its own cgroup (a JVM, the Go runtime sizing
// GOMAXPROCS) would see no limit.
func containerLimits(pod *v1.Pod, c *v1.Container) (cpu, memory resource.Quantity) {
	cpu, memory = *c.Resources.Limits.Cpu(), *c.Resources.Limits.Memory()
	if resourcehelper.IsPodLevelResourcesSet(pod) {
		if cpu.IsZero() {
			cpu = *pod.Spec.Resources.Limits.Cpu()
		}
		if memory.IsZero() {
			memory = *pod.Spec.Resources.Limits.Memory()
		}
	}
	return cpu, memory
}

// memoryCapacity is the node's memory in bytes for the OOM score of
// burstable containers; 64 GiB when the node's capacity is not known.
func (s *Syncer) memoryCapacity() int64 {
	if s.cfg.MemoryCapacity != nil {
		if m := s.cfg.MemoryCapacity(); m > 0 {
			return m
		}
	}
	return 64 << 30
}

const (
	guaranteedOOMScoreAdj = -997
	besteffortOOMScoreAdj = 1000
)

// oomScoreAdj is the kubelet's GetContainerOOMScoreAdjust: node-critical
// and guaranteed pods -997, best-effort 1000, burstable 1000 minus the
// container's per-mille share of the node's memory (a sidecar no higher
// than the app container requesting least), kept within 3..999. In a pod
// with pod-level requests, each container's request counts with an equal
// share of the pod's memory request that no container requests
// (remainingMemoryPerContainer). The runtime may clamp it.
func oomScoreAdj(pod *v1.Pod, c *v1.Container, capacity int64) int64 {
	if staticpods.IsNodeCritical(pod) {
		return guaranteedOOMScoreAdj
	}
	switch qosClass(pod) {
	case v1.PodQOSGuaranteed:
		return guaranteedOOMScoreAdj
	case v1.PodQOSBestEffort:
		return besteffortOOMScoreAdj
	}
	remaining := remainingMemoryPerContainer(pod)
	adj := 1000 - (1000*(c.Resources.Requests.Memory().Value()+remaining))/capacity
	if isSidecarOf(pod, c) {
		var least *int64
		for i := range pod.Spec.Containers {
			m := pod.Spec.Containers[i].Resources.Requests.Memory().Value()
			if least == nil || m < *least {
				least = &m
			}
		}
		if least != nil {
			adj = min(adj, 1000-(1000*(*least+remaining))/capacity)
		}
	}
	if adj < 1000+guaranteedOOMScoreAdj {
		return 1000 + guaranteedOOMScoreAdj
	}
	if adj == besteffortOOMScoreAdj {
		return adj - 1
	}
	return adj
}

// remainingMemoryPerContainer is the kubelet's
// remainingPodMemReqPerContainer: the pod-level memory request less what
// the containers request together (as the scheduler counts them), divided
// by the number of init and app containers; 0 without a pod-level memory
// request.
func remainingMemoryPerContainer(pod *v1.Pod) int64 {
	if !resourcehelper.IsPodLevelRequestsSet(pod) || pod.Spec.Resources.Requests.Memory().IsZero() {
		return 0
	}
	n := int64(len(pod.Spec.InitContainers) + len(pod.Spec.Containers))
	if n == 0 {
		return 0
	}
	containers := resourcehelper.AggregateContainerRequests(pod, resourcehelper.PodResourcesOptions{})
	return (pod.Spec.Resources.Requests.Memory().Value() - containers.Memory().Value()) / n
}

// isSidecarOf reports whether c is one of pod's sidecars.
func isSidecarOf(pod *v1.Pod, c *v1.Container) bool {
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == c.Name {
			return isSidecar(&pod.Spec.InitContainers[i])
		}
	}
	return false
}

// qosClass is the pod's QoS class (podcgroups.QOSClass).
func qosClass(pod *v1.Pod) v1.PodQOSClass { return podcgroups.QOSClass(pod) }
