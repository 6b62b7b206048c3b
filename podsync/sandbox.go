package podsync

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/cri"
	"github.com/nodeagent/nodeagent/podcgroups"
)

// podLogDir is the kubelet's log directory of a pod.
func (s *Syncer) podLogDir(pod *v1.Pod) string {
	return cri.PodLogDir(s.cfg.PodLogsDir, pod.Namespace, pod.Name, pod.UID)
}

func (s *Syncer) podDir(pod *v1.Pod) string {
	return filepath.Join(s.cfg.RootDir, "pods", string(pod.UID))
}

// startSandbox prepares the pod's volumes and runs a new sandbox, which it
// returns as the runtime lists it. Older sandboxes of the pod and their
// containers are stopped first. The volume paths are kept for the
// containers started in the same sync (forgetVolumePaths drops them).
func (s *Syncer) startSandbox(ctx context.Context, pod *v1.Pod, state *podState) (created *runtimeapi.PodSandbox, retErr error) {
	logger := klog.FromContext(ctx)
	for _, c := range state.containers {
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			if err := s.runtime.StopContainer(ctx, c.Id, 0); err != nil {
				return nil, fmt.Errorf("stop container %s of an old sandbox: %w", c.Id, err)
			}
		}
	}
	for _, sb := range state.sandboxes {
		if err := s.teardownNetwork(ctx, sb, pod); err != nil {
			return nil, err
		}
		if err := s.runtime.StopPodSandbox(ctx, sb.Id); err != nil {
			return nil, fmt.Errorf("stop old sandbox %s: %w", sb.Id, err)
		}
	}
	if len(state.sandboxes) > 0 {
		s.recorder.Event(pod, v1.EventTypeNormal, "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
	}
	volStart := time.Now()
	paths, err := s.volumes.Setup(ctx, pod)
	if err != nil {
		s.recorder.Eventf(pod, v1.EventTypeWarning, "FailedMount", "Unable to mount volumes: %v", err)
		return nil, fmt.Errorf("set up volumes: %w", err)
	}
	s.keepVolumePaths(pod.UID, paths)
	observePhase("volumes", volStart)
	// The RuntimeClass first, as the kubelet's generatePodSandboxConfig:
	// a missing one fails before the runtime is asked for anything.
	handler, err := s.runtimeHandler(pod)
	if err != nil {
		return nil, s.failedSandbox(pod, err)
	}
	if handler != "" {
		logger.V(2).Info("Running pod with runtime handler", "runtimeHandler", handler)
	}
	if err := s.makePodLogDir(pod); err != nil {
		return nil, fmt.Errorf("create pod log directory: %w", err)
	}
	cfg, err := s.sandboxConfig(pod, state.nextSandboxAttempt())
	if err != nil {
		return nil, err
	}
	s.hugetlbWarning(pod)
	if s.cfg.PodCgroups != nil {
		// The pod's cgroup and its limits before anything runs in it, as
		// the kubelet's EnsureExists.
		if err := s.cfg.PodCgroups.EnsurePod(s.cgroupParent(pod), pod, false); err != nil {
			s.recorder.Eventf(pod, v1.EventTypeWarning, "FailedCreatePodContainer", "unable to ensure pod container exists: %v", err)
			return nil, fmt.Errorf("create the pod's cgroup: %w", err)
		}
	}
	start := s.clock.Now()
	sbStart := time.Now()
	id, err := s.runtime.RunPodSandbox(ctx, cfg, handler)
	if err != nil {
		return nil, s.failedSandbox(pod, err)
	}
	observePhase("sandbox", sbStart)
	sandboxID := id
	defer func() {
		if retErr == nil {
			return
		}
		// Roll back on a fresh bounded context: the caller's may be done.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		ref := &runtimeapi.PodSandbox{Id: sandboxID, Metadata: cfg.Metadata}
		if err := s.teardownNetwork(cctx, ref, pod); err != nil {
			logger.Error(err, "Rolling back sandbox network", "sandbox", sandboxID)
		}
		if err := s.runtime.StopPodSandbox(cctx, sandboxID); err != nil {
			logger.Error(err, "Rolling back sandbox", "sandbox", sandboxID)
			return
		}
		if err := s.runtime.RemovePodSandbox(cctx, sandboxID); err != nil {
			logger.Error(err, "Rolling back sandbox", "sandbox", sandboxID)
		}
	}()
	if s.agentNetwork(pod.Spec.HostNetwork) {
		netStart := time.Now()
		if err := s.setupNetwork(ctx, pod, id); err != nil {
			return nil, err
		}
		observePhase("network", netStart)
	} else if _, err := s.sandboxIPsOf(ctx, id); err != nil {
		return nil, err
	}
	logger.V(2).Info("Started sandbox", "sandbox", id, "duration", s.clock.Since(start))
	return &runtimeapi.PodSandbox{
		Id: id, Metadata: cfg.Metadata, State: runtimeapi.PodSandboxState_SANDBOX_READY, CreatedAt: start.UnixNano(),
		Labels: cfg.Labels, Annotations: cfg.Annotations, RuntimeHandler: handler,
	}, nil
}

