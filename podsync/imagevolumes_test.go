package podsync

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/component-base/metrics"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestPullPolicyDefault(t *testing.T) {
	for _, tc := range []struct {
		image  string
		policy v1.PullPolicy
		want   v1.PullPolicy
	}{
		{"busybox", "", v1.PullAlways},
		{"busybox:latest", "", v1.PullAlways},
		{"registry.example:5000/busybox", "", v1.PullAlways},
		{"busybox:1.36", "", v1.PullIfNotPresent},
		{"registry.example:5000/busybox:1.36", "", v1.PullIfNotPresent},
		{"busybox@sha256:2d9f1a6f3b45b9a0e2b1e0b1d7a36d4b9b1f4a6e2f1c0d9e8f7a6b5c4d3e2f1a", "", v1.PullIfNotPresent},
		{"busybox:latest", v1.PullIfNotPresent, v1.PullIfNotPresent},
		{"busybox:1.36", v1.PullNever, v1.PullNever},
	} {
		if got := pullPolicy(tc.image, tc.policy); got != tc.want {
			t.Errorf("pullPolicy(%q, %q) = %q, want %q", tc.image, tc.policy, got, tc.want)
		}
	}
}

const volumeImage = "registry.example/data:1.0"

// imageVolumePod has the image volume "data" (volumeImage, policy) that
// container "c" mounts at /data; container "other" mounts nothing.
func imageVolumePod(uid string, policy v1.PullPolicy) *v1.Pod {
	pod := testPod(uid, v1.RestartPolicyAlways)
	pod.Annotations = map[string]string{"team": "a"}
	pod.Spec.Volumes = []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{Image: &v1.ImageVolumeSource{Reference: volumeImage, PullPolicy: policy}}}}
	pod.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "data", MountPath: "/data"}}
	pod.Spec.Containers = append(pod.Spec.Containers, v1.Container{Name: "other", Image: testImage, ImagePullPolicy: v1.PullIfNotPresent})
	return pod
}

// lastConfig is the config of the last container created with name.
func (e *env) lastConfig(t *testing.T, name string) *runtimeapi.ContainerConfig {
	t.Helper()
	e.rt.mu.Lock()
	defer e.rt.mu.Unlock()
	for i := len(e.rt.containers) - 1; i >= 0; i-- {
		if e.rt.containers[i].Metadata.Name == name {
			return e.rt.containers[i]
		}
	}
	t.Fatalf("no container %q created", name)
	return nil
}

func (e *env) waitingOf(t *testing.T, uid types.UID, name string) *v1.ContainerStateWaiting {
	t.Helper()
	for _, cs := range e.status.get(uid).ContainerStatuses {
		if cs.Name == name {
			return cs.State.Waiting
		}
	}
	t.Fatalf("no status of container %q", name)
	return nil
}

func (e *env) pulls() int {
	e.images.Lock()
	defer e.images.Unlock()
	n := 0
	for _, c := range e.images.Called {
		if c == "PullImage" {
			n++
		}
	}
	return n
}

