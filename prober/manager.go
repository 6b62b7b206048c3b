package prober

import (
	"context"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Type is the kind of a probe.
type Type int

// The probe types.
const (
	Liveness Type = iota
	Readiness
	Startup
)

func (t Type) String() string {
	switch t {
	case Liveness:
		return "Liveness"
	case Readiness:
		return "Readiness"
	case Startup:
		return "Startup"
	}
	return "Unknown"
}

// ProbeFunc runs one attempt of a probe.
type ProbeFunc func(ctx context.Context, p *v1.Probe, t Target) Result

// Config is what a Manager needs.
type Config struct {
	// Runtime runs exec probes.
	Runtime  Execer
	Recorder record.EventRecorder
	Clock    clock.WithTicker
	// Wake asks the pod's worker to sync (and write the status) again.
	Wake func(types.UID)
	// Probe runs one attempt; nil runs the real handlers over Runtime.
	Probe ProbeFunc
}

type key struct {
	uid       types.UID
	container string
	t         Type
}

type worker struct {
	containerID string
	cancel      context.CancelFunc
	// trigger asks for an attempt now rather than at the next period
	// (buffered: one pending request is enough).
	trigger chan struct{}
	// pod and namespace label the worker's metrics.
	pod, namespace string
}

type result struct {
	containerID string
	ok          bool
	// failed is set when a liveness or startup probe reached its
	// failureThreshold, with the last attempt's output.
	failed bool
	output string
}

// Manager runs the probe workers of the node's containers.
type Manager struct {
	cfg     Config
	metrics *probeMetrics

	mu      sync.Mutex
	workers map[key]*worker
	results map[key]result
}

// New returns a Manager.
func New(cfg Config) *Manager {
	if cfg.Probe == nil {
		ex := cfg.Runtime
		cfg.Probe = func(ctx context.Context, p *v1.Probe, t Target) Result {
			return Do(ctx, ex, &p.ProbeHandler, t, seconds(p.TimeoutSeconds, 1))
		}
	}
	if cfg.Wake == nil {
		cfg.Wake = func(types.UID) {}
	}
	return &Manager{cfg: cfg, metrics: newProbeMetrics(), workers: map[key]*worker{}, results: map[key]result{}}
}

// Run stops every worker when ctx ends.
func (m *Manager) Run(ctx context.Context) {
	<-ctx.Done()
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, w := range m.workers {
		w.cancel()
		delete(m.workers, k)
	}
}

func seconds(n, def int32) time.Duration {
	if n <= 0 {
		n = def
	}
	return time.Duration(n) * time.Second
}

func probeOf(c *v1.Container, t Type) *v1.Probe {
	switch t {
	case Liveness:
		return c.LivenessProbe
	case Readiness:
		return c.ReadinessProbe
	}
	return c.StartupProbe
}

// Add starts the probe workers of a running container, unless they run
// for this container ID already; workers of an older instance are
// replaced. startedAt is when the container started (initialDelaySeconds
// counts from it).
func (m *Manager) Add(ctx context.Context, pod *v1.Pod, container, containerID, podIP string, startedAt time.Time) {
	var c *v1.Container
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == container {
			c = &pod.Spec.Containers[i]
		}
	}
	// Sidecars (init containers with restartPolicy Always) have probes too.
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == container {
			c = &pod.Spec.InitContainers[i]
		}
	}
	if c == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range []Type{Startup, Readiness, Liveness} {
		p := probeOf(c, t)
		if p == nil {
			continue
		}
		k := key{pod.UID, container, t}
		if w, ok := m.workers[k]; ok {
			if w.containerID == containerID {
				continue
			}
			w.cancel()
		}
		// Initial results: readiness and startup false, liveness true.
		m.results[k] = result{containerID: containerID, ok: t == Liveness}
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		wctx = klog.NewContext(wctx, klog.FromContext(ctx).WithValues("container", container, "containerID", containerID, "probe", t.String()))
		w := &worker{containerID: containerID, cancel: cancel, trigger: make(chan struct{}, 1), pod: pod.Name, namespace: pod.Namespace}
		m.workers[k] = w
		target := Target{Pod: pod, Container: c, ContainerID: containerID, PodIP: podIP}
		go m.run(wctx, k, p, target, startedAt, c.StartupProbe != nil, w.trigger)
	}
}

// Remove stops the workers of a container and forgets its results.
func (m *Manager) Remove(uid types.UID, container string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, w := range m.workers {
		if k.uid == uid && k.container == container {
			w.cancel()
			m.metrics.forget(k, w.pod, w.namespace)
			delete(m.workers, k)
		}
	}
	for k := range m.results {
		if k.uid == uid && k.container == container {
			delete(m.results, k)
		}
	}
}

// RemovePod stops the workers of every container of a pod.
func (m *Manager) RemovePod(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, w := range m.workers {
		if k.uid == uid {
			w.cancel()
			m.metrics.forget(k, w.pod, w.namespace)
			delete(m.workers, k)
		}
	}
	for k := range m.results {
		if k.uid == uid {
			delete(m.results, k)
		}
	}
}

// Result is the current result of a probe of the container instance
// containerID: false when there is none (yet).
func (m *Manager) Result(uid types.UID, container, containerID string, t Type) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.results[key{uid, container, t}]
	return ok && r.containerID == containerID && r.ok
}

// Ready reports the readiness result of a container instance.
func (m *Manager) Ready(uid types.UID, container, containerID string) bool {
	return m.Result(uid, container, containerID, Readiness)
}

// Started reports whether the startup probe of a container instance
// succeeded.
func (m *Manager) Started(uid types.UID, container, containerID string) bool {
	return m.Result(uid, container, containerID, Startup)
}

// Failed reports whether the liveness or startup probe of a container
// instance failed (reached its failureThreshold): the container must be
// killed. It returns the probe and the output of its last attempt. The
// pod's worker asks, and kills, so that a kill never races a sync.
func (m *Manager) Failed(uid types.UID, container, containerID string) (Type, string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range []Type{Startup, Liveness} {
		if r, ok := m.results[key{uid, container, t}]; ok && r.containerID == containerID && r.failed {
			return t, r.output, true
		}
	}
	return 0, "", false
}

// triggerReadiness asks the readiness worker of the container instance
// k names for an attempt now: its startup probe just succeeded, and the
// kubelet then probes readiness at once (its manager's manual trigger)
// rather than a readiness period later.
func (m *Manager) triggerReadiness(k key, containerID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.workers[key{k.uid, k.container, Readiness}]
	if !ok || w.containerID != containerID {
		return
	}
	select {
	case w.trigger <- struct{}{}:
	default:
	}
}

// set records a result and says whether it changed; it is ignored when
// the worker was replaced or removed meanwhile.
func (m *Manager) set(k key, containerID string, ok bool) bool {
	return m.record(k, result{containerID: containerID, ok: ok})
}

// record sets the result of k's worker, unless the worker was replaced or
// removed meanwhile, and says whether it changed.
func (m *Manager) record(k key, r result) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, live := m.workers[k]
	if !live || w.containerID != r.containerID {
		return false
	}
	old := m.results[k]
	m.results[k] = r
	return old != r
}
