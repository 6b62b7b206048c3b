package podsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func cpuGrant(req string) allocation {
	return allocation{containers: map[string]v1.ResourceRequirements{"c": {Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(req)}}}}
}

// The grants written are the grants read, and the file is replaced, not
// written through a link at its place.
func TestGrantsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, grantsFile)
	if got, err := readGrants(path); err != nil || got != nil {
		t.Fatalf("no file: %v, %v; want nothing, no error", got, err)
	}
	want := map[types.UID]allocation{"a": cpuGrant("100m"), "b": cpuGrant("2")}
	data, err := json.Marshal(grantsData{Entries: want})
	if err != nil {
		t.Fatal(err)
	}
	// A link in the checkpoint's place is replaced, its target untouched.
	target := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	if err := writeGrants(path, data); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Errorf("written through the link: %q", b)
	}
	got, err := readGrants(path)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Errorf("read %s, want %s", g, w)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("checkpoint mode: %v %v", st.Mode(), err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

// A checkpoint that does not read is an error naming it.
func TestGrantsCorrupt(t *testing.T) {
	checkpoint := func(data, sum string) string {
		b, _ := json.Marshal(grantsCheckpoint{Data: data, Checksum: sum})
		return string(b)
	}
	good := `{"entries":{"a":{"c":{}}}}`
	sum := sha256.Sum256([]byte(good))
	for _, tc := range []struct {
		name  string
		write func(path string) error
	}{
		{"garbage", func(p string) error { return os.WriteFile(p, []byte("\x00\xffgarb"), 0o600) }},
		{"truncated", func(p string) error {
			return os.WriteFile(p, []byte(checkpoint(good, hex.EncodeToString(sum[:]))[:20]), 0o600)
		}},
		{"checksum", func(p string) error {
			return os.WriteFile(p, []byte(checkpoint(strings.Replace(good, `"a"`, `"b"`, 1), hex.EncodeToString(sum[:]))), 0o600)
		}},
		{"empty uid", func(p string) error {
			d := `{"entries":{"":{"c":{}}}}`
			s := sha256.Sum256([]byte(d))
			return os.WriteFile(p, []byte(checkpoint(d, hex.EncodeToString(s[:]))), 0o600)
		}},
		{"too large", func(p string) error { return os.WriteFile(p, make([]byte, maxGrantsFile+1), 0o600) }},
		{"link", func(p string) error {
			target := p + ".target"
			if err := os.WriteFile(target, []byte(checkpoint(good, hex.EncodeToString(sum[:]))), 0o600); err != nil {
				return err
			}
			return os.Symlink(target, p)
		}},
		{"directory", func(p string) error { return os.Mkdir(p, 0o700) }},
		{"fifo", func(p string) error { return mkfifo(p) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), grantsFile)
			if err := tc.write(path); err != nil {
				t.Fatal(err)
			}
			got, err := readGrants(path)
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("readGrants = %v, %v; want an error naming %s", got, err, path)
			}
		})
	}
}

// A corrupt checkpoint is ignored: running pods are granted their spec,
// and the next write replaces the file.
func TestCorruptGrantsIgnored(t *testing.T) {
	var active []*v1.Pod
	e, _ := newResizeEnv(t, &active)
	path := e.s.grantsPath()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	pod := sized(testPod("uid1", v1.RestartPolicyAlways), "300m", "", "", "")
	pod.Status.StartTime = &metav1.Time{}
	active = []*v1.Pod{pod}
	got, requeue := e.s.allocate(context.Background(), pod)
	if got != pod || requeue != 0 {
		t.Fatalf("allocate = %v, %v; want the pod as it is", got, requeue)
	}
	grants, err := readGrants(path)
	if err != nil || mustJSON(t, grants[pod.UID]) != mustJSON(t, specAllocation(pod)) {
		t.Errorf("checkpoint after the grant: %v, %v", grants, err)
	}
}

