package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/emicklei/go-restful/v3"
	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/nodeagent/nodeagent/cri"
)

// statsProvider builds the kubelet's stats v1alpha1 Summary: pods and
// containers from the runtime's CRI stats, the node from its root cgroups.
type statsProvider struct {
	nodeName   string
	rootDir    string
	podLogsDir string
	runtime    internalapi.RuntimeService
	images     internalapi.ImageManagerService // may be nil
	host       hostReader
	rates      *cpuRates
	volumes    *volumeUsage
	podCgroup  func(types.UID) (string, bool) // may be nil
	pids       *sandboxPIDs
	// pods are the pods bound to the node, whose specs say which volumes
	// count as local ephemeral storage.
	pods func() []*v1.Pod
}

func newStatsProvider(cfg Config, rt internalapi.RuntimeService, images internalapi.ImageManagerService, pods func() []*v1.Pod) *statsProvider {
	return &statsProvider{
		nodeName:   cfg.NodeName,
		rootDir:    cfg.RootDir,
		podLogsDir: cfg.PodLogsDir,
		runtime:    rt,
		images:     images,
		host:       hostReader{cgroupRoot: "/sys/fs/cgroup", procRoot: "/proc"},
		rates:      newCPURates(),
		volumes:    newVolumeUsage(cfg.RootDir),
		podCgroup:  cfg.PodCgroup,
		pids:       newSandboxPIDs(rt),
		pods:       pods,
	}
}

func (s *Server) addStats(c *restful.Container) {
	ws := new(restful.WebService).Path("/stats").Produces(restful.MIME_JSON)
	for _, method := range []string{"GET", "POST"} {
		ws.Route(ws.Method(method).Path("/summary").To(s.getSummary))
	}
	c.Add(ws)
}

// getSummary serves /stats/summary; only_cpu_and_memory=true restricts it
// to what resource metrics need, as the kubelet.
func (s *Server) getSummary(req *restful.Request, resp *restful.Response) {
	ctx := req.Request.Context()
	logger := klog.FromContext(ctx)
	if err := req.Request.ParseForm(); err != nil {
		writeError(logger, resp, fmt.Errorf("parse form: %w: %w", err, errBadRequest))
		return
	}
	v := req.Request.Form["only_cpu_and_memory"]
	summary, err := s.stats.summary(ctx, len(v) == 1 && v[0] == "true")
	if err != nil {
		writeError(logger, resp, err)
		return
	}
	writeJSON(logger, resp, summary)
}

// Summary is what /stats/summary serves (only CPU and memory when
// cpuAndMemoryOnly), for the eviction manager.
func (s *Server) Summary(ctx context.Context, cpuAndMemoryOnly bool) (*statsapi.Summary, error) {
	return s.stats.summary(ctx, cpuAndMemoryOnly)
}

// summary is the node's and its pods' stats. A failure to read the node
// is logged and leaves the node's fields empty; a runtime failure fails.
func (p *statsProvider) summary(ctx context.Context, cpuAndMemoryOnly bool) (*statsapi.Summary, error) {
	var imageFs *fsInfo
	if !cpuAndMemoryOnly {
		imageFs = p.imageFs(ctx)
	}
	pods, err := p.podStats(ctx, cpuAndMemoryOnly, imageFs)
	if err != nil {
		return nil, err
	}
	node := p.nodeStats(ctx, cpuAndMemoryOnly)
	if imageFs != nil {
		node.Runtime = &statsapi.RuntimeStats{ImageFs: imageFs.image, ContainerFs: imageFs.container}
	}
	return &statsapi.Summary{Node: node, Pods: pods}, nil
}

// fsInfo is the runtime's filesystems: the images' and the containers'
// writable layers' (the same one unless the runtime splits them), each
// with its usage by the runtime and its filesystem's size.
type fsInfo struct {
	image, container *statsapi.FsStats
}

// imageFs asks the runtime for its filesystems (CRI ImageFsInfo); nil if
// there is no image service or it fails.
func (p *statsProvider) imageFs(ctx context.Context) *fsInfo {
	if p.images == nil {
		return nil
	}
	resp, err := p.images.ImageFsInfo(ctx)
	if err != nil {
		klog.FromContext(ctx).V(2).Info("ImageFsInfo failed; the summary has no image filesystem", "err", err)
		return nil
	}
	info := &fsInfo{image: runtimeFs(resp.GetImageFilesystems())}
	if info.image == nil {
		return nil
	}
	info.container = runtimeFs(resp.GetContainerFilesystems())
	if info.container == nil {
		info.container = info.image
	}
	return info
}

