//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// initStatusPod is the pod of the InitContainer conformance specs: the
// init containers init1 and init2, then run1, each running sh -c with its
// command.
func initStatusPod(name string, policy v1.RestartPolicy, init1, init2, run1 string) *v1.Pod {
	p := busyboxPod(name, run1, policy)
	p.Spec.Containers[0].Name = "run1"
	p.Spec.InitContainers = []v1.Container{
		{Name: "init1", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent, Command: []string{"sh", "-c", init1}},
		{Name: "init2", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent, Command: []string{"sh", "-c", init2}},
	}
	return p
}

func podCondition(p *v1.Pod, t v1.PodConditionType) *v1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// initInvariants checks what the InitContainer conformance specs hold
// true of every status the pod goes through: until the init containers
// all succeeded, the app containers wait with reason PodInitializing and
// were never restarted; an init container that succeeded is ready; the
// Initialized condition, with a transition time, is True exactly when all
// init containers succeeded (or an app container ran), and never goes
// back to False. wasInit carries the last Initialized status seen.
func initInvariants(p *v1.Pod, wasInit *bool) error {
	allInit := len(p.Status.InitContainerStatuses) == len(p.Spec.InitContainers)
	for _, s := range p.Status.InitContainerStatuses {
		if t := s.State.Terminated; t == nil || t.ExitCode != 0 {
			allInit = false
			continue
		}
		if !s.Ready {
			return fmt.Errorf("init container %s succeeded but is not ready", s.Name)
		}
		if s.State.Terminated.Reason != "Completed" {
			return fmt.Errorf("init container %s succeeded with reason %q, want Completed", s.Name, s.State.Terminated.Reason)
		}
	}
	appRan := false
	for _, s := range p.Status.ContainerStatuses {
		appRan = appRan || s.State.Running != nil || s.State.Terminated != nil
	}
	if !allInit {
		for _, s := range p.Status.ContainerStatuses {
			if s.State.Waiting == nil || s.State.Waiting.Reason != "PodInitializing" || s.RestartCount != 0 {
				return fmt.Errorf("container %s: state %+v, restarts %d before the init containers succeeded; want waiting with reason PodInitializing", s.Name, s.State, s.RestartCount)
			}
		}
	}
	if len(p.Status.Conditions) == 0 {
		return nil // not synced yet
	}
	c := podCondition(p, v1.PodInitialized)
	switch {
	case c == nil:
		return fmt.Errorf("no Initialized condition")
	case c.LastTransitionTime.IsZero():
		return fmt.Errorf("the Initialized condition has no transition time")
	case c.Status == v1.ConditionUnknown:
		return fmt.Errorf("the Initialized condition is Unknown")
	case c.Status == v1.ConditionTrue && !allInit && !appRan:
		return fmt.Errorf("Initialized is True but not all init containers succeeded")
	case c.Status == v1.ConditionFalse && allInit:
		return fmt.Errorf("Initialized is False but all init containers succeeded")
	case c.Status == v1.ConditionFalse && *wasInit:
		return fmt.Errorf("Initialized went back from True to False")
	}
	*wasInit = c.Status == v1.ConditionTrue
	return nil
}

// watchInit waits as waitPod, checking initInvariants on every status.
func watchInit(t *testing.T, c kubernetes.Interface, ns, name string, timeout time.Duration, what string, wasInit *bool, cond func(*v1.Pod) bool) *v1.Pod {
	t.Helper()
	var broken error
	p := waitPod(t, c, ns, name, timeout, what, func(p *v1.Pod) bool {
		if err := initInvariants(p, wasInit); err != nil && broken == nil {
			broken = fmt.Errorf("%w; status: %s", err, describe(p))
		}
		return broken != nil || cond(p)
	})
	if broken != nil {
		t.Fatal(broken)
	}
	return p
}

// checkInitDone checks the init containers of a pod that initialized:
// ready, terminated with exit code 0, reason Completed.
func checkInitDone(t *testing.T, p *v1.Pod) {
	t.Helper()
	if c := podCondition(p, v1.PodInitialized); c == nil || c.Status != v1.ConditionTrue {
		t.Errorf("Initialized condition %+v, want True", c)
	}
	if len(p.Status.InitContainerStatuses) != 2 {
		t.Fatalf("%d init container statuses, want 2", len(p.Status.InitContainerStatuses))
	}
	for i, s := range p.Status.InitContainerStatuses {
		if want := fmt.Sprintf("init%d", i+1); s.Name != want {
			t.Errorf("init container status %d is %s's, want %s's", i, s.Name, want)
		}
		if !s.Ready {
			t.Errorf("init container %s not ready", s.Name)
		}
		if term := s.State.Terminated; term == nil || term.ExitCode != 0 || term.Reason != "Completed" {
			t.Errorf("init container %s: state %+v, want terminated with exit code 0, reason Completed", s.Name, s.State)
		}
		if s.Started == nil || *s.Started {
			t.Errorf("init container %s: started %v, want false once it exited", s.Name, s.Started)
		}
	}
}

