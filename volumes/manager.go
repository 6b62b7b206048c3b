package volumes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"

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
	pluginSecret    = "kubernetes.io~secret"
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

	mu     sync.Mutex
	tokens map[tokenKey]*cachedToken
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
	var payload map[string]file
	var err error
	switch {
	case src.EmptyDir != nil || sourceKind(src) == "":
		dir := m.volumeDir(pod.UID, pluginEmptyDir, vol.Name)
		return dir, m.setupEmptyDir(ctx, pod, vol.Name, dir, src.EmptyDir)
	case src.HostPath != nil:
		return setupHostPath(src.HostPath)
	case src.ConfigMap != nil:
		plugin = pluginConfigMap
		payload, err = m.configMapPayload(ctx, pod.Namespace, src.ConfigMap.Name, src.ConfigMap.Items,
			modeOf(src.ConfigMap.DefaultMode, defaultMode), isTrue(src.ConfigMap.Optional))
	case src.Secret != nil:
		plugin = pluginSecret
		payload, err = m.secretPayload(ctx, pod.Namespace, src.Secret.SecretName, src.Secret.Items,
			modeOf(src.Secret.DefaultMode, defaultMode), isTrue(src.Secret.Optional))
	case src.DownwardAPI != nil:
		plugin = pluginDownward
		payload, err = m.downwardPayload(pod, src.DownwardAPI.Items, modeOf(src.DownwardAPI.DefaultMode, defaultMode))
	case src.Projected != nil:
		plugin = pluginProjected
		payload, err = m.projectedPayload(ctx, pod, vol.Name, src.Projected)
	default:
		return "", unsupported(vol.Name, sourceKind(src))
	}
	if err != nil {
		return "", err
	}
	dir := m.volumeDir(pod.UID, plugin, vol.Name)
	changed, err := writeAtomic(dir, payload)
	if err != nil {
		return "", fmt.Errorf("write %s: %w", dir, err)
	}
	if changed {
		klog.FromContext(ctx).V(4).Info("Updated volume", "pod", klog.KObj(pod), "podUID", pod.UID, "volume", vol.Name, "path", dir)
	}
	return dir, nil
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

// Teardown unmounts the memory-backed emptyDirs of the pod, removes
// <rootDir>/pods/<podUID> and forgets the pod's cached tokens.
func (m *Manager) Teardown(ctx context.Context, podUID types.UID) error {
	if podUID == "" || strings.ContainsAny(string(podUID), "/\\") || podUID == "." || podUID == ".." {
		return fmt.Errorf("invalid pod UID %q", podUID)
	}
	m.forgetTokens(podUID)
	if m.Mounter != nil {
		emptyDirs := filepath.Join(m.podDir(podUID), "volumes", pluginEmptyDir)
		entries, err := os.ReadDir(emptyDirs)
		if err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("tear down volumes of pod %s: %w", podUID, err)
		}
		for _, e := range entries {
			dir := filepath.Join(emptyDirs, e.Name())
			mounted, err := m.Mounter.IsMountPoint(dir)
			if err != nil {
				return fmt.Errorf("tear down volume %q of pod %s: %w", e.Name(), podUID, err)
			}
			if !mounted {
				continue
			}
			if err := m.Mounter.Unmount(dir); err != nil {
				return fmt.Errorf("unmount volume %q of pod %s: %w", e.Name(), podUID, err)
			}
			klog.FromContext(ctx).V(4).Info("Unmounted tmpfs", "podUID", podUID, "volume", e.Name())
		}
	}
	if err := os.RemoveAll(m.podDir(podUID)); err != nil {
		return fmt.Errorf("remove volumes of pod %s: %w", podUID, err)
	}
	return nil
}