// runtimeFs sums the runtime's usage of its filesystems and takes size and
// free space from the first one's mount point.
func runtimeFs(all []*runtimeapi.FilesystemUsage) *statsapi.FsStats {
	if len(all) == 0 {
		return nil
	}
	var used, inodesUsed uint64
	var ts int64
	for _, u := range all {
		used += u.GetUsedBytes().GetValue()
		inodesUsed += u.GetInodesUsed().GetValue()
		ts = max(ts, u.GetTimestamp())
	}
	out := &statsapi.FsStats{Time: metav1.NewTime(time.Unix(0, ts)), UsedBytes: ptrTo(used), InodesUsed: ptrTo(inodesUsed)}
	if mp := all[0].GetFsId().GetMountpoint(); mp != "" {
		if u, err := statfs(mp); err == nil {
			out.CapacityBytes, out.AvailableBytes = ptrTo(u.capacity), ptrTo(u.available)
			out.Inodes, out.InodesFree = ptrTo(u.inodes), ptrTo(u.inodesFree)
		}
	}
	return out
}

func (p *statsProvider) nodeStats(ctx context.Context, cpuAndMemoryOnly bool) statsapi.NodeStats {
	logger := klog.FromContext(ctx)
	ns := statsapi.NodeStats{NodeName: p.nodeName}
	if bt, err := p.host.bootTime(); err == nil {
		ns.StartTime = metav1.NewTime(bt)
	}
	u, err := p.host.usage()
	if err != nil {
		logger.Error(err, "Reading the node's cgroup stats")
	} else {
		t := metav1.NewTime(u.time)
		ns.CPU = &statsapi.CPUStats{Time: t, UsageCoreNanoSeconds: ptrTo(u.cpuNanos), UsageNanoCores: p.rates.nanoCores("node", u.cpuNanos, u.time)}
		ns.Memory = &statsapi.MemoryStats{
			Time: t, UsageBytes: ptrTo(u.memUsage), WorkingSetBytes: ptrTo(u.workingSet), RSSBytes: ptrTo(u.rss),
			PageFaults: ptrTo(u.pageFaults), MajorPageFaults: ptrTo(u.majFaults),
		}
		if u.memTotal > 0 {
			ns.Memory.AvailableBytes = ptrTo(saturatingSub(u.memTotal, u.workingSet))
		}
	}
	if cpuAndMemoryOnly {
		return ns
	}
	now := metav1.Now()
	if fs, err := statfs(p.rootDir); err == nil {
		ns.Fs = fsStats(now, fs)
	} else {
		logger.V(2).Info("Reading the root filesystem's usage", "err", err)
	}
	var info unix.Sysinfo_t
	rl := &statsapi.RlimitStats{Time: now}
	if max, err := p.host.pidMax(); err == nil {
		rl.MaxPID = ptrTo(int64(max))
	}
	if err := unix.Sysinfo(&info); err == nil {
		rl.NumOfRunningProcesses = ptrTo(int64(info.Procs))
	}
	ns.Rlimit = rl
	return ns
}

func fsStats(t metav1.Time, fs fsUsage) *statsapi.FsStats {
	return &statsapi.FsStats{
		Time: t, CapacityBytes: ptrTo(fs.capacity), AvailableBytes: ptrTo(fs.available), UsedBytes: ptrTo(fs.used),
		Inodes: ptrTo(fs.inodes), InodesFree: ptrTo(fs.inodesFree), InodesUsed: ptrTo(saturatingSub(fs.inodes, fs.inodesFree)),
	}
}

