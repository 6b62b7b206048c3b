package agent

import (
	"context"
	"sort"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	corev1informers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	nodelisters "k8s.io/client-go/listers/node/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/nodeagent/nodeagent/cni"
	"github.com/nodeagent/nodeagent/configs"
	"github.com/nodeagent/nodeagent/cri"
	"github.com/nodeagent/nodeagent/hugepages"
	"github.com/nodeagent/nodeagent/nodeshutdown"
	"github.com/nodeagent/nodeagent/nodestatus"
	"github.com/nodeagent/nodeagent/podcgroups"
	"github.com/nodeagent/nodeagent/podenv"
	"github.com/nodeagent/nodeagent/podstatus"
	"github.com/nodeagent/nodeagent/podsync"
	"github.com/nodeagent/nodeagent/podworkers"
	"github.com/nodeagent/nodeagent/prober"
	"github.com/nodeagent/nodeagent/staticpods"
	"github.com/nodeagent/nodeagent/volumes"
)

// apiObjects are the informers the agent reads the apiserver through: the
// pods bound to the node, and from svcFactory (the whole cluster's
// objects, synced before the first pod) services for the containers'
// environment and RuntimeClasses for the pods' runtime handlers, as the
// kubelet's runtimeclass.Manager (the Node authorizer lets a node list
// and watch them).
type apiObjects struct {
	podFactory, svcFactory informers.SharedInformerFactory
	pods                   corev1informers.PodInformer
	services               corelisters.ServiceLister
	runtimeClasses         nodelisters.RuntimeClassLister
}

func newAPIObjects(client kubernetes.Interface, nodeName string) *apiObjects {
	podFactory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", nodeName).String()
	}), informers.WithTransform(markAPISource))
	svcFactory := informers.NewSharedInformerFactory(client, 0)
	a := &apiObjects{podFactory: podFactory, svcFactory: svcFactory, pods: podFactory.Core().V1().Pods()}
	a.services = svcFactory.Core().V1().Services().Lister()
	a.runtimeClasses = svcFactory.Node().V1().RuntimeClasses().Lister()
	return a
}

// markAPISource sets the config.source annotation of a pod from the
// apiserver to "api", whatever its author wrote there, as the kubelet's
// pod config does for every pod of a source: a pod that claims to be
// from a file ("file") would otherwise pass for a static pod (critical,
// never evicted, no NoExecute check, its status never written).
func markAPISource(obj any) (any, error) {
	if pod, ok := obj.(*v1.Pod); ok && pod.Annotations[staticpods.ConfigSourceAnnotation] != apiSource {
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[staticpods.ConfigSourceAnnotation] = apiSource
	}
	return obj, nil
}

// apiSource is the kubelet's config.source of pods from the apiserver.
const apiSource = "api"

// boundPods lists the pods bound to the node, as the informer has them.
func (a *apiObjects) boundPods() []*v1.Pod {
	pods, _ := a.pods.Lister().List(everything)
	return pods
}

// podPipeline is what runs pods: the workers, the syncer behind them, the
// prober and the static pods.
type podPipeline struct {
	workers  *podworkers.Workers
	syncer   *podsync.Syncer
	probes   *prober.Manager
	static   *staticPods
	shutdown *nodeshutdown.Manager
	// status writes the pods' statuses, a static pod's to its mirror, and
	// is the agent's own view of them.
	status *statusRouter
}

