package podenv

import (
	"context"
	"errors"
	"fmt"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// ErrConfig marks an environment that cannot be built from the pod's
// configuration: a missing ConfigMap, Secret or key that is not optional, or
// an unsupported reference. The caller reports it as
// CreateContainerConfigError.
var ErrConfig = errors.New("container configuration error")

// IsConfigError reports whether err is, or wraps, ErrConfig.
func IsConfigError(err error) bool { return errors.Is(err, ErrConfig) }

// EnvVar is one variable of a container's environment.
type EnvVar struct {
	Name, Value string
}

// Objects reads the ConfigMaps and Secrets of a pod's namespace for it,
// returning the API's NotFound error for a missing one (volumes.Manager:
// from a watch of each, which the pod is registered with).
type Objects interface {
	ConfigMap(ctx context.Context, pod *v1.Pod, name string) (*v1.ConfigMap, error)
	Secret(ctx context.Context, pod *v1.Pod, name string) (*v1.Secret, error)
}

// Resolver builds container environments.
type Resolver struct {
	// Objects reads ConfigMaps and Secrets; when nil, they are read
	// through Client.
	Objects Objects
	// Client reads ConfigMaps and Secrets when Objects is nil, and
	// services when ServiceLister is nil.
	Client kubernetes.Interface
	// ServiceLister lists the services of a namespace, usually from an
	// informer cache. When nil, services are listed through Client.
	ServiceLister func(namespace string) ([]*v1.Service, error)
	// NodeAllocatable returns the node's allocatable resources, used for
	// resourceFieldRef limits that the container does not set. May be nil.
	NodeAllocatable func() v1.ResourceList
	// MasterServiceNamespace holds the "kubernetes" service; "default" when
	// empty.
	MasterServiceNamespace string
}

// Env returns the environment of container c of pod: service variables, then
// envFrom, then env, each name once (see the package documentation).
func (r *Resolver) Env(ctx context.Context, pod *v1.Pod, c *v1.Container, podIP string, podIPs []string, hostIP string) ([]EnvVar, error) {
	links := pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
	svcEnv, err := r.serviceEnv(ctx, pod.Namespace, links)
	if err != nil {
		return nil, fmt.Errorf("service environment of pod %s: %w", klog.KObj(pod), err)
	}
	env := newEnvList()
	for _, e := range svcEnv {
		env.set(e.Name, e.Value)
	}
	src := &sources{r: r, pod: pod}

	for _, from := range c.EnvFrom {
		var data map[string]string
		switch {
		case from.ConfigMapRef != nil:
			cm, err := src.configMap(ctx, from.ConfigMapRef.Name, isTrue(from.ConfigMapRef.Optional))
			if err != nil {
				return nil, err
			}
			if cm != nil {
				data = cm.Data
			}
		case from.SecretRef != nil:
			s, err := src.secret(ctx, from.SecretRef.Name, isTrue(from.SecretRef.Optional))
			if err != nil {
				return nil, err
			}
			if s != nil {
				data = make(map[string]string, len(s.Data))
				for k, v := range s.Data {
					data[k] = string(v)
				}
			}
		}
		for _, k := range sortedKeys(data) {
			name := from.Prefix + k
			if errs := validation.IsRelaxedEnvVarName(name); len(errs) > 0 {
				klog.FromContext(ctx).V(2).Info("Skipping invalid environment variable name from envFrom",
					"pod", klog.KObj(pod), "container", c.Name, "name", name)
				continue
			}
			env.set(name, data[k])
		}
	}

	for _, e := range c.Env {
		if e.Value != "" || e.ValueFrom == nil {
			env.set(e.Name, Expand(e.Value, env.get))
			continue
		}
		v, ok, err := r.valueFrom(ctx, src, pod, c, e.ValueFrom, podIP, podIPs, hostIP)
		if err != nil {
			return nil, fmt.Errorf("environment variable %q of container %q: %w", e.Name, c.Name, err)
		}
		if ok {
			env.set(e.Name, v)
		}
	}
	return env.list(), nil
}

// valueFrom resolves one env[].valueFrom; ok is false when an optional
// source is missing and the variable is left out.
func (r *Resolver) valueFrom(ctx context.Context, src *sources, pod *v1.Pod, c *v1.Container, from *v1.EnvVarSource,
	podIP string, podIPs []string, hostIP string) (string, bool, error) {
	switch {
	case from.FieldRef != nil:
		v, err := FieldValue(pod, from.FieldRef.FieldPath, hostIP, podIP, podIPs)
		if err != nil {
			return "", false, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		return v, true, nil
	case from.ResourceFieldRef != nil:
		var alloc v1.ResourceList
		if r.NodeAllocatable != nil {
			alloc = r.NodeAllocatable()
		}
		v, err := ResourceValue(from.ResourceFieldRef, pod, c, alloc)
		if err != nil {
			return "", false, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		return v, true, nil
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		optional := isTrue(ref.Optional)
		cm, err := src.configMap(ctx, ref.Name, optional)
		if err != nil || cm == nil {
			return "", false, err
		}
		v, ok := cm.Data[ref.Key]
		if !ok && !optional {
			return "", false, fmt.Errorf("%w: couldn't find key %q in ConfigMap %s/%s", ErrConfig, ref.Key, src.pod.Namespace, ref.Name)
		}
		return v, ok, nil
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		optional := isTrue(ref.Optional)
		s, err := src.secret(ctx, ref.Name, optional)
		if err != nil || s == nil {
			return "", false, err
		}
		v, ok := s.Data[ref.Key]
		if !ok && !optional {
			return "", false, fmt.Errorf("%w: couldn't find key %q in Secret %s/%s", ErrConfig, ref.Key, src.pod.Namespace, ref.Name)
		}
		return string(v), ok, nil
	case from.FileKeyRef != nil:
		return "", false, fmt.Errorf("%w: fileKeyRef is not supported by nodeagent yet", ErrConfig)
	}
	return "", false, fmt.Errorf("%w: empty valueFrom", ErrConfig)
}

// sources fetches each ConfigMap and Secret at most once per Env call.
type sources struct {
	r          *Resolver
	pod        *v1.Pod
	configMaps map[string]*v1.ConfigMap
	secrets    map[string]*v1.Secret
}

// configMap returns the named ConfigMap, or nil when it is missing and
// optional.
func (s *sources) configMap(ctx context.Context, name string, optional bool) (*v1.ConfigMap, error) {
	return cachedSource(s, &s.configMaps, "ConfigMap", name, optional, func() (*v1.ConfigMap, error) {
		if s.r.Objects != nil {
			return s.r.Objects.ConfigMap(ctx, s.pod, name)
		}
		return s.r.Client.CoreV1().ConfigMaps(s.pod.Namespace).Get(ctx, name, metav1.GetOptions{})
	})
}

// secret returns the named Secret, or nil when it is missing and optional.
func (s *sources) secret(ctx context.Context, name string, optional bool) (*v1.Secret, error) {
	return cachedSource(s, &s.secrets, "Secret", name, optional, func() (*v1.Secret, error) {
		if s.r.Objects != nil {
			return s.r.Objects.Secret(ctx, s.pod, name)
		}
		return s.r.Client.CoreV1().Secrets(s.pod.Namespace).Get(ctx, name, metav1.GetOptions{})
	})
}

// cachedSource returns the kind's object name from cache, else from get
// (kept in cache): nil when it is missing and optional, ErrConfig when it
// is missing and required.
func cachedSource[T any](s *sources, cache *map[string]*T, kind, name string, optional bool, get func() (*T, error)) (*T, error) {
	if obj, ok := (*cache)[name]; ok {
		return obj, nil
	}
	if s.r.Objects == nil && s.r.Client == nil {
		return nil, fmt.Errorf("couldn't get %s %s/%s: no client", kind, s.pod.Namespace, name)
	}
	obj, err := get()
	if err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("couldn't get %s %s/%s: %w", kind, s.pod.Namespace, name, err)
		}
		if !optional {
			return nil, fmt.Errorf("%w: %s %s/%s not found: %w", ErrConfig, kind, s.pod.Namespace, name, err)
		}
		obj = nil
	}
	if *cache == nil {
		*cache = map[string]*T{}
	}
	(*cache)[name] = obj
	return obj, nil
}
