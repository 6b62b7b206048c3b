//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// The harness's pause image behaves as upstream's (hack/images/pause): a
// container of it runs as 65535 and ends at SIGTERM, so that deleting its
// pod takes well under the 30 s grace period (the upstream spec "Lifecycle
// sleep action zero value" counts on it), and the sandbox's pause reaps the
// orphans of a pod that shares its PID namespace.
func TestPauseImage(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)

	t.Run("stops at SIGTERM", func(t *testing.T) {
		pod := &v1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "pause"},
			Spec: v1.PodSpec{
				NodeName:                      nodeName,
				TerminationGracePeriodSeconds: ptr.To(int64(30)),
				Containers:                    []v1.Container{{Name: "pause", Image: pauseImage, ImagePullPolicy: v1.PullIfNotPresent}},
			},
		}
		createPod(t, c, ns, pod)
		waitPod(t, c, ns, "pause", 120*time.Second, "running", running)
		// The image keeps busybox's applets (TestContainerImageChanged).
		if got := strings.TrimSpace(kubectl(t, "exec", "-n", ns, "pause", "--", "id", "-u")); got != "65535" {
			t.Errorf("the pause image runs as uid %q, want upstream's 65535", got)
		}
		start := time.Now()
		if err := c.CoreV1().Pods(ns).Delete(context.Background(), "pause", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitGone(t, c, ns, "pause", 15*time.Second)
		t.Logf("pod of the pause image deleted in %s", time.Since(start).Round(time.Millisecond))
	})

	t.Run("reaps orphans", func(t *testing.T) {
		// Every second a shell starts a sleep and exits: the sleep is an
		// orphan, which the kernel hands to the namespace's first process,
		// the sandbox's pause, and which exits a second later.
		pod := busyboxPod("orphans", "while true; do sh -c 'sleep 1 &'; sleep 1; done", v1.RestartPolicyAlways)
		pod.Spec.ShareProcessNamespace = ptr.To(true)
		createPod(t, c, ns, pod)
		waitPod(t, c, ns, "orphans", 120*time.Second, "running", running)
		read := func() string {
			return kubectl(t, "exec", "-n", ns, "orphans", "--", "sh", "-c",
				"for f in /proc/[0-9]*/stat; do cat $f 2>/dev/null; done; true")
		}
		stat := read()
		if !strings.HasPrefix(stat, "1 (pause) ") {
			t.Fatalf("PID 1 of the pod is not /pause:\n%s", stat)
		}
		// A zombie lives only until pause's SIGCHLD handler runs; one seen
		// in each of several reads seconds apart is one nobody reaps.
		time.Sleep(3 * time.Second)
		var zombies []string
		for i := 0; i < 5; i++ {
			zombies = zombies[:0]
			for _, line := range strings.Split(read(), "\n") {
				if j := strings.LastIndexByte(line, ')'); j >= 0 && strings.HasPrefix(line[j+1:], " Z ") {
					zombies = append(zombies, line)
				}
			}
			if len(zombies) == 0 {
				return
			}
			time.Sleep(time.Second)
		}
		t.Errorf("zombies in the pod in every read: %q", zombies)
	})
}
