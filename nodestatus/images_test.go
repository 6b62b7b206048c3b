package nodestatus

import (
	"context"
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

func TestNodeImages(t *testing.T) {
	img := func(id string, size uint64, names ...string) *runtimeapi.Image {
		return &runtimeapi.Image{Id: id, Size: size, RepoTags: names, RepoDigests: []string{"digest-of-" + id}}
	}
	many := make([]*runtimeapi.Image, 60)
	for i := range many {
		many[i] = img(fmt.Sprintf("sha256:%02d", i), uint64(i+1))
	}
	cases := []struct {
		name   string
		images []*runtimeapi.Image
		max    int
		want   []v1.ContainerImage
	}{
		{"biggest first, ties by ID descending, digests before tags", []*runtimeapi.Image{
			img("a", 10, "small:1"), img("b", 30, "big:1", "big:latest"), img("c", 10, "small:2"),
		}, 50, []v1.ContainerImage{
			{Names: []string{"digest-of-b", "big:1", "big:latest"}, SizeBytes: 30},
			{Names: []string{"digest-of-c", "small:2"}, SizeBytes: 10},
			{Names: []string{"digest-of-a", "small:1"}, SizeBytes: 10},
		}},
		{"at most five names", []*runtimeapi.Image{img("a", 1, "t1", "t2", "t3", "t4", "t5")}, 50,
			[]v1.ContainerImage{{Names: []string{"digest-of-a", "t1", "t2", "t3", "t4"}, SizeBytes: 1}}},
		{"no images", nil, 50, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := nodeImages(tc.images, tc.max); !equality.Semantic.DeepEqual(got, tc.want) {
				t.Errorf("nodeImages = %+v, want %+v", got, tc.want)
			}
		})
	}
	if got := nodeImages(many, 50); len(got) != 50 || got[0].SizeBytes != 60 || got[49].SizeBytes != 11 {
		t.Errorf("60 images, max 50: %d listed, first %d, last %d", len(got), got[0].SizeBytes, got[len(got)-1].SizeBytes)
	}
	if got := nodeImages(many, -1); len(got) != 60 {
		t.Errorf("60 images, no limit: %d listed", len(got))
	}
	if got := nodeImages(many, 0); len(got) != 0 {
		t.Errorf("60 images, max 0: %d listed", len(got))
	}
}

// The status carries the images; a runtime that does not answer leaves
// the last list.
func TestStatusImages(t *testing.T) {
	h := newHarness(t)
	h.c.cfg.MaxImages = ptr.To(int32(1))
	h.rt.images = []*runtimeapi.Image{
		{Id: "a", Size: 5, RepoTags: []string{"small:1"}},
		{Id: "b", Size: 9, RepoTags: []string{"big:1"}},
	}
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1"}}
	h.c.setStatus(context.Background(), node, h.clock.Now())
	want := []v1.ContainerImage{{Names: []string{"big:1"}, SizeBytes: 9}}
	if !equality.Semantic.DeepEqual(node.Status.Images, want) {
		t.Errorf("images = %+v, want %+v", node.Status.Images, want)
	}
	h.rt.set(errRuntimeDown, true)
	h.c.setStatus(context.Background(), node, h.clock.Now())
	if !equality.Semantic.DeepEqual(node.Status.Images, want) {
		t.Errorf("runtime down: images = %+v, want the last list %+v", node.Status.Images, want)
	}
}
