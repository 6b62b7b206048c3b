package server

import (
	"encoding/json"
	"errors"
	"k8s.io/apimachinery/pkg/types"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critesting "k8s.io/cri-api/pkg/apis/testing"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// writeFiles creates files (path relative to root → content).
func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, body := range files {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const testMeminfo = "MemTotal:       4000 kB\nMemFree:        1000 kB\nBuffers: 1 kB\n"

// fakeHost is a cgroup v1 host: 5 s of CPU, 3000 bytes used of which 1000
// inactive file pages, 4000 KiB of memory.
func fakeHost(t *testing.T) hostReader {
	t.Helper()
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"cgroup/cpuacct/cpuacct.usage":        "5000000000\n",
		"cgroup/memory/memory.usage_in_bytes": "3000\n",
		"cgroup/memory/memory.stat":           "cache 5\ntotal_inactive_file 1000\ntotal_rss 1500\ntotal_pgfault 7\ntotal_pgmajfault 2\n",
		"proc/meminfo":                        testMeminfo,
		"proc/stat":                           "cpu  1 2 3\nbtime 1700000000\n",
		"proc/sys/kernel/pid_max":             "4096\n",
	})
	return hostReader{cgroupRoot: filepath.Join(root, "cgroup"), procRoot: filepath.Join(root, "proc")}
}

func u64(v uint64) *runtimeapi.UInt64Value { return &runtimeapi.UInt64Value{Value: v} }

func containerStat(id string, cpu, ws uint64) *runtimeapi.ContainerStats {
	ts := time.Unix(1700000100, 0).UnixNano()
	return &runtimeapi.ContainerStats{
		Attributes:    &runtimeapi.ContainerAttributes{Id: id, Metadata: &runtimeapi.ContainerMetadata{Name: "c1"}},
		Cpu:           &runtimeapi.CpuUsage{Timestamp: ts, UsageCoreNanoSeconds: u64(cpu)},
		Memory:        &runtimeapi.MemoryUsage{Timestamp: ts, WorkingSetBytes: u64(ws), UsageBytes: u64(ws + 10)},
		WritableLayer: &runtimeapi.FilesystemUsage{Timestamp: ts, UsedBytes: u64(4096), InodesUsed: u64(3)},
	}
}

func statsFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, false)
	f.srv.stats.host = fakeHost(t)
	f.srv.stats.rootDir = t.TempDir()
	f.srv.stats.volumes = newVolumeUsage(f.srv.stats.rootDir)
	vols := filepath.Join("pods", string(testUID), "volumes")
	writeFiles(t, f.srv.stats.rootDir, map[string]string{
		filepath.Join(vols, "kubernetes.io~empty-dir", "data", "a"):     strings.Repeat("x", 10000),
		filepath.Join(vols, "kubernetes.io~empty-dir", "data", "sub/b"): "y",
		filepath.Join(vols, "kubernetes.io~secret", "tok", "token"):     "secret",
	})
	images := critesting.NewFakeImageService()
	images.SetFakeFilesystemUsage([]*runtimeapi.FilesystemUsage{{
		Timestamp: time.Unix(1700000100, 0).UnixNano(), FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: t.TempDir()},
		UsedBytes: u64(1000), InodesUsed: u64(10),
	}})
	f.srv.stats.images = images
	// The pod's cgroup (CPU, memory, limit, processes: two in its running
	// container's cgroup count, the pause's and the pod's own do not) and
	// its sandbox's network namespace.
	pod := "/kubepods/besteffort/pod" + string(testUID)
	writeFiles(t, filepath.Dir(f.srv.stats.host.cgroupRoot), map[string]string{
		"cgroup/cpuacct" + pod + "/cpuacct.usage":        "3000000000\n",
		"cgroup/memory" + pod + "/memory.usage_in_bytes": "1148576\n",
		"cgroup/memory" + pod + "/memory.stat":           "total_inactive_file 100000\ntotal_rss 900000\ntotal_pgfault 5\ntotal_pgmajfault 1\n",
		"cgroup/memory" + pod + "/memory.limit_in_bytes": "2097152\n",
		"cgroup/memory" + pod + "/cgroup.procs":          "10\n",
		"cgroup/memory" + pod + "/cur/cgroup.procs":      "11\n12\n",
		"cgroup/memory" + pod + "/sb1/cgroup.procs":      "13\n", // the pause: not counted
		"proc/42/net/dev": "Inter-|   Receive                                                |  Transmit\n" +
			" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n" +
			"    lo:     500       5    0    0    0     0          0         0      500       5    0    0    0     0       0          0\n" +
			"  eth0:      11       1    3    0    0     0          0         0       22       2    4    0    0     0       0          0\n",
	})
	f.srv.stats.podCgroup = func(uid types.UID) (string, bool) { return pod, uid == testUID }
	f.srv.stats.pids.byID["sb1"] = 42
	// The exited container has stats too; only running ones count.
	f.rt.SetFakeContainerStats([]*runtimeapi.ContainerStats{containerStat("cur", 2e9, 512<<10), containerStat("old", 9e9, 1)})
	return f
}

