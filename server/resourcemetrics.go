package server

import (
	"context"
	"time"

	"github.com/emicklei/go-restful/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// The kubelet's /metrics/resource series (pkg/kubelet/metrics/collectors),
// which metrics-server scrapes. Help strings carry the stability level as
// component-base prints it.
var (
	nodeCPUUsageDesc = prometheus.NewDesc("node_cpu_usage_seconds_total",
		"[STABLE] Cumulative cpu time consumed by the node in core-seconds", nil, nil)
	nodeMemoryUsageDesc = prometheus.NewDesc("node_memory_working_set_bytes",
		"[STABLE] Current working set of the node in bytes", nil, nil)
	containerStartTimeDesc = prometheus.NewDesc("container_start_time_seconds",
		"[STABLE] Start time of the container since unix epoch in seconds", []string{"container", "pod", "namespace"}, nil)
	containerCPUUsageDesc = prometheus.NewDesc("container_cpu_usage_seconds_total",
		"[STABLE] Cumulative cpu time consumed by the container in core-seconds", []string{"container", "pod", "namespace"}, nil)
	containerMemoryUsageDesc = prometheus.NewDesc("container_memory_working_set_bytes",
		"[STABLE] Current working set of the container in bytes", []string{"container", "pod", "namespace"}, nil)
	podCPUUsageDesc = prometheus.NewDesc("pod_cpu_usage_seconds_total",
		"[STABLE] Cumulative cpu time consumed by the pod in core-seconds", []string{"pod", "namespace"}, nil)
	podMemoryUsageDesc = prometheus.NewDesc("pod_memory_working_set_bytes",
		"[STABLE] Current working set of the pod in bytes", []string{"pod", "namespace"}, nil)
	scrapeErrorDesc = prometheus.NewDesc("scrape_error",
		"[ALPHA] (Deprecated since 1.29.0) 1 if there was an error while getting container metrics, 0 otherwise", nil, nil)
	resourceScrapeErrorDesc = prometheus.NewDesc("resource_scrape_error",
		"[STABLE] 1 if there was an error while getting container metrics, 0 otherwise", nil, nil)
)

// resourceCollector reports one CPU-and-memory summary, read for the
// scrape with the request's context, so that nothing outlives its pod.
type resourceCollector struct {
	summary *statsapi.Summary
	err     error
}

var _ prometheus.Collector = (*resourceCollector)(nil)

func (r *resourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{nodeCPUUsageDesc, nodeMemoryUsageDesc, containerStartTimeDesc, containerCPUUsageDesc,
		containerMemoryUsageDesc, podCPUUsageDesc, podMemoryUsageDesc, scrapeErrorDesc, resourceScrapeErrorDesc} {
		ch <- d
	}
}

func (r *resourceCollector) Collect(ch chan<- prometheus.Metric) {
	errs := 0.0
	if r.err != nil {
		errs = 1
	}
	ch <- prometheus.MustNewConstMetric(scrapeErrorDesc, prometheus.GaugeValue, errs)
	ch <- prometheus.MustNewConstMetric(resourceScrapeErrorDesc, prometheus.GaugeValue, errs)
	if r.summary == nil {
		return
	}
	summary := r.summary
	n := summary.Node
	if n.CPU != nil && n.CPU.UsageCoreNanoSeconds != nil {
		ch <- withTime(n.CPU.Time.Time, prometheus.MustNewConstMetric(nodeCPUUsageDesc, prometheus.CounterValue, seconds(*n.CPU.UsageCoreNanoSeconds)))
	}
	if n.Memory != nil && n.Memory.WorkingSetBytes != nil {
		ch <- withTime(n.Memory.Time.Time, prometheus.MustNewConstMetric(nodeMemoryUsageDesc, prometheus.GaugeValue, float64(*n.Memory.WorkingSetBytes)))
	}
	for _, pod := range summary.Pods {
		for _, c := range pod.Containers {
			collectContainer(ch, pod.PodRef, c)
		}
		if pod.CPU != nil && pod.CPU.UsageCoreNanoSeconds != nil {
			ch <- withTime(pod.CPU.Time.Time, prometheus.MustNewConstMetric(podCPUUsageDesc, prometheus.CounterValue,
				seconds(*pod.CPU.UsageCoreNanoSeconds), pod.PodRef.Name, pod.PodRef.Namespace))
		}
		if pod.Memory != nil && pod.Memory.WorkingSetBytes != nil {
			ch <- withTime(pod.Memory.Time.Time, prometheus.MustNewConstMetric(podMemoryUsageDesc, prometheus.GaugeValue,
				float64(*pod.Memory.WorkingSetBytes), pod.PodRef.Name, pod.PodRef.Namespace))
		}
	}
}

func collectContainer(ch chan<- prometheus.Metric, ref statsapi.PodReference, c statsapi.ContainerStats) {
	if c.StartTime.Unix() > 0 {
		ch <- prometheus.MustNewConstMetric(containerStartTimeDesc, prometheus.GaugeValue,
			float64(c.StartTime.UnixNano())/float64(time.Second), c.Name, ref.Name, ref.Namespace)
	}
	if c.CPU != nil && c.CPU.UsageCoreNanoSeconds != nil {
		ch <- withTime(c.CPU.Time.Time, prometheus.MustNewConstMetric(containerCPUUsageDesc, prometheus.CounterValue,
			seconds(*c.CPU.UsageCoreNanoSeconds), c.Name, ref.Name, ref.Namespace))
	}
	if c.Memory != nil && c.Memory.WorkingSetBytes != nil {
		ch <- withTime(c.Memory.Time.Time, prometheus.MustNewConstMetric(containerMemoryUsageDesc, prometheus.GaugeValue,
			float64(*c.Memory.WorkingSetBytes), c.Name, ref.Name, ref.Namespace))
	}
}

// withTime stamps a sample with the time it was read, as the kubelet does;
// a runtime that sent no time (zero or the epoch) leaves it unstamped.
func withTime(t time.Time, m prometheus.Metric) prometheus.Metric {
	if t.IsZero() || t.Unix() <= 0 {
		return m
	}
	return prometheus.NewMetricWithTimestamp(t, m)
}

func seconds(nanos uint64) float64 { return float64(nanos) / float64(time.Second) }

func (s *Server) addResourceMetrics(c *restful.Container) {
	ws := new(restful.WebService).Path("/metrics/resource")
	ws.Route(ws.GET("").To(func(req *restful.Request, resp *restful.Response) {
		ctx, cancel := context.WithTimeout(req.Request.Context(), scrapeTimeout)
		defer cancel()
		summary, err := s.stats.summary(ctx, true)
		if err != nil {
			klog.FromContext(ctx).Error(err, "Getting the summary for resource metrics")
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(&resourceCollector{summary: summary, err: err})
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: promLogger{}, ErrorHandling: promhttp.ContinueOnError}).
			ServeHTTP(resp.ResponseWriter, req.Request)
	}))
	c.Add(ws)
}
