//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A manifest in staticPodPath runs as a pod, shown by a mirror pod that
// carries its status; a deleted mirror comes back; removing the manifest
// stops the pod and deletes the mirror.
func TestStaticPod(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	manifest := filepath.Join(state, "manifests", "static-web.yaml")
	body := `apiVersion: v1
kind: Pod
metadata:
  name: static-web
  namespace: default
  labels: {app: static-web}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: ` + busybox + `
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo static; sleep 3600"]
`
	if err := os.WriteFile(manifest, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(manifest) })
	name := "static-web-" + nodeName
	p := waitPod(t, c, "default", name, 60*time.Second, "mirror pod running", running)
	if p.Annotations["kubernetes.io/config.mirror"] == "" || p.Annotations["kubernetes.io/config.source"] != "file" {
		t.Errorf("mirror annotations: %v", p.Annotations)
	}
	if len(p.OwnerReferences) != 1 || p.OwnerReferences[0].Kind != "Node" {
		t.Errorf("mirror owner: %+v", p.OwnerReferences)
	}
	id := p.Status.ContainerStatuses[0].ContainerID

	// Deleting the mirror does not stop the pod; the mirror comes back.
	if err := c.CoreV1().Pods("default").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "mirror pod recreated", func() (bool, error) {
		np, err := c.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		return err == nil && np.UID != p.UID && running(np), nil
	})
	np, _ := c.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
	if np.Status.ContainerStatuses[0].ContainerID != id {
		t.Errorf("static pod restarted when its mirror was deleted: %s", describe(np))
	}

	// Removing the manifest stops it and deletes the mirror.
	if err := os.Remove(manifest); err != nil {
		t.Fatal(err)
	}
	waitGone(t, c, "default", name, 60*time.Second)
	logDir := filepath.Join("/var/log/pods", "default_"+name+"_"+np.Annotations["kubernetes.io/config.mirror"])
	waitFor(t, 30*time.Second, "static pod's log dir removed", func() (bool, error) {
		_, err := os.Stat(logDir)
		return os.IsNotExist(err), err
	})
}
