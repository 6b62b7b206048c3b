package podstatus

import (
	"context"
	"strconv"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
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
