package podsync

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/podcgroups"
)

// In-place resize: the pod's resize subresource changes the CPU and
// memory of its containers while they run (kubectl patch --subresource
// resize). The node first decides whether it grants the new resources
// (allocation), then applies them (actuation), as the kubelet's allocation
// manager and computePodActions do:
//
//   - Allocation (allocate, in the pod's worker, serialized with admission):
//     the resources the node granted each container are kept per pod. A
//     spec asking for others is granted when the pod still fits the node
//     beside the other admitted pods (their granted resources counted), and
//     the pod then runs with its spec; otherwise the resize waits
//     (PodResizePending, reason Deferred, with the admission's message) and
//     the pod keeps running with what it was granted, tried again every
//     deferredRetry.
//   - Actuation (resizeRunning, from syncPodContainers): a running
//     container whose granted resources differ from those it runs with
//     gets UpdateContainerResources, or is restarted when its resizePolicy
//     says RestartContainer for a changed resource. A memory limit is not
//     lowered below the container's current usage (the kubelet's
//     best-effort check): the resize stays in progress with the error.
//   - Status: containerStatuses[].allocatedResources are the granted
//     requests and .resources what the container runs with (the runtime's
//     values, the granted ones where the runtime's are equivalent), as the
//     kubelet's convertContainerStatusResources; PodResizeInProgress is set
//     from the grant until the containers run with it, with reason Error
//     and the message while an update fails.
//
// The grants are kept in a checkpoint file in the root dir
// (checkpoint.go), as the kubelet's allocated_pods_state: after an agent
// restart each pod keeps what it was granted, and a spec that asks for
// other resources (a resize deferred when the agent stopped, or made
// while it was down) goes through the fit check once the node's pods are
// known.
//
// The pod's own cgroup (pod<uid>) follows the grant when the agent writes
// pod cgroups (Config.PodCgroups: cgroupsPerQOS with the cgroupfs driver,
// package podcgroups): SyncPod widens it (growOnly) before the
// containers are resized and writes it to the grant after them, not
// while a container refuses its resize (its memory limit below its
// usage), whose limit the pod's would enforce. Otherwise (the systemd
// driver, no cgroupsPerQOS) the runtime creates it without limits of its
// own and only the containers' cgroups change. Regular init containers
// are resized as the others (the node declares
// InPlacePodVerticalScalingInitContainers, without which the apiserver
// refuses it); one that is done keeps its grant for the status.
//
// Pod-level resources (spec.resources): a resize of the containers of such
// a pod is granted and applied as any other (the pod-level requests, which
// stand for the containers' in the fit, do not change; a container
// without a limit of its own keeps running with the pod's). A resize of
// spec.resources itself is not done: the node does not declare
// InPlacePodLevelResourcesVerticalScaling, so the apiserver refuses it for
// this node; one that comes all the same is Infeasible (PodResizePending)
// and the pod keeps what it was granted, as the kubelet with that feature
// gate off.

// deferredRetry is how often a deferred resize is tried again; the
// kubelet also retries when a pod leaves or another resize ends.
const deferredRetry = 5 * time.Second

// resizeRetry is when a resize whose actuation failed is tried again.
const resizeRetry = 10 * time.Second

// allocation is what the node granted a pod: the resources of its
// containers by name, init and app containers, and its pod-level
// resources (spec.resources), which a resize does not change here.
type allocation struct {
	containers map[string]v1.ResourceRequirements
	pod        *v1.ResourceRequirements
}

// allocationJSON is an allocation as the checkpoint keeps it
// (checkpoint.go).
type allocationJSON struct {
	Containers map[string]v1.ResourceRequirements `json:"containers"`
	Pod        *v1.ResourceRequirements           `json:"pod,omitempty"`
}

func (a allocation) MarshalJSON() ([]byte, error) {
	return json.Marshal(allocationJSON{Containers: a.containers, Pod: a.pod})
}

func (a *allocation) UnmarshalJSON(b []byte) error {
	var j allocationJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	a.containers, a.pod = j.Containers, j.Pod
	return nil
}

func specAllocation(pod *v1.Pod) allocation {
	a := allocation{containers: map[string]v1.ResourceRequirements{}, pod: pod.Spec.Resources.DeepCopy()}
	for _, cs := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			a.containers[cs[i].Name] = *cs[i].Resources.DeepCopy()
		}
	}
	return a
}

