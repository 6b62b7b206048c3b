package volumes

import (
	"context"
	"fmt"
	"hash/fnv"
	"sort"
	"sync"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// Running pods see their configMap, secret and downwardAPI volumes follow
// their sources, as with the kubelet's watch-based manager: each ConfigMap
// or Secret a pod's volume references is watched alone (a list and watch
// with the field selector metadata.name=<name>, which the Node authorizer
// allows for objects of pods bound to the node; a watch of all of them is
// refused and would cost the memory of the whole cluster's). A change
// marks the pods that reference the object stale and wakes their workers
// (Wake); their next sync calls Setup, which reads the watched copy and
// rewrites the volume atomically if its content changed. A pod's downward
// API volumes are stale when the labels or annotations they read change.
// The ConfigMaps and Secrets of a pod's environment (podenv) are read
// through the same watches (ConfigMap, Secret): no GET per sync, and a
// pod waiting for a missing one is woken when it is created. The watches
// of a pod go with its Teardown. A watch stops once it brings an immutable
// object, as the kubelet's does once it serves one (what immutable objects
// are for: no watch per object on every node): the copy it has is served
// from then on, and a deleted and created again object is not seen (the
// documented rule: recreate the pods).

// objRef names a watched ConfigMap or Secret.
type objRef struct {
	kind      string // "configmaps" or "secrets"
	namespace string
	name      string
}

type objWatch struct {
	store  cache.Store
	synced func() bool
	stop   chan struct{}
	pods   map[types.UID]bool
	// Guarded by watches.mu. missed is set when a read found no object:
	// its creation wakes the pods even if the watch's first list is what
	// brings it. immutable is set when the watch brought the object
	// immutable; stopped once stop is closed.
	missed, immutable, stopped bool
}

type watches struct {
	mu     sync.Mutex
	byRef  map[objRef]*objWatch
	stale  map[types.UID]bool
	inputs map[types.UID]uint64 // downward API inputs at the last Setup
}

// get returns the object from its watch when the watch has synced, else
// from the API, and starts the watch for pod on first use. It returns the
// API's NotFound error for a missing object.
func (m *Manager) get(ctx context.Context, ref objRef, pod types.UID) (runtime.Object, error) {
	w := m.watch(ctx, ref, pod)
	var obj runtime.Object
	var err error
	if w != nil && (m.isImmutable(w) || w.synced()) {
		o, ok, gerr := w.store.GetByKey(ref.namespace + "/" + ref.name)
		switch {
		case gerr != nil:
			err = gerr
		case !ok:
			err = apierrors.NewNotFound(schema.GroupResource{Resource: ref.kind}, ref.name)
		default:
			obj = o.(runtime.Object)
		}
	} else {
		// Missed until the GET says otherwise: an object created
		// between the GET's read and the watch's first list wakes.
		m.setMissed(w, true)
		if ref.kind == "configmaps" {
			obj, err = m.client.CoreV1().ConfigMaps(ref.namespace).Get(ctx, ref.name, metav1.GetOptions{})
		} else {
			obj, err = m.client.CoreV1().Secrets(ref.namespace).Get(ctx, ref.name, metav1.GetOptions{})
		}
	}
	m.setMissed(w, apierrors.IsNotFound(err))
	return obj, err
}

// isImmutable reports whether w's object was found immutable.
func (m *Manager) isImmutable(w *objWatch) bool {
	m.w.mu.Lock()
	defer m.w.mu.Unlock()
	return w.immutable
}

// stopIfImmutable stops w when obj, which its informer just stored, is
// immutable: the store keeps the copy reads are served from.
func (m *Manager) stopIfImmutable(logger klog.Logger, ref objRef, w *objWatch, obj any) {
	if o, ok := obj.(runtime.Object); !ok || !immutable(o) {
		return
	}
	m.w.mu.Lock()
	defer m.w.mu.Unlock()
	w.immutable = true
	if w.stopLocked() {
		logger.V(4).Info("Stopped watching an immutable ConfigMap or Secret", "kind", ref.kind, "object", ref.namespace+"/"+ref.name)
	}
}

// stopLocked stops w's informer unless it stopped already (watches.mu
// held), and says whether it did.
func (w *objWatch) stopLocked() bool {
	if w.stopped {
		return false
	}
	w.stopped = true
	close(w.stop)
	return true
}

// immutable reports whether obj is a ConfigMap or Secret marked immutable.
func immutable(obj runtime.Object) bool {
	switch o := obj.(type) {
	case *v1.ConfigMap:
		return o.Immutable != nil && *o.Immutable
	case *v1.Secret:
		return o.Immutable != nil && *o.Immutable
	}
	return false
}

// setMissed records on w, if any, whether the last read found nothing.
func (m *Manager) setMissed(w *objWatch, missed bool) {
	if w == nil {
		return
	}
	m.w.mu.Lock()
	w.missed = missed
	m.w.mu.Unlock()
}

// ConfigMap returns the named ConfigMap of pod's namespace, as get does:
// for pod's volumes and its environment alike, as the kubelet's
// watch-based manager serves both. A missing one is the API's NotFound
// error, and its creation wakes the pod.
func (m *Manager) ConfigMap(ctx context.Context, pod *v1.Pod, name string) (*v1.ConfigMap, error) {
	return getAs[*v1.ConfigMap](ctx, m, objRef{kind: "configmaps", namespace: pod.Namespace, name: name}, pod.UID)
}

// Secret returns the named Secret of pod's namespace, as ConfigMap does.
func (m *Manager) Secret(ctx context.Context, pod *v1.Pod, name string) (*v1.Secret, error) {
	return getAs[*v1.Secret](ctx, m, objRef{kind: "secrets", namespace: pod.Namespace, name: name}, pod.UID)
}

// getAs is get with the object's type checked.
func getAs[T runtime.Object](ctx context.Context, m *Manager, ref objRef, pod types.UID) (T, error) {
	var zero T
	obj, err := m.get(ctx, ref, pod)
	if err != nil {
		return zero, err
	}
	t, ok := obj.(T)
	if !ok {
		return zero, fmt.Errorf("unexpected %T", obj)
	}
	return t, nil
}

// watch returns the watch of ref with pod registered, starting it if
// needed; nil when the manager has no Wake (nothing to tell).
func (m *Manager) watch(ctx context.Context, ref objRef, pod types.UID) *objWatch {
	if m.Wake == nil {
		return nil
	}
	m.w.mu.Lock()
	defer m.w.mu.Unlock()
	if m.w.byRef == nil {
		m.w.byRef = map[objRef]*objWatch{}
	}
	if w, ok := m.w.byRef[ref]; ok {
		w.pods[pod] = true
		return w
	}
	selector := fields.OneTermEqualSelector("metadata.name", ref.name).String()
	var example runtime.Object
	var list func(context.Context, metav1.ListOptions) (runtime.Object, error)
	var watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error)
	switch ref.kind {
	case "configmaps":
		c := m.client.CoreV1().ConfigMaps(ref.namespace)
		example, watchFn = &v1.ConfigMap{}, c.Watch
		list = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return c.List(ctx, o) }
	default:
		c := m.client.CoreV1().Secrets(ref.namespace)
		example, watchFn = &v1.Secret{}, c.Watch
		list = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return c.List(ctx, o) }
	}
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = selector
			return list(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = selector
			return watchFn(ctx, o)
		},
	}
	w := &objWatch{stop: make(chan struct{}), pods: map[types.UID]bool{pod: true}}
	logger := klog.FromContext(ctx)
	store, ctrl := cache.NewInformerWithOptions(cache.InformerOptions{
		// A fake clientset (unit tests) has no streaming lists: say so.
		ListerWatcher: cache.ToListWatcherWithWatchListSemantics(lw, m.client),
		ObjectType:    example,
		Handler: cache.ResourceEventHandlerDetailedFuncs{
			// Immutable first: a pod woken reads the stored copy.
			AddFunc: func(o any, initial bool) {
				m.stopIfImmutable(logger, ref, w, o)
				m.objectChanged(ref, w, initial)
			},
			UpdateFunc: func(o, n any) {
				m.stopIfImmutable(logger, ref, w, n)
				if objectUpdated(o, n) {
					m.objectChanged(ref, w, false)
				}
			},
			DeleteFunc: func(any) { m.objectChanged(ref, w, false) },
		},
	})
	w.store, w.synced = store, ctrl.HasSynced
	m.w.byRef[ref] = w
	go ctrl.Run(w.stop)
	logger.V(4).Info("Watching a ConfigMap or Secret of a pod", "kind", ref.kind, "object", ref.namespace+"/"+ref.name)
	return w
}

