package agent

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"

	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"

	"github.com/nodeagent/nodeagent/nodeshutdown"
	"github.com/nodeagent/nodeagent/nodeshutdown/logind"
)

// NotifySignals turns the process's signals into the two ways the agent
// ends, for Run. ctx ends on SIGINT, and on SIGTERM unless graceful node
// shutdown is configured (shutdownGracePeriod or
// shutdownGracePeriodByPodPriority, see nodeshutdown.Groups): then the
// first SIGTERM closes shutdown instead, and Run terminates the node's
// pods before it returns. A signal after that ends ctx: the agent stops at
// once and the pods are left as they are. stop releases the signals and
// ends ctx.
func NotifySignals(parent context.Context, cfg *kubeletconfigv1beta1.KubeletConfiguration) (ctx context.Context, shutdown <-chan struct{}, stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	ctx, shutdown, cancel := endings(parent, sigs, nodeshutdown.Groups(cfg) != nil)
	return ctx, shutdown, func() {
		signal.Stop(sigs)
		cancel()
	}
}

// endings reads sigs: see NotifySignals; graceful says whether SIGTERM
// shuts the node down.
func endings(parent context.Context, sigs <-chan os.Signal, graceful bool) (context.Context, <-chan struct{}, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	shutdown := make(chan struct{})
	go func() {
		defer cancel()
		pending := shutdown
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-sigs:
				if sig == syscall.SIGTERM && graceful && pending != nil {
					close(pending)
					pending = nil // the next signal stops the agent
					continue
				}
				return
			}
		}
	}()
	return ctx, shutdown, cancel
}

// withLogind adds systemd-logind's announcement of a shutdown to the
// triggers of graceful node shutdown, when the feature is configured: it
// starts watch (logind.Run) and returns a channel closed on SIGTERM (when
// sigterm, from NotifySignals, is closed) or on logind's
// PrepareForShutdown(true), whichever comes first, and drained, which Run
// calls once the drain that follows is over: watch then releases logind's
// inhibitor lock and the machine goes down. Both triggers run the same
// drain, once. Without the feature it returns sigterm and starts nothing.
func withLogind(ctx context.Context, cfg *kubeletconfigv1beta1.KubeletConfiguration, sigterm <-chan struct{}, watch func(context.Context, logind.Config)) (shutdown <-chan struct{}, drained func()) {
	groups := nodeshutdown.Groups(cfg)
	if groups == nil {
		return sigterm, func() {}
	}
	asked, over := make(chan struct{}), make(chan struct{})
	var askOnce, overOnce sync.Once
	ask := func() { askOnce.Do(func() { close(asked) }) }
	go func() {
		select {
		case <-sigterm:
			ask()
		case <-ctx.Done():
		}
	}()
	go watch(ctx, logind.Config{
		GracePeriod: nodeshutdown.Period(groups),
		Drain: func(ctx context.Context) {
			ask()
			select {
			case <-over:
			case <-ctx.Done():
			}
		},
	})
	return asked, func() { overOnce.Do(func() { close(over) }) }
}
