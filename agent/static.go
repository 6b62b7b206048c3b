package agent

import (
	"context"
	"sort"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/podstatus"
	"github.com/nodeagent/nodeagent/podworkers"
	"github.com/nodeagent/nodeagent/staticpods"
)

// staticPods feeds the static pods of the manifest directory to the pod
// workers, with the status of their mirror pods, and keeps the mirrors.
type staticPods struct {
	workers *podworkers.Workers
	mirrors *staticpods.Mirrors
	pods    corelisters.PodLister
	kick    chan struct{}

	mu     sync.Mutex
	static map[types.UID]*v1.Pod
	// statuses are the latest statuses the syncer gave the static pods,
	// by the static pod's UID, written to a mirror or not: the agent's
	// own view of them, as the kubelet's status manager keeps a static
	// pod's status under its own UID. The status writer keeps what it
	// wrote under the mirror's.
	statuses map[types.UID]*v1.PodStatus
}

func newStaticPods(workers *podworkers.Workers, mirrors *staticpods.Mirrors, pods corelisters.PodLister) *staticPods {
	return &staticPods{
		workers: workers, mirrors: mirrors, pods: pods, kick: make(chan struct{}, 1),
		static: map[types.UID]*v1.Pod{}, statuses: map[types.UID]*v1.PodStatus{},
	}
}

// set replaces the set of static pods.
func (s *staticPods) set(ctx context.Context, pods []*v1.Pod) {
	s.mu.Lock()
	next := map[types.UID]*v1.Pod{}
	for _, p := range pods {
		next[p.UID] = p
	}
	var gone []types.UID
	for uid := range s.static {
		if _, ok := next[uid]; !ok {
			gone = append(gone, uid)
		}
	}
	s.static = next
	s.mu.Unlock()
	for _, uid := range gone {
		s.workers.Remove(uid)
	}
	for _, p := range pods {
		s.workers.Update(ctx, s.withMirrorStatus(p))
	}
	s.poke()
}

// mirrorChanged hands the mirror's status to its static pod's worker.
func (s *staticPods) mirrorChanged(ctx context.Context, mirror *v1.Pod) {
	uid, _ := staticpods.IsMirror(mirror)
	s.mu.Lock()
	sp := s.static[uid]
	s.mu.Unlock()
	// Only the static pod's own mirror (same namespace and name, as the
	// kubelet's GetPodByMirrorPod): the annotation alone would let any
	// pod bound here feed its status to a static pod.
	if sp != nil && sp.Namespace == mirror.Namespace && sp.Name == mirror.Name && !terminalPhase(mirror.Status.Phase) {
		cp := sp.DeepCopy()
		cp.Status = mirror.Status
		s.workers.Update(ctx, cp)
	}
	s.poke()
}

// withMirrorStatus gives a static pod its mirror's status, so that a
// restarted agent adopts the pod without sending its status backwards.
// A terminal status is not taken (nor by mirrorChanged): a static pod is
// defined by its file, not by its last run, and starts again with the
// agent, as the kubelet's static pods (which carry no status from their
// file) do. After a graceful node shutdown its mirror says Failed.
func (s *staticPods) withMirrorStatus(p *v1.Pod) *v1.Pod {
	if m := s.mirrorOf(p); m != nil && !terminalPhase(m.Status.Phase) {
		cp := p.DeepCopy()
		cp.Status = m.Status
		return cp
	}
	return p
}

// byName returns the static pod the agent runs under namespace and name,
// with its mirror's status as withMirrorStatus gives it; the kubelet API
// resolves a mirror pod to it (server.Deps.StaticPod).
func (s *staticPods) byName(namespace, name string) (*v1.Pod, bool) {
	s.mu.Lock()
	var found *v1.Pod
	for _, p := range s.static {
		if p.Namespace == namespace && p.Name == name {
			found = p
			break
		}
	}
	s.mu.Unlock()
	if found == nil {
		return nil, false
	}
	return s.withMirrorStatus(found), true
}

