package nodecerts

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/keyutil"
	"k8s.io/klog/v2"
)

// testCA signs what the fake apiserver issues.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// sign issues a certificate for csrPEM valid from now for lifetime.
func (ca *testCA) sign(t *testing.T, csrPEM []byte, lifetime time.Duration, ext x509.ExtKeyUsage) []byte {
	t.Helper()
	block, _ := pem.Decode(csrPEM)
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: req.Subject, DNSNames: req.DNSNames, IPAddresses: req.IPAddresses,
		NotBefore: time.Now().Add(-time.Second), NotAfter: time.Now().Add(lifetime),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{ext},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, req.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// fakeSigner is an apiserver with kube-controller-manager's approver and
// signer: every CSR is approved and issued at creation.
type fakeSigner struct {
	t        *testing.T
	ca       *testCA
	lifetime time.Duration
	client   *fake.Clientset

	mu   sync.Mutex
	csrs []*certificatesv1.CertificateSigningRequest
	// users are the rest configs that created each CSR: who asked.
	users []*rest.Config
}

func newFakeSigner(t *testing.T, lifetime time.Duration) *fakeSigner {
	f := &fakeSigner{t: t, ca: newTestCA(t), lifetime: lifetime, client: fake.NewClientset()}
	f.client.PrependReactor("create", "certificatesigningrequests", func(a k8stesting.Action) (bool, runtime.Object, error) {
		csr := a.(k8stesting.CreateAction).GetObject().(*certificatesv1.CertificateSigningRequest)
		if csr.Name == "" {
			csr.Name = csr.GenerateName + time.Now().Format("150405.000000000")
		}
		ext := x509.ExtKeyUsageClientAuth
		if csr.Spec.SignerName == certificatesv1.KubeletServingSignerName {
			ext = x509.ExtKeyUsageServerAuth
		}
		csr.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: v1.ConditionTrue}}
		csr.Status.Certificate = f.ca.sign(t, csr.Spec.Request, f.lifetime, ext)
		f.mu.Lock()
		// The fake lists ignore field selectors: keep only the newest CSR
		// for the requester to find.
		for _, old := range f.csrs {
			_ = f.client.Tracker().Delete(certificatesv1.SchemeGroupVersion.WithResource("certificatesigningrequests"), "", old.Name)
		}
		f.csrs = append(f.csrs, csr.DeepCopy())
		f.mu.Unlock()
		return false, nil, nil
	})
	newClientset = func(c *rest.Config) (kubernetes.Interface, error) {
		f.mu.Lock()
		f.users = append(f.users, rest.CopyConfig(c))
		f.mu.Unlock()
		return f.client, nil
	}
	t.Cleanup(func() {
		newClientset = func(c *rest.Config) (kubernetes.Interface, error) { return kubernetes.NewForConfig(c) }
	})
	return f
}

func (f *fakeSigner) issued() ([]*certificatesv1.CertificateSigningRequest, []*rest.Config) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.csrs), slices.Clone(f.users)
}

