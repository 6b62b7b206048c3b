package nodestatus

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// statusUpdateRetries is how many times a conflicting status update is
// retried on a freshly fetched Node (the kubelet's nodeStatusUpdateRetry).
const statusUpdateRetries = 5

// syncStatus computes the status and posts it if it changed (heartbeat
// times aside) or StatusReportFrequency passed since the last post. The
// first try starts from the Node last seen; a conflict refetches it.
func (c *Controller) syncStatus(ctx context.Context) error {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	logger := klog.FromContext(ctx)
	nodes := c.heartbeat.CoreV1().Nodes()
	node := c.Node()
	for try := 0; try < statusUpdateRetries; try++ {
		if node == nil {
			var err error
			node, err = nodes.Get(ctx, c.cfg.NodeName, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("get node %s: %w", c.cfg.NodeName, err)
			}
		}
		now := c.clock.Now()
		updated := node.DeepCopy()
		c.setStatus(ctx, updated, now)

		c.mu.Lock()
		due := c.lastReport.IsZero() || now.Sub(c.lastReport) >= c.cfg.StatusReportFrequency
		c.mu.Unlock()
		if !due && !statusChanged(&node.Status, &updated.Status) {
			logger.V(5).Info("Node status unchanged, not posting")
			return nil
		}

		result, err := nodes.UpdateStatus(ctx, updated, metav1.UpdateOptions{})
		// Forbidden too: NodeRestriction refuses a status update whose
		// object carries taints older than the stored ones (the node
		// lifecycle controller's), as if the node changed them.
		if apierrors.IsConflict(err) || apierrors.IsForbidden(err) {
			logger.V(4).Info("Updating node status refused, refetching the node", "err", err)
			node = nil
			continue
		}
		if err != nil {
			return fmt.Errorf("update status of node %s: %w", c.cfg.NodeName, err)
		}
		c.mu.Lock()
		c.lastReport = now
		c.node = result
		c.mu.Unlock()
		logger.V(4).Info("Posted node status", "ready", readyStatus(result))
		return nil
	}
	return fmt.Errorf("update status of node %s: still conflicting after %d tries", c.cfg.NodeName, statusUpdateRetries)
}

// statusChanged compares two statuses ignoring condition heartbeat times.
func statusChanged(old, updated *v1.NodeStatus) bool {
	a, b := old.DeepCopy(), updated.DeepCopy()
	for _, st := range []*v1.NodeStatus{a, b} {
		for i := range st.Conditions {
			st.Conditions[i].LastHeartbeatTime = metav1.Time{}
		}
	}
	return !equality.Semantic.DeepEqual(a, b)
}

func readyStatus(n *v1.Node) v1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeReady {
			return c.Status
		}
	}
	return v1.ConditionUnknown
}
