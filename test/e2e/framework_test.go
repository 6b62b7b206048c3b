//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	busybox  = "registry.k8s.io/e2e-test-images/busybox:1.37.0-1"
	nodeName = "nodeagent-node"
)

var (
	state = envOr("NODEAGENT_STATE", "/var/lib/nodeagent-harness")
	cache = envOr("NODEAGENT_CACHE", filepath.Join(os.Getenv("HOME"), ".cache/nodeagent"))
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func client(t *testing.T) kubernetes.Interface {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(state, "admin.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	rc.QPS, rc.Burst = 100, 200
	return kubernetes.NewForConfigOrDie(rc)
}

// namespace creates a namespace for one test, deleted at its end.
func namespace(t *testing.T, c kubernetes.Interface) string {
	t.Helper()
	name := "e2e-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.TrimRight(name, "-") + "-" + rand.String(4)
	ctx := context.Background()
	if _, err := c.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The default service account and kube-root-ca.crt come from the
	// controller-manager.
	waitFor(t, 60*time.Second, "service account", func() (bool, error) {
		_, err := c.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	t.Cleanup(func() {
		_ = c.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, lastErr)
}

// busyboxPod is a pod on the node running sh -c script.
func busyboxPod(name, script string, policy v1.RestartPolicy) *v1.Pod {
	grace := int64(2)
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PodSpec{
			NodeName:                      nodeName,
			RestartPolicy:                 policy,
			TerminationGracePeriodSeconds: &grace,
			Containers: []v1.Container{{
				Name: "main", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent,
				Command: []string{"sh", "-c", script},
			}},
		},
	}
}

func createPod(t *testing.T, c kubernetes.Interface, ns string, pod *v1.Pod) *v1.Pod {
	t.Helper()
	p, err := c.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// waitPod waits until cond holds for the pod and returns it.
func waitPod(t *testing.T, c kubernetes.Interface, ns, name string, timeout time.Duration, what string, cond func(*v1.Pod) bool) *v1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last *v1.Pod
	for ctx.Err() == nil {
		w, err := c.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if p, err := c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
			last = p
			if cond(p) {
				w.Stop()
				return p
			}
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Modified || ev.Type == watch.Added {
				if p, ok := ev.Object.(*v1.Pod); ok {
					last = p
					if cond(p) {
						w.Stop()
						return p
					}
				}
			}
		}
	}
	t.Fatalf("pod %s/%s: timed out after %s waiting for %s; last status: %s", ns, name, timeout, what, describe(last))
	return nil
}

func describe(p *v1.Pod) string {
	if p == nil {
		return "<none>"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "phase=%s reason=%q message=%q", p.Status.Phase, p.Status.Reason, p.Status.Message)
	for _, cs := range p.Status.ContainerStatuses {
		fmt.Fprintf(&b, " [%s restarts=%d state=%+v last=%+v]", cs.Name, cs.RestartCount, cs.State, cs.LastTerminationState)
	}
	return b.String()
}

func running(p *v1.Pod) bool {
	if p.Status.Phase != v1.PodRunning {
		return false
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Running == nil {
			return false
		}
	}
	return true
}

func waitGone(t *testing.T, c kubernetes.Interface, ns, name string, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "pod "+name+" gone", func() (bool, error) {
		_, err := c.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})
}

// kubectl runs the harness's kubectl as the admin.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(cache, "bin/kubectl"), append([]string{"--kubeconfig", filepath.Join(state, "admin.kubeconfig")}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// harness runs hack/cluster.sh with a subcommand.
func harness(t *testing.T, sub string) {
	t.Helper()
	out, err := exec.Command("../../hack/cluster.sh", sub).CombinedOutput()
	if err != nil {
		t.Fatalf("cluster.sh %s: %v\n%s", sub, err, out)
	}
}

// withAgentFlags restarts the harness's agent with extra flags after the
// ones it has (agent-restart keeps them), and at cleanup restarts it with
// the flags it had, and waits for the node to be Ready.
func withAgentFlags(t *testing.T, extra ...string) {
	t.Helper()
	file := filepath.Join(state, "nodeagent.args")
	old, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if old == nil {
			_ = os.Remove(file)
		} else {
			_ = os.WriteFile(file, old, 0o644)
		}
		harness(t, "agent-restart")
		harness(t, "wait-node")
	})
	args := strings.TrimSpace(strings.TrimSpace(string(old)) + " " + strings.Join(extra, " "))
	if err := os.WriteFile(file, []byte(args+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	harness(t, "agent-restart")
}

func nodeReady(n *v1.Node) (bool, string) {
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeReady {
			return c.Status == v1.ConditionTrue, c.Message
		}
	}
	return false, "no Ready condition"
}
