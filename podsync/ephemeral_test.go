package podsync

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/cri"
)

// addDebugger adds, as the ephemeralcontainers subresource does, the
// ephemeral container "dbg" targeting target ("" for none) to a copy of
// pod that carries the status the last sync wrote.
func (e *env) addDebugger(pod *v1.Pod, target string) *v1.Pod {
	p := pod.DeepCopy()
	if st := e.status.get(pod.UID); st != nil {
		p.Status = *st
	}
	p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, v1.EphemeralContainer{
		EphemeralContainerCommon: v1.EphemeralContainerCommon{
			Name: "dbg", Image: testImage, ImagePullPolicy: v1.PullIfNotPresent,
			Command: []string{"sh"}, Stdin: true, TTY: true,
			Env:                    []v1.EnvVar{{Name: "DEBUG", Value: "1"}},
			TerminationMessagePath: "/dev/termination-log",
		},
		TargetContainerName: target,
	})
	return p
}

// withStatus returns pod with the status the last sync wrote.
func (e *env) withStatus(pod *v1.Pod) *v1.Pod {
	p := pod.DeepCopy()
	p.Status = *e.status.get(pod.UID)
	return p
}

// configOf returns the last CRI config created for container name.
func (e *env) configOf(t *testing.T, name string) *runtimeapi.ContainerConfig {
	t.Helper()
	e.rt.mu.Lock()
	defer e.rt.mu.Unlock()
	for i := len(e.rt.containers) - 1; i >= 0; i-- {
		if e.rt.containers[i].Metadata.Name == name {
			return e.rt.containers[i]
		}
	}
	t.Fatalf("no container %q created", name)
	return nil
}

func ephemeralStatus(t *testing.T, st *v1.PodStatus, name string) v1.ContainerStatus {
	t.Helper()
	cs, ok := statusNamed(st.EphemeralContainerStatuses, name)
	if !ok {
		t.Fatalf("no ephemeral container status %q in %+v", name, st.EphemeralContainerStatuses)
	}
	return cs
}

