package nodestatus

import (
	"context"
	"sort"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// Limits of the kubelet's status.images.
const (
	defaultMaxImages = 50 // nodeStatusMaxImages
	maxNamesPerImage = 5  // MaxNamesPerImageInNodeStatus
)

// setImages reports the runtime's images as the kubelet: the biggest
// first (ties by image ID, descending), at most MaxImages of them (-1: no
// limit), each named by up to five names, digests before tags. When the
// runtime does not answer the list stays as it was, as the kubelet's image
// cache keeps its last listing.
func (c *Controller) setImages(ctx context.Context, st *v1.NodeStatus) {
	lctx, cancel := context.WithTimeout(ctx, runtimeTimeout)
	defer cancel()
	images, err := c.rt.ListImages(lctx)
	if err != nil {
		klog.FromContext(ctx).V(4).Info("Unable to list images", "err", err)
		return
	}
	st.Images = nodeImages(images, c.maxImages())
}

func (c *Controller) maxImages() int {
	if c.cfg.MaxImages == nil {
		return defaultMaxImages
	}
	return int(*c.cfg.MaxImages)
}

func nodeImages(images []*runtimeapi.Image, max int) []v1.ContainerImage {
	sorted := append([]*runtimeapi.Image(nil), images...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].GetSize() == sorted[j].GetSize() {
			return sorted[i].GetId() > sorted[j].GetId()
		}
		return sorted[i].GetSize() > sorted[j].GetSize()
	})
	if max > -1 && max < len(sorted) {
		sorted = sorted[:max]
	}
	var out []v1.ContainerImage
	for _, img := range sorted {
		names := append(append([]string{}, img.GetRepoDigests()...), img.GetRepoTags()...)
		if len(names) > maxNamesPerImage {
			names = names[:maxNamesPerImage]
		}
		out = append(out, v1.ContainerImage{Names: names, SizeBytes: int64(img.GetSize())})
	}
	return out
}
