package podsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
)

// blockingImages is a fake image service whose pulls wait for release
// (closed) or their context, counting the pulls at once.
type blockingImages struct {
	*critest.FakeImageService
	release chan struct{}
	started chan string

	mu                sync.Mutex
	active, maxActive int
}

func newBlockingImages() *blockingImages {
	return &blockingImages{FakeImageService: critest.NewFakeImageService(), release: make(chan struct{}), started: make(chan string, 10)}
}

func (b *blockingImages) PullImage(ctx context.Context, image *runtimeapi.ImageSpec, auth *runtimeapi.AuthConfig, sb *runtimeapi.PodSandboxConfig) (string, error) {
	b.mu.Lock()
	b.active++
	b.maxActive = max(b.maxActive, b.active)
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.active--
		b.mu.Unlock()
	}()
	b.started <- image.Image
	select {
	case <-b.release:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return b.FakeImageService.PullImage(ctx, image, auth, sb)
}

// newPullEnv is newEnv with the image service images and the config
// changed by set.
func newPullEnv(t *testing.T, images internalapi.ImageManagerService, set func(*Config)) *env {
	t.Helper()
	e := newEnv(t)
	set(&e.cfg)
	e.s = New(e.cfg, e.rt, images, e.vols, fakeEnv{}, e.status, e.rec, e.clock)
	return e
}

func pullPod(uid, image string, policy v1.PullPolicy) *v1.Pod {
	pod := testPod(uid, v1.RestartPolicyAlways)
	pod.Spec.Containers[0].Image = image
	pod.Spec.Containers[0].ImagePullPolicy = policy
	return pod
}

// serializeImagePulls pulls one image at a time; maxParallelImagePulls
// bounds the pulls at once; without either they all go at once.
func TestPullLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Config)
		want int // pulls at once, of 3
	}{
		{"serialized", func(c *Config) { c.SerializeImagePulls = true }, 1},
		{"serialized whatever maxParallelImagePulls", func(c *Config) { c.SerializeImagePulls, c.MaxParallelImagePulls = true, 3 }, 1},
		{"maxParallelImagePulls", func(c *Config) { c.MaxParallelImagePulls = 2 }, 2},
		{"no limit", func(*Config) {}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			images := newBlockingImages()
			e := newPullEnv(t, images, tc.set)
			var wg sync.WaitGroup
			errs := make(chan error, 3)
			for i := range 3 {
				pod := pullPod(fmt.Sprint("uid", i), fmt.Sprintf("registry.example/img%d:1", i), v1.PullAlways)
				wg.Go(func() {
					_, err := e.s.ensureImage(context.Background(), pod, &pod.Spec.Containers[0])
					errs <- err
				})
			}
			for range tc.want {
				<-images.started
			}
			// The others wait for a turn: none starts before a release.
			select {
			case img := <-images.started:
				if tc.want < 3 {
					t.Errorf("pull of %s started beyond the limit of %d", img, tc.want)
				}
			case <-time.After(50 * time.Millisecond):
			}
			close(images.release)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Errorf("ensureImage: %v", err)
				}
			}
			if images.maxActive != tc.want {
				t.Errorf("%d pulls at once, want %d", images.maxActive, tc.want)
			}
		})
	}
}

// An image already on the node does not wait behind a pull; a pull whose
// sync is cancelled while it waits leaves the queue without failing.
func TestSerializedPullWait(t *testing.T) {
	images := newBlockingImages()
	images.SetFakeImages([]string{testImage})
	e := newPullEnv(t, images, func(c *Config) { c.SerializeImagePulls = true })
	slow := pullPod("slow", "unreachable.example/app:1", v1.PullIfNotPresent)
	done := make(chan error, 1)
	go func() {
		_, err := e.s.ensureImage(context.Background(), slow, &slow.Spec.Containers[0])
		done <- err
	}()
	<-images.started

	present := pullPod("present", testImage, v1.PullIfNotPresent)
	if ref, err := e.s.ensureImage(context.Background(), present, &present.Spec.Containers[0]); err != nil || ref == "" {
		t.Errorf("image present on the node: ref %q, err %v; want it at once", ref, err)
	}

	missing := pullPod("missing", "registry.example/other:1", v1.PullIfNotPresent)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.s.ensureImage(ctx, missing, &missing.Spec.Containers[0])
	if !errors.Is(err, errPullWaitCancelled) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: err = %v, want errPullWaitCancelled", err)
	}
	if w, ok := e.s.waitingFor(missing.UID, "c"); ok {
		t.Errorf("cancelled wait left waiting reason %+v", w)
	}
	if e.s.pullBackoff.Get("registry.example/other:1/"+string(missing.UID)) != 0 {
		t.Error("cancelled wait counted as a failed pull")
	}

	close(images.release)
	if err := <-done; err != nil {
		t.Errorf("slow pull: %v", err)
	}
}

