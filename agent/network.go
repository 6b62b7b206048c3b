package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/cni"
	"github.com/nodeagent/nodeagent/cni/delegateapi"
	"github.com/nodeagent/nodeagent/configs"
	"github.com/nodeagent/nodeagent/cri"
	"github.com/nodeagent/nodeagent/nodestatus"
)

// startNetwork sets up agent-owned pod networking (--network-plugin=cni):
// it refuses to run beside a runtime that would wire a real network of its
// own, loads the CNI config and keeps the node's readiness in step with
// it. It returns nil in runtime mode.
func startNetwork(ctx context.Context, opts *configs.Options, rt *cri.Client, node *nodestatus.Controller) (*cni.Manager, error) {
	if opts.NetworkPlugin != configs.NetworkPluginCNI {
		return nil, nil
	}
	logger := klog.FromContext(ctx)
	status, err := rt.Runtime.Status(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("runtime status: %w", err)
	}
	if real, msg := cni.RuntimeHasRealNetwork(status.Info); real {
		return nil, fmt.Errorf("%s", msg)
	} else if msg != "" {
		logger.V(2).Info("Runtime network check", "result", msg)
	}
	m := cni.New(cni.Config{ConfDir: opts.CNIConfDir, BinDirs: strings.Split(opts.CNIBinDir, ","), CacheDir: opts.CNICacheDir}, nil)
	report := func(err error) {
		if err != nil {
			node.SetNotReadyReason("network", "container network not ready: "+err.Error())
			logger.Error(err, "Pod network not ready")
			return
		}
		node.SetNotReadyReason("network", "")
		logger.Info("Pod network ready", "confDir", opts.CNIConfDir)
	}
	report(m.Load(ctx))
	go m.Watch(ctx, report)
	return m, nil
}

// startDelegate serves the nodeagent-delegate CNI plugin that the runtime
// runs inside RunPodSandbox, on <root-dir>/cni.sock, until ctx ends. It must
// run before the first sandbox starts. lookup finds the pods' host ports and
// bandwidth annotations.
func startDelegate(ctx context.Context, opts *configs.Options, m *cni.Manager, lookup cni.PodLookup) error {
	if m == nil {
		return nil
	}
	socket := filepath.Join(opts.RootDir, delegateapi.SocketName)
	d, err := m.ListenDelegate(socket, lookup)
	if err != nil {
		return err
	}
	logger := klog.FromContext(ctx)
	logger.Info("Serving the CNI delegate plugin", "socket", socket)
	go func() {
		if err := d.Serve(ctx); err != nil {
			logger.Error(err, "CNI delegate server stopped")
		}
	}()
	return nil
}
