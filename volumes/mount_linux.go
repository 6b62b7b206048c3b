package volumes

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

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

func (unixMounter) MountTmpfs(target string, sizeBytes int64, mode os.FileMode) error {
	opts := fmt.Sprintf("mode=%04o", unixMode(mode))
	if sizeBytes > 0 {
		opts += fmt.Sprintf(",size=%d", sizeBytes)
	}
	return unix.Mount("tmpfs", target, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts)
}

// MountHugetlbfs mounts a hugetlbfs as the kubelet does (source "nodev",
// only a pagesize option: the root is hugetlbfs's default 0755, root's),
// nosuid and nodev as the tmpfs mounts.
func (unixMounter) MountHugetlbfs(target string, pageSize int64) error {
	return unix.Mount("nodev", target, "hugetlbfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("pagesize=%d", pageSize))
}

func (unixMounter) BindMount(source, target string) error {
	return unix.Mount(source, target, "", unix.MS_BIND, "")
}

// Unmount unmounts target; a mount that is busy or hidden under another
// is detached lazily.
func (unixMounter) Unmount(target string) error {
	err := unix.Unmount(target, unix.UMOUNT_NOFOLLOW)
	if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EINVAL) {
		err = unix.Unmount(target, unix.UMOUNT_NOFOLLOW|unix.MNT_DETACH)
	}
	return err
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

// MountPoints lists the mount points at or below dir, from
// /proc/self/mountinfo, deepest first.
func (unixMounter) MountPoints(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	return mountPointsUnder(bufio.NewScanner(f), dir)
}

func mountPointsUnder(sc *bufio.Scanner, dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	var out []string
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMountPath(fields[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sortDeepestFirst(out)
	return out, nil
}

// unescapeMountPath undoes the octal escapes (\040 for a space) of
// mountinfo.
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