// objectChanged marks the pods referencing ref stale and wakes them.
// Objects of the watch's first list (initial) only mark: the pods' next
// sync reads the watched copy, and waking them all at start would cost
// each a sync for nothing; unless a read found the object missing, whose
// pods wait for it. (Not HasSynced here: it takes the informer's queue
// lock, which its handler may run under.) A late event of a watch that
// Teardown dropped touches nothing, not the watch of a pod that came since.
func (m *Manager) objectChanged(ref objRef, from *objWatch, initial bool) {
	m.w.mu.Lock()
	w := m.w.byRef[ref]
	if w != from {
		w = nil
	}
	var pods []types.UID
	wake := w != nil && (!initial || w.missed)
	if w != nil {
		w.missed = false
		if m.w.stale == nil {
			m.w.stale = map[types.UID]bool{}
		}
		for uid := range w.pods {
			m.w.stale[uid] = true
			pods = append(pods, uid)
		}
	}
	m.w.mu.Unlock()
	if !wake {
		return
	}
	for _, uid := range pods {
		m.Wake(uid)
	}
}

// Stale reports whether a volume of pod must be written again: a watched
// ConfigMap or Secret it uses changed, or the labels or annotations its
// downward API volumes show did.
func (m *Manager) Stale(pod *v1.Pod) bool {
	m.w.mu.Lock()
	defer m.w.mu.Unlock()
	if m.w.stale[pod.UID] {
		return true
	}
	if h, ok := m.w.inputs[pod.UID]; ok && h != downwardInputs(pod) {
		return true
	}
	return false
}

