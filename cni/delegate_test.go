package cni

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/nodeagent/nodeagent/cni/delegateapi"
)

// delegateConf is the runtime's network config with the delegate plugin.
const delegateConf = `{"cniVersion":"1.0.0","name":"nodeagent","plugins":[{"type":"nodeagent-delegate","socket":"/x/cni.sock"}]}`

// startDelegate serves m on a socket in a temporary dir until the test ends.
func startDelegate(t *testing.T, m *Manager, lookup PodLookup) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), delegateapi.SocketName)
	// A stale file from an earlier run is replaced.
	if err := os.WriteFile(sock, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := m.ListenDelegate(sock, lookup)
	if err != nil {
		t.Fatalf("ListenDelegate: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, want a socket with 0600", fi.Mode())
	}
	return sock
}

func delegateReq(command string) delegateapi.Request {
	return delegateapi.Request{
		Command: command, ContainerID: "sb1", NetNS: "/run/netns/test", IfName: "eth0",
		Args:   "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=sb1;K8S_POD_UID=uid-1",
		Config: json.RawMessage(delegateConf),
	}
}

func TestDelegateAddDelCheck(t *testing.T) {
	m, fe, _ := testManager(t, map[string]string{"10-net.conflist": bridgeList("podnet", "cni0")})
	mustLoad(t, m)
	var looked []string
	sock := startDelegate(t, m, func(_ context.Context, ns, name, uid string) (PodNetwork, bool) {
		looked = append(looked, ns+"/"+name+"/"+uid)
		pn := testPod()
		pn.Namespace, pn.Name, pn.UID, pn.SandboxID, pn.NetNSPath = "wrong", "wrong", "wrong", "wrong", "wrong"
		return pn, true
	})
	ctx := context.Background()

	out, err := delegateapi.Call(ctx, sock, delegateReq("ADD"))
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	res, err := types100.NewResult(out)
	if err != nil {
		t.Fatalf("parse result %s: %v", out, err)
	}
	r := res.(*types100.Result)
	var eth0 []string
	for _, ip := range r.IPs {
		if ip.Interface != nil && r.Interfaces[*ip.Interface].Name == "eth0" {
			eth0 = append(eth0, ip.Address.IP.String())
		}
	}
	if want := []string{"fd00:10::5", "10.1.0.5"}; !reflect.DeepEqual(eth0, want) {
		t.Errorf("eth0 IPs = %v, want %v (result %s)", eth0, want, out)
	}
	if want := []string{"ns1/web/uid-1"}; !reflect.DeepEqual(looked, want) {
		t.Errorf("lookups = %v, want %v", looked, want)
	}
	calls := fe.take()
	if got, want := commands(calls), []string{"ADD bridge", "ADD portmap", "ADD bandwidth"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("calls = %v, want %v", got, want)
	}
	for _, c := range calls {
		if c.Args != wantArgs || c.ContainerID != "sb1" || c.NetNS != "/run/netns/test" {
			t.Errorf("%s: args %q container %q netns %q", c.Plugin, c.Args, c.ContainerID, c.NetNS)
		}
	}
	if pm := calls[1].runtimeConfig()["portMappings"]; pm == nil {
		t.Errorf("portmap got no port mappings from the pod: %v", calls[1].Conf)
	}
	cached, err := m.CachedResult(PodNetwork{SandboxID: "sb1"})
	if err != nil || len(cached.IPs) != 2 {
		t.Fatalf("CachedResult = %v, %v; want the two IPs", cached, err)
	}

	if _, err := delegateapi.Call(ctx, sock, delegateReq("CHECK")); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	if got, want := commands(fe.take()), []string{"CHECK bridge", "CHECK portmap", "CHECK bandwidth"}; !reflect.DeepEqual(got, want) {
		t.Errorf("CHECK calls = %v, want %v", got, want)
	}

	if _, err := delegateapi.Call(ctx, sock, delegateReq("DEL")); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if got, want := commands(fe.take()), []string{"DEL bandwidth", "DEL portmap", "DEL bridge"}; !reflect.DeepEqual(got, want) {
		t.Errorf("DEL calls = %v, want %v", got, want)
	}
	// The runtime's DEL after the agent's own: nothing cached, no plugin
	// runs, success.
	if _, err := delegateapi.Call(ctx, sock, delegateReq("DEL")); err != nil {
		t.Fatalf("second DEL: %v", err)
	}
	if calls := fe.take(); len(calls) != 0 {
		t.Errorf("second DEL ran %v", commands(calls))
	}
}

