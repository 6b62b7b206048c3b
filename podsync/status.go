package podsync

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/staticpods"
)

// computeStatus derives the pod's status from what the runtime reports.
func (s *Syncer) computeStatus(ctx context.Context, pod *v1.Pod, state *podState) (*v1.PodStatus, error) {
	pod = s.grantedPod(ctx, pod) // as the node runs it (resize.go)
	now := metav1.NewTime(s.clock.Now())
	st := &v1.PodStatus{
		QOSClass:           qosClass(pod),
		StartTime:          pod.Status.StartTime,
		NominatedNodeName:  pod.Status.NominatedNodeName,
		ObservedGeneration: observedGeneration(pod),
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
		s.mu.Lock()
		unreadable := s.unreadableCache[sandbox.Id]
		s.mu.Unlock()
		if len(ips) == 0 && unreadable && s.agentNetwork(pod.Spec.HostNetwork) {
			// Only a sandbox adopted without a readable CNI cache entry
			// (cachedIPs logged why) has no IPs here: it still has the
			// addresses last reported; clearing them would take the
			// running pod out of its Services.
			ips = podIPStrings(pod.Status.PodIPs)
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
	st.InitContainerStatuses = s.containerStatuses(ctx, pod, pod.Spec.InitContainers, pod.Status.InitContainerStatuses, state, true)
	st.ContainerStatuses = s.containerStatuses(ctx, pod, pod.Spec.Containers, pod.Status.ContainerStatuses, state, false)
	st.EphemeralContainerStatuses = s.ephemeralStatuses(ctx, pod, state)
	st.Phase = phase(pod, st)
	if st.Phase == pod.Status.Phase {
		// The reason and message belong to the phase (the kubelet's).
		st.Reason, st.Message = pod.Status.Reason, pod.Status.Message
	}
	st.Conditions = conditions(pod, st, sandbox != nil, now)
	st.Conditions = append(st.Conditions, s.resizeConditions(pod, state, now)...)
	return st, nil
}

// containerStatuses converts what the runtime has of the containers of
// specs (the init containers when init is set) as the kubelet's
// convertToAPIContainerStatuses and its prober's UpdatePodStatus do. old
// are the statuses the apiserver has: a container the runtime no longer
// knows keeps its last terminated state, restart count and last
// termination from there.
func (s *Syncer) containerStatuses(ctx context.Context, pod *v1.Pod, specs []v1.Container, old []v1.ContainerStatus, state *podState, init bool) []v1.ContainerStatus {
	if len(specs) == 0 {
		return nil
	}
	// A container not created yet waits: for its turn after the init
	// containers (all of them, init containers too) or for its creation.
	defaultReason := "ContainerCreating"
	if len(pod.Spec.InitContainers) > 0 {
		defaultReason = "PodInitializing"
	}
	initialized := podInitialized(pod, state)
	out := make([]v1.ContainerStatus, 0, len(specs))
	for i := range specs {
		c := &specs[i]
		prior, hadPrior := statusNamed(old, c.Name)
		cs := v1.ContainerStatus{Name: c.Name, Image: c.Image, State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: defaultReason}}}
		if hadPrior {
			if prior.State.Terminated != nil {
				cs = *prior.DeepCopy()
			} else {
				cs.RestartCount = prior.RestartCount
				cs.LastTerminationState = *prior.LastTerminationState.DeepCopy()
			}
		}
		cur, prev := state.latest(c.Name)
		switch {
		case cur != nil:
			cs = s.runtimeStatus(ctx, pod, c, cur, prior, hadPrior)
			// What the node granted c and what it runs with (resize.go).
			var priorStatus *v1.ContainerStatus
			if hadPrior {
				priorStatus = &prior
			}
			cs.AllocatedResources = c.Resources.Requests.DeepCopy()
			cs.Resources = statusResources(c, cur, priorStatus, s.actuatedResources(pod.UID, c.Name, cur.Id))
			if prev != nil {
				cs.LastTerminationState = s.containerState(ctx, pod, c.Name, prev)
			}
		case hadPrior && prior.State.Running != nil && cs.LastTerminationState.Terminated == nil:
			// It ran and is gone without a trace: it terminated, with
			// what result nobody knows.
			cs.LastTerminationState.Terminated = &v1.ContainerStateTerminated{
				Reason:   "ContainerStatusUnknown",
				Message:  "The container could not be located when the pod was deleted.  The container used to be Running",
				ExitCode: 137,
			}
			if pod.DeletionTimestamp == nil {
				cs.RestartCount++
			}
		}
		s.applyWaitReason(pod, c, cur, &cs, init, initialized)
		setReadyAndStarted(s, pod, c, cur, &cs, init, state.readySandbox() != nil)
		out = append(out, cs)
	}
	if !init {
		// The kubelet lists app containers by name.
		sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	}
	return out
}

