package podsync

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/prober"
)

var _ Prober = (*fakeProber)(nil)

// fakeProber holds results set by the test and records added containers.
type fakeProber struct {
	mu      sync.Mutex
	ready   map[string]bool
	started map[string]bool
	added   map[string]string
	// failed holds the container IDs whose liveness probe failed.
	failed map[string]bool
}

func newFakeProber() *fakeProber {
	return &fakeProber{ready: map[string]bool{}, started: map[string]bool{}, added: map[string]string{}}
}

func (f *fakeProber) Add(_ context.Context, _ *v1.Pod, container, id, _ string, _ time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.added[container] = id
}

func (f *fakeProber) Remove(_ types.UID, container string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.added, container)
}

func (f *fakeProber) RemovePod(types.UID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.added = map[string]string{}
}

func (f *fakeProber) Ready(_ types.UID, c, _ string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready[c]
}

func (f *fakeProber) Started(_ types.UID, c, _ string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.started[c]
}

func (f *fakeProber) Failed(_ types.UID, _, id string) (prober.Type, string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return prober.Liveness, "boom", f.failed[id]
}

func (f *fakeProber) fail(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failed == nil {
		f.failed = map[string]bool{}
	}
	f.failed[id] = true
}

func probeEnv(t *testing.T) (*env, *fakeProber) {
	e := newEnv(t)
	p := newFakeProber()
	e.cfg.Prober = p
	e.s.cfg.Prober = p
	return e, p
}

func execProbe() *v1.Probe {
	return &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"true"}}}}
}

func TestProbesReadyAndStarted(t *testing.T) {
	e, p := probeEnv(t)
	pod := testPod("uid1", v1.RestartPolicyAlways)
	pod.Spec.Containers[0].ReadinessProbe = execProbe()
	pod.Spec.Containers[0].StartupProbe = execProbe()
	e.sync(t, pod)
	name := pod.Spec.Containers[0].Name
	if _, ok := p.added[name]; !ok {
		t.Fatal("probes not started for the running container")
	}
	st := e.status.get(pod.UID)
	cs := st.ContainerStatuses[0]
	if cs.Ready || *cs.Started || hasCondition(st, v1.ContainersReady, v1.ConditionTrue) {
		t.Fatalf("ready=%v started=%v before the probes succeeded", cs.Ready, *cs.Started)
	}
	p.started[name] = true
	e.sync(t, pod)
	if cs := e.status.get(pod.UID).ContainerStatuses[0]; cs.Ready || !*cs.Started {
		t.Fatalf("ready=%v started=%v after startup only", cs.Ready, *cs.Started)
	}
	p.ready[name] = true
	e.sync(t, pod)
	st = e.status.get(pod.UID)
	if !st.ContainerStatuses[0].Ready || !hasCondition(st, v1.PodReady, v1.ConditionTrue) {
		t.Fatalf("not ready after readiness succeeded: %+v", st.Conditions)
	}
	// The container exits: its probes stop.
	e.exit(e.containerID(t, pod.UID, name, 0), 1)
	e.s.crashBackoff.Next(string(pod.UID)+"/"+name, e.clock.Now()) // keep it down
	e.sync(t, pod)
	if _, ok := p.added[name]; ok {
		t.Fatal("probes still running for an exited container")
	}
}

// A failed liveness probe is acted on by the pod's worker: the sync kills
// the container with the probe's grace period and starts it again.
func TestKillUnhealthy(t *testing.T) {
	e, p := probeEnv(t)
	pod := testPod("uid1", v1.RestartPolicyAlways)
	grace := int64(7)
	pod.Spec.Containers[0].LivenessProbe = execProbe()
	pod.Spec.Containers[0].LivenessProbe.TerminationGracePeriodSeconds = &grace
	e.sync(t, pod)
	name := pod.Spec.Containers[0].Name
	id := e.containerID(t, pod.UID, name, 0)
	e.events()
	p.fail(id)
	pod.Status = *e.status.get(pod.UID)
	e.sync(t, pod)
	e.rt.Lock()
	state := e.rt.Containers[id].State
	e.rt.Unlock()
	if state != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Fatalf("container state %v after a liveness failure", state)
	}
	if evs := e.events(); !hasEvent(evs, "Container c failed liveness probe, will be restarted") {
		t.Fatalf("events %v, want Killing", evs)
	}
	if got := e.rt.stoppedIDs(); len(got) != 1 || got[0] != id {
		t.Fatalf("stopped %v, want %s", got, id)
	}
	// The same sync started it again.
	if cs := e.status.get(pod.UID).ContainerStatuses[0]; cs.RestartCount != 1 || cs.State.Running == nil {
		t.Fatalf("after the liveness kill: %+v", cs)
	}
	if _, ok := e.find(pod.UID, name, 1); !ok {
		t.Fatal("no new instance")
	}
}

func TestPostStartHookFailureKills(t *testing.T) {
	e, _ := probeEnv(t)
	pod := testPod("uid1", v1.RestartPolicyAlways)
	pod.Spec.Containers[0].Lifecycle = &v1.Lifecycle{PostStart: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"false"}}}}
	e.rt.InjectError("ExecSync", errors.New("exit status 1"))
	e.sync(t, pod)
	if evs := e.events(); !hasEvent(evs, "FailedPostStartHook") {
		t.Fatalf("events %v, want FailedPostStartHook", evs)
	}
	id := e.containerID(t, pod.UID, pod.Spec.Containers[0].Name, 0)
	e.rt.Lock()
	state := e.rt.Containers[id].State
	e.rt.Unlock()
	if state != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Fatalf("container %v after a failed postStart hook, want exited", state)
	}
}

func TestPreStopHookRunsBeforeStop(t *testing.T) {
	e, _ := probeEnv(t)
	pod := testPod("uid1", v1.RestartPolicyAlways)
	pod.Spec.Containers[0].Lifecycle = &v1.Lifecycle{PreStop: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"bye"}}}}
	e.sync(t, pod)
	e.rt.Lock()
	e.rt.Called = nil
	e.rt.Unlock()
	if err := e.s.SyncTerminatingPod(context.Background(), pod, 5, nil); err != nil {
		t.Fatal(err)
	}
	e.rt.Lock()
	defer e.rt.Unlock()
	execAt, stopAt := -1, -1
	for i, c := range e.rt.Called {
		if c == "ExecSync" && execAt < 0 {
			execAt = i
		}
		if c == "StopContainer" && stopAt < 0 {
			stopAt = i
		}
	}
	if execAt < 0 || stopAt < execAt {
		t.Fatalf("calls %v: want ExecSync (preStop) before StopContainer", e.rt.Called)
	}
}
