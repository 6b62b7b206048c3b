package podsync

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nodeagent/nodeagent/staticpods"
)

func requesting(rs ...string) *v1.Pod {
	req := v1.ResourceList{}
	for i := 0; i+1 < len(rs); i += 2 {
		req[v1.ResourceName(rs[i])] = resource.MustParse(rs[i+1])
	}
	return &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c", Resources: v1.ResourceRequirements{Requests: req}}}}}
}

func withPort(ip string, proto v1.Protocol, port int32) *v1.Pod {
	return &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c", Ports: []v1.ContainerPort{{HostIP: ip, Protocol: proto, HostPort: port, ContainerPort: 80}}}}}}
}

func testNode() *v1.Node {
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node1", Labels: map[string]string{"disk": "ssd", "zone": "a"}},
		Spec:       v1.NodeSpec{Taints: []v1.Taint{{Key: "dedicated", Value: "db", Effect: v1.TaintEffectNoExecute}}},
		Status: v1.NodeStatus{Allocatable: v1.ResourceList{
			v1.ResourceCPU:              resource.MustParse("2"),
			v1.ResourceMemory:           resource.MustParse("1Gi"),
			v1.ResourceEphemeralStorage: resource.MustParse("10Gi"),
			v1.ResourcePods:             resource.MustParse("110"),
			"example.com/gpu":           resource.MustParse("2"),
			"hugepages-2Mi":             resource.MustParse("0"),
		}},
	}
}

