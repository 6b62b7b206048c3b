package cni

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/cni/delegateapi"
)

// ifName is the pod's interface, as the kubelet named it.
const ifName = "eth0"

// teardownTimeout bounds a DEL that runs on a fresh context.
const teardownTimeout = time.Minute

// PodNetwork is what the plugins need to know about one pod sandbox.
type PodNetwork struct {
	Namespace, Name, UID string
	// SandboxID is the CNI container ID.
	SandboxID string
	// NetNSPath is the sandbox's network namespace, from the runtime.
	NetNSPath string
	// PortMappings are the pod's host ports.
	PortMappings []PortMapping
	// IngressBandwidth and EgressBandwidth are the values of the
	// kubernetes.io/ingress-bandwidth and egress-bandwidth annotations.
	IngressBandwidth, EgressBandwidth string
	// PodCIDRs are the Node's spec.podCIDRs, passed as ipRanges.
	PodCIDRs []string
}

// PortMapping is one host port of the pod.
type PortMapping struct {
	HostPort, ContainerPort int32
	// Protocol is tcp, udp or sctp; any case, tcp when empty.
	Protocol string
	HostIP   string
}

// Result is what Setup learnt about the pod's network.
type Result struct {
	// IPs are the pod's addresses, IPv4 first.
	IPs []net.IP
}

// Setup runs ADD of the loaded network config in the sandbox's namespace
// and returns the pod's IPs. When ADD fails, or its result has no pod IP,
// DEL runs on a fresh bounded context so that no address, interface or port
// mapping leaks.
func (m *Manager) Setup(ctx context.Context, pn PodNetwork) (*Result, error) {
	_, res, err := m.add(ctx, pn)
	return res, err
}

// add is Setup that also returns the raw result of the network config, for
// the delegate plugin to hand to the runtime.
func (m *Manager) add(ctx context.Context, pn PodNetwork) (_ types.Result, _ *Result, retErr error) {
	if pn.SandboxID == "" || pn.NetNSPath == "" {
		return nil, nil, fmt.Errorf("set up network of pod %s/%s: sandbox ID (%q) and network namespace (%q) are required", pn.Namespace, pn.Name, pn.SandboxID, pn.NetNSPath)
	}
	list, err := m.current()
	if err != nil {
		return nil, nil, err
	}
	caps, err := capabilityArgs(pn)
	if err != nil {
		return nil, nil, fmt.Errorf("set up network of pod %s/%s: %w", pn.Namespace, pn.Name, err)
	}
	rt := runtimeConf(pn, pn.NetNSPath)
	rt.CapabilityArgs = caps

	if err := m.recordIntent(list, rt); err != nil {
		return nil, nil, fmt.Errorf("set up network of pod %s/%s: %w", pn.Namespace, pn.Name, err)
	}
	defer func() {
		if retErr == nil {
			m.endIntent(pn.SandboxID, true)
			return
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
		defer cancel()
		err := m.del(dctx, list, rt)
		if err != nil {
			retErr = fmt.Errorf("%w (and the rollback failed: %w)", retErr, err)
		}
		m.endIntent(pn.SandboxID, err == nil)
	}()
	start := time.Now()
	res, err := m.cni.AddNetworkList(ctx, list, rt)
	m.metrics.observe(opAdd, start, err)
	if err != nil {
		return nil, nil, fmt.Errorf("add network %q to pod %s/%s (sandbox %s): %w", list.Name, pn.Namespace, pn.Name, pn.SandboxID, err)
	}
	out, err := toResult(res)
	if err != nil {
		return nil, nil, fmt.Errorf("add network %q to pod %s/%s (sandbox %s): %w", list.Name, pn.Namespace, pn.Name, pn.SandboxID, err)
	}
	klog.FromContext(ctx).V(4).Info("Set up pod network", "pod", klog.KRef(pn.Namespace, pn.Name), "sandbox", pn.SandboxID, "network", list.Name, "ips", out.IPs, "duration", time.Since(start))
	return res, out, nil
}

// Remove runs DEL for the sandbox, on a fresh context bounded by a minute
// whatever ctx is, so that teardown completes even when the caller's work
// was cancelled. Each attachment cached at ADD is deleted with the config
// and the CNI and capability args it was added with, whatever the conf dir
// holds now; without a cache entry the current config is used. A missing
// network namespace is passed as an empty path: DEL still runs and releases
// the IPAM address. With neither a cache entry nor a loaded config there is
// nothing to delete and Remove returns nil.
func (m *Manager) Remove(ctx context.Context, pn PodNetwork) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
	defer cancel()
	logger := klog.FromContext(ctx)
	atts, unreadable, err := m.attachments(pn.SandboxID)
	if err != nil {
		return fmt.Errorf("delete network of pod %s/%s (sandbox %s): %w", pn.Namespace, pn.Name, pn.SandboxID, err)
	}
	if len(unreadable) > 0 {
		logger.Info("Warning: ignoring unreadable CNI cache entries of the sandbox; deleting with what is readable or the current config",
			"pod", klog.KRef(pn.Namespace, pn.Name), "sandbox", pn.SandboxID, "files", unreadable)
	}
	if len(atts) == 0 {
		list, err := m.current()
		if err != nil {
			logger.V(2).Info("No cached attachment and no network config: nothing to delete", "pod", klog.KRef(pn.Namespace, pn.Name), "sandbox", pn.SandboxID)
			return nil
		}
		rt := runtimeConf(pn, existingNetNS(pn.NetNSPath))
		if caps, err := capabilityArgs(pn); err == nil {
			rt.CapabilityArgs = caps
		} else {
			rt.CapabilityArgs = map[string]any{capPortMappings: portMappingEntries(pn.PortMappings)}
		}
		atts = append(atts, attachment{list: list, rt: rt})
	}
	var errs []error
	for _, a := range atts {
		if err := m.del(ctx, a.list, a.rt); err != nil {
			errs = append(errs, fmt.Errorf("delete network %q of pod %s/%s (sandbox %s): %w", a.list.Name, pn.Namespace, pn.Name, pn.SandboxID, err))
			continue
		}
		logger.V(4).Info("Tore down pod network", "pod", klog.KRef(pn.Namespace, pn.Name), "sandbox", pn.SandboxID, "network", a.list.Name)
	}
	return errors.Join(errs...)
}

