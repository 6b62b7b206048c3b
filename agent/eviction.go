package agent

import (
	"context"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/nodeagent/nodeagent/eviction"
	"github.com/nodeagent/nodeagent/podworkers"
	"github.com/nodeagent/nodeagent/server"
)

// runEviction enforces the pods' local storage limits (package eviction)
// until ctx ends: usage from the kubelet API server's stats, kills through
// the pods' workers, only pods whose workers still sync them.
func runEviction(ctx context.Context, workers *podworkers.Workers, srv *server.Server, recorder record.EventRecorder, clk clock.WithTicker) {
	eviction.New(eviction.Config{
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
