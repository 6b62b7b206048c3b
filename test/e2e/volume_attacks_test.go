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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
)

// hostDir makes a directory on the host, with a file, that a pod must
// never reach; it is removed when the test ends.
func hostDir(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(state, "e2e-host", name+"-"+rand.String(5))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "HOST-SECRET"), []byte("host data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func hostUntouched(t *testing.T, dir string) {
	t.Helper()
	if b, err := os.ReadFile(filepath.Join(dir, "HOST-SECRET")); err != nil || string(b) != "host data\n" {
		t.Fatalf("the host directory %s was touched: %q, %v", dir, b, err)
	}
}

// The attack of issue 9: a container relinks "..data" of its downwardAPI
// volume to a host directory with a climbing relative link and exits 1;
// restarting it must not delete that directory. The volume is mounted
// read-only whatever the mount says, so the relink itself fails.
func TestAtomicWriterVolumeRelinkAttack(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	dir := hostDir(t, "relink")
	climb := strings.Repeat("../", 24) + strings.TrimPrefix(dir, "/")
	script := "cd /vol && ls -la /vol; ln -sfn " + climb + " ..data_evil 2>&1 && mv -T ..data_evil ..data 2>&1; " +
		"touch /vol/planted 2>&1; grep ' /vol ' /proc/mounts; exit 1"
	p := busyboxPod("relink", script, v1.RestartPolicyOnFailure)
	p.Spec.Volumes = []v1.Volume{{Name: "vol", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{
		Items: []v1.DownwardAPIVolumeFile{{Path: "name", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
	}}}}
	p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "vol", MountPath: "/vol", ReadOnly: false}}
	createPod(t, c, ns, p)
	waitPod(t, c, ns, "relink", 90*time.Second, "two restarts", func(p *v1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 2
	})
	hostUntouched(t, dir)
	// The last instance that ended: the running one may not have
	// written yet.
	logs := kubectl(t, "-n", ns, "logs", "--previous", "relink")
	if !strings.Contains(logs, "Read-only file system") || !strings.Contains(logs, " ro,") && !strings.Contains(logs, " ro ") {
		t.Errorf("the downwardAPI volume is not read-only in the container:\n%s", logs)
	}
	if err := c.CoreV1().Pods(ns).Delete(context.Background(), "relink", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, c, ns, "relink", 60*time.Second)
	hostUntouched(t, dir)
}

// The subPath symlink-swap race (CVE-2017-1002101, CVE-2021-25741): one
// container swaps a directory of a shared emptyDir for a link to a host
// directory as fast as it can while the others mount it as a subPath and
// restart; none of them ever sees the host's file.
func TestSubPathSymlinkSwapRace(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	dir := hostDir(t, "subpath-race")
	racer := "touch /results/out; while true; do rm -rf /shared/s; ln -s " + dir + " /shared/s; rm -f /shared/s; mkdir /shared/s; sleep 0.$RANDOM; done"
	check := "if [ -e /sub/HOST-SECRET ]; then echo ESCAPED >> /results/out; else echo checked >> /results/out; fi; sleep 1; exit 0"
	p := busyboxPod("race", racer, v1.RestartPolicyAlways)
	p.Spec.Volumes = []v1.Volume{
		{Name: "shared", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
		{Name: "results", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
	}
	p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "shared", MountPath: "/shared"}, {Name: "results", MountPath: "/results"}}
	for i := range 4 {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{
			Name: "check" + string(rune('a'+i)), Image: busybox, ImagePullPolicy: v1.PullIfNotPresent,
			Command:      []string{"sh", "-c", check},
			VolumeMounts: []v1.VolumeMount{{Name: "shared", MountPath: "/sub", SubPath: "s"}, {Name: "results", MountPath: "/results"}},
		})
	}
	createPod(t, c, ns, p)
	waitPod(t, c, ns, "race", 60*time.Second, "the racer running", func(p *v1.Pod) bool {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == "main" && cs.State.Running != nil {
				return true
			}
		}
		return false
	})
	// Bounded: the race runs for 60 s, the checks restart with the
	// crash-loop back-off meanwhile. The racer keeps a directory for a
	// random part of a second so that some checks start; the others meet
	// the link and are refused, or lose the directory before runc mounts
	// it (StartError).
	time.Sleep(60 * time.Second)
	out := kubectl(t, "-n", ns, "exec", "race", "-c", "main", "--", "cat", "/results/out")
	if strings.Contains(out, "ESCAPED") {
		t.Fatalf("a container saw the host's directory through its subPath:\n%s", out)
	}
	if !strings.Contains(out, "checked") {
		pod, _ := c.CoreV1().Pods(ns).Get(context.Background(), "race", metav1.GetOptions{})
		t.Logf("no check container started during the race (each start met the link): %s", describe(pod))
	}
	t.Logf("checks done: %d", strings.Count(out, "checked"))
	hostUntouched(t, dir)
	if err := c.CoreV1().Pods(ns).Delete(context.Background(), "race", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, c, ns, "race", 60*time.Second)
	hostUntouched(t, dir)
}

