package agent

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"

	"github.com/nodeagent/nodeagent/configs"
	"github.com/nodeagent/nodeagent/hugepages"
	"github.com/nodeagent/nodeagent/nodestatus"
	"github.com/nodeagent/nodeagent/podcgroups"
	"github.com/nodeagent/nodeagent/podsync"
)

// qosUpdatePeriod is how often the QoS cgroups follow the pods' requests
// besides pod starts (the kubelet's periodicQOSCgroupUpdateInterval).
const qosUpdatePeriod = time.Minute

// setupPodCgroups writes the pods' cgroups (package podcgroups) when the
// agent owns them: cgroupsPerQOS with the cgroupfs driver. kubepods gets
// the node's allocatable when enforceNodeAllocatable has "pods", its
// capacity otherwise, as the kubelet's createNodeAllocatableCgroups and
// enforceNodeAllocatableCgroups; kubepods also gets the node's huge pages
// (capacity: they cannot be reserved). It returns nil (no pod cgroup limits)
// otherwise; Validate refuses the settings that then cannot be honoured.
// The QoS cgroups then follow the pods from run, started once the pods'
// workers exist.
func setupPodCgroups(ctx context.Context, cfg *kubeletconfigv1beta1.KubeletConfiguration, memCapacity int64, hugePages []hugepages.Pool, active func() []*v1.Pod) (podsync.PodCgroups, func(), error) {
	if (cfg.CgroupsPerQOS != nil && !*cfg.CgroupsPerQOS) || cfg.CgroupDriver == "systemd" {
		return nil, func() {}, nil
	}
	pidsLimit := int64(-1)
	if cfg.PodPidsLimit != nil {
		pidsLimit = *cfg.PodPidsLimit
	}
	m := podcgroups.New(podcgroups.Config{Root: cfg.CgroupRoot, PodPidsLimit: pidsLimit, ActivePods: active, HugePageSizes: hugepages.PageSizes(hugePages)})
	limits := v1.ResourceList{
		v1.ResourceCPU:    *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		v1.ResourceMemory: *resource.NewQuantity(memCapacity, resource.BinarySI),
	}
	for _, p := range hugePages {
		limits[hugepages.ResourceName(p.PageSize)] = *resource.NewQuantity(p.Bytes(), resource.BinarySI)
	}
	if slices.Contains(cfg.EnforceNodeAllocatable, "pods") {
		// Capacity less kubeReserved and systemReserved: the kubelet's
		// getNodeAllocatableAbsolute (eviction thresholds stay usable by
		// pods; they are for the eviction manager to defend).
		for _, m := range []map[string]string{cfg.KubeReserved, cfg.SystemReserved} {
			reserved, err := configs.ReservedResources(m)
			if err != nil {
				return nil, nil, err // validated by package configs already
			}
			for name, q := range reserved {
				l, ok := limits[name]
				if !ok {
					if name != "pid" {
						continue
					}
					l = *resource.NewQuantity(nodestatus.PIDCapacity(), resource.DecimalSI)
				}
				l.Sub(q)
				if l.Sign() < 0 {
					l.Set(0)
				}
				limits[name] = l
			}
		}
	}
	if err := m.SetupNode(limits); err != nil {
		return nil, nil, fmt.Errorf("set up the pods' cgroups below %s: %w", m.Kubepods(), err)
	}
	klog.FromContext(ctx).Info("Pod cgroups set up", "cgroup", m.Kubepods(), "cpu", limits.Cpu().String(), "memory", limits.Memory().String(), "podPidsLimit", pidsLimit)
	run := func() {
		go wait.UntilWithContext(ctx, func(ctx context.Context) {
			if err := m.UpdateQoS(); err != nil {
				klog.FromContext(ctx).Error(err, "Updating the QoS cgroups")
			}
		}, qosUpdatePeriod)
	}
	return m, run, nil
}

// podCgroupFinder finds a pod's cgroup, for the stats, where the pod's
// worker has it (the syncer names it as it created it); nil without
// cgroupsPerQOS, where pods have no cgroup of their own.
func podCgroupFinder(cfg *kubeletconfigv1beta1.KubeletConfiguration, p *podPipeline) func(types.UID) (string, bool) {
	if cfg.CgroupsPerQOS != nil && !*cfg.CgroupsPerQOS {
		return nil
	}
	return func(uid types.UID) (string, bool) {
		if p.workers == nil {
			return "", false // setting up: no pod yet
		}
		pod, ok := p.workers.Pod(uid)
		if !ok {
			return "", false
		}
		return p.syncer.PodCgroup(pod), true
	}
}
