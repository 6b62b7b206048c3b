package agent

import (
	"context"
	"fmt"
	"os"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/nodeagent/nodeagent/configs"
	"github.com/nodeagent/nodeagent/cri"
	"github.com/nodeagent/nodeagent/logrotate"
	"github.com/nodeagent/nodeagent/nodestatus"
	"github.com/nodeagent/nodeagent/pleg"
	"github.com/nodeagent/nodeagent/podenv"
	"github.com/nodeagent/nodeagent/podstatus"
	"github.com/nodeagent/nodeagent/podsync"
	"github.com/nodeagent/nodeagent/podworkers"
	"github.com/nodeagent/nodeagent/prober"
	"github.com/nodeagent/nodeagent/server"
	"github.com/nodeagent/nodeagent/staticpods"
	"github.com/nodeagent/nodeagent/volumes"
)

// Version is reported as the node's kubelet version: the kubelet API
// version nodeagent follows, with its own name as build metadata.
var Version = "v1.36.3+nodeagent"

// gcPeriod is how often garbage collection runs.
const gcPeriod = time.Minute

// Run runs the agent until ctx ends.
func Run(ctx context.Context, opts *configs.Options) error {
	logger := klog.FromContext(ctx).WithValues("node", opts.NodeName)
	ctx = klog.NewContext(ctx, logger)
	cfg := opts.Config
	clk := clock.RealClock{}

	if err := os.MkdirAll(opts.RootDir, 0o750); err != nil {
		return fmt.Errorf("create root dir: %w", err)
	}
	client, err := newClient(opts)
	if err != nil {
		return err
	}
	rt, err := connectRuntime(ctx, opts)
	if err != nil {
		return err
	}

	nodeCtl := nodestatus.New(client, nodestatus.Config{
		NodeName:              opts.NodeName,
		NodeIPs:               opts.NodeIPs,
		Hostname:              opts.NodeName,
		Labels:                opts.NodeLabels,
		Taints:                cfg.RegisterWithTaints,
		ProviderID:            cfg.ProviderID,
		MaxPods:               cfg.MaxPods,
		Port:                  cfg.Port,
		RegisterNode:          cfg.RegisterNode == nil || *cfg.RegisterNode,
		StatusUpdateFrequency: cfg.NodeStatusUpdateFrequency.Duration,
		StatusReportFrequency: cfg.NodeStatusReportFrequency.Duration,
		LeaseDuration:         time.Duration(cfg.NodeLeaseDurationSeconds) * time.Second,
		RootDir:               opts.RootDir,
		AgentVersion:          Version,
		DeclaredFeatures:      declaredFeatures(opts),
	}, runtimeInfo{rt}, clk)
	go nodeCtl.Run(ctx)
	cniManager, err := startNetwork(ctx, opts, rt, nodeCtl)
	if err != nil {
		return err
	}
	var network podsync.Network // stays nil in runtime mode
	if cniManager != nil {
		network = cniManager
		legacyregistry.MustRegister(cniManager.Collectors()...)
	}
	podsync.RegisterMetrics()

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: "kubelet", Host: opts.NodeName})

	// Pods bound to this node only; services for the environment.
	podFactory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", opts.NodeName).String()
	}))
	svcFactory := informers.NewSharedInformerFactory(client, 0)
	podInformer := podFactory.Core().V1().Pods()
	svcLister := svcFactory.Core().V1().Services().Lister()

	allocatable := func() v1.ResourceList {
		if n := nodeCtl.Node(); n != nil {
			return n.Status.Allocatable
		}
		return nil
	}
	vols := volumes.NewManager(client, opts.RootDir, clk)
	vols.NodeAllocatable = allocatable
	env := &podenv.Resolver{
		Client:                 client,
		ServiceLister:          func(ns string) ([]*v1.Service, error) { return svcLister.Services(ns).List(everything) },
		NodeAllocatable:        allocatable,
		MasterServiceNamespace: "default",
	}
	var workers *podworkers.Workers
	var syncer *podsync.Syncer
	probes := prober.New(prober.Config{
		Runtime:  rt.Runtime,
		Recorder: recorder,
		Clock:    clk,
		Wake:     func(uid types.UID) { workers.Wake(uid) },
		Kill: func(ctx context.Context, pod *v1.Pod, container, id string, t prober.Type, msg string) {
			syncer.KillUnhealthy(ctx, pod, container, id, t.String(), msg)
		},
	})
	go probes.Run(ctx)
	status := &statusRouter{Writer: podstatus.NewWriter(client)}
	syncer = podsync.New(podsync.Config{
		NodeName:      opts.NodeName,
		NodeIPs:       opts.NodeIPs,
		RootDir:       opts.RootDir,
		PodLogsDir:    opts.PodLogsDir,
		ContainerLogs: "/var/log/containers",
		CgroupRoot:    cfg.CgroupRoot,
		CgroupsPerQOS: cfg.CgroupsPerQOS == nil || *cfg.CgroupsPerQOS,
		CgroupDriver:  cfg.CgroupDriver,
		ClusterDNS:    cfg.ClusterDNS,
		ClusterDomain: cfg.ClusterDomain,
		ResolvConf:    deref(cfg.ResolverConfig),
		MaxPods:       int(cfg.MaxPods),
		ActivePods:    func() []*v1.Pod { return workers.Pods() },
		Allocatable:   allocatable,
		Network:       network,
		Prober:        probes,
		PodCIDRs: func() []string {
			if n := nodeCtl.Node(); n != nil {
				return n.Spec.PodCIDRs
			}
			return nil
		},
	}, rt.Runtime, rt.Images, vols, env, status, recorder, clk)
	workers = podworkers.New(syncer, clk)
	if err := startDelegate(ctx, opts, cniManager, syncer.DelegatedPodNetwork); err != nil {
		return err
	}
	static := newStaticPods(workers, &staticpods.Mirrors{Client: client, Node: nodeCtl.Node}, podInformer.Lister())
	status.static = static

	if _, err := podInformer.Informer().AddEventHandler(podHandler(ctx, workers, static)); err != nil {
		return err
	}
	svcFactory.Core().V1().Services().Informer()
	svcFactory.Start(ctx.Done())

	// Container log rotation (the kubelet's container log manager).
	logRotator, err := logrotate.New(rt.Runtime, logrotate.Config{
		MaxSize: cfg.ContainerLogMaxSize, MaxFiles: int(deref(cfg.ContainerLogMaxFiles)), Workers: int(deref(cfg.ContainerLogMaxWorkers)),
		Interval: cfg.ContainerLogMonitorInterval.Duration, PodLogsDir: opts.PodLogsDir,
	}, clk)
	if err != nil {
		return fmt.Errorf("container log rotation: %w", err)
	}
	go logRotator.Run(ctx)

	srv, err := server.New(server.Config{
		NodeName:           opts.NodeName,
		Address:            cfg.Address,
		Port:               cfg.Port,
		ReadOnlyPort:       cfg.ReadOnlyPort,
		HealthzBindAddress: cfg.HealthzBindAddress,
		HealthzPort:        deref(cfg.HealthzPort),
		TLSCertFile:        cfg.TLSCertFile,
		TLSPrivateKeyFile:  cfg.TLSPrivateKeyFile,
		RootDir:            opts.RootDir,
		PodLogsDir:         opts.PodLogsDir,
		Authentication:     cfg.Authentication,
		Authorization:      cfg.Authorization,
		KubeletConfig:      cfg,
		RedirectStreaming:  opts.RedirectContainerStreaming,
	}, server.Deps{
		Client:  client,
		Runtime: rt.Runtime,
		Pods: func() []*v1.Pod {
			pods, _ := podInformer.Lister().List(everything)
			return pods
		},
		Images:       rt.Images,
		PodCgroup:    syncer.PodCgroup,
		ProbeMetrics: probes.Collectors(),
	})
	if err != nil {
		return fmt.Errorf("kubelet API server: %w", err)
	}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Run(ctx) }()

	// Pods start only once the Node exists: the apiserver needs it for
	// status and the Node authorizer for secrets, configmaps and tokens.
	select {
	case <-nodeCtl.Registered():
	case <-ctx.Done():
		return nil
	case err := <-srvErr:
		return err
	}
	podFactory.Start(ctx.Done())
	svcFactory.WaitForCacheSync(ctx.Done())
	podFactory.WaitForCacheSync(ctx.Done())
	logger.Info("Pod informer synced", "pods", len(podInformer.Informer().GetStore().ListKeys()))

	if dir := cfg.StaticPodPath; dir != "" {
		// Read once before garbage collection, which would otherwise take
		// a restarted agent's static pods for orphans.
		pods, _ := staticpods.Read(dir, opts.NodeName)
		static.set(ctx, pods)
		go staticpods.Watch(ctx, dir, opts.NodeName, cfg.FileCheckFrequency.Duration, func(p []*v1.Pod) { static.set(ctx, p) })
		go static.run(ctx)
	}
	go pleg.New(rt.Runtime, workers.Wake, clk).Run(ctx)
	go garbageCollect(ctx, syncer, podInformer.Informer().GetStore(), workers)

	<-ctx.Done()
	workers.Wait()
	return nil
}

