package volumes

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// A watched ConfigMap that changes marks its pods stale and wakes them;
// Setup then writes the new content; Teardown stops the watch.
func TestWatchedSourceWakesPods(t *testing.T) {
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "ns"}, Data: map[string]string{"a": "one"}}
	e := newEnv(t, cm)
	var mu sync.Mutex
	woken := map[types.UID]int{}
	e.m.Wake = func(uid types.UID) { mu.Lock(); woken[uid]++; mu.Unlock() }
	pod := basePod(cmVolume("config", "cfg"))
	paths, err := e.m.Setup(t.Context(), pod)
	if err != nil {
		t.Fatal(err)
	}
	// Let the watch sync; its first list only marks.
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.m.w.mu.Lock()
		w := e.m.w.byRef[objRef{"configmaps", "ns", "cfg"}]
		e.m.w.mu.Unlock()
		if w != nil && w.synced() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the watch did not sync")
		}
		time.Sleep(10 * time.Millisecond)
	}
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
	mu.Lock()
	n := woken[pod.UID]
	mu.Unlock()
	if n == 0 {
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
	if err := e.m.Teardown(t.Context(), pod.UID); err != nil {
		t.Fatal(err)
	}
	e.m.w.mu.Lock()
	left := len(e.m.w.byRef)
	e.m.w.mu.Unlock()
	if left != 0 {
		t.Errorf("%d watches left after the pod went", left)
	}
}

// The ConfigMaps and Secrets of a pod's environment are read through the
// same watches: a missing one is NotFound without a GET per read once the
// watch synced, its creation wakes the pod, and Teardown stops the watch.
func TestEnvSourceWatched(t *testing.T) {
	sec := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec", Namespace: "ns"}, Data: map[string][]byte{"k": []byte("v")}}
	e := newEnv(t, sec)
	var mu sync.Mutex
	woken := map[types.UID]int{}
	e.m.Wake = func(uid types.UID) { mu.Lock(); woken[uid]++; mu.Unlock() }
	pod := basePod()
	if _, err := e.m.ConfigMap(t.Context(), pod, "cfg"); !apierrors.IsNotFound(err) {
		t.Fatalf("missing ConfigMap: err = %v, want NotFound", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.m.w.mu.Lock()
		w := e.m.w.byRef[objRef{"configmaps", "ns", "cfg"}]
		e.m.w.mu.Unlock()
		if w != nil && w.synced() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the watch did not sync")
		}
		time.Sleep(10 * time.Millisecond)
	}
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
		if _, err := e.m.ConfigMap(t.Context(), pod, "cfg"); !apierrors.IsNotFound(err) {
			t.Fatalf("missing ConfigMap from the watch: err = %v, want NotFound", err)
		}
	}
	if n := gets() - before; n != 0 {
		t.Errorf("%d GETs of the ConfigMap once its watch synced, want 0", n)
	}
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "ns"}, Data: map[string]string{"a": "one"}}
	if _, err := e.client.CoreV1().ConfigMaps("ns").Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		mu.Lock()
		n := woken[pod.UID]
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the pod was not woken when its ConfigMap was created")
		}
		time.Sleep(10 * time.Millisecond)
	}
	got, err := e.m.ConfigMap(t.Context(), pod, "cfg")
	if err != nil || got.Data["a"] != "one" {
		t.Errorf("ConfigMap after its creation = %v, %v; want a=one", got, err)
	}
	if s, err := e.m.Secret(t.Context(), pod, "sec"); err != nil || string(s.Data["k"]) != "v" {
		t.Errorf("Secret = %v, %v; want k=v", s, err)
	}
	if err := e.m.Teardown(t.Context(), pod.UID); err != nil {
		t.Fatal(err)
	}
	e.m.w.mu.Lock()
	left := len(e.m.w.byRef)
	e.m.w.mu.Unlock()
	if left != 0 {
		t.Errorf("%d watches left after the pod went", left)
	}
}
