package cri

import (
	"path/filepath"
	"strconv"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Labels and annotations shared with the kubelet.
const (
	PodNameLabel       = "io.kubernetes.pod.name"
	PodNamespaceLabel  = "io.kubernetes.pod.namespace"
	PodUIDLabel        = "io.kubernetes.pod.uid"
	ContainerNameLabel = "io.kubernetes.container.name"

	ContainerHashAnnotation                     = "io.kubernetes.container.hash"
	ContainerRestartCountAnnotation             = "io.kubernetes.container.restartCount"
	ContainerTerminationMessagePathAnnotation   = "io.kubernetes.container.terminationMessagePath"
	ContainerTerminationMessagePolicyAnnotation = "io.kubernetes.container.terminationMessagePolicy"
	PodTerminationGracePeriodAnnotation         = "io.kubernetes.pod.terminationGracePeriod"

	// ManagedLabel marks the objects nodeagent created. Nothing without it
	// is ever stopped or removed by the agent.
	ManagedLabel = "io.nodeagent.managed"
	// ManagedValue is ManagedLabel's value.
	ManagedValue = "true"
)

// PodLogDir is a pod's log directory under root (the sandbox's
// LogDirectory), named as the kubelet names it: <namespace>_<name>_<uid>.
func PodLogDir(root, namespace, name string, uid types.UID) string {
	return filepath.Join(root, namespace+"_"+name+"_"+string(uid))
}

// PodLabels returns the labels of a sandbox: the pod's own labels plus the
// kubelet's identity labels and the agent's ownership label.
func PodLabels(podLabels map[string]string, name, namespace string, uid types.UID) map[string]string {
	l := make(map[string]string, len(podLabels)+4)
	for k, v := range podLabels {
		l[k] = v
	}
	l[PodNameLabel] = name
	l[PodNamespaceLabel] = namespace
	l[PodUIDLabel] = string(uid)
	l[ManagedLabel] = ManagedValue
	return l
}

// ContainerLabels returns the labels of a container of a pod.
func ContainerLabels(name, namespace string, uid types.UID, container string) map[string]string {
	return map[string]string{
		PodNameLabel:       name,
		PodNamespaceLabel:  namespace,
		PodUIDLabel:        string(uid),
		ContainerNameLabel: container,
		ManagedLabel:       ManagedValue,
	}
}

// IsManaged reports whether labels carry the agent's ownership label.
func IsManaged(labels map[string]string) bool {
	return labels[ManagedLabel] == ManagedValue
}

// PodUID returns the pod UID an object's labels name.
func PodUID(labels map[string]string) types.UID {
	return types.UID(labels[PodUIDLabel])
}

// RestartCount reads the restart count annotation of a container.
func RestartCount(annotations map[string]string) int32 {
	n, err := strconv.ParseInt(annotations[ContainerRestartCountAnnotation], 10, 32)
	if err != nil {
		return 0
	}
	return int32(n)
}

// ManagedSandboxFilter selects the agent's sandboxes, of one pod if uid is
// not empty.
func ManagedSandboxFilter(uid types.UID) *runtimeapi.PodSandboxFilter {
	sel := map[string]string{ManagedLabel: ManagedValue}
	if uid != "" {
		sel[PodUIDLabel] = string(uid)
	}
	return &runtimeapi.PodSandboxFilter{LabelSelector: sel}
}

// ManagedContainerFilter selects the agent's containers, of one pod if uid
// is not empty.
func ManagedContainerFilter(uid types.UID) *runtimeapi.ContainerFilter {
	sel := map[string]string{ManagedLabel: ManagedValue}
	if uid != "" {
		sel[PodUIDLabel] = string(uid)
	}
	return &runtimeapi.ContainerFilter{LabelSelector: sel}
}

// Unmanaged returns the sandboxes without the agent's label: a kubelet's or
// another tool's, which the agent leaves alone.
func Unmanaged(all []*runtimeapi.PodSandbox) []*runtimeapi.PodSandbox {
	var out []*runtimeapi.PodSandbox
	for _, s := range all {
		if !IsManaged(s.Labels) {
			out = append(out, s)
		}
	}
	return out
}