func TestGeneralFilter(t *testing.T) {
	tolerating := func(p *v1.Pod) *v1.Pod {
		p.Spec.Tolerations = []v1.Toleration{{Key: "dedicated", Operator: v1.TolerationOpEqual, Value: "db", Effect: v1.TaintEffectNoExecute}}
		return p
	}
	mutate := func(p *v1.Pod, f func(*v1.Pod)) *v1.Pod { f(p); return p }
	always := v1.ContainerRestartPolicyAlways
	initWith := func(sidecar bool, q string) func(*v1.Pod) {
		return func(p *v1.Pod) {
			c := v1.Container{Name: "init", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceMemory: resource.MustParse(q)}}}
			if sidecar {
				c.RestartPolicy = &always
			}
			p.Spec.InitContainers = []v1.Container{c}
		}
	}
	affinity := func(op v1.NodeSelectorOperator, values ...string) func(*v1.Pod) {
		return func(p *v1.Pod) {
			p.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{
				NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{{Key: "zone", Operator: op, Values: values}}}}}}}
		}
	}
	cases := []struct {
		name    string
		pod     *v1.Pod
		others  []*v1.Pod
		maxPods int
		want    string
		wantMsg string
	}{
		{name: "empty node", pod: tolerating(requesting("memory", "100Mi")), want: ""},
		{name: "too many pods", pod: tolerating(requesting()), others: []*v1.Pod{requesting(), requesting()}, maxPods: 2, want: "OutOfpods"},
		{name: "memory fits exactly", pod: tolerating(requesting("memory", "512Mi")), others: []*v1.Pod{requesting("memory", "512Mi")}, want: ""},
		{name: "out of memory", pod: tolerating(requesting("memory", "600Mi")), others: []*v1.Pod{requesting("memory", "512Mi")}, want: "OutOfmemory",
			wantMsg: "Node didn't have enough resource: memory, requested: 629145600, used: 536870912, capacity: 1073741824"},
		{name: "out of cpu", pod: tolerating(requesting("cpu", "1500m")), others: []*v1.Pod{requesting("cpu", "1")}, want: "OutOfcpu",
			wantMsg: "Node didn't have enough resource: cpu, requested: 1500, used: 1000, capacity: 2000"},
		{name: "no requests always fit", pod: tolerating(requesting()), others: []*v1.Pod{requesting("memory", "1Gi")}, want: ""},
		{name: "ephemeral-storage over allocatable", pod: tolerating(requesting("ephemeral-storage", "11Gi")), want: "OutOfephemeral-storage"},
		{name: "ephemeral-storage fits", pod: tolerating(requesting("ephemeral-storage", "5Gi")), others: []*v1.Pod{requesting("ephemeral-storage", "5Gi")}, want: ""},
		{name: "extended resource over capacity", pod: tolerating(requesting("example.com/gpu", "2")), others: []*v1.Pod{requesting("example.com/gpu", "1")}, want: "OutOfexample.com/gpu",
			wantMsg: "Node didn't have enough resource: example.com/gpu, requested: 2, used: 1, capacity: 2"},
		{name: "extended resource within capacity", pod: tolerating(requesting("example.com/gpu", "1")), others: []*v1.Pod{requesting("example.com/gpu", "1")}, want: ""},
		{name: "extended resource the node lacks is not checked", pod: tolerating(requesting("example.com/fpga", "1")), want: ""},
		{name: "hugepages the node has none of", pod: tolerating(requesting("hugepages-2Mi", "2Mi")), want: "OutOfhugepages-2Mi"},
		{name: "sidecar counted with the app containers", pod: tolerating(mutate(requesting("memory", "600Mi"), initWith(true, "600Mi"))), want: "OutOfmemory"},
		{name: "init container counted alone", pod: tolerating(mutate(requesting("memory", "600Mi"), initWith(false, "600Mi"))), want: ""},
		{name: "overhead counted", pod: tolerating(mutate(requesting("memory", "1000Mi"), func(p *v1.Pod) {
			p.Spec.Overhead = v1.ResourceList{v1.ResourceMemory: resource.MustParse("100Mi")}
		})), want: "OutOfmemory"},
		{name: "host port taken", pod: tolerating(withPort("", "", 8080)), others: []*v1.Pod{withPort("", v1.ProtocolTCP, 8080)}, want: "NodePorts",
			wantMsg: "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"},
		{name: "host port of another protocol", pod: tolerating(withPort("", v1.ProtocolUDP, 8080)), others: []*v1.Pod{withPort("", v1.ProtocolTCP, 8080)}, want: ""},
		{name: "host port on other addresses", pod: tolerating(withPort("10.0.0.1", v1.ProtocolTCP, 8080)), others: []*v1.Pod{withPort("10.0.0.2", v1.ProtocolTCP, 8080)}, want: ""},
		{name: "host port on all addresses against one", pod: tolerating(withPort("0.0.0.0", v1.ProtocolTCP, 8080)), others: []*v1.Pod{withPort("10.0.0.2", v1.ProtocolTCP, 8080)}, want: "NodePorts"},
		{name: "another host port", pod: tolerating(withPort("", v1.ProtocolTCP, 8081)), others: []*v1.Pod{withPort("", v1.ProtocolTCP, 8080)}, want: ""},
		{name: "nodeSelector matches", pod: tolerating(mutate(requesting(), func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} })), want: ""},
		{name: "nodeSelector mismatch", pod: tolerating(mutate(requesting(), func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "hdd"} })), want: "NodeAffinity",
			wantMsg: "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector"},
		{name: "required node affinity matches", pod: tolerating(mutate(requesting(), affinity(v1.NodeSelectorOpIn, "a", "b"))), want: ""},
		{name: "required node affinity mismatch", pod: tolerating(mutate(requesting(), affinity(v1.NodeSelectorOpNotIn, "a"))), want: "NodeAffinity"},
		{name: "another node's name", pod: tolerating(mutate(requesting(), func(p *v1.Pod) { p.Spec.NodeName = "node2" })), want: "NodeName"},
		{name: "NoExecute taint not tolerated", pod: requesting(), want: "TaintToleration",
			wantMsg: "Predicate TaintToleration failed: node(s) had taints that the pod didn't tolerate"},
		{name: "NoExecute taint tolerated by Exists", pod: mutate(requesting(), func(p *v1.Pod) {
			p.Spec.Tolerations = []v1.Toleration{{Operator: v1.TolerationOpExists}}
		}), want: ""},
		{name: "static pods ignore taints", pod: mutate(requesting(), func(p *v1.Pod) {
			p.Annotations = map[string]string{staticpods.ConfigSourceAnnotation: staticpods.FileSource}
		}), want: ""},
		{name: "resources reported before affinity", pod: tolerating(mutate(requesting("memory", "2Gi"), func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "hdd"} })), want: "OutOfmemory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			node := testNode()
			if tc.maxPods > 0 {
				node.Status.Allocatable[v1.ResourcePods] = *resource.NewQuantity(int64(tc.maxPods), resource.DecimalSI)
			}
			got, msg := generalFilter(tc.pod, tc.others, node, node.Status.Allocatable, 110)
			if got != tc.want || (tc.wantMsg != "" && msg != tc.wantMsg) {
				t.Errorf("generalFilter = %q (%s), want %q (%s)", got, msg, tc.want, tc.wantMsg)
			}
		})
	}
}

