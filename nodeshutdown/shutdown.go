package nodeshutdown

import (
	"context"
	"sort"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/clock"
)

// Status reason and message of a pod ended by a node shutdown, the
// kubelet's.
const (
	Reason  = "Terminated"
	Message = "Pod was terminated in response to imminent node shutdown."
)

// Priorities of the two groups of shutdownGracePeriod and
// shutdownGracePeriodCriticalPods: the kubelet's
// DefaultPriorityWhenNoDefaultClassExists and SystemCriticalPriority
// (system-cluster-critical).
const (
	defaultPriority  int32 = 0
	CriticalPriority int32 = 2000000000
)

// Group is one step of a shutdown: the pods whose priority is at least
// Priority (and below the next group's) get GracePeriodSeconds.
type Group struct {
	Priority           int32
	GracePeriodSeconds int64
}

// Groups returns the steps of a shutdown that cfg asks for, the lowest
// priority first, or nil when graceful node shutdown is off: the kubelet's
// shutdownGracePeriodByPodPriority, or its migration of
// shutdownGracePeriod and shutdownGracePeriodCriticalPods into two
// groups. Validation (package configs) has refused a config with both.
func Groups(cfg *kubeletconfigv1beta1.KubeletConfiguration) []Group {
	var groups []Group
	if len(cfg.ShutdownGracePeriodByPodPriority) > 0 {
		for _, p := range cfg.ShutdownGracePeriodByPodPriority {
			groups = append(groups, Group{Priority: p.Priority, GracePeriodSeconds: p.ShutdownGracePeriodSeconds})
		}
	} else {
		total, critical := cfg.ShutdownGracePeriod.Duration, cfg.ShutdownGracePeriodCriticalPods.Duration
		if total <= 0 || critical > total {
			return nil
		}
		groups = []Group{
			{Priority: defaultPriority, GracePeriodSeconds: int64((total - critical) / time.Second)},
			{Priority: CriticalPriority, GracePeriodSeconds: int64(critical / time.Second)},
		}
	}
	sort.SliceStable(groups, func(i, j int) bool { return groups[i].Priority < groups[j].Priority })
	return groups
}

// Period is the longest a shutdown of groups takes: the sum of their
// seconds (the kubelet's periodRequested), what logind must let the drain
// hold the machine's shutdown back for (package logind).
func Period(groups []Group) time.Duration {
	var sum int64
	for _, g := range groups {
		sum += g.GracePeriodSeconds
	}
	return time.Duration(sum) * time.Second
}

// Node is what a shutdown needs of the node's status (nodestatus).
type Node interface {
	// ShuttingDown holds the node NotReady with "node is shutting down".
	ShuttingDown()
	// SyncStatus posts the node's status now.
	SyncStatus(ctx context.Context) error
}

// Config wires a Manager.
type Config struct {
	// Groups are the steps, from Groups; not empty.
	Groups []Group
	// Pods returns the pods the node runs.
	Pods func() []*v1.Pod
	// Kill asks the worker of pod to terminate it within gracePeriod
	// seconds, with status editing its final status, and returns a
	// channel closed once the pod is stopped (podworkers.Workers.Kill).
	Kill func(pod *v1.Pod, gracePeriod int64, status func(*v1.PodStatus)) <-chan struct{}
	Node Node
	// Recorder, if set, records the NodeShutdown event on NodeRef.
	Recorder record.EventRecorder
	NodeRef  *v1.ObjectReference
	Clock    clock.Clock
}

// Manager shuts the node down. Create it with New.
type Manager struct {
	cfg          Config
	shuttingDown atomic.Bool
}

// New returns a Manager; nothing happens until Shutdown.
func New(cfg Config) *Manager {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	return &Manager{cfg: cfg}
}

// ShuttingDown reports whether Shutdown has begun (for admission).
func (m *Manager) ShuttingDown() bool { return m.shuttingDown.Load() }

