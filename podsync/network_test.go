package podsync

import (
	"context"
	"net"
	"reflect"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"

	"github.com/nodeagent/nodeagent/cni"
)

var _ Network = (*fakeNetwork)(nil)

// fakeNetwork plays package cni: cached holds what the delegate plugin's
// ADD left in the CNI cache, per sandbox.
type fakeNetwork struct {
	mu      sync.Mutex
	cached  []net.IP // what any sandbox's ADD cached; nil: nothing
	setups  int
	removes int
	// cacheErr, if set, is CachedResult's error.
	cacheErr error
}

func (f *fakeNetwork) Setup(context.Context, cni.PodNetwork) (*cni.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setups++
	return &cni.Result{IPs: []net.IP{net.ParseIP("10.9.9.9")}}, nil
}

func (f *fakeNetwork) Remove(context.Context, cni.PodNetwork) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removes++
	return nil
}

func (f *fakeNetwork) Check(context.Context, cni.PodNetwork) error { return nil }

func (f *fakeNetwork) CollectGarbage(context.Context, map[string]bool, time.Time) {}

func (f *fakeNetwork) CachedResult(cni.PodNetwork) (*cni.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cacheErr != nil {
		return nil, f.cacheErr
	}
	if f.cached == nil {
		return nil, cni.ErrNotSetUp
	}
	return &cni.Result{IPs: f.cached}, nil
}

func TestSetupNetworkDelegated(t *testing.T) {
	runtimeIP := critest.FakePodSandboxIPs[0]
	tests := []struct {
		name      string
		cached    []net.IP
		wantErr   bool
		wantIP    string
		wantEvent string
	}{
		{name: "runtime ran the agent's ADD", cached: []net.IP{net.ParseIP(runtimeIP)}, wantIP: runtimeIP},
		{name: "runtime reports another address", cached: []net.IP{net.ParseIP("10.1.0.5")}, wantErr: true, wantEvent: "nodeagent-delegate"},
		{name: "runtime wired its own network", wantErr: true, wantEvent: "gave sandbox"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			fn := &fakeNetwork{cached: tc.cached}
			e.cfg.Network = fn
			e.s = New(e.cfg, e.rt, e.images, e.vols, fakeEnv{}, e.status, e.rec, e.clock)
			pod := testPod("uid1", v1.RestartPolicyAlways)
			_, _, err := e.s.SyncPod(context.Background(), pod)
			if (err != nil) != tc.wantErr {
				t.Fatalf("SyncPod error = %v, want error %v", err, tc.wantErr)
			}
			if fn.setups != 0 {
				t.Errorf("Setup ran %d times: the ADD belongs to RunPodSandbox", fn.setups)
			}
			if tc.wantEvent != "" {
				if !hasEvent(e.events(), tc.wantEvent) {
					t.Errorf("no event with %q", tc.wantEvent)
				}
				if fn.removes == 0 {
					t.Errorf("the failed sandbox's network was not torn down")
				}
				if sbs := e.sandboxesOf(pod.UID); len(sbs) != 0 {
					t.Errorf("the failed sandbox was not removed: %d left", len(sbs))
				}
			}
			if tc.wantIP != "" {
				if st := e.status.get(pod.UID); st == nil || st.PodIP != tc.wantIP {
					t.Errorf("pod status = %+v, want pod IP %s", st, tc.wantIP)
				}
			}
		})
	}
}

// A hostNetwork pod's IPs, for status.podIP(s) in its environment, are
// the node's: its first, and the first of the other family.
func TestHostNetworkPodIPs(t *testing.T) {
	for _, tc := range []struct {
		node []string
		want []string
	}{
		{[]string{"192.0.2.10"}, []string{"192.0.2.10"}},
		{[]string{"192.0.2.10", "192.0.2.11", "2001:db8::1"}, []string{"192.0.2.10", "2001:db8::1"}},
		{[]string{"2001:db8::1", "192.0.2.10"}, []string{"2001:db8::1", "192.0.2.10"}},
	} {
		var ips []net.IP
		for _, s := range tc.node {
			ips = append(ips, net.ParseIP(s))
		}
		if got := hostNetworkPodIPs(ips); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("hostNetworkPodIPs(%v) = %v, want %v", tc.node, got, tc.want)
		}
	}
}
