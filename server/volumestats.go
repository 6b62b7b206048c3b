package server

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/nodeagent/nodeagent/volumes"
)

// A volume's measured usage is reused for 200 times what measuring it took,
// between 1 s and the kubelet's volumeStatsAggPeriod (1 min): walking a
// large emptyDir on every scrape would cost more than the scrape, while a
// small one is cheap enough to be fresh on each (≤ 0.5 % of a core).
const (
	volumeStatsMinPeriod = time.Second
	volumeStatsMaxPeriod = time.Minute
	volumeStatsCostRatio = 200
)

// volumeUsage measures the volumes the agent prepared for a pod under
// <rootDir>/pods/<uid>/volumes/<plugin>/<name>: the disk usage and inode
// count of each (du -s, symbolic links not followed, hard links counted
// once) and the capacity of the filesystem it is on.
type volumeUsage struct {
	rootDir string
	now     func() time.Time

	mu    sync.Mutex
	cache map[string]cachedVolume // volume directory → last measure
}

type cachedVolume struct {
	until time.Time
	podVolume
}

// podVolume is one volume's stats and whether the kubelet counts it as
// the pod's local ephemeral storage (localEphemeral).
type podVolume struct {
	stats     statsapi.VolumeStats
	ephemeral bool
}

func newVolumeUsage(rootDir string) *volumeUsage {
	return &volumeUsage{rootDir: rootDir, now: time.Now, cache: map[string]cachedVolume{}}
}

// pod returns the stats of every volume of the pod, sorted by name; nil if
// the pod has none. spec is the pod (nil when the agent no longer has it).
func (v *volumeUsage) pod(uid string, spec *v1.Pod) []podVolume {
	dirs, _ := filepath.Glob(filepath.Join(v.rootDir, "pods", uid, "volumes", "*", "*"))
	now := v.now()
	var out []podVolume
	for _, dir := range dirs {
		if info, err := os.Lstat(dir); err != nil || !info.IsDir() {
			continue
		}
		v.mu.Lock()
		c, ok := v.cache[dir]
		v.mu.Unlock()
		if !ok || !now.Before(c.until) {
			start := time.Now()
			c = cachedVolume{podVolume: measureVolume(dir, now)}
			c.until = now.Add(min(max(volumeStatsCostRatio*time.Since(start), volumeStatsMinPeriod), volumeStatsMaxPeriod))
			v.mu.Lock()
			v.cache[dir] = c
			v.mu.Unlock()
		}
		pv := c.podVolume
		pv.ephemeral = localEphemeral(spec, dir)
		out = append(out, pv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].stats.Name < out[j].stats.Name })
	return out
}

// forgetExcept drops the cached measures of pods not in keep.
func (v *volumeUsage) forgetExcept(keep map[string]bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for dir := range v.cache {
		rel, err := filepath.Rel(filepath.Join(v.rootDir, "pods"), dir)
		if err != nil {
			continue
		}
		if uid, _, _ := strings.Cut(rel, string(filepath.Separator)); !keep[uid] {
			delete(v.cache, dir)
		}
	}
}

// measureVolume measures the volume in dir; whether it is ephemeral is
// for the caller to say.
func measureVolume(dir string, now time.Time) podVolume {
	var used, inodes uint64
	seen := map[uint64]bool{}
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil //nolint:nilerr // a file removed meanwhile, or unreadable: skip it
		}
		info, err := d.Info()
		if err != nil {
			return nil //nolint:nilerr // removed since it was listed: skip it
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			used += uint64(info.Size())
			inodes++
			return nil
		}
		if st.Nlink > 1 {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		used += uint64(st.Blocks) * 512
		inodes++
		return nil
	})
	t := metav1.NewTime(now)
	fsStats := statsapi.FsStats{Time: t, UsedBytes: ptrTo(used), InodesUsed: ptrTo(inodes)}
	if u, err := statfs(dir); err == nil {
		fsStats.CapacityBytes, fsStats.AvailableBytes = ptrTo(u.capacity), ptrTo(u.available)
		fsStats.Inodes, fsStats.InodesFree = ptrTo(u.inodes), ptrTo(u.inodesFree)
	}
	return podVolume{stats: statsapi.VolumeStats{Name: filepath.Base(dir), FsStats: fsStats}}
}

// localEphemeral reports whether the volume in dir counts as the pod's
// local ephemeral storage. With the pod's spec it is the kubelet's
// util.IsLocalEphemeralVolume, which volume_stat_calculator.go applies to
// the volume's spec: gitRepo, configMap and an emptyDir of the default
// medium, not one of medium Memory or HugePages (tmpfs and hugetlbfs use
// no disk), nor secrets, downwardAPI or projected volumes (tmpfs in the
// kubelet). Without the spec (a pod the agent has dropped whose
// directory remains), by what is on disk: a configMap, or an emptyDir
// that is not a tmpfs or hugetlbfs mounted on its own.
func localEphemeral(pod *v1.Pod, dir string) bool {
	if pod != nil {
		name := filepath.Base(dir)
		for i := range pod.Spec.Volumes {
			if v := &pod.Spec.Volumes[i]; v.Name == name {
				return volumes.IsLocalEphemeral(v)
			}
		}
	}
	switch filepath.Base(filepath.Dir(dir)) {
	case "kubernetes.io~configmap":
		return true
	case "kubernetes.io~empty-dir":
		return !memoryMount(dir)
	}
	return false
}

// memoryMount reports whether dir is a tmpfs or hugetlbfs mounted on its
// own (an emptyDir of medium Memory or HugePages), not a directory on
// one.
func memoryMount(dir string) bool {
	var fs unix.Statfs_t
	if unix.Statfs(dir, &fs) != nil || fs.Type != unix.TMPFS_MAGIC && fs.Type != unix.HUGETLBFS_MAGIC {
		return false
	}
	var st, parent unix.Stat_t
	if unix.Stat(dir, &st) != nil || unix.Stat(filepath.Dir(dir), &parent) != nil {
		return false
	}
	return st.Dev != parent.Dev
}
