//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The pods' cgroups (package podcgroups): each pod's cgroup carries the
// limits of its spec and its RuntimeClass overhead, and podPidsLimit; the
// kubepods cgroup holds them all.

// cgroupRoot is the harness's cgroupRoot (hack/cluster.sh).
const cgroupRoot = "/nodeagent"

// hostCgroup reads a control file of a cgroup below the host's mount, on
// cgroup v1 (controller hierarchy given) or v2.
func hostCgroup(t *testing.T, controller, path, v1file, v2file string) string {
	t.Helper()
	file := filepath.Join("/sys/fs/cgroup", controller, path, v1file)
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		file = filepath.Join("/sys/fs/cgroup", path, v2file)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	return strings.TrimSpace(string(b))
}

func TestPodCgroupLimits(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("reads the host's cgroups")
	}
	c := client(t)
	ns := namespace(t, c)
	v2 := false
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		v2 = true
	}

	// A RuntimeClass with an overhead, on the harness's second handler.
	rc := &nodev1.RuntimeClass{
		ObjectMeta: metav1.ObjectMeta{Name: "overhead-" + ns},
		Handler:    "test-handler",
		Overhead: &nodev1.Overhead{PodFixed: v1.ResourceList{
			v1.ResourceCPU: resource.MustParse("100m"), v1.ResourceMemory: resource.MustParse("16Mi"),
		}},
	}
	if _, err := c.NodeV1().RuntimeClasses().Create(context.Background(), rc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.NodeV1().RuntimeClasses().Delete(context.Background(), rc.Name, metav1.DeleteOptions{}) })

	guaranteed := busyboxPod("guaranteed", sleeper, v1.RestartPolicyAlways)
	guaranteed.Spec.RuntimeClassName = &rc.Name
	guaranteed.Spec.Containers[0].Resources = resources("200m", "200m", "48Mi", "48Mi")
	createPod(t, c, ns, guaranteed)
	burstable := busyboxPod("burstable", sleeper, v1.RestartPolicyAlways)
	burstable.Spec.Containers[0].Resources = v1.ResourceRequirements{
		Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("150m")},
		Limits:   v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")},
	}
	createPod(t, c, ns, burstable)
	g := waitPod(t, c, ns, "guaranteed", 120*time.Second, "running", running)
	b := waitPod(t, c, ns, "burstable", 120*time.Second, "running", running)
	if g.Spec.Overhead == nil {
		t.Fatal("the apiserver set no overhead from the RuntimeClass")
	}

	gPath := cgroupRoot + "/kubepods/pod" + string(g.UID)
	bPath := cgroupRoot + "/kubepods/burstable/pod" + string(b.UID)
	quota, shares := hostCgroup(t, "cpu", gPath, "cpu.cfs_quota_us", "cpu.max"), hostCgroup(t, "cpu", gPath, "cpu.shares", "cpu.weight")
	wantQuota, wantShares := "30000", "307" // 200m + 100m of overhead
	if v2 {
		wantQuota, wantShares = "30000 100000", "12"
	}
	if quota != wantQuota || shares != wantShares {
		t.Errorf("guaranteed pod's cgroup: quota %q shares %q, want %q %q", quota, shares, wantQuota, wantShares)
	}
	if got := hostCgroup(t, "memory", gPath, "memory.limit_in_bytes", "memory.max"); got != "67108864" { // 48Mi + 16Mi
		t.Errorf("guaranteed pod's memory limit = %s, want 64Mi with the overhead", got)
	}
	// Burstable: a memory limit (every container has one), no CPU quota
	// (no container has a CPU limit).
	if got := hostCgroup(t, "memory", bPath, "memory.limit_in_bytes", "memory.max"); got != "67108864" {
		t.Errorf("burstable pod's memory limit = %s, want 64Mi", got)
	}
	if got := hostCgroup(t, "cpu", bPath, "cpu.cfs_quota_us", "cpu.max"); got != "-1" && got != "max 100000" {
		t.Errorf("burstable pod's CPU quota = %s, want none", got)
	}
	// The burstable QoS cgroup's shares count the burstable pods' requests.
	if got := hostCgroup(t, "cpu", cgroupRoot+"/kubepods/burstable", "cpu.shares", "cpu.weight"); got == "2" || got == "1" {
		t.Errorf("burstable QoS cgroup's shares = %s with a burstable pod running", got)
	}
	// The container runs inside its pod's cgroup.
	out := kubectl(t, "exec", "-n", ns, "guaranteed", "--", "cat", "/proc/self/cgroup")
	if !strings.Contains(out, "/kubepods/pod"+string(g.UID)) {
		t.Errorf("the container's cgroups are not below its pod's: %s", out)
	}
}

func TestPodPidsLimit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("reads the host's cgroups")
	}
	withAgentFlags(t, "--pod-max-pids=40")
	c := client(t)
	ns := namespace(t, c)
	pod := busyboxPod("pids", sleeper, v1.RestartPolicyAlways)
	createPod(t, c, ns, pod)
	p := waitPod(t, c, ns, "pids", 120*time.Second, "running", running)
	path := cgroupRoot + "/kubepods/besteffort/pod" + string(p.UID)
	if got := hostCgroup(t, "pids", path, "pids.max", "pids.max"); got != "40" {
		t.Fatalf("pids.max of the pod's cgroup = %s, want 40", got)
	}
	// More processes than the limit: the fork fails inside the pod.
	out := kubectl(t, "exec", "-n", ns, "pids", "--", "sh", "-c",
		`i=0; while [ $i -lt 60 ]; do sleep 30 & i=$((i+1)); done 2>&1 | tail -n 1; echo started`)
	if !strings.Contains(out, "Resource temporarily unavailable") && !strings.Contains(out, "can't fork") {
		t.Errorf("60 processes started in a pod limited to 40: %q", out)
	}
}
