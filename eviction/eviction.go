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

// gracePeriod is the grace period of an evicted pod, the kubelet's
// immediateEvictionGracePeriodSeconds.
const gracePeriod int64 = 1

// Config wires a Manager.
type Config struct {
	// Pods returns the pods the node runs whose workers are not
	// terminating.
	Pods func() []*v1.Pod
	// Stats returns the pods' stats with their storage usage, and
	// whether the image filesystem is dedicated (server.Server.PodStorage).
	Stats func(ctx context.Context) ([]statsapi.PodStats, bool, error)
	// Kill asks the worker of pod to terminate it within gracePeriod
	// seconds, with status editing its final status
	// (podworkers.Workers.Kill).
	Kill     func(pod *v1.Pod, gracePeriod int64, status func(*v1.PodStatus)) <-chan struct{}
	Recorder record.EventRecorder
	Clock    clock.WithTicker
	// Period is how often Run checks; MonitoringPeriod when zero.
	Period time.Duration
	// Thresholds are the evictionHard thresholds by signal; of them,
	// memory.available evicts pods (pressure.go).
	Thresholds Thresholds
	// Summary returns the node's and the pods' memory (the kubelet API
	// server's /stats/summary); nil: no node-pressure eviction.
	Summary func(ctx context.Context) (*statsapi.Summary, error)
	// MemoryCapacity is the node's memory in bytes, for a threshold given
	// as a percentage.
	MemoryCapacity int64
	// NodeFs and ImageFs read the root directory's and the runtime's
	// image filesystems (nodefs.available, imagefs.available); nil: no
	// disk-pressure eviction.
	NodeFs, ImageFs func(ctx context.Context) (*statsapi.FsStats, error)
	// ReclaimDisk removes unused images (imagegc's DeleteUnusedImages)
	// before any pod is evicted for disk pressure; nil: nothing.
	ReclaimDisk func(ctx context.Context) (int64, error)
}

// Manager evicts pods over their local storage limits. Create it with New.
type Manager struct {
	cfg Config
	// evicted are the pods already evicted, so that one is evicted (and
	// its event recorded) once. Only Run's goroutine uses it.
	evicted map[types.UID]bool
}

// New returns a Manager; nothing happens until Run or Synchronize.
func New(cfg Config) *Manager {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Period <= 0 {
		cfg.Period = MonitoringPeriod
	}
	return &Manager{cfg: cfg, evicted: map[types.UID]bool{}}
}

// Run checks the pods every period until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	t := m.cfg.Clock.NewTicker(m.cfg.Period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		m.Synchronize(ctx)
	}
}

// Synchronize checks every pod once, as the kubelet's synchronize: the
// local storage limits first, then, when they evicted nothing, node memory
// pressure (one pod at most). It returns the pods it evicted.
func (m *Manager) Synchronize(ctx context.Context) []*v1.Pod {
	var active, limited []*v1.Pod
	live := map[types.UID]bool{}
	for _, pod := range m.cfg.Pods() {
		live[pod.UID] = true
		if m.evicted[pod.UID] || pod.DeletionTimestamp != nil ||
			pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed {
			continue
		}
		active = append(active, pod)
		if hasLimits(pod) {
			limited = append(limited, pod)
		}
	}
	for uid := range m.evicted {
		if !live[uid] {
			delete(m.evicted, uid)
		}
	}
	if evicted := m.localStorage(ctx, limited); len(evicted) > 0 {
		return evicted
	}
	if pod := m.memoryPressure(ctx, active); pod != nil {
		return []*v1.Pod{pod}
	}
	if pod := m.diskPressure(ctx, active); pod != nil {
		return []*v1.Pod{pod}
	}
	return nil
}

// localStorage evicts the pods over their local storage limits, as the
// kubelet's localStorageEviction.
func (m *Manager) localStorage(ctx context.Context, pods []*v1.Pod) []*v1.Pod {
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
	var evicted []*v1.Pod
	for _, pod := range pods {
		st := byUID[string(pod.UID)]
		if st == nil {
			continue
		}
		msg := violation(pod, st, dedicatedImageFs)
		if msg == "" {
			continue
		}
		if m.evictPod(logger, pod, msg, nil) {
			evicted = append(evicted, pod)
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
// event, then the pod's worker kills it with the eviction's final status
// (and condition, for node-pressure evictions). It does not wait for the
// pod to stop.
func (m *Manager) evictPod(logger klog.Logger, pod *v1.Pod, msg string, condition *v1.PodCondition) bool {
	if staticpods.IsCritical(pod) {
		logger.Error(nil, "Eviction manager: cannot evict a critical pod", "pod", klog.KObj(pod), "podUID", pod.UID, "message", msg)
		return false
	}
	if m.cfg.Recorder != nil {
		m.cfg.Recorder.Event(pod, v1.EventTypeWarning, Reason, msg)
	}
	logger.Info("Evicting pod", "pod", klog.KObj(pod), "podUID", pod.UID, "message", msg)
	m.evicted[pod.UID] = true
	m.cfg.Kill(pod, gracePeriod, func(st *v1.PodStatus) {
		st.Phase = v1.PodFailed
		st.Reason = Reason
		st.Message = msg
		if condition != nil {
			c := *condition
			c.LastTransitionTime = metav1.NewTime(m.cfg.Clock.Now())
			st.Conditions = append(slices.DeleteFunc(st.Conditions, func(o v1.PodCondition) bool { return o.Type == c.Type }), c)
		}
	})
	return true
}
