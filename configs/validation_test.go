package configs

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*kubeletconfigv1beta1.KubeletConfiguration)
		wantErr string // substring; "" means valid
	}{
		{"defaults", func(*kubeletconfigv1beta1.KubeletConfiguration) {}, ""},
		{"port too big", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.Port = 70000 }, "port: must be between 1 and 65535, got 70000"},
		{"readOnlyPort 10255", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.ReadOnlyPort = 10255 }, ""},
		{"readOnlyPort negative", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.ReadOnlyPort = -1 }, "readOnlyPort: must be between 0 and 65535"},
		{"healthzPort", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.HealthzPort = ptr.To[int32](65536) }, "healthzPort:"},
		{"healthzPort off", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.HealthzPort = ptr.To[int32](0) }, ""},
		{"maxPods", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.MaxPods = -1 }, "maxPods:"},
		{"lease", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.NodeLeaseDurationSeconds = -5 }, "nodeLeaseDurationSeconds:"},
		{"status update", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.NodeStatusUpdateFrequency.Duration = -time.Second
		}, "nodeStatusUpdateFrequency:"},
		{"log files", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.ContainerLogMaxFiles = ptr.To[int32](1) }, "containerLogMaxFiles: must be at least 2"},
		{"log size garbage", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.ContainerLogMaxSize = "lots" }, "containerLogMaxSize:"},
		{"log size zero", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.ContainerLogMaxSize = "0" }, "containerLogMaxSize: must be greater than 0"},
		{"cgroupDriver", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.CgroupDriver = "magic" }, "cgroupDriver:"},
		{"systemd", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.CgroupDriver = "systemd" }, ""},
		{"authz mode", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.Authorization.Mode = "RBAC" }, "authorization.mode:"},
		{"anonymous AlwaysAllow", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.Authorization.Mode = "AlwaysAllow"
			c.Authentication.Anonymous.Enabled = ptr.To(true)
		}, ""},
		{"address", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.Address = "localhost" }, "address: must be an IP"},
		{"clusterDNS", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.ClusterDNS = []string{"10.0.0.10", "dns"} }, "clusterDNS[1]:"},
		{"taint effect", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.RegisterWithTaints = []v1.Taint{{Key: "a", Effect: "Never"}}
		}, "registerWithTaints[0]: effect"},
		{"taint ok", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.RegisterWithTaints = []v1.Taint{{Key: "example.com/a", Value: "b", Effect: v1.TaintEffectNoSchedule}}
		}, ""},
		{"qps", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.KubeAPIQPS = ptr.To[int32](-1) }, "kubeAPIQPS:"},
		{"image gc thresholds", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.ImageGCHighThresholdPercent, c.ImageGCLowThresholdPercent = ptr.To[int32](100), ptr.To[int32](0)
		}, ""},
		{"image gc high above 100", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.ImageGCHighThresholdPercent = ptr.To[int32](101) }, "imageGCHighThresholdPercent: must be between 0 and 100, got 101"},
		{"image gc low equals high", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.ImageGCHighThresholdPercent, c.ImageGCLowThresholdPercent = ptr.To[int32](80), ptr.To[int32](80)
		}, "imageGCLowThresholdPercent: must be less than imageGCHighThresholdPercent (80), got 80"},
		{"image minimum age negative", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.ImageMinimumGCAge.Duration = -time.Second }, "imageMinimumGCAge: must not be negative"},
		{"image maximum age negative", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.ImageMaximumGCAge.Duration = -time.Second }, "imageMaximumGCAge: must not be negative"},
		{"image maximum age", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.ImageMaximumGCAge.Duration = time.Hour }, ""},
		{"image maximum age below minimum", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.ImageMaximumGCAge.Duration = 2 * time.Minute
		}, "imageMaximumGCAge: must be greater than imageMinimumGCAge (2m0s), got 2m0s"},
		{"tls pair", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.TLSCertFile = "/x.crt" }, "tlsCertFile:"},
		{"eviction signal", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.EvictionHard = map[string]string{"cpu.available": "1"}
		}, `evictionHard["cpu.available"]`},
		{"eviction value", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.EvictionHard = map[string]string{"nodefs.available": "150%"}
		}, `evictionHard["nodefs.available"]`},
		{"eviction thresholds", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.EvictionHard = map[string]string{"memory.available": "1.5Gi", "nodefs.available": "12.5%", "pid.available": "0%",
				"imagefs.available": "100%", "nodefs.inodesFree": "1k", "allocatableMemory.available": "1Mi"}
		}, ""},
		{"eviction zero quantity", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.EvictionHard = map[string]string{"memory.available": "0"}
		}, `evictionHard["memory.available"]: must be greater than 0, got "0"`},
		{"eviction negative percentage", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.EvictionHard = map[string]string{"memory.available": "-1%"}
		}, `evictionHard["memory.available"]: percentage must be between 0% and 100%, got "-1%"`},
		{"eviction NaN", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.EvictionHard = map[string]string{"memory.available": "NaN%"}
		}, `evictionHard["memory.available"]: percentage`},
		{"reserved", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.KubeReserved = map[string]string{"cpu": "500m", "memory": "1Gi", "ephemeral-storage": "10Gi", "pid": "1000"}
			c.SystemReserved = map[string]string{"cpu": "0", "memory": "1Ti"} // above any capacity: checked at start
		}, ""},
		{"reserved garbage", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.KubeReserved = map[string]string{"memory": "lots"}
		}, `kubeReserved["memory"]: must be a quantity such as 500Mi, got "lots"`},
		{"reserved negative", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.SystemReserved = map[string]string{"cpu": "-1"}
		}, `systemReserved["cpu"]: must not be negative, got "-1"`},
		{"reserved unknown resource", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.KubeReserved = map[string]string{"nvidia.com/gpu": "1"}
		}, `kubeReserved["nvidia.com/gpu"]: cannot reserve this resource, only cpu, memory, ephemeral-storage and pid`},
		{"reserved hugepages", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.SystemReserved = map[string]string{"hugepages-2Mi": "2Mi"}
		}, `systemReserved["hugepages-2Mi"]: cannot reserve`},
		{"podsPerCore negative", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.PodsPerCore = -1 }, "podsPerCore: must not be negative, got -1"},
		{"podsPerCore", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.PodsPerCore = 10 }, ""},
		{"registryPullQPS negative", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.RegistryPullQPS = ptr.To[int32](-1) }, "registryPullQPS: must not be negative, got -1"},
		{"registryPullQPS 0 is no limit", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.RegistryPullQPS = ptr.To[int32](0) }, ""},
		{"registryBurst negative", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.RegistryBurst = -1 }, "registryBurst: must not be negative, got -1"},
		{"maxParallelImagePulls 0", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.MaxParallelImagePulls = ptr.To[int32](0) }, "maxParallelImagePulls: must be at least 1, got 0"},
		{"maxParallelImagePulls serialized", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.MaxParallelImagePulls = ptr.To[int32](3)
		}, "maxParallelImagePulls: cannot be above 1 unless serializeImagePulls is false, got 3"},
		{"maxParallelImagePulls parallel", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.MaxParallelImagePulls, c.SerializeImagePulls = ptr.To[int32](3), ptr.To(false)
		}, ""},
		{"maxParallelImagePulls 1 serialized", func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.MaxParallelImagePulls = ptr.To[int32](1) }, ""},
		{"crashLoopBackOff 1s", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.CrashLoopBackOff.MaxContainerRestartPeriod = &metav1.Duration{Duration: time.Second}
		}, ""},
		{"crashLoopBackOff below 1s", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.CrashLoopBackOff.MaxContainerRestartPeriod = &metav1.Duration{Duration: 999 * time.Millisecond}
		}, "crashLoopBackOff.maxContainerRestartPeriod: must be between 1s and 5m0s, got 999ms"},
		{"crashLoopBackOff above 300s", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.CrashLoopBackOff.MaxContainerRestartPeriod = &metav1.Duration{Duration: 301 * time.Second}
		}, "crashLoopBackOff.maxContainerRestartPeriod: must be between 1s and 5m0s, got 5m1s"},
		{"shutdown", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.ShutdownGracePeriod.Duration, c.ShutdownGracePeriodCriticalPods.Duration = 30*time.Second, 10*time.Second
		}, ""},
		{"shutdown critical above total", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.ShutdownGracePeriod.Duration, c.ShutdownGracePeriodCriticalPods.Duration = 10*time.Second, 30*time.Second
		}, "shutdownGracePeriodCriticalPods: must not exceed shutdownGracePeriod (10s), got 30s"},
		{"shutdown below a second", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.ShutdownGracePeriod.Duration = 500 * time.Millisecond
		}, "shutdownGracePeriod: must be 0 or at least 1s, got 500ms"},
		{"shutdown negative", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.ShutdownGracePeriodCriticalPods.Duration = -time.Second
		}, "shutdownGracePeriodCriticalPods: must be 0 or at least 1s"},
		{"shutdown by priority", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.ShutdownGracePeriodByPodPriority = []kubeletconfigv1beta1.ShutdownGracePeriodByPodPriority{{Priority: 0, ShutdownGracePeriodSeconds: 20}, {Priority: 2000000000, ShutdownGracePeriodSeconds: 10}}
		}, ""},
		{"shutdown by priority and period", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.ShutdownGracePeriod.Duration = 30 * time.Second
			c.ShutdownGracePeriodByPodPriority = []kubeletconfigv1beta1.ShutdownGracePeriodByPodPriority{{Priority: 0, ShutdownGracePeriodSeconds: 20}}
		}, "shutdownGracePeriodByPodPriority: cannot be set together with shutdownGracePeriod"},
		{"shutdown by priority negative", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.ShutdownGracePeriodByPodPriority = []kubeletconfigv1beta1.ShutdownGracePeriodByPodPriority{{Priority: 0, ShutdownGracePeriodSeconds: -1}}
		}, "shutdownGracePeriodByPodPriority[0].shutdownGracePeriodSeconds: must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &kubeletconfigv1beta1.KubeletConfiguration{}
			Default(cfg)
			tt.mutate(cfg)
			err := Validate(cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidateReportsAll(t *testing.T) {
	cfg := &kubeletconfigv1beta1.KubeletConfiguration{}
	Default(cfg)
	cfg.Port = 0
	cfg.MaxPods = -1
	err := Validate(cfg)
	if err == nil || !strings.Contains(err.Error(), "port:") || !strings.Contains(err.Error(), "maxPods:") {
		t.Fatalf("got %v, want both port and maxPods", err)
	}
}

func TestCheckHost(t *testing.T) {
	old := host
	t.Cleanup(func() { host = old })
	tests := []struct {
		name       string
		host       fakeHost
		failSwap   bool
		failCgV1   bool
		wantPrefix string
	}{
		{"good host", fakeHost{v2: true}, true, true, ""},
		{"swap on", fakeHost{swap: true, v2: true}, true, true, "failSwapOn:"},
		{"swap on allowed", fakeHost{swap: true, v2: true}, false, true, ""},
		{"cgroup v1", fakeHost{}, true, true, "failCgroupV1:"},
		{"cgroup v1 allowed", fakeHost{}, true, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host = tt.host
			cfg := &kubeletconfigv1beta1.KubeletConfiguration{FailSwapOn: ptr.To(tt.failSwap), FailCgroupV1: ptr.To(tt.failCgV1)}
			Default(cfg)
			err := CheckHost(cfg)
			if tt.wantPrefix == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantPrefix) {
				t.Fatalf("got %v, want prefix %q", err, tt.wantPrefix)
			}
		})
	}
}

func TestParseQuantityBounded(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"10Mi", true}, {"1e3", true}, {"1E", true}, {"2Ei", true}, {"1e-3", true},
		{"1e-999999999", false}, {"1e999999999", false}, {strings.Repeat("9", 100), false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseQuantity(tt.in)
			if (err == nil) != tt.ok {
				t.Errorf("ParseQuantity(%q) error = %v, want ok=%v", tt.in, err, tt.ok)
			}
		})
	}
}
