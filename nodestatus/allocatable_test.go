package nodestatus

import (
	"errors"
	goruntime "runtime"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/nodeagent/nodeagent/configs"
	"github.com/nodeagent/nodeagent/hugepages"
)

func q(s string) resource.Quantity { return resource.MustParse(s) }

// Allocatable is capacity less kubeReserved, systemReserved and the
// memory.available and nodefs.available hard eviction thresholds, as the
// kubelet computes it. The harness's node has 8Gi of memory and a 100Gi
// root filesystem.
func TestAllocatable(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	cpus := int64(goruntime.NumCPU()) * 1000
	for _, tc := range []struct {
		name                         string
		kubeReserved, systemReserved v1.ResourceList
		evictionHard                 map[string]configs.Threshold // nil: the kubelet's defaults
		memErr                       bool
		// wanted allocatable cpu in millicores, memory and
		// ephemeral-storage in bytes
		cpu, memory, storage int64
	}{
		{name: "kubelet defaults", cpu: cpus, memory: 8*gi - 100*mi,
			// 10% of 100Gi with the kubelet's float32 percentage.
			storage: 100*gi - 10737418400},
		{name: "nothing reserved", evictionHard: map[string]configs.Threshold{}, cpu: cpus, memory: 8 * gi, storage: 100 * gi},
		{name: "reserved and thresholds",
			kubeReserved:   v1.ResourceList{v1.ResourceCPU: q("500m"), v1.ResourceMemory: q("1Gi"), v1.ResourceEphemeralStorage: q("1Gi")},
			systemReserved: v1.ResourceList{v1.ResourceMemory: q("500Mi")},
			evictionHard: map[string]configs.Threshold{
				signalMemoryAvailable: {Quantity: ptr.To(q("200Mi"))},
				signalNodeFsAvailable: {Percentage: float32(15) / 100},
			},
			cpu: cpus - 500, memory: 8*gi - 1*gi - 500*mi - 200*mi,
			// 15% of 100Gi is 16106127360 bytes; with the kubelet's float32
			// percentage it is 16106128000.
			storage: 100*gi - 16106128000 - 1*gi},
		{name: "memory percentage", evictionHard: map[string]configs.Threshold{signalMemoryAvailable: {Percentage: 0.5}},
			cpu: cpus, memory: 4 * gi, storage: 100 * gi},
		{name: "other signals hold nothing back",
			evictionHard: map[string]configs.Threshold{
				"nodefs.inodesFree": {Percentage: 0.5}, "imagefs.available": {Percentage: 0.5},
				"pid.available": {Percentage: 0.5}, "allocatableMemory.available": {Quantity: ptr.To(q("1Gi"))},
			},
			cpu: cpus, memory: 8 * gi, storage: 100 * gi},
		{name: "more reserved than there is", evictionHard: map[string]configs.Threshold{},
			kubeReserved:   v1.ResourceList{v1.ResourceCPU: *resource.NewQuantity(int64(goruntime.NumCPU()), resource.DecimalSI), v1.ResourceMemory: q("8Gi")},
			systemReserved: v1.ResourceList{v1.ResourceCPU: q("1"), v1.ResourceMemory: q("1")},
			cpu:            0, memory: 0, storage: 100 * gi},
		{name: "pid is not a node resource", evictionHard: map[string]configs.Threshold{},
			kubeReserved: v1.ResourceList{"pid": q("1000")}, systemReserved: v1.ResourceList{"pid": q("1000")},
			cpu: cpus, memory: 8 * gi, storage: 100 * gi},
		{name: "memory unreadable", memErr: true, kubeReserved: v1.ResourceList{v1.ResourceMemory: q("1Gi")},
			cpu: cpus, memory: -1, storage: 100*gi - 10737418400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.c.cfg.KubeReserved, h.c.cfg.SystemReserved = tc.kubeReserved, tc.systemReserved
			if tc.evictionHard != nil {
				h.c.setThresholds(hardThresholds(tc.evictionHard))
			}
			if tc.memErr {
				h.host.memErr = errors.New("no meminfo")
			}
			node := &v1.Node{}
			h.c.setStatus(ctx, node, h.clock.Now())
			alloc := node.Status.Allocatable
			if got := alloc.Cpu().MilliValue(); got != tc.cpu {
				t.Errorf("allocatable cpu = %dm, want %dm", got, tc.cpu)
			}
			if m, ok := alloc[v1.ResourceMemory]; tc.memory < 0 && ok {
				t.Errorf("allocatable memory = %s, want none", m.String())
			} else if tc.memory >= 0 && m.Value() != tc.memory {
				t.Errorf("allocatable memory = %d (%s), want %d", m.Value(), m.String(), tc.memory)
			}
			if got := alloc.StorageEphemeral().Value(); got != tc.storage {
				t.Errorf("allocatable ephemeral-storage = %d, want %d", got, tc.storage)
			}
			if got := alloc.Pods().Value(); got != 110 {
				t.Errorf("allocatable pods = %d, want 110", got)
			}
			for name := range alloc {
				if _, ok := node.Status.Capacity[name]; !ok {
					t.Errorf("allocatable %s has no capacity", name)
				}
			}
			if c := node.Status.Capacity[v1.ResourceMemory]; !tc.memErr && c.Value() != 8*gi {
				t.Errorf("capacity memory = %s, want 8Gi", c.String())
			}
		})
	}
}

