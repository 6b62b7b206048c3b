package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// sandboxPIDs remembers the first process of each sandbox (its pause
// container), whose network namespace is the pod's: the runtime tells it
// once, in the verbose PodSandboxStatus (containerd's "info" has "pid"),
// and a sandbox keeps it for its life. A runtime that does not tell is
// not asked again about that sandbox.
type sandboxPIDs struct {
	runtime internalapi.RuntimeService
	mu      sync.Mutex
	byID    map[string]int
}

func newSandboxPIDs(rt internalapi.RuntimeService) *sandboxPIDs {
	return &sandboxPIDs{runtime: rt, byID: map[string]int{}}
}

var errNoPID = errors.New("the runtime did not tell the sandbox's process")

func (s *sandboxPIDs) get(ctx context.Context, id string) (int, error) {
	s.mu.Lock()
	pid, ok := s.byID[id]
	s.mu.Unlock()
	if ok && pid <= 0 {
		return 0, errNoPID // asked before: the runtime does not tell
	}
	if ok {
		return pid, nil
	}
	resp, err := s.runtime.PodSandboxStatus(ctx, id, true)
	if err != nil {
		return 0, err
	}
	pid, err = infoPID(resp.GetInfo())
	if errors.Is(err, errNoPID) {
		s.mu.Lock()
		s.byID[id] = 0
		s.mu.Unlock()
	}
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	s.byID[id] = pid
	s.mu.Unlock()
	return pid, nil
}

// infoPID reads "pid" from the verbose status's "info" JSON.
func infoPID(info map[string]string) (int, error) {
	raw, ok := info["info"]
	if !ok {
		return 0, errNoPID
	}
	var v struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return 0, fmt.Errorf("sandbox info: %w", err)
	}
	if v.PID <= 0 {
		return 0, errNoPID
	}
	return v.PID, nil
}

// forgetExcept drops the sandboxes no longer listed.
func (s *sandboxPIDs) forgetExcept(sandboxes []*runtimeapi.PodSandbox) {
	live := make(map[string]bool, len(sandboxes))
	for _, sb := range sandboxes {
		if sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			live[sb.Id] = true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.byID {
		if !live[id] {
			delete(s.byID, id)
		}
	}
}
