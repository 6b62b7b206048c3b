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
// except --provider-id and --fail-cgroupv1, which the kubelet does not
// deprecate. Kubelet flags nodeagent does not implement (--cert-dir,
// --feature-gates, --rotate-certificates, config flags of unimplemented
// fields such as --image-gc-high-threshold, and a few flags the kubelet has
// removed but old unit files still pass, such as
// --pod-infra-container-image) are accepted with their types and named in
// one warning as ignored. Two are errors where ignoring them would break the
// agent: --bootstrap-kubeconfig while the --kubeconfig file does not exist
// (TLS bootstrapping is not implemented), and --config-dir when it holds
// drop-in .conf files. A flag the kubelet does not have is still an error.
//
// # Decoding
//
// The file is read strictly first, as the kubelet does: unknown or duplicate
// fields are warnings, not errors, and the rest of the file still applies. A
// wrong or missing kind or apiVersion is an error, and so is a value of the
// wrong type, whose message names the field. Fields that exist in
// KubeletConfiguration but that nodeagent does not implement (for example
// cpuManagerPolicy or featureGates) are accepted and ignored, and listed in
// one warning so that nobody believes they took effect. Every error and
// warning about a file starts with its path.
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
// # Validation and host checks
//
// Validate reports every invalid field at once, each message starting with
// the field name ("port: must be between 1 and 65535, got 70000"). CheckHost,
// which Parse runs after validation, refuses to start on a host with swap
// enabled while failSwapOn is true, or on cgroup v1 while failCgroupV1 is
// true, matching the kubelet's behaviour with those defaults.
package configs
