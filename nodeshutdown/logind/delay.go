package logind

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/klog/v2"
)

// Where the drop-in raising logind's InhibitDelayMaxSec goes
// (logind.conf(5)): DropInDir is Config.DropInDir's default.
const (
	DropInDir  = "/etc/systemd/logind.conf.d"
	DropInFile = "99-nodeagent.conf"
)

// reloadPolls are the waits before each read of InhibitDelayMaxUSec after
// logind was asked to reload, as the kubelet's backoff (100 ms doubling, 5
// reads, about 3 s in all). Tests shorten them.
var reloadPolls = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond}

// delayConfig is what ensureDelay needs of logind; the session implements
// it over D-Bus.
type delayConfig interface {
	// inhibitDelayMax reads logind's InhibitDelayMaxUSec.
	inhibitDelayMax(ctx context.Context) (time.Duration, error)
	// reload makes logind read its configuration again.
	reload(ctx context.Context) error
}

// ensureDelay makes sure that logind, whose InhibitDelayMaxUSec is was,
// lets a delay lock hold a shutdown back for at least want, as the package
// documentation tells, and logs what it did. An error says why the delay
// stays shorter than want.
func ensureDelay(ctx context.Context, logind delayConfig, was, want time.Duration, dir string) error {
	logger := klog.FromContext(ctx)
	if was >= want {
		logger.Info("logind's InhibitDelayMaxUSec covers the shutdown grace period: left as it is", "inhibitDelayMax", was, "gracePeriod", want)
		return nil
	}
	path := filepath.Join(dir, DropInFile)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("InhibitDelayMaxUSec is %v: create %s: %w", was, dir, err)
	}
	if err := os.WriteFile(path, []byte(dropIn(want)), 0o644); err != nil {
		return fmt.Errorf("InhibitDelayMaxUSec is %v: write the drop-in: %w", was, err)
	}
	if err := logind.reload(ctx); err != nil {
		return fmt.Errorf("InhibitDelayMaxUSec is %v: wrote %s, but logind was not reloaded: %w", was, path, err)
	}
	now := was
	var err error
	for _, wait := range reloadPolls {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		if now, err = logind.inhibitDelayMax(ctx); err != nil {
			return err
		}
		if now >= want {
			logger.Info("Raised logind's InhibitDelayMaxSec to the shutdown grace period: wrote a drop-in and reloaded logind",
				"file", path, "was", was, "inhibitDelayMax", now, "gracePeriod", want)
			return nil
		}
	}
	return fmt.Errorf("wrote %s and reloaded logind, but its InhibitDelayMaxUSec is still %v (was %v): a drop-in sorting after it, or a logind that does not reload on SIGHUP?", path, now, was)
}

// dropIn is the drop-in that sets InhibitDelayMaxSec to want in whole
// seconds, rounded up.
func dropIn(want time.Duration) string {
	return fmt.Sprintf(`# Written by nodeagent (graceful node shutdown): logind must let its delay
# inhibitor lock hold a shutdown back for the node's shutdown grace period.
[Login]
InhibitDelayMaxSec=%d
`, (want+time.Second-1)/time.Second)
}
