package podcgroups

import (
	v1 "k8s.io/api/core/v1"
)

// QOSClass is the pod's QoS class as the API defines it: the one in its
// status when set (it never changes, even on a resize), else computed from
// its spec.
func QOSClass(pod *v1.Pod) v1.PodQOSClass {
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
