package podstatus

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
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
	last map[types.UID]written
}

// written is the last status the agent wrote for a pod and the
// resourceVersion the apiserver gave the pod with it.
type written struct {
	status          *v1.PodStatus
	resourceVersion string
}

// NewWriter returns a Writer using client.
func NewWriter(client kubernetes.Interface) *Writer {
	return &Writer{client: client, last: map[types.UID]written{}}
}

// Write sends status for pod unless it equals what the apiserver already
// has, as far as the agent knows: the last status it wrote, unless pod (the
// informer's copy) is newer than that write and shows another status, which
// someone else wrote since (the node lifecycle controller marks the pods of
// a node it lost not ready): then that is what the apiserver has, and the
// agent's status is written over it, as the kubelet's status manager
// reconciles.
func (w *Writer) Write(ctx context.Context, pod *v1.Pod, status *v1.PodStatus) error {
	w.mu.Lock()
	last, ok := w.last[pod.UID]
	w.mu.Unlock()
	base := &pod.Status
	others := false // someone else changed the status since the agent's write
	if ok && !apiequality.Semantic.DeepEqual(&pod.Status, last.status) {
		if !newerThan(pod.ResourceVersion, last.resourceVersion) {
			base = last.status // the informer has not seen the agent's write yet
		} else {
			// Serialized only here, where the informer's copy is newer:
			// times the apiserver cut to the second are no one's change.
			others = !sameSerialized(pod.UID, &pod.Status, last.status)
		}
	}
	if apiequality.Semantic.DeepEqual(base, status) {
		return nil
	}
	patch, err := statusPatch(pod.UID, base, status)
	if err != nil {
		return err
	}
	if patch == nil {
		// Equal once serialized: times differ only below the second,
		// which the apiserver does not keep.
		if base == &pod.Status {
			w.remember(pod.UID, status, pod.ResourceVersion)
		}
		return nil
	}
	res, err := w.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		// Gone, or replaced by a pod of the same name (the UID
		// precondition fails with a conflict): nothing of this pod to
		// write any more.
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return fmt.Errorf("patch status of pod %s: %w", klog.KObj(pod), err)
	}
	if others {
		klog.FromContext(ctx).V(2).Info("Wrote pod status over a change made by someone else", "phase", status.Phase)
	} else {
		klog.FromContext(ctx).V(3).Info("Wrote pod status", "phase", status.Phase)
	}
	w.remember(pod.UID, status, res.ResourceVersion)
	return nil
}

// remember records status as what the apiserver has for uid at
// resourceVersion.
func (w *Writer) remember(uid types.UID, status *v1.PodStatus, resourceVersion string) {
	w.mu.Lock()
	w.last[uid] = written{status: status.DeepCopy(), resourceVersion: resourceVersion}
	w.mu.Unlock()
}

// newerThan reports whether resourceVersion a is later than b. Resource
// versions are opaque to clients, but the apiserver's are etcd revisions,
// which grow; one that does not parse counts as newer (the pod's status is
// then taken as what the apiserver has, at worst a redundant write).
func newerThan(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA != nil || errB != nil {
		return a != b
	}
	return x > y
}

// Status returns a copy of the last status the agent wrote for the pod of
// uid, the agent's own view of it (the kubelet's status manager's copy);
// false if it wrote none since it started, or forgot the pod.
func (w *Writer) Status(uid types.UID) (*v1.PodStatus, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	last, ok := w.last[uid]
	if !ok {
		return nil, false
	}
	return last.status.DeepCopy(), true
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

// sameSerialized reports whether two statuses are the same to the
// apiserver, which keeps times only to the second.
func sameSerialized(uid types.UID, a, b *v1.PodStatus) bool {
	patch, err := statusPatch(uid, a, b)
	return err == nil && patch == nil
}

// statusPatch is the strategic merge patch from old to status, with the
// pod's UID as a precondition; nil when the two serialize alike.
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
	if len(m) == 0 {
		return nil, nil // nothing changes
	}
	m["metadata"] = map[string]any{"uid": string(uid)}
	return json.Marshal(m)
}
