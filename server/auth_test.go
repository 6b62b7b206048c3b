package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
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
