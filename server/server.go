package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/emicklei/go-restful/v3"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	cliflag "k8s.io/component-base/cli/flag"
	compbasemetrics "k8s.io/component-base/metrics"
	internalapi "k8s.io/cri-api/pkg/apis"
	"k8s.io/klog/v2"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
)

// Server limits, as the kubelet's.
const (
	maxHeaderBytes  = 1 << 20
	shutdownTimeout = 5 * time.Second
	// maxRequestBodyBytes bounds a request body. The kubelet sets no limit
	// of its own; no route of this API takes more than a pprof symbol
	// lookup, so it is the kube-apiserver's default limit (3 MiB).
	maxRequestBodyBytes = 3 << 20
)

// timeouts are the http.Server's; a field of Server so that tests can
// shorten them.
type timeouts struct {
	idle, readWrite, readHeader time.Duration
}

// defaultTimeouts are the kubelet's.
var defaultTimeouts = timeouts{
	idle:       90 * time.Second,
	readWrite:  4 * time.Hour,
	readHeader: 30 * time.Second,
}

// Config is what the server needs from the agent's configuration.
type Config struct {
	NodeName string
	// Address and Port of the authenticated TLS API (10250).
	Address string
	Port    int32
	// ReadOnlyPort serves an unauthenticated subset; 0 turns it off.
	ReadOnlyPort int32
	// HealthzBindAddress and HealthzPort: plain HTTP /healthz; port 0 is off.
	HealthzBindAddress string
	HealthzPort        int32
	// GetCertificate gives the serving certificate of the TLS API at
	// each handshake (package nodecerts: the configured files, reloaded
	// when they change, a rotated one, or a self-signed one).
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	RootDir        string
	PodLogsDir     string
	// PodCgroup is where a pod's cgroup is inside each hierarchy, false
	// for a pod the agent does not run; nil without cgroupsPerQOS (pods
	// have no cgroup of their own). The stats read pods' usage there.
	PodCgroup      func(types.UID) (string, bool)
	Authentication kubeletconfigv1beta1.KubeletAuthentication
	Authorization  kubeletconfigv1beta1.KubeletAuthorization
	// KubeletConfig is served by /configz.
	KubeletConfig *kubeletconfigv1beta1.KubeletConfiguration
	// RedirectStreaming answers exec, attach and portForward with a 302 to
	// the runtime's URL instead of proxying the stream.
	RedirectStreaming bool
	// ServerDisabled (enableServer: false) serves no TLS API on Port; the
	// read-only port and healthz still run, as in the kubelet.
	ServerDisabled bool
	// Debugging turns the kubelet's debugging handlers off.
	Debugging Debugging
	// TLS of the API: the minimum version (0 means TLS 1.2), the cipher
	// suites and the key exchange curves (nil means Go's defaults).
	TLSMinVersion       uint16
	TLSCipherSuites     []uint16
	TLSCurvePreferences []tls.CurveID
}

// Debugging says which of the kubelet's debugging handlers are off; the
// zero value serves them all. A handler that is off answers 405 Method Not
// Allowed on its paths, whatever the method, after authentication and
// authorization, as the kubelet does.
type Debugging struct {
	// Disabled (enableDebuggingHandlers: false) turns off /run/, /exec/,
	// /attach/, /portForward/, /containerLogs/, /runningpods/, /debug/ and
	// /logs/, and /configz is not served (404).
	Disabled bool
	// ProfilingDisabled (enableProfilingHandler: false): /debug/pprof/.
	ProfilingDisabled bool
	// SystemLogDisabled (enableSystemLogHandler: false): /logs/, which is
	// otherwise not served either (404).
	SystemLogDisabled bool
	// FlagsDisabled (enableDebugFlagsHandler: false): /debug/flags/v, which
	// is otherwise not served either (404).
	FlagsDisabled bool
}

