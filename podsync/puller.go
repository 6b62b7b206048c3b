package podsync

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/clock"
)

// errPullQPSExceeded is the kubelet's error for a pull beyond
// registryPullQPS and registryBurst: the container waits with
// ErrImagePull and the pull back-off, as for any failed pull.
var errPullQPSExceeded = errors.New("pull QPS exceeded")

// pullLimiter bounds the node's image pulls as the kubelet's image manager
// does (pkg/kubelet/images, puller.go and helpers.go):
//
//   - serializeImagePulls (the default): one pull at a time node-wide, the
//     others waiting their turn in about the order they came; with
//     serializeImagePulls false, at most maxParallelImagePulls at once, or
//     no limit when it is unset;
//   - registryPullQPS and registryBurst: a token bucket, asked when a
//     pull's turn comes and never waited on: a pull beyond it fails at
//     once with "pull QPS exceeded". 0 QPS is no limit.
//
// Only pulls take a turn: an image already present (IfNotPresent, Never)
// is checked by ensureImage before and never waits.
//
// As with the kubelet's serial puller, a slow pull holds its turn for as
// long as the runtime takes: a registry that does not answer holds up
// every other pull of the node until the runtime gives up (containerd
// cancels a pull without progress after its image_pull_progress_timeout,
// 5 minutes by default). A pull waiting for its turn is never stuck
// behind it for good, though: it leaves the queue when its sync is
// cancelled (the pod killed, the agent stopping), where the kubelet's
// queue keeps it until its turn.
type pullLimiter struct {
	slots chan struct{}                  // nil: no limit on pulls at once
	qps   flowcontrol.PassiveRateLimiter // nil: no limit on the rate
}

// newPullLimiter returns the limits of cfg, the token bucket on clk.
func newPullLimiter(cfg Config, clk clock.PassiveClock) *pullLimiter {
	l := &pullLimiter{}
	switch {
	case cfg.SerializeImagePulls:
		l.slots = make(chan struct{}, 1)
	case cfg.MaxParallelImagePulls > 0:
		l.slots = make(chan struct{}, cfg.MaxParallelImagePulls)
	}
	if cfg.RegistryPullQPS > 0 {
		l.qps = flowcontrol.NewTokenBucketPassiveRateLimiterWithClock(float32(cfg.RegistryPullQPS), cfg.RegistryBurst, clk)
	}
	return l
}

// errPullWaitCancelled wraps the context's error when a sync is cancelled
// before its pull starts, most often while it waits for a turn: nothing
// was pulled, nothing failed.
var errPullWaitCancelled = errors.New("cancelled while waiting for a turn to pull")

// pull runs pull in its turn and returns its error, errPullQPSExceeded
// without running it when the rate is exceeded, or errPullWaitCancelled
// (wrapping ctx's error) when ctx ends first. A ctx ended when the turn
// comes runs nothing either: select may take a free turn over an ended
// ctx, and the pull would only fail, with a Failed event and a back-off.
func (l *pullLimiter) pull(ctx context.Context, pull func() error) error {
	if l.slots != nil {
		select {
		case l.slots <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", errPullWaitCancelled, ctx.Err())
		}
		defer func() { <-l.slots }()
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", errPullWaitCancelled, err)
	}
	if l.qps != nil && !l.qps.TryAccept() {
		return errPullQPSExceeded
	}
	return pull()
}
