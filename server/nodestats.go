package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// hostReader reads the node's own usage: CPU and memory from the root
// cgroups (v1 or v2), memory size and boot time from /proc, filesystem
// usage with statfs. The roots are fields so that tests can fake them.
type hostReader struct {
	cgroupRoot string // /sys/fs/cgroup
	procRoot   string // /proc
}

// nodeUsage is one sample of the node's CPU and memory.
type nodeUsage struct {
	time       time.Time
	cpuNanos   uint64
	memUsage   uint64
	workingSet uint64
	memTotal   uint64
	rss        uint64
	pageFaults uint64
	majFaults  uint64
}

// usage reads the root cgroup. On cgroup v1 that is cpuacct.usage and
// memory.usage_in_bytes; on v2 cpu.stat's usage_usec and memory.current,
// or MemTotal-MemFree where the root has no memory.current. The working
// set is the usage minus the inactive file pages, as cAdvisor computes it.
func (h hostReader) usage() (nodeUsage, error) {
	meminfo, err := readKeyValues(filepath.Join(h.procRoot, "meminfo"))
	if err != nil {
		return nodeUsage{time: time.Now()}, err
	}
	u, err := h.cgroupUsage("/", meminfo)
	u.memTotal = meminfo["MemTotal:"] * 1024
	return u, err
}

// v2 tells a unified hierarchy (cgroup v2) from v1's hierarchies.
func (h hostReader) v2() bool {
	_, err := os.Stat(filepath.Join(h.cgroupRoot, "cgroup.controllers"))
	return err == nil
}

// cgroupUsage reads the CPU and memory of the cgroup at path (inside each
// hierarchy): the root's, or a pod's as cAdvisor reads them for the
// kubelet. meminfo is for v2's root, which has no memory.current; nil
// elsewhere.
func (h hostReader) cgroupUsage(path string, meminfo map[string]uint64) (nodeUsage, error) {
	u := nodeUsage{time: time.Now()}
	var err error
	if h.v2() {
		dir := filepath.Join(h.cgroupRoot, path)
		cpu, err := readKeyValues(filepath.Join(dir, "cpu.stat"))
		if err != nil {
			return u, err
		}
		u.cpuNanos = cpu["usage_usec"] * 1000
		u.memUsage, err = readUint(filepath.Join(dir, "memory.current"))
		if errors.Is(err, os.ErrNotExist) && meminfo != nil {
			u.memUsage, err = saturatingSub(meminfo["MemTotal:"], meminfo["MemFree:"])*1024, nil
		}
		if err != nil {
			return u, err
		}
		stat, err := readKeyValues(filepath.Join(dir, "memory.stat"))
		if err != nil {
			return u, err
		}
		u.workingSet = saturatingSub(u.memUsage, stat["inactive_file"])
		u.rss, u.pageFaults, u.majFaults = stat["anon"], stat["pgfault"], stat["pgmajfault"]
		return u, nil
	}
	if u.cpuNanos, err = readUint(filepath.Join(h.cgroupRoot, "cpuacct", path, "cpuacct.usage")); err != nil {
		return u, err
	}
	mem := filepath.Join(h.cgroupRoot, "memory", path)
	if u.memUsage, err = readUint(filepath.Join(mem, "memory.usage_in_bytes")); err != nil {
		return u, err
	}
	stat, err := readKeyValues(filepath.Join(mem, "memory.stat"))
	if err != nil {
		return u, err
	}
	u.workingSet = saturatingSub(u.memUsage, stat["total_inactive_file"])
	u.rss, u.pageFaults, u.majFaults = stat["total_rss"], stat["total_pgfault"], stat["total_pgmajfault"]
	return u, nil
}

// memoryHierarchy is the hierarchy holding the memory controller: the
// unified one on v2.
func (h hostReader) memoryHierarchy() string {
	if h.v2() {
		return h.cgroupRoot
	}
	return filepath.Join(h.cgroupRoot, "memory")
}

// memoryLimit is the memory limit of the cgroup at path; ok is false
// without one (v1 writes a number near 2^63 for none, v2 "max").
func (h hostReader) memoryLimit(path string) (limit uint64, ok bool) {
	file := "memory.limit_in_bytes"
	if h.v2() {
		file = "memory.max"
	}
	n, err := readUint(filepath.Join(h.memoryHierarchy(), path, file))
	if err != nil || n >= 1<<62 {
		return 0, false
	}
	return n, true
}

// processCount counts the processes of the containers ids below the
// cgroup at path (a pod's): their cgroups are its children, named by
// their IDs (cri-containerd-<id>.scope with systemd); the sandbox's pause
// process is not counted, as the kubelet sums its containers'.
func (h hostReader) processCount(path string, ids []string) (uint64, error) {
	dir := filepath.Join(h.memoryHierarchy(), path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, e := range entries {
		if !e.IsDir() || !slices.ContainsFunc(ids, func(id string) bool { return strings.Contains(e.Name(), id) }) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "cgroup.procs"))
		if err != nil {
			continue // the container just ended
		}
		n += uint64(bytes.Count(b, []byte("\n")))
	}
	return n, nil
}

