package configs

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	goodHost(t)
	file := writeFile(t, header+"containerRuntimeEndpoint: unix:///run/crio/crio.sock\npodLogsDir: /logs\nport: 11250\n")
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(*testing.T, *Options)
	}{
		{name: "no flags", args: nil, check: func(t *testing.T, o *Options) {
			if o.NodeName != "node-1" {
				t.Errorf("NodeName = %q, want trimmed lowercased host name", o.NodeName)
			}
			if o.RootDir != DefaultRootDir || o.NetworkPlugin != "cni" || o.DeclareWebSocketStreaming || o.CNIConfDir != DefaultCNIConfDir || o.CNIBinDir != DefaultCNIBinDir || o.CNICacheDir != DefaultCNICacheDir {
				t.Errorf("flag defaults wrong: %+v", o)
			}
			if o.ContainerRuntimeEndpoint != DefaultContainerRuntimeEndpoint || o.ImageServiceEndpoint != DefaultContainerRuntimeEndpoint {
				t.Errorf("endpoints = %q, %q", o.ContainerRuntimeEndpoint, o.ImageServiceEndpoint)
			}
			c := o.Config
			if *c.Authentication.Anonymous.Enabled || c.Authorization.Mode != "Webhook" || c.ReadOnlyPort != 0 {
				t.Errorf("secure defaults not applied without --config")
			}
			if o.PodLogsDir != "/var/log/pods" {
				t.Errorf("PodLogsDir = %q", o.PodLogsDir)
			}
		}},
		{name: "config file", args: []string{"--config", file}, check: func(t *testing.T, o *Options) {
			if o.ContainerRuntimeEndpoint != "unix:///run/crio/crio.sock" || o.PodLogsDir != "/logs" || o.Config.Port != 11250 {
				t.Errorf("config not honoured: %+v", o)
			}
		}},
		{name: "flag overrides file", args: []string{"--config=" + file, "--container-runtime-endpoint=unix:///x.sock", "--image-service-endpoint=unix:///y.sock"},
			check: func(t *testing.T, o *Options) {
				if o.ContainerRuntimeEndpoint != "unix:///x.sock" || o.Config.ContainerRuntimeEndpoint != "unix:///x.sock" {
					t.Errorf("runtime endpoint = %q / %q", o.ContainerRuntimeEndpoint, o.Config.ContainerRuntimeEndpoint)
				}
				if o.ImageServiceEndpoint != "unix:///y.sock" {
					t.Errorf("image endpoint = %q", o.ImageServiceEndpoint)
				}
			}},
		{name: "identity flags", args: []string{"--hostname-override=Worker-A", "--node-ip=10.0.0.5,fd00::5", "--node-labels=a=b,example.com/c=d", "--root-dir=/r", "--kubeconfig=/k", "--network-plugin=runtime", "-v=4"},
			check: func(t *testing.T, o *Options) {
				if o.NodeName != "worker-a" || o.RootDir != "/r" || o.KubeconfigPath != "/k" || o.NetworkPlugin != "runtime" {
					t.Errorf("flags not honoured: %+v", o)
				}
				if len(o.NodeIPs) != 2 || !o.NodeIPs[0].Equal(net.ParseIP("10.0.0.5")) || o.NodeIP != "10.0.0.5,fd00::5" {
					t.Errorf("NodeIPs = %v", o.NodeIPs)
				}
				if o.NodeLabels["a"] != "b" || o.NodeLabels["example.com/c"] != "d" {
					t.Errorf("NodeLabels = %v", o.NodeLabels)
				}
			}},
		{name: "streaming flags", args: []string{"--declare-websocket-streaming", "--redirect-container-streaming"},
			check: func(t *testing.T, o *Options) {
				if !o.DeclareWebSocketStreaming || !o.RedirectContainerStreaming {
					t.Errorf("streaming flags not honoured: %+v", o)
				}
			}},
		{name: "unknown flag", args: []string{"--no-such-flag=3"}, wantErr: "--no-such-flag"},
		{name: "positional", args: []string{"run"}, wantErr: "unexpected arguments"},
		{name: "bad node ip", args: []string{"--node-ip=10.0.0.300"}, wantErr: "--node-ip:"},
		{name: "two v4 node ips", args: []string{"--node-ip=10.0.0.1,10.0.0.2"}, wantErr: "--node-ip:"},
		{name: "bad network plugin", args: []string{"--network-plugin=kubenet"}, wantErr: "--network-plugin:"},
		{name: "bad label", args: []string{"--node-labels=-a=b"}, wantErr: "--node-labels:"},
		{name: "bad config", args: []string{"--config=/nonexistent.yaml"}, wantErr: "config file /nonexistent.yaml:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, _, err := Parse(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			tt.check(t, o)
		})
	}
}

func TestParseHelp(t *testing.T) {
	goodHost(t)
	var buf bytes.Buffer
	usageOutput = &buf
	_, _, err := Parse([]string{"--help"})
	if !errors.Is(err, ErrHelp) {
		t.Fatalf("got %v, want ErrHelp", err)
	}
	if !strings.Contains(buf.String(), "--container-runtime-endpoint") || !strings.Contains(buf.String(), "-v, --v") {
		t.Errorf("usage incomplete:\n%s", buf.String())
	}
}

func TestParseHostCheck(t *testing.T) {
	goodHost(t)
	host = fakeHost{swap: true, v2: true}
	if _, _, err := Parse(nil); err == nil || !strings.HasPrefix(err.Error(), "failSwapOn:") {
		t.Fatalf("got %v, want failSwapOn error", err)
	}
}

func TestParseWarnings(t *testing.T) {
	goodHost(t)
	file := writeFile(t, header+"bogus: 1\nfeatureGates: {A: true}\n")
	_, warns, err := Parse([]string{"--config", file})
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 2 {
		t.Errorf("warnings = %q, want unknown field and unimplemented field", warns)
	}
}
