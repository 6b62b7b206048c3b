// Package configs turns nodeagent's command line and its KubeletConfiguration
// file into one resolved Options value, and is meant as a drop-in for the
// kubelet's own flags and config file where they overlap.
//
// # Flags and the config file
//
// As in the kubelet, per-node identity and wiring are flags (--kubeconfig,
// --hostname-override, --node-ip, --node-labels, --root-dir) and everything
// else is the config file given by --config: a KubeletConfiguration of
// apiVersion kubelet.config.k8s.io/v1beta1, in YAML or JSON, using the types
// from k8s.io/kubelet/config/v1beta1 unchanged, so an existing kubelet config
// file can be reused. nodeagent adds flags the kubelet no longer has:
// --network-plugin ("cni", the default, where nodeagent runs the CNI plugins
// found through --cni-conf-dir, --cni-bin-dir and --cni-cache-dir; or
// "runtime", where the container runtime sets up pod networking).
//
// Where a setting exists both as a flag and as a field, an explicitly given
// flag wins: --container-runtime-endpoint over containerRuntimeEndpoint and
// --image-service-endpoint over imageServiceEndpoint. The image endpoint
// falls back to the runtime endpoint. klog's flags (-v, --vmodule, ...) are
// registered as well.
//
// # Kubelet flags
//
// A kubelet command line (for example kubeadm's systemd drop-in) starts
// nodeagent unchanged; the kubelet v1.36 flag set is mirrored in
// kubeletflags.go. The kubelet's deprecated flags that set a config field
// (--port, --max-pods, --anonymous-auth, --cluster-dns, ...) keep their
// names and value types and are applied on top of the config file, flags
// winning; only then are defaults filled in and the result validated, and a
// validation error names the file and the flags used. Each such flag earns a
// warning "flag --x is deprecated, set field y in the config file instead",
// except --provider-id, --fail-cgroupv1 and --seccomp-default, which the
// kubelet does not deprecate (--seccomp-default is or-ed with the field, as
// in the kubelet). The flags of security-relevant fields
// (--enable-server, --enable-debugging-handlers, --tls-min-version,
// --tls-cipher-suites, --protect-kernel-defaults, --rotate-certificates,
// --rotate-server-certificates, --pod-max-pids, --enforce-node-allocatable,
// --manifest-url, --allowed-unsafe-sysctls) set their field like the others,
// so that a value nodeagent cannot honour is refused whether it comes from
// the file or a flag. Kubelet flags nodeagent does not implement
// (--feature-gates, config flags of unimplemented fields such as
// --cpu-manager-policy, and a few flags the kubelet has removed but old
// unit files still pass, such as --pod-infra-container-image) are accepted
// with their types and named in one warning as ignored; --config-dir is an
// error when it holds drop-in .conf files, since ignoring them would break
// the agent. --bootstrap-kubeconfig and --cert-dir are implemented (package
// nodecerts). A flag the kubelet does not have is still an error.
//
// # Decoding
//
// The file is read strictly first, as the kubelet does: unknown or duplicate
// fields are warnings, not errors, and the rest of the file still applies. A
// wrong or missing kind or apiVersion is an error, and so is a value of the
// wrong type, whose message names the field. Fields that exist in
// KubeletConfiguration but that nodeagent does not implement (for example
// cpuManagerPolicy or featureGates) are accepted and ignored, and listed in
// one warning so that nobody believes they took effect, unless they are
// security-relevant (below). Every error and warning about a file starts
// with its path.
//
// # Security-relevant fields
//
// A field whose being ignored would leave the node less protected than its
// configuration says is honoured or stops the agent (exit 1, the message
// naming the field); a warning is not enough. Honoured:
//
//   - authentication (anonymous, webhook with its cacheTTL, x509 client CA),
//     authorization (mode, webhook cacheAuthorizedTTL and
//     cacheUnauthorizedTTL), readOnlyPort (0 is off), address, port,
//     tlsCertFile and tlsPrivateKeyFile, as before;
//   - enableServer: false serves no node API on the secure port (the
//     read-only port, if set, and healthz still run, as in the kubelet);
//   - enableDebuggingHandlers: false answers 405 on /run/, /exec/, /attach/,
//     /portForward/, /containerLogs/, /runningpods/, /debug/ and /logs/ and
//     drops /configz, as the kubelet; enableProfilingHandler,
//     enableSystemLogHandler and enableDebugFlagsHandler: false answer 405 on
//     /debug/pprof/, /logs/ and /debug/flags/v;
//   - rotateCertificates and serverTLSBootstrap, with --bootstrap-kubeconfig
//     and --cert-dir (package nodecerts: TLS bootstrapping, client and
//     serving certificate rotation, tlsCertFile reloaded when it changes);
//   - tlsMinVersion, tlsCipherSuites and tlsCurvePreferences, with the names
//     and values the kubelet accepts (k8s.io/component-base/cli/flag); an
//     unknown one is an error;
//   - protectKernelDefaults: with true, CheckHost refuses a host whose
//     kernel tunables differ from the kubelet's (vm.overcommit_memory=1,
//     vm.panic_on_oom=0, kernel.panic=10, kernel.panic_on_oops=1,
//     kernel.keys.root_maxkeys=1000000, kernel.keys.root_maxbytes=25000000);
//     with false (the default) the agent sets them at start as the kubelet
//     does, or only warns when not running as root;
//   - seccompDefault and allowedUnsafeSysctls (in podsync).
//
// Refused (security.go), with the value nodeagent's behaviour matches:
//
//   - podPidsLimit above 0 with the systemd cgroup driver or without
//     cgroupsPerQOS (nodeagent writes pids.max of the pod cgroups only
//     with cgroupsPerQOS and the cgroupfs driver, package podcgroups);
//   - enforceNodeAllocatable with system-reserved, kube-reserved or their
//     -compressible forms (no cgroup limits on system daemons);
//   - imagePullCredentialsVerificationPolicy AlwaysVerify or
//     NeverVerifyAllowlistedImages (no check that a pod may use an image
//     already on the node; nodeagent pulls without credentials, so the
//     default NeverVerifyPreloadedImages, and NeverVerify, are what it does);
//   - staticPodURL set (pods from an unauthenticated HTTP source).
//
// Every other field was judged not security-relevant and keeps the
// warning; notSecurityRelevant in security.go gives the reason for each,
// and a test makes every KubeletConfiguration field implemented, refused or
// listed there. Two defaults are not honoured and cannot be refused
// without refusing every configuration: makeIPTablesUtilChains (true: the
// kubelet's rule dropping martian packets to 127.0.0.0/8, which kube-proxy
// in iptables mode installs too) and enforceNodeAllocatable (pods: no
// limit on the kubepods cgroup).
//
// # Defaults
//
// Default fills unset fields with the kubelet's config-file defaults. These
// are the secure ones: anonymous authentication off, Webhook (TokenReview)
// authentication and Webhook (SubjectAccessReview) authorization, and the
// unauthenticated read-only port off (0). nodeagent applies them also when
// no --config is given. Here it departs from the kubelet, whose flag-only
// defaults are the legacy insecure ones (anonymous on, AlwaysAllow, read-only
// port 10255); to get that behaviour, say so in a config file.
//
// # Graceful node shutdown
//
// shutdownGracePeriod, shutdownGracePeriodCriticalPods and
// shutdownGracePeriodByPodPriority are honoured (package nodeshutdown):
// with them, SIGTERM or systemd-logind's shutdown signal (which nodeagent
// watches with a delay inhibitor lock, package nodeshutdown/logind)
// terminates the node's pods as the kubelet does (regular pods, then
// critical ones, each within its share), marks the node NotReady and exits
// 0; without them (shutdownGracePeriod 0, the default) SIGTERM stops the
// agent and leaves the pods running, and logind is not watched. Validate checks them as the kubelet does: the critical
// period not above the total, each 0 or at least 1s, and
// shutdownGracePeriodByPodPriority not together with the other two; it
// also refuses negative seconds there.
//
// # Image garbage collection
//
// imageGCHighThresholdPercent, imageGCLowThresholdPercent,
// imageMinimumGCAge and imageMaximumGCAge (and the flags
// --image-gc-high-threshold, --image-gc-low-threshold and
// --minimum-image-ttl-duration) are honoured by package imagegc, with the
// kubelet's defaults (85, 80, 2m, 0) and its validation: the thresholds
// within [0, 100] and the low one below the high one, the ages not
// negative, and a maximum age, when set, above the minimum one.
//
// # Node allocatable and pressure
//
// kubeReserved, systemReserved and evictionHard (with
// mergeDefaultEvictionSettings, and the flags --kube-reserved,
// --system-reserved and --eviction-hard) are honoured by package
// nodestatus as the kubelet's node status honours them: allocatable is
// the capacity less both reservations (cpu, memory, ephemeral-storage)
// and less the memory.available and nodefs.available thresholds (a
// percentage is of the capacity), never below zero; the MemoryPressure,
// DiskPressure and PIDPressure conditions follow the memory.available,
// nodefs.available, nodefs.inodesFree, imagefs.available,
// imagefs.inodesFree and pid.available thresholds, and a signal without
// one never sets its condition. Of evictionHard, memory.available,
// nodefs.available and imagefs.available also evict pods (package
// eviction, one per 10 s, ranked as the kubelet, unused images removed
// first for the disk signals); the inode and pid signals evict none.
//
// evictionSoft with evictionSoftGracePeriod, evictionMaxPodGracePeriod,
// evictionMinimumReclaim and evictionPressureTransitionPeriod (and their
// flags --eviction-soft, --eviction-soft-grace-period,
// --eviction-max-pod-grace-period, --eviction-minimum-reclaim and
// --eviction-pressure-transition-period) are honoured as by the kubelet's
// eviction manager (EvictionThresholds parses them as its
// ParseThresholdConfig): a soft threshold turns its pressure condition
// True as soon as it is met and evicts once it has stayed met for its
// grace period, a pod then getting evictionMaxPodGracePeriod seconds, or
// its terminationGracePeriodSeconds when shorter, and never less than 1 s
// (with the default 0, 1 s, as in the kubelet); a threshold met stays met
// until its minimum reclaim more than the threshold is available; a
// pressure condition stays True for evictionPressureTransitionPeriod (5m)
// after a threshold of it was last met.
//
// Validation is the kubelet's: only cpu, memory, ephemeral-storage and
// pid can be reserved, with a quantity not below zero; an evictionHard or
// evictionSoft value is a quantity above zero or a percentage, "0%" and
// "100%" setting no threshold; a soft threshold needs a grace period (a
// grace period without a soft threshold is unused, as in the kubelet),
// which is a duration not below zero; a minimum reclaim is a quantity not
// below zero or a percentage above 0%; each for a signal the kubelet
// knows. A negative evictionPressureTransitionPeriod, which the kubelet
// would take and which would keep every pressure condition False, is
// refused. A reservation above the node's
// capacity is no configuration error; as the kubelet, the agent refuses
// to start with it. A pid reservation is accepted but is not in the
// node's status, which has no pid capacity: the kubelet uses it only for
// the pids limit of the kubepods cgroup.
//
// # Image pulls, restart back-off and pods per core
//
// serializeImagePulls, maxParallelImagePulls, registryPullQPS and
// registryBurst (and --serialize-image-pulls, --registry-qps and
// --registry-burst) limit the image pulls of package podsync as the
// kubelet's image manager: one at a time node-wide when serializeImagePulls
// is true (the default unless maxParallelImagePulls is 2 or more),
// otherwise at most maxParallelImagePulls at once (no limit when unset); a
// pull beyond registryPullQPS with registryBurst (5 and 10; 0 QPS is no
// limit) fails at once with ErrImagePull "pull QPS exceeded" and the pull
// back-off. As in the kubelet, a slow pull holds up the pulls queued
// behind it until the runtime gives up; images already on the node never
// wait. crashLoopBackOff.maxContainerRestartPeriod (default 300s, the
// kubelet's KubeletCrashLoopBackOffMax gate being on) caps the crash-loop
// back-off, which starts at 10s, or at the maximum when that is lower.
// podsPerCore (--pods-per-core), when above 0, makes the node's pods
// capacity and allocatable, and what admission counts against,
// min(maxPods, podsPerCore × CPUs) (package nodestatus). Validation is the
// kubelet's: registryPullQPS, registryBurst and podsPerCore not negative,
// maxParallelImagePulls at least 1 and above 1 only with
// serializeImagePulls false, maxContainerRestartPeriod between 1s and
// 300s.
//
// # Validation and host checks
//
// Validate reports every invalid or refused field at once, each message
// starting with the field name ("port: must be between 1 and 65535, got
// 70000"). CheckHost, which Parse runs after validation, refuses to start on
// a host with swap enabled while failSwapOn is true, on cgroup v1 while
// failCgroupV1 is true, or with kernel tunables other than the kubelet's
// while protectKernelDefaults is true, matching the kubelet's behaviour.
// SetupKernelTunables, which the agent runs at start, sets those tunables
// when protectKernelDefaults is false.
package configs