// interfaceUsage is one network interface's counters.
type interfaceUsage struct {
	name                                 string
	rxBytes, rxErrors, txBytes, txErrors uint64
}

// netDevLimit bounds the read of a pod's /proc/<pid>/net/dev (about 150
// bytes an interface).
const netDevLimit = 1 << 20

// ignoredInterfaces are the prefixes of the interfaces cAdvisor leaves out
// of a container's network stats.
var ignoredInterfaces = []string{"lo", "veth", "docker", "nerdctl"}

// netDev reads the interfaces of the network namespace of process pid
// (/proc/<pid>/net/dev), less the ignored ones.
func (h hostReader) netDev(pid int) ([]interfaceUsage, error) {
	// A kernel file, but a pod with NET_ADMIN decides how many interfaces
	// it lists: read at most netDevLimit of it.
	f, err := os.Open(filepath.Join(h.procRoot, strconv.Itoa(pid), "net", "dev"))
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, netDevLimit))
	if err != nil {
		return nil, err
	}
	var out []interfaceUsage
	for _, line := range strings.Split(string(b), "\n") {
		name, counters, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		f := strings.Fields(counters)
		if len(f) < 16 || slices.ContainsFunc(ignoredInterfaces, func(p string) bool { return strings.HasPrefix(name, p) }) {
			continue
		}
		var v [16]uint64
		for i := range v {
			v[i], _ = strconv.ParseUint(f[i], 10, 64)
		}
		out = append(out, interfaceUsage{name: name, rxBytes: v[0], rxErrors: v[2], txBytes: v[8], txErrors: v[10]})
	}
	return out, nil
}

// bootTime is the btime of /proc/stat, the node's start time.
func (h hostReader) bootTime() (time.Time, error) {
	st, err := readKeyValues(filepath.Join(h.procRoot, "stat"))
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(int64(st["btime"]), 0), nil
}

// pidMax is kernel.pid_max.
func (h hostReader) pidMax() (uint64, error) {
	return readUint(filepath.Join(h.procRoot, "sys", "kernel", "pid_max"))
}

// fsUsage is the statfs of the filesystem holding path.
type fsUsage struct {
	capacity, available, used, inodes, inodesFree uint64
}

func statfs(path string) (fsUsage, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fsUsage{}, fmt.Errorf("statfs %s: %w", path, err)
	}
	bs := uint64(st.Bsize)
	return fsUsage{
		capacity:   st.Blocks * bs,
		available:  st.Bavail * bs,
		used:       (st.Blocks - st.Bfree) * bs,
		inodes:     st.Files,
		inodesFree: st.Ffree,
	}, nil
}

// readUint reads a file holding one unsigned number.
func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return n, nil
}

// readKeyValues reads "key value [unit]" lines (memory.stat, cpu.stat,
// meminfo, /proc/stat); lines whose value is not a number are skipped.
func readKeyValues(path string) (map[string]uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	out := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		if n, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			out[f[0]] = n
		}
	}
	return out, nil
}

func saturatingSub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// cpuRates derives usageNanoCores from successive cumulative CPU samples
// when the runtime does not report it (and always for the node), as the
// kubelet's CRI stats provider does with its own cache.
type cpuRates struct {
	mu      sync.Mutex
	samples map[string]cpuSample
}

type cpuSample struct {
	at    time.Time
	usage uint64
	rate  *uint64
}

// minRateWindow keeps two scrapes in quick succession from making a
// rate out of noise: the older sample is kept and its rate reused.
const minRateWindow = time.Second

// sampleTTL drops the samples of containers gone for that long.
const sampleTTL = 10 * time.Minute

func newCPURates() *cpuRates { return &cpuRates{samples: map[string]cpuSample{}} }

// nanoCores records usage (cumulative nanoseconds) of key at time at and
// returns the rate since the previous sample, nil for the first one.
func (c *cpuRates) nanoCores(key string, usage uint64, at time.Time) *uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	prev, ok := c.samples[key]
	if ok && at.Sub(prev.at) < minRateWindow {
		return prev.rate
	}
	var rate *uint64
	if ok && usage >= prev.usage && at.After(prev.at) {
		r := uint64(float64(usage-prev.usage) / float64(at.Sub(prev.at).Nanoseconds()) * float64(time.Second))
		rate = &r
	}
	c.samples[key] = cpuSample{at: at, usage: usage, rate: rate}
	for k, s := range c.samples {
		if at.Sub(s.at) > sampleTTL {
			delete(c.samples, k)
		}
	}
	return rate
}
