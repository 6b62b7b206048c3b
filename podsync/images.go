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
// image as imagePullPolicy says; a failure is also c's waiting reason.
func (s *Syncer) ensureImage(ctx context.Context, pod *v1.Pod, c *v1.Container) (string, error) {
	ref, err := s.pullImage(ctx, pod, c.Image, c.ImagePullPolicy)
	var pe *pullError
	if errors.As(err, &pe) {
		// The kubelet's startContainer records the reason as an event too.
		s.recorder.Eventf(pod, v1.EventTypeWarning, "Failed", "Error: %s", pe.reason)
		s.setWaiting(pod.UID, c.Name, pe.reason, pe.message)
	}
	return ref, err
}

// pullPolicy is policy, or when it is empty the API's default: Always for
// an image tagged :latest or without a tag or digest, IfNotPresent
// otherwise. The apiserver defaults both a container's imagePullPolicy
// and an image volume's pullPolicy so; a pod from a manifest may have
// neither.
func pullPolicy(image string, policy v1.PullPolicy) v1.PullPolicy {
	if policy != "" {
		return policy
	}
	if strings.HasSuffix(image, ":latest") || !strings.Contains(lastPathElem(image), ":") && !strings.Contains(image, "@") {
		return v1.PullAlways
	}
	return v1.PullIfNotPresent
}

// pullImage makes image present as policy says, for a container or an
// image volume of pod alike (the kubelet's EnsureImageExists): it returns
// the reference the runtime knows the image by, or a *pullError with the
// kubelet's reason and message, after the kubelet's events (on the pod).
// Pulls take the node's turns (puller.go) and back off per image and pod.
func (s *Syncer) pullImage(ctx context.Context, pod *v1.Pod, image string, policy v1.PullPolicy) (string, error) {
	// A reference that does not parse is refused before the runtime sees
	// it, with the kubelet's reason, event and message (its
	// applyDefaultImageTag): InvalidImageName, not a pull failure.
	if _, err := reference.ParseNormalizedNamed(image); err != nil {
		msg := fmt.Sprintf("Failed to apply default image tag %q: couldn't parse image name %q: %v", image, image, err)
		s.recorder.Event(pod, v1.EventTypeWarning, "InspectFailed", msg)
		return "", &pullError{"InvalidImageName", msg, invalidImageRetry}
	}
	spec := &runtimeapi.ImageSpec{Image: image, UserSpecifiedImage: image}
	policy = pullPolicy(image, policy)
	if policy != v1.PullAlways {
		st, err := s.images.ImageStatus(ctx, spec, false)
		if err != nil {
			return "", fmt.Errorf("image status of %q: %w", image, err)
		}
		if st.GetImage() != nil {
			s.recorder.Eventf(pod, v1.EventTypeNormal, "Pulled", "Container image %q already present on machine", image)
			return st.Image.Id, nil
		}
		if policy == v1.PullNever {
			msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", image)
			s.recorder.Event(pod, v1.EventTypeWarning, "ErrImageNeverPull", msg)
			return "", &pullError{"ErrImageNeverPull", msg, 0}
		}
	}
	key := image + "/" + string(pod.UID)
	now := s.clock.Now()
	if s.pullBackoff.IsInBackOffSinceUpdate(key, now) {
		msg := fmt.Sprintf("Back-off pulling image %q", image)
		s.recorder.Event(pod, v1.EventTypeNormal, "BackOff", msg)
		return "", &pullError{"ImagePullBackOff", msg, s.pullBackoff.Get(key)}
	}
	start := s.clock.Now()
	s.recorder.Eventf(pod, v1.EventTypeNormal, "Pulling", "Pulling image %q", image)
	auths := s.pullAuth(ctx, pod, image)
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
		return "", fmt.Errorf("pull image %q: %w", image, err)
	}
	if err != nil {
		s.pullBackoff.Next(key, now)
		msg := fmt.Sprintf("Failed to pull image %q: %v", image, err)
		s.recorder.Event(pod, v1.EventTypeWarning, "Failed", msg)
		return "", &pullError{"ErrImagePull", msg, s.pullBackoff.Get(key)}
	}
	s.pullBackoff.Reset(key)
	s.recorder.Eventf(pod, v1.EventTypeNormal, "Pulled", "Successfully pulled image %q in %v (%v including waiting). Image size: %v bytes.",
		image, pullTime.Truncate(time.Millisecond), s.clock.Since(start).Truncate(time.Millisecond), size)
	return ref, nil
}

func lastPathElem(image string) string {
	if i := strings.LastIndex(image, "/"); i >= 0 {
		return image[i+1:]
	}
	return image
}
