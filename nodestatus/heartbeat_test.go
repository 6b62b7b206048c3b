package nodestatus

import (
	"testing"

	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"
)

// Lease renewals and status posts go through the heartbeat client only;
// registration stays on the main client.
func TestHeartbeatClient(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	h := newHarness(t)
	if err := h.c.register(ctx); err != nil {
		t.Fatal(err)
	}
	node := h.c.Node()
	hb := fake.NewClientset(node.DeepCopy())
	cfg := h.c.cfg
	cfg.HeartbeatClient = hb
	h.c = New(h.client, cfg, h.rt, h.clock)
	h.c.setNode(node)
	h.client.ClearActions()

	if err := h.c.renewLease(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.c.syncStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if acts := h.client.Actions(); len(acts) > 0 {
		t.Errorf("main client used for heartbeats: %v", acts)
	}
	var lease, status bool
	for _, a := range hb.Actions() {
		lease = lease || a.GetResource().Resource == "leases"
		status = status || (a.Matches("update", "nodes") && a.(k8stesting.UpdateAction).GetSubresource() == "status")
	}
	if !lease || !status {
		t.Errorf("heartbeat client actions %v: lease %v, status %v", hb.Actions(), lease, status)
	}
}

func TestHeartbeatClientDefaultsToMain(t *testing.T) {
	h := newHarness(t)
	if h.c.heartbeat != h.c.client {
		t.Error("without HeartbeatClient the heartbeats do not use the main client")
	}
}
