// Package prober runs the container probes of the pods on the node, as the
// kubelet's prober manager does, in a fraction of its code.
//
// The pod syncer calls Add for every container it sees running and Remove
// (or RemovePod) when the container exits or the pod terminates. Add starts
// one goroutine per (pod UID, container name, probe type) that the
// container declares; a worker of an older instance of the same container
// (another container ID) is replaced. A worker waits for the probe's
// initialDelaySeconds after the container started, then probes every
// periodSeconds with timeoutSeconds per attempt, and changes its result
// only after successThreshold consecutive successes or failureThreshold
// consecutive failures.
//
// Results start as the kubelet's: readiness false until the first success,
// liveness success, startup false. While a container has a startup probe
// that has not succeeded, its liveness and readiness workers do not probe;
// once the startup probe succeeded it is not run again for that container.
//
// Nothing polls the results: every change of a result calls Wake with the
// pod UID, so the pod worker syncs and writes the status at once. A
// liveness or startup failure is recorded (Failed) and wakes the pod's
// worker, which kills the container in its sync, the one place that acts
// on the pod (the restart path then restarts it as restartPolicy says);
// the probe's worker ends, and the next instance of the container gets
// new workers. Every failed attempt records an Unhealthy event, as the kubelet
// does.
//
// The handlers are exec (CRI ExecSync; exit code 0 is success), httpGet
// (status 200-399; redirects to the same host are followed, others end the
// request with the redirect as the answer), tcpSocket (a connection
// opens) and grpc (grpc.health.v1 reports SERVING). Run, Do and HTTPGet
// are exported so that lifecycle hooks use the same code.
//
// Every attempt counts in the kubelet's prober_probe_total (and, when it
// succeeded, prober_probe_duration_seconds); Collectors returns them for
// the node API's /metrics/probes. A container's series go with Remove.
package prober
