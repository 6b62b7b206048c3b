//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// TestSidecarContainer runs a pod whose sidecar (an init container with
// restartPolicy Always) must have started (its startup probe sees the file
// it wrote) before the app container starts, keeps running beside it, and
// is stopped when the app completes: the pod succeeds.
func TestSidecarContainer(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	shared := []v1.VolumeMount{{Name: "shared", MountPath: "/shared"}}
	always := v1.ContainerRestartPolicyAlways
	p := busyboxPod("side", "cat /shared/ready; sleep 3", v1.RestartPolicyNever)
	p.Spec.Volumes = []v1.Volume{{Name: "shared", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
	p.Spec.Containers[0].VolumeMounts = shared
	p.Spec.InitContainers = []v1.Container{{
		Name: "sidecar", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent, RestartPolicy: &always,
		Command:      []string{"sh", "-c", "sleep 1; echo from-sidecar > /shared/ready; trap 'exit 0' TERM; while true; do sleep 0.2; done"},
		VolumeMounts: shared,
		StartupProbe: &v1.Probe{ProbeHandler: execHandler("test", "-f", "/shared/ready"), PeriodSeconds: 1},
	}}
	createPod(t, c, ns, p)

	got := waitPod(t, c, ns, "side", 60*time.Second, "running with its sidecar", func(p *v1.Pod) bool {
		return p.Status.Phase == v1.PodRunning && len(p.Status.InitContainerStatuses) == 1 && p.Status.InitContainerStatuses[0].State.Running != nil &&
			len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Running != nil
	})
	side, app := got.Status.InitContainerStatuses[0], got.Status.ContainerStatuses[0]
	if !*side.Started || app.State.Running.StartedAt.Before(&side.State.Running.StartedAt) {
		t.Errorf("app started at %s, sidecar at %s (started %v)", app.State.Running.StartedAt, side.State.Running.StartedAt, *side.Started)
	}
	if !podReady(got) {
		t.Errorf("pod not ready with its sidecar running: %s", describe(got))
	}

	got = waitPod(t, c, ns, "side", 60*time.Second, "succeeded with the sidecar stopped", func(p *v1.Pod) bool {
		return p.Status.Phase == v1.PodSucceeded && len(p.Status.InitContainerStatuses) == 1 && p.Status.InitContainerStatuses[0].State.Terminated != nil
	})
	if term := got.Status.InitContainerStatuses[0].State.Terminated; term.ExitCode != 0 {
		t.Errorf("sidecar ended with %d (%s), want 0 from its TERM trap", term.ExitCode, term.Reason)
	}
	if out := kubectl(t, "-n", ns, "logs", "side", "-c", "main"); !strings.Contains(out, "from-sidecar") {
		t.Errorf("app container's output %q: the sidecar's file was not there when it started", out)
	}
}
