package configs

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// implementedFields are the top-level config fields nodeagent honours.
// Setting any other known field earns a warning; a security-relevant one
// set to a value nodeagent cannot honour is an error (refusals).
var implementedFields = map[string]bool{
	"nodeStatusMaxImages": true,
	"apiVersion":          true, "kind": true,
	"address": true, "port": true, "readOnlyPort": true,
	"tlsCertFile": true, "tlsPrivateKeyFile": true,
	"authentication": true, "authorization": true,
	"clusterDNS": true, "clusterDomain": true,
	"containerRuntimeEndpoint": true, "imageServiceEndpoint": true,
	"maxPods":                   true,
	"nodeStatusUpdateFrequency": true, "nodeStatusReportFrequency": true, "nodeLeaseDurationSeconds": true,
	"staticPodPath": true, "fileCheckFrequency": true,
	"containerLogMaxSize": true, "containerLogMaxFiles": true,
	"containerLogMaxWorkers": true, "containerLogMonitorInterval": true,
	"registerNode": true, "registerWithTaints": true, "providerID": true,
	"cgroupRoot": true, "cgroupsPerQOS": true, "cgroupDriver": true,
	"failSwapOn": true, "failCgroupV1": true,
	"podLogsDir":  true,
	"healthzPort": true, "healthzBindAddress": true,
	"kubeAPIQPS": true, "kubeAPIBurst": true,
	"runtimeRequestTimeout": true,
	"resolvConf":            true,
	"eventRecordQPS":        true, "eventBurst": true,
	// The secure port and its debugging handlers.
	"enableServer": true, "enableDebuggingHandlers": true,
	"enableProfilingHandler": true, "enableSystemLogHandler": true, "enableDebugFlagsHandler": true,
	"tlsMinVersion": true, "tlsCipherSuites": true, "tlsCurvePreferences": true,
	"protectKernelDefaults": true,
	// Implemented by podsync.
	"seccompDefault": true, "allowedUnsafeSysctls": true,
	// Image pull limits and the crash-loop back-off (package podsync);
	// podsPerCore caps the pods capacity (package nodestatus).
	"serializeImagePulls": true, "maxParallelImagePulls": true,
	"registryPullQPS": true, "registryBurst": true,
	"crashLoopBackOff": true, "podsPerCore": true,
	// Local storage limits (package eviction).
	"localStorageCapacityIsolation": true,
	// Image garbage collection (package imagegc).
	"imageGCHighThresholdPercent": true, "imageGCLowThresholdPercent": true,
	"imageMinimumGCAge": true, "imageMaximumGCAge": true,
	// Node allocatable and the pressure conditions (package nodestatus).
	// evictionHard sets those conditions and holds memory and disk back
	// from allocatable; its memory.available, nodefs.available and
	// imagefs.available thresholds evict pods (package eviction).
	"kubeReserved": true, "systemReserved": true,
	"evictionHard": true, "mergeDefaultEvictionSettings": true,
	// Soft thresholds, their grace periods, minimum reclaims and the
	// pressure transition period: package eviction evicts by them and
	// package nodestatus reports its conditions by them.
	"evictionSoft": true, "evictionSoftGracePeriod": true, "evictionMaxPodGracePeriod": true,
	"evictionPressureTransitionPeriod": true, "evictionMinimumReclaim": true,
	// Graceful node shutdown on SIGTERM or logind's PrepareForShutdown (package nodeshutdown).
	"shutdownGracePeriod": true, "shutdownGracePeriodCriticalPods": true, "shutdownGracePeriodByPodPriority": true,
	// Security-relevant fields nodeagent does not implement: their default
	// (off) is what nodeagent does and any other value stops it (see
	// refusals in security.go). enforceNodeAllocatable is refused too but
	// stays unimplemented: nodeagent does not enforce its default, pods.
	"rotateCertificates": true, "serverTLSBootstrap": true, "podPidsLimit": true,
	"imagePullCredentialsVerificationPolicy": true, "staticPodURL": true,
}

// knownFields are the top-level JSON names of KubeletConfiguration.
var knownFields = func() map[string]bool {
	known := map[string]bool{"apiVersion": true, "kind": true}
	t := reflect.TypeFor[kubeletconfigv1beta1.KubeletConfiguration]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			known[name] = true
		}
	}
	return known
}()

// Load reads, decodes, defaults and validates one KubeletConfiguration file
// (YAML or JSON). Unknown fields and fields nodeagent does not implement are
// returned as warnings. Every error starts with "config file <path>: ".
func Load(path string) (*kubeletconfigv1beta1.KubeletConfiguration, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return loadData(path, data)
}

// loadRaw reads and decodes a config file without defaulting or validating
// it, so that flags can be applied first.
func loadRaw(path string) (*kubeletconfigv1beta1.KubeletConfiguration, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return decodeFile(path, data)
}

func decodeFile(path string, data []byte) (*kubeletconfigv1beta1.KubeletConfiguration, []string, error) {
	cfg, warnings, err := decode(data)
	if err != nil {
		return nil, warnings, fmt.Errorf("config file %s: %w", path, err)
	}
	for i, w := range warnings {
		warnings[i] = fmt.Sprintf("config file %s: %s", path, w)
	}
	return cfg, warnings, nil
}

