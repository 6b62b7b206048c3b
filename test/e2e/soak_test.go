//go:build e2e

package e2e

// The soak campaign (issue 12): faults, load and bad input repeated
// against the harness, and after each the node checked for anything left
// behind. `make test` runs a short slice (SOAK_MINUTES unset); `make soak`
// (hack/soak.sh) runs the long one and writes docs/reliability.md from the
// rows the tests record in $SOAK_REPORT.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace/noop"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"
)

// soakMinutes is SOAK_MINUTES: 0 (unset) is the short slice of make test.
var soakMinutes, _ = strconv.Atoi(os.Getenv("SOAK_MINUTES"))

// soakN is short in make test; in make soak it is long for the default 30
// minutes, scaled to SOAK_MINUTES (never below short).
func soakN(short, long int) int {
	if soakMinutes <= 0 {
		return short
	}
	return max(short, long*soakMinutes/30)
}

// soakRow is one row of docs/reliability.md.
type soakRow struct {
	t                        *testing.T
	start                    time.Time
	fault, injected, checked string
	mu                       sync.Mutex
	found                    []string
}

// soakRecord starts a row; at the end of the test it is appended to
// $SOAK_REPORT (if set) with the test's result.
func soakRecord(t *testing.T, fault, checked string) *soakRow {
	r := &soakRow{t: t, start: time.Now(), fault: fault, checked: checked}
	t.Cleanup(func() {
		file := os.Getenv("SOAK_REPORT")
		if file == "" {
			return
		}
		result := "pass"
		if t.Failed() {
			result = "**FAIL**"
		}
		r.mu.Lock()
		found := strings.Join(r.found, "; ")
		r.mu.Unlock()
		if found == "" {
			found = "nothing"
		}
		line := fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s |\n", t.Name(), r.fault, r.injected, r.checked, found, result,
			time.Since(r.start).Round(time.Second))
		f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Errorf("soak report: %v", err)
			return
		}
		defer func() { _ = f.Close() }()
		_, _ = f.WriteString(line)
	})
	return r
}

// Found adds a finding (a figure or a problem) to the row and logs it.
func (r *soakRow) Found(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	r.t.Log(s)
	r.mu.Lock()
	r.found = append(r.found, s)
	r.mu.Unlock()
}

// Injected says how many times the fault was injected.
func (r *soakRow) Injected(format string, args ...any) { r.injected = fmt.Sprintf(format, args...) }

// criClient is a CRI runtime client on the harness's containerd.
func criClient(t *testing.T) internalapi.RuntimeService {
	t.Helper()
	rt, err := dialCRI()
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// dialCRI connects to the harness's containerd; it fails while containerd
// does not serve.
func dialCRI() (internalapi.RuntimeService, error) {
	return remote.NewRemoteRuntimeService(context.Background(), "unix://"+filepath.Join(state, "run/containerd.sock"), time.Minute, noop.NewTracerProvider(), false)
}

const (
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
	harnessRootDir     = "/root" // under state: the agent's --root-dir
	podLogsDir         = "/var/log/pods"
)

var hexID = regexp.MustCompile(`[0-9a-f]{64}`)

// livePodUIDs are the UIDs of the pods bound to the node (with the static
// pods' own UIDs, which their mirror pods carry as config.hash).
func livePodUIDs(ctx context.Context, c kubernetes.Interface) (map[string]bool, error) {
	pods, err := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + nodeName})
	if err != nil {
		return nil, err
	}
	live := map[string]bool{}
	for _, p := range pods.Items {
		live[string(p.UID)] = true
		if h := p.Annotations["kubernetes.io/config.hash"]; h != "" {
			live[h] = true
		}
	}
	return live, nil
}

