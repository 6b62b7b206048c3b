package podsync

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/cri"
	"github.com/nodeagent/nodeagent/podenv"
)

// containerConfig is the CRI config of one container instance.
func (s *Syncer) containerConfig(ctx context.Context, pod *v1.Pod, c *v1.Container, restartCount int32, imageRef string, sandbox *runtimeapi.PodSandbox) (*runtimeapi.ContainerConfig, error) {
	podIPs, err := s.sandboxIPsOf(ctx, sandbox.Id)
	if err != nil {
		return nil, err
	}
	podIP := ""
	if len(podIPs) > 0 {
		podIP = podIPs[0]
	}
	hostIP := ""
	if len(s.cfg.NodeIPs) > 0 {
		hostIP = s.cfg.NodeIPs[0].String()
	}
	env, err := s.env.Env(ctx, pod, c, podIP, podIPs, hostIP)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errConfig, err)
	}
	envMap := map[string]string{}
	var envs []*runtimeapi.KeyValue
	for _, e := range env {
		envs = append(envs, &runtimeapi.KeyValue{Key: e.Name, Value: []byte(e.Value)})
		envMap[e.Name] = e.Value
	}
	mounts, err := s.mounts(ctx, pod, c, podIP)
	if err != nil {
		return nil, err
	}
	annotations := map[string]string{
		cri.ContainerRestartCountAnnotation:             strconv.Itoa(int(restartCount)),
		cri.ContainerTerminationMessagePathAnnotation:   c.TerminationMessagePath,
		cri.ContainerTerminationMessagePolicyAnnotation: string(c.TerminationMessagePolicy),
	}
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		annotations[cri.PodTerminationGracePeriodAnnotation] = strconv.FormatInt(*g, 10)
	}
	cfg := &runtimeapi.ContainerConfig{
		Metadata:    &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: uint32(restartCount)},
		Image:       &runtimeapi.ImageSpec{Image: imageRef, UserSpecifiedImage: c.Image},
		Command:     expandAll(c.Command, envMap),
		Args:        expandAll(c.Args, envMap),
		WorkingDir:  c.WorkingDir,
		Envs:        envs,
		Mounts:      mounts,
		LogPath:     filepath.Join(c.Name, strconv.Itoa(int(restartCount))+".log"),
		Stdin:       c.Stdin,
		StdinOnce:   c.StdinOnce,
		Tty:         c.TTY,
		Labels:      cri.ContainerLabels(pod.Name, pod.Namespace, pod.UID, c.Name),
		Annotations: annotations,
		Linux:       s.containerLinux(pod, c),
	}
	return cfg, nil
}

