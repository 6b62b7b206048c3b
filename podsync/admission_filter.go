package podsync

import (
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	resourcehelper "k8s.io/component-helpers/resource"
	schedcorev1 "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/staticpods"
)

// The kubelet's predicate failures: the reason is the scheduler plugin's
// name, the message "Predicate <name> failed: <the plugin's reason>".
const (
	predicateNodeAffinity    = "NodeAffinity"
	predicateNodeName        = "NodeName"
	predicateNodePorts       = "NodePorts"
	predicateTaintToleration = "TaintToleration"
)

var predicateReasons = map[string]string{
	predicateNodeAffinity:    "node(s) didn't match Pod's node affinity/selector",
	predicateNodeName:        "node(s) didn't match the requested node name",
	predicateNodePorts:       "node(s) didn't have free ports for the requested pod ports",
	predicateTaintToleration: "node(s) had taints that the pod didn't tolerate",
}

func predicateFailure(name string) (string, string) {
	return name, fmt.Sprintf("Predicate %s failed: %s", name, predicateReasons[name])
}

// generalFilter is the kubelet's generalFilter (lifecycle/predicate.go):
// the pod's requests against what the node has left after others (pods,
// cpu, memory, ephemeral-storage, then other resources by name), then
// required node affinity and nodeSelector, the node name, host ports, and
// NoExecute taints (not for static pods). The first failure is the answer,
// as the kubelet reports it. node nil skips the checks that need it; alloc
// nil skips the resources but the pod count.
func generalFilter(pod *v1.Pod, others []*v1.Pod, node *v1.Node, alloc v1.ResourceList, maxPods int) (string, string) {
	if reason, msg := fitsResources(pod, others, alloc, maxPods); reason != "" {
		return reason, msg
	}
	if node == nil {
		return "", ""
	}
	if ok, _ := nodeaffinity.GetRequiredNodeAffinity(pod).Match(node); !ok {
		return predicateFailure(predicateNodeAffinity)
	}
	if pod.Spec.NodeName != "" && pod.Spec.NodeName != node.Name {
		return predicateFailure(predicateNodeName)
	}
	if !fitsHostPorts(pod, others) {
		return predicateFailure(predicateNodePorts)
	}
	if !staticpods.IsStatic(pod) {
		noExecute := func(t *v1.Taint) bool { return t.Effect == v1.TaintEffectNoExecute }
		// The logger only tells of unparsable Gt/Lt tolerations, which
		// the comparison operators (off, as the kubelet's alpha feature
		// gate) do not use.
		if _, untolerated := schedcorev1.FindMatchingUntoleratedTaint(klog.Background(), node.Spec.Taints, pod.Spec.Tolerations, noExecute, false); untolerated {
			return predicateFailure(predicateTaintToleration)
		}
	}
	return "", ""
}

// fitsResources is the scheduler's noderesources.Fits as the kubelet runs
// it: the effective requests (sidecars, init containers and overhead
// counted by the component-helpers) against allocatable less the requests
// of others; an extended resource the node does not have is not checked
// (cluster-level resources).
func fitsResources(pod *v1.Pod, others []*v1.Pod, alloc v1.ResourceList, maxPods int) (string, string) {
	allowed := int64(maxPods)
	if q, ok := alloc[v1.ResourcePods]; ok {
		allowed = q.Value()
	}
	if allowed > 0 && int64(len(others))+1 > allowed {
		return insufficient(v1.ResourcePods, 1, int64(len(others)), allowed)
	}
	if alloc == nil {
		return "", ""
	}
	want := podRequests(pod)
	used := v1.ResourceList{}
	for _, o := range others {
		for name, q := range podRequests(o) {
			sum := used[name]
			sum.Add(q)
			used[name] = sum
		}
	}
	for _, name := range resourceOrder(want) {
		w := want[name]
		if w.IsZero() {
			continue
		}
		capacity, ok := alloc[name]
		if !ok {
			switch {
			case name == v1.ResourceCPU || name == v1.ResourceMemory || name == v1.ResourceEphemeralStorage:
				continue // not known (yet): nothing to check against
			case isExtendedResourceName(name):
				continue // the kubelet's removeMissingExtendedResources
			}
		}
		u := used[name]
		if quantityValue(name, w) > quantityValue(name, capacity)-quantityValue(name, u) {
			return insufficient(name, quantityValue(name, w), quantityValue(name, u), quantityValue(name, capacity))
		}
	}
	return "", ""
}

