package volumes

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	dataDirName    = "..data"
	newDataDirName = "..data_tmp"
	maxPathLength  = 4096
	maxNameLength  = 255
)

// file is one file of a volume payload.
type file struct {
	data []byte
	mode os.FileMode
}

// validatePath rejects payload paths that could escape the volume directory
// or clash with the atomic writer's own entries.
func validatePath(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	if len(p) > maxPathLength {
		return fmt.Errorf("path %q is longer than %d characters", p, maxPathLength)
	}
	if filepath.IsAbs(p) {
		return fmt.Errorf("path %q must be relative", p)
	}
	parts := strings.Split(p, "/")
	for _, part := range parts {
		if part == ".." {
			return fmt.Errorf("path %q must not contain '..'", p)
		}
		if len(part) > maxNameLength {
			return fmt.Errorf("path %q has an element longer than %d characters", p, maxNameLength)
		}
	}
	if strings.HasPrefix(parts[0], "..") {
		return fmt.Errorf("path %q must not start with '..'", p)
	}
	return nil
}

// validatePayload checks every path and that no file is also a directory of
// another file.
func validatePayload(payload map[string]file) (map[string]file, error) {
	clean := make(map[string]file, len(payload))
	for p, f := range payload {
		// Both spellings: "./..data" must not become "..data".
		if err := validatePath(p); err != nil {
			return nil, err
		}
		c := filepath.Clean(p)
		if err := validatePath(c); err != nil || c == "." {
			return nil, fmt.Errorf("path %q must name a file inside the volume", p)
		}
		clean[c] = f
	}
	for p := range clean {
		for d := filepath.Dir(p); d != "."; d = filepath.Dir(d) {
			if _, ok := clean[d]; ok {
				return nil, fmt.Errorf("path %q is both a file and a directory", d)
			}
		}
	}
	return clean, nil
}

// versionName matches the names writeAtomic gives its versions
// ("..2006_01_02_15_04_05." and MkdirTemp's random digits).
var versionName = regexp.MustCompile(`^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d+$`)

// writeAtomic makes dir hold exactly payload, switching atomically from the
// previous content. It reports whether anything was written.
//
// dir is made by the agent, but what is inside may not be: it trusts no
// entry it finds. "..data" counts only when it is a link to a version
// directory directly inside dir, a version is compared through file
// descriptors opened without following links, a user-visible entry is kept
// only when it is exactly "name -> ..data/name", and every other entry is
// removed as it is (a link is unlinked, never followed).
//
// With gid >= 0 (the pod's fsGroup) every directory and file of a new
// version, and the volume directory, belong to that group, as the
// kubelet's SetVolumeOwnership makes them; the modes already carry the
// group bits (withFSGroup).
func writeAtomic(dir string, payload map[string]file, gid int) (bool, error) {
	payload, err := validatePayload(payload)
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	if gid >= 0 {
		if err := os.Chown(dir, -1, gid); err != nil {
			return false, err
		}
		if err := os.Chmod(dir, 0o755|fsGroupDirBits); err != nil {
			return false, err
		}
	}
	want := topLevel(payload)
	current := currentVersion(dir)
	if current != "" && sameContent(dir, current, payload) {
		if err := ensureUserLinks(dir, want); err != nil {
			return false, err
		}
		return false, prune(dir, current, want)
	}

	tsDir, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return false, err
	}
	if err := writePayload(tsDir, payload, gid); err != nil {
		_ = os.RemoveAll(tsDir)
		return false, err
	}
	if err := ensureUserLinks(dir, want); err != nil {
		return false, err
	}
	tmpLink := filepath.Join(dir, newDataDirName)
	if err := os.RemoveAll(tmpLink); err != nil {
		return false, err
	}
	if err := os.Symlink(filepath.Base(tsDir), tmpLink); err != nil {
		return false, err
	}
	if err := os.Rename(tmpLink, filepath.Join(dir, dataDirName)); err != nil {
		return false, err
	}
	// Old versions, user links the new version no longer has and anything
	// else found in dir go.
	return true, prune(dir, filepath.Base(tsDir), want)
}

// currentVersion returns the version "..data" points to, or "" when it is
// missing or not a link to a version directory directly inside dir.
func currentVersion(dir string) string {
	target, err := os.Readlink(filepath.Join(dir, dataDirName))
	if err != nil || !versionName.MatchString(target) {
		return ""
	}
	fi, err := os.Lstat(filepath.Join(dir, target))
	if err != nil || !fi.IsDir() {
		return ""
	}
	return target
}

