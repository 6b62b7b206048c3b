package nodestatus

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"
)

func TestReadyTransitions(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	h := newHarness(t)
	if err := h.c.register(ctx); err != nil {
		t.Fatal(err)
	}
	get := func() *v1.Node {
		t.Helper()
		n, err := h.client.CoreV1().Nodes().Get(ctx, "node1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	start := h.clock.Now()
	steps := []struct {
		name        string
		runtimeErr  error
		networkOK   bool
		notReady    [2]string // source, message
		wantStatus  v1.ConditionStatus
		wantMessage string
		wantFlip    bool
	}{
		{name: "runtime down", runtimeErr: errRuntimeDown, wantStatus: v1.ConditionFalse,
			wantMessage: "container runtime is down: connection refused", wantFlip: true},
		{name: "still down", runtimeErr: errRuntimeDown, wantStatus: v1.ConditionFalse,
			wantMessage: "container runtime is down", wantFlip: false},
		{name: "network not ready", networkOK: false, wantStatus: v1.ConditionFalse,
			wantMessage: "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:cni plugin not initialized"},
		{name: "back up", networkOK: true, wantStatus: v1.ConditionTrue,
			wantMessage: "nodeagent is posting ready status", wantFlip: true},
		{name: "extra reason", networkOK: true, notReady: [2]string{"cni", "no config"},
			wantStatus: v1.ConditionFalse, wantMessage: "cni: no config", wantFlip: true},
		{name: "reason cleared", networkOK: true, notReady: [2]string{"cni", ""},
			wantStatus: v1.ConditionTrue, wantMessage: "nodeagent is posting ready status", wantFlip: true},
	}
	prev := condition(get(), v1.NodeReady).LastTransitionTime
	for i, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			h.clock.Step(10 * time.Second)
			h.rt.set(s.runtimeErr, s.networkOK)
			if s.notReady[0] != "" {
				h.c.SetNotReadyReason(s.notReady[0], s.notReady[1])
			}
			if err := h.c.syncStatus(ctx); err != nil {
				t.Fatal(err)
			}
			ready := condition(get(), v1.NodeReady)
			if ready.Status != s.wantStatus || !strings.Contains(ready.Message, s.wantMessage) {
				t.Fatalf("Ready = %s %q, want %s containing %q", ready.Status, ready.Message, s.wantStatus, s.wantMessage)
			}
			flipped := !ready.LastTransitionTime.Equal(&prev)
			if flipped != s.wantFlip {
				t.Errorf("transition time changed = %v, want %v", flipped, s.wantFlip)
			}
			if s.wantFlip && !ready.LastTransitionTime.Time.Equal(start.Add(time.Duration(i+1)*10*time.Second)) {
				t.Errorf("transition time = %v", ready.LastTransitionTime)
			}
			prev = ready.LastTransitionTime
		})
	}
}

func TestStatusPostedOnChangeOrReportFrequency(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	h := newHarness(t)
	if err := h.c.register(ctx); err != nil {
		t.Fatal(err)
	}
	posts := func() int {
		n := 0
		for _, a := range h.client.Actions() {
			if a.GetVerb() == "update" && a.GetSubresource() == "status" {
				n++
			}
		}
		return n
	}
	sync := func() {
		t.Helper()
		if err := h.c.syncStatus(ctx); err != nil {
			t.Fatal(err)
		}
	}
	sync() // first sync always posts
	if got := posts(); got != 1 {
		t.Fatalf("posts after first sync = %d, want 1", got)
	}
	h.clock.Step(10 * time.Second)
	sync()
	if got := posts(); got != 1 {
		t.Errorf("unchanged status was posted: %d posts", got)
	}
	h.pressure.set(v1.NodeMemoryPressure, true)
	h.clock.Step(10 * time.Second)
	sync()
	if got := posts(); got != 2 {
		t.Errorf("changed status not posted: %d posts", got)
	}
	if c := condition(h.c.Node(), v1.NodeMemoryPressure); c.Status != v1.ConditionTrue {
		t.Errorf("MemoryPressure = %+v", c)
	}
	h.clock.Step(5 * time.Minute)
	sync()
	if got := posts(); got != 3 {
		t.Errorf("status not posted after report frequency: %d posts", got)
	}
	hb := condition(h.c.Node(), v1.NodeReady).LastHeartbeatTime
	if !hb.Time.Equal(h.clock.Now()) {
		t.Errorf("heartbeat = %v, want %v", hb, h.clock.Now())
	}
}

