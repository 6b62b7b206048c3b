//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
)

// trapScript logs TERM when the container gets SIGTERM, and BYE when it
// exits, after linger seconds.
func trapScript(linger int) string {
	return fmt.Sprintf(`trap 'echo TERM; sleep %d; echo BYE; exit 0' TERM; echo started; while true; do sleep 1 & wait $!; done`, linger)
}

// logTimes returns when each line of a container's CRI log was written,
// by line (the first occurrence).
func logTimes(file string) (map[string]time.Time, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	out := map[string]time.Time{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// <RFC3339Nano> <stream> <tag> <line>
		fields := strings.SplitN(sc.Text(), " ", 4)
		if len(fields) != 4 {
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, fields[0])
		if err != nil {
			continue
		}
		if _, ok := out[fields[3]]; !ok {
			out[fields[3]] = ts
		}
	}
	return out, sc.Err()
}

// mainLog is the CRI log file of the container "main" of p (a mirror pod
// for a static pod).
func mainLog(p *v1.Pod) string {
	uid := string(p.UID)
	if m := p.Annotations["kubernetes.io/config.mirror"]; m != "" {
		uid = m
	}
	return filepath.Join("/var/log/pods", fmt.Sprintf("%s_%s_%s", p.Namespace, p.Name, uid), "main", "0.log")
}

// endedByShutdown checks the kubelet's status of a pod ended by a node
// shutdown.
func endedByShutdown(t *testing.T, p *v1.Pod) {
	t.Helper()
	const msg = "Pod was terminated in response to imminent node shutdown."
	if p.Status.Phase != v1.PodFailed || p.Status.Reason != "Terminated" || p.Status.Message != msg {
		t.Errorf("pod %s: %s, want Failed with reason Terminated and the kubelet's message", p.Name, describe(p))
	}
	found := false
	for _, c := range p.Status.Conditions {
		if c.Type == v1.DisruptionTarget {
			found = true
			if c.Status != v1.ConditionTrue || c.Reason != "TerminationByKubelet" || c.Message != msg {
				t.Errorf("pod %s: DisruptionTarget %+v", p.Name, c)
			}
		}
	}
	if !found {
		t.Errorf("pod %s: no DisruptionTarget condition: %+v", p.Name, p.Status.Conditions)
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Terminated == nil {
			t.Errorf("pod %s: container %s %+v, want terminated", p.Name, cs.Name, cs.State)
		}
	}
}

// agentGone reports whether the process pid has exited (a zombie counts:
// the harness's shell that started the agent is gone).
func agentGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'Z'
}