// matches reports whether the containers of pod ask for what a granted.
func (a allocation) matches(pod *v1.Pod) bool {
	for _, cs := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if r, ok := a.containers[cs[i].Name]; ok && !apiequality.Semantic.DeepEqual(r, cs[i].Resources) {
				return false
			}
		}
	}
	return true
}

// podLevelMatches reports whether pod's spec.resources are the granted
// ones.
func (a allocation) podLevelMatches(pod *v1.Pod) bool {
	return apiequality.Semantic.DeepEqual(a.pod, pod.Spec.Resources)
}

// apply returns pod with the granted resources in place of those its spec
// asks for: pod itself when they are the same (or nothing was granted
// yet), else a copy.
func (a allocation) apply(pod *v1.Pod) *v1.Pod {
	if a.containers == nil || (a.matches(pod) && a.podLevelMatches(pod)) {
		return pod
	}
	out := pod.DeepCopy()
	out.Spec.Resources = a.pod.DeepCopy()
	for _, cs := range [][]v1.Container{out.Spec.InitContainers, out.Spec.Containers} {
		for i := range cs {
			if r, ok := a.containers[cs[i].Name]; ok {
				cs[i].Resources = *r.DeepCopy()
			}
		}
	}
	return out
}

// podLevelResizeMessage is why a resize of pod-level resources is
// infeasible: the node does not declare InPlacePodLevelResourcesVerticalScaling
// (agent/node.go), so the apiserver lets none through; one that comes all
// the same (an older apiserver) is refused, the pod keeping what it was
// granted.
const podLevelResizeMessage = "resize of pod-level resources (spec.resources) is not supported by nodeagent: the node does not declare InPlacePodLevelResourcesVerticalScaling"

// resizeState is what the agent knows of a pod's resizes, for its status
// and events.
type resizeState struct {
	// pending is the PodResizePending condition of a deferred resize.
	pending *v1.PodCondition
	// started is the generation of the spec whose resources were granted
	// last by a resize and not yet reported complete; 0: none.
	started int64
	// err is why the last actuation failed, "" if it did not.
	err string
	// actuated holds, by container name, the resources the running
	// container was created or last updated with, and its ID.
	actuated map[string]actuated
}

type actuated struct {
	id        string
	resources v1.ResourceRequirements
}

func (s *Syncer) resizeOf(uid types.UID) *resizeState {
	if s.resizes == nil {
		s.resizes = map[types.UID]*resizeState{}
	}
	r := s.resizes[uid]
	if r == nil {
		r = &resizeState{actuated: map[string]actuated{}}
		s.resizes[uid] = r
	}
	return r
}

