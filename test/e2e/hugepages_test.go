//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Huge pages (package hugepages): the node's capacity of each page size,
// admission, the containers' and pods' hugetlb limits and hugetlbfs
// emptyDirs. The pools are read once at the agent's start, as the
// kubelet's machine info: the test reserves 2 MiB pages, restarts the
// agent, and gives the machine its old count back at the end.

// hugePool2Mi is the sysfs directory of the 2 MiB pool.
const hugePool2Mi = "/sys/kernel/mm/hugepages/hugepages-2048kB"

func readHugeCount(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(hugePool2Mi, file))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return n
}

// hostHasHugetlb reports whether the host's cgroups have the hugetlb
// controller (cgroup v1 does not mount it by default).
func hostHasHugetlb() bool {
	if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return slices.Contains(strings.Fields(string(b)), "hugetlb")
	}
	_, err := os.Stat("/sys/fs/cgroup/hugetlb/cgroup.procs")
	return err == nil
}

// hostHasHugetlbRsvd reports whether the host's hugetlb controller
// limits reservations too (Linux 5.7+): kubepods has the file then.
func hostHasHugetlbRsvd() bool {
	for _, f := range []string{
		filepath.Join("/sys/fs/cgroup/hugetlb", cgroupRoot, "kubepods/hugetlb.2MB.rsvd.limit_in_bytes"),
		filepath.Join("/sys/fs/cgroup", cgroupRoot, "kubepods/hugetlb.2MB.rsvd.max"),
	} {
		if _, err := os.Stat(f); err == nil {
			return true
		}
	}
	return false
}

