// Package podcgroups writes the limits of the cgroups that hold the
// node's pods, as the kubelet's container manager does with
// cgroupsPerQOS and the cgroupfs driver:
//
//	<cgroupRoot>/kubepods                 the node's allocatable for pods
//	<cgroupRoot>/kubepods/burstable       CPU shares: the burstable pods' requests
//	<cgroupRoot>/kubepods/besteffort      CPU shares: the minimum
//	<cgroupRoot>/kubepods[/<qos>]/pod<uid> the pod's requests and limits
//
// A pod's cgroup gets CPU shares from the pod's requests (init containers,
// sidecars and overhead counted as the scheduler counts them), a CFS quota
// when every container has a CPU limit, a memory limit when every
// container has one (the sum, plus the pod's overhead), podPidsLimit
// as pids.max, and for each huge page size of the machine a hugetlb limit
// of what the pod requests of it, 0 when nothing (the kubelet's
// ResourceConfigForPod and maybeSetHugetlb). A pod with pod-level
// resources (spec.resources) has its cpu and memory requests and limits
// from there instead of its containers' sums, a pod-level limit applying
// even when containers declare none. The runtime creates the
// containers' cgroups below it, so a pod as a whole never gets more than
// its spec grants, overhead included, and the pods together never more
// than kubepods allows. kubepods gets the node's huge pages, the QoS
// cgroups none of their own (the kubelet's setHugePagesUnbounded). Each
// hugetlb limit is written to the reservations' limit too
// (hugetlb.<size>.rsvd.*) where the kernel has one, as the kubelet's
// cgroup library does.
//
// cgroup v1 (one hierarchy per controller: cpu, memory, pids, hugetlb) and
// v2 (one unified hierarchy, controllers enabled in each parent's
// cgroup.subtree_control) are both written. A controller the host does not
// have is not written: without hugetlb (on cgroup v1 it is not mounted by
// default) huge pages are not limited, as with the kubelet, which skips
// them ("Optional subsystem not supported: hugetlb"); HasController tells
// the agent so, which warns the pods that ask for some. Values are written only when
// they changed since the last write (a cache by path); the cache starts
// empty, so an agent restart writes every pod's values again.
package podcgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	v1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/nodeagent/nodeagent/hugepages"
)

const (
	// CPUPeriod is the CFS period, in µs, of every cgroup with a quota.
	CPUPeriod = 100000
	// MinShares is the kernel's minimum of cpu.shares.
	MinShares     = 2
	maxShares     = 262144
	sharesPerCPU  = 1024
	milliCPUToCPU = 1000
	minQuota      = 1000 // µs: 1% of a CPU, the kernel's floor
)

// Config is what a Manager needs.
type Config struct {
	// Mount is where the cgroup filesystems are mounted (/sys/fs/cgroup).
	Mount string
	// Root is the cgroupRoot; the pods' cgroups are below Root/kubepods.
	Root string
	// PodPidsLimit is the pids.max of every pod cgroup; <= 0: no limit.
	PodPidsLimit int64
	// ActivePods lists the pods the node runs (the burstable cgroup's
	// shares are their requests).
	ActivePods func() []*v1.Pod
	// HugePageSizes are the machine's huge page sizes in bytes
	// (hugepages.PageSizes): each gets a hugetlb limit in every cgroup.
	HugePageSizes []int64
}

// Manager writes pod cgroups. It is safe for concurrent use.
type Manager struct {
	cfg Config
	v2  bool
	// controllers are the ones of cpu, memory, pids and hugetlb the host
	// has.
	controllers map[string]bool

	// writeMu serializes writes (the QoS cgroup is written from several
	// goroutines); mu guards written.
	writeMu sync.Mutex
	mu      sync.Mutex
	written map[string]Settings
}

// Settings are the values of one cgroup; -1 means no limit.
type Settings struct {
	Shares int64 // cpu.shares (v1); cpu.weight is derived from it (v2)
	Quota  int64 // CFS quota in µs per CPUPeriod
	Memory int64 // bytes
	Pids   int64
	// Hugetlb is the limit in bytes of each huge page size (in bytes);
	// a size it does not have is not written.
	Hugetlb map[int64]int64
}

// Equal reports whether s and o hold the same values.
func (s Settings) Equal(o Settings) bool {
	return s.Shares == o.Shares && s.Quota == o.Quota && s.Memory == o.Memory && s.Pids == o.Pids && maps.Equal(s.Hugetlb, o.Hugetlb)
}

