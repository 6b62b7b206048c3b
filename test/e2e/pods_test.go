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
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNodeRegistered(t *testing.T) {
	c := client(t)
	n, err := c.CoreV1().Nodes().Get(context.Background(), nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ok, msg := nodeReady(n); !ok {
		t.Fatalf("node not ready: %s", msg)
	}
	for _, l := range []string{"kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch"} {
		if n.Labels[l] == "" {
			t.Errorf("label %s missing", l)
		}
	}
	for _, r := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory, v1.ResourcePods, v1.ResourceEphemeralStorage} {
		if q, ok := n.Status.Allocatable[r]; !ok || q.IsZero() {
			t.Errorf("allocatable %s missing", r)
		}
	}
	if !strings.HasPrefix(n.Status.NodeInfo.ContainerRuntimeVersion, "containerd://") {
		t.Errorf("containerRuntimeVersion = %q", n.Status.NodeInfo.ContainerRuntimeVersion)
	}
	if _, err := c.CoordinationV1().Leases("kube-node-lease").Get(context.Background(), nodeName, metav1.GetOptions{}); err != nil {
		t.Errorf("lease: %v", err)
	}
}

// A plain `kubectl run` pod: scheduled by the scheduler, with the
// service-account volume the admission plugin adds, runs with an IP, and
// its log file and /var/log/containers link hold its output.
func TestKubectlRunPlainPod(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	kubectl(t, "-n", ns, "run", "hello", "--image="+busybox, "--image-pull-policy=IfNotPresent", "--restart=Never",
		"--", "sh", "-c", "echo hello from nodeagent; cat /var/run/secrets/kubernetes.io/serviceaccount/namespace; echo; sleep 3600")
	p := waitPod(t, c, ns, "hello", 60*time.Second, "running", running)
	if p.Status.PodIP == "" || len(p.Status.PodIPs) == 0 {
		t.Errorf("no pod IP: %s", describe(p))
	}
	if p.Status.HostIP != "192.0.2.10" {
		t.Errorf("hostIP = %q", p.Status.HostIP)
	}
	hasSA := false
	for _, v := range p.Spec.Volumes {
		hasSA = hasSA || strings.HasPrefix(v.Name, "kube-api-access-")
	}
	if !hasSA {
		t.Errorf("pod has no kube-api-access volume")
	}
	for _, ct := range []v1.PodConditionType{v1.PodReady, v1.ContainersReady, v1.PodInitialized, v1.PodReadyToStartContainers, v1.PodScheduled} {
		if !hasCondition(p, ct) {
			t.Errorf("condition %s not True: %+v", ct, p.Status.Conditions)
		}
	}
	cs := p.Status.ContainerStatuses[0]
	if !strings.HasPrefix(cs.ContainerID, "containerd://") || cs.ImageID == "" || cs.Started == nil || !*cs.Started || !cs.Ready {
		t.Errorf("container status incomplete: %+v", cs)
	}
	logFile := filepath.Join("/var/log/pods", ns+"_hello_"+string(p.UID), "hello", "0.log")
	waitFor(t, 10*time.Second, "log content", func() (bool, error) {
		b, err := os.ReadFile(logFile)
		return strings.Contains(string(b), "hello from nodeagent") && strings.Contains(string(b), ns), err
	})
	id := strings.TrimPrefix(cs.ContainerID, "containerd://")
	link := filepath.Join("/var/log/containers", "hello_"+ns+"_hello-"+id+".log")
	if target, err := os.Readlink(link); err != nil || target != logFile {
		t.Errorf("log link %s -> %q (%v), want %s", link, target, err, logFile)
	}
	// Deleting it removes the log directory and link.
	kubectl(t, "-n", ns, "delete", "pod", "hello", "--grace-period=1", "--wait=true", "--timeout=60s")
	if _, err := os.Stat(filepath.Dir(logFile)); !os.IsNotExist(err) {
		t.Errorf("log directory left after delete: %v", err)
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Errorf("log link left after delete: %v", err)
	}
}

