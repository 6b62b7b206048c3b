//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Image garbage collection (package imagegc): with the thresholds at
// their lowest, an image no container uses is removed within a few
// periods; the images pods use and the pinned sandbox image stay.

// ociImage writes an OCI image layout tar of one small layer, tagged ref,
// whose config carries id so that its image ID is its own.
func ociImage(t *testing.T, ref, id string) string {
	t.Helper()
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	content := []byte("garbage " + id + "\n")
	if err := lw.WriteHeader(&tar.Header{Name: "gc-test", Mode: 0o644, Size: int64(len(content))}); err != nil {
		t.Fatal(err)
	}
	_, _ = lw.Write(content)
	_ = lw.Close()
	digest := func(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Labels": map[string]string{"nodeagent.test/id": id}, "Cmd": []string{"/gc-test"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digest(layer.Bytes())}},
	})
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": len(config)},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(layer.Bytes()), "size": layer.Len()}},
	})
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"manifests": []any{map[string]any{
			"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(manifest), "size": len(manifest),
			"annotations": map[string]string{"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref},
		}},
	})
	file := filepath.Join(t.TempDir(), "image.tar")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	w := tar.NewWriter(f)
	add := func(name string, b []byte) {
		if err := w.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b))}); err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(b)
	}
	add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	add("index.json", index)
	for _, b := range [][]byte{layer.Bytes(), config, manifest} {
		add("blobs/sha256/"+strings.TrimPrefix(digest(b), "sha256:"), b)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return file
}

// ctr runs containerd's ctr against the harness's containerd, in the
// namespace CRI uses.
func ctr(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(cache, "bin/ctr"), append([]string{"-a", filepath.Join(state, "run/containerd.sock"), "-n", "k8s.io"}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestImageGarbageCollection(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("imports an image into the harness's containerd")
	}
	c := client(t)
	ns := namespace(t, c)
	// Every image on the node but the victim is kept in use: a pod runs
	// each (the sandbox image is pinned by containerd).
	images := strings.Fields(ctr(t, "images", "ls", "-q"))
	keeper := busyboxPod("keeper", sleeper, v1.RestartPolicyAlways)
	keeper.Spec.Containers = nil
	for i, ref := range images {
		if strings.HasPrefix(ref, "sha256:") || strings.Contains(ref, "/pause:") || strings.Contains(ref, "@sha256:") {
			continue
		}
		keeper.Spec.Containers = append(keeper.Spec.Containers, v1.Container{
			Name: fmt.Sprintf("c%d", i), Image: ref, ImagePullPolicy: v1.PullNever,
			Command: []string{"/bin/sh", "-c", sleeper},
		})
	}
	createPod(t, c, ns, keeper)
	waitPod(t, c, ns, "keeper", 120*time.Second, "running", running)

	victim := "nodeagent.test/gc-victim:" + strings.TrimPrefix(ns, "e2e-")
	ctr(t, "images", "import", "--no-unpack=false", ociImage(t, victim, ns))
	if !slices.Contains(strings.Fields(ctr(t, "images", "ls", "-q")), victim) {
		t.Fatalf("%s not imported", victim)
	}
	since := time.Now()
	withAgentFlags(t, "--image-gc-high-threshold=1", "--image-gc-low-threshold=0", "--minimum-image-ttl-duration=1s", "--image-gc-period=2s")
	waitFor(t, 60*time.Second, "the unused image removed", func() (bool, error) {
		return !slices.Contains(strings.Fields(ctr(t, "images", "ls", "-q")), victim), nil
	})
	left := strings.Fields(ctr(t, "images", "ls", "-q"))
	for _, ref := range images {
		if !strings.HasPrefix(ref, "sha256:") && !strings.Contains(ref, "@sha256:") && !slices.Contains(left, ref) {
			t.Errorf("image %s, in use or pinned, was removed", ref)
		}
	}
	// A disk that cannot get below 0% used: the kubelet's warning.
	waitFor(t, 30*time.Second, "a FreeDiskSpaceFailed event on the node", func() (bool, error) {
		evs, err := c.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.kind=Node,reason=FreeDiskSpaceFailed"})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.LastTimestamp.After(since.Add(-time.Second)) && strings.Contains(e.Message, "Failed to free sufficient space by deleting unused images") {
				return true, nil
			}
		}
		return false, nil
	})
	if p, err := c.CoreV1().Pods(ns).Get(context.Background(), "keeper", metav1.GetOptions{}); err != nil || !running(p) {
		t.Errorf("the pod using the kept images does not run: %v", err)
	}
}
