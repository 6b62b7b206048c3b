// Command bench measures pod start and delete latency against the local
// cluster, as seen by a client: from the create call to the watch event
// that shows every container running, and from the delete call to the
// object gone. See docs/benchmarks.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "/var/lib/nodeagent-harness/admin.kubeconfig", "admin kubeconfig")
	node := flag.String("node", "nodeagent-node", "node to bind pods to")
	image := flag.String("image", "registry.k8s.io/e2e-test-images/busybox:1.37.0-1", "image")
	seq := flag.Int("sequential", 30, "pods started one after another")
	burst := flag.Int("burst", 30, "pods created at once")
	flag.Parse()
	rc, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fail(err)
	}
	rc.QPS, rc.Burst = 1000, 1000
	c := kubernetes.NewForConfigOrDie(rc)
	ctx := context.Background()
	ns := fmt.Sprintf("bench-%d", time.Now().Unix())
	if _, err := c.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		fail(err)
	}
	defer c.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	w := newWatcher(ctx, c, ns)

	var starts, deletes []time.Duration
	for i := 0; i < *seq; i++ {
		name := fmt.Sprintf("seq-%d", i)
		starts = append(starts, w.start(ctx, c, ns, pod(name, *node, *image)))
		deletes = append(deletes, w.delete(ctx, c, ns, name))
	}
	report("sequential start", starts)
	report("graceful delete", deletes)

	var mu sync.Mutex
	var burstStarts []time.Duration
	t0 := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < *burst; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := w.start(ctx, c, ns, pod(fmt.Sprintf("burst-%d", i), *node, *image))
			mu.Lock()
			burstStarts = append(burstStarts, d)
			mu.Unlock()
		}()
	}
	wg.Wait()
	fmt.Printf("burst of %d: all running after %s\n", *burst, time.Since(t0).Round(time.Millisecond))
	report("burst start", burstStarts)
	t0 = time.Now()
	var burstDeletes []time.Duration
	for i := 0; i < *burst; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := w.delete(ctx, c, ns, fmt.Sprintf("burst-%d", i))
			mu.Lock()
			burstDeletes = append(burstDeletes, d)
			mu.Unlock()
		}()
	}
	wg.Wait()
	fmt.Printf("burst of %d: all deleted after %s\n", *burst, time.Since(t0).Round(time.Millisecond))
	report("burst delete", burstDeletes)
}

func pod(name, node, image string) *v1.Pod {
	grace := int64(30)
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PodSpec{
			NodeName:                      node,
			TerminationGracePeriodSeconds: &grace,
			AutomountServiceAccountToken:  ptr(false),
			Containers: []v1.Container{{
				Name: "c", Image: image, ImagePullPolicy: v1.PullIfNotPresent,
				Command: []string{"sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"},
			}},
		},
	}
}

func ptr[T any](v T) *T { return &v }

// watcher turns one watch of the namespace into per-pod notifications.
type watcher struct {
	mu      sync.Mutex
	running map[string]chan struct{}
	gone    map[string]chan struct{}
}

func newWatcher(ctx context.Context, c kubernetes.Interface, ns string) *watcher {
	w := &watcher{running: map[string]chan struct{}{}, gone: map[string]chan struct{}{}}
	wi, err := c.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		fail(err)
	}
	go func() {
		for ev := range wi.ResultChan() {
			p, ok := ev.Object.(*v1.Pod)
			if !ok {
				continue
			}
			w.mu.Lock()
			if ev.Type == watch.Deleted {
				if ch := w.gone[p.Name]; ch != nil {
					close(ch)
					delete(w.gone, p.Name)
				}
			} else if allRunning(p) {
				if ch := w.running[p.Name]; ch != nil {
					close(ch)
					delete(w.running, p.Name)
				}
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func allRunning(p *v1.Pod) bool {
	if len(p.Status.ContainerStatuses) != len(p.Spec.Containers) {
		return false
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Running == nil {
			return false
		}
	}
	return true
}

func (w *watcher) start(ctx context.Context, c kubernetes.Interface, ns string, p *v1.Pod) time.Duration {
	ch := make(chan struct{})
	w.mu.Lock()
	w.running[p.Name] = ch
	w.mu.Unlock()
	t0 := time.Now()
	if _, err := c.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		fail(err)
	}
	select {
	case <-ch:
	case <-time.After(2 * time.Minute):
		fail(fmt.Errorf("pod %s did not start", p.Name))
	}
	return time.Since(t0)
}

func (w *watcher) delete(ctx context.Context, c kubernetes.Interface, ns, name string) time.Duration {
	ch := make(chan struct{})
	w.mu.Lock()
	w.gone[name] = ch
	w.mu.Unlock()
	t0 := time.Now()
	if err := c.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		fail(err)
	}
	select {
	case <-ch:
	case <-time.After(2 * time.Minute):
		fail(fmt.Errorf("pod %s not deleted", name))
	}
	return time.Since(t0)
}

func report(what string, ds []time.Duration) {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	q := func(f float64) time.Duration { return ds[int(f*float64(len(ds)-1))].Round(time.Millisecond) }
	fmt.Printf("%-18s n=%d p50=%s p90=%s p99=%s max=%s\n", what, len(ds), q(0.5), q(0.9), q(0.99), q(1))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
