package nodestatus

import (
	"context"
	"fmt"
	"maps"
	goruntime "runtime"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/configs"
	"github.com/nodeagent/nodeagent/hugepages"
)

// The eviction signals whose hard thresholds allocatable holds back, as
// the kubelet names them.
const (
	signalMemoryAvailable = "memory.available"
	signalNodeFsAvailable = "nodefs.available"
)

// reservedBySignal are the resources whose hard eviction threshold is held
// back from allocatable (the kubelet's hardEvictionReservation): not
// pid.available, and no inode or imagefs signal.
var reservedBySignal = map[v1.ResourceName]string{
	v1.ResourceMemory:           signalMemoryAvailable,
	v1.ResourceEphemeralStorage: signalNodeFsAvailable,
}

// hostStats is one reading of the machine; a field that could not be read
// has its error set.
type hostStats struct {
	memTotal uint64
	memErr   error
	fs       FsStats // of RootDir
	fsErr    error
}

func (c *Controller) readHost(ctx context.Context) hostStats {
	logger := klog.FromContext(ctx)
	var h hostStats
	h.memTotal, _, h.memErr = c.host.Memory()
	if h.memErr != nil {
		logger.Error(h.memErr, "Unable to read memory")
	}
	h.fs, h.fsErr = c.host.Filesystem(c.cfg.RootDir)
	if h.fsErr != nil {
		logger.Error(h.fsErr, "Unable to read filesystem", "path", c.cfg.RootDir)
	}
	return h
}

// PodCapacity is the number of pods the node runs: maxPods, or fewer with
// podsPerCore, as the kubelet's MachineInfo setter. It is the node's pods
// capacity and allocatable, and what admission counts against.
func (c *Controller) PodCapacity() int32 {
	return podCapacity(c.cfg.MaxPods, c.cfg.PodsPerCore, goruntime.NumCPU())
}

// podCapacity is min(maxPods, podsPerCore × cores) when podsPerCore is
// above 0, maxPods otherwise.
func podCapacity(maxPods, podsPerCore int32, cores int) int32 {
	if podsPerCore <= 0 {
		return maxPods
	}
	return int32(min(int64(maxPods), int64(podsPerCore)*int64(cores)))
}

// capacity is the node's status.capacity: the CPUs, pods (PodCapacity),
// hugepages-<size> of each huge page pool (Config.HugePages), and the
// memory and the size of RootDir's filesystem (ephemeral-storage) when
// they could be read.
func (c *Controller) capacity(h hostStats) v1.ResourceList {
	rl := v1.ResourceList{
		v1.ResourceCPU:  *resource.NewQuantity(int64(goruntime.NumCPU()), resource.DecimalSI),
		v1.ResourcePods: *resource.NewQuantity(int64(c.PodCapacity()), resource.DecimalSI),
	}
	for _, p := range c.cfg.HugePages {
		rl[hugepages.ResourceName(p.PageSize)] = *resource.NewQuantity(p.Bytes(), resource.BinarySI)
	}
	if h.memErr == nil {
		rl[v1.ResourceMemory] = *resource.NewQuantity(int64(h.memTotal), resource.BinarySI)
	}
	if h.fsErr == nil {
		rl[v1.ResourceEphemeralStorage] = *resource.NewQuantity(int64(h.fs.Capacity), resource.BinarySI)
	}
	return rl
}

// reservation is what allocatable holds back of each resource of
// capacity, as the kubelet's GetNodeAllocatableReservation: kubeReserved
// plus systemReserved plus, for memory and ephemeral-storage, the hard
// eviction threshold of memory.available and nodefs.available (a
// percentage of the capacity). Resources with nothing reserved are left
// out. A pid reservation is never in it: the node's capacity has no pid
// (the kubelet uses it only for the pids limit of the kubepods cgroup).
func (c *Controller) reservation(capacity v1.ResourceList) v1.ResourceList {
	out := v1.ResourceList{}
	for name, capQ := range capacity {
		r := resource.NewQuantity(0, resource.DecimalSI)
		if q, ok := c.cfg.KubeReserved[name]; ok {
			r.Add(q)
		}
		if q, ok := c.cfg.SystemReserved[name]; ok {
			r.Add(q)
		}
		if t, ok := c.hardThreshold(reservedBySignal[name]); ok {
			r.Add(*resource.NewQuantity(t.Value(capQ.Value()), resource.BinarySI))
		}
		if !r.IsZero() {
			out[name] = *r
		}
	}
	return out
}

// hardThreshold is the evictionHard threshold of signal, if any (one of
// evictionSoft is not held back, even with a 0s grace period, as in the
// kubelet, which reserves only what evictionHard parses to).
func (c *Controller) hardThreshold(signal string) (configs.EvictionThreshold, bool) {
	for _, t := range c.cfg.EvictionThresholds {
		if t.Signal == signal && !t.Soft {
			return t, true
		}
	}
	return configs.EvictionThreshold{}, false
}

// allocatableOf is the node's status.allocatable: each resource of
// capacity less what is reserved of it, never below zero, and memory less
// the huge pages too, as the kubelet's MachineInfo setter: the kernel
// counts the huge pages it keeps in MemTotal, yet no pod can use them as
// memory. Huge pages themselves cannot be reserved (configs refuses them
// in kubeReserved and systemReserved, as the kubelet).
func allocatableOf(capacity, reserved v1.ResourceList) v1.ResourceList {
	out := make(v1.ResourceList, len(capacity))
	for name, q := range capacity {
		out[name] = allocatable(q, reserved[name])
	}
	if mem, ok := out[v1.ResourceMemory]; ok {
		for name, q := range capacity {
			if hugepages.IsResourceName(name) {
				mem = allocatable(mem, q)
			}
		}
		out[v1.ResourceMemory] = mem
	}
	return out
}

// allocatable is capacity less reserved, never below zero (the kubelet's
// MachineInfo setter).
func allocatable(capacity, reserved resource.Quantity) resource.Quantity {
	a := capacity.DeepCopy()
	if reserved.IsZero() {
		return a
	}
	a.Sub(reserved)
	if a.Sign() < 0 {
		a.Set(0)
	}
	return a
}

// CheckAllocatable returns an error when more of a resource is reserved
// (kubeReserved, systemReserved and the memory.available and
// nodefs.available hard eviction thresholds) than the node has: the
// kubelet's container manager refuses to start then (its
// validateNodeAllocatable), and so should the agent. A capacity that
// cannot be read is not checked; once running, allocatable never goes
// below zero.
func (c *Controller) CheckAllocatable(ctx context.Context) error {
	capacity := c.capacity(c.readHost(ctx))
	reserved := c.reservation(capacity)
	var problems []string
	for _, name := range slices.Sorted(maps.Keys(reserved)) {
		capQ, r := capacity[name], reserved[name]
		if r.Cmp(capQ) > 0 {
			problems = append(problems, fmt.Sprintf("%s: %s reserved, capacity %s", name, r.String(), capQ.String()))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("kubeReserved, systemReserved and evictionHard reserve more than the node has (%s)", strings.Join(problems, "; "))
	}
	return nil
}