// allocate returns pod as the node runs it, with the resources granted to
// its containers, and when to try again a resize that must wait. A pod
// seen for the first time since the agent started takes its grant from
// the checkpoint (checkpoint.go), and is granted its spec when it has
// none there.
func (s *Syncer) allocate(ctx context.Context, pod *v1.Pod) (*v1.Pod, time.Duration) {
	a := &s.admission
	a.mu.Lock()
	s.restoreGrants(ctx)
	if a.allocated == nil {
		a.allocated = map[types.UID]allocation{}
	}
	granted, ok := a.allocated[pod.UID]
	if !ok {
		if granted, ok = a.restored[pod.UID]; ok {
			a.allocated[pod.UID] = granted
			delete(a.restored, pod.UID)
		}
	}
	if ok && !granted.podLevelMatches(pod) {
		a.mu.Unlock()
		s.infeasible(ctx, pod, podLevelResizeMessage)
		return granted.apply(pod), 0
	}
	if !ok || granted.matches(pod) {
		if !ok {
			a.allocated[pod.UID] = specAllocation(pod)
			s.saveGrants(ctx)
		}
		a.mu.Unlock()
		s.mu.Lock()
		if r := s.resizes[pod.UID]; r != nil {
			r.pending = nil
		}
		s.mu.Unlock()
		return pod, 0
	}
	if !a.podsKnown {
		// After a restart, before every pod the node runs is known to
		// count beside this one: the resize waits, as the kubelet's
		// retryPendingResizes waits for sourcesReady, and keeps the
		// PodResizePending condition its status has (the kubelet's
		// BackfillPodResizeConditions).
		a.mu.Unlock()
		s.mu.Lock()
		if r := s.resizeOf(pod.UID); r.pending == nil {
			for _, c := range pod.Status.Conditions {
				if c.Type == v1.PodResizePending && c.Status == v1.ConditionTrue {
					r.pending = c.DeepCopy()
				}
			}
		}
		s.mu.Unlock()
		klog.FromContext(ctx).V(4).Info("Pod resize waits until the node's pods are known")
		return granted.apply(pod), deferredRetry
	}
	var active []*v1.Pod
	if s.cfg.ActivePods != nil {
		active = s.cfg.ActivePods()
	}
	a.forgetGone(active)
	admitted, _ := a.split(pod, active)
	for i, p := range admitted {
		admitted[i] = a.grantOf(p.UID).apply(p)
	}
	var node *v1.Node
	if s.cfg.Node != nil {
		node = s.cfg.Node()
	}
	reason, msg := fitsResources(pod, admitted, s.allocatable(node), s.cfg.MaxPods)
	if reason == "" {
		a.allocated[pod.UID] = specAllocation(pod)
	}
	s.saveGrants(ctx) // the grant, or pods forgotten
	a.mu.Unlock()

	logger := klog.FromContext(ctx)
	s.mu.Lock()
	r := s.resizeOf(pod.UID)
	var event, eventType, eventMsg string
	if reason == "" {
		r.pending, r.err, r.started = nil, "", max(pod.Generation, 1)
		event, eventType, eventMsg = "ResizeStarted", v1.EventTypeNormal, resizeMessage("Pod resize started", pod, "")
	} else if r.pending == nil || r.pending.ObservedGeneration != pod.Generation || r.pending.Message != msg {
		r.pending = &v1.PodCondition{
			Type: v1.PodResizePending, Status: v1.ConditionTrue, Reason: v1.PodReasonDeferred,
			Message: msg, ObservedGeneration: pod.Generation,
		}
		event, eventType, eventMsg = "ResizeDeferred", v1.EventTypeWarning, resizeMessage("Pod resize Deferred", pod, msg)
	}
	s.mu.Unlock()
	if event != "" {
		logger.V(2).Info("Pod resize", "event", event, "message", msg)
		s.recorder.Event(pod, eventType, event, eventMsg)
	}
	if reason == "" {
		return pod, 0
	}
	return granted.apply(pod), deferredRetry
}

// infeasible marks the resize of pod as one the node will not grant
// whatever it frees (PodResizePending, reason Infeasible, with msg), with
// the kubelet's ResizeInfeasible event once per generation and message.
// It is decided again when the spec changes.
func (s *Syncer) infeasible(ctx context.Context, pod *v1.Pod, msg string) {
	s.mu.Lock()
	r := s.resizeOf(pod.UID)
	changed := r.pending == nil || r.pending.Reason != v1.PodReasonInfeasible || r.pending.ObservedGeneration != pod.Generation || r.pending.Message != msg
	if changed {
		r.pending = &v1.PodCondition{
			Type: v1.PodResizePending, Status: v1.ConditionTrue, Reason: v1.PodReasonInfeasible,
			Message: msg, ObservedGeneration: pod.Generation,
		}
	}
	s.mu.Unlock()
	if changed {
		klog.FromContext(ctx).V(2).Info("Pod resize", "event", "ResizeInfeasible", "message", msg)
		s.recorder.Event(pod, v1.EventTypeWarning, "ResizeInfeasible", resizeMessage("Pod resize Infeasible", pod, msg))
	}
}

// allocatable is what the node offers pods: the node's allocatable, or
// the configured one before the node is known.
func (s *Syncer) allocatable(node *v1.Node) v1.ResourceList {
	switch {
	case node != nil:
		return node.Status.Allocatable
	case s.cfg.Allocatable != nil:
		return s.cfg.Allocatable()
	}
	return nil
}

// resizeMessage is the kubelet's resize event message: a prefix, then the
// resources the pod's containers ask for, the generation and the error, as
// JSON.
func resizeMessage(prefix string, pod *v1.Pod, errMsg string) string {
	type container struct {
		Name      string                  `json:"name"`
		Resources v1.ResourceRequirements `json:"resources,omitempty"`
	}
	summary := struct {
		InitContainers []container `json:"initContainers,omitempty"`
		Containers     []container `json:"containers,omitempty"`
		Generation     int64       `json:"generation"`
		Error          string      `json:"error,omitempty"`
	}{Generation: pod.Generation, Error: errMsg}
	for _, c := range pod.Spec.InitContainers {
		summary.InitContainers = append(summary.InitContainers, container{c.Name, c.Resources})
	}
	for _, c := range pod.Spec.Containers {
		summary.Containers = append(summary.Containers, container{c.Name, c.Resources})
	}
	b, err := json.Marshal(summary)
	if err != nil {
		return prefix
	}
	return prefix + ": " + string(b)
}

