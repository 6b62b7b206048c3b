//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// run runs a command and fails the test with its output.
func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// nodeCondition is the status of one of the node's conditions.
func nodeCondition(c kubernetes.Interface, typ v1.NodeConditionType) v1.ConditionStatus {
	n, err := c.CoreV1().Nodes().Get(context.Background(), nodeName, metav1.GetOptions{})
	if err != nil {
		return v1.ConditionUnknown
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type == typ {
			return cond.Status
		}
	}
	return v1.ConditionUnknown
}

// waitNoPodsOnNode waits until no pod is bound to the node.
func waitNoPodsOnNode(t *testing.T, c kubernetes.Interface, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "no pod on the node", func() (bool, error) {
		pods, err := c.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{FieldSelector: "spec.nodeName=" + nodeName})
		if err != nil {
			return false, err
		}
		var left []string
		for _, p := range pods.Items {
			d := fmt.Sprintf("%s/%s (%s", p.Namespace, p.Name, p.Status.Phase)
			if p.DeletionTimestamp != nil {
				d += ", deleted " + p.DeletionTimestamp.Format(time.RFC3339)
			}
			left = append(left, d+")")
		}
		return len(left) == 0, fmt.Errorf("%d pods: %s", len(left), strings.Join(left, ", "))
	})
}

// The node's disk nearly full: the agent's root dir on a small filesystem
// (a 400 MiB loop-mounted ext4) that a pod fills. The node reports
// DiskPressure, evicts the pod that uses the disk (and not the one beside
// it), the pressure ends, and the agent keeps working: a new pod runs.
func TestSoakDiskPressure(t *testing.T) {
	r := soakRecord(t, "the agent's root dir on a 400 MiB filesystem that a pod fills (evictionHard nodefs.available<35%)",
		"DiskPressure reported; the filling pod evicted (Evicted), the other pod kept; pressure ends; a new pod runs; nothing left behind")
	c := client(t)
	// The root dir moves under its pods' feet only when it has none.
	waitNoPodsOnNode(t, c, 3*time.Minute)
	base := leftoverBaseline(t, c)
	root := filepath.Join(state, "root")
	img := filepath.Join(state, "diskpressure.img")
	harness(t, "agent-stop")
	mounted := false
	t.Cleanup(func() {
		harness(t, "agent-stop")
		if mounted {
			if out, err := exec.Command("umount", "-l", root).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v %s", root, err, out)
			}
		}
		_ = os.Remove(img)
		harness(t, "agent-start")
		harness(t, "wait-node")
	})
	_ = exec.Command("umount", "-l", root).Run() // an earlier run's
	run(t, "truncate", "-s", "0", img)
	run(t, "truncate", "-s", "400M", img)
	run(t, "mkfs.ext4", "-q", "-F", "-m", "0", img)
	run(t, "mount", "-o", "loop", img, root)
	mounted = true
	withAgentFlags(t, "--eviction-hard=nodefs.available<35%,memory.available<100Mi", "--eviction-pressure-transition-period=30s")
	harness(t, "wait-node")
	ns := namespace(t, c)
	keep := busyboxPod("bystander", "sleep 3600", v1.RestartPolicyNever)
	createPod(t, c, ns, keep)
	waitPod(t, c, ns, "bystander", 2*time.Minute, "running", running)
	filler := busyboxPod("filler", "dd if=/dev/zero of=/data/fill bs=1M count=300; sleep 3600", v1.RestartPolicyNever)
	filler.Spec.Volumes = []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
	filler.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "data", MountPath: "/data"}}
	createPod(t, c, ns, filler)
	r.Injected("1 fill of 300 MiB")
	sawPressure := false
	p := waitPod(t, c, ns, "filler", 3*time.Minute, "evicted", func(p *v1.Pod) bool {
		sawPressure = sawPressure || nodeCondition(c, v1.NodeDiskPressure) == v1.ConditionTrue
		return p.Status.Phase == v1.PodFailed && p.Status.Reason == "Evicted"
	})
	if !sawPressure {
		waitFor(t, 30*time.Second, "DiskPressure reported", func() (bool, error) {
			return nodeCondition(c, v1.NodeDiskPressure) == v1.ConditionTrue, nil
		})
	}
	if !strings.Contains(p.Status.Message, "ephemeral-storage") {
		t.Errorf("eviction message %q does not name ephemeral-storage", p.Status.Message)
	}
	waitFor(t, 3*time.Minute, "DiskPressure over", func() (bool, error) {
		return nodeCondition(c, v1.NodeDiskPressure) == v1.ConditionFalse, nil
	})
	if b := waitPod(t, c, ns, "bystander", 10*time.Second, "still running", running); b.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Errorf("bystander restarted: %s", describe(b))
	}
	createPod(t, c, ns, busyboxPod("after", "sleep 3600", v1.RestartPolicyNever))
	waitPod(t, c, ns, "after", 2*time.Minute, "a new pod running", running)
	r.Found("DiskPressure seen, filler evicted (%q), bystander kept, pressure over, a new pod ran", p.Status.Message)
	deleteAllPods(t, c, ns, 2*time.Minute)
	waitNoLeftovers(t, c, base, 150*time.Second)
}
