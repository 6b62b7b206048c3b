package podsync

import (
	"context"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// computeStatus derives the pod's status from what the runtime reports.
func (s *Syncer) computeStatus(ctx context.Context, pod *v1.Pod, state *podState) (*v1.PodStatus, error) {
	now := metav1.NewTime(s.clock.Now())
	st := &v1.PodStatus{
		QOSClass:           qosClass(pod),
		StartTime:          pod.Status.StartTime,
		NominatedNodeName:  pod.Status.NominatedNodeName,
		ObservedGeneration: pod.Generation,
	}
	if st.StartTime == nil {
		st.StartTime = &now
	}
	for _, ip := range s.cfg.NodeIPs {
		st.HostIPs = append(st.HostIPs, v1.HostIP{IP: ip.String()})
	}
	if len(st.HostIPs) > 0 {
		st.HostIP = st.HostIPs[0].IP
	}
	sandbox := state.readySandbox()
	if sandbox != nil {
		ips, err := s.sandboxIPsOf(ctx, sandbox.Id)
		if err != nil {
			return nil, err
		}
		if pod.Spec.HostNetwork {
			ips = nil
			for _, h := range st.HostIPs {
				ips = append(ips, h.IP)
			}
		}
		for _, ip := range ips {
			st.PodIPs = append(st.PodIPs, v1.PodIP{IP: ip})
		}
		if len(ips) > 0 {
			st.PodIP = ips[0]
		}
	} else if pod.Status.PodIP != "" && len(state.sandboxes) > 0 {
		// A stopped sandbox keeps the IP it had, as the kubelet reports.
		st.PodIP, st.PodIPs = pod.Status.PodIP, pod.Status.PodIPs
	}
	st.InitContainerStatuses = s.containerStatuses(ctx, pod, pod.Spec.InitContainers, state)
	st.ContainerStatuses = s.containerStatuses(ctx, pod, pod.Spec.Containers, state)
	st.Phase = phase(pod, st)
	st.Conditions = conditions(pod, st, sandbox != nil, now)
	return st, nil
}

func (s *Syncer) containerStatuses(ctx context.Context, pod *v1.Pod, specs []v1.Container, state *podState) []v1.ContainerStatus {
	if len(specs) == 0 {
		return nil
	}
	out := make([]v1.ContainerStatus, 0, len(specs))
	for i := range specs {
		c := &specs[i]
		cs := v1.ContainerStatus{Name: c.Name, Image: c.Image}
		cur, prev := state.latest(c.Name)
		if cur != nil {
			cs.ContainerID = "containerd://" + cur.Id
			cs.ImageID = cur.ImageRef
			cs.RestartCount = prevRestartCount(cur)
			cs.State = s.containerState(ctx, pod, c.Name, cur)
			running := cur.State == runtimeapi.ContainerState_CONTAINER_RUNNING
			cs.Ready = running && state.readySandbox() != nil && s.probeReady(pod, c, cur.Id)
			started := cs.State.Running != nil && s.probeStarted(pod, c, cur.Id)
			cs.Started = &started
			if prev != nil && prev.State == runtimeapi.ContainerState_CONTAINER_EXITED {
				cs.LastTerminationState = s.containerState(ctx, pod, c.Name, prev)
			}
		}
		if w, ok := s.waitingFor(pod.UID, c.Name); ok && (cur == nil || cur.State == runtimeapi.ContainerState_CONTAINER_EXITED) {
			if cur != nil && w.reason == "CrashLoopBackOff" {
				cs.LastTerminationState = cs.State
			}
			if cur == nil || w.reason == "CrashLoopBackOff" || shouldRestart(restartPolicyOf(pod, c), cur.ExitCode) {
				cs.State = v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: w.reason, Message: w.message}}
			}
		}
		if cs.State.Waiting == nil && cs.State.Running == nil && cs.State.Terminated == nil {
			cs.State.Waiting = &v1.ContainerStateWaiting{Reason: "ContainerCreating"}
			if len(pod.Spec.InitContainers) > 0 && !isInit(pod, c.Name) {
				cs.State.Waiting.Reason = "PodInitializing"
			}
		}
		if cs.Started == nil {
			f := false
			cs.Started = &f
		}
		out = append(out, cs)
	}
	return out
}

func isInit(pod *v1.Pod, name string) bool {
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

// containerState is the state of container name of the pod that the
// runtime reports as c.
func (s *Syncer) containerState(ctx context.Context, pod *v1.Pod, name string, c *runtimeapi.ContainerStatus) v1.ContainerState {
	switch c.State {
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		return v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: metav1.NewTime(time.Unix(0, c.StartedAt))}}
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		t := &v1.ContainerStateTerminated{
			ExitCode:    c.ExitCode,
			Reason:      c.Reason,
			Message:     s.terminationMessage(ctx, pod, name, c),
			StartedAt:   metav1.NewTime(time.Unix(0, c.StartedAt)),
			FinishedAt:  metav1.NewTime(time.Unix(0, c.FinishedAt)),
			ContainerID: "containerd://" + c.Id,
		}
		if t.Reason == "" {
			t.Reason = "Error"
			if c.ExitCode == 0 {
				t.Reason = "Completed"
			}
		}
		return v1.ContainerState{Terminated: t}
	}
	return v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ContainerCreating"}}
}

