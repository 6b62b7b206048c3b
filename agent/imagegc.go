package agent

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/nodeagent/nodeagent/configs"
	"github.com/nodeagent/nodeagent/cri"
	"github.com/nodeagent/nodeagent/imagegc"
	"github.com/nodeagent/nodeagent/server"
)

// newImageGC configures image garbage collection (package imagegc) from
// the image GC fields of the config: the runtime's images and containers,
// the image filesystem's size from the kubelet API server's stats, events
// on the Node. An invalid policy stops the agent, as it stops the kubelet.
func newImageGC(opts *configs.Options, rt *cri.Client, srv *server.Server, recorder record.EventRecorder, clk clock.WithTicker) (*imagegc.Manager, error) {
	cfg := opts.Config
	imagegc.RegisterMetrics()
	return imagegc.New(imagegc.Config{
		Policy: imagegc.Policy{
			HighThresholdPercent: int(deref(cfg.ImageGCHighThresholdPercent)),
			LowThresholdPercent:  int(deref(cfg.ImageGCLowThresholdPercent)),
			MinAge:               cfg.ImageMinimumGCAge.Duration,
			MaxAge:               cfg.ImageMaximumGCAge.Duration,
		},
		Containers: rt.Runtime,
		Images:     rt.Images,
		ImageFs:    srv.ImageFsStats,
		Recorder:   recorder,
		NodeRef:    nodeRef(opts.NodeName),
		Clock:      clk,
		Period:     opts.ImageGCPeriod,
	})
}

// nodeRef is the Node as the kubelet names it in its events: its UID is
// the node's name.
func nodeRef(name string) *v1.ObjectReference {
	return &v1.ObjectReference{Kind: "Node", Name: name, UID: types.UID(name)}
}
