package configs

import (
	"crypto/tls"
	"fmt"
	"strings"

	cliflag "k8s.io/component-base/cli/flag"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
)

// Values of enforceNodeAllocatable the kubelet accepts.
const (
	enforcePods                       = "pods"
	enforceNone                       = "none"
	enforceSystemReserved             = "system-reserved"
	enforceSystemReservedCompressible = "system-reserved-compressible"
	enforceKubeReserved               = "kube-reserved"
	enforceKubeReservedCompressible   = "kube-reserved-compressible"
)

// refusal is a security-relevant config field nodeagent does not
// implement: any value but the ones it honours stops the agent, because
// ignoring it would leave the node less protected than its configuration
// says. See the package documentation for the list and the reasons.
type refusal struct {
	field string
	// refused returns why the value cannot be honoured, or "" if it can.
	refused func(*kubeletconfigv1beta1.KubeletConfiguration) string
}

// refusals are checked by Validate after defaulting.
var refusals = []refusal{
	{"podPidsLimit", func(c *kubeletconfigv1beta1.KubeletConfiguration) string {
		if c.PodPidsLimit != nil && *c.PodPidsLimit > 0 && !ownsPodCgroups(c) {
			return fmt.Sprintf("per-pod PID limits are set by nodeagent only with cgroupsPerQOS and the cgroupfs driver (got cgroupDriver %q, cgroupsPerQOS %v); a pod could use every PID of the node; remove it, set -1 or use the cgroupfs driver (got %d)",
				c.CgroupDriver, c.CgroupsPerQOS == nil || *c.CgroupsPerQOS, *c.PodPidsLimit)
		}
		return ""
	}},
	{"enforceNodeAllocatable", func(c *kubeletconfigv1beta1.KubeletConfiguration) string {
		var refused []string
		for _, v := range c.EnforceNodeAllocatable {
			switch v {
			case enforceSystemReserved, enforceSystemReservedCompressible, enforceKubeReserved, enforceKubeReservedCompressible:
				refused = append(refused, v)
			}
		}
		if len(refused) > 0 {
			return fmt.Sprintf("enforcing %s is not implemented by nodeagent (no cgroup limits are set on system or kube daemons); use %q or %q", strings.Join(refused, ", "), enforcePods, enforceNone)
		}
		return ""
	}},
	{"imagePullCredentialsVerificationPolicy", func(c *kubeletconfigv1beta1.KubeletConfiguration) string {
		switch p := c.ImagePullCredentialsVerificationPolicy; p {
		case kubeletconfigv1beta1.AlwaysVerify, kubeletconfigv1beta1.NeverVerifyAllowlistedImages:
			return fmt.Sprintf("%s is not implemented by nodeagent: a pod could use an image present on the node without the credentials to pull it; use %s or %s",
				p, kubeletconfigv1beta1.NeverVerifyPreloadedImages, kubeletconfigv1beta1.NeverVerify)
		}
		return ""
	}},
	{"staticPodURL", func(c *kubeletconfigv1beta1.KubeletConfiguration) string {
		if c.StaticPodURL != "" {
			return "static pods from a URL (an unauthenticated HTTP source of pods that may be privileged) are not implemented by nodeagent; use staticPodPath"
		}
		return ""
	}},
}

// ownsPodCgroups reports whether nodeagent writes the pods' cgroups
// (package podcgroups): with cgroupsPerQOS and the cgroupfs driver.
func ownsPodCgroups(c *kubeletconfigv1beta1.KubeletConfiguration) bool {
	return (c.CgroupsPerQOS == nil || *c.CgroupsPerQOS) && c.CgroupDriver != "systemd"
}

// refusedFields are the fields of refusals by name.
var refusedFields = func() map[string]bool {
	m := map[string]bool{}
	for _, r := range refusals {
		m[r.field] = true
	}
	return m
}()

// validateSecurity checks the security-relevant fields: values that do not
// exist, and values nodeagent cannot honour (refusals).
func validateSecurity(cfg *kubeletconfigv1beta1.KubeletConfiguration, add func(field, format string, args ...any)) {
	if _, err := tlsMinVersion(cfg); err != nil {
		add("tlsMinVersion", "%v", err)
	}
	if _, err := tlsCipherSuites(cfg); err != nil {
		add("tlsCipherSuites", "%v", err)
	}
	if _, err := cliflag.TLSCurvePreferences(cfg.TLSCurvePreferences); err != nil {
		add("tlsCurvePreferences", "%v", err)
	}
	for i, v := range cfg.EnforceNodeAllocatable {
		switch v {
		case enforcePods, enforceSystemReserved, enforceSystemReservedCompressible, enforceKubeReserved, enforceKubeReservedCompressible:
		case enforceNone:
			if len(cfg.EnforceNodeAllocatable) > 1 {
				add(fmt.Sprintf("enforceNodeAllocatable[%d]", i), "%q must be the only value", enforceNone)
			}
		default:
			add(fmt.Sprintf("enforceNodeAllocatable[%d]", i), "unknown value %q", v)
		}
	}
	switch p := cfg.ImagePullCredentialsVerificationPolicy; p {
	case "", kubeletconfigv1beta1.NeverVerify, kubeletconfigv1beta1.NeverVerifyPreloadedImages,
		kubeletconfigv1beta1.NeverVerifyAllowlistedImages, kubeletconfigv1beta1.AlwaysVerify:
	default:
		add("imagePullCredentialsVerificationPolicy", "unknown policy %q", p)
	}
	for _, r := range refusals {
		if why := r.refused(cfg); why != "" {
			add(r.field, "%s", why)
		}
	}
}

