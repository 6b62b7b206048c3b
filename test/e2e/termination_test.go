//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// terminated returns the terminated state of the pod's first container
// once the pod is done.
func terminated(t *testing.T, p *v1.Pod) *v1.ContainerStateTerminated {
	t.Helper()
	if len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Terminated == nil {
		t.Fatalf("pod %s not terminated: %s", p.Name, describe(p))
	}
	return p.Status.ContainerStatuses[0].State.Terminated
}

func podDone(p *v1.Pod) bool {
	return p.Status.Phase == v1.PodFailed || p.Status.Phase == v1.PodSucceeded
}

// TestTerminationMessageNotFromPodFiles: the agent reads the file it
// mounted at terminationMessagePath, never a volume mounted at the same
// path, and follows no link. The pod mounts a file of an emptyDir at the
// terminationMessagePath (subPath, listed before the agent's own mount),
// then swaps that file in the emptyDir for a link to a host file; an agent
// reading the volume's file would report the host file's content.
func TestTerminationMessageNotFromPodFiles(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	const marker = "nodeagent-e2e-secret-marker"
	// A host file the agent can read (the harness's state directory, as
	// TestHostPathVolume, rather than a private /tmp).
	dir := filepath.Join(state, "e2e-termination", ns)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(filepath.Dir(dir)) })
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte(marker+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The emptyDir's sub/msg is mounted over /data/msg; renaming sub (not
	// a mount point) and linking a new sub/msg relinks the host file the
	// user mount names. Exit 7 tells that the relink failed.
	p := busyboxPod("relink", `echo safe > /data/msg
mv /data/sub /data/sub2 && mkdir /data/sub && ln -s "$SECRET" /data/sub/msg || exit 7
[ "$(readlink /data/sub/msg)" = "$SECRET" ] || exit 7
exit 1`, v1.RestartPolicyNever)
	p.Spec.Volumes = []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
	p.Spec.InitContainers = []v1.Container{{
		Name: "prep", Image: busybox, ImagePullPolicy: v1.PullIfNotPresent,
		Command:      []string{"sh", "-c", "mkdir -p /data/sub && echo user-file > /data/sub/msg"},
		VolumeMounts: []v1.VolumeMount{{Name: "data", MountPath: "/data"}},
	}}
	main := &p.Spec.Containers[0]
	main.Env = []v1.EnvVar{{Name: "SECRET", Value: secret}}
	main.TerminationMessagePath = "/data/msg"
	main.VolumeMounts = []v1.VolumeMount{
		{Name: "data", MountPath: "/data"},
		{Name: "data", MountPath: "/data/msg", SubPath: "sub/msg"},
	}
	createPod(t, c, ns, p)
	got := waitPod(t, c, ns, "relink", 120*time.Second, "done", podDone)
	term := terminated(t, got)
	if strings.Contains(term.Message, marker) {
		t.Fatalf("the agent followed the pod's link to a host file: message %q", term.Message)
	}
	if term.ExitCode != 1 {
		t.Fatalf("the container did not relink the volume's file (exit %d): %s", term.ExitCode, describe(got))
	}
	if term.Message != "safe\n" {
		t.Errorf("message = %q, want %q (the agent's own termination file)", term.Message, "safe\n")
	}
}

// TestTerminationMessageBounded: a 100 MB termination file gives a 4096
// byte message.
func TestTerminationMessageBounded(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	before := agentRSS(t)
	createPod(t, c, ns, busyboxPod("big", `head -c 100000000 /dev/zero | tr '\0' a > /dev/termination-log; exit 1`, v1.RestartPolicyNever))
	got := waitPod(t, c, ns, "big", 180*time.Second, "done", podDone)
	// Reading the whole file would have added 100 MB.
	if after := agentRSS(t); after > before+40<<20 {
		t.Errorf("agent RSS grew from %d to %d MiB", before>>20, after>>20)
	}
	term := terminated(t, got)
	if term.ExitCode != 1 {
		t.Errorf("exit code %d, want 1", term.ExitCode)
	}
	if len(term.Message) != 4096 || strings.Trim(term.Message, "a") != "" {
		t.Errorf("message of %d bytes (%q...), want 4096 bytes of 'a'", len(term.Message), term.Message[:min(len(term.Message), 40)])
	}
}

// TestTerminationMessageFallbackToLogs: with FallbackToLogsOnError, a
// failed container without a termination message gets the last 80 lines
// of its log (at most 2048 bytes).
func TestTerminationMessageFallbackToLogs(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	p := busyboxPod("fallback", `for i in $(seq 1 100); do echo line-$i; done; exit 2`, v1.RestartPolicyNever)
	p.Spec.Containers[0].TerminationMessagePolicy = v1.TerminationMessageFallbackToLogsOnError
	createPod(t, c, ns, p)
	got := waitPod(t, c, ns, "fallback", 120*time.Second, "done", podDone)
	term := terminated(t, got)
	if term.ExitCode != 2 {
		t.Errorf("exit code %d, want 2", term.ExitCode)
	}
	var want strings.Builder
	for i := 21; i <= 100; i++ {
		fmt.Fprintf(&want, "line-%d\n", i)
	}
	if len(term.Message) > 2048 || !strings.HasSuffix(term.Message, "line-100\n") {
		t.Fatalf("message of %d bytes %q: want at most 2048 bytes ending with the last line", len(term.Message), term.Message)
	}
	if term.Message != want.String() {
		t.Errorf("message = %q, want the last 80 lines %q", term.Message, want.String())
	}
}

// agentRSS is the resident memory of the running nodeagent in bytes.
func agentRSS(t *testing.T) int64 {
	t.Helper()
	pid, err := os.ReadFile(filepath.Join(state, "run", "nodeagent.pid"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in the agent's status")
	return 0
}