// podStats lists the agent's pods with their running containers:
// containers' stats from ListContainerStats, pods' from their cgroups and
// sandboxes (addPodStats).
func (p *statsProvider) podStats(ctx context.Context, cpuAndMemoryOnly bool, imageFs *fsInfo) ([]statsapi.PodStats, error) {
	sandboxes, err := p.runtime.ListPodSandbox(ctx, cri.ManagedSandboxFilter(""))
	if err != nil {
		return nil, fmt.Errorf("list sandboxes: %w", err)
	}
	cf := cri.ManagedContainerFilter("")
	cf.State = &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}
	containers, err := p.runtime.ListContainers(ctx, cf)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	containerByID := map[string]*runtimeapi.Container{}
	for _, c := range containers {
		if cri.IsManaged(c.Labels) && c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			containerByID[c.Id] = c
		}
	}
	// Containers' stats come from the runtime in one ListContainerStats.
	// Pods' come from their cgroups and network namespaces, as cAdvisor
	// gives them to the kubelet: never ListPodSandboxStats, which
	// containerd answers by visiting every sandbox's shim and network
	// namespace in turn (over a minute with 75 sandboxes on two busy
	// cores, docs/reliability.md), and which the eviction manager and
	// metrics-server would ask for every 10 and 15 s.
	containerStats := map[string]*runtimeapi.ContainerStats{}
	if len(containerByID) > 0 {
		managed := map[string]string{cri.ManagedLabel: cri.ManagedValue}
		all, err := p.runtime.ListContainerStats(ctx, &runtimeapi.ContainerStatsFilter{LabelSelector: managed})
		if err != nil {
			return nil, fmt.Errorf("list container stats: %w", err)
		}
		for _, cs := range all {
			if id := cs.GetAttributes().GetId(); id != "" {
				containerStats[id] = cs
			}
		}
	}

	out := make([]statsapi.PodStats, 0, len(sandboxes))
	live := map[string]bool{}
	specs := map[string]*v1.Pod{}
	if !cpuAndMemoryOnly {
		for _, pod := range p.pods() {
			specs[string(pod.UID)] = pod
		}
	}
	for _, sb := range currentSandboxes(sandboxes) {
		md := sb.GetMetadata()
		ps := statsapi.PodStats{
			PodRef:    statsapi.PodReference{Name: md.GetName(), Namespace: md.GetNamespace(), UID: md.GetUid()},
			StartTime: metav1.NewTime(time.Unix(0, sb.CreatedAt)),
		}
		var running []string
		for _, c := range containers {
			c = containerByID[c.Id]
			if c == nil || c.PodSandboxId != sb.Id {
				continue
			}
			running = append(running, c.Id)
			st := containerStats[c.Id]
			if st == nil {
				continue
			}
			cs := p.containerStats(c, st, md, cpuAndMemoryOnly)
			if cs.Rootfs != nil && imageFs != nil {
				withCapacity(cs.Rootfs, imageFs.container)
			}
			ps.Containers = append(ps.Containers, cs)
		}
		sort.Slice(ps.Containers, func(i, j int) bool { return ps.Containers[i].Name < ps.Containers[j].Name })
		p.addPodStats(ctx, &ps, sb, running, cpuAndMemoryOnly)
		if ps.Containers == nil {
			ps.Containers = []statsapi.ContainerStats{}
		}
		if !cpuAndMemoryOnly {
			vols := p.volumes.pod(md.GetUid(), specs[md.GetUid()])
			for _, v := range vols {
				ps.VolumeStats = append(ps.VolumeStats, v.stats)
			}
			ps.EphemeralStorage = p.ephemeralStorage(ps, vols)
			live[md.GetUid()] = true
		}
		out = append(out, ps)
	}
	if !cpuAndMemoryOnly {
		p.volumes.forgetExcept(live)
		p.pids.forgetExcept(sandboxes)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].PodRef, out[j].PodRef
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return out, nil
}

// withCapacity fills a runtime-reported usage with its filesystem's size.
func withCapacity(fs, of *statsapi.FsStats) {
	fs.CapacityBytes, fs.AvailableBytes, fs.Inodes, fs.InodesFree = of.CapacityBytes, of.AvailableBytes, of.Inodes, of.InodesFree
}

// ephemeralStorage is the pod's local ephemeral storage as the kubelet
// counts it: its containers' writable layers and logs plus its local
// ephemeral volumes, against the capacity of the node's filesystem.
func (p *statsProvider) ephemeralStorage(ps statsapi.PodStats, vols []podVolume) *statsapi.FsStats {
	now := metav1.Now()
	out := &statsapi.FsStats{Time: now, UsedBytes: ptrTo[uint64](0), InodesUsed: ptrTo[uint64](0)}
	if u, err := statfs(p.rootDir); err == nil {
		out.CapacityBytes, out.AvailableBytes = ptrTo(u.capacity), ptrTo(u.available)
		out.Inodes, out.InodesFree = ptrTo(u.inodes), ptrTo(u.inodesFree)
	}
	add := func(fs *statsapi.FsStats) {
		if fs == nil {
			return
		}
		if fs.UsedBytes != nil {
			*out.UsedBytes += *fs.UsedBytes
		}
		if fs.InodesUsed != nil {
			*out.InodesUsed += *fs.InodesUsed
		}
	}
	for _, c := range ps.Containers {
		add(c.Rootfs)
		add(c.Logs)
	}
	for i := range vols {
		if vols[i].ephemeral {
			add(&vols[i].stats.FsStats)
		}
	}
	return out
}

