package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// PodStorage returns the stats of the node's pods as /stats/summary has
// them, with the local storage each uses (volumes measured as volumeUsage
// says, containers' writable layers from CRI stats, log files, the pod's
// ephemeral storage), and whether the runtime's image filesystem is
// another than the root dir's (the kubelet's HasDedicatedImageFs: then a
// container's writable layer does not count against its
// ephemeral-storage limit). The eviction manager reads it.
func (s *Server) PodStorage(ctx context.Context) ([]statsapi.PodStats, bool, error) {
	pods, err := s.stats.podStats(ctx, false, nil)
	if err != nil {
		return nil, false, err
	}
	return pods, s.stats.dedicatedImageFs(ctx), nil
}

// dedicatedImageFs reports whether the runtime keeps its images on another
// device than the root dir's; false when it cannot tell.
func (p *statsProvider) dedicatedImageFs(ctx context.Context) bool {
	if p.images == nil {
		return false
	}
	resp, err := p.images.ImageFsInfo(ctx)
	if err != nil {
		klog.FromContext(ctx).V(4).Info("ImageFsInfo failed; taking the image filesystem for the root dir's", "err", err)
		return false
	}
	fss := resp.GetImageFilesystems()
	if len(fss) == 0 || fss[0].GetFsId().GetMountpoint() == "" {
		return false
	}
	image, err1 := os.Stat(fss[0].GetFsId().GetMountpoint())
	root, err2 := os.Stat(p.rootDir)
	if err1 != nil || err2 != nil {
		return false
	}
	is, ok1 := image.Sys().(*syscall.Stat_t)
	rs, ok2 := root.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && is.Dev != rs.Dev
}

// NodeFsStats is the filesystem of the root directory (nodefs): its size,
// free space and inodes, for the eviction manager's disk signals.
func (s *Server) NodeFsStats(context.Context) (*statsapi.FsStats, error) {
	fs, err := statfs(s.stats.rootDir)
	if err != nil {
		return nil, fmt.Errorf("node filesystem stats: %w", err)
	}
	return fsStats(metav1.Now(), fs), nil
}

// ImageFsStats returns the runtime's image filesystem as /stats/summary's
// node.runtime.imageFs has it: the runtime's usage (CRI ImageFsInfo) with
// the capacity and available bytes of the filesystem under the mount point
// it reports (statfs), as the kubelet's stats provider ImageFsStats. Both
// are missing when that mount point cannot be read. The image garbage
// collector (package imagegc) reads it.
func (s *Server) ImageFsStats(ctx context.Context) (*statsapi.FsStats, error) {
	if s.stats.images == nil {
		return nil, errors.New("no image service")
	}
	resp, err := s.stats.images.ImageFsInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("image filesystem info: %w", err)
	}
	fs := runtimeFs(resp.GetImageFilesystems())
	if fs == nil {
		return nil, errors.New("imageFs information is unavailable")
	}
	return fs, nil
}
