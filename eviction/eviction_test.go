package eviction

import (
	"context"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/nodeagent/nodeagent/staticpods"
)

// kill records the kills a Manager asks for.
type kills struct {
	mu     sync.Mutex
	grace  map[types.UID]int64
	status map[types.UID]v1.PodStatus
}

func (k *kills) kill(pod *v1.Pod, grace int64, status func(*v1.PodStatus)) <-chan struct{} {
	k.mu.Lock()
	defer k.mu.Unlock()
	// The status the pod had, with a condition the status function must
	// keep.
	st := v1.PodStatus{Phase: v1.PodRunning, Conditions: []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue}}}
	status(&st)
	k.grace[pod.UID], k.status[pod.UID] = grace, st
	done := make(chan struct{})
	close(done)
	return done
}

func (k *kills) get(uid types.UID) (int64, v1.PodStatus, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	g, ok := k.grace[uid]
	return g, k.status[uid], ok
}

type fixture struct {
	pods      []*v1.Pod
	stats     []statsapi.PodStats
	dedicated bool
	reads     int
	kills     *kills
	recorder  *record.FakeRecorder
	m         *Manager
}

func newFixture(clk clock.WithTicker) *fixture {
	f := &fixture{kills: &kills{grace: map[types.UID]int64{}, status: map[types.UID]v1.PodStatus{}}, recorder: record.NewFakeRecorder(10)}
	f.m = New(Config{
		Pods: func() []*v1.Pod { return f.pods },
		Stats: func(context.Context) ([]statsapi.PodStats, bool, error) {
			f.reads++
			return f.stats, f.dedicated, nil
		},
		Kill:               f.kills.kill,
		Recorder:           f.recorder,
		Clock:              clk,
		LocalStorageLimits: true,
	})
	return f
}

func q(s string) *resource.Quantity { return ptr.To(resource.MustParse(s)) }

// pod has one container c and one emptyDir data of sizeLimit (none if "").
func pod(uid, sizeLimit string) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p-" + uid, Namespace: "ns", UID: types.UID(uid)},
		Spec: v1.PodSpec{
			Containers: []v1.Container{{Name: "c"}},
			Volumes:    []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}},
		},
		Status: v1.PodStatus{Phase: v1.PodRunning},
	}
	if sizeLimit != "" {
		p.Spec.Volumes[0].EmptyDir.SizeLimit = q(sizeLimit)
	}
	return p
}

func withStorageLimit(p *v1.Pod, limit string) *v1.Pod {
	p.Spec.Containers[0].Resources.Limits = v1.ResourceList{v1.ResourceEphemeralStorage: resource.MustParse(limit)}
	return p
}

// usage is a pod's stats: data's usage, container c's logs and writable
// layer, and the pod's ephemeral storage.
func usage(uid string, data, logs, rootfs, total uint64) statsapi.PodStats {
	return statsapi.PodStats{
		PodRef:      statsapi.PodReference{UID: uid},
		VolumeStats: []statsapi.VolumeStats{{Name: "data", FsStats: statsapi.FsStats{UsedBytes: ptr.To(data)}}},
		Containers: []statsapi.ContainerStats{{
			Name: "c", Logs: &statsapi.FsStats{UsedBytes: ptr.To(logs)}, Rootfs: &statsapi.FsStats{UsedBytes: ptr.To(rootfs)},
		}},
		EphemeralStorage: &statsapi.FsStats{UsedBytes: ptr.To(total)},
	}
}

const mi = 1 << 20