// Each huge page pool is the capacity and allocatable of its
// hugepages-<size>, and none of it is allocatable memory, as the kubelet's
// MachineInfo setter (cadvisor.CapacityFromMachineInfo).
func TestHugePagesCapacity(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	for _, tc := range []struct {
		name   string
		pools  []hugepages.Pool
		want   map[v1.ResourceName]string // capacity and allocatable
		memory int64                      // allocatable memory
	}{
		{name: "no hugetlbfs", memory: 8 * gi, want: map[v1.ResourceName]string{}},
		{name: "none reserved", pools: []hugepages.Pool{{PageSize: 2 * mi}}, memory: 8 * gi,
			want: map[v1.ResourceName]string{"hugepages-2Mi": "0"}},
		{name: "two sizes", pools: []hugepages.Pool{{PageSize: 2 * mi, Pages: 8}, {PageSize: gi, Pages: 2}},
			memory: 8*gi - 16*mi - 2*gi,
			want:   map[v1.ResourceName]string{"hugepages-2Mi": "16Mi", "hugepages-1Gi": "2Gi"}},
		{name: "more than the memory", pools: []hugepages.Pool{{PageSize: gi, Pages: 9}}, memory: 0,
			want: map[v1.ResourceName]string{"hugepages-1Gi": "9Gi"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.c.cfg.HugePages = tc.pools
			h.c.setThresholds(hardThresholds(map[string]configs.Threshold{}))
			// As an earlier version reported them.
			node := &v1.Node{Status: v1.NodeStatus{
				Capacity:    v1.ResourceList{"hugepages-1Gi": q("0"), "hugepages-2Mi": q("0")},
				Allocatable: v1.ResourceList{"hugepages-1Gi": q("0"), "hugepages-2Mi": q("0")},
			}}
			h.c.setStatus(ctx, node, h.clock.Now())
			for name, q := range node.Status.Allocatable {
				if _, ok := tc.want[name]; !ok && hugepages.IsResourceName(name) {
					t.Errorf("allocatable %s = %s, want none", name, q.String())
				}
			}
			for name, q := range node.Status.Capacity {
				if _, ok := tc.want[name]; !ok && hugepages.IsResourceName(name) {
					t.Errorf("capacity %s = %s, want none", name, q.String())
				}
			}
			for name, want := range tc.want {
				c, a := node.Status.Capacity[name], node.Status.Allocatable[name]
				if c.String() != want || a.String() != want {
					t.Errorf("%s: capacity %s, allocatable %s; want %s", name, c.String(), a.String(), want)
				}
			}
			if got := node.Status.Allocatable.Memory().Value(); got != tc.memory {
				t.Errorf("allocatable memory = %d, want %d", got, tc.memory)
			}
			if got := node.Status.Capacity.Memory().Value(); got != 8*gi {
				t.Errorf("capacity memory = %d, want 8Gi: huge pages are in MemTotal", got)
			}
		})
	}
}

