package podsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/distribution/reference"
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// pullError is an image that could not be had; the container waits with
// reason (ErrImagePull, ImagePullBackOff, ErrImageNeverPull) until
// retryAfter.
type pullError struct {
	reason, message string
	retryAfter      time.Duration
}

func (e *pullError) Error() string { return e.reason + ": " + e.message }

// invalidImageRetry is when a pod with an image reference that does not
// parse is looked at again (the image of a pod can be changed).
const invalidImageRetry = 30 * time.Second

// ensureImage returns the image reference to create c with, pulling the
// image as imagePullPolicy says.
func (s *Syncer) ensureImage(ctx context.Context, pod *v1.Pod, c *v1.Container) (string, error) {
	// A reference that does not parse is refused before the runtime sees
	// it, with the kubelet's reason, event and message (its
	// applyDefaultImageTag): InvalidImageName, not a pull failure.
	if _, err := reference.ParseNormalizedNamed(c.Image); err != nil {
		msg := fmt.Sprintf("Failed to apply default image tag %q: couldn't parse image name %q: %v", c.Image, c.Image, err)
		s.setWaiting(pod.UID, c.Name, "InvalidImageName", msg)
		s.recorder.Event(pod, v1.EventTypeWarning, "InspectFailed", msg)
		return "", &pullError{"InvalidImageName", msg, invalidImageRetry}
	}
	spec := &runtimeapi.ImageSpec{Image: c.Image, UserSpecifiedImage: c.Image}
	policy := c.ImagePullPolicy
	if policy == "" {
		policy = v1.PullIfNotPresent
		if strings.HasSuffix(c.Image, ":latest") || !strings.Contains(lastPathElem(c.Image), ":") && !strings.Contains(c.Image, "@") {
			policy = v1.PullAlways
		}
	}
	if policy != v1.PullAlways {
		st, err := s.images.ImageStatus(ctx, spec, false)
		if err != nil {
			return "", fmt.Errorf("image status of %q: %w", c.Image, err)
		}
		if st.GetImage() != nil {
			s.recorder.Eventf(pod, v1.EventTypeNormal, "Pulled", "Container image %q already present on machine", c.Image)
			return st.Image.Id, nil
		}
		if policy == v1.PullNever {
			msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
			s.setWaiting(pod.UID, c.Name, "ErrImageNeverPull", msg)
			s.recorder.Event(pod, v1.EventTypeWarning, "ErrImageNeverPull", msg)
			return "", &pullError{"ErrImageNeverPull", msg, 0}
		}
	}
	key := c.Image + "/" + string(pod.UID)
	now := s.clock.Now()
	if s.pullBackoff.IsInBackOffSinceUpdate(key, now) {
		msg := fmt.Sprintf("Back-off pulling image %q", c.Image)
		s.setWaiting(pod.UID, c.Name, "ImagePullBackOff", msg)
		s.recorder.Event(pod, v1.EventTypeNormal, "BackOff", msg)
		return "", &pullError{"ImagePullBackOff", msg, s.pullBackoff.Get(key)}
	}
	start := s.clock.Now()
	s.recorder.Eventf(pod, v1.EventTypeNormal, "Pulling", "Pulling image %q", c.Image)
	auths := s.pullAuth(ctx, pod, c.Image)
	if len(auths) == 0 {
		auths = []*runtimeapi.AuthConfig{nil}
	}
	// One turn and one token for the pull whatever the credentials, as
	// the kubelet (puller.go). The pull's own time, from its turn and
	// with reading the image's size, as there.
	var (
		ref      string
		size     uint64
		pullTime time.Duration
	)
	err := s.pulls.pull(ctx, func() error {
		pullStart := s.clock.Now()
		defer func() { pullTime = s.clock.Since(pullStart) }()
		// Each matching credential in turn, as the kubelet; none: anonymous.
		var err error
		for _, auth := range auths {
			if ref, err = s.images.PullImage(ctx, spec, auth, nil); err == nil {
				break
			}
		}
		if err == nil && ref != "" {
			// The size at best, as the kubelet's GetImageSize.
			if st, err := s.images.ImageStatus(ctx, spec, false); err == nil && st.GetImage() != nil {
				size = st.Image.Size
			}
		}
		return err
	})
	if errors.Is(err, errPullWaitCancelled) {
		return "", fmt.Errorf("pull image %q: %w", c.Image, err)
	}
	if err != nil {
		s.pullBackoff.Next(key, now)
		msg := fmt.Sprintf("Failed to pull image %q: %v", c.Image, err)
		s.setWaiting(pod.UID, c.Name, "ErrImagePull", msg)
		s.recorder.Event(pod, v1.EventTypeWarning, "Failed", msg)
		return "", &pullError{"ErrImagePull", msg, s.pullBackoff.Get(key)}
	}
	s.pullBackoff.Reset(key)
	s.recorder.Eventf(pod, v1.EventTypeNormal, "Pulled", "Successfully pulled image %q in %v (%v including waiting). Image size: %v bytes.",
		c.Image, pullTime.Truncate(time.Millisecond), s.clock.Since(start).Truncate(time.Millisecond), size)
	return ref, nil
}

func lastPathElem(image string) string {
	if i := strings.LastIndex(image, "/"); i >= 0 {
		return image[i+1:]
	}
	return image
}
