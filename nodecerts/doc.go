// Package nodecerts gives the agent its TLS identities, as the kubelet's
// certificate code does: the client certificate it talks to the apiserver
// with, and the serving certificate of the node API.
//
// # Client certificate
//
// With --bootstrap-kubeconfig, a --kubeconfig file that is missing, cannot
// be read or holds an expired certificate is replaced by one that points at
// <cert-dir>/kubelet-client-current.pem, and the certificate itself is
// requested with the bootstrap credentials (usually a bootstrap token): a
// CertificateSigningRequest for signer kubernetes.io/kube-apiserver-client-kubelet,
// subject CN=system:node:<name>, O=system:nodes, which kube-controller-manager
// approves (csrapproving, for the bootstrappers' group) and signs. The key
// and certificate are stored as the kubelet stores them
// (kubelet-client-<timestamp>.pem, and the kubelet-client-current.pem link)
// by client-go's certificate manager (k8s.io/client-go/util/certificate),
// the kubelet's own. The agent waits for the first certificate before it
// builds its clients.
//
// With rotateCertificates, the manager goes on running: it renews the
// certificate at 70-90 % of its lifetime, with a CSR made with the current
// certificate (selfnodeclient approval). Requests then go through a
// transport that follows the manager: once a new certificate is there, new
// requests open connections with it, while requests already running on
// connections made with the previous one (watches, which the apiserver ends
// after its request timeout) go on until they end, and the previous
// connections are closed once idle, or when their certificate expires. No
// watch is cut by a renewal. If the certificate expired and no new one came
// for five minutes while the apiserver answers, the agent stops with an
// error, as the kubelet does, so that its supervisor restarts it onto the
// bootstrap credentials.
//
// Without rotateCertificates a bootstrapped certificate is requested once,
// and a kubeconfig without --bootstrap-kubeconfig is used as it is.
//
// # Serving certificate
//
// With serverTLSBootstrap the node API's certificate is requested with a
// kubernetes.io/kubelet-serving CSR whose SANs are the node's addresses and
// host name, and rotated as the client's. kube-controller-manager never
// approves these on its own: an administrator does (kubectl certificate
// approve), and until then the agent serves with its self-signed
// certificate. With tlsCertFile and tlsPrivateKeyFile the files are read
// again whenever they change, so that a renewed certificate is used without
// a restart. Otherwise the self-signed certificate in the cert dir is used.
package nodecerts
