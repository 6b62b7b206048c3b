package podsync

import v1 "k8s.io/api/core/v1"

// The kubelet tracks which pod spec a status describes
// (PodObservedGenerationTracking, GA and locked on since v1.35): the
// status's observedGeneration and that of every condition it sets are the
// metadata.generation of the pod it synced. The apiserver bumps the
// generation on every spec change (and on a graceful delete), so a client
// that changed the spec knows the status is about its change once
// observedGeneration reaches the generation its update returned.

// observedGeneration is status.observedGeneration for a status computed
// from pod. It never goes back: a status computed from an older copy of
// the pod than the one last reported keeps the newer generation, as the
// kubelet's status manager does.
func observedGeneration(pod *v1.Pod) int64 {
	return max(pod.Generation, pod.Status.ObservedGeneration)
}

// conditionGeneration is the observedGeneration of the conditions the
// agent sets from pod.
func conditionGeneration(pod *v1.Pod) int64 {
	return pod.Generation
}
