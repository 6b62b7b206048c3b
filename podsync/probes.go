package podsync

import (
	"context"
	"fmt"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/prober"
)

// Prober runs the probes of running containers (package prober) and
// wakes the pod's worker when a result changes.
type Prober interface {
	// Add starts the probes of a running container instance.
	Add(ctx context.Context, pod *v1.Pod, container, containerID, podIP string, startedAt time.Time)
	// Remove stops the probes of a container.
	Remove(uid types.UID, container string)
	// RemovePod stops the probes of every container of a pod.
	RemovePod(uid types.UID)
	// Ready and Started report the readiness and startup results of a
	// container instance (false when there is none yet).
	Ready(uid types.UID, container, containerID string) bool
	Started(uid types.UID, container, containerID string) bool
	// Failed reports whether the liveness or startup probe of a
	// container instance failed, which one, and its last output.
	Failed(uid types.UID, container, containerID string) (prober.Type, string, bool)
}

// probeReady says whether a running container instance is ready: it has
// no readiness probe or the probe succeeded.
func (s *Syncer) probeReady(pod *v1.Pod, c *v1.Container, id string) bool {
	if s.cfg.Prober == nil || (isInit(pod, c.Name) && !isSidecar(c)) {
		return true
	}
	if c.StartupProbe != nil && !s.cfg.Prober.Started(pod.UID, c.Name, id) {
		return false
	}
	return c.ReadinessProbe == nil || s.cfg.Prober.Ready(pod.UID, c.Name, id)
}

// probeStarted says whether a running container instance has started: it
// has no startup probe or the probe succeeded.
func (s *Syncer) probeStarted(pod *v1.Pod, c *v1.Container, id string) bool {
	if s.cfg.Prober == nil || c.StartupProbe == nil || (isInit(pod, c.Name) && !isSidecar(c)) {
		return true
	}
	return s.cfg.Prober.Started(pod.UID, c.Name, id)
}

// syncProbes starts the probes of the running app containers and sidecars
// and stops those of the others.
func (s *Syncer) syncProbes(ctx context.Context, pod *v1.Pod, state *podState, podIP string) {
	if s.cfg.Prober == nil {
		return
	}
	var probed []*v1.Container
	for i := range pod.Spec.InitContainers {
		if isSidecar(&pod.Spec.InitContainers[i]) {
			probed = append(probed, &pod.Spec.InitContainers[i])
		}
	}
	for i := range pod.Spec.Containers {
		probed = append(probed, &pod.Spec.Containers[i])
	}
	for _, c := range probed {
		if c.LivenessProbe == nil && c.ReadinessProbe == nil && c.StartupProbe == nil {
			continue
		}
		cur, _ := state.latest(c.Name)
		if cur != nil && cur.State == runtimeapi.ContainerState_CONTAINER_RUNNING && state.readySandbox() != nil {
			s.cfg.Prober.Add(ctx, pod, c.Name, cur.Id, podIP, time.Unix(0, cur.StartedAt))
		} else {
			s.cfg.Prober.Remove(pod.UID, c.Name)
		}
	}
}

// killUnhealthy stops the running container cur of c if its liveness or
// startup probe failed, as the kubelet's computePodActions does, in the
// pod's worker; the caller's restart path then restarts it as its
// restartPolicy says. It returns the stopped container's status, nil if
// cur is healthy.
func (s *Syncer) killUnhealthy(ctx context.Context, pod *v1.Pod, state *podState, c *v1.Container, cur *runtimeapi.ContainerStatus) (*runtimeapi.ContainerStatus, error) {
	if s.cfg.Prober == nil {
		return nil, nil
	}
	probe, output, failed := s.cfg.Prober.Failed(pod.UID, c.Name, cur.Id)
	if !failed {
		return nil, nil
	}
	grace := podGrace(pod)
	p := c.LivenessProbe
	if probe == prober.Startup {
		p = c.StartupProbe
	}
	if p != nil && p.TerminationGracePeriodSeconds != nil {
		grace = *p.TerminationGracePeriodSeconds
	}
	s.recorder.Eventf(pod, v1.EventTypeNormal, "Killing", "Container %s failed %s probe, will be restarted", c.Name, strings.ToLower(probe.String()))
	klog.FromContext(ctx).V(1).Info("Killing unhealthy container", "container", c.Name, "containerID", cur.Id, "probe", probe, "output", output)
	if err := s.stopContainer(ctx, pod, c, cur.Id, s.podIPOf(ctx, pod, state), grace); err != nil {
		return nil, fmt.Errorf("kill container %q, which failed its %s probe: %w", c.Name, strings.ToLower(probe.String()), err)
	}
	resp, err := s.runtime.ContainerStatus(ctx, cur.Id, false)
	if err != nil || resp.GetStatus() == nil {
		// Stopped all the same: what the restart path needs of it.
		return &runtimeapi.ContainerStatus{ //nolint:nilerr // the stop succeeded
			Id: cur.Id, Metadata: cur.Metadata, State: runtimeapi.ContainerState_CONTAINER_EXITED,
			CreatedAt: cur.CreatedAt, StartedAt: cur.StartedAt, FinishedAt: s.clock.Now().UnixNano(), ExitCode: 137,
			Image: cur.Image, ImageRef: cur.ImageRef, Labels: cur.Labels, Annotations: cur.Annotations,
		}, nil
	}
	st := resp.Status
	if st.Labels == nil {
		st.Labels = cur.Labels
	}
	if st.Annotations == nil {
		st.Annotations = cur.Annotations
	}
	return st, nil
}

// podGrace is the pod's termination grace period (30s by default).
func podGrace(pod *v1.Pod) int64 {
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		return *g
	}
	return 30
}

// podIPOf is the IP of the pod's ready sandbox, or ""; state nil reads
// it from the runtime.
func (s *Syncer) podIPOf(ctx context.Context, pod *v1.Pod, state *podState) string {
	if pod.Spec.HostNetwork && len(s.cfg.NodeIPs) > 0 {
		return s.cfg.NodeIPs[0].String()
	}
	if state == nil {
		var err error
		if state, err = readPodState(ctx, s.runtime, &s.statuses, pod.UID); err != nil {
			return ""
		}
	}
	if state.readySandbox() == nil {
		return ""
	}
	ips, err := s.sandboxIPsOf(ctx, state.readySandbox().Id)
	if err != nil || len(ips) == 0 {
		return ""
	}
	return ips[0]
}