type metav1ListOptions = metav1ListOptionsT

func podHandler(ctx context.Context, workers *podworkers.Workers, static *staticPods) cache.ResourceEventHandler {
	update := func(obj any) {
		pod, ok := obj.(*v1.Pod)
		if !ok {
			return
		}
		if _, mirror := staticpods.IsMirror(pod); mirror {
			static.mirrorChanged(ctx, pod)
			return
		}
		workers.Update(ctx, pod)
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    update,
		UpdateFunc: func(_, obj any) { update(obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			pod, ok := obj.(*v1.Pod)
			if !ok {
				return
			}
			if _, mirror := staticpods.IsMirror(pod); mirror {
				static.poke() // create it again
				return
			}
			workers.Remove(pod.UID)
		},
	}
}

// garbageCollect runs podsync's collection now and every gcPeriod. A pod
// is known while the apiserver has it or its worker still runs.
func garbageCollect(ctx context.Context, syncer *podsync.Syncer, store cache.Store, workers *podworkers.Workers) {
	known := func(uid types.UID) bool {
		if _, ok := workers.Known(uid); ok {
			return true
		}
		for _, obj := range store.List() {
			if obj.(*v1.Pod).UID == uid {
				return true
			}
		}
		return false
	}
	for {
		if err := syncer.GarbageCollect(ctx, known); err != nil {
			klog.FromContext(ctx).Error(err, "Garbage collection")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(gcPeriod):
		}
	}
}

func newClient(opts *configs.Options) (kubernetes.Interface, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", opts.KubeconfigPath)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", opts.KubeconfigPath, err)
	}
	rc.QPS = float32(deref(opts.Config.KubeAPIQPS))
	rc.Burst = int(opts.Config.KubeAPIBurst)
	rc.ContentType = "application/vnd.kubernetes.protobuf"
	rc.UserAgent = "nodeagent/" + Version
	return kubernetes.NewForConfig(rc)
}

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

// extendWebSocketsToKubelet is the node feature under which the apiserver
// sends WebSocket exec, attach and port-forward to the node as they came.
const extendWebSocketsToKubelet = "ExtendWebSocketsToKubelet"

// declaredFeatures are the features the node declares in its status.
func declaredFeatures(opts *configs.Options) []string {
	var fs []string
	if opts.DeclareWebSocketStreaming {
		fs = append(fs, extendWebSocketsToKubelet)
	}
	return fs
}
