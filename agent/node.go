package agent

import (
	"context"
	"fmt"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/nodeagent/nodeagent/configs"
	"github.com/nodeagent/nodeagent/cri"
	"github.com/nodeagent/nodeagent/hugepages"
	"github.com/nodeagent/nodeagent/nodestatus"
)

// newNodeController configures the Node's registration, status and lease;
// the lease and the status go through the heartbeat client. As the
// kubelet, it refuses reservations (kubeReserved, systemReserved and the
// evictionHard thresholds of memory and disk) above the node's capacity.
// The pressure conditions are underPressure's (the eviction manager's);
// the huge page capacity is hugePages'.
func newNodeController(ctx context.Context, opts *configs.Options, client, heartbeat kubernetes.Interface, rt *cri.Client,
	hugePages []hugepages.Pool, underPressure func(v1.NodeConditionType) bool, clk clock.WithTicker) (*nodestatus.Controller, error) {
	cfg := opts.Config
	kubeReserved, err := configs.ReservedResources(cfg.KubeReserved)
	if err != nil {
		return nil, fmt.Errorf("kubeReserved: %w", err)
	}
	systemReserved, err := configs.ReservedResources(cfg.SystemReserved)
	if err != nil {
		return nil, fmt.Errorf("systemReserved: %w", err)
	}
	evictionThresholds, err := configs.EvictionThresholds(cfg)
	if err != nil {
		return nil, err // each message names its field
	}
	ctl := nodestatus.New(client, nodestatus.Config{
		NodeName:              opts.NodeName,
		NodeIPs:               opts.NodeIPs,
		Hostname:              opts.NodeName,
		Labels:                opts.NodeLabels,
		Taints:                cfg.RegisterWithTaints,
		ProviderID:            cfg.ProviderID,
		MaxPods:               cfg.MaxPods,
		PodsPerCore:           cfg.PodsPerCore,
		MaxImages:             cfg.NodeStatusMaxImages,
		Port:                  cfg.Port,
		RegisterNode:          cfg.RegisterNode == nil || *cfg.RegisterNode,
		StatusUpdateFrequency: cfg.NodeStatusUpdateFrequency.Duration,
		StatusReportFrequency: cfg.NodeStatusReportFrequency.Duration,
		LeaseDuration:         time.Duration(cfg.NodeLeaseDurationSeconds) * time.Second,
		RootDir:               opts.RootDir,
		HugePages:             hugePages,
		KubeReserved:          kubeReserved,
		SystemReserved:        systemReserved,
		EvictionThresholds:    evictionThresholds,
		UnderPressure:         underPressure,
		AgentVersion:          Version,
		DeclaredFeatures:      declaredFeatures(opts),
		HeartbeatClient:       heartbeat,
	}, runtimeInfo{rt}, clk)
	if err := ctl.CheckAllocatable(ctx); err != nil {
		return nil, err
	}
	return ctl, nil
}

// extendWebSocketsToKubelet is the node feature under which the apiserver
// sends WebSocket exec, attach and port-forward to the node as they came.
const extendWebSocketsToKubelet = "ExtendWebSocketsToKubelet"

// initContainerResize is the node feature under which the apiserver lets a
// resize change the resources of regular init containers (podsync's
// resize.go applies them, to a running one as to app containers).
const initContainerResize = "InPlacePodVerticalScalingInitContainers"

// declaredFeatures are the features the node declares in its status, in
// the order the kubelet lists them (sorted by name). Of the others
// k8s.io/component-helpers/nodedeclaredfeatures knows, the pod fields
// they serve are refused by nodeagent: restartPolicyRules
// (RestartAllContainersOnContainerExits) and hostUsers: false
// (UserNamespacesHostNetworkSupport); and pod-level resources are
// honoured but not resized in place (InPlacePodLevelResourcesVerticalScaling:
// undeclared, the apiserver refuses such a resize for this node).
func declaredFeatures(opts *configs.Options) []string {
	fs := []string{initContainerResize}
	if opts.DeclareWebSocketStreaming {
		fs = append(fs, extendWebSocketsToKubelet)
	}
	slices.Sort(fs)
	return fs
}
