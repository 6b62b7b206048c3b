package configs

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
)

// evictionSignals are the signals the kubelet accepts in the eviction
// fields, with the node condition their thresholds set (the kubelet's
// signalToNodeCondition).
var evictionSignals = map[string]v1.NodeConditionType{
	"memory.available":            v1.NodeMemoryPressure,
	"allocatableMemory.available": v1.NodeMemoryPressure,
	"nodefs.available":            v1.NodeDiskPressure,
	"nodefs.inodesFree":           v1.NodeDiskPressure,
	"imagefs.available":           v1.NodeDiskPressure,
	"imagefs.inodesFree":          v1.NodeDiskPressure,
	"containerfs.available":       v1.NodeDiskPressure,
	"containerfs.inodesFree":      v1.NodeDiskPressure,
	"pid.available":               v1.NodePIDPressure,
}

// EvictionSignalCondition is the node condition the thresholds of an
// eviction signal set; ok is false for a signal the kubelet does not know.
func EvictionSignalCondition(signal string) (c v1.NodeConditionType, ok bool) {
	c, ok = evictionSignals[signal]
	return c, ok
}

// knownSignal reports whether the kubelet accepts signal.
func knownSignal(signal string) bool {
	_, ok := evictionSignals[signal]
	return ok
}

// EvictionThreshold is one threshold of evictionHard or evictionSoft, the
// kubelet's evictionapi.Threshold: Signal's resource is short when less
// of it is available than the threshold (Threshold.Value).
type EvictionThreshold struct {
	Signal string
	Threshold
	// Soft is true for a threshold of evictionSoft, false for one of
	// evictionHard: only these are held back from allocatable.
	Soft bool
	// GracePeriod is how long a threshold of evictionSoft must stay met
	// before it evicts (evictionSoftGracePeriod); 0 for one of
	// evictionHard.
	GracePeriod time.Duration
	// MinReclaim is evictionMinimumReclaim's value for Signal, nil when it
	// has none: once met, the threshold stays met until this much more
	// than the threshold is available.
	MinReclaim *Threshold
}

// Hard reports whether the threshold evicts as soon as it is met, as the
// kubelet's isHardEvictionThreshold: an evictionHard one, or an
// evictionSoft one whose grace period is 0s.
func (t EvictionThreshold) Hard() bool { return t.GracePeriod == 0 }

// EvictionThresholds parses evictionHard, evictionSoft,
// evictionSoftGracePeriod and evictionMinimumReclaim as the kubelet's
// ParseThresholdConfig: the hard thresholds, then the soft ones, each
// sorted by signal; "0%" and "100%" set no threshold. Validate has
// checked the values, so after Parse it does not fail.
func EvictionThresholds(cfg *kubeletconfigv1beta1.KubeletConfiguration) ([]EvictionThreshold, error) {
	var errs []error
	ts := parseEviction(cfg, func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	})
	if len(errs) > 0 {
		return nil, fieldErrors(errs)
	}
	return ts, nil
}

// validateEviction checks the eviction fields as the kubelet does when it
// parses them (ParseThresholdConfig), one message per bad entry naming
// it, for example evictionSoft["memory.available"]: needs a grace period.
// evictionMaxPodGracePeriod takes any value, as in the kubelet. A
// negative evictionPressureTransitionPeriod, which the kubelet takes and
// which would keep every pressure condition False, is refused.
func validateEviction(cfg *kubeletconfigv1beta1.KubeletConfiguration, add func(field, format string, args ...any)) {
	parseEviction(cfg, add)
	if d := cfg.EvictionPressureTransitionPeriod.Duration; d < 0 {
		add("evictionPressureTransitionPeriod", "must not be negative, got %v", d)
	}
}

