package podsync

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	nodelisters "k8s.io/client-go/listers/node/v1"
	"k8s.io/client-go/tools/cache"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// withRuntimeClasses gives the env's syncer a RuntimeClass lister over
// store, which the test may change.
func withRuntimeClasses(e *env, rcs ...*nodev1.RuntimeClass) cache.Indexer {
	store := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, rc := range rcs {
		_ = store.Add(rc)
	}
	e.cfg.RuntimeClasses = nodelisters.NewRuntimeClassLister(store)
	e.s = New(e.cfg, e.rt, e.images, e.vols, fakeEnv{}, e.status, e.rec, e.clock)
	return store
}

func runtimeClass(name, handler string) *nodev1.RuntimeClass {
	return &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Handler: handler}
}

func withRuntimeClassName(pod *v1.Pod, name string) *v1.Pod {
	pod.Spec.RuntimeClassName = &name
	return pod
}

// handlersOf returns the runtime handler of every sandbox of the pod.
func (e *env) handlersOf(pod *v1.Pod) []string {
	var out []string
	for _, sb := range e.sandboxesOf(pod.UID) {
		out = append(out, sb.RuntimeHandler)
	}
	return out
}

// The handler of the pod's RuntimeClass reaches RunPodSandbox; a pod
// without one runs with the runtime's default handler.
func TestSyncPodRuntimeClassHandler(t *testing.T) {
	e := newEnv(t)
	withRuntimeClasses(e, runtimeClass("sandboxed", "test-handler"))
	pod := withRuntimeClassName(testPod("uid1", v1.RestartPolicyAlways), "sandboxed")
	plain := testPod("uid2", v1.RestartPolicyAlways)
	e.sync(t, pod)
	e.sync(t, plain)
	if got := e.handlersOf(pod); !slices.Equal(got, []string{"test-handler"}) {
		t.Errorf("sandbox handlers of the pod with a RuntimeClass = %q, want [test-handler]", got)
	}
	if got := e.handlersOf(plain); !slices.Equal(got, []string{""}) {
		t.Errorf("sandbox handlers of the pod without one = %q, want the default", got)
	}
	if st := e.status.get(pod.UID); st == nil || st.Phase != v1.PodRunning {
		t.Errorf("status = %+v, want Running", st)
	}
	// An empty name is no RuntimeClass.
	empty := withRuntimeClassName(testPod("uid3", v1.RestartPolicyAlways), "")
	e.sync(t, empty)
	if got := e.handlersOf(empty); !slices.Equal(got, []string{""}) {
		t.Errorf("sandbox handlers with runtimeClassName \"\" = %q, want the default", got)
	}
}

// A RuntimeClass that does not exist fails the sync as the kubelet's: a
// CreatePodSandboxError, the FailedCreatePodSandBox event with the
// lister's NotFound, the pod Pending in ContainerCreating, and no sandbox
// at all however often the worker retries. Once the RuntimeClass exists,
// the pod starts with its handler.
func TestSyncPodRuntimeClassMissing(t *testing.T) {
	e := newEnv(t)
	store := withRuntimeClasses(e)
	pod := withRuntimeClassName(testPod("uid1", v1.RestartPolicyAlways), "absent")
	for i := range 3 {
		_, _, err := e.s.SyncPod(context.Background(), pod)
		if !errors.Is(err, errCreatePodSandbox) || !apierrors.IsNotFound(err) {
			t.Fatalf("sync %d: SyncPod = %v, want a CreatePodSandboxError for a RuntimeClass not found", i, err)
		}
		const want = `Warning FailedCreatePodSandBox Failed to create pod sandbox: runtimeclass.node.k8s.io "absent" not found`
		if evs := e.events(); !slices.Contains(evs, want) {
			t.Errorf("sync %d: events = %q, want %q", i, evs, want)
		}
	}
	e.rt.Lock()
	called := slices.Contains(e.rt.Called, "RunPodSandbox")
	e.rt.Unlock()
	if called || len(e.sandboxesOf(pod.UID)) != 0 {
		t.Errorf("RunPodSandbox called (%v) or sandboxes made (%d) for a pod whose RuntimeClass is missing", called, len(e.sandboxesOf(pod.UID)))
	}
	st := e.status.get(pod.UID)
	if st == nil || st.Phase != v1.PodPending || len(st.ContainerStatuses) != 1 ||
		st.ContainerStatuses[0].State.Waiting == nil || st.ContainerStatuses[0].State.Waiting.Reason != "ContainerCreating" {
		t.Errorf("status = %+v, want Pending with the container waiting in ContainerCreating", st)
	}

	if err := store.Add(runtimeClass("absent", "test-handler")); err != nil {
		t.Fatal(err)
	}
	e.sync(t, pod)
	if got := e.handlersOf(pod); !slices.Equal(got, []string{"test-handler"}) {
		t.Errorf("sandbox handlers once the RuntimeClass exists = %q, want [test-handler]", got)
	}
	if st := e.status.get(pod.UID); st.Phase != v1.PodRunning {
		t.Errorf("phase once the RuntimeClass exists = %s, want Running", st.Phase)
	}
}