func loadData(path string, data []byte) (*kubeletconfigv1beta1.KubeletConfiguration, []string, error) {
	cfg, warnings, err := decodeFile(path, data)
	if err != nil {
		return nil, warnings, err
	}
	Default(cfg)
	if err := Validate(cfg); err != nil {
		return nil, warnings, fmt.Errorf("config file %s: %w", path, err)
	}
	return cfg, warnings, nil
}

// decode turns YAML or JSON into a KubeletConfiguration, checking kind and
// apiVersion. Unknown fields, duplicate fields and set but unimplemented
// fields are warnings; a value of the wrong type is an error naming the field.
func decode(data []byte) (*kubeletconfigv1beta1.KubeletConfiguration, []string, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, nil, fmt.Errorf("parse: %w", err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil || top == nil {
		return nil, nil, fmt.Errorf("must be a %s object with apiVersion %s", Kind, APIVersion)
	}
	if err := checkTypeMeta(top); err != nil {
		return nil, nil, err
	}

	if err := checkReservedMemory(top["reservedMemory"]); err != nil {
		return nil, nil, err
	}

	// The strict pass reports unknown and duplicate fields and, since strict
	// problems do not stop it, leaves the same result a lenient decode would.
	cfg := &kubeletconfigv1beta1.KubeletConfiguration{}
	strictErrs, err := kjson.UnmarshalStrict(js, cfg)
	if err != nil {
		return nil, nil, fieldError(top, err)
	}
	var warnings []string
	for _, e := range strictErrs {
		warnings = append(warnings, e.Error())
	}
	var unimplemented []string
	for k, v := range top {
		// kubeadm writes every duration and the logging block, zero
		// values that ask for the defaults: nothing to warn about.
		if knownFields[k] && !implementedFields[k] && !zeroJSON(v) {
			unimplemented = append(unimplemented, k)
		}
	}
	if len(unimplemented) > 0 {
		sort.Strings(unimplemented)
		warnings = append(warnings, "config fields not implemented by nodeagent and ignored: "+strings.Join(unimplemented, ", "))
	}
	return cfg, warnings, nil
}

// zeroJSON tells whether v only asks for the default: null, "", "0",
// "0s", 0, or an object or array of such values. false is not: for the
// kubelet's *bool fields it is a choice.
func zeroJSON(v json.RawMessage) bool {
	var x any
	if err := json.Unmarshal(v, &x); err != nil {
		return false
	}
	var zero func(any) bool
	zero = func(x any) bool {
		switch t := x.(type) {
		case nil:
			return true
		case string:
			return t == "" || t == "0" || t == "0s"
		case float64:
			return t == 0
		case map[string]any:
			for _, e := range t {
				if !zero(e) {
					return false
				}
			}
			return true
		case []any:
			for _, e := range t {
				if !zero(e) {
					return false
				}
			}
			return true
		}
		return false
	}
	return zero(x)
}

func checkTypeMeta(top map[string]json.RawMessage) error {
	for _, want := range []struct{ field, value string }{{"kind", Kind}, {"apiVersion", APIVersion}} {
		var got string
		if raw, ok := top[want.field]; ok {
			if err := json.Unmarshal(raw, &got); err != nil {
				return fmt.Errorf("field %q: must be a string: %w", want.field, err)
			}
		}
		if got != want.value {
			return fmt.Errorf("field %q: must be %q, got %q", want.field, want.value, got)
		}
	}
	return nil
}

// checkReservedMemory bounds the quantities in reservedMemory[].limits before
// they reach resource.ParseQuantity, which spins on inputs like
// "1e-999999999" (see parseQuantity). Other problems are left to the decoder.
func checkReservedMemory(raw json.RawMessage) error {
	if raw == nil {
		return nil
	}
	var entries []struct {
		Limits map[string]json.RawMessage `json:"limits"`
	}
	if json.Unmarshal(raw, &entries) != nil {
		return nil //nolint:nilerr // the decoder reports the malformed input
	}
	for i, e := range entries {
		for name, v := range e.Limits {
			s := string(v)
			if unq, err := strconv.Unquote(s); err == nil {
				s = unq
			}
			if _, err := ParseQuantity(s); err != nil {
				return fmt.Errorf("field \"reservedMemory[%d].limits.%s\": %w", i, name, err)
			}
		}
	}
	return nil
}

// fieldError finds which top-level field a decoding error came from by
// decoding the fields one at a time, so the message can name it.
func fieldError(top map[string]json.RawMessage, err error) error {
	keys := make([]string, 0, len(top))
	for k := range top {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		one, merr := json.Marshal(map[string]json.RawMessage{k: top[k]})
		if merr != nil {
			continue
		}
		var probe kubeletconfigv1beta1.KubeletConfiguration
		if ferr := kjson.UnmarshalCaseSensitivePreserveInts(one, &probe); ferr != nil {
			return fmt.Errorf("field %q: %w", k, ferr)
		}
	}
	return fmt.Errorf("decode: %w", err)
}
