package podsync

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// unsupported names the pod-spec features the agent does not implement
// yet. Such pods are rejected rather than run without the feature.
func unsupported(pod *v1.Pod) error {
	var what []string
	add := func(f string, a ...any) { what = append(what, fmt.Sprintf(f, a...)) }
	if pod.Spec.RuntimeClassName != nil && *pod.Spec.RuntimeClassName != "" {
		add("runtimeClassName")
	}
	if len(pod.Spec.EphemeralContainers) > 0 {
		add("ephemeral containers")
	}
	if len(pod.Spec.ResourceClaims) > 0 {
		add("resourceClaims")
	}
	if pod.Spec.HostUsers != nil && !*pod.Spec.HostUsers {
		add("hostUsers: false")
	}
	if pod.Spec.Resources != nil && (len(pod.Spec.Resources.Requests) > 0 || len(pod.Spec.Resources.Limits) > 0 || len(pod.Spec.Resources.Claims) > 0) {
		add("pod-level resources (spec.resources)")
	}
	for _, v := range pod.Spec.Volumes {
		src := v.VolumeSource
		if src.EmptyDir == nil && src.ConfigMap == nil && src.Secret == nil && src.DownwardAPI == nil && src.Projected == nil && src.HostPath == nil {
			add("volume %q: only emptyDir, hostPath, configMap, secret, downwardAPI and projected volumes are supported", v.Name)
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
		if len(c.ResizePolicy) > 0 {
			add("%s %q: resizePolicy", kind, c.Name)
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

// admit returns the reason and message for refusing a new pod, or "". The
// checks run in the kubelet's order: sysctls, then the node's predicates
// (OS, supplementalGroupsPolicy, resources), then AppArmor.
func (s *Syncer) admit(pod *v1.Pod) (string, string) {
	if err := unsupported(pod); err != nil {
		return "UnsupportedPodSpec", err.Error()
	}
	for _, check := range []func(*v1.Pod) (string, string){s.admitSysctls, admitOS, s.admitSupplementalGroupsPolicy, s.admitResources, s.admitAppArmor} {
		if reason, msg := check(pod); reason != "" {
			return reason, msg
		}
	}
	return "", ""
}

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

// admitResources checks the pod count and requests against the node.
func (s *Syncer) admitResources(pod *v1.Pod) (string, string) {
	if s.cfg.ActivePods == nil {
		return "", ""
	}
	var others []*v1.Pod
	for _, p := range s.cfg.ActivePods() {
		if p.UID != pod.UID && p.Status.Phase != v1.PodSucceeded && p.Status.Phase != v1.PodFailed {
			others = append(others, p)
		}
	}
	var alloc v1.ResourceList
	if s.cfg.Allocatable != nil {
		alloc = s.cfg.Allocatable()
	}
	return fits(pod, others, s.cfg.MaxPods, alloc)
}

// fits checks the pod count and the cpu and memory requests against what
// the node has, as the kubelet's admission does.
func fits(pod *v1.Pod, others []*v1.Pod, maxPods int, alloc v1.ResourceList) (string, string) {
	if maxPods > 0 && len(others)+1 > maxPods {
		return "OutOfpods", fmt.Sprintf("Node didn't have enough resource: pods, requested: 1, used: %d, capacity: %d", len(others), maxPods)
	}
	for _, name := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory} {
		capacity, ok := alloc[name]
		if !ok {
			continue
		}
		want := podRequest(pod, name)
		if want.IsZero() {
			continue
		}
		used := resource.Quantity{}
		for _, o := range others {
			used.Add(podRequest(o, name))
		}
		total := used.DeepCopy()
		total.Add(want)
		if total.Cmp(capacity) > 0 {
			return "OutOf" + string(name), fmt.Sprintf("Node didn't have enough resource: %s, requested: %d, used: %d, capacity: %d",
				name, quantityValue(name, want), quantityValue(name, used), quantityValue(name, capacity))
		}
	}
	return "", ""
}

func quantityValue(name v1.ResourceName, q resource.Quantity) int64 {
	if name == v1.ResourceCPU {
		return q.MilliValue()
	}
	return q.Value()
}

// podRequest is the pod's effective request: the larger of the sum over
// app containers and the largest init container, plus overhead.
func podRequest(pod *v1.Pod, name v1.ResourceName) resource.Quantity {
	sum := resource.Quantity{}
	for _, c := range pod.Spec.Containers {
		if q, ok := c.Resources.Requests[name]; ok {
			sum.Add(q)
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if q, ok := c.Resources.Requests[name]; ok && q.Cmp(sum) > 0 {
			sum = q.DeepCopy()
		}
	}
	if q, ok := pod.Spec.Overhead[name]; ok {
		sum.Add(q)
	}
	return sum
}

// rejectedStatus is the status of a pod the agent refuses to run.
func rejectedStatus(pod *v1.Pod, reason, message string, now time.Time) *v1.PodStatus {
	st := pod.Status.DeepCopy()
	st.Phase = v1.PodFailed
	st.Reason = reason
	st.Message = message
	st.ObservedGeneration = observedGeneration(pod)
	if st.StartTime == nil {
		t := metav1.NewTime(now)
		st.StartTime = &t
	}
	return st
}
