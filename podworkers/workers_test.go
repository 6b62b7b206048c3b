package podworkers

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	testingclock "k8s.io/utils/clock/testing"
)

var _ PodSyncer = (*fakeSyncer)(nil)

// call is one call the workers made to the syncer.
type call struct {
	kind   string // "sync", "terminating", "terminated"
	pod    *v1.Pod
	grace  int64
	gone   bool
	status func(*v1.PodStatus)
}

// fakeSyncer records every call and runs the matching func, if set.
type fakeSyncer struct {
	syncPod         func(ctx context.Context, pod *v1.Pod) (bool, time.Duration, error)
	syncTerminating func(ctx context.Context, pod *v1.Pod, grace int64) error
	syncTerminated  func(ctx context.Context, pod *v1.Pod, gone bool) error

	mu    sync.Mutex
	calls []call
}

func (f *fakeSyncer) record(c call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}

func (f *fakeSyncer) SyncPod(ctx context.Context, pod *v1.Pod) (bool, time.Duration, error) {
	f.record(call{kind: "sync", pod: pod})
	if f.syncPod != nil {
		return f.syncPod(ctx, pod)
	}
	return false, 0, nil
}

func (f *fakeSyncer) SyncTerminatingPod(ctx context.Context, pod *v1.Pod, grace int64, status func(*v1.PodStatus)) error {
	f.record(call{kind: "terminating", pod: pod, grace: grace, status: status})
	if f.syncTerminating != nil {
		return f.syncTerminating(ctx, pod, grace)
	}
	return nil
}

func (f *fakeSyncer) SyncTerminatedPod(ctx context.Context, pod *v1.Pod, gone bool) error {
	f.record(call{kind: "terminated", pod: pod, gone: gone})
	if f.syncTerminated != nil {
		return f.syncTerminated(ctx, pod, gone)
	}
	return nil
}

// of returns the calls of one kind.
func (f *fakeSyncer) of(kind string) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []call
	for _, c := range f.calls {
		if c.kind == kind {
			out = append(out, c)
		}
	}
	return out
}

func newPod(uid, rv string) *v1.Pod {
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: "p-" + uid, Namespace: "default", UID: types.UID(uid), ResourceVersion: rv,
	}}
}

func setup(t *testing.T, s *fakeSyncer) (*Workers, *testingclock.FakeClock, context.Context) {
	t.Helper()
	fc := testingclock.NewFakeClock(time.Now())
	w := New(s, fc)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		done := make(chan struct{})
		go func() { w.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Error("workers did not end after the context was cancelled")
		}
	})
	return w, fc, ctx
}

// eventually polls cond for up to 2s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// stepUntil is eventually for lifecycle transitions: the worker moves from
// one step to the next on a 1ns timer of its clock, so the fake clock is
// nudged forward (by nanoseconds, far below any back-off) while waiting.
func stepUntil(t *testing.T, fc *testingclock.FakeClock, what string, cond func() bool) {
	t.Helper()
	eventually(t, what, func() bool {
		if cond() {
			return true
		}
		fc.Step(time.Nanosecond)
		return false
	})
}

