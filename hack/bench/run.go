package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func runCmd(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	kubeconfig, node, image := commonFlags(fs)
	agent := fs.String("agent", "nodeagent", "name of the agent measured")
	pidFile := fs.String("pid-file", "/var/lib/nodeagent-harness/run/nodeagent.pid", "the agent's pid file")
	out := fs.String("out", "", "results file (JSON)")
	auditLog := fs.String("audit-log", "/var/lib/nodeagent-harness/logs/audit.log", "apiserver audit log")
	seq := fs.Int("sequential", 30, "pods started one after another")
	burst := fs.Int("burst", 30, "pods created at once")
	big := fs.Int("big-burst", 100, "pods created at once for the memory figures")
	idle := fs.Duration("idle", 20*time.Second, "idle measurement window")
	stream := fs.Bool("stream", true, "measure streaming throughput")
	_ = fs.Parse(args)

	pid, err := readPid(*pidFile)
	if err != nil {
		return err
	}
	rc, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	rc.QPS, rc.Burst = 1000, 1000
	c := kubernetes.NewForConfigOrDie(rc)
	ctx := context.Background()
	ns := fmt.Sprintf("bench-%s-%d", *agent, time.Now().Unix())
	if _, err := c.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	defer func() {
		if err := c.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
			fmt.Fprintf(os.Stderr, "bench: delete namespace %s: %v\n", ns, err)
		}
	}()
	w, err := newWatcher(ctx, c, ns)
	if err != nil {
		return err
	}
	r := newResults(*agent)

	// Idle with no pods.
	r.Values["rss_idle_0_mb"] = rssMB(pid)
	cpu0 := cpuSeconds(pid)
	time.Sleep(*idle)
	r.Values["cpu_idle_0_cores"] = (cpuSeconds(pid) - cpu0) / idle.Seconds()

	// One pod after another: start, then graceful delete.
	user := "system:node:" + *node
	from := time.Now()
	for i := 0; i < *seq; i++ {
		name := fmt.Sprintf("seq-%d", i)
		d, err := w.start(ctx, c, ns, benchPod(name, *node, *image))
		if err != nil {
			return err
		}
		r.Samples["start_sequential_ms"] = append(r.Samples["start_sequential_ms"], ms(d))
		if d, err = w.delete(ctx, c, ns, name); err != nil {
			return err
		}
		r.Samples["delete_sequential_ms"] = append(r.Samples["delete_sequential_ms"], ms(d))
	}
	to := time.Now()
	if *agent == "nodeagent" {
		if phases, err := phaseMeans("https://192.0.2.10:10250/metrics", "/var/lib/nodeagent-harness/pki"); err == nil {
			for p, v := range phases {
				r.Values["phase_"+p+"_ms"] = v
			}
		} else {
			fmt.Println("phases:", err)
		}
	}
	time.Sleep(2 * time.Second) // let the audit log catch up
	if n, err := auditCount(*auditLog, user, from, to); err == nil {
		r.Values["apiserver_requests_per_pod"] = float64(n) / float64(*seq)
	}

	// Bursts.
	for _, n := range []int{*burst, *big} {
		prefix := fmt.Sprintf("b%d-", n)
		var rss *sampler
		cpuBefore := cpuSeconds(pid)
		if n == *big {
			rss = sampleRSS(pid)
		}
		starts, all, err := parallel(n, func(i int) (time.Duration, error) {
			return w.start(ctx, c, ns, benchPod(fmt.Sprintf("%s%d", prefix, i), *node, *image))
		})
		if err != nil {
			return err
		}
		r.Samples[fmt.Sprintf("start_burst%d_ms", n)] = starts
		r.Values[fmt.Sprintf("burst%d_all_running_ms", n)] = ms(all)
		if n == *big {
			r.Values["rss_burst_peak_mb"] = rss.peak()
			r.Values["cpu_burst_seconds"] = cpuSeconds(pid) - cpuBefore
			time.Sleep(5 * time.Second)
			r.Values["rss_running_mb"] = rssMB(pid)
			c0 := cpuSeconds(pid)
			time.Sleep(*idle)
			r.Values["cpu_idle_running_cores"] = (cpuSeconds(pid) - c0) / idle.Seconds()
		}
		if *stream && n == *burst {
			if err := measureStreams(ctx, c, *kubeconfig, ns, *node, *image, r); err != nil {
				fmt.Println("streaming:", err)
			}
		}
		deletes, all, err := parallel(n, func(i int) (time.Duration, error) {
			return w.delete(ctx, c, ns, fmt.Sprintf("%s%d", prefix, i))
		})
		if err != nil {
			return err
		}
		r.Samples[fmt.Sprintf("delete_burst%d_ms", n)] = deletes
		r.Values[fmt.Sprintf("burst%d_all_deleted_ms", n)] = ms(all)
	}
	if *out != "" {
		return r.write(*out)
	}
	return nil
}