// A resize deferred before an agent restart stays deferred after it: the
// checkpointed grant is what the pod runs with until the node has room.
func TestRestartKeepsDeferredResize(t *testing.T) {
	var active []*v1.Pod
	e, rt := newResizeEnv(t, &active)
	other := sized(testPod("other", v1.RestartPolicyAlways), "600m", "", "", "")
	other.CreationTimestamp = metav1.Unix(1, 0)
	pod := sized(testPod("uid1", v1.RestartPolicyAlways), "300m", "", "", "")
	pod.CreationTimestamp = metav1.Unix(2, 0)
	active = []*v1.Pod{other, pod}
	e.sync(t, other)
	e.sync(t, pod)
	id := e.containerID(t, pod.UID, "c", 0)
	other.Status = *e.status.get(other.UID)
	pod = resized(pod, "500m", "", "", "")
	pod.Status = *e.status.get(pod.UID)
	active = []*v1.Pod{other, pod}
	if _, requeue := e.sync(t, pod); requeue != deferredRetry {
		t.Fatalf("before the restart: requeue %v, want the resize deferred", requeue)
	}
	pod.Status = *e.status.get(pod.UID)
	deferred := podCondition(&pod.Status, v1.PodResizePending)
	if deferred == nil || deferred.Reason != v1.PodReasonDeferred {
		t.Fatalf("before the restart: PodResizePending = %+v", deferred)
	}

	// The agent restarts: a new Syncer, the same root dir and runtime.
	e.s = New(e.s.cfg, rt, e.images, e.vols, fakeEnv{}, e.status, e.rec, e.clock)
	e.events()
	// Before the pod list is known the resize waits, its condition kept.
	if _, requeue := e.sync(t, pod); requeue != deferredRetry {
		t.Errorf("after the restart, before the pod list is known: requeue %v, want %v", requeue, deferredRetry)
	}
	st := e.status.get(pod.UID)
	if c := podCondition(st, v1.PodResizePending); c == nil || c.Reason != v1.PodReasonDeferred || !c.LastTransitionTime.Equal(&deferred.LastTransitionTime) {
		t.Errorf("PodResizePending while the pod list is not known: %+v, want %+v", c, deferred)
	}
	// The pod list is known: the fit check defers it again.
	if err := e.s.GarbageCollect(context.Background(), func(types.UID) bool { return true }); err != nil {
		t.Fatal(err)
	}
	pod.Status = *st
	if _, requeue := e.sync(t, pod); requeue != deferredRetry {
		t.Errorf("after the restart: requeue %v, want %v", requeue, deferredRetry)
	}
	st = e.status.get(pod.UID)
	if c := podCondition(st, v1.PodResizePending); c == nil || c.Reason != v1.PodReasonDeferred || c.Message != deferred.Message {
		t.Errorf("PodResizePending after the restart = %+v", c)
	}
	if rt.updateCount() != 0 || rt.cgroups(id).CpuShares != 307 {
		t.Fatalf("the deferred resize was applied after the restart: %d updates, shares %d", rt.updateCount(), rt.cgroups(id).CpuShares)
	}
	if got := st.ContainerStatuses[0].AllocatedResources.Cpu(); !got.Equal(resource.MustParse("300m")) {
		t.Errorf("allocatedResources.cpu after the restart = %s, want the checkpointed 300m", got.String())
	}
	// The other pod goes: granted, applied, checkpointed.
	active = []*v1.Pod{pod}
	pod.Status = *st
	e.sync(t, pod)
	if rt.cgroups(id).CpuShares != 512 {
		t.Errorf("shares = %d, want 512 once the node has room", rt.cgroups(id).CpuShares)
	}
	grants, err := readGrants(e.s.grantsPath())
	if q := grants[pod.UID].containers["c"].Requests[v1.ResourceCPU]; err != nil || !q.Equal(resource.MustParse("500m")) {
		t.Errorf("checkpoint after the grant: %v, %v", grants, err)
	}
	if _, ok := grants[other.UID]; ok {
		t.Errorf("the grant of the pod no longer active is still checkpointed: %v", grants)
	}
}

// Grants of pods that are gone leave the checkpoint once the pod list is
// known, not before: a pod not yet given to its worker keeps its grant.
func TestGoneGrantsRemoved(t *testing.T) {
	var active []*v1.Pod
	e, _ := newResizeEnv(t, &active)
	path := e.s.grantsPath()
	data, _ := json.Marshal(grantsData{Entries: map[types.UID]allocation{"a": cpuGrant("100m"), "b": cpuGrant("200m"), "gone": cpuGrant("300m")}})
	if err := writeGrants(path, data); err != nil {
		t.Fatal(err)
	}
	// Pod a's worker runs first; b and gone are not active yet.
	a := sized(testPod("a", v1.RestartPolicyAlways), "100m", "", "", "")
	a.Status.StartTime = &metav1.Time{}
	active = []*v1.Pod{a}
	e.s.allocate(context.Background(), resized(a, "200m", "", "", ""))
	grants, err := readGrants(path)
	if err != nil || len(grants) != 3 {
		t.Fatalf("before the pod list is known: %v, %v; want the three grants", grants, err)
	}
	// The pod list: a and b.
	e.s.forgetGoneGrants(context.Background(), func(uid types.UID) bool { return uid == "a" || uid == "b" })
	grants, err = readGrants(path)
	if err != nil || len(grants) != 2 || grants["gone"].containers != nil || grants["b"].containers == nil {
		t.Fatalf("after the pod list is known: %v, %v; want a and b", grants, err)
	}
	// b's worker: its checkpointed grant, not its spec.
	b := sized(testPod("b", v1.RestartPolicyAlways), "950m", "", "", "")
	b.Status.StartTime = &metav1.Time{}
	active = []*v1.Pod{a, b}
	got, requeue := e.s.allocate(context.Background(), b)
	if requeue != deferredRetry || !got.Spec.Containers[0].Resources.Requests.Cpu().Equal(resource.MustParse("200m")) {
		t.Errorf("b runs with %v (requeue %v), want its checkpointed 200m, the resize to 950m deferred", got.Spec.Containers[0].Resources.Requests, requeue)
	}
}

func mkfifo(path string) error { return unix.Mkfifo(path, 0o600) }

// mustJSON is v as JSON, to compare grants (their fields are unexported).
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