// nodeLeftovers lists what on the node belongs to no pod bound to it, or
// is there twice: sandboxes, containers, host-local addresses, veths, CNI
// cache entries, port-mapping rules, mounts, pod and log directories, pod
// cgroups. Empty means clean.
func nodeLeftovers(ctx context.Context, t *testing.T, c kubernetes.Interface, rt internalapi.RuntimeService) ([]string, error) {
	live, err := livePodUIDs(ctx, c)
	if err != nil {
		return nil, err
	}
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }

	sandboxes, err := rt.ListPodSandbox(ctx, nil)
	if err != nil {
		return nil, err
	}
	ready := map[string]bool{}
	readyPerPod := map[string]int{}
	for _, s := range sandboxes {
		uid := s.Labels[labelPodUID]
		if uid == "" {
			continue // not a pod's: not the agent's business
		}
		if !live[uid] {
			add("sandbox %.12s (%s/%s) of a pod that is gone", s.Id, s.Metadata.GetNamespace(), s.Metadata.GetName())
		}
		if s.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			ready[s.Id] = true
			readyPerPod[uid]++
		}
	}
	for uid, n := range readyPerPod {
		if n > 1 {
			add("pod %s has %d ready sandboxes", uid, n)
		}
	}
	containers, err := rt.ListContainers(ctx, nil)
	if err != nil {
		return nil, err
	}
	runningPer := map[string]int{}
	for _, ct := range containers {
		uid := ct.Labels[labelPodUID]
		if uid == "" {
			continue
		}
		if !live[uid] {
			add("container %.12s (%s) of a pod that is gone", ct.Id, ct.Metadata.GetName())
		}
		if ct.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			runningPer[uid+"/"+ct.Labels[labelContainerName]]++
		}
	}
	for k, n := range runningPer {
		if n > 1 {
			add("container %s runs %d times", k, n)
		}
	}

	// Network: every address, cache entry and port-mapping rule names a
	// ready sandbox; one veth per address.
	net := readNetState(t)
	for _, f := range net.ipFiles {
		b, err := os.ReadFile(filepath.Join(hostLocalDB, f))
		if err != nil {
			continue // released meanwhile
		}
		if id := hexID.FindString(string(b)); !ready[id] {
			add("host-local address %s held by %.12s, no ready sandbox", f, id)
		}
	}
	if net.veths != len(net.ipFiles) {
		add("%d veths on %s for %d addresses", net.veths, podBridge, len(net.ipFiles))
	}
	for _, line := range strings.Split(net.nat, "\n") {
		if !strings.Contains(line, "dnat name") {
			continue
		}
		if id := hexID.FindString(line); id != "" && !ready[id] {
			add("port-mapping rule of %.12s, no ready sandbox", id)
		}
	}
	if entries, err := os.ReadDir(filepath.Join(state, "cni/cache/results")); err == nil {
		for _, e := range entries {
			if id := hexID.FindString(e.Name()); id != "" && !ready[id] {
				add("CNI cache entry %s, no ready sandbox", e.Name())
			}
		}
	}

	// Files: pod directories, log directories, mounts under them.
	podsDir := filepath.Join(state, harnessRootDir, "pods")
	if entries, err := os.ReadDir(podsDir); err == nil {
		for _, e := range entries {
			if !live[e.Name()] {
				add("pod directory %s", e.Name())
			}
		}
	}
	if entries, err := os.ReadDir(podLogsDir); err == nil {
		for _, e := range entries {
			n := e.Name()
			if i := strings.LastIndex(n, "_"); i >= 0 && !live[n[i+1:]] {
				add("log directory %s", n)
			}
		}
	}
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		s := bufio.NewScanner(f)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		prefix := podsDir + "/"
		for s.Scan() {
			fields := strings.Fields(s.Text())
			if len(fields) < 5 || !strings.HasPrefix(fields[4], prefix) {
				continue
			}
			uid, _, _ := strings.Cut(strings.TrimPrefix(fields[4], prefix), "/")
			if !live[uid] {
				add("mount %s", fields[4])
			}
		}
		_ = f.Close()
	}

	// Pod cgroups under the harness's cgroup root, every hierarchy.
	roots, _ := filepath.Glob("/sys/fs/cgroup/*" + cgroupRoot + "/kubepods")
	if v2 := "/sys/fs/cgroup" + cgroupRoot + "/kubepods"; isDir(v2) {
		roots = append(roots, v2)
	}
	for _, root := range roots {
		for _, pattern := range []string{"/pod*", "/*/pod*"} {
			dirs, _ := filepath.Glob(root + pattern)
			for _, d := range dirs {
				if uid := strings.TrimPrefix(filepath.Base(d), "pod"); !live[uid] && isDir(d) {
					add("cgroup %s", d)
				}
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// leftoverBaseline is what the node held of gone pods before the test
// (an earlier run's, or the benchmark kubelet's log directories, which the
// agent must leave alone): waitNoLeftovers does not count it.
func leftoverBaseline(t *testing.T, c kubernetes.Interface) map[string]bool {
	t.Helper()
	left, err := nodeLeftovers(context.Background(), t, c, criClient(t))
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]bool{}
	for _, l := range left {
		base[l] = true
	}
	return base
}

// waitNoLeftovers waits until the node holds nothing of a gone pod beyond
// the baseline. The agent's collection runs every minute, and takes a
// network whose sandbox is gone once it is a minute old.
func waitNoLeftovers(t *testing.T, c kubernetes.Interface, base map[string]bool, timeout time.Duration) {
	t.Helper()
	rt := criClient(t)
	waitFor(t, timeout, "nothing left behind on the node", func() (bool, error) {
		all, err := nodeLeftovers(context.Background(), t, c, rt)
		if err != nil {
			return false, err
		}
		var last []string
		for _, l := range all {
			if !base[l] {
				last = append(last, l)
			}
		}
		return len(last) == 0, fmt.Errorf("%d leftovers: %s", len(last), strings.Join(last, "; "))
	})
}

// agentStats are the agent's resident memory, open files and goroutines,
// and the Go heap in use (what RSS holds beyond it is memory the runtime
// has not yet given back to the kernel).
type agentStats struct {
	rssKB, fds, goroutines int
	heapMB                 int
}

func (s agentStats) String() string {
	return fmt.Sprintf("RSS %d MB (heap in use %d MB), %d fds, %d goroutines", s.rssKB/1024, s.heapMB, s.fds, s.goroutines)
}

func readAgentStats(t *testing.T) agentStats {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(state, "run/nodeagent.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(b))
	var s agentStats
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			s.rssKB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	fds, _ := os.ReadDir("/proc/" + pid + "/fd")
	s.fds = len(fds)
	// A client of its own, its connection closed after: a reading every
	// second would otherwise leave the agent a keep-alive connection (a
	// goroutine and a file) per second for its 90 s idle timeout.
	client := nodeClient(t, true)
	defer client.CloseIdleConnections()
	code, body := nodeGet(t, client, "GET", "/metrics", "")
	if code == 200 {
		for _, line := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				s.goroutines = int(f)
			}
			if v, ok := strings.CutPrefix(line, "go_memstats_heap_inuse_bytes "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				s.heapMB = int(f / (1 << 20))
			}
		}
	}
	return s
}

// settledAgentStats waits for the goroutine and file counts to come back
// within slack of base (connections and workers wind down), and returns
// the last reading.
func settledAgentStats(t *testing.T, base agentStats, slack int, timeout time.Duration) agentStats {
	t.Helper()
	var s agentStats
	deadline := time.Now().Add(timeout)
	for {
		s = readAgentStats(t)
		if (s.goroutines <= base.goroutines+slack && s.fds <= base.fds+slack) || time.Now().After(deadline) {
			return s
		}
		time.Sleep(time.Second)
	}
}

// soakPod is a pod that uses what leaves things on the node: a configMap
// through a subPath (a bind mount), a memory emptyDir (tmpfs), a host port
// (iptables), a readiness probe, and a short grace period.
func soakPod(name string, hostPort int32) *v1.Pod {
	p := busyboxPod(name, "trap 'exit 0' TERM; while true; do sleep 1; done", v1.RestartPolicyAlways)
	grace := int64(2)
	p.Spec.TerminationGracePeriodSeconds = &grace
	p.Spec.Volumes = []v1.Volume{
		{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "soak"}}}},
		{Name: "mem", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory}}},
	}
	ctr := &p.Spec.Containers[0]
	ctr.VolumeMounts = []v1.VolumeMount{
		{Name: "cfg", MountPath: "/etc/soak/key", SubPath: "key"},
		{Name: "mem", MountPath: "/mem"},
	}
	// An exec probe is a runc exec: with about 30 pods probing every 5 s
	// on two cores, the probes timed out (1 s). The campaign's pods probe
	// every 10 s with 5 s to answer.
	ctr.ReadinessProbe = &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"cat", "/etc/soak/key"}}}, PeriodSeconds: 10, TimeoutSeconds: 5}
	if hostPort != 0 {
		ctr.Ports = []v1.ContainerPort{{ContainerPort: 8080, HostPort: hostPort, Protocol: v1.ProtocolTCP}}
	}
	return p
}