// unlimited are the settings of a cgroup without limits.
var unlimited = Settings{Shares: -1, Quota: -1, Memory: -1, Pids: -1}

// New returns a Manager for the cgroup filesystem at cfg.Mount (v2 when it
// has cgroup.controllers).
func New(cfg Config) *Manager {
	if cfg.Mount == "" {
		cfg.Mount = "/sys/fs/cgroup"
	}
	if cfg.Root == "" {
		cfg.Root = "/"
	}
	m := &Manager{cfg: cfg, written: map[string]Settings{}}
	m.v2, m.controllers = hostControllers(cfg.Mount)
	return m
}

// managed are the controllers whose files a Manager writes.
var managed = []string{"cpu", "memory", "pids", "hugetlb"}

// hostControllers tells whether the cgroup filesystem at mount is v2 and
// which of the managed controllers it has: on v2 those of the root's
// cgroup.controllers, on v1 those mounted at mount/<controller>.
func hostControllers(mount string) (bool, map[string]bool) {
	have := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(mount, "cgroup.controllers")); err == nil {
		for _, c := range strings.Fields(string(b)) {
			have[c] = true
		}
		return true, have
	}
	for _, c := range managed {
		if _, err := os.Stat(filepath.Join(mount, c, "cgroup.procs")); err == nil {
			have[c] = true
		}
	}
	return false, have
}

// HasController reports whether the cgroup filesystem at mount
// (/sys/fs/cgroup when empty) has controller (one of cpu, memory, pids and
// hugetlb): the runtime limits containers with it only then.
func HasController(mount, controller string) bool {
	if mount == "" {
		mount = "/sys/fs/cgroup"
	}
	_, have := hostControllers(mount)
	return have[controller]
}

// Kubepods is the cgroup of all pods.
func (m *Manager) Kubepods() string { return filepath.Join(m.cfg.Root, "kubepods") }

// SetupNode creates kubepods and its QoS cgroups, and limits kubepods to
// what pods may use (the node's allocatable when enforceNodeAllocatable
// has "pods", its capacity otherwise): CPU shares from the CPU, the memory
// limit, pids.max from "pid" when present, and the hugetlb limit of each
// huge page size from its hugepages-<size> (0 when absent, as the
// kubelet's maybeSetHugetlb). The QoS cgroups get no hugetlb limit of
// their own.
func (m *Manager) SetupNode(limits v1.ResourceList) error {
	if m.cfg.PodPidsLimit > 0 && !m.controllers["pids"] {
		return fmt.Errorf("podPidsLimit %d needs the pids cgroup controller, which this host does not have", m.cfg.PodPidsLimit)
	}
	s := unlimited
	if q, ok := limits[v1.ResourceCPU]; ok {
		s.Shares = MilliToShares(q.MilliValue())
	}
	if q, ok := limits[v1.ResourceMemory]; ok {
		s.Memory = q.Value()
	}
	if q, ok := limits["pid"]; ok {
		s.Pids = q.Value()
	}
	s.Hugetlb = m.hugetlb(hugepages.Limits(limits), 0)
	if err := m.write(m.Kubepods(), s, false); err != nil {
		return err
	}
	besteffort := m.qosUnlimited()
	besteffort.Shares = MinShares
	if err := m.write(filepath.Join(m.Kubepods(), "besteffort"), besteffort, false); err != nil {
		return err
	}
	return m.UpdateQoS()
}

// UpdateQoS sets the burstable cgroup's CPU shares to the burstable pods'
// requests, as the kubelet's QoS container manager does on every pod
// change and every minute.
func (m *Manager) UpdateQoS() error {
	milli := int64(0)
	if m.cfg.ActivePods != nil {
		for _, p := range m.cfg.ActivePods() {
			if p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed || QOSClass(p) != v1.PodQOSBurstable {
				continue
			}
			reqs := resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{})
			milli += reqs.Cpu().MilliValue()
		}
	}
	s := m.qosUnlimited()
	s.Shares = MilliToShares(milli)
	return m.write(filepath.Join(m.Kubepods(), "burstable"), s, false)
}

// qosUnlimited are the settings of a QoS cgroup before its shares:
// unlimited, huge pages too (the kubelet's setHugePagesUnbounded), so
// that only kubepods and the pods' cgroups limit them.
func (m *Manager) qosUnlimited() Settings {
	s := unlimited
	s.Hugetlb = m.hugetlb(nil, -1)
	return s
}

