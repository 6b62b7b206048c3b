package volumes

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
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
		if err := validatePath(p); err != nil {
			return nil, err
		}
		clean[filepath.Clean(p)] = f
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

// writeAtomic makes dir hold exactly payload, switching atomically from the
// previous content. It reports whether anything was written.
func writeAtomic(dir string, payload map[string]file) (bool, error) {
	payload, err := validatePayload(payload)
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	oldTS, err := os.Readlink(filepath.Join(dir, dataDirName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if oldTS != "" && sameContent(filepath.Join(dir, oldTS), payload) {
		return false, ensureUserLinks(dir, payload)
	}

	tsDir, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return false, err
	}
	if err := writePayload(tsDir, payload); err != nil {
		_ = os.RemoveAll(tsDir)
		return false, err
	}
	if err := ensureUserLinks(dir, payload); err != nil {
		return false, err
	}
	tmpLink := filepath.Join(dir, newDataDirName)
	if err := os.Remove(tmpLink); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if err := os.Symlink(filepath.Base(tsDir), tmpLink); err != nil {
		return false, err
	}
	if err := os.Rename(tmpLink, filepath.Join(dir, dataDirName)); err != nil {
		return false, err
	}

	// Remove what the new version no longer has, then the old version.
	if oldTS != "" {
		want := topLevel(payload)
		entries, _ := os.ReadDir(filepath.Join(dir, oldTS))
		for _, e := range entries {
			if !want[e.Name()] {
				if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return true, err
				}
			}
		}
		if err := os.RemoveAll(filepath.Join(dir, oldTS)); err != nil {
			return true, err
		}
	}
	return true, nil
}

func writePayload(root string, payload map[string]file) error {
	if err := os.Chmod(root, 0o755); err != nil {
		return err
	}
	for p, f := range payload {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, f.data, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(full, f.mode); err != nil { // umask
			return err
		}
	}
	return nil
}

// ensureUserLinks creates the "name -> ..data/name" symlink of every
// top-level entry of payload.
func ensureUserLinks(dir string, payload map[string]file) error {
	for name := range topLevel(payload) {
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

// sameContent reports whether root holds exactly payload.
func sameContent(root string, payload map[string]file) bool {
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		f, ok := payload[rel]
		if !ok {
			return errors.New("extra file")
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm() != f.mode.Perm() {
			return errors.New("mode changed")
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !bytes.Equal(data, f.data) {
			return errors.New("content changed")
		}
		n++
		return nil
	})
	return err == nil && n == len(payload)
}
