package podsync

import (
	"encoding/json"
	"hash/fnv"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/dump"

	"github.com/nodeagent/nodeagent/cri"
)

// Container spec changes. The apiserver lets a running pod change the
// image of its containers (kubectl set image); the kubelet then stops the
// container and starts a new one with the new spec. It notices the change
// through a hash of the container's mutable fields, stored at creation in
// the io.kubernetes.container.hash annotation: a running container whose
// hash differs from its spec's is killed and started again, whatever the
// restartPolicy.

// containerHash is the kubelet's HashContainer, in the annotation's
// format (hexadecimal): FNV-32a of the dumped JSON of the fields that may
// change on a running pod, the name and the image. The same value as the
// kubelet's keeps containers created by either agent comparable.
func containerHash(c *v1.Container) string {
	j, _ := json.Marshal(map[string]string{"name": c.Name, "image": c.Image})
	h := fnv.New32a()
	h.Write([]byte(dump.ForHash(j)))
	return strconv.FormatUint(uint64(h.Sum32()), 16)
}

// setContainerHash records the hash of c in the config of a container
// about to be created.
func setContainerHash(cfg *runtimeapi.ContainerConfig, c *v1.Container) {
	if cfg.Annotations == nil {
		cfg.Annotations = map[string]string{}
	}
	cfg.Annotations[cri.ContainerHashAnnotation] = containerHash(c)
}

// specChanged reports whether the running container cur was created from
// another spec than c. A container without the annotation (created before
// the agent recorded it) is taken as unchanged: restarting every container
// of the node on an agent upgrade would be worse than missing a change
// made before it.
func specChanged(c *v1.Container, cur *runtimeapi.ContainerStatus) bool {
	h, ok := cur.GetAnnotations()[cri.ContainerHashAnnotation]
	return ok && h != containerHash(c)
}

// statusImage is the image a container status reports for c whose
// newest container is cur: c's image when cur was created from c's spec,
// else the image cur runs as the runtime names it (the kubelet reports the
// runtime's), so that a changed image shows only once a container runs
// it. The spec's name is kept when it applies because the runtime names an
// image by one of its tags, not necessarily the one the spec gave. A
// runtime that no longer has the image reports the image ID the container
// was created with: the name the user gave is better then.
func statusImage(c *v1.Container, cur *runtimeapi.ContainerStatus) string {
	if !specChanged(c, cur) {
		return c.Image
	}
	img := cur.GetImage()
	if name := img.GetImage(); name != "" && !strings.HasPrefix(name, "sha256:") {
		return name
	}
	if name := img.GetUserSpecifiedImage(); name != "" {
		return name
	}
	return c.Image
}
