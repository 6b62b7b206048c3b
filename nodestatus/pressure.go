package nodestatus

import (
	"context"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// pressureConditions are MemoryPressure, DiskPressure and PIDPressure from
// the hard eviction thresholds, as the kubelet's eviction manager sets
// them (nodeConditions of the thresholds met): True while a signal of the
// condition is short, False otherwise, and False for good when none of
// its signals has a threshold. A condition whose only, or main, reading
// failed is Unknown (the kubelet keeps its last word instead).
//
//   - MemoryPressure: memory.available, MemAvailable against the memory.
//   - DiskPressure: nodefs.available and nodefs.inodesFree on RootDir's
//     filesystem, imagefs.available and imagefs.inodesFree on the
//     runtime's image filesystem (the same one unless the runtime keeps
//     its images elsewhere, so that on one disk the stricter of the two
//     applies, as in the kubelet).
//   - PIDPressure: pid.available, the limit on tasks less their number.
func (c *Controller) pressureConditions(ctx context.Context, h hostStats) []v1.NodeCondition {
	memory := c.short(signalMemoryAvailable, int64(h.memAvail), int64(h.memTotal))

	disk := false
	if h.fsErr == nil {
		disk = c.shortFs(signalNodeFsAvailable, signalNodeFsInodesFree, h.fs)
	}
	if img := c.imageFs(ctx); img != nil {
		disk = disk || c.shortFs(signalImageFsAvailable, signalImageFsInodesFree, *img)
	}
	diskErr := h.fsErr
	if disk {
		diskErr = nil // short on the image filesystem
	}

	pid := c.short(signalPIDAvailable, int64(h.pidMax)-int64(h.pids), int64(h.pidMax))

	return []v1.NodeCondition{
		pressureCondition(v1.NodeMemoryPressure, h.memErr, memory,
			"KubeletHasSufficientMemory", "nodeagent has sufficient memory available",
			"KubeletHasInsufficientMemory", "nodeagent has insufficient memory available"),
		pressureCondition(v1.NodeDiskPressure, diskErr, disk,
			"KubeletHasNoDiskPressure", "nodeagent has no disk pressure",
			"KubeletHasDiskPressure", "nodeagent has disk pressure"),
		pressureCondition(v1.NodePIDPressure, h.pidErr, pid,
			"KubeletHasSufficientPID", "nodeagent has sufficient PID available",
			"KubeletHasInsufficientPID", "nodeagent has insufficient PID available"),
	}
}

// short reports whether less of a signal's resource is available than its
// hard eviction threshold allows (the kubelet's thresholdsMet); a signal
// without a threshold never is.
func (c *Controller) short(signal string, available, capacity int64) bool {
	t, ok := c.cfg.EvictionHard[signal]
	return ok && available < t.Value(capacity)
}

// shortFs reports whether a filesystem is short of space or of inodes.
func (c *Controller) shortFs(space, inodes string, fs FsStats) bool {
	return c.short(space, int64(fs.Available), int64(fs.Capacity)) ||
		c.short(inodes, int64(fs.InodesFree), int64(fs.Inodes))
}

// imageFs reads the filesystem under the first image filesystem CRI
// ImageFsInfo lists, as the kubelet's stats do for the imagefs signals.
// It is nil when no imagefs signal has a threshold or it cannot be read:
// those signals are then not observed, as in the kubelet.
func (c *Controller) imageFs(ctx context.Context) *FsStats {
	_, avail := c.cfg.EvictionHard[signalImageFsAvailable]
	_, inodes := c.cfg.EvictionHard[signalImageFsInodesFree]
	if !avail && !inodes {
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
