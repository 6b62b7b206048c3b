package podsync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/cri"
	"github.com/nodeagent/nodeagent/podcgroups"
)

// SyncTerminatingPod stops every container of the pod with gracePeriod
// (the runtime sends SIGTERM, then SIGKILL when it ends), then the sandbox.
// end, if not nil, says how the agent itself ends the pod (active
// deadline, node shutdown): see writeEndStatus.
func (s *Syncer) SyncTerminatingPod(ctx context.Context, pod *v1.Pod, gracePeriod int64, end func(*v1.PodStatus)) error {
	if end != nil {
		// Before the probes go: the containers' readiness stays as it is
		// until they stop.
		if err := s.writeEndStatus(ctx, pod, end, false); err != nil {
			return err
		}
	}
	if s.cfg.Prober != nil {
		s.cfg.Prober.RemovePod(pod.UID)
	}
	state, err := readPodState(ctx, s.runtime, &s.statuses, pod.UID)
	if err != nil {
		return err
	}
	podIP := s.podIPOf(ctx, pod, state)
	start := s.clock.Now()
	apps, sidecars := splitSidecars(pod, state.containers)
	if err := s.stopContainers(ctx, pod, apps, podIP, gracePeriod); err != nil {
		return err
	}
	// Sidecars stop once the app containers are gone, the last declared
	// first, each with what is left of the grace period (at least 2 s), as
	// the kubelet stops them.
	for i := len(sidecars) - 1; i >= 0; i-- {
		grace := gracePeriod
		if grace > 0 {
			grace = max(gracePeriod-int64(s.clock.Since(start)/time.Second), minSidecarGrace)
		}
		if err := s.stopContainers(ctx, pod, sidecars[i:i+1], podIP, grace); err != nil {
			return err
		}
	}
	for _, sb := range state.sandboxes {
		if sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			if err := s.teardownNetwork(ctx, sb, pod); err != nil {
				return err
			}
			if err := s.runtime.StopPodSandbox(ctx, sb.Id); err != nil {
				return fmt.Errorf("stop sandbox: %w", err)
			}
		}
	}
	klog.FromContext(ctx).V(2).Info("Pod stopped", "gracePeriod", gracePeriod)
	if end != nil {
		return s.writeEndStatus(ctx, pod, end, true)
	}
	return nil
}

// writeEndStatus writes the status of a pod the agent ends itself, as end
// edits the status computed from the runtime: the kubelet's PodStatusFunc
// of a killed pod. Until the pod is stopped the phase, reason and message
// stay what its containers say, as the kubelet holds a terminal phase back
// while containers may run, so that only the conditions end adds (a
// DisruptionTarget) show at once. Once it is stopped, the status is final:
// SyncTerminatedPod does not compute it again.
func (s *Syncer) writeEndStatus(ctx context.Context, pod *v1.Pod, end func(*v1.PodStatus), stopped bool) error {
	st, err := s.endStatus(ctx, pod, end, stopped)
	if err != nil {
		return err
	}
	if err := s.status.Write(ctx, pod, st); err != nil {
		return err
	}
	if stopped {
		s.markEnded(pod.UID)
	}
	return nil
}

// endStatus computes the status writeEndStatus writes.
func (s *Syncer) endStatus(ctx context.Context, pod *v1.Pod, end func(*v1.PodStatus), stopped bool) (*v1.PodStatus, error) {
	state, err := readPodState(ctx, s.runtime, &s.statuses, pod.UID)
	if err != nil {
		return nil, err
	}
	st, err := s.computeStatus(ctx, pod, state)
	if err != nil {
		return nil, err
	}
	phase, reason, message := st.Phase, st.Reason, st.Message
	end(st)
	if !stopped {
		st.Phase, st.Reason, st.Message = phase, reason, message
	}
	refreshConditions(pod, st, state.readySandbox() != nil, metav1.NewTime(s.clock.Now()))
	return st, nil
}

func (s *Syncer) markEnded(uid types.UID) {
	s.mu.Lock()
	s.ended[uid] = true
	s.mu.Unlock()
}

// endedByAgent reports whether the agent wrote the pod's final status when
// it ended it (writeEndStatus).
func (s *Syncer) endedByAgent(uid types.UID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended[uid]
}

// minSidecarGrace is the least grace period a sidecar gets when the app
// containers used up the pod's (the kubelet's minimum).
const minSidecarGrace = 2

