package configs

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
)

// Validate checks a defaulted configuration. It returns every problem found,
// joined with "; "; each message starts with the config field it is about, for example
// "port: must be between 1 and 65535, got 70000". Security-relevant fields
// set to a value nodeagent cannot honour are errors too (refusals in
// security.go). Host checks (swap, cgroup version, kernel tunables) are not
// done here, see CheckHost.
func Validate(cfg *kubeletconfigv1beta1.KubeletConfiguration) error {
	if cfg == nil {
		return errors.New("configuration is nil")
	}
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	port := func(field string, p int32, zeroOK bool) {
		if zeroOK && p == 0 {
			return
		}
		if p < 1 || p > 65535 {
			lo := 1
			if zeroOK {
				lo = 0
			}
			add(field, "must be between %d and 65535, got %d", lo, p)
		}
	}
	ip := func(field, s string) {
		if net.ParseIP(s) == nil {
			add(field, "must be an IP address, got %q", s)
		}
	}
	positive := func(field string, d time.Duration) {
		if d <= 0 {
			add(field, "must be greater than 0, got %v", d)
		}
	}

	ip("address", cfg.Address)
	port("port", cfg.Port, false)
	port("readOnlyPort", cfg.ReadOnlyPort, true)
	if cfg.HealthzPort != nil {
		port("healthzPort", *cfg.HealthzPort, true)
	}
	ip("healthzBindAddress", cfg.HealthzBindAddress)
	if (cfg.TLSCertFile == "") != (cfg.TLSPrivateKeyFile == "") {
		add("tlsCertFile", "tlsCertFile and tlsPrivateKeyFile must be set together")
	}

	switch cfg.Authorization.Mode {
	case kubeletconfigv1beta1.KubeletAuthorizationModeWebhook, kubeletconfigv1beta1.KubeletAuthorizationModeAlwaysAllow:
	default:
		add("authorization.mode", "must be %q or %q, got %q",
			kubeletconfigv1beta1.KubeletAuthorizationModeWebhook, kubeletconfigv1beta1.KubeletAuthorizationModeAlwaysAllow, cfg.Authorization.Mode)
	}

	for i, s := range cfg.ClusterDNS {
		ip(fmt.Sprintf("clusterDNS[%d]", i), s)
	}
	if cfg.MaxPods < 0 {
		add("maxPods", "must not be negative, got %d", cfg.MaxPods)
	}
	if cfg.NodeLeaseDurationSeconds <= 0 {
		add("nodeLeaseDurationSeconds", "must be greater than 0, got %d", cfg.NodeLeaseDurationSeconds)
	}
	positive("nodeStatusUpdateFrequency", cfg.NodeStatusUpdateFrequency.Duration)
	positive("nodeStatusReportFrequency", cfg.NodeStatusReportFrequency.Duration)
	positive("syncFrequency", cfg.SyncFrequency.Duration)
	positive("runtimeRequestTimeout", cfg.RuntimeRequestTimeout.Duration)

	if cfg.ContainerLogMaxFiles != nil && *cfg.ContainerLogMaxFiles < 2 {
		add("containerLogMaxFiles", "must be at least 2, got %d", *cfg.ContainerLogMaxFiles)
	}
	if q, err := ParseQuantity(cfg.ContainerLogMaxSize); err != nil {
		add("containerLogMaxSize", "must be a quantity such as 10Mi, got %q: %v", cfg.ContainerLogMaxSize, err)
	} else if q.Sign() <= 0 {
		add("containerLogMaxSize", "must be greater than 0, got %q", cfg.ContainerLogMaxSize)
	}
	if cfg.ContainerLogMaxWorkers != nil && *cfg.ContainerLogMaxWorkers < 1 {
		add("containerLogMaxWorkers", "must be at least 1, got %d", *cfg.ContainerLogMaxWorkers)
	}
	if cfg.ContainerLogMonitorInterval != nil && cfg.ContainerLogMonitorInterval.Duration < 3*time.Second {
		add("containerLogMonitorInterval", "must be at least 3s, got %v", cfg.ContainerLogMonitorInterval.Duration)
	}

	switch cfg.CgroupDriver {
	case "cgroupfs", "systemd":
	default:
		add("cgroupDriver", "must be \"cgroupfs\" or \"systemd\", got %q", cfg.CgroupDriver)
	}
	if cfg.KubeAPIQPS != nil && *cfg.KubeAPIQPS < 0 {
		add("kubeAPIQPS", "must not be negative, got %d", *cfg.KubeAPIQPS)
	}
	if cfg.KubeAPIBurst < 0 {
		add("kubeAPIBurst", "must not be negative, got %d", cfg.KubeAPIBurst)
	}
	if hi, lo := cfg.ImageGCHighThresholdPercent, cfg.ImageGCLowThresholdPercent; hi != nil && lo != nil {
		if *hi < 0 || *hi > 100 {
			add("imageGCHighThresholdPercent", "must be between 0 and 100, got %d", *hi)
		}
		if *lo < 0 || *lo > 100 {
			add("imageGCLowThresholdPercent", "must be between 0 and 100, got %d", *lo)
		}
		if *lo >= *hi {
			add("imageGCLowThresholdPercent", "must be less than imageGCHighThresholdPercent (%d), got %d", *hi, *lo)
		}
	}
	// As the kubelet's ValidateKubeletConfiguration.
	if d := cfg.ImageMinimumGCAge.Duration; d < 0 {
		add("imageMinimumGCAge", "must not be negative, got %v", d)
	}
	if d := cfg.ImageMaximumGCAge.Duration; d < 0 {
		add("imageMaximumGCAge", "must not be negative, got %v", d)
	} else if d > 0 && d <= cfg.ImageMinimumGCAge.Duration {
		add("imageMaximumGCAge", "must be greater than imageMinimumGCAge (%v), got %v", cfg.ImageMinimumGCAge.Duration, d)
	}
	if cfg.ContainerRuntimeEndpoint == "" {
		add("containerRuntimeEndpoint", "must not be empty")
	}
	for i, t := range cfg.RegisterWithTaints {
		if err := validateTaint(t); err != nil {
			add(fmt.Sprintf("registerWithTaints[%d]", i), "%v", err)
		}
	}
	validateEviction(cfg, add)
	validateReserved("kubeReserved", cfg.KubeReserved, add)
	validateReserved("systemReserved", cfg.SystemReserved, add)
	if cfg.EventRecordQPS != nil && *cfg.EventRecordQPS < 0 {
		add("eventRecordQPS", "must not be negative, got %d", *cfg.EventRecordQPS)
	}
	if cfg.EventBurst < 0 {
		add("eventBurst", "must not be negative, got %d", cfg.EventBurst)
	}
	validateShutdown(cfg, add)
	validatePulls(cfg, add)
	if cfg.PodsPerCore < 0 {
		add("podsPerCore", "must not be negative, got %d", cfg.PodsPerCore)
	}
	// As the kubelet with its KubeletCrashLoopBackOffMax gate (on by
	// default): Default sets 300s when unset.
	if p := cfg.CrashLoopBackOff.MaxContainerRestartPeriod; p != nil && (p.Duration < time.Second || p.Duration > MaxContainerRestartPeriod) {
		add("crashLoopBackOff.maxContainerRestartPeriod", "must be between 1s and %v, got %v", MaxContainerRestartPeriod, p.Duration)
	}
	validateSecurity(cfg, add)
	if len(errs) == 0 {
		return nil
	}
	return fieldErrors(errs)
}

