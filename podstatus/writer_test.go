package podstatus

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

func readyStatus(ready v1.ConditionStatus) *v1.PodStatus {
	return &v1.PodStatus{Phase: v1.PodRunning, Conditions: []v1.PodCondition{{Type: v1.PodReady, Status: ready}}}
}

// The agent's status is written again over a change someone else made
// after the agent's last write (the node lifecycle controller's Ready=False
// after an apiserver outage), and not over an informer copy that has not
// caught up with the agent's own write.
func TestWriteReconcilesOthersChanges(t *testing.T) {
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1", ResourceVersion: "10"}, Status: *readyStatus(v1.ConditionFalse)}
	client := fake.NewClientset(pod.DeepCopy())
	var patches []string
	rv := 10
	client.PrependReactor("patch", "pods", func(a clienttesting.Action) (bool, runtime.Object, error) {
		patches = append(patches, string(a.(clienttesting.PatchAction).GetPatch()))
		rv++
		out := pod.DeepCopy()
		out.ResourceVersion = strconv.Itoa(rv)
		return true, out, nil
	})
	w := NewWriter(client)
	ctx := context.Background()

	// Ready: written (rv 11).
	if err := w.Write(ctx, pod, readyStatus(v1.ConditionTrue)); err != nil || len(patches) != 1 {
		t.Fatalf("first write: %v, %d patches", err, len(patches))
	}
	// The informer still shows rv 10 (Ready False): the agent's write
	// stands, nothing is sent.
	if err := w.Write(ctx, pod, readyStatus(v1.ConditionTrue)); err != nil || len(patches) != 1 {
		t.Fatalf("stale informer copy: %v, %d patches", err, len(patches))
	}
	// Someone else set Ready False at rv 15: the agent writes Ready True.
	changed := pod.DeepCopy()
	changed.ResourceVersion = "15"
	if err := w.Write(ctx, changed, readyStatus(v1.ConditionTrue)); err != nil || len(patches) != 2 {
		t.Fatalf("change by another writer: %v, %d patches", err, len(patches))
	}
	if !strings.Contains(patches[1], `"status":"True"`) {
		t.Errorf("patch %s does not set Ready True", patches[1])
	}
}

// The informer's copy of the agent's own status has its times cut to the
// second, as the apiserver keeps them: once newer (another field of the
// pod changed), it is still the same status, and nothing is written.
func TestWriteSkipsSubsecondDifferences(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 11, 30, 9, 0, 0, 123456789, time.UTC))
	mine := &v1.PodStatus{Phase: v1.PodPending, StartTime: &at, Conditions: []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionFalse, LastTransitionTime: at}}}
	stored := mine.DeepCopy()
	cut := metav1.NewTime(at.Truncate(time.Second))
	stored.StartTime, stored.Conditions[0].LastTransitionTime = &cut, cut
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1", ResourceVersion: "20"}, Status: *stored}
	client := fake.NewClientset(pod.DeepCopy())
	patches := 0
	client.PrependReactor("patch", "pods", func(clienttesting.Action) (bool, runtime.Object, error) {
		patches++
		return true, pod.DeepCopy(), nil
	})
	w := NewWriter(client)
	w.remember(pod.UID, mine, "10")
	if err := w.Write(context.Background(), pod, mine); err != nil || patches != 0 {
		t.Fatalf("write: %v, %d patches", err, patches)
	}
	// Remembered at the informer's resourceVersion: an older copy later
	// is taken as stale.
	if w.last[pod.UID].resourceVersion != "20" {
		t.Errorf("remembered at %s, want 20", w.last[pod.UID].resourceVersion)
	}
}

// Status is the last status the agent wrote for a pod, a copy, until the
// pod is forgotten.
func TestStatus(t *testing.T) {
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1", ResourceVersion: "10"}}
	w := NewWriter(fake.NewClientset(pod.DeepCopy()))
	if _, ok := w.Status(pod.UID); ok {
		t.Fatal("a status before any write")
	}
	if err := w.Write(context.Background(), pod, readyStatus(v1.ConditionTrue)); err != nil {
		t.Fatal(err)
	}
	st, ok := w.Status(pod.UID)
	if !ok || st.Phase != v1.PodRunning || st.Conditions[0].Status != v1.ConditionTrue {
		t.Fatalf("got %v %+v, want the written status", ok, st)
	}
	st.Conditions[0].Status = v1.ConditionFalse
	if again, _ := w.Status(pod.UID); again.Conditions[0].Status != v1.ConditionTrue {
		t.Fatal("a caller's change reached the writer's copy")
	}
	w.Forget(pod.UID)
	if _, ok := w.Status(pod.UID); ok {
		t.Fatal("a status after Forget")
	}
}

// A pod replaced by another of the same name refuses the UID
// precondition with a conflict: the old pod's status has nowhere to go,
// which is no error (a deleted pod's final write would otherwise hold its
// cleanup for ever).
func TestWriteToReplacedPod(t *testing.T) {
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "old", ResourceVersion: "10"}}
	client := fake.NewClientset()
	client.PrependReactor("patch", "pods", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewConflict(v1.Resource("pods"), "p", errors.New("Precondition failed: UID in precondition: old, UID in object meta: new"))
	})
	if err := NewWriter(client).Write(context.Background(), pod, readyStatus(v1.ConditionTrue)); err != nil {
		t.Fatalf("Write = %v, want nil for a replaced pod", err)
	}
}