// containerAmounts are the four resizable amounts of a container.
type containerAmounts struct{ cpuRequest, cpuLimit, memRequest, memLimit int64 }

func amountsOf(r v1.ResourceRequirements) containerAmounts {
	return containerAmounts{
		cpuRequest: r.Requests.Cpu().MilliValue(), cpuLimit: r.Limits.Cpu().MilliValue(),
		memRequest: r.Requests.Memory().Value(), memLimit: r.Limits.Memory().Value(),
	}
}

// runtimeAmounts are what the runtime reports a container runs with, the
// memory request (which no cgroup holds) taken from want; ok is false when
// the runtime reports nothing.
func runtimeAmounts(cur *runtimeapi.ContainerStatus, want v1.ResourceRequirements) (containerAmounts, bool) {
	l := cur.GetResources().GetLinux()
	if l == nil {
		return containerAmounts{}, false
	}
	a := containerAmounts{memRequest: want.Requests.Memory().Value()}
	a.cpuRequest = podcgroups.SharesToMilli(l.CpuShares)
	a.cpuLimit = podcgroups.QuotaToMilli(l.CpuQuota, l.CpuPeriod)
	if l.MemoryLimitInBytes > 0 {
		a.memLimit = l.MemoryLimitInBytes
	}
	return a, true
}

// sameCgroups reports whether the runtime's settings of cur are those
// want asks for.
func sameCgroups(cur *runtimeapi.ContainerStatus, want *runtimeapi.LinuxContainerResources) bool {
	l := cur.GetResources().GetLinux()
	if l == nil {
		return true // the runtime does not tell: nothing to compare
	}
	quota := func(r *runtimeapi.LinuxContainerResources) int64 { return max(r.CpuQuota, 0) }
	return l.CpuShares == want.CpuShares && quota(l) == quota(want) &&
		max(l.MemoryLimitInBytes, 0) == max(want.MemoryLimitInBytes, 0)
}

// actuatedOf returns what the running container cur of c was created or
// last updated with. After an agent restart the agent does not know: a
// container whose cgroups match the grant is taken as running with it,
// another as running with what the runtime reports.
func (s *Syncer) actuatedOf(pod *v1.Pod, c *v1.Container, cur *runtimeapi.ContainerStatus) containerAmounts {
	s.mu.Lock()
	act, ok := s.resizeOf(pod.UID).actuated[c.Name]
	s.mu.Unlock()
	if ok && act.id == cur.Id {
		return amountsOf(act.resources)
	}
	if sameCgroups(cur, s.linuxResources(pod, c)) {
		s.setActuated(pod.UID, c.Name, cur.Id, c.Resources)
		return amountsOf(c.Resources)
	}
	if a, ok := runtimeAmounts(cur, c.Resources); ok {
		return a
	}
	return amountsOf(c.Resources)
}

// actuatedResources returns what the running container id of the pod
// was created or last updated with, nil if not known.
func (s *Syncer) actuatedResources(uid types.UID, name, id string) *v1.ResourceRequirements {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.resizes[uid]; r != nil {
		if act, ok := r.actuated[name]; ok && act.id == id {
			return act.resources.DeepCopy()
		}
	}
	return nil
}

func (s *Syncer) setActuated(uid types.UID, name, id string, r v1.ResourceRequirements) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resizeOf(uid).actuated[name] = actuated{id: id, resources: *r.DeepCopy()}
}