// subPathExpr mounts only the expanded subdirectory, and a link planted in
// the volume by another container is refused with CreateContainerConfigError.
func TestSubPathExprAndPlantedLink(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	dir := hostDir(t, "subpath-link")
	p := busyboxPod("expr", "echo mine > /mine/f; ls /all; cat /all/expr/f; sleep 3600", v1.RestartPolicyAlways)
	p.Spec.Volumes = []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
	p.Spec.InitContainers = []v1.Container{{
		Name: "plant", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent,
		Command:      []string{"sh", "-c", "mkdir -p /data/other && ln -s " + dir + " /data/escape"},
		VolumeMounts: []v1.VolumeMount{{Name: "data", MountPath: "/data"}},
	}}
	main := &p.Spec.Containers[0]
	main.Env = []v1.EnvVar{{Name: "POD_NAME", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}
	main.VolumeMounts = []v1.VolumeMount{
		{Name: "data", MountPath: "/mine", SubPathExpr: "$(POD_NAME)"},
		{Name: "data", MountPath: "/all"},
	}
	p.Spec.Containers = append(p.Spec.Containers, v1.Container{
		Name: "escape", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent,
		Command:      []string{"sh", "-c", "ls /sub; sleep 3600"},
		VolumeMounts: []v1.VolumeMount{{Name: "data", MountPath: "/sub", SubPath: "escape"}},
	})
	createPod(t, c, ns, p)
	pod := waitPod(t, c, ns, "expr", 60*time.Second, "main running and escape refused", func(p *v1.Pod) bool {
		var mainUp, refused bool
		for _, cs := range p.Status.ContainerStatuses {
			mainUp = mainUp || cs.Name == "main" && cs.State.Running != nil
			refused = refused || cs.Name == "escape" && cs.State.Waiting != nil && cs.State.Waiting.Reason == "CreateContainerConfigError"
		}
		return mainUp && refused
	})
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == "escape" && !strings.Contains(cs.State.Waiting.Message, "outside the volume") {
			t.Errorf("escape refused with %q, want it to say the subPath leads outside the volume", cs.State.Waiting.Message)
		}
	}
	waitFor(t, 30*time.Second, "main's output", func() (bool, error) {
		out := kubectl(t, "-n", ns, "logs", "expr", "-c", "main")
		return strings.Contains(out, "mine"), nil
	})
	out := kubectl(t, "-n", ns, "logs", "expr", "-c", "main")
	if !strings.Contains(out, "expr\n") || !strings.Contains(out, "other\n") {
		t.Errorf("the whole volume should hold the expanded subdirectory beside the others: %q", out)
	}
	hostUntouched(t, dir)
}

// Secret and projected volumes are memory-backed: their values never reach
// the node's disk.
func TestSecretVolumeOnTmpfs(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	if _, err := c.CoreV1().Secrets(ns).Create(context.Background(), &v1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "s"}, StringData: map[string]string{"k": "secret-value"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := busyboxPod("tmpfs", "stat -f -c 'fs=%T' /secret; cat /secret/k; echo; touch /secret/x 2>&1; echo done", v1.RestartPolicyNever)
	p.Spec.Volumes = []v1.Volume{{Name: "s", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "s"}}}}
	p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "s", MountPath: "/secret"}}
	createPod(t, c, ns, p)
	waitPod(t, c, ns, "tmpfs", 60*time.Second, "succeeded", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodSucceeded })
	out := kubectl(t, "-n", ns, "logs", "tmpfs")
	for _, want := range []string{"fs=tmpfs", "secret-value", "Read-only file system", "done"} {
		if !strings.Contains(out, want) {
			t.Errorf("pod output lacks %q:\n%s", want, out)
		}
	}
}

// A pod log directory nodeagent did not make (a co-resident kubelet's)
// survives garbage collection; one it made for a pod that is gone does not.
func TestForeignPodLogDirSurvivesGC(t *testing.T) {
	id := rand.String(8)
	foreign := filepath.Join("/var/log/pods", "kube-system_foreign-"+id+"_"+id, "c")
	ours := filepath.Join("/var/log/pods", "e2e_gone-"+id+"_gone-"+id)
	if err := os.MkdirAll(foreign, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(filepath.Dir(foreign)) })
	if err := os.WriteFile(filepath.Join(foreign, "0.log"), []byte("kubelet's\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(ours, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ours, ".nodeagent"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Garbage collection runs when the agent starts.
	harness(t, "agent-restart")
	waitFor(t, 90*time.Second, "nodeagent's log directory of a gone pod removed", func() (bool, error) {
		_, err := os.Stat(ours)
		return os.IsNotExist(err), err
	})
	if b, err := os.ReadFile(filepath.Join(foreign, "0.log")); err != nil || string(b) != "kubelet's\n" {
		t.Errorf("a foreign pod log directory was touched: %q, %v", b, err)
	}
	harness(t, "wait-node")
}

// A non-root container reads a secret of mode 0600 through the pod's
// fsGroup, and what it writes in an emptyDir gets that group.
func TestFSGroupVolumeOwnership(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	if _, err := c.CoreV1().Secrets(ns).Create(context.Background(), &v1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "s"}, StringData: map[string]string{"k": "for-the-group"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	user, group := int64(1000), int64(2000)
	mode := int32(0o600)
	p := busyboxPod("fsgroup", "id; cat /secret/k; echo; touch /scratch/f && stat -c 'group=%g' /scratch/f", v1.RestartPolicyNever)
	p.Spec.SecurityContext = &v1.PodSecurityContext{RunAsUser: &user, FSGroup: &group}
	p.Spec.Volumes = []v1.Volume{
		{Name: "s", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "s", DefaultMode: &mode}}},
		{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
	}
	p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "s", MountPath: "/secret"}, {Name: "scratch", MountPath: "/scratch"}}
	createPod(t, c, ns, p)
	waitPod(t, c, ns, "fsgroup", 60*time.Second, "finished", func(p *v1.Pod) bool {
		return p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed
	})
	out := kubectl(t, "-n", ns, "logs", "fsgroup")
	for _, want := range []string{"uid=1000", "2000", "for-the-group", "group=2000"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
