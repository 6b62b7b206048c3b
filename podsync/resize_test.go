package podsync

import (
	"context"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

// resizingRuntime reports the cgroup settings a container was created or
// last updated with, as containerd does, and records the updates.
type resizingRuntime struct {
	*recordingRuntime
	mu        sync.Mutex
	resources map[string]*runtimeapi.LinuxContainerResources
	updates   []string
}

func (r *resizingRuntime) CreateContainer(ctx context.Context, sb string, cfg *runtimeapi.ContainerConfig, sbCfg *runtimeapi.PodSandboxConfig) (string, error) {
	id, err := r.recordingRuntime.CreateContainer(ctx, sb, cfg, sbCfg)
	if err == nil {
		r.mu.Lock()
		r.resources[id] = cfg.GetLinux().GetResources()
		r.mu.Unlock()
	}
	return id, err
}

func (r *resizingRuntime) UpdateContainerResources(ctx context.Context, id string, res *runtimeapi.ContainerResources) error {
	if err := r.recordingRuntime.UpdateContainerResources(ctx, id, res); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resources[id] = res.GetLinux()
	r.updates = append(r.updates, id)
	return nil
}

func (r *resizingRuntime) ContainerStatus(ctx context.Context, id string, verbose bool) (*runtimeapi.ContainerStatusResponse, error) {
	resp, err := r.recordingRuntime.ContainerStatus(ctx, id, verbose)
	if err == nil && resp.Status != nil {
		r.mu.Lock()
		if l := r.resources[id]; l != nil {
			resp.Status.Resources = &runtimeapi.ContainerResources{Linux: l}
		}
		r.mu.Unlock()
	}
	return resp, err
}

func (r *resizingRuntime) updateCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.updates)
}

func (r *resizingRuntime) cgroups(id string) *runtimeapi.LinuxContainerResources {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resources[id]
}

// fakeCgroups records the memory limit each full (not growOnly) write of
// a pod cgroup was asked for.
type fakeCgroups struct {
	mu    sync.Mutex
	full  []int64
	grows int
}

func (f *fakeCgroups) EnsurePod(_ string, pod *v1.Pod, growOnly bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if growOnly {
		f.grows++
		return nil
	}
	f.full = append(f.full, pod.Spec.Containers[0].Resources.Limits.Memory().Value())
	return nil
}

func (f *fakeCgroups) Forget(string) {}

func (f *fakeCgroups) fullWrites() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int64(nil), f.full...)
}

// newResizeEnv is newEnv with a runtime that reports resources, a node of
// 1 CPU and 1 GiB, and the given pods active.
func newResizeEnv(t *testing.T, active *[]*v1.Pod) (*env, *resizingRuntime) {
	e := newEnv(t)
	rt := &resizingRuntime{recordingRuntime: e.rt, resources: map[string]*runtimeapi.LinuxContainerResources{}}
	cfg := e.cfg
	cfg.MaxPods = 110
	cfg.ActivePods = func() []*v1.Pod { return *active }
	cfg.Allocatable = func() v1.ResourceList {
		return v1.ResourceList{v1.ResourceCPU: resource.MustParse("1"), v1.ResourceMemory: resource.MustParse("1Gi")}
	}
	cfg.MemoryCapacity = func() int64 { return 1 << 30 }
	cfg.PodCgroups = &fakeCgroups{}
	e.s = New(cfg, rt, e.images, e.vols, fakeEnv{}, e.status, e.rec, e.clock)
	return e, rt
}

func sized(p *v1.Pod, cpuReq, cpuLim, memReq, memLim string) *v1.Pod {
	r := v1.ResourceRequirements{Requests: v1.ResourceList{}, Limits: v1.ResourceList{}}
	for name, q := range map[v1.ResourceName]string{v1.ResourceCPU: cpuReq, v1.ResourceMemory: memReq} {
		if q != "" {
			r.Requests[name] = resource.MustParse(q)
		}
	}
	for name, q := range map[v1.ResourceName]string{v1.ResourceCPU: cpuLim, v1.ResourceMemory: memLim} {
		if q != "" {
			r.Limits[name] = resource.MustParse(q)
		}
	}
	p.Spec.Containers[0].Resources = r
	p.Generation = 1
	return p
}

