package podsync

import (
	"context"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/nodeagent/nodeagent/podworkers"
)

var _ podworkers.PodSyncer = (*admittingSyncer)(nil)

// admittingSyncer stands behind real pod workers: a sync admits its pod,
// a terminal pod ends, and a termination lasts until stop is closed (the
// containers still stopping).
type admittingSyncer struct {
	s    *Syncer
	stop chan struct{}

	mu       sync.Mutex
	verdicts map[types.UID]string
}

func (a *admittingSyncer) SyncPod(_ context.Context, pod *v1.Pod) (bool, time.Duration, error) {
	if pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed {
		return true, 0, nil
	}
	reason, _ := a.s.admit(context.Background(), pod)
	a.mu.Lock()
	a.verdicts[pod.UID] = reason
	a.mu.Unlock()
	return reason != "", 0, nil
}

func (a *admittingSyncer) SyncTerminatingPod(ctx context.Context, _ *v1.Pod, _ int64, _ func(*v1.PodStatus)) error {
	select {
	case <-a.stop:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *admittingSyncer) SyncTerminatedPod(context.Context, *v1.Pod, bool) error { return nil }

func (a *admittingSyncer) verdict(uid types.UID) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.verdicts[uid]
	return r, ok
}

func cpuPod(uid, cpu string, created time.Time) *v1.Pod {
	p := requesting("cpu", cpu)
	p.UID, p.Name, p.Namespace = types.UID(uid), uid, "default"
	p.CreationTimestamp = metav1.NewTime(created)
	p.Spec.Tolerations = []v1.Toleration{{Operator: v1.TolerationOpExists}}
	return p
}

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A pod that ended counts no more against a new one, as the kubelet's
// GetActivePods: admission sees the pods the pod workers list as active
// (agent/pods.go). The conformance run's case: a pod deleted with grace
// period 0 is gone from the apiserver, so the scheduler places a new pod
// in its room while the agent still stops its containers; the agent
// refused it with "OutOfcpu ... requested: 300, used: 1750".
func TestAdmissionCountsActivePods(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		// end ends the old pod, running on the node.
		end func(w *podworkers.Workers, old *v1.Pod, ctx context.Context)
		// stopped: the old pod's containers are stopped (its worker
		// terminated) before the new pod comes.
		stopped bool
		want    string
	}{
		{name: "deleted for good while its containers stop", end: func(w *podworkers.Workers, old *v1.Pod, _ context.Context) {
			w.Remove(old.UID)
		}, want: ""},
		{name: "deleted gracefully while its containers stop", end: func(w *podworkers.Workers, old *v1.Pod, ctx context.Context) {
			old = old.DeepCopy()
			now := metav1.NewTime(t0.Add(time.Minute))
			old.DeletionTimestamp = &now
			w.Update(ctx, old)
		}, want: "OutOfcpu"}, // still in the apiserver: the scheduler counts it too
		{name: "deleted gracefully and stopped", end: func(w *podworkers.Workers, old *v1.Pod, ctx context.Context) {
			old = old.DeepCopy()
			now := metav1.NewTime(t0.Add(time.Minute))
			old.DeletionTimestamp = &now
			w.Update(ctx, old)
		}, stopped: true, want: ""},
		{name: "succeeded", end: func(w *podworkers.Workers, old *v1.Pod, ctx context.Context) {
			old = old.DeepCopy()
			old.Status.Phase = v1.PodSucceeded
			w.Update(ctx, old)
		}, want: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			var w *podworkers.Workers
			s := &Syncer{cfg: Config{MaxPods: 110, ActivePods: func() []*v1.Pod { return w.Active() }, Node: testNode}}
			fake := &admittingSyncer{s: s, stop: make(chan struct{}), verdicts: map[types.UID]string{}}
			w = podworkers.New(fake, clock.RealClock{})
			t.Cleanup(func() { cancel(); w.Wait() })

			old := cpuPod("old", "1750m", t0)
			old.Status.StartTime = &old.CreationTimestamp
			w.Update(ctx, old)
			waitFor(t, "the old pod's admission", func() bool { _, ok := fake.verdict(old.UID); return ok })
			if r, _ := fake.verdict(old.UID); r != "" {
				t.Fatalf("old pod refused: %s", r)
			}

			tc.end(w, old, ctx)
			if tc.stopped {
				close(fake.stop)
			}
			want := podworkers.Terminating
			if tc.stopped {
				want = podworkers.Terminated
			}
			waitFor(t, "the old pod "+want.String(), func() bool { st, ok := w.Known(old.UID); return !ok || st == want })

			newPod := cpuPod("new", "300m", t0.Add(2*time.Minute))
			w.Update(ctx, newPod)
			waitFor(t, "the new pod's admission", func() bool { _, ok := fake.verdict(newPod.UID); return ok })
			if got, _ := fake.verdict(newPod.UID); got != tc.want {
				t.Errorf("new pod: %q, want %q", got, tc.want)
			}
			if !tc.stopped {
				close(fake.stop)
			}
		})
	}
}
