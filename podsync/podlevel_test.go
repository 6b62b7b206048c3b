package podsync

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
)

// Pod-level resources (spec.resources), as the kubelet v1.36 honours them.

// podLevel returns p with pod-level requests and limits (cpu, memory; ""
// leaves one out).
func podLevel(p *v1.Pod, cpuReq, cpuLim, memReq, memLim string) *v1.Pod {
	r := v1.ResourceRequirements{Requests: v1.ResourceList{}, Limits: v1.ResourceList{}}
	for _, x := range []struct {
		list v1.ResourceList
		name v1.ResourceName
		q    string
	}{{r.Requests, v1.ResourceCPU, cpuReq}, {r.Limits, v1.ResourceCPU, cpuLim}, {r.Requests, v1.ResourceMemory, memReq}, {r.Limits, v1.ResourceMemory, memLim}} {
		if x.q != "" {
			x.list[x.name] = resource.MustParse(x.q)
		}
	}
	p.Spec.Resources = &r
	return p
}

// requests is a container's requests of cpu and memory ("" leaves one
// out), no limits.
func requests(cpu, mem string) v1.ResourceRequirements {
	r := v1.ResourceRequirements{Requests: v1.ResourceList{}}
	if cpu != "" {
		r.Requests[v1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		r.Requests[v1.ResourceMemory] = resource.MustParse(mem)
	}
	return r
}

// A container that sets no limit runs with the pod's; one that sets its
// own keeps it; without a request the (pod's) limit gives the CPU shares,
// as the kubelet's getCPULimit, getMemoryLimit and calculateLinuxResources.
func TestPodLevelContainerResources(t *testing.T) {
	e := newEnv(t)
	pod := podLevel(&v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{
		{Name: "bare"},
		{Name: "own", Resources: v1.ResourceRequirements{
			Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("100m"), v1.ResourceMemory: resource.MustParse("64Mi")},
			Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse("200m"), v1.ResourceMemory: resource.MustParse("128Mi")},
		}},
		{Name: "request", Resources: requests("250m", "")},
	}}}, "500m", "1", "256Mi", "512Mi")
	for _, tc := range []struct {
		c                     int
		shares, quota, memory int64
	}{
		{0, 1024, 100000, 512 << 20},
		{1, 102, 20000, 128 << 20},
		{2, 256, 100000, 512 << 20},
	} {
		c := &pod.Spec.Containers[tc.c]
		got := e.s.linuxResources(pod, c)
		if got.CpuShares != tc.shares || got.CpuQuota != tc.quota || got.MemoryLimitInBytes != tc.memory {
			t.Errorf("%s: shares %d quota %d memory %d, want %d %d %d", c.Name, got.CpuShares, got.CpuQuota, got.MemoryLimitInBytes, tc.shares, tc.quota, tc.memory)
		}
		if tc.quota > 0 && got.CpuPeriod != 100000 {
			t.Errorf("%s: period %d", c.Name, got.CpuPeriod)
		}
	}

	// Pod-level requests alone: no limit to inherit.
	reqOnly := podLevel(&v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{Name: "bare"}}}}, "500m", "", "256Mi", "")
	got := e.s.linuxResources(reqOnly, &reqOnly.Spec.Containers[0])
	if got.CpuShares != 2 || got.CpuQuota != 0 || got.MemoryLimitInBytes != 0 {
		t.Errorf("pod-level requests only: shares %d quota %d memory %d, want 2 and no limits", got.CpuShares, got.CpuQuota, got.MemoryLimitInBytes)
	}
	// A pod-level cpu limit alone: memory stays unlimited.
	cpuOnly := podLevel(&v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{Name: "bare"}}}}, "", "300m", "", "")
	got = e.s.linuxResources(cpuOnly, &cpuOnly.Spec.Containers[0])
	if got.CpuQuota != 30000 || got.MemoryLimitInBytes != 0 {
		t.Errorf("pod-level cpu limit only: quota %d memory %d", got.CpuQuota, got.MemoryLimitInBytes)
	}
}

