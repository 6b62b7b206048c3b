package nodestatus

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// LeaseNamespace holds one Lease per node, named after it.
const LeaseNamespace = v1.NamespaceNodeLease

const (
	leaseInitialBackoff = 200 * time.Millisecond
	leaseMaxBackoff     = 7 * time.Second
)

// leaseState is the Lease last written, reused to skip a GET on each
// renewal (as the kubelet does). Only the lease loop touches it.
type leaseState struct {
	latest *coordinationv1.Lease
}

// runLease renews the Lease every LeaseDuration/4; after a failure it
// retries after 200ms, doubling up to 7s.
func (c *Controller) runLease(ctx context.Context) {
	logger := klog.FromContext(ctx)
	interval := c.cfg.LeaseDuration / 4
	backoff := leaseInitialBackoff
	for {
		wait := interval
		if err := c.renewLease(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			logger.Error(err, "Unable to renew node lease, will retry", "backoff", backoff)
			wait = backoff
			backoff = min(2*backoff, leaseMaxBackoff)
		} else {
			backoff = leaseInitialBackoff
		}
		t := c.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		case <-c.leasePoke:
			t.Stop()
		}
	}
}

// renewLease creates the Lease if missing, else sets holder, duration,
// renewTime and the owner reference to the current Node.
func (c *Controller) renewLease(ctx context.Context) error {
	leases := c.heartbeat.CoordinationV1().Leases(LeaseNamespace)
	lease := c.lease.latest
	if lease == nil {
		got, err := leases.Get(ctx, c.cfg.NodeName, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			created, err := leases.Create(ctx, c.desiredLease(nil), metav1.CreateOptions{})
			if err != nil {
				return fmt.Errorf("create lease %s/%s: %w", LeaseNamespace, c.cfg.NodeName, err)
			}
			c.lease.latest = created
			klog.FromContext(ctx).V(2).Info("Created node lease")
			return nil
		case err != nil:
			return fmt.Errorf("get lease %s/%s: %w", LeaseNamespace, c.cfg.NodeName, err)
		}
		lease = got
	}
	updated, err := leases.Update(ctx, c.desiredLease(lease), metav1.UpdateOptions{})
	if err != nil {
		c.lease.latest = nil // refetch next time (conflict, deleted, ...)
		return fmt.Errorf("update lease %s/%s: %w", LeaseNamespace, c.cfg.NodeName, err)
	}
	c.lease.latest = updated
	return nil
}

// desiredLease returns a copy of base (or a new Lease) renewed now.
func (c *Controller) desiredLease(base *coordinationv1.Lease) *coordinationv1.Lease {
	var lease *coordinationv1.Lease
	if base != nil {
		lease = base.DeepCopy()
	} else {
		lease = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: c.cfg.NodeName, Namespace: LeaseNamespace}}
	}
	lease.Spec.HolderIdentity = ptr.To(c.cfg.NodeName)
	lease.Spec.LeaseDurationSeconds = ptr.To(int32(c.cfg.LeaseDuration / time.Second))
	lease.Spec.RenewTime = &metav1.MicroTime{Time: c.clock.Now()}
	if node := c.Node(); node != nil && node.UID != "" {
		lease.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: "v1",
			Kind:       "Node",
			Name:       node.Name,
			UID:        node.UID,
		}}
	}
	return lease
}
