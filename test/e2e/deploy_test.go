//go:build e2e

package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// TestDeployDaemonSetDryRun: the apiserver takes deploy/daemonset/ as it is
// (kubectl apply --dry-run=server: defaulting, validation that refuses
// unknown fields, admission with Pod Security). A server dry run cannot
// create objects in a namespace that does not exist yet, so the manifest's
// namespace is created for real first, and deleted at the end if the test
// made it. The DaemonSet itself is never created: on the harness it would
// land nowhere (no node has the nodeagent.io/agent label), and a real run
// needs its image, which the harness does not build.
func TestDeployDaemonSetDryRun(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	const name = "nodeagent-system"

	var ns *v1.Namespace
	if err := wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := c.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			ns = nil
			return true, nil
		}
		ns = got
		return err == nil && got.Status.Phase != v1.NamespaceTerminating, nil
	}); err != nil {
		t.Fatalf("namespace %s still terminating: %v", name, err)
	}
	if ns == nil {
		kubectl(t, "apply", "-f", "../../deploy/daemonset/namespace.yaml")
		t.Cleanup(func() {
			_ = c.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
		})
	}

	out := kubectl(t, "apply", "--dry-run=server", "-f", "../../deploy/daemonset/")
	for _, want := range []string{"namespace/" + name + " ", "daemonset.apps/nodeagent created (server dry run)"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl apply --dry-run=server: no %q in\n%s", want, out)
		}
	}
	if _, err := c.AppsV1().DaemonSets(name).Get(ctx, "nodeagent", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the dry run left a DaemonSet: %v", err)
	}

	// A field the API does not know is refused by the same dry run (the
	// manifest's fields are checked, not skipped).
	bad := exec.Command(cache+"/bin/kubectl", "--kubeconfig", state+"/admin.kubeconfig", "apply", "--dry-run=server", "-f", "-")
	bad.Stdin = strings.NewReader(`{"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "nodeagent", "namespace": "` + name + `"},
 "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
  "spec": {"hostPidd": true, "containers": [{"name": "c", "image": "i"}]}}}}`)
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "hostPidd") {
		t.Errorf("an unknown field passed the server dry run: %v\n%s", err, out)
	}
}
