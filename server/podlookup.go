package server

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nodeagent/nodeagent/staticpods"
)

// podByName resolves namespace/name, and uid when the URL has one, to the
// pod the agent runs, as the kubelet's GetPodByName (its pod manager holds
// no mirror pods) with TranslatePodUID:
//
//   - a pod object of the apiserver that is not a mirror is that pod;
//   - a mirror pod, or no object at all, is the static pod the agent runs
//     under that namespace and name (Deps.StaticPod): the runtime knows its
//     containers by the static pod's UID, never by the mirror's.
//
// The mirror is matched to its static pod by namespace and name only, as
// the kubelet's pod manager does; its annotations only tell that it is a
// mirror and never choose a UID: whoever may edit a mirror must not point
// a request at another pod's containers. A pod object that is not a mirror
// wins over a static pod of the same name, since it is the object the
// apiserver authorized the request on. A non-empty uid must be the
// resolved pod's; for a static pod the UID of its current mirror is
// accepted too, as the kubelet translates a mirror's UID to its static
// pod's.
func (s *Server) podByName(namespace, name string, uid types.UID) (*v1.Pod, error) {
	notFound := fmt.Errorf("pod %s/%s: %w", namespace, name, errNotFound)
	var obj *v1.Pod
	for _, p := range s.deps.Pods() {
		if p.Namespace == namespace && p.Name == name {
			obj = p
			break
		}
	}
	if obj != nil {
		if _, mirror := staticpods.IsMirror(obj); !mirror {
			if uid != "" && uid != obj.UID {
				return nil, notFound
			}
			return obj, nil
		}
	}
	if s.deps.StaticPod == nil {
		return nil, notFound
	}
	sp, ok := s.deps.StaticPod(namespace, name)
	if !ok || sp == nil || sp.Namespace != namespace || sp.Name != name {
		return nil, notFound
	}
	if uid != "" && uid != sp.UID && (obj == nil || uid != obj.UID) {
		return nil, notFound
	}
	return sp, nil
}
