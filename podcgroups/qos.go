package podcgroups

import (
	v1 "k8s.io/api/core/v1"
)

// QOSClass is the pod's QoS class as the API defines it: the one in its
// status when set (it never changes, even on a resize), else computed from
// its spec: from spec.resources when the pod has pod-level resources,
// from its containers' resources otherwise.
func QOSClass(pod *v1.Pod) v1.PodQOSClass {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass
	}
	if pod.Spec.Resources != nil {
		return podLevelQOSClass(pod.Spec.Resources)
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

// podLevelQOSClass is the QoS class of a pod with pod-level resources, the
// API's ComputePodQOS: its containers' resources do not count. Best-effort
// when it requests and limits no cpu or memory (as upstream, a
// spec.resources present but empty is such a pod), guaranteed when its
// limits have both cpu and memory and its requests are the same, else
// burstable.
func podLevelQOSClass(res *v1.ResourceRequirements) v1.PodQOSClass {
	requests, limits := qosResources(res.Requests), qosResources(res.Limits)
	if len(requests) == 0 && len(limits) == 0 {
		return v1.PodQOSBestEffort
	}
	if len(limits) != 2 || len(requests) != len(limits) {
		return v1.PodQOSBurstable
	}
	for name, req := range requests {
		if lim, ok := limits[name]; !ok || lim.Cmp(req) != 0 {
			return v1.PodQOSBurstable
		}
	}
	return v1.PodQOSGuaranteed
}

// qosResources are the positive cpu and memory quantities of list, the
// only resources the QoS class considers.
func qosResources(list v1.ResourceList) v1.ResourceList {
	out := v1.ResourceList{}
	for name, q := range list {
		if (name == v1.ResourceCPU || name == v1.ResourceMemory) && q.Sign() > 0 {
			out[name] = q
		}
	}
	return out
}