// The CRI mounts of an image volume are the kubelet's: no host path,
// read-only whatever the mount says, the image the pull returned with the
// user's reference, the pod's runtime handler and annotations, the subPath
// (or expanded subPathExpr) as ImageSubPath, the mount's propagation, no
// SELinux relabelling.
func TestImageVolumeMounts(t *testing.T) {
	e := newEnv(t)
	e.images.SetFakeImages([]string{testImage, volumeImage})
	pod := imageVolumePod("uid1", v1.PullIfNotPresent)
	h2c := v1.MountPropagationHostToContainer
	c := &pod.Spec.Containers[0]
	c.Env = []v1.EnvVar{{Name: "DIR", Value: "etc"}}
	c.VolumeMounts = []v1.VolumeMount{
		{Name: "data", MountPath: "/data"},
		{Name: "data", MountPath: "/rw", ReadOnly: false, MountPropagation: &h2c},
		{Name: "data", MountPath: "/sub", SubPath: "etc/passwd"},
		{Name: "data", MountPath: "/expr", SubPathExpr: "$(DIR)"},
	}
	e.sync(t, pod)

	img := &runtimeapi.ImageSpec{Image: volumeImage, UserSpecifiedImage: volumeImage, Annotations: map[string]string{"team": "a"}}
	priv := runtimeapi.MountPropagation_PROPAGATION_PRIVATE
	want := []*runtimeapi.Mount{
		{ContainerPath: "/data", Readonly: true, Image: img, Propagation: priv},
		{ContainerPath: "/rw", Readonly: true, Image: img, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
		{ContainerPath: "/sub", Readonly: true, Image: img, ImageSubPath: "etc/passwd", Propagation: priv},
		{ContainerPath: "/expr", Readonly: true, Image: img, ImageSubPath: "etc", Propagation: priv},
	}
	got := e.lastConfig(t, "c").Mounts
	if len(got) < len(want) {
		t.Fatalf("mounts = %v, want %v first", got, want)
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("mount %d = %v, want %v", i, got[i], want[i])
		}
	}
	for _, m := range e.lastConfig(t, "other").Mounts {
		if m.Image != nil {
			t.Errorf("container other, which mounts no image volume, got %v", m)
		}
	}
	if n := e.pulls(); n != 0 {
		t.Errorf("%d pulls of images present with IfNotPresent", n)
	}
	if ev := e.events(); !hasEvent(ev, `Container image "`+volumeImage+`" already present on machine`) {
		t.Errorf("events = %q, want Pulled for the volume's image", ev)
	}
}

// A volume image that cannot be pulled keeps the containers that mount it
// waiting with the kubelet's reasons (ErrImagePull, then ImagePullBackOff
// during the pull back-off) and events; the others start. Once pulled,
// the container starts with the image mounted.
func TestImageVolumePullFailure(t *testing.T) {
	e := newEnv(t)
	e.images.InjectError("PullImage", errors.New("manifest unknown"))
	pod := imageVolumePod("uid1", v1.PullIfNotPresent)

	_, requeue := e.sync(t, pod)
	if requeue <= 0 {
		t.Errorf("requeue = %v, want the pull back-off", requeue)
	}
	w := e.waitingOf(t, pod.UID, "c")
	if w == nil || w.Reason != "ErrImagePull" || w.Message != `Failed to pull image "`+volumeImage+`": manifest unknown` {
		t.Errorf("container c waiting = %+v, want ErrImagePull with the pull's message", w)
	}
	if _, ok := e.find(pod.UID, "c", 0); ok {
		t.Error("container c created without its volume's image")
	}
	e.containerID(t, pod.UID, "other", 0) // mounts nothing: started
	ev := e.events()
	for _, want := range []string{
		`Normal Pulling Pulling image "` + volumeImage + `"`,
		`Warning Failed Failed to pull image "` + volumeImage + `": manifest unknown`,
		"Warning Failed Error: ErrImagePull",
	} {
		if !hasEvent(ev, want) {
			t.Errorf("events = %q, want %q", ev, want)
		}
	}
	if st := e.status.get(pod.UID); st.Phase != v1.PodPending {
		t.Errorf("phase = %s, want Pending", st.Phase)
	}

	e.sync(t, pod)
	if w := e.waitingOf(t, pod.UID, "c"); w == nil || w.Reason != "ImagePullBackOff" || w.Message != `Back-off pulling image "`+volumeImage+`"` {
		t.Errorf("container c waiting = %+v, want ImagePullBackOff", w)
	}
	if ev := e.events(); !hasEvent(ev, "Normal BackOff Back-off pulling image") || !hasEvent(ev, "Warning Failed Error: ImagePullBackOff") {
		t.Errorf("events = %q, want BackOff and Error: ImagePullBackOff", ev)
	}

	e.clock.Step(requeue)
	e.sync(t, pod)
	e.containerID(t, pod.UID, "c", 0)
	if m := e.lastConfig(t, "c").Mounts[0]; m.GetImage().GetImage() != volumeImage {
		t.Errorf("mount = %v, want the pulled image", m)
	}
}

