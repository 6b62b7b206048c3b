package configs

import (
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
)

// describe is a threshold for the tests' messages: signal, value in
// bytes of a capacity of 1000, grace period and minimum reclaim.
func describe(t EvictionThreshold) string {
	s := fmt.Sprintf("%s<%d", t.Signal, t.Value(1000))
	if !t.Hard() {
		s += " after " + t.GracePeriod.String()
	}
	if t.MinReclaim != nil {
		s += fmt.Sprintf(" reclaim %d", t.MinReclaim.Value(1000))
	}
	return s
}

func TestEvictionThresholds(t *testing.T) {
	cfg := &kubeletconfigv1beta1.KubeletConfiguration{
		EvictionHard:            map[string]string{"nodefs.available": "10%", "memory.available": "100", "pid.available": "0%"},
		EvictionSoft:            map[string]string{"memory.available": "1.5k", "imagefs.available": "100%"},
		EvictionSoftGracePeriod: map[string]string{"memory.available": "1m30s", "nodefs.available": "1m"},
		EvictionMinimumReclaim:  map[string]string{"memory.available": "0", "nodefs.available": "5%"},
	}
	ts, err := EvictionThresholds(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Hard then soft, each by signal; "0%" and "100%" set none; a grace
	// period without a soft threshold is unused, as in the kubelet.
	var got []string
	for _, th := range ts {
		got = append(got, describe(th))
	}
	want := []string{"memory.available<100 reclaim 0", "nodefs.available<100 reclaim 50", "memory.available<1500 after 1m30s reclaim 0"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("thresholds %q, want %q", got, want)
	}
	if len(ts) == 3 && (ts[0].Soft || ts[1].Soft || !ts[2].Soft) {
		t.Errorf("Soft = %v, %v, %v; want only the evictionSoft one", ts[0].Soft, ts[1].Soft, ts[2].Soft)
	}
	// The kubelet's float32 percentages.
	if len(ts) == 3 && ts[1].Percentage != float32(10)/100 {
		t.Errorf("nodefs.available = %+v", ts[1].Threshold)
	}
	// The defaults parse.
	if d, err := EvictionThresholds(&kubeletconfigv1beta1.KubeletConfiguration{EvictionHard: DefaultEvictionHard()}); err != nil || len(d) != 5 {
		t.Errorf("defaults: %v, %v", d, err)
	}
	// A soft threshold with a grace period of 0s is a hard one, as in
	// the kubelet.
	cfg = &kubeletconfigv1beta1.KubeletConfiguration{
		EvictionSoft:            map[string]string{"memory.available": "1Gi"},
		EvictionSoftGracePeriod: map[string]string{"memory.available": "0s"},
	}
	if ts, err := EvictionThresholds(cfg); err != nil || len(ts) != 1 || !ts[0].Hard() || !ts[0].Soft {
		t.Errorf("EvictionThresholds = %v, %v; want one hard threshold of evictionSoft", ts, err)
	}
	for signal, want := range map[string]v1.NodeConditionType{
		"memory.available": v1.NodeMemoryPressure, "imagefs.inodesFree": v1.NodeDiskPressure, "pid.available": v1.NodePIDPressure, "cpu.available": "",
	} {
		if got, ok := EvictionSignalCondition(signal); got != want || ok != (want != "") {
			t.Errorf("EvictionSignalCondition(%q) = %q, %v; want %q", signal, got, ok, want)
		}
	}
}

// Invalid eviction fields stop the agent with the field's name, as the
// kubelet's ParseThresholdConfig stops the kubelet.
func TestValidateEviction(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(*kubeletconfigv1beta1.KubeletConfiguration)
		wantErr string // "" means valid
	}{
		{"soft with its grace period", func(c *kc) {
			c.EvictionSoft = map[string]string{"memory.available": "1Gi", "nodefs.available": "15%"}
			c.EvictionSoftGracePeriod = map[string]string{"memory.available": "1m", "nodefs.available": "2m"}
			c.EvictionMinimumReclaim = map[string]string{"memory.available": "500Mi", "nodefs.inodesFree": "1%"}
			c.EvictionMaxPodGracePeriod = -1
		}, ""},
		{"soft without a grace period", func(c *kc) {
			c.EvictionSoft = map[string]string{"memory.available": "1Gi"}
		}, `evictionSoft["memory.available"]: a soft eviction threshold needs a grace period: set evictionSoftGracePeriod["memory.available"]`},
		{"soft 0% needs none", func(c *kc) { c.EvictionSoft = map[string]string{"memory.available": "0%"} }, ""},
		{"grace period alone", func(c *kc) { c.EvictionSoftGracePeriod = map[string]string{"memory.available": "1m"} }, ""},
		{"soft unknown signal", func(c *kc) {
			c.EvictionSoft = map[string]string{"memory.free": "1Gi"}
			c.EvictionSoftGracePeriod = map[string]string{"memory.free": "1m"}
		}, `evictionSoft["memory.free"]: unknown eviction signal`},
		{"soft zero", func(c *kc) {
			c.EvictionSoft = map[string]string{"memory.available": "0"}
			c.EvictionSoftGracePeriod = map[string]string{"memory.available": "1m"}
		}, `evictionSoft["memory.available"]: must be greater than 0`},
		{"soft percentage", func(c *kc) {
			c.EvictionSoft = map[string]string{"nodefs.available": "101%"}
			c.EvictionSoftGracePeriod = map[string]string{"nodefs.available": "1m"}
		}, `evictionSoft["nodefs.available"]: percentage must be between 0% and 100%`},
		{"grace period garbage", func(c *kc) {
			c.EvictionSoft = map[string]string{"memory.available": "1Gi"}
			c.EvictionSoftGracePeriod = map[string]string{"memory.available": "soon"}
		}, `evictionSoftGracePeriod["memory.available"]: must be a duration such as 1m30s, got "soon"`},
		{"grace period negative", func(c *kc) { c.EvictionSoftGracePeriod = map[string]string{"pid.available": "-1s"} },
			`evictionSoftGracePeriod["pid.available"]: must not be negative, got "-1s"`},
		{"grace period unknown signal", func(c *kc) { c.EvictionSoftGracePeriod = map[string]string{"cpu": "1m"} },
			`evictionSoftGracePeriod["cpu"]: unknown eviction signal`},
		{"minimum reclaim unknown signal", func(c *kc) { c.EvictionMinimumReclaim = map[string]string{"memory.free": "1Gi"} },
			`evictionMinimumReclaim["memory.free"]: unknown eviction signal`},
		{"minimum reclaim negative", func(c *kc) { c.EvictionMinimumReclaim = map[string]string{"memory.available": "-1Mi"} },
			`evictionMinimumReclaim["memory.available"]: must not be negative, got "-1Mi"`},
		{"minimum reclaim 0%", func(c *kc) { c.EvictionMinimumReclaim = map[string]string{"imagefs.available": "0%"} },
			`evictionMinimumReclaim["imagefs.available"]: percentage must be above 0%, got "0%"`},
		{"minimum reclaim garbage", func(c *kc) { c.EvictionMinimumReclaim = map[string]string{"imagefs.available": "lots"} },
			`evictionMinimumReclaim["imagefs.available"]: must be a quantity or a percentage, got "lots"`},
		{"transition period negative", func(c *kc) { c.EvictionPressureTransitionPeriod.Duration = -time.Second },
			"evictionPressureTransitionPeriod: must not be negative, got -1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &kubeletconfigv1beta1.KubeletConfiguration{}
			Default(cfg)
			tc.mutate(cfg)
			err := Validate(cfg)
			_, perr := EvictionThresholds(cfg)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if perr != nil {
					t.Fatalf("EvictionThresholds after Validate: %v", perr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// The kubelet's eviction flags set their fields, with the kubelet's
// syntax, and are no longer ignored.
func TestEvictionFlags(t *testing.T) {
	goodHost(t)
	o, warns, err := Parse([]string{
		"--eviction-soft=memory.available<1.5Gi,nodefs.available<15%",
		"--eviction-soft-grace-period=memory.available=1m30s,nodefs.available=2m",
		"--eviction-max-pod-grace-period=60",
		"--eviction-pressure-transition-period=30s",
		"--eviction-minimum-reclaim=imagefs.available=2Gi",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warns {
		if strings.Contains(w, "ignored") {
			t.Errorf("warning %q", w)
		}
	}
	for _, f := range []string{"evictionSoft", "evictionSoftGracePeriod", "evictionMaxPodGracePeriod", "evictionPressureTransitionPeriod", "evictionMinimumReclaim"} {
		found := false
		for _, w := range warns {
			found = found || strings.Contains(w, "set field "+f+" in the config file")
		}
		if !found {
			t.Errorf("no deprecation warning for %s in %q", f, warns)
		}
	}
	c := o.Config
	if fmt.Sprint(c.EvictionSoft) != "map[memory.available:1.5Gi nodefs.available:15%]" ||
		fmt.Sprint(c.EvictionSoftGracePeriod) != "map[memory.available:1m30s nodefs.available:2m]" ||
		c.EvictionMaxPodGracePeriod != 60 || c.EvictionPressureTransitionPeriod.Duration != 30*time.Second ||
		fmt.Sprint(c.EvictionMinimumReclaim) != "map[imagefs.available:2Gi]" {
		t.Errorf("fields %v %v %d %v %v", c.EvictionSoft, c.EvictionSoftGracePeriod, c.EvictionMaxPodGracePeriod,
			c.EvictionPressureTransitionPeriod, c.EvictionMinimumReclaim)
	}

	// A bad value names the flag and the field.
	_, _, err = Parse([]string{"--eviction-soft=memory.available<1Gi"})
	if err == nil || !strings.Contains(err.Error(), `config from flags --eviction-soft: evictionSoft["memory.available"]: a soft eviction threshold needs a grace period`) {
		t.Errorf("Parse = %v", err)
	}
	_, _, err = Parse([]string{"--eviction-minimum-reclaim=memory.available"})
	if err == nil || !strings.Contains(err.Error(), "--eviction-minimum-reclaim") {
		t.Errorf("Parse = %v", err)
	}
}
