package configs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
)

const header = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"

type fakeHost struct {
	swap, v2 bool
	notRoot  bool
	// sysctls holds the kernel tunables; nil means the kubelet's values.
	sysctls map[string]int
	setErr  error
}

func (f fakeHost) SwapOn() (bool, error)   { return f.swap, nil }
func (f fakeHost) CgroupV2() (bool, error) { return f.v2, nil }
func (f fakeHost) Root() bool              { return !f.notRoot }

func (f fakeHost) Sysctl(name string) (int, error) {
	if f.sysctls == nil {
		for _, kt := range kernelTunables {
			if kt.name == name {
				return kt.want, nil
			}
		}
	}
	v, ok := f.sysctls[name]
	if !ok {
		return 0, os.ErrNotExist
	}
	return v, nil
}

func (f fakeHost) SetSysctl(name string, value int) error {
	if f.setErr != nil {
		return f.setErr
	}
	f.sysctls[name] = value
	return nil
}

var _ hostProbe = fakeHost{}

// goodHost makes the host checks pass and restores the seams afterwards.
func goodHost(t *testing.T) {
	t.Helper()
	oldHost, oldName, oldOut := host, osHostname, usageOutput
	host = fakeHost{v2: true}
	osHostname = func() (string, error) { return " Node-1 ", nil }
	t.Cleanup(func() { host, osHostname, usageOutput = oldHost, oldName, oldOut })
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefault(t *testing.T) {
	cfg := &kubeletconfigv1beta1.KubeletConfiguration{}
	Default(cfg)
	tests := []struct {
		name      string
		got, want any
	}{
		{"address", cfg.Address, "0.0.0.0"},
		{"port", cfg.Port, int32(10250)},
		{"readOnlyPort", cfg.ReadOnlyPort, int32(0)},
		{"anonymous", *cfg.Authentication.Anonymous.Enabled, false},
		{"webhook authn", *cfg.Authentication.Webhook.Enabled, true},
		{"webhook cacheTTL", cfg.Authentication.Webhook.CacheTTL.Duration, 2 * time.Minute},
		{"authz mode", cfg.Authorization.Mode, kubeletconfigv1beta1.KubeletAuthorizationModeWebhook},
		{"cacheAuthorizedTTL", cfg.Authorization.Webhook.CacheAuthorizedTTL.Duration, 5 * time.Minute},
		{"cacheUnauthorizedTTL", cfg.Authorization.Webhook.CacheUnauthorizedTTL.Duration, 30 * time.Second},
		{"healthzPort", *cfg.HealthzPort, int32(10248)},
		{"healthzBindAddress", cfg.HealthzBindAddress, "127.0.0.1"},
		{"clusterDomain", cfg.ClusterDomain, ""},
		{"maxPods", cfg.MaxPods, int32(110)},
		{"podPidsLimit", *cfg.PodPidsLimit, int64(-1)},
		{"nodeStatusUpdateFrequency", cfg.NodeStatusUpdateFrequency.Duration, 10 * time.Second},
		{"nodeStatusReportFrequency", cfg.NodeStatusReportFrequency.Duration, 5 * time.Minute},
		{"nodeLeaseDurationSeconds", cfg.NodeLeaseDurationSeconds, int32(40)},
		{"containerLogMaxSize", cfg.ContainerLogMaxSize, "10Mi"},
		{"containerLogMaxFiles", *cfg.ContainerLogMaxFiles, int32(5)},
		{"containerLogMaxWorkers", *cfg.ContainerLogMaxWorkers, int32(1)},
		{"containerLogMonitorInterval", cfg.ContainerLogMonitorInterval.Duration, 10 * time.Second},
		{"registerNode", *cfg.RegisterNode, true},
		{"cgroupRoot", cfg.CgroupRoot, ""},
		{"cgroupsPerQOS", *cfg.CgroupsPerQOS, true},
		{"cgroupDriver", cfg.CgroupDriver, "cgroupfs"},
		{"failSwapOn", *cfg.FailSwapOn, true},
		{"failCgroupV1", *cfg.FailCgroupV1, true},
		{"kubeAPIQPS", *cfg.KubeAPIQPS, int32(50)},
		{"kubeAPIBurst", cfg.KubeAPIBurst, int32(100)},
		{"serializeImagePulls", *cfg.SerializeImagePulls, true},
		{"registryPullQPS", *cfg.RegistryPullQPS, int32(5)},
		{"registryBurst", cfg.RegistryBurst, int32(10)},
		{"podsPerCore", cfg.PodsPerCore, int32(0)},
		{"crashLoopBackOff.maxContainerRestartPeriod", cfg.CrashLoopBackOff.MaxContainerRestartPeriod.Duration, 300 * time.Second},
		{"imageMinimumGCAge", cfg.ImageMinimumGCAge.Duration, 2 * time.Minute},
		{"imageGCHigh", *cfg.ImageGCHighThresholdPercent, int32(85)},
		{"imageGCLow", *cfg.ImageGCLowThresholdPercent, int32(80)},
		{"runtimeRequestTimeout", cfg.RuntimeRequestTimeout.Duration, 2 * time.Minute},
		{"syncFrequency", cfg.SyncFrequency.Duration, time.Minute},
		{"fileCheckFrequency", cfg.FileCheckFrequency.Duration, 20 * time.Second},
		{"httpCheckFrequency", cfg.HTTPCheckFrequency.Duration, 20 * time.Second},
		{"evictionHard memory", cfg.EvictionHard["memory.available"], "100Mi"},
		{"evictionHard nodefs", cfg.EvictionHard["nodefs.available"], "10%"},
		{"evictionHard nodefs inodes", cfg.EvictionHard["nodefs.inodesFree"], "5%"},
		{"evictionHard imagefs", cfg.EvictionHard["imagefs.available"], "15%"},
		{"evictionHard imagefs inodes", cfg.EvictionHard["imagefs.inodesFree"], "5%"},
		{"enableDebuggingHandlers", *cfg.EnableDebuggingHandlers, true},
		{"shutdownGracePeriod", cfg.ShutdownGracePeriod.Duration, time.Duration(0)},
		{"containerRuntimeEndpoint", cfg.ContainerRuntimeEndpoint, DefaultContainerRuntimeEndpoint},
		{"podLogsDir", cfg.PodLogsDir, "/var/log/pods"},
		{"streamingConnectionIdleTimeout", cfg.StreamingConnectionIdleTimeout.Duration, 4 * time.Hour},
		{"enableServer", *cfg.EnableServer, true},
		{"resolvConf", *cfg.ResolverConfig, "/etc/resolv.conf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v (%T), want %v (%T)", tt.got, tt.got, tt.want, tt.want)
			}
		})
	}
	if err := Validate(cfg); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestDefaultKeepsSetFields(t *testing.T) {
	cfg := &kubeletconfigv1beta1.KubeletConfiguration{
		NodeStatusUpdateFrequency: metav1.Duration{Duration: 20 * time.Second},
		FailSwapOn:                ptr.To(false),
		EvictionHard:              map[string]string{"memory.available": "1Gi"},
	}
	Default(cfg)
	if cfg.NodeStatusReportFrequency.Duration != 20*time.Second {
		t.Errorf("nodeStatusReportFrequency = %v, want the update frequency", cfg.NodeStatusReportFrequency)
	}
	if *cfg.FailSwapOn {
		t.Error("failSwapOn overridden")
	}
	if len(cfg.EvictionHard) != 1 {
		t.Errorf("evictionHard merged without mergeDefaultEvictionSettings: %v", cfg.EvictionHard)
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name     string
		content  string
		wantErr  []string // substrings of the error
		wantWarn []string // substrings of the joined warnings
		check    func(*testing.T, *kubeletconfigv1beta1.KubeletConfiguration)
	}{
		{name: "minimal", content: header, check: func(t *testing.T, c *kubeletconfigv1beta1.KubeletConfiguration) {
			if c.Port != 10250 || c.Authorization.Mode != "Webhook" {
				t.Errorf("not defaulted: %+v", c)
			}
		}},
		{name: "json", content: `{"apiVersion":"kubelet.config.k8s.io/v1beta1","kind":"KubeletConfiguration","maxPods":50}`,
			check: func(t *testing.T, c *kubeletconfigv1beta1.KubeletConfiguration) {
				if c.MaxPods != 50 {
					t.Errorf("maxPods = %d", c.MaxPods)
				}
			}},
		{name: "fields", content: header + "port: 11250\nclusterDNS: [10.96.0.10]\nauthentication:\n  anonymous:\n    enabled: true\nauthorization:\n  mode: AlwaysAllow\n",
			check: func(t *testing.T, c *kubeletconfigv1beta1.KubeletConfiguration) {
				if c.Port != 11250 || !*c.Authentication.Anonymous.Enabled || c.Authorization.Mode != "AlwaysAllow" || c.ClusterDNS[0] != "10.96.0.10" {
					t.Errorf("fields not honoured: %+v", c)
				}
			}},
		{name: "missing kind", content: "apiVersion: kubelet.config.k8s.io/v1beta1\n", wantErr: []string{"config file ", `"kind"`}},
		{name: "wrong apiVersion", content: "apiVersion: kubelet.config.k8s.io/v1\nkind: KubeletConfiguration\n", wantErr: []string{`"apiVersion"`, "v1beta1"}},
		{name: "wrong kind", content: "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: Pod\n", wantErr: []string{`"kind"`, "Pod"}},
		{name: "not an object", content: "- a\n- b\n", wantErr: []string{"config file "}},
		{name: "bad yaml", content: "a: [\n", wantErr: []string{"config file "}},
		{name: "type error", content: header + "port: abc\n", wantErr: []string{`field "port"`}},
		{name: "duration type error", content: header + "syncFrequency: soon\n", wantErr: []string{`field "syncFrequency"`}},
		{name: "nested type error", content: header + "authentication:\n  webhook:\n    enabled: yes-please\n", wantErr: []string{`field "authentication"`}},
		{name: "unknown field warns", content: header + "bogusField: 1\nport: 11250\n", wantWarn: []string{"bogusField"},
			check: func(t *testing.T, c *kubeletconfigv1beta1.KubeletConfiguration) {
				if c.Port != 11250 {
					t.Errorf("rest of the file ignored: port %d", c.Port)
				}
			}},
		{name: "unknown nested field warns", content: header + "authentication:\n  bogus: true\n", wantWarn: []string{"authentication.bogus"}},
		{name: "unimplemented fields warn, not their zero values", content: header + "featureGates: {Foo: true}\ncpuManagerPolicy: static\nport: 10250\n" +
			"syncFrequency: 0s\nlogging: {flushFrequency: 0, options: {json: {infoBufferSize: \"0\"}}, verbosity: 0}\nmemorySwap: {}\n",
			wantWarn: []string{"config fields not implemented by nodeagent and ignored: cpuManagerPolicy, featureGates"}},
		{name: "reservedMemory quantity bomb", content: header + "reservedMemory: [{numaNode: 0, limits: {memory: '1e-999999999'}}]\n", wantErr: []string{`field "reservedMemory[0].limits.memory"`}},
		{name: "security fields do not warn", content: header + "enableDebuggingHandlers: false\nenableServer: true\ntlsMinVersion: VersionTLS13\nprotectKernelDefaults: false\nrotateCertificates: false\nseccompDefault: true\nallowedUnsafeSysctls: [net.core.somaxconn]\neventRecordQPS: 10\n",
			check: func(t *testing.T, c *kubeletconfigv1beta1.KubeletConfiguration) {
				if *c.EnableDebuggingHandlers || c.TLSMinVersion != "VersionTLS13" || *c.EventRecordQPS != 10 {
					t.Errorf("fields not honoured: %+v", c)
				}
			}},
		{name: "enforceNodeAllocatable pods warns", content: header + "enforceNodeAllocatable: [pods]\n",
			wantWarn: []string{"config fields not implemented by nodeagent and ignored: enforceNodeAllocatable"}},
		{name: "refused field", content: header + "staticPodURL: http://192.0.2.1/pods\n", wantErr: []string{"config file ", "staticPodURL: static pods from a URL"}},
		{name: "validation error", content: header + "port: 70000\n", wantErr: []string{"config file ", "port: must be between 1 and 65535, got 70000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, tt.content)
			cfg, warns, err := Load(p)
			joined := strings.Join(warns, "\n")
			for _, w := range tt.wantWarn {
				if !strings.Contains(joined, w) {
					t.Errorf("warnings %q do not contain %q", joined, w)
				}
			}
			if len(tt.wantWarn) == 0 && len(warns) > 0 && len(tt.wantErr) == 0 {
				t.Errorf("unexpected warnings %q", warns)
			}
			for _, w := range warns {
				if !strings.HasPrefix(w, "config file "+p+": ") {
					t.Errorf("warning %q does not start with the path", w)
				}
			}
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("want error containing %q, got nil", tt.wantErr)
				}
				if !strings.HasPrefix(err.Error(), "config file "+p+": ") {
					t.Errorf("error %q does not start with the path", err)
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
				tt.check(t, cfg)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, _, err := Load("/nonexistent/config.yaml")
	if err == nil || !strings.HasPrefix(err.Error(), "config file /nonexistent/config.yaml: ") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v", err)
	}
}