// runtimeStatus is the status of container c whose newest instance the
// runtime reports as cur; prior is the apiserver's status of c, if any.
func (s *Syncer) runtimeStatus(ctx context.Context, pod *v1.Pod, c *v1.Container, cur *runtimeapi.ContainerStatus, prior v1.ContainerStatus, hadPrior bool) v1.ContainerStatus {
	cs := v1.ContainerStatus{
		Name:         c.Name,
		Image:        statusImage(c, cur),
		ImageID:      cur.ImageRef,
		ContainerID:  containerID(cur.Id),
		RestartCount: prevRestartCount(cur),
	}
	if hadPrior {
		// Counts never go back, and a termination the runtime forgot
		// (its container removed) stays the last one known.
		cs.RestartCount = max(cs.RestartCount, prior.RestartCount)
		if prior.ContainerID != cs.ContainerID && prior.State.Terminated != nil {
			cs.LastTerminationState.Terminated = prior.State.Terminated.DeepCopy()
		} else if prior.LastTerminationState.Terminated != nil {
			cs.LastTerminationState.Terminated = prior.LastTerminationState.Terminated.DeepCopy()
		}
	}
	if cur.State == runtimeapi.ContainerState_CONTAINER_UNKNOWN && hadPrior && prior.State.Running != nil {
		cs.State.Terminated = &v1.ContainerStateTerminated{
			Reason:   "ContainerStatusUnknown",
			Message:  "The container could not be located when the pod was terminated",
			ExitCode: 137,
		}
		cs.RestartCount = prior.RestartCount + 1
		return cs
	}
	cs.State = s.containerState(ctx, pod, c.Name, cur)
	// A restart the count does not show yet, unless the prior
	// termination is a lost or Unknown container's, whose restart that
	// status already counted.
	if cs.State.Running != nil && hadPrior && prior.State.Terminated != nil && prior.State.Terminated.Reason != "ContainerStatusUnknown" && prior.RestartCount >= cs.RestartCount {
		cs.RestartCount = prior.RestartCount + 1
	}
	return cs
}

// applyWaitReason shows why a container that is to be (re)started is not
// running, as the kubelet's reason cache does: a pull, config or start
// error, or the crash-loop back-off. A regular init container that
// succeeded is never restarted; one the runtime forgot after the pod
// initialized is taken as succeeded.
func (s *Syncer) applyWaitReason(pod *v1.Pod, c *v1.Container, cur *runtimeapi.ContainerStatus, cs *v1.ContainerStatus, init, initialized bool) {
	if init {
		if cur != nil && cur.State == runtimeapi.ContainerState_CONTAINER_EXITED && cur.ExitCode == 0 {
			return
		}
		if cur == nil && initialized && !isSidecar(c) && cs.State.Waiting != nil {
			cs.State = v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
				Reason:  "Completed",
				Message: "Unable to get init container status from container runtime and pod has been initialized, treat it as exited normally",
			}}
			return
		}
	}
	if !toRestart(pod, c, cur) {
		return
	}
	w, ok := s.waitingFor(pod.UID, c.Name)
	if !ok {
		return
	}
	if cs.State.Terminated != nil {
		cs.LastTerminationState = cs.State
	}
	cs.State = v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: w.reason, Message: w.message}}
}

// toRestart reports whether a sync would start a new instance of c: the
// kubelet's ShouldContainerBeRestarted, except that an ephemeral
// container, which is never restarted, keeps the state of the one it has.
func toRestart(pod *v1.Pod, c *v1.Container, cur *runtimeapi.ContainerStatus) bool {
	switch {
	case pod.DeletionTimestamp != nil:
		return false
	case cur == nil:
		return true
	case isEphemeral(pod, c.Name):
		return false
	case cur.State == runtimeapi.ContainerState_CONTAINER_RUNNING:
		return false
	case cur.State == runtimeapi.ContainerState_CONTAINER_EXITED:
		return shouldRestart(restartPolicyOf(pod, c), cur.ExitCode)
	}
	return true // created or unknown
}