// mounts are the container's volume mounts plus the files the kubelet
// manages: /etc/hosts and the termination message file.
//
// A subPath is resolved on the host, symbolic links included, and must stay
// inside its volume: a link planted in a shared volume that leads out is
// refused. The runtime resolves the path again when it mounts it, so a
// container that swaps a directory for a link in between can still win;
// the kubelet closes that window by bind-mounting the opened file
// descriptor, which is left to do here.
func (s *Syncer) mounts(ctx context.Context, pod *v1.Pod, c *v1.Container, podIP string) ([]*runtimeapi.Mount, error) {
	vols, fresh := s.podVolumePaths(pod.UID)
	if len(c.VolumeMounts) > 0 && !fresh {
		var err error
		if vols, err = s.volumes.Setup(ctx, pod); err != nil {
			return nil, fmt.Errorf("%w: volumes: %v", errConfig, err)
		}
	}
	var out []*runtimeapi.Mount
	hasHosts := false
	for _, m := range c.VolumeMounts {
		host, ok := vols[m.Name]
		if !ok {
			return nil, fmt.Errorf("%w: volume %q of mount %q not found", errConfig, m.Name, m.MountPath)
		}
		if m.SubPath != "" {
			sub := filepath.Clean(m.SubPath)
			if filepath.IsAbs(sub) || sub == ".." || strings.HasPrefix(sub, "../") {
				return nil, fmt.Errorf("%w: subPath %q of mount %q must be a relative path inside the volume", errConfig, m.SubPath, m.MountPath)
			}
			p, err := subPathWithin(host, sub)
			if err != nil {
				return nil, fmt.Errorf("%w: subPath %q of mount %q: %v", errConfig, m.SubPath, m.MountPath, err)
			}
			host = p
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
		out = append(out, &runtimeapi.Mount{ContainerPath: m.MountPath, HostPath: host, Readonly: m.ReadOnly, Propagation: prop, SelinuxRelabel: false})
	}
	if !hasHosts && !pod.Spec.HostNetwork {
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

// writeHosts writes the pod's /etc/hosts as the kubelet does.
func (s *Syncer) writeHosts(pod *v1.Pod, podIP string) (string, error) {
	dir := s.podDir(pod)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
	hostname := pod.Name
	if pod.Spec.Hostname != "" {
		hostname = pod.Spec.Hostname
	}
	if podIP != "" {
		if pod.Spec.Subdomain != "" && s.cfg.ClusterDomain != "" {
			fmt.Fprintf(&b, "%s\t%s.%s.%s.svc.%s\t%s\n", podIP, hostname, pod.Spec.Subdomain, pod.Namespace, s.cfg.ClusterDomain, hostname)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", podIP, hostname)
		}
	}
	for _, ha := range pod.Spec.HostAliases {
		fmt.Fprintf(&b, "\n# Entries added by HostAliases.\n%s\t%s\n", ha.IP, strings.Join(ha.Hostnames, "\t"))
	}
	p := filepath.Join(dir, "etc-hosts")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		return "", fmt.Errorf("write hosts file: %w", err)
	}
	return p, nil
}

// terminationFile creates the host file behind terminationMessagePath.
func (s *Syncer) terminationFile(pod *v1.Pod, c *v1.Container) (string, error) {
	dir := filepath.Join(s.podDir(pod), "containers", c.Name)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, "termination-")
	if err != nil {
		return "", fmt.Errorf("create termination message file: %w", err)
	}
	if err := f.Chmod(0o666); err != nil {
		f.Close()
		return "", err
	}
	return f.Name(), f.Close()
}

// linkLog makes the /var/log/containers symlink log shippers tail.
func (s *Syncer) linkLog(ctx context.Context, pod *v1.Pod, container, id, logPath string) {
	if s.cfg.ContainerLogs == "" {
		return
	}
	link := filepath.Join(s.cfg.ContainerLogs, fmt.Sprintf("%s_%s_%s-%s.log", pod.Name, pod.Namespace, container, id))
	target := filepath.Join(s.podLogDir(pod), logPath)
	if err := os.MkdirAll(s.cfg.ContainerLogs, 0o755); err == nil {
		_ = os.Remove(link)
		err = os.Symlink(target, link)
		if err == nil {
			return
		}
		klog.FromContext(ctx).Error(err, "Linking container log", "link", link)
	}
}

// expandAll expands $(VAR) references in command and args as the kubelet.
func expandAll(in []string, env map[string]string) []string {
	if in == nil {
		return nil
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = podenv.Expand(s, lookup)
	}
	return out
}

// subPathWithin returns root/sub, created as a directory if missing, after
// checking that it resolves (symbolic links followed) inside root.
func subPathWithin(root, sub string) (string, error) {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", err
	}
	within := func(p string) error {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return err
		}
		if rel, err := filepath.Rel(realRoot, real); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return fmt.Errorf("resolves to %s, outside the volume", real)
		}
		return nil
	}
	path := filepath.Join(root, sub)
	// The existing part must not lead outside before anything is created.
	existing := path
	for {
		if _, err := os.Lstat(existing); err == nil {
			break
		}
		existing = filepath.Dir(existing)
	}
	if err := within(existing); err != nil {
		return "", err
	}
	if existing != path {
		if err := os.MkdirAll(path, 0o750); err != nil {
			return "", fmt.Errorf("create: %w", err)
		}
	}
	if err := within(path); err != nil {
		return "", err
	}
	return path, nil
}
