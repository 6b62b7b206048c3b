//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// TestLogsInCrashLoop: while a container waits in CrashLoopBackOff (no
// current instance), kubectl logs --previous shows the instance that
// ended (status.lastState.terminated), and kubectl logs without
// --previous shows it too, as the kubelet serves them
// (validateContainerLogStatus).
func TestLogsInCrashLoop(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	createPod(t, c, ns, busyboxPod("crashy", `echo "attempt of crashy"; exit 3`, v1.RestartPolicyAlways))
	waitPod(t, c, ns, "crashy", 120*time.Second, "CrashLoopBackOff after an ended instance", func(p *v1.Pod) bool {
		if len(p.Status.ContainerStatuses) != 1 {
			return false
		}
		cs := p.Status.ContainerStatuses[0]
		last := cs.LastTerminationState.Terminated
		return cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff" && last != nil && last.ContainerID != ""
	})
	for _, args := range [][]string{{"--previous"}, nil} {
		out := kubectl(t, append([]string{"-n", ns, "logs", "crashy"}, args...)...)
		if !strings.Contains(out, "attempt of crashy") {
			t.Errorf("kubectl logs crashy %v: %q", args, out)
		}
	}
}

// TestLogsWaitingForImage: logs of a container whose image cannot be
// pulled fail with the kubelet's message, which kubectl shows through the
// apiserver.
func TestLogsWaitingForImage(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	pod := busyboxPod("nopull", "true", v1.RestartPolicyNever)
	// Nothing listens there: the pull fails at once.
	pod.Spec.Containers[0].Image = "127.0.0.1:1/nodeagent/absent:1"
	createPod(t, c, ns, pod)
	waitPod(t, c, ns, "nopull", 120*time.Second, "ErrImagePull or ImagePullBackOff", func(p *v1.Pod) bool {
		if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Waiting == nil {
			return false
		}
		r := p.Status.ContainerStatuses[0].State.Waiting.Reason
		return r == "ErrImagePull" || r == "ImagePullBackOff"
	})
	out := kubectlOut(t, "-n", ns, "logs", "nopull")
	want := []string{
		`container "main" in pod "nopull" is waiting to start: image can't be pulled`,
		`container "main" in pod "nopull" is waiting to start: trying and failing to pull image`,
	}
	if !strings.Contains(out, want[0]) && !strings.Contains(out, want[1]) {
		t.Fatalf("kubectl logs nopull: %q, want one of %q", out, want)
	}
	if out := kubectlOut(t, "-n", ns, "logs", "nopull", "--previous"); !strings.Contains(out, `previous terminated container "main" in pod "nopull" not found`) {
		t.Fatalf("kubectl logs nopull --previous: %q", out)
	}
}
