package staticpods

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("web.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: busybox:1.37}]\n")
	write("bad.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: svc}\n")
	write(".hidden.yaml", "not even yaml: [")
	pods, warnings := Read(dir, "node1")
	if len(pods) != 1 {
		t.Fatalf("pods = %d, want 1", len(pods))
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "bad.yaml") {
		t.Errorf("warnings = %q, want one naming bad.yaml", warnings)
	}
	p := pods[0]
	if p.Name != "web-node1" || p.Namespace != "default" || p.Spec.NodeName != "node1" {
		t.Errorf("identity: %s/%s on %q", p.Namespace, p.Name, p.Spec.NodeName)
	}
	if !IsStatic(p) || p.Annotations[ConfigHashAnnotation] != string(p.UID) || p.UID == "" {
		t.Errorf("annotations: %v uid %q", p.Annotations, p.UID)
	}
	c := p.Spec.Containers[0]
	if p.Spec.RestartPolicy != v1.RestartPolicyAlways || c.ImagePullPolicy != v1.PullIfNotPresent || c.TerminationMessagePath == "" {
		t.Errorf("defaults not applied: %+v", p.Spec)
	}
	again, _ := Read(dir, "node1")
	if again[0].UID != p.UID {
		t.Errorf("UID not stable across reads: %s vs %s", again[0].UID, p.UID)
	}
	other, _ := Read(dir, "node2")
	if other[0].UID == p.UID {
		t.Errorf("UID does not depend on the node")
	}
	write("web.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: busybox:1.38}]\n")
	changed, _ := Read(dir, "node1")
	if changed[0].UID == p.UID {
		t.Errorf("a changed manifest keeps its UID")
	}
}

// Two manifests of one namespace/name: the first by file name runs, the
// other is ignored with a warning naming both files, as the kubelet's
// filterInvalidPods.
func TestReadDuplicateName(t *testing.T) {
	dir := t.TempDir()
	write := func(name, image string) {
		body := "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: " + image + "}]\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("b-web.yaml", "busybox:1.38")
	write("a-web.yaml", "busybox:1.37")
	for range 5 { // map order must not decide
		pods, warnings := Read(dir, "node1")
		if len(pods) != 1 || pods[0].Spec.Containers[0].Image != "busybox:1.37" {
			t.Fatalf("pods = %v, want the one of a-web.yaml", pods)
		}
		if len(warnings) != 1 || !strings.Contains(warnings[0], "b-web.yaml") || !strings.Contains(warnings[0], "a-web.yaml") ||
			!strings.Contains(warnings[0], "duplicate pod name") {
			t.Errorf("warnings = %q, want one naming the duplicate", warnings)
		}
	}
}
