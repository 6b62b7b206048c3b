package staticpods

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

// FuzzReadFile fuzzes the static pod manifest decoder: no panic, and a pod
// it accepts has what the agent builds paths and API objects from: a
// name and namespace the API accepts (the kubelet validates a manifest's
// pod as the apiserver would) and a UID that is one path component.
func FuzzReadFile(f *testing.F) {
	for _, s := range []string{
		"apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: busybox:1.37}]\n",
		"apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: kube-system, uid: 0123-abc}\nspec:\n  containers: [{name: c, image: 'reg:5000/busybox'}]\n",
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},"spec":{"containers":[{"name":"c","image":"busybox","ports":[{"containerPort":80}]}],"initContainers":[{"name":"i","image":""}]}}`,
		"apiVersion: v1\nkind: Service\nmetadata: {name: svc}\n",
		"kind: Pod\nmetadata: {name: web}\nspec: {containers: []}\n",
		"kind: Pod\nmetadata: {name: ../../etc}\nspec: {containers: [{name: c}]}\n",
		"kind: Pod\nmetadata: {name: web, namespace: a/b}\nspec: {containers: [{name: c}]}\n",
		"kind: Pod\nmetadata: {name: web, uid: ../../../var/lib}\nspec: {containers: [{name: c}]}\n",
		"kind: Pod\nmetadata: {name: \"%2e%2e\"}\nspec: {containers: [{name: c}]}\n",
		"kind: Pod\nmetadata: {name: \"w\\0eb\"}\nspec: {containers: [{name: c}]}\n",
		"kind: Pod\nmetadata: {name: wéb}\nspec: {containers: [{name: c}]}\n",
		"kind: Pod\nmetadata: {name: " + strings.Repeat("a", 300) + "}\nspec: {containers: [{name: c}]}\n",
		"a: &a [*a, *a]\n",
		"a: &a [x]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\nd: [*c, *c, *c, *c]\n",
		"---\n---\n",
		"\x00\xff",
		"",
	} {
		f.Add([]byte(s))
	}
	path := filepath.Join(f.TempDir(), "pod.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		pod, err := readFile(path, "node1")
		if err != nil {
			if pod != nil {
				t.Fatalf("a pod and an error: %v", err)
			}
			return
		}
		if pod == nil {
			t.Fatal("no pod and no error")
		}
		if errs := validation.IsDNS1123Subdomain(pod.Name); len(errs) > 0 {
			t.Errorf("name %q: %v", pod.Name, errs)
		}
		if errs := validation.IsDNS1123Label(pod.Namespace); len(errs) > 0 {
			t.Errorf("namespace %q: %v", pod.Namespace, errs)
		}
		if uid := string(pod.UID); uid == "" || uid == "." || uid == ".." || strings.ContainsAny(uid, "/\x00") {
			t.Errorf("UID %q is not one path component", uid)
		}
		if len(pod.Spec.Containers) == 0 || pod.Spec.NodeName != "node1" || !IsStatic(pod) || !IsCritical(pod) {
			t.Errorf("accepted pod %+v", pod)
		}
	})
}
