package server

import (
	"context"
	"strings"
	"time"

	"github.com/emicklei/go-restful/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	compbasemetrics "k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/cri"
)

// scrapeTimeout bounds the runtime calls of one scrape.
const scrapeTimeout = 10 * time.Second

var (
	runningPodsDesc = prometheus.NewDesc("kubelet_running_pods",
		"Number of pods that have a running pod sandbox", nil, nil)
	runningContainersDesc = prometheus.NewDesc("kubelet_running_containers",
		"Number of containers currently running", []string{"container_state"}, nil)
)

// metricsCollector reports the kubelet's running pod and container gauges,
// read from the runtime at scrape time (the agent's objects only).
type metricsCollector struct {
	runtime internalapi.RuntimeService
}

var _ prometheus.Collector = (*metricsCollector)(nil)

func newMetricsCollector(rt internalapi.RuntimeService) *metricsCollector {
	return &metricsCollector{runtime: rt}
}

func (m *metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- runningPodsDesc
	ch <- runningContainersDesc
}

func (m *metricsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	sandboxes, err := m.runtime.ListPodSandbox(ctx, cri.ManagedSandboxFilter(""))
	if err != nil {
		ch <- prometheus.NewInvalidMetric(runningPodsDesc, err)
	} else {
		n := 0
		for _, sb := range sandboxes {
			if sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
				n++
			}
		}
		ch <- prometheus.MustNewConstMetric(runningPodsDesc, prometheus.GaugeValue, float64(n))
	}
	containers, err := m.runtime.ListContainers(ctx, cri.ManagedContainerFilter(""))
	if err != nil {
		ch <- prometheus.NewInvalidMetric(runningContainersDesc, err)
		return
	}
	counts := map[string]int{"created": 0, "running": 0, "exited": 0, "unknown": 0}
	for _, c := range containers {
		state := strings.ToLower(strings.TrimPrefix(c.State.String(), "CONTAINER_"))
		counts[state]++
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(runningContainersDesc, prometheus.GaugeValue, float64(n), state)
	}
}

func (s *Server) addMetrics(c *restful.Container) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.metrics)
	// The agent's own metrics (pod start phases, CNI operations) live in
	// component-base's legacy registry.
	gatherers := prometheus.Gatherers{reg, legacyregistry.DefaultGatherer}
	h := promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{ErrorLog: promLogger{}, ErrorHandling: promhttp.ContinueOnError})
	ws := new(restful.WebService).Path("/metrics")
	ws.Route(ws.GET("").To(func(req *restful.Request, resp *restful.Response) {
		h.ServeHTTP(resp.ResponseWriter, req.Request)
	}))
	c.Add(ws)
}

// addProbeMetrics serves /metrics/probes as the kubelet: the prober's
// series and process_start_time_seconds, on a registry of their own.
func (s *Server) addProbeMetrics(c *restful.Container) {
	reg := compbasemetrics.NewKubeRegistry()
	_ = compbasemetrics.RegisterProcessStartTime(reg.Register)
	reg.MustRegister(s.deps.ProbeMetrics...)
	h := compbasemetrics.HandlerFor(reg, compbasemetrics.HandlerOpts{ErrorHandling: compbasemetrics.ContinueOnError})
	ws := new(restful.WebService).Path("/metrics/probes")
	ws.Route(ws.GET("").To(func(req *restful.Request, resp *restful.Response) {
		h.ServeHTTP(resp.ResponseWriter, req.Request)
	}))
	c.Add(ws)
}

// promLogger sends promhttp's errors to klog.
type promLogger struct{}

func (promLogger) Println(v ...any) {
	klog.Background().Info("Metrics scrape error", "msg", v)
}
