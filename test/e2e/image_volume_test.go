//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// imageVolumePod runs busybox with the image volume "img" of reference ref
// (pull policy IfNotPresent: the harness is offline, busybox is preloaded)
// mounted by its container "main" at /img, at /rw with readOnly false, and
// with the subPath bin at /sub. Its container "free" mounts nothing.
func imageVolumePod(name, ref string) *v1.Pod {
	p := busyboxPod(name, "sleep 3600", v1.RestartPolicyAlways)
	p.Spec.Volumes = []v1.Volume{{Name: "img", VolumeSource: v1.VolumeSource{
		Image: &v1.ImageVolumeSource{Reference: ref, PullPolicy: v1.PullIfNotPresent},
	}}}
	p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{
		{Name: "img", MountPath: "/img"},
		{Name: "img", MountPath: "/rw", ReadOnly: false},
		{Name: "img", MountPath: "/sub", SubPath: "bin"},
	}
	free := p.Spec.Containers[0]
	free.Name, free.VolumeMounts = "free", nil
	p.Spec.Containers = append(p.Spec.Containers, free)
	return p
}

// An image volume shows the image's files read-only, whole or by subPath.
func TestImageVolume(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	createPod(t, c, ns, imageVolumePod("withimage", busybox))
	waitPod(t, c, ns, "withimage", 90*time.Second, "running", running)

	exec := func(script string) string {
		return strings.TrimSpace(kubectl(t, "exec", "-n", ns, "withimage", "-c", "main", "--", "sh", "-c", script))
	}
	// The volume is the busybox image: its busybox is the container's.
	if out := exec("cmp /img/bin/busybox /bin/busybox && echo same"); out != "same" {
		t.Errorf("/img/bin/busybox: %q, want the image's busybox", out)
	}
	// Read-only, even where the mount does not ask for it.
	for _, dir := range []string{"/img", "/rw", "/sub"} {
		if out := exec("touch " + dir + "/x 2>&1 && echo writable || echo refused"); !strings.HasSuffix(out, "refused") || !strings.Contains(out, "Read-only file system") {
			t.Errorf("writing into %s: %q, want a read-only file system", dir, out)
		}
	}
	// A subPath is a directory inside the image.
	if out := exec("cmp /sub/busybox /bin/busybox && echo same"); out != "same" {
		t.Errorf("subPath bin: %q, want the image's bin", out)
	}
	if out := exec("grep -E ' /(img|rw|sub) ' /proc/mounts | grep -vc ' ro[, ]' || true"); out != "0" {
		t.Errorf("%s mounts of the image volume not read-only:\n%s", out, exec("grep -E ' /(img|rw|sub) ' /proc/mounts"))
	}

	// containerd mounts directories only (the KEP's non-goal): a file
	// subPath fails the container's creation, with the runtime's reason.
	file := imageVolumePod("filesubpath", busybox)
	file.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "img", MountPath: "/tools/bb", SubPath: "bin/busybox"}}
	createPod(t, c, ns, file)
	waitPod(t, c, ns, "filesubpath", 90*time.Second, "CreateContainerError on the file subPath", func(p *v1.Pod) bool {
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; cs.Name == "main" && w != nil && w.Reason == "CreateContainerError" {
				return strings.Contains(w.Message, "only directory subpath is supported")
			}
		}
		return false
	})
}

// An image volume whose image cannot be pulled keeps the container that
// mounts it waiting with ErrImagePull, then ImagePullBackOff, with the
// kubelet's events; the container that does not mount it runs.
func TestImageVolumeMissingImage(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	ref := badMissingImage()
	createPod(t, c, ns, imageVolumePod("missingimage", ref))
	reasons := map[string]bool{}
	p := waitPod(t, c, ns, "missingimage", 90*time.Second, "ErrImagePull then ImagePullBackOff", func(p *v1.Pod) bool {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == "main" && cs.State.Waiting != nil {
				reasons[cs.State.Waiting.Reason] = true
			}
		}
		return reasons["ErrImagePull"] && reasons["ImagePullBackOff"]
	})
	if p.Status.Phase != v1.PodPending {
		t.Errorf("phase %s, want Pending", p.Status.Phase)
	}
	waitPod(t, c, ns, "missingimage", 60*time.Second, "container free running", func(p *v1.Pod) bool {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == "free" {
				return cs.State.Running != nil
			}
		}
		return false
	})
	// Events are written asynchronously, after the status may be.
	for _, want := range [][2]string{
		{"Pulling", `Pulling image "` + ref + `"`},
		{"Failed", `Failed to pull image "` + ref + `"`},
		{"Failed", "Error: ErrImagePull"},
		{"BackOff", `Back-off pulling image "` + ref + `"`},
	} {
		waitPodEvent(t, c, ns, "missingimage", want[0], want[1], 15*time.Second)
	}
}