// A handler the runtime does not know fails RunPodSandbox with the
// runtime's error, which the event carries.
func TestSyncPodRuntimeClassUnknownHandler(t *testing.T) {
	e := newEnv(t)
	withRuntimeClasses(e, runtimeClass("nowhere", "no-such-handler"))
	runtimeErr := errors.New(`rpc error: code = Unknown desc = failed to get sandbox runtime: no runtime for "no-such-handler" is configured`)
	e.rt.InjectError("RunPodSandbox", runtimeErr)
	pod := withRuntimeClassName(testPod("uid1", v1.RestartPolicyAlways), "nowhere")
	_, _, err := e.s.SyncPod(context.Background(), pod)
	if !errors.Is(err, errCreatePodSandbox) || !errors.Is(err, runtimeErr) {
		t.Fatalf("SyncPod = %v, want a CreatePodSandboxError with the runtime's error", err)
	}
	if want := "Warning FailedCreatePodSandBox Failed to create pod sandbox: " + runtimeErr.Error(); !slices.Contains(e.events(), want) {
		t.Errorf("no event %q", want)
	}
	if st := e.status.get(pod.UID); st == nil || st.Phase != v1.PodPending {
		t.Errorf("status = %+v, want Pending", st)
	}
}

// handlersRuntime reports runtime handlers in Status, which the fake does
// not.
type handlersRuntime struct {
	*recordingRuntime
	handlers []*runtimeapi.RuntimeHandler
}

func (r *handlersRuntime) Status(ctx context.Context, verbose bool) (*runtimeapi.StatusResponse, error) {
	resp, err := r.recordingRuntime.Status(ctx, verbose)
	if err != nil {
		return nil, err
	}
	resp.RuntimeHandlers = r.handlers
	return resp, nil
}

// recursiveReadOnly asks about the handler of the pod's RuntimeClass, as
// the kubelet's runtimeClassSupportsRecursiveReadOnlyMounts.
func TestRecursiveReadOnlyOfRuntimeClassHandler(t *testing.T) {
	e := newEnv(t)
	withRuntimeClasses(e, runtimeClass("rro", "test-handler"), runtimeClass("odd", "unlisted"))
	rt := &handlersRuntime{recordingRuntime: e.rt, handlers: []*runtimeapi.RuntimeHandler{
		{Name: "", Features: &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: false}},
		{Name: "test-handler", Features: &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: true}},
	}}
	e.s = New(e.cfg, rt, e.images, e.vols, fakeEnv{}, e.status, e.rec, e.clock)
	enabled := v1.RecursiveReadOnlyEnabled
	m := v1.VolumeMount{Name: "v", MountPath: "/v", ReadOnly: true, RecursiveReadOnly: &enabled}
	for _, tc := range []struct {
		runtimeClass string
		want         bool
	}{
		{"", false},
		{"rro", true},
		{"odd", false},    // a handler the runtime does not list
		{"absent", false}, // a RuntimeClass that does not exist
	} {
		pod := withRuntimeClassName(testPod("uid1", v1.RestartPolicyAlways), tc.runtimeClass)
		rro, err := e.s.recursiveReadOnly(context.Background(), pod, m, true)
		if got := err == nil && rro; got != tc.want {
			t.Errorf("runtimeClassName %q: recursiveReadOnly = %v, %v; want supported %v", tc.runtimeClass, rro, err, tc.want)
		}
		if !tc.want && (err == nil || !strings.Contains(err.Error(), "not supported by the runtime")) {
			t.Errorf("runtimeClassName %q: error %v, want not supported by the runtime", tc.runtimeClass, err)
		}
	}
}