// TestGracefulNodeShutdown: with shutdownGracePeriod 20s and
// shutdownGracePeriodCriticalPods 10s, SIGTERM makes the agent terminate
// the regular pod first and the critical ones (an API pod of
// system-node-critical, a static pod whose manifest sets that priority)
// only once it is stopped; every pod ends Failed with reason Terminated
// and a DisruptionTarget condition, the node is NotReady ("node is
// shutting down"), and the agent exits 0. Started again with the usual
// config, the agent runs the static pod again.
//
// The agent terminates every pod of the node: run it when no other test
// uses the cluster.
func TestGracefulNodeShutdown(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	ns := namespace(t, c)
	criticalName := "shutdown-critical-" + rand.String(5)
	staticName := "shutdown-static-" + rand.String(5)
	manifest := filepath.Join(state, "manifests", staticName+".yaml")
	argsFile := filepath.Join(state, "nodeagent.args")
	config := filepath.Join(state, "nodeagent-shutdown-e2e.yaml")

	// The agent's config with graceful node shutdown, given by a --config
	// flag that survives restarts (the last --config wins).
	base, err := os.ReadFile(filepath.Join(state, "nodeagent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.TrimRight(string(base), "\n") + "\nshutdownGracePeriod: 20s\nshutdownGracePeriodCriticalPods: 10s\n"
	if err := os.WriteFile(config, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	oldArgs, err := os.ReadFile(argsFile)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	restored := false
	t.Cleanup(func() {
		// Back to the harness's agent, Ready, for the tests after this one.
		_ = os.Remove(manifest)
		_ = os.Remove(config)
		if !restored {
			if oldArgs == nil {
				_ = os.Remove(argsFile)
			} else {
				_ = os.WriteFile(argsFile, oldArgs, 0o644)
			}
			harness(t, "agent-restart")
			harness(t, "wait-node")
		}
		_ = c.CoreV1().Pods("kube-system").Delete(context.Background(), criticalName, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	})
	args := strings.TrimSpace(string(oldArgs)) + " --config " + config
	if err := os.WriteFile(argsFile, []byte(strings.TrimSpace(args)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	harness(t, "agent-restart")
	harness(t, "wait-node")

	// A regular pod that takes 2 s to stop, and two critical ones.
	regular := busyboxPod("regular", trapScript(2), v1.RestartPolicyAlways)
	regular.Spec.TerminationGracePeriodSeconds = ptr.To[int64](30)
	createPod(t, c, ns, regular)
	critical := busyboxPod(criticalName, trapScript(0), v1.RestartPolicyAlways)
	critical.Spec.PriorityClassName = "system-node-critical"
	critical.Spec.TerminationGracePeriodSeconds = ptr.To[int64](30)
	createPod(t, c, "kube-system", critical)
	static := `apiVersion: v1
kind: Pod
metadata:
  name: ` + staticName + `
  namespace: default
spec:
  priorityClassName: system-node-critical
  priority: 2000001000
  terminationGracePeriodSeconds: 30
  containers:
  - name: main
    image: ` + busybox + `
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "` + trapScript(0) + `"]
`
	if err := os.WriteFile(manifest, []byte(static), 0o644); err != nil {
		t.Fatal(err)
	}
	mirrorName := staticName + "-" + nodeName
	pods := map[string]*v1.Pod{
		"regular":  waitPod(t, c, ns, "regular", 60*time.Second, "running", running),
		"critical": waitPod(t, c, "kube-system", criticalName, 60*time.Second, "running", running),
		"static":   waitPod(t, c, "default", mirrorName, 60*time.Second, "mirror running", running),
	}
	if p := pods["critical"].Spec.Priority; p == nil || *p != 2000001000 {
		t.Fatalf("critical pod's priority %v, want 2000001000", p)
	}
	staticID := pods["static"].Status.ContainerStatuses[0].ContainerID
	// A SIGTERM before the shell set its trap would be lost (PID 1 of the
	// container ignores it): wait until each one says it is ready.
	for name, p := range pods {
		waitFor(t, 30*time.Second, name+" pod's trap", func() (bool, error) {
			times, err := logTimes(mainLog(p))
			return !times["started"].IsZero(), err
		})
	}

	// SIGTERM to the agent.
	pidText, err := os.ReadFile(filepath.Join(state, "run", "nodeagent.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
	if err != nil {
		t.Fatal(err)
	}
	agentLog := filepath.Join(state, "logs", "nodeagent.log")
	fi, err := os.Stat(agentLog)
	if err != nil {
		t.Fatal(err)
	}
	logFrom := fi.Size()
	start := time.Now()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 40*time.Second, "the agent to exit", func() (bool, error) { return agentGone(pid), nil })
	took := time.Since(start)
	t.Logf("the agent shut the node down and exited in %v", took.Round(time.Millisecond))
	b, err := os.ReadFile(agentLog)
	if err != nil {
		t.Fatal(err)
	}
	tail := string(b[logFrom:])
	if !strings.Contains(tail, "nodeagent stopped") || strings.Contains(tail, "nodeagent failed") {
		t.Errorf("the agent did not exit 0 (no \"nodeagent stopped\" in its log):\n%s", tail[max(0, len(tail)-3000):])
	}

	// Statuses, as the agent left them.
	pods["regular"] = waitPod(t, c, ns, "regular", 10*time.Second, "failed", podDone)
	pods["critical"] = waitPod(t, c, "kube-system", criticalName, 10*time.Second, "failed", podDone)
	pods["static"] = waitPod(t, c, "default", mirrorName, 10*time.Second, "failed", podDone)
	for _, p := range pods {
		endedByShutdown(t, p)
	}
	n, err := c.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ok, msg := nodeReady(n); ok || msg != "node is shutting down" {
		t.Errorf("node Ready %v %q, want NotReady \"node is shutting down\"", ok, msg)
	}

	// The order, from the containers' own logs: the critical pods got
	// SIGTERM only after the regular pod's container had exited.
	times := map[string]map[string]time.Time{}
	for name, p := range pods {
		if times[name], err = logTimes(mainLog(p)); err != nil {
			t.Fatalf("pod %s: %v", name, err)
		}
		if times[name]["TERM"].IsZero() {
			t.Fatalf("pod %s got no SIGTERM (its log: %v)", name, times[name])
		}
	}
	bye := times["regular"]["BYE"]
	if bye.IsZero() {
		t.Fatal("the regular pod did not finish its SIGTERM handler")
	}
	for _, name := range []string{"critical", "static"} {
		if term := times[name]["TERM"]; term.Before(bye) {
			t.Errorf("%s pod got SIGTERM at %v, before the regular pod stopped at %v", name, term.Format(time.StampMicro), bye.Format(time.StampMicro))
		}
	}
	t.Logf("regular: TERM %v, BYE %v; critical: TERM %v; static: TERM %v", times["regular"]["TERM"].Format(time.StampMicro),
		bye.Format(time.StampMicro), times["critical"]["TERM"].Format(time.StampMicro), times["static"]["TERM"].Format(time.StampMicro))

	// With the usual config the agent comes back, Ready, and runs the
	// static pod again; the API pods stay Failed.
	if oldArgs == nil {
		err = os.Remove(argsFile)
	} else {
		err = os.WriteFile(argsFile, oldArgs, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	harness(t, "agent-start")
	waitFor(t, 90*time.Second, "node Ready after the agent started again", func() (bool, error) {
		n, err := c.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ok, msg := nodeReady(n)
		return ok, errors.New(msg)
	})
	restored = true
	waitPod(t, c, "default", mirrorName, 60*time.Second, "static pod running again", func(p *v1.Pod) bool {
		return running(p) && p.Status.ContainerStatuses[0].ContainerID != staticID
	})
	if p, err := c.CoreV1().Pods(ns).Get(ctx, "regular", metav1.GetOptions{}); err != nil || p.Status.Phase != v1.PodFailed {
		t.Errorf("regular pod after the restart: %v %s", err, describe(p))
	}
}
