//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// A running pod sees its configMap, secret and downwardAPI volumes follow
// their sources, within seconds (each source is watched).
func TestVolumeSourcesFollowUpdates(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	ctx := context.Background()
	if _, err := c.CoreV1().ConfigMaps(ns).Create(ctx, &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}, Data: map[string]string{"k": "v1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().Secrets(ns).Create(ctx, &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}, StringData: map[string]string{"k": "s1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := busyboxPod("follow", "sleep 3600", v1.RestartPolicyAlways)
	p.Labels = map[string]string{"stage": "one"}
	p.Spec.Volumes = []v1.Volume{
		{Name: "cm", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "cm"}}}},
		{Name: "s", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "s"}}},
		{Name: "d", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{Items: []v1.DownwardAPIVolumeFile{
			{Path: "labels", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels"}}}}}},
	}
	p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "cm", MountPath: "/cm"}, {Name: "s", MountPath: "/s"}, {Name: "d", MountPath: "/d"}}
	createPod(t, c, ns, p)
	waitPod(t, c, ns, "follow", 60*time.Second, "running", running)
	read := func() string {
		return kubectl(t, "-n", ns, "exec", "follow", "--", "cat", "/cm/k", "/s/k", "/d/labels")
	}
	if out := read(); !strings.Contains(out, "v1") || !strings.Contains(out, "s1") || !strings.Contains(out, `stage="one"`) {
		t.Fatalf("initial contents: %q", out)
	}
	if _, err := c.CoreV1().ConfigMaps(ns).Update(ctx, &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}, Data: map[string]string{"k": "v2"}}, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().Secrets(ns).Update(ctx, &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}, StringData: map[string]string{"k": "s2"}}, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().Pods(ns).Patch(ctx, "follow", types.MergePatchType, []byte(`{"metadata":{"labels":{"stage":"two"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitFor(t, 10*time.Second, "the updates in the volumes", func() (bool, error) {
		out := read()
		return strings.Contains(out, "v2") && strings.Contains(out, "s2") && strings.Contains(out, `stage="two"`), nil
	})
	t.Logf("updates seen after %s", time.Since(start).Round(100*time.Millisecond))
}

// The agent stops watching an immutable ConfigMap once its watch brought
// it, as the kubelet does, and keeps watching a mutable one: the
// apiserver's audit log shows the one watch end and not the other.
func TestImmutableConfigMapUnwatched(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	ctx := context.Background()
	auditLog := filepath.Join(state, "logs", "audit.log")
	from := fileSize(t, auditLog)
	yes := true
	for _, cm := range []*v1.ConfigMap{
		{ObjectMeta: metav1.ObjectMeta{Name: "imm"}, Data: map[string]string{"k": "fixed"}, Immutable: &yes},
		{ObjectMeta: metav1.ObjectMeta{Name: "mut"}, Data: map[string]string{"k": "changing"}},
	} {
		if _, err := c.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	p := busyboxPod("both", "sleep 3600", v1.RestartPolicyAlways)
	p.Spec.Volumes = []v1.Volume{
		{Name: "imm", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "imm"}}}},
		{Name: "mut", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "mut"}}}},
	}
	p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "imm", MountPath: "/imm"}, {Name: "mut", MountPath: "/mut"}}
	createPod(t, c, ns, p)
	waitPod(t, c, ns, "both", 60*time.Second, "running", running)
	if out := kubectl(t, "-n", ns, "exec", "both", "--", "cat", "/imm/k", "/mut/k"); out != "fixedchanging" {
		t.Errorf("contents %q, want fixedchanging", out)
	}
	// The node's watches of each ConfigMap: started, and ended.
	watches := func(name string) (started, ended int) {
		for _, line := range strings.Split(readFrom(t, auditLog, from), "\n") {
			var e struct {
				Stage, Verb, RequestURI string
				User                    struct{ Username string }
			}
			if json.Unmarshal([]byte(line), &e) != nil || e.Verb != "watch" || e.User.Username != "system:node:"+nodeName ||
				!strings.HasPrefix(e.RequestURI, "/api/v1/namespaces/"+ns+"/configmaps?") ||
				!strings.Contains(e.RequestURI, "fieldSelector=metadata.name%3D"+name+"&") && !strings.HasSuffix(e.RequestURI, "fieldSelector=metadata.name%3D"+name) {
				continue
			}
			switch e.Stage {
			case "ResponseStarted":
				started++
			case "ResponseComplete":
				ended++
			}
		}
		return started, ended
	}
	waitFor(t, 30*time.Second, "the watch of the immutable ConfigMap to end", func() (bool, error) {
		started, ended := watches("imm")
		return started > 0 && ended == started, fmt.Errorf("%d watches of imm started, %d ended", started, ended)
	})
	// The mutable one's watch goes on (a watch ends on its own after 5
	// minutes at the earliest, then starts again).
	if started, ended := watches("mut"); started == 0 || ended >= started {
		t.Errorf("%d watches of the mutable ConfigMap started, %d ended; want one going on", started, ended)
	}
}
