package configs

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	cliflag "k8s.io/component-base/cli/flag"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
)

// configFlag is one of the kubelet's deprecated flags that set a
// KubeletConfiguration field nodeagent honours (AddKubeletConfigFlags in
// k8s.io/kubernetes/cmd/kubelet/app/options).
type configFlag struct {
	name  string // flag name
	field string // config field path, as in the file
	// notDeprecated: the kubelet keeps this flag without a deprecation notice.
	notDeprecated bool
	value         func(c *kubeletconfigv1beta1.KubeletConfiguration) pflag.Value
}

// configFlags lists the deprecated config flags nodeagent applies. Every
// field's top-level name is in implementedFields or refused (a test checks).
var configFlags = []configFlag{
	{name: "address", field: "address", value: func(c *kc) pflag.Value { return plain(&c.Address, "ip", parseIP) }},
	{name: "port", field: "port", value: func(c *kc) pflag.Value { return plain(&c.Port, "int32", parseInt32) }},
	{name: "read-only-port", field: "readOnlyPort", value: func(c *kc) pflag.Value { return plain(&c.ReadOnlyPort, "int32", parseInt32) }},
	{name: "tls-cert-file", field: "tlsCertFile", value: func(c *kc) pflag.Value { return plain(&c.TLSCertFile, "string", parseString) }},
	{name: "tls-private-key-file", field: "tlsPrivateKeyFile", value: func(c *kc) pflag.Value { return plain(&c.TLSPrivateKeyFile, "string", parseString) }},
	{name: "client-ca-file", field: "authentication.x509.clientCAFile", value: func(c *kc) pflag.Value {
		return plain(&c.Authentication.X509.ClientCAFile, "string", parseString)
	}},
	{name: "anonymous-auth", field: "authentication.anonymous.enabled", value: func(c *kc) pflag.Value {
		return optional(&c.Authentication.Anonymous.Enabled, "bool", strconv.ParseBool)
	}},
	{name: "authentication-token-webhook", field: "authentication.webhook.enabled", value: func(c *kc) pflag.Value {
		return optional(&c.Authentication.Webhook.Enabled, "bool", strconv.ParseBool)
	}},
	{name: "authentication-token-webhook-cache-ttl", field: "authentication.webhook.cacheTTL", value: func(c *kc) pflag.Value {
		return plain(&c.Authentication.Webhook.CacheTTL, "duration", parseDuration)
	}},
	{name: "authorization-mode", field: "authorization.mode", value: func(c *kc) pflag.Value {
		return plain(&c.Authorization.Mode, "string", func(s string) (kubeletconfigv1beta1.KubeletAuthorizationMode, error) {
			return kubeletconfigv1beta1.KubeletAuthorizationMode(s), nil
		})
	}},
	{name: "authorization-webhook-cache-authorized-ttl", field: "authorization.webhook.cacheAuthorizedTTL", value: func(c *kc) pflag.Value {
		return plain(&c.Authorization.Webhook.CacheAuthorizedTTL, "duration", parseDuration)
	}},
	{name: "authorization-webhook-cache-unauthorized-ttl", field: "authorization.webhook.cacheUnauthorizedTTL", value: func(c *kc) pflag.Value {
		return plain(&c.Authorization.Webhook.CacheUnauthorizedTTL, "duration", parseDuration)
	}},
	{name: "healthz-port", field: "healthzPort", value: func(c *kc) pflag.Value { return optional(&c.HealthzPort, "int32", parseInt32) }},
	{name: "healthz-bind-address", field: "healthzBindAddress", value: func(c *kc) pflag.Value { return plain(&c.HealthzBindAddress, "ip", parseIP) }},
	{name: "local-storage-capacity-isolation", field: "localStorageCapacityIsolation", value: func(c *kc) pflag.Value {
		return optional(&c.LocalStorageCapacityIsolation, "bool", strconv.ParseBool)
	}},
	{name: "pod-manifest-path", field: "staticPodPath", value: func(c *kc) pflag.Value { return plain(&c.StaticPodPath, "string", parseString) }},
	{name: "file-check-frequency", field: "fileCheckFrequency", value: func(c *kc) pflag.Value {
		return plain(&c.FileCheckFrequency, "duration", parseDuration)
	}},
	{name: "fail-swap-on", field: "failSwapOn", value: func(c *kc) pflag.Value { return optional(&c.FailSwapOn, "bool", strconv.ParseBool) }},
	{name: "fail-cgroupv1", field: "failCgroupV1", notDeprecated: true, value: func(c *kc) pflag.Value {
		return optional(&c.FailCgroupV1, "bool", strconv.ParseBool)
	}},
	{name: "cluster-dns", field: "clusterDNS", value: func(c *kc) pflag.Value { return &listValue{p: &c.ClusterDNS} }},
	{name: "cluster-domain", field: "clusterDomain", value: func(c *kc) pflag.Value { return plain(&c.ClusterDomain, "string", parseString) }},
	{name: "resolv-conf", field: "resolvConf", value: func(c *kc) pflag.Value { return optional(&c.ResolverConfig, "string", parseString) }},
	{name: "node-status-update-frequency", field: "nodeStatusUpdateFrequency", value: func(c *kc) pflag.Value {
		return plain(&c.NodeStatusUpdateFrequency, "duration", parseDuration)
	}},
	{name: "provider-id", field: "providerID", notDeprecated: true, value: func(c *kc) pflag.Value {
		return plain(&c.ProviderID, "string", parseString)
	}},
	{name: "register-node", field: "registerNode", value: func(c *kc) pflag.Value { return optional(&c.RegisterNode, "bool", strconv.ParseBool) }},
	{name: "register-with-taints", field: "registerWithTaints", value: func(c *kc) pflag.Value {
		return plain(&c.RegisterWithTaints, "taints", parseTaints)
	}},
	{name: "cgroups-per-qos", field: "cgroupsPerQOS", value: func(c *kc) pflag.Value { return optional(&c.CgroupsPerQOS, "bool", strconv.ParseBool) }},
	{name: "cgroup-driver", field: "cgroupDriver", value: func(c *kc) pflag.Value { return plain(&c.CgroupDriver, "string", parseString) }},
	{name: "cgroup-root", field: "cgroupRoot", value: func(c *kc) pflag.Value { return plain(&c.CgroupRoot, "string", parseString) }},
	{name: "runtime-request-timeout", field: "runtimeRequestTimeout", value: func(c *kc) pflag.Value {
		return plain(&c.RuntimeRequestTimeout, "duration", parseDuration)
	}},
	{name: "max-pods", field: "maxPods", value: func(c *kc) pflag.Value { return plain(&c.MaxPods, "int32", parseInt32) }},
	{name: "pods-per-core", field: "podsPerCore", value: func(c *kc) pflag.Value { return plain(&c.PodsPerCore, "int32", parseInt32) }},
	{name: "serialize-image-pulls", field: "serializeImagePulls", value: func(c *kc) pflag.Value {
		return optional(&c.SerializeImagePulls, "bool", strconv.ParseBool)
	}},
	{name: "registry-qps", field: "registryPullQPS", value: func(c *kc) pflag.Value { return optional(&c.RegistryPullQPS, "int32", parseInt32) }},
	{name: "registry-burst", field: "registryBurst", value: func(c *kc) pflag.Value { return plain(&c.RegistryBurst, "int32", parseInt32) }},
	{name: "kube-api-qps", field: "kubeAPIQPS", value: func(c *kc) pflag.Value { return optional(&c.KubeAPIQPS, "int32", parseInt32) }},
	{name: "kube-api-burst", field: "kubeAPIBurst", value: func(c *kc) pflag.Value { return plain(&c.KubeAPIBurst, "int32", parseInt32) }},
	{name: "container-log-max-size", field: "containerLogMaxSize", value: func(c *kc) pflag.Value {
		return plain(&c.ContainerLogMaxSize, "string", parseString)
	}},
	{name: "container-log-max-files", field: "containerLogMaxFiles", value: func(c *kc) pflag.Value {
		return optional(&c.ContainerLogMaxFiles, "int32", parseInt32)
	}},
	{name: "image-gc-high-threshold", field: "imageGCHighThresholdPercent", value: func(c *kc) pflag.Value {
		return optional(&c.ImageGCHighThresholdPercent, "int32", parseInt32)
	}},
	{name: "image-gc-low-threshold", field: "imageGCLowThresholdPercent", value: func(c *kc) pflag.Value {
		return optional(&c.ImageGCLowThresholdPercent, "int32", parseInt32)
	}},
	{name: "minimum-image-ttl-duration", field: "imageMinimumGCAge", value: func(c *kc) pflag.Value {
		return plain(&c.ImageMinimumGCAge, "duration", parseDuration)
	}},
	{name: "kube-reserved", field: "kubeReserved", value: func(c *kc) pflag.Value { return cliflag.NewMapStringString(&c.KubeReserved) }},
	{name: "system-reserved", field: "systemReserved", value: func(c *kc) pflag.Value { return cliflag.NewMapStringString(&c.SystemReserved) }},
	{name: "eviction-hard", field: "evictionHard", value: func(c *kc) pflag.Value {
		return cliflag.NewLangleSeparatedMapStringString(&c.EvictionHard)
	}},
	{name: "eviction-soft", field: "evictionSoft", value: func(c *kc) pflag.Value {
		return cliflag.NewLangleSeparatedMapStringString(&c.EvictionSoft)
	}},
	{name: "eviction-soft-grace-period", field: "evictionSoftGracePeriod", value: func(c *kc) pflag.Value {
		return cliflag.NewMapStringString(&c.EvictionSoftGracePeriod)
	}},
	{name: "eviction-max-pod-grace-period", field: "evictionMaxPodGracePeriod", value: func(c *kc) pflag.Value {
		return plain(&c.EvictionMaxPodGracePeriod, "int32", parseInt32)
	}},
	{name: "eviction-pressure-transition-period", field: "evictionPressureTransitionPeriod", value: func(c *kc) pflag.Value {
		return plain(&c.EvictionPressureTransitionPeriod, "duration", parseDuration)
	}},
	{name: "eviction-minimum-reclaim", field: "evictionMinimumReclaim", value: func(c *kc) pflag.Value {
		return cliflag.NewMapStringString(&c.EvictionMinimumReclaim)
	}},
	{name: "event-qps", field: "eventRecordQPS", value: func(c *kc) pflag.Value { return optional(&c.EventRecordQPS, "int32", parseInt32) }},
	{name: "event-burst", field: "eventBurst", value: func(c *kc) pflag.Value { return plain(&c.EventBurst, "int32", parseInt32) }},
	// Security-relevant: honoured, or refused by Validate (security.go).
	{name: "enable-server", field: "enableServer", value: func(c *kc) pflag.Value { return optional(&c.EnableServer, "bool", strconv.ParseBool) }},
	{name: "enable-debugging-handlers", field: "enableDebuggingHandlers", value: func(c *kc) pflag.Value {
		return optional(&c.EnableDebuggingHandlers, "bool", strconv.ParseBool)
	}},
	{name: "tls-min-version", field: "tlsMinVersion", value: func(c *kc) pflag.Value { return plain(&c.TLSMinVersion, "string", parseString) }},
	{name: "tls-cipher-suites", field: "tlsCipherSuites", value: func(c *kc) pflag.Value { return &listValue{p: &c.TLSCipherSuites} }},
	{name: "protect-kernel-defaults", field: "protectKernelDefaults", value: func(c *kc) pflag.Value {
		return plain(&c.ProtectKernelDefaults, "bool", strconv.ParseBool)
	}},
	{name: "rotate-certificates", field: "rotateCertificates", value: func(c *kc) pflag.Value {
		return plain(&c.RotateCertificates, "bool", strconv.ParseBool)
	}},
	{name: "rotate-server-certificates", field: "serverTLSBootstrap", value: func(c *kc) pflag.Value {
		return plain(&c.ServerTLSBootstrap, "bool", strconv.ParseBool)
	}},
	{name: "pod-max-pids", field: "podPidsLimit", value: func(c *kc) pflag.Value { return optional(&c.PodPidsLimit, "int64", parseInt64) }},
	{name: "enforce-node-allocatable", field: "enforceNodeAllocatable", value: func(c *kc) pflag.Value {
		return &listValue{p: &c.EnforceNodeAllocatable}
	}},
	{name: "manifest-url", field: "staticPodURL", value: func(c *kc) pflag.Value { return plain(&c.StaticPodURL, "string", parseString) }},
	{name: "allowed-unsafe-sysctls", field: "allowedUnsafeSysctls", value: func(c *kc) pflag.Value {
		return &listValue{p: &c.AllowedUnsafeSysctls}
	}},
	// A KubeletFlags flag in the kubelet, not deprecated, that is or-ed
	// with the field: false leaves the file's value.
	{name: "seccomp-default", field: "seccompDefault", notDeprecated: true, value: func(c *kc) pflag.Value {
		return optional(&c.SeccompDefault, "bool", func(s string) (bool, error) {
			v, err := strconv.ParseBool(s)
			if err == nil && !v && c.SeccompDefault != nil {
				v = *c.SeccompDefault
			}
			return v, err
		})
	}},
}

