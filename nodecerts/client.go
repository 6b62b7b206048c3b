package nodecerts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/transport"
	"k8s.io/client-go/util/certificate"
	"k8s.io/client-go/util/keyutil"
	"k8s.io/klog/v2"
)

// clientPairPrefix names the client certificate files in the cert dir, as
// the kubelet names them.
const clientPairPrefix = "kubelet-client"

// Timings of the client identity, the kubelet's.
var (
	// expiredExitAfter is how long the agent goes on without a valid client
	// certificate while the apiserver answers before it gives up.
	expiredExitAfter = 5 * time.Minute
	// checkPeriod is how often the certificate's validity is checked.
	checkPeriod = 10 * time.Second
	// newClientset is a seam for tests.
	newClientset = func(c *rest.Config) (kubernetes.Interface, error) { return kubernetes.NewForConfig(c) }
)

// ClientOptions say where the agent's client identity comes from.
type ClientOptions struct {
	KubeconfigPath          string // --kubeconfig
	BootstrapKubeconfigPath string // --bootstrap-kubeconfig, may be empty
	CertDir                 string // --cert-dir
	NodeName                string
	// Rotate (rotateCertificates) renews the client certificate before it
	// expires.
	Rotate bool
}

// Client is the agent's identity toward the apiserver.
type Client struct {
	// Config is the rest config every API client of the agent derives
	// from. With rotation its transport follows the certificate manager,
	// and it carries no TLS files or data of its own.
	Config *rest.Config

	manager certificate.Manager // nil without rotation
	stop    context.CancelFunc  // stops the manager; nil without rotation
	failed  chan error
}

// Stop stops the certificate manager; ending NewClient's context does too.
func (c *Client) Stop() {
	if c.stop != nil {
		c.stop()
	}
}

// Failed delivers an error when the client certificate expired and could
// not be renewed while the apiserver answers: the agent cannot work on and
// should stop. Without rotation nothing is ever delivered.
func (c *Client) Failed() <-chan error { return c.failed }