// newPodPipeline wires volumes, environment, probes, the syncer and the
// pod workers, and starts the prober and the CNI delegate server. The
// containers and pod cgroups get a hugetlb limit of each page size of
// hugePages.
func newPodPipeline(ctx context.Context, opts *configs.Options, client kubernetes.Interface, rt *cri.Client, api *apiObjects,
	nodeCtl *nodestatus.Controller, cniManager *cni.Manager, hugePages []hugepages.Pool, recorder record.EventRecorder, clk clock.WithTicker) (*podPipeline, error) {
	cfg := opts.Config
	// As the kubelet: a bad allowedUnsafeSysctls stops the agent.
	if err := podsync.CheckAllowedUnsafeSysctls(cfg.AllowedUnsafeSysctls); err != nil {
		return nil, err
	}
	var network podsync.Network // stays nil in runtime mode
	if cniManager != nil {
		network = cniManager
	}
	allocatable := func() v1.ResourceList {
		if n := nodeCtl.Node(); n != nil {
			return n.Status.Allocatable
		}
		return nil
	}
	p := &podPipeline{}
	arrived := &arrivals{seq: map[types.UID]uint64{}}
	vols := volumes.NewManager(client, opts.RootDir, clk)
	vols.NodeAllocatable = allocatable
	vols.Wake = func(uid types.UID) { p.workers.Wake(uid) }
	env := &podenv.Resolver{
		Objects:                vols,
		Client:                 client,
		ServiceLister:          func(ns string) ([]*v1.Service, error) { return api.services.Services(ns).List(everything) },
		NodeAllocatable:        allocatable,
		MasterServiceNamespace: "default",
	}
	p.probes = prober.New(prober.Config{
		Runtime:  rt.Runtime,
		Recorder: recorder,
		Clock:    clk,
		Wake:     func(uid types.UID) { p.workers.Wake(uid) },
	})
	go p.probes.Run(ctx)
	status := &statusRouter{Writer: podstatus.NewWriter(client)}
	p.status = status
	memCapacity := nodestatus.MemoryCapacity()
	// The kubelet's active pods: a pod deleted for good no longer counts
	// while its containers stop (podworkers' Active).
	activePods := func() []*v1.Pod {
		if p.workers == nil {
			return nil // setting up: no pod yet
		}
		return arrived.order(p.workers.Active())
	}
	podCgroups, runQoS, err := setupPodCgroups(ctx, cfg, memCapacity, hugePages, activePods)
	if err != nil {
		return nil, err
	}
	hugetlb := podcgroups.HasController("", "hugetlb")
	if !hugetlb && len(hugePages) > 0 {
		klog.FromContext(ctx).Info("The host has no hugetlb cgroup controller: pods' huge pages are counted at admission but not limited", "pageSizes", hugepages.PageSizes(hugePages))
	}
	p.syncer = podsync.New(podsync.Config{
		NodeName:       opts.NodeName,
		NodeIPs:        opts.NodeIPs,
		RootDir:        opts.RootDir,
		PodLogsDir:     opts.PodLogsDir,
		ContainerLogs:  "/var/log/containers",
		CgroupRoot:     cfg.CgroupRoot,
		CgroupsPerQOS:  cfg.CgroupsPerQOS == nil || *cfg.CgroupsPerQOS,
		CgroupDriver:   cfg.CgroupDriver,
		ClusterDNS:     cfg.ClusterDNS,
		ClusterDomain:  cfg.ClusterDomain,
		ResolvConf:     deref(cfg.ResolverConfig),
		MaxPods:        int(nodeCtl.PodCapacity()),
		ActivePods:     activePods,
		PodCgroups:     podCgroups,
		Allocatable:    allocatable,
		MemoryCapacity: func() int64 { return memCapacity },
		HugePageSizes:  hugepages.PageSizes(hugePages),
		HugetlbLimited: hugetlb,
		Network:        network,
		Prober:         p.probes,
		PodCIDRs: func() []string {
			if n := nodeCtl.Node(); n != nil {
				return n.Spec.PodCIDRs
			}
			return nil
		},
		SeccompDefault:                    deref(cfg.SeccompDefault),
		AllowedUnsafeSysctls:              cfg.AllowedUnsafeSysctls,
		AppArmorEnabled:                   podsync.HostAppArmorEnabled(),
		SupplementalGroupsPolicySupported: strictGroupsSupported(ctx, rt),
		Node:                              nodeCtl.Node,
		GetSecret: func(ctx context.Context, ns, name string) (*v1.Secret, error) {
			return client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		},
		ShuttingDown:   func() bool { return p.shutdown.ShuttingDown() },
		RuntimeClasses: api.runtimeClasses,
		// Default and Validate set and checked these.
		MaxContainerRestartPeriod: deref(cfg.CrashLoopBackOff.MaxContainerRestartPeriod).Duration,
		SerializeImagePulls:       deref(cfg.SerializeImagePulls),
		MaxParallelImagePulls:     int(deref(cfg.MaxParallelImagePulls)),
		RegistryPullQPS:           int(deref(cfg.RegistryPullQPS)),
		RegistryBurst:             int(cfg.RegistryBurst),
	}, rt.Runtime, rt.Images, vols, env, status, recorder, clk)
	p.workers = podworkers.New(p.syncer, clk)
	runQoS()
	p.shutdown = nodeshutdown.New(nodeshutdown.Config{
		Groups: nodeshutdown.Groups(cfg),
		Pods:   p.workers.Pods,
		Kill: func(pod *v1.Pod, grace int64, status func(*v1.PodStatus)) <-chan struct{} {
			return p.workers.Kill(pod.UID, podworkers.KillOptions{GracePeriod: grace, Status: status})
		},
		Node:     nodeCtl,
		Recorder: recorder,
		NodeRef:  &v1.ObjectReference{Kind: "Node", Name: opts.NodeName, UID: types.UID(opts.NodeName)},
		Clock:    clk,
	})
	if err := startDelegate(ctx, opts, cniManager, p.syncer.DelegatedPodNetwork); err != nil {
		return nil, err
	}
	p.static = newStaticPods(p.workers, &staticpods.Mirrors{Client: client, Node: nodeCtl.Node}, api.pods.Lister())
	status.static = p.static
	if _, err := api.pods.Informer().AddEventHandler(podHandler(ctx, p.workers, p.static, arrived, status.Writer.Forget)); err != nil {
		return nil, err
	}
	return p, nil
}