// writeBootstrapKubeconfig writes a token kubeconfig for the fake
// apiserver.
func writeBootstrapKubeconfig(t *testing.T, dir string, ca []byte) string {
	t.Helper()
	p := filepath.Join(dir, "bootstrap-kubelet.conf")
	cfg := clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"c": {Server: "https://192.0.2.10:6443", CertificateAuthorityData: ca}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"tls-bootstrap-token-user": {Token: "abcdef.0123456789abcdef"}},
		Contexts:       map[string]*clientcmdapi.Context{"ctx": {Cluster: "c", AuthInfo: "tls-bootstrap-token-user"}},
		CurrentContext: "ctx",
	}
	if err := clientcmd.WriteToFile(cfg, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func leafOf(t *testing.T, pemData []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(pemData)
	if block == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A node with only a bootstrap token gets its client certificate from a
// CSR and a kubeconfig pointing at it, stored as the kubelet stores it.
func TestBootstrapOnce(t *testing.T) {
	dir := t.TempDir()
	f := newFakeSigner(t, time.Hour)
	o := ClientOptions{
		KubeconfigPath:          filepath.Join(dir, "kubelet.conf"),
		BootstrapKubeconfigPath: writeBootstrapKubeconfig(t, dir, f.ca.pem),
		CertDir:                 filepath.Join(dir, "pki"),
		NodeName:                "n1",
	}
	c, err := NewClient(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	csrs, users := f.issued()
	if len(csrs) != 1 {
		t.Fatalf("%d CSRs, want 1", len(csrs))
	}
	csr := csrs[0]
	if csr.Spec.SignerName != certificatesv1.KubeAPIServerClientKubeletSignerName {
		t.Errorf("signer %q", csr.Spec.SignerName)
	}
	if !slices.Contains(csr.Spec.Usages, certificatesv1.UsageClientAuth) || !slices.Contains(csr.Spec.Usages, certificatesv1.UsageDigitalSignature) {
		t.Errorf("usages %v", csr.Spec.Usages)
	}
	if users[0].BearerToken != "abcdef.0123456789abcdef" {
		t.Errorf("the CSR was not made with the bootstrap token: %+v", users[0])
	}
	block, _ := pem.Decode(csr.Spec.Request)
	req, _ := x509.ParseCertificateRequest(block.Bytes)
	if req.Subject.CommonName != "system:node:n1" || !slices.Equal(req.Subject.Organization, []string{"system:nodes"}) {
		t.Errorf("subject %v", req.Subject)
	}

	current := filepath.Join(o.CertDir, "kubelet-client-current.pem")
	if fi, err := os.Lstat(current); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("%s is not the link to the pair: %v %v", current, fi, err)
	}
	// The key, the pair and the kubeconfig are the node's secrets.
	for path, want := range map[string]os.FileMode{o.CertDir: 0o700, current: 0o600, o.KubeconfigPath: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Error(err)
		} else if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
	data, err := os.ReadFile(current)
	if err != nil {
		t.Fatal(err)
	}
	if leafOf(t, data).Subject.CommonName != "system:node:n1" {
		t.Error("stored certificate is not the node's")
	}
	if _, err := keyutil.ParsePrivateKeyPEM(data); err != nil {
		t.Errorf("no key in %s: %v", current, err)
	}
	kc, err := clientcmd.LoadFromFile(o.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	auth := kc.AuthInfos[kc.Contexts[kc.CurrentContext].AuthInfo]
	if auth.ClientCertificate != current || auth.ClientKey != current || auth.Token != "" {
		t.Errorf("kubeconfig auth %+v", auth)
	}
	if c.Config.CertFile != current || c.Config.Host != "https://192.0.2.10:6443" {
		t.Errorf("client config %s %s", c.Config.Host, c.Config.CertFile)
	}

	// Started again, the written kubeconfig is used as it is.
	if _, err := NewClient(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if csrs, _ := f.issued(); len(csrs) != 1 {
		t.Errorf("%d CSRs after a restart, want still 1", len(csrs))
	}
}

// An expired kubeconfig certificate is bootstrapped again.
func TestBootstrapExpiredKubeconfig(t *testing.T) {
	dir := t.TempDir()
	f := newFakeSigner(t, time.Hour)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "system:node:n1"},
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, f.ca.cert, key.Public(), f.ca.key)
	keyPEM, _ := keyutil.MarshalPrivateKeyToPEM(key)
	old := filepath.Join(dir, "old.pem")
	if err := os.WriteFile(old, append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(dir, "kubelet.conf")
	if err := clientcmd.WriteToFile(clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"c": {Server: "https://192.0.2.10:6443", CertificateAuthorityData: f.ca.pem}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"u": {ClientCertificate: old, ClientKey: old}},
		Contexts:       map[string]*clientcmdapi.Context{"ctx": {Cluster: "c", AuthInfo: "u"}},
		CurrentContext: "ctx",
	}, kubeconfig); err != nil {
		t.Fatal(err)
	}
	if ok, reason := usableKubeconfig(kubeconfig); ok || reason == "" {
		t.Errorf("expired kubeconfig usable: %v %q", ok, reason)
	}
	_, err := NewClient(context.Background(), ClientOptions{
		KubeconfigPath: kubeconfig, BootstrapKubeconfigPath: writeBootstrapKubeconfig(t, dir, f.ca.pem),
		CertDir: filepath.Join(dir, "pki"), NodeName: "n1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if csrs, _ := f.issued(); len(csrs) != 1 {
		t.Fatalf("%d CSRs, want 1", len(csrs))
	}
	if ok, reason := usableKubeconfig(kubeconfig); !ok {
		t.Errorf("rewritten kubeconfig not usable: %s", reason)
	}
}

// A missing kubeconfig without bootstrap credentials is an error naming it.
func TestNoKubeconfig(t *testing.T) {
	_, err := NewClient(context.Background(), ClientOptions{KubeconfigPath: filepath.Join(t.TempDir(), "missing.conf")})
	if err == nil {
		t.Fatal("no error")
	}
}

// With rotation the certificate is renewed before it expires, with a CSR
// made by the current certificate, and requests then use the new one.
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	// The manager renews at 70-90 % of the lifetime.
	f := newFakeSigner(t, 3*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := NewClient(ctx, ClientOptions{
		KubeconfigPath:          filepath.Join(dir, "kubelet.conf"),
		BootstrapKubeconfigPath: writeBootstrapKubeconfig(t, dir, f.ca.pem),
		CertDir:                 filepath.Join(dir, "pki"), NodeName: "n1", Rotate: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	rt, ok := c.Config.Transport.(*rotatingTransport)
	if !ok {
		t.Fatalf("transport %T", c.Config.Transport)
	}
	if c.Config.CertFile != "" || len(c.Config.CertData) != 0 || c.Config.BearerToken != "" {
		t.Error("the rotating config carries credentials of its own")
	}
	first := rt.current()
	deadline := time.Now().Add(20 * time.Second)
	for rt.current() == first {
		if time.Now().After(deadline) {
			t.Fatal("no renewal")
		}
		time.Sleep(50 * time.Millisecond)
	}
	csrs, users := f.issued()
	if len(csrs) < 2 {
		t.Fatalf("%d CSRs, want at least 2", len(csrs))
	}
	if users[0].BearerToken == "" {
		t.Error("the first CSR was not made with the bootstrap token")
	}
	if u := users[1]; u.BearerToken != "" || len(u.CertData) == 0 {
		t.Error("the renewal was not made with the current certificate")
	} else if leafOf(t, u.CertData).Subject.CommonName != "system:node:n1" {
		t.Error("the renewal's certificate is not the node's")
	}
}

// A renewal does not cut a request running on the previous certificate's
// connection; new requests use the new certificate.
func TestRotatingTransportKeepsRunningRequests(t *testing.T) {
	ca := newTestCA(t)
	pair := func(cn string) *tls.Certificate {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		der, _ := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
		leaf, _ := x509.ParseCertificate(der)
		return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	}
	srv, release := newClientCertServer(t, ca)
	certs := &swappable{}
	certs.set(pair("first"))
	stop := make(chan struct{})
	defer close(stop)
	pool := x509.NewCertPool()
	pool.AddCert(srv.cert)
	rt := newRotatingTransport(klog.Background(), certs, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}, certs.Current(), stop)

	long := make(chan string, 1)
	go func() { long <- get(t, rt, srv.url+"/long") }()
	srv.waitLong(t)
	if got := get(t, rt, srv.url+"/who"); got != "first" {
		t.Errorf("before renewal: %q", got)
	}
	certs.set(pair("second"))
	if got := get(t, rt, srv.url+"/who"); got != "second" {
		t.Errorf("after renewal: %q", got)
	}
	close(release)
	if got := <-long; got != "first" {
		t.Errorf("the running request ended with %q, want its answer as first", got)
	}
}

type swappable struct {
	mu sync.Mutex
	c  *tls.Certificate
}

func (s *swappable) set(c *tls.Certificate) { s.mu.Lock(); s.c = c; s.mu.Unlock() }
func (s *swappable) Current() *tls.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

func TestUsableKubeconfig(t *testing.T) {
	dir := t.TempDir()
	if ok, _ := usableKubeconfig(filepath.Join(dir, "missing")); ok {
		t.Error("missing file usable")
	}
	p := filepath.Join(dir, "token.conf")
	if err := clientcmd.WriteToFile(clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"c": {Server: "https://192.0.2.10:6443"}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"u": {Token: "t"}},
		Contexts:       map[string]*clientcmdapi.Context{"ctx": {Cluster: "c", AuthInfo: "u"}},
		CurrentContext: "ctx",
	}, p); err != nil {
		t.Fatal(err)
	}
	if ok, reason := usableKubeconfig(p); !ok {
		t.Errorf("token kubeconfig not usable: %s", reason)
	}
	missingCert := filepath.Join(dir, "cert.conf")
	if err := clientcmd.WriteToFile(clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"c": {Server: "https://192.0.2.10:6443"}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"u": {ClientCertificate: filepath.Join(dir, "nope.pem"), ClientKey: filepath.Join(dir, "nope.pem")}},
		Contexts:       map[string]*clientcmdapi.Context{"ctx": {Cluster: "c", AuthInfo: "u"}},
		CurrentContext: "ctx",
	}, missingCert); err != nil {
		t.Fatal(err)
	}
	if ok, _ := usableKubeconfig(missingCert); ok {
		t.Error("kubeconfig whose certificate file is missing usable")
	}
}

