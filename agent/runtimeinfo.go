package agent

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/cri"
	"github.com/nodeagent/nodeagent/nodestatus"
)

type metav1ListOptionsT = metav1.ListOptions

var everything = labels.Everything()

// runtimeInfo adapts the CRI client to what nodestatus needs.
type runtimeInfo struct{ c *cri.Client }

var _ nodestatus.RuntimeInfo = runtimeInfo{}

func (r runtimeInfo) Status(ctx context.Context) (*runtimeapi.StatusResponse, error) {
	resp, err := r.c.Runtime.Status(ctx, false)
	if err != nil {
		return nil, err
	}
	if resp.Status == nil {
		return nil, fmt.Errorf("runtime returned no status")
	}
	return resp, nil
}

func (r runtimeInfo) Version(ctx context.Context) (*runtimeapi.VersionResponse, error) {
	return r.c.Runtime.Version(ctx, "v1")
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// ListImages lists the runtime's images for the node's status.images.
func (r runtimeInfo) ListImages(ctx context.Context) ([]*runtimeapi.Image, error) {
	return r.c.Images.ListImages(ctx, nil)
}