// setReadyAndStarted sets Started and Ready as the kubelet's prober
// manager does: a container started when it runs and its startup probe
// (if any) succeeded; a regular init container is ready once it exited 0;
// any other container when it started, runs in the ready sandbox and its
// readiness probe (if any) succeeded.
func setReadyAndStarted(s *Syncer, pod *v1.Pod, c *v1.Container, cur *runtimeapi.ContainerStatus, cs *v1.ContainerStatus, init, sandboxReady bool) {
	started := cs.State.Running != nil && cur != nil && s.probeStarted(pod, c, cur.Id)
	cs.Started = &started
	if init && !isSidecar(c) {
		cs.Ready = cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0
		return
	}
	cs.Ready = started && sandboxReady && cs.State.Running != nil && s.probeReady(pod, c, cur.Id)
}

// statusNamed returns the status of container name among statuses.
func statusNamed(statuses []v1.ContainerStatus, name string) (v1.ContainerStatus, bool) {
	for _, cs := range statuses {
		if cs.Name == name {
			return cs, true
		}
	}
	return v1.ContainerStatus{}, false
}

func containerID(id string) string { return "containerd://" + id }

func isInit(pod *v1.Pod, name string) bool {
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

// containerState is the state of container name of the pod that the
// runtime reports as c. A container created but not (yet) running waits,
// with no reason, as for the kubelet.
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
			ContainerID: containerID(c.Id),
		}
		if t.Reason == "" {
			t.Reason = "Error"
			if c.ExitCode == 0 {
				t.Reason = "Completed"
			}
		}
		return v1.ContainerState{Terminated: t}
	}
	return v1.ContainerState{Waiting: &v1.ContainerStateWaiting{}}
}

// phase follows the kubelet's getPhase. A regular init container that
// failed and will not be restarted fails the pod; one that has not
// succeeded keeps it Pending, as does a sidecar that does not run started
// until an app container ran. A running sidecar does not count as a
// running container here: a pod whose app containers are done for good
// gets its terminal phase, which SyncPod reports as Running until the
// sidecars are stopped, as the kubelet does.
func phase(pod *v1.Pod, st *v1.PodStatus) v1.PodPhase {
	policy := pod.Spec.RestartPolicy
	pendingInit, pendingSidecars, failedInit := 0, 0, 0
	var unknown, running, waiting, stopped, stoppedForGood, succeeded int
	for i, cs := range st.InitContainerStatuses {
		if i < len(pod.Spec.InitContainers) && isSidecar(&pod.Spec.InitContainers[i]) {
			switch {
			case cs.State.Running != nil:
				if cs.Started == nil || !*cs.Started {
					pendingSidecars++
				}
			case cs.State.Terminated != nil, cs.State.Waiting != nil && cs.LastTerminationState.Terminated != nil:
				// Stopped sidecars do not count for the phase.
			case cs.State.Waiting != nil:
				pendingSidecars++
				waiting++
			default:
				pendingSidecars++
				unknown++
			}
			continue
		}
		switch {
		case cs.State.Running != nil:
			pendingInit++
		case cs.State.Terminated != nil:
			if code := cs.State.Terminated.ExitCode; code != 0 && !shouldRestart(policy, code) {
				failedInit++
			}
		case cs.State.Waiting != nil && cs.LastTerminationState.Terminated != nil:
			if code := cs.LastTerminationState.Terminated.ExitCode; code != 0 && !shouldRestart(policy, code) {
				failedInit++
			}
		default:
			pendingInit++
		}
	}
	for _, cs := range st.ContainerStatuses {
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			stopped++
			code := cs.State.Terminated.ExitCode
			if !shouldRestart(policy, code) {
				stoppedForGood++
			}
			if code == 0 {
				succeeded++
			}
		case cs.State.Waiting != nil && cs.LastTerminationState.Terminated != nil:
			stopped++
			if !shouldRestart(policy, cs.LastTerminationState.Terminated.ExitCode) {
				stoppedForGood++
			}
		case cs.State.Waiting != nil:
			waiting++
		default:
			unknown++
		}
	}
	switch {
	case failedInit > 0:
		return v1.PodFailed
	case pendingInit > 0 || (pendingSidecars > 0 && !statusInitialized(st)) || waiting > 0:
		return v1.PodPending
	case running > 0 && unknown == 0:
		return v1.PodRunning
	case running == 0 && stopped > 0 && unknown == 0:
		if stopped != stoppedForGood {
			return v1.PodRunning // restarting
		}
		if stopped == succeeded {
			return v1.PodSucceeded
		}
		return v1.PodFailed
	}
	return v1.PodPending
}

