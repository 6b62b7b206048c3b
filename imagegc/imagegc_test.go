package imagegc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critesting "k8s.io/cri-api/pkg/apis/testing"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

var (
	_ Containers = (*critesting.FakeRuntimeService)(nil)
	_ Images     = (*critesting.FakeImageService)(nil)
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const capacity = 1000

type fixture struct {
	images     *critesting.FakeImageService
	containers *critesting.FakeRuntimeService
	clock      *clocktesting.FakeClock
	recorder   *record.FakeRecorder
	// available is the image filesystem's available bytes, of capacity.
	available uint64
	fsErr     error
	m         *Manager
}

// newFixture has images of 100 bytes each; "pause" is pinned.
func newFixture(t *testing.T, p Policy, images ...string) *fixture {
	t.Helper()
	f := &fixture{
		images:     critesting.NewFakeImageService(),
		containers: critesting.NewFakeRuntimeService(),
		clock:      clocktesting.NewFakeClock(t0),
		recorder:   record.NewFakeRecorder(20),
		available:  capacity,
	}
	f.images.SetFakeImageSize(100)
	f.images.SetFakeImagePinned("pause", true)
	f.images.SetFakeImages(images)
	m, err := New(Config{
		Policy:     p,
		Containers: f.containers,
		Images:     f.images,
		ImageFs: func(context.Context) (*statsapi.FsStats, error) {
			if f.fsErr != nil {
				return nil, f.fsErr
			}
			return &statsapi.FsStats{CapacityBytes: ptr.To[uint64](capacity), AvailableBytes: ptr.To(f.available)}, nil
		},
		Recorder: f.recorder,
		NodeRef:  &v1.ObjectReference{Kind: "Node", Name: "node1", UID: types.UID("node1")},
		Clock:    f.clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.m = m
	return f
}

// use makes the runtime's containers use these images, alternately
// running and exited.
func (f *fixture) use(images ...string) {
	var cs []*critesting.FakeContainer
	for i, img := range images {
		state := runtimeapi.ContainerState_CONTAINER_RUNNING
		if i%2 == 1 {
			state = runtimeapi.ContainerState_CONTAINER_EXITED
		}
		cs = append(cs, &critesting.FakeContainer{ContainerStatus: runtimeapi.ContainerStatus{
			Id: fmt.Sprintf("c%d", i), State: state, Image: &runtimeapi.ImageSpec{Image: img}, ImageRef: img,
		}})
	}
	f.containers.SetFakeContainers(cs)
}

func (f *fixture) left() []string {
	f.images.Lock()
	defer f.images.Unlock()
	var out []string
	for id := range f.images.Images {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func (f *fixture) collect(t *testing.T) error {
	t.Helper()
	return f.m.GarbageCollect(t.Context())
}

var defaultPolicy = Policy{HighThresholdPercent: 85, LowThresholdPercent: 80, MinAge: 2 * time.Minute}

// The images' history: at t0 containers use a and b, at t0+5m only b, at
// t0+10m only d. So by t0+10m the unused images in eviction order are c
// (never used), a (last used t0), b (last used t0+5m); d is in use and
// pause pinned.
func history(t *testing.T, f *fixture) {
	t.Helper()
	f.use("a", "b")
	if err := f.collect(t); err != nil {
		t.Fatal(err)
	}
	f.clock.Step(5 * time.Minute)
	f.use("b")
	if err := f.collect(t); err != nil {
		t.Fatal(err)
	}
	f.clock.Step(5 * time.Minute)
	f.use("d")
}

func TestFreeSpace(t *testing.T) {
	tests := []struct {
		name      string
		available uint64
		left      []string
	}{
		// usage 100-16 = 84%
		{name: "below the high threshold", available: 160, left: []string{"a", "b", "c", "d", "pause"}},
		// usage 100-15 = 85%: free 200-151 = 49 bytes, one image.
		{name: "at the high threshold", available: 151, left: []string{"a", "b", "d", "pause"}},
		// usage 95%: free 150 bytes, two images.
		{name: "least recently used first", available: 50, left: []string{"b", "d", "pause"}},
		// usage 100%: free 200 bytes. Neither the image in use nor the
		// pinned one could be removed.
		{name: "full", available: 0, left: []string{"b", "d", "pause"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, defaultPolicy, "a", "b", "c", "d", "pause")
			history(t, f)
			f.available = tt.available
			err := f.collect(t)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.left(); !slices.Equal(got, tt.left) {
				t.Errorf("images left %q, want %q", got, tt.left)
			}
			if ev := f.events(); len(ev) > 0 {
				t.Errorf("events %q", ev)
			}
		})
	}
}

// An image a container mounts as an image volume is in use, whether the
// container runs or exited, as the kubelet's handleImageVolumes: the
// runtime's listing does not tell it, its container status does.
func TestImageVolumeInUse(t *testing.T) {
	f := newFixture(t, defaultPolicy, "a", "b", "vol", "exitedvol", "pause")
	f.use("a")
	mount := func(id, image string, state runtimeapi.ContainerState) *critesting.FakeContainer {
		return &critesting.FakeContainer{ContainerStatus: runtimeapi.ContainerStatus{
			Id: id, State: state, Image: &runtimeapi.ImageSpec{Image: "a"}, ImageRef: "a",
			Mounts: []*runtimeapi.Mount{
				{ContainerPath: "/etc/hosts", HostPath: "/var/lib/nodeagent/pods/u/etc-hosts"},
				{ContainerPath: "/data", Readonly: true, Image: &runtimeapi.ImageSpec{Image: image, UserSpecifiedImage: "registry.example/" + image + ":1"}},
			},
		}}
	}
	f.containers.SetFakeContainers([]*critesting.FakeContainer{
		mount("m1", "vol", runtimeapi.ContainerState_CONTAINER_RUNNING),
		mount("m2", "exitedvol", runtimeapi.ContainerState_CONTAINER_EXITED),
	})
	if err := f.collect(t); err != nil { // first detected now
		t.Fatal(err)
	}
	f.clock.Step(5 * time.Minute)
	f.available = 0 // usage 100%: everything that can go goes
	if err := f.collect(t); err == nil {
		t.Fatal("collect freed enough, want FreeDiskSpaceFailed with images in use")
	}
	if got, want := f.left(), []string{"a", "exitedvol", "pause", "vol"}; !slices.Equal(got, want) {
		t.Errorf("images left %q, want %q", got, want)
	}

	// A container's mounts are read once: its status is not asked for
	// again while it is listed.
	before := len(f.containers.GetCalls())
	if err := f.collect(t); err == nil {
		t.Fatal("collect freed enough, want FreeDiskSpaceFailed with images in use")
	}
	if calls := f.containers.GetCalls()[before:]; slices.Contains(calls, "ContainerStatus") {
		t.Errorf("runtime calls %q: a known container's status read again", calls)
	}

	// New containers (the old ones gone): a status that cannot be read
	// fails the pass, as the kubelet, and removes nothing.
	f.containers.SetFakeContainers([]*critesting.FakeContainer{
		mount("m3", "vol", runtimeapi.ContainerState_CONTAINER_RUNNING),
		mount("m4", "exitedvol", runtimeapi.ContainerState_CONTAINER_EXITED),
	})
	f.containers.InjectError("ContainerStatus", errors.New("down"))
	if err := f.collect(t); err == nil || !strings.Contains(err.Error(), "get container status of m") || !strings.HasSuffix(err.Error(), ": down") {
		t.Errorf("err = %v, want the container status error", err)
	}
	// Containers removed since the listing (NotFound) mount nothing.
	for range 2 {
		f.containers.InjectError("ContainerStatus", grpcstatus.Error(codes.NotFound, "container not found"))
	}
	f.events()
	if err := f.collect(t); err != nil {
		t.Errorf("err = %v, want the pass to go on past containers gone and free enough", err)
	}
	if got, want := f.left(), []string{"a", "pause"}; !slices.Equal(got, want) {
		t.Errorf("images left %q, want %q (volumes unused once their containers are gone)", got, want)
	}
}

// When the eligible images do not add up to what must be freed: the
// kubelet's FreeDiskSpaceFailed event and message, and the pass fails.
func TestFreeDiskSpaceFailed(t *testing.T) {
	f := newFixture(t, Policy{HighThresholdPercent: 50, LowThresholdPercent: 10, MinAge: 2 * time.Minute}, "a", "b", "c", "d", "pause")
	history(t, f)
	f.available = 400 // usage 60%: free 900-400 = 500 bytes, 300 eligible
	err := f.collect(t)
	want := "Insufficient free disk space on the node's image filesystem (60% of 1000 B used). " +
		"Failed to free sufficient space by deleting unused images (freed 300 bytes). " +
		"Investigate disk usage, as it could be used by active images, logs, volumes, or other data."
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if ev := f.events(); !slices.Equal(ev, []string{"Warning FreeDiskSpaceFailed " + want}) {
		t.Errorf("events %q", ev)
	}
	if got := f.left(); !slices.Equal(got, []string{"d", "pause"}) {
		t.Errorf("images left %q", got)
	}
}

// An image first seen less than MinAge ago is not removed for space.
func TestMinAge(t *testing.T) {
	f := newFixture(t, defaultPolicy, "old", "pause")
	if err := f.collect(t); err != nil {
		t.Fatal(err)
	}
	f.clock.Step(time.Minute)
	f.images.SetFakeImages([]string{"old", "new", "pause"})
	f.available = 0 // free 200 bytes
	if err := f.collect(t); err == nil || !strings.Contains(err.Error(), "Failed to free sufficient space") {
		t.Fatalf("err = %v", err)
	}
	if got := f.left(); !slices.Equal(got, []string{"new", "old", "pause"}) {
		t.Errorf("images left %q: both are younger than 2m", got)
	}
	f.clock.Step(time.Minute)
	if err := f.collect(t); err == nil {
		t.Fatal("200 bytes freed with one image of 100")
	}
	if got := f.left(); !slices.Equal(got, []string{"new", "pause"}) {
		t.Errorf("images left %q: old is 2m old", got)
	}
	f.clock.Step(time.Minute)
	if err := f.collect(t); err == nil {
		t.Fatal("200 bytes freed with one image of 100")
	}
	if got := f.left(); !slices.Equal(got, []string{"pause"}) {
		t.Errorf("images left %q", got)
	}
}

// With MaxAge, unused images go whatever the disk usage, but only once
// the Manager has run for longer than MaxAge.
func TestMaxAge(t *testing.T) {
	f := newFixture(t, Policy{HighThresholdPercent: 85, LowThresholdPercent: 80, MinAge: 2 * time.Minute, MaxAge: time.Hour},
		"a", "b", "c", "pause")
	f.use("a", "b")
	if err := f.collect(t); err != nil {
		t.Fatal(err)
	}
	f.clock.Step(30 * time.Minute)
	f.use("b")
	if err := f.collect(t); err != nil {
		t.Fatal(err)
	}
	f.use()
	f.clock.Step(30 * time.Minute) // an hour since start, not more
	if err := f.collect(t); err != nil {
		t.Fatal(err)
	}
	if got := f.left(); len(got) != 4 {
		t.Errorf("images left %q, want all: the manager has not run for longer than MaxAge", got)
	}
	f.clock.Step(time.Second)
	if err := f.collect(t); err != nil {
		t.Fatal(err)
	}
	// a: last used an hour and a second ago; c: never used; b: last used
	// 30m ago; pause: pinned.
	if got := f.left(); !slices.Equal(got, []string{"b", "pause"}) {
		t.Errorf("images left %q", got)
	}
	f.clock.Step(30 * time.Minute)
	if err := f.collect(t); err != nil {
		t.Fatal(err)
	}
	if got := f.left(); !slices.Equal(got, []string{"pause"}) {
		t.Errorf("images left %q", got)
	}
}

// A removal that fails fails the pass; the image is tried again at the
// next one.
func TestRemoveError(t *testing.T) {
	f := newFixture(t, Policy{HighThresholdPercent: 85, LowThresholdPercent: 80}, "a", "pause")
	f.available = 0
	f.images.InjectError("RemoveImage", errors.New("image is being used"))
	err := f.collect(t)
	if err == nil || !strings.Contains(err.Error(), "wanted to free 200 bytes, but freed 0 bytes space with errors in image deletion: remove image a: image is being used") {
		t.Fatalf("err = %v", err)
	}
	if ev := f.events(); len(ev) > 0 {
		t.Errorf("events %q", ev)
	}
	if err := f.collect(t); err == nil || !strings.Contains(err.Error(), "freed 100 bytes") {
		t.Fatalf("err = %v", err)
	}
	if got := f.left(); !slices.Equal(got, []string{"pause"}) {
		t.Errorf("images left %q", got)
	}
}

func TestInvalidCapacity(t *testing.T) {
	f := newFixture(t, defaultPolicy, "a")
	f.m.cfg.ImageFs = func(context.Context) (*statsapi.FsStats, error) {
		return &statsapi.FsStats{UsedBytes: ptr.To[uint64](5)}, nil
	}
	if err := f.collect(t); err == nil || err.Error() != "invalid capacity 0 on image filesystem" {
		t.Fatalf("err = %v", err)
	}
	if ev := f.events(); !slices.Equal(ev, []string{"Warning InvalidDiskCapacity invalid capacity 0 on image filesystem"}) {
		t.Errorf("events %q", ev)
	}
}

func TestRuntimeErrors(t *testing.T) {
	for _, tt := range []struct {
		name   string
		inject func(*fixture)
		want   string
	}{
		{"images", func(f *fixture) { f.images.InjectError("ListImages", errors.New("down")) }, "list images: down"},
		{"containers", func(f *fixture) { f.containers.InjectError("ListContainers", errors.New("down")) }, "list containers: down"},
		{"filesystem", func(f *fixture) { f.fsErr = errors.New("imageFs information is unavailable") }, "image filesystem stats: imageFs information is unavailable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, defaultPolicy, "a")
			f.available = 0
			tt.inject(f)
			if err := f.collect(t); err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if got := f.left(); !slices.Equal(got, []string{"a"}) {
				t.Errorf("images left %q", got)
			}
		})
	}
}

// Run collects at start and every period; ImageGCFailed is recorded from
// the second failed pass in a row, as the kubelet.
func TestRun(t *testing.T) {
	f := newFixture(t, Policy{HighThresholdPercent: 85, LowThresholdPercent: 80}, "a", "pause")
	passes := make(chan struct{})
	fail := make(chan bool, 1)
	f.m.cfg.ImageFs = func(context.Context) (*statsapi.FsStats, error) {
		passes <- struct{}{}
		if <-fail {
			return nil, errors.New("no stats yet")
		}
		return &statsapi.FsStats{CapacityBytes: ptr.To[uint64](capacity), AvailableBytes: ptr.To[uint64](capacity)}, nil
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.m.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	pass := func(failing bool) {
		t.Helper()
		select {
		case <-passes:
		case <-time.After(10 * time.Second):
			t.Fatal("no pass")
		}
		fail <- failing
	}
	// The ticker holds one tick: Run takes it once the pass ends.
	next := func() { f.clock.Step(Period) }
	waitEvent := func() string {
		t.Helper()
		select {
		case e := <-f.recorder.Events:
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
			return ""
		}
	}

	pass(true) // at start; fails once: no event
	next()
	pass(true) // fails again
	if e := waitEvent(); e != "Warning ImageGCFailed image filesystem stats: no stats yet" {
		t.Errorf("event %q", e)
	}
	next()
	pass(false)
	next()
	pass(true) // once after a success: no event
	next()
	pass(false)
	if ev := f.events(); len(ev) > 0 {
		t.Errorf("events %q", ev)
	}
}

// With a high threshold of 100 and no MaxAge, Run does nothing, as the
// kubelet; with a MaxAge it runs.
func TestDisabled(t *testing.T) {
	f := newFixture(t, Policy{HighThresholdPercent: 100, LowThresholdPercent: 80}, "a")
	f.m.Run(t.Context()) // returns at once
	if f.m.Enabled() || len(f.images.Called) > 0 {
		t.Errorf("enabled %v, calls %q", f.m.Enabled(), f.images.Called)
	}
	f = newFixture(t, Policy{HighThresholdPercent: 100, LowThresholdPercent: 80, MaxAge: time.Hour}, "a")
	if !f.m.Enabled() {
		t.Error("disabled with a MaxAge")
	}
	// At 100% the threshold applies all the same: 0.9% available is 100%
	// used, and 191 bytes are to be freed.
	f.available = 9
	if err := f.collect(t); err == nil || !strings.Contains(err.Error(), "(100% of 1000 B used)") {
		t.Fatalf("err = %v", err)
	}
	if got := f.left(); len(got) != 0 {
		t.Errorf("images left %q", got)
	}
}

func TestNewChecksPolicy(t *testing.T) {
	f := newFixture(t, defaultPolicy)
	for _, p := range []Policy{
		{HighThresholdPercent: 101},
		{HighThresholdPercent: 50, LowThresholdPercent: -1},
		{HighThresholdPercent: 50, LowThresholdPercent: 60},
		{HighThresholdPercent: 85, LowThresholdPercent: 80, MinAge: -time.Second},
	} {
		if _, err := New(Config{Policy: p, Containers: f.containers, Images: f.images, ImageFs: f.m.cfg.ImageFs}); err == nil {
			t.Errorf("policy %+v accepted", p)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"}, {1<<20 - 1, "1024.0 KiB"},
		{1 << 20, "1.0 MiB"}, {20 << 30, "20.0 GiB"}, {19_500_000_000, "18.2 GiB"}, {3 << 40, "3.0 TiB"}, {5 << 50, "5120.0 TiB"},
	} {
		if got := formatSize(tt.n); got != tt.want {
			t.Errorf("formatSize(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
