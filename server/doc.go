// Package server serves the kubelet HTTP API of nodeagent, so that the
// apiserver, kubectl (exec, attach, port-forward, logs), metrics scrapers and
// a person with curl and a client certificate use the node as they use a
// kubelet.
//
// # Ports
//
// The API listens with TLS on address:port (10250), with the serving
// certificate GetCertificate gives at each handshake (package nodecerts
// decides which: the configured files, a requested and rotated one, or a
// self-signed one). Every request on it, known route or not, is authenticated and
// authorized before routing, as the kubelet filters its whole container:
// x509 client certificates against the client CA file, bearer tokens by a
// cached TokenReview, anonymous only if enabled (otherwise 401). Authorization
// is a cached SubjectAccessReview (or AlwaysAllow if configured) with the
// kubelet's attribute mapping: resource nodes, name the node, verb from the
// HTTP method, subresource from the path (stats, metrics, log for /logs/,
// everything else proxy) after a fine-grained first check for /pods and
// /runningpods/ (pods), /healthz (healthz) and /configz (configz). A request
// is allowed if any of its attributes is; otherwise 403 names the user, the
// verb, the resource and the subresources tried.
//
// The TokenReview answers (successes and failures) are cached for
// authentication.webhook.cacheTTL (2m) and the SubjectAccessReview answers
// for cacheAuthorizedTTL (5m) and cacheUnauthorizedTTL (30s), as the
// kubelet caches them; the agent gives the webhooks an API client of their
// own, so that a flood of requests with made-up bearer tokens waits on that
// client's rate limiter and never on the one of the agent's other work, nor
// on the heartbeats (which have their own, unlimited client). The TLS
// versions, cipher suites and curves are the configured ones (TLS 1.2 and
// Go's defaults otherwise). With ServerDisabled (enableServer: false)
// nothing listens on the TLS port.
//
// With Debugging.Disabled (enableDebuggingHandlers: false) every method on
// /run/, /exec/, /attach/, /portForward/, /containerLogs/, /runningpods/,
// /debug/ and /logs/ and below answers 405 "Debug endpoints are disabled.",
// after authentication and authorization, and /configz is not served, as
// the kubelet's InstallDebuggingDisabledHandlers (which lists /debug/pprof/;
// all of /debug/ here). The finer switches answer 405 on /debug/pprof/
// (profiling), /logs/ (system logs) and /debug/flags/v (debug flags); the
// latter two are not served otherwise either.
//
// A plain HTTP /healthz listens on HealthzBindAddress:HealthzPort
// (127.0.0.1:10248), and, only when ReadOnlyPort is set, an unauthenticated
// port serves the kubelet's read-only subset: /healthz, /pods, /stats,
// /metrics, /metrics/resource, /metrics/cadvisor and /metrics/probes.
//
// Slow and hostile clients: each server has the kubelet's timeouts (30 s
// for the headers, 4 h to read or write a request, 90 s idle) and header
// limit (1 MiB, then 431). A request body is limited to 3 MiB (the
// kube-apiserver's default; the kubelet has no limit of its own): a longer
// declared one is answered 413 unread, a longer chunked one is cut there
// and the connection closed. No route needs more; /debug/pprof/symbol
// would otherwise read any POST body to its end and buffer an answer that
// grows with it. A stream to a client that stops reading blocks only its
// own handler, until the client goes away or the write timeout passes.
//
// # Routes
//
// /pods lists the pods the node runs, as the kubelet's pod manager: the
// pods bound to it (the agent's informer) but mirror pods, and the static
// pods under their own UID, with the agent's status of them;
// /runningpods/ what the runtime runs for the agent; /configz the
// KubeletConfiguration; /debug/pprof/ Go's profiles, as the kubelet's
// debugging handlers (nodes/proxy). /containerLogs reads the CRI log files itself (CRI
// has no log stream) with k8s.io/cri-client/pkg/logs, which follows,
// tails, limits and timestamps. The file comes from the runtime's
// ContainerStatus and is refused unless it lies, symbolic links resolved,
// inside the pod's own directory <PodLogsDir>/<ns>_<name>_<uid>: no request
// ever reads a byte from elsewhere. Which container's log is read comes
// from the pod's status, the agent's own latest (Deps.PodStatus) else the
// pod object's, by the kubelet's validateContainerLogStatus: --previous is
// lastState.terminated, otherwise the running, the terminated or the last
// terminated instance; a container waiting with none of them answers 400
// with the kubelet's words. An ID from the status is used only if the
// runtime's labels say it is the agent's container of that name in that
// pod. The lines go out in writes of up to 32 KiB, flushed at the
// latest 10 ms after their first byte (the kubelet flushes every line,
// which caps logs -f of a fast writer at a few MB/s). Containers are looked up by the kubelet's labels plus
// io.nodeagent.managed=true, so the agent never touches another's.
//
// A pod named in a URL (/containerLogs, /exec, /attach, /portForward,
// /run) is the pod the agent runs, as the kubelet's GetPodByName: the
// apiserver's object, except a mirror pod, which stands for the static
// pod the agent runs under its namespace and name (Deps.StaticPod), so
// that kubectl logs and exec on a mirror reach the static pod's
// containers, which the runtime knows by the static pod's UID. The mirror
// is matched by name only; its annotations never choose a UID. A URL's pod
// UID may be the static pod's or its mirror's, as the kubelet's
// TranslatePodUID; the logs of a static pod go by the agent's own status
// of it.
//
// /exec, /attach and /portForward ask the runtime (CRI Exec, Attach,
// PortForward) for a one-time stream URL and proxy the upgraded SPDY
// connection to it with apimachinery's UpgradeAwareHandler, so the
// runtime's stream server may stay on localhost. With RedirectStreaming the
// answer is instead a 302 to that URL. The apiserver does not follow such a
// redirect (it reports an invalid upgrade response): redirect mode only
// serves clients that talk to the node directly and can reach the
// runtime's stream server (containerd's stream_server_address on the
// node's address). /run executes a command synchronously and returns its
// output.
//
// Runtimes speak SPDY only. WebSocket clients are translated as the
// kubelet does it (apiserver's util/proxy): exec and attach offering
// v5.channel.k8s.io go through a StreamTranslatorHandler, an SPDY client of
// the runtime fed by the WebSocket channels (stdin, stdout, stderr, the
// error channel with the exit code, resize, close); portForward offering
// SPDY/3.1+portforward.k8s.io is tunneled (SPDY inside WebSocket messages)
// through the same proxy to the runtime. This holds in redirect mode too,
// since the runtime cannot serve these clients. The apiserver sends
// WebSockets to the node untranslated only if the node declares
// ExtendWebSocketsToKubelet in status.declaredFeatures, which the agent
// does with --declare-websocket-streaming.
//
// # Stats
//
// /stats/summary is the kubelet's stats v1alpha1 Summary (GET or POST;
// only_cpu_and_memory=true for the reduced form). Running containers come
// from one ListContainerStats. A pod's CPU, memory and process count come
// from its cgroup (where its worker has it; without cgroupsPerQOS the
// pod's CPU and memory are its containers' sums), its network from
// /proc/<pid>/net/dev of its sandbox's first process (the pid from the
// verbose PodSandboxStatus, kept per sandbox; lo, veth*, docker* and
// nerdctl* left out), as cAdvisor gives them to the kubelet. Never
// ListPodSandboxStats: containerd answers it by visiting each sandbox's
// shim and network namespace in turn, over a minute with 75 sandboxes on
// a busy two-core node, and the eviction manager and metrics-server ask
// every 10 and 15 s. One sandbox per pod counts, the ready one, as the
// kubelet's CRI stats provider. Container logs are measured in the pod's log directory. The
// node's CPU and memory are the root cgroup's (cgroup v1 cpuacct.usage and
// memory.usage_in_bytes minus total_inactive_file; v2 cpu.stat and
// memory.current or /proc/meminfo), its filesystem the root dir's statfs.
// usageNanoCores the runtime leaves out is derived from two samples at
// least a second apart. /metrics/resource renders the CPU-and-memory
// summary as the kubelet's resource metrics (node_, pod_ and container_
// cpu_usage_seconds_total and memory_working_set_bytes,
// container_start_time_seconds, scrape_error), read at scrape time.
//
// The full summary also has the runtime's image filesystem (CRI
// ImageFsInfo: the runtime's usage, the size of the filesystem under its
// mount point; the container filesystem is the same unless the runtime
// splits them), each container's writable layer with that filesystem's
// size, each pod's volumes (du of <RootDir>/pods/<uid>/volumes/*/*, hard
// links once, measured again after 200 times what measuring took, between
// 1 s and the kubelet's 1 min) and its ephemeral-storage: writable layers,
// logs and the local ephemeral volumes as the kubelet counts them (by the
// pod's spec: configMap and emptyDir of the default medium, never Memory
// or HugePages), against the root dir's filesystem. PodStorage
// hands the same pod stats, and whether the image filesystem is a device
// of its own, to the eviction manager (package eviction).
//
// /metrics/cadvisor renders the full summary in cAdvisor's series and
// labels (container, id = cgroup path, image, name = container ID,
// namespace, pod) for the root cgroup (id "/"), each pod's cgroup and
// each running container: CPU, memory usage, working set, RSS and page
// faults, pod network per interface, process count, the writable layer,
// start and last-seen times, the spec's memory limit, CPU shares, period
// and quota, and machine_cpu_cores and machine_memory_bytes. Series that
// need cAdvisor's own cgroup walk (filesystem I/O, per-CPU, pressure) are
// absent. /metrics/probes is the prober's prober_probe_total and
// prober_probe_duration_seconds with process_start_time_seconds, as the
// kubelet serves it.
//
// # Errors
//
// Errors map to the kubelet's status codes in one place (httpStatus): 400
// for undecodable parameters, 422 for invalid log options, 404 for an
// unknown pod, container or route, gRPC codes from the runtime by kind.
// /containerLogs answers as the kubelet's go-restful WriteError: the text
// alone, in the kubelet's words, as a text/plain body; through the
// apiserver it is the message of the error kubectl shows.
package server
