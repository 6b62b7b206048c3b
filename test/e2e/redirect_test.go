//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
)

// With --redirect-container-streaming the node answers exec with a 302 to
// the runtime's streaming URL, and a client that talks to the node directly
// (and can reach the runtime's stream server, on 127.0.0.1 here) runs the
// command there.
func TestRedirectStreaming(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	createPod(t, c, ns, busyboxPod("redir", "sleep 3600", v1.RestartPolicyAlways))
	waitPod(t, c, ns, "redir", 60*time.Second, "running", running)

	withAgentFlags(t, "--redirect-container-streaming")

	hc := nodeClient(t, true)
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	path := "/exec/" + ns + "/redir/main?command=echo&command=redirected&output=1"
	var loc *url.URL
	waitFor(t, 60*time.Second, "a 302 from the node", func() (bool, error) {
		req, _ := http.NewRequest(http.MethodPost, "https://192.0.2.10:10250"+path, nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "SPDY/3.1")
		req.Header.Set("X-Stream-Protocol-Version", "v4.channel.k8s.io")
		resp, err := hc.Do(req)
		if err != nil {
			return false, err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			return false, nil
		}
		loc, err = url.Parse(resp.Header.Get("Location"))
		return err == nil, err
	})
	if loc.Host == "" || !strings.Contains(loc.Path, "/exec/") {
		t.Fatalf("redirect to %s: not a runtime exec URL", loc)
	}
	// Follow it as a direct client would: SPDY to the runtime's URL.
	exec, err := remotecommand.NewSPDYExecutor(&rest.Config{Host: loc.Scheme + "://" + loc.Host}, http.MethodPost, loc)
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The same streams as the request asked the runtime for (stdout only).
	if err := exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout}); err != nil {
		t.Fatalf("stream at %s: %v", loc, err)
	}
	if got := strings.TrimSpace(stdout.String()); got != "redirected" {
		t.Errorf("stdout = %q, want %q", got, "redirected")
	}
}
