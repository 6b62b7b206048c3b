package podsync

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/cri"
)

// podState is what the runtime has of one pod.
type podState struct {
	// sandboxes, newest first.
	sandboxes []*runtimeapi.PodSandbox
	// containers with their status, newest first.
	containers []*runtimeapi.ContainerStatus
}

// readySandbox returns the newest sandbox if it is ready.
func (s *podState) readySandbox() *runtimeapi.PodSandbox {
	if len(s.sandboxes) > 0 && s.sandboxes[0].State == runtimeapi.PodSandboxState_SANDBOX_READY {
		return s.sandboxes[0]
	}
	return nil
}

// nextSandboxAttempt is the attempt of the pod's next sandbox: one more
// than the newest sandbox's, as the kubelet's computePodActions. Counting
// the sandboxes instead repeats a name the runtime still holds once an
// older sandbox is collected (attempts 1 and 2 left: the next must be 3),
// and the runtime refuses the sandbox for ever.
func (s *podState) nextSandboxAttempt() uint32 {
	var next uint32
	for _, sb := range s.sandboxes {
		if a := sb.GetMetadata().GetAttempt(); a >= next {
			next = a + 1
		}
	}
	return next
}

// latest returns the newest container of a name, and the one before it.
func (s *podState) latest(name string) (cur, prev *runtimeapi.ContainerStatus) {
	for _, c := range s.containers {
		if c.Metadata.GetName() != name {
			continue
		}
		if cur == nil {
			cur = c
		} else {
			return cur, c
		}
	}
	return cur, nil
}

// statusCache keeps the status of exited containers, which never changes,
// so that a sync asks the runtime only about live ones.
type statusCache struct {
	mu     sync.Mutex
	exited map[string]*runtimeapi.ContainerStatus
}

func (c *statusCache) get(id string) *runtimeapi.ContainerStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exited[id]
}

func (c *statusCache) put(s *runtimeapi.ContainerStatus) {
	if s.State != runtimeapi.ContainerState_CONTAINER_EXITED {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.exited == nil {
		c.exited = map[string]*runtimeapi.ContainerStatus{}
	}
	c.exited[s.Id] = s
}

func (c *statusCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.exited, id)
}

// readPodState lists the pod's sandboxes and containers and the status of
// each container.
func readPodState(ctx context.Context, rt internalapi.RuntimeService, cache *statusCache, uid types.UID) (*podState, error) {
	sandboxes, err := rt.ListPodSandbox(ctx, cri.ManagedSandboxFilter(uid))
	if err != nil {
		return nil, fmt.Errorf("list sandboxes: %w", err)
	}
	sort.Slice(sandboxes, func(i, j int) bool { return sandboxes[i].CreatedAt > sandboxes[j].CreatedAt })
	st := &podState{sandboxes: sandboxes}
	if len(sandboxes) == 0 {
		return st, nil
	}
	ctrs, err := rt.ListContainers(ctx, cri.ManagedContainerFilter(uid))
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range ctrs {
		s := cache.get(c.Id)
		if s == nil {
			resp, err := rt.ContainerStatus(ctx, c.Id, false)
			if err != nil {
				return nil, fmt.Errorf("status of container %s: %w", c.Id, err)
			}
			if resp.Status == nil {
				continue
			}
			s = resp.Status
			if s.Labels == nil {
				s.Labels = c.Labels
			}
			if s.Annotations == nil {
				s.Annotations = c.Annotations
			}
			cache.put(s)
		}
		st.containers = append(st.containers, s)
	}
	sort.Slice(st.containers, func(i, j int) bool {
		a, b := st.containers[i], st.containers[j]
		if a.Metadata.GetAttempt() != b.Metadata.GetAttempt() {
			return a.Metadata.GetAttempt() > b.Metadata.GetAttempt()
		}
		return a.CreatedAt > b.CreatedAt
	})
	return st, nil
}
