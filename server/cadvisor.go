package server

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/emicklei/go-restful/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/nodeagent/nodeagent/cri"
)

// cAdvisor's container labels as the kubelet sets them: id is the cgroup
// path, name the runtime's container ID, image the container's image.
var cadvisorLabels = []string{"container", "id", "image", "name", "namespace", "pod"}

func cadvisorDesc(name, help string, extra ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, append(append([]string{}, cadvisorLabels...), extra...), nil)
}

// The /metrics/cadvisor series nodeagent has data for, with cAdvisor's
// names, help and labels.
var (
	cadvisorCPUUsage       = cadvisorDesc("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.")
	cadvisorMemoryUsage    = cadvisorDesc("container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed")
	cadvisorWorkingSet     = cadvisorDesc("container_memory_working_set_bytes", "Current working set in bytes.")
	cadvisorRSS            = cadvisorDesc("container_memory_rss", "Size of RSS in bytes.")
	cadvisorMemoryFailures = cadvisorDesc("container_memory_failures_total", "Cumulative count of memory allocation failures.", "failure_type", "scope")
	cadvisorRxBytes        = cadvisorDesc("container_network_receive_bytes_total", "Cumulative count of bytes received", "interface")
	cadvisorRxErrors       = cadvisorDesc("container_network_receive_errors_total", "Cumulative count of errors encountered while receiving", "interface")
	cadvisorTxBytes        = cadvisorDesc("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted", "interface")
	cadvisorTxErrors       = cadvisorDesc("container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting", "interface")
	cadvisorProcesses      = cadvisorDesc("container_processes", "Number of processes running inside the container.")
	cadvisorFsUsage        = cadvisorDesc("container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", "device")
	cadvisorFsInodes       = cadvisorDesc("container_fs_inodes_total", "Number of Inodes", "device")
	cadvisorStartTime      = cadvisorDesc("container_start_time_seconds", "Start time of the container since unix epoch in seconds.")
	cadvisorLastSeen       = cadvisorDesc("container_last_seen", "Last time a container was seen by the exporter")
	cadvisorMemoryLimit    = cadvisorDesc("container_spec_memory_limit_bytes", "Memory limit for the container.")
	cadvisorCPUShares      = cadvisorDesc("container_spec_cpu_shares", "CPU share of the container.")
	cadvisorCPUPeriod      = cadvisorDesc("container_spec_cpu_period", "CPU period of the container.")
	cadvisorCPUQuota       = cadvisorDesc("container_spec_cpu_quota", "CPU quota of the container.")
	cadvisorScrapeError    = prometheus.NewDesc("container_scrape_error", "1 if there was an error while getting container metrics, 0 otherwise", nil, nil)

	machineLabels      = []string{"boot_id", "machine_id", "system_uuid"}
	machineCPUCores    = prometheus.NewDesc("machine_cpu_cores", "Number of logical CPU cores.", machineLabels, nil)
	machineMemoryBytes = prometheus.NewDesc("machine_memory_bytes", "Amount of memory installed on the machine.", machineLabels, nil)
)

// cpuPeriod is the CFS period the kubelet gives containers, in µs.
const cpuPeriod = 100000

// cadvisorContainer is what the runtime says of a running container.
type cadvisorContainer struct {
	id, image string
}

// cadvisorCollector reports one full summary in cAdvisor's series: the
// root cgroup ("/"), each pod's cgroup and each running container, plus
// the machine's CPU count and memory size.
type cadvisorCollector struct {
	summary    *statsapi.Summary
	err        error
	containers map[string]cadvisorContainer // pod UID + "/" + container name
	pods       map[types.UID]*v1.Pod
	podCgroup  func(*v1.Pod) string
	machine    machineInfo
	now        time.Time
}

var _ prometheus.Collector = (*cadvisorCollector)(nil)

func (c *cadvisorCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cadvisorCPUUsage, cadvisorMemoryUsage, cadvisorWorkingSet, cadvisorRSS, cadvisorMemoryFailures,
		cadvisorRxBytes, cadvisorRxErrors, cadvisorTxBytes, cadvisorTxErrors, cadvisorProcesses, cadvisorFsUsage, cadvisorFsInodes,
		cadvisorStartTime, cadvisorLastSeen, cadvisorMemoryLimit, cadvisorCPUShares, cadvisorCPUPeriod, cadvisorCPUQuota,
		cadvisorScrapeError, machineCPUCores, machineMemoryBytes} {
		ch <- d
	}
}

func (c *cadvisorCollector) Collect(ch chan<- prometheus.Metric) {
	errs := 0.0
	if c.err != nil {
		errs = 1
	}
	ch <- prometheus.MustNewConstMetric(cadvisorScrapeError, prometheus.GaugeValue, errs)
	m := c.machine
	ch <- prometheus.MustNewConstMetric(machineCPUCores, prometheus.GaugeValue, float64(m.cores), m.bootID, m.machineID, m.systemUUID)
	if m.memory > 0 {
		ch <- prometheus.MustNewConstMetric(machineMemoryBytes, prometheus.GaugeValue, float64(m.memory), m.bootID, m.machineID, m.systemUUID)
	}
	if c.summary == nil {
		return
	}
	root := []string{"", "/", "", "", "", ""}
	c.cpuMemory(ch, root, c.summary.Node.CPU, c.summary.Node.Memory)
	for _, ps := range c.summary.Pods {
		c.collectPod(ch, ps)
	}
}

