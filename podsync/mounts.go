package podsync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/podenv"
)

// mounts are the container's volume mounts plus the files the kubelet
// manages: /etc/hosts and the termination message file.
//
// configMap, secret, downwardAPI and projected volumes are always mounted
// read-only, whatever the mount says, as the kubelet (CVE-2017-1002102):
// the agent rewrites them, and a container must not plant anything there.
// A subPath (or a subPathExpr expanded with the container's environment)
// is bind-mounted by the volume manager from a file descriptor opened
// without following links (volumes.Manager.SubPath), so the runtime mounts
// what was checked to be inside the volume. An image volume is mounted by
// the runtime from images, the pulled image of each image volume c mounts
// (imagevolumes.go): read-only, its subPath resolved inside the image.
func (s *Syncer) mounts(ctx context.Context, pod *v1.Pod, c *v1.Container, podIP string, env map[string]string, images map[string]*runtimeapi.ImageSpec) ([]*runtimeapi.Mount, error) {
	vols, fresh := s.podVolumePaths(pod.UID)
	if len(c.VolumeMounts) > 0 && !fresh {
		var err error
		if vols, err = s.volumes.Setup(ctx, pod); err != nil {
			return nil, fmt.Errorf("%w: volumes: %w", errConfig, err)
		}
	}
	var out []*runtimeapi.Mount
	hasHosts := false
	for i, m := range c.VolumeMounts {
		host, ok := vols[m.Name]
		if !ok {
			return nil, fmt.Errorf("%w: volume %q of mount %q not found", errConfig, m.Name, m.MountPath)
		}
		sub := m.SubPath
		if m.SubPathExpr != "" {
			var err error
			if sub, err = expandSubPathExpr(m.SubPathExpr, env); err != nil {
				return nil, fmt.Errorf("%w: subPathExpr %q of mount %q: %w", errConfig, m.SubPathExpr, m.MountPath, err)
			}
		}
		prop := runtimeapi.MountPropagation_PROPAGATION_PRIVATE
		if m.MountPropagation != nil {
			switch *m.MountPropagation {
			case v1.MountPropagationHostToContainer:
				prop = runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER
			case v1.MountPropagationBidirectional:
				prop = runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL
			}
		}
		if m.MountPath == "/etc/hosts" {
			hasHosts = true
		}
		if isImageVolume(pod, m.Name) {
			img := images[m.Name]
			if img == nil {
				return nil, fmt.Errorf("%w: image volume %q of mount %q was not pulled", errConfig, m.Name, m.MountPath)
			}
			if err := checkSubPath(sub); err != nil {
				return nil, fmt.Errorf("%w: subPath %q of mount %q: %w", errConfig, sub, m.MountPath, err)
			}
			rro, err := s.recursiveReadOnly(ctx, pod, m, true)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", errConfig, err)
			}
			out = append(out, imageVolumeMount(m, img, sub, rro, prop))
			continue
		}
		if sub != "" {
			p, err := s.volumes.SubPath(ctx, pod, m.Name, c.Name, i, host, sub)
			if err != nil {
				return nil, fmt.Errorf("%w: subPath %q of mount %q: %w", errConfig, sub, m.MountPath, err)
			}
			host = p
		}
		readOnly := m.ReadOnly || writtenByAgent(pod, m.Name)
		rro, err := s.recursiveReadOnly(ctx, pod, m, readOnly)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errConfig, err)
		}
		out = append(out, &runtimeapi.Mount{ContainerPath: m.MountPath, HostPath: host, Readonly: readOnly,
			RecursiveReadOnly: rro, Propagation: prop, SelinuxRelabel: s.relabel(pod, m.Name)})
	}
	if !hasHosts {
		p, err := s.writeHosts(pod, podIP)
		if err != nil {
			return nil, err
		}
		out = append(out, &runtimeapi.Mount{ContainerPath: "/etc/hosts", HostPath: p})
	}
	if c.TerminationMessagePath != "" {
		p, err := s.terminationFile(pod, c)
		if err != nil {
			return nil, err
		}
		out = append(out, &runtimeapi.Mount{ContainerPath: c.TerminationMessagePath, HostPath: p})
	}
	return out, nil
}

// relabel tells the runtime to relabel a volume for the pod's SELinux
// context, as the kubelet does for the volume types it owns (emptyDir,
// configMap, secret, downwardAPI, projected; never hostPath), when the
// host runs SELinux. Those types know no mount-option labelling, so
// seLinuxChangePolicy MountOption falls back to this relabelling there
// too, as in the kubelet.
func (s *Syncer) relabel(pod *v1.Pod, name string) bool {
	if !selinuxEnabled() {
		return false
	}
	for i := range pod.Spec.Volumes {
		if v := &pod.Spec.Volumes[i]; v.Name == name {
			return v.EmptyDir != nil || writtenByAgent(pod, name)
		}
	}
	return false
}

