package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/cni/libcni"
	"k8s.io/klog/v2"
)

// An ADD interrupted by the agent's death leaves what the plugins did so far
// (an IPAM address, a veth, port-mapping rules) with nothing that says so:
// libcni caches an attachment only once ADD succeeded, and the runtime,
// whose RunPodSandbox then fails, drops the sandbox after its own DEL
// failed too (the delegate plugin could not reach the agent). So before
// ADD the agent writes an intent (the config and arguments DEL needs)
// under <cache dir>/nodeagent-pending, and removes it once ADD returned and
// anything it did was rolled back or cached. CollectGarbage deletes the
// networks of intents and cache entries whose sandbox the runtime no
// longer has: the soak campaign found the address leak (docs/reliability.md).

const pendingDirName = "nodeagent-pending"

// gcMinAge is how old an intent or a cache entry must be, when the
// runtime's sandboxes were listed, for its sandbox's absence to mean
// anything: a sandbox the runtime is still creating is not listed yet.
const gcMinAge = time.Minute

// intent is what DEL needs of an ADD that may not have finished.
type intent struct {
	Config         json.RawMessage `json:"config"`
	ContainerID    string          `json:"containerID"`
	NetNS          string          `json:"netns,omitempty"`
	IfName         string          `json:"ifName"`
	Args           [][2]string     `json:"args,omitempty"`
	CapabilityArgs map[string]any  `json:"capabilityArgs,omitempty"`
}

func (m *Manager) pendingDir() string { return filepath.Join(m.cfg.CacheDir, pendingDirName) }

// pendingFile is the intent of a sandbox; sandbox IDs are the runtime's
// (hex), anything with a separator is refused before it gets here.
func (m *Manager) pendingFile(sandboxID string) string {
	return filepath.Join(m.pendingDir(), sandboxID)
}

