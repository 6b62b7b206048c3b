package agent

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/nodeagent/nodeagent/configs"
	"github.com/nodeagent/nodeagent/cri"
	"github.com/nodeagent/nodeagent/nodecerts"
	"github.com/nodeagent/nodeagent/server"
)

// newServer configures the kubelet API on the agent's pieces. authClient
// makes the TokenReviews and SubjectAccessReviews; serving gives the TLS
// certificate.
func newServer(opts *configs.Options, authClient kubernetes.Interface, serving *nodecerts.Serving, rt *cri.Client, api *apiObjects, p *podPipeline) (*server.Server, error) {
	cfg := opts.Config
	tlsOpts, err := configs.TLSOptions(cfg)
	if err != nil {
		return nil, err
	}
	return server.New(server.Config{
		NodeName:           opts.NodeName,
		Address:            cfg.Address,
		Port:               cfg.Port,
		ReadOnlyPort:       cfg.ReadOnlyPort,
		HealthzBindAddress: cfg.HealthzBindAddress,
		HealthzPort:        deref(cfg.HealthzPort),
		GetCertificate:     serving.GetCertificate,
		RootDir:            opts.RootDir,
		PodLogsDir:         opts.PodLogsDir,
		PodCgroup:          podCgroupFinder(cfg, p),
		Authentication:     cfg.Authentication,
		Authorization:      cfg.Authorization,
		KubeletConfig:      cfg,
		RedirectStreaming:  opts.RedirectContainerStreaming,
		ServerDisabled:     !deref(cfg.EnableServer),
		Debugging: server.Debugging{
			Disabled:          !deref(cfg.EnableDebuggingHandlers),
			ProfilingDisabled: !deref(cfg.EnableProfilingHandler),
			SystemLogDisabled: !deref(cfg.EnableSystemLogHandler),
			FlagsDisabled:     !deref(cfg.EnableDebugFlagsHandler),
		},
		TLSMinVersion:       tlsOpts.MinVersion,
		TLSCipherSuites:     tlsOpts.CipherSuites,
		TLSCurvePreferences: tlsOpts.CurvePreferences,
	}, server.Deps{
		Client:       authClient,
		Runtime:      rt.Runtime,
		Pods:         api.boundPods,
		NodePods:     func() []*v1.Pod { return nodePods(api.boundPods(), p.static.list()) },
		StaticPod:    p.static.byName,
		PodStatus:    p.status.podStatus,
		Images:       rt.Images,
		PodCgroup:    p.syncer.PodCgroup,
		ProbeMetrics: p.probes.Collectors(),
	})
}
