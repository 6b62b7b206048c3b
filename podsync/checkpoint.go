package podsync

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// The checkpoint of the resources granted to pods (resize.go), as the
// kubelet's allocation manager keeps allocated_pods_state in its root dir
// (pkg/kubelet/allocation, state/state_checkpoint.go): an agent restart
// must not grant a pod its spec again without the fit check, or a resize
// deferred before the restart would run on a node without room for it.
//
// The file, <RootDir>/allocated_pods_state, holds the grants by pod UID
// (container name -> resources) as JSON, with the SHA-256 of that JSON.
// It is nodeagent's own format (the kubelet's checksum is a hash of Go
// structures) in nodeagent's own root dir. It is written whenever the
// grants change (admission, a granted resize, pods removed), to a
// temporary file in the root dir then renamed over the old one, so that a
// crash leaves the old file or the new one, never half of one; a failed
// write is logged and tried again at the next change.
//
// It is read once, at the first admission, allocation or status. A
// missing file means no grants (a first start). A file that is unusable
// (a link, not a regular file, larger than maxGrantsFile, not JSON, a
// checksum that does not match) is named in the log and ignored, and
// pods are then granted their current spec as they were before this
// checkpoint existed; the kubelet refuses to start instead ("please
// drain this node"), which a node agent that runs the node's pods should
// not do for a file it can do without. The next write replaces it. Any
// other failure to read it (too many open files, an I/O error, a denied
// access) says nothing of its content: it is logged once and the read is
// tried again at the next call, and nothing is written until it
// succeeds, so that a valid checkpoint is not overwritten with grants
// that do not include it. Temporary files left by a crash during a write
// are removed once the checkpoint is read.
//
// A grant read from the file is taken by its pod's first allocation (or
// admission): a pod whose spec asks for other resources goes through the
// fit check like any resize, once the agent's pod list is known (the
// kubelet's sourcesReady: the first GarbageCollect, which runs once the
// informer synced and the static pods were read); until then the pod
// runs with its checkpointed grant and its resize stays pending. Grants of
// pods that are gone are dropped then (the kubelet's RemoveOrphanedPods)
// (only then: a restored grant waits for its pod's worker); a grant
// taken by a pod is dropped, like the others, when the pod stops being
// active (forgetGone).
//
// What a running container was last given (the kubelet's
// actuated_pods_state) is not checkpointed: the runtime reports the
// cgroup settings a container runs with (ContainerStatus resources), and
// actuatedOf compares the grant with those after a restart; the memory
// request, which no cgroup holds, is taken as actuated.

// grantsFile is the checkpoint's name in the root dir.
const grantsFile = "allocated_pods_state"

// maxGrantsFile bounds what is read of the checkpoint: 4 MiB holds the
// grants of thousands of pods.
const maxGrantsFile = 4 << 20

// grantsCheckpoint is the file: the grants as JSON, and its checksum.
type grantsCheckpoint struct {
	Data     string `json:"data"`
	Checksum string `json:"checksum"` // SHA-256 of Data, hex
}

// grantsData is what Data holds.
type grantsData struct {
	Entries map[types.UID]allocation `json:"entries"`
}

// grantsPath is where the checkpoint is, "" without a root dir (no
// checkpoint).
func (s *Syncer) grantsPath() string {
	if s.cfg.RootDir == "" {
		return ""
	}
	return filepath.Join(s.cfg.RootDir, grantsFile)
}

// restoreGrants reads the checkpoint until it is read, or found missing
// or unusable; a.mu is held.
func (s *Syncer) restoreGrants(ctx context.Context) {
	a := &s.admission
	if a.loaded {
		return
	}
	path := s.grantsPath()
	if path == "" {
		a.loaded, a.podsKnown = true, true
		return
	}
	logger := klog.FromContext(ctx)
	grants, err := readGrants(path)
	if err != nil && !isUnusableCheckpoint(err) {
		if !a.loadFailed {
			logger.Error(err, "Reading the checkpoint of pod resource grants; trying again later, pods are granted their current spec meanwhile", "path", path)
			a.loadFailed = true
		}
		return
	}
	a.loaded = true
	a.podsKnown = true // unless grants are restored
	removeStaleGrantFiles(ctx, path)
	if err != nil {
		logger.Error(err, "Ignoring the checkpoint of pod resource grants: running pods are granted their current spec", "path", path)
		return
	}
	// A pod granted since the agent started (while the file did not
	// read) keeps that grant: it may run with it already.
	for uid := range a.allocated {
		delete(grants, uid)
	}
	if len(grants) == 0 {
		return
	}
	a.restored, a.podsKnown = grants, false
	logger.Info("Restored pod resource grants", "path", path, "pods", len(grants))
}

// removeStaleGrantFiles removes the temporary files writeGrants left
// beside path when the agent stopped between creating and renaming one:
// regular files only, never through a link. Errors are logged: a file
// left is only litter.
func removeStaleGrantFiles(ctx context.Context, path string) {
	stale, err := filepath.Glob(filepath.Join(filepath.Dir(path), grantsTempPattern(path)))
	if err != nil {
		return // the pattern is ours and well formed
	}
	for _, name := range stale {
		if st, err := os.Lstat(name); err != nil || !st.Mode().IsRegular() {
			continue
		}
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			klog.FromContext(ctx).Error(err, "Removing a stale temporary file of the checkpoint of pod resource grants", "path", name)
		}
	}
}

