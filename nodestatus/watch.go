package nodestatus

import (
	"context"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// runWatch keeps Node() current from a list+watch of the agent's own Node
// (selected by metadata.name, the only way the Node authorizer allows) and
// signals the status loop when the Node is deleted.
func (c *Controller) runWatch(ctx context.Context) {
	logger := klog.FromContext(ctx)
	selector := fields.OneTermEqualSelector("metadata.name", c.cfg.NodeName).String()
	nodes := c.client.CoreV1().Nodes()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.FieldSelector = selector
			return nodes.List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = selector
			return nodes.Watch(ctx, opts)
		},
	}
	_, informer := cache.NewInformerWithOptions(cache.InformerOptions{
		Logger:        &logger,
		ListerWatcher: cache.ToListWatcherWithWatchListSemantics(lw, c.client),
		ObjectType:    &v1.Node{},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.observeNode(obj) },
			UpdateFunc: func(_, obj any) { c.observeNode(obj) },
			DeleteFunc: func(obj any) { c.observeDelete(ctx, obj) },
		},
	})
	informer.RunWithContext(ctx)
}

func (c *Controller) observeNode(obj any) {
	node, ok := obj.(*v1.Node)
	if !ok || node.Name != c.cfg.NodeName {
		return
	}
	c.setNode(node)
}

func (c *Controller) observeDelete(ctx context.Context, obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	node, ok := obj.(*v1.Node)
	if !ok || node.Name != c.cfg.NodeName {
		return
	}
	c.mu.Lock()
	current := c.node
	if current != nil && current.UID != node.UID {
		// An older incarnation; we already have a newer Node.
		c.mu.Unlock()
		return
	}
	c.node = nil
	c.mu.Unlock()
	klog.FromContext(ctx).Info("Node was deleted from the API server", "uid", node.UID)
	signal(c.nodeGone)
}