// splitSidecars splits the live containers of a pod into app (and regular
// init) containers and sidecars, the sidecars in declaration order.
func splitSidecars(pod *v1.Pod, all []*runtimeapi.ContainerStatus) (apps, sidecars []*runtimeapi.ContainerStatus) {
	byName := map[string]*runtimeapi.ContainerStatus{}
	for _, c := range all {
		if c.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			continue
		}
		if spec := specOf(pod, c.Metadata.GetName()); spec != nil && isInit(pod, spec.Name) && isSidecar(spec) {
			byName[spec.Name] = c
			continue
		}
		apps = append(apps, c)
	}
	for i := range pod.Spec.InitContainers {
		if c, ok := byName[pod.Spec.InitContainers[i].Name]; ok {
			sidecars = append(sidecars, c)
		}
	}
	return apps, sidecars
}

func hasSidecars(pod *v1.Pod) bool {
	for i := range pod.Spec.InitContainers {
		if isSidecar(&pod.Spec.InitContainers[i]) {
			return true
		}
	}
	return false
}

// stopContainers stops containers in parallel, running their preStop hooks.
func (s *Syncer) stopContainers(ctx context.Context, pod *v1.Pod, ctrs []*runtimeapi.ContainerStatus, podIP string, gracePeriod int64) error {
	var wg sync.WaitGroup
	errs := make([]error, len(ctrs))
	for i, c := range ctrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := c.Metadata.GetName()
			s.recorder.Eventf(pod, v1.EventTypeNormal, "Killing", "Stopping container %s", name)
			if err := s.stopContainer(ctx, pod, specOf(pod, name), c.Id, podIP, gracePeriod); err != nil {
				errs[i] = fmt.Errorf("stop container %q: %w", name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// SyncTerminatedPod releases a stopped pod. A pod that merely finished
// keeps its containers (for logs) until the object is deleted; a deleted
// pod loses everything, then its object is deleted.
func (s *Syncer) SyncTerminatedPod(ctx context.Context, pod *v1.Pod, gone bool) error {
	deleting := gone || pod.DeletionTimestamp != nil
	if !deleting {
		// The final status of a pod with sidecars that ran: SyncPod kept
		// it Running while they ran; now they are stopped. Only a terminal
		// phase is written: a pod ended otherwise keeps its status.
		if hasSidecars(pod) && !s.endedByAgent(pod.UID) {
			state, err := readPodState(ctx, s.runtime, &s.statuses, pod.UID)
			if err != nil {
				return err
			}
			if len(state.sandboxes) > 0 && !sidecarsRunning(pod, state) {
				st, err := s.computeStatus(ctx, pod, state)
				if err != nil {
					return err
				}
				if st.Phase == v1.PodSucceeded || st.Phase == v1.PodFailed {
					s.applyActiveDeadline(pod, st)
					if err := s.status.Write(ctx, pod, st); err != nil {
						return err
					}
				}
			}
		}
		return s.volumes.Teardown(ctx, pod.UID)
	}
	// The final status before the object is deleted, as the kubelet's
	// syncTerminatingPod sets it (podIsTerminal): its containers
	// terminated, a terminal phase. A pod a finalizer keeps shows it until
	// the finalizer goes. It is computed before anything is removed and
	// written while the pod's sandboxes and volumes go (the kubelet's
	// status manager writes apart from the pod worker); the object is
	// deleted only once the write succeeded, as the kubelet's status
	// manager deletes only after its update: a failed write is retried
	// with the same status. A pod already terminal (rejected at
	// admission, ended before an agent restart) keeps its status: a
	// terminal phase never changes, as the kubelet's generateAPIPodStatus
	// keeps it.
	var final chan error
	if !gone && !s.endedByAgent(pod.UID) && pod.Status.Phase != v1.PodSucceeded && pod.Status.Phase != v1.PodFailed {
		s.mu.Lock()
		st := s.finals[pod.UID]
		s.mu.Unlock()
		if st == nil {
			var err error
			st, err = s.endStatus(ctx, pod, func(st *v1.PodStatus) { st.Phase = terminalPhase(pod, st) }, true)
			if err != nil {
				klog.FromContext(ctx).Error(err, "Computing the final status of a deleted pod")
			} else {
				s.mu.Lock()
				s.finals[pod.UID] = st
				s.mu.Unlock()
			}
		}
		if st != nil {
			final = make(chan error, 1)
			go func() { final <- s.status.Write(ctx, pod, st) }()
		}
	}
	err := s.removePod(ctx, pod.UID, pod.Namespace, pod.Name)
	if final != nil {
		if werr := <-final; werr != nil {
			return errors.Join(err, fmt.Errorf("write the final status of the deleted pod: %w", werr))
		}
		s.markEnded(pod.UID)
	}
	if err != nil {
		return err
	}
	if !gone {
		if err := s.status.Delete(ctx, pod); err != nil {
			return err
		}
	}
	s.forget(pod.UID)
	return nil
}

// removePod removes the sandboxes, containers, volumes, log directory and
// cgroup of a pod.
func (s *Syncer) removePod(ctx context.Context, uid types.UID, namespace, name string) error {
	state, err := readPodState(ctx, s.runtime, &s.statuses, uid)
	if err != nil {
		return err
	}
	for _, c := range state.containers {
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			if err := s.runtime.StopContainer(ctx, c.Id, 0); err != nil {
				return fmt.Errorf("stop container: %w", err)
			}
		}
	}
	for _, sb := range state.sandboxes {
		// Also for sandboxes found dead after a crash: DEL releases the IP.
		if err := s.teardownNetwork(ctx, sb, nil); err != nil {
			return err
		}
		if sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			if err := s.runtime.StopPodSandbox(ctx, sb.Id); err != nil {
				return fmt.Errorf("stop sandbox: %w", err)
			}
		}
		if err := s.runtime.RemovePodSandbox(ctx, sb.Id); err != nil {
			return fmt.Errorf("remove sandbox: %w", err)
		}
		s.forgetSandbox(sb.Id)
	}
	for _, c := range state.containers {
		s.statuses.forget(c.Id)
		s.unlinkLog(namespace, name, c.Id)
	}
	if err := s.volumes.Teardown(ctx, uid); err != nil {
		return err
	}
	if namespace != "" {
		_ = os.RemoveAll(cri.PodLogDir(s.cfg.PodLogsDir, namespace, name, uid))
	}
	_ = os.RemoveAll(filepath.Join(s.cfg.RootDir, "pods", string(uid)))
	s.removeCgroups(uid)
	return nil
}

func (s *Syncer) forgetSandbox(id string) {
	s.mu.Lock()
	delete(s.sandboxIPs, id)
	delete(s.netDown, id)
	delete(s.unreadableCache, id)
	s.mu.Unlock()
}

func (s *Syncer) unlinkLog(namespace, name, id string) {
	if s.cfg.ContainerLogs == "" {
		return
	}
	matches, _ := filepath.Glob(filepath.Join(s.cfg.ContainerLogs, fmt.Sprintf("%s_%s_*-%s.log", name, namespace, id)))
	for _, m := range matches {
		_ = os.Remove(m)
	}
}

// removeCgroups removes the pod's (now empty) cgroup directories, which
// the runtime creates as parents but does not remove.
func (s *Syncer) removeCgroups(uid types.UID) {
	if s.cfg.CgroupDriver == "systemd" || !s.cfg.CgroupsPerQOS {
		return
	}
	paths := podcgroups.PodPaths(s.cfg.CgroupRoot, uid)
	if s.cfg.PodCgroups != nil {
		for _, p := range paths {
			s.cfg.PodCgroups.Forget(p)
		}
	}
	for _, h := range podcgroups.Hierarchies(cgroupMount) {
		for _, p := range paths {
			dir := filepath.Join(h, p)
			if _, err := os.Stat(dir); err == nil {
				// A container's cgroup the runtime left (a start
				// abandoned when its caller died) goes first: a cgroup
				// with children cannot be removed.
				removeChildCgroups(dir, 2)
				for i := 0; i < 10; i++ {
					if err := os.Remove(dir); err == nil || os.IsNotExist(err) || !strings.Contains(err.Error(), "busy") {
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}
	}
}

// cgroupMount is where the cgroup filesystems are mounted.
const cgroupMount = "/sys/fs/cgroup"

// removeChildCgroups removes the empty cgroups below dir, deepest first,
// depth levels down. rmdir is all it does: the kernel refuses a cgroup
// that still has processes, and a cgroup directory holds no files.
func removeChildCgroups(dir string, depth int) {
	if depth == 0 {
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.Type()&os.ModeType != os.ModeDir {
			continue // files of the controller, never a link followed
		}
		child := filepath.Join(dir, e.Name())
		removeChildCgroups(child, depth-1)
		_ = os.Remove(child)
	}
}

func (s *Syncer) forget(uid types.UID) {
	s.mu.Lock()
	delete(s.waiting, uid)
	delete(s.ended, uid)
	delete(s.finals, uid)
	delete(s.resizes, uid)
	s.mu.Unlock()
	if s.cfg.Prober != nil {
		s.cfg.Prober.RemovePod(uid)
	}
	s.status.Forget(uid)
}