// A sync cancelled while its pull waits reports no container error.
func TestSyncPodCancelledPullWait(t *testing.T) {
	images := newBlockingImages()
	e := newPullEnv(t, images, func(c *Config) { c.SerializeImagePulls = true })
	slow := pullPod("slow", "unreachable.example/app:1", v1.PullIfNotPresent)
	go func() { _, _ = e.s.ensureImage(context.Background(), slow, &slow.Spec.Containers[0]) }()
	<-images.started
	defer close(images.release)

	pod := pullPod("uid1", "registry.example/other:1", v1.PullIfNotPresent)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := e.s.SyncPod(ctx, pod); !errors.Is(err, errPullWaitCancelled) {
		t.Errorf("SyncPod: err = %v, want the cancelled wait", err)
	}
	if w, ok := e.s.waitingFor(pod.UID, "c"); ok {
		t.Errorf("waiting reason %+v, want none", w)
	}
	if evs := e.events(); hasEvent(evs, "Warning") {
		t.Errorf("events = %q, want no warning", evs)
	}
}

// registryPullQPS and registryBurst: a pull beyond them fails at once with
// the kubelet's "pull QPS exceeded" and the pull back-off; 0 QPS is no
// limit.
func TestPullQPS(t *testing.T) {
	t.Run("limited", func(t *testing.T) {
		e := newPullEnv(t, critest.NewFakeImageService(), func(c *Config) { c.RegistryPullQPS, c.RegistryBurst = 1, 2 })
		pull := func(uid string) error {
			pod := pullPod(uid, testImage, v1.PullAlways)
			_, err := e.s.ensureImage(context.Background(), pod, &pod.Spec.Containers[0])
			return err
		}
		for _, uid := range []string{"a", "b"} {
			if err := pull(uid); err != nil {
				t.Fatalf("pull within the burst: %v", err)
			}
		}
		err := pull("c")
		var pe *pullError
		if !errors.As(err, &pe) || pe.reason != "ErrImagePull" || !strings.HasSuffix(pe.message, ": pull QPS exceeded") || pe.retryAfter != backoffInitial {
			t.Fatalf("pull beyond the burst: err = %v, want ErrImagePull: pull QPS exceeded with the pull back-off", err)
		}
		if w, _ := e.s.waitingFor("c", "c"); w.reason != "ErrImagePull" {
			t.Errorf("waiting = %+v, want ErrImagePull", w)
		}
		if evs := e.events(); !hasEvent(evs, `Failed to pull image "`+testImage+`": pull QPS exceeded`) {
			t.Errorf("events = %q, want the failed pull", evs)
		}
		e.clock.Step(time.Second)
		if err := pull("d"); err != nil {
			t.Errorf("pull a second later: %v", err)
		}
	})
	t.Run("0 is no limit", func(t *testing.T) {
		e := newPullEnv(t, critest.NewFakeImageService(), func(c *Config) { c.RegistryPullQPS, c.RegistryBurst = 0, 1 })
		for i := range 20 {
			pod := pullPod(fmt.Sprint("uid", i), testImage, v1.PullAlways)
			if _, err := e.s.ensureImage(context.Background(), pod, &pod.Spec.Containers[0]); err != nil {
				t.Fatalf("pull %d: %v", i, err)
			}
		}
	})
}

// The crash-loop back-off doubles from 10s up to its maximum, which a
// maximum below 10s is from the start, and starts again only after 10
// minutes without a restart, as the kubelet's.
func TestCrashBackoff(t *testing.T) {
	for _, tc := range []struct {
		max  time.Duration
		want []int // delays in seconds
	}{
		{0, []int{10, 20, 40, 80, 160, 300, 300}},
		{300 * time.Second, []int{10, 20, 40, 80, 160, 300}},
		{60 * time.Second, []int{10, 20, 40, 60, 60}},
		{10 * time.Second, []int{10, 10}},
		{5 * time.Second, []int{5, 5}},
		{time.Second, []int{1, 1}},
	} {
		secs := func(n int) time.Duration { return time.Duration(n) * time.Second }
		t.Run(tc.max.String(), func(t *testing.T) {
			e := newEnv(t)
			b := newCrashBackoff(e.clock, tc.max)
			for i, w := range tc.want {
				b.Next("k", e.clock.Now())
				if got := b.Get("k"); got != secs(w) {
					t.Errorf("delay %d = %v, want %v", i, got, secs(w))
				}
				e.clock.Step(b.Get("k"))
			}
			last := secs(tc.want[len(tc.want)-1])
			e.clock.Step(backoffResetAfter - last)
			b.Next("k", e.clock.Now())
			if got := b.Get("k"); got != last {
				t.Errorf("after 10 minutes: delay %v, want still %v", got, last)
			}
			e.clock.Step(backoffResetAfter + time.Second)
			b.Next("k", e.clock.Now())
			if got := b.Get("k"); got != secs(tc.want[0]) {
				t.Errorf("after more than 10 minutes: delay %v, want %v again", got, secs(tc.want[0]))
			}
		})
	}
}