// resized returns a copy of p asking for other resources, as the
// apiserver stores it after a resize (next generation).
func resized(p *v1.Pod, cpuReq, cpuLim, memReq, memLim string) *v1.Pod {
	out := sized(p.DeepCopy(), cpuReq, cpuLim, memReq, memLim)
	out.Generation = p.Generation + 1
	return out
}

func podCondition(st *v1.PodStatus, t v1.PodConditionType) *v1.PodCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

func TestResizeUpdatesRunningContainer(t *testing.T) {
	var active []*v1.Pod
	e, rt := newResizeEnv(t, &active)
	pod := sized(testPod("uid1", v1.RestartPolicyAlways), "100m", "200m", "64Mi", "128Mi")
	active = []*v1.Pod{pod}
	e.sync(t, pod)
	id := e.containerID(t, pod.UID, "c", 0)
	st := e.status.get(pod.UID)
	cs := st.ContainerStatuses[0]
	if cs.Resources == nil || !cs.Resources.Requests.Cpu().Equal(resource.MustParse("100m")) || !cs.Resources.Limits.Memory().Equal(resource.MustParse("128Mi")) {
		t.Fatalf("status resources before the resize = %+v", cs.Resources)
	}
	if !cs.AllocatedResources.Cpu().Equal(resource.MustParse("100m")) {
		t.Errorf("allocatedResources = %v", cs.AllocatedResources)
	}
	e.events()

	pod = resized(pod, "300m", "400m", "96Mi", "256Mi")
	pod.Status = *st
	active = []*v1.Pod{pod}
	e.sync(t, pod)

	if rt.updateCount() != 1 {
		t.Fatalf("%d UpdateContainerResources calls, want 1", rt.updateCount())
	}
	if _, restarted := e.find(pod.UID, "c", 1); restarted {
		t.Error("the container was restarted; its resizePolicy is NotRequired")
	}
	got := rt.cgroups(id)
	if got.CpuShares != 307 || got.CpuQuota != 40000 || got.CpuPeriod != 100000 || got.MemoryLimitInBytes != 256<<20 {
		t.Errorf("cgroups after the resize: shares %d quota %d period %d memory %d", got.CpuShares, got.CpuQuota, got.CpuPeriod, got.MemoryLimitInBytes)
	}
	st = e.status.get(pod.UID)
	cs = st.ContainerStatuses[0]
	want := map[string]resource.Quantity{
		"requests.cpu": resource.MustParse("300m"), "limits.cpu": resource.MustParse("400m"),
		"requests.memory": resource.MustParse("96Mi"), "limits.memory": resource.MustParse("256Mi"),
	}
	gotQ := map[string]resource.Quantity{
		"requests.cpu": *cs.Resources.Requests.Cpu(), "limits.cpu": *cs.Resources.Limits.Cpu(),
		"requests.memory": *cs.Resources.Requests.Memory(), "limits.memory": *cs.Resources.Limits.Memory(),
	}
	for k, w := range want {
		if g := gotQ[k]; !g.Equal(w) {
			t.Errorf("status resources %s = %s, want %s", k, g.String(), w.String())
		}
	}
	if !cs.AllocatedResources.Memory().Equal(resource.MustParse("96Mi")) {
		t.Errorf("allocatedResources = %v", cs.AllocatedResources)
	}
	if c := podCondition(st, v1.PodResizeInProgress); c != nil {
		t.Errorf("PodResizeInProgress after the containers run with the new resources: %+v", c)
	}
	events := e.events()
	for _, want := range []string{"ResizeStarted Pod resize started: ", "ResizeCompleted Pod resize completed: ", `"generation":2`} {
		if !hasEvent(events, want) {
			t.Errorf("no event %q in %q", want, events)
		}
	}
	if cs.RestartCount != 0 {
		t.Errorf("restartCount = %d", cs.RestartCount)
	}

	// The next sync has nothing to do.
	pod.Status = *st
	e.sync(t, pod)
	if rt.updateCount() != 1 {
		t.Errorf("%d UpdateContainerResources calls after a sync with nothing to resize, want 1", rt.updateCount())
	}
}

