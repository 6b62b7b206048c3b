package agent

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"

	"github.com/nodeagent/nodeagent/nodeshutdown/logind"
)

func isClosed[T any](ch <-chan T) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func waitClosed[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: not closed", what)
	}
}

// Without graceful node shutdown SIGTERM and SIGINT stop the agent; with
// it the first SIGTERM asks for the shutdown and the next signal stops the
// agent, and SIGINT always stops it at once.
func TestEndings(t *testing.T) {
	for _, tc := range []struct {
		name     string
		graceful bool
		sigs     []os.Signal
		shutdown bool
		stopped  bool
	}{
		{"SIGTERM stops", false, []os.Signal{syscall.SIGTERM}, false, true},
		{"SIGINT stops", false, []os.Signal{syscall.SIGINT}, false, true},
		{"SIGTERM shuts down", true, []os.Signal{syscall.SIGTERM}, true, false},
		{"SIGINT stops without shutdown", true, []os.Signal{syscall.SIGINT}, false, true},
		{"second SIGTERM stops", true, []os.Signal{syscall.SIGTERM, syscall.SIGTERM}, true, true},
		{"SIGINT during shutdown stops", true, []os.Signal{syscall.SIGTERM, syscall.SIGINT}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sigs := make(chan os.Signal)
			ctx, shutdown, cancel := endings(context.Background(), sigs, tc.graceful)
			defer cancel()
			for _, s := range tc.sigs {
				sigs <- s // unbuffered: handled one after the other
			}
			if tc.stopped {
				waitClosed(t, ctx.Done(), "ctx")
			}
			if tc.shutdown {
				waitClosed(t, shutdown, "shutdown")
			}
			if !tc.stopped {
				// The goroutine took the signal (unbuffered send) and closed
				// shutdown: had it ended ctx, it would have done so first.
				if isClosed(ctx.Done()) {
					t.Error("ctx ended")
				}
			}
			if !tc.shutdown && isClosed(shutdown) {
				t.Error("shutdown closed")
			}
		})
	}
}

func TestNotifySignalsGraceful(t *testing.T) {
	cfg := &kubeletconfigv1beta1.KubeletConfiguration{}
	cfg.ShutdownGracePeriod = metav1.Duration{Duration: 20 * time.Second}
	ctx, shutdown, stop := NotifySignals(context.Background(), cfg)
	defer stop()
	if isClosed(shutdown) || isClosed(ctx.Done()) {
		t.Fatal("ended before any signal")
	}
	// Real signals to the test process, which NotifySignals catches.
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, shutdown, "shutdown after SIGTERM")
	if isClosed(ctx.Done()) {
		t.Fatal("SIGTERM ended ctx although graceful node shutdown is configured")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ctx.Done(), "ctx after SIGINT")
}

// With graceful node shutdown withLogind starts the logind watcher with
// the total grace period; its Drain asks for the same shutdown SIGTERM
// asks for and returns once Run says the drain is over. Without the
// feature nothing is started and SIGTERM's channel is Run's.
func TestWithLogind(t *testing.T) {
	t.Run("off", func(t *testing.T) {
		sigterm := make(chan struct{})
		shutdown, drained := withLogind(context.Background(), &kubeletconfigv1beta1.KubeletConfiguration{}, sigterm,
			func(context.Context, logind.Config) { t.Error("logind watched without graceful node shutdown") })
		drained()
		if shutdown != (<-chan struct{})(sigterm) {
			t.Error("shutdown is not SIGTERM's channel")
		}
	})

	cfg := &kubeletconfigv1beta1.KubeletConfiguration{}
	cfg.ShutdownGracePeriod = metav1.Duration{Duration: 30 * time.Second}
	cfg.ShutdownGracePeriodCriticalPods = metav1.Duration{Duration: 10 * time.Second}
	start := func(t *testing.T) (sigterm chan struct{}, shutdown <-chan struct{}, drained func(), watched logind.Config) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		sigterm = make(chan struct{})
		cfgs := make(chan logind.Config, 1)
		shutdown, drained = withLogind(ctx, cfg, sigterm, func(_ context.Context, c logind.Config) { cfgs <- c })
		select {
		case watched = <-cfgs:
		case <-time.After(5 * time.Second):
			t.Fatal("logind not watched")
		}
		if watched.GracePeriod != 30*time.Second {
			t.Errorf("GracePeriod %v, want 30s", watched.GracePeriod)
		}
		return sigterm, shutdown, drained, watched
	}

	t.Run("logind", func(t *testing.T) {
		sigterm, shutdown, drained, watched := start(t)
		over := make(chan struct{})
		go func() {
			defer close(over)
			watched.Drain(context.Background())
		}()
		waitClosed(t, shutdown, "shutdown after PrepareForShutdown")
		if isClosed(over) {
			t.Fatal("Drain returned before the drain was over")
		}
		close(sigterm) // SIGTERM during the drain: the same shutdown
		drained()
		drained() // once is enough, twice does no harm
		waitClosed(t, over, "Drain after drained")
	})

	t.Run("SIGTERM, then logind", func(t *testing.T) {
		sigterm, shutdown, drained, watched := start(t)
		close(sigterm)
		waitClosed(t, shutdown, "shutdown after SIGTERM")
		drained()
		// logind's announcement after the drain: nothing more to wait for.
		over := make(chan struct{})
		go func() {
			defer close(over)
			watched.Drain(context.Background())
		}()
		waitClosed(t, over, "Drain after the drain")
	})

	t.Run("stopped during the drain", func(t *testing.T) {
		_, shutdown, _, watched := start(t)
		ctx, cancel := context.WithCancel(context.Background())
		over := make(chan struct{})
		go func() {
			defer close(over)
			watched.Drain(ctx)
		}()
		waitClosed(t, shutdown, "shutdown after PrepareForShutdown")
		cancel()
		waitClosed(t, over, "Drain after its context ended")
	})
}