// resizeRunning applies to the running container cur of c the resources
// the node granted it (c's, pod being the granted pod): nothing when it
// runs with them already, a restart when its resizePolicy asks for one for
// a resource that changed, else UpdateContainerResources. It returns
// whether it changed the container (restarted or updated it) and when to
// try again after a failure, which it records for the status.
func (s *Syncer) resizeRunning(ctx context.Context, pod *v1.Pod, state *podState, c *v1.Container, cur *runtimeapi.ContainerStatus, sandbox *runtimeapi.PodSandbox) (bool, time.Duration, error) {
	have := s.actuatedOf(pod, c, cur)
	want := amountsOf(c.Resources)
	if have == want {
		return false, 0, nil
	}
	restart := func(name v1.ResourceName) bool {
		for _, p := range c.ResizePolicy {
			if p.ResourceName == name {
				return p.RestartPolicy == v1.RestartContainer
			}
		}
		return false
	}
	cpuChanged := have.cpuRequest != want.cpuRequest || have.cpuLimit != want.cpuLimit
	memChanged := have.memRequest != want.memRequest || have.memLimit != want.memLimit
	if (cpuChanged && restart(v1.ResourceCPU)) || (memChanged && restart(v1.ResourceMemory)) {
		_, _, err := s.restartChanged(ctx, pod, state, c, cur, sandbox, fmt.Sprintf("Container %s resize requires restart", c.Name))
		return true, 0, err
	}
	err := s.updateResources(ctx, pod, c, cur, have, want)
	s.mu.Lock()
	r := s.resizeOf(pod.UID)
	prev := r.err
	if err != nil {
		r.err = err.Error()
	} else {
		r.err = ""
	}
	s.mu.Unlock()
	if err != nil {
		klog.FromContext(ctx).Error(err, "Resizing container", "container", c.Name)
		if prev != err.Error() {
			s.recorder.Event(pod, v1.EventTypeWarning, "ResizeError", resizeMessage("Pod resize error", pod, err.Error()))
		}
		return false, resizeRetry, nil
	}
	s.setActuated(pod.UID, c.Name, cur.Id, c.Resources)
	return true, 0, nil
}

// updateResources sends c's cgroup settings to its running container cur,
// after checking that a lower memory limit is above what the container
// uses now.
func (s *Syncer) updateResources(ctx context.Context, pod *v1.Pod, c *v1.Container, cur *runtimeapi.ContainerStatus, have, want containerAmounts) error {
	if want.memLimit > 0 && (have.memLimit == 0 || want.memLimit < have.memLimit) {
		stats, err := s.runtime.ContainerStats(ctx, cur.Id)
		if err != nil || stats.GetMemory().GetUsageBytes() == nil {
			return fmt.Errorf("cannot decrease memory limits: missing container %q memory usage", c.Name)
		}
		if usage := stats.GetMemory().GetUsageBytes().GetValue(); usage >= uint64(want.memLimit) {
			return fmt.Errorf("cannot decrease memory limits: attempting to set container %q memory limit (%d) below current usage (%d)", c.Name, want.memLimit, usage)
		}
	}
	res := s.linuxResources(pod, c)
	if err := s.runtime.UpdateContainerResources(ctx, cur.Id, &runtimeapi.ContainerResources{Linux: res}); err != nil {
		return fmt.Errorf("update resources of container %q: %w", c.Name, err)
	}
	klog.FromContext(ctx).V(2).Info("Resized container", "container", c.Name, "containerID", cur.Id,
		"cpuShares", res.CpuShares, "cpuQuota", res.CpuQuota, "memoryLimit", res.MemoryLimitInBytes)
	return nil
}

// resizeFailed reports whether the last resize of a container of the pod
// failed (and is to be tried again).
func (s *Syncer) resizeFailed(uid types.UID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.resizes[uid]
	return r != nil && r.err != ""
}

// grantedPod is pod with the resources granted to its containers (the
// pod SyncPod's allocate returned), for statuses written elsewhere. The
// checkpoint is read first: a worker's first status may come from
// SyncTerminatingPod, before any allocation.
func (s *Syncer) grantedPod(ctx context.Context, pod *v1.Pod) *v1.Pod {
	a := &s.admission
	a.mu.Lock()
	defer a.mu.Unlock()
	s.restoreGrants(ctx)
	return a.grantOf(pod.UID).apply(pod)
}

// resizeInProgress reports whether a running container of pod (the
// granted pod) does not run with what it was granted yet.
func (s *Syncer) resizeInProgress(pod *v1.Pod, state *podState) bool {
	for _, cs := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			cur, _ := state.latest(cs[i].Name)
			if cur == nil || cur.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
				continue
			}
			s.mu.Lock()
			act, ok := s.resizeOf(pod.UID).actuated[cs[i].Name]
			s.mu.Unlock()
			if ok && act.id == cur.Id && amountsOf(act.resources) != amountsOf(cs[i].Resources) {
				return true
			}
			if (!ok || act.id != cur.Id) && !sameCgroups(cur, s.linuxResources(pod, &cs[i])) {
				return true
			}
		}
	}
	return false
}

