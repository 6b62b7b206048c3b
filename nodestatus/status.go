package nodestatus

import (
	"context"
	"fmt"
	"net"
	goruntime "runtime"
	"sort"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/hugepages"
)

// runtimeTimeout bounds each call to the runtime so a hung runtime turns
// the node NotReady instead of stalling the loop.
const runtimeTimeout = 5 * time.Second

// setStatus fills the parts of node.Status this agent owns, keeping any
// other field (volumes, conditions of other types, extended resources) as
// found.
func (c *Controller) setStatus(ctx context.Context, node *v1.Node, now time.Time) {
	st := &node.Status

	if st.Capacity == nil {
		st.Capacity = v1.ResourceList{}
	}
	if st.Allocatable == nil {
		st.Allocatable = v1.ResourceList{}
	}
	// A resource that cannot be read keeps its last capacity and
	// allocatable.
	host := c.readHost(ctx)
	capacity := c.capacity(host)
	for name, q := range capacity {
		st.Capacity[name] = q
	}
	// The huge page resources are the agent's alone: one of a page size
	// the machine does not have (the zero hugepages-1Gi earlier versions
	// reported) goes.
	for _, rl := range []v1.ResourceList{st.Capacity, st.Allocatable} {
		for name := range rl {
			if _, ok := capacity[name]; !ok && hugepages.IsResourceName(name) {
				delete(rl, name)
			}
		}
	}
	for name, q := range allocatableOf(capacity, c.reservation(capacity)) {
		st.Allocatable[name] = q
	}

	st.Addresses = append(st.Addresses[:0:0], Addresses(c.cfg.NodeIPs, c.cfg.Hostname)...)
	st.DaemonEndpoints.KubeletEndpoint.Port = c.cfg.Port
	st.DeclaredFeatures = append([]string(nil), c.cfg.DeclaredFeatures...)
	c.setNodeInfo(ctx, &st.NodeInfo)
	c.setImages(ctx, st)
	sctx, cancel := context.WithTimeout(ctx, runtimeTimeout)
	defer cancel()
	runtimeStatus, runtimeErr := c.rt.Status(sctx)
	if runtimeErr == nil && runtimeStatus != nil {
		// Kept as last known while the runtime is unreachable.
		st.RuntimeHandlers = runtimeHandlers(runtimeStatus.GetRuntimeHandlers())
	}

	conds := append(c.pressureConditions(), c.readyCondition(runtimeStatus, runtimeErr))
	for _, cond := range conds {
		mergeCondition(st, cond, now)
	}
}

func (c *Controller) setNodeInfo(ctx context.Context, info *v1.NodeSystemInfo) {
	si := c.host.SystemInfo()
	info.MachineID = si.MachineID
	info.SystemUUID = si.SystemUUID
	info.BootID = si.BootID
	info.KernelVersion = si.KernelVersion
	info.OSImage = si.OSImage
	info.OperatingSystem = goruntime.GOOS
	info.Architecture = goruntime.GOARCH
	info.KubeletVersion = c.cfg.AgentVersion
	// Cleared, as the kubelet does since the field's deprecation: a value an
	// older agent wrote would otherwise stay.
	info.KubeProxyVersion = "" //nolint:staticcheck // clearing the deprecated field

	vctx, cancel := context.WithTimeout(ctx, runtimeTimeout)
	defer cancel()
	v, err := c.rt.Version(vctx)
	if err != nil {
		// Keep the last known version; Ready tells that the runtime is down.
		klog.FromContext(ctx).V(4).Info("Unable to get runtime version", "err", err)
		return
	}
	info.ContainerRuntimeVersion = fmt.Sprintf("%s://%s", v.RuntimeName, strings.TrimPrefix(v.RuntimeVersion, "v"))
}

// shuttingDownMessage is the Ready message of a node that shuts down, the
// kubelet's (its shutdown manager's ShutdownStatus error).
const shuttingDownMessage = "node is shutting down"

