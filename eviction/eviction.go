package eviction

import (
	"context"
	"fmt"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/klog/v2"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/clock"

	"github.com/nodeagent/nodeagent/configs"
	"github.com/nodeagent/nodeagent/staticpods"
)

// The kubelet's reason and messages of local storage evictions
// (pkg/kubelet/eviction/helpers.go).
const (
	Reason                 = "Evicted"
	emptyDirMessageFmt     = "Usage of EmptyDir volume %q exceeds the limit %q. "
	podStorageMessageFmt   = "Pod ephemeral local storage usage exceeds the total limit of containers %s. "
	containerStorageMsgFmt = "Container %s exceeded its local ephemeral storage limit %q. "
)

// MonitoringPeriod is how often the limits are checked: the kubelet's
// evictionMonitoringPeriod (a constant there, not a config field).
const MonitoringPeriod = 10 * time.Second

// gracePeriod is the grace period of a pod evicted for a local storage
// limit or a hard threshold, the kubelet's
// immediateEvictionGracePeriodSeconds.
const gracePeriod int64 = 1

// podCleanupTimeout is how long Run waits, at most, for the pods it
// evicted to stop before it checks again: the kubelet's podCleanupTimeout.
const podCleanupTimeout = 30 * time.Second

// Config wires a Manager.
type Config struct {
	// Pods returns the pods the node runs whose workers are not
	// terminating.
	Pods func() []*v1.Pod
	// Stats returns the pods' stats with their storage usage (bytes and
	// inodes) and process counts, and whether the image filesystem is
	// dedicated (server.Server.PodStorage).
	Stats func(ctx context.Context) ([]statsapi.PodStats, bool, error)
	// Kill asks the worker of pod to terminate it within gracePeriod
	// seconds, with status editing its final status
	// (podworkers.Workers.Kill), and returns a channel closed once the
	// pod has stopped (nil: nothing to wait for).
	Kill     func(pod *v1.Pod, gracePeriod int64, status func(*v1.PodStatus)) <-chan struct{}
	Recorder record.EventRecorder
	Clock    clock.WithTicker
	// Period is how often Run checks; MonitoringPeriod when zero.
	Period time.Duration
	// Thresholds are the hard and soft eviction thresholds
	// (configs.EvictionThresholds): they evict pods (pressure.go) and set
	// the node's pressure conditions (UnderPressure).
	Thresholds []configs.EvictionThreshold
	// PressureTransition is evictionPressureTransitionPeriod: how long a
	// pressure condition stays on after its thresholds were last met; 0:
	// only while they are.
	PressureTransition time.Duration
	// LocalStorageLimits is localStorageCapacityIsolation: the pods'
	// emptyDir sizeLimits and ephemeral-storage limits are enforced.
	LocalStorageLimits bool
	// MaxPodGracePeriod is evictionMaxPodGracePeriod: the grace period,
	// in seconds, of a pod evicted for a soft threshold when the pod's
	// own is longer.
	MaxPodGracePeriod int64
	// NodeRef is the Node the EvictionThresholdMet events are about;
	// nil: none are recorded.
	NodeRef *v1.ObjectReference
	// Summary returns the node's and the pods' memory (the kubelet API
	// server's /stats/summary); nil: memory.available is not read.
	Summary func(ctx context.Context) (*statsapi.Summary, error)
	// MemoryCapacity is the node's memory in bytes, for a threshold given
	// as a percentage.
	MemoryCapacity int64
	// NodeFs and ImageFs read the root directory's and the runtime's
	// image filesystems (nodefs.available and nodefs.inodesFree,
	// imagefs.available and imagefs.inodesFree); nil: those signals are
	// not read.
	NodeFs, ImageFs func(ctx context.Context) (*statsapi.FsStats, error)
	// PIDs returns the number of tasks and their system-wide limit
	// (pid.available); nil: that signal is not read.
	PIDs func() (running, max uint64, err error)
	// ReclaimDisk removes unused images (imagegc's DeleteUnusedImages)
	// before any pod is evicted for disk pressure (not for nodefs
	// pressure with a dedicated image filesystem); nil: nothing.
	ReclaimDisk func(ctx context.Context) (int64, error)
}

