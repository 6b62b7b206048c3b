package agent

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/nodeagent/nodeagent/podstatus"
	"github.com/nodeagent/nodeagent/staticpods"
)

// TestStaticPodsForTheAPI: what the kubelet API gets of a static pod: the
// pod by namespace and name (with its mirror's status only if the mirror
// is this static pod's), and the status the syncer gave it, written to a
// mirror or not, until the syncer forgets the pod.
func TestStaticPodsForTheAPI(t *testing.T) {
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	static := &v1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: "etcd-n1", Namespace: "kube-system", UID: "static-uid",
		Annotations: map[string]string{staticpods.ConfigSourceAnnotation: staticpods.FileSource},
	}}
	sp := newStaticPods(nil, nil, corelisters.NewPodLister(indexer))
	sp.static[static.UID] = static
	router := &statusRouter{Writer: podstatus.NewWriter(fake.NewClientset()), static: sp}

	if _, ok := sp.byName("kube-system", "other"); ok {
		t.Fatal("found a static pod of another name")
	}
	if _, ok := sp.byName("default", "etcd-n1"); ok {
		t.Fatal("found a static pod of another namespace")
	}
	got, ok := sp.byName("kube-system", "etcd-n1")
	if !ok || got.UID != static.UID || got.Status.Phase != "" {
		t.Fatalf("byName: %v %v, want the static pod without status", got, ok)
	}

	// A mirror of another version of the pod (or edited to name another
	// UID) lends no status; the static pod's own mirror does.
	mirror := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "etcd-n1", Namespace: "kube-system", UID: "mirror-uid",
			Annotations: map[string]string{staticpods.ConfigMirrorAnnotation: "victim-uid"}},
		Status: v1.PodStatus{Phase: v1.PodRunning},
	}
	if err := indexer.Add(mirror); err != nil {
		t.Fatal(err)
	}
	if got, _ := sp.byName("kube-system", "etcd-n1"); got.Status.Phase != "" {
		t.Fatalf("took the status of a mirror of %s", mirror.Annotations[staticpods.ConfigMirrorAnnotation])
	}
	mirror = mirror.DeepCopy()
	mirror.Annotations[staticpods.ConfigMirrorAnnotation] = string(static.UID)
	if err := indexer.Update(mirror); err != nil {
		t.Fatal(err)
	}
	if got, _ := sp.byName("kube-system", "etcd-n1"); got.Status.Phase != v1.PodRunning || got.UID != static.UID {
		t.Fatalf("byName: UID %s phase %q, want the static pod with its mirror's status", got.UID, got.Status.Phase)
	}
	if err := indexer.Delete(mirror); err != nil {
		t.Fatal(err)
	}

	// The syncer's status is kept under the static pod's UID, with no
	// mirror to write it to.
	if _, ok := router.podStatus(static.UID); ok {
		t.Fatal("a status before any sync")
	}
	st := &v1.PodStatus{Phase: v1.PodRunning, Message: "synced"}
	if err := router.Write(context.Background(), static, st); err != nil {
		t.Fatal(err)
	}
	st.Message = "changed by the caller afterwards"
	got2, ok := router.podStatus(static.UID)
	if !ok || got2.Message != "synced" {
		t.Fatalf("podStatus: %v %v, want the synced status", got2, ok)
	}
	if _, ok := router.podStatus(types.UID("mirror-uid")); ok {
		t.Fatal("a status under the mirror's UID")
	}
	router.Forget(static.UID)
	if _, ok := router.podStatus(static.UID); ok {
		t.Fatal("status kept after Forget")
	}
}

// A pod from the apiserver is never taken for a static pod, whatever its
// config.source annotation says (the kubelet sets it to "api").
func TestMarkAPISource(t *testing.T) {
	for _, ann := range []map[string]string{nil, {staticpods.ConfigSourceAnnotation: staticpods.FileSource}, {"x": "y"}} {
		pod := &v1.Pod{}
		pod.Annotations = ann
		out, err := markAPISource(pod)
		if err != nil {
			t.Fatal(err)
		}
		if p := out.(*v1.Pod); staticpods.IsStatic(p) || p.Annotations[staticpods.ConfigSourceAnnotation] != "api" {
			t.Errorf("annotations %v: after markAPISource %v", ann, p.Annotations)
		}
	}
}

// The node API's /pods lists what the kubelet's pod manager has: the
// apiserver's pods but mirrors, and the static pods with their status.
func TestNodePods(t *testing.T) {
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	sp := newStaticPods(nil, nil, corelisters.NewPodLister(indexer))
	static := &v1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: "etcd-n1", Namespace: "kube-system", UID: "static-uid",
		Annotations: map[string]string{staticpods.ConfigSourceAnnotation: staticpods.FileSource},
	}}
	sp.static[static.UID] = static
	sp.setStatus(static.UID, &v1.PodStatus{Phase: v1.PodRunning})
	mirror := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "etcd-n1", Namespace: "kube-system", UID: "mirror-uid",
		Annotations: map[string]string{staticpods.ConfigMirrorAnnotation: string(static.UID)}}}
	plain := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "web-uid"}}
	got := nodePods([]*v1.Pod{mirror, plain}, sp.list())
	if len(got) != 2 || got[0].UID != plain.UID || got[1].UID != static.UID || got[1].Status.Phase != v1.PodRunning {
		t.Fatalf("nodePods = %v, want web and the static pod (Running)", got)
	}
	if static.Status.Phase != "" {
		t.Error("list changed the static pod itself")
	}
}
