//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The harness's pod network (hack/cluster.sh): bridge + host-local.
const (
	nodeIP      = "192.0.2.10"
	podBridge   = "nacni0"
	hostLocalDB = "/var/lib/cni/networks/nodeagent-harness"
)

// serverPod serves "hello <name>" over HTTP on 8080, with hostPort when
// not zero, and exits at once on SIGTERM.
func serverPod(name string, hostPort int32) *v1.Pod {
	p := busyboxPod(name, fmt.Sprintf(`mkdir -p /www; echo hello %s >/www/index.html; trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait`, name), v1.RestartPolicyNever)
	grace := int64(1)
	p.Spec.TerminationGracePeriodSeconds = &grace
	p.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 8080, HostPort: hostPort, Protocol: v1.ProtocolTCP}}
	return p
}

// httpGet fetches url from the node until it answers 200 or timeout passes.
func httpGet(t *testing.T, url string, timeout time.Duration) string {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	var body string
	waitFor(t, timeout, "GET "+url, func() (bool, error) {
		resp, err := client.Get(url)
		if err != nil {
			return false, err
		}
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return false, fmt.Errorf("status %s: %w", resp.Status, err)
		}
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("status %s", resp.Status)
		}
		body = string(b)
		return true, nil
	})
	return body
}

// runningWithIP waits for a running pod with a pod IP and returns it.
func runningWithIP(t *testing.T, c kubernetes.Interface, ns, name string) *v1.Pod {
	t.Helper()
	return waitPod(t, c, ns, name, 90*time.Second, "running with a pod IP", func(p *v1.Pod) bool {
		return running(p) && p.Status.PodIP != ""
	})
}

func TestNetworkPodToPodNodeToPodHostPort(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	createPod(t, c, ns, serverPod("server", 18080))
	srv := runningWithIP(t, c, ns, "server")
	ip := srv.Status.PodIP
	if !strings.HasPrefix(ip, "198.18.0.") {
		t.Errorf("pod IP %s is not from the agent's network 198.18.0.0/24", ip)
	}

	t.Run("pod to pod", func(t *testing.T) {
		// nc, not wget: the harness's static busybox wget crashes.
		script := fmt.Sprintf(`for i in $(seq 30); do printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 %s 8080 | grep hello && exit 0; sleep 1; done; exit 1`, ip)
		createPod(t, c, ns, busyboxPod("client", script, v1.RestartPolicyNever))
		p := waitPod(t, c, ns, "client", 90*time.Second, "completion", func(p *v1.Pod) bool {
			return p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed
		})
		if p.Status.Phase != v1.PodSucceeded {
			t.Fatalf("client could not reach the server at %s: %s\n%s", ip, describe(p), kubectl(t, "-n", ns, "logs", "client"))
		}
		if out := kubectl(t, "-n", ns, "logs", "client"); !strings.Contains(out, "hello server") {
			t.Errorf("client got %q, want hello server", out)
		}
	})
	t.Run("node to pod", func(t *testing.T) {
		if body := httpGet(t, "http://"+ip+":8080/", 30*time.Second); !strings.Contains(body, "hello server") {
			t.Errorf("node got %q", body)
		}
	})
	t.Run("host port", func(t *testing.T) {
		if body := httpGet(t, "http://"+nodeIP+":18080/", 30*time.Second); !strings.Contains(body, "hello server") {
			t.Errorf("host port answered %q", body)
		}
	})
}

// netState is what pod networks leave on the node.
type netState struct {
	ipFiles []string // host-local's address files
	veths   int      // interfaces on the pod bridge
	nat     string   // iptables -t nat -S
}

func readNetState(t *testing.T) netState {
	t.Helper()
	var s netState
	entries, err := os.ReadDir(hostLocalDB)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range entries {
		if n := e.Name(); !strings.HasPrefix(n, "last_reserved_ip") && n != "lock" {
			s.ipFiles = append(s.ipFiles, n)
		}
	}
	if _, err := os.Stat("/sys/class/net/" + podBridge); os.IsNotExist(err) {
		return s // no pod network set up yet since the node started
	}
	out, err := exec.Command("ip", "-o", "link", "show", "master", podBridge).Output()
	if err != nil {
		t.Fatalf("ip link: %v", err)
	}
	s.veths = len(strings.Split(strings.TrimSpace(string(out)), "\n"))
	if len(bytes.TrimSpace(out)) == 0 {
		s.veths = 0
	}
	nat, err := exec.Command("iptables", "-t", "nat", "-S").Output()
	if err != nil {
		t.Fatalf("iptables: %v", err)
	}
	s.nat = string(nat)
	return s
}

// livePodIPs are the pod IPs of every pod on the node, all namespaces.
func livePodIPs(t *testing.T, c kubernetes.Interface) map[string]bool {
	t.Helper()
	pods, err := c.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, p := range pods.Items {
		for _, ip := range p.Status.PodIPs {
			out[ip.IP] = true
		}
	}
	return out
}