// Manager evicts pods over their local storage limits and for the
// eviction thresholds. Create it with New.
type Manager struct {
	cfg Config
	// evicted are the pods already evicted, so that one is evicted (and
	// its event recorded) once. Only Run's goroutine uses it.
	evicted map[types.UID]bool
	// tracker follows cfg.Thresholds from one period to the next, and
	// holds the pressure conditions.
	tracker *Tracker
}

// New returns a Manager; nothing happens until Run or Synchronize.
func New(cfg Config) *Manager {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Period <= 0 {
		cfg.Period = MonitoringPeriod
	}
	return &Manager{cfg: cfg, evicted: map[types.UID]bool{}, tracker: NewTracker(cfg.Thresholds, cfg.PressureTransition)}
}

// UnderPressure reports whether the node condition (MemoryPressure,
// DiskPressure or PIDPressure) is on, as of the last check: the kubelet's
// IsUnderMemoryPressure and the like. It is false before the first check,
// for a condition none of whose signals has a threshold, and on a nil
// Manager (none running). It may be called from any goroutine.
func (m *Manager) UnderPressure(condition v1.NodeConditionType) bool {
	if m == nil {
		return false
	}
	return m.tracker.UnderPressure(condition)
}

// Run checks the pods at once, then every period, until ctx ends, as the
// kubelet's eviction manager Start (its monitoring loop synchronizes
// before it first sleeps). As there, after a check that evicted pods it
// waits for them to stop, up to podCleanupTimeout, so that the next check
// sees what their eviction freed rather than evicting another pod for the
// same pressure. The next check then comes a period later, where the
// kubelet checks at once: a killed pod's worker is done when its
// containers have stopped, before its volumes and containers are
// removed, where the kubelet waits for its resources to be reclaimed.
func (m *Manager) Run(ctx context.Context) {
	for {
		if ctx.Err() != nil {
			return
		}
		if evicted := m.synchronize(ctx); len(evicted) > 0 {
			m.waitForCleanup(ctx, evicted)
		}
		t := m.cfg.Clock.NewTimer(m.cfg.Period)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

// evictedPod is a pod evicted and the channel closed once it has stopped.
type evictedPod struct {
	pod  *v1.Pod
	done <-chan struct{}
}

// waitForCleanup waits until the evicted pods have stopped, for at most
// podCleanupTimeout, as the kubelet's waitForPodsCleanup.
func (m *Manager) waitForCleanup(ctx context.Context, evicted []evictedPod) {
	logger := klog.FromContext(ctx)
	pods := make([]*v1.Pod, len(evicted))
	for i := range evicted {
		pods[i] = evicted[i].pod
	}
	logger.Info("Eviction manager: pods evicted, waiting for pod to be cleaned up", "pods", klog.KObjSlice(pods))
	timeout := m.cfg.Clock.NewTimer(podCleanupTimeout)
	defer timeout.Stop()
	for _, e := range evicted {
		if e.done == nil {
			continue
		}
		select {
		case <-e.done:
		case <-timeout.C():
			logger.Info("Eviction manager: timed out waiting for pods to be cleaned up", "pods", klog.KObjSlice(pods))
			return
		case <-ctx.Done():
			return
		}
	}
	logger.Info("Eviction manager: pods successfully cleaned up", "pods", klog.KObjSlice(pods))
}

// Synchronize checks every pod once, as the kubelet's synchronize: it
// reads the signals with a threshold and updates the pressure conditions,
// then enforces the local storage limits (with LocalStorageLimits) and,
// when they evicted nothing, the thresholds (one pod at most).
// It returns the pods it evicted, without waiting for them to stop.
func (m *Manager) Synchronize(ctx context.Context) []*v1.Pod {
	var pods []*v1.Pod
	for _, e := range m.synchronize(ctx) {
		pods = append(pods, e.pod)
	}
	return pods
}

// synchronize is Synchronize, returning the pods with their channels.
func (m *Manager) synchronize(ctx context.Context) []evictedPod {
	if len(m.cfg.Thresholds) == 0 && !m.cfg.LocalStorageLimits {
		return nil
	}
	var active, limited []*v1.Pod
	live := map[types.UID]bool{}
	for _, pod := range m.cfg.Pods() {
		live[pod.UID] = true
		if m.evicted[pod.UID] || pod.DeletionTimestamp != nil ||
			pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed {
			continue
		}
		active = append(active, pod)
		if m.cfg.LocalStorageLimits && hasLimits(pod) {
			limited = append(limited, pod)
		}
	}
	for uid := range m.evicted {
		if !live[uid] {
			delete(m.evicted, uid)
		}
	}
	var (
		evict   []configs.EvictionThreshold
		obs     Observations
		summary *statsapi.Summary
	)
	observed := false
	if len(m.cfg.Thresholds) > 0 {
		obs, summary, observed = m.observe(ctx)
		if observed {
			evict = m.tracker.Observe(obs, m.cfg.Clock.Now()).Evict
		}
	}
	if evicted := m.localStorage(ctx, limited); len(evicted) > 0 || !observed {
		return evicted
	}
	return m.nodePressure(ctx, active, evict, obs, summary)
}

// localStorage evicts the pods over their local storage limits, as the
// kubelet's localStorageEviction.
func (m *Manager) localStorage(ctx context.Context, pods []*v1.Pod) []evictedPod {
	logger := klog.FromContext(ctx)
	if len(pods) == 0 {
		return nil // nothing to enforce: measure nothing
	}
	all, dedicatedImageFs, err := m.cfg.Stats(ctx)
	if err != nil {
		logger.Error(err, "Eviction manager: reading the pods' storage usage")
		return nil
	}
	byUID := make(map[string]*statsapi.PodStats, len(all))
	for i := range all {
		byUID[all[i].PodRef.UID] = &all[i]
	}
	var evicted []evictedPod
	for _, pod := range pods {
		st := byUID[string(pod.UID)]
		if st == nil {
			continue
		}
		msg := violation(pod, st, dedicatedImageFs)
		if msg == "" {
			continue
		}
		if e, ok := m.evictPod(logger, pod, gracePeriod, msg, nil); ok {
			evicted = append(evicted, e)
		}
	}
	return evicted
}

// hasLimits reports whether the pod has a local storage limit to enforce:
// an emptyDir sizeLimit or an ephemeral-storage limit.
func hasLimits(pod *v1.Pod) bool {
	for i := range pod.Spec.Volumes {
		if ed := pod.Spec.Volumes[i].EmptyDir; ed != nil && ed.SizeLimit != nil && ed.SizeLimit.Sign() == 1 {
			return true
		}
	}
	_, ok := resourcehelper.PodLimits(pod, resourcehelper.PodResourcesOptions{})[v1.ResourceEphemeralStorage]
	return ok
}

// violation returns the eviction message of the first limit the pod is
// over, in the kubelet's order (emptyDir, pod, container), or "".
func violation(pod *v1.Pod, st *statsapi.PodStats, dedicatedImageFs bool) string {
	if msg := emptyDirViolation(pod, st); msg != "" {
		return msg
	}
	if msg := podViolation(pod, st); msg != "" {
		return msg
	}
	return containerViolation(pod, st, dedicatedImageFs)
}

// emptyDirViolation is the kubelet's emptyDirLimitEviction: the first
// emptyDir (in spec order) whose usage is above its positive sizeLimit.
func emptyDirViolation(pod *v1.Pod, st *statsapi.PodStats) string {
	used := map[string]*resource.Quantity{}
	for _, v := range st.VolumeStats {
		if v.UsedBytes != nil {
			used[v.Name] = resource.NewQuantity(int64(*v.UsedBytes), resource.BinarySI)
		}
	}
	for i := range pod.Spec.Volumes {
		vol := &pod.Spec.Volumes[i]
		if vol.EmptyDir == nil {
			continue
		}
		size, u := vol.EmptyDir.SizeLimit, used[vol.Name]
		if u != nil && size != nil && size.Sign() == 1 && u.Cmp(*size) > 0 {
			return fmt.Sprintf(emptyDirMessageFmt, vol.Name, size.String())
		}
	}
	return ""
}

// podViolation is the kubelet's podEphemeralStorageLimitEviction: the
// pod's ephemeral storage above the sum of its containers'
// ephemeral-storage limits.
func podViolation(pod *v1.Pod, st *statsapi.PodStats) string {
	limit, ok := resourcehelper.PodLimits(pod, resourcehelper.PodResourcesOptions{})[v1.ResourceEphemeralStorage]
	if !ok {
		return ""
	}
	used := &resource.Quantity{}
	if e := st.EphemeralStorage; e != nil && e.UsedBytes != nil {
		used = resource.NewQuantity(int64(*e.UsedBytes), resource.BinarySI)
	}
	if used.Cmp(limit) > 0 {
		return fmt.Sprintf(podStorageMessageFmt, limit.String())
	}
	return ""
}

// containerViolation is the kubelet's containerEphemeralStorageLimitEviction:
// the first container (in the stats' order) whose logs, plus its writable
// layer without a dedicated image filesystem, are above its
// ephemeral-storage limit.
func containerViolation(pod *v1.Pod, st *statsapi.PodStats, dedicatedImageFs bool) string {
	limits := map[string]*resource.Quantity{}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		if l := c.Resources.Limits.StorageEphemeral(); l != nil && l.Value() != 0 {
			limits[c.Name] = l
		}
	}
	if len(limits) == 0 {
		return ""
	}
	for _, cs := range st.Containers {
		limit, ok := limits[cs.Name]
		if !ok {
			continue
		}
		used := diskUsage(cs.Logs)
		if !dedicatedImageFs {
			used.Add(*diskUsage(cs.Rootfs))
		}
		if limit.Cmp(*used) < 0 {
			return fmt.Sprintf(containerStorageMsgFmt, cs.Name, limit.String())
		}
	}
	return ""
}

// diskUsage is a filesystem's used bytes, 0 when unknown.
func diskUsage(fs *statsapi.FsStats) *resource.Quantity {
	if fs == nil || fs.UsedBytes == nil {
		return &resource.Quantity{Format: resource.BinarySI}
	}
	return resource.NewQuantity(int64(*fs.UsedBytes), resource.BinarySI)
}

// evictPod is the kubelet's evictPod: never a critical pod; an Evicted
// event, then the pod's worker kills it within grace seconds with the
// eviction's final status (and condition, for node-pressure evictions).
// It does not wait for the pod to stop, and returns the pod with the
// kill's channel; ok is false when the pod is critical.
func (m *Manager) evictPod(logger klog.Logger, pod *v1.Pod, grace int64, msg string, condition *v1.PodCondition) (e evictedPod, ok bool) {
	if staticpods.IsCritical(pod) {
		logger.Error(nil, "Eviction manager: cannot evict a critical pod", "pod", klog.KObj(pod), "podUID", pod.UID, "message", msg)
		return evictedPod{}, false
	}
	if m.cfg.Recorder != nil {
		m.cfg.Recorder.Event(pod, v1.EventTypeWarning, Reason, msg)
	}
	logger.Info("Evicting pod", "pod", klog.KObj(pod), "podUID", pod.UID, "message", msg)
	m.evicted[pod.UID] = true
	done := m.cfg.Kill(pod, grace, func(st *v1.PodStatus) {
		st.Phase = v1.PodFailed
		st.Reason = Reason
		st.Message = msg
		if condition != nil {
			c := *condition
			c.LastTransitionTime = metav1.NewTime(m.cfg.Clock.Now())
			st.Conditions = append(slices.DeleteFunc(st.Conditions, func(o v1.PodCondition) bool { return o.Type == c.Type }), c)
		}
	})
	return evictedPod{pod: pod, done: done}, true
}
