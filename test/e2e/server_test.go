//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
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
	authorizationv1 "k8s.io/api/authorization/v1"
	v1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const nodeAPI = "https://192.0.2.10:10250"

// nodeClient is an HTTPS client for the node API trusting the cluster CA,
// with the admin's client certificate if withCert.
func nodeClient(t *testing.T, withCert bool) *http.Client {
	t.Helper()
	if withCert {
		return nodeClientAs(t, "admin")
	}
	return nodeClientAs(t, "")
}

// nodeClientAs is an HTTPS client for the node API with the client
// certificate pki/<cert>.crt, or none if cert is empty.
func nodeClientAs(t *testing.T, certName string) *http.Client {
	t.Helper()
	pki := filepath.Join(state, "pki")
	ca, err := os.ReadFile(filepath.Join(pki, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certName != "" {
		cert, err := tls.LoadX509KeyPair(filepath.Join(pki, certName+".crt"), filepath.Join(pki, certName+".key"))
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

// kubectlCmd is the harness's kubectl as the admin.
func kubectlCmd(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, filepath.Join(cache, "bin/kubectl"), append([]string{"--kubeconfig", filepath.Join(state, "admin.kubeconfig")}, args...)...)
}

// startKubectl starts cmd and returns its standard output; it is killed
// at the end of the test.
func startKubectl(t *testing.T, cmd *exec.Cmd) io.Reader {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return out
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
	sc := bufio.NewScanner(startKubectl(t, kubectlCmd(ctx, "-n", ns, "logs", "-f", "follow", "--tail", "1")))
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
	err := kubectlCmd(context.Background(), "-n", ns, "exec", "exec", "--", "sh", "-c", "exit 7").Run()
	if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("exit code: %v", err)
	}
	cmd := kubectlCmd(context.Background(), "-n", ns, "exec", "-i", "exec", "--", "sh", "-c", "tr a-z A-Z")
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
	cmd := kubectlCmd(ctx, "-n", ns, "port-forward", "pod/web", strconv.Itoa(port)+":8080")
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
	// The container's output reaches its log file after the start the
	// status reports.
	waitFor(t, 30*time.Second, "the target's log line", func() (bool, error) {
		code, body := nodeGet(t, admin, "GET", "/containerLogs/"+ns+"/target/main", "")
		return code == 200 && body == "from-target\n", fmt.Errorf("%d %q", code, trunc(body))
	})
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

// grantedToken creates service account name bound to a ClusterRole that
// grants get and create on nodes/<subresource> only, waits until the
// apiserver authorizes it (so that the node never caches an early denial)
// and returns a token for it.
func grantedToken(t *testing.T, c kubernetes.Interface, ns, name, subresource string) string {
	t.Helper()
	ctx, role := context.Background(), ns+"-"+name
	if _, err := c.CoreV1().ServiceAccounts(ns).Create(ctx, &v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.RbacV1().ClusterRoles().Delete(context.Background(), role, metav1.DeleteOptions{})
		_ = c.RbacV1().ClusterRoleBindings().Delete(context.Background(), role, metav1.DeleteOptions{})
	})
	if _, err := c.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: role},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes/" + subresource}, Verbs: []string{"get", "create"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	user := "system:serviceaccount:" + ns + ":" + name
	waitFor(t, 30*time.Second, "RBAC for "+user, func() (bool, error) {
		r, err := c.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Resource: "nodes", Subresource: subresource, Name: nodeName},
		}}, metav1.CreateOptions{})
		return err == nil && r.Status.Allowed, err
	})
	tok, err := c.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Status.Token
}

