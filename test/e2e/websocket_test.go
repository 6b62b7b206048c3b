//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const extendWebSocketsToKubelet = "ExtendWebSocketsToKubelet"

// declareWebSockets restarts the agent with --declare-websocket-streaming
// (or without it) and waits until the node's declared features say so.
func declareWebSockets(t *testing.T, c kubernetes.Interface, on bool) {
	t.Helper()
	args := filepath.Join(state, "nodeagent.args")
	if on {
		if err := os.WriteFile(args, []byte("--declare-websocket-streaming\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	} else if err := os.Remove(args); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	harness(t, "agent-restart")
	waitFor(t, 90*time.Second, "node ready with declared features matching", func() (bool, error) {
		n, err := c.CoreV1().Nodes().Get(context.Background(), nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ready, _ := nodeReady(n)
		return ready && slices.Contains(n.Status.DeclaredFeatures, extendWebSocketsToKubelet) == on, nil
	})
}

// proxiedToNode reads how many WebSocket streams of a subresource the
// apiserver passed to the node untranslated.
func proxiedToNode(t *testing.T, subresource string) int {
	t.Helper()
	out := kubectl(t, "get", "--raw", "/metrics")
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "apiserver_websocket_streaming_requests_total{") &&
			strings.Contains(l, `proxy_type="proxied_to_kubelet"`) && strings.Contains(l, `subresource="`+subresource+`"`) {
			n, err := strconv.ParseFloat(l[strings.LastIndex(l, " ")+1:], 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", l, err)
			}
			return int(n)
		}
	}
	return 0
}

// TestWebSocketStreamsThroughNode runs kubectl exec and port-forward
// (WebSockets in kubectl 1.36) with the node declaring
// ExtendWebSocketsToKubelet: the apiserver passes the WebSockets through
// and nodeagent translates them to the runtime's SPDY.
func TestWebSocketStreamsThroughNode(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	createPod(t, c, ns, busyboxPod("ws", "sleep 3600", v1.RestartPolicyNever))
	createPod(t, c, ns, busyboxPod("web", "mkdir -p /www && echo hello-through-ws > /www/index.html && httpd -f -p 8080 -h /www", v1.RestartPolicyNever))
	waitPod(t, c, ns, "ws", 60*time.Second, "running", running)
	waitPod(t, c, ns, "web", 60*time.Second, "running", running)

	t.Cleanup(func() { declareWebSockets(t, c, false) })
	declareWebSockets(t, c, true)
	before := proxiedToNode(t, "exec")

	// The apiserver may still hold the node's previous status for a moment.
	waitFor(t, 30*time.Second, "an exec passed through to the node", func() (bool, error) {
		if got := kubectl(t, "-n", ns, "exec", "ws", "--", "echo", "hello"); got != "hello\n" {
			t.Fatalf("exec echo: %q", got)
		}
		return proxiedToNode(t, "exec") > before, nil
	})

	err := kubectlCmd(context.Background(), "-n", ns, "exec", "ws", "--", "sh", "-c", "echo out; echo err >&2; exit 7").Run()
	if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("exit code: %v", err)
	}
	cmd := kubectlCmd(context.Background(), "-n", ns, "exec", "-i", "ws", "--", "sh", "-c", "tr a-z A-Z; echo to-stderr >&2")
	cmd.Stdin = strings.NewReader("from stdin\n")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || string(out) != "FROM STDIN\n" || stderr.String() != "to-stderr\n" {
		t.Fatalf("exec -i: stdout %q stderr %q: %v", out, stderr.String(), err)
	}
	// A terminal (script(1) gives kubectl one): the exit code is kept.
	line := strings.Join([]string{filepath.Join(cache, "bin/kubectl"), "--kubeconfig", filepath.Join(state, "admin.kubeconfig"),
		"-n", ns, "exec", "-it", "ws", "--", "sh", "-c", "'tty >/dev/null && echo is-a-tty; exit 3'"}, " ")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd = exec.CommandContext(ctx, "script", "-qec", line, "/dev/null")
	out, err = cmd.CombinedOutput()
	if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(string(out), "is-a-tty") {
		t.Fatalf("exec -it: %q %v", out, err)
	}
	if n := proxiedToNode(t, "exec"); n < before+4 {
		t.Errorf("apiserver passed %d exec streams to the node, want at least %d", n-before, 4)
	}

	pfBefore := proxiedToNode(t, "portforward")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	_ = ln.Close()
	ctx, cancel = context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pf := kubectlCmd(ctx, "-n", ns, "port-forward", "pod/web", port+":8080")
	if err := pf.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = pf.Wait() }()
	waitFor(t, 30*time.Second, "a response through port-forward", func() (bool, error) {
		resp, err := http.Get("http://127.0.0.1:" + port + "/")
		if err != nil {
			return false, err
		}
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		return err == nil && string(b) == "hello-through-ws\n", err
	})
	if n := proxiedToNode(t, "portforward"); n <= pfBefore {
		t.Errorf("apiserver passed no port-forward stream to the node")
	}
}
