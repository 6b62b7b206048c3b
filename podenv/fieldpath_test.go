package podenv

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testPod() *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "ns", UID: "uid-1",
			Labels:      map[string]string{"app": "web", "tier": "front"},
			Annotations: map[string]string{"note": `say "hi"`},
		},
		Spec: v1.PodSpec{
			NodeName: "node1", ServiceAccountName: "sa",
			Containers: []v1.Container{{
				Name: "app",
				Resources: v1.ResourceRequirements{
					Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse("500m")},
					Requests: v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")},
				},
			}, {Name: "side"}},
		},
	}
}

func TestFieldValue(t *testing.T) {
	pod := testPod()
	tests := []struct {
		path, want string
		wantErr    bool
	}{
		{path: "metadata.name", want: "web"},
		{path: "metadata.namespace", want: "ns"},
		{path: "metadata.uid", want: "uid-1"},
		{path: "metadata.labels", want: "app=\"web\"\ntier=\"front\""},
		{path: "metadata.annotations", want: `note="say \"hi\""`},
		{path: "metadata.labels['app']", want: "web"},
		{path: "metadata.annotations['note']", want: `say "hi"`},
		{path: "metadata.labels['none']", want: ""},
		{path: "spec.nodeName", want: "node1"},
		{path: "spec.serviceAccountName", want: "sa"},
		{path: "status.hostIP", want: "10.0.0.1"},
		{path: "status.podIP", want: "10.1.0.5"},
		{path: "status.podIPs", want: "10.1.0.5,fd00::5"},
		{path: "spec.hostname", wantErr: true},
		{path: "metadata.name['x']", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := FieldValue(pod, tt.path, "10.0.0.1", "10.1.0.5", []string{"10.1.0.5", "fd00::5"})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestResourceValue(t *testing.T) {
	pod := testPod()
	pod.Spec.Containers[1].Resources.Limits = v1.ResourceList{"hugepages-2Mi": resource.MustParse("4Mi")}
	alloc := v1.ResourceList{
		v1.ResourceCPU:    resource.MustParse("4"),
		v1.ResourceMemory: resource.MustParse("8Gi"),
		"hugepages-2Mi":   resource.MustParse("16Mi"),
	}
	tests := []struct {
		name    string
		fs      v1.ResourceFieldSelector
		want    string
		wantErr bool
	}{
		{name: "cpu limit rounds up", fs: v1.ResourceFieldSelector{Resource: "limits.cpu"}, want: "1"},
		{name: "cpu limit millis", fs: v1.ResourceFieldSelector{Resource: "limits.cpu", Divisor: resource.MustParse("1m")}, want: "500"},
		{name: "memory request Mi", fs: v1.ResourceFieldSelector{Resource: "requests.memory", Divisor: resource.MustParse("1Mi")}, want: "64"},
		{name: "memory limit from allocatable", fs: v1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Gi")}, want: "8"},
		{name: "unset request is zero", fs: v1.ResourceFieldSelector{Resource: "requests.cpu"}, want: "0"},
		{name: "other container", fs: v1.ResourceFieldSelector{ContainerName: "side", Resource: "limits.cpu"}, want: "4"},
		{name: "unknown container", fs: v1.ResourceFieldSelector{ContainerName: "nope", Resource: "limits.cpu"}, wantErr: true},
		{name: "unsupported", fs: v1.ResourceFieldSelector{Resource: "limits.gpu"}, wantErr: true},
		// Huge pages are never overcommitted: an unset limit is 0, not
		// the node's allocatable (MergeContainerResourceLimits).
		{name: "unset hugepages limit is zero", fs: v1.ResourceFieldSelector{Resource: "limits.hugepages-2Mi"}, want: "0"},
		{name: "hugepages limit", fs: v1.ResourceFieldSelector{ContainerName: "side", Resource: "limits.hugepages-2Mi", Divisor: resource.MustParse("1Mi")}, want: "4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResourceValue(&tt.fs, pod, &pod.Spec.Containers[0], alloc)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func resourceQ(s string) *resource.Quantity { q := resource.MustParse(s); return &q }

// A container without a cpu or memory limit shows the pod-level limit
// (spec.resources.limits) before the node's allocatable, as the kubelet's
// defaultPodLimitsForDownwardAPI; its own limit and requests stay its own.
func TestResourceValuePodLevelLimits(t *testing.T) {
	pod := testPod()
	pod.Spec.Resources = &v1.ResourceRequirements{
		Requests: v1.ResourceList{v1.ResourceMemory: resource.MustParse("128Mi")},
		Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse("2"), v1.ResourceMemory: resource.MustParse("256Mi")},
	}
	alloc := v1.ResourceList{
		v1.ResourceCPU:              resource.MustParse("4"),
		v1.ResourceMemory:           resource.MustParse("8Gi"),
		v1.ResourceEphemeralStorage: resource.MustParse("20Gi"),
	}
	mi := resource.MustParse("1Mi")
	for _, tt := range []struct {
		name      string
		container int
		fs        v1.ResourceFieldSelector
		alloc     v1.ResourceList
		want      string
	}{
		{"memory limit from the pod", 0, v1.ResourceFieldSelector{Resource: "limits.memory", Divisor: mi}, alloc, "256"},
		{"own cpu limit kept", 0, v1.ResourceFieldSelector{Resource: "limits.cpu", Divisor: resource.MustParse("1m")}, alloc, "500"},
		{"cpu limit from the pod", 1, v1.ResourceFieldSelector{Resource: "limits.cpu"}, alloc, "2"},
		{"by container name", 0, v1.ResourceFieldSelector{ContainerName: "side", Resource: "limits.memory", Divisor: mi}, alloc, "256"},
		{"ephemeral-storage is no pod-level resource", 1, v1.ResourceFieldSelector{Resource: "limits.ephemeral-storage", Divisor: resource.MustParse("1Gi")}, alloc, "20"},
		{"requests are the container's", 1, v1.ResourceFieldSelector{Resource: "requests.memory"}, alloc, "0"},
		{"allocatable not known", 1, v1.ResourceFieldSelector{Resource: "limits.memory", Divisor: mi}, nil, "256"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResourceValue(&tt.fs, pod, &pod.Spec.Containers[tt.container], tt.alloc)
			if err != nil || got != tt.want {
				t.Errorf("got %q (%v), want %q", got, err, tt.want)
			}
		})
	}
	// A pod-level cpu limit alone: memory still defaults to allocatable.
	pod.Spec.Resources.Limits = v1.ResourceList{v1.ResourceCPU: resource.MustParse("2")}
	if got, _ := ResourceValue(&v1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Gi")}, pod, &pod.Spec.Containers[1], alloc); got != "8" {
		t.Errorf("memory limit with a pod-level cpu limit only = %q, want the allocatable 8", got)
	}
}
