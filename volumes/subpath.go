package volumes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// subPathsDir is where the bind mounts of subPaths live in the pod
// directory, as the kubelet names it.
const subPathsDir = "volume-subpaths"

// SubPath returns the host path to give the runtime for the index-th mount
// of container, which mounts subPath of the volume at volumePath.
//
// A container may have planted links in the volume and may swap a
// directory for a link at any time, so the subPath is made safe as the
// kubelet does (its subpath_linux.go, the fix of CVE-2017-1002101 and
// CVE-2021-25741): missing directories are created without following
// links, the path is resolved and must stay inside the volume, then it is
// opened one component at a time with O_NOFOLLOW and that very file is
// bind-mounted, through /proc/self/fd, on
// <pod dir>/volume-subpaths/<volume>/<container>/<index>, which is what the
// runtime gets. Whatever the container does after the open, the runtime
// mounts what was checked. The mount is made again for every container
// start and removed with the pod (Teardown).
//
// Without a Mounter (not root) nothing can be bind-mounted: the checked
// path itself is returned, which leaves the runtime's own resolution as
// the race the bind mount closes.
func (m *Manager) SubPath(ctx context.Context, pod *v1.Pod, volume, container string, index int, volumePath, subPath string) (string, error) {
	parts, err := splitRel(subPath)
	if err != nil {
		return "", err
	}
	if len(parts) == 0 {
		return volumePath, nil
	}
	realRoot, err := filepath.EvalSymlinks(volumePath)
	if err != nil {
		return "", err
	}
	rootInfo, err := os.Stat(realRoot)
	if err != nil {
		return "", err
	}
	if err := makeSubPathDirs(realRoot, volumePath, parts, unixMode(rootInfo.Mode())); err != nil {
		return "", err
	}
	resolved, err := filepath.EvalSymlinks(filepath.Join(volumePath, filepath.Join(parts...)))
	if err != nil {
		// The cause would tell the pod which host paths exist.
		return "", errors.New("cannot be resolved inside the volume")
	}
	rel, err := relWithin(realRoot, resolved)
	if err != nil {
		return "", err
	}
	if m.Mounter == nil {
		return resolved, nil
	}
	fd, err := openBeneath(realRoot, rel, unix.O_PATH, 0)
	if err != nil {
		return "", err
	}
	defer func() { _ = unix.Close(fd) }()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", err
	}
	if !validName(volume) || !validName(container) {
		return "", fmt.Errorf("invalid volume %q or container %q name", volume, container)
	}
	target := filepath.Join(m.podDir(pod.UID), subPathsDir, volume, container, strconv.Itoa(index))
	if err := m.prepareTarget(target, st.Mode&unix.S_IFMT == unix.S_IFDIR); err != nil {
		return "", fmt.Errorf("prepare %s: %w", target, err)
	}
	source := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), fd)
	if err := m.Mounter.BindMount(source, target); err != nil {
		return "", fmt.Errorf("bind-mount subPath %q of volume %q on %s: %w", subPath, volume, target, err)
	}
	klog.FromContext(ctx).V(4).Info("Bind-mounted subPath", "pod", klog.KObj(pod), "volume", volume, "container", container, "subPath", subPath, "target", target)
	return target, nil
}

// makeSubPathDirs creates the missing directories of root/parts with mode,
// from the longest existing prefix, which must resolve inside realRoot. The
// new directories are made without following any link.
func makeSubPathDirs(realRoot, root string, parts []string, mode uint32) error {
	k := len(parts)
	var prefix string
	for ; k >= 0; k-- {
		p, err := filepath.EvalSymlinks(filepath.Join(append([]string{root}, parts[:k]...)...))
		if err == nil {
			prefix = p
			break
		}
		if !errors.Is(err, os.ErrNotExist) {
			return errors.New("cannot be resolved inside the volume")
		}
	}
	if k == len(parts) {
		return nil
	}
	if k < 0 {
		return fmt.Errorf("volume %s does not exist", root)
	}
	rel, err := relWithin(realRoot, prefix)
	if err != nil {
		return err
	}
	fd, err := openBeneath(realRoot, filepath.Join(rel, filepath.Join(parts[k:]...)), unix.O_PATH, mode)
	if err != nil {
		return fmt.Errorf("create subPath directories: %w", err)
	}
	return unix.Close(fd)
}

// relWithin returns p relative to root, or an error when p is not inside.
// The error does not name p: it would tell the pod where its links lead on
// the host.
func relWithin(root, p string) (string, error) {
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", errors.New("leads outside the volume")
	}
	return rel, nil
}

func validName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\")
}

// prepareTarget makes the mount point of a subPath: a directory or an
// empty file, with nothing mounted on it. Its parents are the agent's own,
// made without following a link (the bind mount would follow it).
func (m *Manager) prepareTarget(target string, dir bool) error {
	if err := m.unmountAll(target); err != nil {
		return err
	}
	if err := m.mkdirNoFollow(filepath.Dir(target), 0o750); err != nil {
		return err
	}
	fi, err := os.Lstat(target)
	switch {
	case err == nil && fi.IsDir() == dir && (dir || fi.Mode().IsRegular()):
		return nil
	case err == nil:
		if err := os.Remove(target); err != nil {
			return err
		}
	case !errors.Is(err, os.ErrNotExist):
		return err
	}
	if dir {
		return os.Mkdir(target, 0o750)
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o640)
	if err != nil {
		return err
	}
	return f.Close()
}

// unmountAll unmounts everything mounted at or below dir, reading the
// mount table again after each unmount (a mount may hide another), and
// fails when something stays.
func (m *Manager) unmountAll(dir string) error {
	for range 100 {
		points, err := m.Mounter.MountPoints(dir)
		if err != nil {
			return err
		}
		if len(points) == 0 {
			return nil
		}
		if err := m.Mounter.Unmount(points[0]); err != nil {
			return fmt.Errorf("unmount %s: %w", points[0], err)
		}
	}
	return fmt.Errorf("%s: still mounted after 100 unmounts", dir)
}

// unixMode is mode's permission bits with its setgid and sticky bits, as
// chmod(2) and the tmpfs mode= option take them: a subPath directory the
// agent creates gets its volume's setgid (fsGroup) and sticky (tmpfs)
// bits too, as the kubelet's doSafeMakeDir.
func unixMode(mode os.FileMode) uint32 {
	m := uint32(mode.Perm())
	if mode&os.ModeSetgid != 0 {
		m |= unix.S_ISGID
	}
	if mode&os.ModeSticky != 0 {
		m |= unix.S_ISVTX
	}
	return m
}