func getSummary(t *testing.T, f *fixture, target string) statsapi.Summary {
	t.Helper()
	w := f.do("GET", target)
	if w.Code != 200 {
		t.Fatalf("%s: %d %s", target, w.Code, w.Body)
	}
	var s statsapi.Summary
	if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil {
		t.Fatalf("decode %s: %v", w.Body, err)
	}
	return s
}

func TestSummary(t *testing.T) {
	f := statsFixture(t)
	s := getSummary(t, f, "/stats/summary")
	n := s.Node
	if n.NodeName != "node1" || n.StartTime.Unix() != 1700000000 {
		t.Errorf("node: %+v", n)
	}
	if *n.CPU.UsageCoreNanoSeconds != 5e9 || n.CPU.UsageNanoCores != nil {
		t.Errorf("node cpu: %+v", n.CPU)
	}
	m := n.Memory
	if *m.UsageBytes != 3000 || *m.WorkingSetBytes != 2000 || *m.AvailableBytes != 4000*1024-2000 || *m.RSSBytes != 1500 || *m.MajorPageFaults != 2 {
		t.Errorf("node memory: usage %d ws %d avail %d rss %d", *m.UsageBytes, *m.WorkingSetBytes, *m.AvailableBytes, *m.RSSBytes)
	}
	if n.Fs == nil || *n.Fs.CapacityBytes == 0 || n.Rlimit == nil || *n.Rlimit.MaxPID != 4096 {
		t.Errorf("node fs %+v rlimit %+v", n.Fs, n.Rlimit)
	}
	if len(s.Pods) != 1 {
		t.Fatalf("pods: %+v", s.Pods)
	}
	p := s.Pods[0]
	if p.PodRef != (statsapi.PodReference{Name: "pod1", Namespace: "ns1", UID: string(testUID)}) {
		t.Errorf("podRef %+v", p.PodRef)
	}
	if *p.CPU.UsageCoreNanoSeconds != 3e9 || *p.Memory.WorkingSetBytes != 1<<20 || *p.Memory.RSSBytes != 900000 ||
		*p.Memory.AvailableBytes != 2097152-1<<20 || *p.Memory.MajorPageFaults != 1 {
		t.Errorf("pod cpu %+v memory %+v", p.CPU, p.Memory)
	}
	if p.Network == nil || p.Network.Name != "eth0" || *p.Network.RxBytes != 11 || *p.Network.TxErrors != 4 || len(p.Network.Interfaces) != 1 ||
		*p.ProcessStats.ProcessCount != 2 {
		t.Errorf("pod network %+v process %+v", p.Network, p.ProcessStats)
	}
	if len(p.Containers) != 1 {
		t.Fatalf("containers: %+v", p.Containers)
	}
	c := p.Containers[0]
	if c.Name != "c1" || *c.CPU.UsageCoreNanoSeconds != 2e9 || *c.Memory.WorkingSetBytes != 512<<10 || *c.Rootfs.UsedBytes != 4096 {
		t.Errorf("container %+v cpu %+v memory %+v", c, c.CPU, c.Memory)
	}
	// The fixture's c1 logs: 0.log and 1.log.
	if c.Logs == nil || *c.Logs.InodesUsed != 2 || *c.Logs.UsedBytes == 0 {
		t.Errorf("container logs %+v", c.Logs)
	}
	if c.Rootfs.CapacityBytes == nil || *c.Rootfs.CapacityBytes == 0 {
		t.Errorf("container rootfs without the image filesystem's capacity: %+v", c.Rootfs)
	}
	if rt := n.Runtime; rt == nil || rt.ImageFs == nil || *rt.ImageFs.UsedBytes != 1000 || *rt.ImageFs.InodesUsed != 10 ||
		rt.ImageFs.CapacityBytes == nil || rt.ContainerFs == nil {
		t.Errorf("node runtime fs: %+v", n.Runtime)
	}
	if len(p.VolumeStats) != 2 || p.VolumeStats[0].Name != "data" || p.VolumeStats[1].Name != "tok" {
		t.Fatalf("volume stats: %+v", p.VolumeStats)
	}
	data := p.VolumeStats[0]
	// a, sub, sub/b and the directory itself; 10000 bytes take ≥ 3 blocks.
	if *data.InodesUsed != 4 || *data.UsedBytes < 10000 || data.CapacityBytes == nil {
		t.Errorf("emptyDir stats: used %d inodes %d", *data.UsedBytes, *data.InodesUsed)
	}
	// Ephemeral storage: writable layer + logs + the emptyDir, not the secret.
	want := *c.Rootfs.UsedBytes + *c.Logs.UsedBytes + *data.UsedBytes
	if e := p.EphemeralStorage; e == nil || *e.UsedBytes != want || *e.InodesUsed != 3+2+4 || e.CapacityBytes == nil {
		t.Errorf("ephemeral storage %+v, want used %d inodes 9", e, want)
	}

	only := getSummary(t, f, "/stats/summary?only_cpu_and_memory=true")
	if only.Node.Fs != nil || only.Node.Rlimit != nil || only.Pods[0].Network != nil || only.Pods[0].Containers[0].Logs != nil {
		t.Errorf("only_cpu_and_memory: %+v", only)
	}
	if only.Pods[0].Containers[0].CPU == nil || only.Node.Memory == nil {
		t.Errorf("only_cpu_and_memory lost cpu or memory: %+v", only)
	}
	if w := f.do("POST", "/stats/summary"); w.Code != 200 {
		t.Errorf("POST: %d", w.Code)
	}
	if w := f.do("GET", "/stats/nope"); w.Code != 404 {
		t.Errorf("unknown stats path: %d", w.Code)
	}
}