// failedSandbox reports a sandbox that could not be created as the
// kubelet: a FailedCreatePodSandBox event with the cause, and the sync's
// error a CreatePodSandboxError.
func (s *Syncer) failedSandbox(pod *v1.Pod, err error) error {
	s.recorder.Eventf(pod, v1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
	return fmt.Errorf("%w: failed to create sandbox for pod %s: %w", errCreatePodSandbox, klog.KObj(pod), err)
}

// keepVolumePaths remembers the volume paths of a pod for the rest of the
// sync that set the volumes up, so its containers need no second Setup.
func (s *Syncer) keepVolumePaths(uid types.UID, paths map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.volumePaths[uid] = paths
}

func (s *Syncer) forgetVolumePaths(uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.volumePaths, uid)
}

// podVolumePaths returns the paths kept by the current sync, if any.
func (s *Syncer) podVolumePaths(uid types.UID) (map[string]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.volumePaths[uid]
	return p, ok
}

// sandboxIPsOf returns the IPs of a sandbox, from the runtime once.
func (s *Syncer) sandboxIPsOf(ctx context.Context, id string) ([]string, error) {
	s.mu.Lock()
	ips, ok := s.sandboxIPs[id]
	s.mu.Unlock()
	if ok {
		return ips, nil
	}
	resp, err := s.runtime.PodSandboxStatus(ctx, id, false)
	if err != nil {
		return nil, fmt.Errorf("sandbox status: %w", err)
	}
	if s.network != nil {
		// A sandbox the agent wired before it restarted: its IPs are in
		// the CNI cache (the runtime does not know them).
		if cached, ok := s.cachedIPs(ctx, refOf(&runtimeapi.PodSandbox{Id: id, Metadata: resp.GetStatus().GetMetadata()})); ok {
			ips = cached
		}
	} else if n := resp.GetStatus().GetNetwork(); n != nil {
		if n.Ip != "" {
			ips = append(ips, n.Ip)
		}
		for _, ip := range n.AdditionalIps {
			ips = append(ips, ip.Ip)
		}
	}
	s.mu.Lock()
	s.sandboxIPs[id] = ips
	s.mu.Unlock()
	return ips, nil
}

func (s *Syncer) sandboxConfig(pod *v1.Pod, attempt uint32) (*runtimeapi.PodSandboxConfig, error) {
	hostname, domain, err := podHostname(pod, s.cfg.ClusterDomain)
	if err == nil {
		hostname, err = kernelHostname(pod, hostname, domain)
	}
	if err != nil {
		return nil, err
	}
	if pod.Spec.HostNetwork {
		// As the kubelet: no hostname for a pod in the node's network (and
		// UTS) namespace. The runtime writes the node's own into
		// /etc/hostname; with one set, runc refuses the sandbox ("unable to
		// set hostname without a private UTS namespace").
		hostname = ""
	}
	dns, err := s.dnsConfig(pod)
	if err != nil {
		return nil, err
	}
	annotations := map[string]string{}
	for k, v := range pod.Annotations {
		annotations[k] = v
	}
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name: pod.Name, Namespace: pod.Namespace, Uid: string(pod.UID), Attempt: attempt,
		},
		Hostname:     hostname,
		LogDirectory: s.podLogDir(pod),
		DnsConfig:    dns,
		PortMappings: portMappings(pod),
		Labels:       cri.PodLabels(pod.Labels, pod.Name, pod.Namespace, pod.UID),
		Annotations:  annotations,
		Linux:        s.sandboxLinux(pod),
	}
	return cfg, nil
}

func portMappings(pod *v1.Pod) []*runtimeapi.PortMapping {
	var out []*runtimeapi.PortMapping
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			proto := runtimeapi.Protocol_TCP
			switch p.Protocol {
			case v1.ProtocolUDP:
				proto = runtimeapi.Protocol_UDP
			case v1.ProtocolSCTP:
				proto = runtimeapi.Protocol_SCTP
			}
			out = append(out, &runtimeapi.PortMapping{Protocol: proto, ContainerPort: p.ContainerPort, HostPort: p.HostPort, HostIp: p.HostIP})
		}
	}
	return out
}