// terminalPhase is the phase of a pod none of whose containers will run
// again (deleted, stopped): the kubelet's getPhase with podIsTerminal.
// Once no app container runs and all have stopped, the pod succeeded if
// they all exited 0 and failed otherwise, whatever its restartPolicy;
// static pods keep the phase their policy gives, as the kubelet's.
func terminalPhase(pod *v1.Pod, st *v1.PodStatus) v1.PodPhase {
	p := phase(pod, st)
	if p != v1.PodRunning || staticpods.IsStatic(pod) {
		return p
	}
	stopped, succeeded := 0, 0
	for _, cs := range st.ContainerStatuses {
		switch {
		case cs.State.Terminated != nil:
			stopped++
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case cs.State.Waiting != nil && cs.LastTerminationState.Terminated != nil:
			stopped++
		default:
			return p // runs, or never ran
		}
	}
	switch {
	case stopped == 0 || len(st.ContainerStatuses) < len(pod.Spec.Containers):
		return p
	case stopped == succeeded:
		return v1.PodSucceeded
	}
	return v1.PodFailed
}

// statusInitialized reports whether an app container of the status exists
// (runs, ran, or waits to restart): the pod initialized.
func statusInitialized(st *v1.PodStatus) bool {
	for _, cs := range st.ContainerStatuses {
		if cs.State.Running != nil || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil {
			return true
		}
	}
	return false
}

// appStarted reports whether an app container of the status runs or
// terminated: the kubelet's HasAnyRegularContainerStarted.
func appStarted(st *v1.PodStatus) bool {
	for _, cs := range st.ContainerStatuses {
		if cs.State.Running != nil || cs.State.Terminated != nil {
			return true
		}
	}
	return false
}

// initDone reports whether init container i of the pod no longer holds
// initialization back: a regular one is ready (it exited 0), a sidecar
// started.
func initDone(pod *v1.Pod, i int, cs v1.ContainerStatus) bool {
	if i < len(pod.Spec.InitContainers) && isSidecar(&pod.Spec.InitContainers[i]) {
		return cs.Started != nil && *cs.Started
	}
	return cs.Ready
}

// Reasons of the conditions the agent owns, the kubelet's.
const (
	reasonPodCompleted             = "PodCompleted"
	reasonPodFailed                = "PodFailed"
	reasonContainersNotReady       = "ContainersNotReady"
	reasonContainersNotInitialized = "ContainersNotInitialized"
	reasonReadinessGatesNotReady   = "ReadinessGatesNotReady"
)

// ownedConditions are the pod conditions the agent sets, as the kubelet
// (PodConditionsByKubelet and PodReadyToStartContainers).
var ownedConditions = []v1.PodConditionType{
	v1.PodScheduled, v1.PodReady, v1.PodInitialized, v1.ContainersReady,
	v1.PodResizeInProgress, v1.PodResizePending, v1.PodReadyToStartContainers,
}

// conditions keeps the conditions others own and appends the agent's in
// the kubelet's order: PodReadyToStartContainers, Initialized, Ready,
// ContainersReady, PodScheduled. Each carries the generation of the spec
// it was computed from; a condition whose status did not change keeps its
// transition time.
func conditions(pod *v1.Pod, st *v1.PodStatus, sandboxReady bool, now metav1.Time) []v1.PodCondition {
	var out []v1.PodCondition
	for _, c := range pod.Status.Conditions {
		if !slices.Contains(ownedConditions, c.Type) {
			out = append(out, c)
		}
	}
	ready := readyCondition(pod, st, out)
	containersReady := containersReadyCondition(pod, st)
	owned := []v1.PodCondition{
		{Type: v1.PodReadyToStartContainers, Status: conditionStatus(sandboxReady)},
		initializedCondition(pod, st),
		ready,
		containersReady,
		{Type: v1.PodScheduled, Status: v1.ConditionTrue},
	}
	gen := conditionGeneration(pod)
	for _, c := range owned {
		c.ObservedGeneration = gen
		c.LastTransitionTime = now
		for _, old := range pod.Status.Conditions {
			if old.Type == c.Type && old.Status == c.Status {
				c.LastTransitionTime = old.LastTransitionTime
			}
		}
		out = append(out, c)
	}
	return out
}

// refreshConditions computes again the conditions the agent owns in st,
// after its phase changed, keeping the others (those a status function
// added among them).
func refreshConditions(pod *v1.Pod, st *v1.PodStatus, sandboxReady bool, now metav1.Time) {
	fresh := conditions(pod, st, sandboxReady, now)
	for i := range st.Conditions {
		if !slices.Contains(ownedConditions, st.Conditions[i].Type) {
			continue
		}
		if j := slices.IndexFunc(fresh, func(c v1.PodCondition) bool { return c.Type == st.Conditions[i].Type }); j >= 0 {
			st.Conditions[i] = fresh[j]
		}
	}
}

