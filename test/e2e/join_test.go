//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	joinNode = "nodeagent-join"
	joinIP   = "192.0.2.11"
)

// TestKubeadmJoin adds a second node to the cluster as on a machine of its
// own: hack/cluster.sh join-node runs the real kubeadm join with a
// bootstrap token and the CA's hash in a network and mount namespace of the
// node's, and starts the agent (JOIN_AGENT: nodeagent, the default, or the
// upstream kubelet) with exactly the files kubeadm wrote. The node must
// become Ready with a client certificate it got through a CSR that the
// controller-manager approved for the token, run a pod, and serve its logs
// and exec through the apiserver. The node is removed again at the end.
//
// The test is skipped only when join-node says the harness cannot make the
// node here (exit code 3: not root, nsenter or unshare missing, kubeadm or
// the agent not built, or a cluster started without join support); any
// failure of the join itself, nodeagent's included, fails it.
func TestKubeadmJoin(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	agent := envOr("JOIN_AGENT", "nodeagent")
	t.Cleanup(func() {
		if out, err := exec.Command("../../hack/cluster.sh", "join-node-down").CombinedOutput(); err != nil {
			t.Errorf("cluster.sh join-node-down: %v\n%s", err, out)
		}
		if err := c.CoreV1().Nodes().Delete(context.Background(), joinNode, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete node %s: %v", joinNode, err)
		}
	})

	// The cluster-info that kubeadm's discovery reads names the node
	// address of the apiserver (its serving certificate has it as a SAN:
	// the discovery would fail otherwise).
	ci, err := c.CoreV1().ConfigMaps("kube-public").Get(ctx, "cluster-info", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("cluster-info: %v", err)
	}
	kc, err := clientcmd.Load([]byte(ci.Data["kubeconfig"]))
	if err != nil {
		t.Fatalf("cluster-info kubeconfig: %v", err)
	}
	for _, cl := range kc.Clusters {
		if cl.Server != "https://192.0.2.10:6443" {
			t.Fatalf("cluster-info server is %q, want https://192.0.2.10:6443", cl.Server)
		}
	}

	// The join node's mount namespace starts as a copy of node 1's, whose
	// pod mounts (network namespaces among them) join-node then drops:
	// not while node 1 is still setting up or tearing down an earlier
	// test's pods, whose network namespaces the copy could keep busy.
	waitNoPodsOnNode(t, c, 3*time.Minute)
	start := time.Now()
	cmd := exec.Command("../../hack/cluster.sh", "join-node")
	cmd.Env = append(os.Environ(), "JOIN_AGENT="+agent)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 3 {
		t.Skipf("the join harness is unavailable here:\n%s", out)
	}
	if err != nil {
		t.Fatalf("cluster.sh join-node with JOIN_AGENT=%s: %v\n%s", agent, err, out)
	}
	t.Logf("kubeadm join with %s: node Ready after %s", agent, time.Since(start).Round(100*time.Millisecond))

	node := waitJoinNodeReady(t, c)
	var internal string
	for _, a := range node.Status.Addresses {
		if a.Type == v1.NodeInternalIP {
			internal = a.Address
		}
	}
	if internal != joinIP {
		t.Errorf("node %s InternalIP = %q, want %s (addresses %v)", joinNode, internal, joinIP, node.Status.Addresses)
	}

	checkBootstrapCSR(t, c)

	ns := namespace(t, c)
	pod := busyboxPod("joined", "echo hello from the joined node; sleep 3600", v1.RestartPolicyNever)
	pod.Spec.NodeName = joinNode
	createPod(t, c, ns, pod)
	p := waitPod(t, c, ns, "joined", 60*time.Second, "running on "+joinNode, running)
	_, podNet, _ := net.ParseCIDR("198.18.1.0/24")
	if ip := net.ParseIP(p.Status.PodIP); ip == nil || !podNet.Contains(ip) {
		t.Errorf("pod IP %q is not in the second node's pod subnet %s", p.Status.PodIP, podNet)
	}
	// Both go through the apiserver to the node's API at 192.0.2.11:10250.
	waitFor(t, 30*time.Second, "kubectl logs", func() (bool, error) {
		return strings.Contains(kubectlOut(t, "logs", "-n", ns, "joined"), "hello from the joined node"), nil
	})
	if got := kubectl(t, "exec", "-n", ns, "joined", "--", "sh", "-c", "echo exec-$((6*7)) on $(hostname)"); !strings.Contains(got, "exec-42 on joined") {
		t.Errorf("kubectl exec: %q", got)
	}

	// The harness's signer issues 2m30s certificates (backdated 5 min):
	// the node renews its client certificate within about 80 s, with a CSR
	// made as itself (selfnodeclient approval), and goes on working with
	// the new one, its watches and the lease included.
	renewed := waitRenewal(t, c, start, 150*time.Second)
	t.Logf("client certificate renewed by CSR %s", renewed.Name)
	since := time.Now()
	waitFor(t, 30*time.Second, "a lease renewal after the certificate renewal", func() (bool, error) {
		l, err := c.CoordinationV1().Leases("kube-node-lease").Get(ctx, joinNode, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return l.Spec.RenewTime != nil && l.Spec.RenewTime.After(since), nil
	})
	if agent == "nodeagent" {
		log, err := os.ReadFile(filepath.Join(state, "logs", "join-agent.log"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(log, []byte("Client certificate renewed")) {
			t.Error("the agent's log does not say it renewed its client certificate")
		}
	}
	after := busyboxPod("after-renewal", "echo started after the renewal; sleep 3600", v1.RestartPolicyNever)
	after.Spec.NodeName = joinNode
	createPod(t, c, ns, after)
	waitPod(t, c, ns, "after-renewal", 60*time.Second, "running on "+joinNode, running)
	waitFor(t, 30*time.Second, "kubectl logs after the renewal", func() (bool, error) {
		return strings.Contains(kubectlOut(t, "logs", "-n", ns, "after-renewal"), "started after the renewal"), nil
	})

	for _, name := range []string{"joined", "after-renewal"} {
		if err := c.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitGone(t, c, ns, "joined", 60*time.Second)
	waitGone(t, c, ns, "after-renewal", 60*time.Second)
}

// waitRenewal waits for a client certificate CSR the joined node made as
// itself since the join, approved and issued.
func waitRenewal(t *testing.T, c kubernetes.Interface, since time.Time, timeout time.Duration) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	var renewed *certificatesv1.CertificateSigningRequest
	waitFor(t, timeout, "a renewal CSR by system:node:"+joinNode, func() (bool, error) {
		csrs, err := c.CertificatesV1().CertificateSigningRequests().List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for i := range csrs.Items {
			r := &csrs.Items[i]
			// Not one of an earlier join's (CSRs outlive the node).
			if r.Spec.SignerName == certificatesv1.KubeAPIServerClientKubeletSignerName && r.Spec.Username == "system:node:"+joinNode &&
				!r.CreationTimestamp.Time.Before(since.Truncate(time.Second)) && approved(r) && len(r.Status.Certificate) > 0 {
				renewed = r
				return true, nil
			}
		}
		return false, nil
	})
	return renewed
}

func approved(r *certificatesv1.CertificateSigningRequest) bool {
	for _, cond := range r.Status.Conditions {
		if cond.Type == certificatesv1.CertificateApproved && cond.Status == v1.ConditionTrue {
			return true
		}
	}
	return false
}

func waitJoinNodeReady(t *testing.T, c kubernetes.Interface) *v1.Node {
	t.Helper()
	var node *v1.Node
	waitFor(t, 60*time.Second, "node "+joinNode+" Ready", func() (bool, error) {
		n, err := c.CoreV1().Nodes().Get(context.Background(), joinNode, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		node = n
		ok, msg := nodeReady(n)
		if !ok {
			return false, errors.New(msg)
		}
		return true, nil
	})
	return node
}

// checkBootstrapCSR checks that the node's client certificate came from a
// CSR made with the join's bootstrap token (user system:bootstrap:<id>) for
// the kubelet client signer, which the controller-manager approved and
// signed: the certificate the agent now uses (kubelet.conf's) is the one
// the CSR was issued.
func checkBootstrapCSR(t *testing.T, c kubernetes.Interface) {
	t.Helper()
	id, err := os.ReadFile(filepath.Join(state, "join", "token-id"))
	if err != nil {
		t.Fatal(err)
	}
	user := "system:bootstrap:" + strings.TrimSpace(string(id))
	csrs, err := c.CertificatesV1().CertificateSigningRequests().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var issued *certificatesv1.CertificateSigningRequest
	for i := range csrs.Items {
		r := &csrs.Items[i]
		if r.Spec.SignerName == certificatesv1.KubeAPIServerClientKubeletSignerName && r.Spec.Username == user {
			issued = r
		}
	}
	if issued == nil {
		t.Fatalf("no CSR for signer %s by %s", certificatesv1.KubeAPIServerClientKubeletSignerName, user)
	}
	if !approved(issued) || len(issued.Status.Certificate) == 0 {
		t.Fatalf("CSR %s by %s: approved=%v, certificate issued=%v", issued.Name, user, approved(issued), len(issued.Status.Certificate) > 0)
	}
	block, _ := pem.Decode(issued.Spec.Request)
	if block == nil {
		t.Fatalf("CSR %s: no PEM request", issued.Name)
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if req.Subject.CommonName != "system:node:"+joinNode || strings.Join(req.Subject.Organization, ",") != "system:nodes" {
		t.Errorf("CSR %s subject %q, want CN=system:node:%s, O=system:nodes", issued.Name, req.Subject, joinNode)
	}

	// The agent's kubeconfig as the node sees it, and the certificate it names.
	kc, err := clientcmd.LoadFromFile(filepath.Join(state, "join", "fs", "etc", "kubernetes", "kubelet.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var certPEM []byte
	for _, a := range kc.AuthInfos {
		switch {
		case len(a.ClientCertificateData) > 0:
			certPEM = a.ClientCertificateData
		case a.ClientCertificate != "":
			certPEM = []byte(joinNodeExec(t, "cat", a.ClientCertificate))
		}
	}
	// Unless the node renewed it already (certificates live 2m30s here).
	current := firstCert(t, certPEM)
	ok := bytes.Equal(current, firstCert(t, issued.Status.Certificate))
	for i := range csrs.Items {
		if r := &csrs.Items[i]; !ok && r.Spec.Username == "system:node:"+joinNode && len(r.Status.Certificate) > 0 {
			ok = bytes.Equal(current, firstCert(t, r.Status.Certificate))
		}
	}
	if !ok {
		t.Errorf("the client certificate in the node's kubelet.conf is not the one CSR %s issued", issued.Name)
	}
}

func firstCert(t *testing.T, data []byte) []byte {
	t.Helper()
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			t.Fatal("no CERTIFICATE block")
		}
		if b.Type == "CERTIFICATE" {
			return b.Bytes
		}
	}
}

// joinNodeExec runs a command in the second node's network and mount
// namespaces.
func joinNodeExec(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("../../hack/cluster.sh", append([]string{"join-node-exec"}, args...)...).Output()
	if err != nil {
		t.Fatalf("join-node-exec %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// kubectlOut runs kubectl as the admin and returns its output, even when it
// fails (for polling).
func kubectlOut(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(cache, "bin/kubectl"), append([]string{"--kubeconfig", filepath.Join(state, "admin.kubeconfig")}, args...)...)
	out, _ := cmd.CombinedOutput()
	return string(out)
}