// grantsTempPattern is the name pattern of writeGrants' temporary files
// for the checkpoint at path, as os.CreateTemp and filepath.Glob take it.
func grantsTempPattern(path string) string {
	return "." + filepath.Base(path) + "-*"
}

// grantOf is what the node granted the containers of the pod uid: since
// the agent started, else as restored from the checkpoint; a.mu is held.
func (a *admission) grantOf(uid types.UID) allocation {
	if g, ok := a.allocated[uid]; ok {
		return g
	}
	return a.restored[uid]
}

// saveGrants writes the checkpoint when the grants changed since the last
// write (or that write failed); a.mu is held. An error is logged here.
func (s *Syncer) saveGrants(ctx context.Context) {
	a := &s.admission
	path := s.grantsPath()
	if path == "" || !a.loaded {
		return
	}
	entries := make(map[types.UID]allocation, len(a.allocated)+len(a.restored))
	for uid, g := range a.restored {
		entries[uid] = g
	}
	for uid, g := range a.allocated {
		entries[uid] = g
	}
	data, err := json.Marshal(grantsData{Entries: entries})
	if err != nil {
		klog.FromContext(ctx).Error(err, "Encoding the checkpoint of pod resource grants")
		return
	}
	if a.written != nil && bytes.Equal(data, a.written) {
		return
	}
	if err := writeGrants(path, data); err != nil {
		a.written = nil // try again at the next change
		klog.FromContext(ctx).Error(err, "Writing the checkpoint of pod resource grants; an agent restart would grant running pods their current spec")
		return
	}
	a.written = data
}

// forgetGoneGrants drops the grants of pods known returns false for, once
// the agent's pod list is complete, and lets resizes of pods whose grant
// came from the checkpoint be decided (see restoreGrants). GarbageCollect
// calls it.
func (s *Syncer) forgetGoneGrants(ctx context.Context, known func(types.UID) bool) {
	a := &s.admission
	a.mu.Lock()
	defer a.mu.Unlock()
	s.restoreGrants(ctx)
	for uid := range a.restored {
		if !known(uid) {
			delete(a.restored, uid)
		}
	}
	for uid := range a.allocated {
		if !known(uid) {
			delete(a.allocated, uid)
		}
	}
	a.podsKnown = true
	s.saveGrants(ctx)
}

// openGrants opens the checkpoint for readGrants; tests replace it to
// fail as a busy or broken host does.
var openGrants = func(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
}

// unusableCheckpoint is the error of a checkpoint that exists but is not
// one: a link, not a regular file, or content that does not decode. It
// is ignored and replaced; any other error of readGrants is not.
type unusableCheckpoint struct{ err error }

func (e *unusableCheckpoint) Error() string { return e.err.Error() }
func (e *unusableCheckpoint) Unwrap() error { return e.err }

// isUnusableCheckpoint reports whether err of readGrants says the file
// itself is unusable, rather than that it could not be read.
func isUnusableCheckpoint(err error) bool {
	var u *unusableCheckpoint
	return errors.As(err, &u)
}

// readGrants reads the checkpoint at path: nil without error when there
// is none. It never follows a link and reads at most maxGrantsFile.
func readGrants(path string) (map[types.UID]allocation, error) {
	unusable := func(format string, args ...any) error {
		return &unusableCheckpoint{fmt.Errorf(format, args...)}
	}
	f, err := openGrants(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case errors.Is(err, syscall.ELOOP), errors.Is(err, syscall.ENXIO):
		// O_NOFOLLOW on a link; a socket.
		return nil, unusable("%s is not a regular file: %w", path, err)
	case err != nil:
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close() //nolint:errcheck // read only
	if st, err := f.Stat(); err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	} else if !st.Mode().IsRegular() {
		return nil, unusable("%s is not a regular file (%s)", path, st.Mode().Type())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxGrantsFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxGrantsFile {
		return nil, unusable("%s is larger than %d bytes", path, maxGrantsFile)
	}
	var cp grantsCheckpoint
	if err := json.Unmarshal(b, &cp); err != nil {
		return nil, unusable("%s is corrupt: %w", path, err)
	}
	if sum := sha256.Sum256([]byte(cp.Data)); hex.EncodeToString(sum[:]) != cp.Checksum {
		return nil, unusable("%s is corrupt: checksum mismatch", path)
	}
	var data grantsData
	if err := json.Unmarshal([]byte(cp.Data), &data); err != nil {
		return nil, unusable("%s is corrupt: %w", path, err)
	}
	for uid, g := range data.Entries {
		if uid == "" || g.containers == nil {
			return nil, unusable("%s is corrupt: an entry without pod UID or grant", path)
		}
	}
	return data.Entries, nil
}

// writeGrants replaces the checkpoint at path with data, atomically: a
// new file in the same directory (created exclusively: never through a
// link), synced, then renamed over the old one (rename replaces a link
// at path, it does not follow it).
func writeGrants(path string, data []byte) error {
	sum := sha256.Sum256(data)
	b, err := json.Marshal(grantsCheckpoint{Data: string(data), Checksum: hex.EncodeToString(sum[:])})
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, grantsTempPattern(path))
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name()) // ours, and the error above is the one to report
		return fmt.Errorf("write %s: %w", path, err)
	}
	// The rename itself durable: sync the directory.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()  // best effort: the file is in place
		_ = d.Close() // read only
	}
	return nil
}
