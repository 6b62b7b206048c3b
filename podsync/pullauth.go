package podsync

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// pullAuth returns the credentials of the pod's imagePullSecrets that match
// image, most specific first, as the kubelet's keyring: a secret of type
// kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg whose registry
// key matches the image's registry host (globs allowed per dot-separated
// part, ports compared) and, when the key has a path, a prefix of the
// image's repository path. A secret that cannot be read is named in an
// event and skipped, as the kubelet does; with no match the image is
// pulled without credentials.
func (s *Syncer) pullAuth(ctx context.Context, pod *v1.Pod, image string) []*runtimeapi.AuthConfig {
	if len(pod.Spec.ImagePullSecrets) == 0 || s.cfg.GetSecret == nil {
		return nil
	}
	var entries []authEntry
	for _, ref := range pod.Spec.ImagePullSecrets {
		if ref.Name == "" {
			continue
		}
		sec, err := s.cfg.GetSecret(ctx, pod.Namespace, ref.Name)
		if err == nil {
			var es []authEntry
			es, err = parseDockerSecret(sec)
			entries = append(entries, es...)
		}
		if err != nil {
			klog.FromContext(ctx).V(2).Info("Unable to use an image pull secret", "pod", klog.KObj(pod), "secret", ref.Name, "err", err)
			s.recorder.Eventf(pod, v1.EventTypeWarning, "FailedToRetrieveImagePullSecret",
				"Unable to retrieve some image pull secrets (%s); attempting to pull the image may not succeed.", ref.Name)
		}
	}
	host, repo := splitImage(image)
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].key > entries[j].key })
	var out []*runtimeapi.AuthConfig
	for _, e := range entries {
		if e.matches(host, repo) {
			out = append(out, e.auth)
		}
	}
	return out
}

type authEntry struct {
	key        string
	host, path string
	auth       *runtimeapi.AuthConfig
}

// dockerConfigEntry is one registry of a .dockerconfigjson "auths" map or a
// .dockercfg file.
type dockerConfigEntry struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

func parseDockerSecret(sec *v1.Secret) ([]authEntry, error) {
	var auths map[string]dockerConfigEntry
	switch {
	case sec.Type == v1.SecretTypeDockerConfigJson || len(sec.Data[v1.DockerConfigJsonKey]) > 0:
		var cfg struct {
			Auths map[string]dockerConfigEntry `json:"auths"`
		}
		if err := json.Unmarshal(sec.Data[v1.DockerConfigJsonKey], &cfg); err != nil {
			return nil, fmt.Errorf("secret %s: %s: %w", sec.Name, v1.DockerConfigJsonKey, err)
		}
		auths = cfg.Auths
	case sec.Type == v1.SecretTypeDockercfg || len(sec.Data[v1.DockerConfigKey]) > 0:
		if err := json.Unmarshal(sec.Data[v1.DockerConfigKey], &auths); err != nil {
			return nil, fmt.Errorf("secret %s: %s: %w", sec.Name, v1.DockerConfigKey, err)
		}
	default:
		return nil, fmt.Errorf("secret %s is of type %q, not %q", sec.Name, sec.Type, v1.SecretTypeDockerConfigJson)
	}
	var out []authEntry
	for key, e := range auths {
		user, pass := e.Username, e.Password
		if e.Auth != "" {
			dec, err := base64.StdEncoding.DecodeString(e.Auth)
			if err != nil {
				return nil, fmt.Errorf("secret %s: registry %q: auth is not base64: %w", sec.Name, key, err)
			}
			u, p, ok := strings.Cut(string(dec), ":")
			if !ok {
				return nil, fmt.Errorf("secret %s: registry %q: auth is not user:password", sec.Name, key)
			}
			user, pass = u, p
		}
		host, p := parseRegistryKey(key)
		out = append(out, authEntry{key: key, host: host, path: p, auth: &runtimeapi.AuthConfig{
			Username: user, Password: pass, ServerAddress: key,
			IdentityToken: e.IdentityToken, RegistryToken: e.RegistryToken,
		}})
	}
	return out, nil
}

// parseRegistryKey splits a registry key ("https://registry.io:5000/v1/",
// "*.example.com/team") into host and path; Docker Hub's names become
// docker.io and its API version path is dropped.
func parseRegistryKey(key string) (string, string) {
	key = strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	host, p, _ := strings.Cut(key, "/")
	p = strings.Trim(p, "/")
	if p == "v1" || p == "v2" {
		p = ""
	}
	return normalizeHub(host), p
}

func normalizeHub(host string) string {
	switch host {
	case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return "docker.io"
	}
	return host
}

// splitImage returns the registry host and repository path of an image
// reference, Docker Hub's defaults applied.
func splitImage(image string) (string, string) {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndex(image, ":"); i >= 0 && !strings.Contains(image[i:], "/") {
		image = image[:i]
	}
	first, rest, ok := strings.Cut(image, "/")
	if !ok || !strings.ContainsAny(first, ".:") && first != "localhost" {
		repo := image
		if !strings.Contains(repo, "/") {
			repo = "library/" + repo
		}
		return "docker.io", repo
	}
	return normalizeHub(first), rest
}

// matches reports whether the entry serves host/repo: each dot-separated
// part of the host may be a glob, ports must be equal, and the entry's path
// must be a path prefix of repo.
func (e authEntry) matches(host, repo string) bool {
	kh, kport, _ := strings.Cut(e.host, ":")
	ih, iport, _ := strings.Cut(host, ":")
	if kport != iport {
		return false
	}
	kparts, iparts := strings.Split(kh, "."), strings.Split(ih, ".")
	if len(kparts) != len(iparts) {
		return false
	}
	for i := range kparts {
		if ok, err := path.Match(kparts[i], iparts[i]); err != nil || !ok {
			return false
		}
	}
	return e.path == "" || repo == e.path || strings.HasPrefix(repo, e.path+"/")
}
