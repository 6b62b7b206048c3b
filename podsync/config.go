package podsync

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/cri"
	"github.com/nodeagent/nodeagent/podenv"
)

// containerConfig is the CRI config of one container instance; images are
// the pulled images of the image volumes c mounts (imageVolumes).
func (s *Syncer) containerConfig(ctx context.Context, pod *v1.Pod, c *v1.Container, restartCount int32, imageRef string, images map[string]*runtimeapi.ImageSpec, sandbox *runtimeapi.PodSandbox) (*runtimeapi.ContainerConfig, error) {
	podIPs, err := s.sandboxIPsOf(ctx, sandbox.Id)
	if err != nil {
		return nil, err
	}
	if pod.Spec.HostNetwork && len(s.cfg.NodeIPs) > 0 {
		// A hostNetwork pod's IPs are the node's (the runtime reports
		// none), as the kubelet gives status.podIP(s) to its containers.
		podIPs = hostNetworkPodIPs(s.cfg.NodeIPs)
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
		return nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	user, err := s.checkContainerSecurity(ctx, pod, c)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	envMap := map[string]string{}
	var envs []*runtimeapi.KeyValue
	for _, e := range env {
		envs = append(envs, &runtimeapi.KeyValue{Key: e.Name, Value: []byte(e.Value)})
		envMap[e.Name] = e.Value
	}
	mounts, err := s.mounts(ctx, pod, c, podIP, envMap, images)
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
		Linux:       s.containerLinux(pod, c, user),
	}
	if c.Lifecycle != nil && c.Lifecycle.StopSignal != nil {
		sig, ok := runtimeapi.Signal_value[string(*c.Lifecycle.StopSignal)]
		if !ok {
			return nil, fmt.Errorf("%w: unknown lifecycle.stopSignal %q", errConfig, *c.Lifecycle.StopSignal)
		}
		cfg.StopSignal = runtimeapi.Signal(sig)
	}
	if err := s.ephemeralConfig(ctx, pod, c, cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// nodeHostsFile is the node's hosts file, which a hostNetwork pod's
// /etc/hosts copies.
var nodeHostsFile = "/etc/hosts"

// maxNodeHostsFile bounds what is read of the node's hosts file.
const maxNodeHostsFile = 1 << 20

// writeHosts writes the pod's /etc/hosts as the kubelet does
// (ensureHostsFile): for a hostNetwork pod the node's hosts file under its
// own header, for the others a managed file with the pod's IP and
// hostname; then the hostAliases, under one header.
func (s *Syncer) writeHosts(pod *v1.Pod, podIP string) (string, error) {
	dir := s.podDir(pod)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	var b strings.Builder
	if pod.Spec.HostNetwork {
		node, err := readBounded(nodeHostsFile, maxNodeHostsFile)
		if err != nil {
			return "", fmt.Errorf("read the node's hosts file: %w", err)
		}
		b.WriteString("# Kubernetes-managed hosts file (host network).\n")
		b.Write(node)
	} else {
		b.WriteString("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
		hostname, domain, err := podHostname(pod, s.cfg.ClusterDomain)
		if err != nil {
			return "", err
		}
		if podIP != "" {
			if domain != "" && s.cfg.ClusterDomain != "" {
				fmt.Fprintf(&b, "%s\t%s.%s\t%s\n", podIP, hostname, domain, hostname)
			} else {
				fmt.Fprintf(&b, "%s\t%s\n", podIP, hostname)
			}
		}
	}
	if len(pod.Spec.HostAliases) > 0 {
		b.WriteString("\n# Entries added by HostAliases.\n")
		for _, ha := range pod.Spec.HostAliases {
			fmt.Fprintf(&b, "%s\t%s\n", ha.IP, strings.Join(ha.Hostnames, "\t"))
		}
	}
	p := filepath.Join(dir, "etc-hosts")
	// Written in place (running containers have this file mounted), but
	// never through a link found in its place: the error names it.
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return "", fmt.Errorf("write hosts file: %w", err)
	}
	_, err = f.WriteString(b.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("write hosts file %s: %w", p, err)
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
		_ = f.Close() // empty, and the Chmod error is the one to report
		_ = os.Remove(f.Name())
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

// readBounded reads at most limit bytes of the file at path (a file of
// the node, not of a pod).
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close() //nolint:errcheck // read only
	return io.ReadAll(io.LimitReader(f, limit))
}

// hostNetworkPodIPs are the IPs of a hostNetwork pod: the node's first IP
// and, on a dual-stack node, its first of the other family (the kubelet's
// generateAPIPodStatus).
func hostNetworkPodIPs(nodeIPs []net.IP) []string {
	out := []string{nodeIPs[0].String()}
	for _, ip := range nodeIPs[1:] {
		if (ip.To4() == nil) != (nodeIPs[0].To4() == nil) {
			return append(out, ip.String())
		}
	}
	return out
}
