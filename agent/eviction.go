package agent

import (
	"context"
	"sync/atomic"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/clock"

	"github.com/nodeagent/nodeagent/configs"
	"github.com/nodeagent/nodeagent/eviction"
	"github.com/nodeagent/nodeagent/nodestatus"
	"github.com/nodeagent/nodeagent/podworkers"
	"github.com/nodeagent/nodeagent/server"
)

// pressureSource is the node's pressure conditions for the node status
// controller, which starts before the eviction manager exists: until
// runEviction has set it, no condition is on (as when no threshold is
// configured).
type pressureSource struct {
	m atomic.Pointer[eviction.Manager]
}

// UnderPressure is the eviction manager's UnderPressure; false while
// there is none.
func (p *pressureSource) UnderPressure(condition v1.NodeConditionType) bool {
	return p.m.Load().UnderPressure(condition)
}

// runEviction enforces the pods' local storage limits (with
// localStorageCapacityIsolation) and the evictionHard and evictionSoft
// memory, disk and pid thresholds (package eviction), and keeps the node's
// pressure conditions (in pressure), until ctx ends: usage from the
// kubelet API server's stats, kills through the pods' workers, only pods
// whose workers still sync them.
func runEviction(ctx context.Context, opts *configs.Options, workers *podworkers.Workers, srv *server.Server,
	reclaimImages func(context.Context) (int64, error), recorder record.EventRecorder, clk clock.WithTicker, pressure *pressureSource) {
	// Validated at start: no error here.
	thresholds, _ := configs.EvictionThresholds(opts.Config)
	m := eviction.New(eviction.Config{
		Thresholds:         thresholds,
		PressureTransition: opts.Config.EvictionPressureTransitionPeriod.Duration,
		LocalStorageLimits: deref(opts.Config.LocalStorageCapacityIsolation),
		PIDs:               nodestatus.PIDs,
		MaxPodGracePeriod:  int64(opts.Config.EvictionMaxPodGracePeriod),
		NodeRef:            nodeRef(opts.NodeName),
		Summary:            func(ctx context.Context) (*statsapi.Summary, error) { return srv.Summary(ctx, true) },
		MemoryCapacity:     nodestatus.MemoryCapacity(),
		NodeFs:             srv.NodeFsStats,
		ImageFs:            srv.ImageFsStats,
		ReclaimDisk:        reclaimImages,
		Pods: func() []*v1.Pod {
			var out []*v1.Pod
			for _, pod := range workers.Pods() {
				if state, ok := workers.Known(pod.UID); ok && state == podworkers.Syncing {
					out = append(out, pod)
				}
			}
			return out
		},
		Stats: srv.PodStorage,
		Kill: func(pod *v1.Pod, grace int64, status func(*v1.PodStatus)) <-chan struct{} {
			return workers.Kill(pod.UID, podworkers.KillOptions{GracePeriod: grace, Status: status})
		},
		Recorder: recorder,
		Clock:    clk,
	})
	pressure.m.Store(m)
	m.Run(ctx)
}
