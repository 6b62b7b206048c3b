package logrotate

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/nodeagent/nodeagent/cri"
)

const (
	// timestampFormat names rotated files, as the kubelet's.
	timestampFormat = "20060102-150405"
	compressSuffix  = ".gz"
	tmpSuffix       = ".tmp"

	defaultInterval = 10 * time.Second
)

// Runtime is what the manager needs of the CRI runtime service.
type Runtime interface {
	ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error)
	ContainerStatus(ctx context.Context, containerID string, verbose bool) (*runtimeapi.ContainerStatusResponse, error)
	ReopenContainerLog(ctx context.Context, containerID string) error
}

// Config is the rotation policy, from the KubeletConfiguration.
type Config struct {
	// MaxSize is containerLogMaxSize, a quantity such as "10Mi".
	MaxSize string
	// MaxFiles is containerLogMaxFiles, at least 2: the current file and
	// at least one rotated one.
	MaxFiles int
	// Workers is containerLogMaxWorkers; 0 means 1.
	Workers int
	// Interval is containerLogMonitorInterval; 0 means 10 s.
	Interval time.Duration
	// PodLogsDir holds every log the manager may touch.
	PodLogsDir string
}

// Manager rotates the agent's container logs.
type Manager struct {
	rt       Runtime
	maxSize  int64
	maxFiles int
	workers  int
	interval time.Duration
	logsDir  string
	clock    clock.WithTicker
	// mu keeps two rounds from working on the same files.
	mu sync.Mutex
}

// New checks the policy and builds a manager; Run starts it.
func New(rt Runtime, cfg Config, clk clock.WithTicker) (*Manager, error) {
	if cfg.MaxFiles < 2 {
		return nil, fmt.Errorf("containerLogMaxFiles %d: must be at least 2", cfg.MaxFiles)
	}
	q, err := resource.ParseQuantity(cfg.MaxSize)
	if err != nil {
		return nil, fmt.Errorf("containerLogMaxSize %q: %w", cfg.MaxSize, err)
	}
	maxSize, ok := q.AsInt64()
	if !ok || maxSize <= 0 {
		return nil, fmt.Errorf("containerLogMaxSize %q: must be a positive integer number of bytes", cfg.MaxSize)
	}
	if cfg.PodLogsDir == "" || !filepath.IsAbs(cfg.PodLogsDir) {
		return nil, fmt.Errorf("pod logs directory %q: must be an absolute path", cfg.PodLogsDir)
	}
	m := &Manager{rt: rt, maxSize: maxSize, maxFiles: cfg.MaxFiles, workers: max(cfg.Workers, 1),
		interval: cfg.Interval, logsDir: filepath.Clean(cfg.PodLogsDir), clock: clk}
	if m.interval <= 0 {
		m.interval = defaultInterval
	}
	return m, nil
}

// Run rotates every interval until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	logger := klog.FromContext(ctx).WithName("logrotate")
	ctx = klog.NewContext(ctx, logger)
	logger.Info("Rotating container logs", "maxSize", m.maxSize, "maxFiles", m.maxFiles, "interval", m.interval, "workers", m.workers)
	t := m.clock.NewTicker(m.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		if err := m.RotateOnce(ctx); err != nil {
			logger.Error(err, "Rotating container logs")
		}
	}
}

// RotateOnce looks at every running container of the agent once and
// rotates the logs that reached the size limit. A failure with one
// container is logged and does not stop the others; listing the
// containers failing is the error.
func (m *Manager) RotateOnce(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := cri.ManagedContainerFilter("")
	f.State = &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}
	containers, err := m.rt.ListContainers(ctx, f)
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	ids := make(chan string)
	var wg sync.WaitGroup
	for range m.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				if err := m.rotateIfNeeded(ctx, id); err != nil {
					klog.FromContext(ctx).Error(err, "Rotating the container log", "containerID", id)
				}
			}
		}()
	}
	for _, c := range containers {
		// Filters are the runtime's; check them again.
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING && cri.IsManaged(c.Labels) {
			ids <- c.Id
		}
	}
	close(ids)
	wg.Wait()
	return nil
}

// rotateIfNeeded rotates the container's log if it reached the limit.
func (m *Manager) rotateIfNeeded(ctx context.Context, id string) error {
	st, err := m.rt.ContainerStatus(ctx, id, false)
	if err != nil {
		return fmt.Errorf("container status: %w", err)
	}
	path := st.GetStatus().GetLogPath()
	if path == "" {
		return nil
	}
	if !m.inLogsDir(path) {
		klog.FromContext(ctx).V(4).Info("Not rotating a log outside the pod logs directory", "containerID", id, "path", path)
		return nil
	}
	path = filepath.Clean(path)
	info, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		// Deleted under the runtime: have it open the file again.
		if err := m.rt.ReopenContainerLog(ctx, id); err != nil {
			return fmt.Errorf("reopen the missing log %s: %w", path, err)
		}
		info, err = os.Stat(path)
	}
	if err != nil {
		return fmt.Errorf("stat log: %w", err)
	}
	if info.Size() < m.maxSize {
		return nil
	}
	klog.FromContext(ctx).V(2).Info("Rotating container log", "containerID", id, "path", path, "size", info.Size())
	return m.rotate(ctx, id, path)
}

