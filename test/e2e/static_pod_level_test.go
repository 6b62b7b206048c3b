//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// A static pod with pod-level limits only gets the API's defaults as its
// mirror pod does: its pod-level requests are its limits and it is
// Guaranteed on both sides, so the mirror's status is written (qosClass
// is immutable: a Burstable status for a Guaranteed mirror is refused
// and the mirror never shows Running).
func TestStaticPodLevelLimitsOnly(t *testing.T) {
	c := client(t)
	manifest := filepath.Join(state, "manifests", "static-podlevel.yaml")
	body := `apiVersion: v1
kind: Pod
metadata:
  name: static-podlevel
  namespace: default
spec:
  terminationGracePeriodSeconds: 1
  resources:
    limits: {cpu: 200m, memory: 64Mi}
  containers:
  - name: main
    image: ` + busybox + `
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "sleep 3600"]
  - name: side
    image: ` + busybox + `
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "sleep 3600"]
`
	if err := os.WriteFile(manifest, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	name := "static-podlevel-" + nodeName
	t.Cleanup(func() {
		_ = os.Remove(manifest)
		waitGone(t, c, "default", name, 60*time.Second)
	})
	p := waitPod(t, c, "default", name, 90*time.Second, "mirror pod running", running)
	if p.Status.QOSClass != v1.PodQOSGuaranteed {
		t.Errorf("qosClass %q, want Guaranteed: %s", p.Status.QOSClass, describe(p))
	}
	for _, name := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory} {
		req, lim := p.Spec.Resources.Requests[name], p.Spec.Resources.Limits[name]
		if want := resource.MustParse(map[v1.ResourceName]string{v1.ResourceCPU: "200m", v1.ResourceMemory: "64Mi"}[name]); !req.Equal(want) || !lim.Equal(want) {
			t.Errorf("mirror spec.resources %s: request %s, limit %s; want both %s", name, req.String(), lim.String(), want.String())
		}
	}
}
