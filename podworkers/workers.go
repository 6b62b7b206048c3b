package podworkers

import (
	"context"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// PodSyncer does the work of each lifecycle step.
type PodSyncer interface {
	// SyncPod makes the runtime match the pod. terminal reports that the
	// pod reached Succeeded or Failed and must not run again; requeue, if
	// not zero, asks for another sync after that long (back-off timers).
	SyncPod(ctx context.Context, pod *v1.Pod) (terminal bool, requeue time.Duration, err error)
	// SyncTerminatingPod stops every container and the sandbox of the pod,
	// giving containers gracePeriod seconds. status is nil unless the pod
	// was killed (Kill): then it edits the status the syncer writes for
	// the pod, final once nothing of the pod runs.
	SyncTerminatingPod(ctx context.Context, pod *v1.Pod, gracePeriod int64, status func(*v1.PodStatus)) error
	// SyncTerminatedPod releases what a stopped pod still holds. gone says
	// the pod object no longer exists in the apiserver.
	SyncTerminatedPod(ctx context.Context, pod *v1.Pod, gone bool) error
}

// State is a worker's lifecycle step.
type State int

// Lifecycle steps.
const (
	Syncing State = iota
	Terminating
	Terminated
)

func (s State) String() string {
	return [...]string{"Syncing", "Terminating", "Terminated"}[s]
}

// Workers is the set of pod workers.
type Workers struct {
	syncer  PodSyncer
	clock   clock.WithTicker
	backoff *flowcontrol.Backoff

	mu      sync.Mutex
	workers map[types.UID]*worker
	wg      sync.WaitGroup
}

type worker struct {
	// guarded by Workers.mu
	pod       *v1.Pod
	gone      bool // the pod object is gone from the apiserver
	state     State
	wake      chan struct{}
	cancelRun context.CancelFunc
	runGrace  int64 // grace period of the running termination
	// kill is set by Kill: the pod terminates although its object does
	// not say so.
	kill *KillOptions
	// done is closed once the pod is stopped (Terminated) or the worker
	// ended.
	done chan struct{}
}

// KillOptions ask a worker to terminate its pod for a reason of the
// node's (graceful node shutdown), the kubelet's KillPodOptions.
type KillOptions struct {
	// GracePeriod caps the pod's termination grace period, in seconds; a
	// shorter one of the pod's own (spec or deletion) still applies.
	GracePeriod int64
	// Status edits the status the syncer writes for the pod as it stops
	// it (PodSyncer.SyncTerminatingPod): the phase, reason and conditions
	// that tell why it ended.
	Status func(*v1.PodStatus)
}

// New returns pod workers that call syncer. Errors are retried with a
// back-off from 200ms to 10s.
func New(syncer PodSyncer, clk clock.WithTicker) *Workers {
	backoff := flowcontrol.NewBackOffWithJitter(200*time.Millisecond, 10*time.Second, 0)
	backoff.Clock = clk // the same clock as the retry timers
	return &Workers{
		syncer:  syncer,
		clock:   clk,
		backoff: backoff,
		workers: map[types.UID]*worker{},
	}
}

// Update hands the newest version of a pod to its worker, starting one if
// needed.
func (w *Workers) Update(ctx context.Context, pod *v1.Pod) {
	w.mu.Lock()
	defer w.mu.Unlock()
	wk, ok := w.workers[pod.UID]
	if !ok {
		wk = &worker{pod: pod, wake: make(chan struct{}, 1), done: make(chan struct{})}
		w.workers[pod.UID] = wk
		w.wg.Add(1)
		go w.run(ctx, pod.UID, wk)
	}
	wk.pod = pod
	w.signal(wk)
}

// Remove tells the worker that the pod object is gone from the apiserver:
// the pod terminates if it was still running, and the worker ends once it
// is terminated.
func (w *Workers) Remove(uid types.UID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if wk, ok := w.workers[uid]; ok {
		wk.gone = true
		w.signal(wk)
	}
}

// Kill asks the worker of uid to terminate its pod as opts say, whatever
// its object says, and returns a channel that is closed once the pod is
// stopped (its worker reached Terminated) or the workers are stopped. A
// sync in progress is interrupted so that the termination starts at once,
// as the kubelet's SyncPodKill. A second kill can only shorten the grace
// period, and its Status, if any, replaces the first one's (the
// kubelet's latest status function). For a pod without a worker, or
// one already stopped, the channel is closed at once.
func (w *Workers) Kill(uid types.UID, opts KillOptions) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	wk, ok := w.workers[uid]
	if !ok {
		done := make(chan struct{})
		close(done)
		return done
	}
	if wk.kill == nil {
		wk.kill = &KillOptions{GracePeriod: opts.GracePeriod}
	}
	wk.kill.GracePeriod = min(wk.kill.GracePeriod, opts.GracePeriod)
	if opts.Status != nil {
		wk.kill.Status = opts.Status
	}
	if wk.state == Syncing && wk.cancelRun != nil {
		wk.cancelRun()
	}
	w.signal(wk)
	return wk.done
}

// Wake asks the worker of uid, if any, to sync again.
func (w *Workers) Wake(uid types.UID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if wk, ok := w.workers[uid]; ok {
		w.signal(wk)
	}
}

// Known reports whether a worker exists for uid, and its state.
func (w *Workers) Known(uid types.UID) (State, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	wk, ok := w.workers[uid]
	if !ok {
		return 0, false
	}
	return wk.state, true
}

