package nodestatus

import (
	"context"
	"fmt"
	goruntime "runtime"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// annotationControllerManagedAttach tells the attach-detach controller to
// attach volumes for this node (the kubelet always sets it).
const annotationControllerManagedAttach = "volumes.kubernetes.io/controller-managed-attach-detach"

const (
	registerInitialBackoff = 100 * time.Millisecond
	registerMaxBackoff     = 7 * time.Second
)

// register creates (or adopts) the Node, retrying with backoff until it
// succeeds; it returns an error only when ctx ends. With RegisterNode off it
// only waits for the Node to exist.
func (c *Controller) register(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	backoff := registerInitialBackoff
	for {
		var node *v1.Node
		var err error
		if c.cfg.RegisterNode {
			node, err = c.tryRegister(ctx)
		} else {
			node, err = c.client.CoreV1().Nodes().Get(ctx, c.cfg.NodeName, metav1.GetOptions{})
		}
		if err == nil {
			logger.Info("Node registered", "uid", node.UID)
			c.setNode(node)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		logger.Error(err, "Unable to register node, will retry", "backoff", backoff)
		if !sleep(ctx, c.clock, backoff) {
			return ctx.Err()
		}
		backoff = min(2*backoff, registerMaxBackoff)
	}
}

// tryRegister creates the Node; if it exists already, it reconciles the
// labels and annotation this agent owns and returns the existing Node.
func (c *Controller) tryRegister(ctx context.Context) (*v1.Node, error) {
	nodes := c.client.CoreV1().Nodes()
	initial := c.initialNode(ctx)
	created, err := nodes.Create(ctx, initial, metav1.CreateOptions{})
	if err == nil {
		return created, nil
	}
	// Forbidden: the agent may lack create rights, but the Node may exist.
	if !apierrors.IsAlreadyExists(err) && !apierrors.IsForbidden(err) {
		return nil, fmt.Errorf("create node %s: %w", c.cfg.NodeName, err)
	}
	existing, err := nodes.Get(ctx, c.cfg.NodeName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get existing node %s: %w", c.cfg.NodeName, err)
	}
	klog.FromContext(ctx).Info("Node was previously registered, adopting it", "uid", existing.UID)
	if !reconcileMeta(initial, existing) {
		return existing, nil
	}
	updated, err := nodes.Update(ctx, existing, metav1.UpdateOptions{})
	switch {
	case apierrors.IsConflict(err):
		return nil, fmt.Errorf("update labels of existing node %s: %w", c.cfg.NodeName, err)
	case err != nil:
		// E.g. NodeRestriction refusing a label: labels are best effort,
		// they must not keep the node from running.
		klog.FromContext(ctx).Error(err, "Unable to update labels of existing node, continuing without")
		existing, err = nodes.Get(ctx, c.cfg.NodeName, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("get existing node %s: %w", c.cfg.NodeName, err)
		}
		return existing, nil
	}
	return updated, nil
}

// reconcileMeta copies the labels and annotation of want into existing and
// reports whether existing changed. Labels are only added or changed, never
// removed: others (and earlier --node-labels) may own them.
func reconcileMeta(want, existing *v1.Node) bool {
	changed := false
	if existing.Labels == nil {
		existing.Labels = map[string]string{}
	}
	for k, v := range want.Labels {
		if cur, ok := existing.Labels[k]; !ok || cur != v {
			existing.Labels[k] = v
			changed = true
		}
	}
	if existing.Annotations[annotationControllerManagedAttach] != "true" {
		if existing.Annotations == nil {
			existing.Annotations = map[string]string{}
		}
		existing.Annotations[annotationControllerManagedAttach] = "true"
		changed = true
	}
	return changed
}

// initialNode is the Node this agent registers, status included (the API
// server keeps the status of a created Node).
func (c *Controller) initialNode(ctx context.Context) *v1.Node {
	labels := map[string]string{
		v1.LabelHostname:          c.cfg.Hostname,
		v1.LabelOSStable:          goruntime.GOOS,
		v1.LabelArchStable:        goruntime.GOARCH,
		"beta.kubernetes.io/os":   goruntime.GOOS,
		"beta.kubernetes.io/arch": goruntime.GOARCH,
	}
	for k, v := range c.cfg.Labels {
		labels[k] = v
	}
	node := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        c.cfg.NodeName,
			Labels:      labels,
			Annotations: map[string]string{annotationControllerManagedAttach: "true"},
		},
		Spec: v1.NodeSpec{
			ProviderID: c.cfg.ProviderID,
			Taints:     append([]v1.Taint(nil), c.cfg.Taints...),
		},
	}
	c.setStatus(ctx, node, c.clock.Now())
	return node
}