func hasCondition(p *v1.Pod, t v1.PodConditionType) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

func TestExitCodes(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	createPod(t, c, ns, busyboxPod("ok", "exit 0", v1.RestartPolicyNever))
	createPod(t, c, ns, busyboxPod("fail", "exit 3", v1.RestartPolicyNever))
	createPod(t, c, ns, busyboxPod("retry", "sleep 1; exit 1", v1.RestartPolicyOnFailure))

	p := waitPod(t, c, ns, "ok", 60*time.Second, "Succeeded", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodSucceeded })
	if term := p.Status.ContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 0 || term.Reason != "Completed" {
		t.Errorf("ok: %s", describe(p))
	}
	p = waitPod(t, c, ns, "fail", 60*time.Second, "Failed", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodFailed })
	if term := p.Status.ContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 3 || term.Reason != "Error" {
		t.Errorf("fail: %s", describe(p))
	}
	p = waitPod(t, c, ns, "retry", 60*time.Second, "a restart", func(p *v1.Pod) bool {
		return len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].RestartCount >= 1
	})
	if p.Status.Phase != v1.PodRunning && p.Status.Phase != v1.PodPending {
		t.Errorf("retry: phase %s", p.Status.Phase)
	}
	if last := p.Status.ContainerStatuses[0].LastTerminationState.Terminated; last == nil || last.ExitCode != 1 {
		t.Errorf("retry: lastState %s", describe(p))
	}
}

func TestCrashLoopBackOff(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	createPod(t, c, ns, busyboxPod("crash", "exit 1", v1.RestartPolicyAlways))
	p := waitPod(t, c, ns, "crash", 90*time.Second, "CrashLoopBackOff", func(p *v1.Pod) bool {
		if len(p.Status.ContainerStatuses) == 0 {
			return false
		}
		cs := p.Status.ContainerStatuses[0]
		return cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff" && cs.RestartCount >= 1
	})
	if last := p.Status.ContainerStatuses[0].LastTerminationState.Terminated; last == nil || last.ExitCode != 1 {
		t.Errorf("lastState: %s", describe(p))
	}
	// The back-off is the kubelet's: the second restart comes no sooner
	// than 10 s after the first exit.
	start := time.Now()
	waitPod(t, c, ns, "crash", 90*time.Second, "second restart", func(p *v1.Pod) bool {
		return p.Status.ContainerStatuses[0].RestartCount >= 2
	})
	if d := time.Since(start); d < 5*time.Second {
		t.Errorf("second restart after %s: no back-off", d)
	}
	for _, r := range []string{"Pulled", "Created", "Started", "BackOff"} {
		waitPodEvent(t, c, ns, "crash", r, "", 15*time.Second)
	}
}

func TestMissingImage(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	bad := busyboxPod("missing", "sleep 3600", v1.RestartPolicyAlways)
	bad.Spec.Containers[0].Image = "127.0.0.1:1/missing:v1"
	createPod(t, c, ns, bad)
	createPod(t, c, ns, busyboxPod("good", "sleep 3600", v1.RestartPolicyAlways))
	reasons := map[string]bool{}
	waitPod(t, c, ns, "missing", 90*time.Second, "ErrImagePull then ImagePullBackOff", func(p *v1.Pod) bool {
		if len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].State.Waiting != nil {
			reasons[p.Status.ContainerStatuses[0].State.Waiting.Reason] = true
		}
		return reasons["ErrImagePull"] && reasons["ImagePullBackOff"]
	})
	waitPod(t, c, ns, "good", 60*time.Second, "running", running)
}

