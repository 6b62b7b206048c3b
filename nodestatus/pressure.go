package nodestatus

import (
	"context"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/eviction"
)

// pressureConditions are MemoryPressure, DiskPressure and PIDPressure
// from the eviction thresholds, as the kubelet's eviction manager sets
// them, by the rules of eviction.Tracker: True while a threshold of the
// condition is met (a soft one too, before its grace period has passed;
// a threshold that evicted until its minimum reclaim is available) and
// for the pressure transition period after, False otherwise, and False
// for good when none of its signals has a threshold. A condition that is
// not True and whose only, or main, reading failed is Unknown (the
// kubelet keeps its last word instead). now is the time of the readings.
//
//   - MemoryPressure: memory.available, MemAvailable against the memory.
//   - DiskPressure: nodefs.available and nodefs.inodesFree on RootDir's
//     filesystem, imagefs.available and imagefs.inodesFree on the
//     runtime's image filesystem (the same one unless the runtime keeps
//     its images elsewhere, so that on one disk the stricter of the two
//     applies, as in the kubelet). A filesystem that reports no inodes
//     has no inode signals.
//   - PIDPressure: pid.available, the limit on tasks less their number.
func (c *Controller) pressureConditions(ctx context.Context, h hostStats, now time.Time) []v1.NodeCondition {
	obs := eviction.Observations{}
	if h.memErr == nil {
		obs[signalMemoryAvailable] = eviction.Observation{Available: int64(h.memAvail), Capacity: int64(h.memTotal)}
	}
	if h.fsErr == nil {
		observeFs(obs, signalNodeFsAvailable, signalNodeFsInodesFree, h.fs)
	}
	if img := c.imageFs(ctx); img != nil {
		observeFs(obs, signalImageFsAvailable, signalImageFsInodesFree, *img)
	}
	if h.pidErr == nil {
		obs[signalPIDAvailable] = eviction.Observation{Available: int64(h.pidMax) - int64(h.pids), Capacity: int64(h.pidMax)}
	}
	pressure := c.pressure.Observe(obs, now).Pressure

	return []v1.NodeCondition{
		pressureCondition(v1.NodeMemoryPressure, h.memErr, pressure[v1.NodeMemoryPressure],
			"KubeletHasSufficientMemory", "nodeagent has sufficient memory available",
			"KubeletHasInsufficientMemory", "nodeagent has insufficient memory available"),
		pressureCondition(v1.NodeDiskPressure, h.fsErr, pressure[v1.NodeDiskPressure],
			"KubeletHasNoDiskPressure", "nodeagent has no disk pressure",
			"KubeletHasDiskPressure", "nodeagent has disk pressure"),
		pressureCondition(v1.NodePIDPressure, h.pidErr, pressure[v1.NodePIDPressure],
			"KubeletHasSufficientPID", "nodeagent has sufficient PID available",
			"KubeletHasInsufficientPID", "nodeagent has insufficient PID available"),
	}
}

// observeFs adds a filesystem's space and, when it reports inodes, its
// inodes to obs.
func observeFs(obs eviction.Observations, space, inodes string, fs FsStats) {
	obs[space] = eviction.Observation{Available: int64(fs.Available), Capacity: int64(fs.Capacity)}
	if fs.Inodes > 0 {
		obs[inodes] = eviction.Observation{Available: int64(fs.InodesFree), Capacity: int64(fs.Inodes)}
	}
}

// imageFs reads the filesystem under the first image filesystem CRI
// ImageFsInfo lists, as the kubelet's stats do for the imagefs signals.
// It is nil when no imagefs signal has a threshold or it cannot be read:
// those signals are then not observed, as in the kubelet.
func (c *Controller) imageFs(ctx context.Context) *FsStats {
	if !c.pressure.Watches(signalImageFsAvailable) && !c.pressure.Watches(signalImageFsInodesFree) {
		return nil
	}
	logger := klog.FromContext(ctx)
	ictx, cancel := context.WithTimeout(ctx, runtimeTimeout)
	defer cancel()
	resp, err := c.rt.ImageFsInfo(ictx)
	if err != nil {
		logger.V(4).Info("Unable to get the image filesystem; imagefs thresholds not checked", "err", err)
		return nil
	}
	fss := resp.GetImageFilesystems()
	if len(fss) == 0 || fss[0].GetFsId().GetMountpoint() == "" {
		logger.V(4).Info("The runtime reports no image filesystem; imagefs thresholds not checked")
		return nil
	}
	mp := fss[0].GetFsId().GetMountpoint()
	st, err := c.host.Filesystem(mp)
	if err != nil {
		logger.V(2).Info("Unable to read the image filesystem; imagefs thresholds not checked", "path", mp, "err", err)
		return nil
	}
	return &st
}
