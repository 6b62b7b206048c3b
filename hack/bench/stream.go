package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
)

const streamBytes = 200_000_000

// measureStreams measures kubectl logs -f, exec stdout and port-forward
// throughput through the apiserver, in bytes per second.
func measureStreams(ctx context.Context, c kubernetes.Interface, kubeconfig, ns, node, image string, r *Results) error {
	kubectl := filepath.Join(os.Getenv("HOME"), ".cache/nodeagent/bin/kubectl")
	w, err := newWatcher(ctx, c, ns)
	if err != nil {
		return err
	}
	script := fmt.Sprintf("mkdir -p /www; head -c %d /dev/zero > /www/f; httpd -p 8080 -h /www; "+
		"echo ready; yes abcdefghijklmnopqrstuvwxyz0123456789 | head -c %d; sleep 3600", streamBytes, streamBytes)
	p := benchPod("stream", node, image)
	p.Spec.Containers[0].Command = []string{"sh", "-c", script}
	if _, err := w.start(ctx, c, ns, p); err != nil {
		return err
	}
	defer w.delete(ctx, c, ns, "stream")

	// logs -f: everything the container writes, as it writes it.
	t0 := time.Now()
	n, err := countOutput(exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfig, "-n", ns, "logs", "-f", "stream"), streamBytes)
	if err != nil {
		return fmt.Errorf("logs -f: %w", err)
	}
	r.Values["stream_logs_bytes_per_s"] = float64(n) / time.Since(t0).Seconds()

	// exec stdout.
	t0 = time.Now()
	n, err = countOutput(exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfig, "-n", ns, "exec", "stream", "--",
		"head", "-c", fmt.Sprint(streamBytes), "/dev/zero"), streamBytes)
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	r.Values["stream_exec_bytes_per_s"] = float64(n) / time.Since(t0).Seconds()

	// port-forward to the pod's httpd.
	pf := exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfig, "-n", ns, "port-forward", "pod/stream", "18081:8080")
	if err := pf.Start(); err != nil {
		return err
	}
	defer func() { _ = pf.Process.Kill(); _ = pf.Wait() }()
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
	defer resp.Body.Close()
	t0 = time.Now()
	m, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return fmt.Errorf("port-forward read: %w", err)
	}
	r.Values["stream_portforward_bytes_per_s"] = float64(m) / time.Since(t0).Seconds()
	return nil
}

// countOutput runs cmd and counts its stdout until want bytes came or it
// ended.
func countOutput(cmd *exec.Cmd, want int64) (int64, error) {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var n int64
	buf := make([]byte, 1<<20)
	for n < want {
		k, err := out.Read(buf)
		n += int64(k)
		if err != nil {
			break
		}
	}
	return n, nil
}

var _ = v1.PodRunning
