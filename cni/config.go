package cni

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/fsnotify/fsnotify"
	"k8s.io/klog/v2"
)

// Defaults of the flags, the kubelet's old ones.
const (
	DefaultConfDir  = "/etc/cni/net.d"
	DefaultBinDir   = "/opt/cni/bin"
	DefaultCacheDir = "/var/lib/cni/cache"
)

// confExtensions are the files Load considers, as libcni's loaders do.
var confExtensions = []string{".conf", ".conflist", ".json"}

// Config says where the network configs, the plugins and libcni's cache are.
type Config struct {
	ConfDir  string
	BinDirs  []string
	CacheDir string
}

// Manager runs the CNI plugins of the loaded network config for pod
// sandboxes. It is safe for concurrent use.
type Manager struct {
	cfg     Config
	cni     *libcni.CNIConfig
	metrics *operationMetrics
	// pollInterval is Watch's period; tests shorten it.
	pollInterval time.Duration

	mu      sync.RWMutex
	list    *libcni.NetworkConfigList // nil while not ready
	file    string                    // where list came from
	loadErr error                     // why list is nil
	snap    string                    // conf dir snapshot taken by the last Load
	adding  map[string]int            // sandboxes whose ADD runs (gc.go)
	// collected is set by the first CollectGarbage.
	collected bool
}

// New returns a Manager that has not loaded any config yet (Status reports
// not ready until Load succeeds). exec runs the plugins; nil means the real
// one, libcni's default.
func New(cfg Config, exec invoke.Exec) *Manager {
	if cfg.ConfDir == "" {
		cfg.ConfDir = DefaultConfDir
	}
	if len(cfg.BinDirs) == 0 {
		cfg.BinDirs = []string{DefaultBinDir}
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = DefaultCacheDir
	}
	if exec == nil {
		// libcni's default, set here: libcni sets it lazily, unlocked.
		exec = &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}, PluginDecoder: version.PluginDecoder{}}
	}
	return &Manager{
		cfg:          cfg,
		cni:          libcni.NewCNIConfigWithCacheDir(cfg.BinDirs, cfg.CacheDir, exec),
		metrics:      newOperationMetrics(),
		pollInterval: 2 * time.Second,
		loadErr:      fmt.Errorf("%w: network config not loaded yet", ErrNotReady),
	}
}

// Load (re)reads the conf dir. The first file in lexical order that parses
// as a network config list is used (a single plugin's .conf is wrapped into
// a list); the files before it that do not parse are named in a warning.
// The chosen list is validated: every plugin must be found in the bin dirs
// and support the list's cniVersion. When no file is usable the manager
// becomes not ready and the returned error, also reported by Status, names
// the problem.
func (m *Manager) Load(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	snap := snapshot(m.cfg.ConfDir)
	list, file, err := m.load(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.snap = snap
	if err != nil {
		m.list, m.file = nil, ""
		m.loadErr = fmt.Errorf("%w: %w", ErrNotReady, err)
		return m.loadErr
	}
	if m.file != file || m.list == nil || string(m.list.Bytes) != string(list.Bytes) {
		logger.Info("Loaded CNI network config", "file", file, "network", list.Name, "cniVersion", list.CNIVersion, "plugins", pluginTypes(list))
	}
	m.list, m.file, m.loadErr = list, file, nil
	return nil
}

func (m *Manager) load(ctx context.Context) (*libcni.NetworkConfigList, string, error) {
	logger := klog.FromContext(ctx)
	files, err := libcni.ConfFiles(m.cfg.ConfDir, confExtensions)
	if err != nil {
		return nil, "", fmt.Errorf("read CNI conf dir %s: %w", m.cfg.ConfDir, err)
	}
	if len(files) == 0 {
		return nil, "", fmt.Errorf("no network config found in %s", m.cfg.ConfDir)
	}
	sort.Strings(files)
	var skipped []string
	for i, f := range files {
		list, err := readList(f)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("%s: %v", filepath.Base(f), err))
			continue
		}
		if len(skipped) > 0 {
			logger.Info("Warning: skipped CNI config files that do not parse", "confDir", m.cfg.ConfDir, "files", skipped)
		}
		if len(files) > i+1 {
			logger.V(2).Info("Ignoring CNI config files after the chosen one", "chosen", f, "ignored", files[i+1:])
		}
		if _, err := m.cni.ValidateNetworkList(ctx, list); err != nil {
			return nil, "", fmt.Errorf("network config %s (network %q): %w", f, list.Name, err)
		}
		return list, f, nil
	}
	return nil, "", fmt.Errorf("no valid network config in %s: %s", m.cfg.ConfDir, strings.Join(skipped, "; "))
}

