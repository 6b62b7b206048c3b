package nodecerts

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// damages are what a crash or a bad disk leaves of a PEM file.
var damages = []struct {
	name   string
	damage func(t *testing.T, path string)
}{
	{"truncated", func(t *testing.T, p string) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rewrite(t, p, b[:len(b)/2])
	}},
	{"zero length", func(t *testing.T, p string) { rewrite(t, p, nil) }},
	{"garbage", func(t *testing.T, p string) { rewrite(t, p, []byte("\x00\xff-----BEGIN garbage")) }},
}

// rewrite replaces the content of the file at path in place.
func rewrite(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSelfSignedCorrupt: a damaged self-signed pair (the agent's own) is
// replaced by a new one, so the API still starts; so is half a pair.
func TestSelfSignedCorrupt(t *testing.T) {
	cases := append([]struct {
		name   string
		damage func(t *testing.T, path string)
	}{{"missing", func(t *testing.T, p string) {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}}}, damages...)
	for _, file := range []string{"nodeagent.crt", "nodeagent.key"} {
		for _, tc := range cases {
			t.Run(file+"/"+tc.name, func(t *testing.T) {
				dir := t.TempDir()
				o := ServingOptions{CertDir: dir, NodeName: "n1", Address: "192.0.2.10"}
				if _, err := NewServing(context.Background(), o); err != nil {
					t.Fatal(err)
				}
				tc.damage(t, filepath.Join(dir, file))
				s, err := NewServing(context.Background(), o)
				if err != nil {
					t.Fatalf("start with a damaged %s: %v", file, err)
				}
				if cn := servedCN(t, s); !strings.HasPrefix(cn, "n1@") {
					t.Errorf("serves %q", cn)
				}
				if _, err := tls.LoadX509KeyPair(filepath.Join(dir, "nodeagent.crt"), filepath.Join(dir, "nodeagent.key")); err != nil {
					t.Errorf("the pair was not repaired: %v", err)
				}
			})
		}
	}
}

// TestServingStoreCorrupt: with serverTLSBootstrap, a damaged stored
// serving pair does not stop the start: the self-signed certificate is
// served and a new one requested.
func TestServingStoreCorrupt(t *testing.T) {
	for _, tc := range damages {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			// The fake signer keeps only the newest CSR, for the requester
			// to find (the fake ignores field selectors).
			f := newFakeSigner(t, time.Hour)
			o := ServingOptions{
				CertDir: dir, Bootstrap: true, Client: f.client, NodeName: "n1", Address: "0.0.0.0",
				Addresses: func() []v1.NodeAddress { return []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "192.0.2.11"}} },
			}
			waitIssued := func(s *Serving) {
				t.Helper()
				deadline := time.Now().Add(10 * time.Second)
				for servedCN(t, s) != "system:node:n1" {
					if time.Now().After(deadline) {
						t.Fatal("the issued certificate is not served")
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			s, err := NewServing(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			waitIssued(s)
			cancel()

			current := filepath.Join(dir, "kubelet-server-current.pem")
			stored, err := filepath.EvalSymlinks(current)
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(t, stored)
			// A new pair within the same second would take its file name.
			time.Sleep(1100 * time.Millisecond)
			ctx, cancel = context.WithCancel(context.Background())
			defer cancel()
			s, err = NewServing(ctx, o)
			if err != nil {
				t.Fatalf("start with a damaged %s: %v", stored, err)
			}
			waitIssued(s)
			if now, _ := filepath.EvalSymlinks(current); now == stored {
				t.Errorf("%s still links to the damaged pair", current)
			}
			if _, err := os.Stat(stored); err != nil {
				t.Errorf("the damaged pair was removed: %v", err)
			}
		})
	}
}

// TestClientStoreCorrupt: with a bootstrap kubeconfig, a damaged stored
// client pair is bootstrapped again instead of failing the start, or of
// starting with a client whose every request fails.
func TestClientStoreCorrupt(t *testing.T) {
	for _, tc := range damages {
		t.Run(tc.name, func(t *testing.T) {
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
			current := filepath.Join(o.CertDir, "kubelet-client-current.pem")
			stored, err := filepath.EvalSymlinks(current)
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(t, stored)
			if ok, _ := usableKubeconfig(o.KubeconfigPath); ok {
				t.Errorf("kubeconfig with a damaged pair usable")
			}
			// A new pair within the same second would take its file name.
			time.Sleep(1100 * time.Millisecond)
			c, err := NewClient(context.Background(), o)
			if err != nil {
				t.Fatalf("start with a damaged %s: %v", stored, err)
			}
			if csrs, _ := f.issued(); len(csrs) != 2 {
				t.Errorf("%d CSRs, want a second one", len(csrs))
			}
			if ok, reason := usableKubeconfig(o.KubeconfigPath); !ok {
				t.Errorf("kubeconfig not usable after the start: %s", reason)
			}
			if c.Config.CertFile != current {
				t.Errorf("client uses %s", c.Config.CertFile)
			}
			if _, err := os.Stat(stored); err != nil {
				t.Errorf("the damaged pair was removed: %v", err)
			}
		})
	}
}