// NewClient loads or obtains the client identity. With bootstrapping it
// waits, until ctx ends, for the first certificate to be issued. With
// rotation the certificate manager runs until ctx ends.
func NewClient(ctx context.Context, o ClientOptions) (*Client, error) {
	logger := klog.FromContext(ctx)
	c := &Client{failed: make(chan error, 1)}
	if o.BootstrapKubeconfigPath == "" && !o.Rotate {
		rc, err := loadKubeconfig(o.KubeconfigPath)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", o.KubeconfigPath, err)
		}
		c.Config = rc
		return c, nil
	}

	// certConfig requests certificates while there is none; userConfig is
	// what the agent uses, and requests renewals.
	var certConfig, userConfig *rest.Config
	usable, reason := usableKubeconfig(o.KubeconfigPath)
	switch {
	case o.BootstrapKubeconfigPath == "" || usable:
		if !usable {
			// The cert dir may still hold a valid renewed pair; if not,
			// waitForCertificate gives up after expiredExitAfter.
			logger.Info("Warning: the kubeconfig's client certificate cannot be used and there is no --bootstrap-kubeconfig to get another", "kubeconfig", o.KubeconfigPath, "reason", reason)
		}
		rc, err := loadKubeconfig(o.KubeconfigPath)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", o.KubeconfigPath, err)
		}
		certConfig, userConfig = rc, rc
	default:
		boot, err := loadKubeconfig(o.BootstrapKubeconfigPath)
		if err != nil {
			return nil, fmt.Errorf("bootstrap kubeconfig %s: %w", o.BootstrapKubeconfigPath, err)
		}
		if err := os.MkdirAll(o.CertDir, 0o700); err != nil {
			return nil, fmt.Errorf("create cert dir: %w", err)
		}
		pemPath := filepath.Join(o.CertDir, clientPairPrefix+"-current.pem")
		if err := writeKubeconfig(o.KubeconfigPath, boot, pemPath); err != nil {
			return nil, fmt.Errorf("write kubeconfig %s: %w", o.KubeconfigPath, err)
		}
		logger.Info("Bootstrapping the client certificate", "reason", reason, "bootstrapKubeconfig", o.BootstrapKubeconfigPath, "kubeconfig", o.KubeconfigPath, "certDir", o.CertDir)
		certConfig = boot
		userConfig = rest.AnonymousClientConfig(boot)
		userConfig.CertFile, userConfig.KeyFile = pemPath, pemPath
	}
	if !o.Rotate && certConfig == userConfig {
		// A usable kubeconfig and no rotation: nothing to request.
		c.Config = userConfig
		return c, nil
	}

	fileStore, err := certificate.NewFileStoreWithLogger(logger, clientPairPrefix, o.CertDir, o.CertDir, userConfig.CertFile, userConfig.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("client certificate store in %s: %w", o.CertDir, err)
	}
	store := tolerantStore{FileStore: fileStore, logger: logger, what: "client"}
	mctx, stop := context.WithCancel(ctx)
	clientsetFor := newClientset // the manager's goroutine must not read the seam
	m, err := certificate.NewManager(&certificate.Config{
		Ctx:  &mctx,
		Name: "client",
		ClientsetFn: func(current *tls.Certificate) (kubernetes.Interface, error) {
			// The current certificate renews itself (selfnodeclient);
			// without one, the bootstrap credentials ask.
			if current == nil {
				return clientsetFor(certConfig)
			}
			rc, err := withCertificate(userConfig, current)
			if err != nil {
				return nil, err
			}
			return clientsetFor(rc)
		},
		Template: &x509.CertificateRequest{Subject: pkix.Name{
			CommonName:   "system:node:" + o.NodeName,
			Organization: []string{"system:nodes"},
		}},
		SignerName:              certificatesv1.KubeAPIServerClientKubeletSignerName,
		GetUsages:               certificate.DefaultKubeletClientGetUsages,
		BootstrapCertificatePEM: userConfig.CertData,
		BootstrapKeyPEM:         userConfig.KeyData,
		CertificateStore:        store,
		CertificateRenewFailure: clientRenewFailures,
	})
	if err != nil {
		stop()
		return nil, fmt.Errorf("client certificate manager: %w", err)
	}
	m.Start()
	first, err := waitForCertificate(ctx, m, "client")
	if err != nil {
		stop()
		return nil, err
	}
	if want := "system:node:" + o.NodeName; first.Leaf != nil && first.Leaf.Subject.CommonName != want {
		stop()
		return nil, fmt.Errorf("the client certificate in %s is for %q, not %q (another node name or machine?): remove %s to bootstrap again",
			o.CertDir, first.Leaf.Subject.CommonName, want, filepath.Join(o.CertDir, clientPairPrefix+"-current.pem"))
	}

	if !o.Rotate {
		// Bootstrapped once: the kubeconfig now points at the stored pair.
		stop()
		rc, err := loadKubeconfig(o.KubeconfigPath)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", o.KubeconfigPath, err)
		}
		c.Config = rc
		return c, nil
	}

	setClientManager(m)
	rc := rest.AnonymousClientConfig(userConfig)
	base, err := rest.TLSConfigFor(rc)
	if err != nil {
		stop()
		return nil, fmt.Errorf("TLS configuration of %s: %w", o.KubeconfigPath, err)
	}
	if base == nil {
		base = &tls.Config{}
	}
	rc.Transport = newRotatingTransport(logger, m, base, first, mctx.Done())
	// The transport enforces these now.
	rc.TLSClientConfig = rest.TLSClientConfig{}
	c.Config, c.manager, c.stop = rc, m, stop
	go c.watchExpiry(mctx)
	return c, nil
}

// waitForCertificate waits until the manager has a certificate, which it
// has at once when one is stored, or after the CSR was issued. It gives up
// after expiredExitAfter while the apiserver answers (a bad bootstrap
// token, CSRs nobody approves), as the kubelet's transport does.
func waitForCertificate(ctx context.Context, m certificate.Manager, what string) (*tls.Certificate, error) {
	logger := klog.FromContext(ctx)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	lastLog := start
	for {
		if c := m.Current(); c != nil {
			if time.Since(start) > time.Second {
				logger.Info("Certificate issued", "certificate", what, "waited", time.Since(start).Round(time.Millisecond))
			}
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the %s certificate: %w", what, context.Cause(ctx))
		case now := <-tick.C:
			waited := now.Sub(start)
			if waited >= expiredExitAfter && m.ServerHealthy() {
				return nil, fmt.Errorf("no %s certificate after %s while the apiserver answers: check the bootstrap credentials and that the node's certificate signing requests are approved (kubectl get csr)", what, waited.Round(time.Second))
			}
			if now.Sub(lastLog) >= 30*time.Second {
				lastLog = now
				logger.Info("No valid certificate yet: a certificate signing request must be approved and issued", "certificate", what, "waited", waited.Round(time.Second))
			}
		}
	}
}

