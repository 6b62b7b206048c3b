package logind

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"
	"k8s.io/klog/v2"
)

// logind's and systemd's names on the bus.
const (
	service            = "org.freedesktop.login1"
	objectPath         = dbus.ObjectPath("/org/freedesktop/login1")
	managerIface       = "org.freedesktop.login1.Manager"
	prepareForShutdown = "PrepareForShutdown"
	delayProperty      = "InhibitDelayMaxUSec"

	systemdService = "org.freedesktop.systemd1"
	systemdPath    = dbus.ObjectPath("/org/freedesktop/systemd1")
	systemdIface   = "org.freedesktop.systemd1.Manager"
	logindUnit     = "systemd-logind.service"
)

// The lock's who and why, as `systemd-inhibit --list` shows them.
const (
	lockWho = "nodeagent"
	lockWhy = "nodeagent terminates the node's pods before the machine shuts down (graceful node shutdown)"
)

// Waits between two tries once logind was reached.
const (
	retryFirst = time.Second
	retryMax   = 30 * time.Second
)

// Config wires Run.
type Config struct {
	// GracePeriod is the time a drain takes at most (nodeshutdown.Period):
	// logind's InhibitDelayMaxUSec is raised to it.
	GracePeriod time.Duration
	// Drain drains the node and returns once the drain is over, or when
	// ctx ends; the inhibitor lock is released then.
	Drain func(ctx context.Context)
	// Connect opens a private connection to the system bus, which Run
	// closes; nil for dbus.ConnectSystemBus.
	Connect func() (*dbus.Conn, error)
	// DropInDir is logind's drop-in directory; "" for DropInDir.
	DropInDir string
}