// Pod returns the pod of uid's worker, terminated or not.
func (w *Workers) Pod(uid types.UID) (*v1.Pod, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	wk, ok := w.workers[uid]
	if !ok {
		return nil, false
	}
	return wk.pod, true
}

// Pods returns the pods whose workers are not terminated.
func (w *Workers) Pods() []*v1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*v1.Pod
	for _, wk := range w.workers {
		if wk.state != Terminated {
			out = append(out, wk.pod)
		}
	}
	return out
}

// Active returns the pods whose objects still exist and whose workers are
// not terminated: the kubelet's active pods (GetActivePods), less those in
// a terminal phase, which the syncer tells apart. A pod removed from the
// apiserver (Remove) no longer counts while its containers stop, as the
// kubelet's pod manager forgets it at once: the scheduler has already
// freed what it requested.
func (w *Workers) Active() []*v1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*v1.Pod
	for _, wk := range w.workers {
		if wk.state != Terminated && !wk.gone {
			out = append(out, wk.pod)
		}
	}
	return out
}

// Wait waits for every worker to end (after ctx is cancelled).
func (w *Workers) Wait() { w.wg.Wait() }

func (w *Workers) signal(wk *worker) {
	select {
	case wk.wake <- struct{}{}:
	default:
	}
	// A grace period that shrinks (a second delete, a kill) interrupts a
	// running termination so that the shorter period applies at once.
	if wk.cancelRun != nil && wk.state == Terminating && wk.gracePeriod() < wk.runGrace {
		wk.cancelRun()
	}
}

// run is the worker goroutine of one pod.
func (w *Workers) run(ctx context.Context, uid types.UID, wk *worker) {
	defer w.wg.Done()
	defer func() {
		w.mu.Lock()
		closeDone(wk)
		w.mu.Unlock()
	}()
	logger := klog.FromContext(ctx).WithValues("podUID", uid)
	var timer clock.Timer
	var timerC <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-wk.wake:
		case <-timerC:
		}
		if timer != nil {
			timer.Stop()
			timer, timerC = nil, nil
		}
		next, finished := w.step(ctx, logger, uid, wk)
		if finished {
			return
		}
		if next > 0 {
			timer = w.clock.NewTimer(next)
			timerC = timer.C()
		}
	}
}

// step runs one lifecycle step and says when to run again (0 = on the next
// signal) and whether the worker is finished.
func (w *Workers) step(ctx context.Context, logger klog.Logger, uid types.UID, wk *worker) (time.Duration, bool) {
	w.mu.Lock()
	pod, gone, state := wk.pod, wk.gone, wk.state
	var status func(*v1.PodStatus)
	if wk.kill != nil {
		status = wk.kill.Status
	}
	deleting := gone || pod.DeletionTimestamp != nil || wk.kill != nil
	if state == Syncing && deleting {
		state = Terminating
		wk.state = Terminating
	}
	grace := wk.gracePeriod()
	wk.runGrace = grace
	runCtx, cancel := context.WithCancel(ctx)
	wk.cancelRun = cancel
	w.mu.Unlock()
	defer cancel()

	pctx := klog.NewContext(runCtx, logger.WithValues("pod", klog.KObj(pod)))
	key := string(uid)
	var err error
	var requeue time.Duration
	switch state {
	case Syncing:
		var terminal bool
		terminal, requeue, err = w.syncer.SyncPod(pctx, pod)
		if err == nil && terminal {
			w.setState(wk, Terminating)
			requeue = time.Nanosecond
		}
	case Terminating:
		err = w.syncer.SyncTerminatingPod(pctx, pod, grace, status)
		if err == nil {
			w.setState(wk, Terminated)
			requeue = time.Nanosecond
		}
	case Terminated:
		err = w.syncer.SyncTerminatedPod(pctx, pod, gone)
		if err == nil && gone {
			w.mu.Lock()
			delete(w.workers, uid)
			w.mu.Unlock()
			w.backoff.Reset(key)
			return 0, true
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return 0, true
		}
		if runCtx.Err() != nil { // interrupted by a newer update
			return time.Nanosecond, false
		}
		w.backoff.Next(key, w.clock.Now())
		d := w.backoff.Get(key)
		logger.Error(err, "Pod sync failed, will retry", "state", state, "retryAfter", d)
		return d, false
	}
	w.backoff.Reset(key)
	return requeue, false
}

func (w *Workers) setState(wk *worker, s State) {
	w.mu.Lock()
	wk.state = s
	if s == Terminated {
		closeDone(wk)
	}
	w.mu.Unlock()
}

// closeDone closes wk.done once; w.mu must be held.
func closeDone(wk *worker) {
	select {
	case <-wk.done:
	default:
		close(wk.done)
	}
}

// gracePeriod is the grace period the pod terminates with: its own
// (gracePeriod), capped by a kill's. w.mu must be held.
func (wk *worker) gracePeriod() int64 {
	g := gracePeriod(wk.pod, wk.gone)
	if wk.kill != nil && wk.kill.GracePeriod < g {
		g = wk.kill.GracePeriod
	}
	return g
}

// gracePeriod is the termination grace period the kubelet would use: the
// deletion's, else the spec's, else 30s; a pod whose object is gone gets
// its spec's period (the kubelet's orphan handling).
func gracePeriod(pod *v1.Pod, gone bool) int64 {
	if !gone && pod.DeletionGracePeriodSeconds != nil {
		return *pod.DeletionGracePeriodSeconds
	}
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		return *pod.Spec.TerminationGracePeriodSeconds
	}
	return 30
}
