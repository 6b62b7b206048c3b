package nodecerts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/certificate"
	"k8s.io/klog/v2"
)

// serverPairPrefix names the serving certificate files in the cert dir, as
// the kubelet names them.
const serverPairPrefix = "kubelet-server"

// reloadCheckPeriod is how often the tlsCertFile pair is checked for
// changes, at most: on a handshake, never in the background.
var reloadCheckPeriod = 10 * time.Second

// ServingOptions say where the node API's serving certificate comes from.
type ServingOptions struct {
	CertDir string
	// CertFile and KeyFile (tlsCertFile, tlsPrivateKeyFile): the pair to
	// serve with, read again when it changes; with Bootstrap, the pair to
	// start from until one is issued.
	CertFile, KeyFile string
	// Bootstrap (serverTLSBootstrap) requests the certificate from the
	// apiserver through Client and rotates it.
	Bootstrap bool
	Client    kubernetes.Interface
	NodeName  string
	// Address is the address the API listens on, an IP of the self-signed
	// certificate when it is a specific one.
	Address string
	// Addresses are the node's current addresses, the SANs of a requested
	// certificate.
	Addresses func() []v1.NodeAddress
}

// Serving provides the node API's certificate for each TLS handshake.
type Serving struct {
	get func() (*tls.Certificate, error)
}

// GetCertificate is the tls.Config hook.
func (s *Serving) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.get()
}

// NewServing sets up the serving certificate. With Bootstrap the
// certificate manager runs until ctx ends.
func NewServing(ctx context.Context, o ServingOptions) (*Serving, error) {
	logger := klog.FromContext(ctx)
	if !o.Bootstrap && o.CertFile != "" && o.KeyFile != "" {
		f, err := newFilePair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, err
		}
		return &Serving{get: func() (*tls.Certificate, error) { return f.current(ctx) }}, nil
	}
	certFile, keyFile, err := selfSignedCert(ctx, o.CertDir, o.NodeName, o.Address)
	if err != nil {
		return nil, err
	}
	selfSigned, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load serving certificate %s: %w", certFile, err)
	}
	if !o.Bootstrap {
		return &Serving{get: func() (*tls.Certificate, error) { return &selfSigned, nil }}, nil
	}

	fileStore, err := certificate.NewFileStoreWithLogger(logger, serverPairPrefix, o.CertDir, o.CertDir, o.CertFile, o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("serving certificate store in %s: %w", o.CertDir, err)
	}
	store := tolerantStore{FileStore: fileStore, logger: logger, what: "serving"}
	m, err := certificate.NewManager(&certificate.Config{
		Ctx:                     &ctx,
		Name:                    "serving",
		ClientsetFn:             func(*tls.Certificate) (kubernetes.Interface, error) { return o.Client, nil },
		GetTemplate:             servingTemplate(o.NodeName, o.Addresses),
		SignerName:              certificatesv1.KubeletServingSignerName,
		GetUsages:               certificate.DefaultKubeletServingGetUsages,
		CertificateStore:        store,
		CertificateRotation:     serverRotationAge,
		CertificateRenewFailure: serverRenewFailures,
	})
	if err != nil {
		return nil, fmt.Errorf("serving certificate manager: %w", err)
	}
	setServerManager(m)
	m.Start()
	if m.Current() == nil {
		logger.Info("Serving with the self-signed certificate until the serving certificate signing request is approved (kubectl certificate approve)", "selfSigned", certFile)
	}
	return &Serving{get: func() (*tls.Certificate, error) {
		if c := m.Current(); c != nil {
			return c, nil
		}
		return &selfSigned, nil
	}}, nil
}

// servingTemplate is the serving CSR's template, the node's addresses as
// SANs; nil (no request yet) while the node has no IP address.
func servingTemplate(nodeName string, addresses func() []v1.NodeAddress) func() *x509.CertificateRequest {
	return func() *x509.CertificateRequest {
		var dnsNames []string
		var ips []net.IP
		for _, a := range addresses() {
			ip := net.ParseIP(a.Address)
			switch a.Type {
			case v1.NodeHostName, v1.NodeInternalDNS, v1.NodeExternalDNS:
				if ip != nil && a.Type == v1.NodeHostName {
					ips = append(ips, ip)
				} else if ip == nil && a.Address != "" {
					dnsNames = append(dnsNames, a.Address)
				}
			case v1.NodeInternalIP, v1.NodeExternalIP:
				if ip != nil {
					ips = append(ips, ip)
				}
			}
		}
		if len(ips) == 0 {
			return nil
		}
		slices.Sort(dnsNames)
		dnsNames = slices.Compact(dnsNames)
		slices.SortFunc(ips, func(a, b net.IP) int { return slices.Compare(a.To16(), b.To16()) })
		ips = slices.CompactFunc(ips, net.IP.Equal)
		return &x509.CertificateRequest{
			Subject:     pkix.Name{CommonName: "system:node:" + nodeName, Organization: []string{"system:nodes"}},
			DNSNames:    dnsNames,
			IPAddresses: ips,
		}
	}
}

// filePair is a certificate and key read from files, read again when
// either file changes.
type filePair struct {
	certFile, keyFile string

	mu        sync.Mutex
	cert      *tls.Certificate
	stamp     [2]fileStamp
	lastCheck time.Time
}

type fileStamp struct {
	mtime time.Time
	size  int64
}

func newFilePair(certFile, keyFile string) (*filePair, error) {
	f := &filePair{certFile: certFile, keyFile: keyFile}
	stamp, err := f.stamps()
	if err == nil {
		err = f.load(stamp)
	}
	if err != nil {
		return nil, fmt.Errorf("load serving certificate %s: %w", certFile, err)
	}
	return f, nil
}

func (f *filePair) stamps() ([2]fileStamp, error) {
	var s [2]fileStamp
	for i, p := range []string{f.certFile, f.keyFile} {
		fi, err := os.Stat(p)
		if err != nil {
			return s, err
		}
		s[i] = fileStamp{fi.ModTime(), fi.Size()}
	}
	return s, nil
}

func (f *filePair) load(stamp [2]fileStamp) error {
	c, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		return err
	}
	f.cert, f.stamp = &c, stamp
	return nil
}

// current returns the pair, reloading it first if a file changed since
// the last check. A pair that fails to load keeps the previous one.
func (f *filePair) current(ctx context.Context) (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now := time.Now(); now.Sub(f.lastCheck) >= reloadCheckPeriod {
		f.lastCheck = now
		if stamp, err := f.stamps(); err == nil && stamp != f.stamp {
			if err := f.load(stamp); err != nil {
				klog.FromContext(ctx).Error(err, "Serving certificate changed but does not load, keeping the previous one", "cert", f.certFile, "key", f.keyFile)
			} else {
				klog.FromContext(ctx).Info("Serving certificate reloaded", "cert", f.certFile)
			}
		}
	}
	return f.cert, nil
}
