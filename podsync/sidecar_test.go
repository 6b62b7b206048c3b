package podsync

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// sidecarPod has a sidecar "proxy", then a regular init container "setup",
// then the app container "c".
func sidecarPod(uid string, policy v1.RestartPolicy) *v1.Pod {
	p := testPod(uid, policy)
	always := v1.ContainerRestartPolicyAlways
	p.Spec.InitContainers = []v1.Container{
		{Name: "proxy", Image: testImage, ImagePullPolicy: v1.PullIfNotPresent, RestartPolicy: &always},
		{Name: "setup", Image: testImage, ImagePullPolicy: v1.PullIfNotPresent},
	}
	return p
}

func condition(st *v1.PodStatus, t v1.PodConditionType) v1.ConditionStatus {
	for _, c := range st.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

func TestSyncPodSidecar(t *testing.T) {
	e := newEnv(t)
	pod := sidecarPod("side", v1.RestartPolicyNever)
	if err := unsupported(pod); err != nil {
		t.Fatalf("a sidecar is rejected: %v", err)
	}

	// First the sidecar alone: the next init container waits for it.
	e.sync(t, pod)
	proxy := e.containerID(t, pod.UID, "proxy", 0)
	if n := e.containerCount(); n != 1 {
		t.Fatalf("%d containers after the first sync, want the sidecar only", n)
	}
	if st := e.status.get(pod.UID); st.Phase != v1.PodPending || condition(st, v1.PodInitialized) != v1.ConditionFalse {
		t.Errorf("with the sidecar only: phase %s, Initialized %s", st.Phase, condition(st, v1.PodInitialized))
	}

	// The sidecar runs: the regular init container starts, then the app.
	e.sync(t, pod)
	setup := e.containerID(t, pod.UID, "setup", 0)
	e.exit(setup, 0)
	e.sync(t, pod)
	app := e.containerID(t, pod.UID, "c", 0)
	st := e.status.get(pod.UID)
	if st.Phase != v1.PodRunning || condition(st, v1.PodInitialized) != v1.ConditionTrue || condition(st, v1.PodReady) != v1.ConditionTrue {
		t.Errorf("all running: phase %s, Initialized %s, Ready %s", st.Phase, condition(st, v1.PodInitialized), condition(st, v1.PodReady))
	}
	if cs := st.InitContainerStatuses[0]; cs.Name != "proxy" || cs.State.Running == nil || !cs.Ready || !*cs.Started {
		t.Errorf("sidecar status: %+v", cs)
	}

	// The sidecar exits: it restarts although the pod's policy is Never,
	// and the app container is left alone.
	e.exit(proxy, 1)
	e.sync(t, pod)
	e.containerID(t, pod.UID, "proxy", 1)
	st = e.status.get(pod.UID)
	if st.Phase != v1.PodRunning || st.ContainerStatuses[0].State.Running == nil || st.InitContainerStatuses[0].RestartCount != 1 {
		t.Errorf("after the sidecar restarted: phase %s, app %+v, sidecar restarts %d", st.Phase, st.ContainerStatuses[0].State, st.InitContainerStatuses[0].RestartCount)
	}

	// The app completes: the pod is done, but stays Running while its
	// sidecar runs, as with the kubelet.
	e.exit(app, 0)
	terminal, _ := e.sync(t, pod)
	if st := e.status.get(pod.UID); !terminal || st.Phase != v1.PodRunning {
		t.Fatalf("app done: terminal %v, phase %s", terminal, st.Phase)
	}

	// Terminating stops the sidecar.
	if err := e.s.SyncTerminatingPod(context.Background(), pod, 30, nil); err != nil {
		t.Fatal(err)
	}
	e.rt.Lock()
	c := e.rt.Containers[e.findLocked(pod.UID, "proxy", 1)]
	e.rt.Unlock()
	if c.State != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("sidecar still %s after terminating", c.State)
	}
	// The final status shows the stopped sidecar.
	if err := e.s.SyncTerminatedPod(context.Background(), pod, false); err != nil {
		t.Fatal(err)
	}
	if st := e.status.get(pod.UID); st.Phase != v1.PodSucceeded || st.InitContainerStatuses[0].State.Terminated == nil {
		t.Errorf("final status: phase %s, sidecar %+v", st.Phase, st.InitContainerStatuses[0].State)
	}
}

