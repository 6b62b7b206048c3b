package nodecerts

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
	"k8s.io/klog/v2"
)

// selfSignedCert returns the paths of a self-signed serving certificate
// in dir, creating it on first use and reusing it afterwards, as the
// kubelet does without tlsCertFile.
func selfSignedCert(ctx context.Context, dir, nodeName, address string) (string, string, error) {
	certFile, keyFile := filepath.Join(dir, "nodeagent.crt"), filepath.Join(dir, "nodeagent.key")
	_, err := tls.LoadX509KeyPair(certFile, keyFile)
	switch {
	case err == nil:
		return certFile, keyFile, nil
	case !fileExists(certFile) && !fileExists(keyFile):
	default:
		// Half a pair (a crash between the two writes), a truncated or
		// damaged file: the pair is the agent's own and disposable, and
		// refusing to start over it would leave the node without its API.
		klog.FromContext(ctx).Info("Warning: the self-signed serving certificate does not load; generating a new one", "cert", certFile, "key", keyFile, "err", err)
	}
	var ips []net.IP
	if ip := net.ParseIP(address); ip != nil && !ip.IsUnspecified() {
		ips = append(ips, ip)
	}
	crt, key, err := cert.GenerateSelfSignedCertKey(nodeName, ips, nil)
	if err != nil {
		return "", "", fmt.Errorf("generate self-signed certificate: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("create %s: %w", dir, err)
	}
	if err := cert.WriteCert(certFile, crt); err != nil {
		return "", "", fmt.Errorf("write %s: %w", certFile, err)
	}
	if err := keyutil.WriteKey(keyFile, key); err != nil {
		return "", "", fmt.Errorf("write %s: %w", keyFile, err)
	}
	klog.FromContext(ctx).Info("Generated a self-signed serving certificate", "cert", certFile)
	return certFile, keyFile, nil
}

// fileExists reports whether something is at path (a link counts, even a
// dangling one).
func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
