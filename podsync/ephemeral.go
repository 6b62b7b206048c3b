package podsync

import (
	"context"
	"fmt"
	"sort"
	"time"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/cri"
)

// Ephemeral containers (kubectl debug) are added to a running pod through
// the pods/ephemeralcontainers subresource: the pod update wakes the pod's
// worker, and the next SyncPod starts them, as the kubelet's
// computePodActions (EphemeralContainersToStart) does. Each starts once,
// before any init container (a pod stuck in init can be debugged), with the
// labels, annotations, mounts, environment and security context of any
// container. It is never restarted: once the runtime has a container of
// that name, exited or not, nothing more is done for it. A
// targetContainerName makes it join the process namespace of that
// container (CRI NamespaceMode TARGET). API validation forbids probes,
// ports, resources and lifecycle hooks on them; they do not count for the
// pod's phase or readiness.

// ephemeralRetry is when an ephemeral container that failed to start is
// tried again: the kubelet's back-off after a failed sync.
const ephemeralRetry = 10 * time.Second

// syncEphemeral starts the pod's ephemeral containers that the runtime
// does not have yet. One that cannot start does not hold the others back;
// it returns when to sync again (an image pull back-off), whether it
// created a container, and the first error.
func (s *Syncer) syncEphemeral(ctx context.Context, pod *v1.Pod, state *podState, sandbox *runtimeapi.PodSandbox) (time.Duration, bool, error) {
	var requeue time.Duration
	changed := false
	var firstErr error
	for i := range pod.Spec.EphemeralContainers {
		c := (*v1.Container)(&pod.Spec.EphemeralContainers[i].EphemeralContainerCommon)
		if cur, _ := state.latest(c.Name); cur != nil {
			continue // never restarted
		}
		r, started, err := s.start(ctx, pod, c, 0, sandbox)
		changed = changed || started
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		requeue = minPositive(requeue, r)
	}
	return requeue, changed, firstErr
}

// ephemeralSpec returns the ephemeral container of the pod by name, or nil.
func ephemeralSpec(pod *v1.Pod, name string) *v1.EphemeralContainer {
	for i := range pod.Spec.EphemeralContainers {
		if pod.Spec.EphemeralContainers[i].Name == name {
			return &pod.Spec.EphemeralContainers[i]
		}
	}
	return nil
}

// isEphemeral reports whether name is an ephemeral container of the pod.
func isEphemeral(pod *v1.Pod, name string) bool { return ephemeralSpec(pod, name) != nil }

// ephemeralConfig adjusts the CRI config of c when it is an ephemeral
// container: what the agent does not implement is refused, and a
// targetContainerName shares the process namespace of the target's newest
// container (the kubelet's getTargetID and generateLinuxContainerConfig),
// unless the pod shares one namespace already (shareProcessNamespace,
// hostPID). A target the runtime does not have is a config error, with
// the kubelet's message.
func (s *Syncer) ephemeralConfig(ctx context.Context, pod *v1.Pod, c *v1.Container, cfg *runtimeapi.ContainerConfig) error {
	ec := ephemeralSpec(pod, c.Name)
	if ec == nil {
		return nil
	}
	if len(ec.VolumeDevices) > 0 {
		return fmt.Errorf("%w: ephemeral container %q: volumeDevices are not supported by nodeagent", errConfig, c.Name)
	}
	if ec.TargetContainerName == "" {
		return nil
	}
	id, err := s.newestContainerID(ctx, pod, ec.TargetContainerName)
	if err != nil {
		return err
	}
	if id == "" {
		return fmt.Errorf("%w: unable to find target container %v", errConfig, ec.TargetContainerName)
	}
	ns := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	if ns != nil && ns.Pid == runtimeapi.NamespaceMode_CONTAINER {
		ns.Pid = runtimeapi.NamespaceMode_TARGET
		ns.TargetId = id
	}
	return nil
}

// newestContainerID is the ID of the newest container of that name in
// the pod, or "" when the runtime has none.
func (s *Syncer) newestContainerID(ctx context.Context, pod *v1.Pod, name string) (string, error) {
	f := cri.ManagedContainerFilter(pod.UID)
	f.LabelSelector[cri.ContainerNameLabel] = name
	ctrs, err := s.runtime.ListContainers(ctx, f)
	if err != nil {
		return "", fmt.Errorf("list containers named %q: %w", name, err)
	}
	var match []*runtimeapi.Container
	for _, c := range ctrs {
		if c.Labels[cri.PodUIDLabel] == string(pod.UID) && c.Labels[cri.ContainerNameLabel] == name {
			match = append(match, c)
		}
	}
	if len(match) == 0 {
		return "", nil
	}
	sort.Slice(match, func(i, j int) bool {
		a, b := match[i], match[j]
		if a.Metadata.GetAttempt() != b.Metadata.GetAttempt() {
			return a.Metadata.GetAttempt() > b.Metadata.GetAttempt()
		}
		return a.CreatedAt > b.CreatedAt
	})
	return match[0].Id, nil
}

// ephemeralStatuses are the pod's ephemeralContainerStatuses, converted as
// those of app containers (the kubelet's convertToAPIContainerStatuses),
// sorted by name. The prober never sees them: they are not ready and
// carry no started field.
func (s *Syncer) ephemeralStatuses(ctx context.Context, pod *v1.Pod, state *podState) []v1.ContainerStatus {
	if len(pod.Spec.EphemeralContainers) == 0 {
		return nil
	}
	specs := make([]v1.Container, len(pod.Spec.EphemeralContainers))
	for i := range pod.Spec.EphemeralContainers {
		specs[i] = v1.Container(pod.Spec.EphemeralContainers[i].EphemeralContainerCommon)
	}
	out := s.containerStatuses(ctx, pod, specs, pod.Status.EphemeralContainerStatuses, state, false)
	for i := range out {
		out[i].Ready = false
		out[i].Started = nil
	}
	return out
}
