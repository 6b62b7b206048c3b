package podsync

import (
	"sync"
	"time"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

var (
	// phaseDuration is nodeagent's breakdown of pod start.
	phaseDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Name:           "nodeagent_pod_start_phase_duration_seconds",
		Help:           "Duration of each phase of pod start: volumes, sandbox (RunPodSandbox), network (CNI ADD by the agent), image, create, start (per container) and status (the status write).",
		Buckets:        metrics.ExponentialBuckets(0.001, 2, 16),
		StabilityLevel: metrics.ALPHA,
	}, []string{"phase"})
	// podStartSLI is the kubelet's pod start SLI: pod creation to all
	// containers running as the agent sees it.
	podStartSLI = metrics.NewHistogram(&metrics.HistogramOpts{
		Subsystem:      "kubelet",
		Name:           "pod_start_sli_duration_seconds",
		Help:           "Duration in seconds to start a pod, excluding time to pull images and run init containers, measured from pod creation timestamp to when all its containers are reported as started and observed via watch",
		Buckets:        []float64{0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600},
		StabilityLevel: metrics.ALPHA,
	})
	// The kubelet's image volume counters (incrementImageVolumeMetrics):
	// per start of a container that mounts image volumes, the volumes it
	// got, and per such mount whether the runtime mounted it.
	imageVolumeRequested = metrics.NewCounter(&metrics.CounterOpts{
		Subsystem:      "kubelet",
		Name:           "image_volume_requested_total",
		Help:           "Number of requested image volumes.",
		StabilityLevel: metrics.BETA,
	})
	imageVolumeMounted = metrics.NewCounter(&metrics.CounterOpts{
		Subsystem:      "kubelet",
		Name:           "image_volume_mounted_succeed_total",
		Help:           "Number of successful image volume mounts.",
		StabilityLevel: metrics.BETA,
	})
	imageVolumeMountErrors = metrics.NewCounter(&metrics.CounterOpts{
		Subsystem:      "kubelet",
		Name:           "image_volume_mounted_errors_total",
		Help:           "Number of failed image volume mounts.",
		StabilityLevel: metrics.BETA,
	})
	registerOnce sync.Once
)

// RegisterMetrics registers podsync's metrics in the legacy registry the
// server exposes on /metrics.
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(phaseDuration, podStartSLI, imageVolumeRequested, imageVolumeMounted, imageVolumeMountErrors)
	})
}

func observePhase(phase string, since time.Time) {
	phaseDuration.WithLabelValues(phase).Observe(time.Since(since).Seconds())
}
