// Package podsync makes the container runtime match a pod: it is the
// PodSyncer behind podworkers.
//
// SyncPod reads the pod's sandboxes and containers from the runtime (by the
// pod UID label), creates the sandbox when there is no ready one (volumes
// first, then RunPodSandbox with the kubelet's labels, log directory, DNS
// and port mappings, under the runtime handler of the pod's RuntimeClass:
// runtimeclass.go), runs init containers one after another, then starts
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
// failure is recorded by the prober and acted on by the worker's sync
// (killUnhealthy), the one place that acts on the pod: it stops the
// container, and the restart path (restartPolicy, crash-loop back-off)
// brings it back.
// Lifecycle hooks run here: postStart right after StartContainer (a
// failure kills the container, reason PostStartHookError), preStop before
// every StopContainer of a live container, within the grace period.
//
// SyncTerminatingPod stops containers with the pod's grace period (the
// runtime sends SIGTERM, then SIGKILL when the period ends), sidecars last
// with what is left of it, and stops the sandbox; SyncTerminatedPod removes the pod's containers, sandboxes and
// volumes and deletes a deleted pod's object. When the agent itself ends
// a pod (its active deadline, or a node shutdown through
// podworkers.Kill), SyncTerminatingPod gets a status function, the
// kubelet's PodStatusFunc: the conditions it adds (DisruptionTarget) are
// written before the containers stop, its phase, reason and message
// (Failed, DeadlineExceeded or Terminated) once nothing of the pod runs,
// and that status is final.
//
// A running container whose spec hash (name and image, as the kubelet's
// HashContainer, in the io.kubernetes.container.hash annotation) differs
// from the pod's is stopped and started again with the new spec. A pod
// past spec.activeDeadlineSeconds is stopped and ends Failed with reason
// DeadlineExceeded. The status is the kubelet's: container states,
// conditions and phase as its generateAPIPodStatus computes them, with
// status.observedGeneration and each condition's observedGeneration.
//
// Ephemeral containers (kubectl debug) start once each as soon as the
// sandbox is ready, never restart, share the process namespace of their
// target container, and are reported in ephemeralContainerStatuses
// (ephemeral.go).
//
// Admission (admit.go, admission.go) decides new pods one at a time in
// creation order, each counted only against pods already admitted, and
// runs the kubelet's generalFilter (resources with sidecars and overhead
// counted as it counts them, nodeSelector and required node affinity,
// node name, host ports, NoExecute taints). It refuses, with phase Failed,
// the kubelet's reason and an event: pods that use a feature the agent does not implement yet
// (UnsupportedPodSpec, naming the feature: never a silent half-run;
// fields_test.go decides every pod-spec field), unsafe sysctls
// (SysctlForbidden), another OS (PodOSNotSupported), a Strict
// supplementalGroupsPolicy the runtime cannot apply, AppArmor on a host
// without it, pods that do not fit, and every new pod while the node shuts
// down (NodeShutdown, Config.ShuttingDown). securityContext is honoured as
// the kubelet's (security.go): seccomp, runAsNonRoot against the image's
// user, SELinux, masked paths, a privileged sandbox for a privileged
// container. Volume mounts (mounts.go) of agent-written volumes are
// read-only, subPaths are bind-mounted safely by the volume manager, and
// the termination message is read only from the agent's own file
// (termination.go). Image volumes (imagevolumes.go) are pulled as
// container images are, in a sync that starts a container, and mounted
// read-only by the runtime (CRI Mount.Image, the subPath as ImageSubPath);
// a container mounting one whose pull failed waits with ErrImagePull or
// ImagePullBackOff. imagePullSecrets are passed to the runtime as the
// kubelet's keyring matches them (pullauth.go). Pulls are serialized or
// bounded node-wide and rate-limited as the kubelet's (puller.go,
// Config.SerializeImagePulls and the fields after it); the crash-loop
// back-off caps at Config.MaxContainerRestartPeriod.
//
// GarbageCollect removes what is left of pods the apiserver no longer has
// (after an agent restart, for instance), dead containers beyond the last
// one per container name, and log directories of pods that are gone and
// that nodeagent made (never a co-resident kubelet's).
package podsync
