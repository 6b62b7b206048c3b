package staticpods

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/nodeagent/nodeagent/podcgroups"
)

// list is a ResourceList of name, quantity pairs.
func list(nq ...string) v1.ResourceList {
	l := v1.ResourceList{}
	for i := 0; i+1 < len(nq); i += 2 {
		l[v1.ResourceName(nq[i])] = resource.MustParse(nq[i+1])
	}
	return l
}

// sameList reports whether a and b hold the same quantities.
func sameList(a, b v1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for name, q := range a {
		if p, ok := b[name]; !ok || !p.Equal(q) {
			return false
		}
	}
	return true
}

// A manifest's pod gets the API's resource defaults, as the apiserver
// gives its mirror: with spec.resources.limits only it is Guaranteed.
func TestReadDefaultsPodLevelRequests(t *testing.T) {
	dir := t.TempDir()
	manifest := `apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  resources:
    limits: {cpu: 500m, memory: 128Mi}
  containers:
  - {name: a, image: busybox:1.37}
  - {name: b, image: busybox:1.37}
`
	if err := os.WriteFile(filepath.Join(dir, "web.yaml"), []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	pods, warnings := Read(dir, "node1")
	if len(pods) != 1 || len(warnings) != 0 {
		t.Fatalf("pods %v, warnings %q", pods, warnings)
	}
	p := pods[0]
	if want := list("cpu", "500m", "memory", "128Mi"); !sameList(p.Spec.Resources.Requests, want) {
		t.Errorf("spec.resources.requests = %v, want the limits %v", p.Spec.Resources.Requests, want)
	}
	if q := podcgroups.QOSClass(p); q != v1.PodQOSGuaranteed {
		t.Errorf("QoS class %s, want Guaranteed as the apiserver classes the mirror pod", q)
	}
	if err := ValidateResources(p); err != nil {
		t.Errorf("ValidateResources: %v", err)
	}
}

func TestDefaultResources(t *testing.T) {
	ctr := func(name string, req, lim v1.ResourceList) v1.Container {
		return v1.Container{Name: name, Resources: v1.ResourceRequirements{Requests: req, Limits: lim}}
	}
	for _, tc := range []struct {
		name               string
		pod                *v1.Pod
		wantCtrReq         []v1.ResourceList // of the init containers then the containers
		wantPodReq, podLim v1.ResourceList
		wantQOS            v1.PodQOSClass
	}{{
		name: "container limits only: requests are the limits",
		pod: &v1.Pod{Spec: v1.PodSpec{
			InitContainers: []v1.Container{ctr("i", nil, list("cpu", "1"))},
			Containers:     []v1.Container{ctr("a", list("cpu", "100m"), list("cpu", "1", "memory", "64Mi"))},
		}},
		wantCtrReq: []v1.ResourceList{list("cpu", "1"), list("cpu", "100m", "memory", "64Mi")},
		wantQOS:    v1.PodQOSBurstable,
	}, {
		name: "container limits of cpu and memory: Guaranteed",
		pod: &v1.Pod{Spec: v1.PodSpec{
			Containers: []v1.Container{ctr("a", nil, list("cpu", "1", "memory", "64Mi"))},
		}},
		wantCtrReq: []v1.ResourceList{list("cpu", "1", "memory", "64Mi")},
		wantQOS:    v1.PodQOSGuaranteed,
	}, {
		name: "pod limits, containers requesting cpu: their aggregate, memory from the limit",
		pod: &v1.Pod{Spec: v1.PodSpec{
			Resources:      &v1.ResourceRequirements{Limits: list("cpu", "2", "memory", "256Mi")},
			InitContainers: []v1.Container{ctr("i", list("cpu", "400m"), nil)},
			Containers:     []v1.Container{ctr("a", list("cpu", "100m"), nil), ctr("b", list("cpu", "200m"), nil)},
		}},
		wantCtrReq: []v1.ResourceList{list("cpu", "400m"), list("cpu", "100m"), list("cpu", "200m")},
		wantPodReq: list("cpu", "400m", "memory", "256Mi"),
		podLim:     list("cpu", "2", "memory", "256Mi"),
		wantQOS:    v1.PodQOSBurstable,
	}, {
		name: "pod limits and requests set: kept",
		pod: &v1.Pod{Spec: v1.PodSpec{
			Resources:  &v1.ResourceRequirements{Requests: list("memory", "32Mi"), Limits: list("memory", "256Mi")},
			Containers: []v1.Container{ctr("a", list("memory", "16Mi"), nil)},
		}},
		wantCtrReq: []v1.ResourceList{list("memory", "16Mi")},
		wantPodReq: list("memory", "32Mi"),
		podLim:     list("memory", "256Mi"),
		wantQOS:    v1.PodQOSBurstable,
	}, {
		name: "pod requests only: no defaults",
		pod: &v1.Pod{Spec: v1.PodSpec{
			Resources:  &v1.ResourceRequirements{Requests: list("cpu", "1")},
			Containers: []v1.Container{ctr("a", nil, nil)},
		}},
		wantCtrReq: []v1.ResourceList{nil},
		wantPodReq: list("cpu", "1"),
		wantQOS:    v1.PodQOSBurstable,
	}, {
		name: "hugepages: the pod limit from the containers', its request from that limit",
		pod: &v1.Pod{Spec: v1.PodSpec{
			Resources: &v1.ResourceRequirements{Limits: list("memory", "256Mi")},
			Containers: []v1.Container{
				ctr("a", nil, list("hugepages-2Mi", "4Mi")), ctr("b", nil, list("hugepages-2Mi", "4Mi")),
			},
		}},
		wantCtrReq: []v1.ResourceList{list("hugepages-2Mi", "4Mi"), list("hugepages-2Mi", "4Mi")},
		wantPodReq: list("memory", "256Mi", "hugepages-2Mi", "8Mi"),
		podLim:     list("memory", "256Mi", "hugepages-2Mi", "8Mi"),
		wantQOS:    v1.PodQOSBurstable,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			defaultResources(tc.pod)
			var got []v1.ResourceList
			for _, cs := range [][]v1.Container{tc.pod.Spec.InitContainers, tc.pod.Spec.Containers} {
				for _, c := range cs {
					got = append(got, c.Resources.Requests)
				}
			}
			for i := range tc.wantCtrReq {
				if !sameList(got[i], tc.wantCtrReq[i]) {
					t.Errorf("container %d requests %v, want %v", i, got[i], tc.wantCtrReq[i])
				}
			}
			if r := tc.pod.Spec.Resources; r != nil {
				if !sameList(r.Requests, tc.wantPodReq) || !sameList(r.Limits, tc.podLim) {
					t.Errorf("spec.resources = %v / %v, want %v / %v", r.Requests, r.Limits, tc.wantPodReq, tc.podLim)
				}
			}
			if q := podcgroups.QOSClass(tc.pod); q != tc.wantQOS {
				t.Errorf("QoS class %s, want %s", q, tc.wantQOS)
			}
		})
	}
}