// Run watches logind for shutdowns until ctx ends, as the package
// documentation tells, and returns at once when there is no logind.
func Run(ctx context.Context, cfg Config) {
	if cfg.Connect == nil {
		cfg.Connect = func() (*dbus.Conn, error) { return dbus.ConnectSystemBus() }
	}
	if cfg.DropInDir == "" {
		cfg.DropInDir = DropInDir
	}
	logger := klog.FromContext(ctx).WithName("logind")
	ctx = klog.NewContext(ctx, logger)
	w := &watcher{cfg: cfg}
	for wait := retryFirst; ; {
		held, err := w.session(ctx)
		if ctx.Err() != nil {
			return
		}
		var absent *absentError
		if !w.reached && errors.As(err, &absent) {
			logger.Info("No systemd-logind to watch: only SIGTERM triggers graceful node shutdown", "reason", err)
			return
		}
		if held {
			wait = retryFirst
		}
		logger.Error(err, "Watching systemd-logind for shutdowns failed: starting over", "retryAfter", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
}

// absentError says that there is no system bus or no logind on it.
type absentError struct{ err error }

func (e *absentError) Error() string { return e.err.Error() }
func (e *absentError) Unwrap() error { return e.err }

// watcher is Run's state across sessions.
type watcher struct {
	cfg Config
	// reached is set once logind answered: from then on its absence is
	// an error, tried again.
	reached bool
}

// session connects to the bus, makes sure of the delay, takes the lock
// and handles logind's signals until ctx ends or something fails; held
// says whether it got as far as holding the lock.
func (w *watcher) session(ctx context.Context) (held bool, err error) {
	logger := klog.FromContext(ctx)
	conn, err := w.cfg.Connect()
	if err != nil {
		return false, &absentError{fmt.Errorf("connect to the system bus: %w", err)}
	}
	defer func() { _ = conn.Close() }()
	s := &session{conn: conn, logind: conn.Object(service, objectPath)}
	was, err := s.inhibitDelayMax(ctx)
	if err != nil {
		var dbusErr dbus.Error
		if errors.As(err, &dbusErr) && (dbusErr.Name == "org.freedesktop.DBus.Error.ServiceUnknown" || dbusErr.Name == "org.freedesktop.DBus.Error.NameHasNoOwner") {
			return false, &absentError{err}
		}
		return false, err
	}
	w.reached = true
	if err := ensureDelay(ctx, s, was, w.cfg.GracePeriod, w.cfg.DropInDir); err != nil {
		logger.Error(err, "logind may cut the node's drain short: its InhibitDelayMaxUSec stays below the shutdown grace period", "gracePeriod", w.cfg.GracePeriod)
	}

	// Subscribe before taking the lock, so that no PrepareForShutdown
	// goes unseen. The sender in the match rule keeps out what others
	// broadcast; prepareForShutdown checks the sender of the rest.
	sigs := make(chan *dbus.Signal, 16)
	conn.Signal(sigs)
	if err := conn.AddMatchSignalContext(ctx, dbus.WithMatchSender(service), dbus.WithMatchObjectPath(objectPath),
		dbus.WithMatchInterface(managerIface), dbus.WithMatchMember(prepareForShutdown)); err != nil {
		return false, fmt.Errorf("subscribe to logind's %s: %w", prepareForShutdown, err)
	}
	lock, err := s.inhibit(ctx)
	if err != nil {
		return false, err
	}
	defer func() { lock.release(ctx) }()
	logger.Info("Watching systemd-logind for shutdowns: holding a delay inhibitor lock", "gracePeriod", w.cfg.GracePeriod)
	for {
		select {
		case <-ctx.Done():
			return true, nil
		case sig, ok := <-sigs:
			if !ok {
				return true, errors.New("the connection to the system bus was closed")
			}
			active, ok := s.prepareForShutdown(ctx, sig)
			switch {
			case !ok:
			case active:
				logger.Info("systemd-logind announces a shutdown: draining the node")
				w.cfg.Drain(ctx)
				lock.release(ctx)
				logger.Info("Drain over: released logind's inhibitor lock, the shutdown goes on")
			default:
				logger.Info("systemd-logind cancelled the shutdown: taking its inhibitor lock again")
				next, err := s.inhibit(ctx)
				if err != nil {
					return true, err
				}
				lock.release(ctx)
				lock = next
			}
		}
	}
}

// session is one connection to the bus.
type session struct {
	conn   *dbus.Conn
	logind dbus.BusObject
}

var _ delayConfig = (*session)(nil)

// inhibitDelayMax reads logind's InhibitDelayMaxUSec.
func (s *session) inhibitDelayMax(ctx context.Context) (time.Duration, error) {
	var v dbus.Variant
	if err := s.logind.CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, managerIface, delayProperty).Store(&v); err != nil {
		return 0, fmt.Errorf("read logind's %s: %w", delayProperty, err)
	}
	usec, ok := v.Value().(uint64)
	if !ok {
		return 0, fmt.Errorf("logind's %s is %s, not a uint64", delayProperty, v.Signature())
	}
	return usecDuration(usec), nil
}

// usecDuration converts microseconds to a Duration, systemd's infinity
// (the largest uint64) and whatever else does not fit to the largest
// Duration.
func usecDuration(usec uint64) time.Duration {
	if usec > uint64(math.MaxInt64/int64(time.Microsecond)) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(usec) * time.Microsecond
}

// reload asks systemd to send logind SIGHUP, on which it reads its
// configuration again (the kubelet's ReloadLogindConf).
func (s *session) reload(ctx context.Context) error {
	err := s.conn.Object(systemdService, systemdPath).CallWithContext(ctx, systemdIface+".KillUnit", 0, logindUnit, "main", int32(syscall.SIGHUP)).Err
	if err != nil {
		return fmt.Errorf("send %s SIGHUP through systemd: %w", logindUnit, err)
	}
	return nil
}

// inhibit takes a delay inhibitor lock on shutdown.
func (s *session) inhibit(ctx context.Context) (*lock, error) {
	if !s.conn.SupportsUnixFDs() {
		return nil, errors.New("take logind's inhibitor lock: the bus connection cannot pass file descriptors")
	}
	var fd dbus.UnixFD
	if err := s.logind.CallWithContext(ctx, managerIface+".Inhibit", 0, "shutdown", lockWho, lockWhy, "delay").Store(&fd); err != nil {
		return nil, fmt.Errorf("take logind's inhibitor lock: %w", err)
	}
	return &lock{f: os.NewFile(uintptr(fd), "logind-inhibitor")}, nil
}

// prepareForShutdown reads logind's PrepareForShutdown signal: active is
// its argument, true for a shutdown and false for a cancelled one; ok is
// false for any other signal, and for one that logind did not send.
func (s *session) prepareForShutdown(ctx context.Context, sig *dbus.Signal) (active, ok bool) {
	if sig.Path != objectPath || sig.Name != managerIface+"."+prepareForShutdown {
		return false, false // the bus's NameAcquired and the like
	}
	logger := klog.FromContext(ctx)
	var owner string
	if err := s.conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.GetNameOwner", 0, service).Store(&owner); err != nil {
		logger.Error(err, "Ignoring a PrepareForShutdown signal: cannot tell whether logind sent it", "sender", sig.Sender)
		return false, false
	}
	if owner != sig.Sender {
		logger.Info("Ignoring a PrepareForShutdown signal that logind did not send", "sender", sig.Sender, "logind", owner)
		return false, false
	}
	if len(sig.Body) != 1 {
		logger.Error(nil, "Ignoring a PrepareForShutdown signal without its one argument", "body", sig.Body)
		return false, false
	}
	active, ok = sig.Body[0].(bool)
	if !ok {
		logger.Error(nil, "Ignoring a PrepareForShutdown signal whose argument is not a boolean", "body", sig.Body)
	}
	return active, ok
}

// lock is a held inhibitor lock: logind delays a shutdown until it is
// closed.
type lock struct{ f *os.File }

// release closes the lock, if still held.
func (l *lock) release(ctx context.Context) {
	if l.f == nil {
		return
	}
	if err := l.f.Close(); err != nil {
		klog.FromContext(ctx).Error(err, "Closing logind's inhibitor lock")
	}
	l.f = nil
}
