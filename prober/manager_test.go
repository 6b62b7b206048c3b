package prober

import (
	"context"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
)

// fakeProbes answers probe attempts with what the test sets per type.
type fakeProbes struct {
	mu    sync.Mutex
	ok    map[string]bool
	calls chan string
	wakes chan types.UID
}

func newFake() *fakeProbes {
	return &fakeProbes{ok: map[string]bool{}, calls: make(chan string, 100), wakes: make(chan types.UID, 100)}
}

func (f *fakeProbes) set(which string, ok bool) {
	f.mu.Lock()
	f.ok[which] = ok
	f.mu.Unlock()
}

func (f *fakeProbes) probe(_ context.Context, p *v1.Probe, _ Target) Result {
	which := p.Exec.Command[0]
	f.mu.Lock()
	ok := f.ok[which]
	f.mu.Unlock()
	f.calls <- which
	return Result{OK: ok, Output: which + " said no"}
}

func probe(which string, failures int32) *v1.Probe {
	return &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{which}}}, PeriodSeconds: 1, FailureThreshold: failures}
}

func testPod(c v1.Container) *v1.Pod {
	c.Name = "app"
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid1"}, Spec: v1.PodSpec{Containers: []v1.Container{c}}}
}

func setup(t *testing.T) (*Manager, *fakeProbes, *clocktesting.FakeClock) {
	f := newFake()
	clk := clocktesting.NewFakeClock(time.Now())
	m := New(Config{
		Clock:    clk,
		Recorder: record.NewFakeRecorder(100),
		Wake:     func(uid types.UID) { f.wakes <- uid },
		Probe:    f.probe,
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go m.Run(ctx)
	return m, f, clk
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

func TestReadiness(t *testing.T) {
	m, f, clk := setup(t)
	pod := testPod(v1.Container{ReadinessProbe: probe("ready", 1)})
	m.Add(context.Background(), pod, "app", "c1", "10.0.0.1", clk.Now())
	if m.Ready("uid1", "app", "c1") {
		t.Fatal("ready before any probe")
	}
	recv(t, f.calls, "first probe")
	f.set("ready", true)
	clk.Step(time.Second)
	recv(t, f.calls, "second probe")
	if uid := recv(t, f.wakes, "wake on ready"); uid != "uid1" {
		t.Fatalf("woke %s", uid)
	}
	if !m.Ready("uid1", "app", "c1") || m.Ready("uid1", "app", "other") {
		t.Fatal("readiness result wrong")
	}
	f.set("ready", false)
	clk.Step(time.Second)
	recv(t, f.calls, "third probe")
	recv(t, f.wakes, "wake on unready")
	if m.Ready("uid1", "app", "c1") {
		t.Fatal("still ready after failure")
	}
	m.RemovePod("uid1")
	if m.Ready("uid1", "app", "c1") {
		t.Fatal("result kept after RemovePod")
	}
}

func TestInitialDelay(t *testing.T) {
	m, f, clk := setup(t)
	p := probe("ready", 1)
	p.InitialDelaySeconds = 5
	m.Add(context.Background(), testPod(v1.Container{ReadinessProbe: p}), "app", "c1", "", clk.Now())
	clk.Step(4 * time.Second)
	select {
	case <-f.calls:
		t.Fatal("probed before initialDelaySeconds")
	case <-time.After(100 * time.Millisecond):
	}
	clk.Step(time.Second)
	recv(t, f.calls, "probe after the delay")
}

func TestLivenessFailure(t *testing.T) {
	m, f, clk := setup(t)
	f.set("live", true)
	m.Add(context.Background(), testPod(v1.Container{LivenessProbe: probe("live", 2)}), "app", "c1", "", clk.Now())
	recv(t, f.calls, "probe")
	f.set("live", false)
	clk.Step(time.Second)
	recv(t, f.calls, "first failure")
	time.Sleep(100 * time.Millisecond)
	if typ, _, failed := m.Failed("uid1", "app", "c1"); failed {
		t.Fatalf("%s failed after one failure of two", typ)
	}
	clk.Step(time.Second)
	recv(t, f.calls, "second failure")
	recv(t, f.wakes, "wake on failure")
	if typ, out, failed := m.Failed("uid1", "app", "c1"); !failed || typ != Liveness || out != "live said no" {
		t.Fatalf("Failed = %s, %q, %v; want Liveness, the output, true", typ, out, failed)
	}
	if _, _, failed := m.Failed("uid1", "app", "c2"); failed {
		t.Fatal("another instance reported failed")
	}
	// The same instance is not probed again; a new one is.
	m.Add(context.Background(), testPod(v1.Container{LivenessProbe: probe("live", 2)}), "app", "c1", "", clk.Now())
	m.Add(context.Background(), testPod(v1.Container{LivenessProbe: probe("live", 2)}), "app", "c2", "", clk.Now())
	recv(t, f.calls, "probe of the new instance")
}

func TestStartupGatesOthers(t *testing.T) {
	m, f, clk := setup(t)
	pod := testPod(v1.Container{StartupProbe: probe("start", 10), ReadinessProbe: probe("ready", 1), LivenessProbe: probe("live", 1)})
	f.set("ready", true)
	m.Add(context.Background(), pod, "app", "c1", "", clk.Now())
	if w := recv(t, f.calls, "startup probe"); w != "start" {
		t.Fatalf("probed %s before startup succeeded", w)
	}
	if m.Started("uid1", "app", "c1") {
		t.Fatal("started before success")
	}
	f.set("start", true)
	clk.Step(time.Second)
	seen := map[string]int{}
	for len(seen) < 3 {
		seen[recv(t, f.calls, "probes after start")]++
		if len(seen) < 3 {
			clk.Step(time.Second)
		}
	}
	if !m.Started("uid1", "app", "c1") {
		t.Fatal("not started")
	}
	waitUntil(t, func() bool { return m.Ready("uid1", "app", "c1") })
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Readiness is probed as soon as the startup probe succeeds, not a
// readiness period later (the kubelet's manual trigger; upstream "should
// be ready immediately after startupProbe succeeds").
func TestReadinessRightAfterStartup(t *testing.T) {
	m, f, clk := setup(t)
	ready := probe("ready", 1)
	ready.PeriodSeconds = 30
	pod := testPod(v1.Container{StartupProbe: probe("start", 10), ReadinessProbe: ready})
	f.set("ready", true)
	m.Add(context.Background(), pod, "app", "c1", "", clk.Now())
	if w := recv(t, f.calls, "startup probe"); w != "start" {
		t.Fatalf("probed %s before startup succeeded", w)
	}
	f.set("start", true)
	clk.Step(time.Second) // the startup probe's next period, not readiness's
	if w := recv(t, f.calls, "startup probe"); w != "start" {
		t.Fatalf("probed %s, want start", w)
	}
	if w := recv(t, f.calls, "readiness probe right after startup"); w != "ready" {
		t.Fatalf("probed %s, want ready", w)
	}
	waitUntil(t, func() bool { return m.Ready("uid1", "app", "c1") })
}
