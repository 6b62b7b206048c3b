package podsync

import (
	"errors"
	"fmt"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// A pod's spec.runtimeClassName names a RuntimeClass (node.k8s.io/v1,
// cluster-scoped) whose handler is the CRI runtime handler of the pod's
// sandbox: RunPodSandbox's runtime_handler, under which the runtime also
// creates the pod's containers. Everything else of a RuntimeClass is the
// control plane's: its admission plugin copies overhead (counted here by
// podRequests), nodeSelector and tolerations into the pod, and the
// scheduler places it. The image calls take no handler, as the kubelet's
// with its alpha RuntimeClassInImageCriApi gate off.
//
// As the kubelet, a RuntimeClass that does not exist (deleted after the
// pod was created: the apiserver refuses a pod naming a missing one) fails
// the sandbox's creation with a FailedCreatePodSandBox event, before
// anything is asked of the runtime; the pod stays Pending and its worker
// tries again with its back-off, so a RuntimeClass created later lets the
// pod start. A handler the runtime does not know fails in RunPodSandbox
// with the runtime's own error, in the same event.

// errCreatePodSandbox marks a failed sandbox creation, the kubelet's
// CreatePodSandboxError sync result.
var errCreatePodSandbox = errors.New("CreatePodSandboxError")

// runtimeHandler returns the runtime handler of the pod's RuntimeClass, ""
// when it names none: the kubelet's runtimeclass.Manager.LookupRuntimeHandler.
// A RuntimeClass that does not exist is the lister's NotFound error
// (runtimeclass.node.k8s.io "<name>" not found).
func (s *Syncer) runtimeHandler(pod *v1.Pod) (string, error) {
	name := pod.Spec.RuntimeClassName
	if name == nil || *name == "" {
		return "", nil
	}
	if s.cfg.RuntimeClasses == nil {
		return "", fmt.Errorf("failed to lookup RuntimeClass %s: no RuntimeClass lister", *name)
	}
	rc, err := s.cfg.RuntimeClasses.Get(*name)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return "", err
		}
		return "", fmt.Errorf("failed to lookup RuntimeClass %s: %w", *name, err)
	}
	return rc.Handler, nil
}