// crashLoopBackOff.maxContainerRestartPeriod caps the restart delay.
func TestSyncPodCrashLoopBackOffMax(t *testing.T) {
	images := critest.NewFakeImageService()
	images.SetFakeImages([]string{testImage})
	e := newPullEnv(t, images, func(c *Config) { c.MaxContainerRestartPeriod = 2 * time.Second })
	pod := testPod("uid1", v1.RestartPolicyAlways)
	e.sync(t, pod)
	for attempt := uint32(0); attempt < 3; attempt++ {
		e.exit(e.containerID(t, pod.UID, "c", attempt), 1)
		_, requeue := e.sync(t, pod)
		if attempt == 0 {
			e.containerID(t, pod.UID, "c", 1) // the first restart is at once
			continue
		}
		if requeue <= 0 || requeue > 2*time.Second+10*time.Millisecond {
			t.Fatalf("attempt %d: requeue = %v, want the 2s back-off", attempt, requeue)
		}
		if w, _ := e.s.waitingFor(pod.UID, "c"); w.reason != "CrashLoopBackOff" || !strings.HasPrefix(w.message, "back-off 2s restarting failed container=c") {
			t.Errorf("attempt %d: waiting = %+v, want CrashLoopBackOff with back-off 2s", attempt, w)
		}
		e.clock.Step(requeue)
		e.sync(t, pod)
		e.containerID(t, pod.UID, "c", attempt+1)
	}
}

// A sync already cancelled when a turn is free pulls nothing: no failed
// pull, no back-off, whichever way select goes.
func TestPullCancelledWithFreeTurn(t *testing.T) {
	images := newBlockingImages()
	close(images.release)
	e := newPullEnv(t, images, func(c *Config) { c.SerializeImagePulls = true })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 20 {
		pod := pullPod(fmt.Sprint("uid", i), "registry.example/other:1", v1.PullAlways)
		if _, err := e.s.ensureImage(ctx, pod, &pod.Spec.Containers[0]); !errors.Is(err, errPullWaitCancelled) || !errors.Is(err, context.Canceled) {
			t.Fatalf("try %d: err = %v, want errPullWaitCancelled", i, err)
		}
		if e.s.pullBackoff.Get("registry.example/other:1/"+string(pod.UID)) != 0 {
			t.Fatalf("try %d: counted as a failed pull", i)
		}
	}
	select {
	case img := <-images.started:
		t.Errorf("pulled %s with a cancelled context", img)
	default:
	}
	if evs := e.events(); hasEvent(evs, "Warning") {
		t.Errorf("events = %q, want no warning", evs)
	}
}

// The Pulled event gives the pull's own time, then the time with the wait
// for a turn, and the image's size, in the kubelet's words.
func TestPulledEventTimes(t *testing.T) {
	images := newBlockingImages()
	images.SetFakeImageSize(1234)
	e := newPullEnv(t, images, func(c *Config) { c.SerializeImagePulls = true })
	first := pullPod("first", "registry.example/first:1", v1.PullAlways)
	second := pullPod("second", "registry.example/second:1", v1.PullAlways)
	var wg sync.WaitGroup
	ensure := func(pod *v1.Pod) {
		wg.Go(func() {
			if _, err := e.s.ensureImage(context.Background(), pod, &pod.Spec.Containers[0]); err != nil {
				t.Errorf("ensureImage %s: %v", pod.Name, err)
			}
		})
	}
	ensure(first)
	<-images.started
	e.clock.Step(3 * time.Second) // first pulling
	ensure(second)
	var evs []string
	for deadline := time.Now().Add(5 * time.Second); !hasEvent(evs, `Pulling image "registry.example/second:1"`); {
		if time.Now().After(deadline) {
			t.Fatal("second pull never queued")
		}
		time.Sleep(time.Millisecond)
		evs = append(evs, e.events()...)
	}
	// The second pull's start is taken before its Pulling event: it
	// waits for its turn from here.
	e.clock.Step(2 * time.Second)
	close(images.release)
	wg.Wait()
	evs = append(evs, e.events()...)
	for _, want := range []string{
		`Successfully pulled image "registry.example/first:1" in 5s (5s including waiting). Image size: 1234 bytes.`,
		`Successfully pulled image "registry.example/second:1" in 0s (2s including waiting). Image size: 1234 bytes.`,
	} {
		if !hasEvent(evs, want) {
			t.Errorf("events = %q, want %q", evs, want)
		}
	}
}