// setupStarted clears the pod's stale mark and records its downward API
// inputs, before Setup reads its sources.
func (m *Manager) setupStarted(pod *v1.Pod) {
	m.w.mu.Lock()
	defer m.w.mu.Unlock()
	delete(m.w.stale, pod.UID)
	if hasDownward(pod) {
		if m.w.inputs == nil {
			m.w.inputs = map[types.UID]uint64{}
		}
		m.w.inputs[pod.UID] = downwardInputs(pod)
	}
}

// forgetWatches drops the pod from its watches and stops those no pod
// uses any more.
func (m *Manager) forgetWatches(uid types.UID) {
	m.w.mu.Lock()
	defer m.w.mu.Unlock()
	delete(m.w.stale, uid)
	delete(m.w.inputs, uid)
	for ref, w := range m.w.byRef {
		delete(w.pods, uid)
		if len(w.pods) == 0 {
			w.stopLocked()
			delete(m.w.byRef, ref)
		}
	}
}

func hasDownward(pod *v1.Pod) bool {
	for i := range pod.Spec.Volumes {
		src := &pod.Spec.Volumes[i].VolumeSource
		if src.DownwardAPI != nil {
			return true
		}
		if src.Projected != nil {
			for _, s := range src.Projected.Sources {
				if s.DownwardAPI != nil {
					return true
				}
			}
		}
	}
	return false
}

// downwardInputs hashes what of the pod a downward API volume may show
// that can change while it runs: labels and annotations.
func downwardInputs(pod *v1.Pod) uint64 {
	h := fnv.New64a()
	for _, m := range []map[string]string{pod.Labels, pod.Annotations} {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			_, _ = fmt.Fprintf(h, "%q=%q\n", k, m[k]) // a hash's Write never fails
		}
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// objectUpdated reports whether an update of a watched object changed it:
// a relist's copy of an unchanged object (same resourceVersion) did not.
func objectUpdated(old, updated any) bool {
	o, ok1 := old.(metav1.Object)
	n, ok2 := updated.(metav1.Object)
	return !ok1 || !ok2 || n.GetResourceVersion() == "" || o.GetResourceVersion() != n.GetResourceVersion()
}
