//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// In-place resize (issue 10): kubectl patch --subresource resize changes
// the CPU and memory of running containers, in place or by a restart as
// their resizePolicy says; a resize the node has no room for waits
// (PodResizePending, Deferred) until it has.

func resources(cpuReq, cpuLim, memReq, memLim string) v1.ResourceRequirements {
	return v1.ResourceRequirements{
		Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpuReq), v1.ResourceMemory: resource.MustParse(memReq)},
		Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpuLim), v1.ResourceMemory: resource.MustParse(memLim)},
	}
}

// resizePatch is a strategic merge patch of the containers' resources,
// the containers in the order of their names: a patch listing them in
// another order than the pod's reorders them, which the apiserver refuses
// on resize (map order made this test fail now and then). The test's
// pods name their containers in alphabetical order.
func resizePatch(containers map[string]string) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(containers)) {
		parts = append(parts, fmt.Sprintf(`{"name":%q,"resources":%s}`, name, containers[name]))
	}
	return `{"spec":{"containers":[` + strings.Join(parts, ",") + `]}}`
}

// resizeSettled is what the upstream suite waits for after a resize:
// the status is of the pod's generation, no resize condition is left and
// the pod is ready.
func resizeSettled(p *v1.Pod) bool {
	if p.Status.ObservedGeneration < p.Generation {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodResizePending || c.Type == v1.PodResizeInProgress {
			return false
		}
	}
	return running(p)
}

// cgroupValues reads, in container c, its CPU quota, CPU shares (or
// weight) and memory limit, on cgroup v1 or v2.
func cgroupValues(t *testing.T, ns, pod, c string) string {
	t.Helper()
	script := `if [ -f /sys/fs/cgroup/cpu.max ]; then echo "$(cat /sys/fs/cgroup/cpu.max) $(cat /sys/fs/cgroup/cpu.weight) $(cat /sys/fs/cgroup/memory.max)"; ` +
		`else echo "$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.shares) $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"; fi`
	return strings.TrimSpace(kubectl(t, "exec", "-n", ns, pod, "-c", c, "--", "sh", "-c", script))
}

// wantCgroups is what cgroupValues shows for a CPU limit, request and
// memory limit, in the format of the node's cgroup version.
func wantCgroups(v2 bool, cpuLimMilli, cpuReqMilli, memLim int64) string {
	shares := cpuReqMilli * 1024 / 1000
	if v2 {
		// The kubelet's (and runc's) shares-to-weight conversion.
		weight := 1 + ((shares-2)*9999)/262142
		return fmt.Sprintf("%d 100000 %d %d", cpuLimMilli*100, weight, memLim)
	}
	return fmt.Sprintf("%d %d %d", cpuLimMilli*100, shares, memLim)
}

func statusOf(p *v1.Pod, name string) v1.ContainerStatus {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == name {
			return cs
		}
	}
	return v1.ContainerStatus{}
}

