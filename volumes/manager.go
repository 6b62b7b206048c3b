package volumes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Plugin directory names, as the kubelet names them.
const (
	pluginEmptyDir  = "kubernetes.io~empty-dir"
	pluginConfigMap = "kubernetes.io~configmap"
	pluginSecret    = "kubernetes.io~secret" //nolint:gosec // a directory name, not a credential
	pluginProjected = "kubernetes.io~projected"
	pluginDownward  = "kubernetes.io~downward-api"
)

// ErrUnsupported matches the error of a volume type nodeagent does not
// implement yet.
var ErrUnsupported = errors.New("volume type not supported by nodeagent yet")

type unsupportedError struct{ volume, kind string }

func (e *unsupportedError) Error() string {
	return fmt.Sprintf("volume %q: %s volumes are not supported by nodeagent yet", e.volume, e.kind)
}

func (e *unsupportedError) Is(target error) bool { return target == ErrUnsupported }

func unsupported(volume, kind string) error { return &unsupportedError{volume: volume, kind: kind} }

// Manager prepares pod volumes under rootDir.
type Manager struct {
	client  kubernetes.Interface
	rootDir string
	clock   clock.PassiveClock

	// NodeAllocatable returns the node's allocatable resources, used for
	// downward API resource limits a container does not set. May be nil.
	// Set before the first Setup.
	NodeAllocatable func() v1.ResourceList
	// Mounter mounts tmpfs for memory-backed emptyDir volumes. NewManager
	// sets it when running as root on Linux; when nil, memory-backed
	// emptyDirs are plain directories. Set before the first Setup.
	Mounter Mounter

	// Wake asks for a sync of a pod whose volume sources changed (see
	// watch.go). When nil, nothing is watched: sources are read from the
	// API at every Setup. Set before the first Setup.
	Wake func(types.UID)

	mu     sync.Mutex
	tokens map[tokenKey]*cachedToken
	w      watches
}

// NewManager returns a Manager keeping pod volumes under rootDir.
func NewManager(client kubernetes.Interface, rootDir string, clock clock.PassiveClock) *Manager {
	return &Manager{
		client:  client,
		rootDir: rootDir,
		clock:   clock,
		Mounter: defaultMounter(),
		tokens:  map[tokenKey]*cachedToken{},
	}
}

func (m *Manager) podDir(uid types.UID) string {
	return filepath.Join(m.rootDir, "pods", string(uid))
}

func (m *Manager) volumeDir(uid types.UID, plugin, name string) string {
	return filepath.Join(m.podDir(uid), "volumes", plugin, name)
}

// Setup makes every volume of pod ready and returns volume name -> host
// path. It is idempotent; calling it again refreshes ConfigMap and Secret
// contents and renews tokens that are due. It sets up every volume it can
// and returns the errors of the others joined.
func (m *Manager) Setup(ctx context.Context, pod *v1.Pod) (map[string]string, error) {
	if pod.UID == "" || strings.ContainsAny(string(pod.UID), "/\\") || pod.UID == "." || pod.UID == ".." {
		return nil, fmt.Errorf("pod %s has invalid UID %q", klog.KObj(pod), pod.UID)
	}
	m.setupStarted(pod)
	paths := make(map[string]string, len(pod.Spec.Volumes))
	var errs []error
	for i := range pod.Spec.Volumes {
		vol := &pod.Spec.Volumes[i]
		p, err := m.setupVolume(ctx, pod, vol)
		if err != nil {
			if !errors.Is(err, ErrUnsupported) {
				err = fmt.Errorf("volume %q: %w", vol.Name, err)
			}
			errs = append(errs, err)
			continue
		}
		paths[vol.Name] = p
	}
	if err := errors.Join(errs...); err != nil {
		return paths, fmt.Errorf("set up volumes of pod %s: %w", klog.KObj(pod), err)
	}
	return paths, nil
}

func (m *Manager) setupVolume(ctx context.Context, pod *v1.Pod, vol *v1.Volume) (string, error) {
	if vol.Name == "" || vol.Name == "." || vol.Name == ".." || strings.ContainsAny(vol.Name, "/\\") {
		return "", fmt.Errorf("invalid volume name")
	}
	src := &vol.VolumeSource
	var plugin string
	var memory bool // secret values never reach the disk
	var payload map[string]file
	var err error
	switch {
	case src.EmptyDir != nil || sourceKind(src) == "":
		dir := m.volumeDir(pod.UID, pluginEmptyDir, vol.Name)
		return dir, m.setupEmptyDir(ctx, pod, vol.Name, dir, src.EmptyDir)
	case src.HostPath != nil:
		return setupHostPath(src.HostPath)
	case src.Image != nil:
		// Nothing on the host: the runtime mounts the image itself (CRI
		// Mount.Image), as with the kubelet's image plugin, whose SetUp
		// does nothing and whose path is "".
		return "", nil
	case src.ConfigMap != nil:
		plugin = pluginConfigMap
		payload, err = m.configMapPayload(ctx, pod, src.ConfigMap.Name, src.ConfigMap.Items,
			modeOf(src.ConfigMap.DefaultMode, defaultMode), isTrue(src.ConfigMap.Optional))
	case src.Secret != nil:
		plugin, memory = pluginSecret, true
		payload, err = m.secretPayload(ctx, pod, src.Secret.SecretName, src.Secret.Items,
			modeOf(src.Secret.DefaultMode, defaultMode), isTrue(src.Secret.Optional))
	case src.DownwardAPI != nil:
		plugin = pluginDownward
		payload, err = m.downwardPayload(pod, src.DownwardAPI.Items, modeOf(src.DownwardAPI.DefaultMode, defaultMode))
	case src.Projected != nil:
		plugin, memory = pluginProjected, true
		payload, err = m.projectedPayload(ctx, pod, vol.Name, src.Projected)
	default:
		return "", unsupported(vol.Name, sourceKind(src))
	}
	if err != nil {
		return "", err
	}
	dir := m.volumeDir(pod.UID, plugin, vol.Name)
	if err := m.mkdirNoFollow(dir, 0o755); err != nil {
		return "", err
	}
	if memory {
		if err := m.mountTmpfs(ctx, pod, vol.Name, dir, nil, 0o755); err != nil {
			return "", err
		}
	}
	gid := -1
	if g := fsGroup(pod); g != nil {
		gid = int(*g)
		withFSGroup(payload)
	}
	changed, err := writeAtomic(dir, payload, gid)
	if err != nil {
		return "", fmt.Errorf("write %s: %w", dir, err)
	}
	if changed {
		klog.FromContext(ctx).V(4).Info("Updated volume", "pod", klog.KObj(pod), "podUID", pod.UID, "volume", vol.Name, "path", dir)
	}
	return dir, nil
}

