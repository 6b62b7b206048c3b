package podstatus

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// Writer writes pod statuses and deletes finished pods.
type Writer struct {
	client kubernetes.Interface

	mu   sync.Mutex
	last map[types.UID]*v1.PodStatus
}

// NewWriter returns a Writer using client.
func NewWriter(client kubernetes.Interface) *Writer {
	return &Writer{client: client, last: map[types.UID]*v1.PodStatus{}}
}

// Write sends status for pod unless it equals what the apiserver already
// has (as far as the agent knows).
func (w *Writer) Write(ctx context.Context, pod *v1.Pod, status *v1.PodStatus) error {
	w.mu.Lock()
	old := w.last[pod.UID]
	w.mu.Unlock()
	if old == nil {
		old = &pod.Status
	}
	if apiequality.Semantic.DeepEqual(old, status) || apiequality.Semantic.DeepEqual(&pod.Status, status) {
		return nil
	}
	patch, err := statusPatch(pod.UID, old, status)
	if err != nil {
		return err
	}
	_, err = w.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("patch status of pod %s: %w", klog.KObj(pod), err)
	}
	klog.FromContext(ctx).V(3).Info("Wrote pod status", "phase", status.Phase)
	w.mu.Lock()
	w.last[pod.UID] = status.DeepCopy()
	w.mu.Unlock()
	return nil
}

// Forget drops what the writer remembers of a pod.
func (w *Writer) Forget(uid types.UID) {
	w.mu.Lock()
	delete(w.last, uid)
	w.mu.Unlock()
}

// Delete removes the pod object with grace period 0, once the agent has
// stopped everything of it. A pod already gone is not an error.
func (w *Writer) Delete(ctx context.Context, pod *v1.Pod) error {
	zero := int64(0)
	err := w.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero,
		Preconditions:      metav1.NewUIDPreconditions(string(pod.UID)),
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete pod %s: %w", klog.KObj(pod), err)
	}
	w.Forget(pod.UID)
	return nil
}

func statusPatch(uid types.UID, old, status *v1.PodStatus) ([]byte, error) {
	oldJSON, err := json.Marshal(v1.Pod{Status: *old})
	if err != nil {
		return nil, err
	}
	newJSON, err := json.Marshal(v1.Pod{Status: *status})
	if err != nil {
		return nil, err
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(oldJSON, newJSON, v1.Pod{})
	if err != nil {
		return nil, fmt.Errorf("status patch: %w", err)
	}
	// The UID precondition: a pod recreated under the same name is not
	// patched with its predecessor's status.
	var m map[string]any
	if err := json.Unmarshal(patch, &m); err != nil {
		return nil, err
	}
	m["metadata"] = map[string]any{"uid": string(uid)}
	return json.Marshal(m)
}
