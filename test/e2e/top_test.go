//go:build e2e

package e2e

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// topTimeout covers metrics-server's two scrapes (15 s resolution) after a
// pod starts, and the start of the node's first CPU sample.
const topTimeout = 90 * time.Second

// cpuAndMemory matches a line of `kubectl top` with a CPU in millicores and
// memory in Mi, e.g. "nodeagent-node   123m   6%   512Mi   12%".
var cpuAndMemory = regexp.MustCompile(`\s(\d+)m\s.*\s(\d+)Mi\s?`)

// kubectlTop runs kubectl top until a line starting with name shows CPU
// and memory, and returns that line.
func kubectlTop(t *testing.T, name string, args ...string) string {
	t.Helper()
	var out []byte
	var err error
	var line string
	waitFor(t, topTimeout, "kubectl top "+strings.Join(args, " "), func() (bool, error) {
		cmd := exec.Command(filepath.Join(cache, "bin/kubectl"), append([]string{"--kubeconfig", filepath.Join(state, "admin.kubeconfig"), "top"}, args...)...)
		out, err = cmd.CombinedOutput()
		if err != nil {
			time.Sleep(2 * time.Second)
			return false, err
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, name+" ") && cpuAndMemory.MatchString(l) {
				line = l
				return true, nil
			}
		}
		time.Sleep(2 * time.Second)
		return false, nil
	})
	t.Logf("kubectl top %s:\n%s", strings.Join(args, " "), out)
	return line
}

// TestTopNodeAndPod reads node and pod usage through the aggregated
// metrics API, answered by the harness's metrics-server scraping the node's
// /metrics/resource.
func TestTopNodeAndPod(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	// Busy enough to use some CPU, small enough not to disturb other work.
	createPod(t, c, ns, busyboxPod("top", "while true; do i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; sleep 1; done", v1.RestartPolicyAlways))
	waitPod(t, c, ns, "top", 60*time.Second, "running", running)

	node := kubectlTop(t, nodeName, "node")
	if m := cpuAndMemory.FindStringSubmatch(node); m == nil || m[2] == "0" {
		t.Errorf("kubectl top node: want nonzero memory, got %q", node)
	}

	pod := kubectlTop(t, "top", "pod", "-n", ns)
	if m := cpuAndMemory.FindStringSubmatch(pod); m == nil {
		t.Errorf("kubectl top pod: want CPU and memory, got %q", pod)
	}

	containers := kubectlTop(t, "top", "pod", "-n", ns, "--containers")
	if !strings.Contains(containers, " main ") {
		t.Errorf("kubectl top pod --containers: want container main, got %q", containers)
	}
}