// hugetlb are the hugetlb limits of a cgroup: those of limits (page size
// to bytes), and for each other huge page size of the machine other; nil
// when the machine has none and limits are empty.
func (m *Manager) hugetlb(limits map[int64]int64, other int64) map[int64]int64 {
	if len(m.cfg.HugePageSizes) == 0 && len(limits) == 0 {
		return nil
	}
	out := maps.Clone(limits)
	if out == nil {
		out = map[int64]int64{}
	}
	for _, size := range m.cfg.HugePageSizes {
		if _, ok := out[size]; !ok {
			out[size] = other
		}
	}
	return out
}

// PodSettings are the values of pod's cgroup: ResourceSettings,
// podPidsLimit as pids.max, and all the huge pages the pod requests of
// each size (the API makes requests and limits of huge pages equal), 0 of
// the sizes it does not request (the kubelet's ResourceConfigForPod).
func (m *Manager) PodSettings(pod *v1.Pod) Settings {
	s := ResourceSettings(pod)
	if m.cfg.PodPidsLimit > 0 {
		s.Pids = m.cfg.PodPidsLimit
	}
	reqs := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	s.Hugetlb = m.hugetlb(hugepages.Limits(reqs), 0)
	return s
}

// ResourceSettings are the CPU and memory values of pod's cgroup (Pids
// -1), the kubelet's ResourceConfigForPod: guaranteed pods get all limits,
// burstable ones the limits every container declares or the pod declares
// in spec.resources (pod-level resources, which take the place of the
// containers' sums), best-effort ones the minimum shares. They need no
// Manager: a memory-backed emptyDir is sized by the same memory limit.
func ResourceSettings(pod *v1.Pod) Settings {
	s := unlimited
	qos := QOSClass(pod)
	if qos == v1.PodQOSBestEffort {
		s.Shares = MinShares
		return s
	}
	reqs := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	cpuLimited, memLimited := true, true
	limits := resourcehelper.PodLimits(pod, resourcehelper.PodResourcesOptions{
		ContainerFn: func(res v1.ResourceList, _ resourcehelper.ContainerType) {
			if res.Cpu().IsZero() {
				cpuLimited = false
			}
			if res.Memory().IsZero() {
				memLimited = false
			}
		},
	})
	if resourcehelper.IsPodLevelResourcesSet(pod) {
		// A pod-level limit bounds the pod whatever its containers
		// declare (PodLimits took it in place of their sum).
		cpuLimited = cpuLimited || !pod.Spec.Resources.Limits.Cpu().IsZero()
		memLimited = memLimited || !pod.Spec.Resources.Limits.Memory().IsZero()
	}
	s.Shares = MilliToShares(reqs.Cpu().MilliValue())
	if qos == v1.PodQOSGuaranteed || cpuLimited {
		s.Quota = MilliToQuota(limits.Cpu().MilliValue())
	}
	if qos == v1.PodQOSGuaranteed || memLimited {
		s.Memory = limits.Memory().Value()
	}
	return s
}

// EnsurePod creates the cgroup of pod at path (below Mount, as the pod's
// cgroup parent names it) with the pod's settings, then updates the QoS
// cgroups. growOnly writes only the values that grow, so that a resize
// widens the pod before its containers and narrows it after them.
func (m *Manager) EnsurePod(path string, pod *v1.Pod, growOnly bool) error {
	if !strings.HasPrefix(filepath.Clean(path), m.Kubepods()+"/") {
		return fmt.Errorf("pod cgroup %s is not below %s", path, m.Kubepods())
	}
	s := m.PodSettings(pod)
	m.mu.Lock()
	old, known := m.written[path]
	m.mu.Unlock()
	if growOnly {
		if !known {
			return nil
		}
		s = grown(old, s)
	}
	if known && old.Equal(s) {
		return nil
	}
	if err := m.write(path, s, growOnly); err != nil {
		return err
	}
	if !known && QOSClass(pod) == v1.PodQOSBurstable {
		return m.UpdateQoS()
	}
	return nil
}

// Forget drops what the manager wrote of a removed cgroup.
func (m *Manager) Forget(path string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.written, path)
}

