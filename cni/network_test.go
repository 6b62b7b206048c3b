package cni

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/component-base/metrics"
)

const wantArgs = "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=sb1;K8S_POD_UID=uid-1"

func testPod() PodNetwork {
	return PodNetwork{
		Namespace: "ns1", Name: "web", UID: "uid-1", SandboxID: "sb1", NetNSPath: "/run/netns/test",
		PortMappings:     []PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "TCP"}, {ContainerPort: 81}},
		IngressBandwidth: "1M", EgressBandwidth: "2M",
		PodCIDRs: []string{"10.1.0.0/24", "fd00:10::/64"},
	}
}

// asJSON normalises v for comparison with decoded stdin.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func mustLoad(t *testing.T, m *Manager) {
	t.Helper()
	if err := m.Load(context.Background()); err != nil {
		t.Fatalf("Load: %v", err)
	}
}

func TestSetupArgsAndCapabilities(t *testing.T) {
	m, fe, _ := testManager(t, map[string]string{"10-net.conflist": bridgeList("podnet", "cni0")})
	mustLoad(t, m)
	res, err := m.Setup(context.Background(), testPod())
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	var ips []string
	for _, ip := range res.IPs {
		ips = append(ips, ip.String())
	}
	if want := []string{"10.1.0.5", "fd00:10::5"}; !reflect.DeepEqual(ips, want) {
		t.Errorf("IPs = %v, want %v", ips, want)
	}
	calls := fe.take()
	if got, want := commands(calls), []string{"ADD bridge", "ADD portmap", "ADD bandwidth"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("calls = %v, want %v", got, want)
	}
	for _, c := range calls {
		if c.Args != wantArgs || c.ContainerID != "sb1" || c.IfName != "eth0" || c.NetNS != "/run/netns/test" {
			t.Errorf("%s %s: args %q container %q ifname %q netns %q", c.Command, c.Plugin, c.Args, c.ContainerID, c.IfName, c.NetNS)
		}
	}
	wantRC := []any{
		asJSON(t, map[string]any{"ipRanges": [][]map[string]string{{{"subnet": "10.1.0.0/24"}}, {{"subnet": "fd00:10::/64"}}}}),
		asJSON(t, map[string]any{"portMappings": []map[string]any{{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}}}),
		asJSON(t, map[string]any{"bandwidth": map[string]any{"ingressRate": 1000000, "ingressBurst": 2147483647, "egressRate": 2000000, "egressBurst": 2147483647}}),
	}
	for i, c := range calls {
		if got := asJSON(t, c.runtimeConfig()); !reflect.DeepEqual(got, wantRC[i]) {
			t.Errorf("%s runtimeConfig = %v, want %v", c.Plugin, got, wantRC[i])
		}
	}
}

func TestSetupNotReady(t *testing.T) {
	m, fe, _ := testManager(t, nil)
	_ = m.Load(context.Background())
	if _, err := m.Setup(context.Background(), testPod()); !IsNotReady(err) {
		t.Fatalf("Setup error = %v, want not ready", err)
	}
	if c := fe.take(); len(c) != 0 {
		t.Errorf("plugins ran: %v", commands(c))
	}
}

func TestSetupBadBandwidth(t *testing.T) {
	m, fe, _ := testManager(t, map[string]string{"10-net.conflist": bridgeList("podnet", "cni0")})
	mustLoad(t, m)
	pn := testPod()
	pn.EgressBandwidth = "lots"
	_, err := m.Setup(context.Background(), pn)
	if err == nil || !strings.Contains(err.Error(), EgressBandwidthAnnotation) {
		t.Fatalf("Setup error = %v, want one naming %s", err, EgressBandwidthAnnotation)
	}
	if c := fe.take(); len(c) != 0 {
		t.Errorf("plugins ran: %v", commands(c))
	}
}

