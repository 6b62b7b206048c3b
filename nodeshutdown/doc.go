// Package nodeshutdown terminates the node's pods before the node goes
// down: the kubelet's graceful node shutdown (pkg/kubelet/nodeshutdown,
// v1.36.3), with the same configuration, order, grace periods and
// statuses.
//
// # Configuration
//
// Groups reads the KubeletConfiguration as the kubelet does. With
// shutdownGracePeriod (say 30s) and shutdownGracePeriodCriticalPods (10s)
// there are two groups: the pods of priority below 2000000000 (the value
// of system-cluster-critical) get the difference (20 s), then the pods at
// or above it (system-cluster-critical, system-node-critical) get
// shutdownGracePeriodCriticalPods. shutdownGracePeriodByPodPriority gives
// the groups explicitly, each a priority and a number of seconds; a pod
// belongs to the group of the highest priority that does not exceed its
// own (a pod below every group's priority to the lowest one). A pod's
// priority is its spec.priority, 0 when unset, as the kubelet groups them:
// a static pod counts as critical only when its manifest sets a priority
// (kubeadm's control-plane manifests set 2000001000), although the
// kubelet's IsCriticalPod would call every static pod critical. Without
// either setting (shutdownGracePeriod 0, the default) the feature is off.
//
// # What a shutdown does
//
// Shutdown marks the node as shutting down: from then on admission
// refuses new pods (reason NodeShutdown, "Pod was rejected as the node is
// shutting down.") and the node's Ready condition is False with the
// kubelet's message "node is shutting down"; it records a NodeShutdown
// event on the Node. Then it takes the pods the node runs and, group after
// group from the lowest priority up, asks the worker of each pod of the
// group to terminate it (Config.Kill, podworkers.Workers.Kill) with a
// grace period of the group's seconds, or the pod's own
// terminationGracePeriodSeconds when that is shorter (at least 1 s, as the
// kubelet's pod worker). It moves on to the next group once every pod of
// the group is stopped or the group's seconds have passed, whichever comes
// first; a group without pods takes no time. The workers remain the only
// ones acting on their pods: Shutdown never stops a container itself.
//
// Each pod so ended reports, as with the kubelet: phase Failed (unless it
// already Succeeded), reason Terminated, message "Pod was terminated in
// response to imminent node shutdown.", and a DisruptionTarget condition
// (True, reason TerminationByKubelet, the same message). The condition is
// written as the termination starts, the phase once the pod's containers
// are stopped (package podsync).
//
// Once the last group is done the node status is posted one last time and
// Shutdown returns; the agent then exits. Pods still stopping when their
// group's time ran out are left as they are, as the machine going down
// would leave them.
//
// # What triggers it
//
// When the feature is on, two things do (package agent), whichever comes
// first, and both run the same drain once:
//
//   - SIGTERM (NotifySignals);
//   - systemd-logind announcing that the machine shuts down or reboots
//     (package nodeshutdown/logind, as the kubelet): nodeagent holds a
//     "delay" inhibitor lock for shutdown, makes sure logind's
//     InhibitDelayMaxUSec is at least the total grace period (if shorter,
//     it writes /etc/systemd/logind.conf.d/99-nodeagent.conf and reloads
//     logind, and logs that it did), drains the node on
//     PrepareForShutdown(true) and releases the lock once the drain is
//     over, so that the shutdown goes on; on PrepareForShutdown(false), a
//     cancelled shutdown, it takes the lock again.
//
// A SIGTERM during a drain that logind started changes nothing; a second
// signal, or SIGINT, stops the agent at once. Without the feature SIGTERM
// stops the agent and leaves the pods running for the next start to
// adopt, and logind is not watched. The agent watches logind once its
// kubelet API server runs (a shutdown announced before the Node is
// registered only stops the agent). Where there is no system bus or no
// logind on it (a container, a host without systemd) it logs
// once that only SIGTERM triggers the drain, and goes on.
//
// After the drain the agent stops (exit 0), whichever triggered it; the
// kubelet instead keeps running, NotReady, until the machine is gone. So
// a shutdown cancelled after its drain began leaves the pods terminated
// and the agent stopped: run it as a systemd unit with Restart=always (as
// kubeadm's kubelet.service), and the next start takes the lock again.
// Order the unit After=containerd.service, so that the runtime still runs
// while the node drains, and give it a TimeoutStopSec above the total
// grace period: a plain `systemctl stop` or restart of the unit sends
// SIGTERM and so drains the node too; stop the agent with SIGINT
// (`systemctl kill -s INT`) to keep the pods running.
//
// The kubelet's shutdown state file and its graceful-shutdown start and
// end time metrics are not implemented.
package nodeshutdown