// ignoredFlags are kubelet flags nodeagent accepts, with the kubelet's value
// types, and ignores: kubelet-only flags (KubeletFlags.AddFlags and the
// global ones) and config flags whose field nodeagent does not implement.
// Map-valued flags are taken as plain strings.
var ignoredFlags = map[string][]string{
	"string": {
		// KubeletFlags
		"cloud-provider", "config-dir", "experimental-mounter-path",
		"image-credential-provider-bin-dir", "image-credential-provider-config", "lock-file", "runtime-cgroups",
		// config flags
		"cpu-manager-policy", "cpu-manager-policy-options",
		"feature-gates", "hairpin-mode",
		"kube-api-content-type", "kube-reserved-cgroup", "kubelet-cgroups", "log-json-info-buffer-size",
		"log-text-info-buffer-size", "logging-format", "manifest-url-header", "memory-manager-policy",
		"pod-cidr", "qos-reserved", "reserved-cpus", "reserved-memory", "system-cgroups",
		"system-reserved-cgroup", "topology-manager-policy",
		"topology-manager-policy-options", "topology-manager-scope", "volume-plugin-dir",
		// removed from the kubelet, still found in older unit files
		"container-runtime", "pod-infra-container-image", "seccomp-profile-root",
	},
	"bool": {
		"exit-on-lock-contention", "experimental-allocatable-ignore-eviction",
		"contention-profiling", "cpu-cfs-quota", "enable-controller-attach-detach", "kernel-memcg-notification",
		"log-json-split-stream", "log-text-split-stream", "make-iptables-util-chains",
		"runonce", "keep-terminated-pod-volumes", "register-schedulable",
	},
	"int32": {
		"maximum-dead-containers", "maximum-dead-containers-per-container",
		"node-status-max-images", "oom-score-adj",
	},
	"int64":    {"max-open-files"},
	"duration": {"minimum-container-ttl-duration", "sync-frequency", "cpu-cfs-quota-period", "cpu-manager-reconcile-period", "http-check-frequency", "housekeeping-interval", "log-flush-frequency", "streaming-connection-idle-timeout", "volume-stats-agg-period"},
}

