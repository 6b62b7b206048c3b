package podsync

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/cni"
)

// Network sets up pod networks when the agent owns networking (package
// cni); nil when the runtime does.
type Network interface {
	Setup(ctx context.Context, pn cni.PodNetwork) (*cni.Result, error)
	Remove(ctx context.Context, pn cni.PodNetwork) error
	Check(ctx context.Context, pn cni.PodNetwork) error
	CachedResult(pn cni.PodNetwork) (*cni.Result, error)
	// CollectGarbage deletes the networks of sandboxes that are not in
	// sandboxes, listed from the runtime at listedAt.
	CollectGarbage(ctx context.Context, sandboxes map[string]bool, listedAt time.Time)
}

// agentNetwork reports whether the agent wires this sandbox's network.
func (s *Syncer) agentNetwork(hostNetwork bool) bool {
	return s.network != nil && !hostNetwork
}

// podNetwork describes a sandbox for the CNI plugins. pod may be nil (a
// sandbox of a pod the apiserver no longer has): DEL then relies on what
// libcni cached at ADD.
func (s *Syncer) podNetwork(ctx context.Context, sb sandboxRef, pod *v1.Pod, withNetNS bool) cni.PodNetwork {
	pn := cni.PodNetwork{Namespace: sb.namespace, Name: sb.name, UID: sb.uid, SandboxID: sb.id}
	if pod != nil {
		for _, pm := range portMappings(pod) {
			pn.PortMappings = append(pn.PortMappings, cni.PortMapping{
				HostPort: pm.HostPort, ContainerPort: pm.ContainerPort,
				Protocol: strings.ToLower(pm.Protocol.String()), HostIP: pm.HostIp,
			})
		}
		pn.IngressBandwidth = pod.Annotations[cni.IngressBandwidthAnnotation]
		pn.EgressBandwidth = pod.Annotations[cni.EgressBandwidthAnnotation]
		if s.cfg.PodCIDRs != nil {
			pn.PodCIDRs = s.cfg.PodCIDRs()
		}
	}
	if withNetNS {
		resp, err := s.runtime.PodSandboxStatus(ctx, sb.id, true)
		if err == nil {
			if path, closed, err := cni.NetNSPathFromSandboxInfo(resp.Info); err == nil && !closed {
				pn.NetNSPath = path
			}
		} else {
			klog.FromContext(ctx).V(2).Info("No sandbox status for its network namespace", "sandbox", sb.id, "err", err)
		}
	}
	return pn
}

// sandboxRef names a sandbox.
type sandboxRef struct{ id, namespace, name, uid string }

func refOf(sb *runtimeapi.PodSandbox) sandboxRef {
	md := sb.GetMetadata()
	return sandboxRef{id: sb.Id, namespace: md.GetNamespace(), name: md.GetName(), uid: md.GetUid()}
}

