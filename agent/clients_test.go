package agent

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"

	"github.com/nodeagent/nodeagent/configs"
)

func defaultedConfig(mutate func(*kubeletconfigv1beta1.KubeletConfiguration)) *kubeletconfigv1beta1.KubeletConfiguration {
	cfg := &kubeletconfigv1beta1.KubeletConfiguration{}
	mutate(cfg)
	configs.Default(cfg)
	return cfg
}

func TestClientConfigs(t *testing.T) {
	base := &rest.Config{Host: "https://10.0.0.1:6443", QPS: 1, Burst: 2, Timeout: time.Hour}
	tests := []struct {
		name             string
		mutate           func(*kubeletconfigv1beta1.KubeletConfiguration)
		qps              float32
		burst            int
		eventQPS         float32
		eventBurst       int
		heartbeatTimeout time.Duration
	}{
		{"defaults", func(*kubeletconfigv1beta1.KubeletConfiguration) {}, 50, 100, 50, 100, 10 * time.Second},
		{"configured", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.KubeAPIQPS, c.KubeAPIBurst = ptr.To[int32](20), 30
			c.EventRecordQPS, c.EventBurst = ptr.To[int32](5), 7
			c.NodeStatusUpdateFrequency.Duration = 4 * time.Second
		}, 20, 30, 5, 7, 4 * time.Second},
		// The kubelet caps the timeout at the lease duration.
		{"timeout capped by the lease", func(c *kubeletconfigv1beta1.KubeletConfiguration) {
			c.NodeStatusUpdateFrequency.Duration = time.Minute
			c.NodeLeaseDurationSeconds = 15
		}, 50, 100, 50, 100, 15 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcs := clientConfigs(base, defaultedConfig(tt.mutate))
			if rcs.main.QPS != tt.qps || rcs.main.Burst != tt.burst || rcs.main.Host != base.Host {
				t.Errorf("main: QPS %v burst %d host %s", rcs.main.QPS, rcs.main.Burst, rcs.main.Host)
			}
			if rcs.auth.QPS != tt.qps || rcs.auth.Burst != tt.burst {
				t.Errorf("auth: QPS %v burst %d", rcs.auth.QPS, rcs.auth.Burst)
			}
			if rcs.events.QPS != tt.eventQPS || rcs.events.Burst != tt.eventBurst {
				t.Errorf("events: QPS %v burst %d", rcs.events.QPS, rcs.events.Burst)
			}
			if rcs.heartbeat.QPS != -1 || rcs.heartbeat.Timeout != tt.heartbeatTimeout {
				t.Errorf("heartbeat: QPS %v timeout %v, want -1 and %v", rcs.heartbeat.QPS, rcs.heartbeat.Timeout, tt.heartbeatTimeout)
			}
			if base.QPS != 1 || base.Timeout != time.Hour {
				t.Errorf("base config changed: %+v", base)
			}
		})
	}
}

// Each client is its own instance with its own rate limiter; the
// heartbeat client has none.
func TestClientsSeparate(t *testing.T) {
	c, err := clientsFor(&rest.Config{Host: "https://10.0.0.1:6443"}, defaultedConfig(func(*kubeletconfigv1beta1.KubeletConfiguration) {}))
	if err != nil {
		t.Fatal(err)
	}
	limiters := map[string]flowcontrol.RateLimiter{
		"main":   c.main.CoreV1().RESTClient().GetRateLimiter(),
		"events": c.events.CoreV1().RESTClient().GetRateLimiter(),
		"auth":   c.auth.AuthenticationV1().RESTClient().GetRateLimiter(),
	}
	for name, l := range limiters {
		if l == nil {
			t.Errorf("%s client has no rate limiter", name)
		}
		for other, m := range limiters {
			if other != name && l == m {
				t.Errorf("%s and %s clients share a rate limiter", name, other)
			}
		}
	}
	if l := c.auth.AuthorizationV1().RESTClient().GetRateLimiter(); l != limiters["auth"] {
		t.Error("TokenReviews and SubjectAccessReviews do not share the auth client's limiter")
	}
	for _, rc := range []interface {
		GetRateLimiter() flowcontrol.RateLimiter
	}{
		c.heartbeat.CoordinationV1().RESTClient(), c.heartbeat.CoreV1().RESTClient(),
	} {
		if rc.GetRateLimiter() != nil {
			t.Error("the heartbeat client is rate limited")
		}
	}
	if c.heartbeat == c.main || c.auth == c.main || c.events == c.main {
		t.Error("clients are not separate instances")
	}
}

// A burst of TokenReviews beyond the auth client's rate limit queues on
// that client only: a lease renewal through the heartbeat client and a
// request of the main client go through at once.
func TestAuthFloodDoesNotDelayOthers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusCreated)
			_, _ = io.Copy(w, r.Body) // the TokenReview back, unauthenticated
			return
		}
		_, _ = w.Write([]byte(`{"kind":"Lease","apiVersion":"coordination.k8s.io/v1","metadata":{"name":"node1"}}`))
	}))
	defer srv.Close()
	cfg := defaultedConfig(func(c *kubeletconfigv1beta1.KubeletConfiguration) { c.KubeAPIQPS, c.KubeAPIBurst = ptr.To[int32](5), 5 })
	c, err := clientsFor(&rest.Config{Host: srv.URL}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// 50 TokenReviews at 5 QPS: about 9 s of queueing.
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = c.auth.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{}, metav1.CreateOptions{})
		}()
	}
	defer wg.Wait()
	defer cancel()
	time.Sleep(100 * time.Millisecond) // let the burst take the auth limiter's tokens
	for name, get := range map[string]func() error{
		"heartbeat": func() error {
			_, err := c.heartbeat.CoordinationV1().Leases("kube-node-lease").Get(ctx, "node1", metav1.GetOptions{})
			return err
		},
		"main": func() error {
			_, err := c.main.CoordinationV1().Leases("kube-node-lease").Get(ctx, "node1", metav1.GetOptions{})
			return err
		},
	} {
		start := time.Now()
		if err := get(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s client waited %v behind the TokenReviews", name, d)
		}
	}
}
