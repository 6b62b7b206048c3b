package podsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	grpcstatus "google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// backoffResetAfter is how long a container must have run for its
// crash-loop back-off to start again from the beginning.
const backoffResetAfter = 10 * time.Minute

// syncContainers starts what should run in the ready sandbox: the
// ephemeral containers not started yet (ephemeral.go), first as the
// kubelet does, so that a pod stuck in its init containers can be
// debugged, then the pod's own containers (syncPodContainers). It returns
// when to sync again for a back-off, whether it changed anything, and the
// error of the pod's own containers.
func (s *Syncer) syncContainers(ctx context.Context, pod *v1.Pod, state *podState, sandbox *runtimeapi.PodSandbox) (time.Duration, bool, error) {
	ephRequeue, ephChanged, ephErr := s.syncEphemeral(ctx, pod, state, sandbox)
	if ephErr != nil {
		// A debug container that cannot start (its status says why)
		// does not fail the pod's sync, which would hold back its
		// probes: it is tried again after the kubelet's sync back-off.
		klog.FromContext(ctx).Error(ephErr, "Starting ephemeral container")
		ephRequeue = minPositive(ephRequeue, ephemeralRetry)
	}
	requeue, changed, err := s.syncPodContainers(ctx, pod, state, sandbox)
	return minPositive(requeue, ephRequeue), changed || ephChanged, err
}

