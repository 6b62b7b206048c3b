package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
)

func TestRequestAttributes(t *testing.T) {
	tests := []struct {
		method, path string
		verb         string
		subresources []string
	}{
		{"GET", "/pods", "get", []string{"pods", "proxy"}},
		{"GET", "/pods/", "get", []string{"pods", "proxy"}},
		{"GET", "/podsx", "get", []string{"proxy"}},
		{"GET", "/runningpods/", "get", []string{"pods", "proxy"}},
		{"GET", "/healthz", "get", []string{"healthz", "proxy"}},
		{"GET", "/healthz/ping", "get", []string{"healthz", "proxy"}},
		{"GET", "/configz", "get", []string{"configz", "proxy"}},
		{"GET", "/stats/summary", "get", []string{"stats"}},
		{"GET", "/stats", "get", []string{"stats"}},
		{"GET", "/metrics", "get", []string{"metrics"}},
		{"GET", "/metrics/cadvisor", "get", []string{"metrics"}},
		{"GET", "/logs/syslog", "get", []string{"log"}},
		{"GET", "/containerLogs/ns/pod/c", "get", []string{"proxy"}},
		{"POST", "/exec/ns/pod/c", "create", []string{"proxy"}},
		{"GET", "/exec/ns/pod/c", "get", []string{"proxy"}},
		{"POST", "/portForward/ns/pod", "create", []string{"proxy"}},
		{"POST", "/checkpoint/ns/pod/c", "create", []string{"checkpoint"}},
		{"GET", "/flagz", "get", []string{"configz"}},
		{"GET", "/statusz", "get", []string{"statusz"}},
		{"PUT", "/x", "update", []string{"proxy"}},
		{"PATCH", "/x", "patch", []string{"proxy"}},
		{"DELETE", "/x", "delete", []string{"proxy"}},
		{"HEAD", "/", "", []string{"proxy"}},
	}
	u := &user.DefaultInfo{Name: "alice"}
	for _, tc := range tests {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			attrs := requestAttributes("node1", u, httptest.NewRequest(tc.method, tc.path, nil))
			var subs []string
			for _, a := range attrs {
				subs = append(subs, a.Subresource)
				if a.Verb != tc.verb || a.Resource != "nodes" || a.Name != "node1" || a.APIVersion != "v1" || !a.ResourceRequest || a.User != u || a.Namespace != "" {
					t.Errorf("attributes %+v", a)
				}
			}
			if !reflect.DeepEqual(subs, tc.subresources) {
				t.Errorf("subresources %v, want %v", subs, tc.subresources)
			}
		})
	}
}

func TestAuthFilter(t *testing.T) {
	authn := authenticator.RequestFunc(func(r *http.Request) (*authenticator.Response, bool, error) {
		if name := r.Header.Get("X-User"); name != "" {
			return &authenticator.Response{User: &user.DefaultInfo{Name: name}}, true, nil
		}
		return nil, false, nil
	})
	// bob may only read pods; carol has proxy.
	authz := authorizer.AuthorizerFunc(func(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
		switch {
		case a.GetUser().GetName() == "bob" && a.GetSubresource() == "pods":
			return authorizer.DecisionAllow, "", nil
		case a.GetUser().GetName() == "carol" && a.GetSubresource() == "proxy":
			return authorizer.DecisionAllow, "", nil
		}
		return authorizer.DecisionNoOpinion, "", nil
	})
	h := (&authHandler{nodeName: "node1", authn: authn, authz: authz}).wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("reached"))
	}))
	tests := []struct {
		user, method, path string
		code               int
		body               string
	}{
		{"", "GET", "/pods", 401, "Unauthorized\n"},
		{"", "GET", "/unknown", 401, "Unauthorized\n"},
		{"bob", "GET", "/pods", 200, "reached"},
		{"bob", "GET", "/runningpods/", 200, "reached"},
		{"bob", "POST", "/exec/ns/p/c", 403, "Forbidden (user=bob, verb=create, resource=nodes, subresource(s)=[proxy])\n"},
		{"bob", "GET", "/healthz", 403, "Forbidden (user=bob, verb=get, resource=nodes, subresource(s)=[healthz proxy])\n"},
		{"carol", "GET", "/healthz", 200, "reached"},
		{"carol", "GET", "/containerLogs/ns/p/c", 200, "reached"},
		{"carol", "GET", "/stats/summary", 403, "Forbidden (user=carol, verb=get, resource=nodes, subresource(s)=[stats])\n"},
	}
	for _, tc := range tests {
		t.Run(tc.user+tc.path, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.user != "" {
				r.Header.Set("X-User", tc.user)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.code || w.Body.String() != tc.body {
				t.Errorf("got %d %q, want %d %q", w.Code, w.Body.String(), tc.code, tc.body)
			}
		})
	}
}