func soakConfigMap(t *testing.T, c kubernetes.Interface, ns string) {
	t.Helper()
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "soak"}, Data: map[string]string{"key": "value"}}
	if _, err := c.CoreV1().ConfigMaps(ns).Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// statusWatch follows every pod of a namespace and records each status
// that goes backwards: a restart count that drops or grows (the soak's
// containers never exit), a container ID that changes, a phase that
// leaves Running for Pending or a terminal phase for another.
type statusWatch struct {
	mu       sync.Mutex
	last     map[string]*v1.Pod
	problems []string
	updates  int
	// neverRan are restarts of instances whose start was interrupted.
	neverRan map[string]bool
}

func watchStatuses(t *testing.T, c kubernetes.Interface, ns string) *statusWatch {
	t.Helper()
	w := &statusWatch{last: map[string]*v1.Pod{}, neverRan: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		for ctx.Err() == nil {
			wi, err := c.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
			if err != nil {
				time.Sleep(time.Second)
				continue
			}
			for ev := range wi.ResultChan() {
				if p, ok := ev.Object.(*v1.Pod); ok {
					w.observe(p)
				}
			}
		}
	}()
	return w
}

func (w *statusWatch) observe(p *v1.Pod) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.updates++
	key := string(p.UID)
	prev := w.last[key]
	w.last[key] = p.DeepCopy()
	for _, cs := range p.Status.ContainerStatuses {
		if cs.RestartCount == 0 {
			continue
		}
		// A start the kill interrupted fails in the runtime (its caller
		// went away) and the next agent starts a new instance, as the
		// kubelet does: counted, not a problem. A container that ran and
		// was restarted is.
		if last := cs.LastTerminationState.Terminated; last != nil && last.StartedAt.Unix() <= 0 {
			w.neverRan[fmt.Sprintf("%s/%s#%d", p.Name, cs.Name, cs.RestartCount)] = true
			continue
		}
		w.problems = append(w.problems, fmt.Sprintf("%s: container %s restart count %d, last state %+v", p.Name, cs.Name, cs.RestartCount, cs.LastTerminationState))
	}
	if prev == nil {
		return
	}
	if prev.Status.Phase == v1.PodRunning && p.Status.Phase == v1.PodPending {
		w.problems = append(w.problems, fmt.Sprintf("%s: phase Running -> Pending", p.Name))
	}
	if (prev.Status.Phase == v1.PodSucceeded || prev.Status.Phase == v1.PodFailed) && p.Status.Phase != prev.Status.Phase {
		w.problems = append(w.problems, fmt.Sprintf("%s: phase %s -> %s", p.Name, prev.Status.Phase, p.Status.Phase))
	}
	for _, old := range prev.Status.ContainerStatuses {
		for _, cs := range p.Status.ContainerStatuses {
			// A container that never ran (left created by a killed agent)
			// may be replaced; one that ran must not be.
			ran := old.State.Running != nil || old.State.Terminated != nil
			if cs.Name == old.Name && old.ContainerID != "" && ran && cs.ContainerID != old.ContainerID {
				w.problems = append(w.problems, fmt.Sprintf("%s: container %s ID %s -> %q", p.Name, cs.Name, old.ContainerID, cs.ContainerID))
			}
		}
	}
}

func (w *statusWatch) result() (updates, neverRan int, problems []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.updates, len(w.neverRan), append([]string(nil), w.problems...)
}
