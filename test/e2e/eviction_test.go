//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A pod whose disk emptyDir grows past its sizeLimit, and one whose
// container writes past its ephemeral-storage limit, are evicted as the
// kubelet evicts them (Failed, reason Evicted, its message and event,
// containers stopped); a pod under its limit is left alone.
func TestLocalStorageEviction(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	ctx := context.Background()
	withEmptyDir := func(name, script string) *v1.Pod {
		p := busyboxPod(name, script, v1.RestartPolicyAlways)
		limit := resource.MustParse("10Mi")
		p.Spec.Volumes = []v1.Volume{{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{SizeLimit: &limit}}}}
		p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}
		return p
	}
	createPod(t, c, ns, withEmptyDir("over", "dd if=/dev/zero of=/scratch/f bs=1M count=20 && sync && sleep 3600"))
	createPod(t, c, ns, withEmptyDir("under", "dd if=/dev/zero of=/scratch/f bs=1M count=2 && sync && sleep 3600"))
	layer := busyboxPod("layer", "dd if=/dev/zero of=/tmp/f bs=1M count=20 && sync && sleep 3600", v1.RestartPolicyAlways)
	layer.Spec.Containers[0].Resources.Limits = v1.ResourceList{v1.ResourceEphemeralStorage: resource.MustParse("10Mi")}
	// A second container with room to spare keeps the pod under the sum
	// of the limits, which the kubelet checks before each container's.
	idle := *layer.Spec.Containers[0].DeepCopy()
	idle.Name, idle.Command = "idle", []string{"sleep", "3600"}
	idle.Resources.Limits = v1.ResourceList{v1.ResourceEphemeralStorage: resource.MustParse("100Mi")}
	layer.Spec.Containers = append(layer.Spec.Containers, idle)
	createPod(t, c, ns, layer)
	for _, name := range []string{"over", "under", "layer"} {
		waitPod(t, c, ns, name, 60*time.Second, "running", running)
	}
	start := time.Now()
	evicted := func(p *v1.Pod) bool { return p.Status.Phase == v1.PodFailed }
	for _, tc := range []struct{ name, message string }{
		{"over", `Usage of EmptyDir volume "scratch" exceeds the limit "10Mi". `},
		{"layer", `Container main exceeded its local ephemeral storage limit "10Mi". `},
	} {
		p := waitPod(t, c, ns, tc.name, 45*time.Second, "Failed", evicted)
		t.Logf("%s: Failed %s after it ran", tc.name, time.Since(start).Round(100*time.Millisecond))
		if p.Status.Reason != "Evicted" || p.Status.Message != tc.message {
			t.Errorf("%s: status %s, want reason Evicted, message %q", tc.name, describe(p), tc.message)
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Terminated == nil {
				t.Errorf("%s: container %s not stopped: %+v", tc.name, cs.Name, cs.State)
			}
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == v1.DisruptionTarget {
				t.Errorf("%s: condition %+v; the kubelet sets no DisruptionTarget for local storage evictions", tc.name, cond)
			}
		}
		// Events are written asynchronously.
		waitFor(t, 15*time.Second, tc.name+": an Evicted event with the message", func() (bool, error) {
			events := podEvents(t, c, ns, tc.name)
			return hasPrefix(events, "Evicted: "+tc.message), fmt.Errorf("events: %q", events)
		})
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("evictions took %s, want them within 30s", d)
	}
	// Another check period passes: the pod under its limit still runs.
	time.Sleep(11 * time.Second)
	p, err := c.CoreV1().Pods(ns).Get(ctx, "under", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !running(p) || p.Status.ContainerStatuses[0].RestartCount != 0 || hasPrefix(podEvents(t, c, ns, "under"), "Evicted") {
		t.Errorf("under: %s, events %q; want it running, untouched", describe(p), podEvents(t, c, ns, "under"))
	}
}

// Node-pressure eviction: below the evictionHard memory.available
// threshold the agent evicts pods, the one above its request first, one
// per 10 s, with the kubelet's reason, message and DisruptionTarget
// condition; the node reports MemoryPressure.
func TestMemoryPressureEviction(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	// Any working set is above a best-effort pod's request (none).
	hog := busyboxPod("hog", sleeper, v1.RestartPolicyNever)
	createPod(t, c, ns, hog)
	waitPod(t, c, ns, "hog", 120*time.Second, "running", running)
	// 99% of the node's memory must stay available: never the case.
	withAgentFlags(t, "--eviction-hard=memory.available<99%")
	p := waitPod(t, c, ns, "hog", 120*time.Second, "evicted", func(p *v1.Pod) bool {
		return p.Status.Phase == v1.PodFailed && p.Status.Reason == "Evicted"
	})
	if !strings.HasPrefix(p.Status.Message, "The node was low on resource: memory. Threshold quantity: ") {
		t.Errorf("message %q", p.Status.Message)
	}
	found := false
	for _, cond := range p.Status.Conditions {
		found = found || (cond.Type == v1.DisruptionTarget && cond.Reason == v1.PodReasonTerminationByKubelet)
	}
	if !found {
		t.Errorf("no DisruptionTarget condition: %+v", p.Status.Conditions)
	}
	waitFor(t, 60*time.Second, "MemoryPressure on the node", func() (bool, error) {
		n, err := c.CoreV1().Nodes().Get(context.Background(), p.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == v1.NodeMemoryPressure {
				return cond.Status == v1.ConditionTrue, nil
			}
		}
		return false, nil
	})
}
