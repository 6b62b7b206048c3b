// Package podsync makes the container runtime match a pod: it is the
// PodSyncer behind podworkers.
//
// SyncPod reads the pod's sandboxes and containers from the runtime (by the
// pod UID label), creates the sandbox when there is no ready one (volumes
// first, then RunPodSandbox with the kubelet's labels, log directory, DNS
// and port mappings), runs init containers one after another, then starts
// the app containers, restarting exited ones as restartPolicy says with
// the kubelet's crash-loop back-off, and finally writes the pod status it
// computed from what the runtime reports. Nothing here polls: a sync runs
// because the pod changed, a runtime event named it, or a back-off timer
// expired.
//
// Sidecars (init containers with restartPolicy Always) start in their place
// among the init containers; the next init container waits until the
// sidecar runs and its startup probe (if any) succeeded. Once an app
// container was created the pod is initialized: init containers are not
// run again, but a sidecar that exits restarts (with the crash-loop
// back-off) whatever the pod's restartPolicy, until the app containers are
// done for good. Sidecars count for readiness, not for the phase, and stop
// after the app containers, the last declared first.
//
// Probes run in package prober behind Config.Prober: SyncPod starts the
// probes of every container it sees running and stops those of the others;
// a container is ready when it runs and its readiness probe (if any)
// succeeded, and started when its startup probe (if any) succeeded. A
// prober result change wakes the pod's worker; a liveness or startup
// failure calls KillUnhealthy, which stops the container, and the normal
// restart path (restartPolicy, crash-loop back-off) brings it back.
// Lifecycle hooks run here: postStart right after StartContainer (a
// failure kills the container, reason PostStartHookError), preStop before
// every StopContainer of a live container, within the grace period.
//
// SyncTerminatingPod stops containers with the pod's grace period (the
// runtime sends SIGTERM, then SIGKILL when the period ends), sidecars last
// with what is left of it, and stops the sandbox; SyncTerminatedPod removes the pod's containers, sandboxes and
// volumes and deletes a deleted pod's object.
//
// Pods that use a feature the agent does not implement yet are rejected at
// admission, with phase Failed, reason UnsupportedPodSpec and an event that
// names the feature: never a silent half-run.
//
// GarbageCollect removes what is left of pods the apiserver no longer has
// (after an agent restart, for instance), dead containers beyond the last
// one per container name, and log directories of pods that are gone.
package podsync
