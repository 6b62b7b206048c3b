//go:build e2e

package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A resize deferred when the agent restarts stays deferred after it: the
// grants are checkpointed (podsync/checkpoint.go), so the restarted agent
// does not grant the pod its spec without the fit check.
func TestResizeDeferredAcrossRestart(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	pod := busyboxPod("ckpt", sleeper, v1.RestartPolicyAlways)
	pod.Spec.Containers[0].Resources = resources("100m", "200m", "64Mi", "128Mi")
	createPod(t, c, ns, pod)
	waitPod(t, c, ns, "ckpt", 120*time.Second, "running", running)
	name := pod.Spec.Containers[0].Name
	v2 := strings.Contains(cgroupValues(t, ns, "ckpt", name), " 100000 ")
	before := wantCgroups(v2, 200, 100, 128<<20)

	left := free(t, c, v1.ResourceCPU)
	if left < 200 {
		t.Skipf("only %dm of CPU left on the node", left)
	}
	filler := busyboxPod("filler", sleeper, v1.RestartPolicyAlways)
	filler.Spec.Containers[0].Resources = v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: *resource.NewMilliQuantity(left-50, resource.DecimalSI)}}
	createPod(t, c, ns, filler)
	waitPod(t, c, ns, "filler", 120*time.Second, "running", running)
	grow := `{"requests":{"cpu":"500m"},"limits":{"cpu":"500m"}}`
	kubectl(t, "patch", "-n", ns, "pod", "ckpt", "--subresource", "resize", "-p", resizePatch(map[string]string{name: grow}))
	deferred := func(p *v1.Pod) bool {
		for _, c := range p.Status.Conditions {
			if c.Type == v1.PodResizePending && c.Reason == v1.PodReasonDeferred && c.ObservedGeneration == 2 {
				return true
			}
		}
		return false
	}
	waitPod(t, c, ns, "ckpt", 30*time.Second, "resize Deferred", deferred)

	restartAgentWith(t, "", http.StatusOK)
	// Several syncs and a garbage collection after the restart.
	time.Sleep(20 * time.Second)
	p := waitPod(t, c, ns, "ckpt", 30*time.Second, "resize still Deferred", deferred)
	if got := cgroupValues(t, ns, "ckpt", name); got != before {
		t.Errorf("cgroups after the restart: %q, want those granted before it, %q", got, before)
	}
	if got := statusOf(p, name).AllocatedResources[v1.ResourceCPU]; !got.Equal(resource.MustParse("100m")) {
		t.Errorf("allocatedResources.cpu after the restart = %s, want the checkpointed 100m", got.String())
	}

	// Room again: the resize is granted and applied.
	if err := c.CoreV1().Pods(ns).Delete(context.Background(), "filler", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	waitPod(t, c, ns, "ckpt", 60*time.Second, "deferred resize applied", resizeSettled)
	if got, want := cgroupValues(t, ns, "ckpt", name), wantCgroups(v2, 500, 500, 128<<20); got != want {
		t.Errorf("cgroups after the deferred resize: %q, want %q", got, want)
	}
}
