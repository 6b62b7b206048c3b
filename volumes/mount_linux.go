package volumes

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// defaultMounter mounts for real only when running as root.
func defaultMounter() Mounter {
	if os.Geteuid() != 0 {
		return nil
	}
	return unixMounter{}
}

type unixMounter struct{}

func (unixMounter) MountTmpfs(target string, sizeBytes int64) error {
	opts := "mode=0777"
	if sizeBytes > 0 {
		opts += fmt.Sprintf(",size=%d", sizeBytes)
	}
	return unix.Mount("tmpfs", target, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts)
}

func (unixMounter) Unmount(target string) error {
	return unix.Unmount(target, 0)
}

// IsMountPoint reports whether path is on another device than its parent,
// which holds for the tmpfs mounts this package makes.
func (unixMounter) IsMountPoint(path string) (bool, error) {
	var st, parent unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		if os.IsNotExist(err) {
			return false, nil
		}
		return false, err
	}
	if err := unix.Lstat(filepath.Dir(path), &parent); err != nil {
		return false, err
	}
	return st.Dev != parent.Dev, nil
}
