package prober

import (
	"context"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// run is the goroutine of one probe of one container instance.
func (m *Manager) run(ctx context.Context, k key, p *v1.Probe, t Target, startedAt time.Time, hasStartup bool, trigger <-chan struct{}) {
	logger := klog.FromContext(ctx)
	if d := startedAt.Add(time.Duration(p.InitialDelaySeconds) * time.Second).Sub(m.cfg.Clock.Now()); d > 0 {
		timer := m.cfg.Clock.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C():
		}
	}
	ticker := m.cfg.Clock.NewTicker(seconds(p.PeriodSeconds, 10))
	defer ticker.Stop()
	successThreshold, failureThreshold := int(p.SuccessThreshold), int(p.FailureThreshold)
	if successThreshold <= 0 {
		successThreshold = 1
	}
	if failureThreshold <= 0 {
		failureThreshold = 3
	}
	var successes, failures int
	for {
		// Liveness and readiness wait for the startup probe.
		if k.t == Startup || !hasStartup || m.Started(k.uid, k.container, t.ContainerID) {
			start := m.cfg.Clock.Now()
			res := m.cfg.Probe(ctx, p, t)
			if ctx.Err() != nil {
				return
			}
			ok, out := res.OK, res.Output
			m.observe(k, t, ok, m.cfg.Clock.Since(start))
			if ok {
				successes, failures = successes+1, 0
				if res.Warning && m.cfg.Recorder != nil {
					m.cfg.Recorder.Eventf(t.Pod, v1.EventTypeWarning, "ProbeWarning", "%s probe warning: %s", k.t, out)
				}
			} else {
				successes, failures = 0, failures+1
				logger.V(1).Info("Probe failed", "output", out)
				if m.cfg.Recorder != nil {
					m.cfg.Recorder.Eventf(t.Pod, v1.EventTypeWarning, "Unhealthy", "%s probe failed: %s", k.t, out)
				}
			}
			switch {
			case ok && successes >= successThreshold:
				if m.set(k, t.ContainerID, true) {
					logger.V(2).Info("Probe succeeded")
					m.cfg.Wake(k.uid)
				}
				if k.t == Startup {
					m.triggerReadiness(k, t.ContainerID)
					return // started: not probed again for this instance
				}
			case !ok && failures >= failureThreshold:
				if k.t == Liveness || k.t == Startup {
					// The pod's worker kills the container (Failed).
					if m.record(k, result{containerID: t.ContainerID, failed: true, output: out}) {
						m.cfg.Wake(k.uid)
					}
					return // the next instance gets new workers
				}
				if m.set(k, t.ContainerID, false) {
					m.cfg.Wake(k.uid)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
		case <-trigger:
		}
	}
}