// resizeConditions are the PodResizePending and PodResizeInProgress
// conditions of pod (the granted pod), each keeping its transition time
// while it holds. A resize that completed is reported once, with the
// kubelet's ResizeCompleted event.
func (s *Syncer) resizeConditions(pod *v1.Pod, state *podState, now metav1.Time) []v1.PodCondition {
	inProgress := s.resizeInProgress(pod, state)
	s.mu.Lock()
	r := s.resizes[pod.UID]
	var out []v1.PodCondition
	completed := int64(0)
	if r != nil {
		if r.pending != nil {
			out = append(out, *r.pending)
		}
		if !inProgress {
			// Every running container runs with its grant (a failed one
			// may have been replaced since): no error stands.
			r.err = ""
		}
		gen := r.started
		if gen == 0 {
			gen = pod.Generation
		}
		switch {
		case inProgress:
			c := v1.PodCondition{Type: v1.PodResizeInProgress, Status: v1.ConditionTrue, ObservedGeneration: gen}
			if r.err != "" {
				c.Reason, c.Message = "Error", r.err
			}
			out = append(out, c)
		case r.started != 0:
			completed, r.started = r.started, 0
		}
	} else if inProgress {
		out = append(out, v1.PodCondition{Type: v1.PodResizeInProgress, Status: v1.ConditionTrue, ObservedGeneration: pod.Generation})
	}
	s.mu.Unlock()
	if completed != 0 {
		s.recorder.Event(pod, v1.EventTypeNormal, "ResizeCompleted", resizeMessage("Pod resize completed", pod, ""))
	}
	for i := range out {
		out[i].LastTransitionTime = now
		for _, old := range pod.Status.Conditions {
			if old.Type == out[i].Type && old.Status == out[i].Status && old.Reason == out[i].Reason {
				out[i].LastTransitionTime = old.LastTransitionTime
			}
		}
	}
	return out
}

// statusResources is the kubelet's convertContainerStatusResources: the
// resources of container c (of the granted pod) in its status, cur being
// its newest instance, prior its last reported status and act what the
// agent created or last updated it with (nil: not known). A running
// container reports the runtime's CPU and memory settings where they
// exist, the granted values where both are at the kernel's floor (2
// shares, a 10m quota), so that a request of 1m does not show as 2m; its
// memory request, which no cgroup holds, is the one it was last given.
func statusResources(c *v1.Container, cur *runtimeapi.ContainerStatus, prior *v1.ContainerStatus, act *v1.ResourceRequirements) *v1.ResourceRequirements {
	res := c.Resources.DeepCopy()
	if cur.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return res
	}
	l := cur.GetResources().GetLinux()
	keep := func(name v1.ResourceName, from v1.ResourceList, into v1.ResourceList) {
		if prior != nil && prior.State.Running != nil && prior.ContainerID == containerID(cur.Id) && prior.Resources != nil {
			if q, ok := from[name]; ok {
				into[name] = q.DeepCopy()
			}
		}
	}
	var priorLimits, priorRequests v1.ResourceList
	if prior != nil && prior.Resources != nil {
		priorLimits, priorRequests = prior.Resources.Limits, prior.Resources.Requests
	}
	if res.Limits != nil {
		if m := podcgroups.QuotaToMilli(l.GetCpuQuota(), l.GetCpuPeriod()); m > 0 {
			if m > minMilliCPULimit || res.Limits.Cpu().MilliValue() > minMilliCPULimit {
				res.Limits[v1.ResourceCPU] = *resource.NewMilliQuantity(m, resource.DecimalSI)
			}
		} else {
			keep(v1.ResourceCPU, priorLimits, res.Limits)
		}
		if l != nil && l.MemoryLimitInBytes > 0 {
			res.Limits[v1.ResourceMemory] = *resource.NewQuantity(l.MemoryLimitInBytes, resource.BinarySI)
		} else {
			keep(v1.ResourceMemory, priorLimits, res.Limits)
		}
	}
	if res.Requests != nil {
		if l != nil && l.CpuShares > 0 {
			if m := podcgroups.SharesToMilli(l.CpuShares); m > podcgroups.MinShares || res.Requests.Cpu().MilliValue() > podcgroups.MinShares {
				res.Requests[v1.ResourceCPU] = *resource.NewMilliQuantity(m, resource.DecimalSI)
			}
		} else {
			keep(v1.ResourceCPU, priorRequests, res.Requests)
		}
		if act != nil && !act.Requests.Memory().IsZero() {
			res.Requests[v1.ResourceMemory] = act.Requests.Memory().DeepCopy()
		} else {
			keep(v1.ResourceMemory, priorRequests, res.Requests)
		}
	}
	return res
}

// minMilliCPULimit is the smallest CPU limit a CFS quota expresses (the
// kubelet's MinMilliCPULimit).
const minMilliCPULimit = 10
