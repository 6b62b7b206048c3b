package eviction

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/nodeagent/nodeagent/configs"
)

// A pod with pod-level resources is ranked by its pod-level requests
// alone, as the kubelet's GetResourceRequestQuantity: its containers'
// requests do not count, even for a resource the pod level leaves out.
func TestPodRequestWithPodLevelResources(t *testing.T) {
	p := memPod("p", "64Mi", 0)
	p.Spec.Containers[0].Resources.Requests[v1.ResourceEphemeralStorage] = resource.MustParse("1Gi")
	p.Spec.Overhead = v1.ResourceList{v1.ResourceMemory: resource.MustParse("8Mi"), v1.ResourceCPU: resource.MustParse("100m")}
	if got := podRequest(p, v1.ResourceMemory); !got.Equal(resource.MustParse("72Mi")) {
		t.Errorf("containers' request with overhead = %s, want 72Mi", got.String())
	}
	if got := podRequest(p, v1.ResourceCPU); !got.IsZero() {
		t.Errorf("overhead alone counted as a request: %s", got.String())
	}
	p.Spec.Resources = &v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceMemory: resource.MustParse("256Mi")}}
	if got := podRequest(p, v1.ResourceMemory); !got.Equal(resource.MustParse("264Mi")) {
		t.Errorf("pod-level memory request with overhead = %s, want 264Mi", got.String())
	}
	if got := podRequest(p, v1.ResourceEphemeralStorage); !got.IsZero() {
		t.Errorf("ephemeral-storage of a pod with pod-level resources = %s, want 0 as the kubelet", got.String())
	}
}

// Under memory pressure the pod-level request decides whether a pod uses
// more than it requests; the message names the pod's use beside its
// pod-level request before its containers'.
func TestMemoryPressureWithPodLevelResources(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	f := newFixture(clk)
	f.setThresholds(hard("memory.available", configs.Threshold{Quantity: q("100Mi")}))
	f.m.cfg.MemoryCapacity = 1 << 30
	f.m.cfg.Summary = func(context.Context) (*statsapi.Summary, error) {
		return &statsapi.Summary{
			Node: statsapi.NodeStats{Memory: &statsapi.MemoryStats{AvailableBytes: ptr.To(uint64(50 * mi))}},
			Pods: []statsapi.PodStats{memStats("within", 300*mi), memStats("over", 200*mi)},
		}, nil
	}
	// within uses 300Mi, more than its container requests but less than
	// its pod-level 512Mi; over uses 200Mi against 100Mi.
	within := memPod("within", "100Mi", 0)
	within.Spec.Resources = &v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceMemory: resource.MustParse("512Mi")}}
	over := memPod("over", "50Mi", 0)
	over.Spec.Resources = &v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceMemory: resource.MustParse("100Mi")}}
	f.pods = []*v1.Pod{within, over}
	evicted := f.m.Synchronize(context.Background())
	if len(evicted) != 1 || evicted[0].UID != "over" {
		t.Fatalf("evicted %v, want over", evicted)
	}
	_, st, _ := f.kills.get("over")
	want := "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. " +
		"Pod p-over was using 200Mi, request is 100Mi, has larger consumption of memory. " +
		"Container c was using 200Mi, request is 50Mi, has larger consumption of memory. "
	if st.Message != want {
		t.Errorf("message %q, want %q", st.Message, want)
	}
}
