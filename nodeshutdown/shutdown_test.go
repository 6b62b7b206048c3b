package nodeshutdown

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/clock"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

var _ Node = (*fakeNode)(nil)

func TestGroups(t *testing.T) {
	d := func(s int) metav1.Duration { return metav1.Duration{Duration: time.Duration(s) * time.Second} }
	for _, tc := range []struct {
		name string
		cfg  kubeletconfigv1beta1.KubeletConfiguration
		want []Group
	}{
		{"off by default", kubeletconfigv1beta1.KubeletConfiguration{}, nil},
		{"critical pods alone do nothing", kubeletconfigv1beta1.KubeletConfiguration{ShutdownGracePeriodCriticalPods: d(10)}, nil},
		{"regular and critical", kubeletconfigv1beta1.KubeletConfiguration{ShutdownGracePeriod: d(30), ShutdownGracePeriodCriticalPods: d(10)},
			[]Group{{0, 20}, {2000000000, 10}}},
		{"no time for critical pods", kubeletconfigv1beta1.KubeletConfiguration{ShutdownGracePeriod: d(30)},
			[]Group{{0, 30}, {2000000000, 0}}},
		{"all for critical pods", kubeletconfigv1beta1.KubeletConfiguration{ShutdownGracePeriod: d(30), ShutdownGracePeriodCriticalPods: d(30)},
			[]Group{{0, 0}, {2000000000, 30}}},
		{"critical above the total", kubeletconfigv1beta1.KubeletConfiguration{ShutdownGracePeriod: d(10), ShutdownGracePeriodCriticalPods: d(30)}, nil},
		{"seconds truncated", kubeletconfigv1beta1.KubeletConfiguration{
			ShutdownGracePeriod:             metav1.Duration{Duration: 10500 * time.Millisecond},
			ShutdownGracePeriodCriticalPods: metav1.Duration{Duration: 2 * time.Second}},
			[]Group{{0, 8}, {2000000000, 2}}},
		{"by priority, sorted", kubeletconfigv1beta1.KubeletConfiguration{ShutdownGracePeriodByPodPriority: []kubeletconfigv1beta1.ShutdownGracePeriodByPodPriority{
			{Priority: 2000001000, ShutdownGracePeriodSeconds: 5},
			{Priority: 0, ShutdownGracePeriodSeconds: 60},
			{Priority: 100000, ShutdownGracePeriodSeconds: 30},
		}}, []Group{{0, 60}, {100000, 30}, {2000001000, 5}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Groups(&tc.cfg); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Groups = %v, want %v", got, tc.want)
			}
		})
	}
}

// Period is the sum of the groups' seconds, as the kubelet's
// periodRequested: what logind's InhibitDelayMaxUSec must cover.
func TestPeriod(t *testing.T) {
	for _, tc := range []struct {
		groups []Group
		want   time.Duration
	}{
		{nil, 0},
		{[]Group{{0, 20}, {CriticalPriority, 10}}, 30 * time.Second},
		{[]Group{{0, 0}, {CriticalPriority, 0}}, 0},
		{[]Group{{0, 60}, {100000, 30}, {2000001000, 5}}, 95 * time.Second},
	} {
		if got := Period(tc.groups); got != tc.want {
			t.Errorf("Period(%v) = %v, want %v", tc.groups, got, tc.want)
		}
	}
}

func podWith(name string, priority *int32) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(name), Generation: 3},
		Spec:       v1.PodSpec{Priority: priority, TerminationGracePeriodSeconds: ptr.To[int64](30)},
	}
}

// The kubelet's grouping: a pod goes to the group of the highest priority
// not above its own; below every group, to the first; no priority is 0.
func TestGroupByPriority(t *testing.T) {
	groups := []Group{{-10, 1}, {0, 2}, {1000, 3}, {2000000000, 4}}
	pods := []*v1.Pod{
		podWith("none", nil),
		podWith("zero", ptr.To[int32](0)),
		podWith("low", ptr.To[int32](-100)),
		podWith("minus5", ptr.To[int32](-5)),
		podWith("999", ptr.To[int32](999)),
		podWith("1000", ptr.To[int32](1000)),
		podWith("cluster-critical", ptr.To[int32](2000000000)),
		podWith("node-critical", ptr.To[int32](2000001000)),
	}
	var got [][]string
	for _, g := range groupByPriority(groups, pods) {
		var names []string
		for _, p := range g.pods {
			names = append(names, p.Name)
		}
		got = append(got, names)
	}
	want := [][]string{{"low", "minus5"}, {"none", "zero", "999"}, {"1000"}, {"cluster-critical", "node-critical"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("groups %v, want %v", got, want)
	}
}

// kill is one call of Config.Kill.
type kill struct {
	pod    string
	grace  int64
	status func(*v1.PodStatus)
	done   chan struct{}
}

type fakeNode struct {
	mu           sync.Mutex
	shuttingDown bool
	synced       int
}

func (n *fakeNode) ShuttingDown() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.shuttingDown = true
}