// The pod's ephemeral storage counts its volumes by their spec, as the
// kubelet's util.IsLocalEphemeralVolume: an emptyDir of the default
// medium and a configMap, not an emptyDir of medium HugePages or Memory
// (a hugetlbfs or tmpfs, which the directories here are not, so only the
// spec tells them apart) nor a secret. Without the pod's spec, the
// directories say it: a plain emptyDir directory counts.
func TestSummaryEphemeralVolumesBySpec(t *testing.T) {
	f := statsFixture(t)
	vols := filepath.Join("pods", string(testUID), "volumes")
	writeFiles(t, f.srv.stats.rootDir, map[string]string{
		filepath.Join(vols, "kubernetes.io~empty-dir", "huge", "g"): strings.Repeat("h", 20000),
		filepath.Join(vols, "kubernetes.io~empty-dir", "mem", "m"):  strings.Repeat("m", 30000),
		filepath.Join(vols, "kubernetes.io~configmap", "cm", "k"):   "v",
	})
	emptyDir := func(name string, medium v1.StorageMedium) v1.Volume {
		return v1.Volume{Name: name, VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: medium}}}
	}
	pod := &v1.Pod{}
	pod.UID = testUID
	pod.Spec.Volumes = []v1.Volume{
		emptyDir("data", v1.StorageMediumDefault),
		emptyDir("huge", v1.StorageMediumHugePagesPrefix+"2Mi"),
		emptyDir("mem", v1.StorageMediumMemory),
		{Name: "cm", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{}}},
		{Name: "tok", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{}}},
	}
	for _, tc := range []struct {
		name      string
		pods      []*v1.Pod
		ephemeral []string
	}{
		{"spec", []*v1.Pod{pod}, []string{"cm", "data"}},
		{"no spec", nil, []string{"cm", "data", "huge", "mem"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.srv.stats.pods = func() []*v1.Pod { return tc.pods }
			p := getSummary(t, f, "/stats/summary").Pods[0]
			c := p.Containers[0]
			want := *c.Rootfs.UsedBytes + *c.Logs.UsedBytes
			byName := map[string]statsapi.VolumeStats{}
			for _, v := range p.VolumeStats {
				byName[v.Name] = v
			}
			for _, name := range tc.ephemeral {
				want += *byName[name].UsedBytes
			}
			if len(byName) != 5 {
				t.Fatalf("volume stats: %+v", p.VolumeStats)
			}
			if e := p.EphemeralStorage; e == nil || *e.UsedBytes != want {
				t.Errorf("ephemeral storage %+v, want used %d (writable layer, logs, %v)", e, want, tc.ephemeral)
			}
		})
	}
}

