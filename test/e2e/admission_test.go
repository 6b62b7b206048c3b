//go:build e2e

package e2e

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	resourcehelper "k8s.io/component-helpers/resource"
)

func failed(p *v1.Pod) bool { return p.Status.Phase == v1.PodFailed }

// wantRejected checks the kubelet's rejection: phase Failed, the reason,
// and "Pod was rejected: " before the predicate's message.
func wantRejected(t *testing.T, p *v1.Pod, reason, message string) {
	t.Helper()
	if p.Status.Reason != reason || p.Status.Message != "Pod was rejected: "+message {
		t.Errorf("rejection: %s; want reason %q message %q", describe(p), reason, "Pod was rejected: "+message)
	}
}

// A pod bound to the node (the scheduler bypassed) whose nodeSelector the
// node does not match is refused as the kubelet refuses it.
func TestAdmissionNodeSelector(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	p := busyboxPod("elsewhere", "sleep 3600", v1.RestartPolicyAlways)
	p.Spec.NodeSelector = map[string]string{"nodeagent.e2e/absent": "true"}
	createPod(t, c, ns, p)
	got := waitPod(t, c, ns, "elsewhere", 60*time.Second, "rejection", failed)
	wantRejected(t, got, "NodeAffinity", "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector")
}

// A pod asking for a host port a running pod holds is refused.
func TestAdmissionHostPortConflict(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	port := int32(20000 + rand.IntN(10000))
	withPort := func(name string) *v1.Pod {
		p := busyboxPod(name, "sleep 3600", v1.RestartPolicyAlways)
		p.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 8080, HostPort: port, Protocol: v1.ProtocolTCP}}
		return p
	}
	createPod(t, c, ns, withPort("holder"))
	waitPod(t, c, ns, "holder", 120*time.Second, "running", running)
	createPod(t, c, ns, withPort("latecomer"))
	got := waitPod(t, c, ns, "latecomer", 60*time.Second, "rejection", failed)
	wantRejected(t, got, "NodePorts", "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports")
}

// Two pods created together that do not fit together: the first one runs
// and the second is refused, rather than each counting the other and both
// being refused.
func TestAdmissionTwoPodsOneFits(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	each := free(t, c, v1.ResourceMemory) * 6 / 10
	mk := func(name string) *v1.Pod {
		p := busyboxPod(name, "sleep 3600", v1.RestartPolicyAlways)
		p.Spec.Containers[0].Resources.Requests = v1.ResourceList{v1.ResourceMemory: *resource.NewQuantity(each, resource.BinarySI)}
		return p
	}
	createPod(t, c, ns, mk("first"))
	createPod(t, c, ns, mk("second"))
	decided := func(p *v1.Pod) bool { return p.Status.Phase == v1.PodFailed || running(p) }
	first := waitPod(t, c, ns, "first", 120*time.Second, "running or refused", decided)
	second := waitPod(t, c, ns, "second", 120*time.Second, "running or refused", decided)
	if !running(first) || second.Status.Phase != v1.PodFailed || second.Status.Reason != "OutOfmemory" {
		t.Errorf("want the first running and the second refused OutOfmemory; first: %s; second: %s", describe(first), describe(second))
	}
}

// free is the node's allocatable of a resource (bytes, or millicores of
// CPU) less what its live pods request.
func free(t *testing.T, c kubernetes.Interface, name v1.ResourceName) int64 {
	t.Helper()
	ctx := context.Background()
	n, err := c.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	value := func(q resource.Quantity) int64 {
		if name == v1.ResourceCPU {
			return q.MilliValue()
		}
		return q.Value()
	}
	alloc := n.Status.Allocatable[name]
	free := value(alloc)
	pods, err := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", nodeName).String()})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed {
			continue
		}
		// As the agent counts: pod-level requests, init containers and
		// overhead included.
		free -= value(resourcehelper.PodRequests(&p, resourcehelper.PodResourcesOptions{})[name])
	}
	if free <= 0 {
		t.Fatalf("no free %s on the node (allocatable %s)", name, alloc.String())
	}
	return free
}

// The node's status lists its images, busybox among them, with sizes.
func TestAdmissionNodeImages(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	createPod(t, c, ns, busyboxPod("puller", "sleep 3600", v1.RestartPolicyAlways))
	waitPod(t, c, ns, "puller", 120*time.Second, "running", running)
	var last []v1.ContainerImage
	waitFor(t, 60*time.Second, "busybox in status.images", func() (bool, error) {
		n, err := c.CoreV1().Nodes().Get(context.Background(), nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = n.Status.Images
		for _, img := range n.Status.Images {
			for _, name := range img.Names {
				if strings.HasPrefix(name, strings.SplitN(busybox, ":", 2)[0]) && img.SizeBytes > 0 {
					return true, nil
				}
			}
		}
		return false, nil
	})
	if len(last) > 50 {
		t.Errorf("%d images listed, want at most nodeStatusMaxImages (50)", len(last))
	}
	for i := 1; i < len(last); i++ {
		if last[i].SizeBytes > last[i-1].SizeBytes {
			t.Errorf("images not sorted by size: %d before %d", last[i-1].SizeBytes, last[i].SizeBytes)
			break
		}
	}
}