// A failed ADD is rolled back by DEL on a live context even when the
// caller's context was cancelled during ADD.
func TestSetupRollsBackOnFreshContext(t *testing.T) {
	m, fe, _ := testManager(t, map[string]string{"10-net.conflist": bridgeList("podnet", "cni0")})
	mustLoad(t, m)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fe.fail["ADD portmap"] = context.Canceled
	fe.hook = func(c call) {
		if c.Command == "ADD" && c.Plugin == "portmap" {
			cancel()
		}
	}
	_, err := m.Setup(ctx, testPod())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Setup error = %v, want the ADD failure", err)
	}
	calls := fe.take()
	want := []string{"ADD bridge", "ADD portmap", "DEL bandwidth", "DEL portmap", "DEL bridge"}
	if got := commands(calls); !reflect.DeepEqual(got, want) {
		t.Fatalf("calls = %v, want %v", got, want)
	}
	for _, c := range calls[2:] {
		if c.CtxErr != nil {
			t.Errorf("DEL %s ran on a done context: %v", c.Plugin, c.CtxErr)
		}
		if c.runtimeConfig() == nil && c.Plugin != "bandwidth" && c.Plugin != "bridge" {
			t.Errorf("DEL %s without runtimeConfig", c.Plugin)
		}
	}
}

// A result without a pod IP is a failure, rolled back.
func TestSetupNoIP(t *testing.T) {
	m, fe, _ := testManager(t, map[string]string{"10-net.conflist": bridgeList("podnet", "cni0")})
	mustLoad(t, m)
	fe.result = `{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/x"}]}`
	if _, err := m.Setup(context.Background(), testPod()); err == nil || !strings.Contains(err.Error(), "no pod IP") {
		t.Fatalf("Setup error = %v", err)
	}
	if got := commands(fe.take()); len(got) != 6 || got[3] != "DEL bandwidth" {
		t.Errorf("calls = %v, want ADD then DEL of all three", got)
	}
}

// DEL uses the config, CNI args and capability args cached at ADD, even
// after the conf dir names another network; a namespace that is gone is
// passed as an empty path.
func TestRemoveUsesCachedConfig(t *testing.T) {
	m, fe, confDir := testManager(t, map[string]string{"10-net.conflist": bridgeList("net-a", "br-a")})
	mustLoad(t, m)
	if _, err := m.Setup(context.Background(), testPod()); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	fe.take()
	if err := os.Remove(filepath.Join(confDir, "10-net.conflist")); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, confDir, map[string]string{"20-other.conflist": bridgeList("net-b", "br-b")})
	mustLoad(t, m)

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Remove must not care
	pn := PodNetwork{Namespace: "ns1", Name: "web", SandboxID: "sb1", NetNSPath: filepath.Join(t.TempDir(), "gone")}
	if err := m.Remove(ctx, pn); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	calls := fe.take()
	if got, want := commands(calls), []string{"DEL bandwidth", "DEL portmap", "DEL bridge"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("calls = %v, want %v", got, want)
	}
	for _, c := range calls {
		if c.Conf["name"] != "net-a" || c.Args != wantArgs || c.NetNS != "" || c.CtxErr != nil {
			t.Errorf("DEL %s: network %v args %q netns %q ctxErr %v", c.Plugin, c.Conf["name"], c.Args, c.NetNS, c.CtxErr)
		}
		if _, ok := c.Conf["prevResult"]; !ok {
			t.Errorf("DEL %s without the cached prevResult", c.Plugin)
		}
	}
	if c := calls[2]; c.Conf["bridge"] != "br-a" {
		t.Errorf("DEL bridge with bridge %v, want br-a", c.Conf["bridge"])
	}
	if rc := calls[1].runtimeConfig(); rc["portMappings"] == nil {
		t.Errorf("DEL portmap without the cached portMappings: %v", rc)
	}

	// The cache entry is gone: a second Remove uses the current config.
	if err := m.Remove(context.Background(), pn); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	calls = fe.take()
	if len(calls) != 3 || calls[0].Conf["name"] != "net-b" {
		t.Errorf("second Remove calls = %v", commands(calls))
	}
}