// TestInitContainersRestartNever mirrors the conformance spec "should
// invoke init containers on a RestartNever pod".
func TestInitContainersRestartNever(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	createPod(t, c, ns, initStatusPod("init-never", v1.RestartPolicyNever, "true", "true", "true"))
	wasInit := false
	p := watchInit(t, c, ns, "init-never", 2*time.Minute, "completed", &wasInit, func(p *v1.Pod) bool {
		return p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed
	})
	if p.Status.Phase != v1.PodSucceeded {
		t.Errorf("phase %s, want Succeeded: %s", p.Status.Phase, describe(p))
	}
	checkInitDone(t, p)
	if c := podCondition(p, v1.PodInitialized); c != nil && c.Reason != "PodCompleted" {
		t.Errorf("Initialized reason %q, want PodCompleted (the kubelet's for a succeeded pod)", c.Reason)
	}
	if c := podCondition(p, v1.PodReady); c == nil || c.Status != v1.ConditionFalse || c.Reason != "PodCompleted" {
		t.Errorf("Ready condition %+v, want False with reason PodCompleted", c)
	}
}

// TestInitContainersRestartAlways mirrors the conformance spec "should
// invoke init containers on a RestartAlways pod".
func TestInitContainersRestartAlways(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	createPod(t, c, ns, initStatusPod("init-always", v1.RestartPolicyAlways, "true", "true", "sleep 3600"))
	wasInit := false
	p := watchInit(t, c, ns, "init-always", 2*time.Minute, "running", &wasInit, func(p *v1.Pod) bool {
		return p.Status.Phase == v1.PodRunning
	})
	checkInitDone(t, p)
	if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Running == nil {
		t.Errorf("app container statuses %+v, want run1 running", p.Status.ContainerStatuses)
	}
}

// TestInitContainerFailsRestartAlways mirrors the conformance spec
// "should not start app containers if init containers fail on a
// RestartAlways pod": init1 fails again and again (with the crash-loop
// back-off: 10s, 20s, 40s), init2 and run1 wait with reason
// PodInitializing, the pod stays Pending and not initialized.
func TestInitContainerFailsRestartAlways(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	createPod(t, c, ns, initStatusPod("init-fail-always", v1.RestartPolicyAlways, "false", "true", "sleep 3600"))
	wasInit := false
	check := func(p *v1.Pod) error {
		for _, s := range p.Status.ContainerStatuses {
			if s.State.Waiting == nil || s.State.Waiting.Reason != "PodInitializing" {
				return fmt.Errorf("container %s: state %+v, want waiting with reason PodInitializing", s.Name, s.State)
			}
		}
		if len(p.Status.InitContainerStatuses) != 2 {
			return nil
		}
		if s := p.Status.InitContainerStatuses[1]; s.State.Waiting == nil || s.State.Waiting.Reason != "PodInitializing" {
			return fmt.Errorf("init2: state %+v, want waiting with reason PodInitializing", s.State)
		}
		if s := p.Status.InitContainerStatuses[0]; s.State.Terminated != nil && s.State.Terminated.ExitCode == 0 {
			return fmt.Errorf("init1 succeeded: %+v", s.State)
		}
		return nil
	}
	var broken error
	until := func(done func(*v1.Pod) bool) func(*v1.Pod) bool {
		return func(p *v1.Pod) bool {
			if err := check(p); err != nil && broken == nil {
				broken = fmt.Errorf("%w; status: %s", err, describe(p))
			}
			return broken != nil || done(p)
		}
	}
	watchInit(t, c, ns, "init-fail-always", 2*time.Minute, "init1 restarted once", &wasInit, until(func(p *v1.Pod) bool {
		return len(p.Status.InitContainerStatuses) == 2 && p.Status.InitContainerStatuses[0].LastTerminationState.Terminated != nil
	}))
	if broken != nil {
		t.Fatal(broken)
	}
	p := watchInit(t, c, ns, "init-fail-always", 3*time.Minute, "init1 restarted 3 times", &wasInit, until(func(p *v1.Pod) bool {
		return p.Status.InitContainerStatuses[0].RestartCount >= 3
	}))
	if broken != nil {
		t.Fatal(broken)
	}
	if p.Status.Phase != v1.PodPending {
		t.Errorf("phase %s, want Pending", p.Status.Phase)
	}
	want := map[v1.PodConditionType][3]string{
		v1.PodInitialized:  {"False", "ContainersNotInitialized", "containers with incomplete status: [init1 init2]"},
		v1.ContainersReady: {"False", "ContainersNotReady", "containers with unready status: [run1]"},
		v1.PodReady:        {"False", "ContainersNotReady", "containers with unready status: [run1]"},
	}
	for typ, w := range want {
		if c := podCondition(p, typ); c == nil || string(c.Status) != w[0] || c.Reason != w[1] || c.Message != w[2] {
			t.Errorf("%s condition %+v, want %s %q %q", typ, c, w[0], w[1], w[2])
		}
	}
	init1 := p.Status.InitContainerStatuses[0]
	if lt := init1.LastTerminationState.Terminated; lt == nil || lt.ExitCode != 1 || lt.Reason != "Error" {
		t.Errorf("init1 last termination %+v, want exit code 1, reason Error", lt)
	}
	if init1.Ready {
		t.Error("init1 ready while it fails")
	}
	if run1 := p.Status.ContainerStatuses[0]; run1.RestartCount != 0 || run1.ContainerID != "" {
		t.Errorf("run1 %+v: it was created", run1)
	}
}

