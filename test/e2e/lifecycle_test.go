//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Killing the agent (SIGKILL) with 10 pods running and starting it again
// restarts no container and sends no status backwards.
func TestAgentRestartAdoptsPods(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		createPod(t, c, ns, busyboxPod(fmt.Sprintf("p%d", i), "sleep 3600", v1.RestartPolicyAlways))
	}
	before := map[string]string{}
	for i := 0; i < 10; i++ {
		p := waitPod(t, c, ns, fmt.Sprintf("p%d", i), 90*time.Second, "running", running)
		before[p.Name] = p.Status.ContainerStatuses[0].ContainerID
	}
	harness(t, "agent-kill")
	// A pod deleted while the agent is down is cleaned up when it is back.
	if err := c.CoreV1().Pods(ns).Delete(ctx, "p9", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	harness(t, "agent-start")
	waitGone(t, c, ns, "p9", 60*time.Second)
	// Give the agent time to sync every pod, then compare.
	time.Sleep(3 * time.Second)
	for i := 0; i < 9; i++ {
		p, err := c.CoreV1().Pods(ns).Get(ctx, fmt.Sprintf("p%d", i), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cs := p.Status.ContainerStatuses[0]
		if cs.ContainerID != before[p.Name] || cs.RestartCount != 0 || !running(p) {
			t.Errorf("%s changed across agent restart: before %s, now %s", p.Name, before[p.Name], describe(p))
		}
	}
}

// An invalid config file stops the agent with exit code 1 and a message
// naming the field.
func TestInvalidConfig(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]struct{ body, want string }{
		"bad port":   {"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nport: 70000\n", "port"},
		"wrong type": {"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: lots\n", "maxPods"},
		"wrong kind": {"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: Pod\n", "kind"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
			if err := os.WriteFile(f, []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(filepath.Join(cache, "bin/nodeagent"), "--config", f, "--kubeconfig", "/nonexistent")
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("exit: %v, want code 1; output: %s", err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("message does not name %q: %s", tc.want, out)
			}
		})
	}
}

// The node goes NotReady when the runtime stops and Ready when it is back.
func TestNodeNotReadyWithoutRuntime(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	harness(t, "containerd-stop")
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			harness(t, "containerd-start")
		}
	})
	waitFor(t, 60*time.Second, "node NotReady", func() (bool, error) {
		n, err := c.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ok, msg := nodeReady(n)
		return !ok && strings.Contains(msg, "runtime"), nil
	})
	harness(t, "containerd-start")
	restarted = true
	waitFor(t, 60*time.Second, "node Ready", func() (bool, error) {
		n, err := c.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ok, _ := nodeReady(n)
		return ok, nil
	})
}

// A container whose status the runtime lost across its restart is one
// containerd reports in state Unknown, as it does for a container whose
// CreateContainer it was killed in (TestSoakContainerdKill once left such
// a pod Pending for good): the agent kills it and starts the next
// instance, as the kubelet does, and the pod runs again.
func TestContainerUnknownAfterRuntimeRestart(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	ctx := context.Background()
	createPod(t, c, ns, busyboxPod("lost", "sleep 3600", v1.RestartPolicyAlways))
	before := waitPod(t, c, ns, "lost", 60*time.Second, "running", running)
	id := strings.TrimPrefix(before.Status.ContainerStatuses[0].ContainerID, "containerd://")
	// The agent waits meanwhile, so that the test sees the state before
	// the agent acts on it.
	harness(t, "agent-stop")
	agentUp := false
	t.Cleanup(func() {
		if !agentUp {
			harness(t, "agent-start")
		}
	})
	harness(t, "containerd-kill")
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			harness(t, "containerd-start")
		}
	})
	if err := os.Remove(filepath.Join(state, "containerd/root/io.containerd.grpc.v1.cri/containers", id, "status")); err != nil {
		t.Fatal(err)
	}
	harness(t, "containerd-start")
	restarted = true
	var rt internalapi.RuntimeService
	var st *runtimeapi.ContainerStatusResponse
	waitFor(t, 60*time.Second, "the runtime back", func() (bool, error) {
		var err error
		if rt == nil {
			if rt, err = dialCRI(); err != nil {
				rt = nil
				return false, err
			}
		}
		st, err = rt.ContainerStatus(ctx, id, false)
		return err == nil, err
	})
	t.Cleanup(func() {
		if err := rt.Close(context.Background()); err != nil {
			t.Logf("close the CRI client: %v", err)
		}
	})
	if got := st.GetStatus().GetState(); got != runtimeapi.ContainerState_CONTAINER_UNKNOWN {
		t.Fatalf("the runtime reports the container %v without its status file, want CONTAINER_UNKNOWN", got)
	}
	harness(t, "agent-start")
	agentUp = true
	after := waitPod(t, c, ns, "lost", 90*time.Second, "running another instance", func(p *v1.Pod) bool {
		return running(p) && p.Status.ContainerStatuses[0].ContainerID != before.Status.ContainerStatuses[0].ContainerID
	})
	if n := after.Status.ContainerStatuses[0].RestartCount; n != 1 {
		t.Errorf("restart count %d, want 1 (the kubelet counts the killed instance)", n)
	}
	if st, err := rt.ContainerStatus(ctx, id, false); err == nil && st.GetStatus().GetState() != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("the Unknown instance is %v, want stopped", st.GetStatus().GetState())
	}
}

// A deleted Node object is registered again (the kubelet waits for a
// restart), and running pods keep running.
func TestNodeReRegistersAfterDelete(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	ns := namespace(t, c)
	createPod(t, c, ns, busyboxPod("survivor", "sleep 3600", v1.RestartPolicyAlways))
	before := waitPod(t, c, ns, "survivor", 60*time.Second, "running", running)
	old, err := c.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CoreV1().Nodes().Delete(ctx, nodeName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "node registered again and Ready", func() (bool, error) {
		n, err := c.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ok, _ := nodeReady(n)
		return n.UID != old.UID && ok, nil
	})
	waitFor(t, 30*time.Second, "lease owned by the new node", func() (bool, error) {
		n, err := c.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		l, err := c.CoordinationV1().Leases("kube-node-lease").Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return len(l.OwnerReferences) == 1 && l.OwnerReferences[0].UID == n.UID, nil
	})
	p, err := c.CoreV1().Pods(ns).Get(ctx, "survivor", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Status.ContainerStatuses[0].ContainerID != before.Status.ContainerStatuses[0].ContainerID {
		t.Errorf("pod restarted across node re-registration: %s", describe(p))
	}
}