func TestGracefulDeletion(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	// Exits on SIGTERM: deleted well before its grace period ends.
	quick := busyboxPod("quick", "trap 'exit 0' TERM; echo trapped; while true; do sleep 0.1; done", v1.RestartPolicyAlways)
	grace := int64(30)
	quick.Spec.TerminationGracePeriodSeconds = &grace
	// Ignores SIGTERM: killed when its 4 s grace period ends.
	stubborn := busyboxPod("stubborn", "trap '' TERM; echo trapped; while true; do sleep 0.1; done", v1.RestartPolicyAlways)
	g4 := int64(4)
	stubborn.Spec.TerminationGracePeriodSeconds = &g4
	createPod(t, c, ns, quick)
	createPod(t, c, ns, stubborn)
	waitPod(t, c, ns, "quick", 60*time.Second, "running", running)
	waitPod(t, c, ns, "stubborn", 60*time.Second, "running", running)
	// A shell deleted before it set its trap dies at once (or waits the
	// whole period): wait for the traps.
	for _, name := range []string{"quick", "stubborn"} {
		waitFor(t, 30*time.Second, name+" trapping SIGTERM", func() (bool, error) {
			return strings.Contains(kubectlOut(t, "logs", "-n", ns, name), "trapped"), nil
		})
	}

	start := time.Now()
	if err := c.CoreV1().Pods(ns).Delete(context.Background(), "quick", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, c, ns, "quick", 25*time.Second)
	t.Logf("pod exiting on SIGTERM deleted in %s", time.Since(start))

	start = time.Now()
	if err := c.CoreV1().Pods(ns).Delete(context.Background(), "stubborn", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, c, ns, "stubborn", 30*time.Second)
	if d := time.Since(start); d < 4*time.Second {
		t.Errorf("pod ignoring SIGTERM deleted after %s, before its 4 s grace period", d)
	}
}

func TestUnsupportedFeatureRejected(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	p := busyboxPod("pvc", "sleep 3600", v1.RestartPolicyAlways)
	p.Spec.Volumes = []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}
	createPod(t, c, ns, p)
	createPod(t, c, ns, busyboxPod("fine", "sleep 3600", v1.RestartPolicyAlways))
	got := waitPod(t, c, ns, "pvc", 60*time.Second, "rejection", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodFailed })
	if got.Status.Reason != "UnsupportedPodSpec" || !strings.Contains(got.Status.Message, `volume "data"`) {
		t.Errorf("rejection: %s", describe(got))
	}
	waitPod(t, c, ns, "fine", 60*time.Second, "running", running)
}

func TestConfigMapSecretEnvAndVolumes(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	ctx := context.Background()
	if _, err := c.CoreV1().ConfigMaps(ns).Create(ctx, &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}, Data: map[string]string{"greeting": "hi"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().Secrets(ns).Create(ctx, &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec"}, StringData: map[string]string{"pw": "s3cret"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := busyboxPod("vols", "echo env=$GREETING/$POD_NAME; cat /cm/greeting /sec/pw /pod/labels; echo; ls /scratch && echo done", v1.RestartPolicyNever)
	p.Labels = map[string]string{"app": "vols"}
	p.Spec.Containers[0].Env = []v1.EnvVar{
		{Name: "GREETING", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "cm"}, Key: "greeting"}}},
		{Name: "POD_NAME", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
	}
	p.Spec.Volumes = []v1.Volume{
		{Name: "cm", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "cm"}}}},
		{Name: "sec", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "sec"}}},
		{Name: "pod", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{Items: []v1.DownwardAPIVolumeFile{{Path: "labels", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels"}}}}}},
		{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
	}
	p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "cm", MountPath: "/cm"}, {Name: "sec", MountPath: "/sec"}, {Name: "pod", MountPath: "/pod"}, {Name: "scratch", MountPath: "/scratch"}}
	created := createPod(t, c, ns, p)
	got := waitPod(t, c, ns, "vols", 60*time.Second, "Succeeded", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed })
	b, _ := os.ReadFile(mainLog(created))
	for _, want := range []string{"env=hi/vols", "hi", "s3cret", `app="vols"`, "done"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("output lacks %q: %s (%s)", want, b, describe(got))
		}
	}
	// A missing configMap is a CreateContainerConfigError, and the pod waits;
	// once the configMap is there, the container starts with its value (the
	// agent watches it: the creation wakes the pod).
	bad := busyboxPod("badcm", "echo X=$X", v1.RestartPolicyNever)
	bad.Spec.Containers[0].Env = []v1.EnvVar{{Name: "X", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "nope"}, Key: "k"}}}}
	badPod := createPod(t, c, ns, bad)
	waitPod(t, c, ns, "badcm", 60*time.Second, "CreateContainerConfigError", func(p *v1.Pod) bool {
		return len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].State.Waiting != nil &&
			p.Status.ContainerStatuses[0].State.Waiting.Reason == "CreateContainerConfigError"
	})
	time.Sleep(5 * time.Second) // the pod's retries are seconds apart by now
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "nope"}, Data: map[string]string{"k": "late"}}
	if _, err := c.CoreV1().ConfigMaps(ns).Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	made := time.Now()
	got = waitPod(t, c, ns, "badcm", 60*time.Second, "Succeeded once its configMap exists", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed })
	t.Logf("the pod ended %v after its configMap was created", time.Since(made).Round(100*time.Millisecond))
	b, _ = os.ReadFile(mainLog(badPod))
	if !strings.Contains(string(b), "X=late") {
		t.Errorf("output lacks X=late: %s (%s)", b, describe(got))
	}
}

