package cni

import (
	"time"

	"k8s.io/component-base/metrics"
)

// Operation labels of the metrics.
const (
	opAdd   = "add"
	opDel   = "del"
	opCheck = "check"
)

// operationMetrics are the kubelet's network plugin operation metrics under
// the agent's namespace. They record nothing until registered.
type operationMetrics struct {
	duration *metrics.HistogramVec
	errors   *metrics.CounterVec
}

func newOperationMetrics() *operationMetrics {
	return &operationMetrics{
		duration: metrics.NewHistogramVec(&metrics.HistogramOpts{
			Namespace:      "nodeagent",
			Name:           "network_plugin_operations_duration_seconds",
			Help:           "Duration in seconds of CNI operations (add, del, check) on pod sandboxes.",
			Buckets:        metrics.ExponentialBuckets(0.005, 2, 14),
			StabilityLevel: metrics.ALPHA,
		}, []string{"operation_type"}),
		errors: metrics.NewCounterVec(&metrics.CounterOpts{
			Namespace:      "nodeagent",
			Name:           "network_plugin_operations_errors_total",
			Help:           "Number of failed CNI operations (add, del, check) on pod sandboxes.",
			StabilityLevel: metrics.ALPHA,
		}, []string{"operation_type"}),
	}
}

func (o *operationMetrics) observe(op string, start time.Time, err error) {
	o.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil {
		o.errors.WithLabelValues(op).Inc()
	}
}

// Collectors returns the manager's metrics, for the caller to register on
// its registry (for example legacyregistry.MustRegister(m.Collectors()...)):
// nodeagent_network_plugin_operations_duration_seconds{operation_type} and
// nodeagent_network_plugin_operations_errors_total{operation_type}.
func (m *Manager) Collectors() []metrics.Registerable {
	return []metrics.Registerable{m.metrics.duration, m.metrics.errors}
}
