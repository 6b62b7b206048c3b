package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

func benchPod(name, node, image string) *v1.Pod {
	grace := int64(30)
	no := false
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PodSpec{
			NodeName:                      node,
			TerminationGracePeriodSeconds: &grace,
			AutomountServiceAccountToken:  &no,
			Containers: []v1.Container{{
				Name: "c", Image: image, ImagePullPolicy: v1.PullIfNotPresent,
				// Exits on SIGTERM, so a graceful delete measures the agent;
				// waits on one long sleep rather than forking one every
				// 0.2 s: on a machine where a fork costs milliseconds, 30
				// or 100 such loops took most of the CPU the streams were
				// measured with (seen on 2026-11-30).
				Command: []string{"sh", "-c", "trap 'exit 0' TERM; while true; do sleep 3600 & wait $!; done"},
			}},
		},
	}
}

// watcher turns one watch of a namespace into per-pod notifications.
type watcher struct {
	mu      sync.Mutex
	running map[string]chan struct{}
	gone    map[string]chan struct{}
}

func newWatcher(ctx context.Context, c kubernetes.Interface, ns string) (*watcher, error) {
	w := &watcher{running: map[string]chan struct{}{}, gone: map[string]chan struct{}{}}
	list, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	go w.follow(ctx, c, ns, list.ResourceVersion)
	return w, nil
}

// follow watches the namespace, starting again (with a list to catch up)
// whenever the apiserver ends the watch.
func (w *watcher) follow(ctx context.Context, c kubernetes.Interface, ns, rv string) {
	for ctx.Err() == nil {
		wi, err := c.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
		if err != nil {
			time.Sleep(200 * time.Millisecond)
			rv = w.catchUp(ctx, c, ns)
			continue
		}
		for ev := range wi.ResultChan() {
			p, ok := ev.Object.(*v1.Pod)
			if !ok {
				continue
			}
			w.observe(p, ev.Type == watch.Deleted)
		}
		rv = w.catchUp(ctx, c, ns)
	}
}

// catchUp lists the namespace and settles what a lost watch missed.
func (w *watcher) catchUp(ctx context.Context, c kubernetes.Interface, ns string) string {
	list, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return ""
	}
	present := map[string]bool{}
	for i := range list.Items {
		present[list.Items[i].Name] = true
		w.observe(&list.Items[i], false)
	}
	w.mu.Lock()
	for name, ch := range w.gone {
		if !present[name] {
			close(ch)
			delete(w.gone, name)
		}
	}
	w.mu.Unlock()
	return list.ResourceVersion
}

func (w *watcher) observe(p *v1.Pod, deleted bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if deleted {
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

// start creates p and returns the time until all its containers run.
func (w *watcher) start(ctx context.Context, c kubernetes.Interface, ns string, p *v1.Pod) (time.Duration, error) {
	ch := make(chan struct{})
	w.mu.Lock()
	w.running[p.Name] = ch
	w.mu.Unlock()
	t0 := time.Now()
	if _, err := c.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		return 0, err
	}
	select {
	case <-ch:
		return time.Since(t0), nil
	case <-time.After(3 * time.Minute):
		return 0, fmt.Errorf("pod %s did not start", p.Name)
	}
}

// delete deletes a pod and returns the time until the object is gone.
func (w *watcher) delete(ctx context.Context, c kubernetes.Interface, ns, name string) (time.Duration, error) {
	ch := make(chan struct{})
	w.mu.Lock()
	w.gone[name] = ch
	w.mu.Unlock()
	t0 := time.Now()
	if err := c.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		return 0, err
	}
	select {
	case <-ch:
		return time.Since(t0), nil
	case <-time.After(3 * time.Minute):
		return 0, fmt.Errorf("pod %s not deleted", name)
	}
}

// parallel runs f for 0..n-1 at once and returns the durations and the
// time until all finished.
func parallel(n int, f func(i int) (time.Duration, error)) ([]float64, time.Duration, error) {
	var mu sync.Mutex
	var out []float64
	var firstErr error
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := f(i)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			out = append(out, ms(d))
		}()
	}
	wg.Wait()
	return out, time.Since(t0), firstErr
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
