package nodecerts

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/util/certificate"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// The kubelet's certificate metrics, under its names.
var (
	clientRenewFailures = metrics.NewCounter(&metrics.CounterOpts{
		Namespace:      "kubelet",
		Subsystem:      "certificate_manager",
		Name:           "client_expiration_renew_errors",
		Help:           "Counter of certificate renewal errors.",
		StabilityLevel: metrics.ALPHA,
	})
	serverRenewFailures = metrics.NewCounter(&metrics.CounterOpts{
		Subsystem:      "kubelet",
		Name:           "server_expiration_renew_errors",
		Help:           "Counter of certificate renewal errors.",
		StabilityLevel: metrics.ALPHA,
	})
	serverRotationAge = metrics.NewHistogram(&metrics.HistogramOpts{
		Subsystem:      "kubelet",
		Name:           "certificate_manager_server_rotation_seconds",
		Help:           "Histogram of the number of seconds the previous certificate lived before being rotated.",
		Buckets:        []float64{60, 3600, 14400, 86400, 604800, 2592000, 7776000, 15552000, 31104000, 124416000},
		StabilityLevel: metrics.ALPHA,
	})
	clientManager, serverManager atomic.Pointer[certificate.Manager]
	registerOnce                 sync.Once
)

func setClientManager(m certificate.Manager) { clientManager.Store(&m) }
func setServerManager(m certificate.Manager) { serverManager.Store(&m) }

// ttl is the seconds until the manager's certificate expires, +Inf without
// one.
func ttl(p *atomic.Pointer[certificate.Manager]) func() float64 {
	return func() float64 {
		if m := p.Load(); m != nil {
			if c := (*m).Current(); c != nil && c.Leaf != nil {
				return math.Trunc(time.Until(c.Leaf.NotAfter).Seconds())
			}
		}
		return math.Inf(1)
	}
}

// RegisterMetrics registers the certificate metrics in the legacy registry
// the node API exposes on /metrics.
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(clientRenewFailures, serverRenewFailures, serverRotationAge)
		legacyregistry.RawMustRegister(
			metrics.NewGaugeFunc(&metrics.GaugeOpts{
				Subsystem:      "kubelet",
				Name:           "certificate_manager_client_ttl_seconds",
				Help:           "Gauge of the TTL (time-to-live) of the Kubelet's client certificate. The value is in seconds until certificate expiry (negative if already expired). If client certificate is invalid or unused, the value will be +INF.",
				StabilityLevel: metrics.ALPHA,
			}, ttl(&clientManager)),
			metrics.NewGaugeFunc(&metrics.GaugeOpts{
				Subsystem:      "kubelet",
				Name:           "certificate_manager_server_ttl_seconds",
				Help:           "Gauge of the shortest TTL (time-to-live) of the Kubelet's serving certificate. The value is in seconds until certificate expiry (negative if already expired). If serving certificate is invalid or unused, the value will be +INF.",
				StabilityLevel: metrics.ALPHA,
			}, ttl(&serverManager)),
		)
	})
}
