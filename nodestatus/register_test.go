package nodestatus

import (
	"context"
	"errors"
	goruntime "runtime"
	"testing"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"
)

func TestRegisterCreatesNode(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	h := newHarness(t)
	if err := h.c.register(ctx); err != nil {
		t.Fatal(err)
	}
	node, err := h.client.CoreV1().Nodes().Get(ctx, "node1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantLabels := map[string]string{
		"kubernetes.io/hostname":  "node1-host",
		"kubernetes.io/os":        "linux",
		"kubernetes.io/arch":      goruntime.GOARCH,
		"beta.kubernetes.io/os":   "linux",
		"beta.kubernetes.io/arch": goruntime.GOARCH,
		"example.com/pool":        "a",
	}
	for k, v := range wantLabels {
		if got, ok := node.Labels[k]; !ok || got != v {
			t.Errorf("label %s = %q, want %q", k, got, v)
		}
	}
	if node.Annotations[annotationControllerManagedAttach] != "true" {
		t.Errorf("missing attach-detach annotation: %v", node.Annotations)
	}
	if len(node.Spec.Taints) != 1 || node.Spec.Taints[0].Key != "example.com/new" {
		t.Errorf("taints = %v", node.Spec.Taints)
	}
	if node.Spec.ProviderID != "nodeagent://node1" {
		t.Errorf("providerID = %q", node.Spec.ProviderID)
	}

	for _, tc := range []struct {
		name            v1.ResourceName
		capacity, alloc string
	}{
		{v1.ResourceMemory, "8Gi", "8092Mi"},
		{v1.ResourcePods, "110", "110"},
		// Less 10%, computed with the kubelet's float32 percentage.
		{v1.ResourceEphemeralStorage, "100Gi", "96636764000"},
		{"hugepages-2Mi", "0", "0"},
	} {
		t.Run(string(tc.name), func(t *testing.T) {
			c, a := node.Status.Capacity[tc.name], node.Status.Allocatable[tc.name]
			if c.Cmp(resource.MustParse(tc.capacity)) != 0 {
				t.Errorf("capacity = %s, want %s", c.String(), tc.capacity)
			}
			if a.Cmp(resource.MustParse(tc.alloc)) != 0 {
				t.Errorf("allocatable = %s, want %s", a.String(), tc.alloc)
			}
		})
	}
	if q, ok := node.Status.Capacity["hugepages-1Gi"]; ok {
		t.Errorf("capacity hugepages-1Gi = %s on a machine without 1 GiB pages", q.String())
	}
	if cpu := node.Status.Capacity[v1.ResourceCPU]; cpu.Value() != int64(goruntime.NumCPU()) {
		t.Errorf("cpu = %s", cpu.String())
	}

	info := node.Status.NodeInfo
	if info.ContainerRuntimeVersion != "containerd://2.2.1" || info.KubeletVersion != "v1.36.3+nodeagent" ||
		info.MachineID != "machine" || info.BootID != "boot" || info.OSImage == "" || info.Architecture != goruntime.GOARCH {
		t.Errorf("nodeInfo = %+v", info)
	}
	if got := node.Status.DaemonEndpoints.KubeletEndpoint.Port; got != 10250 {
		t.Errorf("port = %d", got)
	}
	wantAddrs := []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "10.0.0.5"}, {Type: v1.NodeInternalIP, Address: "fd00::5"}, {Type: v1.NodeHostName, Address: "node1-host"}}
	if len(node.Status.Addresses) != len(wantAddrs) {
		t.Fatalf("addresses = %v", node.Status.Addresses)
	}
	for i := range wantAddrs {
		if node.Status.Addresses[i] != wantAddrs[i] {
			t.Errorf("address %d = %v, want %v", i, node.Status.Addresses[i], wantAddrs[i])
		}
	}
	for typ, want := range map[v1.NodeConditionType]v1.ConditionStatus{
		v1.NodeReady: v1.ConditionTrue, v1.NodeMemoryPressure: v1.ConditionFalse,
		v1.NodeDiskPressure: v1.ConditionFalse, v1.NodePIDPressure: v1.ConditionFalse,
	} {
		if c := condition(node, typ); c == nil || c.Status != want {
			t.Errorf("condition %s = %+v, want %s", typ, c, want)
		}
	}
	if h.c.Node() == nil || h.c.Node().UID != node.UID {
		t.Errorf("Node() not set to the created node")
	}
}

func TestRegisterAdoptsExistingNode(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	existing := &v1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:   "node1",
		UID:    "old-uid",
		Labels: map[string]string{"kubernetes.io/hostname": "stale", "team": "a"},
	}}
	h := newHarness(t, existing)
	if err := h.c.register(context.Background()); err != nil {
		t.Fatal(err)
	}
	node, err := h.client.CoreV1().Nodes().Get(ctx, "node1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if node.UID != "old-uid" {
		t.Errorf("UID = %s, want the existing one", node.UID)
	}
	if node.Labels["kubernetes.io/hostname"] != "node1-host" || node.Labels["team"] != "a" ||
		node.Labels["kubernetes.io/os"] != "linux" {
		t.Errorf("labels = %v", node.Labels)
	}
	if node.Annotations[annotationControllerManagedAttach] != "true" {
		t.Errorf("annotations = %v", node.Annotations)
	}
	// Status comes with the first sync.
	if err := h.c.syncStatus(ctx); err != nil {
		t.Fatal(err)
	}
	node, _ = h.client.CoreV1().Nodes().Get(ctx, "node1", metav1.GetOptions{})
	if c := condition(node, v1.NodeReady); c == nil || c.Status != v1.ConditionTrue {
		t.Errorf("Ready = %+v", c)
	}
}

func TestRegisterAdoptsDespiteForbiddenLabels(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	existing := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1", UID: "old-uid"}}
	h := newHarness(t, existing)
	h.client.PrependReactor("update", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "" {
			return true, nil, apierrors.NewForbidden(v1.Resource("nodes"), "node1", errors.New("NodeRestriction"))
		}
		return false, nil, nil
	})
	if err := h.c.register(ctx); err != nil {
		t.Fatal(err)
	}
	if n := h.c.Node(); n == nil || n.UID != "old-uid" {
		t.Errorf("Node() = %v, want the existing node", n)
	}
}
