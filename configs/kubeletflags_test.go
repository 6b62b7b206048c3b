package configs

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

func TestKubeletFlags(t *testing.T) {
	goodHost(t)
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubelet.conf")
	if err := os.WriteFile(kubeconfig, []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, header+"maxPods: 50\nport: 11250\nclusterDNS: [10.96.0.10]\nreadOnlyPort: 10255\n")
	dropIns := t.TempDir()
	if err := os.WriteFile(filepath.Join(dropIns, "10-a.conf"), []byte(header), 0o600); err != nil {
		t.Fatal(err)
	}
	// What kubeadm's systemd drop-in and kubeadm-flags.env pass.
	kubeadm := []string{
		"--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf", "--kubeconfig=" + kubeconfig,
		"--config=" + file, "--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock",
		"--pod-infra-container-image=registry.k8s.io/pause:3.10", "--node-ip=10.0.0.5",
	}

	tests := []struct {
		name     string
		args     []string
		wantErr  []string
		wantWarn []string // each must be one of the warnings, exactly
		check    func(*testing.T, *Options)
	}{
		{name: "kubeadm command line", args: kubeadm,
			wantWarn: []string{"kubelet flags not implemented by nodeagent and ignored: --pod-infra-container-image (removed from the kubelet)"},
			check: func(t *testing.T, o *Options) {
				if o.BootstrapKubeconfigPath != "/etc/kubernetes/bootstrap-kubelet.conf" || o.CertDir != filepath.Join(DefaultRootDir, "pki") {
					t.Errorf("bootstrap flags: %q, %q", o.BootstrapKubeconfigPath, o.CertDir)
				}
				if o.KubeconfigPath != kubeconfig || o.ContainerRuntimeEndpoint != "unix:///var/run/containerd/containerd.sock" || o.Config.MaxPods != 50 {
					t.Errorf("not honoured: %+v", o)
				}
			}},
		{name: "deprecated flags override the file",
			args: []string{"--config", file, "--max-pods=20", "--port", "12250", "--cluster-dns=10.0.0.10", "--cluster-dns=fd00::10",
				"--anonymous-auth=false", "--authentication-token-webhook", "--authorization-mode=Webhook", "--read-only-port=0",
				"--eviction-hard=memory.available<200Mi,nodefs.available<5%", "--register-with-taints=a=b:NoSchedule,c:NoExecute",
				"--node-status-update-frequency=20s", "--pod-max-pids=-1", "--fail-cgroupv1=true", "--provider-id=x://1"},
			wantWarn: []string{
				"flag --max-pods is deprecated, set field maxPods in the config file instead",
				"flag --port is deprecated, set field port in the config file instead",
				"flag --cluster-dns is deprecated, set field clusterDNS in the config file instead",
				"flag --anonymous-auth is deprecated, set field authentication.anonymous.enabled in the config file instead",
				"flag --eviction-hard is deprecated, set field evictionHard in the config file instead",
			},
			check: func(t *testing.T, o *Options) {
				c := o.Config
				if c.MaxPods != 20 || c.Port != 12250 || c.ReadOnlyPort != 0 || c.ProviderID != "x://1" {
					t.Errorf("flags did not win: maxPods %d port %d readOnlyPort %d", c.MaxPods, c.Port, c.ReadOnlyPort)
				}
				if strings.Join(c.ClusterDNS, ",") != "10.0.0.10,fd00::10" {
					t.Errorf("clusterDNS = %v", c.ClusterDNS)
				}
				if *c.Authentication.Anonymous.Enabled || !*c.Authentication.Webhook.Enabled {
					t.Errorf("authentication = %+v", c.Authentication)
				}
				want := []v1.Taint{{Key: "a", Value: "b", Effect: "NoSchedule"}, {Key: "c", Effect: "NoExecute"}}
				if len(c.RegisterWithTaints) != 2 || c.RegisterWithTaints[0] != want[0] || c.RegisterWithTaints[1] != want[1] {
					t.Errorf("registerWithTaints = %v", c.RegisterWithTaints)
				}
				if c.NodeStatusReportFrequency.Duration != 20*time.Second {
					t.Errorf("defaults not applied after flags: nodeStatusReportFrequency %v", c.NodeStatusReportFrequency)
				}
				// The flag replaces the defaults, which are not merged
				// without mergeDefaultEvictionSettings.
				if !maps.Equal(c.EvictionHard, map[string]string{"memory.available": "200Mi", "nodefs.available": "5%"}) {
					t.Errorf("evictionHard = %v", c.EvictionHard)
				}
			}},
		{name: "deprecated flag without config file", args: []string{"--read-only-port=10255", "--anonymous-auth"},
			check: func(t *testing.T, o *Options) {
				if o.Config.ReadOnlyPort != 10255 || !*o.Config.Authentication.Anonymous.Enabled || o.Config.Port != 10250 {
					t.Errorf("config = %+v", o.Config)
				}
			}},
		{name: "unimplemented config flags and feature gates", args: []string{"--feature-gates=A=true,B=false", "--oom-score-adj", "-500", "--make-iptables-util-chains", "--cgroup-driver=systemd"},
			wantWarn: []string{
				"kubelet flags not implemented by nodeagent and ignored: --feature-gates, --make-iptables-util-chains, --oom-score-adj",
				"flag --cgroup-driver is deprecated, set field cgroupDriver in the config file instead",
			}},
		{name: "pull and pod count flags set their fields",
			args: []string{"--pods-per-core", "10", "--serialize-image-pulls=false", "--registry-qps=0", "--registry-burst=3"},
			wantWarn: []string{"flag --pods-per-core is deprecated, set field podsPerCore in the config file instead",
				"flag --serialize-image-pulls is deprecated, set field serializeImagePulls in the config file instead"},
			check: func(t *testing.T, o *Options) {
				c := o.Config
				if c.PodsPerCore != 10 || *c.SerializeImagePulls || *c.RegistryPullQPS != 0 || c.RegistryBurst != 3 {
					t.Errorf("flags not applied: podsPerCore %d serializeImagePulls %v registryPullQPS %d registryBurst %d",
						c.PodsPerCore, *c.SerializeImagePulls, *c.RegistryPullQPS, c.RegistryBurst)
				}
			}},
		{name: "security flags set their fields",
			args: []string{"--enable-debugging-handlers=false", "--enable-server=false", "--tls-min-version=VersionTLS13",
				"--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
				"--protect-kernel-defaults=false", "--rotate-certificates=false", "--event-qps=0", "--allowed-unsafe-sysctls=net.core.somaxconn,kernel.msg*"},
			wantWarn: []string{"flag --enable-debugging-handlers is deprecated, set field enableDebuggingHandlers in the config file instead"},
			check: func(t *testing.T, o *Options) {
				c := o.Config
				if *c.EnableDebuggingHandlers || *c.EnableServer || c.TLSMinVersion != "VersionTLS13" || len(c.TLSCipherSuites) != 2 ||
					*c.EventRecordQPS != 0 || len(c.AllowedUnsafeSysctls) != 2 {
					t.Errorf("flags not applied: %+v", c)
				}
			}},
		{name: "seccomp-default is or-ed with the file", args: []string{"--config", writeFile(t, header+"seccompDefault: true\n"), "--seccomp-default=false"},
			check: func(t *testing.T, o *Options) {
				if !*o.Config.SeccompDefault {
					t.Error("--seccomp-default=false turned off the file's seccompDefault")
				}
			}},
		{name: "seccomp-default flag", args: []string{"--seccomp-default"},
			check: func(t *testing.T, o *Options) {
				if !*o.Config.SeccompDefault {
					t.Error("--seccomp-default not applied")
				}
			}},
		{name: "rotate-certificates", args: []string{"--rotate-certificates", "--rotate-server-certificates"}, check: func(t *testing.T, o *Options) {
			if !o.Config.RotateCertificates || !o.Config.ServerTLSBootstrap {
				t.Error("not set")
			}
		}},
		{name: "pod-max-pids", args: []string{"--pod-max-pids=100"}, check: func(t *testing.T, o *Options) {
			if *o.Config.PodPidsLimit != 100 {
				t.Errorf("podPidsLimit = %d", *o.Config.PodPidsLimit)
			}
		}},
		{name: "pod-max-pids refused with systemd", args: []string{"--pod-max-pids=100", "--cgroup-driver=systemd"}, wantErr: []string{"podPidsLimit:"}},
		{name: "enforce-node-allocatable refused", args: []string{"--enforce-node-allocatable=pods,kube-reserved"}, wantErr: []string{"enforceNodeAllocatable:", "kube-reserved"}},
		{name: "manifest-url refused", args: []string{"--manifest-url=http://example.com/pods"}, wantErr: []string{"staticPodURL:"}},
		{name: "unknown TLS version", args: []string{"--tls-min-version=TLS1.3"}, wantErr: []string{"tlsMinVersion:", `"TLS1.3"`}},
		{name: "unknown cipher", args: []string{"--tls-cipher-suites=TLS_NOPE"}, wantErr: []string{"tlsCipherSuites:", "TLS_NOPE"}},
		{name: "bootstrap and cert-dir", args: []string{"--kubeconfig", filepath.Join(dir, "missing.conf"), "--bootstrap-kubeconfig", "/b.conf", "--cert-dir=/var/lib/kubelet/pki"},
			check: func(t *testing.T, o *Options) {
				if o.BootstrapKubeconfigPath != "/b.conf" || o.CertDir != "/var/lib/kubelet/pki" {
					t.Errorf("got %q, %q", o.BootstrapKubeconfigPath, o.CertDir)
				}
			}},
		{name: "bootstrap and no --kubeconfig", args: []string{"--bootstrap-kubeconfig=/b.conf"}, wantErr: []string{"--bootstrap-kubeconfig", "--kubeconfig"}},
		{name: "config-dir with drop-ins", args: []string{"--config-dir", dropIns}, wantErr: []string{"--config-dir", "10-a.conf"}},
		{name: "empty config-dir", args: []string{"--config-dir", t.TempDir()}, wantWarn: []string{"kubelet flags not implemented by nodeagent and ignored: --config-dir"}},
		{name: "unknown flag", args: []string{"--config", file, "--max-pod=3"}, wantErr: []string{"unknown flag: --max-pod"}},
		{name: "wrong flag type", args: []string{"--max-pods=many"}, wantErr: []string{"--max-pods"}},
		{name: "wrong ignored flag type", args: []string{"--maximum-dead-containers=x"}, wantErr: []string{"--maximum-dead-containers"}},
		{name: "bad IP", args: []string{"--address=localhost"}, wantErr: []string{"--address", "localhost"}},
		{name: "image gc flags set their fields",
			args:     []string{"--image-gc-high-threshold=90", "--image-gc-low-threshold", "70", "--minimum-image-ttl-duration=5m"},
			wantWarn: []string{"flag --image-gc-high-threshold is deprecated, set field imageGCHighThresholdPercent in the config file instead"},
			check: func(t *testing.T, o *Options) {
				c := o.Config
				if *c.ImageGCHighThresholdPercent != 90 || *c.ImageGCLowThresholdPercent != 70 || c.ImageMinimumGCAge.Duration != 5*time.Minute {
					t.Errorf("image gc: high %d low %d minimum age %v", *c.ImageGCHighThresholdPercent, *c.ImageGCLowThresholdPercent, c.ImageMinimumGCAge)
				}
			}},
		{name: "image gc flags validated", args: []string{"--image-gc-high-threshold=70"},
			wantErr: []string{"config from flags --image-gc-high-threshold: imageGCLowThresholdPercent: must be less than imageGCHighThresholdPercent (70), got 80"}},
		{name: "reserved flags replace the file's and add up when repeated",
			args: []string{"--config", writeFile(t, header+"kubeReserved: {memory: 2Gi, pid: \"100\"}\nsystemReserved: {cpu: 100m}\n"),
				"--kube-reserved=cpu=500m,memory=1Gi", "--kube-reserved", "ephemeral-storage=1Gi", "--system-reserved=memory=500Mi"},
			wantWarn: []string{
				"flag --kube-reserved is deprecated, set field kubeReserved in the config file instead",
				"flag --system-reserved is deprecated, set field systemReserved in the config file instead",
			},
			check: func(t *testing.T, o *Options) {
				c := o.Config
				if !maps.Equal(c.KubeReserved, map[string]string{"cpu": "500m", "memory": "1Gi", "ephemeral-storage": "1Gi"}) {
					t.Errorf("kubeReserved = %v", c.KubeReserved)
				}
				if !maps.Equal(c.SystemReserved, map[string]string{"memory": "500Mi"}) {
					t.Errorf("systemReserved = %v", c.SystemReserved)
				}
			}},
		{name: "reserved flags validated", args: []string{"--system-reserved=hugepages-2Mi=2Mi"},
			wantErr: []string{`config from flags --system-reserved: systemReserved["hugepages-2Mi"]: cannot reserve this resource`}},
		{name: "eviction flag validated", args: []string{"--eviction-hard=memory.available<0"},
			wantErr: []string{`config from flags --eviction-hard: evictionHard["memory.available"]: must be greater than 0`}},
		{name: "malformed reserved flag", args: []string{"--kube-reserved=memory"}, wantErr: []string{"--kube-reserved"}},
		{name: "bad taint", args: []string{"--register-with-taints=a=b"}, wantErr: []string{"--register-with-taints"}},
		{name: "invalid value names file and flags", args: []string{"--config", file, "--port=70000"},
			wantErr: []string{"config file " + file + " with flags --port: port: must be between 1 and 65535, got 70000"}},
		{name: "invalid value from flags only", args: []string{"--max-pods=-1"}, wantErr: []string{"config from flags --max-pods: maxPods:"}},
		{name: "negative pull QPS", args: []string{"--registry-qps=-1"}, wantErr: []string{"config from flags --registry-qps: registryPullQPS: must not be negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, warns, err := Parse(tt.args)
			for _, w := range tt.wantWarn {
				found := false
				for _, got := range warns {
					found = found || got == w
				}
				if !found {
					t.Errorf("warnings %q do not include %q", warns, w)
				}
			}
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("want error containing %q, got nil", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.check != nil {
				tt.check(t, o)
			}
		})
	}
}

// TestKubeletFlagTables keeps the flag tables consistent with the fields
// nodeagent implements and free of duplicates.
func TestKubeletFlagTables(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range configFlags {
		top, _, _ := strings.Cut(f.field, ".")
		if !implementedFields[top] && !refusedFields[top] {
			t.Errorf("--%s sets %s, which nodeagent neither implements nor refuses: move it to ignoredFlags", f.name, f.field)
		}
		if seen[f.name] {
			t.Errorf("--%s listed twice", f.name)
		}
		seen[f.name] = true
	}
	for _, names := range ignoredFlags {
		for _, n := range names {
			if seen[n] {
				t.Errorf("--%s listed twice", n)
			}
			seen[n] = true
		}
	}
	for n := range removedFlags {
		if !isIgnored(n) {
			t.Errorf("removed flag --%s is not in ignoredFlags", n)
		}
	}
}