// watchExpiry reports a client certificate that expired and was not
// renewed within expiredExitAfter while the apiserver answers.
func (c *Client) watchExpiry(ctx context.Context) {
	lastValid := time.Now()
	tick := time.NewTicker(checkPeriod)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if c.manager.Current() != nil {
				lastValid = now
				continue
			}
			if now.Sub(lastValid) < expiredExitAfter {
				continue
			}
			if !c.manager.ServerHealthy() {
				klog.FromContext(ctx).Error(nil, "No valid client certificate and the apiserver does not answer; waiting for it before giving up", "since", lastValid)
				continue
			}
			c.failed <- fmt.Errorf("no valid client certificate since %s and none could be obtained while the apiserver answers: restart the agent to bootstrap again", lastValid.Format(time.RFC3339))
			return
		}
	}
}

// withCertificate is cfg authenticated by cert instead of its own
// credentials.
func withCertificate(cfg *rest.Config, cert *tls.Certificate) (*rest.Config, error) {
	rc := rest.AnonymousClientConfig(cfg)
	var certPEM []byte
	for _, der := range cert.Certificate {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(cert.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("encode client key: %w", err)
	}
	rc.CertData, rc.KeyData = certPEM, keyPEM
	return rc, nil
}

// loadKubeconfig reads a kubeconfig file, its current context.
func loadKubeconfig(path string) (*rest.Config, error) {
	if path == "" {
		return nil, errors.New("no kubeconfig given (--kubeconfig)")
	}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: path}, &clientcmd.ConfigOverrides{}).ClientConfig()
}

// usableKubeconfig tells whether the kubeconfig file can be used as it is:
// it exists, loads, and its client certificates have not expired. If not,
// reason says why.
func usableKubeconfig(path string) (ok bool, reason string) {
	if _, err := os.Stat(path); err != nil {
		return false, err.Error()
	}
	rc, err := loadKubeconfig(path)
	if err != nil {
		return false, err.Error()
	}
	tc, err := rc.TransportConfig()
	if err != nil {
		return false, err.Error()
	}
	// Loads the certificate files into tc as a side effect.
	if _, err := transport.TLSConfigFor(tc); err != nil {
		return false, err.Error()
	}
	if len(tc.TLS.CertData) == 0 {
		// Token or other credentials: nothing expires here.
		return rc.BearerToken != "" || rc.BearerTokenFile != "" || rc.ExecProvider != nil || rc.AuthProvider != nil, "no client certificate"
	}
	// The transport loads the pair only at the first handshake: a
	// truncated or damaged file (a crash during a rotation) would pass
	// here and fail every request later.
	if _, err := tls.X509KeyPair(tc.TLS.CertData, tc.TLS.KeyData); err != nil {
		return false, fmt.Sprintf("client certificate %s and key %s: %v", rc.CertFile, rc.KeyFile, err)
	}
	rest := tc.TLS.CertData
	now := time.Now()
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return false, fmt.Sprintf("client certificate: %v", err)
		}
		if now.After(cert.NotAfter) {
			return false, fmt.Sprintf("client certificate expired at %s", cert.NotAfter.Format(time.RFC3339))
		}
	}
	return true, ""
}

// writeKubeconfig writes the agent's kubeconfig: the bootstrap
// kubeconfig's cluster, authenticated by the certificate and key in
// pemPath.
func writeKubeconfig(path string, boot *rest.Config, pemPath string) error {
	cluster := &clientcmdapi.Cluster{
		Server:                boot.Host,
		InsecureSkipTLSVerify: boot.Insecure,
		TLSServerName:         boot.ServerName,
	}
	if boot.CAFile != "" {
		cluster.CertificateAuthority = boot.CAFile
	} else {
		cluster.CertificateAuthorityData = boot.CAData
	}
	cfg := clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"default-cluster": cluster},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"default-auth": {ClientCertificate: pemPath, ClientKey: pemPath}},
		Contexts:       map[string]*clientcmdapi.Context{"default-context": {Cluster: "default-cluster", AuthInfo: "default-auth", Namespace: "default"}},
		CurrentContext: "default-context",
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return clientcmd.WriteToFile(cfg, path)
}