func TestResizeRestartContainerPolicy(t *testing.T) {
	var active []*v1.Pod
	e, rt := newResizeEnv(t, &active)
	pod := sized(testPod("uid1", v1.RestartPolicyAlways), "100m", "100m", "64Mi", "64Mi")
	pod.Spec.Containers[0].ResizePolicy = []v1.ContainerResizePolicy{
		{ResourceName: v1.ResourceCPU, RestartPolicy: v1.NotRequired},
		{ResourceName: v1.ResourceMemory, RestartPolicy: v1.RestartContainer},
	}
	active = []*v1.Pod{pod}
	e.sync(t, pod)
	e.events()

	// CPU only: updated in place.
	pod = resized(pod, "200m", "200m", "64Mi", "64Mi")
	pod.Status = *e.status.get(pod.UID)
	active = []*v1.Pod{pod}
	e.sync(t, pod)
	if _, restarted := e.find(pod.UID, "c", 1); restarted || rt.updateCount() != 1 {
		t.Fatalf("CPU resize: restarted %v, %d updates; want an update in place", restarted, rt.updateCount())
	}

	// Memory: the policy restarts the container, with the new limit.
	pod = resized(pod, "200m", "200m", "128Mi", "128Mi")
	pod.Status = *e.status.get(pod.UID)
	active = []*v1.Pod{pod}
	e.sync(t, pod)
	id, restarted := e.find(pod.UID, "c", 1)
	if !restarted {
		t.Fatal("memory resize with RestartContainer did not restart the container")
	}
	if got := rt.cgroups(id).MemoryLimitInBytes; got != 128<<20 {
		t.Errorf("new container's memory limit = %d", got)
	}
	if rt.updateCount() != 1 {
		t.Errorf("%d updates, want none for the restarted container", rt.updateCount()-1)
	}
	if !hasEvent(e.events(), "Container c resize requires restart") {
		t.Error("no Killing event naming the resize")
	}
	st := e.status.get(pod.UID)
	if st.ContainerStatuses[0].RestartCount != 1 {
		t.Errorf("restartCount = %d, want 1", st.ContainerStatuses[0].RestartCount)
	}
}

func TestResizeDeferredUntilThePodFits(t *testing.T) {
	var active []*v1.Pod
	e, rt := newResizeEnv(t, &active)
	other := sized(testPod("other", v1.RestartPolicyAlways), "600m", "", "", "")
	other.CreationTimestamp = metav1.Unix(1, 0)
	pod := sized(testPod("uid1", v1.RestartPolicyAlways), "300m", "", "", "")
	pod.CreationTimestamp = metav1.Unix(2, 0)
	active = []*v1.Pod{other, pod}
	e.sync(t, other)
	e.sync(t, pod)
	id := e.containerID(t, pod.UID, "c", 0)
	e.events()

	pod = resized(pod, "500m", "", "", "")
	pod.Status = *e.status.get(pod.UID)
	active = []*v1.Pod{other, pod}
	_, requeue := e.sync(t, pod)
	if requeue != deferredRetry {
		t.Errorf("requeue = %v, want %v", requeue, deferredRetry)
	}
	st := e.status.get(pod.UID)
	c := podCondition(st, v1.PodResizePending)
	if c == nil || c.Reason != v1.PodReasonDeferred || c.ObservedGeneration != 2 || c.Message != "Node didn't have enough resource: cpu, requested: 500, used: 600, capacity: 1000" {
		t.Fatalf("PodResizePending = %+v", c)
	}
	if rt.updateCount() != 0 || rt.cgroups(id).CpuShares != 307 {
		t.Errorf("a deferred resize changed the container: %d updates, shares %d", rt.updateCount(), rt.cgroups(id).CpuShares)
	}
	if got := st.ContainerStatuses[0].AllocatedResources.Cpu(); !got.Equal(resource.MustParse("300m")) {
		t.Errorf("allocatedResources.cpu of a deferred resize = %s, want the granted 300m", got.String())
	}
	if !hasEvent(e.events(), "ResizeDeferred Pod resize Deferred: ") {
		t.Error("no ResizeDeferred event")
	}

	// The other pod goes: the resize is granted and applied.
	active = []*v1.Pod{pod}
	pod.Status = *st
	e.sync(t, pod)
	st = e.status.get(pod.UID)
	if c := podCondition(st, v1.PodResizePending); c != nil {
		t.Errorf("PodResizePending after the node made room: %+v", c)
	}
	if rt.cgroups(id).CpuShares != 512 {
		t.Errorf("shares = %d, want 512", rt.cgroups(id).CpuShares)
	}

	// A pod admitted later counts the granted resources: 500m left.
	late := sized(testPod("late", v1.RestartPolicyAlways), "600m", "", "", "")
	late.CreationTimestamp = metav1.Unix(3, 0)
	active = []*v1.Pod{pod, late}
	e.sync(t, late)
	if st := e.status.get(late.UID); st == nil || st.Phase != v1.PodFailed || st.Reason != "OutOfcpu" {
		t.Errorf("a pod that does not fit beside the resized one: %+v", st)
	}
}

