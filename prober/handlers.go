package prober

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// UserAgent is what httpGet probes and hooks send, as the kubelet 1.36.
const UserAgent = "kube-probe/1.36"

// maxOutput bounds what is kept of a probe's output.
const maxOutput = 10 * 1024

// Execer runs a command in a container: CRI ExecSync.
type Execer interface {
	ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (stdout, stderr []byte, err error)
}

// Target is the container a handler acts on.
type Target struct {
	Pod         *v1.Pod
	Container   *v1.Container
	ContainerID string
	PodIP       string
}

// Result is the outcome of one attempt of a probe.
type Result struct {
	OK bool
	// Warning marks a success the kubelet reports with a ProbeWarning
	// event (its probe.Warning): an HTTP probe that ended at a redirect
	// to another host.
	Warning bool
	// Output is what the handler said: why it failed, or the warning.
	Output string
}

// Do runs one attempt of a probe handler within timeout.
func Do(ctx context.Context, ex Execer, h *v1.ProbeHandler, t Target, timeout time.Duration) Result {
	var err error
	var out string
	warning := false
	switch {
	case h.Exec != nil:
		out, err = Exec(ctx, ex, t.ContainerID, h.Exec.Command, timeout)
	case h.HTTPGet != nil:
		out, warning, err = httpGet(ctx, h.HTTPGet, t, timeout)
	case h.TCPSocket != nil:
		err = tcp(ctx, h.TCPSocket, t, timeout)
	case h.GRPC != nil:
		err = grpcCheck(ctx, h.GRPC, t, timeout)
	default:
		err = errors.New("probe has no handler")
	}
	if err != nil {
		if out != "" {
			return Result{Output: out}
		}
		return Result{Output: err.Error()}
	}
	return Result{OK: true, Warning: warning, Output: out}
}

// Exec runs cmd in the container; exit code 0 is success. The output is
// the command's stdout and stderr.
func Exec(ctx context.Context, ex Execer, containerID string, cmd []string, timeout time.Duration) (string, error) {
	if ex == nil {
		return "", errors.New("exec: no runtime")
	}
	stdout, stderr, err := ex.ExecSync(ctx, containerID, cmd, timeout)
	out := string(append(stdout, stderr...))
	if len(out) > maxOutput {
		out = out[:maxOutput]
	}
	if err != nil {
		if ctx.Err() == nil && strings.Contains(err.Error(), "DeadlineExceeded") {
			return out, fmt.Errorf("command %q timed out", strings.Join(cmd, " "))
		}
		return out, fmt.Errorf("exec %q: %w", strings.Join(cmd, " "), err)
	}
	return out, nil
}

// host is the address handlers connect to: the given host, else the pod IP.
func host(h string, t Target) string {
	if h != "" {
		return h
	}
	return t.PodIP
}

// port resolves a port given by number or by container port name.
func port(p intstr.IntOrString, c *v1.Container) (int, error) {
	if p.Type == intstr.Int {
		if p.IntVal <= 0 || p.IntVal > 65535 {
			return 0, fmt.Errorf("invalid port %d", p.IntVal)
		}
		return int(p.IntVal), nil
	}
	if c != nil {
		for _, cp := range c.Ports {
			if cp.Name == p.StrVal {
				return int(cp.ContainerPort), nil
			}
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil && n > 0 && n <= 65535 {
		return n, nil
	}
	return 0, fmt.Errorf("no container port named %q", p.StrVal)
}

// HTTPGet sends the GET of a probe or hook; status 200-399 is success.
func HTTPGet(ctx context.Context, a *v1.HTTPGetAction, t Target, timeout time.Duration) (string, error) {
	out, _, err := httpGet(ctx, a, t, timeout)
	return out, err
}

// httpGet is HTTPGet, and whether its success is a warning: a redirect to
// another host, not followed.
func httpGet(ctx context.Context, a *v1.HTTPGetAction, t Target, timeout time.Duration) (string, bool, error) {
	p, err := port(a.Port, t.Container)
	if err != nil {
		return "", false, err
	}
	scheme := strings.ToLower(string(a.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := a.Path
	if path != "" && !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u, err := url.Parse(fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(host(a.Host, t), strconv.Itoa(p)), path))
	if err != nil {
		return "", false, fmt.Errorf("probe URL: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", false, fmt.Errorf("probe request: %w", err)
	}
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set("Accept", "*/*")
	for _, h := range a.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	client := &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // probes do not verify, as the kubelet's
			DisableKeepAlives: true,
			Proxy:             nil,
		},
		CheckRedirect: func(r *http.Request, via []*http.Request) error {
			if r.URL.Hostname() != via[0].URL.Hostname() {
				return http.ErrUseLastResponse
			}
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			return nil
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", false, fmt.Errorf("get %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close() //nolint:errcheck // read-only
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxOutput))
	if resp.StatusCode < http.StatusOK || resp.StatusCode >= http.StatusBadRequest {
		return fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode), false, fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	if resp.StatusCode >= http.StatusMultipleChoices {
		// A redirect to another host, not followed: a success with a
		// warning (the kubelet's probe.Warning).
		return redirectWarning + string(body), true, nil
	}
	return string(body), false, nil
}

// redirectWarning starts the output of an HTTP probe that ended at a
// redirect it did not follow, the kubelet's text.
const redirectWarning = "Probe terminated redirects, Response body: "

func tcp(ctx context.Context, a *v1.TCPSocketAction, t Target, timeout time.Duration) error {
	p, err := port(a.Port, t.Container)
	if err != nil {
		return err
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host(a.Host, t), strconv.Itoa(p)))
	if err != nil {
		return err
	}
	return conn.Close()
}

func grpcCheck(ctx context.Context, a *v1.GRPCAction, t Target, timeout time.Duration) error {
	addr := net.JoinHostPort(host("", t), strconv.Itoa(int(a.Port)))
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithUserAgent(UserAgent))
	if err != nil {
		return fmt.Errorf("grpc client for %s: %w", addr, err)
	}
	defer conn.Close() //nolint:errcheck // nothing to do
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	service := ""
	if a.Service != nil {
		service = *a.Service
	}
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return fmt.Errorf("grpc health check of %s: %w", addr, err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("service unhealthy (responded with %q)", resp.GetStatus())
	}
	return nil
}