// A pod that does not fit the node is rejected at admission as the
// kubelet does.
func TestAdmissionOutOfMemory(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	p := busyboxPod("huge", "sleep 3600", v1.RestartPolicyAlways)
	p.Spec.Containers[0].Resources.Requests = v1.ResourceList{v1.ResourceMemory: resource.MustParse("100Ti")}
	createPod(t, c, ns, p)
	got := waitPod(t, c, ns, "huge", 60*time.Second, "rejection", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodFailed })
	if got.Status.Reason != "OutOfmemory" {
		t.Errorf("rejection: %s", describe(got))
	}
}

// TestHostPathVolume mounts a host directory created on demand
// (DirectoryOrCreate) and a host file (File): what the container writes is
// on the host, and the directory stays when the pod is deleted.
func TestHostPathVolume(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	dir := filepath.Join(state, "e2e-hostpath", ns)
	t.Cleanup(func() { _ = os.RemoveAll(filepath.Dir(dir)) })
	dirOrCreate, file := v1.HostPathDirectoryOrCreate, v1.HostPathFile
	p := busyboxPod("hostpath", "echo from-pod > /host/out; cat /hostname", v1.RestartPolicyNever)
	p.Spec.Volumes = []v1.Volume{
		{Name: "dir", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: dir, Type: &dirOrCreate}}},
		{Name: "file", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/etc/hostname", Type: &file}}},
	}
	p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "dir", MountPath: "/host"}, {Name: "file", MountPath: "/hostname", ReadOnly: true}}
	createPod(t, c, ns, p)
	waitPod(t, c, ns, "hostpath", 60*time.Second, "succeeded", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodSucceeded })
	if b, err := os.ReadFile(filepath.Join(dir, "out")); err != nil || string(b) != "from-pod\n" {
		t.Errorf("file the pod wrote on the host: %q, %v", b, err)
	}
	host, _ := os.ReadFile("/etc/hostname")
	if out := kubectl(t, "-n", ns, "logs", "hostpath"); out != string(host) {
		t.Errorf("the pod read %q from the host's /etc/hostname, want %q", out, host)
	}
	if err := c.CoreV1().Pods(ns).Delete(context.Background(), "hostpath", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, c, ns, "hostpath", 60*time.Second)
	if _, err := os.Stat(filepath.Join(dir, "out")); err != nil {
		t.Errorf("the host directory lost the pod's file when the pod went: %v", err)
	}
}
