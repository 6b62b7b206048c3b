//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// nodeStatus does one request to the node API and returns the status code;
// unlike nodeGet, an error is returned, for polling.
func nodeStatus(ctx context.Context, c *http.Client, method, path, token string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, nodeAPI+path, nil)
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// restartAgentWith restarts the agent with extra flags (none: the
// harness's own) and waits until the node API answers GET /runningpods/
// with want, which tells the restarted agent from the old one.
func restartAgentWith(t *testing.T, args string, want int) {
	t.Helper()
	file := filepath.Join(state, "nodeagent.args")
	if args == "" {
		if err := os.Remove(file); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	} else if err := os.WriteFile(file, []byte(args+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	harness(t, "agent-restart")
	hc := nodeClient(t, true)
	waitFor(t, 90*time.Second, "the restarted node API", func() (bool, error) {
		code, err := nodeStatus(context.Background(), hc, http.MethodGet, "/runningpods/", "")
		return code == want, err
	})
	c := client(t)
	waitFor(t, 90*time.Second, "node Ready", func() (bool, error) {
		n, err := c.CoreV1().Nodes().Get(context.Background(), nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ok, _ := nodeReady(n)
		return ok, nil
	})
}

// With --enable-debugging-handlers=false the node API answers 405 on the
// debugging endpoints, whatever the method, and serves the rest.
func TestDebuggingHandlersDisabled(t *testing.T) {
	t.Cleanup(func() { restartAgentWith(t, "", http.StatusOK) })
	restartAgentWith(t, "--enable-debugging-handlers=false", http.StatusMethodNotAllowed)

	hc := nodeClient(t, true)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/exec/default/nopod/main?command=ls&output=1", 405},
		{"POST", "/exec/default/nopod/main?command=ls&output=1", 405},
		{"POST", "/attach/default/nopod/main?output=1", 405},
		{"POST", "/portForward/default/nopod", 405},
		{"POST", "/run/default/nopod/main?cmd=ls", 405},
		{"GET", "/containerLogs/default/nopod/main", 405},
		{"GET", "/runningpods/", 405},
		{"GET", "/debug/pprof/", 405},
		{"GET", "/debug/pprof/heap", 405},
		{"GET", "/logs/", 405},
		{"GET", "/configz", 404},
		{"GET", "/pods", 200},
		{"GET", "/healthz", 200},
		{"GET", "/stats/summary", 200},
	} {
		if code, body := nodeGet(t, hc, tc.method, tc.path, ""); code != tc.want {
			t.Errorf("%s %s: %d, want %d: %s", tc.method, tc.path, code, tc.want, trunc(body))
		}
	}
	// Without credentials it is still 401 first, as in the kubelet.
	if code, _ := nodeGet(t, nodeClient(t, false), "GET", "/runningpods/", ""); code != http.StatusUnauthorized {
		t.Errorf("anonymous GET /runningpods/: %d, want 401", code)
	}
}

// A flood of requests with made-up bearer tokens (each one a TokenReview
// the node must ask the API server for) does not delay the node's Lease
// renewals: the heartbeats have a client of their own, as the kubelet's.
func TestLeaseSurvivesBadTokenFlood(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	leases := c.CoordinationV1().Leases("kube-node-lease")
	lease, err := leases.Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// nodestatus renews every quarter of the lease duration (10s of 40s),
	// as the kubelet.
	interval := time.Duration(*lease.Spec.LeaseDurationSeconds) * time.Second / 4
	const margin = 3 * time.Second

	// Watch renewTime from before the flood until one interval after it.
	var (
		mu       sync.Mutex
		renewals []time.Time
		watchErr error
	)
	record := func() {
		l, err := leases.Get(ctx, nodeName, metav1.GetOptions{})
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if !apierrors.IsNotFound(err) {
				watchErr = err
			}
			return
		}
		rt := l.Spec.RenewTime.Time
		if n := len(renewals); n == 0 || !rt.Equal(renewals[n-1]) {
			renewals = append(renewals, rt)
		}
	}
	stopWatch := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			record()
			select {
			case <-stopWatch:
				return
			case <-tick.C:
			}
		}
	}()

	// 1,000 requests over 10s, up to 100 at a time, each with a new random
	// token.
	const total, workers = 1000, 100
	floodCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	hc := nodeClient(t, false)
	hc.Transport.(*http.Transport).MaxIdleConnsPerHost = workers
	jobs := make(chan struct{})
	codes := map[int]int{}
	var errs []error
	var wg sync.WaitGroup
	floodStart := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				b := make([]byte, 16)
				_, _ = rand.Read(b)
				code, err := nodeStatus(floodCtx, hc, http.MethodGet, "/pods", hex.EncodeToString(b))
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					codes[code]++
				}
				mu.Unlock()
			}
		}()
	}
	pace := time.NewTicker(10 * time.Second / total)
	for range total {
		select {
		case jobs <- struct{}{}:
		case <-floodCtx.Done():
		}
		<-pace.C
	}
	pace.Stop()
	close(jobs)
	wg.Wait()
	floodEnd := time.Now()
	t.Logf("%d requests in %v: status codes %v, %d errors", total, floodEnd.Sub(floodStart).Round(time.Millisecond), codes, len(errs))

	time.Sleep(interval + margin)
	close(stopWatch)
	<-watchDone
	end := time.Now()

	if len(errs) > 0 {
		t.Errorf("%d flood requests failed, first: %v", len(errs), errors.Join(errs[:min(3, len(errs))]...))
	}
	if codes[http.StatusUnauthorized] != total {
		t.Errorf("status codes %v, want %d × 401", codes, total)
	}
	if watchErr != nil {
		t.Errorf("reading the lease: %v", watchErr)
	}
	sort.Slice(renewals, func(i, j int) bool { return renewals[i].Before(renewals[j]) })
	if len(renewals) < 2 {
		t.Fatalf("renewTime seen %d times over %v: %v", len(renewals), end.Sub(floodStart), renewals)
	}
	for i := 1; i < len(renewals); i++ {
		if gap := renewals[i].Sub(renewals[i-1]); gap > interval+margin {
			t.Errorf("lease renewed at %s after %s: a gap of %v, more than %v + %v", renewals[i].Format(time.StampMilli),
				renewals[i-1].Format(time.StampMilli), gap.Round(time.Millisecond), interval, margin)
		}
	}
	if gap := end.Sub(renewals[len(renewals)-1]); gap > interval+margin {
		t.Errorf("lease not renewed for %v at the end (last renewal %s)", gap.Round(time.Millisecond), renewals[len(renewals)-1].Format(time.StampMilli))
	}
	n, err := c.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ok, msg := nodeReady(n); !ok {
		t.Errorf("node not Ready after the flood: %s", msg)
	}
}