// parseEviction is EvictionThresholds, reporting each problem with add.
func parseEviction(cfg *kubeletconfigv1beta1.KubeletConfiguration, add func(field, format string, args ...any)) []EvictionThreshold {
	minReclaims := map[string]*Threshold{}
	for _, sig := range slices.Sorted(maps.Keys(cfg.EvictionMinimumReclaim)) {
		r, err := parseMinReclaim(sig, cfg.EvictionMinimumReclaim[sig])
		if err != nil {
			add(fmt.Sprintf("evictionMinimumReclaim[%q]", sig), "%v", err)
			continue
		}
		minReclaims[sig] = &r
	}
	gracePeriods := map[string]time.Duration{}
	for _, sig := range slices.Sorted(maps.Keys(cfg.EvictionSoftGracePeriod)) {
		d, err := parseGracePeriod(sig, cfg.EvictionSoftGracePeriod[sig])
		if err != nil {
			add(fmt.Sprintf("evictionSoftGracePeriod[%q]", sig), "%v", err)
			continue
		}
		gracePeriods[sig] = d
	}

	var out []EvictionThreshold
	for _, sig := range slices.Sorted(maps.Keys(cfg.EvictionHard)) {
		t, ok, err := parseThreshold(sig, cfg.EvictionHard[sig])
		if err != nil {
			add(fmt.Sprintf("evictionHard[%q]", sig), "%v", err)
			continue
		}
		if ok {
			out = append(out, EvictionThreshold{Signal: sig, Threshold: t, MinReclaim: minReclaims[sig]})
		}
	}
	for _, sig := range slices.Sorted(maps.Keys(cfg.EvictionSoft)) {
		t, ok, err := parseThreshold(sig, cfg.EvictionSoft[sig])
		if err != nil {
			add(fmt.Sprintf("evictionSoft[%q]", sig), "%v", err)
			continue
		}
		if !ok {
			continue
		}
		period, found := gracePeriods[sig]
		if !found {
			if _, given := cfg.EvictionSoftGracePeriod[sig]; !given { // else reported above
				add(fmt.Sprintf("evictionSoft[%q]", sig), "a soft eviction threshold needs a grace period: set evictionSoftGracePeriod[%q]", sig)
			}
			continue
		}
		out = append(out, EvictionThreshold{Signal: sig, Threshold: t, Soft: true, GracePeriod: period, MinReclaim: minReclaims[sig]})
	}
	return out
}

// parseGracePeriod parses one evictionSoftGracePeriod value, the
// kubelet's parseGracePeriods. A grace period for a signal without a soft
// threshold is accepted and unused, as in the kubelet.
func parseGracePeriod(signal, value string) (time.Duration, error) {
	if !knownSignal(signal) {
		return 0, errors.New("unknown eviction signal")
	}
	d, err := time.ParseDuration(value)
	if err != nil {
		return 0, fmt.Errorf("must be a duration such as 1m30s, got %q", value)
	}
	if d < 0 {
		return 0, fmt.Errorf("must not be negative, got %q", value)
	}
	return d, nil
}

// parseMinReclaim parses one evictionMinimumReclaim value, the kubelet's
// parseMinimumReclaims: a percentage above 0% (of the signal's capacity)
// or a quantity not below zero, for a known signal.
func parseMinReclaim(signal, value string) (Threshold, error) {
	if !knownSignal(signal) {
		return Threshold{}, errors.New("unknown eviction signal")
	}
	if strings.HasSuffix(value, "%") {
		f, err := strconv.ParseFloat(strings.TrimSuffix(value, "%"), 32)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
			return Threshold{}, fmt.Errorf("percentage must be above 0%%, got %q", value)
		}
		return Threshold{Percentage: float32(f) / 100}, nil
	}
	q, err := ParseQuantity(value)
	if err != nil {
		return Threshold{}, fmt.Errorf("must be a quantity or a percentage, got %q: %w", value, err)
	}
	if q.Sign() < 0 {
		return Threshold{}, fmt.Errorf("must not be negative, got %q", value)
	}
	return Threshold{Quantity: &q}, nil
}
