package nodecerts

import (
	"context"
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
	if ok, err := cert.CanReadCertAndKey(certFile, keyFile); err != nil {
		return "", "", fmt.Errorf("read self-signed certificate: %w", err)
	} else if ok {
		return certFile, keyFile, nil
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
