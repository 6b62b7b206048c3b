//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func randDuration(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rand.Int64N(int64(hi-lo)+1))
}

// pollPod gets the pod until cond holds, stop closes or the timeout passes.
func pollPod(c kubernetes.Interface, ns, name string, timeout time.Duration, stop <-chan struct{}, cond func(*v1.Pod, error) bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		p, err := c.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if cond(p, err) {
			return true
		}
		select {
		case <-stop:
			return false
		case <-time.After(300 * time.Millisecond):
		}
	}
	return false
}

// churn creates and deletes pods in one slot until stop closes, and leaves
// the slot's last pod in place.
func churn(t *testing.T, c kubernetes.Interface, ns string, slot int, hostPort int32, stop <-chan struct{}, created, deleted *atomic.Int64) {
	ctx := context.Background()
	for gen := 0; ; gen++ {
		name := fmt.Sprintf("s%d-%d", slot, gen)
		if _, err := c.CoreV1().Pods(ns).Create(ctx, soakPod(name, hostPort), metav1.CreateOptions{}); err != nil {
			t.Errorf("create %s: %v", name, err)
			return
		}
		created.Add(1)
		// Deleted once running, or before: at a random point of its start.
		pollPod(c, ns, name, randDuration(time.Second, 10*time.Second), stop, func(p *v1.Pod, err error) bool { return err == nil && running(p) })
		select {
		case <-stop:
			return
		case <-time.After(randDuration(0, 2*time.Second)):
		}
		if err := c.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete %s: %v", name, err)
			return
		}
		// The agent may be down: wait for it to come back and finish.
		if !pollPod(c, ns, name, 4*time.Minute, nil, func(_ *v1.Pod, err error) bool { return apierrors.IsNotFound(err) }) {
			t.Errorf("pod %s not gone 4 min after its deletion", name)
			return
		}
		deleted.Add(1)
	}
}

// checkPodsConverge waits for every pod of the namespace to run ready with
// its status's container IDs running in the runtime.
func checkPodsConverge(t *testing.T, c kubernetes.Interface, ns string, timeout time.Duration) []v1.Pod {
	t.Helper()
	rt := criClient(t)
	var pods []v1.Pod
	waitFor(t, timeout, "every pod running and ready as the runtime says", func() (bool, error) {
		list, err := c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		pods = list.Items
		ctrs, err := rt.ListContainers(context.Background(), &runtimeapi.ContainerFilter{State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}})
		if err != nil {
			return false, err
		}
		runningIDs := map[string]bool{}
		for _, ct := range ctrs {
			runningIDs["containerd://"+ct.Id] = true
		}
		for i := range pods {
			p := &pods[i]
			if !running(p) || !podReady(p) {
				return false, fmt.Errorf("%s: %s", p.Name, describe(p))
			}
			for _, cs := range p.Status.ContainerStatuses {
				if !runningIDs[cs.ContainerID] {
					return false, fmt.Errorf("%s: status says %s runs as %s, the runtime does not", p.Name, cs.Name, cs.ContainerID)
				}
			}
		}
		return true, nil
	})
	return pods
}

// deleteAllPods deletes the namespace's pods and waits for them to go.
func deleteAllPods(t *testing.T, c kubernetes.Interface, ns string, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	if err := c.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, timeout, "every pod gone", func() (bool, error) {
		list, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		return len(list.Items) == 0, fmt.Errorf("%d pods left", len(list.Items))
	})
}