// Deps are the agent's pieces the server uses.
type Deps struct {
	// Client makes TokenReviews and SubjectAccessReviews; give it a client
	// (rate limiter) of its own.
	Client kubernetes.Interface
	// Runtime is the CRI runtime service.
	Runtime internalapi.RuntimeService
	// Pods returns the pods bound to the node (the apiserver's objects,
	// mirror pods among them).
	Pods func() []*v1.Pod
	// NodePods returns the pods the node runs, as the kubelet's pod
	// manager has them: the apiserver's pods but mirror pods, and the
	// static pods under their own UID (the UID on their runtime objects).
	// /pods lists them; the stats and cAdvisor metrics find a pod's spec
	// in them. Optional: Pods serves instead.
	NodePods func() []*v1.Pod
	// StaticPod returns the static pod the agent runs under namespace and
	// name, false if it runs none: what a request that names a mirror pod
	// reaches (podByName). Its status, the one its worker started from
	// (its own mirror's), is the fallback of PodStatus. Optional: without
	// it a mirror pod is not found.
	StaticPod func(namespace, name string) (*v1.Pod, bool)
	// PodStatus returns the agent's own latest status of a pod, by the UID
	// the agent runs it under (a static pod's, never its mirror's), false
	// if it has none; it is what /containerLogs picks a container by, before
	// the pod object's status, as the kubelet reads its status manager's
	// copy before the apiserver's. Optional.
	PodStatus func(types.UID) (*v1.PodStatus, bool)
	// Images is the CRI image service; it gives the image filesystem's
	// usage in the summary. Optional.
	Images internalapi.ImageManagerService
	// PodCgroup names a pod's cgroup for /metrics/cadvisor's id label.
	// Optional: without it the label is /pod<uid>.
	PodCgroup func(*v1.Pod) string
	// ProbeMetrics are served on /metrics/probes (the prober's series).
	ProbeMetrics []compbasemetrics.Registerable
}

// Server serves the kubelet API.
type Server struct {
	cfg      Config
	deps     Deps
	auth     *authHandler
	secure   http.Handler
	readOnly http.Handler
	metrics  *metricsCollector
	stats    *statsProvider
	timeouts timeouts
}

// New builds the server: its routes, authenticator and authorizer. It
// opens no port; Run does.
func New(cfg Config, deps Deps) (*Server, error) {
	if deps.Runtime == nil || deps.Pods == nil {
		return nil, errors.New("server: runtime and pods are required")
	}
	if deps.NodePods == nil {
		deps.NodePods = deps.Pods
	}
	s := &Server{cfg: cfg, deps: deps, timeouts: defaultTimeouts}
	s.metrics = newMetricsCollector(deps.Runtime)
	s.stats = newStatsProvider(cfg, deps.Runtime, deps.Images, deps.NodePods)
	auth, err := newAuthHandler(cfg, deps.Client)
	if err != nil {
		return nil, err
	}
	s.auth = auth
	s.secure = auth.wrap(limitBody(s.secureContainer()))
	s.readOnly = limitBody(s.readOnlyContainer())
	return s, nil
}

// secureContainer holds every route of the authenticated port: what the
// read-only port serves and, unless debugging handlers are off, the rest.
func (s *Server) secureContainer() *restful.Container {
	c := s.readOnlyContainer()
	d := s.cfg.Debugging
	if d.Disabled {
		addDisabled(c, "Debug endpoints are disabled.", debuggingPaths...)
		return c
	}
	s.addRunningPods(c)
	s.addConfigz(c)
	s.addContainerLogs(c)
	s.addStreaming(c)
	if d.ProfilingDisabled {
		addDisabled(c, "profiling endpoint is disabled.", pprofBasePath)
	} else {
		s.addPprof(c)
	}
	if d.SystemLogDisabled {
		addDisabled(c, "logs endpoint is disabled.", logsPath)
	}
	if d.FlagsDisabled {
		addDisabled(c, "flags endpoint is disabled.", debugFlagsPath)
	}
	return c
}

// readOnlyContainer holds what the kubelet's read-only port serves.
func (s *Server) readOnlyContainer() *restful.Container {
	c := restful.NewContainer()
	c.ServeMux = http.NewServeMux()
	c.Router(restful.CurlyRouter{})
	s.addHealthz(c)
	s.addPods(c)
	s.addStats(c)
	s.addMetrics(c)
	s.addResourceMetrics(c)
	s.addCadvisorMetrics(c)
	s.addProbeMetrics(c)
	return c
}

// Handler returns the authenticated API's handler (for tests).
func (s *Server) Handler() http.Handler { return s.secure }

