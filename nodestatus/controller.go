package nodestatus

import (
	"context"
	"net"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/nodeagent/nodeagent/configs"
	"github.com/nodeagent/nodeagent/hugepages"
)

// RuntimeInfo is what nodestatus needs from the container runtime.
type RuntimeInfo interface {
	// Status returns the CRI runtime status: its conditions
	// (RuntimeReady, NetworkReady) and its runtime handlers; an error
	// means the runtime is unreachable.
	Status(ctx context.Context) (*runtimeapi.StatusResponse, error)
	// Version returns e.g. RuntimeName "containerd", RuntimeVersion "v2.2.1".
	Version(ctx context.Context) (*runtimeapi.VersionResponse, error)
	// ListImages returns the images the runtime holds (status.images).
	ListImages(ctx context.Context) ([]*runtimeapi.Image, error)
}

// Config describes the Node this agent registers and how often it reports.
type Config struct {
	NodeName   string
	NodeIPs    []net.IP
	Hostname   string
	Labels     map[string]string // extra labels (--node-labels)
	Taints     []v1.Taint        // taints to register with
	ProviderID string
	MaxPods    int32
	// PodsPerCore (podsPerCore), when above 0, caps the pods capacity at
	// that many per CPU; see PodCapacity.
	PodsPerCore int32
	Port        int32 // daemonEndpoints.kubeletEndpoint.Port

	// RegisterNode creates the Node; when false the Node must already
	// exist and Run waits for it.
	RegisterNode bool
	// StatusUpdateFrequency is how often status is computed (10s).
	StatusUpdateFrequency time.Duration
	// StatusReportFrequency is how often unchanged status is posted (5m).
	StatusReportFrequency time.Duration
	// LeaseDuration is the node Lease duration (40s); it is renewed every
	// quarter of it.
	LeaseDuration time.Duration
	// RootDir is the filesystem reported as ephemeral-storage.
	RootDir string
	// HugePages are the machine's huge page pools (hugepages.Read), read
	// once at start as the kubelet's cached machine info: each is the
	// capacity and allocatable of its hugepages-<size>, and is not
	// allocatable memory.
	HugePages []hugepages.Pool
	// KubeReserved and SystemReserved (kubeReserved, systemReserved) are
	// held back from allocatable. Their pid is not: the node's capacity
	// has none.
	KubeReserved, SystemReserved v1.ResourceList
	// EvictionThresholds are the hard and soft eviction thresholds
	// (configs.EvictionThresholds): their evictionHard thresholds of
	// memory.available and nodefs.available are held back from
	// allocatable.
	EvictionThresholds []configs.EvictionThreshold
	// UnderPressure tells whether MemoryPressure, DiskPressure or
	// PIDPressure is on: the eviction manager's say
	// (eviction.Manager.UnderPressure), which it keeps by its thresholds.
	// It is called from the status loop. Nil: never.
	UnderPressure func(v1.NodeConditionType) bool
	// AgentVersion is reported as nodeInfo.kubeletVersion.
	AgentVersion     string
	DeclaredFeatures []string
	// MaxImages is nodeStatusMaxImages: how many images status.images
	// lists, the biggest first; nil: 50, -1: all.
	MaxImages *int32

	// Host reads the machine; nil means the real /proc, /sys and /etc.
	Host Host
	// HeartbeatClient renews the Lease and posts the status (and reads the
	// Node for it), as the kubelet's heartbeat client: its own client with
	// no client-side rate limit and a short timeout, so that nothing else
	// the agent sends can delay a heartbeat. Nil means the main client.
	HeartbeatClient kubernetes.Interface
}

// Defaults of the kubelet.
const (
	defaultStatusUpdateFrequency = 10 * time.Second
	defaultStatusReportFrequency = 5 * time.Minute
	defaultLeaseDuration         = 40 * time.Second
	defaultMaxPods               = 110
)

// Controller registers the Node, keeps its status, renews its Lease and
// watches it. Create it with New and start it with Run.
type Controller struct {
	client    kubernetes.Interface // registration and the watch
	heartbeat kubernetes.Interface // lease and status
	cfg       Config
	rt        RuntimeInfo
	host      Host
	clock     clock.WithTicker

	registered     chan struct{}
	registeredOnce sync.Once
	poke           chan struct{} // ask the status loop for a check now
	nodeGone       chan struct{} // the watch saw our Node deleted
	leasePoke      chan struct{} // ask the lease loop to renew now

	// syncMu serializes status syncs: the loop's and SyncStatus.
	syncMu sync.Mutex

	mu           sync.Mutex
	node         *v1.Node
	notReady     map[string]string
	shuttingDown bool
	lastReport   time.Time

	lease *leaseState // owned by the lease loop
}

