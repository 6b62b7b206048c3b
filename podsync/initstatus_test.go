package podsync

import (
	"context"
	"fmt"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// initPod has the regular init containers init1 and init2, then the app
// container c: the pod of the InitContainer conformance specs.
func initPod(uid string, policy v1.RestartPolicy) *v1.Pod {
	p := testPod(uid, policy)
	p.Generation = 1
	p.Spec.InitContainers = []v1.Container{
		{Name: "init1", Image: testImage, ImagePullPolicy: v1.PullIfNotPresent},
		{Name: "init2", Image: testImage, ImagePullPolicy: v1.PullIfNotPresent},
	}
	return p
}

// stateOf sums up a container status: "Running", "Waiting:<reason>" or
// "Terminated:<reason>:<exit code>".
func stateOf(cs v1.ContainerStatus) string {
	switch s := cs.State; {
	case s.Running != nil:
		return "Running"
	case s.Terminated != nil:
		return fmt.Sprintf("Terminated:%s:%d", s.Terminated.Reason, s.Terminated.ExitCode)
	case s.Waiting != nil:
		return "Waiting:" + s.Waiting.Reason
	}
	return "none"
}

// wantCS is what a test expects of one container status.
type wantCS struct {
	state    string
	ready    bool
	started  bool
	restarts int32
	lastExit *int32 // exit code of LastTerminationState; nil: none
}

// wantCond is what a test expects of one condition.
type wantCond struct {
	status  v1.ConditionStatus
	reason  string
	message string
}

func exitCode(c int32) *int32 { return &c }

func checkStatuses(t *testing.T, kind string, got []v1.ContainerStatus, want map[string]wantCS) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s statuses: %d, want %d", kind, len(got), len(want))
	}
	for _, cs := range got {
		w, ok := want[cs.Name]
		if !ok {
			t.Errorf("%s status of unexpected container %q", kind, cs.Name)
			continue
		}
		if s := stateOf(cs); s != w.state {
			t.Errorf("%s %s: state %s, want %s", kind, cs.Name, s, w.state)
		}
		if cs.Ready != w.ready {
			t.Errorf("%s %s: ready %v, want %v", kind, cs.Name, cs.Ready, w.ready)
		}
		if cs.Started == nil || *cs.Started != w.started {
			t.Errorf("%s %s: started %v, want %v", kind, cs.Name, cs.Started, w.started)
		}
		if cs.RestartCount != w.restarts {
			t.Errorf("%s %s: restartCount %d, want %d", kind, cs.Name, cs.RestartCount, w.restarts)
		}
		lt := cs.LastTerminationState.Terminated
		switch {
		case w.lastExit == nil && lt != nil:
			t.Errorf("%s %s: last termination %+v, want none", kind, cs.Name, lt)
		case w.lastExit != nil && (lt == nil || lt.ExitCode != *w.lastExit):
			t.Errorf("%s %s: last termination %+v, want exit code %d", kind, cs.Name, lt, *w.lastExit)
		}
	}
}

func checkConditions(t *testing.T, st *v1.PodStatus, gen int64, want map[v1.PodConditionType]wantCond) {
	t.Helper()
	for typ, w := range want {
		var c *v1.PodCondition
		for i := range st.Conditions {
			if st.Conditions[i].Type == typ {
				c = &st.Conditions[i]
			}
		}
		if c == nil {
			t.Errorf("no %s condition", typ)
			continue
		}
		if c.Status != w.status || c.Reason != w.reason || c.Message != w.message {
			t.Errorf("%s = %s %q %q, want %s %q %q", typ, c.Status, c.Reason, c.Message, w.status, w.reason, w.message)
		}
		if c.ObservedGeneration != gen {
			t.Errorf("%s observedGeneration = %d, want %d", typ, c.ObservedGeneration, gen)
		}
		if c.LastTransitionTime.IsZero() {
			t.Errorf("%s has no transition time", typ)
		}
	}
}

