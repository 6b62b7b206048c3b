package podsync

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"

	"github.com/nodeagent/nodeagent/cni"
)

// TestWriteHostsRefusesLink: a link where the pod's etc-hosts is expected
// is refused with an error naming it; its target is not written.
func TestWriteHostsRefusesLink(t *testing.T) {
	e := newEnv(t)
	pod := testPod("uid1", v1.RestartPolicyAlways)
	target := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(target, []byte("host data"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(e.s.podDir(pod), "etc-hosts")
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.writeHosts(pod, "10.1.0.5"); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("writeHosts = %v, want an error naming %s", err, p)
	}
	if b, _ := os.ReadFile(target); string(b) != "host data" {
		t.Errorf("written through the link: %q", b)
	}

	// A truncated or garbage file of the agent's own is rewritten.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("\x00\xffgarb"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.writeHosts(pod, "10.1.0.5"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); !strings.HasPrefix(string(b), "# Kubernetes-managed hosts file.") || strings.Contains(string(b), "garb") {
		t.Errorf("hosts file %q", b)
	}
}

// TestGCLogDirsGarbage: what is not a directory nodeagent made in the pod
// logs directory survives the garbage collection of log directories:
// files, links (even to a directory with the owner marker), directories
// whose marker is a link or a directory, names of another shape.
func TestGCLogDirsGarbage(t *testing.T) {
	e := newEnv(t)
	logs := e.cfg.PodLogsDir
	host := t.TempDir()
	mk := func(rel string) string {
		t.Helper()
		p := filepath.Join(logs, rel)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write := func(p string) {
		t.Helper()
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(host, ownerMarker))
	write(filepath.Join(host, "precious"))
	mk("")
	write(filepath.Join(logs, "ns1_file_u1"))
	if err := os.Symlink(host, filepath.Join(logs, "ns1_link_u2")); err != nil {
		t.Fatal(err)
	}
	linked := mk("ns1_markerlink_u3")
	if err := os.Symlink(filepath.Join(host, ownerMarker), filepath.Join(linked, ownerMarker)); err != nil {
		t.Fatal(err)
	}
	mk(filepath.Join("ns1_markerdir_u4", ownerMarker))
	mk("not-a-pod-dir")
	mk("ns1_too_many_parts_u5")
	ours := mk("ns1_ours_u6")
	write(filepath.Join(ours, ownerMarker))

	e.s.gcLogDirs(context.Background(), func(types.UID) bool { return false }, nil)

	for _, name := range []string{"ns1_file_u1", "ns1_link_u2", "ns1_markerlink_u3", "ns1_markerdir_u4", "not-a-pod-dir", "ns1_too_many_parts_u5"} {
		if _, err := os.Lstat(filepath.Join(logs, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := os.Lstat(ours); !os.IsNotExist(err) {
		t.Errorf("the agent's own log directory of a gone pod is still there: %v", err)
	}
	for _, name := range []string{ownerMarker, "precious"} {
		if _, err := os.Stat(filepath.Join(host, name)); err != nil {
			t.Errorf("host %s: %v", name, err)
		}
	}
}

// TestAdoptWithUnreadableCNICache: after a restart, a running pod whose
// CNI cache entry does not read keeps running, in its sandbox, with the
// pod IPs it was reported with.
func TestAdoptWithUnreadableCNICache(t *testing.T) {
	e := newEnv(t)
	ip := critest.FakePodSandboxIPs[0]
	fn := &fakeNetwork{cached: []net.IP{net.ParseIP(ip)}}
	e.cfg.Network = fn
	e.s = New(e.cfg, e.rt, e.images, e.vols, fakeEnv{}, e.status, e.rec, e.clock)
	pod := testPod("uid1", v1.RestartPolicyAlways)
	if _, _, err := e.s.SyncPod(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	st := e.status.get(pod.UID)
	if st == nil || st.PodIP != ip {
		t.Fatalf("status before the restart: %+v", st)
	}
	pod.Status = *st
	sandboxes := e.sandboxesOf(pod.UID)
	ctr := e.containerID(t, pod.UID, "c", 0)
	e.rt.Lock()
	e.rt.Containers[ctr].State = runtimeapi.ContainerState_CONTAINER_RUNNING
	e.rt.Unlock()

	// The agent restarts and finds the cache entry damaged.
	fn.mu.Lock()
	fn.cacheErr = fmt.Errorf("cached network of sandbox %s: %w: /var/lib/cni/cache/results/podnet-%s-eth0", sandboxes[0].Id, cni.ErrUnreadableCache, sandboxes[0].Id)
	fn.mu.Unlock()
	s := New(e.cfg, e.rt, e.images, e.vols, fakeEnv{}, e.status, e.rec, e.clock)
	if _, _, err := s.SyncPod(context.Background(), pod); err != nil {
		t.Fatalf("SyncPod after the restart: %v", err)
	}
	if got := e.sandboxesOf(pod.UID); len(got) != 1 || got[0].Id != sandboxes[0].Id || got[0].State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("sandboxes after the restart: %v", got)
	}
	e.rt.Lock()
	state := e.rt.Containers[ctr].State
	e.rt.Unlock()
	if state != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("container %s is %v", ctr, state)
	}
	if fn.setups != 0 || fn.removes != 0 {
		t.Errorf("network set up %d and removed %d times", fn.setups, fn.removes)
	}
	if st := e.status.get(pod.UID); st == nil || st.PodIP != ip || len(st.PodIPs) != 1 || st.PodIPs[0].IP != ip {
		t.Errorf("status after the restart: %+v, want pod IP %s", st, ip)
	}
}

// TestReadResolvConfGarbage: garbage lines are ignored; what cannot be
// read is an error naming the file.
func TestReadResolvConfGarbage(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, err := readResolvConf(write("garbage", "\x00\xff garbage\nnameserver 10.0.0.53\nnameser"))
	if err != nil || len(cfg.Servers) != 1 || cfg.Servers[0] != "10.0.0.53" {
		t.Errorf("garbage around a nameserver: %v, %v", cfg, err)
	}
	if cfg, err := readResolvConf(write("empty", "")); err != nil || len(cfg.Servers) != 0 {
		t.Errorf("empty: %v, %v", cfg, err)
	}
	for _, p := range []string{write("long", strings.Repeat("x", 1<<20)), dir} {
		if _, err := readResolvConf(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want an error naming it", p, err)
		}
	}
}

// A hostNetwork pod's /etc/hosts is the node's under the kubelet's header,
// then its hostAliases under one header, as the kubelet's ensureHostsFile
// (upstream "should write entries to /etc/hosts when hostNetwork is
// enabled").
func TestWriteHostsHostNetwork(t *testing.T) {
	e := newEnv(t)
	node := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(node, []byte("127.0.0.1 localhost\n10.0.0.1 node\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := nodeHostsFile
	nodeHostsFile = node
	t.Cleanup(func() { nodeHostsFile = old })
	pod := testPod("uid1", v1.RestartPolicyAlways)
	pod.Spec.HostNetwork = true
	pod.Spec.HostAliases = []v1.HostAlias{{IP: "123.45.67.89", Hostnames: []string{"foo", "bar"}}, {IP: "1.2.3.4", Hostnames: []string{"baz"}}}
	p, err := e.s.writeHosts(pod, "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	want := "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n10.0.0.1 node\n" +
		"\n# Entries added by HostAliases.\n123.45.67.89\tfoo\tbar\n1.2.3.4\tbaz\n"
	if b, _ := os.ReadFile(p); string(b) != want {
		t.Errorf("hosts file:\n%s\nwant:\n%s", b, want)
	}
}