// stays checks that cond holds for a while.
func stays(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 50; i++ {
		if !cond() {
			t.Fatalf("%s no longer holds", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLatestStateWins(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	s := &fakeSyncer{}
	first := true
	s.syncPod = func(ctx context.Context, pod *v1.Pod) (bool, time.Duration, error) {
		if first { // only the worker goroutine calls SyncPod
			first = false
			close(started)
			<-release
		}
		return false, 0, nil
	}
	w, _, ctx := setup(t, s)

	w.Update(ctx, newPod("a", "1"))
	<-started
	for _, rv := range []string{"2", "3", "4"} {
		w.Update(ctx, newPod("a", rv))
	}
	close(release)

	eventually(t, "second SyncPod", func() bool { return len(s.of("sync")) >= 2 })
	stays(t, "two SyncPod calls", func() bool { return len(s.of("sync")) == 2 })
	syncs := s.of("sync")
	if got := syncs[0].pod.ResourceVersion; got != "1" {
		t.Errorf("first SyncPod saw version %s, want 1", got)
	}
	if got := syncs[1].pod.ResourceVersion; got != "4" {
		t.Errorf("second SyncPod saw version %s, want the newest, 4", got)
	}
	if st, ok := w.Known("a"); !ok || st != Syncing {
		t.Errorf("Known = %v, %v; want Syncing, true", st, ok)
	}
	if pods := w.Pods(); len(pods) != 1 || pods[0].ResourceVersion != "4" {
		t.Errorf("Pods = %v, want the newest version of a", pods)
	}
}

func TestDeletionTimestampTerminates(t *testing.T) {
	s := &fakeSyncer{}
	w, fc, ctx := setup(t, s)

	pod := newPod("a", "1")
	pod.Spec.TerminationGracePeriodSeconds = ptr(int64(30))
	w.Update(ctx, pod)
	eventually(t, "SyncPod", func() bool { return len(s.of("sync")) == 1 })

	deleted := pod.DeepCopy()
	deleted.ResourceVersion = "2"
	now := metav1.Now()
	deleted.DeletionTimestamp = &now
	deleted.DeletionGracePeriodSeconds = ptr(int64(5))
	w.Update(ctx, deleted)

	stepUntil(t, fc, "SyncTerminatedPod", func() bool { return len(s.of("terminated")) > 0 })
	term := s.of("terminating")
	if len(term) != 1 {
		t.Fatalf("SyncTerminatingPod called %d times, want 1", len(term))
	}
	if term[0].grace != 5 {
		t.Errorf("grace period = %d, want the deletion's 5", term[0].grace)
	}
	if got := s.of("terminated")[0]; got.gone {
		t.Errorf("SyncTerminatedPod gone = true, want false: the object still exists")
	}
	if st, ok := w.Known("a"); !ok || st != Terminated {
		t.Errorf("Known = %v, %v; want Terminated, true", st, ok)
	}
	if pods := w.Pods(); len(pods) != 0 {
		t.Errorf("Pods = %v, want none: the pod is terminated", pods)
	}
	if n := len(s.of("sync")); n != 1 {
		t.Errorf("SyncPod called %d times, want 1", n)
	}

	// The object goes away: the worker releases the pod and ends.
	w.Remove("a")
	stepUntil(t, fc, "worker to end", func() bool { _, ok := w.Known("a"); return !ok })
	last := s.of("terminated")
	if !last[len(last)-1].gone {
		t.Errorf("last SyncTerminatedPod gone = false, want true")
	}
}

func TestRemoveTerminatesWithSpecGrace(t *testing.T) {
	s := &fakeSyncer{}
	w, fc, ctx := setup(t, s)

	pod := newPod("a", "1")
	pod.Spec.TerminationGracePeriodSeconds = ptr(int64(7))
	w.Update(ctx, pod)
	eventually(t, "SyncPod", func() bool { return len(s.of("sync")) == 1 })

	w.Remove("a")
	stepUntil(t, fc, "worker to end", func() bool { _, ok := w.Known("a"); return !ok })
	term := s.of("terminating")
	if len(term) != 1 || term[0].grace != 7 {
		t.Errorf("SyncTerminatingPod calls = %+v, want one with the spec's grace 7", term)
	}
	done := s.of("terminated")
	if len(done) != 1 || !done[0].gone {
		t.Errorf("SyncTerminatedPod calls = %+v, want one with gone", done)
	}
	if n := len(s.of("sync")); n != 1 {
		t.Errorf("SyncPod called %d times, want 1", n)
	}
	if pods := w.Pods(); len(pods) != 0 {
		t.Errorf("Pods = %v, want none", pods)
	}
}

// A removed pod leaves Active at once, and Pods once it is stopped.
func TestActiveLeavesOutRemoved(t *testing.T) {
	stop := make(chan struct{})
	s := &fakeSyncer{syncTerminating: func(ctx context.Context, _ *v1.Pod, _ int64) error {
		select {
		case <-stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
	w, fc, ctx := setup(t, s)
	w.Update(ctx, newPod("a", "1"))
	w.Update(ctx, newPod("b", "1"))
	eventually(t, "SyncPod", func() bool { return len(s.of("sync")) == 2 })

	w.Remove("b")
	stepUntil(t, fc, "b terminating", func() bool { return len(s.of("terminating")) == 1 })
	if got := uids(w.Active()); len(got) != 1 || got[0] != "a" {
		t.Errorf("Active = %v, want [a]", got)
	}
	if got := uids(w.Pods()); len(got) != 2 {
		t.Errorf("Pods = %v, want a and b: b's containers still stop", got)
	}
	close(stop)
	stepUntil(t, fc, "b's worker to end", func() bool { _, ok := w.Known("b"); return !ok })
	if got := uids(w.Pods()); len(got) != 1 || got[0] != "a" {
		t.Errorf("Pods = %v, want [a]", got)
	}
}

func uids(pods []*v1.Pod) []types.UID {
	var out []types.UID
	for _, p := range pods {
		out = append(out, p.UID)
	}
	return out
}

func TestRemoveUnknownIsNoop(t *testing.T) {
	s := &fakeSyncer{}
	w, _, _ := setup(t, s)
	w.Remove("nope")
	w.Wake("nope")
	if _, ok := w.Known("nope"); ok {
		t.Errorf("Known(nope) = true after Remove/Wake of an unknown pod")
	}
}

func TestTerminalSyncPod(t *testing.T) {
	s := &fakeSyncer{}
	s.syncPod = func(context.Context, *v1.Pod) (bool, time.Duration, error) { return true, 0, nil }
	w, fc, ctx := setup(t, s)

	pod := newPod("a", "1")
	w.Update(ctx, pod)
	stepUntil(t, fc, "SyncTerminatedPod", func() bool { return len(s.of("terminated")) > 0 })
	if term := s.of("terminating"); len(term) != 1 || term[0].grace != 30 {
		t.Errorf("SyncTerminatingPod calls = %+v, want one with the default grace 30", term)
	}
	if done := s.of("terminated"); len(done) != 1 || done[0].gone {
		t.Errorf("SyncTerminatedPod calls = %+v, want one without gone", done)
	}

	// Late events must not run the pod again.
	w.Wake("a")
	w.Update(ctx, newPod("a", "2"))
	stepUntil(t, fc, "SyncTerminatedPod after the update", func() bool { return len(s.of("terminated")) >= 2 })
	stays(t, "one SyncPod", func() bool { return len(s.of("sync")) == 1 })
	if st, ok := w.Known("a"); !ok || st != Terminated {
		t.Errorf("Known = %v, %v; want Terminated, true", st, ok)
	}
}

func TestErrorIsRetried(t *testing.T) {
	s := &fakeSyncer{}
	var mu sync.Mutex
	fail := true
	s.syncPod = func(context.Context, *v1.Pod) (bool, time.Duration, error) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			fail = false
			return false, 0, errors.New("boom")
		}
		return false, 0, nil
	}
	w, fc, ctx := setup(t, s)

	w.Update(ctx, newPod("a", "1"))
	eventually(t, "first SyncPod and its retry timer", func() bool {
		return len(s.of("sync")) == 1 && fc.HasWaiters()
	})
	fc.Step(199 * time.Millisecond)
	stays(t, "no retry before the back-off", func() bool { return len(s.of("sync")) == 1 })
	fc.Step(time.Millisecond)
	eventually(t, "retried SyncPod", func() bool { return len(s.of("sync")) == 2 })
	if st, ok := w.Known("a"); !ok || st != Syncing {
		t.Errorf("Known = %v, %v; want Syncing, true", st, ok)
	}
}

func TestTerminatingErrorIsRetried(t *testing.T) {
	s := &fakeSyncer{}
	var mu sync.Mutex
	fail := true
	s.syncTerminating = func(context.Context, *v1.Pod, int64) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			fail = false
			return errors.New("stop failed")
		}
		return nil
	}
	w, fc, ctx := setup(t, s)
	w.Update(ctx, newPod("a", "1"))
	eventually(t, "SyncPod", func() bool { return len(s.of("sync")) == 1 })
	w.Remove("a")
	eventually(t, "failed SyncTerminatingPod and its retry timer", func() bool {
		return len(s.of("terminating")) == 1 && fc.HasWaiters()
	})
	if st, _ := w.Known("a"); st != Terminating {
		t.Errorf("state = %v after a failed termination, want Terminating", st)
	}
	fc.Step(200 * time.Millisecond)
	stepUntil(t, fc, "worker to end", func() bool { _, ok := w.Known("a"); return !ok })
	if n := len(s.of("terminating")); n != 2 {
		t.Errorf("SyncTerminatingPod called %d times, want 2", n)
	}
}

func TestRequeue(t *testing.T) {
	s := &fakeSyncer{}
	s.syncPod = func(context.Context, *v1.Pod) (bool, time.Duration, error) { return false, 5 * time.Second, nil }
	w, fc, ctx := setup(t, s)

	w.Update(ctx, newPod("a", "1"))
	eventually(t, "SyncPod and its requeue timer", func() bool {
		return len(s.of("sync")) == 1 && fc.HasWaiters()
	})
	fc.Step(4 * time.Second)
	stays(t, "no sync before the requeue", func() bool { return len(s.of("sync")) == 1 })
	fc.Step(time.Second)
	eventually(t, "requeued SyncPod", func() bool { return len(s.of("sync")) == 2 })
}

func TestWakeSyncsAgain(t *testing.T) {
	s := &fakeSyncer{}
	w, _, ctx := setup(t, s)
	w.Update(ctx, newPod("a", "1"))
	eventually(t, "SyncPod", func() bool { return len(s.of("sync")) == 1 })
	w.Wake("a")
	eventually(t, "SyncPod after Wake", func() bool { return len(s.of("sync")) == 2 })
	if got := s.of("sync")[1].pod.ResourceVersion; got != "1" {
		t.Errorf("SyncPod after Wake saw version %s, want 1", got)
	}
}

// A second delete with a shorter grace period interrupts the running
// termination, which restarts with the shorter period.
func TestShorterGraceInterruptsTermination(t *testing.T) {
	s := &fakeSyncer{}
	s.syncTerminating = func(ctx context.Context, _ *v1.Pod, grace int64) error {
		if grace == 30 {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	w, fc, ctx := setup(t, s)

	pod := newPod("a", "1")
	now := metav1.Now()
	pod.DeletionTimestamp = &now
	pod.DeletionGracePeriodSeconds = ptr(int64(30))
	w.Update(ctx, pod)
	eventually(t, "SyncTerminatingPod", func() bool { return len(s.of("terminating")) == 1 })

	shorter := pod.DeepCopy()
	shorter.ResourceVersion = "2"
	shorter.DeletionGracePeriodSeconds = ptr(int64(1))
	w.Update(ctx, shorter)
	stepUntil(t, fc, "Terminated", func() bool { st, _ := w.Known("a"); return st == Terminated })
	term := s.of("terminating")
	if len(term) != 2 || term[1].grace != 1 {
		t.Errorf("SyncTerminatingPod calls = %+v, want a second one with grace 1", term)
	}
	if n := len(s.of("sync")); n != 0 {
		t.Errorf("SyncPod called %d times for a deleted pod, want 0", n)
	}
}

func TestWorkersEndOnCancel(t *testing.T) {
	s := &fakeSyncer{}
	fc := testingclock.NewFakeClock(time.Now())
	w := New(s, fc)
	ctx, cancel := context.WithCancel(context.Background())
	w.Update(ctx, newPod("a", "1"))
	w.Update(ctx, newPod("b", "1"))
	eventually(t, "both SyncPod", func() bool { return len(s.of("sync")) == 2 })
	cancel()
	done := make(chan struct{})
	go func() { w.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Wait did not return after cancel")
	}
}

func TestGracePeriod(t *testing.T) {
	tests := []struct {
		name     string
		deletion *int64
		spec     *int64
		gone     bool
		want     int64
	}{
		{name: "default", want: 30},
		{name: "spec", spec: ptr(int64(10)), want: 10},
		{name: "deletion wins", deletion: ptr(int64(3)), spec: ptr(int64(10)), want: 3},
		{name: "deletion zero", deletion: ptr(int64(0)), spec: ptr(int64(10)), want: 0},
		{name: "gone uses spec", deletion: ptr(int64(3)), spec: ptr(int64(10)), gone: true, want: 10},
		{name: "gone default", deletion: ptr(int64(3)), gone: true, want: 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := newPod("a", "1")
			pod.DeletionGracePeriodSeconds = tt.deletion
			pod.Spec.TerminationGracePeriodSeconds = tt.spec
			if got := gracePeriod(pod, tt.gone); got != tt.want {
				t.Errorf("gracePeriod = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Syncing: "Syncing", Terminating: "Terminating", Terminated: "Terminated"} {
		if got := s.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(s), got, want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// Runtime events (Wake) and pod updates that do not shorten the grace
// period must not interrupt a running termination: restarting it would
// give the remaining containers their full grace period again.
func TestWakeDoesNotInterruptTermination(t *testing.T) {
	release := make(chan struct{})
	s := &fakeSyncer{}
	s.syncTerminating = func(ctx context.Context, _ *v1.Pod, _ int64) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	w, fc, ctx := setup(t, s)

	pod := newPod("a", "1")
	now := metav1.Now()
	pod.DeletionTimestamp = &now
	pod.DeletionGracePeriodSeconds = ptr(int64(30))
	w.Update(ctx, pod)
	eventually(t, "SyncTerminatingPod", func() bool { return len(s.of("terminating")) == 1 })

	w.Wake("a") // a container exited
	same := pod.DeepCopy()
	same.ResourceVersion = "2" // e.g. the agent's own status write
	w.Update(ctx, same)
	w.Remove("a") // gone: the spec's (default, longer) grace period
	stays(t, "one SyncTerminatingPod", func() bool { return len(s.of("terminating")) == 1 })
	close(release)
	stepUntil(t, fc, "worker to end", func() bool { _, ok := w.Known("a"); return !ok })
	if n := len(s.of("terminating")); n != 1 {
		t.Errorf("SyncTerminatingPod called %d times, want 1: the running termination was interrupted", n)
	}
}

// The retry back-off doubles on each failure, measured on the workers'
// clock (here one far from the wall clock).
func TestErrorBackoffGrows(t *testing.T) {
	s := &fakeSyncer{}
	s.syncPod = func(context.Context, *v1.Pod) (bool, time.Duration, error) { return false, 0, errors.New("boom") }
	fc := testingclock.NewFakeClock(time.Now().Add(24 * time.Hour))
	w := New(s, fc)
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); w.Wait() }()

	w.Update(ctx, newPod("a", "1"))
	eventually(t, "first SyncPod and its retry timer", func() bool { return len(s.of("sync")) == 1 && fc.HasWaiters() })
	fc.Step(200 * time.Millisecond)
	eventually(t, "second SyncPod and its retry timer", func() bool { return len(s.of("sync")) == 2 && fc.HasWaiters() })
	fc.Step(200 * time.Millisecond)
	stays(t, "no retry before 400ms", func() bool { return len(s.of("sync")) == 2 })
	fc.Step(200 * time.Millisecond)
	eventually(t, "third SyncPod", func() bool { return len(s.of("sync")) == 3 })
}

// closed reports whether ch is closed.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Kill terminates a running pod whose object says nothing of it, with the
// kill's grace period (unless the pod's own is shorter) and its status
// function, and its channel closes once the pod is stopped.
func TestKill(t *testing.T) {
	for _, tc := range []struct {
		name       string
		spec, kill int64
		want       int64
	}{
		{"kill caps the spec", 30, 10, 10},
		{"shorter spec wins", 5, 10, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			s := &fakeSyncer{}
			s.syncTerminating = func(ctx context.Context, _ *v1.Pod, _ int64) error {
				select {
				case <-release:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			w, fc, ctx := setup(t, s)
			pod := newPod("a", "1")
			pod.Spec.TerminationGracePeriodSeconds = ptr(tc.spec)
			w.Update(ctx, pod)
			eventually(t, "SyncPod", func() bool { return len(s.of("sync")) == 1 })

			done := w.Kill("a", KillOptions{GracePeriod: tc.kill, Status: func(st *v1.PodStatus) { st.Reason = "Killed" }})
			eventually(t, "SyncTerminatingPod", func() bool { return len(s.of("terminating")) == 1 })
			if closed(done) {
				t.Fatal("kill done before the pod stopped")
			}
			if st, _ := w.Known("a"); st != Terminating {
				t.Errorf("state %v, want Terminating", st)
			}
			close(release)
			stepUntil(t, fc, "SyncTerminatedPod", func() bool { return len(s.of("terminated")) > 0 })
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				t.Fatal("kill not done after the pod stopped")
			}
			term := s.of("terminating")[0]
			if term.grace != tc.want {
				t.Errorf("grace %d, want %d", term.grace, tc.want)
			}
			var st v1.PodStatus
			if term.status == nil {
				t.Fatal("SyncTerminatingPod got no status function")
			}
			term.status(&st)
			if st.Reason != "Killed" {
				t.Errorf("status function is not the kill's: reason %q", st.Reason)
			}
			if got := s.of("terminated")[0]; got.gone {
				t.Error("SyncTerminatedPod gone = true for a pod whose object exists")
			}
			if n := len(s.of("sync")); n != 1 {
				t.Errorf("SyncPod called %d times, want 1", n)
			}
			// A later kill of the stopped pod is done at once.
			if !closed(w.Kill("a", KillOptions{GracePeriod: 1})) {
				t.Error("kill of a terminated pod not done at once")
			}
		})
	}
}

// A kill interrupts a sync in progress (a long image pull, say): the pod
// terminates at once rather than after the sync.
func TestKillInterruptsSync(t *testing.T) {
	s := &fakeSyncer{}
	s.syncPod = func(ctx context.Context, _ *v1.Pod) (bool, time.Duration, error) {
		<-ctx.Done()
		return false, 0, ctx.Err()
	}
	w, fc, ctx := setup(t, s)
	w.Update(ctx, newPod("a", "1"))
	eventually(t, "SyncPod", func() bool { return len(s.of("sync")) == 1 })
	done := w.Kill("a", KillOptions{GracePeriod: 3})
	stepUntil(t, fc, "kill done", func() bool { return closed(done) })
	if term := s.of("terminating"); len(term) != 1 || term[0].grace != 3 {
		t.Errorf("SyncTerminatingPod calls %+v, want one with grace 3", term)
	}
	if n := len(s.of("sync")); n != 1 {
		t.Errorf("SyncPod called %d times, want 1", n)
	}
}

// A kill with a shorter grace period interrupts a termination under way
// (a delete with 30 s), which starts again with the kill's period and
// status; a kill with a longer period changes nothing.
func TestKillShortensTermination(t *testing.T) {
	s := &fakeSyncer{}
	s.syncTerminating = func(ctx context.Context, _ *v1.Pod, grace int64) error {
		if grace == 30 {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	w, fc, ctx := setup(t, s)
	pod := newPod("a", "1")
	now := metav1.Now()
	pod.DeletionTimestamp = &now
	pod.DeletionGracePeriodSeconds = ptr(int64(30))
	w.Update(ctx, pod)
	eventually(t, "SyncTerminatingPod", func() bool { return len(s.of("terminating")) == 1 })

	w.Kill("a", KillOptions{GracePeriod: 60, Status: func(st *v1.PodStatus) { st.Reason = "first" }})
	stays(t, "the running termination", func() bool { return len(s.of("terminating")) == 1 })
	done := w.Kill("a", KillOptions{GracePeriod: 10})
	stepUntil(t, fc, "kill done", func() bool { return closed(done) })
	term := s.of("terminating")
	if len(term) != 2 || term[1].grace != 10 {
		t.Fatalf("SyncTerminatingPod calls %+v, want a second one with grace 10", term)
	}
	// A kill without a status function keeps the first one's.
	var st v1.PodStatus
	if term[1].status == nil {
		t.Fatal("the second kill dropped the first one's status function")
	}
	term[1].status(&st)
	if st.Reason != "first" {
		t.Errorf("status function sets reason %q, want the first kill's", st.Reason)
	}
}

// A kill of an unknown pod is done at once; one whose pod never stops is
// done when the workers stop.
func TestKillDone(t *testing.T) {
	s := &fakeSyncer{}
	s.syncTerminating = func(ctx context.Context, _ *v1.Pod, _ int64) error {
		<-ctx.Done()
		return ctx.Err()
	}
	fc := testingclock.NewFakeClock(time.Now())
	w := New(s, fc)
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); w.Wait() }()

	if !closed(w.Kill("nope", KillOptions{})) {
		t.Error("kill of an unknown pod not done at once")
	}
	w.Update(ctx, newPod("a", "1"))
	done := w.Kill("a", KillOptions{GracePeriod: 1})
	eventually(t, "SyncTerminatingPod", func() bool { return len(s.of("terminating")) == 1 })
	if closed(done) {
		t.Fatal("kill done while the pod is stopping")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("kill not done after the workers stopped")
	}
}