// recordIntent writes the intent of an ADD (atomically: a temporary file
// renamed) and marks the sandbox's ADD as running in this process.
func (m *Manager) recordIntent(list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	if strings.ContainsAny(rt.ContainerID, `/\`) || rt.ContainerID == "." || rt.ContainerID == ".." {
		return fmt.Errorf("sandbox ID %q is not a file name", rt.ContainerID)
	}
	// Marked as running before the file exists: a collection never sees
	// the intent of an ADD in flight as stale.
	m.mu.Lock()
	if m.adding == nil {
		m.adding = map[string]int{}
	}
	m.adding[rt.ContainerID]++
	m.mu.Unlock()
	b, err := json.Marshal(intent{Config: list.Bytes, ContainerID: rt.ContainerID, NetNS: rt.NetNS, IfName: rt.IfName,
		Args: rt.Args, CapabilityArgs: rt.CapabilityArgs})
	if err != nil {
		m.endIntent(rt.ContainerID, false)
		return fmt.Errorf("encode the CNI intent of sandbox %s: %w", rt.ContainerID, err)
	}
	if err := os.MkdirAll(m.pendingDir(), 0o700); err != nil {
		m.endIntent(rt.ContainerID, false)
		return fmt.Errorf("record the CNI intent of sandbox %s: %w", rt.ContainerID, err)
	}
	f, err := os.CreateTemp(m.pendingDir(), ".tmp-")
	if err != nil {
		m.endIntent(rt.ContainerID, false)
		return fmt.Errorf("record the CNI intent of sandbox %s: %w", rt.ContainerID, err)
	}
	_, werr := f.Write(b)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), m.pendingFile(rt.ContainerID))
	}
	if werr != nil {
		_ = os.Remove(f.Name())
		m.endIntent(rt.ContainerID, false)
		return fmt.Errorf("record the CNI intent of sandbox %s: %w", rt.ContainerID, werr)
	}
	return nil
}

// endIntent ends an ADD; done removes its intent (ADD succeeded and is
// cached, or failed and was rolled back), otherwise it stays for
// CollectGarbage.
func (m *Manager) endIntent(sandboxID string, done bool) {
	m.mu.Lock()
	if m.adding[sandboxID]--; m.adding[sandboxID] <= 0 {
		delete(m.adding, sandboxID)
	}
	m.mu.Unlock()
	if done {
		if err := os.Remove(m.pendingFile(sandboxID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			klog.Background().Error(err, "Removing the CNI intent of a finished ADD", "sandbox", sandboxID)
		}
	}
}

func (m *Manager) isAdding(sandboxID string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.adding[sandboxID] > 0
}

// CollectGarbage deletes the networks of sandboxes the runtime no longer
// has: an intent left by an interrupted ADD (DEL with the intent's config
// and arguments, or with the current config if the intent does not read),
// and an attachment cached at ADD (DEL with the cached config, which also
// removes the entry). sandboxes are the IDs the runtime listed at
// listedAt; anything younger than gcMinAge then, or with an ADD running
// here, is left alone. Errors are logged and the entry stays for the next
// collection.
func (m *Manager) CollectGarbage(ctx context.Context, sandboxes map[string]bool, listedAt time.Time) {
	logger := klog.FromContext(ctx)
	stale := func(id string, mod time.Time) bool {
		return id != "" && !sandboxes[id] && !m.isAdding(id) && mod.Before(listedAt.Add(-gcMinAge))
	}
	// The first collection of this process sees the intents of ADDs that
	// ran in an earlier one, which is gone: their age does not matter.
	m.mu.Lock()
	first := !m.collected
	m.collected = true
	m.mu.Unlock()
	staleIntent := func(id string, mod time.Time) bool {
		return stale(id, mod) || first && id != "" && !sandboxes[id] && !m.isAdding(id)
	}
	entries, err := os.ReadDir(m.pendingDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		logger.Error(err, "Reading the CNI intents", "dir", m.pendingDir())
	}
	for _, e := range entries {
		id := e.Name()
		info, err := e.Info()
		if err != nil || strings.HasPrefix(id, ".tmp-") && info.ModTime().Before(listedAt.Add(-gcMinAge)) {
			_ = os.Remove(filepath.Join(m.pendingDir(), id)) // a write that never finished
			continue
		}
		if !info.Mode().IsRegular() || strings.HasPrefix(id, ".tmp-") || !staleIntent(id, info.ModTime()) {
			continue
		}
		if err := m.collectIntent(ctx, id); err != nil {
			logger.Error(err, "Deleting the network of an interrupted ADD", "sandbox", id)
			continue
		}
		logger.Info("Deleted the network of an ADD interrupted with no sandbox left", "sandbox", id)
	}
	results, err := os.ReadDir(m.resultsDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		logger.Error(err, "Reading the CNI cache", "dir", m.resultsDir())
	}
	done := map[string]bool{}
	for _, e := range results {
		// libcni names its entries <network>-<container ID>-<interface>;
		// container IDs have no dash.
		name, ok := strings.CutSuffix(e.Name(), "-"+ifName)
		if !ok {
			continue
		}
		id := name[strings.LastIndex(name, "-")+1:]
		info, err := e.Info()
		if err != nil || done[id] || !stale(id, info.ModTime()) {
			continue
		}
		done[id] = true
		atts, _, err := m.attachments(id)
		if err != nil || len(atts) == 0 || !podAttachment(atts, id) {
			// The runtime's own entries, nothing readable (Remove would
			// guess), or another tool's container in a shared cache dir.
			continue
		}
		if err := m.Remove(ctx, PodNetwork{SandboxID: id}); err != nil {
			logger.Error(err, "Deleting the network of a sandbox the runtime no longer has", "sandbox", id)
			continue
		}
		logger.Info("Deleted the network of a sandbox the runtime no longer has", "sandbox", id)
	}
}

// podAttachment reports whether the cached attachments are a pod sandbox's
// as the agent adds them: CNI args naming id as the pod's infra container.
func podAttachment(atts []attachment, id string) bool {
	for _, a := range atts {
		for _, kv := range a.rt.Args {
			if kv[0] == "K8S_POD_INFRA_CONTAINER_ID" && kv[1] == id {
				return true
			}
		}
	}
	return false
}

// maxIntent bounds an intent file: a config list and the pod's arguments.
const maxIntent = 1 << 20

// readIntent reads an intent, without following a link and at most
// maxIntent bytes. The directory is the agent's (under the CNI cache dir,
// which no pod mounts); the bounds are for a disk that garbled it.
func readIntent(file string) ([]byte, error) {
	f, err := os.OpenFile(file, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, maxIntent+1))
	if err == nil && len(b) > maxIntent {
		err = fmt.Errorf("%s is larger than %d bytes", file, maxIntent)
	}
	return b, err
}

// collectIntent runs the DEL of an interrupted ADD and removes its intent.
func (m *Manager) collectIntent(ctx context.Context, id string) error {
	file := m.pendingFile(id)
	if atts, _, err := m.attachments(id); err == nil && len(atts) > 0 {
		// ADD finished and was cached; the cache entry is collected as such.
		return os.Remove(file)
	}
	var in intent
	var list *libcni.NetworkConfigList
	b, err := readIntent(file)
	if err == nil {
		err = json.Unmarshal(b, &in)
	}
	if err == nil {
		list, err = libcni.ConfListFromBytes(in.Config)
	}
	if err != nil || in.ContainerID != id {
		// Ours, but unusable: delete with the current config, which
		// releases the address by the sandbox ID.
		klog.FromContext(ctx).Info("Warning: unreadable CNI intent; deleting with the current network config", "file", file, "err", err)
		if err := m.Remove(ctx, PodNetwork{SandboxID: id}); err != nil {
			return err
		}
		return os.Remove(file)
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
	defer cancel()
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: existingNetNS(in.NetNS), IfName: in.IfName, Args: in.Args, CapabilityArgs: in.CapabilityArgs}
	if err := m.del(dctx, list, rt); err != nil {
		return fmt.Errorf("delete network %q of sandbox %s (intent %s): %w", list.Name, id, file, err)
	}
	return os.Remove(file)
}
