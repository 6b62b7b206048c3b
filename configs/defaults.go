package configs

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
)

// Defaults that other packages may want to refer to.
const (
	// DefaultRootDir is the default of --root-dir.
	DefaultRootDir = "/var/lib/nodeagent"
	// DefaultPodLogsDir is the default of the podLogsDir config field.
	DefaultPodLogsDir = "/var/log/pods"
	// DefaultContainerRuntimeEndpoint is containerd's CRI socket.
	DefaultContainerRuntimeEndpoint = "unix:///run/containerd/containerd.sock"
	// DefaultResolvConf is the default of the resolvConf config field.
	DefaultResolvConf = "/etc/resolv.conf"
	// DefaultCNIConfDir is the default of --cni-conf-dir.
	DefaultCNIConfDir = "/etc/cni/net.d"
	// DefaultCNIBinDir is the default of --cni-bin-dir.
	DefaultCNIBinDir = "/opt/cni/bin"
	// DefaultCNICacheDir is the default of --cni-cache-dir.
	DefaultCNICacheDir = "/var/lib/cni/cache"
	// MaxContainerRestartPeriod is the default, and the largest value, of
	// crashLoopBackOff.maxContainerRestartPeriod: the longest crash-loop
	// back-off between container restarts.
	MaxContainerRestartPeriod = 300 * time.Second

	// APIVersion and Kind are what a config file must declare.
	APIVersion = "kubelet.config.k8s.io/v1beta1"
	Kind       = "KubeletConfiguration"
)

// DefaultEvictionHard returns the kubelet's default hard eviction thresholds
// on Linux.
func DefaultEvictionHard() map[string]string {
	return map[string]string{
		"memory.available":   "100Mi",
		"nodefs.available":   "10%",
		"nodefs.inodesFree":  "5%",
		"imagefs.available":  "15%",
		"imagefs.inodesFree": "5%",
	}
}

func setDuration(d *metav1.Duration, def time.Duration) {
	if d.Duration == 0 {
		d.Duration = def
	}
}

func setPtr[T any](p **T, def T) {
	if *p == nil {
		*p = ptr.To(def)
	}
}

