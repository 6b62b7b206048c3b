//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

func podReady(p *v1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

func execHandler(cmd ...string) v1.ProbeHandler {
	return v1.ProbeHandler{Exec: &v1.ExecAction{Command: cmd}}
}

// sinceStart is how long after the container started t is.
func sinceStart(p *v1.Pod, t time.Time) time.Duration {
	cs := p.Status.ContainerStatuses[0]
	if cs.State.Running == nil {
		return 0
	}
	return t.Sub(cs.State.Running.StartedAt.Time)
}

// podEvents returns "Reason: message" of the pod's events.
func podEvents(t *testing.T, c kubernetes.Interface, ns, name string) []string {
	t.Helper()
	list, err := c.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Reason+": "+e.Message)
	}
	return out
}

func hasPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// hasPodEvent reports whether an event of podEvents starts with prefix
// ("Reason: ") and contains substr.
func hasPodEvent(events []string, prefix, substr string) bool {
	for _, e := range events {
		if strings.HasPrefix(e, prefix) && strings.Contains(e, substr) {
			return true
		}
	}
	return false
}

// waitPodEvent waits for an event of the pod with the reason whose message
// contains substr. Events are written asynchronously, after the status may
// be: a test reads them through this wait.
func waitPodEvent(t *testing.T, c kubernetes.Interface, ns, name, reason, substr string, timeout time.Duration) {
	t.Helper()
	var last []string
	waitFor(t, timeout, reason+" event containing "+substr, func() (bool, error) {
		last = podEvents(t, c, ns, name)
		return hasPodEvent(last, reason+": ", substr), fmt.Errorf("events: %q", last)
	})
}

func TestProbeHTTPReadiness(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	p := busyboxPod("web", "sleep 3; mkdir -p /www; echo ok > /www/index.html; (sleep 5; touch /www/ready) & exec httpd -f -p 8080 -h /www", v1.RestartPolicyAlways)
	p.Spec.Containers[0].Ports = []v1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	p.Spec.Containers[0].ReadinessProbe = &v1.Probe{
		ProbeHandler:  v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("http")}},
		PeriodSeconds: 1,
	}
	createPod(t, c, ns, p)
	got := waitPod(t, c, ns, "web", 60*time.Second, "running", running)
	if podReady(got) || got.Status.ContainerStatuses[0].Ready {
		t.Fatalf("ready before /www/ready exists: %s", describe(got))
	}
	got = waitPod(t, c, ns, "web", 60*time.Second, "ready", podReady)
	if d := sinceStart(got, time.Now()); d < 7*time.Second {
		t.Errorf("ready %s after start, before /www/ready existed", d)
	}
	waitPodEvent(t, c, ns, "web", "Unhealthy", "Readiness probe failed", 15*time.Second)
	// The kubelet's prober metrics on /metrics/probes: the failed attempts
	// before /www/ready existed and the successful ones after.
	code, body := nodeGet(t, nodeClient(t, true), "GET", "/metrics/probes", "")
	labels := `container="main",namespace="` + ns + `",pod="web",pod_uid="` + string(got.UID) + `",probe_type="Readiness"`
	for _, want := range []string{`prober_probe_total{` + labels + `,result="failed"} `, `prober_probe_total{` + labels + `,result="successful"} `,
		`prober_probe_duration_seconds_count{container="main",namespace="` + ns + `",pod="web",probe_type="Readiness"} `, "process_start_time_seconds "} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics/probes: %d, missing %q in\n%s", code, want, body)
		}
	}
}

func TestProbeExecLivenessRestarts(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	p := busyboxPod("live", "touch /tmp/healthy; sleep 5; rm /tmp/healthy; sleep 3600", v1.RestartPolicyAlways)
	p.Spec.Containers[0].LivenessProbe = &v1.Probe{ProbeHandler: execHandler("cat", "/tmp/healthy"), PeriodSeconds: 1, FailureThreshold: 2}
	createPod(t, c, ns, p)
	waitPod(t, c, ns, "live", 60*time.Second, "running", running)
	waitPod(t, c, ns, "live", 90*time.Second, "a restart", func(p *v1.Pod) bool {
		return len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].RestartCount >= 1
	})
	waitFor(t, 20*time.Second, "Unhealthy and Killing events", func() (bool, error) {
		evs := podEvents(t, c, ns, "live")
		return hasPrefix(evs, "Unhealthy: Liveness probe failed") && hasPrefix(evs, "Killing: Container main failed liveness probe"), nil
	})
}

