package podsync

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestFits(t *testing.T) {
	withMem := func(q string) *v1.Pod {
		return &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{Resources: v1.ResourceRequirements{
			Requests: v1.ResourceList{v1.ResourceMemory: resource.MustParse(q)}}}}}}
	}
	alloc := v1.ResourceList{v1.ResourceMemory: resource.MustParse("1Gi"), v1.ResourceCPU: resource.MustParse("2")}
	cases := []struct {
		name    string
		pod     *v1.Pod
		others  []*v1.Pod
		maxPods int
		want    string
	}{
		{"empty node", withMem("100Mi"), nil, 110, ""},
		{"too many pods", withMem("1Mi"), []*v1.Pod{withMem("1Mi"), withMem("1Mi")}, 2, "OutOfpods"},
		{"memory fits exactly", withMem("512Mi"), []*v1.Pod{withMem("512Mi")}, 110, ""},
		{"out of memory", withMem("600Mi"), []*v1.Pod{withMem("512Mi")}, 110, "OutOfmemory"},
		{"no requests always fit", &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{}}}}, []*v1.Pod{withMem("1Gi")}, 110, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, msg := fits(tc.pod, tc.others, tc.maxPods, alloc)
			if got != tc.want {
				t.Errorf("fits = %q (%s), want %q", got, msg, tc.want)
			}
		})
	}
}