type certServer struct {
	url     string
	cert    *x509.Certificate
	started chan struct{}
}

// newClientCertServer answers with the client certificate's common name:
// /who at once, /long once release is closed.
func newClientCertServer(t *testing.T, ca *testCA) (*certServer, chan struct{}) {
	t.Helper()
	release := make(chan struct{})
	s := &certServer{started: make(chan struct{}, 1)}
	who := func(r *http.Request) string { return r.TLS.PeerCertificates[0].Subject.CommonName }
	mux := http.NewServeMux()
	mux.HandleFunc("/who", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(who(r))) })
	mux.HandleFunc("/long", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		s.started <- struct{}{}
		<-release
		_, _ = w.Write([]byte(who(r)))
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.EnableHTTP2 = true
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	s.url, s.cert = srv.URL, srv.Certificate()
	return s, release
}

func (s *certServer) waitLong(t *testing.T) {
	t.Helper()
	select {
	case <-s.started:
	case <-time.After(10 * time.Second):
		t.Fatal("long request did not start")
	}
}

func get(t *testing.T, rt http.RoundTripper, url string) string {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return ""
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
	}
	return string(b)
}

// A stored pair of another node name is not used as this node's identity.
func TestStoredPairOfAnotherNode(t *testing.T) {
	dir := t.TempDir()
	f := newFakeSigner(t, time.Hour)
	o := ClientOptions{
		KubeconfigPath:          filepath.Join(dir, "kubelet.conf"),
		BootstrapKubeconfigPath: writeBootstrapKubeconfig(t, dir, f.ca.pem),
		CertDir:                 filepath.Join(dir, "pki"),
		NodeName:                "n1",
	}
	if _, err := NewClient(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(o.KubeconfigPath); err != nil {
		t.Fatal(err)
	}
	o.NodeName = "n2"
	_, err := NewClient(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), `"system:node:n1"`) {
		t.Fatalf("got %v, want an error naming the stored certificate's node", err)
	}
}
