package podsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"golang.org/x/sys/unix"

	"github.com/nodeagent/nodeagent/cri"
)

// Limits of the termination message, the kubelet's (kubecontainer
// MaxContainerTerminationMessageLength, ...LogLength, ...LogLines).
const (
	maxTerminationMessageLength    = 4096
	maxTerminationMessageLogLength = 2048
	maxTerminationMessageLogLines  = 80
	// terminationLogWindow is how much of the end of a container's log
	// FallbackToLogsOnError reads: enough for 80 lines or 2 KiB of
	// messages (the runtime splits lines into records of 16 KiB).
	terminationLogWindow = 64 << 10
	// terminationFilePrefix starts the name of the file terminationFile
	// creates.
	terminationFilePrefix = "termination-"
)

// errNotRegular is returned for a termination file or log that is not a
// regular file (a FIFO, a device...).
var errNotRegular = errors.New("not a regular file")

// terminationMessage returns the message of an exited container as the
// kubelet's convertToKubeContainerStatus does: the runtime's message if it
// has one, else the end of the file the agent mounted at the container's
// terminationMessagePath (at most 4 KiB), else, with
// FallbackToLogsOnError and a failure, the end of the container's log.
//
// Only the agent's own file is read, found by its place in the pod's
// directory: a volume mounted at the same path is the pod's and never
// read, and neither is anything a link there points to.
func (s *Syncer) terminationMessage(ctx context.Context, pod *v1.Pod, name string, c *runtimeapi.ContainerStatus) string {
	if c.Message != "" {
		return c.Message
	}
	logger := klog.FromContext(ctx)
	fallback := v1.TerminationMessagePolicy(c.Annotations[cri.ContainerTerminationMessagePolicyAnnotation]) == v1.TerminationMessageFallbackToLogsOnError &&
		c.ExitCode != 0 && c.Reason != "ContainerCannotRun"
	if p := s.ownTerminationFile(pod, name, c); p != "" {
		b, _, err := readTail(p, maxTerminationMessageLength)
		switch {
		case err == nil && len(b) > 0:
			return string(b)
		case err != nil && !errors.Is(err, os.ErrNotExist):
			// Not the file the agent created: say nothing of it.
			logger.V(2).Info("Not reading termination message file", "pod", klog.KObj(pod), "container", name, "containerID", c.Id, "err", err)
		}
	}
	if !fallback {
		return ""
	}
	msg, err := s.lastLogMessage(pod, name, c.LogPath)
	if err != nil {
		logger.V(2).Info("Not reading the log for the termination message", "pod", klog.KObj(pod), "container", name, "containerID", c.Id, "err", err)
		return ""
	}
	return msg
}

// ownTerminationFile returns the host path of the file terminationFile
// created for the container (<pod dir>/containers/<name>/termination-*)
// among the runtime's mounts at the terminationMessagePath, or "".
func (s *Syncer) ownTerminationFile(pod *v1.Pod, name string, c *runtimeapi.ContainerStatus) string {
	target := c.Annotations[cri.ContainerTerminationMessagePathAnnotation]
	if target == "" || !plainName(name) {
		return ""
	}
	dir := filepath.Join(s.podDir(pod), "containers", name)
	for _, m := range c.Mounts {
		if m.ContainerPath != target {
			continue
		}
		p := m.HostPath
		base := filepath.Base(p)
		if filepath.Clean(p) == p && filepath.Dir(p) == dir &&
			strings.HasPrefix(base, terminationFilePrefix) && len(base) > len(terminationFilePrefix) {
			return p
		}
	}
	return ""
}

// plainName reports whether a container name is one path component.
func plainName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// lastLogMessage returns what `kubectl logs` would show of the last 80
// lines of the container's CRI log at path, at most its last 2 KiB. The
// path must be one of the container's logs in the pod's log directory;
// only the end of the file is read.
func (s *Syncer) lastLogMessage(pod *v1.Pod, name, path string) (string, error) {
	dir := filepath.Join(s.podLogDir(pod), name)
	if !plainName(name) || !filepath.IsAbs(path) || filepath.Clean(path) != path ||
		filepath.Dir(path) != dir || strings.ContainsRune(path, 0) {
		return "", fmt.Errorf("log path %q is not in %s", path, dir)
	}
	b, off, err := readTail(path, terminationLogWindow)
	if err != nil {
		return "", err
	}
	return string(lastLogLines(b, off > 0, maxTerminationMessageLogLines, maxTerminationMessageLogLength)), nil
}

// lastLogLines returns the messages of the last lines complete lines of a
// CRI log (the kubelet's tail ignores an unterminated last line), keeping
// at most limit bytes from their end. When cut, b starts inside a line,
// which is dropped. Lines that do not parse are skipped.
func lastLogLines(b []byte, cut bool, lines, limit int) []byte {
	if cut {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return nil
		}
		b = b[i+1:]
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		return nil
	}
	// b ends with a newline; start at the last lines-th line.
	start, end := 0, len(b)-1
	for n := 0; n < lines; n++ {
		j := bytes.LastIndexByte(b[:end], '\n')
		if j < 0 {
			start = 0
			break
		}
		start, end = j+1, j
	}
	var out []byte
	for _, l := range bytes.SplitAfter(b[start:], []byte{'\n'}) {
		if msg, ok := parseCRILogLine(l); ok {
			out = append(out, msg...)
		}
	}
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out
}

// parseCRILogLine returns the message of one line of the CRI log format
// ("<RFC 3339 time> <stdout|stderr> <P|F>[:tags] <message>\n"), as
// k8s.io/cri-client/pkg/logs writes it out: a full line keeps its
// newline, a partial one does not.
func parseCRILogLine(l []byte) ([]byte, bool) {
	fields := bytes.SplitN(l, []byte{' '}, 4)
	if len(fields) != 4 {
		return nil, false
	}
	if _, err := time.Parse(time.RFC3339Nano, string(fields[0])); err != nil {
		return nil, false
	}
	if s := runtimeapi.LogStreamType(fields[1]); s != runtimeapi.Stdout && s != runtimeapi.Stderr {
		return nil, false
	}
	msg := fields[3]
	tag, _, _ := bytes.Cut(fields[2], []byte(runtimeapi.LogTagDelimiter))
	if runtimeapi.LogTag(tag) == runtimeapi.LogTagPartial {
		msg = bytes.TrimSuffix(msg, []byte{'\n'})
	}
	return msg, true
}

// readTail returns at most limit bytes from the end of the regular file
// at path and the offset they start at, as the kubelet's tail.ReadAtMost.
// It does not follow a link in the last component, does not block on a
// FIFO, and never reads more than limit bytes.
func readTail(path string, limit int64) ([]byte, int64, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, 0, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer func() { _ = f.Close() }()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, 0, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, 0, fmt.Errorf("%s: %w", path, errNotRegular)
	}
	off := max(st.Size-limit, 0)
	buf := make([]byte, st.Size-off)
	n, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	return buf[:n], off, nil
}