// setupNetwork finds or sets up the network of a new sandbox and remembers
// its IPs. containerd runs CNI inside RunPodSandbox whatever its config, so
// its conf dir holds the nodeagent-delegate plugin, which hands the ADD to
// the agent (package cni's Delegate): the IPs are then in the agent's CNI
// cache already, and the runtime must report the same address. A runtime
// that runs no CNI (no address, nothing cached) gets the ADD now. A runtime
// that wired a network of its own fails the sandbox with an event.
func (s *Syncer) setupNetwork(ctx context.Context, pod *v1.Pod, id string) error {
	resp, err := s.runtime.PodSandboxStatus(ctx, id, false)
	if err != nil {
		return fmt.Errorf("sandbox status: %w", err)
	}
	var runtimeIPs []string
	if n := resp.GetStatus().GetNetwork(); n != nil {
		if n.Ip != "" {
			runtimeIPs = append(runtimeIPs, n.Ip)
		}
		for _, ip := range n.AdditionalIps {
			runtimeIPs = append(runtimeIPs, ip.GetIp())
		}
	}
	ref := sandboxRef{id: id, namespace: pod.Namespace, name: pod.Name, uid: string(pod.UID)}
	var ips []string
	cached, err := s.network.CachedResult(cni.PodNetwork{Namespace: pod.Namespace, Name: pod.Name, UID: string(pod.UID), SandboxID: id})
	switch {
	case err == nil:
		// Delegated: the runtime ran the agent's ADD.
		ips = ipStrings(cached.IPs)
		if !subsetIPs(runtimeIPs, ips) {
			return s.doubleNetwork(pod, fmt.Sprintf("the runtime reports the address %s for sandbox %s but nodeagent's network gave it %s", strings.Join(runtimeIPs, ", "), id, strings.Join(ips, ", ")))
		}
	case !cni.IsNotSetUp(err):
		return fmt.Errorf("read the CNI cache: %w", err)
	case len(runtimeIPs) > 0:
		return s.doubleNetwork(pod, fmt.Sprintf("the runtime gave sandbox %s the address %s itself", id, strings.Join(runtimeIPs, ", ")))
	default:
		res, err := s.network.Setup(ctx, s.podNetwork(ctx, ref, pod, true))
		if err != nil {
			s.recorder.Eventf(pod, v1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to set up the pod network: %v", err)
			return fmt.Errorf("set up network: %w", err)
		}
		ips = ipStrings(res.IPs)
	}
	s.mu.Lock()
	s.sandboxIPs[id] = ips
	s.mu.Unlock()
	return nil
}

// doubleNetwork fails a sandbox that the runtime wired itself although the
// agent owns pod networking, with an event that names both fixes.
func (s *Syncer) doubleNetwork(pod *v1.Pod, what string) error {
	msg := what + " although nodeagent sets up pod networks (--network-plugin=cni): " +
		"start nodeagent with --network-plugin=runtime, or give the runtime a CNI conf dir that differs from nodeagent's " +
		"and holds only the nodeagent-delegate plugin (and loopback)"
	s.recorder.Event(pod, v1.EventTypeWarning, "FailedCreatePodSandBox", msg)
	return errors.New(msg)
}

// DelegatedPodNetwork is the cni.PodLookup of the delegate plugin: the host
// ports, bandwidth annotations and pod CIDRs of an active pod.
func (s *Syncer) DelegatedPodNetwork(ctx context.Context, namespace, name, uid string) (cni.PodNetwork, bool) {
	if s.cfg.ActivePods == nil {
		return cni.PodNetwork{}, false
	}
	for _, pod := range s.cfg.ActivePods() {
		if string(pod.UID) == uid {
			return s.podNetwork(ctx, sandboxRef{namespace: namespace, name: name, uid: uid}, pod, false), true
		}
	}
	return cni.PodNetwork{}, false
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	return out
}

// subsetIPs reports whether every address of sub is in set.
func subsetIPs(sub, set []string) bool {
	for _, a := range sub {
		ip := net.ParseIP(a)
		found := false
		for _, b := range set {
			if ip != nil && ip.Equal(net.ParseIP(b)) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// teardownNetwork runs the CNI DEL of a sandbox before it is stopped.
func (s *Syncer) teardownNetwork(ctx context.Context, sb *runtimeapi.PodSandbox, pod *v1.Pod) error {
	if s.network == nil || sb.GetMetadata() == nil {
		return nil
	}
	if pod != nil && pod.Spec.HostNetwork {
		return nil
	}
	s.mu.Lock()
	done := s.netDown[sb.Id]
	s.mu.Unlock()
	if done {
		return nil
	}
	if err := s.network.Remove(ctx, s.podNetwork(ctx, refOf(sb), pod, true)); err != nil {
		return fmt.Errorf("tear down network of sandbox %s: %w", sb.Id, err)
	}
	s.mu.Lock()
	s.netDown[sb.Id] = true
	s.mu.Unlock()
	return nil
}

// cachedIPs returns the IPs of a sandbox the agent set up before it
// restarted, from the CNI cache, after a CHECK.
func (s *Syncer) cachedIPs(ctx context.Context, sb sandboxRef) ([]string, bool) {
	if s.network == nil {
		return nil, false
	}
	pn := s.podNetwork(ctx, sb, nil, true)
	res, err := s.network.CachedResult(pn)
	if err != nil && !cni.IsNotSetUp(err) {
		// An unreadable cache entry (named in err): the sandbox runs on,
		// and its status keeps the addresses last reported.
		klog.FromContext(ctx).Error(err, "No pod IPs from the CNI cache for an adopted sandbox", "sandbox", sb.id)
		if errors.Is(err, cni.ErrUnreadableCache) {
			s.mu.Lock()
			s.unreadableCache[sb.id] = true
			s.mu.Unlock()
		}
	}
	if err != nil || res == nil {
		return nil, false
	}
	if err := s.network.Check(ctx, pn); err != nil {
		klog.FromContext(ctx).Error(err, "CNI CHECK of an adopted sandbox failed", "sandbox", sb.id)
	}
	return ipStrings(res.IPs), true
}
