package podsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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
	// The other pod's grant, restored and never taken, leaves with the
	// pod list that no longer holds it.
	if err := e.s.GarbageCollect(context.Background(), func(uid types.UID) bool { return uid == pod.UID }); err != nil {
		t.Fatal(err)
	}
	grants, err = readGrants(e.s.grantsPath())
	if _, ok := grants[other.UID]; ok || err != nil {
		t.Errorf("the grant of the pod gone is still checkpointed: %v, %v", grants, err)
	}
}

// Grants of pods that are gone leave the checkpoint once the pod list is
// known (GarbageCollect), and only then: a pod the agent knows whose
// worker has not started keeps its grant while other workers admit and
// allocate, before the pod list is known and after.
func TestGoneGrantsRemoved(t *testing.T) {
	var active []*v1.Pod
	e, _ := newResizeEnv(t, &active)
	path := e.s.grantsPath()
	data, _ := json.Marshal(grantsData{Entries: map[types.UID]allocation{"a": cpuGrant("100m"), "b": cpuGrant("200m"), "gone": cpuGrant("300m")}})
	if err := writeGrants(path, data); err != nil {
		t.Fatal(err)
	}
	bKept := func(when string, want int) {
		t.Helper()
		e.s.admission.mu.Lock()
		_, inMemory := e.s.admission.restored["b"]
		e.s.admission.mu.Unlock()
		grants, err := readGrants(path)
		if !inMemory || err != nil || len(grants) != want || grants["b"].containers == nil {
			t.Fatalf("%s: b restored %v, checkpoint %v, %v; want b's grant kept, %d grants", when, inMemory, grants, err, want)
		}
	}
	// Pod a's worker runs first; b and gone are not active yet. Its
	// admission forgets the pods not active and writes the checkpoint.
	a := sized(testPod("a", v1.RestartPolicyAlways), "100m", "", "", "")
	a.Status.StartTime = &metav1.Time{}
	active = []*v1.Pod{a}
	if reason, msg := e.s.admit(context.Background(), a); reason != "" {
		t.Fatalf("admit a: %s: %s", reason, msg)
	}
	e.s.allocate(context.Background(), resized(a, "200m", "", "", ""))
	bKept("before the pod list is known", 3)
	// The pod list: a and b.
	e.s.forgetGoneGrants(context.Background(), func(uid types.UID) bool { return uid == "a" || uid == "b" })
	grants, err := readGrants(path)
	if err != nil || len(grants) != 2 || grants["gone"].containers != nil || grants["b"].containers == nil {
		t.Fatalf("after the pod list is known: %v, %v; want a and b", grants, err)
	}
	// A new pod c is admitted before b's worker starts: b is not active,
	// its grant stays.
	c := sized(testPod("c", v1.RestartPolicyAlways), "100m", "", "", "")
	active = []*v1.Pod{a, c}
	if reason, msg := e.s.admit(context.Background(), c); reason != "" {
		t.Fatalf("admit c: %s: %s", reason, msg)
	}
	bKept("after the pod list is known, b not active", 3)
	// b's worker: its checkpointed grant, not its spec.
	b := sized(testPod("b", v1.RestartPolicyAlways), "950m", "", "", "")
	b.Status.StartTime = &metav1.Time{}
	active = []*v1.Pod{a, c, b}
	got, requeue := e.s.allocate(context.Background(), b)
	if requeue != deferredRetry || !got.Spec.Containers[0].Resources.Requests.Cpu().Equal(resource.MustParse("200m")) {
		t.Errorf("b runs with %v (requeue %v), want its checkpointed 200m, the resize to 950m deferred", got.Spec.Containers[0].Resources.Requests, requeue)
	}
}

