package podsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/prober"
)

// minGraceAfterPreStop is the least grace period StopContainer gets after
// a preStop hook, as the kubelet's minimumGracePeriodInSeconds.
const minGraceAfterPreStop = 2

// hookHTTPTimeout bounds an httpGet hook that has no deadline otherwise.
const hookHTTPTimeout = 30 * time.Second

// errPostStart marks a failed postStart hook (the kubelet's
// ErrPostStartHook, reason PostStartHookError).
var errPostStart = errors.New("PostStartHookError")

// runHook runs a lifecycle handler in or against a container and returns
// the kubelet's message when it fails.
func (s *Syncer) runHook(ctx context.Context, pod *v1.Pod, c *v1.Container, id, podIP string, h *v1.LifecycleHandler) (string, error) {
	switch {
	case h.Exec != nil:
		var timeout time.Duration // none: the context bounds it
		if d, ok := ctx.Deadline(); ok {
			timeout = max(time.Until(d).Truncate(time.Second), time.Second)
		}
		out, err := prober.Exec(ctx, s.runtime, id, h.Exec.Command, timeout)
		if err != nil {
			return fmt.Sprintf("Exec lifecycle hook (%v) for Container %q in Pod %q failed - error: %v, message: %q", h.Exec.Command, c.Name, klog.KObj(pod), err, out), err
		}
	case h.HTTPGet != nil:
		timeout := hookHTTPTimeout
		if d, ok := ctx.Deadline(); ok {
			timeout = time.Until(d)
		}
		t := prober.Target{Pod: pod, Container: c, ContainerID: id, PodIP: podIP}
		if _, err := prober.HTTPGet(ctx, h.HTTPGet, t, timeout); err != nil {
			return fmt.Sprintf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: %v", h.HTTPGet.Path, c.Name, klog.KObj(pod), err), err
		}
	case h.Sleep != nil:
		timer := s.clock.NewTimer(time.Duration(h.Sleep.Seconds) * time.Second)
		defer timer.Stop()
		select {
		case <-ctx.Done():
			return "Sleep lifecycle hook was interrupted", fmt.Errorf("sleep hook: %w", ctx.Err())
		case <-timer.C():
		}
	case h.TCPSocket != nil:
		klog.FromContext(ctx).V(1).Info("Ignoring tcpSocket lifecycle hook, which is deprecated and never ran", "container", c.Name)
	}
	return "", nil
}

// postStart runs the postStart hook of a container that just started; on
// failure it kills the container and returns errPostStart.
func (s *Syncer) postStart(ctx context.Context, pod *v1.Pod, c *v1.Container, id, podIP string) error {
	if c.Lifecycle == nil || c.Lifecycle.PostStart == nil {
		return nil
	}
	msg, err := s.runHook(ctx, pod, c, id, podIP, c.Lifecycle.PostStart)
	if err == nil {
		return nil
	}
	s.recorder.Event(pod, v1.EventTypeWarning, "FailedPostStartHook", msg)
	s.recorder.Eventf(pod, v1.EventTypeNormal, "Killing", "FailedPostStartHook")
	if kerr := s.stopContainer(ctx, pod, c, id, podIP, podGrace(pod)); kerr != nil {
		klog.FromContext(ctx).Error(kerr, "Killing container after its postStart hook failed", "container", c.Name)
	}
	return fmt.Errorf("%w: %s", errPostStart, msg)
}

// stopContainer runs the container's preStop hook, if any, within the
// grace period, then stops the container with what is left of the period
// (at least minGraceAfterPreStop seconds).
func (s *Syncer) stopContainer(ctx context.Context, pod *v1.Pod, c *v1.Container, id, podIP string, grace int64) error {
	if c != nil && c.Lifecycle != nil && c.Lifecycle.PreStop != nil && grace > 0 {
		start := s.clock.Now()
		hctx, cancel := context.WithTimeout(ctx, time.Duration(grace)*time.Second)
		msg, err := s.runHook(hctx, pod, c, id, podIP, c.Lifecycle.PreStop)
		cancel()
		if err != nil {
			s.recorder.Event(pod, v1.EventTypeWarning, "FailedPreStopHook", msg)
		}
		grace -= int64(s.clock.Since(start) / time.Second)
		if grace < minGraceAfterPreStop {
			grace = minGraceAfterPreStop
		}
	}
	if err := s.runtime.StopContainer(ctx, id, grace); err != nil {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	return nil
}

// specOf returns the spec of a container of the pod by name, or nil.
func specOf(pod *v1.Pod, name string) *v1.Container {
	for _, list := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// isPostStartError reports whether err is a failed postStart hook.
func isPostStartError(err error) bool { return errors.Is(err, errPostStart) }

// hookMessage strips the sentinel prefix off a postStart error.
func hookMessage(err error) string {
	return strings.TrimPrefix(err.Error(), errPostStart.Error()+": ")
}