// Check runs CHECK with the config cached at ADD, for sandboxes adopted
// after an agent restart. It returns an error wrapping ErrNotSetUp when
// nothing is cached, and nil for configs older than CNI 0.4.0, which have no
// CHECK.
func (m *Manager) Check(ctx context.Context, pn PodNetwork) error {
	atts, unreadable, err := m.attachments(pn.SandboxID)
	if err != nil {
		return fmt.Errorf("check network of pod %s/%s (sandbox %s): %w", pn.Namespace, pn.Name, pn.SandboxID, err)
	}
	if len(atts) == 0 && len(unreadable) > 0 {
		return fmt.Errorf("check network of pod %s/%s (sandbox %s): %w", pn.Namespace, pn.Name, pn.SandboxID, unreadableError(unreadable))
	}
	if len(atts) == 0 {
		return fmt.Errorf("check network of pod %s/%s (sandbox %s): %w", pn.Namespace, pn.Name, pn.SandboxID, ErrNotSetUp)
	}
	for _, a := range atts {
		if pn.NetNSPath != "" {
			a.rt.NetNS = pn.NetNSPath
		}
		start := time.Now()
		err := m.cni.CheckNetworkList(ctx, a.list, a.rt)
		if errors.Is(err, libcni.ErrorCheckNotSupp) {
			continue
		}
		m.metrics.observe(opCheck, start, err)
		if err != nil {
			return fmt.Errorf("check network %q of pod %s/%s (sandbox %s): %w", a.list.Name, pn.Namespace, pn.Name, pn.SandboxID, err)
		}
	}
	return nil
}

// CachedResult returns the pod IPs cached at ADD without running any
// plugin: the IPs of an adopted sandbox after an agent restart, which the
// runtime does not know in this mode. It returns an error wrapping
// ErrNotSetUp when nothing is cached.
func (m *Manager) CachedResult(pn PodNetwork) (*Result, error) {
	atts, unreadable, err := m.attachments(pn.SandboxID)
	if err != nil {
		return nil, fmt.Errorf("cached network of sandbox %s: %w", pn.SandboxID, err)
	}
	if len(atts) == 0 && len(unreadable) > 0 {
		return nil, fmt.Errorf("cached network of sandbox %s: %w", pn.SandboxID, unreadableError(unreadable))
	}
	if len(atts) == 0 {
		return nil, fmt.Errorf("cached network of sandbox %s: %w", pn.SandboxID, ErrNotSetUp)
	}
	res, err := m.cni.GetNetworkListCachedResult(atts[0].list, atts[0].rt)
	if err != nil {
		return nil, fmt.Errorf("cached network %q of sandbox %s: %w", atts[0].list.Name, pn.SandboxID, err)
	}
	if res == nil {
		return nil, fmt.Errorf("cached network %q of sandbox %s: %w", atts[0].list.Name, pn.SandboxID, ErrNotSetUp)
	}
	return toResult(res)
}

func (m *Manager) del(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	start := time.Now()
	err := m.cni.DelNetworkList(ctx, list, rt)
	m.metrics.observe(opDel, start, err)
	return err
}

