package configs

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// pidResource is the name process IDs have in kubeReserved and
// systemReserved (the kubelet's pidlimit.PIDs).
const pidResource v1.ResourceName = "pid"

// ReservedResources parses kubeReserved or systemReserved as the kubelet's
// parseResourceList: cpu, memory, ephemeral-storage and pid, each a
// quantity not below zero. The error names the resource; Validate has
// checked the values, so after Parse it does not fail.
func ReservedResources(m map[string]string) (v1.ResourceList, error) {
	if len(m) == 0 {
		return nil, nil
	}
	rl := v1.ResourceList{}
	for _, name := range slices.Sorted(maps.Keys(m)) {
		q, err := reservedQuantity(name, m[name])
		if err != nil {
			return nil, fmt.Errorf("%q: %w", name, err)
		}
		rl[v1.ResourceName(name)] = q
	}
	return rl, nil
}

func reservedQuantity(name, value string) (resource.Quantity, error) {
	switch v1.ResourceName(name) {
	case v1.ResourceCPU, v1.ResourceMemory, v1.ResourceEphemeralStorage, pidResource:
	default:
		return resource.Quantity{}, errors.New("cannot reserve this resource, only cpu, memory, ephemeral-storage and pid")
	}
	q, err := ParseQuantity(value)
	if err != nil {
		return resource.Quantity{}, fmt.Errorf("must be a quantity such as 500Mi, got %q: %w", value, err)
	}
	if q.Sign() < 0 {
		return resource.Quantity{}, fmt.Errorf("must not be negative, got %q", value)
	}
	return q, nil
}

// validateReserved checks kubeReserved or systemReserved, one message per
// bad entry, e.g. kubeReserved["memory"]: must not be negative, got "-1".
// A reservation above the node's capacity is not a configuration error:
// the kubelet refuses it when it starts, and so does nodeagent (package
// nodestatus, CheckAllocatable).
func validateReserved(field string, m map[string]string, add func(field, format string, args ...any)) {
	for _, name := range slices.Sorted(maps.Keys(m)) {
		if _, err := reservedQuantity(name, m[name]); err != nil {
			add(fmt.Sprintf("%s[%q]", field, name), "%v", err)
		}
	}
}

// Threshold is an eviction threshold, one value of evictionHard or
// evictionSoft (or of evictionMinimumReclaim, an amount): the
// signal's resource is short when less of it is available than Quantity
// or, when Quantity is nil, than Percentage (a fraction between 0 and 1)
// of its capacity.
type Threshold struct {
	Quantity *resource.Quantity
	// Percentage is a float32 as in the kubelet, so that a threshold
	// comes to the same number of bytes.
	Percentage float32
}

// Value is the threshold in the unit of a capacity (the kubelet's
// GetThresholdQuantity).
func (t Threshold) Value(capacity int64) int64 {
	if t.Quantity != nil {
		return t.Quantity.Value()
	}
	return int64(float64(capacity) * float64(t.Percentage))
}

// parseThreshold parses one evictionHard or evictionSoft value; ok is
// false for the values that set no threshold.
func parseThreshold(signal, value string) (t Threshold, ok bool, err error) {
	if !knownSignal(signal) {
		return Threshold{}, false, errors.New("unknown eviction signal")
	}
	if strings.HasSuffix(value, "%") {
		if value == "0%" || value == "100%" {
			return Threshold{}, false, nil
		}
		f, err := strconv.ParseFloat(strings.TrimRight(value, "%"), 32)
		if err != nil || math.IsNaN(f) || f < 0 || f > 100 {
			return Threshold{}, false, fmt.Errorf("percentage must be between 0%% and 100%%, got %q", value)
		}
		return Threshold{Percentage: float32(f) / 100}, true, nil
	}
	q, err := ParseQuantity(value)
	if err != nil {
		return Threshold{}, false, fmt.Errorf("must be a quantity or a percentage, got %q: %w", value, err)
	}
	if q.Sign() <= 0 {
		return Threshold{}, false, fmt.Errorf("must be greater than 0, got %q", value)
	}
	return Threshold{Quantity: &q}, true, nil
}