// TestInitContainerStatus drives pods with init containers through the
// InitContainer conformance scenarios and checks the status is the
// kubelet's at each point.
func TestInitContainerStatus(t *testing.T) {
	notInit := func(names string) wantCond {
		return wantCond{v1.ConditionFalse, "ContainersNotInitialized", "containers with incomplete status: [" + names + "]"}
	}
	notReady := wantCond{v1.ConditionFalse, "ContainersNotReady", "containers with unready status: [c]"}
	isTrue := wantCond{status: v1.ConditionTrue}
	pending := wantCS{state: "Waiting:PodInitializing"}
	completed := wantCS{state: "Terminated:Completed:0", ready: true}
	tests := []struct {
		name     string
		policy   v1.RestartPolicy
		drive    func(t *testing.T, e *env, pod *v1.Pod) (terminal bool)
		phase    v1.PodPhase
		terminal bool
		init     map[string]wantCS
		app      map[string]wantCS
		conds    map[v1.PodConditionType]wantCond
		noApp    bool // the app container must never have been created
	}{{
		name:   "first init container running",
		policy: v1.RestartPolicyAlways,
		drive: func(t *testing.T, e *env, pod *v1.Pod) bool {
			terminal, _ := e.sync(t, pod)
			return terminal
		},
		phase: v1.PodPending,
		init:  map[string]wantCS{"init1": {state: "Running", started: true}, "init2": pending},
		app:   map[string]wantCS{"c": pending},
		conds: map[v1.PodConditionType]wantCond{
			v1.PodInitialized: notInit("init1 init2"), v1.ContainersReady: notReady, v1.PodReady: notReady,
			v1.PodReadyToStartContainers: isTrue, v1.PodScheduled: isTrue,
		},
		noApp: true,
	}, {
		name:   "second init container running",
		policy: v1.RestartPolicyAlways,
		drive: func(t *testing.T, e *env, pod *v1.Pod) bool {
			e.sync(t, pod)
			e.exit(e.containerID(t, pod.UID, "init1", 0), 0)
			terminal, _ := e.sync(t, pod)
			return terminal
		},
		phase: v1.PodPending,
		init:  map[string]wantCS{"init1": completed, "init2": {state: "Running", started: true}},
		app:   map[string]wantCS{"c": pending},
		conds: map[v1.PodConditionType]wantCond{v1.PodInitialized: notInit("init2"), v1.PodReady: notReady},
		noApp: true,
	}, {
		name:   "init succeeded, app running",
		policy: v1.RestartPolicyAlways,
		drive: func(t *testing.T, e *env, pod *v1.Pod) bool {
			e.sync(t, pod)
			e.exit(e.containerID(t, pod.UID, "init1", 0), 0)
			e.sync(t, pod)
			e.exit(e.containerID(t, pod.UID, "init2", 0), 0)
			terminal, _ := e.sync(t, pod)
			return terminal
		},
		phase: v1.PodRunning,
		init:  map[string]wantCS{"init1": completed, "init2": completed},
		app:   map[string]wantCS{"c": {state: "Running", ready: true, started: true}},
		conds: map[v1.PodConditionType]wantCond{
			v1.PodInitialized: isTrue, v1.ContainersReady: isTrue, v1.PodReady: isTrue,
			v1.PodReadyToStartContainers: isTrue, v1.PodScheduled: isTrue,
		},
	}, {
		name:   "init succeeded, app cannot be created yet",
		policy: v1.RestartPolicyAlways,
		drive: func(t *testing.T, e *env, pod *v1.Pod) bool {
			e.sync(t, pod)
			e.exit(e.containerID(t, pod.UID, "init1", 0), 0)
			e.sync(t, pod)
			e.exit(e.containerID(t, pod.UID, "init2", 0), 0)
			e.rt.InjectError("CreateContainer", fmt.Errorf("no space left"))
			if _, _, err := e.s.SyncPod(context.Background(), pod); err == nil {
				t.Fatal("SyncPod: no error from a failed CreateContainer")
			}
			return false
		},
		phase: v1.PodPending,
		init:  map[string]wantCS{"init1": completed, "init2": completed},
		app:   map[string]wantCS{"c": {state: "Waiting:CreateContainerError"}},
		conds: map[v1.PodConditionType]wantCond{v1.PodInitialized: isTrue, v1.PodReady: notReady},
		noApp: true,
	}, {
		name:   "init failing in a RestartAlways pod",
		policy: v1.RestartPolicyAlways,
		drive: func(t *testing.T, e *env, pod *v1.Pod) bool {
			e.sync(t, pod)
			for attempt := range uint32(3) {
				e.exit(e.containerID(t, pod.UID, "init1", attempt), 1)
				_, requeue := e.sync(t, pod)
				if attempt > 0 {
					// Back-off: the status shows it, then the
					// container starts again once it has passed.
					st := e.status.get(pod.UID)
					if s := stateOf(st.InitContainerStatuses[0]); s != "Waiting:CrashLoopBackOff" {
						t.Errorf("attempt %d in back-off: init1 %s, want Waiting:CrashLoopBackOff", attempt, s)
					}
					if lt := st.InitContainerStatuses[0].LastTerminationState.Terminated; lt == nil || lt.ExitCode != 1 {
						t.Errorf("attempt %d in back-off: last termination %+v, want exit code 1", attempt, lt)
					}
					checkStatuses(t, "app", st.ContainerStatuses, map[string]wantCS{"c": pending})
					e.clock.Step(requeue)
					e.sync(t, pod)
				}
			}
			return false
		},
		phase: v1.PodPending,
		init:  map[string]wantCS{"init1": {state: "Running", started: true, restarts: 3, lastExit: exitCode(1)}, "init2": pending},
		app:   map[string]wantCS{"c": pending},
		conds: map[v1.PodConditionType]wantCond{
			v1.PodInitialized: notInit("init1 init2"), v1.ContainersReady: notReady, v1.PodReady: notReady,
		},
		noApp: true,
	}, {
		name:   "first init failed in a RestartNever pod",
		policy: v1.RestartPolicyNever,
		drive: func(t *testing.T, e *env, pod *v1.Pod) bool {
			e.sync(t, pod)
			e.exit(e.containerID(t, pod.UID, "init1", 0), 1)
			terminal, _ := e.sync(t, pod)
			return terminal
		},
		phase:    v1.PodFailed,
		terminal: true,
		init:     map[string]wantCS{"init1": {state: "Terminated:Error:1"}, "init2": pending},
		app:      map[string]wantCS{"c": pending},
		conds: map[v1.PodConditionType]wantCond{
			v1.PodInitialized:  notInit("init1 init2"),
			v1.ContainersReady: {v1.ConditionFalse, "PodFailed", ""},
			v1.PodReady:        {v1.ConditionFalse, "PodFailed", ""},
		},
		noApp: true,
	}, {
		name:   "second init failed in a RestartNever pod",
		policy: v1.RestartPolicyNever,
		drive: func(t *testing.T, e *env, pod *v1.Pod) bool {
			e.sync(t, pod)
			e.exit(e.containerID(t, pod.UID, "init1", 0), 0)
			e.sync(t, pod)
			e.exit(e.containerID(t, pod.UID, "init2", 0), 1)
			terminal, _ := e.sync(t, pod)
			return terminal
		},
		phase:    v1.PodFailed,
		terminal: true,
		init:     map[string]wantCS{"init1": completed, "init2": {state: "Terminated:Error:1"}},
		app:      map[string]wantCS{"c": pending},
		conds:    map[v1.PodConditionType]wantCond{v1.PodInitialized: notInit("init2")},
		noApp:    true,
	}, {
		name:   "RestartNever pod succeeded",
		policy: v1.RestartPolicyNever,
		drive: func(t *testing.T, e *env, pod *v1.Pod) bool {
			e.sync(t, pod)
			e.exit(e.containerID(t, pod.UID, "init1", 0), 0)
			e.sync(t, pod)
			e.exit(e.containerID(t, pod.UID, "init2", 0), 0)
			e.sync(t, pod)
			e.exit(e.containerID(t, pod.UID, "c", 0), 0)
			terminal, _ := e.sync(t, pod)
			return terminal
		},
		phase:    v1.PodSucceeded,
		terminal: true,
		init:     map[string]wantCS{"init1": completed, "init2": completed},
		app:      map[string]wantCS{"c": {state: "Terminated:Completed:0"}},
		conds: map[v1.PodConditionType]wantCond{
			v1.PodInitialized:  {v1.ConditionTrue, "PodCompleted", ""},
			v1.ContainersReady: {v1.ConditionFalse, "PodCompleted", ""},
			v1.PodReady:        {v1.ConditionFalse, "PodCompleted", ""},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			pod := initPod("init", tt.policy)
			if terminal := tt.drive(t, e, pod); terminal != tt.terminal {
				t.Errorf("terminal = %v, want %v", terminal, tt.terminal)
			}
			st := e.status.get(pod.UID)
			if st == nil {
				t.Fatal("no status written")
			}
			if st.Phase != tt.phase {
				t.Errorf("phase = %s, want %s", st.Phase, tt.phase)
			}
			if st.ObservedGeneration != pod.Generation {
				t.Errorf("observedGeneration = %d, want %d", st.ObservedGeneration, pod.Generation)
			}
			if len(st.InitContainerStatuses) != 2 || st.InitContainerStatuses[0].Name != "init1" || st.InitContainerStatuses[1].Name != "init2" {
				t.Errorf("init container statuses not in spec order: %+v", st.InitContainerStatuses)
			}
			checkStatuses(t, "init", st.InitContainerStatuses, tt.init)
			checkStatuses(t, "app", st.ContainerStatuses, tt.app)
			checkConditions(t, st, pod.Generation, tt.conds)
			if _, created := e.find(pod.UID, "c", 0); created == tt.noApp {
				t.Errorf("app container created: %v, want %v", created, !tt.noApp)
			}
		})
	}
}