func TestNetworkCyclesLeakNothing(t *testing.T) {
	const cycles, batch, basePort = 50, 10, 27000
	c := client(t)
	ns := namespace(t, c)
	ctx := context.Background()
	for round := 0; round < cycles/batch; round++ {
		var wg sync.WaitGroup
		errs := make(chan error, batch)
		for i := 0; i < batch; i++ {
			name := fmt.Sprintf("cycle-%d-%d", round, i)
			createPod(t, c, ns, serverPod(name, int32(basePort+i)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				deadline := time.Now().Add(90 * time.Second)
				for time.Now().Before(deadline) {
					p, err := c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
					if err == nil && running(p) && p.Status.PodIP != "" {
						errs <- c.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{})
						return
					}
					time.Sleep(200 * time.Millisecond)
				}
				errs <- fmt.Errorf("pod %s did not run with an IP", name)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < batch; i++ {
			waitGone(t, c, ns, fmt.Sprintf("cycle-%d-%d", round, i), 90*time.Second)
		}
	}
	// Other tests may run pods meanwhile: every address file must belong to
	// a live pod, with one veth each, and no rule may name our host ports.
	var last netState
	waitFor(t, 60*time.Second, "no leftover address, veth or port mapping", func() (bool, error) {
		last = readNetState(t)
		live := livePodIPs(t, c)
		for _, f := range last.ipFiles {
			if !live[f] {
				return false, fmt.Errorf("address file %s belongs to no pod", f)
			}
		}
		if last.veths != len(last.ipFiles) {
			return false, fmt.Errorf("%d veths on %s for %d addresses", last.veths, podBridge, len(last.ipFiles))
		}
		for i := 0; i < batch; i++ {
			if strings.Contains(last.nat, fmt.Sprintf("--dport %d ", basePort+i)) {
				return false, fmt.Errorf("iptables still maps host port %d", basePort+i)
			}
		}
		return true, nil
	})
	t.Logf("after %d cycles: %d address files %v, %d veths, %d CNI-DN chains", cycles, len(last.ipFiles), last.ipFiles, last.veths, strings.Count(last.nat, "-N CNI-DN-"))
}

// cacheSnapshot is the agent's CNI cache: file name to content.
func cacheSnapshot(t *testing.T) map[string]string {
	t.Helper()
	dir := filepath.Join(state, "cni/cache/results")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

func TestNetworkAgentRestartKeepsNetwork(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	createPod(t, c, ns, serverPod("keep", 0))
	before := runningWithIP(t, c, ns, "keep")
	cacheBefore := cacheSnapshot(t)
	harness(t, "agent-restart")
	waitFor(t, 60*time.Second, "node Ready after the restart", func() (bool, error) {
		n, err := c.CoreV1().Nodes().Get(context.Background(), nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ok, msg := nodeReady(n)
		return ok, fmt.Errorf("%s", msg)
	})
	// Give the restarted agent time to resync the pod.
	time.Sleep(5 * time.Second)
	after := runningWithIP(t, c, ns, "keep")
	if after.Status.PodIP != before.Status.PodIP {
		t.Errorf("pod IP changed across the agent restart: %s -> %s", before.Status.PodIP, after.Status.PodIP)
	}
	if cs := after.Status.ContainerStatuses; len(cs) != 1 || cs[0].RestartCount != 0 {
		t.Errorf("container restarted: %s", describe(after))
	}
	cacheAfter := cacheSnapshot(t)
	for name, content := range cacheBefore {
		if !strings.Contains(name, "nodeagent-harness") {
			continue
		}
		if cacheAfter[name] != content {
			t.Errorf("CNI cache %s changed across the restart (re-ADD?)", name)
		}
	}
	if body := httpGet(t, "http://"+after.Status.PodIP+":8080/", 30*time.Second); !strings.Contains(body, "hello keep") {
		t.Errorf("pod answered %q after the restart", body)
	}
}

func TestNetworkBadConfigNotReady(t *testing.T) {
	c := client(t)
	bad := filepath.Join(state, "cni/net.d/00-broken.conflist")
	if err := os.WriteFile(bad, []byte(`{"cniVersion":"1.0.0","name":"broken","plugins":[{"type":"no-such-plugin"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(bad) })
	node := func() (bool, string) {
		n, err := c.CoreV1().Nodes().Get(context.Background(), nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return nodeReady(n)
	}
	var msg string
	waitFor(t, 60*time.Second, "node NotReady for the broken CNI config", func() (bool, error) {
		var ready bool
		ready, msg = node()
		return !ready && strings.Contains(msg, "no-such-plugin"), fmt.Errorf("ready=%v: %s", ready, msg)
	})
	t.Logf("NotReady: %s", msg)
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "node Ready again", func() (bool, error) {
		ready, msg := node()
		return ready, fmt.Errorf("%s", msg)
	})
}
