//go:build e2e

package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// kubectl exec -it in a real terminal (tmux): a resize of the terminal
// reaches the container, as `stty size` shows.
func TestKubectlExecTTYResize(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	createPod(t, c, ns, busyboxPod("tty", "sleep 3600", v1.RestartPolicyAlways))
	waitPod(t, c, ns, "tty", 60*time.Second, "running", running)

	session := "na-e2e-" + ns
	tmux := func(args ...string) string {
		out, err := exec.Command("tmux", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	kubectlPath := filepath.Join(cache, "bin/kubectl")
	tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "30",
		kubectlPath+" --kubeconfig "+filepath.Join(state, "admin.kubeconfig")+" -n "+ns+" exec -it tty -- sh")
	t.Cleanup(func() { _ = exec.Command("tmux", "kill-session", "-t", session).Run() })

	sttySize := func(want string) {
		t.Helper()
		waitFor(t, 20*time.Second, "stty size "+want, func() (bool, error) {
			tmux("send-keys", "-t", session, "clear; stty size", "Enter")
			time.Sleep(300 * time.Millisecond)
			return strings.Contains(tmux("capture-pane", "-t", session, "-p"), want), nil
		})
	}
	sttySize("30 100")
	tmux("resize-window", "-t", session, "-x", "70", "-y", "20")
	sttySize("20 70")
}