// New returns a Controller; nothing happens until Run.
func New(client kubernetes.Interface, cfg Config, rt RuntimeInfo, clk clock.WithTicker) *Controller {
	if cfg.StatusUpdateFrequency <= 0 {
		cfg.StatusUpdateFrequency = defaultStatusUpdateFrequency
	}
	if cfg.StatusReportFrequency <= 0 {
		cfg.StatusReportFrequency = defaultStatusReportFrequency
	}
	if cfg.LeaseDuration <= 0 {
		cfg.LeaseDuration = defaultLeaseDuration
	}
	if cfg.MaxPods <= 0 {
		cfg.MaxPods = defaultMaxPods
	}
	if cfg.RootDir == "" {
		cfg.RootDir = "/"
	}
	if cfg.Hostname == "" {
		cfg.Hostname = cfg.NodeName
	}
	host := cfg.Host
	if host == nil {
		host = procHost{}
	}
	heartbeat := cfg.HeartbeatClient
	if heartbeat == nil {
		heartbeat = client
	}
	return &Controller{
		client:     client,
		heartbeat:  heartbeat,
		cfg:        cfg,
		rt:         rt,
		host:       host,
		clock:      clk,
		registered: make(chan struct{}),
		poke:       make(chan struct{}, 1),
		nodeGone:   make(chan struct{}, 1),
		leasePoke:  make(chan struct{}, 1),
		notReady:   map[string]string{},
		lease:      &leaseState{},
	}
}

// Run registers the node (retrying with backoff), then keeps status, lease
// and a watch of the Node until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	logger := klog.FromContext(ctx).WithValues("node", c.cfg.NodeName)
	ctx = klog.NewContext(ctx, logger)

	if err := c.register(ctx); err != nil {
		return // only when ctx ended
	}
	c.registeredOnce.Do(func() { close(c.registered) })

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.runWatch(ctx) }()
	go func() { defer wg.Done(); c.runLease(ctx) }()
	c.runStatus(ctx)
	wg.Wait()
}

// Registered is closed once the Node exists.
func (c *Controller) Registered() <-chan struct{} { return c.registered }

// Node returns the last seen Node object (may be nil). Do not modify it.
func (c *Controller) Node() *v1.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.node
}

func (c *Controller) setNode(n *v1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.node = n
}

// Poke asks for an immediate status check (e.g. after runtime readiness or
// the pod count changed). It never blocks.
func (c *Controller) Poke() { signal(c.poke) }

// SetNotReadyReason lets another component (e.g. the CNI manager) hold the
// node NotReady: while source has a non-empty message, Ready is False and
// the message is part of the condition. An empty message clears it.
func (c *Controller) SetNotReadyReason(source, message string) {
	c.mu.Lock()
	old := c.notReady[source]
	if message == "" {
		delete(c.notReady, source)
	} else {
		c.notReady[source] = message
	}
	c.mu.Unlock()
	if old != message {
		c.Poke()
	}
}

// ShuttingDown holds the node NotReady for good with the kubelet's
// message, "node is shutting down": graceful node shutdown (package
// nodeshutdown) has begun, and the agent exits once it is done. The
// status is posted at once.
func (c *Controller) ShuttingDown() {
	c.mu.Lock()
	c.shuttingDown = true
	c.mu.Unlock()
	c.Poke()
}

// SyncStatus computes the status and posts it if it changed, now: the
// kubelet's syncNodeStatus, for a caller that must know the status is
// posted (the last one before the agent exits).
func (c *Controller) SyncStatus(ctx context.Context) error {
	return c.syncStatus(ctx)
}

// runStatus computes the status every StatusUpdateFrequency or on Poke and
// posts it when it changed or StatusReportFrequency has passed. It also
// re-registers the Node when the watch saw it deleted.
func (c *Controller) runStatus(ctx context.Context) {
	logger := klog.FromContext(ctx)
	ticker := c.clock.NewTicker(c.cfg.StatusUpdateFrequency)
	defer ticker.Stop()
	for {
		if err := c.syncStatus(ctx); err != nil {
			logger.Error(err, "Unable to update node status")
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
		case <-c.poke:
		case <-c.nodeGone:
			if !c.cfg.RegisterNode {
				logger.Info("Node was deleted and registration is disabled; waiting for it to come back")
				continue
			}
			logger.Info("Node was deleted; registering it again")
			if err := c.register(ctx); err != nil {
				return
			}
			signal(c.leasePoke) // point the lease at the new UID
		}
	}
}

// signal does a non-blocking send on a 1-buffered channel.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// sleep waits d on the injected clock; false means ctx ended.
func sleep(ctx context.Context, clk clock.Clock, d time.Duration) bool {
	t := clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}
