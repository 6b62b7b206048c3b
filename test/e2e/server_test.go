//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const nodeAPI = "https://192.0.2.10:10250"

// nodeClient is an HTTPS client for the node API trusting the cluster CA,
// with the admin's client certificate if withCert.
func nodeClient(t *testing.T, withCert bool) *http.Client {
	t.Helper()
	pki := filepath.Join(state, "pki")
	ca, err := os.ReadFile(filepath.Join(pki, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if withCert {
		cert, err := tls.LoadX509KeyPair(filepath.Join(pki, "admin.crt"), filepath.Join(pki, "admin.key"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

func nodeGet(t *testing.T, c *http.Client, method, path, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, nodeAPI+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// logPod writes "line N" every 200ms and exits after 15 lines with code 1,
// so that OnFailure restarts it.
func logPod(t *testing.T, ns string) {
	t.Helper()
	c := client(t)
	createPod(t, c, ns, busyboxPod("logs", `i=0; while [ $i -lt 15 ]; do echo line $i; i=$((i+1)); sleep 0.2; done; exit 1`, v1.RestartPolicyOnFailure))
	waitPod(t, c, ns, "logs", 90*time.Second, "a restart", func(p *v1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 1
	})
}

func TestKubectlLogs(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	logPod(t, ns)
	// The previous instance wrote all 15 lines.
	prev := kubectl(t, "-n", ns, "logs", "logs", "--previous")
	if !strings.HasPrefix(prev, "line 0\n") || !strings.Contains(prev, "line 14\n") {
		t.Fatalf("--previous: %q", prev)
	}
	if got := kubectl(t, "-n", ns, "logs", "logs", "--previous", "--tail", "2"); got != "line 13\nline 14\n" {
		t.Fatalf("--tail 2: %q", got)
	}
	if got := kubectl(t, "-n", ns, "logs", "logs", "--previous", "--limit-bytes", "8"); got != "line 0\nl" {
		t.Fatalf("--limit-bytes 8: %q", got)
	}
	ts := kubectl(t, "-n", ns, "logs", "logs", "--previous", "--timestamps", "--tail", "1")
	fields := strings.SplitN(strings.TrimSpace(ts), " ", 2)
	if _, err := time.Parse(time.RFC3339Nano, fields[0]); err != nil || fields[1] != "line 14" {
		t.Fatalf("--timestamps: %q (%v)", ts, err)
	}
	if got := kubectl(t, "-n", ns, "logs", "logs", "--since", "1h"); !strings.HasPrefix(got, "line 0\n") {
		t.Fatalf("--since 1h: %q", got)
	}
	// Logs of the previous instance are older than a far-off since time.
	if got := kubectl(t, "-n", ns, "logs", "logs", "--previous", "--since-time", time.Now().Add(time.Hour).Format(time.RFC3339)); got != "" {
		t.Fatalf("--since-time in the future: %q", got)
	}
}

func TestKubectlLogsFollow(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	createPod(t, c, ns, busyboxPod("follow", `i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.3; done`, v1.RestartPolicyNever))
	waitPod(t, c, ns, "follow", 60*time.Second, "running", running)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(cache, "bin/kubectl"), "--kubeconfig", filepath.Join(state, "admin.kubeconfig"), "-n", ns, "logs", "-f", "follow", "--tail", "1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(out)
	var lines []string
	for len(lines) < 5 && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) < 5 {
		t.Fatalf("followed only %q (%v)", lines, sc.Err())
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "tick ") {
			t.Fatalf("unexpected line %q", l)
		}
	}
}

func TestKubectlExec(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	createPod(t, c, ns, busyboxPod("exec", "sleep 3600", v1.RestartPolicyNever))
	waitPod(t, c, ns, "exec", 60*time.Second, "running", running)
	if got := kubectl(t, "-n", ns, "exec", "exec", "--", "echo", "hello"); got != "hello\n" {
		t.Fatalf("exec echo: %q", got)
	}
	cmd := exec.Command(filepath.Join(cache, "bin/kubectl"), "--kubeconfig", filepath.Join(state, "admin.kubeconfig"), "-n", ns, "exec", "exec", "--", "sh", "-c", "exit 7")
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
		t.Fatalf("exit code: %v", err)
	}
	cmd = exec.Command(filepath.Join(cache, "bin/kubectl"), "--kubeconfig", filepath.Join(state, "admin.kubeconfig"), "-n", ns, "exec", "-i", "exec", "--", "sh", "-c", "tr a-z A-Z")
	cmd.Stdin = strings.NewReader("from stdin\n")
	out, err := cmd.Output()
	if err != nil || string(out) != "FROM STDIN\n" {
		t.Fatalf("exec -i: %q %v", out, err)
	}
}

func TestKubectlPortForward(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	createPod(t, c, ns, busyboxPod("web", "mkdir -p /www && echo hello-through-pf > /www/index.html && httpd -f -p 8080 -h /www", v1.RestartPolicyNever))
	waitPod(t, c, ns, "web", 60*time.Second, "running", running)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(cache, "bin/kubectl"), "--kubeconfig", filepath.Join(state, "admin.kubeconfig"), "-n", ns, "port-forward", "pod/web", strconv.Itoa(port)+":8080")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	waitFor(t, 30*time.Second, "a response through port-forward", func() (bool, error) {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
		if err != nil {
			return false, err
		}
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		return err == nil && string(b) == "hello-through-pf\n", err
	})
}

func TestServerAuthentication(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	createPod(t, c, ns, busyboxPod("target", "echo from-target; sleep 3600", v1.RestartPolicyNever))
	waitPod(t, c, ns, "target", 60*time.Second, "running", running)

	admin := nodeClient(t, true)
	for _, tc := range []struct {
		method, path string
		code         int
		body         string
	}{
		{"GET", "/healthz", 200, "ok"},
		{"GET", "/pods", 200, `"name":"target"`},
		{"GET", "/runningpods/", 200, `"name":"target"`},
		{"GET", "/configz", 200, `"kubeletconfig"`},
		{"GET", "/containerLogs/" + ns + "/target/main", 200, "from-target\n"},
		{"GET", "/containerLogs/" + ns + "/target/main?tailLines=x", 400, ""},
		{"GET", "/containerLogs/" + ns + "/target/main?tailLines=-1", 422, ""},
		{"GET", "/containerLogs/" + ns + "/nope/main", 404, ""},
		{"GET", "/containerLogs/" + ns + "/target/nope", 404, ""},
		{"POST", "/run/" + ns + "/target/main?cmd=echo%20ran", 200, "ran\n"},
		{"GET", "/no-such-route", 404, ""},
	} {
		code, body := nodeGet(t, admin, tc.method, tc.path, "")
		if code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("admin %s %s: %d %q, want %d containing %q", tc.method, tc.path, code, trunc(body), tc.code, tc.body)
		}
	}

	anon := nodeClient(t, false)
	for _, p := range []string{"/healthz", "/pods", "/containerLogs/" + ns + "/target/main", "/no-such-route"} {
		if code, body := nodeGet(t, anon, "GET", p, ""); code != 401 || body != "Unauthorized\n" {
			t.Errorf("no credentials %s: %d %q, want 401", p, code, body)
		}
	}

	// A service account without node rights is denied everywhere.
	if _, err := c.CoreV1().ServiceAccounts(ns).Create(context.Background(), &v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "nobody"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, err := c.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), "nobody", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	user := "system:serviceaccount:" + ns + ":nobody"
	for _, tc := range []struct{ method, path, subresources string }{
		{"GET", "/healthz", "[healthz proxy]"},
		{"GET", "/pods", "[pods proxy]"},
		{"GET", "/containerLogs/" + ns + "/target/main", "[proxy]"},
		{"POST", "/exec/" + ns + "/target/main?command=ls&output=1", "[proxy]"},
		{"GET", "/stats/summary", "[stats]"},
		{"GET", "/metrics", "[metrics]"},
	} {
		verb := map[string]string{"GET": "get", "POST": "create"}[tc.method]
		want := "Forbidden (user=" + user + ", verb=" + verb + ", resource=nodes, subresource(s)=" + tc.subresources + ")"
		if code, body := nodeGet(t, anon, tc.method, tc.path, tok.Status.Token); code != 403 || strings.TrimSpace(body) != want {
			t.Errorf("token %s %s: %d %q, want 403 %q", tc.method, tc.path, code, body, want)
		}
	}
}

func trunc(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}
