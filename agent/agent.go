package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/nodeagent/nodeagent/configs"
	"github.com/nodeagent/nodeagent/cri"
	"github.com/nodeagent/nodeagent/hugepages"
	"github.com/nodeagent/nodeagent/logrotate"
	"github.com/nodeagent/nodeagent/nodecerts"
	"github.com/nodeagent/nodeagent/nodeshutdown/logind"
	"github.com/nodeagent/nodeagent/nodestatus"
	"github.com/nodeagent/nodeagent/pleg"
	"github.com/nodeagent/nodeagent/podsync"
	"github.com/nodeagent/nodeagent/staticpods"
	"github.com/nodeagent/nodeagent/version"
)

// Version is reported as the node's kubelet version: the kubelet API
// version nodeagent follows, with its own name as build metadata
// (package version, where the linker may set it).
var Version = version.Version

// gcPeriod is how often garbage collection runs.
const gcPeriod = time.Minute

// Run runs the agent until ctx ends or shutdown is closed: the Node and
// its network first, then the pod pipeline and the kubelet API, and once
// the Node is registered the informers, static pods, the runtime's event
// stream, garbage collection (of pods and containers, and of images:
// package imagegc) and local storage eviction.
//
// The two ends differ for the pods. When ctx ends the agent stops and
// leaves them running, for the next start to adopt. When shutdown is
// closed (NotifySignals: SIGTERM with graceful node shutdown configured),
// or systemd-logind announces that the machine shuts down (withLogind,
// with the same configuration), the node shuts down first: its pods are
// terminated as package nodeshutdown says and the node is reported
// NotReady, logind's inhibitor lock is released, then the agent stops;
// ctx ending meanwhile cuts that short. A shutdown asked for before the
// Node is registered only stops the agent: it knows no pods yet.
func Run(ctx context.Context, opts *configs.Options, shutdown <-chan struct{}) error {
	logger := klog.FromContext(ctx).WithValues("node", opts.NodeName)
	ctx = klog.NewContext(ctx, logger)
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	cfg := opts.Config
	clk := clock.RealClock{}

	if err := os.MkdirAll(opts.RootDir, 0o750); err != nil {
		return fmt.Errorf("create root dir: %w", err)
	}
	// One spelling of the root dir, the one /proc/self/mountinfo shows: the
	// teardown of a pod finds its mounts by this prefix before removing
	// anything.
	root, err := filepath.Abs(opts.RootDir)
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return fmt.Errorf("resolve root dir: %w", err)
	}
	opts.RootDir = root
	// As the kubelet's container manager at start.
	changed, warnings, err := configs.SetupKernelTunables(cfg)
	for _, w := range warnings {
		logger.Info("Warning: " + w)
	}
	if len(changed) > 0 {
		logger.Info("Set kernel tunables (protectKernelDefaults is false)", "was", changed)
	}
	if err != nil {
		return err
	}
	// Until the Node is registered a shutdown only stops the agent, and
	// must do so even while it waits for its certificate or the runtime.
	startCtx, startCancel := context.WithCancel(ctx)
	defer startCancel()
	registered := make(chan struct{})
	signalled := shutdown // withLogind replaces shutdown below
	go func() {
		select {
		case <-signalled:
			startCancel()
		case <-registered:
		case <-ctx.Done():
		}
	}()
	stopped := func(err error) error {
		select {
		case <-signalled:
			logger.Info("Node shutdown asked for before the node was registered: stopping")
			return nil
		default:
			return err
		}
	}
	nodecerts.RegisterMetrics()
	// startCtx lives as long as ctx once the Node is registered: the
	// certificate managers run on it.
	clients, identity, err := newClients(startCtx, opts)
	if err != nil {
		return stopped(err)
	}
	client := clients.main
	rt, err := connectRuntime(startCtx, opts)
	if err != nil {
		return stopped(err)
	}

	// The eviction manager, started last, keeps the pressure conditions.
	pressure := &pressureSource{}
	// The huge page pools, read once as the kubelet's machine info: the
	// node's capacity, the pods' limits and admission use them until a
	// restart.
	hugePages, err := hugepages.Read(hugepages.SysfsDir)
	if err != nil {
		return err
	}
	nodeCtl, err := newNodeController(ctx, opts, client, clients.heartbeat, rt, hugePages, pressure.UnderPressure, clk)
	if err != nil {
		return err
	}
	go nodeCtl.Run(ctx)
	cniManager, err := startNetwork(ctx, opts, rt, nodeCtl)
	if err != nil {
		return err
	}
	if cniManager != nil {
		legacyregistry.MustRegister(cniManager.Collectors()...)
	}
	podsync.RegisterMetrics()

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: clients.events.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: "kubelet", Host: opts.NodeName})

	api := newAPIObjects(client, opts.NodeName)
	pods, err := newPodPipeline(ctx, opts, client, rt, api, nodeCtl, cniManager, hugePages, recorder, clk)
	if err != nil {
		return err
	}
	api.svcFactory.Core().V1().Services().Informer()
	api.svcFactory.Start(ctx.Done())

	// Container log rotation (the kubelet's container log manager).
	logRotator, err := logrotate.New(rt.Runtime, logrotate.Config{
		MaxSize: cfg.ContainerLogMaxSize, MaxFiles: int(deref(cfg.ContainerLogMaxFiles)), Workers: int(deref(cfg.ContainerLogMaxWorkers)),
		Interval: cfg.ContainerLogMonitorInterval.Duration, PodLogsDir: opts.PodLogsDir,
	}, clk)
	if err != nil {
		return fmt.Errorf("container log rotation: %w", err)
	}
	go logRotator.Run(ctx)

	serving, err := nodecerts.NewServing(ctx, nodecerts.ServingOptions{
		CertDir: opts.CertDir, CertFile: cfg.TLSCertFile, KeyFile: cfg.TLSPrivateKeyFile,
		Bootstrap: cfg.ServerTLSBootstrap, Client: client, NodeName: opts.NodeName, Address: cfg.Address,
		Addresses: func() []v1.NodeAddress { return nodestatus.Addresses(opts.NodeIPs, opts.NodeName) },
	})
	if err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}
	srv, err := newServer(opts, clients.auth, serving, rt, api, pods)
	if err != nil {
		return fmt.Errorf("kubelet API server: %w", err)
	}
	imageGC, err := newImageGC(opts, rt, srv, recorder, clk)
	if err != nil {
		return fmt.Errorf("image garbage collection: %w", err)
	}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Run(ctx) }()

	// From here on a shutdown is handled: logind's announcement of one
	// joins SIGTERM.
	shutdown, drained := withLogind(ctx, cfg, shutdown, logind.Run)
	// Pods start only once the Node exists: the apiserver needs it for
	// status and the Node authorizer for secrets, configmaps and tokens.
	select {
	case <-nodeCtl.Registered():
	case <-ctx.Done():
		return nil
	case <-shutdown:
		logger.Info("Node shutdown asked for before the node was registered: stopping")
		return nil
	case err := <-srvErr:
		return err
	case err := <-identity.Failed():
		return err
	}
	close(registered)
	// Services and RuntimeClasses are in place before the first pod
	// arrives: a sync must not find its RuntimeClass missing only because
	// the cache is still filling. A shutdown does not wait for the caches.
	syncStop := make(chan struct{})
	go func(shutdown <-chan struct{}) {
		select {
		case <-ctx.Done():
		case <-shutdown:
		}
		close(syncStop)
	}(shutdown)
	api.svcFactory.WaitForCacheSync(syncStop)
	api.podFactory.Start(ctx.Done())
	api.podFactory.WaitForCacheSync(syncStop)
	logger.Info("Pod informer synced", "pods", len(api.pods.Informer().GetStore().ListKeys()))

	if dir := cfg.StaticPodPath; dir != "" {
		// Read once before garbage collection, which would otherwise take
		// a restarted agent's static pods for orphans.
		static, _ := staticpods.Read(dir, opts.NodeName)
		pods.static.set(ctx, static)
		go staticpods.Watch(ctx, dir, opts.NodeName, cfg.FileCheckFrequency.Duration, func(p []*v1.Pod) { pods.static.set(ctx, p) })
		go pods.static.run(ctx)
	}
	go pleg.New(rt.Runtime, pods.workers.Wake, clk).Run(ctx)
	go garbageCollect(ctx, pods.syncer, api.pods.Informer().GetStore(), pods.workers)
	go runEviction(ctx, opts, pods.workers, srv, imageGC.DeleteUnusedImages, recorder, clk, pressure)
	go imageGC.Run(ctx)

	select {
	case <-ctx.Done():
	case <-shutdown:
		if err := pods.shutdown.Shutdown(ctx); err != nil {
			logger.Info("Node shutdown cut short: stopping now", "reason", err)
		}
		drained()
	case err = <-srvErr:
	case err = <-identity.Failed():
	}
	stop()
	pods.workers.Wait()
	return err
}

type metav1ListOptions = metav1ListOptionsT

// connectRuntime dials the runtime, waiting for it to come up.
func connectRuntime(ctx context.Context, opts *configs.Options) (*cri.Client, error) {
	timeout := opts.Config.RuntimeRequestTimeout.Duration
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	for delay := time.Second; ; delay = min(2*delay, 30*time.Second) {
		c, err := cri.Connect(ctx, opts.ContainerRuntimeEndpoint, opts.ImageServiceEndpoint, timeout)
		if err == nil {
			return c, nil
		}
		klog.FromContext(ctx).Error(err, "Container runtime not available yet", "endpoint", opts.ContainerRuntimeEndpoint, "retryAfter", delay)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
	}
}
