package podsync

import (
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

// observe gives pod the status the agent last wrote, as the informer
// would.
func (e *env) observe(t *testing.T, pod *v1.Pod) {
	t.Helper()
	st := e.status.get(pod.UID)
	if st == nil {
		t.Fatal("no status written")
	}
	pod.Status = *st
}

// checkDeadlineExceeded checks the final state of a pod killed for its
// active deadline: its containers stopped, the pod Failed with the
// kubelet's reason and message, and the DeadlineExceeded event.
func checkDeadlineExceeded(t *testing.T, e *env, pod *v1.Pod, events []string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if !slices.Contains(e.rt.stoppedIDs(), id) {
			t.Errorf("container %s not stopped", id)
		}
	}
	st := e.status.get(pod.UID)
	if st.Phase != v1.PodFailed || st.Reason != "DeadlineExceeded" || st.Message != "Pod was active on the node longer than the specified deadline" {
		t.Errorf("status = %s %q %q; want Failed DeadlineExceeded with the kubelet's message", st.Phase, st.Reason, st.Message)
	}
	for _, cs := range st.ContainerStatuses {
		if cs.State.Terminated == nil {
			t.Errorf("container %s: state %+v, want terminated", cs.Name, cs.State)
		}
	}
	if !hasCondition(st, v1.PodReady, v1.ConditionFalse) {
		t.Errorf("conditions %+v: want Ready False", st.Conditions)
	}
	if !hasEvent(events, "Normal DeadlineExceeded Pod was active on the node longer than the specified deadline") {
		t.Errorf("events %q: want DeadlineExceeded", events)
	}
	for _, sb := range e.sandboxesOf(pod.UID) {
		if sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			t.Errorf("sandbox %s still ready", sb.Id)
		}
	}
}

func TestActiveDeadlinePasses(t *testing.T) {
	e := newEnv(t)
	pod := testPod("deadline", v1.RestartPolicyAlways)
	deadline := int64(60)
	pod.Spec.ActiveDeadlineSeconds = &deadline

	// The first sync gives the pod its start time: the deadline is a whole
	// minute away.
	if terminal, requeue := e.sync(t, pod); terminal || requeue != time.Minute {
		t.Fatalf("first SyncPod = %v, %v; want not terminal, requeue 1m", terminal, requeue)
	}
	e.observe(t, pod)
	id := e.containerID(t, pod.UID, "c", 0)

	e.clock.Step(20 * time.Second)
	if terminal, requeue := e.sync(t, pod); terminal || requeue != 40*time.Second {
		t.Fatalf("SyncPod at 20s = %v, %v; want not terminal, requeue 40s", terminal, requeue)
	}
	if slices.Contains(e.rt.stoppedIDs(), id) {
		t.Fatal("container stopped before the deadline")
	}
	e.observe(t, pod)
	e.events()

	e.clock.Step(40 * time.Second)
	if terminal, _ := e.sync(t, pod); !terminal {
		t.Fatal("SyncPod past the deadline: not terminal")
	}
	checkDeadlineExceeded(t, e, pod, e.events(), id)

	// The worker then terminates the pod: nothing is left to stop, and
	// nothing starts again.
	n := e.containerCount()
	if err := e.s.SyncTerminatingPod(t.Context(), pod, podGrace(pod), nil); err != nil {
		t.Fatalf("SyncTerminatingPod: %v", err)
	}
	if e.containerCount() != n {
		t.Error("containers created after the deadline")
	}
}

// The Conformance case: a running pod's deadline is set shorter; the sync
// the update causes asks to be woken when it ends.
func TestActiveDeadlineShortened(t *testing.T) {
	e := newEnv(t)
	pod := testPod("shorten", v1.RestartPolicyAlways)
	long := int64(3600)
	pod.Spec.ActiveDeadlineSeconds = &long
	e.sync(t, pod)
	e.observe(t, pod)
	id := e.containerID(t, pod.UID, "c", 0)

	e.clock.Step(2 * time.Second)
	short := int64(5)
	pod.Spec.ActiveDeadlineSeconds = &short
	if terminal, requeue := e.sync(t, pod); terminal || requeue != 3*time.Second {
		t.Fatalf("SyncPod after the update = %v, %v; want not terminal, requeue 3s", terminal, requeue)
	}
	e.events()

	e.clock.Step(3 * time.Second)
	if terminal, _ := e.sync(t, pod); !terminal {
		t.Fatal("SyncPod at the new deadline: not terminal")
	}
	checkDeadlineExceeded(t, e, pod, e.events(), id)
}

func TestActiveDeadline(t *testing.T) {
	now := time.Now()
	started := metav1.NewTime(now.Add(-10 * time.Second))
	for _, tc := range []struct {
		name     string
		deadline *int64
		start    *metav1.Time
		past     bool
		until    time.Duration
	}{
		{name: "no deadline", start: &started},
		{name: "not started", deadline: ptr.To(int64(5)), until: 5 * time.Second},
		{name: "before", deadline: ptr.To(int64(30)), start: &started, until: 20 * time.Second},
		{name: "at", deadline: ptr.To(int64(10)), start: &started, past: true, until: time.Nanosecond},
		{name: "after", deadline: ptr.To(int64(1)), start: &started, past: true, until: time.Nanosecond},
		{name: "zero", deadline: ptr.To(int64(0)), start: &started, past: true, until: time.Nanosecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.clock.SetTime(now)
			pod := testPod("p", v1.RestartPolicyAlways)
			pod.Spec.ActiveDeadlineSeconds = tc.deadline
			pod.Status.StartTime = tc.start
			if got := e.s.pastDeadline(pod); got != tc.past {
				t.Errorf("pastDeadline = %v, want %v", got, tc.past)
			}
			if got := e.s.untilDeadline(pod); got != tc.until {
				t.Errorf("untilDeadline = %v, want %v", got, tc.until)
			}
		})
	}
}
