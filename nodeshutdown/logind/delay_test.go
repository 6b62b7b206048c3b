package logind

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/klog/v2/ktesting"
)

// fakeDelay is a logind whose InhibitDelayMaxUSec becomes after once it
// was reloaded (unless reloadErr).
type fakeDelay struct {
	after     time.Duration
	reloadErr error
	readErr   error
	reloads   int
}

func (f *fakeDelay) inhibitDelayMax(context.Context) (time.Duration, error) {
	return f.after, f.readErr
}

func (f *fakeDelay) reload(context.Context) error {
	f.reloads++
	return f.reloadErr
}

func shortPolls(t *testing.T) {
	old := reloadPolls
	reloadPolls = []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond}
	t.Cleanup(func() { reloadPolls = old })
}

var _ delayConfig = (*fakeDelay)(nil)

func TestEnsureDelay(t *testing.T) {
	shortPolls(t)
	for _, tc := range []struct {
		name        string
		was, want   time.Duration
		logind      fakeDelay
		readOnlyDir bool
		// The outcome: an error containing errText, or none; the drop-in
		// written (with that many seconds) or not; reloads asked for.
		errText    string
		dropInSecs string
		reloads    int
	}{
		{name: "long enough", was: 60 * time.Second, want: 30 * time.Second},
		{name: "exactly enough", was: 30 * time.Second, want: 30 * time.Second},
		{name: "infinite", was: usecDuration(math.MaxUint64), want: time.Hour},
		{name: "nothing to wait for", was: 0, want: 0},
		{name: "raised", was: 5 * time.Second, want: 30 * time.Second,
			logind: fakeDelay{after: 30 * time.Second}, dropInSecs: "30", reloads: 1},
		{name: "raised, rounded up", was: 5 * time.Second, want: 30500 * time.Millisecond,
			logind: fakeDelay{after: 31 * time.Second}, dropInSecs: "31", reloads: 1},
		{name: "logind keeps its value", was: 5 * time.Second, want: 30 * time.Second,
			logind: fakeDelay{after: 5 * time.Second}, dropInSecs: "30", reloads: 1, errText: "still 5s"},
		{name: "no systemd to reload logind", was: 5 * time.Second, want: 30 * time.Second,
			logind: fakeDelay{after: 5 * time.Second, reloadErr: errors.New("no systemd1")}, dropInSecs: "30", reloads: 1, errText: "no systemd1"},
		{name: "logind gone after the reload", was: 5 * time.Second, want: 30 * time.Second,
			logind: fakeDelay{readErr: errors.New("gone")}, dropInSecs: "30", reloads: 1, errText: "gone"},
		{name: "read-only /etc", was: 5 * time.Second, want: 30 * time.Second, readOnlyDir: true, errText: "InhibitDelayMaxUSec is 5s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			dir := filepath.Join(t.TempDir(), "logind.conf.d")
			if tc.readOnlyDir {
				// A file where the directory should be: fails even as root.
				dir = filepath.Join(t.TempDir(), "file")
				if err := os.WriteFile(dir, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := ensureDelay(ctx, &tc.logind, tc.was, tc.want, dir)
			switch {
			case tc.errText == "" && err != nil:
				t.Errorf("ensureDelay: %v", err)
			case tc.errText != "" && (err == nil || !strings.Contains(err.Error(), tc.errText)):
				t.Errorf("ensureDelay = %v, want an error with %q", err, tc.errText)
			}
			if tc.logind.reloads != tc.reloads {
				t.Errorf("%d reloads, want %d", tc.logind.reloads, tc.reloads)
			}
			data, err := os.ReadFile(filepath.Join(dir, DropInFile))
			if tc.dropInSecs == "" {
				if err == nil {
					t.Errorf("drop-in written: %s", data)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := "\n[Login]\nInhibitDelayMaxSec=" + tc.dropInSecs + "\n"; !strings.HasSuffix(string(data), want) {
				t.Errorf("drop-in:\n%s\nwant it to end with:%s", data, want)
			}
		})
	}
}

func TestUsecDuration(t *testing.T) {
	for _, tc := range []struct {
		usec uint64
		want time.Duration
	}{
		{0, 0},
		{5000000, 5 * time.Second}, // logind's default, 5 s
		{math.MaxInt64 / 1000, time.Duration(math.MaxInt64/1000) * time.Microsecond},
		{math.MaxInt64/1000 + 1, math.MaxInt64},
		{math.MaxUint64, math.MaxInt64}, // systemd's infinity
	} {
		if got := usecDuration(tc.usec); got != tc.want {
			t.Errorf("usecDuration(%d) = %v, want %v", tc.usec, got, tc.want)
		}
	}
}

// A cancelled context stops the wait for logind's reload.
func TestEnsureDelayCancelled(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	err := ensureDelay(ctx, &fakeDelay{after: time.Second}, time.Second, time.Minute, t.TempDir())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("ensureDelay = %v, want context.Canceled", err)
	}
}