func TestSynchronize(t *testing.T) {
	critical := pod("crit", "10Mi")
	critical.Spec.Priority = ptr.To(staticpods.SystemCriticalPriority)
	static := pod("static", "10Mi")
	static.Annotations = map[string]string{"kubernetes.io/config.source": "file"}
	deleting := pod("del", "10Mi")
	deleting.DeletionTimestamp = &metav1.Time{}
	for _, tc := range []struct {
		name      string
		pod       *v1.Pod
		stats     statsapi.PodStats
		dedicated bool
		want      string // the message, "" for no eviction
	}{
		{"emptyDir over its sizeLimit", pod("a", "10Mi"), usage("a", 20*mi, 0, 0, 20*mi), false, `Usage of EmptyDir volume "data" exceeds the limit "10Mi". `},
		{"emptyDir at its sizeLimit", pod("a", "10Mi"), usage("a", 10*mi, 0, 0, 10*mi), false, ""},
		{"emptyDir without a sizeLimit", pod("a", ""), usage("a", 20*mi, 0, 0, 20*mi), false, ""},
		{"zero sizeLimit is no limit", pod("a", "0"), usage("a", 20*mi, 0, 0, 20*mi), false, ""},
		{"no stats for the pod", pod("a", "10Mi"), usage("other", 20*mi, 0, 0, 20*mi), false, ""},
		{"pod over the sum of its containers' limits", withStorageLimit(pod("a", "100Mi"), "20Mi"), usage("a", 15*mi, 0, 0, 21*mi), false,
			"Pod ephemeral local storage usage exceeds the total limit of containers 20Mi. "},
		{"emptyDir comes before the pod's limit", withStorageLimit(pod("a", "10Mi"), "5Mi"), usage("a", 11*mi, 0, 0, 30*mi), false,
			`Usage of EmptyDir volume "data" exceeds the limit "10Mi". `},
		{"container's writable layer and logs over its limit", withStorageLimit(pod("a", ""), "5Mi"), usage("a", 0, 2*mi, 4*mi, 0), false,
			`Container c exceeded its local ephemeral storage limit "5Mi". `},
		{"a dedicated image filesystem leaves the writable layer out", withStorageLimit(pod("a", ""), "5Mi"), usage("a", 0, 2*mi, 4*mi, 0), true, ""},
		{"critical pods are never evicted", critical, usage("crit", 20*mi, 0, 0, 0), false, ""},
		{"static pods are never evicted", static, usage("static", 20*mi, 0, 0, 0), false, ""},
		{"terminating pods are left alone", deleting, usage("del", 20*mi, 0, 0, 0), false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(clocktesting.NewFakeClock(time.Now()))
			f.pods, f.stats, f.dedicated = []*v1.Pod{tc.pod}, []statsapi.PodStats{tc.stats}, tc.dedicated
			got := f.m.Synchronize(context.Background())
			grace, st, killed := f.kills.get(tc.pod.UID)
			if tc.want == "" {
				if len(got) != 0 || killed {
					t.Fatalf("evicted %v (killed %v, status %+v), want nothing", got, killed, st)
				}
				return
			}
			if len(got) != 1 || !killed {
				t.Fatalf("evicted %v, killed %v; want the pod", got, killed)
			}
			if grace != 1 {
				t.Errorf("grace period %d, want the kubelet's 1", grace)
			}
			if st.Phase != v1.PodFailed || st.Reason != "Evicted" || st.Message != tc.want {
				t.Errorf("status %s %q %q, want Failed Evicted %q", st.Phase, st.Reason, st.Message, tc.want)
			}
			// No DisruptionTarget for local storage evictions: the
			// conditions are the pod's.
			if len(st.Conditions) != 1 || st.Conditions[0].Type != v1.PodReady {
				t.Errorf("conditions %+v, want them untouched", st.Conditions)
			}
			select {
			case e := <-f.recorder.Events:
				if want := "Warning Evicted " + tc.want; e != want {
					t.Errorf("event %q, want %q", e, want)
				}
			default:
				t.Error("no Evicted event")
			}
		})
	}
}

// A pod is evicted once; pods without limits cost no measure.
func TestEvictOnceAndMeasureOnlyWhatIsLimited(t *testing.T) {
	f := newFixture(clocktesting.NewFakeClock(time.Now()))
	f.pods = []*v1.Pod{pod("a", "")}
	f.stats = []statsapi.PodStats{usage("a", 20*mi, 0, 0, 20*mi)}
	f.m.Synchronize(context.Background())
	if f.reads != 0 {
		t.Fatalf("stats read %d times with no limit to enforce", f.reads)
	}
	f.pods = []*v1.Pod{pod("a", "10Mi")}
	for i := 0; i < 3; i++ {
		f.m.Synchronize(context.Background())
	}
	if n := len(f.recorder.Events); n != 1 {
		t.Errorf("%d events, want one eviction", n)
	}
	// Once the pod is gone it is forgotten.
	f.pods = nil
	f.m.Synchronize(context.Background())
	if len(f.m.evicted) != 0 {
		t.Errorf("evicted set keeps %v", f.m.evicted)
	}
}