// TestInitContainerFailsRestartNever mirrors the conformance spec "should
// not start app containers and fail the pod if init containers fail on a
// RestartNever pod".
func TestInitContainerFailsRestartNever(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	createPod(t, c, ns, initStatusPod("init-fail-never", v1.RestartPolicyNever, "true", "false", "true"))
	wasInit := false
	p := watchInit(t, c, ns, "init-fail-never", 2*time.Minute, "completed", &wasInit, func(p *v1.Pod) bool {
		return p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed
	})
	if p.Status.Phase != v1.PodFailed {
		t.Errorf("phase %s, want Failed: %s", p.Status.Phase, describe(p))
	}
	if c := podCondition(p, v1.PodInitialized); c == nil || c.Status != v1.ConditionFalse || c.Reason != "ContainersNotInitialized" || c.Message != "containers with incomplete status: [init2]" {
		t.Errorf("Initialized condition %+v, want False, ContainersNotInitialized, containers with incomplete status: [init2]", c)
	}
	if len(p.Status.InitContainerStatuses) != 2 {
		t.Fatalf("%d init container statuses, want 2", len(p.Status.InitContainerStatuses))
	}
	if s := p.Status.InitContainerStatuses[1]; s.State.Terminated == nil || s.State.Terminated.ExitCode != 1 || s.Ready {
		t.Errorf("init2 %+v, want terminated with exit code 1, not ready", s)
	}
	if s := p.Status.ContainerStatuses[0]; s.State.Waiting == nil || s.State.Waiting.Reason != "PodInitializing" {
		t.Errorf("run1 state %+v, want waiting with reason PodInitializing", s.State)
	}
	for _, typ := range []v1.PodConditionType{v1.ContainersReady, v1.PodReady} {
		if c := podCondition(p, typ); c == nil || c.Status != v1.ConditionFalse || c.Reason != "PodFailed" {
			t.Errorf("%s condition %+v, want False with reason PodFailed", typ, c)
		}
	}
}

// TestPodObservedGeneration: status.observedGeneration and the
// observedGeneration of every condition the node sets follow
// metadata.generation, which a spec update bumps (the conformance spec
// "pod generation should start at 1 and increment per update" gives the
// node 20 seconds).
func TestPodObservedGeneration(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	createPod(t, c, ns, busyboxPod("gen", "sleep 3600", v1.RestartPolicyAlways))
	conds := []v1.PodConditionType{v1.PodReadyToStartContainers, v1.PodInitialized, v1.PodReady, v1.ContainersReady, v1.PodScheduled}
	observed := func(gen int64) func(*v1.Pod) bool {
		return func(p *v1.Pod) bool {
			if p.Status.ObservedGeneration != gen {
				return false
			}
			for _, typ := range conds {
				if c := podCondition(p, typ); c == nil || c.ObservedGeneration != gen {
					return false
				}
			}
			return true
		}
	}
	p := waitPod(t, c, ns, "gen", 60*time.Second, "running, generation 1 observed", func(p *v1.Pod) bool {
		return running(p) && observed(1)(p)
	})
	if p.Generation != 1 {
		t.Fatalf("new pod has generation %d, want 1", p.Generation)
	}

	// A label is metadata: no new generation.
	update := func(mutate func(*v1.Pod)) *v1.Pod {
		var out *v1.Pod
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := c.CoreV1().Pods(ns).Get(context.Background(), "gen", metav1.GetOptions{})
			if err != nil {
				return err
			}
			mutate(cur)
			out, err = c.CoreV1().Pods(ns).Update(context.Background(), cur, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if p = update(func(p *v1.Pod) { p.Labels = map[string]string{"touched": "yes"} }); p.Generation != 1 {
		t.Errorf("a label update bumped the generation to %d", p.Generation)
	}

	deadline := int64(3600)
	p = update(func(p *v1.Pod) { p.Spec.ActiveDeadlineSeconds = &deadline })
	if p.Generation != 2 {
		t.Fatalf("generation %d after a spec update, want 2", p.Generation)
	}
	p = waitPod(t, c, ns, "gen", 20*time.Second, "generation 2 observed", observed(2))
	if !running(p) || !podReady(p) {
		t.Errorf("pod after the update: %s, want running and ready", describe(p))
	}
}