// fieldErrors joins validation errors on one line, so that a log line shows
// them all.
type fieldErrors []error

func (e fieldErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e fieldErrors) Unwrap() []error { return e }

func validateTaint(t v1.Taint) error {
	if msgs := utilvalidation.IsQualifiedName(t.Key); len(msgs) > 0 {
		return fmt.Errorf("invalid key %q: %s", t.Key, strings.Join(msgs, "; "))
	}
	if msgs := utilvalidation.IsValidLabelValue(t.Value); len(msgs) > 0 {
		return fmt.Errorf("invalid value %q: %s", t.Value, strings.Join(msgs, "; "))
	}
	switch t.Effect {
	case v1.TaintEffectNoSchedule, v1.TaintEffectPreferNoSchedule, v1.TaintEffectNoExecute:
	default:
		return fmt.Errorf("effect must be NoSchedule, PreferNoSchedule or NoExecute, got %q", t.Effect)
	}
	if t.TimeAdded != nil {
		return errors.New("timeAdded must not be set")
	}
	return nil
}

// exponentRE matches the decimal exponent of a quantity such as 1e3.
var exponentRE = regexp.MustCompile(`[eE]([+-]?[0-9]+)$`)

// ParseQuantity is resource.ParseQuantity with a bound on length and
// exponent: ParseQuantity, or a comparison of what it returns, spins for a
// very long time (and allocates) on inputs such as "1e-999999999" (found
// by FuzzLoad) or "0e<17 digits>" (FuzzParseBandwidth). Every quantity
// from outside the agent's code (config, pod annotations) goes through it.
func ParseQuantity(s string) (resource.Quantity, error) {
	if len(s) > 64 {
		return resource.Quantity{}, errors.New("quantity too long")
	}
	if m := exponentRE.FindStringSubmatch(s); m != nil {
		if e, err := strconv.Atoi(m[1]); err != nil || e < -30 || e > 30 {
			return resource.Quantity{}, errors.New("exponent out of range")
		}
	}
	return resource.ParseQuantity(s)
}

