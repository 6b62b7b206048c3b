package podsync

import (
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

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
// limit), a CFS quota from the CPU limit, the memory limit, and the OOM
// score adjustment of the pod's QoS class. A resize (resize.go) sends the
// same values to a running container.
func (s *Syncer) linuxResources(pod *v1.Pod, c *v1.Container) *runtimeapi.LinuxContainerResources {
	res := &runtimeapi.LinuxContainerResources{CpuShares: podcgroups.MinShares}
	if req, ok := c.Resources.Requests[v1.ResourceCPU]; ok {
		res.CpuShares = podcgroups.MilliToShares(req.MilliValue())
	} else if lim, ok := c.Resources.Limits[v1.ResourceCPU]; ok {
		res.CpuShares = podcgroups.MilliToShares(lim.MilliValue())
	}
	if lim, ok := c.Resources.Limits[v1.ResourceCPU]; ok {
		if q := podcgroups.MilliToQuota(lim.MilliValue()); q > 0 {
			res.CpuPeriod, res.CpuQuota = podcgroups.CPUPeriod, q
		}
	}
	if lim, ok := c.Resources.Limits[v1.ResourceMemory]; ok {
		res.MemoryLimitInBytes = lim.Value()
	}
	res.OomScoreAdj = oomScoreAdj(pod, c, s.memoryCapacity())
	return res
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
// than the app container requesting least), kept within 3..999. The
// runtime may clamp it.
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
	adj := 1000 - (1000*c.Resources.Requests.Memory().Value())/capacity
	if isSidecarOf(pod, c) {
		var least *int64
		for i := range pod.Spec.Containers {
			m := pod.Spec.Containers[i].Resources.Requests.Memory().Value()
			if least == nil || m < *least {
				least = &m
			}
		}
		if least != nil {
			adj = min(adj, 1000-(1000**least)/capacity)
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