// fsGroup is the pod's fsGroup, nil when unset.
func fsGroup(pod *v1.Pod) *int64 {
	if sc := pod.Spec.SecurityContext; sc != nil {
		return sc.FSGroup
	}
	return nil
}

// sourceKind returns the API name (e.g. "hostPath") of the volume source
// that is set, or "" when none is.
func sourceKind(src *v1.VolumeSource) string {
	v := reflect.ValueOf(src).Elem()
	for i := 0; i < v.NumField(); i++ {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			return name
		}
	}
	return ""
}

// Teardown unmounts everything mounted in the pod's directory (tmpfs of
// memory-backed volumes, subPath bind mounts), removes
// <rootDir>/pods/<podUID> and forgets the pod's cached tokens. When
// something stays mounted, nothing is removed: removing through a mount
// would delete what it shows (a subPath of a hostPath volume is the host's
// own directory).
func (m *Manager) Teardown(ctx context.Context, podUID types.UID) error {
	if !validName(string(podUID)) {
		return fmt.Errorf("invalid pod UID %q", podUID)
	}
	m.forgetTokens(podUID)
	m.forgetWatches(podUID)
	dir := m.podDir(podUID)
	if m.Mounter != nil {
		if err := m.unmountAll(dir); err != nil {
			return fmt.Errorf("tear down volumes of pod %s: %w", podUID, err)
		}
	}
	// The mount points of subPaths go one by one with os.Remove, which
	// fails on anything still mounted, before RemoveAll could walk into it.
	if err := removeSubPathTargets(filepath.Join(dir, subPathsDir)); err != nil {
		return fmt.Errorf("tear down volumes of pod %s: %w", podUID, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove volumes of pod %s: %w", podUID, err)
	}
	return nil
}

// mkdirNoFollow makes dir, below the root dir, and its missing parents
// with mode (an existing directory keeps its own), following no symbolic
// link on the way: a link or a file in a pod's directories is refused with
// an error naming it. What a pod directory holds is not to be trusted, and
// what comes next (chmod, chown, a mount, the atomic writer's pruning)
// would act on a link's target.
func (m *Manager) mkdirNoFollow(dir string, mode uint32) error {
	rel, err := filepath.Rel(m.rootDir, dir)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("%s is not below the root dir %s", dir, m.rootDir)
	}
	if err := os.MkdirAll(m.rootDir, 0o750); err != nil {
		return err
	}
	fd, err := openBeneath(m.rootDir, rel, unix.O_RDONLY|unix.O_DIRECTORY, mode)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// removeSubPathTargets removes <dir>/<volume>/<container>/<index> and the
// directories above them, each with os.Remove. It descends only into
// directories: anything else in their place (a link, a file) is removed
// as it is, never followed; reading through a link would remove the files
// of its target.
func removeSubPathTargets(dir string) error {
	if fi, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	} else if !fi.IsDir() {
		return os.Remove(dir)
	}
	vols, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, v := range vols {
		vdir := filepath.Join(dir, v.Name())
		if !v.IsDir() {
			if err := os.Remove(vdir); err != nil {
				return err
			}
			continue
		}
		ctrs, err := os.ReadDir(vdir)
		if err != nil {
			return err
		}
		for _, c := range ctrs {
			cdir := filepath.Join(vdir, c.Name())
			if !c.IsDir() {
				if err := os.Remove(cdir); err != nil {
					return err
				}
				continue
			}
			targets, err := os.ReadDir(cdir)
			if err != nil {
				return err
			}
			for _, t := range targets {
				if err := os.Remove(filepath.Join(cdir, t.Name())); err != nil {
					return err
				}
			}
			if err := os.Remove(cdir); err != nil {
				return err
			}
		}
		if err := os.Remove(vdir); err != nil {
			return err
		}
	}
	return os.Remove(dir)
}

// sortDeepestFirst orders paths so that a mount point comes before the
// mount points it is below.
func sortDeepestFirst(paths []string) {
	sort.Slice(paths, func(i, j int) bool {
		if a, b := strings.Count(paths[i], "/"), strings.Count(paths[j], "/"); a != b {
			return a > b
		}
		return paths[i] > paths[j]
	})
}