// Run checks at once, as the kubelet's eviction manager, then every
// period.
func TestRunPeriod(t *testing.T) {
	clk := timerClock{clocktesting.NewFakeClock(time.Now()), make(chan time.Duration, 10)}
	f := newFixture(clk)
	var mu sync.Mutex
	pods := []*v1.Pod{pod("a", "10Mi")}
	f.m.cfg.Pods = func() []*v1.Pod {
		mu.Lock()
		defer mu.Unlock()
		return pods
	}
	f.m.cfg.Stats = func(context.Context) ([]statsapi.PodStats, bool, error) {
		return []statsapi.PodStats{usage("a", 20*mi, 0, 0, 20*mi), usage("b", 20*mi, 0, 0, 20*mi)}, false, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitKilled := func(uid types.UID) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, _, killed := f.kills.get(uid); killed {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not evicted", uid)
			}
			time.Sleep(time.Millisecond)
		}
	}
	// waitPeriodTimer waits for Run's period timer; the timer of
	// waitForCleanup, made first, is not it (HasWaiters could see that
	// one, and the clock then move before the period timer is made).
	waitPeriodTimer := func() {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case d := <-clk.timers:
				if d == MonitoringPeriod {
					return
				}
			case <-deadline:
				t.Fatalf("no timer of %v", MonitoringPeriod)
			}
		}
	}
	// The first check: at once, no time passed.
	waitKilled("a")
	waitPeriodTimer()
	mu.Lock()
	pods = append(pods, pod("b", "10Mi"))
	mu.Unlock()
	clk.Step(MonitoringPeriod - time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	if _, _, killed := f.kills.get("b"); killed {
		t.Fatal("checked again before the period ended")
	}
	clk.Step(time.Millisecond)
	waitKilled("b")
}

// timerClock is a fake clock that reports the duration of each timer made,
// once the timer waits on the clock.
type timerClock struct {
	*clocktesting.FakeClock
	timers chan time.Duration
}

func (c timerClock) NewTimer(d time.Duration) clock.Timer {
	t := c.FakeClock.NewTimer(d)
	c.timers <- d
	return t
}

// After a period that evicted a pod, Run checks again only once the pod
// has stopped, a period after, or after podCleanupTimeout if it never
// does.
func TestRunWaitsForEvictedPods(t *testing.T) {
	for _, tc := range []struct {
		name string
		// stop lets the pod stop, or moves the clock past the timeout.
		stop func(clk *clocktesting.FakeClock, done chan struct{})
	}{
		{"pod stops late", func(_ *clocktesting.FakeClock, done chan struct{}) { close(done) }},
		{"pod never stops", func(clk *clocktesting.FakeClock, _ chan struct{}) {
			clk.Step(podCleanupTimeout - 2*MonitoringPeriod)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := timerClock{clocktesting.NewFakeClock(time.Now()), make(chan time.Duration, 10)}
			killDone := make(chan struct{})
			synced := make(chan struct{}, 10)
			p := pod("a", "10Mi")
			m := New(Config{
				Pods: func() []*v1.Pod { synced <- struct{}{}; return []*v1.Pod{p} },
				Stats: func(context.Context) ([]statsapi.PodStats, bool, error) {
					return []statsapi.PodStats{usage("a", 20*mi, 0, 0, 20*mi)}, false, nil
				},
				Kill:               func(*v1.Pod, int64, func(*v1.PodStatus)) <-chan struct{} { return killDone },
				Clock:              clk,
				LocalStorageLimits: true,
			})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); m.Run(ctx) }()
			defer func() { cancel(); <-done }()

			expectTimer := func(want time.Duration) {
				t.Helper()
				select {
				case d := <-clk.timers:
					if d != want {
						t.Fatalf("timer of %v, want %v", d, want)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("no timer of %v", want)
				}
			}
			expectSync := func(want bool) {
				t.Helper()
				wait := 50 * time.Millisecond
				if want {
					wait = 5 * time.Second
				}
				select {
				case <-synced:
					if !want {
						t.Fatal("checked again while the evicted pod was stopping")
					}
				case <-time.After(wait):
					if want {
						t.Fatal("did not check")
					}
				}
			}

			expectSync(true) // at once, as the kubelet: evicts a
			expectTimer(podCleanupTimeout)
			// Two periods pass without a check while a stops.
			for range 2 {
				clk.Step(MonitoringPeriod)
				expectSync(false)
			}
			tc.stop(clk.FakeClock, killDone)
			expectTimer(MonitoringPeriod)
			expectSync(false)
			clk.Step(MonitoringPeriod)
			expectSync(true)
		})
	}
}
