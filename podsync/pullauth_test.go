package podsync

import (
	"context"
	"encoding/base64"
	"errors"
	"testing"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestRegistryMatching(t *testing.T) {
	for _, tc := range []struct {
		key, image string
		want       bool
	}{
		{"registry.example.com", "registry.example.com/team/app:1.0", true},
		{"https://registry.example.com/v1/", "registry.example.com/app", true},
		{"registry.example.com:5000", "registry.example.com/app", false},
		{"registry.example.com:5000", "registry.example.com:5000/app@sha256:abcd", true},
		{"*.example.com", "registry.example.com/app", true},
		{"*.example.com", "example.com/app", false},
		{"registry.example.com/team", "registry.example.com/team/app", true},
		{"registry.example.com/team", "registry.example.com/teamx/app", false},
		{"https://index.docker.io/v1/", "busybox", true},
		{"docker.io", "library/busybox:1", true},
		{"docker.io/someone", "someone/app", true},
		{"other.example.com", "registry.example.com/app", false},
	} {
		host, p := parseRegistryKey(tc.key)
		ih, repo := splitImage(tc.image)
		if got := (authEntry{host: host, path: p}).matches(ih, repo); got != tc.want {
			t.Errorf("key %q, image %q: match %v, want %v", tc.key, tc.image, got, tc.want)
		}
	}
}

func TestPullWithImagePullSecrets(t *testing.T) {
	e := newEnv(t)
	cfgJSON := `{"auths":{"registry.example":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("alice:s3cret")) + `"},"other.example":{"username":"bob","password":"x"}}}`
	secrets := map[string]*v1.Secret{
		"pull": {ObjectMeta: metav1.ObjectMeta{Name: "pull"}, Type: v1.SecretTypeDockerConfigJson, Data: map[string][]byte{v1.DockerConfigJsonKey: []byte(cfgJSON)}},
	}
	e.s.cfg.GetSecret = func(_ context.Context, _, name string) (*v1.Secret, error) {
		if s, ok := secrets[name]; ok {
			return s, nil
		}
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
	}
	pod := testPod("uid1", v1.RestartPolicyAlways)
	pod.Spec.ImagePullSecrets = []v1.LocalObjectReference{{Name: "missing"}, {Name: "pull"}}
	pod.Spec.Containers[0].Image = "registry.example/app:2.0"
	pod.Spec.Containers[0].ImagePullPolicy = v1.PullAlways
	if _, err := e.s.ensureImage(context.Background(), pod, &pod.Spec.Containers[0]); err != nil {
		t.Fatal(err)
	}
	e.images.AssertImagePulledWithAuth(t, &runtimeapi.ImageSpec{Image: "registry.example/app:2.0", UserSpecifiedImage: "registry.example/app:2.0"},
		&runtimeapi.AuthConfig{Username: "alice", Password: "s3cret", ServerAddress: "registry.example"}, "pulled with the matching credentials")
	if !hasEvent(e.events(), "FailedToRetrieveImagePullSecret") {
		t.Errorf("no event for the missing pull secret")
	}

	// A first credential that fails is followed by the next one.
	secrets["pull2"] = &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pull2"}, Type: v1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{v1.DockerConfigJsonKey: []byte(`{"auths":{"registry.example/app":{"username":"carol","password":"y"}}}`)}}
	pod.Spec.ImagePullSecrets = []v1.LocalObjectReference{{Name: "pull"}, {Name: "pull2"}}
	pulls := func() int {
		n := 0
		e.images.Lock()
		defer e.images.Unlock()
		for _, c := range e.images.Called {
			if c == "PullImage" {
				n++
			}
		}
		return n
	}
	before := pulls()
	e.images.InjectError("PullImage", errors.New("unauthorized"))
	if _, err := e.s.ensureImage(context.Background(), pod, &pod.Spec.Containers[0]); err != nil {
		t.Fatalf("the second credential was not tried: %v", err)
	}
	if n := pulls() - before; n != 2 {
		t.Errorf("%d pulls, want 2: the more specific credential, then the next", n)
	}
	e.images.AssertImagePulledWithAuth(t, &runtimeapi.ImageSpec{Image: "registry.example/app:2.0", UserSpecifiedImage: "registry.example/app:2.0"},
		&runtimeapi.AuthConfig{Username: "alice", Password: "s3cret", ServerAddress: "registry.example"}, "second credential")
}
