//go:build e2e

package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/cri"
)

// testHandler is the runtime handler the harness's containerd has besides
// runc, named as the upstream e2e suite's preconfigured one
// (e2eruntimeclass.PreconfiguredRuntimeClassHandler).
const testHandler = "test-handler"

// createRuntimeClass creates a RuntimeClass with a unique name and the
// handler, deleted at the test's end.
func createRuntimeClass(t *testing.T, c kubernetes.Interface, handler string) string {
	t.Helper()
	rc := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "e2e-" + rand.String(8)}, Handler: handler}
	if _, err := c.NodeV1().RuntimeClasses().Create(context.Background(), rc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteRuntimeClass(t, c, rc.Name) })
	return rc.Name
}

func deleteRuntimeClass(t *testing.T, c kubernetes.Interface, name string) {
	t.Helper()
	err := c.NodeV1().RuntimeClasses().Delete(context.Background(), name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("delete RuntimeClass %s: %v", name, err)
	}
}

// podSandboxes returns the statuses of the pod's sandboxes, from the
// harness's containerd through CRI.
func podSandboxes(t *testing.T, uid string) []*runtimeapi.PodSandboxStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rt, err := cri.Connect(ctx, "unix://"+filepath.Join(state, "run/containerd.sock"), "", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sbs, err := rt.Runtime.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{cri.PodUIDLabel: uid}})
	if err != nil {
		t.Fatal(err)
	}
	var out []*runtimeapi.PodSandboxStatus
	for _, sb := range sbs {
		st, err := rt.Runtime.PodSandboxStatus(ctx, sb.Id, false)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, st.GetStatus())
	}
	return out
}

// wantSandboxHandler checks that the pod has one sandbox, made with the
// handler.
func wantSandboxHandler(t *testing.T, p *v1.Pod, handler string) {
	t.Helper()
	sbs := podSandboxes(t, string(p.UID))
	if len(sbs) != 1 || sbs[0].GetRuntimeHandler() != handler {
		var got []string
		for _, sb := range sbs {
			got = append(got, sb.GetRuntimeHandler())
		}
		t.Errorf("pod %s: sandbox runtime handlers %q, want one with %q", p.Name, got, handler)
	}
}

// A pod whose RuntimeClass has the handler test-handler runs in a sandbox
// the runtime made with that handler; a pod without one gets the default
// handler.
func TestRuntimeClassHandler(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	rc := createRuntimeClass(t, c, testHandler)
	p := busyboxPod("with-class", "sleep 3600", v1.RestartPolicyAlways)
	p.Spec.RuntimeClassName = &rc
	createPod(t, c, ns, p)
	createPod(t, c, ns, busyboxPod("without-class", "sleep 3600", v1.RestartPolicyAlways))
	withClass := waitPod(t, c, ns, "with-class", 120*time.Second, "running", running)
	without := waitPod(t, c, ns, "without-class", 120*time.Second, "running", running)
	wantSandboxHandler(t, withClass, testHandler)
	wantSandboxHandler(t, without, "")
	if logs := kubectl(t, "-n", ns, "exec", "with-class", "--", "echo", "in the sandbox"); logs != "in the sandbox\n" {
		t.Errorf("exec in the pod with a RuntimeClass: %q", logs)
	}
	// The node lists both handlers in status.runtimeHandlers, as the
	// kubelet, from CRI Status.
	n, err := c.CoreV1().Nodes().Get(context.Background(), nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, h := range n.Status.RuntimeHandlers {
		found[h.Name] = h.Features != nil && h.Features.RecursiveReadOnlyMounts != nil
	}
	if !found[""] || !found[testHandler] {
		t.Errorf("node status.runtimeHandlers = %+v, want the default and %s with their features", n.Status.RuntimeHandlers, testHandler)
	}
}

// A pod whose RuntimeClass was deleted after it was created (the apiserver
// refuses a pod naming a missing one) gets the kubelet's
// FailedCreatePodSandBox event and stays Pending without any sandbox; once
// the RuntimeClass exists again, the pod starts with its handler.
func TestRuntimeClassMissing(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	ns := namespace(t, c)
	rc := createRuntimeClass(t, c, testHandler)
	// Held by a scheduling gate until the RuntimeClass is gone: a pod
	// bound at creation (spec.nodeName) may not have one.
	p := busyboxPod("orphan", "sleep 3600", v1.RestartPolicyAlways)
	p.Spec.NodeName = ""
	p.Spec.NodeSelector = map[string]string{v1.LabelHostname: nodeName}
	p.Spec.SchedulingGates = []v1.PodSchedulingGate{{Name: "nodeagent.e2e/hold"}}
	p.Spec.RuntimeClassName = &rc
	createPod(t, c, ns, p)
	deleteRuntimeClass(t, c, rc)
	waitFor(t, 30*time.Second, "RuntimeClass gone", func() (bool, error) {
		_, err := c.NodeV1().RuntimeClasses().Get(ctx, rc, metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})
	time.Sleep(time.Second) // for the agent's informer to see it go
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := c.CoreV1().Pods(ns).Get(ctx, "orphan", metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Spec.SchedulingGates = nil
		_, err = c.CoreV1().Pods(ns).Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	waitPodEvent(t, c, ns, "orphan", "FailedCreatePodSandBox", `Failed to create pod sandbox: runtimeclass.node.k8s.io "`+rc+`" not found`, 60*time.Second)
	// Retried with the worker's back-off, never with a sandbox.
	time.Sleep(5 * time.Second)
	got, err := c.CoreV1().Pods(ns).Get(ctx, "orphan", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.NodeName != nodeName || got.Status.Phase != v1.PodPending || len(got.Status.ContainerStatuses) != 1 ||
		got.Status.ContainerStatuses[0].State.Waiting == nil || got.Status.ContainerStatuses[0].State.Waiting.Reason != "ContainerCreating" {
		t.Errorf("pod on %q: %s; want Pending on %s with its container in ContainerCreating", got.Spec.NodeName, describe(got), nodeName)
	}
	if sbs := podSandboxes(t, string(got.UID)); len(sbs) != 0 {
		t.Errorf("%d sandboxes for a pod whose RuntimeClass is missing, want none", len(sbs))
	}

	again := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: rc}, Handler: testHandler}
	if _, err := c.NodeV1().RuntimeClasses().Create(ctx, again, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	started := waitPod(t, c, ns, "orphan", 60*time.Second, "running once the RuntimeClass exists", running)
	wantSandboxHandler(t, started, testHandler)
}

// A handler the runtime does not know: the FailedCreatePodSandBox event
// carries the runtime's error and the pod stays Pending (the upstream
// "should reject a Pod requesting a RuntimeClass with an unconfigured
// handler").
func TestRuntimeClassUnknownHandler(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	handler := "e2e-unconfigured-" + rand.String(4)
	rc := createRuntimeClass(t, c, handler)
	p := busyboxPod("unconfigured", "sleep 3600", v1.RestartPolicyAlways)
	p.Spec.RuntimeClassName = &rc
	createPod(t, c, ns, p)
	waitPodEvent(t, c, ns, "unconfigured", "FailedCreatePodSandBox", `no runtime for "`+handler+`" is configured`, 60*time.Second)
	got, err := c.CoreV1().Pods(ns).Get(context.Background(), "unconfigured", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != v1.PodPending {
		t.Errorf("pod: %s; want Pending", describe(got))
	}
	if sbs := podSandboxes(t, string(got.UID)); len(sbs) != 0 {
		t.Errorf("%d sandboxes left by a handler the runtime does not know, want none", len(sbs))
	}
}
