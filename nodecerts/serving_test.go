package nodecerts

import (
	"context"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

func TestServingTemplate(t *testing.T) {
	addrs := []v1.NodeAddress{}
	tmpl := servingTemplate("n1", func() []v1.NodeAddress { return addrs })
	if tmpl() != nil {
		t.Error("a template without any IP")
	}
	addrs = []v1.NodeAddress{
		{Type: v1.NodeInternalIP, Address: "192.0.2.11"},
		{Type: v1.NodeHostName, Address: "node-1"},
		{Type: v1.NodeInternalIP, Address: "192.0.2.11"},
		{Type: v1.NodeExternalIP, Address: "not-an-ip"},
		{Type: v1.NodeInternalDNS, Address: "node-1.example"},
	}
	r := tmpl()
	if r == nil {
		t.Fatal("no template")
	}
	if r.Subject.CommonName != "system:node:n1" || !slices.Equal(r.Subject.Organization, []string{"system:nodes"}) {
		t.Errorf("subject %v", r.Subject)
	}
	if !slices.Equal(r.DNSNames, []string{"node-1", "node-1.example"}) {
		t.Errorf("DNS names %v", r.DNSNames)
	}
	if len(r.IPAddresses) != 1 || !r.IPAddresses[0].Equal(net.ParseIP("192.0.2.11")) {
		t.Errorf("IPs %v", r.IPAddresses)
	}
}

func writePair(t *testing.T, dir, cn string) (string, string) {
	t.Helper()
	crt, key, err := cert.GenerateSelfSignedCertKey(cn, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, k := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(c, crt, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return c, k
}

func servedCN(t *testing.T, s *Serving) string {
	t.Helper()
	c, err := s.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf := c.Leaf
	if leaf == nil {
		leaf = leafOf(t, c.Certificate[0])
	}
	return leaf.Subject.CommonName
}

// tlsCertFile is read again when it changes; a broken pair keeps the
// previous one.
func TestServingFilesReload(t *testing.T) {
	defer func(p time.Duration) { reloadCheckPeriod = p }(reloadCheckPeriod)
	reloadCheckPeriod = 0
	dir := t.TempDir()
	c, k := writePair(t, dir, "first")
	s, err := NewServing(context.Background(), ServingOptions{CertDir: dir, CertFile: c, KeyFile: k})
	if err != nil {
		t.Fatal(err)
	}
	if got := servedCN(t, s); !strings.HasPrefix(got, "first@") {
		t.Errorf("serves %q", got)
	}
	time.Sleep(10 * time.Millisecond) // a later mtime
	writePair(t, dir, "second")
	if got := servedCN(t, s); !strings.HasPrefix(got, "second@") {
		t.Errorf("after the change serves %q", got)
	}
	if err := os.WriteFile(k, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := servedCN(t, s); !strings.HasPrefix(got, "second@") {
		t.Errorf("after a broken write serves %q", got)
	}
}

// Without files or bootstrap, the self-signed certificate in the cert dir
// is served, and kept across restarts.
func TestServingSelfSigned(t *testing.T) {
	dir := t.TempDir()
	s, err := NewServing(context.Background(), ServingOptions{CertDir: dir, NodeName: "n1", Address: "192.0.2.10"})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := s.GetCertificate(nil)
	s2, err := NewServing(context.Background(), ServingOptions{CertDir: dir, NodeName: "n1", Address: "192.0.2.10"})
	if err != nil {
		t.Fatal(err)
	}
	second, _ := s2.GetCertificate(nil)
	if !slices.Equal(first.Certificate[0], second.Certificate[0]) {
		t.Error("a new self-signed certificate at restart")
	}
	if _, err := os.Stat(filepath.Join(dir, "nodeagent.crt")); err != nil {
		t.Error(err)
	}
}

// serverTLSBootstrap: the self-signed certificate until the CSR is issued,
// then the issued one, with the node's addresses.
func TestServingBootstrap(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	client := fake.NewClientset()
	approve := make(chan struct{})
	client.PrependReactor("create", "certificatesigningrequests", func(a k8stesting.Action) (bool, runtime.Object, error) {
		csr := a.(k8stesting.CreateAction).GetObject().(*certificatesv1.CertificateSigningRequest)
		if csr.Spec.SignerName != certificatesv1.KubeletServingSignerName {
			t.Errorf("signer %q", csr.Spec.SignerName)
		}
		<-approve // an administrator, later
		csr.Name = "csr-serving"
		csr.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: v1.ConditionTrue}}
		csr.Status.Certificate = ca.sign(t, csr.Spec.Request, time.Hour, x509.ExtKeyUsageServerAuth)
		return false, nil, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := NewServing(ctx, ServingOptions{
		CertDir: dir, Bootstrap: true, Client: client, NodeName: "n1", Address: "0.0.0.0",
		Addresses: func() []v1.NodeAddress { return []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "192.0.2.11"}} },
	})
	if err != nil {
		t.Fatal(err)
	}
	if cn := servedCN(t, s); !strings.HasPrefix(cn, "n1@") {
		t.Errorf("before approval serves %q, want the self-signed n1@...", cn)
	}
	close(approve)
	deadline := time.Now().Add(10 * time.Second)
	for servedCN(t, s) != "system:node:n1" {
		if time.Now().After(deadline) {
			t.Fatal("the issued certificate is not served")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c, _ := s.GetCertificate(nil)
	if ips := c.Leaf.IPAddresses; len(ips) != 1 || !ips[0].Equal(net.ParseIP("192.0.2.11")) {
		t.Errorf("SANs %v", ips)
	}
	data, err := os.ReadFile(filepath.Join(dir, "kubelet-server-current.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyutil.ParsePrivateKeyPEM(data); err != nil {
		t.Error(err)
	}
}