// list returns the static pods, each with its latest status (the agent's
// own, else its mirror's), sorted by namespace and name.
func (s *staticPods) list() []*v1.Pod {
	s.mu.Lock()
	pods := make([]*v1.Pod, 0, len(s.static))
	for _, p := range s.static {
		pods = append(pods, p)
	}
	s.mu.Unlock()
	out := make([]*v1.Pod, 0, len(pods))
	for _, p := range pods {
		if st, ok := s.status(p.UID); ok {
			c := p.DeepCopy()
			c.Status = *st
			out = append(out, c)
			continue
		}
		out = append(out, s.withMirrorStatus(p))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// nodePods are the pods the node API's /pods lists, as the kubelet's pod
// manager has them: the pods from the apiserver but mirror pods, and the
// static pods themselves.
func nodePods(api, static []*v1.Pod) []*v1.Pod {
	out := make([]*v1.Pod, 0, len(api)+len(static))
	for _, p := range api {
		if _, mirror := staticpods.IsMirror(p); !mirror {
			out = append(out, p)
		}
	}
	return append(out, static...)
}

// status returns the latest status the syncer gave the static pod of uid.
func (s *staticPods) status(uid types.UID) (*v1.PodStatus, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.statuses[uid]
	if !ok {
		return nil, false
	}
	return st.DeepCopy(), true
}

func (s *staticPods) setStatus(uid types.UID, st *v1.PodStatus) {
	s.mu.Lock()
	s.statuses[uid] = st.DeepCopy()
	s.mu.Unlock()
}

func (s *staticPods) forgetStatus(uid types.UID) {
	s.mu.Lock()
	delete(s.statuses, uid)
	s.mu.Unlock()
}

// mirrorOf returns the current mirror pod of a static pod.
func (s *staticPods) mirrorOf(p *v1.Pod) *v1.Pod {
	m, err := s.pods.Pods(p.Namespace).Get(p.Name)
	if err != nil {
		return nil
	}
	if uid, ok := staticpods.IsMirror(m); !ok || uid != p.UID {
		return nil
	}
	return m
}

func (s *staticPods) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// run keeps the mirror pods, on every change and every 10 s.
func (s *staticPods) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-time.After(10 * time.Second):
		}
		s.mu.Lock()
		static := make([]*v1.Pod, 0, len(s.static))
		for _, p := range s.static {
			static = append(static, p)
		}
		s.mu.Unlock()
		all, err := s.pods.List(everything)
		if err != nil {
			continue
		}
		var mirrors []*v1.Pod
		for _, p := range all {
			if _, ok := staticpods.IsMirror(p); ok {
				mirrors = append(mirrors, p)
			}
		}
		if err := s.mirrors.Sync(ctx, static, mirrors); err != nil {
			klog.FromContext(ctx).Error(err, "Syncing mirror pods")
		}
	}
}

// statusRouter writes a static pod's status to its mirror pod.
type statusRouter struct {
	*podstatus.Writer
	static *staticPods
}

func (r *statusRouter) Write(ctx context.Context, pod *v1.Pod, st *v1.PodStatus) error {
	if !staticpods.IsStatic(pod) {
		return r.Writer.Write(ctx, pod, st)
	}
	r.static.setStatus(pod.UID, st)
	m := r.static.mirrorOf(pod)
	if m == nil {
		return nil // written once the mirror exists: its event wakes the pod
	}
	return r.Writer.Write(ctx, m, st)
}

// Forget drops what the agent remembers of a pod's status.
func (r *statusRouter) Forget(uid types.UID) {
	if r.static != nil {
		r.static.forgetStatus(uid)
	}
	r.Writer.Forget(uid)
}

// podStatus is the agent's own latest status of a pod it runs, by the UID
// it runs it under: a static pod's from the syncer, another's from what
// the status writer wrote (server.Deps.PodStatus).
func (r *statusRouter) podStatus(uid types.UID) (*v1.PodStatus, bool) {
	if r.static != nil {
		if st, ok := r.static.status(uid); ok {
			return st, true
		}
	}
	return r.Writer.Status(uid)
}

func (r *statusRouter) Delete(ctx context.Context, pod *v1.Pod) error {
	if staticpods.IsStatic(pod) {
		return nil // the mirror goes with the manifest
	}
	return r.Writer.Delete(ctx, pod)
}

func terminalPhase(p v1.PodPhase) bool { return p == v1.PodSucceeded || p == v1.PodFailed }
