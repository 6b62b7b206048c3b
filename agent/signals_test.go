package agent

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
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