// A pod whose cgroup the agent does not know (no cgroupsPerQOS), and a
// sandbox the runtime tells no process of: the pod's CPU and memory are
// its containers' sums, no network, no process count.
func TestSummaryWithoutPodCgroup(t *testing.T) {
	f := statsFixture(t)
	f.srv.stats.podCgroup = nil
	delete(f.srv.stats.pids.byID, "sb1")
	s := getSummary(t, f, "/stats/summary")
	p := s.Pods[0]
	if len(p.Containers) != 1 || *p.Containers[0].CPU.UsageCoreNanoSeconds != 2e9 {
		t.Fatalf("containers: %+v", p.Containers)
	}
	if *p.CPU.UsageCoreNanoSeconds != 2e9 || *p.Memory.WorkingSetBytes != 512<<10 {
		t.Errorf("pod sums: cpu %+v memory %+v", p.CPU, p.Memory)
	}
	if p.Network != nil || p.ProcessStats != nil {
		t.Errorf("network %+v process %+v without a process or a cgroup", p.Network, p.ProcessStats)
	}
	f.rt.InjectError("ListPodSandbox", errors.New("runtime down"))
	if w := f.do("GET", "/stats/summary"); w.Code != 500 {
		t.Errorf("runtime error: %d %s", w.Code, w.Body)
	}
}

func TestResourceMetrics(t *testing.T) {
	f := statsFixture(t)
	w := f.do("GET", "/metrics/resource")
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	body := w.Body.String()
	for _, want := range []string{
		"node_cpu_usage_seconds_total 5 ",
		"node_memory_working_set_bytes 2000 ",
		`container_cpu_usage_seconds_total{container="c1",namespace="ns1",pod="pod1"} 2 1700000100000`,
		`container_memory_working_set_bytes{container="c1",namespace="ns1",pod="pod1"} 524288 `,
		`pod_cpu_usage_seconds_total{namespace="ns1",pod="pod1"} 3 `,
		`pod_memory_working_set_bytes{namespace="ns1",pod="pod1"} 1.048576e+06 `,
		"scrape_error 0\n",
		"resource_scrape_error 0\n",
		"# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %q in\n%s", want, body)
		}
	}
	// The fixture's container was created 1ns after the epoch: no start time, as the kubelet.
	if strings.Contains(body, "container_start_time_seconds{") {
		t.Errorf("start time of a container created at the epoch:\n%s", body)
	}
	f.rt.InjectError("ListPodSandbox", errors.New("runtime down"))
	if body := f.do("GET", "/metrics/resource").Body.String(); !strings.Contains(body, "scrape_error 1\n") || strings.Contains(body, "node_cpu") {
		t.Errorf("on error:\n%s", body)
	}
}

func TestHostReader(t *testing.T) {
	tests := []struct {
		name                        string
		files                       map[string]string
		cpu, usage, workingSet, rss uint64
		wantErr                     bool
	}{
		{"v1", map[string]string{
			"cgroup/cpuacct/cpuacct.usage":        "42\n",
			"cgroup/memory/memory.usage_in_bytes": "100\n",
			"cgroup/memory/memory.stat":           "total_inactive_file 30\ntotal_rss 60\n",
		}, 42, 100, 70, 60, false},
		{"v1 inactive above usage", map[string]string{
			"cgroup/cpuacct/cpuacct.usage":        "1\n",
			"cgroup/memory/memory.usage_in_bytes": "10\n",
			"cgroup/memory/memory.stat":           "total_inactive_file 30\n",
		}, 1, 10, 0, 0, false},
		{"v2 with memory.current", map[string]string{
			"cgroup/cgroup.controllers": "cpu memory\n",
			"cgroup/cpu.stat":           "usage_usec 7\nuser_usec 5\n",
			"cgroup/memory.current":     "200\n",
			"cgroup/memory.stat":        "anon 50\ninactive_file 20\n",
		}, 7000, 200, 180, 50, false},
		{"v2 root from meminfo", map[string]string{
			"cgroup/cgroup.controllers": "cpu memory\n",
			"cgroup/cpu.stat":           "usage_usec 7\n",
			"cgroup/memory.stat":        "inactive_file 1024\n",
		}, 7000, 3000 * 1024, 3000*1024 - 1024, 0, false},
		{"v1 missing files", map[string]string{}, 0, 0, 0, 0, true},
		{"v1 garbage", map[string]string{
			"cgroup/cpuacct/cpuacct.usage": "lots\n",
		}, 0, 0, 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tc.files["proc/meminfo"] = testMeminfo
			writeFiles(t, root, tc.files)
			u, err := hostReader{cgroupRoot: filepath.Join(root, "cgroup"), procRoot: filepath.Join(root, "proc")}.usage()
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v", err)
			}
			if tc.wantErr {
				return
			}
			if u.cpuNanos != tc.cpu || u.memUsage != tc.usage || u.workingSet != tc.workingSet || u.rss != tc.rss || u.memTotal != 4000*1024 {
				t.Errorf("got %+v", u)
			}
		})
	}
}