// syncPodContainers starts the init and app containers: init
// containers in order (a regular one must exit 0 before the next starts; a
// sidecar, an init container with restartPolicy Always, must run and pass
// its startup probe), then the app containers. Once the pod initialized (an
// app container was created), only sidecars that exited are restarted
// among the init containers, whatever the pod's restartPolicy, until the
// app containers are done for good. It returns when to sync again for a
// back-off and whether it changed anything.
func (s *Syncer) syncPodContainers(ctx context.Context, pod *v1.Pod, state *podState, sandbox *runtimeapi.PodSandbox) (time.Duration, bool, error) {
	var requeue time.Duration
	changed := false
	initialized := podInitialized(pod, state)
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cur, _ := state.latest(c.Name)
		if isSidecar(c) && cur != nil && cur.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			stopped, err := s.killUnhealthy(ctx, pod, state, c, cur)
			if err != nil {
				return 0, changed, err
			}
			if stopped != nil {
				cur, changed = stopped, true
			}
		}
		if isSidecar(c) {
			if cur == nil || cur.State == runtimeapi.ContainerState_CONTAINER_EXITED || cur.State == runtimeapi.ContainerState_CONTAINER_CREATED {
				if podDone(pod, state) {
					continue
				}
				start := s.maybeStart
				if cur != nil && cur.State == runtimeapi.ContainerState_CONTAINER_CREATED {
					start = s.startCreated
				}
				r, started, err := start(ctx, pod, c, cur, sandbox)
				if err != nil {
					return 0, changed, err
				}
				changed = changed || started
				requeue = minPositive(requeue, r)
				if !initialized {
					return requeue, changed, nil
				}
				continue
			}
			why := ""
			switch {
			case cur.State == runtimeapi.ContainerState_CONTAINER_UNKNOWN:
				if podDone(pod, state) {
					continue // the pod's end stops it
				}
				why = unknownWhy("Init container")
			case cur.State == runtimeapi.ContainerState_CONTAINER_RUNNING && specChanged(c, cur):
				why = "Init container " + c.Name + " definition changed"
			}
			if why != "" {
				r, _, err := s.restartChanged(ctx, pod, state, c, cur, sandbox, why)
				if err != nil {
					return 0, true, err
				}
				changed = true
				requeue = minPositive(requeue, r)
				if !initialized {
					return requeue, changed, nil // wait until the new one runs
				}
				continue
			}
			if cur.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
				resized, r, err := s.resizeRunning(ctx, pod, state, c, cur, sandbox)
				if err != nil {
					return 0, true, err
				}
				changed = changed || resized
				requeue = minPositive(requeue, r)
				if resized && !initialized {
					return requeue, changed, nil // the next sync sees it as it runs now
				}
			}
			if !initialized && (cur.State != runtimeapi.ContainerState_CONTAINER_RUNNING || !s.probeStarted(pod, c, cur.Id)) {
				return requeue, changed, nil // wait until it runs and has started
			}
			continue
		}
		if initialized {
			continue
		}
		if cur != nil && cur.State == runtimeapi.ContainerState_CONTAINER_EXITED && cur.ExitCode == 0 {
			continue
		}
		if cur != nil && cur.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			// Running: resized if it must be, then waited for.
			resized, r, err := s.resizeRunning(ctx, pod, state, c, cur, sandbox)
			return minPositive(requeue, r), changed || resized, err
		}
		if cur != nil && cur.State == runtimeapi.ContainerState_CONTAINER_CREATED {
			r, started, err := s.startCreated(ctx, pod, c, cur, sandbox)
			return minPositive(requeue, r), changed || started, err
		}
		if cur != nil && cur.State == runtimeapi.ContainerState_CONTAINER_UNKNOWN {
			// Restarted unless the pod never restarts: then it is only
			// stopped, and its exit code (containerd: 255, reason
			// Unknown, or the signal's) fails the pod, as the kubelet's
			// KillPod. One that exits 0 on SIGTERM would pass as
			// succeeded, where the kubelet fails the pod regardless.
			why := unknownWhy("Init container")
			if pod.Spec.RestartPolicy == v1.RestartPolicyNever {
				return requeue, true, s.kill(ctx, pod, state, c, cur, why)
			}
			r, _, err := s.restartChanged(ctx, pod, state, c, cur, sandbox, why)
			return minPositive(requeue, r), true, err
		}
		if cur != nil && cur.State != runtimeapi.ContainerState_CONTAINER_EXITED {
			return requeue, changed, nil // a state CRI may add: wait for the runtime
		}
		if cur != nil && pod.Spec.RestartPolicy == v1.RestartPolicyNever {
			return requeue, changed, nil // failed for good: the pod fails
		}
		r, started, err := s.maybeStart(ctx, pod, c, cur, sandbox)
		return minPositive(requeue, r), changed || started, err
	}
	// App containers start independently, as the kubelet's SyncPod: one
	// that cannot start does not hold the others back.
	var firstErr error
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cur, _ := state.latest(c.Name)
		var r time.Duration
		var started bool
		var err error
		killed := false
		if cur != nil && cur.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			// A liveness or startup failure kills it here; the cases
			// below restart it unless the restartPolicy is Never, whatever
			// its exit code, as the kubelet's computePodActions.
			var stopped *runtimeapi.ContainerStatus
			if stopped, err = s.killUnhealthy(ctx, pod, state, c, cur); stopped != nil {
				cur, changed, killed = stopped, true, true
			}
		}
		switch {
		case err != nil:
		case killed && pod.Spec.RestartPolicy != v1.RestartPolicyNever:
			r, started, err = s.maybeStart(ctx, pod, c, cur, sandbox)
		case cur != nil && cur.State == runtimeapi.ContainerState_CONTAINER_RUNNING && specChanged(c, cur):
			r, _, err = s.restartChanged(ctx, pod, state, c, cur, sandbox, "Container "+c.Name+" definition changed, will be restarted")
			started = true // the old one stopped, at least
		case cur != nil && cur.State == runtimeapi.ContainerState_CONTAINER_RUNNING:
			started, r, err = s.resizeRunning(ctx, pod, state, c, cur, sandbox)
		case cur != nil && cur.State == runtimeapi.ContainerState_CONTAINER_CREATED:
			r, started, err = s.startCreated(ctx, pod, c, cur, sandbox)
		case cur != nil && cur.State == runtimeapi.ContainerState_CONTAINER_UNKNOWN:
			// Whatever the restartPolicy, as the kubelet's
			// ShouldContainerBeRestarted.
			r, _, err = s.restartChanged(ctx, pod, state, c, cur, sandbox, unknownWhy("Container"))
			started = true // the old one stopped, at least
		case cur != nil && cur.State != runtimeapi.ContainerState_CONTAINER_EXITED:
			continue // a state CRI may add: wait for the runtime
		case cur != nil && !shouldRestart(pod.Spec.RestartPolicy, cur.ExitCode):
			continue
		default:
			r, started, err = s.maybeStart(ctx, pod, c, cur, sandbox)
		}
		changed = changed || started
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		requeue = minPositive(requeue, r)
	}
	if firstErr != nil {
		return 0, changed, firstErr
	}
	return requeue, changed, nil
}

// isSidecar reports whether c is a sidecar: an init container with
// restartPolicy Always, which keeps running beside the app containers.
func isSidecar(c *v1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways
}