// attachment is one network of a sandbox as cached at ADD.
type attachment struct {
	list *libcni.NetworkConfigList
	rt   *libcni.RuntimeConf
}

// attachments reads the sandbox's cached attachments of the pod interface,
// whatever network name they were added under: the conf dir may name
// another network by now. It also returns the paths of the sandbox's cache
// entries of the pod interface that do not read or parse (truncated,
// half-written, garbage, not a file): libcni skips them without a word,
// and one bad entry must not hide the good ones, nor stop a teardown.
func (m *Manager) attachments(sandboxID string) ([]attachment, []string, error) {
	if sandboxID == "" {
		return nil, nil, errors.New("no sandbox ID")
	}
	cached, err := m.cni.GetCachedAttachments(sandboxID)
	if err != nil {
		return nil, nil, fmt.Errorf("read CNI cache %s: %w", m.resultsDir(), err)
	}
	var out []attachment
	read := map[string]bool{}
	var unreadable []string
	for _, c := range cached {
		if c.IfName != ifName {
			continue
		}
		read[m.cacheFile(c.Network, sandboxID)] = true
		list, err := libcni.ConfListFromBytes(c.Config)
		if err != nil {
			unreadable = append(unreadable, fmt.Sprintf("%s (config of network %q: %v)", m.cacheFile(c.Network, sandboxID), c.Network, err))
			continue
		}
		if isDelegate(list) {
			// The runtime's own cache, when it shares the cache dir:
			// deleting it would call back into the agent.
			continue
		}
		out = append(out, attachment{list: list, rt: &libcni.RuntimeConf{
			ContainerID:    c.ContainerID,
			NetNS:          existingNetNS(c.NetNS),
			IfName:         c.IfName,
			Args:           c.CniArgs,
			CapabilityArgs: c.CapabilityArgs,
		}})
	}
	// libcni names its entries <network>-<container ID>-<interface>.
	suffix := "-" + sandboxID + "-" + ifName
	entries, _ := os.ReadDir(m.resultsDir())
	for _, e := range entries {
		p := filepath.Join(m.resultsDir(), e.Name())
		if strings.HasSuffix(e.Name(), suffix) && len(e.Name()) > len(suffix) && !read[p] {
			unreadable = append(unreadable, p)
		}
	}
	return out, unreadable, nil
}

// resultsDir is where libcni caches what ADD was given and returned.
func (m *Manager) resultsDir() string { return filepath.Join(m.cfg.CacheDir, "results") }

// cacheFile is libcni's cache entry of the pod interface of a sandbox.
func (m *Manager) cacheFile(network, sandboxID string) string {
	return filepath.Join(m.resultsDir(), network+"-"+sandboxID+"-"+ifName)
}

// unreadableError says which cache entries of a sandbox could not be read.
func unreadableError(files []string) error {
	return fmt.Errorf("%w: %s", ErrUnreadableCache, strings.Join(files, ", "))
}

// isDelegate reports whether list runs the nodeagent-delegate plugin.
func isDelegate(list *libcni.NetworkConfigList) bool {
	for _, p := range list.Plugins {
		if p.Network != nil && p.Network.Type == delegateapi.PluginType {
			return true
		}
	}
	return false
}

// runtimeConf has the kubelet's CNI args.
func runtimeConf(pn PodNetwork, netns string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: pn.SandboxID,
		NetNS:       netns,
		IfName:      ifName,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", pn.Namespace},
			{"K8S_POD_NAME", pn.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", pn.SandboxID},
			{"K8S_POD_UID", pn.UID},
		},
	}
}

// existingNetNS returns path, or "" when it names nothing: the CNI spec's way
// to say that the namespace is gone.
func existingNetNS(path string) string {
	if path == "" {
		return ""
	}
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	return path
}

// toResult takes the addresses of the sandbox's interfaces (those of host
// side interfaces are left out), IPv4 first.
func toResult(res types.Result) (*Result, error) {
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("convert CNI result: %w", err)
	}
	var v4, v6 []net.IP
	seen := map[string]bool{}
	for _, ipc := range r.IPs {
		if ipc.Interface != nil {
			i := *ipc.Interface
			if i >= 0 && i < len(r.Interfaces) && r.Interfaces[i].Sandbox == "" {
				continue
			}
		}
		ip := ipc.Address.IP
		if ip == nil || seen[ip.String()] {
			continue
		}
		seen[ip.String()] = true
		if ip4 := ip.To4(); ip4 != nil {
			v4 = append(v4, ip4)
		} else {
			v6 = append(v6, ip)
		}
	}
	if len(v4)+len(v6) == 0 {
		return nil, errors.New("the CNI result has no pod IP")
	}
	return &Result{IPs: append(v4, v6...)}, nil
}
