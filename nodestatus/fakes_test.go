package nodestatus

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/nodeagent/nodeagent/configs"
	"github.com/nodeagent/nodeagent/hugepages"
)

const (
	gi = 1024 * 1024 * 1024
	mi = 1024 * 1024
)

// rootDir is the harness's RootDir.
const rootDir = "/var/lib/nodeagent"

// defaultEvictionHard are the kubelet's default hard eviction thresholds
// on Linux.
func defaultEvictionHard() map[string]configs.Threshold {
	return map[string]configs.Threshold{
		signalMemoryAvailable: {Quantity: ptr.To(resource.MustParse("100Mi"))},
		signalNodeFsAvailable: {Percentage: 0.10},
		"nodefs.inodesFree":   {Percentage: 0.05},
		"imagefs.available":   {Percentage: 0.15},
		"imagefs.inodesFree":  {Percentage: 0.05},
	}
}

// hardThresholds are m as the hard thresholds configs.EvictionThresholds
// returns.
func hardThresholds(m map[string]configs.Threshold) []configs.EvictionThreshold {
	out := []configs.EvictionThreshold{}
	for _, sig := range slices.Sorted(maps.Keys(m)) {
		out = append(out, configs.EvictionThreshold{Signal: sig, Threshold: m[sig]})
	}
	return out
}

// setThresholds makes the controller hold ts back from allocatable.
func (c *Controller) setThresholds(ts []configs.EvictionThreshold) {
	c.cfg.EvictionThresholds = ts
}

// fakePressure is the eviction manager's say on the pressure conditions.
type fakePressure struct {
	mu    sync.Mutex
	under map[v1.NodeConditionType]bool
}

func (p *fakePressure) set(c v1.NodeConditionType, under bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.under[c] = under
}

func (p *fakePressure) UnderPressure(c v1.NodeConditionType) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.under[c]
}

type fakeHost struct {
	mu                 sync.Mutex
	memTotal, memAvail uint64
	fs                 map[string]FsStats // by path; other paths fail
	memErr, fsErr      error
}

var _ Host = (*fakeHost)(nil)

func newFakeHost() *fakeHost {
	return &fakeHost{memTotal: 8 * gi, memAvail: 4 * gi, fs: map[string]FsStats{
		rootDir: {Capacity: 100 * gi, Available: 50 * gi, Inodes: 1000000, InodesFree: 500000},
	}}
}

func (h *fakeHost) Memory() (uint64, uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.memTotal, h.memAvail, h.memErr
}

func (h *fakeHost) Filesystem(path string) (FsStats, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fsErr != nil {
		return FsStats{}, h.fsErr
	}
	st, ok := h.fs[path]
	if !ok {
		return FsStats{}, fmt.Errorf("statfs %s: no such file or directory", path)
	}
	return st, nil
}

func (h *fakeHost) SystemInfo() SystemInfo {
	return SystemInfo{MachineID: "machine", SystemUUID: "uuid", BootID: "boot", KernelVersion: "6.1.0", OSImage: "Debian GNU/Linux 12 (bookworm)"}
}

type fakeRuntime struct {
	mu           sync.Mutex
	err          error
	networkReady bool
	images       []*runtimeapi.Image
}

var _ RuntimeInfo = (*fakeRuntime)(nil)

func (r *fakeRuntime) set(err error, networkReady bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err, r.networkReady = err, networkReady
}

func (r *fakeRuntime) Status(context.Context) (*runtimeapi.StatusResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return nil, r.err
	}
	net := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: true}
	if !r.networkReady {
		net = &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Reason: "NetworkPluginNotReady", Message: "cni plugin not initialized"}
	}
	return &runtimeapi.StatusResponse{
		Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
			{Type: runtimeapi.RuntimeReady, Status: true}, net,
		}},
		RuntimeHandlers: []*runtimeapi.RuntimeHandler{
			{Name: "", Features: &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: true, UserNamespaces: true}},
			{Name: "test-handler", Features: &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: true}},
		},
	}, nil
}

func (r *fakeRuntime) Version(context.Context) (*runtimeapi.VersionResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return nil, r.err
	}
	return &runtimeapi.VersionResponse{RuntimeName: "containerd", RuntimeVersion: "v2.2.1"}, nil
}

func (r *fakeRuntime) ListImages(context.Context) ([]*runtimeapi.Image, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return nil, r.err
	}
	return r.images, nil
}

var errRuntimeDown = errors.New("connection refused")

type harness struct {
	client   *fake.Clientset
	clock    *clocktesting.FakeClock
	host     *fakeHost
	rt       *fakeRuntime
	pressure *fakePressure
	c        *Controller
}

func newHarness(t *testing.T, objs ...runtime.Object) *harness {
	t.Helper()
	h := &harness{
		client:   fake.NewClientset(objs...),
		clock:    clocktesting.NewFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)),
		host:     newFakeHost(),
		rt:       &fakeRuntime{networkReady: true},
		pressure: &fakePressure{under: map[v1.NodeConditionType]bool{}},
	}
	// The fake tracker does not assign UIDs; the API server does.
	var n atomic.Int32
	h.client.PrependReactor("create", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if obj, ok := a.(k8stesting.CreateAction).GetObject().(interface{ SetUID(types.UID) }); ok {
			obj.SetUID(types.UID(fmt.Sprintf("uid-%d", n.Add(1))))
		}
		return false, nil, nil
	})
	cfg := Config{
		NodeName:     "node1",
		NodeIPs:      []net.IP{net.ParseIP("10.0.0.5"), net.ParseIP("fd00::5")},
		Hostname:     "node1-host",
		Labels:       map[string]string{"example.com/pool": "a"},
		Taints:       []v1.Taint{{Key: "example.com/new", Effect: v1.TaintEffectNoSchedule}},
		ProviderID:   "nodeagent://node1",
		MaxPods:      110,
		Port:         10250,
		RegisterNode: true,
		RootDir:      rootDir,
		// As agent's: the kubelet's default thresholds, no soft ones.
		EvictionThresholds: hardThresholds(defaultEvictionHard()),
		AgentVersion:       "v1.36.3+nodeagent",
		// As this machine's: 2 MiB pages only, none reserved.
		HugePages:     []hugepages.Pool{{PageSize: 2 << 20}},
		Host:          h.host,
		UnderPressure: h.pressure.UnderPressure,
	}
	h.c = New(h.client, cfg, h.rt, h.clock)
	return h
}

func condition(n *v1.Node, typ v1.NodeConditionType) *v1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == typ {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// eventually polls cond for a few seconds of real time.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