// restartPolicyOf is the policy that restarts c: Always for a sidecar, the
// pod's otherwise.
func restartPolicyOf(pod *v1.Pod, c *v1.Container) v1.RestartPolicy {
	if isSidecar(c) {
		return v1.RestartPolicyAlways
	}
	return pod.Spec.RestartPolicy
}

// podInitialized reports whether an app container of the pod was ever
// created: from then on the init containers are done, as for the kubelet.
func podInitialized(pod *v1.Pod, state *podState) bool {
	for i := range pod.Spec.Containers {
		if cur, _ := state.latest(pod.Spec.Containers[i].Name); cur != nil {
			return true
		}
	}
	return false
}

func shouldRestart(policy v1.RestartPolicy, exitCode int32) bool {
	switch policy {
	case v1.RestartPolicyNever:
		return false
	case v1.RestartPolicyOnFailure:
		return exitCode != 0
	}
	return true
}

// maybeStart starts a new instance of c unless its back-off forbids it
// now; prev is the instance that exited, if any.
func (s *Syncer) maybeStart(ctx context.Context, pod *v1.Pod, c *v1.Container, prev *runtimeapi.ContainerStatus, sandbox *runtimeapi.PodSandbox) (time.Duration, bool, error) {
	key := string(pod.UID) + "/" + c.Name
	restartCount := int32(0)
	if prev != nil && abandonedStart(prev) {
		// Not a restart: the instance never ran. It is replaced under
		// its own attempt number, which the runtime reserves until it
		// is removed.
		if err := s.runtime.RemoveContainer(ctx, prev.Id); err != nil {
			return 0, false, fmt.Errorf("remove container %q whose start was abandoned: %w", c.Name, err)
		}
		s.statuses.forget(prev.Id)
		klog.FromContext(ctx).V(2).Info("Replacing a container whose start the runtime abandoned", "container", c.Name, "containerID", prev.Id)
		return s.start(ctx, pod, c, prevRestartCount(prev), sandbox)
	}
	if prev != nil {
		restartCount = prevRestartCount(prev) + 1
		finished := time.Unix(0, prev.FinishedAt)
		started := time.Unix(0, prev.StartedAt)
		// A container that never started (StartError) ran for no time.
		if prev.StartedAt > 0 && finished.Sub(started) >= backoffResetAfter {
			s.crashBackoff.Reset(key)
		}
		if s.crashBackoff.IsInBackOffSince(key, finished) {
			wait := s.crashBackoff.Get(key) - s.clock.Since(finished)
			msg := fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", s.crashBackoff.Get(key), c.Name, klog.KObj(pod))
			if w, _ := s.waitingFor(pod.UID, c.Name); w.reason != "CrashLoopBackOff" {
				s.recorder.Event(pod, v1.EventTypeWarning, "BackOff", "Back-off restarting failed container "+c.Name+" in pod "+pod.Name+"_"+pod.Namespace)
			}
			s.setWaiting(pod.UID, c.Name, "CrashLoopBackOff", msg)
			return wait + 10*time.Millisecond, false, nil
		}
		s.crashBackoff.Next(key, finished)
	}
	return s.start(ctx, pod, c, restartCount, sandbox)
}

// startCreated starts a container that was created and never started: the
// agent died between CreateContainer and StartContainer. The kubelet
// creates another instance (restart count + 1); this one never ran, so it
// is started, or if it does not start (the runtime abandons a start whose
// caller went away), replaced by an instance with the same restart count.
// While the runtime is still busy with the dead agent's start, neither
// works: the sync comes back in a second.
func (s *Syncer) startCreated(ctx context.Context, pod *v1.Pod, c *v1.Container, cur *runtimeapi.ContainerStatus, sandbox *runtimeapi.PodSandbox) (time.Duration, bool, error) {
	logger := klog.FromContext(ctx).WithValues("container", c.Name, "containerID", cur.Id)
	replace := func(why string, err error) (time.Duration, bool, error) {
		// Only what still has not run goes: a start that went through
		// meanwhile (or after an RPC that timed out) is left running.
		if st, serr := s.runtime.ContainerStatus(ctx, cur.Id, false); serr == nil && st.GetStatus().GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING {
			return time.Second, true, nil
		}
		if rerr := s.runtime.RemoveContainer(ctx, cur.Id); rerr != nil {
			logger.V(2).Info("A container left created neither starts nor goes yet", "why", why, "err", err, "removeErr", rerr)
			return time.Second, false, nil
		}
		logger.V(2).Info("Replacing a container left created", "why", why, "err", err)
		s.statuses.forget(cur.Id)
		return s.start(ctx, pod, c, prevRestartCount(cur), sandbox)
	}
	if specChanged(c, cur) {
		return replace("its spec changed", nil)
	}
	if err := s.runtime.StartContainer(ctx, cur.Id); err != nil {
		return replace("it does not start", err)
	}
	s.recorder.Eventf(pod, v1.EventTypeNormal, "Started", "Started container %s", c.Name)
	s.linkLog(ctx, pod, c.Name, cur.Id, cur.LogPath)
	logger.V(2).Info("Started container left created", "restartCount", prevRestartCount(cur))
	s.clearWaiting(pod.UID, c.Name)
	podIP := ""
	if ips, err := s.sandboxIPsOf(ctx, sandbox.Id); err == nil && len(ips) > 0 {
		podIP = ips[0]
	}
	if err := s.postStart(ctx, pod, c, cur.Id, podIP); err != nil {
		if isPostStartError(err) {
			s.setWaiting(pod.UID, c.Name, "PostStartHookError", hookMessage(err))
			return 0, true, nil
		}
		return 0, true, err
	}
	return 0, true, nil
}