// nodeagent SIGKILLed again and again at random points while pods are
// created and deleted: afterwards every status is true, no container was
// restarted, no status went backwards, and nothing is left behind.
func TestSoakAgentKills(t *testing.T) {
	kills, slots := soakN(8, 50), soakN(6, 20)
	r := soakRecord(t, fmt.Sprintf("nodeagent SIGKILLed while %d pods (subPath, tmpfs, host port, probe) are created and deleted", slots),
		"pods converge ready as the runtime says; no restart, container ID change or phase going back (watched); nothing left behind")
	c := client(t)
	base := leftoverBaseline(t, c)
	ns := namespace(t, c)
	soakConfigMap(t, c, ns)
	w := watchStatuses(t, c, ns)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var created, deleted atomic.Int64
	for i := 0; i < slots; i++ {
		var hostPort int32
		if i%2 == 0 {
			hostPort = int32(28000 + i)
		}
		wg.Add(1)
		go func() { defer wg.Done(); churn(t, c, ns, i, hostPort, stop, &created, &deleted) }()
	}
	t.Cleanup(func() { harness(t, "agent-start"); harness(t, "wait-node") })
	for k := 0; k < kills; k++ {
		time.Sleep(randDuration(300*time.Millisecond, 5*time.Second))
		harness(t, "agent-kill")
		time.Sleep(randDuration(0, time.Second))
		harness(t, "agent-start")
	}
	r.Injected("%d kills", kills)
	close(stop)
	wg.Wait()
	harness(t, "wait-node")
	pods := checkPodsConverge(t, c, ns, 3*time.Minute)
	updates, neverRan, problems := w.result()
	for _, p := range problems {
		t.Errorf("status went wrong: %s", p)
	}
	r.Found("%d pods created, %d deleted, %d left running; %d status updates watched, %d went wrong; %d containers whose start a kill interrupted started again (restart count +1, as the kubelet)",
		created.Load(), deleted.Load(), len(pods), updates, len(problems), neverRan)
	deleteAllPods(t, c, ns, 3*time.Minute)
	waitNoLeftovers(t, c, base, 150*time.Second)
}

// nodeReadyNow reads the node's Ready condition.
func nodeReadyNow(c kubernetes.Interface) (bool, string) {
	n, err := c.CoreV1().Nodes().Get(context.Background(), nodeName, metav1.GetOptions{})
	if err != nil {
		return false, err.Error()
	}
	return nodeReady(n)
}

// containerd SIGKILLed while pods start: the node goes NotReady, then
// Ready once containerd is back; the pods converge, none twice, none lost.
func TestSoakContainerdKill(t *testing.T) {
	rounds, perRound := soakN(1, 10), 5
	r := soakRecord(t, fmt.Sprintf("containerd SIGKILLed while %d pods start, restarted once the node is NotReady", perRound),
		"node NotReady then Ready; pods converge ready as the runtime says; no duplicate sandbox or container; nothing left behind")
	c := client(t)
	base := leftoverBaseline(t, c)
	ns := namespace(t, c)
	soakConfigMap(t, c, ns)
	restarted := true
	t.Cleanup(func() {
		if !restarted {
			harness(t, "containerd-start")
		}
	})
	var notReadyFor []time.Duration
	restarts, converged := 0, 0
	for round := 0; round < rounds; round++ {
		for i := 0; i < perRound; i++ {
			createPod(t, c, ns, soakPod(fmt.Sprintf("r%d-%d", round, i), 0))
		}
		time.Sleep(randDuration(200*time.Millisecond, 2*time.Second))
		harness(t, "containerd-kill")
		restarted = false
		down := time.Now()
		waitFor(t, 90*time.Second, "node NotReady without the runtime", func() (bool, error) {
			ok, msg := nodeReadyNow(c)
			return !ok, fmt.Errorf("still Ready: %s", msg)
		})
		notReadyFor = append(notReadyFor, time.Since(down).Round(100*time.Millisecond))
		harness(t, "containerd-start")
		restarted = true
		waitFor(t, 90*time.Second, "node Ready with the runtime back", func() (bool, error) {
			ok, msg := nodeReadyNow(c)
			return ok, fmt.Errorf("%s", msg)
		})
		pods := checkPodsConverge(t, c, ns, 3*time.Minute)
		// None lost, none twice, then the round's pods go (they would
		// pile up: each round starts its own).
		if len(pods) != perRound {
			t.Errorf("round %d: %d pods, want %d", round, len(pods), perRound)
		}
		left, err := nodeLeftovers(context.Background(), t, c, criClient(t))
		if err != nil {
			t.Fatal(err)
		}
		// Twice, not left behind: the previous round's pods may still be
		// being cleaned up (the end of the test waits for that).
		for _, l := range left {
			if !base[l] && (strings.Contains(l, "ready sandboxes") || strings.Contains(l, " times")) {
				t.Errorf("round %d, with the pods running: %s", round, l)
			}
		}
		for _, p := range pods {
			for _, cs := range p.Status.ContainerStatuses {
				restarts += int(cs.RestartCount)
			}
		}
		converged += len(pods)
		deleteAllPods(t, c, ns, 3*time.Minute)
	}
	r.Injected("%d kills", rounds)
	r.Found("%d pods all ready, %d container restarts; node NotReady after %v", converged, restarts, notReadyFor)
	waitNoLeftovers(t, c, base, 150*time.Second)
}