// phase follows the kubelet's getPhase. A regular init container that
// failed for good fails the pod; until an app container ran, the pod is
// Pending while a regular init container has not succeeded or a sidecar
// does not run started. Sidecars never count for the phase otherwise.
func phase(pod *v1.Pod, st *v1.PodStatus) v1.PodPhase {
	pending, failed := false, false
	for i, cs := range st.InitContainerStatuses {
		if i < len(pod.Spec.InitContainers) && isSidecar(&pod.Spec.InitContainers[i]) {
			if cs.State.Running == nil || cs.Started == nil || !*cs.Started {
				pending = true
			}
			continue
		}
		if t := cs.State.Terminated; t != nil && t.ExitCode == 0 {
			continue
		}
		if pod.Spec.RestartPolicy == v1.RestartPolicyNever &&
			(cs.State.Terminated != nil || (cs.State.Waiting != nil && cs.LastTerminationState.Terminated != nil)) {
			failed = true
			continue
		}
		pending = true
	}
	if failed {
		return v1.PodFailed
	}
	if pending && !statusInitialized(st) {
		return v1.PodPending
	}
	var waiting, running, stopped, succeeded int
	for _, cs := range st.ContainerStatuses {
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			stopped++
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case cs.State.Waiting != nil:
			if cs.LastTerminationState.Terminated != nil {
				stopped++
			} else {
				waiting++
			}
		}
	}
	switch {
	case waiting > 0:
		return v1.PodPending
	case running > 0:
		return v1.PodRunning
	case stopped > 0:
		switch pod.Spec.RestartPolicy {
		case v1.RestartPolicyAlways:
			return v1.PodRunning
		case v1.RestartPolicyOnFailure:
			if stopped == succeeded {
				return v1.PodSucceeded
			}
			return v1.PodRunning
		default:
			if stopped == succeeded {
				return v1.PodSucceeded
			}
			return v1.PodFailed
		}
	}
	return v1.PodPending
}

// statusInitialized reports whether an app container of the status ran
// (or runs): the pod initialized.
func statusInitialized(st *v1.PodStatus) bool {
	for _, cs := range st.ContainerStatuses {
		if cs.State.Running != nil || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil {
			return true
		}
	}
	return false
}

// initDone reports whether init container i of the pod no longer holds
// initialization back: a regular one exited 0, a sidecar runs and started.
func initDone(pod *v1.Pod, i int, cs v1.ContainerStatus) bool {
	if i < len(pod.Spec.InitContainers) && isSidecar(&pod.Spec.InitContainers[i]) {
		return cs.State.Running != nil && cs.Started != nil && *cs.Started
	}
	t := cs.State.Terminated
	return t != nil && t.ExitCode == 0
}

// conditions sets the conditions the agent owns and keeps the others.
// Sidecars count for readiness like app containers.
func conditions(pod *v1.Pod, st *v1.PodStatus, sandboxReady bool, now metav1.Time) []v1.PodCondition {
	initialized, ready := true, true
	initReason, readyReason := "", ""
	if !statusInitialized(st) {
		for i, cs := range st.InitContainerStatuses {
			if !initDone(pod, i, cs) {
				initialized, initReason = false, "ContainersNotInitialized"
			}
		}
	}
	var notReady []string
	for i, cs := range st.InitContainerStatuses {
		if i < len(pod.Spec.InitContainers) && isSidecar(&pod.Spec.InitContainers[i]) && !cs.Ready {
			notReady = append(notReady, cs.Name)
		}
	}
	for _, cs := range st.ContainerStatuses {
		if !cs.Ready {
			notReady = append(notReady, cs.Name)
		}
	}
	if len(notReady) > 0 {
		ready, readyReason = false, "ContainersNotReady"
	}
	if st.Phase == v1.PodSucceeded || st.Phase == v1.PodFailed {
		ready, readyReason = false, "PodCompleted"
		if st.Phase == v1.PodFailed {
			readyReason = "PodFailed"
		}
	}
	msg := func(reason string) string {
		switch reason {
		case "ContainersNotReady":
			return "containers with unready status: [" + strings.Join(notReady, " ") + "]"
		case "ContainersNotInitialized":
			return "containers with incomplete status: [" + incomplete(pod, st) + "]"
		}
		return ""
	}
	// Readiness gates must all be True too.
	gatesReady := true
	for _, g := range pod.Spec.ReadinessGates {
		found := false
		for _, c := range pod.Status.Conditions {
			if c.Type == g.ConditionType && c.Status == v1.ConditionTrue {
				found = true
			}
		}
		if !found {
			gatesReady = false
		}
	}
	owned := []struct {
		t      v1.PodConditionType
		ok     bool
		reason string
	}{
		{v1.PodReadyToStartContainers, sandboxReady, ""},
		{v1.PodInitialized, initialized, initReason},
		{v1.ContainersReady, ready, readyReason},
		{v1.PodReady, ready && gatesReady, readyReason},
	}
	if ready && !gatesReady {
		owned[3].reason = "ReadinessGatesNotReady"
	}
	var out []v1.PodCondition
	byType := map[v1.PodConditionType]v1.PodCondition{}
	for _, c := range pod.Status.Conditions {
		byType[c.Type] = c
	}
	for _, c := range pod.Status.Conditions {
		mine := false
		for _, o := range owned {
			mine = mine || o.t == c.Type
		}
		if !mine {
			out = append(out, c)
		}
	}
	for _, o := range owned {
		status := v1.ConditionFalse
		if o.ok {
			status = v1.ConditionTrue
		}
		c := v1.PodCondition{Type: o.t, Status: status, ObservedGeneration: pod.Generation, LastTransitionTime: now}
		if !o.ok {
			c.Reason = o.reason
			c.Message = msg(o.reason)
		}
		if old, ok := byType[o.t]; ok && old.Status == status {
			c.LastTransitionTime = old.LastTransitionTime
		}
		out = append(out, c)
	}
	return out
}

func incomplete(pod *v1.Pod, st *v1.PodStatus) string {
	var names []string
	for i, cs := range st.InitContainerStatuses {
		if !initDone(pod, i, cs) {
			names = append(names, cs.Name)
		}
	}
	return strings.Join(names, " ")
}
