package agent

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"

	"github.com/nodeagent/nodeagent/configs"
	"github.com/nodeagent/nodeagent/nodecerts"
)

// clients are the agent's API clients. Each has its own client-side rate
// limiter, so that one kind of traffic cannot hold up another: the
// kubelet's KubeClient, EventClient and HeartbeatClient, and one more for
// the webhooks of the node API, so that a flood of requests with made-up
// bearer tokens (each a TokenReview) queues only behind itself.
type clients struct {
	// main does everything else: kubeAPIQPS and kubeAPIBurst.
	main kubernetes.Interface
	// events records events: eventRecordQPS and eventBurst.
	events kubernetes.Interface
	// heartbeat renews the Lease and posts the Node status: no client-side
	// rate limit and a timeout of nodeStatusUpdateFrequency, at most the
	// lease duration.
	heartbeat kubernetes.Interface
	// auth makes the node API's TokenReviews and SubjectAccessReviews:
	// kubeAPIQPS and kubeAPIBurst, its own limiter.
	auth kubernetes.Interface
}

// newClients builds the clients on the agent's client identity: the
// kubeconfig's, or a bootstrapped and rotated certificate (nodecerts).
func newClients(ctx context.Context, opts *configs.Options) (*clients, *nodecerts.Client, error) {
	id, err := nodecerts.NewClient(ctx, nodecerts.ClientOptions{
		KubeconfigPath:          opts.KubeconfigPath,
		BootstrapKubeconfigPath: opts.BootstrapKubeconfigPath,
		CertDir:                 opts.CertDir,
		NodeName:                opts.NodeName,
		Rotate:                  opts.Config.RotateCertificates,
	})
	if err != nil {
		return nil, nil, err
	}
	c, err := clientsFor(id.Config, opts.Config)
	return c, id, err
}

// clientsFor builds the clients on the kubeconfig's rest config.
func clientsFor(base *rest.Config, cfg *kubeletconfigv1beta1.KubeletConfiguration) (*clients, error) {
	rcs := clientConfigs(base, cfg)
	var c clients
	for _, x := range []struct {
		name string
		rc   *rest.Config
		dst  *kubernetes.Interface
	}{
		{"main", rcs.main, &c.main},
		{"event", rcs.events, &c.events},
		{"heartbeat", rcs.heartbeat, &c.heartbeat},
		{"authentication and authorization", rcs.auth, &c.auth},
	} {
		cs, err := kubernetes.NewForConfig(x.rc)
		if err != nil {
			return nil, fmt.Errorf("%s API client: %w", x.name, err)
		}
		*x.dst = cs
	}
	return &c, nil
}

type restConfigs struct {
	main, events, heartbeat, auth *rest.Config
}

// clientConfigs derives each client's rest config from the kubeconfig's,
// as the kubelet's cmd/kubelet/app/server.go does for its clients.
func clientConfigs(base *rest.Config, cfg *kubeletconfigv1beta1.KubeletConfiguration) restConfigs {
	main := rest.CopyConfig(base)
	main.QPS = float32(deref(cfg.KubeAPIQPS))
	main.Burst = int(cfg.KubeAPIBurst)
	main.ContentType = "application/vnd.kubernetes.protobuf"
	main.UserAgent = "nodeagent/" + Version

	events := rest.CopyConfig(main)
	events.QPS = float32(deref(cfg.EventRecordQPS))
	events.Burst = int(cfg.EventBurst)

	heartbeat := rest.CopyConfig(main)
	heartbeat.QPS = -1 // no client-side rate limit
	heartbeat.Timeout = cfg.NodeStatusUpdateFrequency.Duration
	if lease := time.Duration(cfg.NodeLeaseDurationSeconds) * time.Second; heartbeat.Timeout <= 0 || heartbeat.Timeout > lease {
		heartbeat.Timeout = lease
	}

	return restConfigs{main: main, events: events, heartbeat: heartbeat, auth: rest.CopyConfig(main)}
}