// removedFlags are in ignoredFlags although the current kubelet has dropped
// them; the warning says so.
var removedFlags = map[string]bool{
	"container-runtime": true, "pod-infra-container-image": true, "seccomp-profile-root": true,
	"keep-terminated-pod-volumes": true, "register-schedulable": true,
}

type kc = kubeletconfigv1beta1.KubeletConfiguration

// kubeletFlags holds what the kubelet compatibility flags need after parsing.
type kubeletFlags struct {
	fs  *pflag.FlagSet
	set []flagSet // config flags in the order given, replayed onto the file's config
}

type flagSet struct{ name, value string }

// recorder remembers every successful Set of a config flag.
type recorder struct {
	pflag.Value
	name string
	log  *[]flagSet
}

func (r *recorder) Set(s string) error {
	if err := r.Value.Set(s); err != nil {
		return err
	}
	*r.log = append(*r.log, flagSet{r.name, s})
	return nil
}

// addKubeletFlags registers the kubelet's deprecated config flags and the
// ignored kubelet flags on fs.
func addKubeletFlags(fs *pflag.FlagSet) *kubeletFlags {
	k := &kubeletFlags{fs: fs}
	scratch := &kc{} // parsing checks the values; apply sets the real config
	for _, f := range configFlags {
		usage := fmt.Sprintf("Deprecated: set %s in the --config file instead.", f.field)
		if f.notDeprecated {
			usage = fmt.Sprintf("Sets config field %s.", f.field)
		}
		fl := fs.VarPF(&recorder{Value: f.value(scratch), name: f.name, log: &k.set}, f.name, "", usage)
		if fl.Value.Type() == "bool" {
			fl.NoOptDefVal = "true"
		}
	}
	for typ, names := range ignoredFlags {
		for _, name := range names {
			usage := "Kubelet flag, ignored by nodeagent."
			switch typ {
			case "string":
				fs.String(name, "", usage)
			case "bool":
				fs.Bool(name, false, usage)
			case "int32":
				fs.Int32(name, 0, usage)
			case "int64":
				fs.Int64(name, 0, usage)
			case "duration":
				fs.Duration(name, 0, usage)
			}
			_ = fs.MarkHidden(name)
		}
	}
	return k
}