// The apiserver stopped for a while: running pods keep running, readiness
// does not flip, nothing is deleted, the lease resumes, statuses catch up,
// no burst of events.
func TestSoakAPIServerOutage(t *testing.T) {
	outage := time.Duration(soakN(20, 60)) * time.Second
	const pods = 10
	r := soakRecord(t, fmt.Sprintf("apiserver stopped for %v with %d ready pods", outage, pods),
		"containers keep running (runtime, every 5 s); afterwards same container IDs, ready, lease renewed, node Ready, few events")
	c := client(t)
	base := leftoverBaseline(t, c)
	ns := namespace(t, c)
	soakConfigMap(t, c, ns)
	ctx := context.Background()
	for i := 0; i < pods; i++ {
		createPod(t, c, ns, soakPod(fmt.Sprintf("o%d", i), 0))
	}
	before := checkPodsConverge(t, c, ns, 2*time.Minute)
	readySince := map[string]metav1.Time{}
	ids := map[string]string{}
	for _, p := range before {
		ids[p.Name] = p.Status.ContainerStatuses[0].ContainerID
		for _, cond := range p.Status.Conditions {
			if cond.Type == v1.PodReady {
				readySince[p.Name] = cond.LastTransitionTime
			}
		}
	}
	agentBefore := readAgentStats(t)
	harness(t, "apiserver-stop")
	up := false
	t.Cleanup(func() {
		if !up {
			harness(t, "apiserver-start")
		}
	})
	rt := criClient(t)
	end := time.Now().Add(outage)
	checks := 0
	for time.Now().Before(end) {
		ctrs, err := rt.ListContainers(ctx, &runtimeapi.ContainerFilter{
			State:         &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
			LabelSelector: map[string]string{"io.kubernetes.pod.namespace": ns},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(ctrs) != pods {
			t.Errorf("%v into the outage: %d containers running, want %d", time.Until(end), len(ctrs), pods)
		}
		checks++
		time.Sleep(5 * time.Second)
	}
	harness(t, "apiserver-start")
	up = true
	back := time.Now()
	r.Injected("1 outage of %v", outage)
	waitFor(t, 60*time.Second, "the node's lease renewed after the outage", func() (bool, error) {
		var l *coordinationv1.Lease
		var err error
		l, err = c.CoordinationV1().Leases("kube-node-lease").Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return l.Spec.RenewTime != nil && l.Spec.RenewTime.After(back), fmt.Errorf("renewed %v", l.Spec.RenewTime)
	})
	harness(t, "wait-node")
	after := checkPodsConverge(t, c, ns, time.Minute)
	flipped := 0
	for _, p := range after {
		if got := p.Status.ContainerStatuses[0].ContainerID; got != ids[p.Name] || p.Status.ContainerStatuses[0].RestartCount != 0 {
			t.Errorf("%s: container %s before the outage, %s after: %s", p.Name, ids[p.Name], got, describe(&p))
		}
		for _, cond := range p.Status.Conditions {
			if since := readySince[p.Name]; cond.Type == v1.PodReady && !cond.LastTransitionTime.Equal(&since) {
				flipped++
			}
		}
	}
	if len(after) != pods {
		t.Errorf("%d pods after the outage, want %d", len(after), pods)
	}
	// Past the controller-manager's node grace period (50 s), it may mark
	// the pods not ready itself; that is not the agent's doing.
	if flipped > 0 && outage < 40*time.Second {
		t.Errorf("readiness of %d pods changed across the outage", flipped)
	}
	time.Sleep(10 * time.Second)
	events, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var late []string
	for _, e := range events.Items {
		if e.LastTimestamp.After(back) || e.EventTime.After(back) {
			late = append(late, e.Reason+" "+e.InvolvedObject.Name)
		}
	}
	if len(late) > pods {
		t.Errorf("%d events after the outage: %s", len(late), strings.Join(late, ", "))
	}
	agentAfter := readAgentStats(t)
	r.Found("%d runtime checks during the outage all found %d containers running; after: same containers, %d readiness changes, %d events, agent %s before and %s after",
		checks, pods, flipped, len(late), agentBefore, agentAfter)
	deleteAllPods(t, c, ns, 2*time.Minute)
	waitNoLeftovers(t, c, base, 150*time.Second)
}
