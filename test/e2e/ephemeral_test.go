//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ephemeralState returns the status of ephemeral container name, if any.
func ephemeralState(p *v1.Pod, name string) (v1.ContainerStatus, bool) {
	for _, cs := range p.Status.EphemeralContainerStatuses {
		if cs.Name == name {
			return cs, true
		}
	}
	return v1.ContainerStatus{}, false
}

func ephemeralRunning(name string) func(*v1.Pod) bool {
	return func(p *v1.Pod) bool {
		cs, ok := ephemeralState(p, name)
		return ok && cs.State.Running != nil
	}
}

// An ephemeral container added through the ephemeralcontainers
// subresource runs in the target's process namespace; its logs and exec
// work, and a second one can be added (the Conformance specs "will start
// an ephemeral container in an existing pod" and "should update the
// ephemeral containers in an existing pod").
func TestEphemeralContainer(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	ctx := context.Background()
	createPod(t, c, ns, busyboxPod("target", "sleep 3600", v1.RestartPolicyAlways))
	pod := waitPod(t, c, ns, "target", 60*time.Second, "running", running)

	pod.Spec.EphemeralContainers = append(pod.Spec.EphemeralContainers, v1.EphemeralContainer{
		EphemeralContainerCommon: v1.EphemeralContainerCommon{
			Name: "debugger", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent,
			Command: []string{"sh", "-c", "echo hello-ephemeral; sleep 3600"},
			Stdin:   true, TTY: true,
		},
		TargetContainerName: "main",
	})
	if _, err := c.CoreV1().Pods(ns).UpdateEphemeralContainers(ctx, "target", pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod = waitPod(t, c, ns, "target", 60*time.Second, "ephemeral container running", ephemeralRunning("debugger"))
	cs, _ := ephemeralState(pod, "debugger")
	if cs.RestartCount != 0 || cs.Ready || !strings.HasPrefix(cs.ContainerID, "containerd://") {
		t.Errorf("ephemeral status = %+v", cs)
	}
	if pod.Generation != 2 {
		t.Errorf("generation = %d, want 2", pod.Generation)
	}
	waitPod(t, c, ns, "target", 30*time.Second, "observedGeneration 2", func(p *v1.Pod) bool { return p.Status.ObservedGeneration == 2 })
	if !running(pod) {
		t.Errorf("the pod's own container changed: %s", describe(pod))
	}

	waitFor(t, 30*time.Second, "ephemeral container logs", func() (bool, error) {
		return strings.Contains(kubectl(t, "-n", ns, "logs", "target", "-c", "debugger"), "hello-ephemeral"), nil
	})
	if out := kubectl(t, "-n", ns, "exec", "target", "-c", "debugger", "--", "echo", "marco"); !strings.Contains(out, "marco") {
		t.Errorf("exec in the ephemeral container: %q", out)
	}
	// In the target's PID namespace, PID 1 is the target's sleep (in its
	// own, PID 1 would be the debugger's shell).
	out := kubectl(t, "-n", ns, "exec", "target", "-c", "debugger", "--", "ps")
	found := false
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "1" && strings.Contains(line, "sleep 3600") && !strings.Contains(line, "hello-ephemeral") {
			found = true
		}
	}
	if !found {
		t.Errorf("ps in the ephemeral container does not show the target's process as PID 1:\n%s", out)
	}

	// A second ephemeral container, without a target: its own PID
	// namespace.
	pod, err := c.CoreV1().Pods(ns).Get(ctx, "target", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Spec.EphemeralContainers = append(pod.Spec.EphemeralContainers, v1.EphemeralContainer{
		EphemeralContainerCommon: v1.EphemeralContainerCommon{
			Name: "debugger2", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent,
			Command: []string{"sleep", "3600"}, TerminationMessagePolicy: v1.TerminationMessageReadFile,
		},
	})
	if _, err := c.CoreV1().Pods(ns).UpdateEphemeralContainers(ctx, "target", pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod = waitPod(t, c, ns, "target", 60*time.Second, "second ephemeral container running", ephemeralRunning("debugger2"))
	if n := len(pod.Status.EphemeralContainerStatuses); n != 2 {
		t.Errorf("%d ephemeral container statuses, want 2", n)
	}
	if out := kubectl(t, "-n", ns, "exec", "target", "-c", "debugger2", "--", "ps"); strings.Contains(out, "hello-ephemeral") {
		t.Errorf("ps in an ephemeral container without target shows other containers' processes:\n%s", out)
	}
}

// kubectl debug adds an ephemeral container; one that exits stays exited.
func TestEphemeralKubectlDebug(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	createPod(t, c, ns, busyboxPod("x", "sleep 3600", v1.RestartPolicyAlways))
	waitPod(t, c, ns, "x", 60*time.Second, "running", running)

	kubectl(t, "-n", ns, "debug", "pod/x", "--image="+busybox, "--image-pull-policy=IfNotPresent",
		"--target=main", "--container=dbg", "--", "sh", "-c", "echo from-debug")
	exited := func(p *v1.Pod) bool {
		cs, ok := ephemeralState(p, "dbg")
		return ok && cs.State.Terminated != nil
	}
	pod := waitPod(t, c, ns, "x", 60*time.Second, "debug container exited", exited)
	cs, _ := ephemeralState(pod, "dbg")
	if term := cs.State.Terminated; term.ExitCode != 0 || term.Reason != "Completed" {
		t.Errorf("debug container terminated = %+v", term)
	}
	if out := kubectl(t, "-n", ns, "logs", "x", "-c", "dbg"); !strings.Contains(out, "from-debug") {
		t.Errorf("logs of the debug container: %q", out)
	}

	// Never restarted.
	time.Sleep(5 * time.Second)
	pod, err := c.CoreV1().Pods(ns).Get(context.Background(), "x", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cs, _ := ephemeralState(pod, "dbg"); cs.State.Terminated == nil || cs.RestartCount != 0 {
		t.Errorf("debug container after it exited: %+v", cs)
	}
	if !running(pod) {
		t.Errorf("the pod stopped running: %s", describe(pod))
	}

	// kubectl debug -i: attached to the new container's stdin, in the
	// target's process namespace.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := kubectlCmd(ctx, "-n", ns, "debug", "-i", "pod/x", "--image="+busybox, "--image-pull-policy=IfNotPresent",
		"--target=main", "--container=dbg-i", "--", "sh")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := startKubectl(t, cmd)
	if _, err := io.WriteString(stdin, "echo debug-$((6*7)); ps -o pid,args | grep -c 'sleep 3600$'\n"); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) >= 2 && lines[len(lines)-2] == "debug-42" {
			break
		}
	}
	if n := len(lines); n < 2 || lines[n-2] != "debug-42" || lines[n-1] != "1" {
		t.Fatalf("kubectl debug -i: got %q (%v), want debug-42 and the target's sleep", lines, sc.Err())
	}
	_ = stdin.Close()
}