func conditionStatus(ok bool) v1.ConditionStatus {
	if ok {
		return v1.ConditionTrue
	}
	return v1.ConditionFalse
}

// initializedCondition is the kubelet's GeneratePodInitializedCondition:
// true once every init container is done, or an app container started,
// and from then on (the kubelet keeps a pod initialized whose containers
// all restart in place).
func initializedCondition(pod *v1.Pod, st *v1.PodStatus) v1.PodCondition {
	c := v1.PodCondition{Type: v1.PodInitialized, Status: v1.ConditionTrue}
	if st.Phase == v1.PodSucceeded {
		c.Reason = reasonPodCompleted
		return c
	}
	if appStarted(st) {
		return c
	}
	var incomplete []string
	for i, cs := range st.InitContainerStatuses {
		if !initDone(pod, i, cs) {
			incomplete = append(incomplete, cs.Name)
		}
	}
	if len(incomplete) == 0 {
		return c
	}
	for _, old := range pod.Status.Conditions {
		if old.Type == v1.PodInitialized && old.Status == v1.ConditionTrue {
			return c
		}
	}
	c.Status = v1.ConditionFalse
	c.Reason = reasonContainersNotInitialized
	c.Message = fmt.Sprintf("containers with incomplete status: %s", incomplete)
	return c
}

// containersReadyCondition is the kubelet's
// GenerateContainersReadyCondition: sidecars and app containers, in the
// order of the spec, must be ready; a finished pod's containers are not.
func containersReadyCondition(pod *v1.Pod, st *v1.PodStatus) v1.PodCondition {
	c := v1.PodCondition{Type: v1.ContainersReady, Status: v1.ConditionFalse}
	switch st.Phase {
	case v1.PodSucceeded:
		c.Reason = reasonPodCompleted
		return c
	case v1.PodFailed:
		c.Reason = reasonPodFailed
		return c
	}
	var unknown, unready []string
	check := func(name string, statuses []v1.ContainerStatus) {
		cs, ok := statusNamed(statuses, name)
		switch {
		case !ok:
			unknown = append(unknown, name)
		case !cs.Ready:
			unready = append(unready, name)
		}
	}
	for i := range pod.Spec.InitContainers {
		if isSidecar(&pod.Spec.InitContainers[i]) {
			check(pod.Spec.InitContainers[i].Name, st.InitContainerStatuses)
		}
	}
	for i := range pod.Spec.Containers {
		check(pod.Spec.Containers[i].Name, st.ContainerStatuses)
	}
	var msgs []string
	if len(unknown) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with unknown status: %s", unknown))
	}
	if len(unready) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with unready status: %s", unready))
	}
	if len(msgs) > 0 {
		c.Reason = reasonContainersNotReady
		c.Message = strings.Join(msgs, ", ")
		return c
	}
	c.Status = v1.ConditionTrue
	return c
}

// readyCondition is the kubelet's GeneratePodReadyCondition: the pod is
// ready when its containers are and every readiness gate's condition
// (among others, the conditions the agent does not own) is True.
func readyCondition(pod *v1.Pod, st *v1.PodStatus, others []v1.PodCondition) v1.PodCondition {
	cr := containersReadyCondition(pod, st)
	if cr.Status != v1.ConditionTrue {
		return v1.PodCondition{Type: v1.PodReady, Status: cr.Status, Reason: cr.Reason, Message: cr.Message}
	}
	var msgs []string
	for _, g := range pod.Spec.ReadinessGates {
		i := slices.IndexFunc(others, func(c v1.PodCondition) bool { return c.Type == g.ConditionType })
		switch {
		case i < 0:
			msgs = append(msgs, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", string(g.ConditionType)))
		case others[i].Status != v1.ConditionTrue:
			msgs = append(msgs, fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %v", string(g.ConditionType), others[i].Status))
		}
	}
	if len(msgs) > 0 {
		return v1.PodCondition{Type: v1.PodReady, Status: v1.ConditionFalse, Reason: reasonReadinessGatesNotReady, Message: strings.Join(msgs, ", ")}
	}
	return v1.PodCondition{Type: v1.PodReady, Status: v1.ConditionTrue}
}

func podIPStrings(ips []v1.PodIP) []string {
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, ip.IP)
	}
	return out
}
