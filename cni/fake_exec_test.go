package cni

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"
)

var _ invoke.Exec = (*fakeExec)(nil)

// call is one recorded plugin execution.
type call struct {
	Command, Plugin, ContainerID, NetNS, IfName, Args string
	Conf                                              map[string]any
	CtxErr                                            error
}

// runtimeConfig returns the runtimeConfig the plugin received.
func (c call) runtimeConfig() map[string]any {
	rc, _ := c.Conf["runtimeConfig"].(map[string]any)
	return rc
}

// fakeExec plays the plugins: VERSION supports up to 1.0.0, ADD of the first
// plugin returns result and chained plugins echo their prevResult.
type fakeExec struct {
	version.PluginDecoder

	mu      sync.Mutex
	calls   []call
	missing map[string]bool
	// fail makes a command of a plugin ("ADD portmap") fail; the hook, if
	// any, runs first.
	fail   map[string]error
	hook   func(c call)
	result string
}

func newFakeExec() *fakeExec {
	return &fakeExec{missing: map[string]bool{}, fail: map[string]error{}, result: dualStackResult}
}

const dualStackResult = `{
  "cniVersion": "1.0.0",
  "interfaces": [
    {"name": "cni0", "mac": "aa:bb:cc:00:00:01"},
    {"name": "veth1234", "mac": "aa:bb:cc:00:00:02"},
    {"name": "eth0", "mac": "aa:bb:cc:00:00:03", "sandbox": "/run/netns/test"}
  ],
  "ips": [
    {"interface": 2, "address": "fd00:10::5/64", "gateway": "fd00:10::1"},
    {"interface": 2, "address": "10.1.0.5/24", "gateway": "10.1.0.1"},
    {"interface": 0, "address": "10.1.0.1/24"}
  ]
}`

func (f *fakeExec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	env := map[string]string{}
	for _, e := range environ {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
	}
	c := call{
		Command: env["CNI_COMMAND"], Plugin: filepath.Base(pluginPath), ContainerID: env["CNI_CONTAINERID"],
		NetNS: env["CNI_NETNS"], IfName: env["CNI_IFNAME"], Args: env["CNI_ARGS"], CtxErr: ctx.Err(),
	}
	if err := json.Unmarshal(stdin, &c.Conf); err != nil {
		return nil, fmt.Errorf("bad stdin: %w", err)
	}
	if c.Command == "VERSION" {
		return []byte(`{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}`), nil
	}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	hook, err := f.hook, f.fail[c.Command+" "+c.Plugin]
	f.mu.Unlock()
	if hook != nil {
		hook(c)
	}
	if err != nil {
		return nil, err
	}
	if c.Command != "ADD" {
		return nil, nil
	}
	if prev, ok := c.Conf["prevResult"]; ok {
		return json.Marshal(prev)
	}
	return []byte(f.result), nil
}

func (f *fakeExec) FindInPath(plugin string, paths []string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.missing[plugin] || len(paths) == 0 {
		return "", fmt.Errorf("failed to find plugin %q in path %s", plugin, paths)
	}
	return filepath.Join(paths[0], plugin), nil
}

// take returns the recorded calls (not VERSION) and forgets them.
func (f *fakeExec) take() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// commands summarises calls as "ADD bridge" strings.
func commands(calls []call) []string {
	var out []string
	for _, c := range calls {
		out = append(out, c.Command+" "+c.Plugin)
	}
	return out
}

// bridgeList is a conflist with bridge (and ipRanges), portmap and bandwidth.
func bridgeList(name, bridge string) string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true,
     "capabilities": {"ipRanges": true},
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.1.0.0/24"}]]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "bandwidth", "capabilities": {"bandwidth": true}}
  ]
}`, name, bridge)
}

// testManager returns a manager over temporary dirs with a fake exec.
func testManager(t *testing.T, files map[string]string) (*Manager, *fakeExec, string) {
	t.Helper()
	dir := t.TempDir()
	confDir := filepath.Join(dir, "net.d")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, confDir, files)
	fe := newFakeExec()
	m := New(Config{ConfDir: confDir, BinDirs: []string{"/fake/bin"}, CacheDir: filepath.Join(dir, "cache")}, fe)
	return m, fe, confDir
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