// TestInitContainerStatusFromPriorStatus: what the runtime no longer has
// comes from the status the apiserver has, as for the kubelet.
func TestInitContainerStatusFromPriorStatus(t *testing.T) {
	e := newEnv(t)
	pod := initPod("prior", v1.RestartPolicyAlways)
	e.sync(t, pod)
	e.exit(e.containerID(t, pod.UID, "init1", 0), 0)
	e.sync(t, pod)
	e.exit(e.containerID(t, pod.UID, "init2", 0), 0)
	e.sync(t, pod)
	e.observe(t, pod)

	// The init containers are removed (garbage collection after an agent
	// restart, say): the pod initialized, so they count as completed.
	for _, name := range []string{"init1", "init2"} {
		if err := e.rt.RemoveContainer(context.Background(), e.containerID(t, pod.UID, name, 0)); err != nil {
			t.Fatal(err)
		}
	}
	e.sync(t, pod)
	st := e.status.get(pod.UID)
	checkStatuses(t, "init", st.InitContainerStatuses, map[string]wantCS{
		"init1": {state: "Terminated:Completed:0", ready: true},
		"init2": {state: "Terminated:Completed:0", ready: true},
	})
	if st.Phase != v1.PodRunning || !hasCondition(st, v1.PodInitialized, v1.ConditionTrue) {
		t.Errorf("phase %s, conditions %+v; want Running and initialized", st.Phase, st.Conditions)
	}
	if n := e.containerCount(); n != 1 {
		t.Errorf("%d containers, want the app container only: init containers do not run again", n)
	}
}

