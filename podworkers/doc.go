// Package podworkers runs one goroutine per pod UID and drives each pod
// through an explicit lifecycle:
//
//	sync → terminating → terminated
//
// The agent's informer hands every new version of a pod to Update; a
// worker only ever acts on the newest version it has been given (latest
// state wins: versions that arrive while a sync runs are coalesced). Wake
// asks a worker to sync again with the state it has, which is how runtime
// events (a container exited) and timers (crash-loop back-off) reach it.
//
// A pod enters terminating when its object carries a deletion timestamp,
// when it disappears from the apiserver, or when SyncPod reports that it
// reached a terminal phase (restartPolicy Never/OnFailure and every
// container done). SyncTerminatingPod must stop everything of the pod;
// SyncTerminatedPod then releases what is left (volumes, sandboxes) and,
// for a deleted pod, the object can go. A terminated worker stays known
// until the pod object is gone, so a late event cannot restart the pod.
//
// Kill terminates a pod for a reason of the node's rather than of its
// object (graceful node shutdown, package nodeshutdown), as the kubelet's
// SyncPodKill: the worker interrupts a sync in progress and terminates
// the pod with a grace period capped by the kill's, and the kill's status
// function reaches SyncTerminatingPod, which writes the pod's final status
// through it (phase Failed, its reason, a DisruptionTarget condition).
// Nothing outside the worker stops the pod's containers: the worker stays
// the only one acting on its pod.
//
// The real work is behind the PodSyncer interface, which podsync
// implements; this package holds only the worker state machine, tested
// with a struct of funcs and a fake clock.
package podworkers