// Allocatable keeps the capacity's format: the API shows 6468Mi, 1500m.
func TestAllocatableFormat(t *testing.T) {
	for _, tc := range []struct {
		capacity, reserved resource.Quantity
		want               string
	}{
		{*resource.NewQuantity(8*gi, resource.BinarySI), q("1700Mi"), "6492Mi"},
		{*resource.NewQuantity(2, resource.DecimalSI), q("500m"), "1500m"},
		{*resource.NewQuantity(2, resource.DecimalSI), resource.Quantity{}, "2"},
		{*resource.NewQuantity(1*gi, resource.BinarySI), q("2Gi"), "0"},
	} {
		if got := allocatable(tc.capacity, tc.reserved); got.String() != tc.want {
			t.Errorf("allocatable(%s, %s) = %s, want %s", tc.capacity.String(), tc.reserved.String(), got.String(), tc.want)
		}
	}
}

// As the kubelet, the agent refuses to start when more of a resource is
// reserved than the node has.
func TestCheckAllocatable(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	for _, tc := range []struct {
		name         string
		kubeReserved v1.ResourceList
		evictionHard map[string]configs.Threshold // nil: the kubelet's defaults
		fsErr        bool
		wantErr      string
	}{
		{name: "defaults"},
		{name: "all of the memory", kubeReserved: v1.ResourceList{v1.ResourceMemory: q("8092Mi")}},
		{name: "more memory than there is", kubeReserved: v1.ResourceList{v1.ResourceMemory: q("8Gi")},
			wantErr: "kubeReserved, systemReserved and evictionHard reserve more than the node has (memory: 8292Mi reserved, capacity 8Gi)"},
		{name: "cpu and storage", kubeReserved: v1.ResourceList{
			v1.ResourceCPU:              *resource.NewQuantity(int64(goruntime.NumCPU())+1, resource.DecimalSI),
			v1.ResourceEphemeralStorage: q("100Gi"),
		}, evictionHard: map[string]configs.Threshold{}, wantErr: "cpu: "},
		{name: "storage unreadable", kubeReserved: v1.ResourceList{v1.ResourceEphemeralStorage: q("1Ei")}, fsErr: true},
		{name: "pid is not checked", kubeReserved: v1.ResourceList{"pid": q("1E")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.c.cfg.KubeReserved = tc.kubeReserved
			if tc.evictionHard != nil {
				h.c.setThresholds(hardThresholds(tc.evictionHard))
			}
			if tc.fsErr {
				h.host.fsErr = errors.New("no statfs")
			}
			err := h.c.CheckAllocatable(ctx)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// podsPerCore caps the pods capacity at that many per CPU, never above
// maxPods, as the kubelet's MachineInfo setter.
func TestPodCapacity(t *testing.T) {
	for _, tc := range []struct {
		maxPods, podsPerCore int32
		cores                int
		want                 int32
	}{
		{maxPods: 110, cores: 4, want: 110},
		{maxPods: 110, podsPerCore: 10, cores: 4, want: 40},
		{maxPods: 110, podsPerCore: 10, cores: 64, want: 110},
		{maxPods: 40, podsPerCore: 10, cores: 4, want: 40},
		{maxPods: 110, podsPerCore: -1, cores: 4, want: 110},
		{maxPods: 1 << 30, podsPerCore: 1 << 30, cores: 1024, want: 1 << 30},
	} {
		if got := podCapacity(tc.maxPods, tc.podsPerCore, tc.cores); got != tc.want {
			t.Errorf("podCapacity(%d, %d, %d) = %d, want %d", tc.maxPods, tc.podsPerCore, tc.cores, got, tc.want)
		}
	}

	_, ctx := ktesting.NewTestContext(t)
	h := newHarness(t)
	h.c.cfg.PodsPerCore = 1
	node := &v1.Node{}
	h.c.setStatus(ctx, node, h.clock.Now())
	want := min(int64(goruntime.NumCPU()), 110)
	if got := node.Status.Capacity.Pods().Value(); got != want {
		t.Errorf("capacity pods = %d, want %d (one per CPU)", got, want)
	}
	if got := node.Status.Allocatable.Pods().Value(); got != want {
		t.Errorf("allocatable pods = %d, want %d (one per CPU)", got, want)
	}
	if got := h.c.PodCapacity(); int64(got) != want {
		t.Errorf("PodCapacity() = %d, want %d", got, want)
	}
}
