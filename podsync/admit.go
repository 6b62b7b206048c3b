package podsync

import (
	"fmt"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
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
	for _, v := range pod.Spec.Volumes {
		src := v.VolumeSource
		if src.EmptyDir == nil && src.ConfigMap == nil && src.Secret == nil && src.DownwardAPI == nil && src.Projected == nil {
			add("volume %q: only emptyDir, configMap, secret, downwardAPI and projected volumes are supported", v.Name)
		}
	}
	check := func(kind string, c *v1.Container) {
		if c.LivenessProbe != nil {
			add("%s %q: livenessProbe", kind, c.Name)
		}
		if c.ReadinessProbe != nil {
			add("%s %q: readinessProbe", kind, c.Name)
		}
		if c.StartupProbe != nil {
			add("%s %q: startupProbe", kind, c.Name)
		}
		if c.Lifecycle != nil && (c.Lifecycle.PostStart != nil || c.Lifecycle.PreStop != nil) {
			add("%s %q: lifecycle hooks", kind, c.Name)
		}
		if c.RestartPolicy != nil {
			add("%s %q: restartPolicy (sidecar containers)", kind, c.Name)
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

// rejectedStatus is the status of a pod the agent refuses to run.
func rejectedStatus(pod *v1.Pod, reason, message string, now time.Time) *v1.PodStatus {
	st := pod.Status.DeepCopy()
	st.Phase = v1.PodFailed
	st.Reason = reason
	st.Message = message
	if st.StartTime == nil {
		t := metav1.NewTime(now)
		st.StartTime = &t
	}
	return st
}