// belowUsage runs a pod whose container uses 100Mi, limited to 128Mi,
// and syncs the resize of that limit to 80Mi; it returns the resized pod,
// the container's ID and the sync's requeue.
func belowUsage(t *testing.T) (*env, *resizingRuntime, *v1.Pod, string, time.Duration) {
	active := new([]*v1.Pod)
	e, rt := newResizeEnv(t, active)
	pod := sized(testPod("uid1", v1.RestartPolicyAlways), "", "", "64Mi", "128Mi")
	*active = []*v1.Pod{pod}
	e.sync(t, pod)
	id := e.containerID(t, pod.UID, "c", 0)
	rt.SetFakeContainerStats([]*runtimeapi.ContainerStats{{
		Attributes: &runtimeapi.ContainerAttributes{Id: id},
		Memory:     &runtimeapi.MemoryUsage{UsageBytes: &runtimeapi.UInt64Value{Value: 100 << 20}},
	}})
	pod = resized(pod, "", "", "64Mi", "80Mi")
	pod.Status = *e.status.get(pod.UID)
	*active = []*v1.Pod{pod}
	_, requeue := e.sync(t, pod)
	return e, rt, pod, id, requeue
}

func TestResizeMemoryLimitBelowUsage(t *testing.T) {
	e, rt, pod, id, requeue := belowUsage(t)
	if rt.updateCount() != 0 {
		t.Fatal("the memory limit was lowered below the container's usage")
	}
	if requeue != resizeRetry {
		t.Errorf("requeue = %v, want %v", requeue, resizeRetry)
	}
	st := e.status.get(pod.UID)
	c := podCondition(st, v1.PodResizeInProgress)
	want := `cannot decrease memory limits: attempting to set container "c" memory limit (83886080) below current usage (104857600)`
	if c == nil || c.Reason != "Error" || c.Message != want {
		t.Fatalf("PodResizeInProgress = %+v, want reason Error, message %q", c, want)
	}
	if !hasEvent(e.events(), "ResizeError Pod resize error: ") {
		t.Error("no ResizeError event")
	}
	if got := st.ContainerStatuses[0].Resources.Limits.Memory(); !got.Equal(resource.MustParse("128Mi")) {
		t.Errorf("status limits.memory = %s, want what the container runs with, 128Mi", got.String())
	}
	cg := e.s.cfg.PodCgroups.(*fakeCgroups)
	for _, m := range cg.fullWrites() {
		if m == 80<<20 {
			t.Fatal("the pod's cgroup was narrowed to the new memory limit although its container refused it")
		}
	}

	// The usage drops: the next sync applies it.
	rt.SetFakeContainerStats([]*runtimeapi.ContainerStats{{
		Attributes: &runtimeapi.ContainerAttributes{Id: id},
		Memory:     &runtimeapi.MemoryUsage{UsageBytes: &runtimeapi.UInt64Value{Value: 10 << 20}},
	}})
	pod.Status = *st
	e.sync(t, pod)
	if rt.updateCount() != 1 || rt.cgroups(id).MemoryLimitInBytes != 80<<20 {
		t.Fatalf("after the usage dropped: %d updates, limit %d", rt.updateCount(), rt.cgroups(id).MemoryLimitInBytes)
	}
	if c := podCondition(e.status.get(pod.UID), v1.PodResizeInProgress); c != nil {
		t.Errorf("PodResizeInProgress after the resize applied: %+v", c)
	}
	if w := cg.fullWrites(); w[len(w)-1] != 80<<20 {
		t.Errorf("the pod's cgroup was not narrowed after its container: %v", w)
	}
}

