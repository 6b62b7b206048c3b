//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// Fields of a running pod's spec the apiserver lets change, honoured as
// the kubelet honours them (issue 10).

const (
	agnhost = "registry.k8s.io/e2e-test-images/agnhost:2.63.0"
	// pause is the sandbox image: always on the node, another image ID
	// than busybox's, with busybox's applets.
	pauseImage = "registry.k8s.io/pause:3.10.2"
	// sleeper sleeps until SIGTERM, then exits at once. It runs in the
	// busybox, pause and agnhost images: /bin/sh is busybox's ash or
	// dash, sleep a busybox applet.
	sleeper = "trap 'exit 0' TERM; sleep 3600 & wait"
)

// updatePod applies change to the pod's spec, retrying on conflicts.
func updatePod(t *testing.T, c kubernetes.Interface, ns, name string, change func(*v1.Pod)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := c.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(p)
		_, err = c.CoreV1().Pods(ns).Update(context.Background(), p, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("update pod %s/%s: %v", ns, name, err)
	}
}

// The Conformance spec "Pods should allow activeDeadlineSeconds to be
// updated", and the same with a deadline set at creation: the shortened
// deadline kills the running pod, which fails with DeadlineExceeded.
func TestActiveDeadlineUpdated(t *testing.T) {
	c := client(t)
	for _, tc := range []struct {
		name    string
		initial *int64
	}{
		{"set", nil},
		{"shortened", ptr.To(int64(30))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := namespace(t, c)
			pod := busyboxPod("deadline", sleeper, v1.RestartPolicyAlways)
			pod.Spec.ActiveDeadlineSeconds = tc.initial
			createPod(t, c, ns, pod)
			waitPod(t, c, ns, "deadline", 120*time.Second, "running", running)

			updatePod(t, c, ns, "deadline", func(p *v1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr.To(int64(5)) })
			// Well before a 30 s deadline from the start would end.
			p := waitPod(t, c, ns, "deadline", 20*time.Second, "Failed with DeadlineExceeded", func(p *v1.Pod) bool {
				return p.Status.Phase == v1.PodFailed
			})
			if p.Status.Reason != "DeadlineExceeded" || p.Status.Message != "Pod was active on the node longer than the specified deadline" {
				t.Errorf("reason %q, message %q; want the kubelet's DeadlineExceeded", p.Status.Reason, p.Status.Message)
			}
			// Terminal only once nothing runs, as the kubelet reports it.
			for _, cs := range p.Status.ContainerStatuses {
				if cs.State.Terminated == nil {
					t.Errorf("container %s not terminated in the Failed status: %s", cs.Name, describe(p))
				}
			}
			waitPodEvent(t, c, ns, "deadline", "DeadlineExceeded", "longer than the specified deadline", 15*time.Second)
			// It stays Failed: nothing restarts it.
			time.Sleep(3 * time.Second)
			p, err := c.CoreV1().Pods(ns).Get(context.Background(), "deadline", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if p.Status.Phase != v1.PodFailed || p.Status.ContainerStatuses[0].RestartCount != 0 {
				t.Errorf("after failing: %s", describe(p))
			}
		})
	}
}

// kubectl set image (or an update of the image): the kubelet stops the
// container and starts a new one from the new image.
func TestContainerImageChanged(t *testing.T) {
	c := client(t)
	for _, tc := range []struct {
		name, image string
		kubectl     bool
	}{
		{"agnhost", agnhost, true},
		{"pause", pauseImage, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := namespace(t, c)
			createPod(t, c, ns, busyboxPod("setimage", sleeper, v1.RestartPolicyAlways))
			before := waitPod(t, c, ns, "setimage", 120*time.Second, "running", running)
			old := before.Status.ContainerStatuses[0]

			if tc.kubectl {
				kubectl(t, "-n", ns, "set", "image", "pod/setimage", "main="+tc.image)
			} else {
				updatePod(t, c, ns, "setimage", func(p *v1.Pod) { p.Spec.Containers[0].Image = tc.image })
			}
			p := waitPod(t, c, ns, "setimage", 60*time.Second, "the new container running", func(p *v1.Pod) bool {
				if len(p.Status.ContainerStatuses) == 0 {
					return false
				}
				cs := p.Status.ContainerStatuses[0]
				if w := cs.State.Waiting; w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff") {
					return true
				}
				return cs.RestartCount == 1 && cs.State.Running != nil && cs.ContainerID != old.ContainerID
			})
			cs := p.Status.ContainerStatuses[0]
			if w := cs.State.Waiting; w != nil {
				if tc.image == agnhost {
					t.Skipf("the agnhost image is not on the node (make conformance loads it): %s", describe(p))
				}
				t.Fatalf("new image not pulled: %s", describe(p))
			}
			if cs.Image != tc.image {
				t.Errorf("status image %q, want %q", cs.Image, tc.image)
			}
			if cs.ImageID == "" || cs.ImageID == old.ImageID {
				t.Errorf("status imageID %q, want the new image's (old %q)", cs.ImageID, old.ImageID)
			}
			if last := cs.LastTerminationState.Terminated; last == nil || last.ContainerID != old.ContainerID {
				t.Errorf("last termination state %+v, want the old container's", cs.LastTerminationState)
			}
			waitPodEvent(t, c, ns, "setimage", "Killing", "Container main definition changed, will be restarted", 15*time.Second)
			// The new container keeps running: nothing restarts it again.
			time.Sleep(3 * time.Second)
			p = waitPod(t, c, ns, "setimage", 30*time.Second, "ready", func(p *v1.Pod) bool { return running(p) && podReady(p) })
			if n := p.Status.ContainerStatuses[0].RestartCount; n != 1 {
				t.Errorf("restartCount %d, want 1: %s", n, describe(p))
			}
		})
	}
}