func TestInPlaceResize(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	pod := busyboxPod("resize", sleeper, v1.RestartPolicyAlways)
	pod.Spec.Containers[0].Name = "inplace"
	pod.Spec.Containers[0].Resources = resources("100m", "200m", "64Mi", "128Mi")
	restarting := *pod.Spec.Containers[0].DeepCopy()
	restarting.Name = "restart"
	restarting.ResizePolicy = []v1.ContainerResizePolicy{{ResourceName: v1.ResourceMemory, RestartPolicy: v1.RestartContainer}}
	pod.Spec.Containers = append(pod.Spec.Containers, restarting)
	createPod(t, c, ns, pod)
	p := waitPod(t, c, ns, "resize", 120*time.Second, "running", running)
	v2 := strings.Contains(cgroupValues(t, ns, "resize", "inplace"), " 100000 ")
	if got, want := cgroupValues(t, ns, "resize", "inplace"), wantCgroups(v2, 200, 100, 128<<20); got != want {
		t.Fatalf("cgroups before the resize: %q, want %q", got, want)
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Resources == nil || !cs.Resources.Limits.Memory().Equal(resource.MustParse("128Mi")) || !cs.AllocatedResources.Cpu().Equal(resource.MustParse("100m")) {
			t.Errorf("%s: status resources %+v, allocated %v", cs.Name, cs.Resources, cs.AllocatedResources)
		}
	}

	// CPU and memory up, both containers.
	newRes := `{"requests":{"cpu":"300m","memory":"96Mi"},"limits":{"cpu":"400m","memory":"256Mi"}}`
	kubectl(t, "patch", "-n", ns, "pod", "resize", "--subresource", "resize", "-p", resizePatch(map[string]string{"inplace": newRes, "restart": newRes}))
	p = waitPod(t, c, ns, "resize", 60*time.Second, "resize done", resizeSettled)
	if p.Generation != 2 {
		t.Errorf("generation = %d, want 2", p.Generation)
	}
	want := wantCgroups(v2, 400, 300, 256<<20)
	for _, name := range []string{"inplace", "restart"} {
		if got := cgroupValues(t, ns, "resize", name); got != want {
			t.Errorf("%s: cgroups after the resize: %q, want %q", name, got, want)
		}
		cs := statusOf(p, name)
		if cs.Resources == nil || !cs.Resources.Requests.Cpu().Equal(resource.MustParse("300m")) || !cs.Resources.Limits.Cpu().Equal(resource.MustParse("400m")) ||
			!cs.Resources.Requests.Memory().Equal(resource.MustParse("96Mi")) || !cs.Resources.Limits.Memory().Equal(resource.MustParse("256Mi")) {
			t.Errorf("%s: status resources %+v", name, cs.Resources)
		}
		if !cs.AllocatedResources.Memory().Equal(resource.MustParse("96Mi")) {
			t.Errorf("%s: allocatedResources %v", name, cs.AllocatedResources)
		}
	}
	if n := statusOf(p, "inplace").RestartCount; n != 0 {
		t.Errorf("inplace (resizePolicy NotRequired) restarted %d times", n)
	}
	if n := statusOf(p, "restart").RestartCount; n != 1 {
		t.Errorf("restart (memory RestartContainer) restarted %d times, want 1", n)
	}
	waitFor(t, 20*time.Second, "resize events", func() (bool, error) {
		ev := podEvents(t, c, ns, "resize")
		return hasPodEvent(ev, "ResizeStarted", `"generation":2`) && hasPodEvent(ev, "ResizeCompleted", `"generation":2`) &&
			hasPodEvent(ev, "Killing", "Container restart resize requires restart"), nil
	})

	// No room: another pod takes what the node has left, the resize
	// waits, and is applied once that pod is gone.
	left := free(t, c, v1.ResourceCPU)
	if left < 200 {
		t.Skipf("only %dm of CPU left on the node", left)
	}
	filler := busyboxPod("filler", sleeper, v1.RestartPolicyAlways)
	filler.Spec.Containers[0].Resources = v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: *resource.NewMilliQuantity(left-100, resource.DecimalSI)}}
	createPod(t, c, ns, filler)
	waitPod(t, c, ns, "filler", 120*time.Second, "running", running)
	grow := `{"requests":{"cpu":"500m"},"limits":{"cpu":"500m"}}`
	kubectl(t, "patch", "-n", ns, "pod", "resize", "--subresource", "resize", "-p", resizePatch(map[string]string{"inplace": grow}))
	p = waitPod(t, c, ns, "resize", 30*time.Second, "resize Deferred", func(p *v1.Pod) bool {
		for _, c := range p.Status.Conditions {
			if c.Type == v1.PodResizePending && c.Reason == v1.PodReasonDeferred && c.ObservedGeneration == 3 &&
				strings.HasPrefix(c.Message, "Node didn't have enough resource: cpu, requested: ") {
				return true
			}
		}
		return false
	})
	if got := statusOf(p, "inplace").AllocatedResources[v1.ResourceCPU]; !got.Equal(resource.MustParse("300m")) {
		t.Errorf("allocatedResources.cpu of the deferred resize = %s, want the granted 300m", got.String())
	}
	if got := cgroupValues(t, ns, "resize", "inplace"); got != want {
		t.Errorf("cgroups changed by a deferred resize: %q, want %q", got, want)
	}
	if err := c.CoreV1().Pods(ns).Delete(context.Background(), "filler", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	p = waitPod(t, c, ns, "resize", 60*time.Second, "deferred resize applied", resizeSettled)
	if got, want := cgroupValues(t, ns, "resize", "inplace"), wantCgroups(v2, 500, 500, 256<<20); got != want {
		t.Errorf("cgroups after the deferred resize: %q, want %q", got, want)
	}
	if n := statusOf(p, "inplace").RestartCount; n != 0 {
		t.Errorf("inplace restarted %d times", n)
	}
}