// sandboxLinux is the sandbox's security context as the kubelet sets it:
// the pod's user, group, supplemental groups and SELinux options, always
// the RuntimeDefault seccomp profile (the containers carry their own),
// privileged when any container of the pod is, and the pod's sysctls,
// which admission checked (sysctl.go).
func (s *Syncer) sandboxLinux(pod *v1.Pod) *runtimeapi.LinuxPodSandboxConfig {
	sc := &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: namespaceOptions(pod),
		Privileged:       hasPrivilegedContainer(pod),
		Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
	}
	psc := pod.Spec.SecurityContext
	if psc != nil {
		if psc.RunAsUser != nil {
			sc.RunAsUser = &runtimeapi.Int64Value{Value: *psc.RunAsUser}
		}
		// The kubelet passes a group without a user too, and containerd
		// then fails every sandbox of the pod ("user group is specified
		// without user"). The pause process owns no files: it keeps its
		// image's user, and the containers get the group (security.go).
		if psc.RunAsGroup != nil && psc.RunAsUser != nil {
			sc.RunAsGroup = &runtimeapi.Int64Value{Value: *psc.RunAsGroup}
		}
		sc.SelinuxOptions = selinuxOptions(psc.SELinuxOptions)
	}
	sc.SupplementalGroups, sc.SupplementalGroupsPolicy = supplementalGroups(psc)
	return &runtimeapi.LinuxPodSandboxConfig{
		CgroupParent:    s.cgroupParent(pod),
		SecurityContext: sc,
		Sysctls:         sandboxSysctls(pod),
	}
}

func namespaceOptions(pod *v1.Pod) *runtimeapi.NamespaceOption {
	ns := &runtimeapi.NamespaceOption{
		Network: runtimeapi.NamespaceMode_POD,
		Pid:     runtimeapi.NamespaceMode_CONTAINER,
		Ipc:     runtimeapi.NamespaceMode_POD,
	}
	if pod.Spec.HostNetwork {
		ns.Network = runtimeapi.NamespaceMode_NODE
	}
	if pod.Spec.HostPID {
		ns.Pid = runtimeapi.NamespaceMode_NODE
	} else if pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace {
		ns.Pid = runtimeapi.NamespaceMode_POD
	}
	if pod.Spec.HostIPC {
		ns.Ipc = runtimeapi.NamespaceMode_NODE
	}
	return ns
}

// PodCgroup is the path of the pod's cgroup below the hierarchy's root,
// as cAdvisor names it in its id label: the cgroup parent for cgroupfs,
// the systemd slice expanded into its parents for systemd
// (/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid>.slice).
func (s *Syncer) PodCgroup(pod *v1.Pod) string {
	parent := s.cgroupParent(pod)
	if s.cfg.CgroupDriver != "systemd" || !strings.HasSuffix(parent, ".slice") {
		return parent
	}
	unit := strings.TrimSuffix(parent, ".slice")
	path := ""
	for i := range unit {
		if unit[i] == '-' {
			path += "/" + unit[:i] + ".slice"
		}
	}
	return path + "/" + parent
}

// ensurePodCgroup writes the limits of the running pod's cgroup again
// after a resize; a failure is logged and tried at the next sync.
func (s *Syncer) ensurePodCgroup(ctx context.Context, pod *v1.Pod, growOnly bool) {
	if s.cfg.PodCgroups == nil {
		return
	}
	if err := s.cfg.PodCgroups.EnsurePod(s.cgroupParent(pod), pod, growOnly); err != nil {
		klog.FromContext(ctx).Error(err, "Updating the pod's cgroup")
	}
}

// cgroupParent is the pod's cgroup as the kubelet names it:
// <root>/kubepods[/<qos>]/pod<uid> for cgroupfs, the matching slices for
// systemd.
func (s *Syncer) cgroupParent(pod *v1.Pod) string {
	if !s.cfg.CgroupsPerQOS {
		return s.cfg.CgroupRoot
	}
	if s.cfg.CgroupDriver == "systemd" {
		// kubepods-burstable-pod<uid>.slice, '-' in the UID becomes '_'.
		name := "kubepods"
		switch qosClass(pod) {
		case v1.PodQOSBurstable:
			name += "-burstable"
		case v1.PodQOSBestEffort:
			name += "-besteffort"
		}
		return name + "-pod" + strings.ReplaceAll(string(pod.UID), "-", "_") + ".slice"
	}
	return podcgroups.PodPath(s.cfg.CgroupRoot, qosClass(pod), pod.UID)
}
