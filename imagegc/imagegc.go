package imagegc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/clock"
)

// Period is how often Run collects: the kubelet's ImageGCPeriod (a
// constant there, not a config field).
const Period = 5 * time.Minute

// The kubelet's event reasons (pkg/kubelet/events).
const (
	ReasonFreeDiskSpaceFailed = "FreeDiskSpaceFailed"
	ReasonImageGCFailed       = "ImageGCFailed"
	ReasonInvalidDiskCapacity = "InvalidDiskCapacity"
)

// freeDiskSpaceFailedFmt is the kubelet's message of FreeDiskSpaceFailed
// (v1.36): the usage in percent, the capacity (formatSize) and the bytes
// freed.
const freeDiskSpaceFailedFmt = "Insufficient free disk space on the node's image filesystem (%d%% of %s used). " +
	"Failed to free sufficient space by deleting unused images (freed %d bytes). " +
	"Investigate disk usage, as it could be used by active images, logs, volumes, or other data."

// Containers lists the runtime's containers and tells their mounts: a CRI
// RuntimeService.
type Containers interface {
	ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error)
	ContainerStatus(ctx context.Context, containerID string, verbose bool) (*runtimeapi.ContainerStatusResponse, error)
}

// Images lists and removes the runtime's images: a CRI
// ImageManagerService.
type Images interface {
	ListImages(ctx context.Context, filter *runtimeapi.ImageFilter) ([]*runtimeapi.Image, error)
	RemoveImage(ctx context.Context, image *runtimeapi.ImageSpec) error
}

// Policy is when images are removed: the KubeletConfiguration fields
// imageGCHighThresholdPercent, imageGCLowThresholdPercent,
// imageMinimumGCAge and imageMaximumGCAge.
type Policy struct {
	// HighThresholdPercent is the usage of the image filesystem at or
	// above which unused images are removed.
	HighThresholdPercent int
	// LowThresholdPercent is the usage those removals aim for.
	LowThresholdPercent int
	// MinAge is how long an image is kept after it was first seen, when
	// removing for space.
	MinAge time.Duration
	// MaxAge, when not 0, is how long an unused image is kept whatever
	// the disk usage.
	MaxAge time.Duration
}

// Config wires a Manager.
type Config struct {
	Policy
	Containers Containers
	Images     Images
	// ImageFs returns the image filesystem's capacity and available
	// bytes (server.Server.ImageFsStats).
	ImageFs func(ctx context.Context) (*statsapi.FsStats, error)
	// Recorder and NodeRef: the events go to the Node.
	Recorder record.EventRecorder
	NodeRef  *v1.ObjectReference
	Clock    clock.WithTicker
	// Period is how often Run collects; Period (the package's) when zero.
	Period time.Duration
}

// Manager removes unused images. Create it with New.
type Manager struct {
	cfg Config
	// began is when the Manager was created: images are not removed for
	// their age before MaxAge has passed since then, as the kubelet.
	began time.Time

	// mu makes passes one at a time; it guards records and mounts.
	mu sync.Mutex
	// records are the images last listed, by image ID.
	records map[string]*imageRecord
	// mounts are the images each listed container mounts as image
	// volumes, by container ID: a container's mounts never change, so
	// its status is read once, not on every pass.
	mounts map[string][]string
}

// imageRecord is what the Manager knows of one image.
type imageRecord struct {
	firstDetected time.Time
	// lastUsed is the last pass that found a container of the image; zero
	// if none did.
	lastUsed       time.Time
	size           int64
	pinned         bool
	runtimeHandler string
	repoTags       []string
}

// candidate is an image that may be removed.
type candidate struct {
	id string
	imageRecord
}