// grown is old with the values of s that are larger (-1, no limit, being
// the largest).
func grown(old, s Settings) Settings {
	larger := func(a, b int64) int64 {
		if a < 0 || b < 0 {
			return -1
		}
		return max(a, b)
	}
	g := Settings{Shares: larger(old.Shares, s.Shares), Quota: larger(old.Quota, s.Quota), Memory: larger(old.Memory, s.Memory), Pids: larger(old.Pids, s.Pids)}
	if old.Hugetlb != nil || s.Hugetlb != nil {
		g.Hugetlb = maps.Clone(old.Hugetlb)
		if g.Hugetlb == nil {
			g.Hugetlb = map[int64]int64{}
		}
		for size, v := range s.Hugetlb {
			if o, ok := g.Hugetlb[size]; ok {
				v = larger(o, v)
			}
			g.Hugetlb[size] = v
		}
	}
	return g
}

// write creates the cgroup at path in every hierarchy it has settings for
// and writes them; nothing that did not change since the last write.
func (m *Manager) write(path string, s Settings, partial bool) error {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	m.mu.Lock()
	old, known := m.written[path]
	m.mu.Unlock()
	if known && old.Equal(s) {
		return nil
	}
	var errs []error
	for _, f := range m.files(path, s) {
		if (known && f.same(old)) || !m.controllers[f.controller] {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			errs = append(errs, err)
			continue
		}
		if f.optional {
			if err := writeExisting(f.path, f.value); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("write %q to %s: %w", f.value, f.path, err))
			}
			continue
		}
		if err := os.WriteFile(f.path, []byte(f.value), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("write %q to %s: %w", f.value, f.path, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cgroup %s: %w", path, err)
	}
	m.mu.Lock()
	if !partial || known {
		m.written[path] = s
	}
	m.mu.Unlock()
	return nil
}

// writeExisting writes value to the file at path, which it does not
// create: fs.ErrNotExist when there is none.
func writeExisting(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	return errors.Join(err, f.Close())
}

type file struct {
	controller  string
	path, value string
	// same reports whether old had the value this file holds.
	same func(old Settings) bool
	// optional files are written only where the kernel has them.
	optional bool
}

// files are the control files of the cgroup at path holding s, in the
// order they must be written, after enabling the controllers in the
// parents (v2).
func (m *Manager) files(path string, s Settings) []file {
	if m.v2 {
		m.enableControllers(path)
		dir := filepath.Join(m.cfg.Mount, path)
		quota := "max"
		if s.Quota > 0 {
			quota = strconv.FormatInt(s.Quota, 10)
		}
		out := []file{
			{controller: "cpu", path: filepath.Join(dir, "cpu.max"), value: quota + " " + strconv.Itoa(CPUPeriod), same: func(o Settings) bool { return o.Quota == s.Quota }},
			{controller: "memory", path: filepath.Join(dir, "memory.max"), value: limit(s.Memory), same: func(o Settings) bool { return o.Memory == s.Memory }},
			{controller: "pids", path: filepath.Join(dir, "pids.max"), value: limit(s.Pids), same: func(o Settings) bool { return o.Pids == s.Pids }},
		}
		if s.Shares > 0 {
			out = append(out, file{controller: "cpu", path: filepath.Join(dir, "cpu.weight"), value: strconv.FormatInt(sharesToWeight(s.Shares), 10), same: func(o Settings) bool { return o.Shares == s.Shares }})
		}
		for _, size := range slices.Sorted(maps.Keys(s.Hugetlb)) {
			v := s.Hugetlb[size]
			out = append(out, hugetlbFiles(filepath.Join(dir, "hugetlb."+hugepages.UnitSize(size)), ".max", limit(v), sameHugetlb(size, v))...)
		}
		return out
	}
	cpu, mem, pids := filepath.Join(m.cfg.Mount, "cpu", path), filepath.Join(m.cfg.Mount, "memory", path), filepath.Join(m.cfg.Mount, "pids", path)
	quota := "-1"
	if s.Quota > 0 {
		quota = strconv.FormatInt(s.Quota, 10)
	}
	memory := "-1"
	if s.Memory >= 0 {
		memory = strconv.FormatInt(s.Memory, 10)
	}
	out := []file{
		{controller: "cpu", path: filepath.Join(cpu, "cpu.cfs_period_us"), value: strconv.Itoa(CPUPeriod), same: func(Settings) bool { return true }},
		{controller: "cpu", path: filepath.Join(cpu, "cpu.cfs_quota_us"), value: quota, same: func(o Settings) bool { return o.Quota == s.Quota }},
		{controller: "memory", path: filepath.Join(mem, "memory.limit_in_bytes"), value: memory, same: func(o Settings) bool { return o.Memory == s.Memory }},
		{controller: "pids", path: filepath.Join(pids, "pids.max"), value: limit(s.Pids), same: func(o Settings) bool { return o.Pids == s.Pids }},
	}
	if s.Shares > 0 {
		out = append(out, file{controller: "cpu", path: filepath.Join(cpu, "cpu.shares"), value: strconv.FormatInt(s.Shares, 10), same: func(o Settings) bool { return o.Shares == s.Shares }})
	}
	for _, size := range slices.Sorted(maps.Keys(s.Hugetlb)) {
		v := s.Hugetlb[size]
		value := "-1" // the kernel's unlimited
		if v >= 0 {
			value = strconv.FormatInt(v, 10)
		}
		out = append(out, hugetlbFiles(filepath.Join(m.cfg.Mount, "hugetlb", path, "hugetlb."+hugepages.UnitSize(size)), ".limit_in_bytes", value, sameHugetlb(size, v))...)
	}
	return out
}