// readyCondition judges the runtime's status (or the error asking for it)
// and adds the not-ready reasons set by other components.
func (c *Controller) readyCondition(resp *runtimeapi.StatusResponse, err error) v1.NodeCondition {
	var problems []string
	switch {
	case err != nil:
		problems = append(problems, fmt.Sprintf("container runtime is down: %v", err))
	case resp.GetStatus() == nil:
		problems = append(problems, "container runtime is down: no status")
	default:
		problems = append(problems, runtimeProblems(resp.GetStatus())...)
	}

	c.mu.Lock()
	if c.shuttingDown {
		problems = append(problems, shuttingDownMessage)
	}
	sources := make([]string, 0, len(c.notReady))
	for s := range c.notReady {
		sources = append(sources, s)
	}
	sort.Strings(sources)
	for _, s := range sources {
		problems = append(problems, fmt.Sprintf("%s: %s", s, c.notReady[s]))
	}
	c.mu.Unlock()

	if len(problems) > 0 {
		return v1.NodeCondition{Type: v1.NodeReady, Status: v1.ConditionFalse,
			Reason: "KubeletNotReady", Message: strings.Join(problems, ", ")}
	}
	return v1.NodeCondition{Type: v1.NodeReady, Status: v1.ConditionTrue,
		Reason: "KubeletReady", Message: "nodeagent is posting ready status"}
}

// runtimeHandlers is the node's status.runtimeHandlers as the kubelet's
// RuntimeHandlers setter makes it from CRI Status: every handler the
// runtime reports ("" its default), with its features.
func runtimeHandlers(handlers []*runtimeapi.RuntimeHandler) []v1.NodeRuntimeHandler {
	out := make([]v1.NodeRuntimeHandler, len(handlers))
	for i, h := range handlers {
		rro, userns := h.GetFeatures().GetRecursiveReadOnlyMounts(), h.GetFeatures().GetUserNamespaces()
		out[i] = v1.NodeRuntimeHandler{
			Name:     h.GetName(),
			Features: &v1.NodeRuntimeHandlerFeatures{RecursiveReadOnlyMounts: &rro, UserNamespaces: &userns},
		}
	}
	return out
}

// runtimeProblems checks the RuntimeReady and NetworkReady conditions.
func runtimeProblems(status *runtimeapi.RuntimeStatus) []string {
	var problems []string
	for _, want := range []struct{ typ, what string }{
		{runtimeapi.RuntimeReady, "container runtime not ready"},
		{runtimeapi.NetworkReady, "container runtime network not ready"},
	} {
		var found *runtimeapi.RuntimeCondition
		for _, cond := range status.GetConditions() {
			if cond.GetType() == want.typ {
				found = cond
				break
			}
		}
		switch {
		case found == nil:
			problems = append(problems, fmt.Sprintf("%s: %s condition missing", want.what, want.typ))
		case !found.GetStatus():
			problems = append(problems, fmt.Sprintf("%s: %s=false reason:%s message:%s",
				want.what, want.typ, found.GetReason(), found.GetMessage()))
		}
	}
	return problems
}

// mergeCondition replaces the condition of cond.Type, keeping its
// lastTransitionTime unless the status flipped; the heartbeat is now.
func mergeCondition(st *v1.NodeStatus, cond v1.NodeCondition, now time.Time) {
	t := metav1.NewTime(now)
	cond.LastHeartbeatTime = t
	cond.LastTransitionTime = t
	for i := range st.Conditions {
		old := &st.Conditions[i]
		if old.Type != cond.Type {
			continue
		}
		if old.Status == cond.Status && !old.LastTransitionTime.IsZero() {
			cond.LastTransitionTime = old.LastTransitionTime
		}
		*old = cond
		return
	}
	st.Conditions = append(st.Conditions, cond)
}

// Addresses are the node's addresses as its status reports them: each
// node IP as InternalIP, then the host name.
func Addresses(ips []net.IP, hostname string) []v1.NodeAddress {
	var as []v1.NodeAddress
	for _, ip := range ips {
		as = append(as, v1.NodeAddress{Type: v1.NodeInternalIP, Address: ip.String()})
	}
	if hostname != "" {
		as = append(as, v1.NodeAddress{Type: v1.NodeHostName, Address: hostname})
	}
	return as
}
