package logind

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
)

// These tests run a private dbus-daemon (Debian package dbus-daemon) with
// a session-style configuration on a socket of their own, a fake logind
// (and systemd, for the reload) exported on it by the test, and Run
// connected to that bus. No root, no systemd.

const timeout = 10 * time.Second

// startBus starts a dbus-daemon and returns its address and a function
// that kills it; the test skips when there is no dbus-daemon.
func startBus(t *testing.T) (addr string, kill func()) {
	t.Helper()
	bin, err := exec.LookPath("dbus-daemon")
	if err != nil {
		t.Skipf("no dbus-daemon to run a private bus on (apt-get install dbus-daemon): %v", err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, []byte(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=`+filepath.Join(dir, "bus")+`</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config-file="+conf, "--nofork", "--nopidfile", "--print-address")
	cmd.Stderr = testWriter{t} // its warnings, such as the fd limit it may not raise
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Skipf("dbus-daemon does not start: %v", err)
	}
	var once sync.Once
	kill = func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
	t.Cleanup(kill)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon printed no address: %v", err)
	}
	return strings.TrimSpace(line), kill
}

// testWriter logs what is written to it in the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// fakeLogind is logind's Manager (Inhibit, InhibitDelayMaxUSec,
// PrepareForShutdown) and systemd's KillUnit, which makes it read the
// drop-in as logind reads its configuration on SIGHUP.
type fakeLogind struct {
	conn      *dbus.Conn
	dropInDir string
	locks     chan *fakeLock

	mu    sync.Mutex
	delay time.Duration
	// ignoreReload makes KillUnit leave the delay as it is.
	ignoreReload bool
	reloads      int
}

// fakeLock is a lock the fake handed out: the write end of a pipe, as
// logind's fifo.
type fakeLock struct {
	what, who, why, mode string
	sender               dbus.Sender
	// w is the fake's own copy of the end handed out; the test closes it
	// once the watcher surely has received its copy (the fake cannot know
	// when the reply has gone out).
	w *os.File
	// released is closed once every copy of w is closed.
	released chan struct{}
}

func newFakeLogind(t *testing.T, addr string, delay time.Duration, dropInDir string) *fakeLogind {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	f := &fakeLogind{conn: conn, dropInDir: dropInDir, delay: delay, locks: make(chan *fakeLock, 10)}
	for _, e := range []struct {
		v     any
		path  dbus.ObjectPath
		iface string
	}{
		{fakeManager{f}, objectPath, managerIface},
		{fakeProperties{f}, objectPath, "org.freedesktop.DBus.Properties"},
		{fakeSystemd{f}, systemdPath, systemdIface},
	} {
		if err := conn.Export(e.v, e.path, e.iface); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{service, systemdService} {
		if reply, err := conn.RequestName(name, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
			t.Fatalf("own %s: %v, %v", name, reply, err)
		}
	}
	return f
}

type fakeManager struct{ f *fakeLogind }

func (m fakeManager) Inhibit(sender dbus.Sender, what, who, why, mode string) (dbus.UnixFD, *dbus.Error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, dbus.MakeFailedError(err)
	}
	l := &fakeLock{what: what, who: who, why: why, mode: mode, sender: sender, w: w, released: make(chan struct{})}
	go func() {
		_, _ = io.Copy(io.Discard, r) // EOF once every write end is closed
		_ = r.Close()
		close(l.released)
	}()
	fd := dbus.UnixFD(w.Fd()) // before the test may close w
	m.f.locks <- l
	return fd, nil
}

type fakeProperties struct{ f *fakeLogind }

func (p fakeProperties) Get(iface, name string) (dbus.Variant, *dbus.Error) {
	if iface != managerIface || name != delayProperty {
		return dbus.Variant{}, dbus.NewError("org.freedesktop.DBus.Error.UnknownProperty", []any{iface + "." + name})
	}
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	return dbus.MakeVariant(uint64(p.f.delay / time.Microsecond)), nil
}

type fakeSystemd struct{ f *fakeLogind }

var delayLine = regexp.MustCompile(`(?m)^InhibitDelayMaxSec=(\d+)$`)

func (s fakeSystemd) KillUnit(unit, who string, signal int32) *dbus.Error {
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloads++
	if unit != logindUnit || signal != 1 || f.ignoreReload {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(f.dropInDir, DropInFile))
	if err != nil {
		return dbus.MakeFailedError(err)
	}
	if m := delayLine.FindSubmatch(data); m != nil {
		secs, _ := strconv.Atoi(string(m[1]))
		f.delay = time.Duration(secs) * time.Second
	}
	return nil
}

func (f *fakeLogind) emit(t *testing.T, active bool) {
	t.Helper()
	if err := f.conn.Emit(objectPath, managerIface+"."+prepareForShutdown, active); err != nil {
		t.Fatal(err)
	}
}

// nextLock waits for the watcher to take a lock.
func (f *fakeLogind) nextLock(t *testing.T) *fakeLock {
	t.Helper()
	select {
	case l := <-f.locks:
		return l
	case <-time.After(timeout):
		t.Fatal("no inhibitor lock taken")
		return nil
	}
}

func (f *fakeLogind) noMoreLocks(t *testing.T) {
	t.Helper()
	select {
	case l := <-f.locks:
		t.Errorf("another lock taken: %+v", l)
	default:
	}
}

// held checks that the watcher still holds l, whose fake's copy is
// closed: the pipe sees no EOF for a while.
func held(t *testing.T, l *fakeLock) {
	t.Helper()
	select {
	case <-l.released:
		t.Error("the inhibitor lock was released too early")
	case <-time.After(200 * time.Millisecond):
	}
}

func released(t *testing.T, l *fakeLock) {
	t.Helper()
	select {
	case <-l.released:
	case <-time.After(timeout):
		t.Fatal("the inhibitor lock was not released")
	}
}

// drainer is a Drain that the test drives: each drain announces itself
// on started and returns once the test sends on finish.
type drainer struct {
	started, finish chan struct{}
	count           atomic.Int32
}

func newDrainer() *drainer {
	return &drainer{started: make(chan struct{}), finish: make(chan struct{})}
}

func (d *drainer) drain(ctx context.Context) {
	d.count.Add(1)
	select {
	case d.started <- struct{}{}:
	case <-ctx.Done():
		return
	}
	select {
	case <-d.finish:
	case <-ctx.Done():
	}
}

// drainHolding waits for a drain, checks that lock l is held during it,
// ends it and checks that l is released then.
func (d *drainer) drainHolding(t *testing.T, l *fakeLock) {
	t.Helper()
	select {
	case <-d.started:
	case <-time.After(timeout):
		t.Fatal("no drain")
	}
	// The watcher is draining, so it has received its copy of the lock
	// long ago: the fake's copy can go.
	_ = l.w.Close()
	held(t, l)
	d.finish <- struct{}{}
	released(t, l)
}

// startRun runs Run on the bus at *addr and returns a function that stops
// it and waits until it has returned.
func startRun(t *testing.T, ctx context.Context, cfg Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, cfg)
	}()
	stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(timeout):
			t.Fatal("Run did not return")
		}
	}
	t.Cleanup(stop)
	return stop
}