// Run serves the TLS API, the read-only port if configured and the local
// healthz until ctx ends. It fails if a port cannot be opened.
func (s *Server) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithName("server")
	ctx = klog.NewContext(ctx, logger)
	type server struct {
		name string
		srv  *http.Server
		tls  bool
	}
	var servers []server
	if s.cfg.ServerDisabled {
		logger.Info("Not serving the node API: enableServer is false", "port", s.cfg.Port)
	} else {
		if err := s.auth.start(ctx); err != nil {
			return err
		}
		tlsCfg, err := s.tlsConfig(ctx)
		if err != nil {
			return err
		}
		api := server{name: "api", tls: true, srv: s.httpServer(ctx, s.cfg.Address, s.cfg.Port, s.secure)}
		api.srv.TLSConfig = tlsCfg
		servers = append(servers, api)
	}
	if s.cfg.ReadOnlyPort > 0 {
		servers = append(servers, server{name: "read-only", srv: s.httpServer(ctx, s.cfg.Address, s.cfg.ReadOnlyPort, s.readOnly)})
	}
	if s.cfg.HealthzPort > 0 {
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
		servers = append(servers, server{name: "healthz", srv: s.httpServer(ctx, s.cfg.HealthzBindAddress, s.cfg.HealthzPort, mux)})
	}

	errs := make(chan error, len(servers))
	for _, sv := range servers {
		ln, err := net.Listen("tcp", sv.srv.Addr)
		if err != nil {
			for _, o := range servers {
				_ = o.srv.Close()
			}
			return fmt.Errorf("listen on %s for the %s server: %w", sv.srv.Addr, sv.name, err)
		}
		logger.Info("Serving", "server", sv.name, "address", sv.srv.Addr)
		go func() {
			var err error
			if sv.tls {
				err = sv.srv.ServeTLS(ln, "", "")
			} else {
				err = sv.srv.Serve(ln)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("%s server: %w", sv.name, err)
				return
			}
			errs <- nil
		}()
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
	}
	// Streams may last hours: close rather than wait for them.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	for _, sv := range servers {
		if err := sv.srv.Shutdown(sctx); err != nil {
			_ = sv.srv.Close()
		}
	}
	return runErr
}

func (s *Server) httpServer(ctx context.Context, addr string, port int32, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              net.JoinHostPort(addr, strconv.Itoa(int(port))),
		Handler:           h,
		IdleTimeout:       s.timeouts.idle,
		ReadTimeout:       s.timeouts.readWrite,
		WriteTimeout:      s.timeouts.readWrite,
		ReadHeaderTimeout: s.timeouts.readHeader,
		MaxHeaderBytes:    maxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
}

// limitBody refuses a request whose declared body is longer than
// maxRequestBodyBytes with 413, and stops reading an undeclared (chunked)
// one there: the handler's read fails and net/http closes the connection
// after the response. Without it /debug/pprof/symbol reads a POST body to
// its end and buffers its answer, which grows with the body.
func limitBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxRequestBodyBytes {
			// net/http closes the connection rather than read a large
			// unread body.
			http.Error(w, fmt.Sprintf("request body of %d bytes is larger than %d", r.ContentLength, maxRequestBodyBytes), http.StatusRequestEntityTooLarge)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, maxRequestBodyBytes)
		}
		h.ServeHTTP(w, r)
	})
}

// hasContainer reports whether the pod spec names the container.
func hasContainer(pod *v1.Pod, name string) bool {
	for _, c := range pod.Spec.Containers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

// tlsConfig is the TLS API's configuration.
func (s *Server) tlsConfig(ctx context.Context) (*tls.Config, error) {
	if s.cfg.GetCertificate == nil {
		return nil, errors.New("no serving certificate")
	}
	minVersion := s.cfg.TLSMinVersion
	if minVersion == 0 {
		minVersion = tls.VersionTLS12
	}
	logger := klog.FromContext(ctx)
	insecure := cliflag.InsecureTLSCiphers()
	for name, id := range insecure {
		if slices.Contains(s.cfg.TLSCipherSuites, id) {
			logger.Info("Warning: insecure TLS cipher suite configured", "cipher", name)
		}
	}
	if minVersion == tls.VersionTLS13 && len(s.cfg.TLSCipherSuites) > 0 {
		logger.Info("Warning: TLS 1.3 cipher suites are not configurable, ignoring tlsCipherSuites")
	}
	return &tls.Config{
		MinVersion:       minVersion,
		CipherSuites:     s.cfg.TLSCipherSuites,
		CurvePreferences: s.cfg.TLSCurvePreferences,
		GetCertificate:   s.cfg.GetCertificate,
		// The x509 authenticator verifies client certificates against the
		// client CA; the handshake only asks for one.
		ClientAuth: tls.RequestClientCert,
	}, nil
}
