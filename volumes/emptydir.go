package volumes

import (
	"context"
	"fmt"
	"os"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// Mounter mounts and unmounts the tmpfs of memory-backed emptyDir volumes.
type Mounter interface {
	// MountTmpfs mounts a tmpfs of at most sizeBytes (no limit when 0) on
	// target.
	MountTmpfs(target string, sizeBytes int64) error
	Unmount(target string) error
	IsMountPoint(path string) (bool, error)
}

func (m *Manager) setupEmptyDir(ctx context.Context, pod *v1.Pod, name, dir string, src *v1.EmptyDirVolumeSource) error {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	medium := v1.StorageMediumDefault
	if src != nil {
		medium = src.Medium
	}
	switch medium {
	case v1.StorageMediumDefault:
	case v1.StorageMediumMemory:
		if err := m.mountTmpfs(ctx, pod, name, dir, src); err != nil {
			return err
		}
	default:
		return unsupported(name, fmt.Sprintf("emptyDir medium %q", medium))
	}
	return os.Chmod(dir, 0o777) // umask
}

func (m *Manager) mountTmpfs(ctx context.Context, pod *v1.Pod, name, dir string, src *v1.EmptyDirVolumeSource) error {
	logger := klog.FromContext(ctx)
	if m.Mounter == nil {
		logger.V(2).Info("Not running as root, memory-backed emptyDir is a plain directory", "pod", klog.KObj(pod), "volume", name)
		return nil
	}
	mounted, err := m.Mounter.IsMountPoint(dir)
	if err != nil {
		return err
	}
	if mounted {
		return nil
	}
	var size int64
	if src.SizeLimit != nil {
		size = src.SizeLimit.Value()
	}
	if err := m.Mounter.MountTmpfs(dir, size); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	logger.V(4).Info("Mounted tmpfs", "pod", klog.KObj(pod), "volume", name, "sizeBytes", size)
	return nil
}
