//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// kubectl logs and exec on a static pod's mirror reach the static pod,
// which the runtime runs under the static pod's UID, not the mirror's,
// also after the mirror is deleted and created again with a new UID; the
// node API takes the static pod's UID or the current mirror's in a URL,
// as the kubelet's TranslatePodUID, and no other.
func TestStaticPodThroughMirror(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	manifest := filepath.Join(state, "manifests", "static-debug.yaml")
	body := `apiVersion: v1
kind: Pod
metadata:
  name: static-debug
  namespace: default
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: ` + busybox + `
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo static-hello; sleep 3600"]
`
	if err := os.WriteFile(manifest, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	name := "static-debug-" + nodeName
	t.Cleanup(func() {
		_ = os.Remove(manifest)
		waitGone(t, c, "default", name, 60*time.Second)
	})
	mirror := waitPod(t, c, "default", name, 90*time.Second, "mirror pod running", running)
	staticUID := runningPodUID(t, "default", name)
	if staticUID == "" || staticUID == mirror.UID {
		t.Fatalf("static pod's UID %q (mirror's %q): the runtime should run it under its own", staticUID, mirror.UID)
	}

	check := func(mirror *v1.Pod) {
		t.Helper()
		var logs string
		waitFor(t, 30*time.Second, "kubectl logs of the mirror", func() (bool, error) {
			out, err := kubectlCmd(ctx, "-n", "default", "logs", name).CombinedOutput()
			logs = string(out)
			return err == nil && strings.Contains(logs, "static-hello"), nil
		})
		if got := kubectl(t, "-n", "default", "logs", name, "-c", "main", "--tail=1"); got != "static-hello\n" {
			t.Errorf("kubectl logs -c main --tail=1: %q", got)
		}
		if got := kubectl(t, "-n", "default", "exec", name, "--", "echo", "marco"); got != "marco\n" {
			t.Errorf("kubectl exec: %q", got)
		}
		cmd := kubectlCmd(ctx, "-n", "default", "exec", "-i", name, "-c", "main", "--", "sh", "-c", "tr a-z A-Z")
		cmd.Stdin = strings.NewReader("polo\n")
		if out, err := cmd.Output(); err != nil || string(out) != "POLO\n" {
			t.Errorf("kubectl exec -i: %q %v", out, err)
		}
		admin := nodeClient(t, true)
		for _, tc := range []struct {
			uid  types.UID
			code int
		}{
			{"", http.StatusOK},
			{staticUID, http.StatusOK},
			{mirror.UID, http.StatusOK},
			{"00000000-0000-0000-0000-000000000000", http.StatusNotFound},
		} {
			path := "/run/default/" + name + "/"
			if tc.uid != "" {
				path += string(tc.uid) + "/"
			}
			path += "main?cmd=echo%20ran"
			code, body := nodeGet(t, admin, "POST", path, "")
			if code != tc.code || (code == http.StatusOK && body != "ran\n") {
				t.Errorf("POST %s: %d %q, want %d", path, code, trunc(body), tc.code)
			}
		}
		code, body := nodeGet(t, admin, "GET", "/containerLogs/default/"+name+"/main", "")
		if code != http.StatusOK || !strings.Contains(body, "static-hello") {
			t.Errorf("node API containerLogs: %d %q", code, trunc(body))
		}
		// /pods lists the static pod, as the kubelet's pod manager, not
		// its mirror.
		code, body = nodeGet(t, admin, "GET", "/pods", "")
		if code != http.StatusOK || !strings.Contains(body, `"uid":"`+string(staticUID)+`"`) || strings.Contains(body, `"uid":"`+string(mirror.UID)+`"`) {
			t.Errorf("node API /pods: %d, want the static pod's UID %s and not the mirror's %s", code, staticUID, mirror.UID)
		}
	}
	check(mirror)

	// A new mirror, a new UID: the old one no longer translates.
	if err := c.CoreV1().Pods("default").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "mirror pod recreated", func() (bool, error) {
		np, err := c.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		return err == nil && np.UID != mirror.UID && running(np), nil
	})
	np, err := c.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	check(np)
	path := "/run/default/" + name + "/" + string(mirror.UID) + "/main?cmd=echo%20ran"
	if code, body := nodeGet(t, nodeClient(t, true), "POST", path, ""); code != http.StatusNotFound {
		t.Errorf("POST %s with the deleted mirror's UID: %d %q, want 404", path, code, trunc(body))
	}
}

// runningPodUID is the UID the runtime runs pod namespace/name under, from
// the node API's /runningpods/.
func runningPodUID(t *testing.T, namespace, name string) types.UID {
	t.Helper()
	code, body := nodeGet(t, nodeClient(t, true), "GET", "/runningpods/", "")
	if code != http.StatusOK {
		t.Fatalf("GET /runningpods/: %d %q", code, trunc(body))
	}
	var list v1.PodList
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("GET /runningpods/: %v", err)
	}
	for _, p := range list.Items {
		if p.Namespace == namespace && p.Name == name {
			return p.UID
		}
	}
	return ""
}
