package nodestatus

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2/ktesting"
)

func TestLeaseCreatedAndRenewed(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	h := newHarness(t)
	if err := h.c.register(ctx); err != nil {
		t.Fatal(err)
	}
	get := func() *coordinationv1.Lease {
		t.Helper()
		l, err := h.client.CoordinationV1().Leases("kube-node-lease").Get(ctx, "node1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if err := h.c.renewLease(ctx); err != nil {
		t.Fatal(err)
	}
	l := get()
	if *l.Spec.HolderIdentity != "node1" || *l.Spec.LeaseDurationSeconds != 40 {
		t.Errorf("lease spec = %+v", l.Spec)
	}
	if !l.Spec.RenewTime.Time.Equal(h.clock.Now()) {
		t.Errorf("renewTime = %v, want %v", l.Spec.RenewTime, h.clock.Now())
	}
	node := h.c.Node()
	if len(l.OwnerReferences) != 1 || l.OwnerReferences[0].UID != node.UID || l.OwnerReferences[0].Kind != "Node" {
		t.Errorf("ownerReferences = %+v, want node %s", l.OwnerReferences, node.UID)
	}

	h.clock.Step(10 * time.Second)
	if err := h.c.renewLease(ctx); err != nil {
		t.Fatal(err)
	}
	if l := get(); !l.Spec.RenewTime.Time.Equal(h.clock.Now()) {
		t.Errorf("renewTime after renewal = %v, want %v", l.Spec.RenewTime, h.clock.Now())
	}

	// Deleted behind our back: the cached copy fails, then it is recreated.
	if err := h.client.CoordinationV1().Leases("kube-node-lease").Delete(ctx, "node1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := h.c.renewLease(ctx); err == nil {
		t.Error("renewing a deleted lease from cache succeeded")
	}
	if err := h.c.renewLease(ctx); err != nil {
		t.Fatal(err)
	}
	get()
}