// countingAPIServer is an API server that answers TokenReviews (token
// "good-<user>" is user <user>) and SubjectAccessReviews (only alice may),
// counting them. The webhooks use the client's RESTClient, which the fake
// clientset lacks.
func countingAPIServer(t *testing.T) (kubernetes.Interface, *atomic.Int32, *atomic.Int32) {
	t.Helper()
	var tokenReviews, sars atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var out any
		switch r.URL.Path {
		case "/apis/authentication.k8s.io/v1/tokenreviews":
			tokenReviews.Add(1)
			var tr authenticationv1.TokenReview
			if err := json.NewDecoder(r.Body).Decode(&tr); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if name, ok := strings.CutPrefix(tr.Spec.Token, "good-"); ok {
				tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: name}}
			}
			out = &tr
		case "/apis/authorization.k8s.io/v1/subjectaccessreviews":
			sars.Add(1)
			var sar authorizationv1.SubjectAccessReview
			if err := json.NewDecoder(r.Body).Decode(&sar); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			sar.Status.Allowed = sar.Spec.User == "alice"
			out = &sar
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(srv.Close)
	client, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return client, &tokenReviews, &sars
}

// The webhook answers are cached as the kubelet caches them
// (authentication.webhook.cacheTTL, authorization.webhook.cacheAuthorizedTTL
// and cacheUnauthorizedTTL), so repeated requests reach the API server once.
func TestWebhookCaches(t *testing.T) {
	client, tokenReviews, sars := countingAPIServer(t)
	a, err := newAuthHandler(Config{
		NodeName: "node1",
		Authentication: kubeletconfigv1beta1.KubeletAuthentication{
			Webhook:   kubeletconfigv1beta1.KubeletWebhookAuthentication{Enabled: ptr.To(true), CacheTTL: metav1.Duration{Duration: time.Minute}},
			Anonymous: kubeletconfigv1beta1.KubeletAnonymousAuthentication{Enabled: ptr.To(false)},
		},
		Authorization: kubeletconfigv1beta1.KubeletAuthorization{Mode: kubeletconfigv1beta1.KubeletAuthorizationModeWebhook},
	}, client)
	if err != nil {
		t.Fatal(err)
	}
	h := a.wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("reached")) }))
	do := func(token string) int {
		r := httptest.NewRequest("GET", "/stats/summary", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	for range 3 {
		if code := do("good-alice"); code != 200 {
			t.Fatalf("alice: %d", code)
		}
		if code := do("good-bob"); code != 403 {
			t.Fatalf("bob: %d", code)
		}
		if code := do("bad"); code != 401 {
			t.Fatalf("bad token: %d", code)
		}
	}
	if n := tokenReviews.Load(); n != 3 {
		t.Errorf("%d TokenReviews for 3 tokens asked 3 times each, want 3", n)
	}
	if n := sars.Load(); n != 2 {
		t.Errorf("%d SubjectAccessReviews for 2 users asked 3 times each, want 2", n)
	}
}