// A worker's first status, before any allocation (a pod terminating
// after an agent restart), reports the checkpointed grant.
func TestStatusBeforeAllocationReadsGrants(t *testing.T) {
	var active []*v1.Pod
	e, _ := newResizeEnv(t, &active)
	data, _ := json.Marshal(grantsData{Entries: map[types.UID]allocation{"uid1": cpuGrant("200m")}})
	if err := writeGrants(e.s.grantsPath(), data); err != nil {
		t.Fatal(err)
	}
	pod := sized(testPod("uid1", v1.RestartPolicyAlways), "500m", "", "", "")
	got := e.s.grantedPod(context.Background(), pod)
	if q := got.Spec.Containers[0].Resources.Requests.Cpu(); !q.Equal(resource.MustParse("200m")) {
		t.Errorf("granted pod asks for %s, want the checkpointed 200m", q.String())
	}
}

// A checkpoint that could not be read (an I/O error, a denied access,
// too many open files) is not replaced: it is read at a later call, and
// what it holds is restored then.
func TestGrantsReadRetried(t *testing.T) {
	var active []*v1.Pod
	e, _ := newResizeEnv(t, &active)
	path := e.s.grantsPath()
	data, _ := json.Marshal(grantsData{Entries: map[types.UID]allocation{"b": cpuGrant("200m")}})
	if err := writeGrants(path, data); err != nil {
		t.Fatal(err)
	}
	open := openGrants
	t.Cleanup(func() { openGrants = open })
	for i, errno := range []syscall.Errno{syscall.EIO, syscall.EACCES, syscall.EMFILE} {
		openGrants = func(string) (*os.File, error) { return nil, &os.PathError{Op: "open", Path: path, Err: errno} }
		a := sized(testPod(fmt.Sprintf("a%d", i), v1.RestartPolicyAlways), "100m", "", "", "")
		active = append(active, a)
		if reason, msg := e.s.admit(context.Background(), a); reason != "" {
			t.Fatalf("admit %s: %s: %s", a.Name, reason, msg)
		}
		openGrants = open
		grants, err := readGrants(path)
		if err != nil || len(grants) != 1 || grants["b"].containers == nil {
			t.Fatalf("after a read failing with %v: checkpoint %v, %v; want it untouched, b's grant only", errno, grants, err)
		}
	}
	// The file reads again: b's grant is restored, and the grants since
	// the start are written beside it at the next write.
	openGrants = open
	b := sized(testPod("b", v1.RestartPolicyAlways), "500m", "", "", "")
	b.Status.StartTime = &metav1.Time{}
	active = append(active, b)
	got, _ := e.s.allocate(context.Background(), b)
	if q := got.Spec.Containers[0].Resources.Requests.Cpu(); !q.Equal(resource.MustParse("200m")) {
		t.Errorf("b runs with %s, want its checkpointed 200m", q.String())
	}
	e.s.forgetGoneGrants(context.Background(), func(types.UID) bool { return true })
	grants, err := readGrants(path)
	if q := grants["b"].containers["c"].Requests[v1.ResourceCPU]; err != nil || len(grants) != 4 || !q.Equal(resource.MustParse("200m")) {
		t.Errorf("checkpoint once read: %v, %v; want b's 200m and the three pods admitted", grants, err)
	}
}

// Temporary files a crash left beside the checkpoint are removed when it
// is read; links and directories of that name are left alone.
func TestStaleGrantFilesRemoved(t *testing.T) {
	var active []*v1.Pod
	e, _ := newResizeEnv(t, &active)
	path := e.s.grantsPath()
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "."+grantsFile+"-123")
	if err := os.WriteFile(stale, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "."+grantsFile+"-link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	subdir := filepath.Join(dir, "."+grantsFile+"-dir")
	if err := os.Mkdir(subdir, 0o700); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "unrelated")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e.s.grantedPod(context.Background(), testPod("uid1", v1.RestartPolicyAlways))
	if _, err := os.Lstat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temporary file: %v, want it removed", err)
	}
	for _, keep := range []string{link, subdir, other, target} {
		if _, err := os.Lstat(keep); err != nil {
			t.Errorf("%s: %v, want it kept", keep, err)
		}
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
