package podsync

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	nodelisters "k8s.io/client-go/listers/node/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/nodeagent/nodeagent/configs"
	"github.com/nodeagent/nodeagent/podenv"
)

// Volumes prepares and releases pod volumes on the host.
type Volumes interface {
	Setup(ctx context.Context, pod *v1.Pod) (map[string]string, error)
	// NextRefresh returns when a token of the pod must be renewed and
	// whether that time has come.
	NextRefresh(uid types.UID) (time.Time, bool)
	// Stale reports whether a source of the pod's volumes changed since
	// its last Setup.
	Stale(pod *v1.Pod) bool
	// SubPath returns the host path to mount for the index-th mount of
	// container, a subPath of the volume at volumePath, safe from links
	// the pod planted in the volume.
	SubPath(ctx context.Context, pod *v1.Pod, volume, container string, index int, volumePath, subPath string) (string, error)
	Teardown(ctx context.Context, uid types.UID) error
}

// Env builds a container's environment.
type Env interface {
	Env(ctx context.Context, pod *v1.Pod, c *v1.Container, podIP string, podIPs []string, hostIP string) ([]podenv.EnvVar, error)
}

// StatusWriter sends pod statuses and deletes finished pods.
type StatusWriter interface {
	Write(ctx context.Context, pod *v1.Pod, status *v1.PodStatus) error
	Delete(ctx context.Context, pod *v1.Pod) error
	Forget(uid types.UID)
}

// Config is the node-level configuration a sync needs.
type Config struct {
	NodeName      string
	NodeIPs       []net.IP
	RootDir       string // pod directories: <RootDir>/pods/<uid>
	PodLogsDir    string // /var/log/pods
	ContainerLogs string // /var/log/containers
	CgroupRoot    string
	CgroupsPerQOS bool
	CgroupDriver  string
	ClusterDNS    []string
	ClusterDomain string
	ResolvConf    string
	// MaxPods is the number of pods the node admits.
	MaxPods int
	// ActivePods returns the pods the node runs now (for admission): not
	// terminated, and still in the apiserver (or their manifest), as the
	// kubelet's GetActivePods. Admission leaves out those in a terminal
	// phase.
	ActivePods func() []*v1.Pod
	// Allocatable returns the node's allocatable resources, if known.
	Allocatable func() v1.ResourceList
	// MemoryCapacity returns the node's memory capacity in bytes (the
	// OOM score of burstable containers); nil or 0: not known.
	MemoryCapacity func() int64
	// HugePageSizes are the machine's huge page sizes in bytes
	// (hugepages.PageSizes): every container gets a limit of each
	// (hugepageLimits).
	HugePageSizes []int64
	// HugetlbLimited tells that the host has the hugetlb cgroup
	// controller (podcgroups.HasController); without it a pod asking for
	// huge pages runs with a HugePagesNotLimited warning (hugetlbWarning).
	HugetlbLimited bool
	// Network wires pod networks when the agent owns networking (CNI);
	// nil when the runtime does.
	Network Network
	// PodCIDRs returns the node's pod CIDRs (for CNI ipRanges), if any.
	PodCIDRs func() []string
	// Prober runs container probes; nil runs none (every running
	// container is ready and started).
	Prober Prober
	// SeccompDefault runs containers without a seccompProfile with the
	// runtime's default profile instead of unconfined.
	SeccompDefault bool
	// AllowedUnsafeSysctls are the sysctls (names, or prefixes ending in
	// "*") pods may set beyond the safe ones; see CheckAllowedUnsafeSysctls.
	AllowedUnsafeSysctls []string
	// AppArmorEnabled tells whether the host enforces AppArmor
	// (HostAppArmorEnabled); without it pods asking for a profile are
	// refused.
	AppArmorEnabled bool
	// SupplementalGroupsPolicySupported tells whether the runtime applies
	// supplementalGroupsPolicy Strict (its RuntimeFeatures); nil: it does
	// not.
	SupplementalGroupsPolicySupported func() bool
	// Node returns the node object for admission (labels, NoExecute
	// taints, allocatable); nil, or returning nil: only the checks that
	// need no node run, against Allocatable.
	Node func() *v1.Node
	// GetSecret reads a Secret of the pod's namespace (imagePullSecrets);
	// nil: pulls go without credentials.
	GetSecret func(ctx context.Context, namespace, name string) (*v1.Secret, error)
	// ShuttingDown reports that the node is shutting down (package
	// nodeshutdown): admission refuses new pods, as the kubelet's
	// shutdown manager. Nil: never.
	ShuttingDown func() bool
	// PodCgroups writes the limits of each pod's cgroup (package
	// podcgroups) before its sandbox starts and after a resize; nil: the
	// runtime creates the pod's cgroup without limits of its own.
	PodCgroups PodCgroups
	// RuntimeClasses reads the RuntimeClasses (node.k8s.io/v1) whose
	// handler runs the sandbox of a pod naming one (runtimeclass.go); nil:
	// such a pod's sandbox fails to be created.
	RuntimeClasses nodelisters.RuntimeClassLister
	// MaxContainerRestartPeriod caps the crash-loop back-off
	// (crashLoopBackOff.maxContainerRestartPeriod); 0: its default,
	// configs.MaxContainerRestartPeriod.
	MaxContainerRestartPeriod time.Duration
	// SerializeImagePulls pulls one image at a time on the node
	// (serializeImagePulls); otherwise MaxParallelImagePulls, when above
	// 0, is the most pulls at once (maxParallelImagePulls). See
	// pullLimiter.
	SerializeImagePulls   bool
	MaxParallelImagePulls int
	// RegistryPullQPS and RegistryBurst (registryPullQPS, registryBurst)
	// rate-limit the pulls; 0 QPS: no limit.
	RegistryPullQPS int
	RegistryBurst   int
}

