package cni

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nodeagent/nodeagent/cni/delegateapi"
)

// runtimeCNIConfig is the part of containerd's verbose Status info
// "cniconfig" (go-cni's ConfigResult) that says which plugins the runtime
// would run for a sandbox.
type runtimeCNIConfig struct {
	PluginConfDir string
	Networks      []struct {
		Config struct {
			Name    string
			Plugins []struct {
				Network struct {
					Type string `json:"type"`
				}
			}
		}
		IFName string
	}
}

// RuntimeHasRealNetwork reads the runtime's own CNI config from its verbose
// CRI Status info (containerd's "cniconfig" key) and reports whether the
// runtime would set up a real pod network too: any network with a plugin
// other than loopback and nodeagent-delegate. containerd always lists its
// built-in "cni-loopback" network, and a conf dir whose network only hands
// the work to nodeagent (the nodeagent-delegate plugin) is what a runtime
// under an agent-owned network should have. When true, the message names the
// runtime's networks and both fixes. When false, the message is empty, or
// says why the runtime's config could not be read (a runtime other than
// containerd): worth logging, not fatal.
func RuntimeHasRealNetwork(statusInfo map[string]string) (bool, string) {
	raw, ok := statusInfo["cniconfig"]
	if !ok || raw == "" || raw == "null" {
		return false, `the runtime reports no CNI config ("cniconfig" in its verbose status): cannot check that it leaves pod networking to nodeagent`
	}
	var cfg runtimeCNIConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		return false, fmt.Sprintf("cannot parse the runtime's CNI config (%q in its verbose status): %v", "cniconfig", err)
	}
	var real []string
	for _, n := range cfg.Networks {
		var types []string
		loopbackOnly := true
		for _, p := range n.Config.Plugins {
			types = append(types, p.Network.Type)
			if p.Network.Type != "loopback" && p.Network.Type != delegateapi.PluginType {
				loopbackOnly = false
			}
		}
		if !loopbackOnly {
			real = append(real, fmt.Sprintf("%q (%s)", n.Config.Name, strings.Join(types, ", ")))
		}
	}
	if len(real) == 0 {
		return false, ""
	}
	dir := cfg.PluginConfDir
	if dir == "" {
		dir = "its CNI conf dir"
	}
	return true, fmt.Sprintf("the container runtime would set up pod networks itself: its CNI config in %s has network %s, so pods would get two networks. "+
		"Either run nodeagent with --network-plugin=runtime to leave pod networking to the runtime, "+
		"or give the runtime a CNI conf dir that differs from nodeagent's --cni-conf-dir and holds only a network that hands pod networking to nodeagent "+
		`(for example {"cniVersion": "1.0.0", "name": "nodeagent", "plugins": [{"type": "nodeagent-delegate", "socket": "<root-dir>/cni.sock"}]}, `+
		"with the nodeagent-cni binary installed as nodeagent-delegate in the runtime's CNI bin dir) and restart it",
		dir, strings.Join(real, ", "))
}

// sandboxInfo is the part of containerd's verbose PodSandboxStatus info
// ("info" key) that locates the network namespace.
type sandboxInfo struct {
	NetNSClosed     bool `json:"netNamespaceClosed"`
	SandboxMetadata struct {
		Metadata struct {
			NetNSPath string
		}
	} `json:"sandboxMetadata"`
	RuntimeSpec struct {
		Linux struct {
			Namespaces []struct {
				Type string `json:"type"`
				Path string `json:"path"`
			} `json:"namespaces"`
		} `json:"linux"`
	} `json:"runtimeSpec"`
}

// NetNSPathFromSandboxInfo returns the network namespace path of a sandbox
// from containerd's verbose PodSandboxStatus info: the "info" key's
// sandboxMetadata.Metadata.NetNSPath, else the path of the network namespace
// in runtimeSpec.linux.namespaces. The path is empty for a host network
// sandbox. closed is containerd's netNamespaceClosed: the namespace is gone.
func NetNSPathFromSandboxInfo(info map[string]string) (path string, closed bool, err error) {
	raw, ok := info["info"]
	if !ok {
		return "", false, fmt.Errorf(`no "info" in the sandbox's verbose status`)
	}
	var si sandboxInfo
	if err := json.Unmarshal([]byte(raw), &si); err != nil {
		return "", false, fmt.Errorf("parse the sandbox's verbose status info: %w", err)
	}
	if p := si.SandboxMetadata.Metadata.NetNSPath; p != "" {
		return p, si.NetNSClosed, nil
	}
	for _, ns := range si.RuntimeSpec.Linux.Namespaces {
		if ns.Type == "network" {
			return ns.Path, si.NetNSClosed, nil
		}
	}
	return "", si.NetNSClosed, nil
}
