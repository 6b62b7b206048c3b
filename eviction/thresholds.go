package eviction

import (
	"maps"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/nodeagent/nodeagent/configs"
)

// When an eviction threshold is met, and for how long, as the kubelet's
// eviction manager decides it (its synchronize and helpers.go). The
// Manager evicts by these rules and keeps the pressure conditions by
// them, which package nodestatus reports (Manager.UnderPressure).

// Observation is one reading of a signal: how much of its resource is
// available, and its capacity (for a threshold given as a percentage).
type Observation struct {
	Available, Capacity int64
}

// Observations are readings by signal. A signal that was not read is
// absent, and none of its thresholds is met (the kubelet's
// signalObservations).
type Observations map[string]Observation

// Met returns the thresholds, in their order, that obs meets: less of
// the signal's resource available than the threshold or, with
// withMinReclaim, than the threshold plus its minimum reclaim (the
// kubelet's thresholdsMet).
func Met(thresholds []configs.EvictionThreshold, obs Observations, withMinReclaim bool) []configs.EvictionThreshold {
	var out []configs.EvictionThreshold
	for _, t := range thresholds {
		if isMet(t, obs, withMinReclaim) {
			out = append(out, t)
		}
	}
	return out
}

func isMet(t configs.EvictionThreshold, obs Observations, withMinReclaim bool) bool {
	o, ok := obs[t.Signal]
	if !ok {
		return false
	}
	limit := t.Value(o.Capacity)
	if withMinReclaim && t.MinReclaim != nil {
		limit += t.MinReclaim.Value(o.Capacity)
	}
	return o.Available < limit
}

// Tracker follows a set of thresholds from one observation to the next,
// as the kubelet's eviction manager does:
//
//   - a threshold is met when its signal is below it, or when it was
//     evicting at the last observation and its signal is still below it
//     plus its minimum reclaim (evictionMinimumReclaim);
//   - it evicts once it has been met, without a break, for its grace
//     period (none for a hard threshold; evictionSoftGracePeriod);
//   - a pressure condition is on while one of its thresholds is met, grace
//     period or not, and for the transition period
//     (evictionPressureTransitionPeriod) after one last was.
//
// Its methods may be called from several goroutines.
type Tracker struct {
	thresholds []configs.EvictionThreshold
	transition time.Duration

	mu sync.Mutex
	// evicting are the thresholds (by index) past their grace period at
	// the last observation: the kubelet's thresholdsMet.
	evicting map[int]bool
	// firstMet is when each threshold met was first met, without a
	// break: the kubelet's thresholdsFirstObservedAt.
	firstMet map[int]time.Time
	// conditionMet is when each condition was last set by a threshold:
	// the kubelet's nodeConditionsLastObservedAt.
	conditionMet map[v1.NodeConditionType]time.Time
	// pressure are the conditions on at the last observation: the
	// kubelet's nodeConditions.
	pressure map[v1.NodeConditionType]bool
}

// NewTracker returns a Tracker of thresholds whose pressure conditions
// stay on for transition after their thresholds were last met; with
// transition 0, only while they are met.
func NewTracker(thresholds []configs.EvictionThreshold, transition time.Duration) *Tracker {
	return &Tracker{
		thresholds:   thresholds,
		transition:   transition,
		evicting:     map[int]bool{},
		firstMet:     map[int]time.Time{},
		conditionMet: map[v1.NodeConditionType]time.Time{},
	}
}

// Watches reports whether a threshold has signal, so that it is worth
// reading.
func (t *Tracker) Watches(signal string) bool {
	for _, th := range t.thresholds {
		if th.Signal == signal {
			return true
		}
	}
	return false
}

// State is what one observation decides.
type State struct {
	// Evict are the thresholds met for their grace period, in their
	// order: they evict.
	Evict []configs.EvictionThreshold
	// Pressure are the node conditions on.
	Pressure map[v1.NodeConditionType]bool
}

// Observe takes the readings of now and returns what they decide.
func (t *Tracker) Observe(obs Observations, now time.Time) State {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := State{Pressure: map[v1.NodeConditionType]bool{}}
	firstMet := map[int]time.Time{}
	for i, th := range t.thresholds {
		if !isMet(th, obs, false) && (!t.evicting[i] || !isMet(th, obs, true)) {
			continue
		}
		at, ok := t.firstMet[i]
		if !ok {
			at = now
		}
		firstMet[i] = at
		if c, ok := configs.EvictionSignalCondition(th.Signal); ok {
			t.conditionMet[c] = now
		}
	}
	for c, at := range t.conditionMet {
		if at.Equal(now) || now.Sub(at) < t.transition {
			st.Pressure[c] = true
		} else {
			delete(t.conditionMet, c)
		}
	}
	evicting := map[int]bool{}
	for i, th := range t.thresholds {
		if at, ok := firstMet[i]; ok && now.Sub(at) >= th.GracePeriod {
			evicting[i] = true
			st.Evict = append(st.Evict, th)
		}
	}
	t.firstMet, t.evicting, t.pressure = firstMet, evicting, maps.Clone(st.Pressure)
	return st
}

// UnderPressure reports whether condition was on at the last observation;
// false before the first.
func (t *Tracker) UnderPressure(condition v1.NodeConditionType) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pressure[condition]
}
