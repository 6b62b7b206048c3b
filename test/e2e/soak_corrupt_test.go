//go:build e2e

package e2e

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Corrupt state on disk while the agent is down: a truncated CNI cache
// entry of a running pod, an intent of an interrupted ADD that is garbage,
// garbage in a configMap volume's directory, a half-written static pod
// manifest. The agent starts, names each file, and loses no running pod;
// the pod's teardown still releases its network.
func TestSoakCorruptState(t *testing.T) {
	r := soakRecord(t, "corrupt state on disk at start (truncated CNI cache entry, garbage CNI intent, garbage in a volume, half-written static pod manifest)",
		"the agent starts and names the files; the running pod keeps its container and IP; teardown leaves nothing behind")
	c := client(t)
	base := leftoverBaseline(t, c)
	ns := namespace(t, c)
	soakConfigMap(t, c, ns)
	createPod(t, c, ns, soakPod("victim", 0))
	before := checkPodsConverge(t, c, ns, 2*time.Minute)[0]
	sandbox := ""
	entries, _ := filepath.Glob(filepath.Join(state, "cni/cache/results", "*-eth0"))
	rt := criClient(t)
	for _, e := range entries {
		if id := hexID.FindString(filepath.Base(e)); id != "" {
			if st, err := rt.PodSandboxStatus(t.Context(), id, false); err == nil && st.GetStatus().GetMetadata().GetUid() == string(before.UID) {
				sandbox = e
			}
		}
	}
	if sandbox == "" {
		t.Fatalf("no CNI cache entry for pod %s", before.UID)
	}

	logFile := filepath.Join(state, "logs/nodeagent.log")
	logStart := fileSize(t, logFile)
	harness(t, "agent-stop")
	started := false
	t.Cleanup(func() {
		if !started {
			harness(t, "agent-start")
		}
	})
	b, err := os.ReadFile(sandbox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sandbox, b[:len(b)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	intent := filepath.Join(state, "cni/cache/nodeagent-pending", strings.Repeat("ab", 32))
	if err := os.MkdirAll(filepath.Dir(intent), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(intent, []byte("{\"config\": garb\x00age"), 0o600); err != nil {
		t.Fatal(err)
	}
	volDir := filepath.Join(state, "root/pods", string(before.UID), "volumes/kubernetes.io~configmap/cfg")
	if err := os.WriteFile(filepath.Join(volDir, "..garbage"), []byte{0xff, 0x00, 0xfe}, 0o644); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(state, "manifests", "half-written.yaml")
	if err := os.WriteFile(manifest, []byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: half\nspec:\n  containers:\n  - name: c\n    image: [unterminated"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(manifest) })
	harness(t, "agent-start")
	started = true
	harness(t, "wait-node")
	r.Injected("4 corrupt files, 1 agent start")
	time.Sleep(5 * time.Second) // a sync of every pod, a collection
	after := checkPodsConverge(t, c, ns, time.Minute)[0]
	if got, want := after.Status.ContainerStatuses[0].ContainerID, before.Status.ContainerStatuses[0].ContainerID; got != want || after.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Errorf("container %s before, %s after: %s", want, got, describe(&after))
	}
	if after.Status.PodIP != before.Status.PodIP {
		t.Errorf("pod IP %s before, %q after", before.Status.PodIP, after.Status.PodIP)
	}
	var named []string
	waitFor(t, 90*time.Second, "the agent's log naming the corrupt files", func() (bool, error) {
		log := readFrom(t, logFile, logStart)
		named = nil
		for _, f := range []string{sandbox, intent, manifest} {
			if strings.Contains(log, f) {
				named = append(named, filepath.Base(f))
			}
		}
		return len(named) == 3, nil
	})
	deleteAllPods(t, c, ns, 2*time.Minute)
	waitNoLeftovers(t, c, base, 150*time.Second)
	r.Found("pod kept its container and IP %s; the log names %s; teardown left nothing", after.Status.PodIP, strings.Join(named, ", "))
}

func fileSize(t *testing.T, f string) int64 {
	t.Helper()
	fi, err := os.Stat(f)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// readFrom reads f from offset on; all of it if f is now shorter (a new
// file: rotated).
func readFrom(t *testing.T, f string, offset int64) string {
	t.Helper()
	file, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = file.Close() }()
	fi, err := file.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() < offset {
		offset = 0
	}
	b, err := io.ReadAll(io.NewSectionReader(file, offset, fi.Size()-offset))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
