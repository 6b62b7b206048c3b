//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// servedCert is the certificate the node API presents.
func servedCert(t *testing.T) *x509.Certificate {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", "192.0.2.10:10250",
		&tls.Config{InsecureSkipVerify: true}) //nolint:gosec // what is served is what is tested
	if err != nil {
		t.Fatalf("TLS to the node API: %v", err)
	}
	defer func() { _ = conn.Close() }()
	return conn.ConnectionState().PeerCertificates[0]
}

// serverTLSBootstrap: the agent asks for a kubelet-serving certificate for
// its addresses, serves a self-signed one until an administrator approves
// the CSR, then the issued one, which the apiserver (it verifies the node
// against the cluster CA) accepts for kubectl logs.
func TestServingCertificateBootstrap(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	ns := namespace(t, c)
	config := filepath.Join(state, "nodeagent-serving-e2e.yaml")
	certDir := t.TempDir()

	base, err := os.ReadFile(filepath.Join(state, "nodeagent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(base), "\n"), "\n") {
		if !strings.HasPrefix(l, "tlsCertFile:") && !strings.HasPrefix(l, "tlsPrivateKeyFile:") {
			lines = append(lines, l)
		}
	}
	lines = append(lines, "serverTLSBootstrap: true")
	if err := os.WriteFile(config, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(config) })
	started := time.Now().Add(-time.Second)
	withAgentFlags(t, "--config", config, "--cert-dir", certDir)

	// The CSR, as the node, for the kubelet-serving signer and the node's
	// addresses.
	var csr *certificatesv1.CertificateSigningRequest
	waitFor(t, 30*time.Second, "a kubelet-serving CSR by the node", func() (bool, error) {
		list, err := c.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for i := range list.Items {
			r := &list.Items[i]
			if r.Spec.SignerName == certificatesv1.KubeletServingSignerName && r.Spec.Username == "system:node:"+nodeName &&
				r.CreationTimestamp.After(started) {
				csr = r
				return true, nil
			}
		}
		return false, nil
	})
	block, _ := pem.Decode(csr.Spec.Request)
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if req.Subject.CommonName != "system:node:"+nodeName || len(req.IPAddresses) != 1 || !req.IPAddresses[0].Equal(net.ParseIP("192.0.2.10")) ||
		!slices.Contains(req.DNSNames, nodeName) {
		t.Errorf("CSR %s: subject %q, IPs %v, DNS names %v", csr.Name, req.Subject, req.IPAddresses, req.DNSNames)
	}
	if !slices.Contains(csr.Spec.Usages, certificatesv1.UsageServerAuth) {
		t.Errorf("CSR usages %v", csr.Spec.Usages)
	}

	// Not approved yet: the self-signed certificate.
	if cert := servedCert(t); !strings.HasPrefix(cert.Subject.CommonName, nodeName+"@") {
		t.Errorf("before approval the node serves %q issued by %q, want its self-signed certificate", cert.Subject.CommonName, cert.Issuer.CommonName)
	}

	kubectl(t, "certificate", "approve", csr.Name)
	waitFor(t, 30*time.Second, "the issued serving certificate", func() (bool, error) {
		return servedCert(t).Subject.CommonName == "system:node:"+nodeName, nil
	})
	harness(t, "wait-node")

	// The apiserver verifies the node's certificate against the cluster CA.
	pod := busyboxPod("served", "echo served by the issued certificate; sleep 3600", v1.RestartPolicyNever)
	createPod(t, c, ns, pod)
	waitPod(t, c, ns, "served", 60*time.Second, "running", running)
	waitFor(t, 30*time.Second, "kubectl logs through the issued certificate", func() (bool, error) {
		return strings.Contains(kubectlOut(t, "logs", "-n", ns, "served"), "served by the issued certificate"), nil
	})
	if _, err := os.Stat(filepath.Join(certDir, "kubelet-server-current.pem")); err != nil {
		t.Errorf("the issued pair is not stored as the kubelet stores it: %v", err)
	}
}