func TestCPURates(t *testing.T) {
	c := newCPURates()
	t0 := time.Unix(1000, 0)
	if r := c.nanoCores("a", 1e9, t0); r != nil {
		t.Fatalf("first sample: %d", *r)
	}
	r := c.nanoCores("a", 3e9, t0.Add(4*time.Second))
	if r == nil || *r != 5e8 {
		t.Fatalf("half a core: %v", r)
	}
	// Too soon: the previous rate again.
	if r2 := c.nanoCores("a", 9e9, t0.Add(4500*time.Millisecond)); r2 == nil || *r2 != 5e8 {
		t.Fatalf("within the window: %v", r2)
	}
	// A counter going back (a new container under the same key) restarts.
	if r := c.nanoCores("a", 1, t0.Add(10*time.Second)); r != nil {
		t.Fatalf("after reset: %d", *r)
	}
	c.nanoCores("b", 1, t0.Add(time.Hour))
	if _, ok := c.samples["a"]; ok {
		t.Errorf("stale sample kept")
	}
}

func TestCadvisorMetrics(t *testing.T) {
	f := statsFixture(t)
	f.srv.deps.PodCgroup = func(p *v1.Pod) string { return "/kubepods/besteffort/pod" + string(p.UID) }
	w := f.do("GET", "/metrics/cadvisor")
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	body := w.Body.String()
	pod := `container="",id="/kubepods/besteffort/poduid-1",image="",name="",namespace="ns1",pod="pod1"`
	ctr := `container="c1",id="/kubepods/besteffort/poduid-1/cur",image="",name="cur",namespace="ns1",pod="pod1"`
	for _, want := range []string{
		`container_cpu_usage_seconds_total{container="",id="/",image="",name="",namespace="",pod=""} 5 `,
		`container_memory_working_set_bytes{container="",id="/",image="",name="",namespace="",pod=""} 2000 `,
		`container_cpu_usage_seconds_total{` + pod + `} 3 `,
		`container_network_receive_bytes_total{container="",id="/kubepods/besteffort/poduid-1",image="",interface="eth0",name="",namespace="ns1",pod="pod1"} 11 `,
		`container_network_transmit_bytes_total{container="",id="/kubepods/besteffort/poduid-1",image="",interface="eth0",name="",namespace="ns1",pod="pod1"} 22 `,
		`container_processes{` + pod + `} 2`,
		`container_cpu_usage_seconds_total{` + ctr + `} 2 1700000100000`,
		`container_memory_working_set_bytes{` + ctr + `} 524288 `,
		`container_fs_usage_bytes{container="c1",device="",id="/kubepods/besteffort/poduid-1/cur",image="",name="cur",namespace="ns1",pod="pod1"} 4096 `,
		`container_spec_memory_limit_bytes{` + ctr + `} 0`,
		`container_spec_cpu_shares{` + ctr + `} 2`,
		"container_scrape_error 0\n",
		"# TYPE machine_cpu_cores gauge",
		"machine_memory_bytes{",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %q in\n%s", want, body)
		}
	}
	f.rt.InjectError("ListPodSandbox", errors.New("runtime down"))
	if body := f.do("GET", "/metrics/cadvisor").Body.String(); !strings.Contains(body, "container_scrape_error 1\n") {
		t.Errorf("on error:\n%s", body)
	}
}

func TestProbeMetricsRoute(t *testing.T) {
	f := newFixture(t, false)
	body := f.do("GET", "/metrics/probes").Body.String()
	if !strings.Contains(body, "process_start_time_seconds") {
		t.Errorf("/metrics/probes:\n%s", body)
	}
}

func TestPprofRoutes(t *testing.T) {
	f := newFixture(t, false)
	for path, want := range map[string]string{
		"/debug/pprof/":                  "goroutine",
		"/debug/pprof/cmdline":           "",
		"/debug/pprof/goroutine?debug=1": "goroutine profile",
		"/debug/pprof/heap?debug=1":      "heap profile",
		"/debug/pprof/symbol":            "num_symbols",
	} {
		w := f.do("GET", path)
		if w.Code != 200 || !strings.Contains(w.Body.String(), want) {
			t.Errorf("%s: %d %.200s", path, w.Code, w.Body)
		}
	}
}