func connectTo(addr string) func() (*dbus.Conn, error) {
	return func() (*dbus.Conn, error) { return dbus.Connect(addr) }
}

// The whole cycle: the lock taken at start; PrepareForShutdown(true)
// drains the node with the lock held and releases it after the drain;
// PrepareForShutdown(false) takes it again (a new one in place of one
// still held), and the drain of the next shutdown holds that one; stopping
// releases it.
func TestShutdownCycle(t *testing.T) {
	addr, _ := startBus(t)
	_, ctx := ktesting.NewTestContext(t)
	fake := newFakeLogind(t, addr, 60*time.Second, t.TempDir())
	d := newDrainer()
	stop := startRun(t, ctx, Config{GracePeriod: 30 * time.Second, Drain: d.drain, Connect: connectTo(addr), DropInDir: fake.dropInDir})

	lock1 := fake.nextLock(t)
	if lock1.what != "shutdown" || lock1.mode != "delay" || lock1.who != "nodeagent" || lock1.why == "" {
		t.Errorf("lock taken: what %q, who %q, why %q, mode %q", lock1.what, lock1.who, lock1.why, lock1.mode)
	}
	fake.emit(t, true)
	d.drainHolding(t, lock1)

	fake.emit(t, false) // the shutdown was cancelled
	lock2 := fake.nextLock(t)
	fake.emit(t, false) // again, with lock2 held: a new lock, lock2 released
	lock3 := fake.nextLock(t)
	_ = lock2.w.Close() // the watcher received lock2 before it asked for lock3
	released(t, lock2)

	fake.emit(t, true)
	d.drainHolding(t, lock3)

	// Once the watcher has released lock4 it surely holds lock5 (had it
	// been stopped while it waited for it, the reply and its fd would be
	// dropped, and lock5 would stay open until the process ends).
	fake.emit(t, false)
	lock4 := fake.nextLock(t)
	fake.emit(t, false)
	lock5 := fake.nextLock(t)
	_ = lock4.w.Close()
	released(t, lock4)
	stop()
	_ = lock5.w.Close()
	released(t, lock5)
	fake.noMoreLocks(t)
	if n := d.count.Load(); n != 2 {
		t.Errorf("%d drains, want 2", n)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.reloads != 0 {
		t.Errorf("logind reloaded %d times although its delay was long enough", fake.reloads)
	}
	if _, err := os.Stat(filepath.Join(fake.dropInDir, DropInFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("drop-in written although logind's delay was long enough: %v", err)
	}
}

// A PrepareForShutdown that logind did not send, broadcast or sent to the
// watcher alone, drains nothing.
func TestIgnoresOthersSignals(t *testing.T) {
	addr, _ := startBus(t)
	_, ctx := ktesting.NewTestContext(t)
	fake := newFakeLogind(t, addr, 60*time.Second, t.TempDir())
	d := newDrainer()
	startRun(t, ctx, Config{GracePeriod: 30 * time.Second, Drain: d.drain, Connect: connectTo(addr), DropInDir: fake.dropInDir})
	lock1 := fake.nextLock(t)

	spoofer, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = spoofer.Close() }()
	if err := spoofer.Emit(objectPath, managerIface+"."+prepareForShutdown, true); err != nil {
		t.Fatal(err)
	}
	msg := &dbus.Message{Type: dbus.TypeSignal, Headers: map[dbus.HeaderField]dbus.Variant{
		dbus.FieldPath:        dbus.MakeVariant(objectPath),
		dbus.FieldInterface:   dbus.MakeVariant(managerIface),
		dbus.FieldMember:      dbus.MakeVariant(prepareForShutdown),
		dbus.FieldDestination: dbus.MakeVariant(string(lock1.sender)),
		dbus.FieldSignature:   dbus.MakeVariant(dbus.SignatureOf(true)),
	}, Body: []any{true}}
	if call := spoofer.Send(msg, nil); call.Err != nil {
		t.Fatal(call.Err)
	}
	// A round trip: the bus has routed the spoofer's signals before it
	// answers, so the watcher gets them before logind's next signal.
	var id string
	if err := spoofer.BusObject().Call("org.freedesktop.DBus.GetId", 0).Store(&id); err != nil {
		t.Fatal(err)
	}
	fake.emit(t, false)
	fake.nextLock(t) // the watcher has handled the spoofed signals
	if n := d.count.Load(); n != 0 {
		t.Errorf("%d drains on signals logind did not send", n)
	}
}

// A delay shorter than the grace period: the drop-in is written, logind
// reloaded, and the lock taken.
func TestRaisesDelay(t *testing.T) {
	addr, _ := startBus(t)
	_, ctx := ktesting.NewTestContext(t)
	dropIns := filepath.Join(t.TempDir(), "logind.conf.d")
	fake := newFakeLogind(t, addr, 5*time.Second, dropIns)
	startRun(t, ctx, Config{GracePeriod: 90 * time.Second, Drain: newDrainer().drain, Connect: connectTo(addr), DropInDir: dropIns})
	fake.nextLock(t)
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.delay != 90*time.Second || fake.reloads != 1 {
		t.Errorf("logind's delay %v after %d reloads, want 1m30s after 1", fake.delay, fake.reloads)
	}
}

// A logind that keeps its short delay: the lock is taken all the same.
func TestLocksWithShortDelay(t *testing.T) {
	shortPolls(t)
	addr, _ := startBus(t)
	logger, ctx := bufferedContext(t)
	fake := newFakeLogind(t, addr, 5*time.Second, t.TempDir())
	fake.mu.Lock()
	fake.ignoreReload = true
	fake.mu.Unlock()
	startRun(t, ctx, Config{GracePeriod: 90 * time.Second, Drain: newDrainer().drain, Connect: connectTo(addr), DropInDir: fake.dropInDir})
	fake.nextLock(t)
	if log := logBuffer(logger); !strings.Contains(log, "logind may cut the node's drain short") {
		t.Errorf("no error logged about the short delay:\n%s", log)
	}
}

// Without a bus or without logind on it, Run logs once that only SIGTERM
// drains the node, and returns.
func TestNoLogind(t *testing.T) {
	for _, tc := range []struct {
		name    string
		connect func(t *testing.T) func() (*dbus.Conn, error)
	}{
		{"no bus", func(t *testing.T) func() (*dbus.Conn, error) {
			return connectTo("unix:path=" + filepath.Join(t.TempDir(), "none"))
		}},
		{"no logind on the bus", func(t *testing.T) func() (*dbus.Conn, error) {
			addr, _ := startBus(t)
			return connectTo(addr)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logger, ctx := bufferedContext(t)
			done := make(chan struct{})
			go func() {
				defer close(done)
				Run(ctx, Config{GracePeriod: time.Minute, Drain: newDrainer().drain, Connect: tc.connect(t), DropInDir: t.TempDir()})
			}()
			select {
			case <-done:
			case <-time.After(timeout):
				t.Fatal("Run did not return")
			}
			if n := strings.Count(logBuffer(logger), "only SIGTERM triggers graceful node shutdown"); n != 1 {
				t.Errorf("logged %d times that only SIGTERM triggers the drain, want once", n)
			}
		})
	}
}

// When the bus goes away, Run connects again and takes a new lock.
func TestReconnects(t *testing.T) {
	addr1, kill1 := startBus(t)
	addr2, _ := startBus(t)
	_, ctx := ktesting.NewTestContext(t)
	var addr atomic.Value
	addr.Store(addr1)
	fake1 := newFakeLogind(t, addr1, time.Minute, t.TempDir())
	d := newDrainer()
	startRun(t, ctx, Config{GracePeriod: 30 * time.Second, Drain: d.drain, DropInDir: t.TempDir(),
		Connect: func() (*dbus.Conn, error) { return dbus.Connect(addr.Load().(string)) }})
	lock1 := fake1.nextLock(t)
	fake1.emit(t, false)
	lock2 := fake1.nextLock(t)
	_ = lock1.w.Close()
	released(t, lock1) // so the watcher holds lock2

	fake2 := newFakeLogind(t, addr2, time.Minute, t.TempDir())
	addr.Store(addr2)
	kill1()
	_ = lock2.w.Close()
	released(t, lock2) // the session ended with the bus
	lock3 := fake2.nextLock(t)
	fake2.emit(t, true)
	d.drainHolding(t, lock3)
}

// bufferedContext is ktesting.NewTestContext with a logger that also
// keeps what it logs, for logBuffer.
func bufferedContext(t *testing.T) (klog.Logger, context.Context) {
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.BufferLogs(true)))
	return logger, klog.NewContext(context.Background(), logger)
}

// logBuffer is what a logger of bufferedContext has logged.
func logBuffer(logger klog.Logger) string {
	return logger.GetSink().(ktesting.Underlier).GetBuffer().String()
}