func (c *cadvisorCollector) collectPod(ch chan<- prometheus.Metric, ps statsapi.PodStats) {
	pod := c.pods[types.UID(ps.PodRef.UID)]
	cgroup := "/pod" + ps.PodRef.UID
	if pod != nil && c.podCgroup != nil {
		cgroup = c.podCgroup(pod)
	}
	labels := []string{"", cgroup, "", "", ps.PodRef.Namespace, ps.PodRef.Name}
	c.cpuMemory(ch, labels, ps.CPU, ps.Memory)
	if n := ps.Network; n != nil {
		ifaces := n.Interfaces
		if len(ifaces) == 0 && n.Name != "" {
			ifaces = []statsapi.InterfaceStats{n.InterfaceStats}
		}
		for _, i := range ifaces {
			l := append(append([]string{}, labels...), i.Name)
			counter(ch, n.Time, cadvisorRxBytes, i.RxBytes, l)
			counter(ch, n.Time, cadvisorRxErrors, i.RxErrors, l)
			counter(ch, n.Time, cadvisorTxBytes, i.TxBytes, l)
			counter(ch, n.Time, cadvisorTxErrors, i.TxErrors, l)
		}
	}
	if ps.ProcessStats != nil && ps.ProcessStats.ProcessCount != nil {
		ch <- prometheus.MustNewConstMetric(cadvisorProcesses, prometheus.GaugeValue, float64(*ps.ProcessStats.ProcessCount), labels...)
	}
	ch <- prometheus.MustNewConstMetric(cadvisorLastSeen, prometheus.GaugeValue, float64(c.now.Unix()), labels...)
	for _, cs := range ps.Containers {
		rc, ok := c.containers[ps.PodRef.UID+"/"+cs.Name]
		if !ok {
			continue
		}
		id := cgroup + "/" + rc.id
		if strings.HasSuffix(cgroup, ".slice") {
			id = cgroup + "/cri-containerd-" + rc.id + ".scope"
		}
		cl := []string{cs.Name, id, rc.image, rc.id, ps.PodRef.Namespace, ps.PodRef.Name}
		c.cpuMemory(ch, cl, cs.CPU, cs.Memory)
		if fs := cs.Rootfs; fs != nil {
			// The writable layer: cAdvisor's device label has no meaning
			// for a snapshot, it stays empty.
			l := append(append([]string{}, cl...), "")
			if fs.UsedBytes != nil {
				ch <- withTime(fs.Time.Time, prometheus.MustNewConstMetric(cadvisorFsUsage, prometheus.GaugeValue, float64(*fs.UsedBytes), l...))
			}
			if fs.InodesUsed != nil {
				ch <- withTime(fs.Time.Time, prometheus.MustNewConstMetric(cadvisorFsInodes, prometheus.GaugeValue, float64(*fs.InodesUsed), l...))
			}
		}
		if cs.StartTime.Unix() > 0 {
			ch <- prometheus.MustNewConstMetric(cadvisorStartTime, prometheus.GaugeValue, float64(cs.StartTime.Unix()), cl...)
		}
		ch <- prometheus.MustNewConstMetric(cadvisorLastSeen, prometheus.GaugeValue, float64(c.now.Unix()), cl...)
		if pod != nil {
			specMetrics(ch, pod, cs.Name, cl)
		}
	}
}

// cpuMemory emits the CPU and memory series of one cgroup.
func (c *cadvisorCollector) cpuMemory(ch chan<- prometheus.Metric, labels []string, cpu *statsapi.CPUStats, mem *statsapi.MemoryStats) {
	if cpu != nil && cpu.UsageCoreNanoSeconds != nil {
		ch <- withTime(cpu.Time.Time, prometheus.MustNewConstMetric(cadvisorCPUUsage, prometheus.CounterValue, seconds(*cpu.UsageCoreNanoSeconds), labels...))
	}
	if mem == nil {
		return
	}
	gauge := func(d *prometheus.Desc, v *uint64) {
		if v != nil {
			ch <- withTime(mem.Time.Time, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(*v), labels...))
		}
	}
	gauge(cadvisorMemoryUsage, mem.UsageBytes)
	gauge(cadvisorWorkingSet, mem.WorkingSetBytes)
	gauge(cadvisorRSS, mem.RSSBytes)
	for _, f := range []struct {
		kind string
		v    *uint64
	}{{"pgfault", mem.PageFaults}, {"pgmajfault", mem.MajorPageFaults}} {
		if f.v != nil {
			l := append(append([]string{}, labels...), f.kind, "container")
			ch <- withTime(mem.Time.Time, prometheus.MustNewConstMetric(cadvisorMemoryFailures, prometheus.CounterValue, float64(*f.v), l...))
		}
	}
}