// NoExecute taints only: a NoSchedule taint is the scheduler's business.
func TestGeneralFilterNoScheduleTaint(t *testing.T) {
	node := testNode()
	node.Spec.Taints = []v1.Taint{{Key: "k", Effect: v1.TaintEffectNoSchedule}}
	if got, msg := generalFilter(requesting(), nil, node, node.Status.Allocatable, 110); got != "" {
		t.Errorf("refused for a NoSchedule taint: %s: %s", got, msg)
	}
}

func TestGeneralFilterWithoutNode(t *testing.T) {
	pod := requesting("memory", "2Gi")
	pod.Spec.NodeSelector = map[string]string{"disk": "hdd"}
	if got, _ := generalFilter(pod, nil, nil, nil, 110); got != "" {
		t.Errorf("no node, no allocatable: %q, want admitted", got)
	}
	alloc := v1.ResourceList{v1.ResourceMemory: resource.MustParse("1Gi")}
	if got, _ := generalFilter(pod, nil, nil, alloc, 110); got != "OutOfmemory" {
		t.Errorf("no node, allocatable known: %q, want OutOfmemory", got)
	}
}

// admissionSyncer is a Syncer that only admits, on testNode, with the
// pods of *active as the workers' pods.
func admissionSyncer(active *[]*v1.Pod) *Syncer {
	return &Syncer{cfg: Config{MaxPods: 110, ActivePods: func() []*v1.Pod { return *active }, Node: testNode}}
}

func pendingPod(uid string, created time.Time, memory string) *v1.Pod {
	p := requesting("memory", memory)
	p.UID = types.UID(uid)
	p.Name = uid
	p.CreationTimestamp = metav1.NewTime(created)
	p.Spec.Tolerations = []v1.Toleration{{Operator: v1.TolerationOpExists}}
	return p
}

func TestAdmitInCreationOrder(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t.Run("the newer pod's worker asks first", func(t *testing.T) {
		older, newer := pendingPod("older", t0, "600Mi"), pendingPod("newer", t0.Add(time.Second), "600Mi")
		active := []*v1.Pod{newer, older}
		s := admissionSyncer(&active)
		if reason, msg := s.admit(context.Background(), newer); reason != "OutOfmemory" {
			t.Errorf("newer: %q %s, want OutOfmemory", reason, msg)
		}
		if reason, msg := s.admit(context.Background(), older); reason != "" {
			t.Errorf("older: refused %q: %s", reason, msg)
		}
		// The verdict holds when the worker asks again (a retried write).
		if reason, _ := s.admit(context.Background(), newer); reason != "OutOfmemory" {
			t.Errorf("newer again: %q, want OutOfmemory", reason)
		}
	})
	t.Run("the older pod's worker asks first", func(t *testing.T) {
		older, newer := pendingPod("older", t0, "600Mi"), pendingPod("newer", t0.Add(time.Second), "600Mi")
		active := []*v1.Pod{older, newer}
		s := admissionSyncer(&active)
		if reason, _ := s.admit(context.Background(), older); reason != "" {
			t.Errorf("older: refused %q", reason)
		}
		if reason, _ := s.admit(context.Background(), newer); reason != "OutOfmemory" {
			t.Errorf("newer: %q, want OutOfmemory", reason)
		}
	})
	t.Run("same second: the first to arrive", func(t *testing.T) {
		first, second := pendingPod("b-first", t0, "600Mi"), pendingPod("a-second", t0, "600Mi")
		active := []*v1.Pod{first, second}
		s := admissionSyncer(&active)
		if reason, _ := s.admit(context.Background(), second); reason != "OutOfmemory" {
			t.Errorf("second: %q, want OutOfmemory", reason)
		}
		if reason, _ := s.admit(context.Background(), first); reason != "" {
			t.Errorf("first: refused %q", reason)
		}
	})
	t.Run("a refused pod counts for nothing", func(t *testing.T) {
		big := pendingPod("big", t0, "2Gi")
		small := pendingPod("small", t0.Add(time.Second), "600Mi")
		active := []*v1.Pod{big, small}
		s := admissionSyncer(&active)
		if reason, _ := s.admit(context.Background(), small); reason != "" {
			t.Errorf("small: refused %q", reason)
		}
		if reason, _ := s.admit(context.Background(), big); reason != "OutOfmemory" {
			t.Errorf("big: %q, want OutOfmemory", reason)
		}
	})
	t.Run("a running pod counts whatever its age", func(t *testing.T) {
		running := pendingPod("running", t0.Add(time.Hour), "600Mi")
		running.Status.StartTime = &metav1.Time{Time: t0.Add(time.Hour)}
		running.Status.Phase = v1.PodRunning
		fresh := pendingPod("fresh", t0, "600Mi")
		active := []*v1.Pod{running, fresh}
		s := admissionSyncer(&active)
		if reason, _ := s.admit(context.Background(), fresh); reason != "OutOfmemory" {
			t.Errorf("fresh: %q, want OutOfmemory", reason)
		}
	})
	t.Run("finished pods and ended workers free their share", func(t *testing.T) {
		done := pendingPod("done", t0, "600Mi")
		gone := pendingPod("gone", t0, "600Mi")
		active := []*v1.Pod{done, gone}
		s := admissionSyncer(&active)
		if reason, _ := s.admit(context.Background(), done); reason != "" {
			t.Fatalf("done: refused %q", reason)
		}
		if reason, _ := s.admit(context.Background(), gone); reason != "OutOfmemory" {
			t.Fatalf("gone: %q, want OutOfmemory", reason)
		}
		finished := done.DeepCopy()
		finished.Status.Phase = v1.PodSucceeded
		next := pendingPod("next", t0.Add(time.Minute), "600Mi")
		active = []*v1.Pod{finished, next}
		if reason, msg := s.admit(context.Background(), next); reason != "" {
			t.Errorf("next: refused %q: %s", reason, msg)
		}
	})
}

