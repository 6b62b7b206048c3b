// Package cni sets up pod networks with the CNI plugins, through libcni,
// the way the kubelet's dockershim did: the container runtime creates the
// sandbox and its network namespace, and nodeagent, not the runtime, runs
// the plugins in it, when the runtime asks for it through the delegate
// plugin (see below) or after RunPodSandbox for a runtime that runs no CNI.
//
// # Configuration
//
// A Manager reads the CNI conf dir (--cni-conf-dir, /etc/cni/net.d by
// default) and uses the first file in lexical order, among *.conf,
// *.conflist and *.json, that parses as a network config list; a single
// plugin's .conf is wrapped into a list. Files before it that do not parse
// are named in a warning. The chosen list is validated by asking each plugin
// for its VERSION: a plugin missing from the bin dirs (--cni-bin-dir), or one
// that does not support the list's cniVersion, makes the config unusable.
// The Debian plugins in /usr/lib/cni are 1.1.1, so configs say cniVersion
// 1.0.0 or lower. Watch reloads on changes (fsnotify, with a two-second poll
// as the safety net, and retries while the config is unusable so that
// plugins installed late are seen). Status reports nil while a usable
// config is loaded and otherwise an error wrapping ErrNotReady with the
// reason, which becomes the runtime's NetworkReady=false and the Node's
// Ready=false message.
//
// # Pod networks
//
// Setup runs ADD with the kubelet's CNI args (IgnoreUnknown=1,
// K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_INFRA_CONTAINER_ID, K8S_POD_UID)
// on interface eth0, and the capability args that the plugins declaring them
// receive in runtimeConfig: portMappings from the pod's host ports,
// bandwidth from the kubernetes.io/ingress-bandwidth and egress-bandwidth
// annotations (bits per second, burst math.MaxInt32 as the kubelet set it)
// and ipRanges from the Node's pod CIDRs, one range set per family. The pod
// IPs of the result, IPv4 first, go into the pod status. If ADD fails, DEL
// runs at once on a fresh context bounded by a minute, so that nothing
// leaks even when the caller's context was cancelled: containerd and cri-o
// both leaked pod IPs when teardown ran on a cancelled context.
//
// libcni caches each successful ADD (config, args and result) under the
// cache dir (--cni-cache-dir). Remove runs DEL with that cached config and
// those args, not whatever the conf dir holds by then, so that the address,
// the veth and the portmap chains of the ADD are released; it reads every
// cached attachment of the sandbox, whatever its network is called now.
// Without a cache entry it falls back to the current config. It always runs
// on a fresh bounded context, and a network namespace that is gone is passed
// as an empty path, so DEL still releases the IPAM address. Check runs CHECK
// with the cached config for sandboxes adopted after an agent restart, and
// CachedResult returns their IPs without running any plugin.
//
// # Delegation from the runtime
//
// containerd's CRI RunPodSandbox always runs CNI for a sandbox off the host
// network and fails unless the result has an eth0 with an address, so the
// ADD cannot simply follow RunPodSandbox. The runtime's own conf dir holds
// one network whose only plugin is nodeagent-delegate (cmd/nodeagent-cni),
// and lo is brought up by containerd itself (use_internal_loopback). The
// plugin forwards ADD, DEL and CHECK over <root-dir>/cni.sock (package
// delegateapi) to a Delegate (ListenDelegate, Serve), which runs them here:
// ADD is Setup with the pod from CNI_ARGS, its host ports and bandwidth
// annotations from the agent's PodLookup, and answers with the network's
// result, whose eth0 carries the pod IPs; DEL is Remove when something is
// cached and a quiet success otherwise (the agent's own DEL before
// StopPodSandbox came first); CHECK is Check. After RunPodSandbox the agent
// takes the IPs from CachedResult. A cached attachment of the delegate
// network itself (the runtime's cache, should it share the cache dir) is
// never the agent's: DEL of it would call back into the agent.
//
// # Runtime network
//
// RuntimeHasRealNetwork reads containerd's verbose CRI Status to tell
// whether the runtime would set up a real network of its own (any plugin
// other than loopback and nodeagent-delegate), which must not happen while
// nodeagent owns pod networking; NetNSPathFromSandboxInfo finds a sandbox's network namespace
// in containerd's verbose PodSandboxStatus.
//
// # Metrics
//
// Collectors returns the ADD, DEL and CHECK duration histogram and error
// counter for the caller to register.
package cni