// abandonedStart reports whether st is an instance that never ran because
// the runtime gave its start up when the caller went away: an agent killed
// during StartContainer (containerd then fails the start with the
// cancelled context of the dead caller's request). A start that failed for
// any other reason (a missing binary, a bad mount) is a failure that counts
// as a restart and backs off, as with the kubelet.
func abandonedStart(st *runtimeapi.ContainerStatus) bool {
	return st.State == runtimeapi.ContainerState_CONTAINER_EXITED && st.StartedAt == 0 &&
		strings.Contains(st.Message, context.Canceled.Error())
}

// restartChanged stops the container cur of c, whose spec changed (see
// hash.go) or whose state the runtime does not know (unknownWhy), then
// starts c again at once with the new spec and the next restart count, as
// the kubelet's computePodActions does: whatever the restartPolicy and
// without the crash-loop back-off, which is for containers that failed.
// why is the Killing event's message, the kubelet's.
func (s *Syncer) restartChanged(ctx context.Context, pod *v1.Pod, state *podState, c *v1.Container, cur *runtimeapi.ContainerStatus, sandbox *runtimeapi.PodSandbox, why string) (time.Duration, bool, error) {
	if err := s.kill(ctx, pod, state, c, cur, why); err != nil {
		return 0, false, err
	}
	return s.start(ctx, pod, c, prevRestartCount(cur)+1, sandbox)
}

// kill stops the container cur of c with the pod's grace period and its
// preStop hook; why is the Killing event's message.
func (s *Syncer) kill(ctx context.Context, pod *v1.Pod, state *podState, c *v1.Container, cur *runtimeapi.ContainerStatus, why string) error {
	klog.FromContext(ctx).V(2).Info("Killing container", "container", c.Name, "containerID", cur.Id, "why", why)
	s.recorder.Event(pod, v1.EventTypeNormal, "Killing", why)
	if err := s.stopContainer(ctx, pod, c, cur.Id, s.podIPOf(ctx, pod, state), podGrace(pod)); err != nil {
		return fmt.Errorf("stop container %q of pod %s (%s): %w", c.Name, klog.KObj(pod), why, err)
	}
	return nil
}

// unknownWhy is the kubelet's Killing message for a container (kind
// "Container" or "Init container") the runtime reports in state Unknown:
// containerd does when it cannot read a container's status back after a
// restart, as for one whose CreateContainer it was killed in. Nobody knows
// whether it runs, so it is killed before the next instance starts (never
// two), as the kubelet's computePodActions; no back-off applies, since it
// did not fail. Left alone, such a pod would wait for ever.
func unknownWhy(kind string) string {
	return fmt.Sprintf("%s is in %q state, try killing it before restart", kind, "unknown") // the kubelet's state name
}

