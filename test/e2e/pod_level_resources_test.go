//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Pod-level resources (spec.resources, PodLevelResources, beta and on in
// v1.36): the pod's cgroup carries the pod-level requests and limits, its
// containers without limits of their own run with the pod's, the downward
// API shows them, the QoS class comes from them, admission counts them,
// and a container of such a pod resizes in place.

// podLevelResources are pod-level requests and limits of cpu and memory.
func podLevelResources(cpuReq, cpuLim, memReq, memLim string) *v1.ResourceRequirements {
	r := resources(cpuReq, cpuLim, memReq, memLim)
	return &r
}

// limitEnv shows the container's limits.cpu (in millicores) and
// limits.memory (in bytes) through the downward API.
func limitEnv() []v1.EnvVar {
	return []v1.EnvVar{
		{Name: "LIMIT_CPU", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.cpu", Divisor: resource.MustParse("1m")}}},
		{Name: "LIMIT_MEMORY", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.memory"}}},
	}
}

func TestPodLevelResources(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("reads the host's cgroups")
	}
	c := client(t)
	ns := namespace(t, c)
	v2 := false
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		v2 = true
	}
	// The pods go before the test ends: tests after this one count the
	// node's free CPU and memory.
	t.Cleanup(func() {
		for _, name := range []string{"podlevel", "guaranteed"} {
			_ = c.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
			waitGone(t, c, ns, name, 60*time.Second)
		}
	})

	// Burstable at pod level: "main" has a CPU request and limit of its
	// own, "side" no resources at all.
	pod := busyboxPod("podlevel", sleeper, v1.RestartPolicyAlways)
	pod.Spec.Resources = podLevelResources("200m", "400m", "64Mi", "128Mi")
	pod.Spec.Containers[0].Resources = v1.ResourceRequirements{
		Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("50m")},
		Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse("100m")},
	}
	pod.Spec.Containers[0].Env = limitEnv()
	side := *pod.Spec.Containers[0].DeepCopy()
	side.Name = "side"
	side.Resources = v1.ResourceRequirements{}
	pod.Spec.Containers = append(pod.Spec.Containers, side)
	createPod(t, c, ns, pod)
	p := waitPod(t, c, ns, "podlevel", 120*time.Second, "running", running)
	if p.Status.QOSClass != v1.PodQOSBurstable {
		t.Errorf("QoS class %s, want Burstable", p.Status.QOSClass)
	}

	// The pod's cgroup: shares of the pod-level request (200m), quota and
	// memory limit of the pod-level limits, though "side" declares none.
	path := cgroupRoot + "/kubepods/burstable/pod" + string(p.UID)
	wantQuota, wantShares := "40000", "204"
	if v2 {
		wantQuota, wantShares = "40000 100000", "8"
	}
	if got := hostCgroup(t, "cpu", path, "cpu.cfs_quota_us", "cpu.max"); got != wantQuota {
		t.Errorf("pod cgroup's CPU quota = %q, want %q (the pod-level 400m)", got, wantQuota)
	}
	if got := hostCgroup(t, "cpu", path, "cpu.shares", "cpu.weight"); got != wantShares {
		t.Errorf("pod cgroup's CPU shares = %q, want %q (the pod-level 200m)", got, wantShares)
	}
	if got := hostCgroup(t, "memory", path, "memory.limit_in_bytes", "memory.max"); got != "134217728" {
		t.Errorf("pod cgroup's memory limit = %q, want 128Mi", got)
	}

	// The containers: "side" runs with the pod's limits (its CPU shares
	// from the pod's CPU limit, having no request); "main" keeps its CPU
	// limit and request and takes the pod's memory limit.
	if got, want := cgroupValues(t, ns, "podlevel", "side"), wantCgroups(v2, 400, 400, 128<<20); got != want {
		t.Errorf("side's cgroups: %q, want %q", got, want)
	}
	if got, want := cgroupValues(t, ns, "podlevel", "main"), wantCgroups(v2, 100, 50, 128<<20); got != want {
		t.Errorf("main's cgroups: %q, want %q", got, want)
	}

	// The downward API: a limit the container does not set is the pod's.
	for name, want := range map[string]string{"side": "400 134217728", "main": "100 134217728"} {
		got := strings.TrimSpace(kubectl(t, "exec", "-n", ns, "podlevel", "-c", name, "--", "sh", "-c", `echo "$LIMIT_CPU $LIMIT_MEMORY"`))
		if got != want {
			t.Errorf("%s: downward API limits.cpu (m) and limits.memory = %q, want %q", name, got, want)
		}
	}

	// A resize of "main" in place: applied; the pod's cgroup keeps the
	// pod-level values.
	kubectl(t, "patch", "-n", ns, "pod", "podlevel", "--subresource", "resize", "-p",
		resizePatch(map[string]string{"main": `{"requests":{"cpu":"100m"},"limits":{"cpu":"300m"}}`}))
	p = waitPod(t, c, ns, "podlevel", 60*time.Second, "resize done", resizeSettled)
	if got, want := cgroupValues(t, ns, "podlevel", "main"), wantCgroups(v2, 300, 100, 128<<20); got != want {
		t.Errorf("main's cgroups after the resize: %q, want %q", got, want)
	}
	if n := statusOf(p, "main").RestartCount; n != 0 {
		t.Errorf("main restarted %d times for an in-place resize", n)
	}
	if got := hostCgroup(t, "cpu", path, "cpu.cfs_quota_us", "cpu.max"); got != wantQuota {
		t.Errorf("pod cgroup's CPU quota after a container's resize = %q, want %q", got, wantQuota)
	}

	// Guaranteed at pod level (requests = limits), containers without
	// resources: in kubepods itself, limited as the pod says.
	g := busyboxPod("guaranteed", sleeper, v1.RestartPolicyAlways)
	g.Spec.Resources = podLevelResources("100m", "100m", "32Mi", "32Mi")
	createPod(t, c, ns, g)
	g = waitPod(t, c, ns, "guaranteed", 120*time.Second, "running", running)
	if g.Status.QOSClass != v1.PodQOSGuaranteed {
		t.Errorf("QoS class %s, want Guaranteed", g.Status.QOSClass)
	}
	gPath := cgroupRoot + "/kubepods/pod" + string(g.UID)
	if got := hostCgroup(t, "memory", gPath, "memory.limit_in_bytes", "memory.max"); got != "33554432" {
		t.Errorf("guaranteed pod's memory limit = %q, want 32Mi", got)
	}
	wantQuota = "10000"
	if v2 {
		wantQuota = "10000 100000"
	}
	if got := hostCgroup(t, "cpu", gPath, "cpu.cfs_quota_us", "cpu.max"); got != wantQuota {
		t.Errorf("guaranteed pod's CPU quota = %q, want %q", got, wantQuota)
	}
}

