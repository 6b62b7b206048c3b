package cni

import (
	"strings"
	"testing"
)

// harnessCNIConfig is what containerd 2.2 returned in its verbose Status for
// a conf dir with a bridge network: its built-in loopback network first.
const harnessCNIConfig = `{"PluginDirs":["/usr/lib/cni"],"PluginConfDir":"/var/lib/nodeagent-harness/cni/net.d","PluginMaxConfNum":1,"Prefix":"eth","Networks":[{"Config":{"Name":"cni-loopback","CNIVersion":"0.3.1","Plugins":[{"Network":{"ipam":{},"type":"loopback"},"Source":"{\"type\":\"loopback\"}"}],"Source":"{\n\"cniVersion\": \"0.3.1\",\n\"name\": \"cni-loopback\",\n\"plugins\": [{\n  \"type\": \"loopback\"\n}]\n}"},"IFName":"lo"},{"Config":{"Name":"nodeagent-harness","CNIVersion":"1.0.0","Plugins":[{"Network":{"ipam":{"type":"host-local"},"type":"bridge"},"Source":"{\"bridge\":\"nacni0\",\"hairpinMode\":true,\"ipMasq\":false,\"ipam\":{\"ranges\":[[{\"subnet\":\"198.18.0.0/24\"}]],\"routes\":[{\"dst\":\"0.0.0.0/0\"}],\"type\":\"host-local\"},\"isGateway\":true,\"type\":\"bridge\"}"},{"Network":{"capabilities":{"portMappings":true},"ipam":{},"type":"portmap"},"Source":"{\"capabilities\":{\"portMappings\":true},\"type\":\"portmap\"}"}],"Source":"{}"},"IFName":"eth0"}]}`

// loopbackOnlyCNIConfig is the same runtime with a loopback-only conf dir.
const loopbackOnlyCNIConfig = `{"PluginDirs":["/usr/lib/cni"],"PluginConfDir":"/etc/containerd/cni-loopback","PluginMaxConfNum":1,"Prefix":"eth","Networks":[{"Config":{"Name":"cni-loopback","CNIVersion":"0.3.1","Plugins":[{"Network":{"ipam":{},"type":"loopback"},"Source":"{\"type\":\"loopback\"}"}],"Source":"{}"},"IFName":"lo"},{"Config":{"Name":"loopback","CNIVersion":"1.0.0","Plugins":[{"Network":{"ipam":{},"type":"loopback"},"Source":"{\"type\":\"loopback\"}"}],"Source":"{}"},"IFName":"eth0"}]}`

// delegateOnlyCNIConfig is the same runtime whose conf dir hands pod
// networking to the agent.
const delegateOnlyCNIConfig = `{"PluginDirs":["/usr/lib/cni"],"PluginConfDir":"/var/lib/nodeagent-harness/cni/runtime.d","PluginMaxConfNum":1,"Prefix":"eth","Networks":[{"Config":{"Name":"nodeagent","CNIVersion":"1.0.0","Plugins":[{"Network":{"ipam":{},"type":"nodeagent-delegate"},"Source":"{}"}],"Source":"{}"},"IFName":"eth0"}]}`

func TestRuntimeHasRealNetwork(t *testing.T) {
	tests := []struct {
		name     string
		info     map[string]string
		want     bool
		wantMsgs []string
	}{
		{
			name: "bridge network",
			info: map[string]string{"cniconfig": harnessCNIConfig, "lastCNILoadStatus": "OK"},
			want: true,
			wantMsgs: []string{
				"--network-plugin=runtime", "nodeagent-delegate", "--cni-conf-dir",
				"/var/lib/nodeagent-harness/cni/net.d", `"nodeagent-harness" (bridge, portmap)`,
			},
		},
		{name: "loopback only", info: map[string]string{"cniconfig": loopbackOnlyCNIConfig}},
		{name: "delegate only", info: map[string]string{"cniconfig": delegateOnlyCNIConfig}},
		{name: "no networks", info: map[string]string{"cniconfig": `{"PluginConfDir":"/etc/cni/net.d","Networks":null}`}},
		{name: "no cniconfig", info: map[string]string{"config": "{}"}, wantMsgs: []string{"reports no CNI config"}},
		{name: "nil info", wantMsgs: []string{"reports no CNI config"}},
		{name: "garbage", info: map[string]string{"cniconfig": "{"}, wantMsgs: []string{"cannot parse"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, msg := RuntimeHasRealNetwork(tc.info)
			if got != tc.want {
				t.Errorf("RuntimeHasRealNetwork = %v (%s), want %v", got, msg, tc.want)
			}
			if len(tc.wantMsgs) == 0 && msg != "" {
				t.Errorf("message = %q, want none", msg)
			}
			for _, s := range tc.wantMsgs {
				if !strings.Contains(msg, s) {
					t.Errorf("message %q does not contain %q", msg, s)
				}
			}
		})
	}
}

func TestNetNSPathFromSandboxInfo(t *testing.T) {
	tests := []struct {
		name       string
		info       string
		wantPath   string
		wantClosed bool
		wantErr    bool
	}{
		{
			name:     "metadata",
			info:     `{"pid":42,"processStatus":"running","netNamespaceClosed":false,"sandboxMetadata":{"Version":"v1","Metadata":{"ID":"abc","NetNSPath":"/var/run/netns/cni-1234"}},"runtimeSpec":{"linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/var/run/netns/cni-1234"}]}}}`,
			wantPath: "/var/run/netns/cni-1234",
		},
		{
			name:       "runtime spec only, closed",
			info:       `{"netNamespaceClosed":true,"runtimeSpec":{"linux":{"namespaces":[{"type":"ipc"},{"type":"network","path":"/var/run/netns/cni-5"}]}}}`,
			wantPath:   "/var/run/netns/cni-5",
			wantClosed: true,
		},
		{name: "host network", info: `{"sandboxMetadata":{"Version":"v1","Metadata":{"ID":"abc"}},"runtimeSpec":{"linux":{"namespaces":[{"type":"pid"}]}}}`},
		{name: "garbage", info: `[`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path, closed, err := NetNSPathFromSandboxInfo(map[string]string{"info": tc.info})
			if (err != nil) != tc.wantErr || path != tc.wantPath || closed != tc.wantClosed {
				t.Errorf("= %q, %v, %v; want %q, %v, error %v", path, closed, err, tc.wantPath, tc.wantClosed, tc.wantErr)
			}
		})
	}
	if _, _, err := NetNSPathFromSandboxInfo(nil); err == nil {
		t.Error("no error without info")
	}
}

func FuzzRuntimeHasRealNetwork(f *testing.F) {
	f.Add(harnessCNIConfig)
	f.Add(loopbackOnlyCNIConfig)
	f.Fuzz(func(t *testing.T, s string) {
		if real, msg := RuntimeHasRealNetwork(map[string]string{"cniconfig": s}); real && msg == "" {
			t.Error("a real network without a message")
		}
	})
}
