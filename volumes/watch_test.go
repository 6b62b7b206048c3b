package volumes

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"

	"github.com/nodeagent/nodeagent/podenv"
)

// A watched ConfigMap that changes marks its pods stale and wakes them;
// Setup then writes the new content; Teardown stops the watch.
func TestWatchedSourceWakesPods(t *testing.T) {
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "ns"}, Data: map[string]string{"a": "one"}}
	e := newEnv(t, cm)
	wakes := recordWakes(e)
	pod := basePod(cmVolume("config", "cfg"))
	paths, err := e.m.Setup(t.Context(), pod)
	if err != nil {
		t.Fatal(err)
	}
	// Let the watch sync; its first list only marks.
	waitSynced(t, e, objRef{"configmaps", "ns", "cfg"})
	deadline := time.Now().Add(10 * time.Second)
	if _, err := e.m.Setup(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
	if e.m.Stale(pod) {
		t.Fatal("stale right after Setup")
	}
	cm.Data["a"] = "two"
	if _, err := e.client.CoreV1().ConfigMaps("ns").Update(t.Context(), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for !e.m.Stale(pod) {
		if time.Now().After(deadline) {
			t.Fatal("the pod was not marked stale after its ConfigMap changed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if wakes.count(pod.UID) == 0 {
		t.Error("the pod was not woken")
	}
	if _, err := e.m.Setup(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(paths["config"], "a")); got != "two" {
		t.Errorf("a = %q after the update, want two", got)
	}
	// Downward API inputs: a label change makes a pod with a downward API
	// volume stale.
	dpod := basePod(v1.Volume{Name: "d", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{
		Items: []v1.DownwardAPIVolumeFile{{Path: "labels", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels"}}}}}})
	dpod.UID = "uid-2"
	if _, err := e.m.Setup(t.Context(), dpod); err != nil {
		t.Fatal(err)
	}
	if e.m.Stale(dpod) {
		t.Error("stale without a change")
	}
	dpod.Labels = map[string]string{"app": "other"}
	if !e.m.Stale(dpod) {
		t.Error("not stale after a label change")
	}
	teardownNoWatches(t, e, pod.UID)
}

// teardownNoWatches tears the pod down and checks no watch is left.
func teardownNoWatches(t *testing.T, e *env, uid types.UID) {
	t.Helper()
	if err := e.m.Teardown(t.Context(), uid); err != nil {
		t.Fatal(err)
	}
	e.m.w.mu.Lock()
	left := len(e.m.w.byRef)
	e.m.w.mu.Unlock()
	if left != 0 {
		t.Errorf("%d watches left after the pod went", left)
	}
}

// waitSynced waits until the watch of ref has synced.
func waitSynced(t *testing.T, e *env, ref objRef) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.m.w.mu.Lock()
		w := e.m.w.byRef[ref]
		e.m.w.mu.Unlock()
		if w != nil && w.synced() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the watch of %v did not sync", ref)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wakeLog counts the pods a manager woke.
type wakeLog struct {
	mu sync.Mutex
	n  map[types.UID]int
}

// recordWakes makes e's manager count the pods it wakes.
func recordWakes(e *env) *wakeLog {
	l := &wakeLog{n: map[types.UID]int{}}
	e.m.Wake = func(uid types.UID) { l.mu.Lock(); l.n[uid]++; l.mu.Unlock() }
	return l
}

// count is how many times uid was woken.
func (l *wakeLog) count(uid types.UID) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[uid]
}

// waitWoken waits until uid was woken, false after 10 s.
func (l *wakeLog) waitWoken(uid types.UID) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if l.count(uid) > 0 {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// A pod's environment reads its ConfigMaps and Secrets through the
// manager's watches (podenv.Resolver.Objects): a missing one is a
// CreateContainerConfigError with the API's message and no GET per try
// once the watch synced, its creation wakes the pod, and Teardown stops
// the watch.
func TestEnvSourceWatched(t *testing.T) {
	sec := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec", Namespace: "ns"}, Data: map[string][]byte{"k": []byte("v")}}
	e := newEnv(t, sec)
	wakes := recordWakes(e)
	r := &podenv.Resolver{Objects: e.m}
	pod := basePod()
	c := &v1.Container{Name: "c", Env: []v1.EnvVar{
		{Name: "A", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}, Key: "a"}}},
		{Name: "K", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "sec"}, Key: "k"}}},
	}}
	const msg = `environment variable "A" of container "c": container configuration error: ConfigMap ns/cfg not found: configmaps "cfg" not found`
	if _, err := r.Env(t.Context(), pod, c, "", nil, ""); !podenv.IsConfigError(err) || err.Error() != msg {
		t.Fatalf("missing ConfigMap: err = %v, want %q", err, msg)
	}
	waitSynced(t, e, objRef{"configmaps", "ns", "cfg"})
	gets := func() int {
		n := 0
		for _, a := range e.client.Actions() {
			if a.GetVerb() == "get" && a.GetResource().Resource == "configmaps" {
				n++
			}
		}
		return n
	}
	before := gets()
	for range 3 {
		if _, err := r.Env(t.Context(), pod, c, "", nil, ""); err == nil || err.Error() != msg {
			t.Fatalf("missing ConfigMap from the watch: err = %v, want %q", err, msg)
		}
	}
	if n := gets() - before; n != 0 {
		t.Errorf("%d GETs of the ConfigMap once its watch synced, want 0", n)
	}
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "ns"}, Data: map[string]string{"a": "one"}}
	if _, err := e.client.CoreV1().ConfigMaps("ns").Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if !wakes.waitWoken(pod.UID) {
		t.Fatal("the pod was not woken when its ConfigMap was created")
	}
	vars, err := r.Env(t.Context(), pod, c, "", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, v := range vars {
		got[v.Name] = v.Value
	}
	if got["A"] != "one" || got["K"] != "v" {
		t.Errorf("environment after the ConfigMap's creation: %v, want A=one K=v", vars)
	}
	teardownNoWatches(t, e, pod.UID)
}

// An object created between a read that missed it and the watch's first
// list wakes its pods, though first-list objects otherwise only mark
// them; or the read found it.
func TestWatchFirstListWakesMissed(t *testing.T) {
	e := newEnv(t)
	wakes := recordWakes(e)
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "ns"}, Data: map[string]string{"a": "one"}}
	var once sync.Once
	e.client.PrependReactor("list", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		once.Do(func() {
			if err := e.client.Tracker().Add(cm); err != nil {
				t.Error(err)
			}
		})
		return false, nil, nil
	})
	pod := basePod()
	_, err := e.m.ConfigMap(t.Context(), pod, "cfg")
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	if err != nil && !wakes.waitWoken(pod.UID) {
		t.Fatal("the pod whose read missed the ConfigMap was not woken when the watch's first list brought it")
	}
	if err := e.m.Teardown(t.Context(), pod.UID); err != nil {
		t.Fatal(err)
	}
}