// TestTerminatingStopsSidecarsLast checks the order: app containers, then
// sidecars from the last declared to the first.
func TestTerminatingStopsSidecarsLast(t *testing.T) {
	e := newEnv(t)
	pod := sidecarPod("order", v1.RestartPolicyAlways)
	always := v1.ContainerRestartPolicyAlways
	pod.Spec.InitContainers = append(pod.Spec.InitContainers, v1.Container{Name: "logger", Image: testImage, ImagePullPolicy: v1.PullIfNotPresent, RestartPolicy: &always})
	for range 4 {
		e.sync(t, pod)
		if id, ok := e.find(pod.UID, "setup", 0); ok {
			e.exit(id, 0)
		}
	}
	e.containerID(t, pod.UID, "c", 0)
	if err := e.s.SyncTerminatingPod(context.Background(), pod, 30, nil); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, id := range e.rt.stoppedIDs() {
		e.rt.Lock()
		names = append(names, e.rt.Containers[id].Metadata.Name)
		e.rt.Unlock()
	}
	if want := []string{"c", "logger", "proxy"}; len(names) != 3 || names[0] != want[0] || names[1] != want[1] || names[2] != want[2] {
		t.Errorf("stop order %v, want %v", names, want)
	}
}

// TestSidecarFailedInit: a regular init container after a sidecar fails
// with restartPolicy Never: the pod fails, and the final status after the
// sidecar stopped keeps Failed.
func TestSidecarFailedInit(t *testing.T) {
	e := newEnv(t)
	pod := sidecarPod("fail", v1.RestartPolicyNever)
	e.sync(t, pod)
	e.sync(t, pod)
	e.exit(e.containerID(t, pod.UID, "setup", 0), 1)
	terminal, _ := e.sync(t, pod)
	if st := e.status.get(pod.UID); !terminal || st.Phase != v1.PodRunning {
		t.Fatalf("init failed, sidecar running: terminal %v, phase %s", terminal, st.Phase)
	}
	if err := e.s.SyncTerminatingPod(context.Background(), pod, 30, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.s.SyncTerminatedPod(context.Background(), pod, false); err != nil {
		t.Fatal(err)
	}
	if st := e.status.get(pod.UID); st.Phase != v1.PodFailed {
		t.Errorf("final phase %s, want Failed", st.Phase)
	}
	if _, ok := e.find(pod.UID, "c", 0); ok {
		t.Error("the app container started after a failed init container")
	}
}

// A sidecar in state Unknown beside running app containers is killed and
// started again, the app containers left alone.
func TestSidecarUnknownRestarted(t *testing.T) {
	e := newEnv(t)
	pod := sidecarPod("side", v1.RestartPolicyNever)
	e.sync(t, pod)
	proxy := e.containerID(t, pod.UID, "proxy", 0)
	e.sync(t, pod)
	e.exit(e.containerID(t, pod.UID, "setup", 0), 0)
	e.sync(t, pod)
	app := e.containerID(t, pod.UID, "c", 0)
	e.unknown(proxy)
	e.sync(t, pod)
	if st := e.stateOfContainer(proxy); st != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("the Unknown sidecar is %v, want stopped", st)
	}
	if next, ok := e.find(pod.UID, "proxy", 1); !ok || e.stateOfContainer(next) != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("no running sidecar instance 1")
	}
	if st := e.stateOfContainer(app); st != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("the app container is %v, want left running", st)
	}
	if cs := e.status.get(pod.UID).InitContainerStatuses; len(cs) != 2 || cs[0].RestartCount != 1 || cs[0].State.Running == nil {
		t.Errorf("init container statuses = %+v, want the sidecar running with 1 restart", cs)
	}
	if evs, want := e.events(), `Killing Init container is in "unknown" state, try killing it before restart`; !hasEvent(evs, want) {
		t.Errorf("events %q lack %q", evs, want)
	}
}