// PodCgroups writes pod cgroups (*podcgroups.Manager).
type PodCgroups interface {
	// EnsurePod creates the pod's cgroup at path with the limits of its
	// spec; growOnly writes only those that grow.
	EnsurePod(path string, pod *v1.Pod, growOnly bool) error
	// Forget drops what was written of a removed pod cgroup.
	Forget(path string)
}

// Syncer implements podworkers.PodSyncer over CRI.
type Syncer struct {
	cfg      Config
	runtime  internalapi.RuntimeService
	images   internalapi.ImageManagerService
	volumes  Volumes
	env      Env
	network  Network
	status   StatusWriter
	recorder record.EventRecorder
	clock    clock.Clock

	statuses statusCache
	// crash-loop back-off per container, image pull back-off per image.
	crashBackoff *flowcontrol.Backoff
	pullBackoff  *flowcontrol.Backoff
	// pulls bounds the node's image pulls (puller.go).
	pulls *pullLimiter

	mu sync.Mutex
	// waiting holds, per pod and container name, why a container is not
	// running when the runtime cannot tell (image pull failures, config
	// errors, back-off).
	waiting map[types.UID]map[string]waitReason
	// sandboxIPs caches the IPs of each sandbox, which do not change.
	sandboxIPs map[string][]string
	// netDown holds the sandboxes whose network was torn down.
	netDown map[string]bool
	// unreadableCache holds the adopted sandboxes whose CNI cache entry
	// did not read: their status keeps the IPs last reported.
	unreadableCache map[string]bool
	// volumePaths holds, during a sync that set up a pod's volumes, their
	// host paths (see keepVolumePaths).
	volumePaths map[types.UID]map[string]string
	// imagePulls holds, during a sync that started a container, what the
	// pulls of the pod's image volumes gave (imagevolumes.go).
	imagePulls map[types.UID]map[string]imageVolumePull
	// ended holds the pods whose final status the agent wrote when it
	// ended them (writeEndStatus).
	ended map[types.UID]bool
	// finals holds the final statuses of deleted pods computed before
	// their removal and not yet written: a retry writes the same one, not
	// one computed from what is left of the pod.
	finals map[types.UID]*v1.PodStatus
	// admission decides new pods one at a time (admission.go).
	admission admission
	// resizes holds the state of each pod's in-place resizes (resize.go).
	resizes map[types.UID]*resizeState
}

type waitReason struct{ reason, message string }

// New returns a Syncer.
func New(cfg Config, rt internalapi.RuntimeService, images internalapi.ImageManagerService, volumes Volumes, env Env, status StatusWriter, recorder record.EventRecorder, clk clock.Clock) *Syncer {
	s := &Syncer{
		cfg: cfg, runtime: rt, network: cfg.Network, images: images, volumes: volumes, env: env, status: status, recorder: recorder, clock: clk,
		crashBackoff:    newCrashBackoff(clk, cfg.MaxContainerRestartPeriod),
		pullBackoff:     newBackoff(clk, backoffInitial, backoffMax),
		pulls:           newPullLimiter(cfg, clk),
		waiting:         map[types.UID]map[string]waitReason{},
		sandboxIPs:      map[string][]string{},
		netDown:         map[string]bool{},
		unreadableCache: map[string]bool{},
		volumePaths:     map[types.UID]map[string]string{},
		imagePulls:      map[types.UID]map[string]imageVolumePull{},
		ended:           map[types.UID]bool{},
		finals:          map[types.UID]*v1.PodStatus{},
	}
	return s
}

