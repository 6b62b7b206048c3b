package imagegc

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Reasons of removals, the kubelet's values of the metric's reason label.
const (
	reasonAge   = "age"
	reasonSpace = "space"
)

var (
	// collected is the kubelet's image_garbage_collected_total.
	collected = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      "kubelet",
		Name:           "image_garbage_collected_total",
		Help:           "Total number of images garbage collected by the kubelet, whether through disk usage or image age.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})
	registerOnce sync.Once
)

// RegisterMetrics registers the package's metrics in the legacy registry
// the server exposes on /metrics.
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(collected)
	})
}