// A security-relevant setting nodeagent cannot honour stops it with exit
// code 1 and a message naming the field, from the file or from a flag.
func TestSecurityConfigRefused(t *testing.T) {
	dir := t.TempDir()
	const head = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
	cases := map[string]struct {
		body string
		args []string
		want string
	}{
		// Per-pod PID limits need the pod cgroups nodeagent writes only
		// with the cgroupfs driver.
		"podPidsLimit":           {body: head + "cgroupDriver: systemd\npodPidsLimit: 4096\n", want: "podPidsLimit"},
		"enforceNodeAllocatable": {body: head + "enforceNodeAllocatable: [pods, system-reserved]\n", want: "enforceNodeAllocatable"},
		"staticPodURL":           {body: head + "staticPodURL: http://192.0.2.1/pods\n", want: "staticPodURL"},
		"imagePullCredentialsVerificationPolicy": {body: head + "imagePullCredentialsVerificationPolicy: AlwaysVerify\n",
			want: "imagePullCredentialsVerificationPolicy"},
		"tlsMinVersion":   {body: head + "tlsMinVersion: TLS13\n", want: "tlsMinVersion"},
		"tlsCipherSuites": {body: head + "tlsCipherSuites: [TLS_RSA_WITH_NOTHING]\n", want: "tlsCipherSuites"},
		"flag":            {body: head, args: []string{"--pod-max-pids=100", "--cgroups-per-qos=false"}, want: "podPidsLimit"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := filepath.Join(dir, name+".yaml")
			if err := os.WriteFile(f, []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"--config", f, "--kubeconfig", "/nonexistent"}, tc.args...)
			out, err := exec.Command(filepath.Join(cache, "bin/nodeagent"), args...).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("exit: %v, want code 1; output: %s", err, out)
			}
			if !strings.Contains(string(out), tc.want+":") {
				t.Errorf("message does not name %s: %s", tc.want, out)
			}
		})
	}
}