// validatePulls checks the image pull limits as the kubelet does.
func validatePulls(cfg *kubeletconfigv1beta1.KubeletConfiguration, add func(field, format string, args ...any)) {
	if cfg.RegistryPullQPS != nil && *cfg.RegistryPullQPS < 0 {
		add("registryPullQPS", "must not be negative, got %d", *cfg.RegistryPullQPS)
	}
	if cfg.RegistryBurst < 0 {
		add("registryBurst", "must not be negative, got %d", cfg.RegistryBurst)
	}
	if n := cfg.MaxParallelImagePulls; n != nil && *n < 1 {
		add("maxParallelImagePulls", "must be at least 1, got %d", *n)
	} else if n != nil && *n > 1 && (cfg.SerializeImagePulls == nil || *cfg.SerializeImagePulls) {
		add("maxParallelImagePulls", "cannot be above 1 unless serializeImagePulls is false, got %d", *n)
	}
}

// validateShutdown checks the graceful node shutdown fields as the
// kubelet does (its GracefulNodeShutdown and
// GracefulNodeShutdownBasedOnPodPriority gates are on by default), and
// refuses a negative number of seconds in shutdownGracePeriodByPodPriority.
func validateShutdown(cfg *kubeletconfigv1beta1.KubeletConfiguration, add func(field, format string, args ...any)) {
	total, critical := cfg.ShutdownGracePeriod.Duration, cfg.ShutdownGracePeriodCriticalPods.Duration
	if critical > total {
		add("shutdownGracePeriodCriticalPods", "must not exceed shutdownGracePeriod (%v), got %v", total, critical)
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"shutdownGracePeriod", total}, {"shutdownGracePeriodCriticalPods", critical}} {
		if f.d < 0 || (f.d > 0 && f.d < time.Second) {
			add(f.name, "must be 0 or at least 1s, got %v", f.d)
		}
	}
	if len(cfg.ShutdownGracePeriodByPodPriority) > 0 && (total > 0 || critical > 0) {
		add("shutdownGracePeriodByPodPriority", "cannot be set together with shutdownGracePeriod or shutdownGracePeriodCriticalPods")
	}
	for i, p := range cfg.ShutdownGracePeriodByPodPriority {
		if p.ShutdownGracePeriodSeconds < 0 {
			add(fmt.Sprintf("shutdownGracePeriodByPodPriority[%d].shutdownGracePeriodSeconds", i), "must not be negative, got %d", p.ShutdownGracePeriodSeconds)
		}
	}
}
