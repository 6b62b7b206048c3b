package volumes

import (
	"context"
	"fmt"
	"os"

	"github.com/nodeagent/nodeagent/podenv"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// defaultMode is the API's default file mode (0644, 420 in decimal).
const defaultMode = 0o644

func modeOf(mode *int32, def os.FileMode) os.FileMode {
	if mode == nil {
		return def
	}
	return os.FileMode(*mode) & os.ModePerm
}

func isTrue(b *bool) bool { return b != nil && *b }

// keyPayload builds the payload of a configMap or secret: every key, or only
// items when given. A missing key fails unless optional.
func keyPayload(kind, name string, data map[string][]byte, items []v1.KeyToPath, mode os.FileMode, optional bool) (map[string]file, error) {
	payload := map[string]file{}
	if len(items) == 0 {
		for k, v := range data {
			payload[k] = file{data: v, mode: mode}
		}
		return payload, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf("%w: %s %q references non-existent key %q", podenv.ErrConfig, kind, name, it.Key)
		}
		payload[it.Path] = file{data: v, mode: modeOf(it.Mode, mode)}
	}
	return payload, nil
}

// configMapPayload fetches a ConfigMap; a missing one yields an empty payload
// when optional.
func (m *Manager) configMapPayload(ctx context.Context, pod *v1.Pod, name string, items []v1.KeyToPath, mode os.FileMode, optional bool) (map[string]file, error) {
	ns := pod.Namespace
	cm, err := m.ConfigMap(ctx, pod, name)
	if err != nil {
		if apierrors.IsNotFound(err) {
			if optional {
				return map[string]file{}, nil
			}
			return nil, fmt.Errorf("%w: ConfigMap %s/%s not found: %w", podenv.ErrConfig, ns, name, err)
		}
		return nil, fmt.Errorf("get ConfigMap %s/%s: %w", ns, name, err)
	}
	data := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return keyPayload("ConfigMap", ns+"/"+name, data, items, mode, optional)
}

// secretPayload fetches a Secret; a missing one yields an empty payload when
// optional.
func (m *Manager) secretPayload(ctx context.Context, pod *v1.Pod, name string, items []v1.KeyToPath, mode os.FileMode, optional bool) (map[string]file, error) {
	ns := pod.Namespace
	s, err := m.Secret(ctx, pod, name)
	if err != nil {
		if apierrors.IsNotFound(err) {
			if optional {
				return map[string]file{}, nil
			}
			return nil, fmt.Errorf("%w: Secret %s/%s not found: %w", podenv.ErrConfig, ns, name, err)
		}
		return nil, fmt.Errorf("get Secret %s/%s: %w", ns, name, err)
	}
	return keyPayload("Secret", ns+"/"+name, s.Data, items, mode, optional)
}

// downwardPayload resolves downward API items against the pod.
func (m *Manager) downwardPayload(pod *v1.Pod, items []v1.DownwardAPIVolumeFile, mode os.FileMode) (map[string]file, error) {
	payload := map[string]file{}
	var podIPs []string
	for _, ip := range pod.Status.PodIPs {
		podIPs = append(podIPs, ip.IP)
	}
	for _, it := range items {
		var v string
		var err error
		switch {
		case it.FieldRef != nil:
			v, err = podenv.FieldValue(pod, it.FieldRef.FieldPath, pod.Status.HostIP, pod.Status.PodIP, podIPs)
		case it.ResourceFieldRef != nil:
			var alloc v1.ResourceList
			if m.NodeAllocatable != nil {
				alloc = m.NodeAllocatable()
			}
			v, err = podenv.ResourceValue(it.ResourceFieldRef, pod, nil, alloc)
		default:
			err = fmt.Errorf("item %q has neither fieldRef nor resourceFieldRef", it.Path)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: downward API item %q: %w", podenv.ErrConfig, it.Path, err)
		}
		payload[it.Path] = file{data: []byte(v), mode: modeOf(it.Mode, mode)}
	}
	return payload, nil
}

// projectedPayload merges the payloads of all sources of a projected volume.
func (m *Manager) projectedPayload(ctx context.Context, pod *v1.Pod, volName string, src *v1.ProjectedVolumeSource) (map[string]file, error) {
	mode := modeOf(src.DefaultMode, defaultMode)
	payload := map[string]file{}
	for i, s := range src.Sources {
		var part map[string]file
		var err error
		switch {
		case s.ConfigMap != nil:
			part, err = m.configMapPayload(ctx, pod, s.ConfigMap.Name, s.ConfigMap.Items, mode, isTrue(s.ConfigMap.Optional))
		case s.Secret != nil:
			part, err = m.secretPayload(ctx, pod, s.Secret.Name, s.Secret.Items, mode, isTrue(s.Secret.Optional))
		case s.DownwardAPI != nil:
			part, err = m.downwardPayload(pod, s.DownwardAPI.Items, mode)
		case s.ServiceAccountToken != nil:
			var tok string
			tok, err = m.token(ctx, pod, volName, s.ServiceAccountToken)
			part = map[string]file{s.ServiceAccountToken.Path: {data: []byte(tok), mode: mode}}
		case s.ClusterTrustBundle != nil:
			return nil, unsupported(volName, "clusterTrustBundle projection")
		case s.PodCertificate != nil:
			return nil, unsupported(volName, "podCertificate projection")
		default:
			return nil, unsupported(volName, fmt.Sprintf("projection source #%d", i))
		}
		if err != nil {
			return nil, err
		}
		for p, f := range part {
			payload[p] = f
		}
	}
	return payload, nil
}