// selinuxEnabled reports whether the host runs SELinux.
var selinuxEnabled = sync.OnceValue(func() bool {
	_, err := os.Stat("/sys/fs/selinux/enforce")
	return err == nil
})

// isImageVolume reports whether the volume is of type image.
func isImageVolume(pod *v1.Pod, name string) bool {
	for i := range pod.Spec.Volumes {
		if v := &pod.Spec.Volumes[i]; v.Name == name {
			return v.Image != nil
		}
	}
	return false
}

// writtenByAgent reports whether the volume is one the agent writes with
// the atomic writer (configMap, secret, downwardAPI, projected).
func writtenByAgent(pod *v1.Pod, name string) bool {
	for i := range pod.Spec.Volumes {
		if v := &pod.Spec.Volumes[i]; v.Name == name {
			return v.ConfigMap != nil || v.Secret != nil || v.DownwardAPI != nil || v.Projected != nil
		}
	}
	return false
}

// expandSubPathExpr expands $(VAR) in a subPathExpr as the kubelet: a
// variable that is unset or empty is an error, and so is a result that is
// absolute or climbs out of the volume.
func expandSubPathExpr(expr string, env map[string]string) (string, error) {
	missing := map[string]bool{}
	out := podenv.Expand(expr, func(k string) (string, bool) {
		v, ok := env[k]
		if !ok || v == "" {
			missing[k] = true
		}
		return v, true
	})
	if len(missing) > 0 {
		names := make([]string, 0, len(missing))
		for k := range missing {
			names = append(names, k)
		}
		sort.Strings(names)
		return "", fmt.Errorf("missing value for %s", strings.Join(names, ", "))
	}
	if err := checkSubPath(out); err != nil {
		return "", fmt.Errorf("expanded to %q, which %w", out, err)
	}
	return out, nil
}

// checkSubPath refuses, as the kubelet's makeMounts, a subPath that is
// absolute or climbs out of its volume (the apiserver refuses such a
// subPath in the spec, not what a subPathExpr expands to).
func checkSubPath(sub string) error {
	if strings.HasPrefix(sub, "/") {
		return errors.New("must not be an absolute path")
	}
	for _, part := range strings.Split(sub, "/") {
		if part == ".." {
			return errors.New("must not contain '..'")
		}
	}
	return nil
}

// recursiveReadOnly resolves a mount's recursiveReadOnly as the kubelet:
// it needs a read-only mount without propagation; Enabled fails when the
// runtime cannot make it, IfPossible then falls back to a plain read-only
// mount.
func (s *Syncer) recursiveReadOnly(ctx context.Context, pod *v1.Pod, m v1.VolumeMount, readOnly bool) (bool, error) {
	if m.RecursiveReadOnly == nil || *m.RecursiveReadOnly == v1.RecursiveReadOnlyDisabled {
		return false, nil
	}
	if !readOnly {
		return false, fmt.Errorf("volume %q requested recursive read-only mode, but it is not read-only", m.Name)
	}
	if m.MountPropagation != nil && *m.MountPropagation != v1.MountPropagationNone {
		return false, fmt.Errorf("volume %q requested recursive read-only mode, but it is not compatible with propagation %q", m.Name, *m.MountPropagation)
	}
	supported := s.runtimeSupportsRRO(ctx, pod)
	switch *m.RecursiveReadOnly {
	case v1.RecursiveReadOnlyIfPossible:
		return supported, nil
	case v1.RecursiveReadOnlyEnabled:
		if !supported {
			return false, fmt.Errorf("volume %q requested recursive read-only mode, but it is not supported by the runtime", m.Name)
		}
		return true, nil
	}
	return false, fmt.Errorf("volume %q: unknown recursiveReadOnly mode %q", m.Name, *m.RecursiveReadOnly)
}

// runtimeSupportsRRO asks the runtime whether the handler of the pod's
// RuntimeClass (the default one without) makes recursive read-only mounts,
// as the kubelet's runtimeClassSupportsRecursiveReadOnlyMounts: no when
// the RuntimeClass or the handler is unknown. Only mounts that ask for one
// pay for it.
func (s *Syncer) runtimeSupportsRRO(ctx context.Context, pod *v1.Pod) bool {
	handler, err := s.runtimeHandler(pod)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Looking up the runtime handler")
		return false
	}
	st, err := s.runtime.Status(ctx, false)
	if err != nil {
		return false
	}
	for _, h := range st.GetRuntimeHandlers() {
		if h.GetName() == handler {
			return h.GetFeatures().GetRecursiveReadOnlyMounts()
		}
	}
	return false
}