// prune removes every entry of dir but "..data", the version keep and the
// user links of want. Entries are removed as they are: os.RemoveAll unlinks
// a link and never follows one below the entry.
func prune(dir, keep string, want map[string]bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if name == dataDirName || name == keep || want[name] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// writePayload writes payload into root, a directory writeAtomic has just
// made; files are created exclusively, never through a link.
func writePayload(root string, payload map[string]file, gid int) error {
	dirMode := os.FileMode(0o755)
	if gid >= 0 {
		dirMode |= fsGroupDirBits
	}
	if err := os.Chmod(root, dirMode); err != nil {
		return err
	}
	if gid >= 0 {
		if err := os.Chown(root, -1, gid); err != nil {
			return err
		}
	}
	for p, f := range payload {
		full := filepath.Join(root, p)
		if err := mkdirGroup(root, filepath.Dir(p), dirMode, gid); err != nil {
			return err
		}
		out, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, f.mode.Perm())
		if err != nil {
			return err
		}
		_, err = out.Write(f.data)
		if err == nil && gid >= 0 {
			err = out.Chown(-1, gid)
		}
		if err == nil {
			err = out.Chmod(f.mode.Perm()) // umask
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// fsGroupDirBits are what the kubelet adds to a directory of a volume
// owned by the pod's fsGroup: setgid, so new files inherit the group, and
// group read and search.
const fsGroupDirBits = os.ModeSetgid | 0o550

// withFSGroup adds the group read bits to every file's mode, as the
// kubelet's SetVolumeOwnership does for read-only volumes.
func withFSGroup(payload map[string]file) {
	for p, f := range payload {
		f.mode |= 0o440
		payload[p] = f
	}
}

// mkdirGroup makes root/rel and its missing parents with mode and group
// (gid < 0: no group), in a version directory the writer has just made.
func mkdirGroup(root, rel string, mode os.FileMode, gid int) error {
	if rel == "." {
		return nil
	}
	cur := root
	for _, part := range strings.Split(rel, "/") {
		cur = filepath.Join(cur, part)
		err := os.Mkdir(cur, 0o755)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		if gid >= 0 {
			if err := os.Chown(cur, -1, gid); err != nil {
				return err
			}
		}
		if err := os.Chmod(cur, mode); err != nil {
			return err
		}
	}
	return nil
}

// ensureUserLinks makes "name -> ..data/name" of every name in want. An
// entry of that name that is anything else is removed first.
func ensureUserLinks(dir string, want map[string]bool) error {
	for name := range want {
		link := filepath.Join(dir, name)
		target := filepath.Join(dataDirName, name)
		if cur, err := os.Readlink(link); err == nil && cur == target {
			continue
		}
		if err := os.RemoveAll(link); err != nil {
			return err
		}
		if err := os.Symlink(target, link); err != nil {
			return err
		}
	}
	return nil
}

func topLevel(payload map[string]file) map[string]bool {
	names := map[string]bool{}
	for p := range payload {
		first, _, _ := strings.Cut(p, "/")
		names[first] = true
	}
	return names
}

// sameContent reports whether dir/version holds exactly payload: the same
// regular files with the same modes and contents, and nothing else. It
// reads through file descriptors and follows no link: a link anywhere in
// the version makes it differ.
func sameContent(dir, version string, payload map[string]file) bool {
	for p, f := range payload {
		fd, err := openBeneath(dir, filepath.Join(version, p), unix.O_RDONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			return false
		}
		same := sameFile(os.NewFile(uintptr(fd), p), f)
		if !same {
			return false
		}
	}
	// Nothing else: count the entries without following links.
	n, ok := countFiles(dir, version)
	return ok && n == len(payload)
}

// sameFile compares an open regular file with f and closes it.
func sameFile(of *os.File, f file) bool {
	defer func() { _ = of.Close() }() // read only
	fi, err := of.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != f.mode.Perm() || fi.Size() != int64(len(f.data)) {
		return false
	}
	buf := make([]byte, len(f.data)+1)
	n, err := io.ReadFull(of, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return false
	}
	return bytes.Equal(buf[:n], f.data)
}

// countFiles counts the regular files below dir/rel, walking directories
// through descriptors opened without following links. It reports false
// when it meets anything but directories and regular files.
func countFiles(dir, rel string) (int, bool) {
	fd, err := openBeneath(dir, rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return 0, false
	}
	d := os.NewFile(uintptr(fd), rel)
	entries, err := d.ReadDir(-1)
	_ = d.Close()
	if err != nil {
		return 0, false
	}
	n := 0
	for _, e := range entries {
		switch {
		case e.Type().IsRegular():
			n++
		case e.IsDir():
			m, ok := countFiles(dir, filepath.Join(rel, e.Name()))
			if !ok {
				return 0, false
			}
			n += m
		default:
			return 0, false
		}
	}
	return n, true
}