func TestDelegateErrors(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string
		fail     string
		req      func(r *delegateapi.Request)
		wantCode uint
	}{
		{name: "no config", wantCode: types.ErrTryAgainLater},
		{name: "plugin fails", files: map[string]string{"10-net.conflist": bridgeList("podnet", "cni0")}, fail: "ADD portmap", wantCode: types.ErrInternal},
		{name: "other interface", files: map[string]string{"10-net.conflist": bridgeList("podnet", "cni0")},
			req: func(r *delegateapi.Request) { r.IfName = "net1" }, wantCode: types.ErrInvalidEnvironmentVariables},
		{name: "unknown command", files: map[string]string{"10-net.conflist": bridgeList("podnet", "cni0")},
			req: func(r *delegateapi.Request) { r.Command = "GC" }, wantCode: types.ErrInvalidEnvironmentVariables},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, fe, _ := testManager(t, tc.files)
			_ = m.Load(context.Background())
			if tc.fail != "" {
				fe.fail[tc.fail] = errors.New("boom")
			}
			sock := startDelegate(t, m, nil)
			req := delegateReq("ADD")
			if tc.req != nil {
				tc.req(&req)
			}
			_, err := delegateapi.Call(context.Background(), sock, req)
			var cniErr *types.Error
			if !errors.As(err, &cniErr) {
				t.Fatalf("err = %v, want a CNI error", err)
			}
			if cniErr.Code != tc.wantCode || cniErr.Msg == "" {
				t.Errorf("error = %+v, want code %d with a message", cniErr, tc.wantCode)
			}
			if tc.fail != "" {
				// The failed ADD was rolled back: nothing is cached.
				if _, err := m.CachedResult(PodNetwork{SandboxID: "sb1"}); !IsNotSetUp(err) {
					t.Errorf("CachedResult after a failed ADD: %v, want ErrNotSetUp", err)
				}
			}
		})
	}
}

func TestDelegateUnreachable(t *testing.T) {
	_, err := delegateapi.Call(context.Background(), filepath.Join(t.TempDir(), "none.sock"), delegateReq("ADD"))
	var cniErr *types.Error
	if !errors.As(err, &cniErr) || cniErr.Code != types.ErrTryAgainLater {
		t.Errorf("err = %v, want a CNI try-again-later error", err)
	}
}

// The runtime's own cache of the delegate network, in a shared cache dir,
// is not an attachment of the agent: deleting it would call back into the
// agent.
func TestAttachmentsSkipDelegate(t *testing.T) {
	m, _, _ := testManager(t, map[string]string{"10-net.conflist": bridgeList("podnet", "cni0")})
	mustLoad(t, m)
	rtConfDir := filepath.Join(t.TempDir(), "runtime.d")
	if err := os.MkdirAll(rtConfDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, rtConfDir, map[string]string{"10-delegate.conflist": delegateConf})
	runtime := New(Config{ConfDir: rtConfDir, BinDirs: []string{"/fake/bin"}, CacheDir: m.cfg.CacheDir}, newFakeExec())
	mustLoad(t, runtime)
	if _, err := runtime.Setup(context.Background(), testPod()); err != nil {
		t.Fatalf("runtime Setup: %v", err)
	}
	if _, err := m.CachedResult(testPod()); !IsNotSetUp(err) {
		t.Errorf("CachedResult with only the delegate's cache = %v, want ErrNotSetUp", err)
	}
	if _, err := m.Setup(context.Background(), testPod()); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	atts, _, err := m.attachments("sb1")
	if err != nil || len(atts) != 1 || atts[0].list.Name != "podnet" {
		t.Errorf("attachments = %v, %v; want only podnet", atts, err)
	}
}