// TestServerAuthorization checks the kubelet's authorization mapping
// through RBAC: each service account holds one nodes subresource only.
func TestServerAuthorization(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	createPod(t, c, ns, busyboxPod("target", "echo from-target; sleep 3600", v1.RestartPolicyNever))
	waitPod(t, c, ns, "target", 60*time.Second, "running", running)

	const (
		denied          = 403
		upgradeRequired = -1 // allowed, then refused for want of an upgrade
	)
	logs := "/containerLogs/" + ns + "/target/main"
	execPath := "/exec/" + ns + "/target/main?command=ls&output=1"
	type check struct {
		method, path string
		code         int
	}
	tokenCases := []struct {
		name, subresource string
		checks            []check
	}{
		{"pods", "pods", []check{{"GET", "/pods", 200}, {"GET", "/runningpods/", 200}, {"POST", execPath, denied}, {"GET", logs, denied}}},
		{"stats", "stats", []check{{"GET", "/stats/summary", 200}, {"GET", "/pods", denied}, {"GET", logs, denied}}},
		{"log", "log", []check{{"GET", logs, denied}, {"GET", "/pods", denied}}},
		{"proxy", "proxy", []check{{"POST", execPath, upgradeRequired}, {"GET", logs, 200}, {"GET", "/pods", 200}, {"GET", "/stats/summary", denied}}},
	}
	verify := func(who string, cl *http.Client, token string, ch check) {
		t.Helper()
		code, body := nodeGet(t, cl, ch.method, ch.path, token)
		ok := code == ch.code
		switch ch.code {
		case upgradeRequired:
			ok = code >= 400 && code != 401 && code != 403 && strings.Contains(body, "Upgrade request required")
		case denied:
			ok = code == 403 && strings.HasPrefix(body, "Forbidden (user=")
		}
		if !ok {
			t.Errorf("%s %s %s: %d %q, want %d", who, ch.method, ch.path, code, trunc(body), ch.code)
		}
	}
	anon := nodeClientAs(t, "")
	for _, tc := range tokenCases {
		tok := grantedToken(t, c, ns, tc.name, tc.subresource)
		for _, ch := range tc.checks {
			verify("nodes/"+tc.subresource, anon, tok, ch)
		}
	}

	// The apiserver's client certificate, bound to system:kubelet-api-admin.
	kubeletClient := nodeClientAs(t, "apiserver-kubelet-client")
	for _, ch := range []check{{"GET", "/pods", 200}, {"GET", logs, 200}, {"POST", execPath, upgradeRequired}, {"GET", "/stats/summary", 200}, {"GET", "/metrics", 200}} {
		verify("apiserver-kubelet-client", kubeletClient, "", ch)
	}
}

func TestKubectlAttach(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	pod := busyboxPod("attach", "", v1.RestartPolicyNever)
	pod.Spec.Containers[0].Command = []string{"sh"}
	pod.Spec.Containers[0].Stdin = true
	createPod(t, c, ns, pod)
	waitPod(t, c, ns, "attach", 60*time.Second, "running", running)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := kubectlCmd(ctx, "-n", ns, "attach", "-i", "attach", "-c", "main")
	// The runtime detaches when stdin closes (stdinOnce is false), so
	// stdin stays open until the answer is back.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := startKubectl(t, cmd)
	if _, err := io.WriteString(stdin, "echo attached-$((6*7))\n"); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var lines []string
	for sc.Scan() {
		if lines = append(lines, sc.Text()); sc.Text() == "attached-42" {
			break
		}
	}
	if len(lines) == 0 || lines[len(lines)-1] != "attached-42" {
		t.Fatalf("attach -i: got %q (%v)", lines, sc.Err())
	}
	_ = stdin.Close()
}

func TestKubectlCp(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	createPod(t, c, ns, busyboxPod("cp", "sleep 3600", v1.RestartPolicyNever))
	waitPod(t, c, ns, "cp", 60*time.Second, "running", running)
	dir := t.TempDir()
	data := bytes.Repeat([]byte("0123456789abcdef\x00\xff\n"), 16000)
	src := filepath.Join(dir, "in.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	kubectl(t, "-n", ns, "cp", src, "cp:/tmp/in.bin", "-c", "main")
	if got := kubectl(t, "-n", ns, "exec", "cp", "--", "wc", "-c", "/tmp/in.bin"); !strings.HasPrefix(strings.TrimSpace(got), strconv.Itoa(len(data))+" ") {
		t.Fatalf("size in the pod: %q", got)
	}
	kubectl(t, "-n", ns, "exec", "cp", "--", "sh", "-c", "cp /tmp/in.bin /tmp/out.bin && echo tail >> /tmp/out.bin")
	dst := filepath.Join(dir, "out.bin")
	kubectl(t, "-n", ns, "cp", "cp:/tmp/out.bin", dst, "-c", "main")
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if want := append(append([]byte{}, data...), "tail\n"...); !bytes.Equal(got, want) {
		t.Fatalf("copied back %d bytes, want %d", len(got), len(want))
	}
}

// TestServerStats reads /stats/summary and /metrics/resource for a running
// pod: CRI stats for the pod and its container, the root cgroup for the node.