// The QoS class of a pod comes from its pod-level resources when it has
// them (the status the agent writes, the OOM score, the cgroup's place).
func TestPodLevelQOSClass(t *testing.T) {
	guaranteed := podLevel(&v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c", Resources: requests("100m", "")}}}}, "1", "1", "1Gi", "1Gi")
	if got := qosClass(guaranteed); got != v1.PodQOSGuaranteed {
		t.Errorf("pod-level requests = limits: %s, want Guaranteed", got)
	}
	if got := oomScoreAdj(guaranteed, &guaranteed.Spec.Containers[0], 1<<30); got != -997 {
		t.Errorf("guaranteed at pod level: OOM score adj %d, want -997", got)
	}
	burstable := podLevel(&v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c"}}}}, "500m", "1", "", "")
	if got := qosClass(burstable); got != v1.PodQOSBurstable {
		t.Errorf("pod-level cpu only: %s, want Burstable", got)
	}
}

// In a burstable pod with a pod-level memory request, the part of it no
// container requests is shared out equally among all containers for their
// OOM score (the kubelet's remainingPodMemReqPerContainer), sidecars
// included.
func TestPodLevelOOMScoreAdj(t *testing.T) {
	const capacity = 1 << 30
	pod := podLevel(&v1.Pod{Spec: v1.PodSpec{
		InitContainers: []v1.Container{
			{Name: "sidecar", RestartPolicy: ptr.To(v1.ContainerRestartPolicyAlways), Resources: requests("", "64Mi")},
			{Name: "init"},
		},
		Containers: []v1.Container{{Name: "a", Resources: requests("", "128Mi")}, {Name: "b"}},
	}}, "", "", "512Mi", "")
	// The containers request 64Mi + 128Mi together (the init container
	// none): 320Mi left, 80Mi for each of the four.
	for name, want := range map[string]int64{
		"a":       1000 - 1000*(208<<20)/capacity, // 797
		"b":       1000 - 1000*(80<<20)/capacity,  // 922
		"sidecar": 1000 - 1000*(144<<20)/capacity, // 860: below b's, the least
		"init":    1000 - 1000*(80<<20)/capacity,
	} {
		var c *v1.Container
		for _, cs := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
			for i := range cs {
				if cs[i].Name == name {
					c = &cs[i]
				}
			}
		}
		if got := oomScoreAdj(pod, c, capacity); got != want {
			t.Errorf("oomScoreAdj(%s) = %d, want %d", name, got, want)
		}
	}
	// Without a pod-level memory request the containers' own count.
	cpuOnly := podLevel(&v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{Name: "a", Resources: requests("", "256Mi")}}}}, "1", "", "", "")
	if got := oomScoreAdj(cpuOnly, &cpuOnly.Spec.Containers[0], capacity); got != 750 {
		t.Errorf("pod-level cpu request only: %d, want 750", got)
	}
}

// Admission counts pod-level requests in place of the containers' sums,
// for the new pod and for those already admitted: a pod whose pod-level
// request exceeds what is left is refused OutOfcpu / OutOfmemory.
func TestPodLevelAdmission(t *testing.T) {
	node := testNode() // 2 CPUs, 1Gi
	bare := func() *v1.Pod {
		return &v1.Pod{Spec: v1.PodSpec{
			Tolerations: []v1.Toleration{{Operator: v1.TolerationOpExists}},
			Containers:  []v1.Container{{Name: "c"}, {Name: "d", Resources: requests("10m", "1Mi")}},
		}}
	}
	for _, tc := range []struct {
		name    string
		pod     *v1.Pod
		others  []*v1.Pod
		want    string
		wantMsg string
	}{
		{name: "fits", pod: podLevel(bare(), "1", "2", "512Mi", "1Gi")},
		{name: "pod-level memory over allocatable", pod: podLevel(bare(), "100m", "", "2Gi", ""), want: "OutOfmemory",
			wantMsg: "Node didn't have enough resource: memory, requested: 2147483648, used: 0, capacity: 1073741824"},
		{name: "pod-level cpu over allocatable", pod: podLevel(bare(), "3", "3", "", ""), want: "OutOfcpu",
			wantMsg: "Node didn't have enough resource: cpu, requested: 3000, used: 0, capacity: 2000"},
		{name: "another pod's pod-level request counted", pod: podLevel(bare(), "1", "", "", ""),
			others: []*v1.Pod{podLevel(bare(), "1500m", "", "", "")}, want: "OutOfcpu",
			wantMsg: "Node didn't have enough resource: cpu, requested: 1000, used: 1500, capacity: 2000"},
		// Memory is not at pod level here: the containers' request counts.
		{name: "containers' request for a resource not at pod level", pod: podLevel(bare(), "1", "", "", ""),
			others: []*v1.Pod{requesting("memory", "1Gi")}, want: "OutOfmemory"},
		{name: "pod-level hugepages the node has none of", pod: func() *v1.Pod {
			p := podLevel(bare(), "100m", "", "", "")
			p.Spec.Resources.Requests["hugepages-2Mi"] = resource.MustParse("2Mi")
			p.Spec.Resources.Limits["hugepages-2Mi"] = resource.MustParse("2Mi")
			return p
		}(), want: "OutOfhugepages-2Mi"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, msg := generalFilter(tc.pod, tc.others, node, node.Status.Allocatable, 110)
			if got != tc.want || (tc.wantMsg != "" && msg != tc.wantMsg) {
				t.Errorf("generalFilter = %q (%s), want %q (%s)", got, msg, tc.want, tc.wantMsg)
			}
		})
	}
}