// readList parses one file: a .conflist as a list, a .conf or .json as a
// single plugin wrapped into a list, or as a list if it holds one.
func readList(file string) (*libcni.NetworkConfigList, error) {
	if filepath.Ext(file) == ".conflist" {
		return checkList(libcni.ConfListFromFile(file))
	}
	// The kubelet and containerd still read single-plugin .conf files.
	conf, err := libcni.ConfFromFile(file) //nolint:staticcheck // deprecated format, still supported (see above)
	if err != nil {
		if list, lerr := libcni.ConfListFromFile(file); lerr == nil {
			return checkList(list, nil)
		}
		return nil, err
	}
	return checkList(libcni.ConfListFromConf(conf)) //nolint:staticcheck // the same .conf support
}

func checkList(list *libcni.NetworkConfigList, err error) (*libcni.NetworkConfigList, error) {
	if err != nil {
		return nil, err
	}
	if len(list.Plugins) == 0 {
		return nil, fmt.Errorf("network %q has no plugins", list.Name)
	}
	return list, nil
}

func pluginTypes(list *libcni.NetworkConfigList) []string {
	var out []string
	for _, p := range list.Plugins {
		out = append(out, p.Network.Type)
	}
	return out
}

// Status returns nil when a usable network config is loaded, else an error
// wrapping ErrNotReady with the reason, for the runtime's NetworkReady
// condition and the Node's Ready condition.
func (m *Manager) Status() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.list == nil {
		return m.loadErr
	}
	return nil
}

// current returns the loaded list or the not-ready error.
func (m *Manager) current() (*libcni.NetworkConfigList, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.list == nil {
		return nil, m.loadErr
	}
	return m.list, nil
}

// Watch reloads the config when the conf dir changes, until ctx is done,
// calling onChange with Load's result after each reload that follows a
// change of the directory or changes the status. fsnotify events trigger a
// check at once (after a short debounce, so that a file being written is
// read whole); a poll every two seconds of the names, sizes and modification
// times of the directory's entries is the safety net, and also sees a conf
// dir created after the start. While the config is unusable every poll
// reloads, so that plugins installed after their config are picked up.
func (m *Manager) Watch(ctx context.Context, onChange func(error)) {
	logger := klog.FromContext(ctx)
	var events <-chan fsnotify.Event
	w, err := fsnotify.NewWatcher()
	if err != nil {
		logger.Info("Watching the CNI conf dir by polling only", "confDir", m.cfg.ConfDir, "err", err)
	} else {
		defer func() { _ = w.Close() }()
		events = w.Events
		go func() {
			for range w.Errors {
			}
		}()
	}
	tick := time.NewTicker(m.pollInterval)
	defer tick.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	for {
		if w != nil && len(w.WatchList()) == 0 {
			// Not there yet, or removed (fsnotify drops the watch): retry.
			_ = w.Add(m.cfg.ConfDir)
		}
		select {
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				events = nil
			}
			debounce.Reset(m.pollInterval / 20)
			continue
		case <-debounce.C:
		case <-tick.C:
		}
		m.reloadIfChanged(ctx, onChange)
	}
}

func (m *Manager) reloadIfChanged(ctx context.Context, onChange func(error)) {
	snap := snapshot(m.cfg.ConfDir)
	m.mu.RLock()
	changed := snap != m.snap
	before := m.loadErr
	m.mu.RUnlock()
	if !changed && before == nil {
		return
	}
	err := m.Load(ctx)
	if changed || errString(before) != errString(err) {
		onChange(err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// snapshot describes the conf dir's entries, and the network subdirectories
// libcni reads plugins from, by name, size and modification time.
func snapshot(dir string) string {
	var b strings.Builder
	var walk func(d string, depth int)
	walk = func(d string, depth int) {
		entries, err := os.ReadDir(d)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", d, err)
			return
		}
		for _, e := range entries {
			fi, err := e.Info()
			if err != nil {
				continue
			}
			fmt.Fprintf(&b, "%s %d %d %v\n", filepath.Join(d, e.Name()), fi.Size(), fi.ModTime().UnixNano(), fi.Mode())
			if e.IsDir() && depth == 0 {
				walk(filepath.Join(d, e.Name()), 1)
			}
		}
	}
	walk(dir, 0)
	return b.String()
}