// New checks the policy, as the kubelet's NewImageGCManager, and returns
// a Manager; nothing happens until Run or GarbageCollect.
func New(cfg Config) (*Manager, error) {
	p := cfg.Policy
	switch {
	case p.HighThresholdPercent < 0 || p.HighThresholdPercent > 100:
		return nil, fmt.Errorf("image garbage collection: high threshold %d%% not within [0, 100]", p.HighThresholdPercent)
	case p.LowThresholdPercent < 0 || p.LowThresholdPercent > 100:
		return nil, fmt.Errorf("image garbage collection: low threshold %d%% not within [0, 100]", p.LowThresholdPercent)
	case p.LowThresholdPercent > p.HighThresholdPercent:
		return nil, fmt.Errorf("image garbage collection: low threshold %d%% above the high threshold %d%%", p.LowThresholdPercent, p.HighThresholdPercent)
	case p.MinAge < 0 || p.MaxAge < 0:
		return nil, fmt.Errorf("image garbage collection: negative age (minimum %v, maximum %v)", p.MinAge, p.MaxAge)
	case cfg.Containers == nil || cfg.Images == nil || cfg.ImageFs == nil:
		return nil, errors.New("image garbage collection: Containers, Images and ImageFs are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Period <= 0 {
		cfg.Period = Period
	}
	return &Manager{cfg: cfg, began: cfg.Clock.Now(), records: map[string]*imageRecord{}, mounts: map[string][]string{}}, nil
}

// Enabled reports whether Run collects: not with a high threshold of 100
// and no maximum age, as the kubelet's StartGarbageCollection.
func (m *Manager) Enabled() bool {
	return m.cfg.HighThresholdPercent < 100 || m.cfg.MaxAge > 0
}

// Run collects now and every period until ctx ends, unless not Enabled.
func (m *Manager) Run(ctx context.Context) {
	logger := klog.FromContext(ctx)
	if !m.Enabled() {
		logger.V(2).Info("ImageGCHighThresholdPercent is set 100 and ImageMaximumGCAge is 0, Disable image GC")
		return
	}
	t := m.cfg.Clock.NewTicker(m.cfg.Period)
	defer t.Stop()
	failed := false
	for {
		err := m.GarbageCollect(ctx)
		if ctx.Err() != nil {
			return
		}
		failed = m.report(logger, err, failed)
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// report logs a pass's outcome as the kubelet: a failure that follows
// another is an ImageGCFailed event too. It returns whether the pass
// failed.
func (m *Manager) report(logger klog.Logger, err error, failedBefore bool) bool {
	if err == nil {
		v := 4
		if failedBefore {
			v = 1
		}
		logger.V(v).Info("Image garbage collection succeeded")
		return false
	}
	if failedBefore {
		logger.Error(err, "Image garbage collection failed multiple times in a row")
		m.event(ReasonImageGCFailed, err.Error())
	} else {
		logger.Error(err, "Image garbage collection failed once. Stats initialization may not have completed yet")
	}
	return true
}

func (m *Manager) event(reason, msg string) {
	if m.cfg.Recorder != nil {
		m.cfg.Recorder.Event(m.cfg.NodeRef, v1.EventTypeWarning, reason, msg)
	}
}

// GarbageCollect runs one pass: records the images and their use, removes
// those unused for longer than MaxAge, then, if the image filesystem is at
// or above the high threshold, removes unused images down to the low one.
// It fails when it could not free enough (after a FreeDiskSpaceFailed
// event), when a removal fails, or when the runtime or the filesystem
// cannot be read.
func (m *Manager) GarbageCollect(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	logger := klog.FromContext(ctx)
	now := m.cfg.Clock.Now()
	candidates, err := m.detect(ctx, now)
	if err != nil {
		return err
	}
	candidates, err = m.freeOld(ctx, candidates, now)
	if err != nil {
		return err
	}

	fs, err := m.cfg.ImageFs(ctx)
	if err != nil {
		return fmt.Errorf("image filesystem stats: %w", err)
	}
	var capacity, available int64
	if fs != nil && fs.CapacityBytes != nil {
		capacity = int64(*fs.CapacityBytes)
	}
	if fs != nil && fs.AvailableBytes != nil {
		available = int64(*fs.AvailableBytes)
	}
	if available > capacity {
		logger.Info("Availability is larger than capacity", "available", available, "capacity", capacity)
		available = capacity
	}
	if capacity == 0 {
		err := errors.New("invalid capacity 0 on image filesystem")
		m.event(ReasonInvalidDiskCapacity, err.Error())
		return err
	}
	usage := 100 - int(available*100/capacity)
	if usage < m.cfg.HighThresholdPercent {
		return nil
	}
	toFree := capacity*int64(100-m.cfg.LowThresholdPercent)/100 - available
	logger.Info("Disk usage on image filesystem is over the high threshold, trying to free bytes down to the low threshold",
		"usage", usage, "highThreshold", m.cfg.HighThresholdPercent, "amountToFree", toFree, "lowThreshold", m.cfg.LowThresholdPercent)
	freed, err := m.freeSpace(ctx, toFree, now, candidates)
	if err != nil {
		return err
	}
	if freed < toFree {
		msg := fmt.Sprintf(freeDiskSpaceFailedFmt, usage, formatSize(capacity), freed)
		m.event(ReasonFreeDiskSpaceFailed, msg)
		return errors.New(msg)
	}
	return nil
}

// DeleteUnusedImages removes every image no container uses, not pinned
// and first detected at least MinAge ago, as the kubelet's
// DeleteUnusedImages does for the eviction manager under disk pressure.
// It returns the bytes freed.
func (m *Manager) DeleteUnusedImages(ctx context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.Clock.Now()
	candidates, err := m.detect(ctx, now)
	if err != nil {
		return 0, err
	}
	return m.freeSpace(ctx, math.MaxInt64, now, candidates)
}

// detect updates the records from the runtime's images and containers and
// returns the images neither in use nor pinned, least recently used first
// (then first detected first).
func (m *Manager) detect(ctx context.Context, now time.Time) ([]candidate, error) {
	logger := klog.FromContext(ctx)
	images, err := m.cfg.Images.ListImages(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	// All containers, running or not, whoever created them.
	containers, err := m.cfg.Containers.ListContainers(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	inUse := sets.New[string]()
	seen := sets.New[string]()
	for _, c := range containers {
		seen.Insert(c.GetId())
		// CRI v1.30 added imageId; before it imageRef was the image's ID.
		id := c.GetImageId()
		if id == "" {
			id = c.GetImageRef()
		}
		if id != "" {
			logger.V(5).Info("Container uses image", "containerID", c.GetId(), "imageID", id)
			inUse.Insert(id)
		}
		mounted, err := m.mountedImages(ctx, c.GetId())
		if err != nil {
			return nil, err
		}
		for _, img := range mounted {
			logger.V(5).Info("Container uses image as mount", "containerID", c.GetId(), "imageID", img)
			inUse.Insert(img)
		}
	}
	for id := range m.mounts {
		if !seen.Has(id) {
			delete(m.mounts, id)
		}
	}
	listed := sets.New[string]()
	for _, img := range images {
		id := img.GetId()
		if id == "" {
			continue
		}
		listed.Insert(id)
		r := m.records[id]
		if r == nil {
			logger.V(5).Info("Image ID is new", "imageID", id, "repoTags", img.GetRepoTags())
			r = &imageRecord{firstDetected: now, runtimeHandler: img.GetSpec().GetRuntimeHandler()}
			m.records[id] = r
		}
		if inUse.Has(id) {
			r.lastUsed = now
		}
		r.size = int64(img.GetSize())
		r.pinned = img.GetPinned()
		r.repoTags = img.GetRepoTags()
	}
	var out []candidate
	for id, r := range m.records {
		switch {
		case !listed.Has(id):
			delete(m.records, id)
		case inUse.Has(id):
			logger.V(5).Info("Image ID is being used", "imageID", id)
		case r.pinned:
			logger.V(5).Info("Image is pinned, skipping garbage collection", "imageID", id)
		default:
			out = append(out, candidate{id: id, imageRecord: *r})
		}
	}
	slices.SortFunc(out, func(a, b candidate) int {
		return cmp.Or(a.lastUsed.Compare(b.lastUsed), a.firstDetected.Compare(b.firstDetected), cmp.Compare(a.id, b.id))
	})
	return out, nil
}

// mountedImages returns the images the container mounts as image volumes
// (CRI Mount.Image, which ListContainers does not tell), as the kubelet's
// handleImageVolumes: the mount names the image by the reference its pull
// returned, the image's ID with containerd and CRI-O. A container
// gone since the listing mounts nothing; the kubelet fails the pass there.
// What a container mounts is kept while it is listed (mounts never change).
func (m *Manager) mountedImages(ctx context.Context, id string) ([]string, error) {
	if imgs, ok := m.mounts[id]; ok {
		return imgs, nil
	}
	resp, err := m.cfg.Containers.ContainerStatus(ctx, id, false)
	if status.Code(err) == codes.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get container status of %s: %w", id, err)
	}
	if resp.GetStatus() == nil {
		// Nothing to go by: asked again next pass, not kept as "none".
		return nil, nil
	}
	imgs := []string{}
	for _, mnt := range resp.GetStatus().GetMounts() {
		if img := mnt.GetImage().GetImage(); img != "" {
			imgs = append(imgs, img)
		}
	}
	m.mounts[id] = imgs
	return imgs, nil
}

// freeOld is the kubelet's freeOldImages: with a MaxAge, once the Manager
// has run for longer than it, the candidates unused for longer than it are
// removed (whatever their minimum age). It returns the candidates left.
func (m *Manager) freeOld(ctx context.Context, candidates []candidate, now time.Time) ([]candidate, error) {
	maxAge := m.cfg.MaxAge
	if maxAge == 0 || now.Sub(m.began) <= maxAge {
		return candidates, nil
	}
	var left []candidate
	var errs []error
	for _, c := range candidates {
		if now.Sub(c.lastUsed) > maxAge {
			if err := m.remove(ctx, c, reasonAge); err != nil {
				errs = append(errs, err)
				left = append(left, c)
			}
			continue
		}
		left = append(left, c)
	}
	if len(errs) > 0 {
		return left, fmt.Errorf("wanted to free images older than %v, encountered errors in image deletion: %w", maxAge, utilerrors.NewAggregate(errs))
	}
	return left, nil
}

// freeSpace is the kubelet's freeSpace: it removes candidates in order,
// skipping those first detected less than MinAge ago, until toFree bytes
// (by the images' sizes) are freed, and returns the bytes freed.
func (m *Manager) freeSpace(ctx context.Context, toFree int64, now time.Time, candidates []candidate) (int64, error) {
	logger := klog.FromContext(ctx)
	var freed int64
	var errs []error
	for _, c := range candidates {
		if age := now.Sub(c.firstDetected); age < m.cfg.MinAge {
			logger.V(5).Info("Image ID's age is less than the policy's minAge, not eligible for garbage collection", "imageID", c.id, "age", age, "minAge", m.cfg.MinAge)
			continue
		}
		if err := m.remove(ctx, c, reasonSpace); err != nil {
			errs = append(errs, err)
			continue
		}
		freed += c.size
		if freed >= toFree {
			break
		}
	}
	if len(errs) > 0 {
		return freed, fmt.Errorf("wanted to free %d bytes, but freed %d bytes space with errors in image deletion: %w", toFree, freed, utilerrors.NewAggregate(errs))
	}
	return freed, nil
}

// remove removes one image and forgets it.
func (m *Manager) remove(ctx context.Context, c candidate, reason string) error {
	klog.FromContext(ctx).Info("Removing image to free bytes", "imageID", c.id, "size", c.size, "runtimeHandler", c.runtimeHandler, "repoTags", c.repoTags, "reason", reason)
	if err := m.cfg.Images.RemoveImage(ctx, &runtimeapi.ImageSpec{Image: c.id, RuntimeHandler: c.runtimeHandler}); err != nil {
		return fmt.Errorf("remove image %s: %w", c.id, err)
	}
	delete(m.records, c.id)
	collected.WithLabelValues(reason).Inc()
	return nil
}

// formatSize writes a size as the kubelet's FreeDiskSpaceFailed message
// does: bytes below 1 KiB, else one decimal in the largest binary unit up
// to TiB ("19.5 GiB").
func formatSize(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	size, unit := float64(n)/1024, "KiB"
	for _, u := range []string{"MiB", "GiB", "TiB"} {
		if size < 1024 {
			break
		}
		size, unit = size/1024, u
	}
	return fmt.Sprintf("%.1f %s", size, unit)
}