func TestEphemeralContainerStartsOnceInTargetPIDNamespace(t *testing.T) {
	e := newEnv(t)
	pod := testPod("eph1", v1.RestartPolicyAlways)
	e.sync(t, pod)
	target := e.containerID(t, pod.UID, "c", 0)
	if st := e.status.get(pod.UID); st.EphemeralContainerStatuses != nil {
		t.Errorf("ephemeralContainerStatuses = %+v before any ephemeral container", st.EphemeralContainerStatuses)
	}

	pod = e.addDebugger(pod, "c")
	if err := unsupported(pod); err != nil {
		t.Fatalf("a pod with an ephemeral container is refused: %v", err)
	}
	e.sync(t, pod)
	dbg := e.containerID(t, pod.UID, "dbg", 0)
	cfg := e.configOf(t, "dbg")
	ns := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	if ns.GetPid() != runtimeapi.NamespaceMode_TARGET || ns.GetTargetId() != target {
		t.Errorf("PID namespace = %v target %q, want TARGET %q", ns.GetPid(), ns.GetTargetId(), target)
	}
	if ns.GetNetwork() != runtimeapi.NamespaceMode_POD || ns.GetIpc() != runtimeapi.NamespaceMode_POD {
		t.Errorf("network/IPC namespaces = %v/%v, want the pod's", ns.GetNetwork(), ns.GetIpc())
	}
	if want := cri.ContainerLabels(pod.Name, pod.Namespace, pod.UID, "dbg"); !reflect.DeepEqual(cfg.Labels, want) {
		t.Errorf("labels = %v, want %v", cfg.Labels, want)
	}
	if cfg.Annotations[cri.ContainerRestartCountAnnotation] != "0" || cfg.Annotations[cri.ContainerHashAnnotation] == "" {
		t.Errorf("annotations = %v, want restart count 0 and a hash", cfg.Annotations)
	}
	if !cfg.Stdin || !cfg.Tty || cfg.LogPath != "dbg/0.log" || !reflect.DeepEqual(cfg.Command, []string{"sh"}) {
		t.Errorf("config: stdin %v tty %v log %q command %v", cfg.Stdin, cfg.Tty, cfg.LogPath, cfg.Command)
	}
	if len(cfg.Envs) == 0 || cfg.Envs[0].Key != "DEBUG" {
		t.Errorf("env = %v, want DEBUG", cfg.Envs)
	}
	if evs := e.events(); !hasEvent(evs, "Started container dbg") {
		t.Errorf("events = %v, want dbg started", evs)
	}

	st := e.status.get(pod.UID)
	cs := ephemeralStatus(t, st, "dbg")
	if cs.State.Running == nil || cs.ContainerID != containerID(dbg) || cs.RestartCount != 0 || cs.Ready || cs.Started != nil || cs.Image != testImage {
		t.Errorf("ephemeral status = %+v, want running, not ready, no started field", cs)
	}
	if st.Phase != v1.PodRunning || condition(st, v1.PodReady) != v1.ConditionTrue || len(st.ContainerStatuses) != 1 {
		t.Errorf("pod: phase %s, Ready %s, %d container statuses", st.Phase, condition(st, v1.PodReady), len(st.ContainerStatuses))
	}

	// Synced again: nothing new.
	pod = e.withStatus(pod)
	e.sync(t, pod)
	if n := e.containerCount(); n != 2 {
		t.Errorf("%d containers after a second sync, want 2", n)
	}

	// It exits: it stays exited, whatever the restartPolicy and however
	// long one waits.
	e.exit(dbg, 3)
	for i := 0; i < 3; i++ {
		pod = e.withStatus(pod)
		if _, requeue := e.sync(t, pod); requeue != 0 {
			t.Errorf("requeue = %v after the ephemeral container exited, want none", requeue)
		}
		e.clock.Step(10 * time.Minute)
	}
	if n := e.containerCount(); n != 2 {
		t.Errorf("%d containers, want 2: an ephemeral container is never restarted", n)
	}
	st = e.status.get(pod.UID)
	cs = ephemeralStatus(t, st, "dbg")
	if term := cs.State.Terminated; term == nil || term.ExitCode != 3 || term.Reason != "Error" || cs.RestartCount != 0 || cs.ContainerID != containerID(dbg) {
		t.Errorf("ephemeral status after exit = %+v, want terminated with 3", cs)
	}
	if st.Phase != v1.PodRunning || condition(st, v1.PodReady) != v1.ConditionTrue {
		t.Errorf("an exited ephemeral container changed the pod: phase %s, Ready %s", st.Phase, condition(st, v1.PodReady))
	}
}

func TestEphemeralContainerNamespaces(t *testing.T) {
	yes := true
	cases := []struct {
		name    string
		target  string
		mutate  func(*v1.Pod)
		wantPid runtimeapi.NamespaceMode
		target2 bool
	}{
		{name: "no target: its own", wantPid: runtimeapi.NamespaceMode_CONTAINER},
		{name: "target", target: "c", wantPid: runtimeapi.NamespaceMode_TARGET, target2: true},
		{name: "shareProcessNamespace wins", target: "c", mutate: func(p *v1.Pod) { p.Spec.ShareProcessNamespace = &yes }, wantPid: runtimeapi.NamespaceMode_POD},
		{name: "hostPID wins", target: "c", mutate: func(p *v1.Pod) { p.Spec.HostPID = true }, wantPid: runtimeapi.NamespaceMode_NODE},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			pod := testPod("eph2", v1.RestartPolicyAlways)
			if tc.mutate != nil {
				tc.mutate(pod)
			}
			e.sync(t, pod)
			pod = e.addDebugger(pod, tc.target)
			e.sync(t, pod)
			ns := e.configOf(t, "dbg").GetLinux().GetSecurityContext().GetNamespaceOptions()
			if ns.GetPid() != tc.wantPid {
				t.Errorf("PID namespace = %v, want %v", ns.GetPid(), tc.wantPid)
			}
			if want := map[bool]string{true: e.containerID(t, pod.UID, "c", 0)}[tc.target2]; ns.GetTargetId() != want {
				t.Errorf("target id = %q, want %q", ns.GetTargetId(), want)
			}
		})
	}
}