// A relist's unchanged copy of an object is no change; a new version,
// or an object without one, is.
func TestObjectUpdated(t *testing.T) {
	at := func(rv string) *v1.ConfigMap {
		return &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "ns", ResourceVersion: rv}}
	}
	for _, tc := range []struct {
		old, new *v1.ConfigMap
		want     bool
	}{
		{at("7"), at("7"), false},
		{at("7"), at("8"), true},
		{at(""), at(""), true},
	} {
		if got := objectUpdated(tc.old, tc.new); got != tc.want {
			t.Errorf("objectUpdated(%q, %q) = %v, want %v", tc.old.ResourceVersion, tc.new.ResourceVersion, got, tc.want)
		}
	}
}

// A watch that brings an immutable object stops, as the kubelet's: the
// watched copy serves the reads that follow, without a GET, and Teardown
// after the stop is clean. A mutable object's watch goes on.
func TestImmutableObjectWatchStops(t *testing.T) {
	yes := true
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "ns"}, Data: map[string]string{"a": "one"}, Immutable: &yes}
	sec := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec", Namespace: "ns"}, Data: map[string][]byte{"k": []byte("v")}}
	e := newEnv(t, cm, sec)
	e.m.Wake = func(types.UID) {}
	pod := basePod()
	cmRef, secRef := objRef{"configmaps", "ns", "cfg"}, objRef{"secrets", "ns", "sec"}
	read := func() {
		t.Helper()
		if got, err := e.m.ConfigMap(t.Context(), pod, "cfg"); err != nil || got.Data["a"] != "one" {
			t.Fatalf("ConfigMap: %v, %v", got, err)
		}
		if _, err := e.m.Secret(t.Context(), pod, "sec"); err != nil {
			t.Fatal(err)
		}
	}
	read() // from the API: the watches start
	waitSynced(t, e, cmRef)
	waitSynced(t, e, secRef)
	stopped := func(ref objRef) bool {
		deadline := time.Now().Add(10 * time.Second)
		for {
			e.m.w.mu.Lock()
			done := e.m.w.byRef[ref].stopped
			e.m.w.mu.Unlock()
			if done || time.Now().After(deadline) {
				return done
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if !stopped(cmRef) {
		t.Error("the immutable ConfigMap's watch still runs after it brought the object")
	}
	e.m.w.mu.Lock()
	secStopped := e.m.w.byRef[secRef].stopped
	e.m.w.mu.Unlock()
	if secStopped {
		t.Error("the mutable Secret's watch stopped")
	}
	// Made immutable later: the update stops the watch.
	sec.Immutable = &yes
	if _, err := e.client.CoreV1().Secrets("ns").Update(t.Context(), sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if !stopped(secRef) {
		t.Error("the Secret's watch still runs after it was made immutable")
	}
	// Served from the stopped watch's store (isImmutable: whether or not
	// the informer still says it synced once stopped).
	gets := len(e.client.Actions())
	read()
	for _, a := range e.client.Actions()[gets:] {
		if a.GetVerb() == "get" {
			t.Errorf("a read after the stop went to the API: %v", a)
		}
	}
	teardownNoWatches(t, e, pod.UID)
}

// A late event of a watch that Teardown dropped does not mark or wake the
// pods of the object's next watch.
func TestDroppedWatchLateEvent(t *testing.T) {
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "ns"}, Data: map[string]string{"a": "one"}}
	e := newEnv(t, cm)
	wakes := recordWakes(e)
	ref := objRef{"configmaps", "ns", "cfg"}
	first := basePod()
	if _, err := e.m.ConfigMap(t.Context(), first, "cfg"); err != nil {
		t.Fatal(err)
	}
	e.m.w.mu.Lock()
	dropped := e.m.w.byRef[ref]
	e.m.w.mu.Unlock()
	teardownNoWatches(t, e, first.UID)
	next := basePod()
	next.UID = "uid-next"
	if _, err := e.m.ConfigMap(t.Context(), next, "cfg"); err != nil {
		t.Fatal(err)
	}
	waitSynced(t, e, ref)
	e.m.setupStarted(next) // clears the mark the new watch's first list left
	e.m.objectChanged(ref, dropped, false)
	if n := wakes.count(next.UID); n != 0 || e.m.Stale(next) {
		t.Errorf("the dropped watch's event woke (%d) or marked (%v) the next pod", n, e.m.Stale(next))
	}
	teardownNoWatches(t, e, next.UID)
}