func TestProbeStartupDelaysReadiness(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	p := busyboxPod("slow", "sleep 5; touch /tmp/started; sleep 3600", v1.RestartPolicyAlways)
	p.Spec.Containers[0].StartupProbe = &v1.Probe{ProbeHandler: execHandler("cat", "/tmp/started"), PeriodSeconds: 1, FailureThreshold: 60}
	createPod(t, c, ns, p)
	got := waitPod(t, c, ns, "slow", 60*time.Second, "running", running)
	if cs := got.Status.ContainerStatuses[0]; podReady(got) || cs.Ready || (cs.Started != nil && *cs.Started) {
		t.Fatalf("ready or started before the startup probe succeeded: %s", describe(got))
	}
	got = waitPod(t, c, ns, "slow", 60*time.Second, "ready", podReady)
	if d := sinceStart(got, time.Now()); d < 4*time.Second {
		t.Errorf("ready %s after start, before the startup probe could succeed", d)
	}
	if cs := got.Status.ContainerStatuses[0]; cs.Started == nil || !*cs.Started {
		t.Errorf("ready but not started: %s", describe(got))
	}
}

func TestProbeTCPReadiness(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	p := busyboxPod("tcp", "sleep 5; mkdir -p /www; exec httpd -f -p 8080 -h /www", v1.RestartPolicyAlways)
	p.Spec.Containers[0].ReadinessProbe = &v1.Probe{
		ProbeHandler:  v1.ProbeHandler{TCPSocket: &v1.TCPSocketAction{Port: intstr.FromInt32(8080)}},
		PeriodSeconds: 1,
	}
	createPod(t, c, ns, p)
	got := waitPod(t, c, ns, "tcp", 60*time.Second, "running", running)
	if podReady(got) {
		t.Fatalf("ready before the port is open: %s", describe(got))
	}
	got = waitPod(t, c, ns, "tcp", 60*time.Second, "ready", podReady)
	if d := sinceStart(got, time.Now()); d < 4*time.Second {
		t.Errorf("ready %s after start, before the port was open", d)
	}
}

func TestLifecyclePostStartExec(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	p := busyboxPod("poststart", "while [ ! -f /tmp/hook ]; do sleep 0.1; done; cat /tmp/hook > /dev/termination-log", v1.RestartPolicyNever)
	p.Spec.Containers[0].Lifecycle = &v1.Lifecycle{PostStart: &v1.LifecycleHandler{
		Exec: &v1.ExecAction{Command: []string{"sh", "-c", "echo from-post-start > /tmp/hook"}},
	}}
	createPod(t, c, ns, p)
	got := waitPod(t, c, ns, "poststart", 60*time.Second, "succeeded", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodSucceeded })
	if term := got.Status.ContainerStatuses[0].State.Terminated; term == nil || strings.TrimSpace(term.Message) != "from-post-start" {
		t.Errorf("termination message: %s", describe(got))
	}
}

func TestLifecyclePostStartFailureKills(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	p := busyboxPod("badhook", "sleep 3600", v1.RestartPolicyAlways)
	p.Spec.Containers[0].Lifecycle = &v1.Lifecycle{PostStart: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"false"}}}}
	createPod(t, c, ns, p)
	waitFor(t, 60*time.Second, "FailedPostStartHook event", func() (bool, error) {
		return hasPrefix(podEvents(t, c, ns, "badhook"), "FailedPostStartHook"), nil
	})
	waitPod(t, c, ns, "badhook", 60*time.Second, "a restart", func(p *v1.Pod) bool {
		return len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].RestartCount >= 1
	})
}

func TestLifecyclePreStop(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	p := busyboxPod("prestop", "trap 'exit 0' TERM; while true; do sleep 0.1; done", v1.RestartPolicyAlways)
	grace := int64(30)
	p.Spec.TerminationGracePeriodSeconds = &grace
	p.Spec.Containers[0].Lifecycle = &v1.Lifecycle{PreStop: &v1.LifecycleHandler{
		Exec: &v1.ExecAction{Command: []string{"sh", "-c", "sleep 3; echo bye > /proc/1/fd/1"}},
	}}
	createPod(t, c, ns, p)
	waitPod(t, c, ns, "prestop", 60*time.Second, "running", running)
	start := time.Now()
	if err := c.CoreV1().Pods(ns).Delete(context.Background(), "prestop", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, c, ns, "prestop", 40*time.Second)
	if d := time.Since(start); d < 3*time.Second || d > 25*time.Second {
		t.Errorf("pod with a 3 s preStop hook deleted after %s", d)
	}
}
