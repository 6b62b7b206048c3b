package podenv

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// FieldValue returns the value of a downward API field path of pod, as used
// by fieldRef in environment variables and downwardAPI volumes. hostIP,
// podIP and podIPs are the runtime addresses known to the agent; when podIP
// is empty the first of podIPs is used.
func FieldValue(pod *v1.Pod, fieldPath, hostIP, podIP string, podIPs []string) (string, error) {
	if podIP == "" && len(podIPs) > 0 {
		podIP = podIPs[0]
	}
	if path, key, ok := splitSubscript(fieldPath); ok {
		switch path {
		case "metadata.labels":
			return pod.Labels[key], nil
		case "metadata.annotations":
			return pod.Annotations[key], nil
		}
		return "", fmt.Errorf("field path %q does not support a subscript", fieldPath)
	}
	switch fieldPath {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return FormatMap(pod.Labels), nil
	case "metadata.annotations":
		return FormatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP":
		return hostIP, nil
	case "status.hostIPs":
		if len(pod.Status.HostIPs) == 0 {
			return hostIP, nil
		}
		ips := make([]string, 0, len(pod.Status.HostIPs))
		for _, ip := range pod.Status.HostIPs {
			ips = append(ips, ip.IP)
		}
		return strings.Join(ips, ","), nil
	case "status.podIP":
		return podIP, nil
	case "status.podIPs":
		if len(podIPs) == 0 {
			return podIP, nil
		}
		return strings.Join(podIPs, ","), nil
	}
	return "", fmt.Errorf("unsupported field path %q", fieldPath)
}

// splitSubscript splits "metadata.labels['key']" into ("metadata.labels",
// "key", true).
func splitSubscript(fieldPath string) (string, string, bool) {
	s, ok := strings.CutSuffix(fieldPath, "']")
	if !ok {
		return fieldPath, "", false
	}
	path, key, ok := strings.Cut(s, "['")
	if !ok || path == "" {
		return fieldPath, "", false
	}
	return path, key, true
}

// FormatMap formats labels or annotations like the kubelet: one key="value"
// per line (value quoted as a Go string), keys sorted, no trailing newline.
func FormatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(m[k]))
	}
	return b.String()
}

// ResourceValue returns the value of a downward API resource field
// (limits.cpu, requests.memory, ...) divided by its divisor and rounded up.
// The container is fs.ContainerName of pod when set, c otherwise. A cpu,
// memory or ephemeral-storage limit that is not set (or zero) defaults to
// the pod-level limit (spec.resources.limits, cpu and memory), else to the
// node's allocatable amount, when known: the kubelet's
// defaultPodLimitsForDownwardAPI. An unset hugepages-<size> limit is 0.
func ResourceValue(fs *v1.ResourceFieldSelector, pod *v1.Pod, c *v1.Container, allocatable v1.ResourceList) (string, error) {
	if fs.ContainerName != "" {
		c = findContainer(pod, fs.ContainerName)
		if c == nil {
			return "", fmt.Errorf("container %q not found in pod", fs.ContainerName)
		}
	}
	if c == nil {
		return "", fmt.Errorf("resource field %q: no container given", fs.Resource)
	}
	kind, name, ok := strings.Cut(fs.Resource, ".")
	if !ok || (kind != "limits" && kind != "requests") {
		return "", fmt.Errorf("unsupported resource field %q", fs.Resource)
	}
	rn := v1.ResourceName(name)
	switch {
	case rn == v1.ResourceCPU, rn == v1.ResourceMemory, rn == v1.ResourceEphemeralStorage:
	case strings.HasPrefix(name, v1.ResourceHugePagesPrefix):
	default:
		return "", fmt.Errorf("unsupported resource field %q", fs.Resource)
	}
	// An unset quantity is zero; an unset limit defaults as above.
	var q resource.Quantity
	if kind == "limits" {
		q = c.Resources.Limits[rn]
		if q.IsZero() {
			q = defaultLimit(pod, rn, allocatable)
		}
	} else {
		q = c.Resources.Requests[rn]
	}
	divisor := fs.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	var v float64
	if rn == v1.ResourceCPU {
		v = math.Ceil(float64(q.MilliValue()) / float64(divisor.MilliValue()))
	} else {
		v = math.Ceil(float64(q.Value()) / float64(divisor.Value()))
	}
	return strconv.FormatInt(int64(v), 10), nil
}

// defaultLimit is the limit of resource rn of a container that sets none:
// for cpu, memory and ephemeral-storage, the pod-level one when the pod
// sets it (only cpu and memory are pod-level resources the downward API
// shows), the node's allocatable otherwise (zero when not known). Other
// resources, that is hugepages-<size>, have none (zero), as in the
// kubelet's MergeContainerResourceLimits: huge pages are never
// overcommitted, so a container that may use them has its own limit.
func defaultLimit(pod *v1.Pod, rn v1.ResourceName, allocatable v1.ResourceList) resource.Quantity {
	switch rn {
	case v1.ResourceCPU, v1.ResourceMemory, v1.ResourceEphemeralStorage:
	default:
		return resource.Quantity{}
	}
	if pod.Spec.Resources != nil && (rn == v1.ResourceCPU || rn == v1.ResourceMemory) {
		if q := pod.Spec.Resources.Limits[rn]; !q.IsZero() {
			return q
		}
	}
	return allocatable[rn]
}

func findContainer(pod *v1.Pod, name string) *v1.Container {
	for _, list := range [][]v1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}