func (n *fakeNode) SyncStatus(context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.shuttingDown {
		return errors.New("status synced before the node was marked")
	}
	n.synced++
	return nil
}

func (n *fakeNode) state() (bool, int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.shuttingDown, n.synced
}

type harness struct {
	m     *Manager
	clock *testingclock.FakeClock
	node  *fakeNode
	kills chan kill
	rec   *record.FakeRecorder
}

func newHarness(pods ...*v1.Pod) *harness {
	h := &harness{
		clock: testingclock.NewFakeClock(time.Now()),
		node:  &fakeNode{},
		kills: make(chan kill, 100),
		rec:   record.NewFakeRecorder(10),
	}
	h.m = New(Config{
		Groups: Groups(&kubeletconfigv1beta1.KubeletConfiguration{
			ShutdownGracePeriod:             metav1.Duration{Duration: 30 * time.Second},
			ShutdownGracePeriodCriticalPods: metav1.Duration{Duration: 10 * time.Second},
		}),
		Pods: func() []*v1.Pod { return pods },
		Kill: func(pod *v1.Pod, grace int64, status func(*v1.PodStatus)) <-chan struct{} {
			k := kill{pod: pod.Name, grace: grace, status: status, done: make(chan struct{})}
			h.kills <- k
			return k.done
		},
		Node:     h.node,
		Recorder: h.rec,
		NodeRef:  &v1.ObjectReference{Kind: "Node", Name: "node1"},
		Clock:    h.clock,
	})
	return h
}

// start runs Shutdown and returns its result channel.
func (h *harness) start(t *testing.T, ctx context.Context) <-chan error {
	t.Helper()
	res := make(chan error, 1)
	go func() { res <- h.m.Shutdown(ctx) }()
	return res
}

// next returns the next kills, n of them, by pod name.
func (h *harness) next(t *testing.T, n int) map[string]kill {
	t.Helper()
	out := map[string]kill{}
	for range n {
		select {
		case k := <-h.kills:
			out[k.pod] = k
		case <-time.After(5 * time.Second):
			t.Fatalf("%d kills, want %d: %v", len(out), n, out)
		}
	}
	return out
}

// none checks that no kill is pending.
func (h *harness) none(t *testing.T) {
	t.Helper()
	select {
	case k := <-h.kills:
		t.Fatalf("unexpected kill of %s", k.pod)
	default:
	}
}

// waitTimer waits until Shutdown waits on its clock.
func (h *harness) waitTimer(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !h.clock.HasWaiters() {
		if time.Now().After(deadline) {
			t.Fatal("Shutdown does not wait on its clock")
		}
		time.Sleep(time.Millisecond)
	}
}

func result(t *testing.T, res <-chan error) error {
	t.Helper()
	select {
	case err := <-res:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return")
		return nil
	}
}

// Regular pods first, each with the regular group's time or its own if
// shorter; the critical pods once the regular ones are stopped, with
// theirs; the node NotReady from the start and its status posted at the
// end.
func TestShutdownOrder(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	short := podWith("short", nil)
	short.Spec.TerminationGracePeriodSeconds = ptr.To[int64](5)
	zero := podWith("zero", ptr.To[int32](0))
	zero.Spec.TerminationGracePeriodSeconds = ptr.To[int64](0)
	h := newHarness(podWith("critical", ptr.To[int32](2000001000)), podWith("regular", nil), short, zero)
	if h.m.ShuttingDown() {
		t.Fatal("shutting down before Shutdown")
	}
	res := h.start(t, ctx)

	regular := h.next(t, 3)
	for name, want := range map[string]int64{"regular": 20, "short": 5, "zero": 1} {
		if k, ok := regular[name]; !ok || k.grace != want {
			t.Errorf("kill of %s: %+v, want grace %d", name, k, want)
		}
	}
	if down, _ := h.node.state(); !down || !h.m.ShuttingDown() {
		t.Error("node not marked as shutting down while its pods are killed")
	}
	h.waitTimer(t)
	h.none(t) // the critical pod waits for the regular ones
	for _, k := range regular {
		close(k.done)
	}
	// No clock step: the regular pods are stopped before their time.
	critical := h.next(t, 1)["critical"]
	if critical.grace != 10 {
		t.Errorf("critical pod's grace %d, want 10", critical.grace)
	}
	close(critical.done)
	if err := result(t, res); err != nil {
		t.Fatal(err)
	}
	if _, synced := h.node.state(); synced != 1 {
		t.Errorf("node status synced %d times at the end, want 1", synced)
	}
	select {
	case ev := <-h.rec.Events:
		if ev != "Normal NodeShutdown Shutdown manager detected shutdown event" {
			t.Errorf("event %q", ev)
		}
	default:
		t.Error("no NodeShutdown event")
	}
}

