package volumes

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

const (
	defaultTokenExpiration = 3600 // seconds, as the API defaults it
	maxTokenAge            = 24 * time.Hour
)

// tokenKey identifies one projected token of a pod.
type tokenKey struct {
	pod        types.UID
	volume     string
	path       string
	audience   string
	expiration int64
}

type cachedToken struct {
	token     string
	refreshAt time.Time
	expiry    time.Time
}

// token returns the service account token for src, from the cache unless it
// is due for renewal.
func (m *Manager) token(ctx context.Context, pod *v1.Pod, volume string, src *v1.ServiceAccountTokenProjection) (string, error) {
	exp := int64(defaultTokenExpiration)
	if src.ExpirationSeconds != nil {
		exp = *src.ExpirationSeconds
	}
	key := tokenKey{pod: pod.UID, volume: volume, path: src.Path, audience: src.Audience, expiration: exp}
	now := m.clock.Now()
	m.mu.Lock()
	cached := m.tokens[key]
	m.mu.Unlock()
	if cached != nil && now.Before(cached.refreshAt) {
		return cached.token, nil
	}

	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &exp,
		BoundObjectRef: &authenticationv1.BoundObjectReference{
			Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID,
		},
	}}
	if src.Audience != "" {
		req.Spec.Audiences = []string{src.Audience}
	}
	tr, err := m.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		if cached != nil && now.Before(cached.expiry) {
			// Keep serving a still-valid token; the next Setup retries.
			klog.FromContext(ctx).Error(err, "Failed to renew service account token, keeping the current one",
				"pod", klog.KObj(pod), "volume", volume)
			return cached.token, nil
		}
		return "", fmt.Errorf("request token for service account %s/%s: %w", pod.Namespace, sa, err)
	}
	if tr.Status.Token == "" {
		return "", fmt.Errorf("request token for service account %s/%s: empty token", pod.Namespace, sa)
	}
	refreshAt, expiry := tokenTimes(now, tr, exp)
	m.mu.Lock()
	m.tokens[key] = &cachedToken{token: tr.Status.Token, refreshAt: refreshAt, expiry: expiry}
	m.mu.Unlock()
	klog.FromContext(ctx).V(4).Info("Renewed service account token", "pod", klog.KObj(pod), "volume", volume, "path", src.Path)
	return tr.Status.Token, nil
}

// tokenTimes returns when a token must be renewed (once 80% of its TTL has
// passed, or 24h after issue, whichever comes first) and when it expires.
func tokenTimes(now time.Time, tr *authenticationv1.TokenRequest, requested int64) (time.Time, time.Time) {
	ttl := time.Duration(requested) * time.Second
	if tr.Spec.ExpirationSeconds != nil && *tr.Spec.ExpirationSeconds > 0 {
		ttl = time.Duration(*tr.Spec.ExpirationSeconds) * time.Second
	}
	expiry := now.Add(ttl)
	if !tr.Status.ExpirationTimestamp.IsZero() {
		expiry = tr.Status.ExpirationTimestamp.Time
	}
	issued := expiry.Add(-ttl)
	return minTime(issued.Add(ttl*8/10), issued.Add(maxTokenAge)), expiry
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// NextRefresh returns the earliest time at which a projected token of the
// pod must be renewed by calling Setup again, and whether that time has
// come. It returns the zero time and false when the pod has no tokens.
func (m *Manager) NextRefresh(podUID types.UID) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var next time.Time
	for k, t := range m.tokens {
		if k.pod == podUID && (next.IsZero() || t.refreshAt.Before(next)) {
			next = t.refreshAt
		}
	}
	if next.IsZero() {
		return next, false
	}
	return next, !m.clock.Now().Before(next)
}

func (m *Manager) forgetTokens(podUID types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.tokens {
		if k.pod == podUID {
			delete(m.tokens, k)
		}
	}
}
