package configs

import (
	"errors"
	goflag "flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/klog/v2"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
)

// ErrHelp is returned by Parse when --help or -h was given; usage has then
// been printed to stderr and the program should exit 0. ErrVersion
// (version.go) is its twin for --version.
var ErrHelp = errors.New("help requested")

// Network plugins accepted by --network-plugin.
const (
	// NetworkPluginCNI: nodeagent runs the CNI plugins itself.
	NetworkPluginCNI = "cni"
	// NetworkPluginRuntime: the container runtime sets up pod networking.
	NetworkPluginRuntime = "runtime"
)

// Options is the agent's resolved configuration.
type Options struct {
	KubeconfigPath string // --kubeconfig
	// BootstrapKubeconfigPath (--bootstrap-kubeconfig) holds the credentials
	// (a bootstrap token) for requesting the client certificate when the
	// --kubeconfig file is missing or its certificate expired.
	BootstrapKubeconfigPath string
	// CertDir (--cert-dir) keeps the client and serving certificates the
	// agent requests (kubelet-client-current.pem, kubelet-server-current.pem)
	// and the self-signed serving certificate: <root-dir>/pki by default.
	CertDir                  string
	ConfigFile               string            // --config
	HostnameOverride         string            // --hostname-override
	NodeIP                   string            // --node-ip, raw (comma-separated for dual-stack)
	NodeIPs                  []net.IP          // --node-ip, parsed
	RootDir                  string            // --root-dir
	PodLogsDir               string            // config field podLogsDir
	ContainerRuntimeEndpoint string            // --container-runtime-endpoint, else config containerRuntimeEndpoint
	ImageServiceEndpoint     string            // --image-service-endpoint, else config, else the runtime endpoint
	NodeName                 string            // hostname-override, else os.Hostname(), lowercased, trimmed
	NodeLabels               map[string]string // --node-labels
	NetworkPlugin            string            // --network-plugin: "cni" or "runtime"
	// RedirectContainerStreaming: answer exec/attach/portForward with a 302
	// to the runtime's streaming URL instead of proxying it.
	RedirectContainerStreaming bool
	// DeclareWebSocketStreaming: declare ExtendWebSocketsToKubelet in the
	// node's status.declaredFeatures, so that the apiserver passes
	// WebSocket exec/attach/port-forward through for the agent to translate.
	DeclareWebSocketStreaming bool
	// ImageGCPeriod (--image-gc-period) is how often image garbage
	// collection runs: the kubelet's fixed 5 minutes by default.
	ImageGCPeriod time.Duration
	CNIConfDir    string // --cni-conf-dir
	CNIBinDir     string // --cni-bin-dir, comma-separated list allowed
	CNICacheDir   string // --cni-cache-dir

	// Config is the KubeletConfiguration, fully defaulted and validated, with
	// the flags that override it applied.
	Config *kubeletconfigv1beta1.KubeletConfiguration
}

// Seams for tests.
var (
	usageOutput io.Writer = os.Stderr
	osHostname            = os.Hostname
)

