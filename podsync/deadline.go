package podsync

import (
	"context"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// spec.activeDeadlineSeconds, as the kubelet's activeDeadlineHandler: a
// pod that has been active on the node longer than its deadline, counted
// from status.startTime, is killed and fails with reason DeadlineExceeded.
// The deadline may be set or shortened on a running pod: every sync tells
// the pod's worker to sync again when the deadline ends, and an update of
// the pod syncs it at once.
const (
	deadlineReason  = "DeadlineExceeded"
	deadlineMessage = "Pod was active on the node longer than the specified deadline"
)

// pastDeadline reports whether pod has been active longer than its
// activeDeadlineSeconds (the kubelet's pastActiveDeadline). A pod without
// a start time has not started here yet.
func (s *Syncer) pastDeadline(pod *v1.Pod) bool {
	if pod.Spec.ActiveDeadlineSeconds == nil || pod.Status.StartTime.IsZero() {
		return false
	}
	return s.clock.Since(pod.Status.StartTime.Time) >= time.Duration(*pod.Spec.ActiveDeadlineSeconds)*time.Second
}

// untilDeadline is when to sync pod again for its active deadline: 0
// without one, at once (a nanosecond) when it passed. A pod without a
// start time gets one in this sync, about now, so its deadline ends a
// whole activeDeadlineSeconds from now.
func (s *Syncer) untilDeadline(pod *v1.Pod) time.Duration {
	if pod.Spec.ActiveDeadlineSeconds == nil {
		return 0
	}
	allowed := time.Duration(*pod.Spec.ActiveDeadlineSeconds) * time.Second
	if pod.Status.StartTime.IsZero() {
		return max(allowed, time.Nanosecond)
	}
	return max(allowed-s.clock.Since(pod.Status.StartTime.Time), time.Nanosecond)
}

// applyActiveDeadline makes st the status of a pod past its deadline, as
// the kubelet's generateAPIPodStatus applies the deadline handler's
// ShouldEvict after the phase from the containers.
func (s *Syncer) applyActiveDeadline(pod *v1.Pod, st *v1.PodStatus) {
	if s.pastDeadline(pod) {
		st.Phase = v1.PodFailed
		st.Reason = deadlineReason
		st.Message = deadlineMessage
	}
}

// failPastDeadline kills a pod past its active deadline and writes its
// final status: phase Failed, reason DeadlineExceeded. Its containers are
// stopped first, by the termination path with the pod's grace period, as
// the kubelet reports a terminal phase only once no container can run. It
// returns SyncPod's results: the pod is terminal.
func (s *Syncer) failPastDeadline(ctx context.Context, pod *v1.Pod) (bool, time.Duration, error) {
	klog.FromContext(ctx).V(2).Info("Pod is past its active deadline, killing it", "activeDeadlineSeconds", *pod.Spec.ActiveDeadlineSeconds, "startTime", pod.Status.StartTime) //nolint:loggercheck // not nil: past the deadline means started
	s.recorder.Event(pod, v1.EventTypeNormal, deadlineReason, deadlineMessage)
	if err := s.SyncTerminatingPod(ctx, pod, podGrace(pod), func(st *v1.PodStatus) { s.applyActiveDeadline(pod, st) }); err != nil {
		return false, 0, err
	}
	return true, 0, nil
}