// The images of image volumes are pulled once in a sync that starts
// containers, whatever the number of containers mounting them, and not at
// all in a sync that starts none (kubernetes #138644).
func TestImageVolumePulledOncePerStartingSync(t *testing.T) {
	e := newEnv(t)
	pod := imageVolumePod("uid1", v1.PullAlways)
	pod.Spec.Containers[1].VolumeMounts = []v1.VolumeMount{{Name: "data", MountPath: "/data"}}
	e.sync(t, pod)
	if n := e.pulls(); n != 1 {
		t.Errorf("%d pulls for one image volume mounted by two containers, want 1", n)
	}
	e.events()
	e.sync(t, pod)
	if n := e.pulls(); n != 1 {
		t.Errorf("%d pulls after a sync that started nothing, want still 1", n)
	}
	if ev := e.events(); len(ev) != 0 {
		t.Errorf("events of a steady sync = %q, want none", ev)
	}
	// A restart pulls again (policy Always).
	e.exit(e.containerID(t, pod.UID, "c", 0), 1)
	e.sync(t, pod)
	if n := e.pulls(); n != 2 {
		t.Errorf("%d pulls after a restart with policy Always, want 2", n)
	}
}

func TestImageVolumeNeverPull(t *testing.T) {
	e := newEnv(t)
	pod := imageVolumePod("uid1", v1.PullNever)
	e.sync(t, pod)
	want := `Container image "` + volumeImage + `" is not present with pull policy of Never`
	if w := e.waitingOf(t, pod.UID, "c"); w == nil || w.Reason != "ErrImageNeverPull" || w.Message != want {
		t.Errorf("container c waiting = %+v, want ErrImageNeverPull", w)
	}
	if n := e.pulls(); n != 0 {
		t.Errorf("%d pulls with policy Never", n)
	}
}

func TestImageVolumeInvalidReference(t *testing.T) {
	e := newEnv(t)
	pod := imageVolumePod("uid1", v1.PullIfNotPresent)
	pod.Spec.Volumes[0].Image.Reference = "Not/A:Valid:Ref"
	e.sync(t, pod)
	if w := e.waitingOf(t, pod.UID, "c"); w == nil || w.Reason != "InvalidImageName" || !strings.Contains(w.Message, "couldn't parse image name") {
		t.Errorf("container c waiting = %+v, want InvalidImageName", w)
	}
}

func TestCheckSubPath(t *testing.T) {
	for sub, want := range map[string]string{
		"":          "",
		"etc":       "",
		"a/..b/c":   "",
		"/etc":      "must not be an absolute path",
		"a/../../x": "must not contain '..'",
		"..":        "must not contain '..'",
	} {
		err := checkSubPath(sub)
		if want == "" && err != nil || want != "" && (err == nil || err.Error() != want) {
			t.Errorf("checkSubPath(%q) = %v, want %q", sub, err, want)
		}
	}
}

// The kubelet's image volume counters: per start, the volumes requested;
// per mount, a failure only when the runtime could not mount an image.
func TestCountImageVolumes(t *testing.T) {
	reg := metrics.NewKubeRegistry()
	reg.MustRegister(imageVolumeRequested, imageVolumeMounted, imageVolumeMountErrors)
	value := func(name string) float64 {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() == name {
				return f.GetMetric()[0].GetCounter().GetValue()
			}
		}
		return 0
	}
	before := map[string]float64{}
	names := []string{"kubelet_image_volume_requested_total", "kubelet_image_volume_mounted_succeed_total", "kubelet_image_volume_mounted_errors_total"}
	for _, n := range names {
		before[n] = value(n)
	}
	c := &v1.Container{Name: "c", VolumeMounts: []v1.VolumeMount{{Name: "img", MountPath: "/a"}, {Name: "img", MountPath: "/b"}, {Name: "scratch", MountPath: "/s"}}}
	images := map[string]*runtimeapi.ImageSpec{"img": {Image: "sha256:1"}}
	countImageVolumes(c, images, nil)
	countImageVolumes(c, images, errors.New(`create container "c": rpc error: code = Unknown desc = failed to mount: ImageVolumeMountFailed: only directory subpath is supported`))
	countImageVolumes(c, nil, errors.New("no image volume"))
	for n, want := range map[string]float64{names[0]: 2, names[1]: 2, names[2]: 2} {
		if got := value(n) - before[n]; got != want {
			t.Errorf("%s grew by %v, want %v", n, got, want)
		}
	}
}