// TLS is the serving TLS configuration of the secure port, from
// tlsMinVersion, tlsCipherSuites and tlsCurvePreferences with the names and
// values the kubelet accepts (k8s.io/component-base/cli/flag).
type TLS struct {
	// MinVersion is tls.VersionTLS12 when tlsMinVersion is empty.
	MinVersion uint16
	// CipherSuites is nil for Go's defaults.
	CipherSuites []uint16
	// CurvePreferences is nil for Go's defaults.
	CurvePreferences []tls.CurveID
}

// TLSOptions resolves the TLS fields of cfg; the error names the field.
// Validate has checked them, so after Parse it does not fail.
func TLSOptions(cfg *kubeletconfigv1beta1.KubeletConfiguration) (TLS, error) {
	var o TLS
	var err error
	if o.MinVersion, err = tlsMinVersion(cfg); err != nil {
		return TLS{}, fmt.Errorf("tlsMinVersion: %w", err)
	}
	if o.CipherSuites, err = tlsCipherSuites(cfg); err != nil {
		return TLS{}, fmt.Errorf("tlsCipherSuites: %w", err)
	}
	if o.CurvePreferences, err = cliflag.TLSCurvePreferences(cfg.TLSCurvePreferences); err != nil {
		return TLS{}, fmt.Errorf("tlsCurvePreferences: %w", err)
	}
	return o, nil
}

func tlsMinVersion(cfg *kubeletconfigv1beta1.KubeletConfiguration) (uint16, error) {
	v, err := cliflag.TLSVersion(cfg.TLSMinVersion)
	if err != nil {
		return 0, fmt.Errorf("%w, want one of %s", err, strings.Join(cliflag.TLSPossibleVersions(), ", "))
	}
	return v, nil
}

func tlsCipherSuites(cfg *kubeletconfigv1beta1.KubeletConfiguration) ([]uint16, error) {
	ids, err := cliflag.TLSCipherSuites(cfg.TLSCipherSuites)
	if err != nil {
		return nil, fmt.Errorf("%w (names as in Go's crypto/tls, for example TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)", err)
	}
	return ids, nil
}

// notSecurityRelevant are the fields nodeagent ignores (with a warning)
// after judging that ignoring them leaves the node no less protected than
// its configuration says, each with the reason. A test makes every
// KubeletConfiguration field implemented, refused or listed here, so that
// a new upstream field gets a decision.
var notSecurityRelevant = map[string]string{
	"configMapAndSecretChangeDetectionStrategy": "refresh of mounted configMaps and secrets",
	"contentType":                          "wire format",
	"cpuCFSQuota":                          "false only lifts CPU limits, which nodeagent keeps",
	"cpuCFSQuotaPeriod":                    "CPU accounting",
	"cpuManagerPolicy":                     "CPU placement",
	"cpuManagerPolicyOptions":              "CPU placement",
	"cpuManagerReconcilePeriod":            "CPU placement",
	"enableContentionProfiling":            "profiling rate",
	"enableControllerAttachDetach":         "volume attachment",
	"enableSystemLogQuery":                 "only widens /logs/, which nodeagent does not serve",
	"featureGates":                         "nodeagent has no feature gates",
	"hairpinMode":                          "pod networking",
	"httpCheckFrequency":                   "staticPodURL is refused",
	"iptablesDropBit":                      "unused by the kubelet too",
	"iptablesMasqueradeBit":                "unused by the kubelet too",
	"kernelMemcgNotification":              "eviction signal latency",
	"kubeReservedCgroup":                   "only used by enforceNodeAllocatable, refused",
	"kubeletCgroups":                       "the agent's own cgroup",
	"logging":                              "log format",
	"makeIPTablesUtilChains":               "false is what nodeagent does; its default true is a known gap (the localhost martian-packet rule, which kube-proxy also installs)",
	"maxOpenFiles":                         "the agent's own limit",
	"memoryManagerPolicy":                  "memory placement",
	"memoryReservationPolicy":              "memory placement",
	"memorySwap":                           "swap use of pods",
	"memoryThrottlingFactor":               "memory QoS",
	"oomScoreAdj":                          "the agent's own OOM score",
	"podCIDR":                              "standalone networking",
	"preloadedImagesVerificationAllowlist": "only used by imagePullCredentialsVerificationPolicy NeverVerifyAllowlistedImages, refused",
	"qosReserved":                          "memory QoS",
	"reservedMemory":                       "memory placement",
	"reservedSystemCPUs":                   "CPU placement",
	"runOnce":                              "run mode",
	"showHiddenMetricsForVersion":          "metrics",
	"singleProcessOOMKill":                 "OOM behaviour",
	"staticPodURLHeader":                   "only used by staticPodURL, refused",
	"streamingConnectionIdleTimeout":       "unused by the kubelet too since streams go to the runtime",
	"syncFrequency":                        "timing",
	"systemCgroups":                        "system daemons' cgroup",
	"systemReservedCgroup":                 "only used by enforceNodeAllocatable, refused",
	"topologyManagerPolicy":                "NUMA placement",
	"topologyManagerPolicyOptions":         "NUMA placement",
	"topologyManagerScope":                 "NUMA placement",
	"tracing":                              "traces",
	"userNamespaces":                       "sizes the ID mapping of hostUsers: false pods; grants nothing",
	"volumePluginDir":                      "flexvolume drivers, which nodeagent does not run",
	"volumeStatsAggPeriod":                 "timing",
}