func TestRejectedStatus(t *testing.T) {
	pod := pendingPod("p", time.Now(), "1Mi")
	st := rejectedStatus(pod, "NodePorts", "Predicate NodePorts failed: x", time.Now())
	if st.Phase != v1.PodFailed || st.Reason != "NodePorts" || !strings.HasPrefix(st.Message, "Pod was rejected: Predicate NodePorts failed") || st.StartTime == nil {
		t.Errorf("status = %+v, want the kubelet's rejectPod status", st)
	}
}

// Pod-level limits need the pod's cgroup: admitted when the agent writes
// pod cgroups, refused when it does not; pod-level requests alone need no
// cgroup limit and are admitted either way. A static pod's pod-level
// resources are validated as the apiserver would.
func TestAdmitPodResources(t *testing.T) {
	limits := func(p *v1.Pod) *v1.Pod {
		p.Spec.Resources = &v1.ResourceRequirements{Limits: v1.ResourceList{v1.ResourceMemory: resource.MustParse("128Mi")}}
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "d"}, v1.Container{Name: "e"})
		return p
	}
	requestsOnly := func(p *v1.Pod) *v1.Pod {
		p.Spec.Resources = &v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("1")}}
		return p
	}
	static := func(p *v1.Pod) *v1.Pod {
		p.Annotations = map[string]string{staticpods.ConfigSourceAnnotation: staticpods.FileSource}
		return p
	}
	for _, tc := range []struct {
		name       string
		pod        *v1.Pod
		podCgroups bool
		want       string // in the message; "" admitted
	}{
		{"limits, pod cgroups", limits(requesting()), true, ""},
		{"limits, no pod cgroups", limits(requesting()), false, "spec.resources.limits"},
		{"requests only, no pod cgroups", requestsOnly(requesting()), false, ""},
		{"no pod-level resources, no pod cgroups", requesting("memory", "1Gi"), false, ""},
		{"static pod, consistent", static(requestsOnly(requesting("cpu", "500m"))), true, ""},
		{"static pod, a request above its limit", static(func(p *v1.Pod) *v1.Pod {
			p.Spec.Resources = &v1.ResourceRequirements{
				Requests: v1.ResourceList{v1.ResourceMemory: resource.MustParse("256Mi")},
				Limits:   v1.ResourceList{v1.ResourceMemory: resource.MustParse("128Mi")},
			}
			return p
		}(requesting())), true, "spec.resources.requests[memory] 256Mi must be less than or equal to the memory limit of 128Mi"},
		{"API pod, not validated again", requestsOnly(requesting("cpu", "2")), true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Syncer{}
			if tc.podCgroups {
				s.cfg.PodCgroups = &fakeCgroups{}
			}
			reason, msg := s.admitPodResources(tc.pod)
			if tc.want == "" {
				if reason != "" {
					t.Errorf("refused: %s: %s", reason, msg)
				}
				return
			}
			if reason != "UnsupportedPodSpec" || !strings.Contains(msg, tc.want) {
				t.Errorf("admitPodResources = %s: %s; want UnsupportedPodSpec naming %q", reason, msg, tc.want)
			}
		})
	}
}