// currentSandboxes keeps one sandbox per pod as the kubelet does: the
// ready ones, else the newest.
func currentSandboxes(all []*runtimeapi.PodSandbox) []*runtimeapi.PodSandbox {
	byPod := map[string][]*runtimeapi.PodSandbox{}
	for _, sb := range all {
		if !cri.IsManaged(sb.Labels) {
			continue
		}
		key := sb.GetMetadata().GetNamespace() + "/" + sb.GetMetadata().GetName()
		byPod[key] = append(byPod[key], sb)
	}
	var out []*runtimeapi.PodSandbox
	for _, sbs := range byPod {
		sort.Slice(sbs, func(i, j int) bool { return sbs[i].CreatedAt < sbs[j].CreatedAt })
		ready := false
		for _, sb := range sbs {
			if sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
				out, ready = append(out, sb), true
			}
		}
		if !ready {
			out = append(out, sbs[len(sbs)-1])
		}
	}
	return out
}

// containerStats converts CRI stats; missing CPU or memory read as zero
// at the current time, as the kubelet reports them.
func (p *statsProvider) containerStats(c *runtimeapi.Container, st *runtimeapi.ContainerStats, md *runtimeapi.PodSandboxMetadata, cpuAndMemoryOnly bool) statsapi.ContainerStats {
	now := metav1.Now()
	cs := statsapi.ContainerStats{
		Name:      c.GetMetadata().GetName(),
		StartTime: metav1.NewTime(time.Unix(0, c.CreatedAt)),
		CPU:       &statsapi.CPUStats{Time: now, UsageCoreNanoSeconds: ptrTo[uint64](0), UsageNanoCores: ptrTo[uint64](0)},
		Memory:    &statsapi.MemoryStats{Time: now, WorkingSetBytes: ptrTo[uint64](0), UsageBytes: ptrTo[uint64](0), RSSBytes: ptrTo[uint64](0)},
	}
	if cpu := st.GetCpu(); cpu != nil {
		t := time.Unix(0, cpu.Timestamp)
		cs.CPU = &statsapi.CPUStats{Time: metav1.NewTime(t), UsageCoreNanoSeconds: value(cpu.UsageCoreNanoSeconds), UsageNanoCores: value(cpu.UsageNanoCores)}
		if cs.CPU.UsageNanoCores == nil && cs.CPU.UsageCoreNanoSeconds != nil {
			cs.CPU.UsageNanoCores = p.rates.nanoCores(c.Id, *cs.CPU.UsageCoreNanoSeconds, t)
		}
	}
	if m := st.GetMemory(); m != nil {
		cs.Memory = &statsapi.MemoryStats{
			Time: metav1.NewTime(time.Unix(0, m.Timestamp)), AvailableBytes: value(m.AvailableBytes), UsageBytes: value(m.UsageBytes),
			WorkingSetBytes: value(m.WorkingSetBytes), RSSBytes: value(m.RssBytes), PageFaults: value(m.PageFaults), MajorPageFaults: value(m.MajorPageFaults),
		}
	}
	if cpuAndMemoryOnly {
		return cs
	}
	if wl := st.GetWritableLayer(); wl != nil {
		cs.Rootfs = &statsapi.FsStats{Time: metav1.NewTime(time.Unix(0, wl.Timestamp)), UsedBytes: value(wl.UsedBytes), InodesUsed: value(wl.InodesUsed)}
	}
	cs.Logs = p.logStats(md, cs.Name, now)
	return cs
}

// logStats is the size of the container's log directory (current and
// rotated files) with the capacity of its filesystem.
func (p *statsProvider) logStats(md *runtimeapi.PodSandboxMetadata, name string, now metav1.Time) *statsapi.FsStats {
	dir := filepath.Join(cri.PodLogDir(p.podLogsDir, md.GetNamespace(), md.GetName(), types.UID(md.GetUid())), name)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var used, inodes uint64
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			used += uint64(info.Size())
			inodes++
		}
	}
	fs := &statsapi.FsStats{Time: now, UsedBytes: &used, InodesUsed: &inodes}
	if u, err := statfs(dir); err == nil {
		fs.CapacityBytes, fs.AvailableBytes, fs.Inodes, fs.InodesFree = &u.capacity, &u.available, &u.inodes, &u.inodesFree
	}
	return fs
}

