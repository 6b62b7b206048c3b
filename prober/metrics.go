package prober

import (
	"time"

	"k8s.io/component-base/metrics"
)

// Result labels of prober_probe_total, as the kubelet's.
const (
	resultSuccessful = "successful"
	resultFailed     = "failed"
)

// probeMetrics are the kubelet's prober metrics, with its names, labels
// and help. They record nothing until registered.
type probeMetrics struct {
	results  *metrics.CounterVec
	duration *metrics.HistogramVec
}

func newProbeMetrics() *probeMetrics {
	return &probeMetrics{
		results: metrics.NewCounterVec(&metrics.CounterOpts{
			Subsystem:      "prober",
			Name:           "probe_total",
			Help:           "Cumulative number of a liveness, readiness or startup probe for a container by result.",
			StabilityLevel: metrics.BETA,
		}, []string{"probe_type", "result", "container", "pod", "namespace", "pod_uid"}),
		duration: metrics.NewHistogramVec(&metrics.HistogramOpts{
			Subsystem:      "prober",
			Name:           "probe_duration_seconds",
			Help:           "Duration in seconds for a probe response.",
			StabilityLevel: metrics.ALPHA,
		}, []string{"probe_type", "container", "pod", "namespace"}),
	}
}

// observe records one attempt. As the kubelet, only successful attempts
// go into the duration histogram.
func (p *probeMetrics) observe(k key, pod, namespace string, ok bool, took time.Duration) {
	if !ok {
		p.results.WithLabelValues(k.t.String(), resultFailed, k.container, pod, namespace, string(k.uid)).Inc()
		return
	}
	p.results.WithLabelValues(k.t.String(), resultSuccessful, k.container, pod, namespace, string(k.uid)).Inc()
	p.duration.WithLabelValues(k.t.String(), k.container, pod, namespace).Observe(took.Seconds())
}

// observe records an attempt of a worker that is still current, so that
// a worker stopped meanwhile does not bring back its forgotten series.
func (m *Manager) observe(k key, t Target, ok bool, took time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if w, live := m.workers[k]; live && w.containerID == t.ContainerID {
		m.metrics.observe(k, t.Pod.Name, t.Pod.Namespace, ok, took)
	}
}

// forget drops the series of a probe whose container or pod is gone.
func (p *probeMetrics) forget(k key, pod, namespace string) {
	// Delete (not DeleteLabelValues) is a no-op while unregistered.
	labels := map[string]string{"probe_type": k.t.String(), "container": k.container, "pod": pod, "namespace": namespace}
	p.duration.Delete(labels)
	labels["pod_uid"] = string(k.uid)
	for _, r := range []string{resultSuccessful, resultFailed, "unknown"} {
		labels["result"] = r
		p.results.Delete(labels)
	}
}

// Collectors returns the prober's metrics for the caller to register (the
// node API serves them on /metrics/probes):
// prober_probe_total{probe_type,result,container,pod,namespace,pod_uid}
// and prober_probe_duration_seconds{probe_type,container,pod,namespace}.
func (m *Manager) Collectors() []metrics.Registerable {
	return []metrics.Registerable{m.metrics.results, m.metrics.duration}
}