func TestRemoveWithoutCacheOrConfig(t *testing.T) {
	m, fe, _ := testManager(t, nil)
	_ = m.Load(context.Background())
	if err := m.Remove(context.Background(), testPod()); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if c := fe.take(); len(c) != 0 {
		t.Errorf("plugins ran: %v", commands(c))
	}
}

func TestRemoveReportsFailure(t *testing.T) {
	m, fe, _ := testManager(t, map[string]string{"10-net.conflist": bridgeList("podnet", "cni0")})
	mustLoad(t, m)
	fe.fail["DEL bridge"] = errors.New("boom")
	err := m.Remove(context.Background(), testPod())
	if err == nil || !strings.Contains(err.Error(), "boom") || !strings.Contains(err.Error(), "podnet") {
		t.Fatalf("Remove error = %v", err)
	}
}

// After a restart a new manager over the same cache checks the adopted
// sandbox and knows its IPs without running ADD.
func TestCheckAndCachedResultAfterRestart(t *testing.T) {
	m, fe, _ := testManager(t, map[string]string{"10-net.conflist": bridgeList("podnet", "cni0")})
	mustLoad(t, m)
	if _, err := m.Setup(context.Background(), testPod()); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	fe.take()
	m2 := New(m.cfg, fe)
	mustLoad(t, m2)
	netns := filepath.Join(t.TempDir(), "ns")
	writeFiles(t, filepath.Dir(netns), map[string]string{"ns": ""})
	pn := testPod()
	pn.NetNSPath = netns
	if err := m2.Check(context.Background(), pn); err != nil {
		t.Fatalf("Check: %v", err)
	}
	calls := fe.take()
	if got, want := commands(calls), []string{"CHECK bridge", "CHECK portmap", "CHECK bandwidth"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("calls = %v, want %v", got, want)
	}
	if c := calls[0]; c.NetNS != netns || c.Args != wantArgs || c.Conf["prevResult"] == nil {
		t.Errorf("CHECK bridge: netns %q args %q prevResult %v", c.NetNS, c.Args, c.Conf["prevResult"])
	}
	res, err := m2.CachedResult(pn)
	if err != nil || len(res.IPs) != 2 || res.IPs[0].String() != "10.1.0.5" {
		t.Errorf("CachedResult = %v, %v", res, err)
	}

	other := PodNetwork{SandboxID: "sb2"}
	if err := m2.Check(context.Background(), other); !IsNotSetUp(err) {
		t.Errorf("Check of an unknown sandbox = %v, want not set up", err)
	}
	if _, err := m2.CachedResult(other); !IsNotSetUp(err) {
		t.Errorf("CachedResult of an unknown sandbox = %v, want not set up", err)
	}
}

func TestMetrics(t *testing.T) {
	m, fe, _ := testManager(t, map[string]string{"10-net.conflist": bridgeList("podnet", "cni0")})
	reg := metrics.NewKubeRegistry()
	reg.MustRegister(m.Collectors()...)
	mustLoad(t, m)
	if _, err := m.Setup(context.Background(), testPod()); err != nil {
		t.Fatal(err)
	}
	fe.fail["DEL bridge"] = errors.New("boom")
	_ = m.Remove(context.Background(), testPod())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			key := mf.GetName() + "/" + mt.GetLabel()[0].GetValue()
			if h := mt.GetHistogram(); h != nil {
				got[key] = h.GetSampleCount()
			} else {
				got[key] = uint64(mt.GetCounter().GetValue())
			}
		}
	}
	want := map[string]uint64{
		"nodeagent_network_plugin_operations_duration_seconds/add": 1,
		"nodeagent_network_plugin_operations_duration_seconds/del": 1,
		"nodeagent_network_plugin_operations_errors_total/del":     1,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("metrics = %v, want %v", got, want)
	}
}
