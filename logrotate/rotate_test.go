package logrotate

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critesting "k8s.io/cri-api/pkg/apis/testing"
	crilogs "k8s.io/cri-client/pkg/logs"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/nodeagent/nodeagent/cri"
)

var _ Runtime = (*critesting.FakeRuntimeService)(nil)

// reopeningRuntime creates the log file on ReopenContainerLog, as a
// runtime does.
type reopeningRuntime struct {
	*critesting.FakeRuntimeService
}

func (r reopeningRuntime) ReopenContainerLog(ctx context.Context, id string) error {
	if err := r.FakeRuntimeService.ReopenContainerLog(ctx, id); err != nil {
		return err
	}
	st, err := r.ContainerStatus(ctx, id, false)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(st.GetStatus().GetLogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	return f.Close()
}

type env struct {
	m     *Manager
	rt    reopeningRuntime
	clock *testingclock.FakeClock
	dir   string // the container's log directory
	path  string // its current log
}

var start = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// newEnv has one running managed container c1 logging to
// <logs>/ns_pod_uid/c1/0.log, with limits of 10 bytes and maxFiles.
func newEnv(t *testing.T, maxFiles int) *env {
	t.Helper()
	logs := t.TempDir()
	dir := filepath.Join(logs, "ns_pod_uid", "c1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	e := &env{rt: reopeningRuntime{critesting.NewFakeRuntimeService()}, clock: testingclock.NewFakeClock(start), dir: dir, path: filepath.Join(dir, "0.log")}
	e.addContainer("c1", runtimeapi.ContainerState_CONTAINER_RUNNING, true, e.path)
	m, err := New(e.rt, Config{MaxSize: "10", MaxFiles: maxFiles, PodLogsDir: logs}, e.clock)
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	return e
}

func (e *env) addContainer(id string, state runtimeapi.ContainerState, managed bool, logPath string) {
	labels := cri.ContainerLabels("pod", "ns", "uid", id)
	if !managed {
		delete(labels, cri.ManagedLabel)
	}
	e.rt.Lock()
	defer e.rt.Unlock()
	e.rt.Containers[id] = &critesting.FakeContainer{ContainerStatus: runtimeapi.ContainerStatus{
		Id: id, Metadata: &runtimeapi.ContainerMetadata{Name: id}, State: state, LogPath: logPath, Labels: labels,
	}}
}

func (e *env) write(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// files lists the log directory, names only.
func (e *env) files(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, en := range entries {
		out = append(out, en.Name())
	}
	sort.Strings(out)
	return out
}

func (e *env) rotate(t *testing.T) {
	t.Helper()
	if err := e.m.RotateOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(path, ".gz") {
		r, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if b, err = io.ReadAll(r); err != nil {
			t.Fatal(err)
		}
	}
	return string(b)
}

func equal(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

func TestRotationSequence(t *testing.T) {
	e := newEnv(t, 3)
	e.write(t, e.path, "short\n")
	e.rotate(t)
	if got := e.files(t); !equal(got, []string{"0.log"}) || e.rt.Called[len(e.rt.Called)-1] == "ReopenContainerLog" {
		t.Fatalf("below the limit: %v, calls %v", got, e.rt.Called)
	}

	// Reaching the limit: renamed with the time, reopened.
	e.write(t, e.path, "first-round\n")
	e.rotate(t)
	t1 := "0.log.20240506-070809"
	if got := e.files(t); !equal(got, []string{"0.log", t1}) {
		t.Fatalf("after the first rotation: %v", got)
	}
	if got := read(t, filepath.Join(e.dir, t1)); got != "short\nfirst-round\n" {
		t.Fatalf("rotated content %q", got)
	}

	// The second rotation compresses the first; the newest stays plain.
	e.clock.Step(10 * time.Second)
	e.write(t, e.path, "second-round\n")
	e.rotate(t)
	t2 := "0.log.20240506-070819"
	if got := e.files(t); !equal(got, []string{"0.log", t1 + ".gz", t2}) {
		t.Fatalf("after the second rotation: %v", got)
	}
	if got := read(t, filepath.Join(e.dir, t1+".gz")); got != "short\nfirst-round\n" {
		t.Fatalf("compressed content %q", got)
	}

	// The third drops the oldest: three files at most, current included.
	e.clock.Step(10 * time.Second)
	e.write(t, e.path, "third-round\n")
	e.rotate(t)
	t3 := "0.log.20240506-070829"
	if got := e.files(t); !equal(got, []string{"0.log", t2 + ".gz", t3}) {
		t.Fatalf("after the third rotation: %v", got)
	}
	if got := read(t, filepath.Join(e.dir, t3)); got != "third-round\n" {
		t.Fatalf("newest rotated content %q", got)
	}
	if got := read(t, e.path); got != "" {
		t.Fatalf("current log after rotation %q", got)
	}
}

func TestRotationMaxFilesTwo(t *testing.T) {
	e := newEnv(t, 2)
	for i := range 3 {
		e.clock.Step(time.Minute)
		e.write(t, e.path, "a long enough line\n")
		e.rotate(t)
		if got := e.files(t); len(got) != 2 || got[0] != "0.log" || strings.HasSuffix(got[1], ".gz") {
			t.Fatalf("round %d: %v", i, got)
		}
	}
}

func TestRotationCleansLeftovers(t *testing.T) {
	e := newEnv(t, 5)
	old := filepath.Join(e.dir, "0.log.20240101-000000")
	e.write(t, old+".tmp", "half-written")
	e.write(t, old, "both plain and compressed")
	e.write(t, old+".gz", "")
	e.write(t, filepath.Join(e.dir, "other.log.20240101-000000"), "another container's")
	e.write(t, e.path, "over the limit\n")
	e.rotate(t)
	want := []string{"0.log", "0.log.20240101-000000.gz", "0.log.20240506-070809", "other.log.20240101-000000"}
	if got := e.files(t); !equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestRotationReopenFails(t *testing.T) {
	e := newEnv(t, 3)
	e.write(t, e.path, "over the limit\n")
	e.rt.InjectError("ReopenContainerLog", errors.New("runtime busy"))
	e.rotate(t)
	if got := e.files(t); !equal(got, []string{"0.log"}) || read(t, e.path) != "over the limit\n" {
		t.Fatalf("rename not undone: %v", got)
	}
	// The next round succeeds.
	e.rotate(t)
	if got := e.files(t); !equal(got, []string{"0.log", "0.log.20240506-070809"}) {
		t.Fatalf("second round: %v", got)
	}
}

// A second rotation within one second waits for the next round rather
// than reuse the name.
func TestRotationSameSecond(t *testing.T) {
	e := newEnv(t, 3)
	e.write(t, e.path, "over the limit\n")
	e.rotate(t)
	e.write(t, e.path, "again over the limit\n")
	e.rotate(t)
	rotated := filepath.Join(e.dir, "0.log.20240506-070809")
	if got := e.files(t); !equal(got, []string{"0.log", "0.log.20240506-070809.gz"}) {
		t.Fatalf("files: %v", got)
	}
	if read(t, rotated+".gz") != "over the limit\n" || read(t, e.path) != "again over the limit\n" {
		t.Fatalf("contents: %q %q", read(t, rotated+".gz"), read(t, e.path))
	}
	e.clock.Step(time.Second)
	e.rotate(t)
	if got := e.files(t); !equal(got, []string{"0.log", "0.log.20240506-070809.gz", "0.log.20240506-070810"}) {
		t.Fatalf("next second: %v", got)
	}
}

func TestRotationMissingLogIsReopened(t *testing.T) {
	e := newEnv(t, 3)
	e.rotate(t)
	if _, err := os.Stat(e.path); err != nil {
		t.Fatalf("log not reopened: %v", err)
	}
}

func TestRotationSkips(t *testing.T) {
	e := newEnv(t, 3)
	outside := filepath.Join(t.TempDir(), "outside.log")
	for _, c := range []struct {
		id      string
		state   runtimeapi.ContainerState
		managed bool
		path    string
	}{
		{"exited", runtimeapi.ContainerState_CONTAINER_EXITED, true, filepath.Join(e.dir, "exited.log")},
		{"foreign", runtimeapi.ContainerState_CONTAINER_RUNNING, false, filepath.Join(e.dir, "foreign.log")},
		{"outside", runtimeapi.ContainerState_CONTAINER_RUNNING, true, outside},
		{"relative", runtimeapi.ContainerState_CONTAINER_RUNNING, true, "ns_pod_uid/c1/relative.log"},
		{"escape", runtimeapi.ContainerState_CONTAINER_RUNNING, true, e.dir + "/../../../escape.log"},
	} {
		e.addContainer(c.id, c.state, c.managed, c.path)
		if filepath.IsAbs(c.path) {
			e.write(t, c.path, "over the limit\n")
		}
	}
	e.rotate(t)
	if got := e.files(t); !equal(got, []string{"0.log", "exited.log", "foreign.log"}) {
		t.Fatalf("files: %v", got)
	}
	if read(t, outside) != "over the limit\n" {
		t.Fatal("log outside the logs directory touched")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(e.dir))), "escape.log.20240506-070809")); err == nil {
		t.Fatal("escaping log rotated")
	}
}

func TestRotationListError(t *testing.T) {
	e := newEnv(t, 3)
	e.rt.InjectError("ListContainers", errors.New("down"))
	if err := e.m.RotateOnce(context.Background()); err == nil {
		t.Fatal("no error")
	}
}

func TestNewValidates(t *testing.T) {
	rt := critesting.NewFakeRuntimeService()
	clk := testingclock.NewFakeClock(start)
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{MaxSize: "10Mi", MaxFiles: 5, PodLogsDir: "/var/log/pods"}, true},
		{"one file", Config{MaxSize: "10Mi", MaxFiles: 1, PodLogsDir: "/var/log/pods"}, false},
		{"bad size", Config{MaxSize: "lots", MaxFiles: 5, PodLogsDir: "/var/log/pods"}, false},
		{"zero size", Config{MaxSize: "0", MaxFiles: 5, PodLogsDir: "/var/log/pods"}, false},
		{"fractional size", Config{MaxSize: "0.5", MaxFiles: 5, PodLogsDir: "/var/log/pods"}, false},
		{"relative dir", Config{MaxSize: "1Ki", MaxFiles: 5, PodLogsDir: "logs"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(rt, tc.cfg, clk)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v", err)
			}
			if tc.ok && (m.interval != defaultInterval || m.workers != 1) {
				t.Errorf("defaults: %+v", m)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A follower (cri-client's ReadLogs, as /containerLogs?follow=true)
// goes on with the new file after a rotation.
func TestFollowAcrossRotation(t *testing.T) {
	e := newEnv(t, 3)
	e.write(t, e.path, "2024-01-01T00:00:00.000000000Z stdout F before rotation\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- crilogs.ReadLogs(ctx, e.path, "c1", &crilogs.LogOptions{Follow: true}, e.rt, &out, &out)
	}()
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("follower has %q, want %q", out.String(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("before rotation\n")
	e.rotate(t)
	e.write(t, e.path, "2024-01-01T00:00:01.000000000Z stdout F after rotation\n")
	waitFor("after rotation\n")
	if got := out.String(); got != "before rotation\nafter rotation\n" {
		t.Fatalf("followed %q", got)
	}
	cancel()
	// ReadLogs ends with an unwrapped "context cancelled": nothing to assert.
	t.Logf("follower ended: %v", <-done)
}

func TestRunRotatesEveryInterval(t *testing.T) {
	e := newEnv(t, 3)
	e.write(t, e.path, "over the limit\n")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for !e.clock.HasWaiters() {
		time.Sleep(time.Millisecond)
	}
	e.clock.Step(defaultInterval)
	deadline := time.Now().Add(5 * time.Second)
	for len(e.files(t)) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("not rotated: %v", e.files(t))
		}
		time.Sleep(5 * time.Millisecond)
	}
}
