package nodecerts

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/util/connrotation"
	"k8s.io/klog/v2"
)

// retirePeriod is how often the connections of a replaced certificate are
// closed once idle.
var retirePeriod = time.Minute

// currentCert is what the transport needs of the certificate manager.
type currentCert interface {
	Current() *tls.Certificate
}

// rotatingTransport sends each request with the manager's current client
// certificate. Each certificate gets its own generation of connections: a
// renewal starts a new generation for new requests and retires the
// previous one, whose running requests (watches, long reads) go on until
// they end; its idle connections are closed every retirePeriod, and all of
// them once its certificate expires.
type rotatingTransport struct {
	certs  currentCert
	base   *tls.Config // the server's CA and name; no client certificate
	stop   <-chan struct{}
	logger klog.Logger

	mu   sync.Mutex
	cert *tls.Certificate
	gen  *generation
}

// generation is the connections made with one certificate.
type generation struct {
	transport *http.Transport
	dialer    *connrotation.Dialer
}

func newRotatingTransport(logger klog.Logger, certs currentCert, base *tls.Config, first *tls.Certificate, stop <-chan struct{}) *rotatingTransport {
	t := &rotatingTransport{certs: certs, base: base, stop: stop, cert: first, logger: logger}
	t.gen = t.newGeneration(first)
	return t
}

func (t *rotatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.current().transport.RoundTrip(req)
}

// CloseIdleConnections closes the current generation's idle connections
// (utilnet.CloseIdleConnectionsFor reaches it through the clients).
func (t *rotatingTransport) CloseIdleConnections() {
	t.mu.Lock()
	g := t.gen
	t.mu.Unlock()
	g.transport.CloseIdleConnections()
}

// current returns the generation of the manager's current certificate,
// starting it if the certificate is new. An expired certificate (nil) keeps
// the last generation: its requests fail, and the client's expiry watch
// decides what happens.
func (t *rotatingTransport) current() *generation {
	// Read under the lock: a request that read the previous certificate
	// must not switch back to it after another switched forward.
	t.mu.Lock()
	defer t.mu.Unlock()
	cert := t.certs.Current()
	if cert == nil || cert == t.cert {
		return t.gen
	}
	old, oldCert := t.gen, t.cert
	t.gen, t.cert = t.newGeneration(cert), cert
	if cert.Leaf != nil {
		t.logger.Info("Client certificate renewed: new requests use it, running ones finish on the previous one", "notAfter", cert.Leaf.NotAfter)
	}
	go t.retire(old, oldCert)
	return t.gen
}

func (t *rotatingTransport) newGeneration(cert *tls.Certificate) *generation {
	tc := t.base.Clone()
	tc.Certificates = nil
	tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	d := connrotation.NewDialer((&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext)
	return &generation{
		dialer: d,
		transport: utilnet.SetTransportDefaults(&http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			TLSHandshakeTimeout: 10 * time.Second,
			TLSClientConfig:     tc,
			MaxIdleConnsPerHost: 25,
			DialContext:         d.DialContext,
		}),
	}
}

// retire closes g's connections as they become idle, and all of them when
// cert expires or the transport stops.
func (t *rotatingTransport) retire(g *generation, cert *tls.Certificate) {
	g.transport.CloseIdleConnections()
	notAfter := time.Now().Add(24 * time.Hour)
	if cert.Leaf != nil {
		notAfter = cert.Leaf.NotAfter
	}
	expiry := time.NewTimer(time.Until(notAfter))
	defer expiry.Stop()
	tick := time.NewTicker(retirePeriod)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			g.transport.CloseIdleConnections()
		case <-expiry.C:
			g.dialer.CloseAll()
			return
		case <-t.stop:
			g.dialer.CloseAll()
			return
		}
	}
}
