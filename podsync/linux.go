package podsync

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	cpuPeriod     = 100000
	minShares     = 2
	maxShares     = 262144
	sharesPerCPU  = 1024
	milliCPUToCPU = 1000
)

// containerLinux maps resources and the security context (security.go)
// to CRI.
func (s *Syncer) containerLinux(pod *v1.Pod, c *v1.Container, user *imageUser) *runtimeapi.LinuxContainerConfig {
	res := &runtimeapi.LinuxContainerResources{CpuShares: minShares}
	if req, ok := c.Resources.Requests[v1.ResourceCPU]; ok {
		res.CpuShares = milliToShares(req.MilliValue())
	} else if lim, ok := c.Resources.Limits[v1.ResourceCPU]; ok {
		res.CpuShares = milliToShares(lim.MilliValue())
	}
	if lim, ok := c.Resources.Limits[v1.ResourceCPU]; ok {
		res.CpuPeriod = cpuPeriod
		res.CpuQuota = lim.MilliValue() * cpuPeriod / milliCPUToCPU
		if res.CpuQuota < 1000 {
			res.CpuQuota = 1000
		}
	}
	if lim, ok := c.Resources.Limits[v1.ResourceMemory]; ok {
		res.MemoryLimitInBytes = lim.Value()
	}
	res.OomScoreAdj = oomScoreAdj(pod, c)
	return &runtimeapi.LinuxContainerConfig{
		Resources:       res,
		SecurityContext: s.containerSecurity(pod, c, user),
	}
}

func milliToShares(m int64) int64 {
	sh := m * sharesPerCPU / milliCPUToCPU
	if sh < minShares {
		return minShares
	}
	if sh > maxShares {
		return maxShares
	}
	return sh
}

// oomScoreAdj follows the kubelet's QoS policy; the runtime may clamp it.
func oomScoreAdj(pod *v1.Pod, c *v1.Container) int64 {
	switch qosClass(pod) {
	case v1.PodQOSGuaranteed:
		return -997
	case v1.PodQOSBestEffort:
		return 1000
	}
	req := c.Resources.Requests[v1.ResourceMemory]
	capacity := resource.MustParse("64Gi")
	adj := 1000 - (1000*req.Value())/capacity.Value()
	if adj < 3 {
		adj = 3
	}
	if adj > 999 {
		adj = 999
	}
	return adj
}

// qosClass is the pod's QoS class as the API defines it.
func qosClass(pod *v1.Pod) v1.PodQOSClass {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass
	}
	requests, limits := v1.ResourceList{}, v1.ResourceList{}
	guaranteed := true
	all := append(append([]v1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	for _, c := range all {
		for name, q := range c.Resources.Requests {
			if name == v1.ResourceCPU || name == v1.ResourceMemory {
				if !q.IsZero() {
					requests[name] = q
				}
			}
		}
		hasCPU, hasMem := false, false
		for name, q := range c.Resources.Limits {
			if name == v1.ResourceCPU || name == v1.ResourceMemory {
				if !q.IsZero() {
					limits[name] = q
				}
				hasCPU = hasCPU || name == v1.ResourceCPU
				hasMem = hasMem || name == v1.ResourceMemory
			}
		}
		if !hasCPU || !hasMem {
			guaranteed = false
		}
		for name, req := range c.Resources.Requests {
			if name != v1.ResourceCPU && name != v1.ResourceMemory {
				continue
			}
			if lim, ok := c.Resources.Limits[name]; !ok || lim.Cmp(req) != 0 {
				guaranteed = false
			}
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return v1.PodQOSBestEffort
	}
	if guaranteed {
		return v1.PodQOSGuaranteed
	}
	return v1.PodQOSBurstable
}