// apply sets the config flags given on the command line on cfg, in order,
// and returns their names and a deprecation warning for each.
func (k *kubeletFlags) apply(cfg *kc) (names []string, warnings []string, err error) {
	byName := map[string]configFlag{}
	for _, f := range configFlags {
		byName[f.name] = f
	}
	values := map[string]pflag.Value{}
	for _, s := range k.set {
		f := byName[s.name]
		v, ok := values[s.name]
		if !ok {
			v = f.value(cfg)
			values[s.name] = v
			names = append(names, "--"+s.name)
			if !f.notDeprecated {
				warnings = append(warnings, fmt.Sprintf("flag --%s is deprecated, set field %s in the config file instead", s.name, f.field))
			}
		}
		if err := v.Set(s.value); err != nil {
			return nil, nil, fmt.Errorf("--%s: %w", s.name, err)
		}
	}
	return names, warnings, nil
}

// ignored returns one warning naming the ignored kubelet flags that were
// given, or nothing.
func (k *kubeletFlags) ignored() []string {
	var names []string
	k.fs.Visit(func(f *pflag.Flag) {
		if isIgnored(f.Name) {
			n := "--" + f.Name
			if removedFlags[f.Name] {
				n += " (removed from the kubelet)"
			}
			names = append(names, n)
		}
	})
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	return []string{"kubelet flags not implemented by nodeagent and ignored: " + strings.Join(names, ", ")}
}

func isIgnored(name string) bool {
	for _, names := range ignoredFlags {
		for _, n := range names {
			if n == name {
				return true
			}
		}
	}
	return false
}

// checkUnsupported fails where ignoring a kubelet flag would leave the agent
// unable to work as intended.
func (k *kubeletFlags) checkUnsupported() error {
	if dir := k.fs.Lookup("config-dir").Value.String(); dir != "" {
		var dropIn string
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(path, ".conf") {
				dropIn = path
				return fs.SkipAll
			}
			return err
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("--config-dir: %w", err)
		}
		if dropIn != "" {
			return fmt.Errorf("--config-dir: drop-in config files are not implemented, merge %s into the --config file", dropIn)
		}
	}
	return nil
}