// An ephemeral container starts while the init containers still run; one
// whose target does not exist yet waits with the kubelet's config error
// and starts once the target does.
func TestEphemeralContainerDuringInit(t *testing.T) {
	e := newEnv(t)
	pod := testPod("eph3", v1.RestartPolicyAlways)
	pod.Spec.InitContainers = []v1.Container{{Name: "init", Image: testImage, ImagePullPolicy: v1.PullIfNotPresent}}
	e.sync(t, pod)
	initID := e.containerID(t, pod.UID, "init", 0)

	pod = e.addDebugger(pod, "")
	e.sync(t, pod)
	e.containerID(t, pod.UID, "dbg", 0)
	if _, ok := e.find(pod.UID, "c", 0); ok {
		t.Fatal("app container started during init")
	}
	if cs := ephemeralStatus(t, e.status.get(pod.UID), "dbg"); cs.State.Running == nil {
		t.Errorf("ephemeral status during init = %+v, want running", cs)
	}

	// A second one targets the app container, not created yet.
	pod = e.withStatus(pod)
	pod.Spec.EphemeralContainers = append(pod.Spec.EphemeralContainers, v1.EphemeralContainer{
		EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "dbg2", Image: testImage, ImagePullPolicy: v1.PullIfNotPresent},
		TargetContainerName:      "c",
	})
	if _, requeue := e.sync(t, pod); requeue != ephemeralRetry {
		t.Errorf("requeue = %v with a missing target, want %v", requeue, ephemeralRetry)
	}
	cs := ephemeralStatus(t, e.status.get(pod.UID), "dbg2")
	if w := cs.State.Waiting; w == nil || w.Reason != "CreateContainerConfigError" || w.Message != "unable to find target container c" {
		t.Errorf("dbg2 status = %+v, want CreateContainerConfigError naming the target", cs.State)
	}
	if cs := ephemeralStatus(t, e.status.get(pod.UID), "dbg"); cs.State.Running == nil {
		t.Errorf("dbg status = %+v, want still running", cs)
	}

	e.exit(initID, 0)
	pod = e.withStatus(pod)
	e.sync(t, pod) // starts c; dbg2, tried first, still misses it
	app := e.containerID(t, pod.UID, "c", 0)
	pod = e.withStatus(pod)
	e.sync(t, pod)
	e.containerID(t, pod.UID, "dbg2", 0)
	if ns := e.configOf(t, "dbg2").GetLinux().GetSecurityContext().GetNamespaceOptions(); ns.GetTargetId() != app {
		t.Errorf("dbg2 target = %q, want %q", ns.GetTargetId(), app)
	}
	st := e.status.get(pod.UID)
	if got := []string{st.EphemeralContainerStatuses[0].Name, st.EphemeralContainerStatuses[1].Name}; got[0] != "dbg" || got[1] != "dbg2" {
		t.Errorf("ephemeral statuses = %v, want sorted by name", got)
	}
	if cs := ephemeralStatus(t, st, "dbg2"); cs.State.Running == nil {
		t.Errorf("dbg2 status = %+v, want running", cs)
	}
}

// Terminating the pod stops its ephemeral containers with the others.
func TestEphemeralContainerStoppedWithPod(t *testing.T) {
	e := newEnv(t)
	pod := testPod("eph4", v1.RestartPolicyAlways)
	e.sync(t, pod)
	pod = e.addDebugger(pod, "c")
	e.sync(t, pod)
	dbg := e.containerID(t, pod.UID, "dbg", 0)
	if err := e.s.SyncTerminatingPod(context.Background(), pod, 30, nil); err != nil {
		t.Fatal(err)
	}
	stopped := strings.Join(e.rt.stoppedIDs(), ",")
	if !strings.Contains(stopped, dbg) {
		t.Errorf("stopped %s, want the ephemeral container %s among them", stopped, dbg)
	}
}

// The ephemeral container's fields are the Container's, decided in
// fields_test.go: a field added to one only fails here.
func TestEphemeralContainerCommonIsContainer(t *testing.T) {
	names := func(typ reflect.Type) []string {
		var out []string
		for i := 0; i < typ.NumField(); i++ {
			out = append(out, typ.Field(i).Name)
		}
		return out
	}
	c, ec := names(reflect.TypeOf(v1.Container{})), names(reflect.TypeOf(v1.EphemeralContainerCommon{}))
	if !reflect.DeepEqual(c, ec) {
		t.Errorf("EphemeralContainerCommon fields %v differ from Container's %v", ec, c)
	}
}
