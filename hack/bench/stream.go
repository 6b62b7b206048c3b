package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
)

// streamBytes is what each stream carries: the 1 GiB the node API's
// performance target names. execReps exec streams and port-forward
// downloads are measured per run (their median counts), as a single one
// varies by ±15 % on 2 cores. The log stream is read once: bench.sh sets
// containerLogMaxSize above 1 GiB for both agents, so that rotation does
// not cut the follower off (with 10 Mi files a writer this fast outruns
// any follower, the kubelet's as nodeagent's).
const (
	streamBytes = 1 << 30
	execReps    = 3
)

// measureStreams measures kubectl logs -f, exec stdout and port-forward
// throughput through the apiserver, in bytes per second.
func measureStreams(ctx context.Context, c kubernetes.Interface, kubeconfig, ns, node, image string, r *Results) error {
	kubectl := filepath.Join(os.Getenv("HOME"), ".cache/nodeagent/bin/kubectl")
	w, err := newWatcher(ctx, c, ns)
	if err != nil {
		return err
	}
	// The log stream first, then the file port-forward serves: writing it
	// must not compete with the exec streams (they wait for /www/done).
	script := fmt.Sprintf("yes abcdefghijklmnopqrstuvwxyz0123456789 | head -c %d; mkdir -p /www; head -c %d /dev/zero > /www/f; "+
		"httpd -p 8080 -h /www; touch /www/done; sleep 3600", streamBytes, streamBytes)
	p := benchPod("stream", node, image)
	p.Spec.Containers[0].Command = []string{"sh", "-c", script}
	if _, err := w.start(ctx, c, ns, p); err != nil {
		return err
	}
	defer func() {
		if _, err := w.delete(ctx, c, ns, "stream"); err != nil {
			fmt.Fprintln(os.Stderr, "bench: delete pod stream:", err)
		}
	}()

	// logs -f: everything the container writes, as it writes it.
	n, d, err := countOutput(exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfig, "-n", ns, "logs", "-f", "stream"), streamBytes)
	if err != nil {
		return fmt.Errorf("logs -f: %w", err)
	}
	if d > 0 {
		r.Values["stream_logs_bytes_per_s"] = float64(n) / d.Seconds()
	}
	r.Values["stream_logs_bytes"] = float64(n)
	for i := 0; ; i++ {
		if exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfig, "-n", ns, "exec", "stream", "--", "test", "-f", "/www/done").Run() == nil {
			break
		}
		if i == 120 {
			return fmt.Errorf("the stream pod did not write its file")
		}
		time.Sleep(500 * time.Millisecond)
	}

	// exec stdout.
	// A stream cut short (kubectl exec can lose the end of stdout with
	// exit code 0, kubernetes/kubernetes#124571) is counted and run
	// again, up to maxShort times.
	var rates []float64
	short := 0
	for len(rates) < execReps {
		n, d, err = countOutput(exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfig, "-n", ns, "exec", "stream", "--",
			"head", "-c", fmt.Sprint(streamBytes), "/dev/zero"), streamBytes)
		if err != nil {
			return fmt.Errorf("exec: %w", err)
		}
		if n < streamBytes {
			short++
			fmt.Printf("streaming: exec delivered %d bytes of %d\n", n, streamBytes)
			if short > maxShort {
				return fmt.Errorf("exec: %d streams cut short, the last %d bytes of %d", short, n, streamBytes)
			}
			continue
		}
		rates = append(rates, float64(n)/d.Seconds())
	}
	r.Values["stream_exec_short"] = float64(short)
	r.Samples["stream_exec_bytes_per_s"] = rates
	sort.Float64s(rates)
	r.Values["stream_exec_bytes_per_s"] = rates[len(rates)/2]

	// port-forward to the pod's httpd, execReps downloads of the file.
	pf := exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfig, "-n", ns, "port-forward", "pod/stream", "18081:8080")
	if err := pf.Start(); err != nil {
		return err
	}
	defer func() { _ = pf.Process.Kill(); _ = pf.Wait() }()
	rates = nil
	for range execReps {
		var resp *http.Response
		for i := 0; i < 50; i++ {
			if resp, err = http.Get("http://127.0.0.1:18081/f"); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("port-forward: %w", err)
		}
		t0 := time.Now()
		m, err := io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return fmt.Errorf("port-forward read: %w", err)
		}
		rates = append(rates, float64(m)/time.Since(t0).Seconds())
	}
	r.Samples["stream_portforward_bytes_per_s"] = rates
	sort.Float64s(rates)
	r.Values["stream_portforward_bytes_per_s"] = rates[len(rates)/2]
	return nil
}

// maxShort is how many exec streams cut short are run again before the
// step gives up.
const maxShort = 3

// countOutput runs cmd and counts its stdout until want bytes came, it
// ended, or nothing came for 3 s after the first byte (log rotation can
// outrun a follower, with the kubelet as with nodeagent). It returns the
// bytes and the time from start to the last byte.
func countOutput(cmd *exec.Cmd, want int64) (int64, time.Duration, error) {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	type chunk struct {
		n   int
		err error
	}
	ch := make(chan chunk)
	go func() {
		buf := make([]byte, 1<<20)
		for {
			k, err := out.Read(buf)
			ch <- chunk{k, err}
			if err != nil {
				return
			}
		}
	}()
	var n int64
	last := t0
	for n < want {
		select {
		case c := <-ch:
			if c.n > 0 {
				n += int64(c.n)
				last = time.Now()
			}
			if c.err != nil {
				return n, last.Sub(t0), nil
			}
		case <-time.After(idleLimit(n)):
			return n, last.Sub(t0), nil
		}
	}
	return n, last.Sub(t0), nil
}

var _ = v1.PodRunning

// idleLimit is how long countOutput waits for more output: 60 s for the
// first byte, then 3 s.
func idleLimit(n int64) time.Duration {
	if n == 0 {
		return time.Minute
	}
	return 3 * time.Second
}
