// Command nodeagent is a Kubernetes node agent: it registers the machine
// as a Node and runs the pods bound to it through a CRI runtime. It takes
// the kubelet's core flags and KubeletConfiguration file.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/agent"
	"github.com/nodeagent/nodeagent/configs"
	"github.com/nodeagent/nodeagent/version"
)

func main() {
	os.Exit(run())
}

func run() int {
	opts, warnings, err := configs.Parse(os.Args[1:])
	if errors.Is(err, configs.ErrHelp) || errors.Is(err, configs.ErrVersion) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nodeagent:", err)
		return 1
	}
	defer klog.Flush()
	// SIGINT stops the agent; SIGTERM too, or shuts the node down first
	// when the config asks for graceful node shutdown.
	ctx, shutdown, stop := agent.NotifySignals(context.Background(), opts.Config)
	defer stop()
	logger := klog.Background()
	ctx = klog.NewContext(ctx, logger)
	for _, w := range warnings {
		logger.Info("Warning: " + w)
	}
	build := version.Get()
	logger.Info("Starting nodeagent", "version", build.Version, "commit", build.Commit, "built", build.Date, "node", opts.NodeName, "runtime", opts.ContainerRuntimeEndpoint)
	if err := agent.Run(ctx, opts, shutdown); err != nil {
		logger.Error(err, "nodeagent failed")
		return 1
	}
	logger.Info("nodeagent stopped")
	return 0
}
