package volumes

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	v1 "k8s.io/api/core/v1"
)

// setupHostPath checks (or creates) a hostPath volume as its type asks
// and returns the path itself: the runtime bind-mounts the host's file or
// directory. Nothing of it is removed when the pod goes.
func setupHostPath(src *v1.HostPathVolumeSource) (string, error) {
	path := filepath.Clean(src.Path)
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("hostPath %q is not an absolute path", src.Path)
	}
	typ := v1.HostPathUnset
	if src.Type != nil {
		typ = *src.Type
	}
	info, err := os.Stat(path)
	missing := errors.Is(err, fs.ErrNotExist)
	if err != nil && !missing {
		return "", fmt.Errorf("hostPath %s: %w", path, err)
	}
	is := func(want fs.FileMode, what string) error {
		if missing {
			return fmt.Errorf("hostPath type check failed: %s does not exist", path)
		}
		if info.Mode().Type() != want {
			return fmt.Errorf("hostPath type check failed: %s is not a %s", path, what)
		}
		return nil
	}
	switch typ {
	case v1.HostPathUnset:
		// No checks: the runtime creates a missing path as a directory.
		err = nil
	case v1.HostPathDirectoryOrCreate:
		if missing {
			if err := os.MkdirAll(path, 0o755); err != nil {
				return "", fmt.Errorf("create hostPath directory %s: %w", path, err)
			}
			return path, nil
		}
		err = is(fs.ModeDir, "directory")
	case v1.HostPathDirectory:
		err = is(fs.ModeDir, "directory")
	case v1.HostPathFileOrCreate:
		if missing {
			f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return "", fmt.Errorf("create hostPath file %s: %w", path, err)
			}
			return path, f.Close()
		}
		err = is(0, "file")
	case v1.HostPathFile:
		err = is(0, "file")
	case v1.HostPathSocket:
		err = is(fs.ModeSocket, "socket")
	case v1.HostPathCharDev:
		err = is(fs.ModeDevice|fs.ModeCharDevice, "character device")
	case v1.HostPathBlockDev:
		err = is(fs.ModeDevice, "block device")
	default:
		err = fmt.Errorf("hostPath %s: unknown type %q", path, typ)
	}
	if err != nil {
		return "", err
	}
	return path, nil
}
