package agent

import (
	"context"

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

// runEviction enforces the pods' local storage limits and the evictionHard
// and evictionSoft memory and disk thresholds (package eviction) until ctx
// ends: usage from the kubelet API server's stats, kills through the pods'
// workers, only pods whose workers still sync them.
func runEviction(ctx context.Context, opts *configs.Options, workers *podworkers.Workers, srv *server.Server,
	reclaimImages func(context.Context) (int64, error), recorder record.EventRecorder, clk clock.WithTicker) {
	// Validated at start: no error here.
	thresholds, _ := configs.EvictionThresholds(opts.Config)
	eviction.New(eviction.Config{
		Thresholds:        thresholds,
		MaxPodGracePeriod: int64(opts.Config.EvictionMaxPodGracePeriod),
		NodeRef:           nodeRef(opts.NodeName),
		Summary:           func(ctx context.Context) (*statsapi.Summary, error) { return srv.Summary(ctx, true) },
		MemoryCapacity:    nodestatus.MemoryCapacity(),
		NodeFs:            srv.NodeFsStats,
		ImageFs:           srv.ImageFsStats,
		ReclaimDisk:       reclaimImages,
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
	}).Run(ctx)
}