// A group whose pods do not stop in time holds the next one back for its
// grace period only; a pod that never stops does not hold the end back.
func TestShutdownGroupTimeout(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	h := newHarness(podWith("critical", ptr.To[int32](2000000000)), podWith("regular", nil))
	res := h.start(t, ctx)

	h.next(t, 1) // regular, never done
	h.waitTimer(t)
	h.clock.Step(19 * time.Second)
	h.none(t)
	h.clock.Step(time.Second)
	critical := h.next(t, 1)["critical"]
	if critical.grace != 10 {
		t.Errorf("critical grace %d, want 10", critical.grace)
	}
	h.waitTimer(t)
	h.clock.Step(10 * time.Second)
	if err := result(t, res); err != nil {
		t.Fatal(err)
	}
}

// Only critical pods: their group starts at once; no pods at all: nothing
// to wait for.
func TestShutdownEmptyGroups(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	h := newHarness(podWith("critical", ptr.To[int32](2000001000)))
	res := h.start(t, ctx)
	close(h.next(t, 1)["critical"].done)
	if err := result(t, res); err != nil {
		t.Fatal(err)
	}

	h = newHarness()
	if err := result(t, h.start(t, ctx)); err != nil {
		t.Fatal(err)
	}
	if down, synced := h.node.state(); !down || synced != 1 {
		t.Errorf("node shutting down %v, status synced %d times; want true, 1", down, synced)
	}
}

// A second signal (ctx ends) stops the shutdown at once.
func TestShutdownCancelled(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	h := newHarness(podWith("regular", nil), podWith("critical", ptr.To[int32](2000001000)))
	res := h.start(t, ctx)
	h.next(t, 1)
	cancel()
	if err := result(t, res); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown = %v, want context.Canceled", err)
	}
	h.none(t)
}

// The status of a pod ended by a shutdown is the kubelet's.
func TestEndStatus(t *testing.T) {
	fc := testingclock.NewFakeClock(time.Now())
	m := New(Config{Clock: clock.WithTicker(fc)})
	pod := podWith("p", nil)
	fn := m.endStatus(pod)

	st := &v1.PodStatus{Phase: v1.PodRunning, Reason: "x", Conditions: []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue}}}
	fn(st)
	want := v1.PodCondition{
		Type: v1.DisruptionTarget, Status: v1.ConditionTrue, Reason: "TerminationByKubelet",
		Message: "Pod was terminated in response to imminent node shutdown.", ObservedGeneration: 3,
		LastTransitionTime: metav1.NewTime(fc.Now()),
	}
	if st.Phase != v1.PodFailed || st.Reason != "Terminated" || st.Message != "Pod was terminated in response to imminent node shutdown." {
		t.Errorf("status %s %q %q", st.Phase, st.Reason, st.Message)
	}
	if len(st.Conditions) != 2 || !reflect.DeepEqual(st.Conditions[1], want) {
		t.Errorf("conditions %+v, want Ready and %+v", st.Conditions, want)
	}
	// Applied again later (the final status): one condition, its
	// transition time kept.
	fc.Step(time.Minute)
	fn(st)
	if len(st.Conditions) != 2 || !reflect.DeepEqual(st.Conditions[1], want) {
		t.Errorf("conditions after a second call %+v", st.Conditions)
	}
	// A pod that succeeded stays Succeeded.
	ok := &v1.PodStatus{Phase: v1.PodSucceeded}
	fn(ok)
	if ok.Phase != v1.PodSucceeded || ok.Reason != "Terminated" {
		t.Errorf("succeeded pod: %s %q", ok.Phase, ok.Reason)
	}
}