// insufficient is the kubelet's InsufficientResourceError as a reason and
// message: OutOfcpu, OutOfmemory, OutOfephemeral-storage, OutOfpods,
// OutOf<resource name>.
func insufficient(name v1.ResourceName, requested, used, capacity int64) (string, string) {
	return "OutOf" + string(name), fmt.Sprintf("Node didn't have enough resource: %s, requested: %d, used: %d, capacity: %d",
		name, requested, used, capacity)
}

// resourceOrder lists the resources of want in the order the scheduler
// checks them: cpu, memory, ephemeral-storage, then the others by name
// (the scheduler's map order, made stable).
func resourceOrder(want v1.ResourceList) []v1.ResourceName {
	first := []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory, v1.ResourceEphemeralStorage}
	var rest []v1.ResourceName
	for name := range want {
		if name != v1.ResourceCPU && name != v1.ResourceMemory && name != v1.ResourceEphemeralStorage && name != v1.ResourcePods {
			rest = append(rest, name)
		}
	}
	sort.Slice(rest, func(i, j int) bool { return rest[i] < rest[j] })
	return append(first, rest...)
}

// quantityValue is how the scheduler counts a resource: millicores for
// cpu, whole units for the rest.
func quantityValue(name v1.ResourceName, q resource.Quantity) int64 {
	if name == v1.ResourceCPU {
		return q.MilliValue()
	}
	return q.Value()
}

// podRequests is the pod's effective request as the kubelet computes it:
// the larger of the app containers plus sidecars and of each init
// container plus the sidecars started before it, plus overhead; the
// pod-level requests (spec.resources) in their place for the resources
// they name.
func podRequests(pod *v1.Pod) v1.ResourceList {
	return resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
}

// isExtendedResourceName is the API's IsExtendedResourceName: a
// domain-prefixed name outside kubernetes.io that is valid as a quota
// name.
func isExtendedResourceName(name v1.ResourceName) bool {
	s := string(name)
	if !strings.Contains(s, "/") || strings.Contains(s, v1.ResourceDefaultNamespacePrefix) || strings.HasPrefix(s, v1.DefaultResourceRequestsPrefix) {
		return false
	}
	return len(validation.IsQualifiedName(v1.DefaultResourceRequestsPrefix+s)) == 0
}

// hostPort is a used host port: address, protocol and port, the address
// "0.0.0.0" standing for all.
type hostPort struct {
	ip, protocol string
	port         int32
}

const allAddresses = "0.0.0.0"

// hostPorts lists the host ports of the pod's app containers and sidecars
// (the scheduler's GetHostPorts), defaults filled in.
func hostPorts(pod *v1.Pod) []hostPort {
	var out []hostPort
	add := func(c *v1.Container) {
		for _, p := range c.Ports {
			if p.HostPort <= 0 {
				continue
			}
			hp := hostPort{ip: p.HostIP, protocol: string(p.Protocol), port: p.HostPort}
			if hp.ip == "" {
				hp.ip = allAddresses
			}
			if hp.protocol == "" {
				hp.protocol = string(v1.ProtocolTCP)
			}
			out = append(out, hp)
		}
	}
	for i := range pod.Spec.InitContainers {
		if isSidecar(&pod.Spec.InitContainers[i]) {
			add(&pod.Spec.InitContainers[i])
		}
	}
	for i := range pod.Spec.Containers {
		add(&pod.Spec.Containers[i])
	}
	return out
}

// fitsHostPorts reports whether no host port of pod is taken by others: the
// same protocol and port on the same address, or on all addresses on
// either side.
func fitsHostPorts(pod *v1.Pod, others []*v1.Pod) bool {
	want := hostPorts(pod)
	if len(want) == 0 {
		return true
	}
	for _, o := range others {
		for _, used := range hostPorts(o) {
			for _, w := range want {
				if w.port == used.port && w.protocol == used.protocol &&
					(w.ip == used.ip || w.ip == allAddresses || used.ip == allAddresses) {
					return false
				}
			}
		}
	}
	return true
}