// A resize error clears once the container runs with its grant, here
// because it crashed and came back with the new limit.
func TestResizeErrorClearsWithANewInstance(t *testing.T) {
	e, rt, pod, id, _ := belowUsage(t)
	if c := podCondition(e.status.get(pod.UID), v1.PodResizeInProgress); c == nil || c.Reason != "Error" {
		t.Fatalf("PodResizeInProgress = %+v, want reason Error", c)
	}
	e.exit(id, 137)
	pod.Status = *e.status.get(pod.UID)
	e.sync(t, pod)
	newID, ok := e.find(pod.UID, "c", 1)
	if !ok || rt.cgroups(newID).MemoryLimitInBytes != 80<<20 {
		t.Fatalf("the new instance does not run with the granted limit")
	}
	if c := podCondition(e.status.get(pod.UID), v1.PodResizeInProgress); c != nil {
		t.Errorf("PodResizeInProgress after the new instance runs with the grant: %+v", c)
	}
}

// Resources below what the kernel can express show as granted: a 1m
// request and a 5m limit run as 2 shares and a 10m quota.
func TestStatusResourcesEquivalents(t *testing.T) {
	c := &v1.Container{Name: "c", Resources: v1.ResourceRequirements{
		Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("1m")},
		Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse("5m")},
	}}
	cur := &runtimeapi.ContainerStatus{Id: "x", State: runtimeapi.ContainerState_CONTAINER_RUNNING,
		Resources: &runtimeapi.ContainerResources{Linux: &runtimeapi.LinuxContainerResources{CpuShares: 2, CpuQuota: 1000, CpuPeriod: 100000}}}
	got := statusResources(c, cur, nil, nil)
	if !got.Requests.Cpu().Equal(resource.MustParse("1m")) || !got.Limits.Cpu().Equal(resource.MustParse("5m")) {
		t.Errorf("status resources = %v / %v, want 1m / 5m", got.Requests, got.Limits)
	}
	// Above the floor the runtime's values show.
	c.Resources.Requests[v1.ResourceCPU] = resource.MustParse("20m")
	c.Resources.Limits[v1.ResourceCPU] = resource.MustParse("30m")
	cur.Resources.Linux = &runtimeapi.LinuxContainerResources{CpuShares: 20, CpuQuota: 3000, CpuPeriod: 100000}
	got = statusResources(c, cur, nil, nil)
	if !got.Requests.Cpu().Equal(resource.MustParse("20m")) || !got.Limits.Cpu().Equal(resource.MustParse("30m")) {
		t.Errorf("status resources = %v / %v, want 20m / 30m", got.Requests, got.Limits)
	}
	// A best-effort container reports empty resources.
	got = statusResources(&v1.Container{Name: "c"}, cur, nil, nil)
	if got.Requests != nil || got.Limits != nil {
		t.Errorf("best-effort status resources = %+v, want none", got)
	}
}

func TestOOMScoreAdj(t *testing.T) {
	mem := func(q string) v1.ResourceRequirements {
		return v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceMemory: resource.MustParse(q)}}
	}
	burstable := &v1.Pod{Spec: v1.PodSpec{
		InitContainers: []v1.Container{{Name: "sidecar", RestartPolicy: ptr.To(v1.ContainerRestartPolicyAlways), Resources: mem("1Mi")}},
		Containers:     []v1.Container{{Name: "a", Resources: mem("512Mi")}, {Name: "b", Resources: mem("256Mi")}},
	}}
	const capacity = 1 << 30
	for name, want := range map[string]int64{"a": 500, "b": 750, "sidecar": 750} {
		var c *v1.Container
		for _, cs := range [][]v1.Container{burstable.Spec.InitContainers, burstable.Spec.Containers} {
			for i := range cs {
				if cs[i].Name == name {
					c = &cs[i]
				}
			}
		}
		if got := oomScoreAdj(burstable, c, capacity); got != want {
			t.Errorf("oomScoreAdj(%s) = %d, want %d", name, got, want)
		}
	}
	critical := burstable.DeepCopy()
	critical.Spec.Priority = ptr.To(int32(2000001000))
	critical.Spec.PriorityClassName = "system-node-critical"
	if got := oomScoreAdj(critical, &critical.Spec.Containers[0], capacity); got != -997 {
		t.Errorf("node-critical pod: %d, want -997", got)
	}
	tiny := &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{Name: "a", Resources: mem("1")}}}}
	if got := oomScoreAdj(tiny, &tiny.Spec.Containers[0], capacity); got != 999 {
		t.Errorf("burstable pod requesting 1 byte: %d, want 999", got)
	}
}
