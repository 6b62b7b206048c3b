package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
)

// Defaults of the kubelet's webhook caches and timeouts.
const (
	defaultTokenCacheTTL   = 2 * time.Minute
	defaultAllowedCacheTTL = 5 * time.Minute
	defaultDeniedCacheTTL  = 30 * time.Second
	webhookTimeout         = 10 * time.Second
)

// authHandler authenticates and authorizes every request of the TLS port.
type authHandler struct {
	nodeName string
	authn    authenticator.Request
	authz    authorizer.Authorizer
	clientCA *dynamiccertificates.DynamicFileCAContent
}

func webhookBackoff() *wait.Backoff {
	return &wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}
}

func newAuthHandler(cfg Config, client kubernetes.Interface) (*authHandler, error) {
	a := &authHandler{nodeName: cfg.NodeName}
	authnCfg := authenticatorfactory.DelegatingAuthenticatorConfig{
		Anonymous:                &apiserver.AnonymousAuthConfig{Enabled: deref(cfg.Authentication.Anonymous.Enabled)},
		TokenAccessReviewTimeout: webhookTimeout,
		WebhookRetryBackoff:      webhookBackoff(),
		CacheTTL:                 orDefault(cfg.Authentication.Webhook.CacheTTL.Duration, defaultTokenCacheTTL),
	}
	if deref(cfg.Authentication.Webhook.Enabled) {
		if client == nil {
			return nil, errors.New("authentication webhook enabled without an API client")
		}
		authnCfg.TokenAccessReviewClient = client.AuthenticationV1()
	}
	if f := cfg.Authentication.X509.ClientCAFile; f != "" {
		ca, err := dynamiccertificates.NewDynamicCAContentFromFile("client-ca-bundle", f)
		if err != nil {
			return nil, fmt.Errorf("load client CA file %s: %w", f, err)
		}
		a.clientCA = ca
		authnCfg.ClientCertificateCAContentProvider = ca
	}
	authn, _, err := authnCfg.New()
	if err != nil {
		return nil, fmt.Errorf("build authenticator: %w", err)
	}
	a.authn = authn

	switch cfg.Authorization.Mode {
	case kubeletconfigv1beta1.KubeletAuthorizationModeAlwaysAllow:
		a.authz = authorizerfactory.NewAlwaysAllowAuthorizer()
	case kubeletconfigv1beta1.KubeletAuthorizationModeWebhook, "":
		if client == nil {
			return nil, errors.New("authorization mode Webhook without an API client")
		}
		az, err := authorizerfactory.DelegatingAuthorizerConfig{
			SubjectAccessReviewClient: client.AuthorizationV1(),
			AllowCacheTTL:             orDefault(cfg.Authorization.Webhook.CacheAuthorizedTTL.Duration, defaultAllowedCacheTTL),
			DenyCacheTTL:              orDefault(cfg.Authorization.Webhook.CacheUnauthorizedTTL.Duration, defaultDeniedCacheTTL),
			WebhookRetryBackoff:       webhookBackoff(),
		}.New()
		if err != nil {
			return nil, fmt.Errorf("build authorizer: %w", err)
		}
		a.authz = az
	default:
		return nil, fmt.Errorf("unknown authorization mode %q", cfg.Authorization.Mode)
	}
	return a, nil
}

// start loads the client CA and watches its file for changes.
func (a *authHandler) start(ctx context.Context) error {
	if a.clientCA == nil {
		return nil
	}
	if err := a.clientCA.RunOnce(ctx); err != nil {
		return fmt.Errorf("load client CA: %w", err)
	}
	go a.clientCA.Run(ctx, 1)
	return nil
}

// wrap authenticates and authorizes every request before h sees it, known
// route or not, as the kubelet's filter on its whole container.
func (a *authHandler) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logger := klog.FromContext(r.Context())
		resp, ok, err := a.authn.AuthenticateRequest(r)
		if err != nil || !ok {
			if err != nil {
				logger.V(2).Info("Unable to authenticate the request", "err", err)
			}
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		attrs := requestAttributes(a.nodeName, resp.User, r)
		var subresources []string
		for _, attr := range attrs {
			subresources = append(subresources, attr.Subresource)
			decision, _, err := a.authz.Authorize(r.Context(), attr)
			if err != nil {
				logger.Error(err, "Authorization error", "user", resp.User.GetName(), "verb", attr.Verb, "subresource", attr.Subresource)
				http.Error(w, fmt.Sprintf("Authorization error (user=%s, verb=%s, resource=%s, subresource=%s)",
					resp.User.GetName(), attr.Verb, attr.Resource, attr.Subresource), http.StatusInternalServerError)
				return
			}
			if decision == authorizer.DecisionAllow {
				h.ServeHTTP(w, r)
				return
			}
		}
		logger.V(2).Info("Forbidden", "user", resp.User.GetName(), "verb", attrs[0].Verb, "subresources", subresources)
		http.Error(w, forbiddenMessage(attrs[0], subresources), http.StatusForbidden)
	})
}

func forbiddenMessage(attr authorizer.AttributesRecord, subresources []string) string {
	return fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=%s, subresource(s)=%v)",
		attr.User.GetName(), attr.Verb, attr.Resource, subresources)
}

// isSubpath reports whether p is root or below it.
func isSubpath(p, root string) bool {
	root = strings.TrimSuffix(root, "/")
	return p == root || (strings.HasPrefix(p, root) && p[len(root)] == '/')
}

// apiVerb maps an HTTP method to the authorization verb.
func apiVerb(method string) string {
	switch method {
	case http.MethodPost:
		return "create"
	case http.MethodGet:
		return "get"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		return "delete"
	}
	return ""
}

// requestAttributes returns the attributes to check, in order; the request
// is allowed if any is. It follows the kubelet's mapping with fine-grained
// authorization: a pods, healthz or configz check first for their paths,
// then the path's own subresource, proxy for everything else.
func requestAttributes(nodeName string, u user.Info, r *http.Request) []authorizer.AttributesRecord {
	p := r.URL.Path
	var subresources []string
	switch {
	case isSubpath(p, "/pods"), isSubpath(p, "/runningpods/"):
		subresources = append(subresources, "pods")
	case isSubpath(p, "/healthz"):
		subresources = append(subresources, "healthz")
	case isSubpath(p, "/configz"):
		subresources = append(subresources, "configz")
	}
	switch {
	case isSubpath(p, "/stats/"):
		subresources = append(subresources, "stats")
	case isSubpath(p, "/metrics"):
		subresources = append(subresources, "metrics")
	case isSubpath(p, "/logs/"):
		subresources = append(subresources, "log")
	case isSubpath(p, "/checkpoint"):
		subresources = append(subresources, "checkpoint")
	case isSubpath(p, "/statusz"):
		subresources = append(subresources, "statusz")
	case isSubpath(p, "/flagz"):
		subresources = append(subresources, "configz")
	default:
		subresources = append(subresources, "proxy")
	}
	attrs := make([]authorizer.AttributesRecord, 0, len(subresources))
	for _, sub := range subresources {
		attrs = append(attrs, authorizer.AttributesRecord{
			User:            u,
			Verb:            apiVerb(r.Method),
			APIVersion:      "v1",
			Resource:        "nodes",
			Subresource:     sub,
			Name:            nodeName,
			ResourceRequest: true,
			Path:            p,
		})
	}
	return attrs
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
