package podsync

import (
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/nodeagent/nodeagent/staticpods"
)

// unsupported names the pod-spec features the agent does not implement
// yet. Such pods are rejected rather than run without the feature.
func unsupported(pod *v1.Pod) error {
	var what []string
	add := func(f string, a ...any) { what = append(what, fmt.Sprintf(f, a...)) }
	if len(pod.Spec.ResourceClaims) > 0 {
		add("resourceClaims")
	}
	if pod.Spec.HostUsers != nil && !*pod.Spec.HostUsers {
		add("hostUsers: false")
	}
	if r := pod.Spec.Resources; r != nil {
		// Pod-level cpu, memory and hugepages are honoured (podcgroups,
		// linuxResources, admission); the apiserver refuses other names,
		// but a static pod's spec is not validated by it.
		names := v1.ResourceList{}
		maps.Copy(names, r.Requests)
		maps.Copy(names, r.Limits)
		for _, name := range slices.Sorted(maps.Keys(names)) {
			if !resourcehelper.IsSupportedPodLevelResource(name) {
				add("pod-level resource %s (spec.resources: only cpu, memory and hugepages-<size>)", name)
			}
		}
		if len(r.Claims) > 0 {
			add("pod-level resource claims (spec.resources.claims)")
		}
	}
	for _, v := range pod.Spec.Volumes {
		src := v.VolumeSource
		if src.EmptyDir == nil && src.ConfigMap == nil && src.Secret == nil && src.DownwardAPI == nil && src.Projected == nil && src.HostPath == nil && src.Image == nil {
			add("volume %q: only emptyDir, hostPath, configMap, secret, downwardAPI, projected and image volumes are supported", v.Name)
		}
	}
	check := func(kind string, c *v1.Container) {
		// Sidecars (init containers with restartPolicy Always) run; a
		// restartPolicy on an app container and restart rules do not.
		if c.RestartPolicy != nil && (kind != "init container" || !isSidecar(c)) {
			add("%s %q: restartPolicy %s", kind, c.Name, *c.RestartPolicy)
		}
		if len(c.RestartPolicyRules) > 0 {
			add("%s %q: restartPolicyRules", kind, c.Name)
		}
		for _, d := range c.VolumeDevices {
			add("%s %q: volumeDevices %q", kind, c.Name, d.Name)
		}
	}
	for i := range pod.Spec.InitContainers {
		check("init container", &pod.Spec.InitContainers[i])
	}
	for i := range pod.Spec.Containers {
		check("container", &pod.Spec.Containers[i])
	}
	if len(what) == 0 {
		return nil
	}
	return fmt.Errorf("pod uses features nodeagent does not support yet: %s", strings.Join(what, ", "))
}

// admitOne returns the reason and message for refusing pod, or "", with
// others the pods admitted before it. The checks run in the kubelet's
// order: sysctls, then the node's predicates (OS, supplementalGroupsPolicy,
// generalFilter), then AppArmor, then the node's shutdown. Serialization
// and ordering are admission.go's.
func (s *Syncer) admitOne(pod *v1.Pod, others []*v1.Pod, node *v1.Node) (string, string) {
	if err := unsupported(pod); err != nil {
		return "UnsupportedPodSpec", err.Error()
	}
	for _, check := range []func(*v1.Pod) (string, string){s.admitPodResources, s.admitSysctls, admitOS, s.admitSupplementalGroupsPolicy} {
		if reason, msg := check(pod); reason != "" {
			return reason, msg
		}
	}
	if reason, msg := generalFilter(pod, others, node, s.allocatable(node), s.cfg.MaxPods); reason != "" {
		return reason, msg
	}
	if reason, msg := s.admitAppArmor(pod); reason != "" {
		return reason, msg
	}
	// The kubelet's shutdown manager, its last admit handler.
	if s.cfg.ShuttingDown != nil && s.cfg.ShuttingDown() {
		return nodeShutdownReason, nodeShutdownMessage
	}
	return "", ""
}

// admitPodResources refuses pod-level resources (spec.resources) the node
// cannot honour: invalid ones in a static pod's manifest, which the
// apiserver did not validate (the kubelet validates manifests as it
// decodes them), and pod-level limits when the agent does not write pod
// cgroups (Config.PodCgroups nil: the systemd cgroup driver, or
// cgroupsPerQOS false). Only the pod's cgroup bounds the pod as a whole;
// without it each container that sets no limit of its own runs with the
// whole pod limit (containerLimits), and three such containers under a
// 128Mi pod limit could use 384Mi. The kubelet has the same gap with
// cgroupsPerQOS false and runs the pod; refusing it is the safer answer.
func (s *Syncer) admitPodResources(pod *v1.Pod) (string, string) {
	if staticpods.IsStatic(pod) {
		if err := staticpods.ValidateResources(pod); err != nil {
			return "UnsupportedPodSpec", "invalid pod-level resources in the static pod's manifest: " + err.Error()
		}
	}
	if r := pod.Spec.Resources; r != nil && len(r.Limits) > 0 && s.cfg.PodCgroups == nil {
		return "UnsupportedPodSpec", "pod-level limits (spec.resources.limits) are not supported on this node: " +
			"they are enforced by the pod's cgroup, which nodeagent does not manage with the systemd cgroup driver or cgroupsPerQOS false, " +
			"and each container without limits of its own would get the whole pod limit"
	}
	return "", ""
}

// Reason and message of a pod refused while the node shuts down, the
// kubelet's.
const (
	nodeShutdownReason  = "NodeShutdown"
	nodeShutdownMessage = "Pod was rejected as the node is shutting down."
)

// admitOS refuses, as the kubelet's predicates, a pod labelled for another
// OS (kubernetes.io/os) or whose spec.os is not the node's.
func admitOS(pod *v1.Pod) (string, string) {
	if os, ok := pod.Labels[v1.LabelOSStable]; ok && os != runtime.GOOS {
		return "PodOSSelectorNodeLabelDoesNotMatch", "Failed to admit pod as the `kubernetes.io/os` label doesn't match node label"
	}
	if pod.Spec.OS != nil && string(pod.Spec.OS.Name) != runtime.GOOS {
		return "PodOSNotSupported", "Failed to admit pod as the OS field doesn't match node OS"
	}
	return "", ""
}

// rejectedStatus is the status of a pod the agent refuses to run; the event
// carries message alone, as the kubelet's.
func rejectedStatus(pod *v1.Pod, reason, message string, now time.Time) *v1.PodStatus {
	st := pod.Status.DeepCopy()
	st.Phase = v1.PodFailed
	st.Reason = reason
	st.Message = "Pod was rejected: " + message // the kubelet's rejectPod
	st.ObservedGeneration = observedGeneration(pod)
	if st.StartTime == nil {
		t := metav1.NewTime(now)
		st.StartTime = &t
	}
	return st
}