// The kubelet's image pull back-off (backOffPeriod, MaxImageBackOff),
// whose first delay the crash-loop back-off shares.
const (
	backoffInitial = 10 * time.Second
	backoffMax     = 300 * time.Second
)

// newBackoff is an initial..max back-off on clk: the back-off must measure
// time on the same clock as the waits computed from it.
func newBackoff(clk clock.Clock, initial, maxDelay time.Duration) *flowcontrol.Backoff {
	b := flowcontrol.NewBackOff(initial, maxDelay)
	b.Clock = clk
	return b
}

// newCrashBackoff is the crash-loop back-off, 10s doubling up to maxDelay
// (its default, configs.MaxContainerRestartPeriod, when 0); a maxDelay below 10s is the first delay too, as the
// kubelet's newCrashLoopBackOff. As there, it starts again from the first
// delay only after 10 minutes without a restart, whatever maxDelay (the
// library's default would be twice maxDelay).
func newCrashBackoff(clk clock.Clock, maxDelay time.Duration) *flowcontrol.Backoff {
	if maxDelay <= 0 {
		maxDelay = configs.MaxContainerRestartPeriod
	}
	b := newBackoff(clk, min(backoffInitial, maxDelay), maxDelay)
	b.HasExpiredFunc = func(eventTime, lastUpdate time.Time, _ time.Duration) bool {
		return eventTime.Sub(lastUpdate) > backoffResetAfter
	}
	return b
}

func (s *Syncer) setWaiting(uid types.UID, name, reason, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.waiting[uid] == nil {
		s.waiting[uid] = map[string]waitReason{}
	}
	s.waiting[uid][name] = waitReason{reason, message}
}

func (s *Syncer) clearWaiting(uid types.UID, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.waiting[uid], name)
}

func (s *Syncer) waitingFor(uid types.UID, name string) (waitReason, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.waiting[uid][name]
	return w, ok
}