func counter(ch chan<- prometheus.Metric, t metav1.Time, d *prometheus.Desc, v *uint64, labels []string) {
	if v != nil {
		ch <- withTime(t.Time, prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(*v), labels...))
	}
}

// specMetrics are the container's limits as the kubelet passes them to the
// runtime: memory limit (0 without one), CPU shares from the request and
// the CFS quota from the limit.
func specMetrics(ch chan<- prometheus.Metric, pod *v1.Pod, name string, labels []string) {
	var ctr *v1.Container
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			ctr = &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			ctr = &pod.Spec.InitContainers[i]
		}
	}
	if ctr == nil {
		return
	}
	var memLimit float64
	if q, ok := ctr.Resources.Limits[v1.ResourceMemory]; ok {
		memLimit = float64(q.Value())
	}
	ch <- prometheus.MustNewConstMetric(cadvisorMemoryLimit, prometheus.GaugeValue, memLimit, labels...)
	shares := int64(2)
	if q, ok := ctr.Resources.Requests[v1.ResourceCPU]; ok {
		shares = max(q.MilliValue()*1024/1000, 2)
	} else if q, ok := ctr.Resources.Limits[v1.ResourceCPU]; ok {
		shares = max(q.MilliValue()*1024/1000, 2)
	}
	ch <- prometheus.MustNewConstMetric(cadvisorCPUShares, prometheus.GaugeValue, float64(shares), labels...)
	if q, ok := ctr.Resources.Limits[v1.ResourceCPU]; ok && !q.IsZero() {
		ch <- prometheus.MustNewConstMetric(cadvisorCPUPeriod, prometheus.GaugeValue, cpuPeriod, labels...)
		ch <- prometheus.MustNewConstMetric(cadvisorCPUQuota, prometheus.GaugeValue, float64(max(q.MilliValue()*cpuPeriod/1000, 1000)), labels...)
	}
}

// machineInfo is cAdvisor's machine identity and size.
type machineInfo struct {
	cores                         int
	memory                        uint64
	bootID, machineID, systemUUID string
}

func (h hostReader) machine() machineInfo {
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	m := machineInfo{
		cores:      runtime.NumCPU(),
		bootID:     read(filepath.Join(h.procRoot, "sys/kernel/random/boot_id")),
		machineID:  read("/etc/machine-id"),
		systemUUID: read("/sys/class/dmi/id/product_uuid"),
	}
	if mi, err := readKeyValues(filepath.Join(h.procRoot, "meminfo")); err == nil {
		m.memory = mi["MemTotal:"] * 1024
	}
	return m
}

// addCadvisorMetrics serves /metrics/cadvisor: the full summary (CRI
// stats of the agent's pods and containers, the root cgroups) in
// cAdvisor's series, as far as that data goes. Filesystem I/O, per-CPU
// and pressure series, which need cAdvisor's own cgroup walk, are absent.
func (s *Server) addCadvisorMetrics(c *restful.Container) {
	ws := new(restful.WebService).Path("/metrics/cadvisor")
	ws.Route(ws.GET("").To(func(req *restful.Request, resp *restful.Response) {
		ctx, cancel := context.WithTimeout(req.Request.Context(), scrapeTimeout)
		defer cancel()
		col := s.cadvisorCollector(ctx)
		reg := prometheus.NewRegistry()
		reg.MustRegister(col)
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: promLogger{}, ErrorHandling: promhttp.ContinueOnError}).
			ServeHTTP(resp.ResponseWriter, req.Request)
	}))
	c.Add(ws)
}

func (s *Server) cadvisorCollector(ctx context.Context) *cadvisorCollector {
	logger := klog.FromContext(ctx)
	col := &cadvisorCollector{
		containers: map[string]cadvisorContainer{},
		pods:       map[types.UID]*v1.Pod{},
		podCgroup:  s.deps.PodCgroup,
		machine:    s.stats.host.machine(),
		now:        time.Now(),
	}
	col.summary, col.err = s.stats.summary(ctx, false)
	if col.err != nil {
		logger.Error(col.err, "Getting the summary for cAdvisor metrics")
		return col
	}
	filter := cri.ManagedContainerFilter("")
	filter.State = &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}
	ctrs, err := s.deps.Runtime.ListContainers(ctx, filter)
	if err != nil {
		col.err = err
		logger.Error(err, "Listing containers for cAdvisor metrics")
	}
	for _, ctr := range ctrs {
		if !cri.IsManaged(ctr.Labels) {
			continue
		}
		image := ctr.GetImage().GetUserSpecifiedImage()
		if image == "" {
			image = ctr.GetImage().GetImage()
		}
		col.containers[string(cri.PodUID(ctr.Labels))+"/"+ctr.Labels[cri.ContainerNameLabel]] = cadvisorContainer{id: ctr.Id, image: image}
	}
	for _, p := range s.deps.NodePods() {
		col.pods[p.UID] = p
	}
	return col
}
