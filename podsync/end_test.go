package podsync

import (
	"context"
	"errors"
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
)

// endByNode is a status function like nodeshutdown's: phase Failed, a
// reason and message, and a DisruptionTarget condition.
func endByNode(st *v1.PodStatus) {
	if st.Phase != v1.PodSucceeded {
		st.Phase = v1.PodFailed
	}
	st.Reason, st.Message = "Terminated", "node shutdown"
	st.Conditions = append(st.Conditions, v1.PodCondition{Type: v1.DisruptionTarget, Status: v1.ConditionTrue, Reason: v1.PodReasonTerminationByKubelet})
}

// A pod the agent ends itself (a kill with a status function) shows the
// function's conditions before its containers are stopped, but its
// terminal phase and reason only once nothing of it runs; the conditions
// the agent owns follow the final phase.
func TestSyncTerminatingPodEndStatus(t *testing.T) {
	e := newEnv(t)
	pod := testPod("uid1", v1.RestartPolicyAlways)
	e.sync(t, pod)
	e.observe(t, pod)
	if !hasCondition(&pod.Status, v1.PodReady, v1.ConditionTrue) {
		t.Fatalf("pod not ready before the kill: %+v", pod.Status.Conditions)
	}

	// The stop fails: what was written before it is what observers see
	// while the containers stop.
	e.rt.InjectError("StopContainer", errors.New("stuck"))
	if err := e.s.SyncTerminatingPod(context.Background(), pod, 5, endByNode); err == nil {
		t.Fatal("SyncTerminatingPod succeeded although a container did not stop")
	}
	st := e.status.get(pod.UID)
	if st.Phase != v1.PodRunning || st.Reason != "" || !hasCondition(st, v1.DisruptionTarget, v1.ConditionTrue) {
		t.Errorf("while stopping: phase %s reason %q conditions %+v; want Running, no reason, DisruptionTarget", st.Phase, st.Reason, st.Conditions)
	}

	if err := e.s.SyncTerminatingPod(context.Background(), pod, 5, endByNode); err != nil {
		t.Fatalf("SyncTerminatingPod: %v", err)
	}
	st = e.status.get(pod.UID)
	if st.Phase != v1.PodFailed || st.Reason != "Terminated" || st.Message != "node shutdown" {
		t.Errorf("final status %s %q %q; want Failed Terminated", st.Phase, st.Reason, st.Message)
	}
	for typ, want := range map[v1.PodConditionType]v1.ConditionStatus{
		v1.DisruptionTarget: v1.ConditionTrue, v1.PodReady: v1.ConditionFalse, v1.ContainersReady: v1.ConditionFalse,
	} {
		if !hasCondition(st, typ, want) {
			t.Errorf("condition %s not %s: %+v", typ, want, st.Conditions)
		}
	}
	n := 0
	for _, c := range st.Conditions {
		if c.Type == v1.DisruptionTarget {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d DisruptionTarget conditions, want 1", n)
	}
	if cs := st.ContainerStatuses[0]; cs.State.Terminated == nil {
		t.Errorf("container state %+v, want terminated", cs.State)
	}
	// Already terminal phases stay: a pod that succeeded is not Failed.
	done := testPod("uid2", v1.RestartPolicyNever)
	e.sync(t, done)
	e.exit(e.containerID(t, done.UID, "c", 0), 0)
	if err := e.s.SyncTerminatingPod(context.Background(), done, 5, endByNode); err != nil {
		t.Fatal(err)
	}
	if st := e.status.get(done.UID); st.Phase != v1.PodSucceeded || st.Reason != "Terminated" {
		t.Errorf("succeeded pod: %s %q, want Succeeded Terminated", st.Phase, st.Reason)
	}
}

// The final status of a pod with sidecars the agent ended is not computed
// again by SyncTerminatedPod (which does so for a pod that ended on its
// own while its sidecars ran).
func TestSyncTerminatedPodKeepsEndStatus(t *testing.T) {
	e := newEnv(t)
	pod := sidecarPod("sc", v1.RestartPolicyNever)
	for range 3 {
		e.sync(t, pod)
		if id, ok := e.find(pod.UID, "setup", 0); ok {
			e.exit(id, 0)
		}
	}
	e.containerID(t, pod.UID, "c", 0)
	stale := pod.DeepCopy() // the informer has not seen the final status yet
	if err := e.s.SyncTerminatingPod(context.Background(), pod, 30, endByNode); err != nil {
		t.Fatal(err)
	}
	end := e.status.get(pod.UID)
	if end.Reason != "Terminated" || !hasCondition(end, v1.DisruptionTarget, v1.ConditionTrue) {
		t.Fatalf("end status %s %q %+v", end.Phase, end.Reason, end.Conditions)
	}
	if err := e.s.SyncTerminatedPod(context.Background(), stale, false); err != nil {
		t.Fatal(err)
	}
	if st := e.status.get(pod.UID); !reflect.DeepEqual(st, end) {
		t.Errorf("status after SyncTerminatedPod: %s %q %+v; want the end status kept", st.Phase, st.Reason, st.Conditions)
	}
}

// While the node shuts down, admission refuses new pods with the
// kubelet's reason; pods already running are left to the shutdown.
func TestAdmissionWhileShuttingDown(t *testing.T) {
	e := newEnv(t)
	shutting := false
	e.s.cfg.ShuttingDown = func() bool { return shutting }
	running := testPod("running", v1.RestartPolicyAlways)
	e.sync(t, running)
	e.observe(t, running)

	shutting = true
	if terminal, _ := e.sync(t, running); terminal {
		t.Error("a running pod was refused")
	}
	pod := testPod("late", v1.RestartPolicyAlways)
	if terminal, _ := e.sync(t, pod); !terminal {
		t.Fatal("a new pod was admitted while the node shuts down")
	}
	st := e.status.get(pod.UID)
	if st.Phase != v1.PodFailed || st.Reason != "NodeShutdown" || st.Message != "Pod was rejected: Pod was rejected as the node is shutting down." {
		t.Errorf("status %s %q %q; want Failed NodeShutdown with the kubelet's message", st.Phase, st.Reason, st.Message)
	}
	if n := len(e.sandboxesOf(pod.UID)); n != 0 {
		t.Errorf("%d sandboxes for a refused pod", n)
	}
}
