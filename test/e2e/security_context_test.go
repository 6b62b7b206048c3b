//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
)

// podLogs returns the logs of the pod's container.
func podLogs(t *testing.T, c kubernetes.Interface, ns, name string) string {
	t.Helper()
	b, err := c.CoreV1().Pods(ns).GetLogs(name, &v1.PodLogOptions{}).DoRaw(context.Background())
	if err != nil {
		t.Fatalf("logs of %s: %v", name, err)
	}
	return string(b)
}

func ended(p *v1.Pod) bool {
	return p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed
}

// runToEnd creates the pod, waits until it ends and returns its logs; it
// fails the test unless the pod succeeded.
func runToEnd(t *testing.T, c kubernetes.Interface, ns string, pod *v1.Pod) string {
	t.Helper()
	createPod(t, c, ns, pod)
	p := waitPod(t, c, ns, pod.Name, 90*time.Second, "the end", ended)
	logs := podLogs(t, c, ns, pod.Name)
	if p.Status.Phase != v1.PodSucceeded {
		t.Fatalf("%s: %s; logs: %s", pod.Name, describe(p), logs)
	}
	return logs
}

// seccompMode is the value of the Seccomp: line of /proc/self/status in
// logs: 0 disabled, 2 filtered.
func seccompMode(t *testing.T, logs string) string {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "Seccomp:" {
			return f[1]
		}
	}
	t.Fatalf("no Seccomp: line in %q", logs)
	return ""
}

func TestSecurityContextSeccomp(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)

	filtered := busyboxPod("runtime-default", "grep Seccomp: /proc/self/status", v1.RestartPolicyNever)
	filtered.Spec.SecurityContext = &v1.PodSecurityContext{SeccompProfile: &v1.SeccompProfile{Type: v1.SeccompProfileTypeRuntimeDefault}}
	if got := seccompMode(t, runToEnd(t, c, ns, filtered)); got != "2" {
		t.Errorf("seccompProfile RuntimeDefault: Seccomp: %s, want 2 (filtered)", got)
	}

	// The harness runs with the default configuration (seccompDefault
	// false): no profile is unconfined.
	unset := busyboxPod("unset", "grep Seccomp: /proc/self/status", v1.RestartPolicyNever)
	if got := seccompMode(t, runToEnd(t, c, ns, unset)); got != "0" {
		t.Errorf("no seccompProfile: Seccomp: %s, want 0 (unconfined with seccompDefault false)", got)
	}
}

func TestSecurityContextRunAsNonRoot(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	yes := true
	uid, gid := int64(1000), int64(3000)

	// The busybox image runs as root.
	root := busyboxPod("root-image", "id -u", v1.RestartPolicyNever)
	root.Spec.Containers[0].SecurityContext = &v1.SecurityContext{RunAsNonRoot: &yes}
	createPod(t, c, ns, root)
	const want = "container has runAsNonRoot and image will run as root"
	p := waitPod(t, c, ns, "root-image", 90*time.Second, "CreateContainerConfigError", func(p *v1.Pod) bool {
		if len(p.Status.ContainerStatuses) == 0 {
			return false
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == "CreateContainerConfigError"
	})
	if msg := p.Status.ContainerStatuses[0].State.Waiting.Message; !strings.Contains(msg, want) {
		t.Errorf("waiting message %q, want it to contain %q", msg, want)
	}
	// Events are written asynchronously, after the status may be.
	waitFor(t, 15*time.Second, "a Failed event", func() (bool, error) {
		ev := podEvents(t, c, ns, "root-image")
		return hasPrefix(ev, "Failed: Error: "), fmt.Errorf("events: %v", ev)
	})

	nonRoot := busyboxPod("uid-1000", "id -u", v1.RestartPolicyNever)
	nonRoot.Spec.SecurityContext = &v1.PodSecurityContext{RunAsNonRoot: &yes}
	nonRoot.Spec.Containers[0].SecurityContext = &v1.SecurityContext{RunAsUser: &uid}
	if got := strings.TrimSpace(runToEnd(t, c, ns, nonRoot)); got != "1000" {
		t.Errorf("runAsUser 1000: id -u = %q", got)
	}

	// runAsGroup without runAsUser: the image's user (root) with the
	// group, as the kubelet (containerd refuses a group without a user).
	group := busyboxPod("group-only", "echo $(id -u) $(id -g)", v1.RestartPolicyNever)
	group.Spec.SecurityContext = &v1.PodSecurityContext{RunAsGroup: &gid}
	if got := strings.TrimSpace(runToEnd(t, c, ns, group)); got != "0 3000" {
		t.Errorf("runAsGroup 3000 alone: uid gid = %q, want \"0 3000\"", got)
	}
}

func TestSecurityContextSysctls(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)

	// kernel.msgmax is not safe and the harness allows no unsafe sysctl.
	unsafe := busyboxPod("unsafe", "sleep 3600", v1.RestartPolicyAlways)
	unsafe.Spec.SecurityContext = &v1.PodSecurityContext{Sysctls: []v1.Sysctl{{Name: "kernel.msgmax", Value: "65536"}}}
	createPod(t, c, ns, unsafe)
	p := waitPod(t, c, ns, "unsafe", 60*time.Second, "rejection", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodFailed })
	if p.Status.Reason != "SysctlForbidden" || !strings.Contains(p.Status.Message, `"kernel.msgmax" not allowlisted`) {
		t.Errorf("unsafe sysctl: %s", describe(p))
	}

	safe := busyboxPod("safe", "cat /proc/sys/net/ipv4/ip_local_port_range", v1.RestartPolicyNever)
	safe.Spec.SecurityContext = &v1.PodSecurityContext{Sysctls: []v1.Sysctl{{Name: "net.ipv4.ip_local_port_range", Value: "1024 65000"}}}
	if got := strings.Join(strings.Fields(runToEnd(t, c, ns, safe)), " "); got != "1024 65000" {
		t.Errorf("net.ipv4.ip_local_port_range in the pod = %q, want \"1024 65000\"", got)
	}
}