// hugetlbFiles hold a cgroup's limit of one page size, prefix being its
// hugetlb.<size> and suffix the limit file's (.max on v2,
// .limit_in_bytes on v1): the limit of the pages the cgroup faults in,
// and the same limit of the pages it reserves (the .rsvd file of Linux
// 5.7 and later, skipped where the kernel has none), as the kubelet's
// cgroup library writes both (opencontainers/cgroups fs/hugetlb.go and
// fs2/hugetlb.go). With the reservations limited too, a mapping beyond
// the limit fails at mmap rather than with SIGBUS at a later fault.
func hugetlbFiles(prefix, suffix, value string, same func(Settings) bool) []file {
	return []file{
		{controller: "hugetlb", path: prefix + suffix, value: value, same: same},
		{controller: "hugetlb", path: prefix + ".rsvd" + suffix, value: value, same: same, optional: true},
	}
}

// sameHugetlb reports whether old had the limit v of the page size.
func sameHugetlb(size, v int64) func(Settings) bool {
	return func(old Settings) bool {
		o, ok := old.Hugetlb[size]
		return ok && o == v
	}
}

// enableControllers turns on cpu, memory, pids and hugetlb (those the host has)
// for the children of every cgroup from the root down to path's parent
// (cgroup v2), the root first, one controller at a time. Errors show when
// the files are written.
func (m *Manager) enableControllers(path string) {
	dirs := []string{m.cfg.Mount}
	parts := strings.Split(strings.Trim(filepath.Clean(path), "/"), "/")
	for _, p := range parts[:len(parts)-1] {
		dirs = append(dirs, filepath.Join(dirs[len(dirs)-1], p))
	}
	for i, dir := range dirs {
		if i > 0 {
			_ = os.Mkdir(dir, 0o755)
		}
		for _, c := range managed {
			if m.controllers[c] {
				_ = os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+c), 0o644)
			}
		}
	}
}

func limit(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

// MilliToShares is the kubelet's MilliCPUToShares: CPU shares for a
// request in millicores, within the kernel's bounds.
func MilliToShares(m int64) int64 {
	if m <= 0 {
		return MinShares
	}
	return min(max(m*sharesPerCPU/milliCPUToCPU, MinShares), maxShares)
}

// MilliToQuota is the kubelet's MilliCPUToQuota: the CFS quota (µs per
// CPUPeriod) of a limit in millicores, at least the kernel's 1 ms; -1 for
// no limit.
func MilliToQuota(m int64) int64 {
	if m <= 0 {
		return -1
	}
	return max(m*CPUPeriod/milliCPUToCPU, minQuota)
}

// SharesToMilli is the kubelet's SharesToMilliCPU, the request in
// millicores that CPU shares stand for (0 below the minimum).
func SharesToMilli(shares int64) int64 {
	if shares < MinShares {
		return 0
	}
	return (shares*milliCPUToCPU + sharesPerCPU - 1) / sharesPerCPU
}

// QuotaToMilli is the kubelet's QuotaToMilliCPU: the limit in millicores
// that a CFS quota and period stand for; 0 without a quota.
func QuotaToMilli(quota, period int64) int64 {
	if quota <= 0 || period <= 0 {
		return 0
	}
	return quota * milliCPUToCPU / period
}

// sharesToWeight is the conversion runc and the kubelet use for cgroup
// v2's cpu.weight.
func sharesToWeight(shares int64) int64 {
	return 1 + ((shares-2)*9999)/262142
}
