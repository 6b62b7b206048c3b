package podsync

import (
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/cri"
)

const testImage2 = "registry.example/app:2.0"

func TestContainerHash(t *testing.T) {
	c := v1.Container{Name: "c", Image: testImage, Command: []string{"sleep"}}
	h := containerHash(&c)
	if h == "" || h != containerHash(&c) {
		t.Fatalf("containerHash = %q, not stable", h)
	}
	// Only the fields that may change on a running pod count.
	other := c
	other.Command = []string{"true"}
	other.Env = []v1.EnvVar{{Name: "A", Value: "b"}}
	if containerHash(&other) != h {
		t.Error("hash depends on a field other than name and image")
	}
	other.Image = testImage2
	if containerHash(&other) == h {
		t.Error("hash ignores the image")
	}
	cur := &runtimeapi.ContainerStatus{Annotations: map[string]string{cri.ContainerHashAnnotation: h}}
	if specChanged(&c, cur) || !specChanged(&other, cur) {
		t.Error("specChanged does not compare the hashes")
	}
	if specChanged(&other, &runtimeapi.ContainerStatus{}) {
		t.Error("a container without the hash annotation counts as changed")
	}
}

func TestStatusImage(t *testing.T) {
	c := &v1.Container{Name: "c", Image: testImage2}
	old := containerHash(&v1.Container{Name: "c", Image: testImage})
	for _, tc := range []struct {
		name string
		cur  *runtimeapi.ContainerStatus
		want string
	}{
		{"runs the spec", &runtimeapi.ContainerStatus{
			Annotations: map[string]string{cri.ContainerHashAnnotation: containerHash(c)},
			Image:       &runtimeapi.ImageSpec{Image: "other.tag/app:2.0"},
		}, testImage2},
		{"runs the old image", &runtimeapi.ContainerStatus{
			Annotations: map[string]string{cri.ContainerHashAnnotation: old},
			Image:       &runtimeapi.ImageSpec{Image: testImage},
		}, testImage},
		{"old image gone", &runtimeapi.ContainerStatus{
			Annotations: map[string]string{cri.ContainerHashAnnotation: old},
			Image:       &runtimeapi.ImageSpec{Image: "sha256:abc", UserSpecifiedImage: testImage},
		}, testImage},
		{"no hash", &runtimeapi.ContainerStatus{Image: &runtimeapi.ImageSpec{Image: testImage}}, testImage2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := statusImage(c, tc.cur); got != tc.want {
				t.Errorf("statusImage = %q, want %q", got, tc.want)
			}
		})
	}
}

// kubectl set image: the running container is stopped and a new one runs
// the new image, with the next restart count, whatever the restartPolicy.
func TestImageChangeRestartsContainer(t *testing.T) {
	for _, policy := range []v1.RestartPolicy{v1.RestartPolicyAlways, v1.RestartPolicyNever} {
		t.Run(string(policy), func(t *testing.T) {
			e := newEnv(t)
			e.images.SetFakeImages([]string{testImage, testImage2})
			pod := testPod("img", policy)
			e.sync(t, pod)
			old := e.containerID(t, pod.UID, "c", 0)
			if got, want := e.rt.containers[0].Annotations[cri.ContainerHashAnnotation], containerHash(&pod.Spec.Containers[0]); got != want {
				t.Fatalf("hash annotation = %q, want %q", got, want)
			}
			e.observe(t, pod)
			// A sync without change keeps the container.
			e.sync(t, pod)
			if len(e.rt.stoppedIDs()) != 0 || e.containerCount() != 1 {
				t.Fatal("unchanged container restarted")
			}
			e.events()

			pod.Spec.Containers[0].Image = testImage2
			if terminal, _ := e.sync(t, pod); terminal {
				t.Fatal("pod terminal after an image change")
			}
			if !slices.Contains(e.rt.stoppedIDs(), old) {
				t.Fatal("old container not stopped")
			}
			if !hasEvent(e.events(), "Normal Killing Container c definition changed, will be restarted") {
				t.Error("no Killing event")
			}
			id, ok := e.find(pod.UID, "c", 1)
			if !ok {
				t.Fatal("no new container")
			}
			cfg := e.rt.containers[len(e.rt.containers)-1]
			if cfg.Image.UserSpecifiedImage != testImage2 || cfg.Annotations[cri.ContainerHashAnnotation] != containerHash(&pod.Spec.Containers[0]) {
				t.Errorf("new container: image %q, hash %q; want the new spec's", cfg.Image.UserSpecifiedImage, cfg.Annotations[cri.ContainerHashAnnotation])
			}
			st := e.status.get(pod.UID)
			if st.Phase != v1.PodRunning {
				t.Errorf("phase = %s, want Running", st.Phase)
			}
			cs := st.ContainerStatuses[0]
			if cs.RestartCount != 1 || cs.State.Running == nil || cs.ContainerID != "containerd://"+id || cs.Image != testImage2 {
				t.Errorf("container status = %+v; want the new container running, restartCount 1", cs)
			}
			if cs.LastTerminationState.Terminated == nil {
				t.Error("no last termination state")
			}

			// The next sync leaves the new container alone.
			e.observe(t, pod)
			n := e.containerCount()
			e.sync(t, pod)
			if e.containerCount() != n {
				t.Error("new container restarted again")
			}
		})
	}
}

// A running sidecar whose image changed restarts too (the kubelet's
// "Init container ... definition changed").
func TestImageChangeRestartsSidecar(t *testing.T) {
	e := newEnv(t)
	e.images.SetFakeImages([]string{testImage, testImage2})
	pod := sidecarPod("side-img", v1.RestartPolicyAlways)
	for i := 0; i < 3; i++ {
		e.sync(t, pod)
		if id, ok := e.find(pod.UID, "setup", 0); ok {
			e.exit(id, 0)
		}
	}
	old := e.containerID(t, pod.UID, "proxy", 0)
	e.containerID(t, pod.UID, "c", 0)
	e.events()

	pod.Spec.InitContainers[0].Image = testImage2
	e.sync(t, pod)
	if !slices.Contains(e.rt.stoppedIDs(), old) {
		t.Fatal("old sidecar not stopped")
	}
	if !hasEvent(e.events(), "Normal Killing Init container proxy definition changed") {
		t.Error("no Killing event")
	}
	if _, ok := e.find(pod.UID, "proxy", 1); !ok {
		t.Fatal("no new sidecar")
	}
	if _, ok := e.find(pod.UID, "c", 1); ok {
		t.Error("app container restarted")
	}
}