// strictGroupsSupported asks the runtime whether it applies
// supplementalGroupsPolicy Strict. Admission asks only for pods that set
// it, so the answer is not cached: it follows a runtime upgrade.
func strictGroupsSupported(ctx context.Context, rt *cri.Client) func() bool {
	return func() bool {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		resp, err := rt.Runtime.Status(cctx, false)
		if err != nil {
			klog.FromContext(ctx).Error(err, "Asking the runtime for its features")
			return false
		}
		return resp.GetFeatures().GetSupplementalGroupsPolicy()
	}
}

func podHandler(ctx context.Context, workers *podworkers.Workers, static *staticPods, arrived *arrivals, forget func(types.UID)) cache.ResourceEventHandler {
	update := func(obj any) {
		pod, ok := obj.(*v1.Pod)
		if !ok {
			return
		}
		if _, mirror := staticpods.IsMirror(pod); mirror {
			static.mirrorChanged(ctx, pod)
			return
		}
		arrived.see(pod.UID)
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
				// The status writer's copy is under the mirror's UID.
				forget(pod.UID)
				static.poke() // create it again
				return
			}
			arrived.forget(pod.UID)
			workers.Remove(pod.UID)
		},
	}
}

// arrivals numbers the pods in the order they reach the agent. Admission
// (podsync) takes pods in creation order, and pods created in the same
// second in this order, as the kubelet admits each watch event in turn.
type arrivals struct {
	mu   sync.Mutex
	next uint64
	seq  map[types.UID]uint64
}

func (a *arrivals) see(uid types.UID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.seq[uid]; !ok {
		a.next++
		a.seq[uid] = a.next
	}
}

func (a *arrivals) forget(uid types.UID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.seq, uid)
}

// order sorts pods by arrival; pods that did not come through the informer
// (static pods) come first.
func (a *arrivals) order(pods []*v1.Pod) []*v1.Pod {
	a.mu.Lock()
	defer a.mu.Unlock()
	sort.SliceStable(pods, func(i, j int) bool { return a.seq[pods[i].UID] < a.seq[pods[j].UID] })
	return pods
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