// SyncPod makes the runtime match pod and writes its status.
func (s *Syncer) SyncPod(ctx context.Context, pod *v1.Pod) (bool, time.Duration, error) {
	logger := klog.FromContext(ctx)
	if pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed {
		return true, 0, nil
	}
	state, err := readPodState(ctx, s.runtime, &s.statuses, pod.UID)
	if err != nil {
		return false, 0, err
	}
	// Admission, once: for a pod that never ran here.
	if len(state.sandboxes) == 0 && pod.Status.StartTime == nil {
		if reason, msg := s.admit(ctx, pod); reason != "" {
			s.recorder.Event(pod, v1.EventTypeWarning, reason, msg)
			if err := s.status.Write(ctx, pod, rejectedStatus(pod, reason, msg, s.clock.Now())); err != nil {
				return false, 0, err
			}
			return true, 0, nil
		}
	}
	if s.pastDeadline(pod) { // activeDeadlineSeconds: deadline.go
		return s.failPastDeadline(ctx, pod)
	}
	// Image volumes are pulled at most once per sync.
	defer s.forgetImageVolumes(pod.UID)
	// From here on pod is as the node runs it: with the resources granted
	// to its containers, which a resize may not have been yet (resize.go).
	pod, requeue := s.allocate(ctx, pod)
	sandbox := state.readySandbox()
	if sandbox == nil && !podDone(pod, state) {
		defer s.forgetVolumePaths(pod.UID)
		started, err := s.startSandbox(ctx, pod, state)
		if err != nil {
			if werr := s.writeStatus(ctx, pod, state); werr != nil {
				logger.Error(werr, "Writing status")
			}
			return false, 0, err
		}
		if len(state.sandboxes) == 0 {
			// A pod's first sandbox: nothing else of it exists, the
			// runtime has nothing to tell that the agent does not know.
			state = &podState{sandboxes: []*runtimeapi.PodSandbox{started}}
		} else {
			// Older sandboxes and containers were stopped meanwhile.
			if state, err = readPodState(ctx, s.runtime, &s.statuses, pod.UID); err != nil {
				return false, 0, err
			}
		}
		if sandbox = state.readySandbox(); sandbox == nil || sandbox.Id != started.Id {
			return false, 0, fmt.Errorf("sandbox %s not ready after start", started.Id)
		}
	}
	if sandbox != nil {
		// Sources that changed (a watched ConfigMap or Secret, the labels
		// a downward API volume shows) and tokens that are due are
		// written again.
		if _, due := s.volumes.NextRefresh(pod.UID); due || s.volumes.Stale(pod) {
			if _, err := s.volumes.Setup(ctx, pod); err != nil {
				logger.Error(err, "Refreshing volumes")
			}
		}
		if t, _ := s.volumes.NextRefresh(pod.UID); !t.IsZero() {
			requeue = minPositive(requeue, t.Sub(s.clock.Now()))
		}
		// A resize widens the pod's cgroup before its containers and
		// narrows it after them.
		s.ensurePodCgroup(ctx, pod, true)
		r, changed, syncErr := s.syncContainers(ctx, pod, state, sandbox)
		if !s.resizeFailed(pod.UID) {
			// Not while a container refused its resize (a memory limit
			// below its usage): the pod's own limit would enforce it.
			s.ensurePodCgroup(ctx, pod, false)
		}
		requeue = minPositive(requeue, r)
		if changed || syncErr != nil {
			if state, err = readPodState(ctx, s.runtime, &s.statuses, pod.UID); err != nil {
				return false, 0, err
			}
		}
		if syncErr != nil {
			// The status shows why (CreateContainerConfigError, ...); the
			// worker retries with its back-off.
			if werr := s.writeStatus(ctx, pod, state); werr != nil {
				logger.Error(werr, "Writing status")
			}
			return false, 0, syncErr
		}
	}
	st, err := s.computeStatus(ctx, pod, state)
	if err != nil {
		return false, 0, err
	}
	s.syncProbes(ctx, pod, state, st.PodIP)
	terminal := st.Phase == v1.PodSucceeded || st.Phase == v1.PodFailed
	if terminal && sidecarsRunning(pod, state) {
		// As the kubelet: no terminal phase while a container still runs.
		// Terminating stops the sidecars; SyncTerminatedPod then writes
		// the final phase.
		st.Phase = v1.PodRunning
	}
	t := time.Now()
	if err := s.status.Write(ctx, pod, st); err != nil {
		return false, 0, err
	}
	if changed := !allStarted(&pod.Status) && allStarted(st); changed {
		observePhase("status", t)
		podStartSLI.Observe(s.clock.Since(pod.CreationTimestamp.Time).Seconds())
	}
	requeue = minPositive(requeue, s.untilDeadline(pod))
	return terminal, requeue, nil
}

// sidecarsRunning reports whether a sidecar of the pod has a live container.
func sidecarsRunning(pod *v1.Pod, state *podState) bool {
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if !isSidecar(c) {
			continue
		}
		if cur, _ := state.latest(c.Name); cur != nil && cur.State != runtimeapi.ContainerState_CONTAINER_EXITED {
			return true
		}
	}
	return false
}

func (s *Syncer) writeStatus(ctx context.Context, pod *v1.Pod, state *podState) error {
	st, err := s.computeStatus(ctx, pod, state)
	if err != nil {
		return err
	}
	return s.status.Write(ctx, pod, st)
}

func minPositive(a, b time.Duration) time.Duration {
	if a <= 0 {
		return b
	}
	if b > 0 && b < a {
		return b
	}
	return a
}

// podDone reports whether the pod's containers are finished for good, so
// no sandbox is needed any more (a pod whose sandbox is gone after a node
// restart, for instance).
func podDone(pod *v1.Pod, state *podState) bool {
	if pod.Spec.RestartPolicy == v1.RestartPolicyAlways || len(state.containers) == 0 {
		return false
	}
	for i := range pod.Spec.Containers {
		cur, _ := state.latest(pod.Spec.Containers[i].Name)
		if cur == nil || cur.State != runtimeapi.ContainerState_CONTAINER_EXITED {
			return false
		}
		if pod.Spec.RestartPolicy == v1.RestartPolicyOnFailure && cur.ExitCode != 0 {
			return false
		}
	}
	return true
}

// errConfig marks errors that become CreateContainerConfigError.
var errConfig = errors.New("container config error")

// allStarted reports whether every container of a status is running.
func allStarted(st *v1.PodStatus) bool {
	if len(st.ContainerStatuses) == 0 {
		return false
	}
	for _, cs := range st.ContainerStatuses {
		if cs.State.Running == nil {
			return false
		}
	}
	return true
}
