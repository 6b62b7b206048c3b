//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
)

// createPodsAtOnce creates the pods from 20 goroutines.
func createPodsAtOnce(t *testing.T, c kubernetes.Interface, ns string, pods []*v1.Pod) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(pods))
	work := make(chan *v1.Pod)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				if _, err := c.CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
					errs <- fmt.Errorf("create %s: %w", p.Name, err)
				}
			}
		}()
	}
	for _, p := range pods {
		work <- p
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// waitAllRunning waits for every pod of the namespace to run.
func waitAllRunning(t *testing.T, c kubernetes.Interface, ns string, n int, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%d pods running", n), func() (bool, error) {
		list, err := c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		up := 0
		for i := range list.Items {
			if running(&list.Items[i]) {
				up++
			}
		}
		return up == n, fmt.Errorf("%d of %d running", up, n)
	})
}

// The kubelet's default maxPods (110) started at once and deleted at once,
// again and again: all run, all go, nothing left behind, and the agent's
// goroutines, open files and memory come back to their level.
func TestSoakLoad(t *testing.T) {
	pods, rounds := soakN(30, 110), soakN(1, 5)
	r := soakRecord(t, fmt.Sprintf("%d pods created at once, then deleted at once", pods),
		"all run, all go, nothing left behind; agent goroutines and fds back to their level (settled), RSS")
	c := client(t)
	// maxPods counts every pod on the node: an earlier test's still going
	// would leave some of these rejected (OutOfpods).
	waitNoPodsOnNode(t, c, 3*time.Minute)
	base := leftoverBaseline(t, c)
	ns := namespace(t, c)
	before := readAgentStats(t)
	var peak agentStats
	var took []time.Duration
	for round := 0; round < rounds; round++ {
		list := make([]*v1.Pod, pods)
		for i := range list {
			list[i] = busyboxPod(fmt.Sprintf("l%d-%d", round, i), "trap 'exit 0' TERM; while true; do sleep 1; done", v1.RestartPolicyAlways)
		}
		start := time.Now()
		createPodsAtOnce(t, c, ns, list)
		waitAllRunning(t, c, ns, pods, 10*time.Minute)
		took = append(took, time.Since(start).Round(100*time.Millisecond))
		if s := readAgentStats(t); s.rssKB > peak.rssKB {
			peak = s
		}
		deleteAllPods(t, c, ns, 10*time.Minute)
		waitNoLeftovers(t, c, base, 150*time.Second)
	}
	r.Injected("%d rounds", rounds)
	after := settledAgentStats(t, before, 20, 2*time.Minute)
	if after.goroutines > before.goroutines+20 {
		t.Errorf("goroutines %d before, %d after", before.goroutines, after.goroutines)
	}
	if after.fds > before.fds+20 {
		t.Errorf("open files %d before, %d after", before.fds, after.fds)
	}
	if after.rssKB > before.rssKB+100*1024 {
		t.Errorf("RSS %d MB before, %d MB after", before.rssKB/1024, after.rssKB/1024)
	}
	r.Found("all running after %v per round; agent %s before, %s at the peak, %s after; no leftovers", took, before, peak, after)
}

// A container that logs as fast as it can: rotation keeps its files at
// containerLogMaxFiles, their size within what rotation allows (the files
// grow between two checks of the monitor), and the agent's memory flat.
func TestSoakLogFlood(t *testing.T) {
	const maxSize, maxFiles = 2 << 20, 3
	flood := time.Duration(soakN(20, 600)) * time.Second
	r := soakRecord(t, fmt.Sprintf("a container logging as fast as it can for %v (containerLogMaxSize 2Mi, containerLogMaxFiles 3)", flood),
		"files per container, their total size, agent RSS")
	withAgentFlags(t, "--container-log-max-size=2Mi", fmt.Sprintf("--container-log-max-files=%d", maxFiles))
	harness(t, "wait-node")
	c := client(t)
	ns := namespace(t, c)
	line := strings.Repeat("flood ", 16)
	p := createPod(t, c, ns, busyboxPod("flood", "yes '"+line+"'", v1.RestartPolicyAlways))
	waitPod(t, c, ns, "flood", 60*time.Second, "running", running)
	dir := filepath.Join(podLogsDir, ns+"_flood_"+string(p.UID), "main")
	before := readAgentStats(t)
	var maxCount int
	var maxTotal, maxGrowth, last int64
	end := time.Now().Add(flood)
	samples := 0
	for time.Now().Before(end) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		count := 0
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".tmp") {
				continue // being compressed
			}
			if info, err := e.Info(); err == nil {
				total += info.Size()
				count++
			}
		}
		if count > maxCount {
			maxCount = count
		}
		if total > maxTotal {
			maxTotal = total
		}
		if g := total - last; g > maxGrowth {
			maxGrowth = g
		}
		last = total
		samples++
		time.Sleep(time.Second)
	}
	after := readAgentStats(t)
	r.Injected("%v of flood, %d samples", flood, samples)
	// The monitor checks every 10 s (containerLogMonitorInterval), as the
	// kubelet's: between two checks the current file grows by what the
	// container writes meanwhile, and a rotated file stays uncompressed
	// until the next check compresses it. So a writer faster than
	// maxSize per interval peaks at about two intervals of its output, with
	// the kubelet as with nodeagent.
	bound := int64(maxFiles*maxSize) + 22*maxGrowth
	if maxCount > maxFiles {
		t.Errorf("%d log files at once, containerLogMaxFiles is %d", maxCount, maxFiles)
	}
	if maxTotal > bound {
		t.Errorf("log files reached %d MB, more than %d MB (max files x max size + 22 s of writing at %d MB/s)", maxTotal>>20, bound>>20, maxGrowth>>20)
	}
	if after.rssKB > before.rssKB+30*1024 {
		t.Errorf("agent RSS grew from %d MB to %d MB during the flood", before.rssKB/1024, after.rssKB/1024)
	}
	r.Found("at most %d files, %d MB in all (bound %d MB at up to %d MB/s written); agent %s before, %s after", maxCount, maxTotal>>20, bound>>20, maxGrowth>>20, before, after)
}

