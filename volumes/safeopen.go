package volumes

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Everything below a pod's volume directory may have been written by a
// container racing the agent. The functions here reach a path below a
// directory the agent made one component at a time, from a file descriptor
// of the parent, never following a symbolic link, so what they open or
// create is below that directory whatever the container does meanwhile.

// errSymlink is returned when a path component is a symbolic link.
var errSymlink = errors.New("is a symbolic link")

// splitRel cleans rel and returns its components; it refuses absolute paths
// and paths that climb out.
func splitRel(rel string) ([]string, error) {
	clean := filepath.Clean(rel)
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return nil, fmt.Errorf("path %q must be relative and stay inside its directory", rel)
	}
	if clean == "." {
		return nil, nil
	}
	return strings.Split(clean, "/"), nil
}

// openDirNoFollow opens a directory the agent made, refusing a symbolic
// link in its last component.
func openDirNoFollow(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return fd, nil
}

// openBeneath opens root/rel with flags, walking rel one component at a time
// with O_NOFOLLOW. A symbolic link in any component fails with errSymlink.
// With mkdirMode non-zero, missing directories are created with that mode
// (chmod'ed, so the umask does not apply), the last one included, which is
// then returned open as a directory. flags should include O_PATH or
// an access mode; O_NOFOLLOW and O_CLOEXEC are always added.
func openBeneath(root, rel string, flags int, mkdirMode uint32) (int, error) {
	parts, err := splitRel(rel)
	if err != nil {
		return -1, err
	}
	fd, err := openDirNoFollow(root)
	if err != nil {
		return -1, err
	}
	cur := root
	for i, part := range parts {
		last := i == len(parts)-1
		f := unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if last {
			f = flags | unix.O_NOFOLLOW | unix.O_CLOEXEC
		}
		cur = filepath.Join(cur, part)
		child, err := unix.Openat(fd, part, f, 0)
		if errors.Is(err, unix.ENOENT) && mkdirMode != 0 {
			if err = unix.Mkdirat(fd, part, mkdirMode); err == nil || errors.Is(err, unix.EEXIST) {
				child, err = unix.Openat(fd, part, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
				if err == nil {
					err = unix.Fchmod(child, mkdirMode)
				}
			}
		}
		_ = unix.Close(fd)
		if err != nil {
			if child >= 0 {
				_ = unix.Close(child)
			}
			if errors.Is(err, unix.ELOOP) {
				return -1, fmt.Errorf("%s %w", cur, errSymlink)
			}
			return -1, &os.PathError{Op: "open", Path: cur, Err: err}
		}
		var st unix.Stat_t
		if err := unix.Fstat(child, &st); err != nil {
			_ = unix.Close(child)
			return -1, &os.PathError{Op: "stat", Path: cur, Err: err}
		}
		switch {
		case st.Mode&unix.S_IFMT == unix.S_IFLNK:
			// O_PATH|O_NOFOLLOW opens the link itself.
			_ = unix.Close(child)
			return -1, fmt.Errorf("%s %w", cur, errSymlink)
		case !last && st.Mode&unix.S_IFMT != unix.S_IFDIR:
			_ = unix.Close(child)
			return -1, &os.PathError{Op: "open", Path: cur, Err: unix.ENOTDIR}
		}
		fd = child
	}
	if len(parts) == 0 && flags&unix.O_PATH != 0 {
		return fd, nil
	}
	if len(parts) == 0 {
		// root itself, reopened with the caller's flags.
		child, err := unix.Openat(fd, ".", flags|unix.O_CLOEXEC, 0)
		_ = unix.Close(fd)
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: root, Err: err}
		}
		return child, nil
	}
	return fd, nil
}