// TestObservedGeneration: the status and every condition the agent sets
// carry the generation of the pod spec synced; a condition whose status
// did not change keeps its transition time, even the scheduler's
// PodScheduled, which the agent owns from then on.
func TestObservedGeneration(t *testing.T) {
	e := newEnv(t)
	pod := testPod("gen", v1.RestartPolicyAlways)
	pod.Generation = 1
	scheduled := metav1.NewTime(e.clock.Now().Add(-time.Hour).Truncate(time.Second))
	pod.Status.Conditions = []v1.PodCondition{{Type: v1.PodScheduled, Status: v1.ConditionTrue, ObservedGeneration: 1, LastTransitionTime: scheduled}}
	e.sync(t, pod)
	e.observe(t, pod)
	for _, gen := range []int64{1, 2} {
		pod.Generation = gen
		e.clock.Step(time.Minute)
		e.sync(t, pod)
		st := e.status.get(pod.UID)
		if st.ObservedGeneration != gen {
			t.Errorf("generation %d: status.observedGeneration = %d", gen, st.ObservedGeneration)
		}
		want := []v1.PodConditionType{v1.PodReadyToStartContainers, v1.PodInitialized, v1.PodReady, v1.ContainersReady, v1.PodScheduled}
		if len(st.Conditions) != len(want) {
			t.Fatalf("generation %d: conditions %+v, want %v", gen, st.Conditions, want)
		}
		for i, c := range st.Conditions {
			if c.Type != want[i] || c.Status != v1.ConditionTrue || c.ObservedGeneration != gen {
				t.Errorf("generation %d: condition %d = %s %s generation %d, want %s True generation %d", gen, i, c.Type, c.Status, c.ObservedGeneration, want[i], gen)
			}
			if c.Type == v1.PodScheduled && !c.LastTransitionTime.Equal(&scheduled) {
				t.Errorf("generation %d: PodScheduled transition time %v, want the scheduler's %v", gen, c.LastTransitionTime, scheduled)
			}
		}
		e.observe(t, pod)
	}
	// A status computed from an older copy of the pod does not take the
	// observed generation back.
	pod.Generation = 1
	e.sync(t, pod)
	if got := e.status.get(pod.UID).ObservedGeneration; got != 2 {
		t.Errorf("observedGeneration from an older pod = %d, want 2", got)
	}
}

// TestReadinessGateMessage: the Ready condition names the gates that hold
// it back, in the kubelet's words.
func TestReadinessGateMessage(t *testing.T) {
	e := newEnv(t)
	pod := testPod("gates", v1.RestartPolicyAlways)
	pod.Spec.ReadinessGates = []v1.PodReadinessGate{{ConditionType: "example.com/lb"}, {ConditionType: "example.com/dns"}}
	pod.Status.Conditions = []v1.PodCondition{{Type: "example.com/dns", Status: v1.ConditionFalse}}
	e.sync(t, pod)
	st := e.status.get(pod.UID)
	checkConditions(t, st, 0, map[v1.PodConditionType]wantCond{
		v1.ContainersReady: {status: v1.ConditionTrue},
		v1.PodReady: {v1.ConditionFalse, "ReadinessGatesNotReady",
			`corresponding condition of pod readiness gate "example.com/lb" does not exist., the status of pod readiness gate "example.com/dns" is not "True", but False`},
	})
	if st.Conditions[0].Type != "example.com/dns" {
		t.Errorf("conditions %+v: the gate's condition not kept first", st.Conditions)
	}
}