// start starts instance restartCount of c and turns a failure into the
// container's waiting reason: it returns when to sync again and whether a
// container was created.
func (s *Syncer) start(ctx context.Context, pod *v1.Pod, c *v1.Container, restartCount int32, sandbox *runtimeapi.PodSandbox) (time.Duration, bool, error) {
	err := s.startContainer(ctx, pod, c, restartCount, sandbox)
	if err == nil {
		s.clearWaiting(pod.UID, c.Name)
		return 0, true, nil
	}
	var pe *pullError
	switch {
	case errors.As(err, &pe):
		// The status shows why; retry when the pull back-off ends.
		return pe.retryAfter, false, nil
	case errors.Is(err, errPullWaitCancelled):
		// The sync was cancelled (the pod is being killed) before the
		// pull's turn came: nothing failed.
		return 0, false, err
	case isPostStartError(err):
		// The container was killed; it restarts with the crash-loop
		// back-off like any container that exited.
		s.setWaiting(pod.UID, c.Name, "PostStartHookError", hookMessage(err))
		return 0, true, nil
	case errors.Is(err, errConfig):
		// The message is the kubelet's: the cause without the marker.
		msg := strings.TrimPrefix(err.Error(), errConfig.Error()+": ")
		s.setWaiting(pod.UID, c.Name, "CreateContainerConfigError", msg)
		s.recorder.Eventf(pod, v1.EventTypeWarning, "Failed", "Error: %s", msg)
		return 0, false, err
	case errors.As(err, new(*runError)):
		// The kubelet's ErrRunContainer: the runtime created the
		// container and could not start it.
		msg := grpcMessage(errors.Unwrap(err))
		s.setWaiting(pod.UID, c.Name, "RunContainerError", msg)
		s.recorder.Eventf(pod, v1.EventTypeWarning, "Failed", "Error: %s", msg)
		return 0, true, err
	default:
		// The kubelet's ErrCreateContainer: the runtime's message, without
		// the gRPC code or our wrapping.
		msg := grpcMessage(err)
		s.setWaiting(pod.UID, c.Name, "CreateContainerError", msg)
		s.recorder.Eventf(pod, v1.EventTypeWarning, "Failed", "Error: %s", msg)
		return 0, false, err
	}
}

// runError is a container created that did not start.
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

// grpcMessage is the message of a runtime's gRPC error (the kubelet shows
// that, without the code), or the error's text.
func grpcMessage(err error) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		//nolint:errorlint // the error itself, not one it wraps: FromError would keep the wrapping text
		if se, ok := e.(interface{ GRPCStatus() *grpcstatus.Status }); ok {
			return se.GRPCStatus().Message()
		}
	}
	return err.Error()
}

func prevRestartCount(st *runtimeapi.ContainerStatus) int32 {
	if n := int32(st.Metadata.GetAttempt()); n > 0 {
		return n
	}
	return 0
}

// startContainer pulls the images of the image volumes c mounts and its
// own image if needed (in the kubelet's order), then creates and starts c.
func (s *Syncer) startContainer(ctx context.Context, pod *v1.Pod, c *v1.Container, restartCount int32, sandbox *runtimeapi.PodSandbox) (retErr error) {
	logger := klog.FromContext(ctx).WithValues("container", c.Name)
	t := time.Now()
	images, err := s.imageVolumes(ctx, pod, c)
	if err != nil {
		return err
	}
	defer func() { countImageVolumes(c, images, retErr) }()
	imageRef, err := s.ensureImage(ctx, pod, c)
	if err != nil {
		return err
	}
	observePhase("image", t)
	sbCfg, err := s.sandboxConfig(pod, sandbox.Metadata.GetAttempt())
	if err != nil {
		return err
	}
	cfg, err := s.containerConfig(ctx, pod, c, restartCount, imageRef, images, sandbox)
	if err != nil {
		return err
	}
	setContainerHash(cfg, c)
	t = time.Now()
	id, err := s.runtime.CreateContainer(ctx, sandbox.Id, cfg, sbCfg)
	if err != nil {
		return fmt.Errorf("create container %q: %w", c.Name, err)
	}
	observePhase("create", t)
	s.setActuated(pod.UID, c.Name, id, c.Resources)
	s.recorder.Eventf(pod, v1.EventTypeNormal, "Created", "Created container: %s", c.Name)
	t = time.Now()
	if err := s.runtime.StartContainer(ctx, id); err != nil {
		return &runError{fmt.Errorf("start container %q: %w", c.Name, err)}
	}
	observePhase("start", t)
	s.recorder.Eventf(pod, v1.EventTypeNormal, "Started", "Started container %s", c.Name)
	s.linkLog(ctx, pod, c.Name, id, cfg.LogPath)
	logger.V(2).Info("Started container", "containerID", id, "restartCount", restartCount)
	podIP := ""
	if ips, err := s.sandboxIPsOf(ctx, sandbox.Id); err == nil && len(ips) > 0 {
		podIP = ips[0]
	}
	return s.postStart(ctx, pod, c, id, podIP)
}