// inLogsDir reports whether path lies inside the pod logs directory.
func (m *Manager) inLogsDir(path string) bool {
	if !filepath.IsAbs(path) {
		return false
	}
	return strings.HasPrefix(filepath.Clean(path), m.logsDir+string(filepath.Separator))
}

// rotate cleans up, trims, compresses and renames, as the package
// documentation describes.
func (m *Manager) rotate(ctx context.Context, id, path string) error {
	rotated, err := rotatedLogs(path)
	if err != nil {
		return err
	}
	if rotated, err = removeUnused(rotated); err != nil {
		return err
	}
	if rotated, err = m.removeExcess(rotated); err != nil {
		return err
	}
	for _, l := range rotated {
		if strings.HasSuffix(l, compressSuffix) {
			continue
		}
		if err := compress(l); err != nil {
			return err
		}
	}
	return m.rotateCurrent(ctx, id, path)
}

// rotatedLogs lists the files <path>.*, sorted: oldest first, since the
// suffixes are timestamps.
func rotatedLogs(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list rotated logs of %s: %w", path, err)
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), base+".") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// removeUnused deletes what an interrupted compression left: .tmp files,
// and uncompressed files whose .gz exists. It returns the rest.
func removeUnused(logs []string) ([]string, error) {
	present := make(map[string]bool, len(logs))
	for _, l := range logs {
		present[l] = true
	}
	var inUse []string
	for _, l := range logs {
		if strings.HasSuffix(l, tmpSuffix) || (!strings.HasSuffix(l, compressSuffix) && present[l+compressSuffix]) {
			if err := os.Remove(l); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("remove unused log: %w", err)
			}
			continue
		}
		inUse = append(inUse, l)
	}
	return inUse, nil
}

// removeExcess deletes the oldest rotated files, keeping maxFiles-2: the
// rotation about to happen adds one and the current file is the last.
func (m *Manager) removeExcess(logs []string) ([]string, error) {
	keep := max(m.maxFiles-2, 0)
	for len(logs) > keep {
		if err := os.Remove(logs[0]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove old log: %w", err)
		}
		logs = logs[1:]
	}
	return logs, nil
}

// compress gzips log to log.gz through log.tmp, as the kubelet does,
// then removes log.
func compress(log string) (retErr error) {
	// The pod logs directory may be mounted into a pod (a log shipper):
	// neither file is opened through a link found in it.
	in, err := os.OpenFile(log, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("open log to compress: %w", err)
	}
	defer func() { _ = in.Close() }()
	info, err := in.Stat()
	if err != nil {
		return fmt.Errorf("stat log to compress: %w", err)
	}
	tmp := log + tmpSuffix
	// removeUnused took a regular leftover away; anything else in the
	// way (a link) is named in the error and left alone.
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, info.Mode().Perm())
	if err != nil {
		return fmt.Errorf("create compressed log: %w", err)
	}
	defer func() {
		if retErr != nil {
			_ = out.Close()
			_ = os.Remove(tmp)
		}
	}()
	w := gzip.NewWriter(out)
	if _, err := io.Copy(w, in); err != nil {
		return fmt.Errorf("compress %s: %w", log, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("compress %s: %w", log, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("write compressed %s: %w", log, err)
	}
	if err := os.Rename(tmp, log+compressSuffix); err != nil {
		return fmt.Errorf("rename compressed log: %w", err)
	}
	if err := os.Remove(log); err != nil {
		return fmt.Errorf("remove compressed log: %w", err)
	}
	return nil
}

// rotateCurrent renames the current file with the time and has the
// runtime reopen it; if the runtime cannot, the rename is undone so that
// the runtime's file keeps its name.
func (m *Manager) rotateCurrent(ctx context.Context, id, path string) error {
	rotated := path + "." + m.clock.Now().Format(timestampFormat)
	// A second rotation within the same second waits for the next round:
	// the name is taken, compressed or not (a plain file next to its .gz
	// would be taken for a leftover and removed).
	for _, p := range []string{rotated, rotated + compressSuffix} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("rotated log %s exists already: retry later", p)
		}
	}
	if err := os.Rename(path, rotated); err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	if err := m.rt.ReopenContainerLog(ctx, id); err != nil {
		if rerr := os.Rename(rotated, path); rerr != nil {
			klog.FromContext(ctx).Error(rerr, "Undoing the rotation", "containerID", id, "path", path)
		}
		return fmt.Errorf("reopen container log: %w", err)
	}
	return nil
}