// Parse parses args (without the program name) into Options. klog's flags
// (-v, --vmodule, ...) are registered too. It returns warnings for the caller
// to log, and an error whose text names the offending flag or config field.
func Parse(args []string) (*Options, []string, error) {
	o := &Options{}
	fs := pflag.NewFlagSet("nodeagent", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	fs.StringVar(&o.KubeconfigPath, "kubeconfig", "", "Path to a kubeconfig file for the API server connection.")
	fs.StringVar(&o.ConfigFile, "config", "", "Path to a KubeletConfiguration file (kubelet.config.k8s.io/v1beta1). Without it the secure defaults apply.")
	fs.StringVar(&o.HostnameOverride, "hostname-override", "", "Node name to use instead of the host name.")
	fs.StringVar(&o.NodeIP, "node-ip", "", "IP address (or comma-separated IPv4,IPv6 pair) of the node.")
	fs.StringVar(&o.BootstrapKubeconfigPath, "bootstrap-kubeconfig", "", "Path to a kubeconfig file (usually with a bootstrap token) used to request the client certificate when the --kubeconfig file is missing or its certificate expired; the agent then writes --kubeconfig pointing at the certificate it obtained under --cert-dir.")
	fs.StringVar(&o.CertDir, "cert-dir", "", "Directory of the agent's TLS certificates: the client certificate from TLS bootstrapping, the rotated serving certificate, the self-signed one (default <root-dir>/pki).")
	fs.StringVar(&o.RootDir, "root-dir", DefaultRootDir, "Directory for nodeagent's state (pod volumes, plugins).")
	fs.StringVar(&o.ContainerRuntimeEndpoint, "container-runtime-endpoint", "", "CRI runtime endpoint; overrides the config field containerRuntimeEndpoint (default "+DefaultContainerRuntimeEndpoint+").")
	fs.StringVar(&o.ImageServiceEndpoint, "image-service-endpoint", "", "CRI image service endpoint; overrides the config field imageServiceEndpoint (default: the runtime endpoint).")
	fs.StringToStringVar(&o.NodeLabels, "node-labels", nil, "Labels to add when registering the node, key=value pairs separated by commas.")
	fs.BoolVar(&o.RedirectContainerStreaming, "redirect-container-streaming", false, "Answer exec, attach and port-forward with a redirect to the runtime's streaming server instead of proxying (for clients that talk to the node directly and can reach that server; the apiserver does not follow redirects).")
	fs.BoolVar(&o.DeclareWebSocketStreaming, "declare-websocket-streaming", false, "Declare the ExtendWebSocketsToKubelet feature in the node status, so that the apiserver sends WebSocket exec, attach and port-forward to the node (which translates them to the runtime's SPDY) instead of translating them itself.")
	fs.DurationVar(&o.ImageGCPeriod, "image-gc-period", 5*time.Minute, "How often image garbage collection runs (the kubelet's is a fixed 5m; imageGC* config fields set what it removes).")
	fs.StringVar(&o.NetworkPlugin, "network-plugin", NetworkPluginCNI, "Who sets up pod networking: \"cni\" (nodeagent runs CNI plugins) or \"runtime\" (the CRI runtime does).")
	fs.StringVar(&o.CNIConfDir, "cni-conf-dir", DefaultCNIConfDir, "Directory of CNI network configurations.")
	fs.StringVar(&o.CNIBinDir, "cni-bin-dir", DefaultCNIBinDir, "Directory, or comma-separated directories, of CNI plugin binaries.")
	fs.StringVar(&o.CNICacheDir, "cni-cache-dir", DefaultCNICacheDir, "Directory where CNI caches results.")
	kf := addKubeletFlags(fs)
	showVersion := addVersionFlag(fs)

	gfs := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(gfs)
	fs.AddGoFlagSet(gfs)

	fs.Usage = func() {
		_, _ = fmt.Fprintf(usageOutput, "Usage: nodeagent [flags]\n\nFlags:\n%s", fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, nil, ErrHelp
		}
		return nil, nil, err
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("unexpected arguments %q: nodeagent takes only flags", fs.Args())
	}
	if err := showVersion.print(); err != nil {
		return nil, nil, err
	}

	if err := kf.checkUnsupported(); err != nil {
		return nil, nil, err
	}

	// As the kubelet: the file, then the deprecated flags on top of it, then
	// defaults, then validation of the result.
	warnings := kf.ignored()
	o.Config = &kubeletconfigv1beta1.KubeletConfiguration{}
	if o.ConfigFile != "" {
		cfg, w, err := loadRaw(o.ConfigFile)
		warnings = append(warnings, w...)
		if err != nil {
			return nil, warnings, err
		}
		o.Config = cfg
	}
	flagNames, w, err := kf.apply(o.Config)
	warnings = append(warnings, w...)
	if err != nil {
		return nil, warnings, err
	}
	Default(o.Config)
	if err := o.resolve(fs); err != nil {
		return nil, warnings, err
	}
	if err := Validate(o.Config); err != nil {
		switch {
		case len(flagNames) > 0 && o.ConfigFile != "":
			return nil, warnings, fmt.Errorf("config file %s with flags %s: %w", o.ConfigFile, strings.Join(flagNames, ", "), err)
		case len(flagNames) > 0:
			return nil, warnings, fmt.Errorf("config from flags %s: %w", strings.Join(flagNames, ", "), err)
		case o.ConfigFile != "":
			return nil, warnings, fmt.Errorf("config file %s: %w", o.ConfigFile, err)
		}
		return nil, warnings, err
	}
	if err := CheckHost(o.Config); err != nil {
		return nil, warnings, err
	}
	return o, warnings, nil
}

// resolve applies flag overrides to the config, fills derived fields and
// validates the flags.
func (o *Options) resolve(fs *pflag.FlagSet) error {
	cfg := o.Config
	if fs.Changed("container-runtime-endpoint") {
		if o.ContainerRuntimeEndpoint == "" {
			return errors.New("--container-runtime-endpoint: must not be empty")
		}
		cfg.ContainerRuntimeEndpoint = o.ContainerRuntimeEndpoint
	}
	o.ContainerRuntimeEndpoint = cfg.ContainerRuntimeEndpoint
	if fs.Changed("image-service-endpoint") && o.ImageServiceEndpoint != "" {
		cfg.ImageServiceEndpoint = o.ImageServiceEndpoint
	}
	o.ImageServiceEndpoint = cfg.ImageServiceEndpoint
	if o.ImageServiceEndpoint == "" {
		o.ImageServiceEndpoint = o.ContainerRuntimeEndpoint
	}
	o.PodLogsDir = cfg.PodLogsDir

	if o.RootDir == "" {
		return errors.New("--root-dir: must not be empty")
	}
	if o.CertDir == "" {
		o.CertDir = filepath.Join(o.RootDir, "pki")
	}
	if o.KubeconfigPath == "" && o.BootstrapKubeconfigPath != "" {
		return errors.New("--bootstrap-kubeconfig: needs --kubeconfig, the file the agent writes once it has its client certificate")
	}
	switch o.NetworkPlugin {
	case NetworkPluginCNI, NetworkPluginRuntime:
	default:
		return fmt.Errorf("--network-plugin: must be %q or %q, got %q", NetworkPluginCNI, NetworkPluginRuntime, o.NetworkPlugin)
	}

	ips, err := parseNodeIPs(o.NodeIP)
	if err != nil {
		return fmt.Errorf("--node-ip: %w", err)
	}
	o.NodeIPs = ips

	if err := validateLabels(o.NodeLabels); err != nil {
		return fmt.Errorf("--node-labels: %w", err)
	}
	if o.NodeLabels == nil {
		o.NodeLabels = map[string]string{}
	}

	name := o.HostnameOverride
	if strings.TrimSpace(name) == "" {
		h, err := osHostname()
		if err != nil {
			return fmt.Errorf("--hostname-override not set and the host name is unknown: %w", err)
		}
		name = h
	}
	o.NodeName = strings.ToLower(strings.TrimSpace(name))
	if msgs := utilvalidation.IsDNS1123Subdomain(o.NodeName); len(msgs) > 0 {
		return fmt.Errorf("--hostname-override: node name %q is not valid: %s", o.NodeName, strings.Join(msgs, "; "))
	}
	return nil
}

// parseNodeIPs parses "", one IP, or a comma-separated IPv4/IPv6 pair.
func parseNodeIPs(s string) ([]net.IP, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > 2 {
		return nil, fmt.Errorf("at most two IPs (one IPv4, one IPv6) allowed, got %q", s)
	}
	ips := make([]net.IP, 0, len(parts))
	for _, p := range parts {
		ip := net.ParseIP(strings.TrimSpace(p))
		if ip == nil {
			return nil, fmt.Errorf("%q is not an IP address", strings.TrimSpace(p))
		}
		ips = append(ips, ip)
	}
	if len(ips) == 2 && (ips[0].To4() == nil) == (ips[1].To4() == nil) {
		return nil, fmt.Errorf("two IPs must be one IPv4 and one IPv6, got %q", s)
	}
	return ips, nil
}

func validateLabels(labels map[string]string) error {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if msgs := utilvalidation.IsQualifiedName(k); len(msgs) > 0 {
			return fmt.Errorf("invalid label key %q: %s", k, strings.Join(msgs, "; "))
		}
		if msgs := utilvalidation.IsValidLabelValue(labels[k]); len(msgs) > 0 {
			return fmt.Errorf("invalid value %q of label %q: %s", labels[k], k, strings.Join(msgs, "; "))
		}
	}
	return nil
}