// nodeRESTConfig is a rest.Config for the node API as the admin.
func nodeRESTConfig() *rest.Config {
	pki := filepath.Join(state, "pki")
	return &rest.Config{Host: nodeAPI, TLSClientConfig: rest.TLSClientConfig{
		CAFile: filepath.Join(pki, "ca.crt"), CertFile: filepath.Join(pki, "admin.crt"), KeyFile: filepath.Join(pki, "admin.key"),
	}}
}

// Many concurrent logs -f and exec streams on the node API, half dropped by
// the client mid-stream: no goroutine or open file left behind in the
// agent, memory bounded.
func TestSoakStreams(t *testing.T) {
	streams := soakN(60, 1000)
	execs := streams / 5
	r := soakRecord(t, fmt.Sprintf("%d concurrent streams on the node API (%d logs -f, %d exec), half dropped mid-stream", streams, streams-execs, execs),
		"every stream got data; agent goroutines and fds back to their level (settled); RSS")
	c := client(t)
	ns := namespace(t, c)
	createPod(t, c, ns, busyboxPod("talker", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.1; done", v1.RestartPolicyAlways))
	waitPod(t, c, ns, "talker", 60*time.Second, "running", running)
	time.Sleep(time.Second)
	before := readAgentStats(t)
	admin := nodeClient(t, true)
	admin.Timeout = 0
	cfg := nodeRESTConfig()
	var wg sync.WaitGroup
	var got, failed atomic.Int64
	var mu sync.Mutex
	var firstErrs []string
	fail := func(err error) {
		failed.Add(1)
		mu.Lock()
		if len(firstErrs) < 5 {
			firstErrs = append(firstErrs, err.Error())
		}
		mu.Unlock()
	}
	var peak atomic.Int64
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Second):
				if s := readAgentStats(t); int64(s.rssKB) > peak.Load() {
					peak.Store(int64(s.rssKB))
				}
			}
		}
	}()
	for i := 0; i < streams; i++ {
		drop := i%2 == 0
		hold := randDuration(time.Second, 5*time.Second)
		wg.Add(1)
		if i < execs {
			go func() {
				defer wg.Done()
				script := "echo started; sleep 3"
				if drop {
					script = "echo started; while true; do echo more; sleep 0.2; done"
				}
				q := url.Values{"command": {"sh", "-c", script}, "output": {"1"}}
				u, _ := url.Parse(nodeAPI + "/exec/" + ns + "/talker/main?" + q.Encode())
				ex, err := remotecommand.NewSPDYExecutor(cfg, http.MethodPost, u)
				if err != nil {
					fail(err)
					return
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				pr, pw := io.Pipe()
				done := make(chan error, 1)
				go func() { done <- ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: pw}); _ = pw.Close() }()
				if l, err := bufio.NewReader(pr).ReadString('\n'); err != nil || l != "started\n" {
					fail(fmt.Errorf("exec: first line %q: %w", l, err))
				} else {
					got.Add(1)
				}
				go func() { _, _ = io.Copy(io.Discard, pr) }()
				if drop {
					time.Sleep(hold)
					cancel()
				}
				if err := <-done; err != nil && !drop {
					fail(fmt.Errorf("exec: %w", err))
				}
			}()
			continue
		}
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			path := "/containerLogs/" + ns + "/talker/main?tailLines=5"
			if drop {
				path += "&follow=true"
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, nodeAPI+path, nil)
			resp, err := admin.Do(req)
			if err != nil {
				fail(fmt.Errorf("logs: %w", err))
				return
			}
			defer func() { _ = resp.Body.Close() }()
			br := bufio.NewReader(resp.Body)
			if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "line ") {
				fail(fmt.Errorf("logs: %d, first line %q: %w", resp.StatusCode, l, err))
				return
			}
			got.Add(1)
			if drop {
				go func() { time.Sleep(hold); cancel() }()
			}
			_, _ = io.Copy(io.Discard, br)
		}()
	}
	wg.Wait()
	close(stop)
	r.Injected("%d streams", streams)
	if failed.Load() > 0 {
		t.Errorf("%d of %d streams failed, first: %s", failed.Load(), streams, strings.Join(firstErrs, "; "))
	}
	admin.CloseIdleConnections()
	ended := time.Now()
	after := settledAgentStats(t, before, 10, 3*time.Minute)
	t.Logf("agent settled %v after the streams: %s", time.Since(ended).Round(time.Second), after)
	if after.goroutines > before.goroutines+10 {
		t.Errorf("goroutines %d before, %d after", before.goroutines, after.goroutines)
	}
	if after.fds > before.fds+10 {
		t.Errorf("open files %d before, %d after", before.fds, after.fds)
	}
	// The Go heap comes back (the runtime collects at least every 2 min
	// on an idle agent); RSS follows as the runtime returns the freed
	// pages to the kernel, which it does gradually.
	deadline := time.Now().Add(150 * time.Second)
	for after.heapMB > before.heapMB+20 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Second)
		after = readAgentStats(t)
	}
	if after.heapMB > before.heapMB+20 {
		t.Errorf("Go heap in use %d MB before, %d MB 150 s after the streams", before.heapMB, after.heapMB)
	}
	r.Found("%d of %d streams got data; agent %s before, RSS %d MB at the peak, %s after", got.Load(), streams, before, peak.Load()/1024, after)
}
