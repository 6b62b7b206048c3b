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

// containerLinux maps resources and the security context to CRI.
func (s *Syncer) containerLinux(pod *v1.Pod, c *v1.Container) *runtimeapi.LinuxContainerConfig {
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
		SecurityContext: containerSecurity(pod, c),
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

func containerSecurity(pod *v1.Pod, c *v1.Container) *runtimeapi.LinuxContainerSecurityContext {
	sc := &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: namespaceOptions(pod)}
	psc := pod.Spec.SecurityContext
	if psc != nil {
		if psc.RunAsUser != nil {
			sc.RunAsUser = &runtimeapi.Int64Value{Value: *psc.RunAsUser}
		}
		if psc.RunAsGroup != nil {
			sc.RunAsGroup = &runtimeapi.Int64Value{Value: *psc.RunAsGroup}
		}
		sc.SupplementalGroups = append(sc.SupplementalGroups, psc.SupplementalGroups...)
		if psc.FSGroup != nil {
			sc.SupplementalGroups = append(sc.SupplementalGroups, *psc.FSGroup)
		}
		if psc.RunAsNonRoot != nil && *psc.RunAsNonRoot {
			sc.RunAsUsername = ""
		}
	}
	if csc := c.SecurityContext; csc != nil {
		if csc.RunAsUser != nil {
			sc.RunAsUser = &runtimeapi.Int64Value{Value: *csc.RunAsUser}
		}
		if csc.RunAsGroup != nil {
			sc.RunAsGroup = &runtimeapi.Int64Value{Value: *csc.RunAsGroup}
		}
		if csc.Privileged != nil {
			sc.Privileged = *csc.Privileged
		}
		if csc.ReadOnlyRootFilesystem != nil {
			sc.ReadonlyRootfs = *csc.ReadOnlyRootFilesystem
		}
		if csc.AllowPrivilegeEscalation != nil {
			sc.NoNewPrivs = !*csc.AllowPrivilegeEscalation
		}
		if caps := csc.Capabilities; caps != nil {
			sc.Capabilities = &runtimeapi.Capability{}
			for _, a := range caps.Add {
				sc.Capabilities.AddCapabilities = append(sc.Capabilities.AddCapabilities, string(a))
			}
			for _, d := range caps.Drop {
				sc.Capabilities.DropCapabilities = append(sc.Capabilities.DropCapabilities, string(d))
			}
		}
	}
	if !sc.Privileged {
		sc.MaskedPaths = []string{"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"}
		sc.ReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
	}
	return sc
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