// Pod-level resources the apiserver would refuse are named.
func TestValidateResources(t *testing.T) {
	pod := func(podReq, podLim v1.ResourceList, ctrs ...v1.ResourceRequirements) *v1.Pod {
		p := &v1.Pod{Spec: v1.PodSpec{Resources: &v1.ResourceRequirements{Requests: podReq, Limits: podLim}}}
		for _, r := range ctrs {
			p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "c", Resources: r})
		}
		return p
	}
	for _, tc := range []struct {
		name string
		pod  *v1.Pod
		want string // "" valid
	}{
		{"none", &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c"}}}}, ""},
		{"consistent", pod(list("memory", "64Mi"), list("memory", "128Mi"),
			v1.ResourceRequirements{Requests: list("memory", "32Mi"), Limits: list("memory", "128Mi")},
			v1.ResourceRequirements{Requests: list("memory", "32Mi")}), ""},
		{"request above limit", pod(list("cpu", "2"), list("cpu", "1")),
			"spec.resources.requests[cpu] 2 must be less than or equal to the cpu limit of 1"},
		{"below the containers' requests", pod(list("memory", "64Mi"), nil,
			v1.ResourceRequirements{Requests: list("memory", "48Mi")}, v1.ResourceRequirements{Requests: list("memory", "48Mi")}),
			"spec.resources.requests[memory] 64Mi must be greater than or equal to the containers' aggregate requests of 96Mi"},
		{"hugepages limit below the containers'", pod(nil, list("hugepages-2Mi", "2Mi"),
			v1.ResourceRequirements{Limits: list("hugepages-2Mi", "4Mi")}),
			"spec.resources.limits[hugepages-2Mi] 2Mi must be greater than or equal to the containers' aggregate limits of 4Mi"},
		{"a container limit above the pod's", pod(nil, list("memory", "64Mi"),
			v1.ResourceRequirements{Limits: list("memory", "128Mi")}),
			"spec.containers[0].resources.limits[memory] 128Mi must be less than or equal to the pod limit of 64Mi"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateResources(tc.pod)
			if tc.want == "" {
				if err != nil {
					t.Errorf("ValidateResources = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ValidateResources = %v, want %q", err, tc.want)
			}
		})
	}
}