// cpu, memory and hugepages are pod-level resources; another name (which
// the apiserver refuses, but a static pod is not validated by it) and
// pod-level claims are refused with a reason.
func TestPodLevelUnsupported(t *testing.T) {
	ok := podLevel(&v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c"}}}}, "1", "1", "1Gi", "1Gi")
	if err := unsupported(ok); err != nil {
		t.Errorf("cpu and memory at pod level refused: %v", err)
	}
	storage := ok.DeepCopy()
	storage.Spec.Resources.Limits[v1.ResourceEphemeralStorage] = resource.MustParse("1Gi")
	storage.Spec.Resources.Requests[v1.ResourceEphemeralStorage] = resource.MustParse("1Gi")
	err := unsupported(storage)
	if err == nil || strings.Count(err.Error(), "pod-level resource ephemeral-storage") != 1 {
		t.Errorf("ephemeral-storage at pod level: %v, want it named once", err)
	}
	claims := ok.DeepCopy()
	claims.Spec.Resources.Claims = []v1.ResourceClaim{{Name: "gpu"}}
	if err := unsupported(claims); err == nil || !strings.Contains(err.Error(), "spec.resources.claims") {
		t.Errorf("pod-level claims: %v", err)
	}
}

// A pod with pod-level resources and containers without any runs: its
// containers get the pod's limits, its status the pod-level QoS class.
// A resize of a container of such a pod is applied as any other; a resize
// of the pod-level resources is Infeasible and the pod keeps what it was
// granted.
func TestPodLevelResize(t *testing.T) {
	var active []*v1.Pod
	e, rt := newResizeEnv(t, &active)
	pod := podLevel(sized(testPod("uid1", v1.RestartPolicyAlways), "100m", "", "64Mi", ""), "500m", "1", "256Mi", "512Mi")
	active = []*v1.Pod{pod}
	e.sync(t, pod)
	id := e.containerID(t, pod.UID, "c", 0)
	if got := rt.cgroups(id); got.CpuShares != 102 || got.CpuQuota != 100000 || got.MemoryLimitInBytes != 512<<20 {
		t.Fatalf("container cgroups: shares %d quota %d memory %d, want the pod's limits", got.CpuShares, got.CpuQuota, got.MemoryLimitInBytes)
	}
	st := e.status.get(pod.UID)
	if st.QOSClass != v1.PodQOSBurstable {
		t.Errorf("QoS class %s", st.QOSClass)
	}
	e.events()

	// The container's own resources change: applied in place.
	pod = resized(pod, "200m", "400m", "64Mi", "")
	pod.Status = *st
	active = []*v1.Pod{pod}
	e.sync(t, pod)
	if rt.updateCount() != 1 {
		t.Fatalf("%d UpdateContainerResources calls, want 1", rt.updateCount())
	}
	if got := rt.cgroups(id); got.CpuShares != 204 || got.CpuQuota != 40000 || got.MemoryLimitInBytes != 512<<20 {
		t.Errorf("after the container's resize: shares %d quota %d memory %d", got.CpuShares, got.CpuQuota, got.MemoryLimitInBytes)
	}
	st = e.status.get(pod.UID)
	if c := podCondition(st, v1.PodResizePending); c != nil {
		t.Errorf("PodResizePending after a container resize: %+v", c)
	}
	e.events()

	// The pod-level resources change: refused, nothing applied.
	grown := pod.DeepCopy()
	grown.Generation++
	grown.Spec.Resources.Limits[v1.ResourceMemory] = resource.MustParse("768Mi")
	grown.Status = *st
	active = []*v1.Pod{grown}
	e.sync(t, grown)
	st = e.status.get(pod.UID)
	c := podCondition(st, v1.PodResizePending)
	if c == nil || c.Reason != v1.PodReasonInfeasible || c.Message != podLevelResizeMessage || c.ObservedGeneration != grown.Generation {
		t.Errorf("PodResizePending after a pod-level resize = %+v", c)
	}
	if got := rt.cgroups(id).MemoryLimitInBytes; got != 512<<20 || rt.updateCount() != 1 {
		t.Errorf("a refused pod-level resize changed the container: memory %d, %d updates", got, rt.updateCount())
	}
	if !hasEvent(e.events(), "ResizeInfeasible Pod resize Infeasible: ") {
		t.Error("no ResizeInfeasible event")
	}
	// Back to the granted pod-level resources: the condition goes.
	back := pod.DeepCopy()
	back.Generation = grown.Generation + 1
	back.Status = *st
	active = []*v1.Pod{back}
	e.sync(t, back)
	if c := podCondition(e.status.get(pod.UID), v1.PodResizePending); c != nil {
		t.Errorf("PodResizePending after the spec went back: %+v", c)
	}
}
