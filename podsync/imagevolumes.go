package podsync

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	crierrors "k8s.io/cri-api/pkg/errors"
	"k8s.io/klog/v2"
)

// Image volumes (volumes of type image) as the kubelet v1.36 runs them
// (kuberuntime_manager.go getImageVolumes and toKubeContainerImageVolumes,
// kubelet_pods.go makeMounts):
//
//   - the host has nothing of them (package volumes makes no directory):
//     the runtime mounts the image itself, from CRI Mount.Image;
//   - in a sync that starts a container, every image volume's image is
//     made present first, as a container image is (pullImage: the
//     volume's pullPolicy with the same default, the pod's pull secrets,
//     the node's pull turns and limits, the pull back-off, the Pulling,
//     Pulled, Failed and BackOff events on the pod). Only such syncs pull,
//     as the kubelet once it stopped pulling at every sync (kubernetes
//     #138644: an event per volume per sync);
//   - a container that mounts a volume whose image could not be had is not
//     created: it waits with the pull's reason (ErrImagePull,
//     ImagePullBackOff, ErrImageNeverPull, InvalidImageName) and message,
//     and a Warning event Failed "Error: <reason>" is recorded for it.
//     Containers that do not mount it start;
//   - the mount is read-only whatever volumeMounts says, never relabelled
//     for SELinux (the kubelet's image plugin is not Managed), with the
//     mount's propagation, and a subPath (or expanded subPathExpr) goes to
//     the runtime as Mount.ImageSubPath: the runtime resolves it inside the
//     image it mounted, so no path of the host is involved.

// imageVolumePull is what one image volume's pull gave in this sync: the
// spec to mount, or why there is none.
type imageVolumePull struct {
	spec *runtimeapi.ImageSpec
	err  error
}

// imageVolumes returns, by volume name, the image specs of the image
// volumes c mounts, pulling the pod's image volumes once per sync. When a
// volume c mounts could not be pulled, c waits with the pull's reason and
// the error is returned: a *pullError (start() then retries after its
// back-off), or the error of a runtime that could not tell (image status)
// or a sync cancelled while it waited for a turn to pull.
func (s *Syncer) imageVolumes(ctx context.Context, pod *v1.Pod, c *v1.Container) (map[string]*runtimeapi.ImageSpec, error) {
	if !hasImageVolume(pod) {
		return nil, nil
	}
	pulls, err := s.pullImageVolumes(ctx, pod)
	if err != nil {
		return nil, err
	}
	out := map[string]*runtimeapi.ImageSpec{}
	var last error
	for _, m := range c.VolumeMounts {
		p, ok := pulls[m.Name]
		if !ok {
			continue
		}
		if p.err != nil {
			// The kubelet's event for each failed volume, its waiting
			// reason from the last one.
			var pe *pullError
			if errors.As(p.err, &pe) {
				s.recorder.Eventf(pod, v1.EventTypeWarning, "Failed", "Error: %s", pe.reason)
				s.setWaiting(pod.UID, c.Name, pe.reason, pe.message)
			}
			last = p.err
			continue
		}
		out[m.Name] = p.spec
	}
	if last != nil {
		return nil, last
	}
	return out, nil
}

// pullImageVolumes pulls the image of every image volume of pod, once per
// sync (forgotten by forgetImageVolumes when the sync ends), in spec
// order, as the kubelet's getImageVolumes. A failed pull is kept as that
// volume's outcome; the error is the runtime handler's, which every
// volume needs.
func (s *Syncer) pullImageVolumes(ctx context.Context, pod *v1.Pod) (map[string]imageVolumePull, error) {
	s.mu.Lock()
	pulls, done := s.imagePulls[pod.UID]
	s.mu.Unlock()
	if done {
		return pulls, nil
	}
	handler, err := s.runtimeHandler(pod)
	if err != nil {
		return nil, fmt.Errorf("%w: image volumes: %w", errConfig, err)
	}
	pulls = map[string]imageVolumePull{}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		if v.Image == nil {
			continue
		}
		ref, err := s.pullImage(ctx, pod, v.Image.Reference, v.Image.PullPolicy)
		if errors.Is(err, errPullWaitCancelled) {
			return nil, err // the sync ends; nothing to keep
		}
		if err != nil {
			klog.FromContext(ctx).V(2).Info("Image volume not pulled", "pod", klog.KObj(pod), "volume", v.Name, "image", v.Image.Reference, "err", err)
			pulls[v.Name] = imageVolumePull{err: err}
			continue
		}
		pulls[v.Name] = imageVolumePull{spec: imageVolumeSpec(pod, v.Image.Reference, ref, handler)}
	}
	s.mu.Lock()
	s.imagePulls[pod.UID] = pulls
	s.mu.Unlock()
	return pulls, nil
}

// imageVolumeSpec is the CRI image of an image volume's mount, with the
// kubelet's fields: the reference the pull returned, the one the user
// wrote, the pod's runtime handler and annotations.
func imageVolumeSpec(pod *v1.Pod, userRef, ref, handler string) *runtimeapi.ImageSpec {
	return &runtimeapi.ImageSpec{
		Image:              ref,
		UserSpecifiedImage: userRef,
		RuntimeHandler:     handler,
		Annotations:        maps.Clone(pod.Annotations),
	}
}

// forgetImageVolumes drops the pulls of the pod's sync that ends: the next
// sync that starts a container pulls again, as the pull policies say.
func (s *Syncer) forgetImageVolumes(uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.imagePulls, uid)
}

// hasImageVolume reports whether pod has a volume of type image.
func hasImageVolume(pod *v1.Pod) bool {
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Image != nil {
			return true
		}
	}
	return false
}

// countImageVolumes counts a start of c with the image volumes images as
// the kubelet's incrementImageVolumeMetrics: a mount failed when the
// runtime said it could not mount an image volume (CRI's
// ImageVolumeMountFailed, which containerd puts in CreateContainer's
// error), and succeeded otherwise, whatever else failed. The kubelet
// looks for that text at the start of the message, where containerd 2.2
// does not put it (it counts such failures as mounted); we look anywhere,
// deliberately.
func countImageVolumes(c *v1.Container, images map[string]*runtimeapi.ImageSpec, err error) {
	if len(images) == 0 {
		return
	}
	imageVolumeRequested.Add(float64(len(images)))
	failed := err != nil && strings.Contains(err.Error(), crierrors.ErrImageVolumeMountFailed.Error())
	for _, m := range c.VolumeMounts {
		if _, ok := images[m.Name]; !ok {
			continue
		}
		if failed {
			imageVolumeMountErrors.Inc()
		} else {
			imageVolumeMounted.Inc()
		}
	}
}

// imageVolumeMount is the CRI mount of an image volume (the kubelet's
// makeMounts with an image): no host path, read-only, the subPath inside
// the image, never relabelled.
func imageVolumeMount(m v1.VolumeMount, image *runtimeapi.ImageSpec, subPath string, rro bool, prop runtimeapi.MountPropagation) *runtimeapi.Mount {
	return &runtimeapi.Mount{
		ContainerPath:     m.MountPath,
		Readonly:          true,
		RecursiveReadOnly: rro,
		Propagation:       prop,
		Image:             image,
		ImageSubPath:      subPath,
	}
}