// Shutdown terminates the node's pods group after group, as the package
// documentation tells, and returns once the last group is done, or early
// with ctx's error when ctx ends.
func (m *Manager) Shutdown(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	m.shuttingDown.Store(true)
	if m.cfg.Recorder != nil {
		m.cfg.Recorder.Event(m.cfg.NodeRef, v1.EventTypeNormal, "NodeShutdown", "Shutdown manager detected shutdown event")
	}
	m.cfg.Node.ShuttingDown()
	pods := m.cfg.Pods()
	logger.Info("Shutting the node down", "pods", len(pods), "groups", m.cfg.Groups)
	for _, g := range groupByPriority(m.cfg.Groups, pods) {
		if len(g.pods) == 0 {
			continue
		}
		if err := m.killGroup(ctx, g); err != nil {
			return err
		}
	}
	if err := m.cfg.Node.SyncStatus(ctx); err != nil {
		logger.Error(err, "Posting the node status after the shutdown")
	}
	logger.Info("Node shutdown done: every pod is terminated or had its time")
	return nil
}

// killGroup asks the workers of a group's pods to terminate them and
// waits until they are stopped or the group's time is over.
func (m *Manager) killGroup(ctx context.Context, g podGroup) error {
	logger := klog.FromContext(ctx)
	done := make([]<-chan struct{}, 0, len(g.pods))
	for _, pod := range g.pods {
		grace := g.GracePeriodSeconds
		if spec := pod.Spec.TerminationGracePeriodSeconds; spec != nil && *spec < grace {
			grace = *spec
		}
		grace = max(grace, 1) // the kubelet's pod worker's least grace period
		logger.V(1).Info("Shutdown manager killing pod with gracePeriod", "pod", klog.KObj(pod), "podUID", pod.UID, "gracePeriod", grace)
		done = append(done, m.cfg.Kill(pod, grace, m.endStatus(pod)))
	}
	timer := m.cfg.Clock.NewTimer(time.Duration(g.GracePeriodSeconds) * time.Second)
	defer timer.Stop()
	all := make(chan struct{})
	go func() {
		defer close(all)
		for _, d := range done {
			select {
			case <-d:
			case <-ctx.Done():
				return
			}
		}
	}()
	select {
	case <-all:
		if ctx.Err() != nil {
			return ctx.Err()
		}
		logger.V(1).Info("Done waiting for all pods in group to terminate", "gracePeriod", g.GracePeriodSeconds, "priority", g.Priority)
	case <-timer.C():
		logger.Info("Pods of a group still stopping after its grace period, moving on", "gracePeriod", g.GracePeriodSeconds, "priority", g.Priority)
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// endStatus is the status function of a pod ended by the shutdown: the
// kubelet's, but for the clock.
func (m *Manager) endStatus(pod *v1.Pod) func(*v1.PodStatus) {
	return func(st *v1.PodStatus) {
		if st.Phase != v1.PodSucceeded {
			st.Phase = v1.PodFailed
		}
		st.Reason, st.Message = Reason, Message
		cond := v1.PodCondition{
			Type:               v1.DisruptionTarget,
			Status:             v1.ConditionTrue,
			Reason:             v1.PodReasonTerminationByKubelet,
			Message:            Message,
			ObservedGeneration: pod.Generation,
			LastTransitionTime: metav1.NewTime(m.cfg.Clock.Now()),
		}
		for i := range st.Conditions {
			if c := &st.Conditions[i]; c.Type == cond.Type {
				if c.Status == cond.Status {
					cond.LastTransitionTime = c.LastTransitionTime
				}
				*c = cond
				return
			}
		}
		st.Conditions = append(st.Conditions, cond)
	}
}

// podGroup is a group with its pods.
type podGroup struct {
	Group
	pods []*v1.Pod
}

// groupByPriority sorts pods into groups (sorted by priority): each pod
// into the group of the highest priority not above its own, a pod below
// every group into the first, as the kubelet's groupByPriority.
func groupByPriority(groups []Group, pods []*v1.Pod) []podGroup {
	out := make([]podGroup, len(groups))
	for i, g := range groups {
		out[i].Group = g
	}
	if len(out) == 0 {
		return nil
	}
	for _, pod := range pods {
		var priority int32
		if pod.Spec.Priority != nil {
			priority = *pod.Spec.Priority
		}
		// The first group above the pod's priority; the pod belongs to
		// the one before it.
		i := sort.Search(len(out), func(i int) bool { return out[i].Priority > priority })
		out[max(i-1, 0)].pods = append(out[max(i-1, 0)].pods, pod)
	}
	return out
}