// A node that shuts down is NotReady with the kubelet's message, exactly,
// and SyncStatus posts it at once.
func TestShuttingDown(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	h := newHarness(t)
	if err := h.c.register(ctx); err != nil {
		t.Fatal(err)
	}
	h.rt.set(nil, true)
	if err := h.c.SyncStatus(ctx); err != nil {
		t.Fatal(err)
	}
	h.c.ShuttingDown()
	if err := h.c.SyncStatus(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := h.client.CoreV1().Nodes().Get(ctx, "node1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ready := condition(n, v1.NodeReady)
	if ready.Status != v1.ConditionFalse || ready.Reason != "KubeletNotReady" || ready.Message != "node is shutting down" {
		t.Errorf("Ready = %s %s %q, want False KubeletNotReady \"node is shutting down\"", ready.Status, ready.Reason, ready.Message)
	}
}

// NodeRestriction refuses a status update whose object carries taints the
// node lifecycle controller has changed since: the node is fetched again
// and the status posted on it.
func TestStatusUpdateRefetchesAfterForbidden(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	h := newHarness(t)
	if err := h.c.register(ctx); err != nil {
		t.Fatal(err)
	}
	// The controller adds a taint the agent's cached node does not have.
	n, err := h.client.CoreV1().Nodes().Get(ctx, "node1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Spec.Taints = append(n.Spec.Taints, v1.Taint{Key: v1.TaintNodeNotReady, Effect: v1.TaintEffectNoSchedule})
	if _, err := h.client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.client.PrependReactor("update", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "status" {
			return false, nil, nil
		}
		got := a.(k8stesting.UpdateAction).GetObject().(*v1.Node)
		if len(got.Spec.Taints) != 2 {
			return true, nil, apierrors.NewForbidden(v1.Resource("nodes"), "node1", errors.New(`node "node1" is not allowed to modify taints`))
		}
		return false, nil, nil
	})
	if err := h.c.syncStatus(ctx); err != nil {
		t.Fatalf("status not posted after a refetch: %v", err)
	}
}

// status.runtimeHandlers lists the runtime's handlers with their features,
// as the kubelet's RuntimeHandlers setter, and keeps them while the
// runtime is unreachable.
func TestRuntimeHandlers(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	h := newHarness(t)
	h.rt.set(nil, true)
	if err := h.c.register(ctx); err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	want := []v1.NodeRuntimeHandler{
		{Name: "", Features: &v1.NodeRuntimeHandlerFeatures{RecursiveReadOnlyMounts: &yes, UserNamespaces: &yes}},
		{Name: "test-handler", Features: &v1.NodeRuntimeHandlerFeatures{RecursiveReadOnlyMounts: &yes, UserNamespaces: &no}},
	}
	for _, runtimeErr := range []error{nil, errRuntimeDown} {
		h.clock.Step(10 * time.Second)
		h.rt.set(runtimeErr, true)
		if err := h.c.syncStatus(ctx); err != nil {
			t.Fatal(err)
		}
		n, err := h.client.CoreV1().Nodes().Get(ctx, "node1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !equality.Semantic.DeepEqual(n.Status.RuntimeHandlers, want) {
			t.Errorf("runtime error %v: runtimeHandlers = %s, want %s", runtimeErr, handlerNames(n.Status.RuntimeHandlers), handlerNames(want))
		}
	}
}

func handlerNames(hs []v1.NodeRuntimeHandler) string {
	var out []string
	for _, h := range hs {
		out = append(out, fmt.Sprintf("%q{rro=%v userns=%v}", h.Name, *h.Features.RecursiveReadOnlyMounts, *h.Features.UserNamespaces))
	}
	return "[" + strings.Join(out, " ") + "]"
}