func TestHugePages(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("reserves huge pages on the host")
	}
	if _, err := os.Stat(hugePool2Mi); err != nil {
		t.Skipf("the machine has no 2 MiB huge pages: %v", err)
	}
	const pages = 8 // 16Mi
	old := readHugeCount(t, "nr_hugepages")
	c := client(t)
	ctx := context.Background()
	// The node's memory before: the agent running now read the pool of
	// old pages at its start.
	before, err := c.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Runs last: the pods are gone (deleted below), the machine gets its
	// count back and the agent forgets the pages again.
	t.Cleanup(func() {
		if err := os.WriteFile(filepath.Join(hugePool2Mi, "nr_hugepages"), []byte(strconv.Itoa(old)), 0o644); err != nil {
			t.Errorf("restore nr_hugepages %d: %v", old, err)
		}
		harness(t, "agent-restart")
		harness(t, "wait-node")
	})
	if err := os.WriteFile(filepath.Join(hugePool2Mi, "nr_hugepages"), []byte(strconv.Itoa(pages)), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := readHugeCount(t, "nr_hugepages"); got != pages {
		t.Skipf("the kernel reserved %d huge pages of the %d asked (memory too fragmented)", got, pages)
	}
	harness(t, "agent-restart")
	harness(t, "wait-node")

	want := resource.MustParse("16Mi")
	var node *v1.Node
	waitFor(t, 60*time.Second, "node capacity hugepages-2Mi 16Mi", func() (bool, error) {
		n, err := c.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		node = n
		capQ, allocQ := n.Status.Capacity["hugepages-2Mi"], n.Status.Allocatable["hugepages-2Mi"]
		return capQ.Cmp(want) == 0 && allocQ.Cmp(want) == 0, nil
	})
	// The huge pages are not allocatable memory: reserving them takes
	// their size (16Mi when the machine had none) off allocatable memory,
	// not off its capacity (MemTotal counts the pool).
	capBefore, allocBefore := before.Status.Capacity[v1.ResourceMemory], before.Status.Allocatable[v1.ResourceMemory]
	capAfter, allocAfter := node.Status.Capacity[v1.ResourceMemory], node.Status.Allocatable[v1.ResourceMemory]
	if capAfter.Cmp(capBefore) != 0 {
		t.Errorf("memory capacity %s -> %s when reserving huge pages, want it unchanged", capBefore.String(), capAfter.String())
	}
	if drop, wantDrop := allocBefore.Value()-allocAfter.Value(), int64(pages-old)*2<<20; drop != wantDrop {
		t.Errorf("allocatable memory %s -> %s (less %d), want less %d: the %d huge pages reserved are not held back exactly",
			allocBefore.String(), allocAfter.String(), drop, wantDrop, pages-old)
	}

	ns := namespace(t, c)
	huge := busyboxPod("huge", sleeper, v1.RestartPolicyAlways)
	huge.Spec.Containers[0].Resources = resources("100m", "100m", "64Mi", "64Mi")
	for _, l := range []v1.ResourceList{huge.Spec.Containers[0].Resources.Requests, huge.Spec.Containers[0].Resources.Limits} {
		l["hugepages-2Mi"] = resource.MustParse("4Mi")
	}
	huge.Spec.Volumes = []v1.Volume{{Name: "huge", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumHugePages}}}}
	huge.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "huge", MountPath: "/huge"}}
	// Not root: the hugetlbfs is root's 0755, the fsGroup makes it the
	// pod's to write.
	huge.Spec.SecurityContext = &v1.PodSecurityContext{RunAsUser: ptr.To[int64](1000), RunAsGroup: ptr.To[int64](1000), FSGroup: ptr.To[int64](2000)}
	createPod(t, c, ns, huge)
	p := waitPod(t, c, ns, "huge", 120*time.Second, "running", running)
	defer func() {
		_ = c.CoreV1().Pods(ns).Delete(ctx, "huge", metav1.DeleteOptions{})
		waitGone(t, c, ns, "huge", 60*time.Second)
	}()

	// A hugetlbfs of 2 MiB pages (busybox's stat does not name it: its
	// mount line does), mounted with no mode as the kubelet's (the line
	// shows one only when it is not the default 0755), its root the
	// fsGroup's (2775).
	if got := kubectl(t, "exec", "-n", ns, "huge", "--", "grep", " /huge ", "/proc/mounts"); !strings.Contains(got, " /huge hugetlbfs ") ||
		!strings.Contains(got, "pagesize=2M") || strings.Contains(got, "mode=") {
		t.Errorf("/huge is mounted as %q, want a hugetlbfs with pagesize=2M and no mode", got)
	}
	if got := strings.TrimSpace(kubectl(t, "exec", "-n", ns, "huge", "--", "stat", "-c", "%a %u %g", "/huge")); got != "2775 0 2000" {
		t.Errorf("/huge: mode, owner and group %q, want \"2775 0 2000\"", got)
	}
	// The container can use its huge pages: fallocate takes 2 pages of
	// the pool.
	free := readHugeCount(t, "free_hugepages")
	out := kubectl(t, "exec", "-n", ns, "huge", "--", "sh", "-c", "fallocate -l 4194304 /huge/f && ls -l /huge/f")
	if !strings.Contains(out, "4194304") {
		t.Errorf("fallocate of 4Mi on the hugetlbfs: %q", out)
	}
	if got := readHugeCount(t, "free_hugepages"); got > free-2 {
		t.Errorf("free huge pages %d -> %d after the container took 4Mi", free, got)
	}

	if hostHasHugetlb() {
		path := cgroupRoot + "/kubepods/pod" + string(p.UID)
		if got := hostCgroup(t, "hugetlb", path, "hugetlb.2MB.limit_in_bytes", "hugetlb.2MB.max"); got != "4194304" {
			t.Errorf("the pod's hugetlb limit = %s, want 4Mi", got)
		}
		if got := hostCgroup(t, "hugetlb", cgroupRoot+"/kubepods", "hugetlb.2MB.limit_in_bytes", "hugetlb.2MB.max"); got != "16777216" {
			t.Errorf("kubepods' hugetlb limit = %s, want the node's 16Mi", got)
		}
		// The reservations' limit too, where the kernel has one (5.7+).
		if hostHasHugetlbRsvd() {
			if got := hostCgroup(t, "hugetlb", path, "hugetlb.2MB.rsvd.limit_in_bytes", "hugetlb.2MB.rsvd.max"); got != "4194304" {
				t.Errorf("the pod's hugetlb reservation limit = %s, want 4Mi", got)
			}
		}
		// The container's own limit, and beyond it the pages are refused:
		// its 4Mi are the 2 pages of /huge/f, a 3rd fails. The script
		// ends in an echo either way, so that a refusal is not an exec
		// failure.
		out := kubectl(t, "exec", "-n", ns, "huge", "--", "sh", "-c",
			"cat /sys/fs/cgroup/hugetlb/hugetlb.2MB.limit_in_bytes /sys/fs/cgroup/hugetlb.2MB.max 2>/dev/null; "+
				"fallocate -l 2097152 /huge/g && echo took-more || echo refused")
		if !strings.Contains(out, "4194304") || !strings.Contains(out, "refused") || strings.Contains(out, "took-more") {
			t.Errorf("the container's hugetlb limit and a 3rd page beyond it: %q", out)
		}
	} else {
		t.Log("The host has no hugetlb cgroup controller: the hugetlb limits are not checked, the warning is")
		waitFor(t, 30*time.Second, "a HugePagesNotLimited event", func() (bool, error) {
			return hasPrefix(podEvents(t, c, ns, "huge"), "HugePagesNotLimited: "), nil
		})
	}

	// Admission counts the huge pages: 4Mi are taken, 16Mi more do not fit.
	big := busyboxPod("big", sleeper, v1.RestartPolicyNever)
	big.Spec.Containers[0].Resources = resources("100m", "100m", "64Mi", "64Mi")
	for _, l := range []v1.ResourceList{big.Spec.Containers[0].Resources.Requests, big.Spec.Containers[0].Resources.Limits} {
		l["hugepages-2Mi"] = resource.MustParse("16Mi")
	}
	createPod(t, c, ns, big)
	b := waitPod(t, c, ns, "big", 60*time.Second, "rejected", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodFailed })
	if b.Status.Reason != "OutOfhugepages-2Mi" {
		t.Errorf("a pod asking more huge pages than are left: %s, want reason OutOfhugepages-2Mi", describe(b))
	}
}