// A pod whose pod-level requests exceed what the node has is refused as
// the kubelet refuses it, OutOfmemory or OutOfcpu, though its containers
// request nothing.
func TestPodLevelResourcesAdmission(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	n, err := c.CoreV1().Nodes().Get(context.Background(), nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	allocMem, allocCPU := n.Status.Allocatable[v1.ResourceMemory], n.Status.Allocatable[v1.ResourceCPU]
	for _, tc := range []struct {
		name, reason string
		resource     v1.ResourceName
		want         int64 // bytes, or millicores
		quantity     *resource.Quantity
	}{
		{name: "too-much-memory", reason: "OutOfmemory", resource: v1.ResourceMemory, want: allocMem.Value() + 1<<30,
			quantity: resource.NewQuantity(allocMem.Value()+1<<30, resource.BinarySI)},
		{name: "too-much-cpu", reason: "OutOfcpu", resource: v1.ResourceCPU, want: allocCPU.MilliValue() + 1000,
			quantity: resource.NewMilliQuantity(allocCPU.MilliValue()+1000, resource.DecimalSI)},
	} {
		p := busyboxPod(tc.name, sleeper, v1.RestartPolicyAlways)
		p.Spec.Resources = &v1.ResourceRequirements{
			Requests: v1.ResourceList{tc.resource: *tc.quantity},
			Limits:   v1.ResourceList{tc.resource: *tc.quantity},
		}
		createPod(t, c, ns, p)
		got := waitPod(t, c, ns, tc.name, 60*time.Second, "rejection", failed)
		prefix := fmt.Sprintf("Pod was rejected: Node didn't have enough resource: %s, requested: %d, used: ", tc.resource, tc.want)
		if got.Status.Reason != tc.reason || !strings.HasPrefix(got.Status.Message, prefix) {
			t.Errorf("%s: %s; want reason %s, message starting %q", tc.name, describe(got), tc.reason, prefix)
		}
	}
}
