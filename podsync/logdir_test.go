package podsync

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/cri"
)

// A link planted where a pod's log directory will be (by a pod that mounts
// /var/log/pods) is refused, and nothing is written through it.
func TestPodLogDirPlantedLink(t *testing.T) {
	e := newEnv(t)
	pod := testPod("web", "Always")
	elsewhere := t.TempDir()
	if err := os.MkdirAll(e.cfg.PodLogsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, e.s.podLogDir(pod)); err != nil {
		t.Fatal(err)
	}
	if err := e.s.makePodLogDir(pod); err == nil {
		t.Error("a link in place of the pod log directory was accepted")
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Errorf("written through the link: %v", entries)
	}

	// A real directory gets the owner marker.
	other := testPod("db", "Always")
	if err := e.s.makePodLogDir(other); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(e.s.podLogDir(other), ownerMarker)); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("owner marker: %v %v", fi, err)
	}
}

// Removing a dead container's log never follows a link in the pod's log
// directory to delete files elsewhere.
func TestRemoveContainerLogDoesNotFollowLinks(t *testing.T) {
	e := newEnv(t)
	victim := t.TempDir()
	for _, f := range []string{"0.log", "0.log.1"} {
		if err := os.WriteFile(filepath.Join(victim, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	podDir := filepath.Join(e.cfg.PodLogsDir, "ns1_web_uid1")
	if err := os.MkdirAll(podDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(podDir, "c")); err != nil {
		t.Fatal(err)
	}
	c := &runtimeapi.Container{
		Id:          "ctr",
		Labels:      map[string]string{cri.ContainerNameLabel: "c", cri.PodNamespaceLabel: "ns1", cri.PodNameLabel: "web", cri.PodUIDLabel: "uid1"},
		Annotations: map[string]string{cri.ContainerRestartCountAnnotation: strconv.Itoa(0)},
	}
	e.s.removeContainerLog(context.Background(), c)
	for _, f := range []string{"0.log", "0.log.1"} {
		if _, err := os.Stat(filepath.Join(victim, f)); err != nil {
			t.Errorf("%s removed through the link: %v", f, err)
		}
	}

	// Without links, the container's logs and rotated files go, others stay.
	if err := os.Remove(filepath.Join(podDir, "c")); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(podDir, "c")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"0.log", "0.log.20261122-010203.gz", "1.log", "0.logx"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.s.removeContainerLog(context.Background(), c)
	left, _ := os.ReadDir(dir)
	var names []string
	for _, l := range left {
		names = append(names, l.Name())
	}
	if len(names) != 2 || names[0] != "0.logx" || names[1] != "1.log" {
		t.Errorf("left %v, want [0.logx 1.log]", names)
	}
}
