package prober

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/component-base/metrics"
)

// probeSeries returns the prober_probe_total series as "type/result/
// container/pod/namespace/uid" → value.
func probeSeries(t *testing.T, reg metrics.KubeRegistry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "prober_probe_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			out[l["probe_type"]+"/"+l["result"]+"/"+l["container"]+"/"+l["pod"]+"/"+l["namespace"]+"/"+l["pod_uid"]] = m.GetCounter().GetValue()
		}
	}
	return out
}

func TestProbeMetrics(t *testing.T) {
	m, f, _ := setup(t)
	reg := metrics.NewKubeRegistry()
	reg.MustRegister(m.Collectors()...)
	f.set("ready", true)
	pod := testPod(v1.Container{ReadinessProbe: probe("ready", 3)})
	m.Add(t.Context(), pod, "app", "c1", "", m.cfg.Clock.Now())
	recv(t, f.wakes, "readiness wake")

	got := probeSeries(t, reg)
	if got["Readiness/successful/app/p/ns/uid1"] < 1 {
		t.Fatalf("prober_probe_total after a successful readiness probe: %v", got)
	}
	if n := len(got); n != 1 {
		t.Errorf("%d series, want 1: %v", n, got)
	}

	m.Remove(pod.UID, "app")
	if got := probeSeries(t, reg); len(got) != 0 {
		t.Errorf("series left after Remove: %v", got)
	}
}
