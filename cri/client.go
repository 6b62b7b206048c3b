package cri

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace/noop"
	internalapi "k8s.io/cri-api/pkg/apis"
	remote "k8s.io/cri-client/pkg"
)

// Client holds the runtime and image services of one runtime.
type Client struct {
	Runtime internalapi.RuntimeService
	Images  internalapi.ImageManagerService
}

// Connect dials the runtime and image endpoints (unix:///path). The
// connection is lazy: an absent runtime is reported by the first call, so
// the agent can start, report NotReady and recover when the runtime comes.
func Connect(ctx context.Context, runtimeEndpoint, imageEndpoint string, timeout time.Duration) (*Client, error) {
	tp := noop.NewTracerProvider()
	rs, err := remote.NewRemoteRuntimeService(ctx, runtimeEndpoint, timeout, tp, false)
	if err != nil {
		return nil, fmt.Errorf("connect to runtime %s: %w", runtimeEndpoint, err)
	}
	if imageEndpoint == "" {
		imageEndpoint = runtimeEndpoint
	}
	is, err := remote.NewRemoteImageService(ctx, imageEndpoint, timeout, tp, false)
	if err != nil {
		return nil, fmt.Errorf("connect to image service %s: %w", imageEndpoint, err)
	}
	return &Client{Runtime: rs, Images: is}, nil
}