// addPodStats fills the pod's CPU, memory and process count from its
// cgroup, when the agent knows where that is (with cgroupsPerQOS, either
// driver: the pod's worker names it), else CPU and memory with its
// containers' sums; and its network from its sandbox's network namespace.
func (p *statsProvider) addPodStats(ctx context.Context, ps *statsapi.PodStats, sb *runtimeapi.PodSandbox, running []string, cpuAndMemoryOnly bool) {
	uid := types.UID(ps.PodRef.UID)
	path, ok := "", false
	if p.podCgroup != nil {
		path, ok = p.podCgroup(uid)
	}
	if ok {
		if u, err := p.host.cgroupUsage(path, nil); err == nil {
			t := metav1.NewTime(u.time)
			ps.CPU = &statsapi.CPUStats{Time: t, UsageCoreNanoSeconds: ptrTo(u.cpuNanos), UsageNanoCores: p.rates.nanoCores("pod/"+ps.PodRef.UID, u.cpuNanos, u.time)}
			ps.Memory = &statsapi.MemoryStats{
				Time: t, UsageBytes: ptrTo(u.memUsage), WorkingSetBytes: ptrTo(u.workingSet), RSSBytes: ptrTo(u.rss),
				PageFaults: ptrTo(u.pageFaults), MajorPageFaults: ptrTo(u.majFaults),
			}
			if limit, ok := p.host.memoryLimit(path); ok {
				ps.Memory.AvailableBytes = ptrTo(saturatingSub(limit, u.workingSet))
			}
		} else {
			klog.FromContext(ctx).V(4).Info("Reading a pod's cgroup", "pod", klog.KRef(ps.PodRef.Namespace, ps.PodRef.Name), "err", err)
		}
	}
	if ps.CPU == nil || ps.Memory == nil {
		sumContainers(ps)
	}
	if cpuAndMemoryOnly {
		return
	}
	if ok && len(running) > 0 {
		if n, err := p.host.processCount(path, running); err == nil {
			ps.ProcessStats = &statsapi.ProcessStats{ProcessCount: ptrTo(n)}
		}
	}
	if sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
		ps.Network = p.network(ctx, sb.Id)
	}
}

// network reads the interfaces of the sandbox's network namespace through
// its first process; eth0 is the default interface, as with cAdvisor.
func (p *statsProvider) network(ctx context.Context, sandboxID string) *statsapi.NetworkStats {
	pid, err := p.pids.get(ctx, sandboxID)
	if err != nil {
		klog.FromContext(ctx).V(4).Info("No process for a sandbox's network stats", "sandbox", sandboxID, "err", err)
		return nil
	}
	ifaces, err := p.host.netDev(pid)
	if err != nil {
		klog.FromContext(ctx).V(4).Info("Reading a sandbox's network stats", "sandbox", sandboxID, "err", err)
		return nil
	}
	ns := &statsapi.NetworkStats{Time: metav1.Now()}
	for _, i := range ifaces {
		st := statsapi.InterfaceStats{Name: i.name, RxBytes: ptrTo(i.rxBytes), RxErrors: ptrTo(i.rxErrors), TxBytes: ptrTo(i.txBytes), TxErrors: ptrTo(i.txErrors)}
		if i.name == defaultInterface {
			ns.InterfaceStats = st
		}
		ns.Interfaces = append(ns.Interfaces, st)
	}
	return ns
}

// defaultInterface is the pod's interface the network stats name at the
// top, as the kubelet's.
const defaultInterface = "eth0"

// sumContainers fills the pod's missing CPU and memory with the sums of
// its containers'.
func sumContainers(ps *statsapi.PodStats) {
	var cpu, ws, usage uint64
	var cpuTime, memTime metav1.Time
	for _, c := range ps.Containers {
		if c.CPU != nil && c.CPU.UsageCoreNanoSeconds != nil {
			cpu += *c.CPU.UsageCoreNanoSeconds
			cpuTime = later(cpuTime, c.CPU.Time)
		}
		if c.Memory != nil {
			if c.Memory.WorkingSetBytes != nil {
				ws += *c.Memory.WorkingSetBytes
			}
			if c.Memory.UsageBytes != nil {
				usage += *c.Memory.UsageBytes
			}
			memTime = later(memTime, c.Memory.Time)
		}
	}
	if len(ps.Containers) == 0 {
		return
	}
	if ps.CPU == nil {
		ps.CPU = &statsapi.CPUStats{Time: cpuTime, UsageCoreNanoSeconds: &cpu}
	}
	if ps.Memory == nil {
		ps.Memory = &statsapi.MemoryStats{Time: memTime, WorkingSetBytes: &ws, UsageBytes: &usage}
	}
}

func later(a, b metav1.Time) metav1.Time {
	if b.After(a.Time) {
		return b
	}
	return a
}

// value unwraps a CRI UInt64Value; nil stays nil.
func value(v *runtimeapi.UInt64Value) *uint64 {
	if v == nil {
		return nil
	}
	n := v.Value
	return &n
}

func ptrTo[T any](v T) *T { return &v }
