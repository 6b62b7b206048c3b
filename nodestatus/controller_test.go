package nodestatus

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2/ktesting"
)

// TestRun drives the whole controller: registration, lease, Poke after the
// runtime went down, and re-registration after the Node is deleted.
func TestRun(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	h := newHarness(t)
	done := make(chan struct{})
	go func() { defer close(done); h.c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	select {
	case <-h.c.Registered():
	case <-time.After(10 * time.Second):
		t.Fatal("not registered")
	}
	nodes := h.client.CoreV1().Nodes()
	leases := h.client.CoordinationV1().Leases("kube-node-lease")
	first := h.c.Node()
	if first == nil || first.UID == "" {
		t.Fatalf("Node() = %v", first)
	}
	eventually(t, "lease", func() bool {
		l, err := leases.Get(ctx, "node1", metav1.GetOptions{})
		return err == nil && len(l.OwnerReferences) == 1 && l.OwnerReferences[0].UID == first.UID
	})
	eventually(t, "node watch", func() bool {
		for _, a := range h.client.Actions() {
			if a.GetVerb() == "watch" && a.GetResource().Resource == "nodes" {
				return true
			}
		}
		return false
	})

	// Runtime down: Poke makes it visible without waiting for the ticker.
	h.rt.set(errRuntimeDown, true)
	h.c.Poke()
	eventually(t, "Ready=False", func() bool {
		n, err := nodes.Get(ctx, "node1", metav1.GetOptions{})
		c := condition(n, v1.NodeReady)
		return err == nil && c != nil && c.Status == v1.ConditionFalse
	})
	h.rt.set(nil, true)
	h.clock.Step(10 * time.Second) // the status ticker
	eventually(t, "Ready=True", func() bool {
		n, err := nodes.Get(ctx, "node1", metav1.GetOptions{})
		c := condition(n, v1.NodeReady)
		return err == nil && c != nil && c.Status == v1.ConditionTrue
	})

	// Deleted: registered again with a new UID, and the lease follows.
	if err := nodes.Delete(ctx, "node1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var second *v1.Node
	eventually(t, "re-registration", func() bool {
		n, err := nodes.Get(ctx, "node1", metav1.GetOptions{})
		if err != nil || n.UID == first.UID {
			return false
		}
		second = n
		return true
	})
	if second.Labels["kubernetes.io/hostname"] != "node1-host" {
		t.Errorf("re-registered node labels = %v", second.Labels)
	}
	eventually(t, "Node() follows", func() bool {
		n := h.c.Node()
		return n != nil && n.UID == second.UID
	})
	eventually(t, "lease owner follows", func() bool {
		l, err := leases.Get(ctx, "node1", metav1.GetOptions{})
		return err == nil && len(l.OwnerReferences) == 1 && l.OwnerReferences[0].UID == second.UID
	})
}