// Default fills every unset field of cfg with the kubelet's config-file
// default. Fields that are already set are left alone, so Default is
// idempotent. The defaults are the secure ones (anonymous authentication off,
// Webhook authentication and authorization, no read-only port) whether or not
// the configuration came from a file.
func Default(cfg *kubeletconfigv1beta1.KubeletConfiguration) {
	if cfg.APIVersion == "" {
		cfg.APIVersion = APIVersion
	}
	if cfg.Kind == "" {
		cfg.Kind = Kind
	}
	setPtr(&cfg.EnableServer, true)
	setDuration(&cfg.SyncFrequency, time.Minute)
	setDuration(&cfg.FileCheckFrequency, 20*time.Second)
	setDuration(&cfg.HTTPCheckFrequency, 20*time.Second)
	if cfg.Address == "" {
		cfg.Address = "0.0.0.0"
	}
	if cfg.Port == 0 {
		cfg.Port = 10250
	}
	// ReadOnlyPort stays 0: the unauthenticated port is off unless asked for.

	authn := &cfg.Authentication
	setPtr(&authn.Anonymous.Enabled, false)
	setPtr(&authn.Webhook.Enabled, true)
	setDuration(&authn.Webhook.CacheTTL, 2*time.Minute)
	authz := &cfg.Authorization
	if authz.Mode == "" {
		authz.Mode = kubeletconfigv1beta1.KubeletAuthorizationModeWebhook
	}
	setDuration(&authz.Webhook.CacheAuthorizedTTL, 5*time.Minute)
	setDuration(&authz.Webhook.CacheUnauthorizedTTL, 30*time.Second)

	setPtr(&cfg.RegistryPullQPS, int32(5))
	if cfg.RegistryBurst == 0 {
		cfg.RegistryBurst = 10
	}
	setPtr(&cfg.EventRecordQPS, int32(50))
	if cfg.EventBurst == 0 {
		cfg.EventBurst = 100
	}
	setPtr(&cfg.EnableDebuggingHandlers, true)
	setPtr(&cfg.HealthzPort, int32(10248))
	if cfg.HealthzBindAddress == "" {
		cfg.HealthzBindAddress = "127.0.0.1"
	}
	setPtr(&cfg.OOMScoreAdj, int32(-999))
	setDuration(&cfg.StreamingConnectionIdleTimeout, 4*time.Hour)
	if cfg.NodeStatusReportFrequency.Duration == 0 {
		// As the kubelet: an explicit update frequency is also the report
		// frequency unless that is set too.
		if cfg.NodeStatusUpdateFrequency.Duration == 0 {
			cfg.NodeStatusReportFrequency.Duration = 5 * time.Minute
		} else {
			cfg.NodeStatusReportFrequency = cfg.NodeStatusUpdateFrequency
		}
	}
	setDuration(&cfg.NodeStatusUpdateFrequency, 10*time.Second)
	if cfg.NodeLeaseDurationSeconds == 0 {
		cfg.NodeLeaseDurationSeconds = 40
	}
	setDuration(&cfg.ImageMinimumGCAge, 2*time.Minute)
	setPtr(&cfg.ImageGCHighThresholdPercent, int32(85))
	setPtr(&cfg.ImageGCLowThresholdPercent, int32(80))
	setDuration(&cfg.VolumeStatsAggPeriod, time.Minute)
	setPtr(&cfg.CgroupsPerQOS, true)
	if cfg.CgroupDriver == "" {
		cfg.CgroupDriver = "cgroupfs"
	}
	if cfg.CPUManagerPolicy == "" {
		cfg.CPUManagerPolicy = "none"
	}
	setDuration(&cfg.CPUManagerReconcilePeriod, 10*time.Second)
	if cfg.MemoryManagerPolicy == "" {
		cfg.MemoryManagerPolicy = kubeletconfigv1beta1.NoneMemoryManagerPolicy
	}
	if cfg.TopologyManagerPolicy == "" {
		cfg.TopologyManagerPolicy = kubeletconfigv1beta1.NoneTopologyManagerPolicy
	}
	if cfg.TopologyManagerScope == "" {
		cfg.TopologyManagerScope = kubeletconfigv1beta1.ContainerTopologyManagerScope
	}
	setDuration(&cfg.RuntimeRequestTimeout, 2*time.Minute)
	if cfg.HairpinMode == "" {
		cfg.HairpinMode = kubeletconfigv1beta1.PromiscuousBridge
	}
	if cfg.MaxPods == 0 {
		cfg.MaxPods = 110
	}
	if cfg.PodPidsLimit == nil || *cfg.PodPidsLimit < 0 {
		cfg.PodPidsLimit = ptr.To[int64](-1)
	}
	setPtr(&cfg.ResolverConfig, DefaultResolvConf)
	setPtr(&cfg.CPUCFSQuota, true)
	setPtr(&cfg.CPUCFSQuotaPeriod, metav1.Duration{Duration: 100 * time.Millisecond})
	setPtr(&cfg.NodeStatusMaxImages, int32(50))
	if cfg.MaxOpenFiles == 0 {
		cfg.MaxOpenFiles = 1000000
	}
	if cfg.ContentType == "" {
		cfg.ContentType = "application/vnd.kubernetes.protobuf"
	}
	setPtr(&cfg.KubeAPIQPS, int32(50))
	if cfg.KubeAPIBurst == 0 {
		cfg.KubeAPIBurst = 100
	}
	if cfg.SerializeImagePulls == nil {
		// Serial unless parallel pulls were asked for, as the kubelet.
		parallel := cfg.MaxParallelImagePulls != nil && *cfg.MaxParallelImagePulls >= 2
		cfg.SerializeImagePulls = ptr.To(!parallel)
	}
	setPtr(&cfg.MergeDefaultEvictionSettings, false)
	switch {
	case cfg.EvictionHard == nil:
		cfg.EvictionHard = DefaultEvictionHard()
	case *cfg.MergeDefaultEvictionSettings:
		for k, v := range DefaultEvictionHard() {
			if _, ok := cfg.EvictionHard[k]; !ok {
				cfg.EvictionHard[k] = v
			}
		}
	}
	setDuration(&cfg.EvictionPressureTransitionPeriod, 5*time.Minute)
	setPtr(&cfg.EnableControllerAttachDetach, true)
	setPtr(&cfg.MakeIPTablesUtilChains, true)
	setPtr(&cfg.IPTablesMasqueradeBit, int32(14))
	setPtr(&cfg.IPTablesDropBit, int32(15))
	setPtr(&cfg.FailSwapOn, true)
	if cfg.ContainerLogMaxSize == "" {
		cfg.ContainerLogMaxSize = "10Mi"
	}
	setPtr(&cfg.ContainerLogMaxFiles, int32(5))
	setPtr(&cfg.ContainerLogMaxWorkers, int32(1))
	setPtr(&cfg.ContainerLogMonitorInterval, metav1.Duration{Duration: 10 * time.Second})
	if cfg.ConfigMapAndSecretChangeDetectionStrategy == "" {
		cfg.ConfigMapAndSecretChangeDetectionStrategy = kubeletconfigv1beta1.WatchChangeDetectionStrategy
	}
	if cfg.EnforceNodeAllocatable == nil {
		cfg.EnforceNodeAllocatable = []string{"pods"}
	}
	if cfg.VolumePluginDir == "" {
		cfg.VolumePluginDir = "/usr/libexec/kubernetes/kubelet-plugins/volume/exec/"
	}
	setPtr(&cfg.EnableSystemLogHandler, true)
	setPtr(&cfg.EnableProfilingHandler, true)
	setPtr(&cfg.EnableDebugFlagsHandler, true)
	setPtr(&cfg.SeccompDefault, false)
	setPtr(&cfg.FailCgroupV1, true)
	setPtr(&cfg.MemoryThrottlingFactor, 0.9)
	if cfg.MemoryReservationPolicy == "" {
		cfg.MemoryReservationPolicy = kubeletconfigv1beta1.NoneMemoryReservationPolicy
	}
	setPtr(&cfg.RegisterNode, true)
	setPtr(&cfg.LocalStorageCapacityIsolation, true)
	// As the kubelet, whose KubeletCrashLoopBackOffMax gate is on by default.
	setPtr(&cfg.CrashLoopBackOff.MaxContainerRestartPeriod, metav1.Duration{Duration: MaxContainerRestartPeriod})
	if cfg.ContainerRuntimeEndpoint == "" {
		cfg.ContainerRuntimeEndpoint = DefaultContainerRuntimeEndpoint
	}
	if cfg.PodLogsDir == "" {
		cfg.PodLogsDir = DefaultPodLogsDir
	}
	// shutdownGracePeriod stays 0 (graceful node shutdown off), clusterDomain
	// and cgroupRoot stay empty, as in the kubelet.
}
