// Command nodeagent is a Kubernetes node agent: it registers the machine
// as a Node and runs the pods bound to it through a CRI runtime. It takes
// the kubelet's core flags and KubeletConfiguration file.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/agent"
	"github.com/nodeagent/nodeagent/configs"
)

func main() {
	os.Exit(run())
}

func run() int {
	opts, warnings, err := configs.Parse(os.Args[1:])
	if errors.Is(err, configs.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nodeagent:", err)
		return 1
	}
	defer klog.Flush()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	logger := klog.Background()
	ctx = klog.NewContext(ctx, logger)
	for _, w := range warnings {
		logger.Info("Warning: " + w)
	}
	logger.Info("Starting nodeagent", "version", agent.Version, "node", opts.NodeName, "runtime", opts.ContainerRuntimeEndpoint)
	if err := agent.Run(ctx, opts); err != nil {
		logger.Error(err, "nodeagent failed")
		return 1
	}
	logger.Info("nodeagent stopped")
	return 0
}
