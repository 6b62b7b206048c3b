package podsync

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/nodeagent/nodeagent/cri"
	"github.com/nodeagent/nodeagent/podenv"
	"github.com/nodeagent/nodeagent/staticpods"
)

var (
	_ Volumes                    = (*fakeVolumes)(nil)
	_ Env                        = (*fakeEnv)(nil)
	_ StatusWriter               = (*fakeStatus)(nil)
	_ internalapi.RuntimeService = (*recordingRuntime)(nil)
)

type fakeVolumes struct {
	mu        sync.Mutex
	dir       string
	setups    int
	teardowns []types.UID
}

func (f *fakeVolumes) Setup(_ context.Context, pod *v1.Pod) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setups++
	out := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		p := filepath.Join(f.dir, string(pod.UID), v.Name)
		if err := os.MkdirAll(p, 0o750); err != nil {
			return nil, err
		}
		out[v.Name] = p
	}
	return out, nil
}

func (f *fakeVolumes) NextRefresh(types.UID) (time.Time, bool) { return time.Time{}, false }

func (f *fakeVolumes) Stale(*v1.Pod) bool { return false }

// SubPath returns the joined path; the safe resolution is the volume
// manager's, tested there.
func (f *fakeVolumes) SubPath(_ context.Context, _ *v1.Pod, _, _ string, _ int, volumePath, subPath string) (string, error) {
	return filepath.Join(volumePath, subPath), nil
}

func (f *fakeVolumes) Teardown(_ context.Context, uid types.UID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.teardowns = append(f.teardowns, uid)
	return nil
}

type fakeEnv struct{}

func (fakeEnv) Env(_ context.Context, _ *v1.Pod, c *v1.Container, _ string, _ []string, _ string) ([]podenv.EnvVar, error) {
	var out []podenv.EnvVar
	for _, e := range c.Env {
		out = append(out, podenv.EnvVar{Name: e.Name, Value: e.Value})
	}
	return out, nil
}

type fakeStatus struct {
	mu       sync.Mutex
	statuses map[types.UID]*v1.PodStatus
	deleted  []types.UID
	forgot   []types.UID
	ops      []string // "write <uid>", "delete <uid>" in order
	writeErr error    // what Write returns, if set
}

func (f *fakeStatus) Write(_ context.Context, pod *v1.Pod, st *v1.PodStatus) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.writeErr != nil {
		return f.writeErr
	}
	if f.statuses == nil {
		f.statuses = map[types.UID]*v1.PodStatus{}
	}
	f.statuses[pod.UID] = st.DeepCopy()
	f.ops = append(f.ops, "write "+string(pod.UID))
	return nil
}

func (f *fakeStatus) Delete(_ context.Context, pod *v1.Pod) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, pod.UID)
	f.ops = append(f.ops, "delete "+string(pod.UID))
	return nil
}

func (f *fakeStatus) Forget(uid types.UID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgot = append(f.forgot, uid)
}

func (f *fakeStatus) get(uid types.UID) *v1.PodStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.statuses[uid]
}

// recordingRuntime keeps the configs the fake runtime does not store, and
// the order of StopContainer calls.
type recordingRuntime struct {
	*critest.FakeRuntimeService
	mu         sync.Mutex
	sandboxes  []*runtimeapi.PodSandboxConfig
	containers []*runtimeapi.ContainerConfig
	stopped    []string
}

func (r *recordingRuntime) StopContainer(ctx context.Context, id string, timeout int64) error {
	r.mu.Lock()
	r.stopped = append(r.stopped, id)
	r.mu.Unlock()
	r.FakeRuntimeService.Lock()
	c, ok := r.Containers[id]
	unknown := ok && c.State == runtimeapi.ContainerState_CONTAINER_UNKNOWN
	r.FakeRuntimeService.Unlock()
	if err := r.FakeRuntimeService.StopContainer(ctx, id, timeout); err != nil || !unknown {
		return err
	}
	// What containerd's cleanup of an Unknown container leaves.
	r.FakeRuntimeService.Lock()
	c.ExitCode, c.Reason = 255, "Unknown"
	r.FakeRuntimeService.Unlock()
	return nil
}

func (r *recordingRuntime) stoppedIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.stopped...)
}

func (r *recordingRuntime) RunPodSandbox(ctx context.Context, cfg *runtimeapi.PodSandboxConfig, handler string) (string, error) {
	r.mu.Lock()
	r.sandboxes = append(r.sandboxes, cfg)
	r.mu.Unlock()
	return r.FakeRuntimeService.RunPodSandbox(ctx, cfg, handler)
}

func (r *recordingRuntime) CreateContainer(ctx context.Context, sb string, cfg *runtimeapi.ContainerConfig, sbCfg *runtimeapi.PodSandboxConfig) (string, error) {
	r.mu.Lock()
	r.containers = append(r.containers, cfg)
	r.mu.Unlock()
	return r.FakeRuntimeService.CreateContainer(ctx, sb, cfg, sbCfg)
}

type env struct {
	s      *Syncer
	rt     *recordingRuntime
	images *critest.FakeImageService
	vols   *fakeVolumes
	status *fakeStatus
	rec    *record.FakeRecorder
	clock  *testingclock.FakeClock
	cfg    Config
}

const testImage = "registry.example/app:1.0"

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	cfg := Config{
		NodeName:      "node1",
		NodeIPs:       []net.IP{net.ParseIP("10.0.0.1")},
		RootDir:       filepath.Join(dir, "root"),
		PodLogsDir:    filepath.Join(dir, "pods"),
		ContainerLogs: filepath.Join(dir, "containers"),
		ClusterDNS:    []string{"10.96.0.10"},
		ClusterDomain: "cluster.local",
	}
	e := &env{
		rt:     &recordingRuntime{FakeRuntimeService: critest.NewFakeRuntimeService()},
		images: critest.NewFakeImageService(),
		vols:   &fakeVolumes{dir: filepath.Join(dir, "volumes")},
		status: &fakeStatus{},
		rec:    record.NewFakeRecorder(1000),
		clock:  testingclock.NewFakeClock(time.Now()),
		cfg:    cfg,
	}
	e.images.SetFakeImages([]string{testImage})
	e.s = New(cfg, e.rt, e.images, e.vols, fakeEnv{}, e.status, e.rec, e.clock)
	return e
}

func (e *env) events() []string {
	var out []string
	for {
		select {
		case ev := <-e.rec.Events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

func hasEvent(events []string, substr string) bool {
	for _, ev := range events {
		if strings.Contains(ev, substr) {
			return true
		}
	}
	return false
}

// containerID returns the ID of the container name of attempt in pod uid.
func (e *env) containerID(t *testing.T, uid types.UID, name string, attempt uint32) string {
	t.Helper()
	e.rt.Lock()
	defer e.rt.Unlock()
	for id, c := range e.rt.Containers {
		if c.Labels[cri.PodUIDLabel] == string(uid) && c.Metadata.Name == name && c.Metadata.Attempt == attempt {
			return id
		}
	}
	t.Fatalf("no container %s attempt %d in pod %s", name, attempt, uid)
	return ""
}

// find returns the ID of the container name of attempt in pod uid, if any.
func (e *env) find(uid types.UID, name string, attempt uint32) (string, bool) {
	e.rt.Lock()
	defer e.rt.Unlock()
	id := e.findLocked(uid, name, attempt)
	return id, id != ""
}

// findLocked is find with the runtime locked.
func (e *env) findLocked(uid types.UID, name string, attempt uint32) string {
	for id, c := range e.rt.Containers {
		if c.Labels[cri.PodUIDLabel] == string(uid) && c.Metadata.Name == name && c.Metadata.Attempt == attempt {
			return id
		}
	}
	return ""
}

// exit makes the runtime report container id as exited with code.
func (e *env) exit(id string, code int32) {
	e.rt.Lock()
	defer e.rt.Unlock()
	c := e.rt.Containers[id]
	c.State = runtimeapi.ContainerState_CONTAINER_EXITED
	c.ExitCode = code
	c.FinishedAt = e.clock.Now().UnixNano()
}

func (e *env) containerCount() int {
	e.rt.Lock()
	defer e.rt.Unlock()
	return len(e.rt.Containers)
}

func (e *env) sandboxesOf(uid types.UID) []*critest.FakePodSandbox {
	e.rt.Lock()
	defer e.rt.Unlock()
	var out []*critest.FakePodSandbox
	for _, sb := range e.rt.Sandboxes {
		if sb.Labels[cri.PodUIDLabel] == string(uid) {
			out = append(out, sb)
		}
	}
	return out
}

func (e *env) sync(t *testing.T, pod *v1.Pod) (bool, time.Duration) {
	t.Helper()
	terminal, requeue, err := e.s.SyncPod(context.Background(), pod)
	if err != nil {
		t.Fatalf("SyncPod: %v", err)
	}
	return terminal, requeue
}

func testPod(uid string, policy v1.RestartPolicy) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-" + uid, Namespace: "ns1", UID: types.UID(uid), Labels: map[string]string{"app": "web"}},
		Spec: v1.PodSpec{
			RestartPolicy: policy,
			Containers: []v1.Container{{
				Name: "c", Image: testImage, ImagePullPolicy: v1.PullIfNotPresent,
				TerminationMessagePath: "/dev/termination-log",
			}},
		},
	}
}

func TestSyncPodStartsPod(t *testing.T) {
	e := newEnv(t)
	pod := testPod("uid1", v1.RestartPolicyAlways)

	terminal, requeue := e.sync(t, pod)
	if terminal || requeue != 0 {
		t.Errorf("SyncPod = %v, %v; want not terminal, no requeue", terminal, requeue)
	}

	sbs := e.sandboxesOf(pod.UID)
	if len(sbs) != 1 {
		t.Fatalf("%d sandboxes, want 1", len(sbs))
	}
	sb := sbs[0]
	for k, v := range map[string]string{
		cri.PodNameLabel: "web-uid1", cri.PodNamespaceLabel: "ns1", cri.PodUIDLabel: "uid1",
		cri.ManagedLabel: "true", "app": "web",
	} {
		if sb.Labels[k] != v {
			t.Errorf("sandbox label %s = %q, want %q", k, sb.Labels[k], v)
		}
	}
	if sb.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("sandbox state = %v, want ready", sb.State)
	}
	logDir := filepath.Join(e.cfg.PodLogsDir, "ns1_web-uid1_uid1")
	if got := e.rt.sandboxes[0].LogDirectory; got != logDir {
		t.Errorf("sandbox LogDirectory = %q, want %q", got, logDir)
	}
	if fi, err := os.Stat(logDir); err != nil || !fi.IsDir() {
		t.Errorf("pod log directory %s not created: %v", logDir, err)
	}
	if dns := e.rt.sandboxes[0].DnsConfig; !reflect.DeepEqual(dns.Servers, []string{"10.96.0.10"}) {
		t.Errorf("sandbox DNS servers = %v, want the cluster DNS", dns.Servers)
	}

	if len(e.rt.containers) != 1 {
		t.Fatalf("%d containers created, want 1", len(e.rt.containers))
	}
	cc := e.rt.containers[0]
	if cc.LogPath != "c/0.log" {
		t.Errorf("LogPath = %q, want c/0.log", cc.LogPath)
	}
	if cc.Labels[cri.ManagedLabel] != "true" || cc.Labels[cri.ContainerNameLabel] != "c" || cc.Labels[cri.PodUIDLabel] != "uid1" {
		t.Errorf("container labels = %v", cc.Labels)
	}
	id := e.containerID(t, pod.UID, "c", 0)
	e.rt.Lock()
	state := e.rt.Containers[id].State
	e.rt.Unlock()
	if state != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("container state = %v, want running", state)
	}
	link := filepath.Join(e.cfg.ContainerLogs, "web-uid1_ns1_c-"+id+".log")
	if target, err := os.Readlink(link); err != nil || target != filepath.Join(logDir, "c/0.log") {
		t.Errorf("log link %s -> %q, %v; want the container's log", link, target, err)
	}

	st := e.status.get(pod.UID)
	if st == nil {
		t.Fatal("no status written")
	}
	if st.Phase != v1.PodRunning {
		t.Errorf("phase = %s, want Running", st.Phase)
	}
	if st.PodIP != critest.FakePodSandboxIPs[0] {
		t.Errorf("PodIP = %q, want the sandbox's %q", st.PodIP, critest.FakePodSandboxIPs[0])
	}
	if st.HostIP != "10.0.0.1" {
		t.Errorf("HostIP = %q, want 10.0.0.1", st.HostIP)
	}
	if st.QOSClass != v1.PodQOSBestEffort {
		t.Errorf("QOSClass = %s, want BestEffort", st.QOSClass)
	}
	if len(st.ContainerStatuses) != 1 {
		t.Fatalf("container statuses = %+v", st.ContainerStatuses)
	}
	cs := st.ContainerStatuses[0]
	if cs.ContainerID != "containerd://"+id || cs.State.Running == nil || !cs.Ready || cs.RestartCount != 0 {
		t.Errorf("container status = %+v, want running and ready with ID containerd://%s", cs, id)
	}
	if !hasCondition(st, v1.PodReady, v1.ConditionTrue) {
		t.Errorf("conditions = %+v, want Ready=True", st.Conditions)
	}
	if evs := e.events(); !hasEvent(evs, "Started") {
		t.Errorf("events = %v, want a Started event", evs)
	}

	// A second sync finds everything in place.
	terminal, requeue = e.sync(t, pod)
	if terminal || requeue != 0 {
		t.Errorf("second SyncPod = %v, %v; want not terminal, no requeue", terminal, requeue)
	}
	if n := len(e.rt.containers); n != 1 {
		t.Errorf("second SyncPod created containers: %d in all, want 1", n)
	}
	if n := len(e.rt.sandboxes); n != 1 {
		t.Errorf("second SyncPod created sandboxes: %d in all, want 1", n)
	}
	if st := e.status.get(pod.UID); st.Phase != v1.PodRunning {
		t.Errorf("phase after second sync = %s, want Running", st.Phase)
	}
}

func hasCondition(st *v1.PodStatus, typ v1.PodConditionType, status v1.ConditionStatus) bool {
	for _, c := range st.Conditions {
		if c.Type == typ {
			return c.Status == status
		}
	}
	return false
}

func TestSyncPodRestartNever(t *testing.T) {
	tests := []struct {
		code int32
		want v1.PodPhase
	}{
		{0, v1.PodSucceeded},
		{2, v1.PodFailed},
	}
	for _, tt := range tests {
		t.Run(string(tt.want), func(t *testing.T) {
			e := newEnv(t)
			pod := testPod("uid1", v1.RestartPolicyNever)
			e.sync(t, pod)
			e.exit(e.containerID(t, pod.UID, "c", 0), tt.code)

			terminal, _ := e.sync(t, pod)
			if !terminal {
				t.Error("SyncPod not terminal after the only container exited")
			}
			st := e.status.get(pod.UID)
			if st.Phase != tt.want {
				t.Errorf("phase = %s, want %s", st.Phase, tt.want)
			}
			term := st.ContainerStatuses[0].State.Terminated
			if term == nil || term.ExitCode != tt.code {
				t.Errorf("container state = %+v, want terminated with %d", st.ContainerStatuses[0].State, tt.code)
			}
			if n := e.containerCount(); n != 1 {
				t.Errorf("%d containers, want 1: Never must not restart", n)
			}
		})
	}
}

// A container left created (the agent died between CreateContainer and
// StartContainer) is started, not replaced: its restart count stays 0.
func TestSyncPodStartsContainerLeftCreated(t *testing.T) {
	e := newEnv(t)
	pod := testPod("uid1", v1.RestartPolicyAlways)
	e.sync(t, pod)
	id := e.containerID(t, pod.UID, "c", 0)
	e.rt.Lock()
	e.rt.Containers[id].State = runtimeapi.ContainerState_CONTAINER_CREATED
	e.rt.Containers[id].StartedAt = 0
	e.rt.Unlock()
	e.sync(t, pod)
	e.rt.Lock()
	state := e.rt.Containers[id].State
	e.rt.Unlock()
	if state != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("container left created is %v, want running", state)
	}
	if n := e.containerCount(); n != 1 {
		t.Errorf("%d containers, want the one left created", n)
	}
	if cs := e.status.get(pod.UID).ContainerStatuses; len(cs) != 1 || cs[0].RestartCount != 0 || cs[0].State.Running == nil {
		t.Errorf("status = %+v", cs)
	}
}

// A start the runtime abandoned because its caller (a killed agent) went
// away is not a restart: the instance is replaced under its own attempt.
// A start that failed otherwise counts.
func TestSyncPodReplacesAbandonedStart(t *testing.T) {
	for _, tt := range []struct {
		msg         string
		wantAttempt uint32
	}{
		{"failed to create containerd task: failed to create shim task: context canceled", 0},
		{"exec: \"nosuch\": executable file not found in $PATH", 1},
	} {
		e := newEnv(t)
		pod := testPod("uid1", v1.RestartPolicyAlways)
		e.sync(t, pod)
		id := e.containerID(t, pod.UID, "c", 0)
		e.rt.Lock()
		ct := e.rt.Containers[id]
		ct.State, ct.StartedAt, ct.FinishedAt, ct.ExitCode, ct.Reason, ct.Message = runtimeapi.ContainerState_CONTAINER_EXITED, 0, e.clock.Now().UnixNano(), 128, "StartError", tt.msg
		e.rt.Unlock()
		e.sync(t, pod)
		if _, ok := e.find(pod.UID, "c", tt.wantAttempt); !ok || (tt.wantAttempt == 0 && e.containerCount() != 1) {
			t.Errorf("%q: no running instance with attempt %d (%d containers)", tt.msg, tt.wantAttempt, e.containerCount())
		}
	}
}

// unknown makes the runtime report container id in state Unknown, as
// containerd does for one whose status it could not read back after a
// restart (it was killed in the middle of CreateContainer).
func (e *env) unknown(id string) {
	e.rt.Lock()
	defer e.rt.Unlock()
	c := e.rt.Containers[id]
	c.State, c.CreatedAt, c.StartedAt = runtimeapi.ContainerState_CONTAINER_UNKNOWN, 0, 0
}

func (e *env) stateOfContainer(id string) runtimeapi.ContainerState {
	e.rt.Lock()
	defer e.rt.Unlock()
	return e.rt.Containers[id].State
}

// A container in state Unknown is stopped and started again at once,
// whatever the restartPolicy, as the kubelet does: before, the pod waited
// for ever (TestSoakContainerdKill's pod stuck with CreateContainerError).
func TestSyncPodReplacesUnknownContainer(t *testing.T) {
	for _, policy := range []v1.RestartPolicy{v1.RestartPolicyAlways, v1.RestartPolicyNever} {
		t.Run(string(policy), func(t *testing.T) {
			e := newEnv(t)
			pod := testPod("uid1", policy)
			e.sync(t, pod)
			id := e.containerID(t, pod.UID, "c", 0)
			e.unknown(id)
			terminal, requeue := e.sync(t, pod)
			if terminal || requeue != 0 {
				t.Errorf("terminal %v, requeue %v: want a running pod and no back-off", terminal, requeue)
			}
			if st := e.stateOfContainer(id); st != runtimeapi.ContainerState_CONTAINER_EXITED {
				t.Errorf("the Unknown instance is %v, want stopped", st)
			}
			next, ok := e.find(pod.UID, "c", 1)
			if !ok || e.stateOfContainer(next) != runtimeapi.ContainerState_CONTAINER_RUNNING {
				t.Fatalf("no running instance 1 (%d containers)", e.containerCount())
			}
			if cs := e.status.get(pod.UID).ContainerStatuses; len(cs) != 1 || cs[0].RestartCount != 1 || cs[0].State.Running == nil {
				t.Errorf("status = %+v", cs)
			}
			if evs, want := e.events(), `Killing Container is in "unknown" state, try killing it before restart`; !hasEvent(evs, want) {
				t.Errorf("events %q lack %q", evs, want)
			}
		})
	}
}

// A regular init container in state Unknown is restarted, unless the pod
// never restarts: then it is only stopped, and its failure fails the pod.
func TestSyncPodUnknownInitContainer(t *testing.T) {
	for _, tt := range []struct {
		policy  v1.RestartPolicy
		restart bool
	}{{v1.RestartPolicyOnFailure, true}, {v1.RestartPolicyNever, false}} {
		t.Run(string(tt.policy), func(t *testing.T) {
			e := newEnv(t)
			pod := initPod("uid1", tt.policy)
			e.sync(t, pod)
			id := e.containerID(t, pod.UID, "init1", 0)
			e.unknown(id)
			e.sync(t, pod)
			if st := e.stateOfContainer(id); st != runtimeapi.ContainerState_CONTAINER_EXITED {
				t.Errorf("the Unknown instance is %v, want stopped", st)
			}
			if _, ok := e.find(pod.UID, "init1", 1); ok != tt.restart {
				t.Errorf("instance 1 started: %v, want %v", ok, tt.restart)
			}
			if tt.restart {
				return
			}
			pod.Status = *e.status.get(pod.UID)
			if pod.Status.Phase != v1.PodFailed {
				t.Errorf("phase %s, want Failed: the stopped init container failed", pod.Status.Phase)
			}
			e.sync(t, pod)
			if _, ok := e.find(pod.UID, "init2", 0); ok {
				t.Error("init2 started after init1 was stopped in state Unknown")
			}
		})
	}
}

// A container whose Unknown state was written to the status (its stop
// failed once) counts one restart, not two, once its next instance runs.
func TestSyncPodUnknownRestartCountedOnce(t *testing.T) {
	e := newEnv(t)
	pod := testPod("uid1", v1.RestartPolicyAlways)
	e.sync(t, pod)
	pod.Status = *e.status.get(pod.UID)
	e.unknown(e.containerID(t, pod.UID, "c", 0))
	e.rt.InjectError("StopContainer", errors.New("runtime busy"))
	if _, _, err := e.s.SyncPod(context.Background(), pod); err == nil {
		t.Fatal("SyncPod succeeded with the stop failing")
	}
	pod.Status = *e.status.get(pod.UID)
	if cs := pod.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Terminated == nil || cs[0].State.Terminated.Reason != "ContainerStatusUnknown" || cs[0].RestartCount != 1 {
		t.Fatalf("status with the container Unknown = %+v", cs)
	}
	e.sync(t, pod)
	if cs := e.status.get(pod.UID).ContainerStatuses; len(cs) != 1 || cs[0].State.Running == nil || cs[0].RestartCount != 1 {
		t.Errorf("status with the next instance running = %+v, want 1 restart", cs)
	}
}

func TestSyncPodRestartAlwaysCrashLoop(t *testing.T) {
	e := newEnv(t)
	pod := testPod("uid1", v1.RestartPolicyAlways)
	e.sync(t, pod)

	e.exit(e.containerID(t, pod.UID, "c", 0), 1)
	terminal, _ := e.sync(t, pod)
	if terminal {
		t.Fatal("restartPolicy Always pod became terminal")
	}
	id1 := e.containerID(t, pod.UID, "c", 1)
	if got := e.rt.containers[len(e.rt.containers)-1].LogPath; got != "c/1.log" {
		t.Errorf("restarted container LogPath = %q, want c/1.log", got)
	}
	st := e.status.get(pod.UID)
	cs := st.ContainerStatuses[0]
	if cs.RestartCount != 1 || cs.State.Running == nil || cs.ContainerID != "containerd://"+id1 {
		t.Errorf("container status after restart = %+v", cs)
	}
	if lt := cs.LastTerminationState.Terminated; lt == nil || lt.ExitCode != 1 {
		t.Errorf("last termination state = %+v, want exit code 1", cs.LastTerminationState)
	}

	// The restarted container exits at once: crash-loop back-off.
	e.exit(id1, 1)
	terminal, requeue := e.sync(t, pod)
	if terminal {
		t.Fatal("restartPolicy Always pod became terminal")
	}
	if requeue <= 0 {
		t.Errorf("requeue = %v, want > 0 for the back-off", requeue)
	}
	if n := e.containerCount(); n != 2 {
		t.Errorf("%d containers, want 2: no restart during the back-off", n)
	}
	st = e.status.get(pod.UID)
	cs = st.ContainerStatuses[0]
	if w := cs.State.Waiting; w == nil || w.Reason != "CrashLoopBackOff" {
		t.Errorf("container state = %+v, want waiting in CrashLoopBackOff", cs.State)
	}
	if st.Phase != v1.PodRunning {
		t.Errorf("phase = %s, want Running", st.Phase)
	}
	if evs := e.events(); !hasEvent(evs, "BackOff") {
		t.Errorf("events = %v, want a BackOff event", evs)
	}

	// Once the back-off has passed, the container starts again.
	e.clock.Step(requeue)
	e.sync(t, pod)
	e.containerID(t, pod.UID, "c", 2)
	cs = e.status.get(pod.UID).ContainerStatuses[0]
	if cs.RestartCount != 2 || cs.State.Running == nil {
		t.Errorf("container status after the back-off = %+v, want running with 2 restarts", cs)
	}
}

func TestSyncPodImagePullBackOff(t *testing.T) {
	e := newEnv(t)
	e.images.SetFakeImages(nil)
	e.images.InjectError("PullImage", errors.New("manifest unknown"))
	pod := testPod("uid1", v1.RestartPolicyAlways)

	_, requeue := e.sync(t, pod)
	if requeue <= 0 {
		t.Errorf("requeue = %v, want > 0 to retry the pull", requeue)
	}
	st := e.status.get(pod.UID)
	if w := st.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "ErrImagePull" {
		t.Errorf("container state = %+v, want waiting with ErrImagePull", st.ContainerStatuses[0].State)
	}
	if st.Phase != v1.PodPending {
		t.Errorf("phase = %s, want Pending", st.Phase)
	}

	e.sync(t, pod)
	st = e.status.get(pod.UID)
	if w := st.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "ImagePullBackOff" {
		t.Errorf("container state = %+v, want waiting with ImagePullBackOff", st.ContainerStatuses[0].State)
	}
	if n := e.containerCount(); n != 0 {
		t.Errorf("%d containers created without the image", n)
	}

	// After the back-off the pull is retried and succeeds.
	e.clock.Step(requeue)
	e.sync(t, pod)
	st = e.status.get(pod.UID)
	if st.ContainerStatuses[0].State.Running == nil || st.Phase != v1.PodRunning {
		t.Errorf("after the back-off: phase %s, container state %+v; want running", st.Phase, st.ContainerStatuses[0].State)
	}
}

func TestSyncPodUnsupported(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*v1.Pod)
		want   string
	}{
		{"persistentVolumeClaim volume", func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "h", VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "c"}}}}
		}, `volume "h"`},
		{"restartPolicy of an app container", func(p *v1.Pod) {
			always := v1.ContainerRestartPolicyAlways
			p.Spec.Containers[0].RestartPolicy = &always
		}, `container "c": restartPolicy Always`},
		// newEnv's Syncer writes no pod cgroups (Config.PodCgroups nil).
		{"pod-level limits without pod cgroups", func(p *v1.Pod) {
			p.Spec.Resources = &v1.ResourceRequirements{Limits: v1.ResourceList{v1.ResourceMemory: resource.MustParse("128Mi")}}
		}, "pod-level limits (spec.resources.limits) are not supported on this node"},
		{"static pod requesting less than its containers", func(p *v1.Pod) {
			p.Annotations = map[string]string{staticpods.ConfigSourceAnnotation: staticpods.FileSource}
			p.Spec.Resources = &v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")}}
			p.Spec.Containers[0].Resources.Requests = v1.ResourceList{v1.ResourceMemory: resource.MustParse("128Mi")}
		}, "spec.resources.requests[memory] 64Mi must be greater than or equal to the containers' aggregate requests of 128Mi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			pod := testPod("uid1", v1.RestartPolicyAlways)
			tt.mutate(pod)
			terminal, _ := e.sync(t, pod)
			if !terminal {
				t.Error("SyncPod not terminal for a rejected pod")
			}
			st := e.status.get(pod.UID)
			if st == nil || st.Phase != v1.PodFailed || st.Reason != "UnsupportedPodSpec" || !strings.Contains(st.Message, tt.want) {
				t.Errorf("status = %+v, want Failed/UnsupportedPodSpec naming %s", st, tt.want)
			}
			if evs := e.events(); !hasEvent(evs, "UnsupportedPodSpec") {
				t.Errorf("events = %v, want an UnsupportedPodSpec event", evs)
			}
			if n := len(e.sandboxesOf(pod.UID)); n != 0 {
				t.Errorf("%d sandboxes created for a rejected pod", n)
			}
		})
	}
}

func TestSyncPodFinishedPhaseIsTerminal(t *testing.T) {
	e := newEnv(t)
	pod := testPod("uid1", v1.RestartPolicyNever)
	pod.Status.Phase = v1.PodSucceeded
	if terminal, _ := e.sync(t, pod); !terminal {
		t.Error("SyncPod of a Succeeded pod not terminal")
	}
	if n := len(e.sandboxesOf(pod.UID)); n != 0 {
		t.Errorf("%d sandboxes created for a finished pod", n)
	}
}

func TestSyncPodSandboxFailure(t *testing.T) {
	e := newEnv(t)
	e.rt.InjectError("RunPodSandbox", errors.New("no network"))
	pod := testPod("uid1", v1.RestartPolicyAlways)
	if _, _, err := e.s.SyncPod(context.Background(), pod); err == nil {
		t.Fatal("SyncPod succeeded although the sandbox could not run")
	}
	if evs := e.events(); !hasEvent(evs, "FailedCreatePodSandBox") {
		t.Errorf("events = %v, want FailedCreatePodSandBox", evs)
	}
	if st := e.status.get(pod.UID); st == nil || st.Phase != v1.PodPending {
		t.Errorf("status = %+v, want Pending", st)
	}
	// The next sync succeeds.
	e.sync(t, pod)
	if st := e.status.get(pod.UID); st.Phase != v1.PodRunning {
		t.Errorf("phase = %s after retry, want Running", st.Phase)
	}
}

func TestSyncTerminatingPod(t *testing.T) {
	e := newEnv(t)
	pod := testPod("uid1", v1.RestartPolicyAlways)
	e.sync(t, pod)

	if err := e.s.SyncTerminatingPod(context.Background(), pod, 5, nil); err != nil {
		t.Fatalf("SyncTerminatingPod: %v", err)
	}
	id := e.containerID(t, pod.UID, "c", 0)
	e.rt.Lock()
	state := e.rt.Containers[id].State
	e.rt.Unlock()
	if state != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("container state = %v, want exited", state)
	}
	for _, sb := range e.sandboxesOf(pod.UID) {
		if sb.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
			t.Errorf("sandbox %s state = %v, want not ready", sb.Id, sb.State)
		}
	}
	if evs := e.events(); !hasEvent(evs, "Killing") {
		t.Errorf("events = %v, want Killing", evs)
	}
	// Idempotent.
	if err := e.s.SyncTerminatingPod(context.Background(), pod, 5, nil); err != nil {
		t.Fatalf("second SyncTerminatingPod: %v", err)
	}
}

func TestSyncTerminatingPodStopError(t *testing.T) {
	e := newEnv(t)
	pod := testPod("uid1", v1.RestartPolicyAlways)
	e.sync(t, pod)
	e.rt.InjectError("StopContainer", errors.New("stuck"))
	if err := e.s.SyncTerminatingPod(context.Background(), pod, 5, nil); err == nil {
		t.Fatal("SyncTerminatingPod succeeded although a container did not stop")
	}
	for _, sb := range e.sandboxesOf(pod.UID) {
		if sb.State != runtimeapi.PodSandboxState_SANDBOX_READY {
			t.Errorf("sandbox stopped although a container is still running")
		}
	}
}

// stoppedDeletedPod runs a pod, stops it and marks it deleted: what
// SyncTerminatedPod gets for a pod deleted through the apiserver.
func stoppedDeletedPod(t *testing.T, e *env) *v1.Pod {
	t.Helper()
	pod := testPod("uid1", v1.RestartPolicyAlways)
	e.sync(t, pod)
	if err := e.s.SyncTerminatingPod(context.Background(), pod, 0, nil); err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	pod.DeletionTimestamp = &now
	return pod
}

func TestSyncTerminatedPod(t *testing.T) {
	t.Run("deleted", func(t *testing.T) {
		e := newEnv(t)
		pod := stoppedDeletedPod(t, e)
		if err := e.s.SyncTerminatedPod(context.Background(), pod, false); err != nil {
			t.Fatalf("SyncTerminatedPod: %v", err)
		}
		if n := len(e.sandboxesOf(pod.UID)); n != 0 {
			t.Errorf("%d sandboxes left, want 0", n)
		}
		if !reflect.DeepEqual(e.status.deleted, []types.UID{"uid1"}) {
			t.Errorf("StatusWriter.Delete calls = %v, want uid1", e.status.deleted)
		}
		// The final status, written before the object is deleted (a
		// finalizer may keep it): the container terminated, the phase
		// terminal although the policy is Always (the kubelet's
		// podIsTerminal).
		st := e.status.get("uid1")
		if st == nil || len(st.ContainerStatuses) != 1 || st.ContainerStatuses[0].State.Terminated == nil ||
			(st.Phase != v1.PodSucceeded && st.Phase != v1.PodFailed) {
			t.Errorf("final status = %+v, want a terminated container and a terminal phase", st)
		}
		// Written while the pod is removed, but before the object goes.
		if n := len(e.status.ops); n < 2 || e.status.ops[n-2] != "write uid1" || e.status.ops[n-1] != "delete uid1" {
			t.Errorf("status writer calls = %v, want the final write, then the delete", e.status.ops)
		}
		if !reflect.DeepEqual(e.status.forgot, []types.UID{"uid1"}) {
			t.Errorf("StatusWriter.Forget calls = %v, want uid1", e.status.forgot)
		}
		if len(e.vols.teardowns) != 1 {
			t.Errorf("volume teardowns = %v, want 1", e.vols.teardowns)
		}
		if _, err := os.Stat(filepath.Join(e.cfg.PodLogsDir, "ns1_web-uid1_uid1")); !os.IsNotExist(err) {
			t.Errorf("pod log directory still there: %v", err)
		}
	})
	t.Run("deleted, final write fails", func(t *testing.T) {
		// The object is not deleted before its final status is written
		// (the kubelet's status manager), and the retry writes the status
		// computed before the removal, not one from what is left.
		e := newEnv(t)
		pod := stoppedDeletedPod(t, e)
		e.status.mu.Lock()
		e.status.writeErr = errors.New("apiserver down")
		e.status.mu.Unlock()
		if err := e.s.SyncTerminatedPod(context.Background(), pod, false); err == nil || !strings.Contains(err.Error(), "apiserver down") {
			t.Fatalf("SyncTerminatedPod = %v, want the write's error", err)
		}
		if len(e.status.deleted) != 0 {
			t.Fatalf("object deleted before its final status was written: %v", e.status.deleted)
		}
		e.status.mu.Lock()
		e.status.writeErr = nil
		e.status.mu.Unlock()
		if err := e.s.SyncTerminatedPod(context.Background(), pod, false); err != nil {
			t.Fatalf("retry: %v", err)
		}
		st := e.status.get("uid1")
		if st == nil || len(st.ContainerStatuses) != 1 || st.ContainerStatuses[0].State.Terminated == nil {
			t.Errorf("final status after the retry = %+v, want the terminated container computed before removal", st)
		}
		if !reflect.DeepEqual(e.status.deleted, []types.UID{"uid1"}) {
			t.Errorf("deletes = %v, want uid1 once", e.status.deleted)
		}
	})
	t.Run("deleted terminal", func(t *testing.T) {
		// A pod already Failed (rejected at admission, ended before an
		// agent restart) keeps its status when deleted: no final write.
		e := newEnv(t)
		pod := testPod("uid1", v1.RestartPolicyAlways)
		pod.Status.Phase, pod.Status.Reason = v1.PodFailed, "OutOfcpu"
		now := metav1.Now()
		pod.DeletionTimestamp = &now
		if err := e.s.SyncTerminatedPod(context.Background(), pod, false); err != nil {
			t.Fatalf("SyncTerminatedPod: %v", err)
		}
		if st := e.status.get("uid1"); st != nil {
			t.Errorf("status written over a terminal one: %+v", st)
		}
	})
	t.Run("gone", func(t *testing.T) {
		e := newEnv(t)
		pod := testPod("uid1", v1.RestartPolicyAlways)
		e.sync(t, pod)
		if err := e.s.SyncTerminatedPod(context.Background(), pod, true); err != nil {
			t.Fatalf("SyncTerminatedPod: %v", err)
		}
		if n := len(e.sandboxesOf(pod.UID)); n != 0 {
			t.Errorf("%d sandboxes left, want 0", n)
		}
		if len(e.status.deleted) != 0 {
			t.Errorf("StatusWriter.Delete called for a pod that is already gone: %v", e.status.deleted)
		}
	})
	t.Run("finished", func(t *testing.T) {
		e := newEnv(t)
		pod := testPod("uid1", v1.RestartPolicyNever)
		e.sync(t, pod)
		e.exit(e.containerID(t, pod.UID, "c", 0), 0)
		if err := e.s.SyncTerminatingPod(context.Background(), pod, 30, nil); err != nil {
			t.Fatal(err)
		}
		if err := e.s.SyncTerminatedPod(context.Background(), pod, false); err != nil {
			t.Fatalf("SyncTerminatedPod: %v", err)
		}
		if n := len(e.sandboxesOf(pod.UID)); n != 1 {
			t.Errorf("%d sandboxes, want 1 kept until the pod is deleted", n)
		}
		if len(e.status.deleted) != 0 || len(e.vols.teardowns) != 1 {
			t.Errorf("deleted %v, teardowns %v; want no delete and one teardown", e.status.deleted, e.vols.teardowns)
		}
	})
}

func TestGarbageCollect(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	known := testPod("known", v1.RestartPolicyAlways)
	orphan := testPod("orphan", v1.RestartPolicyAlways)
	e.sync(t, known)
	e.sync(t, orphan)

	// The known pod restarted once: the older dead instance goes, the
	// newest one stays.
	e.exit(e.containerID(t, known.UID, "c", 0), 1)
	e.sync(t, known)
	old := e.containerID(t, known.UID, "c", 0)
	current := e.containerID(t, known.UID, "c", 1)
	logDir := filepath.Join(e.cfg.PodLogsDir, "ns1_web-known_known", "c")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"0.log", "0.log.20261122-010203.gz", "0.log.20261122-010204", "1.log"} {
		if err := os.WriteFile(filepath.Join(logDir, f), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Objects nodeagent did not create, even labelled with the UID of a
	// pod it does not know, must survive.
	foreignCfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "foreign", Namespace: "other", Uid: "foreign"},
		Labels:   map[string]string{cri.PodUIDLabel: "orphan", cri.PodNameLabel: "foreign"},
	}
	foreignSB, err := e.rt.FakeRuntimeService.RunPodSandbox(ctx, foreignCfg, "")
	if err != nil {
		t.Fatal(err)
	}
	foreignCtr, err := e.rt.FakeRuntimeService.CreateContainer(ctx, foreignSB, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "x"},
		Image:    &runtimeapi.ImageSpec{Image: testImage},
		Labels:   map[string]string{cri.PodUIDLabel: "orphan", cri.ContainerNameLabel: "x"},
	}, foreignCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.rt.FakeRuntimeService.StartContainer(ctx, foreignCtr); err != nil {
		t.Fatal(err)
	}
	e.rt.Lock()
	e.rt.Containers[foreignCtr].State = runtimeapi.ContainerState_CONTAINER_RUNNING
	e.rt.Unlock()

	// A co-resident kubelet's pod log directory (no marker, no sandbox of
	// nodeagent's) survives; one nodeagent made for a pod whose sandbox is
	// already gone (marker only) goes.
	foreignLogs := filepath.Join(e.cfg.PodLogsDir, "kube-system_etcd_kubeletpod", "etcd")
	marked := filepath.Join(e.cfg.PodLogsDir, "ns1_web-gone_gone")
	for _, d := range []string{foreignLogs, marked} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(marked, ownerMarker), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	err = e.s.GarbageCollect(ctx, func(uid types.UID) bool { return uid == known.UID })
	if err != nil {
		t.Fatalf("GarbageCollect: %v", err)
	}

	e.rt.Lock()
	defer e.rt.Unlock()
	var orphanSandboxes int
	for _, sb := range e.rt.Sandboxes {
		if sb.Labels[cri.PodUIDLabel] == "orphan" && sb.Labels[cri.ManagedLabel] == "true" {
			orphanSandboxes++
		}
	}
	if orphanSandboxes != 0 {
		t.Errorf("%d sandboxes of the unknown pod left, want 0", orphanSandboxes)
	}
	if sb, ok := e.rt.Sandboxes[foreignSB]; !ok || sb.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("foreign sandbox removed or stopped: %v", sb)
	}
	if c, ok := e.rt.Containers[foreignCtr]; !ok || c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("foreign container removed or stopped: %v", c)
	}
	if len(sandboxesLocked(e.rt.FakeRuntimeService, known.UID)) != 1 {
		t.Errorf("sandbox of the known pod removed")
	}
	if _, ok := e.rt.Containers[current]; !ok {
		t.Errorf("current container %s of the known pod removed", current)
	}
	if _, ok := e.rt.Containers[old]; ok {
		t.Errorf("dead container %s beyond the newest not removed", old)
	}
	if left, _ := filepath.Glob(filepath.Join(logDir, "*")); len(left) != 1 || filepath.Base(left[0]) != "1.log" {
		t.Errorf("log files after removing the dead container: %v, want only the current 1.log", left)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.PodLogsDir, "ns1_web-orphan_orphan")); !os.IsNotExist(err) {
		t.Errorf("log directory of the unknown pod still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.PodLogsDir, "ns1_web-known_known")); err != nil {
		t.Errorf("log directory of the known pod: %v", err)
	}
	if _, err := os.Stat(foreignLogs); err != nil {
		t.Errorf("a foreign pod log directory was removed: %v", err)
	}
	if _, err := os.Stat(marked); !os.IsNotExist(err) {
		t.Errorf("nodeagent's log directory of a gone pod still there: %v", err)
	}
}

// sandboxesLocked returns the managed sandboxes of uid; rt must be locked.
func sandboxesLocked(rt *critest.FakeRuntimeService, uid types.UID) []string {
	var out []string
	for id, sb := range rt.Sandboxes {
		if sb.Labels[cri.PodUIDLabel] == string(uid) && cri.IsManaged(sb.Labels) {
			out = append(out, id)
		}
	}
	return out
}

func resources(req, lim v1.ResourceList) v1.ResourceRequirements {
	return v1.ResourceRequirements{Requests: req, Limits: lim}
}

func rl(cpu, mem string) v1.ResourceList {
	out := v1.ResourceList{}
	if cpu != "" {
		out[v1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		out[v1.ResourceMemory] = resource.MustParse(mem)
	}
	return out
}

func TestQOSClass(t *testing.T) {
	tests := []struct {
		name   string
		init   []v1.ResourceRequirements
		ctrs   []v1.ResourceRequirements
		status v1.PodQOSClass
		want   v1.PodQOSClass
	}{
		{name: "no resources", ctrs: []v1.ResourceRequirements{{}}, want: v1.PodQOSBestEffort},
		{name: "limits equal requests", ctrs: []v1.ResourceRequirements{resources(rl("1", "1Gi"), rl("1", "1Gi"))}, want: v1.PodQOSGuaranteed},
		{name: "limits only", ctrs: []v1.ResourceRequirements{resources(nil, rl("1", "1Gi"))}, want: v1.PodQOSGuaranteed},
		{name: "requests below limits", ctrs: []v1.ResourceRequirements{resources(rl("500m", "1Gi"), rl("1", "1Gi"))}, want: v1.PodQOSBurstable},
		{name: "cpu limit only", ctrs: []v1.ResourceRequirements{resources(nil, rl("1", ""))}, want: v1.PodQOSBurstable},
		{name: "requests only", ctrs: []v1.ResourceRequirements{resources(rl("100m", ""), nil)}, want: v1.PodQOSBurstable},
		{name: "one container best effort", ctrs: []v1.ResourceRequirements{resources(rl("1", "1Gi"), rl("1", "1Gi")), {}}, want: v1.PodQOSBurstable},
		{name: "init container counts", init: []v1.ResourceRequirements{resources(rl("100m", ""), nil)}, ctrs: []v1.ResourceRequirements{{}}, want: v1.PodQOSBurstable},
		{name: "zero quantities", ctrs: []v1.ResourceRequirements{resources(rl("0", "0"), nil)}, want: v1.PodQOSBestEffort},
		{name: "status wins", ctrs: []v1.ResourceRequirements{{}}, status: v1.PodQOSGuaranteed, want: v1.PodQOSGuaranteed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &v1.Pod{Status: v1.PodStatus{QOSClass: tt.status}}
			for i, r := range tt.init {
				pod.Spec.InitContainers = append(pod.Spec.InitContainers, v1.Container{Name: "i" + string(rune('0'+i)), Resources: r})
			}
			for i, r := range tt.ctrs {
				pod.Spec.Containers = append(pod.Spec.Containers, v1.Container{Name: "c" + string(rune('0'+i)), Resources: r})
			}
			if got := qosClass(pod); got != tt.want {
				t.Errorf("qosClass = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestPhase(t *testing.T) {
	running := v1.ContainerState{Running: &v1.ContainerStateRunning{}}
	waiting := v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ContainerCreating"}}
	exited := func(code int32) v1.ContainerState {
		return v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: code}}
	}
	cs := func(state v1.ContainerState) v1.ContainerStatus { return v1.ContainerStatus{State: state} }
	crashLooping := v1.ContainerStatus{State: waiting, LastTerminationState: exited(1)}
	tests := []struct {
		name   string
		policy v1.RestartPolicy
		init   []v1.ContainerStatus
		ctrs   []v1.ContainerStatus
		want   v1.PodPhase
	}{
		{"no statuses", v1.RestartPolicyAlways, nil, nil, v1.PodPending},
		{"waiting", v1.RestartPolicyAlways, nil, []v1.ContainerStatus{cs(waiting)}, v1.PodPending},
		{"running", v1.RestartPolicyAlways, nil, []v1.ContainerStatus{cs(running)}, v1.PodRunning},
		{"running and waiting", v1.RestartPolicyAlways, nil, []v1.ContainerStatus{cs(running), cs(waiting)}, v1.PodPending},
		{"running and exited", v1.RestartPolicyNever, nil, []v1.ContainerStatus{cs(running), cs(exited(0))}, v1.PodRunning},
		{"always exited", v1.RestartPolicyAlways, nil, []v1.ContainerStatus{cs(exited(0))}, v1.PodRunning},
		{"always crash loop", v1.RestartPolicyAlways, nil, []v1.ContainerStatus{crashLooping}, v1.PodRunning},
		{"never succeeded", v1.RestartPolicyNever, nil, []v1.ContainerStatus{cs(exited(0)), cs(exited(0))}, v1.PodSucceeded},
		{"never failed", v1.RestartPolicyNever, nil, []v1.ContainerStatus{cs(exited(0)), cs(exited(1))}, v1.PodFailed},
		{"on failure succeeded", v1.RestartPolicyOnFailure, nil, []v1.ContainerStatus{cs(exited(0))}, v1.PodSucceeded},
		{"on failure failed restarts", v1.RestartPolicyOnFailure, nil, []v1.ContainerStatus{cs(exited(1))}, v1.PodRunning},
		{"init running", v1.RestartPolicyAlways, []v1.ContainerStatus{cs(running)}, []v1.ContainerStatus{cs(waiting)}, v1.PodPending},
		{"init done", v1.RestartPolicyAlways, []v1.ContainerStatus{cs(exited(0))}, []v1.ContainerStatus{cs(running)}, v1.PodRunning},
		{"init failed never", v1.RestartPolicyNever, []v1.ContainerStatus{cs(exited(1))}, []v1.ContainerStatus{cs(waiting)}, v1.PodFailed},
		{"init failed always", v1.RestartPolicyAlways, []v1.ContainerStatus{cs(exited(1))}, []v1.ContainerStatus{cs(waiting)}, v1.PodPending},
		{"init back-off never", v1.RestartPolicyNever, []v1.ContainerStatus{crashLooping}, []v1.ContainerStatus{cs(waiting)}, v1.PodFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &v1.Pod{Spec: v1.PodSpec{RestartPolicy: tt.policy}}
			st := &v1.PodStatus{InitContainerStatuses: tt.init, ContainerStatuses: tt.ctrs}
			if got := phase(pod, st); got != tt.want {
				t.Errorf("phase = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestDNSConfig(t *testing.T) {
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("# host\nnameserver 1.1.1.1\nnameserver 8.8.8.8\nsearch corp.example lab.example\noptions edns0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	five := "5"
	tests := []struct {
		name       string
		clusterDNS []string
		policy     v1.DNSPolicy
		hostNet    bool
		podDNS     *v1.PodDNSConfig
		want       *runtimeapi.DNSConfig
	}{
		{
			name: "cluster first", clusterDNS: []string{"10.96.0.10"}, policy: v1.DNSClusterFirst,
			want: &runtimeapi.DNSConfig{
				Servers:  []string{"10.96.0.10"},
				Searches: []string{"ns1.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example", "lab.example"},
				Options:  []string{"ndots:5"},
			},
		},
		{
			name: "empty policy is cluster first", clusterDNS: []string{"10.96.0.10"},
			want: &runtimeapi.DNSConfig{
				Servers:  []string{"10.96.0.10"},
				Searches: []string{"ns1.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example", "lab.example"},
				Options:  []string{"ndots:5"},
			},
		},
		{
			name: "cluster first without cluster DNS falls back to the host", policy: v1.DNSClusterFirst,
			want: &runtimeapi.DNSConfig{Servers: []string{"1.1.1.1", "8.8.8.8"}, Searches: []string{"corp.example", "lab.example"}, Options: []string{"edns0"}},
		},
		{
			name: "cluster first with host network is default", clusterDNS: []string{"10.96.0.10"}, policy: v1.DNSClusterFirst, hostNet: true,
			want: &runtimeapi.DNSConfig{Servers: []string{"1.1.1.1", "8.8.8.8"}, Searches: []string{"corp.example", "lab.example"}, Options: []string{"edns0"}},
		},
		{
			name: "cluster first with host net", clusterDNS: []string{"10.96.0.10"}, policy: v1.DNSClusterFirstWithHostNet, hostNet: true,
			want: &runtimeapi.DNSConfig{
				Servers:  []string{"10.96.0.10"},
				Searches: []string{"ns1.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example", "lab.example"},
				Options:  []string{"ndots:5"},
			},
		},
		{
			name: "default", clusterDNS: []string{"10.96.0.10"}, policy: v1.DNSDefault,
			want: &runtimeapi.DNSConfig{Servers: []string{"1.1.1.1", "8.8.8.8"}, Searches: []string{"corp.example", "lab.example"}, Options: []string{"edns0"}},
		},
		{
			name: "none with pod dnsConfig", clusterDNS: []string{"10.96.0.10"}, policy: v1.DNSNone,
			podDNS: &v1.PodDNSConfig{
				Nameservers: []string{"9.9.9.9"},
				Searches:    []string{"my.example"},
				Options:     []v1.PodDNSConfigOption{{Name: "ndots", Value: &five}, {Name: "rotate"}},
			},
			want: &runtimeapi.DNSConfig{Servers: []string{"9.9.9.9"}, Searches: []string{"my.example"}, Options: []string{"ndots:5", "rotate"}},
		},
		{
			name: "cluster first plus pod dnsConfig", clusterDNS: []string{"10.96.0.10"}, policy: v1.DNSClusterFirst,
			podDNS: &v1.PodDNSConfig{Nameservers: []string{"9.9.9.9"}},
			want: &runtimeapi.DNSConfig{
				Servers:  []string{"10.96.0.10", "9.9.9.9"},
				Searches: []string{"ns1.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example", "lab.example"},
				Options:  []string{"ndots:5"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Syncer{cfg: Config{ClusterDNS: tt.clusterDNS, ClusterDomain: "cluster.local", ResolvConf: resolv}}
			pod := &v1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns1"},
				Spec:       v1.PodSpec{DNSPolicy: tt.policy, HostNetwork: tt.hostNet, DNSConfig: tt.podDNS},
			}
			got, err := s.dnsConfig(pod)
			if err != nil {
				t.Fatalf("dnsConfig: %v", err)
			}
			if !reflect.DeepEqual(got.Servers, tt.want.Servers) || !reflect.DeepEqual(got.Searches, tt.want.Searches) || !reflect.DeepEqual(got.Options, tt.want.Options) {
				t.Errorf("dnsConfig = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDNSConfigMissingResolvConf(t *testing.T) {
	s := &Syncer{cfg: Config{ResolvConf: filepath.Join(t.TempDir(), "absent")}}
	got, err := s.dnsConfig(&v1.Pod{Spec: v1.PodSpec{DNSPolicy: v1.DNSDefault}})
	if err != nil {
		t.Fatalf("dnsConfig: %v", err)
	}
	if len(got.Servers) != 0 || len(got.Searches) != 0 {
		t.Errorf("dnsConfig = %v, want empty", got)
	}
}

// A hostNetwork pod shares the node's UTS namespace: its sandbox must carry
// no hostname (runc refuses one without a private UTS namespace), as the
// kubelet does; other pods get theirs.
func TestSandboxConfigHostname(t *testing.T) {
	s := &Syncer{cfg: Config{ClusterDomain: "cluster.local", ResolvConf: filepath.Join(t.TempDir(), "absent")}}
	for _, tt := range []struct {
		spec v1.PodSpec
		want string
	}{
		{v1.PodSpec{}, "p"},
		{v1.PodSpec{Hostname: "h"}, "h"},
		{v1.PodSpec{HostNetwork: true, DNSPolicy: v1.DNSDefault}, ""},
		{v1.PodSpec{HostNetwork: true, Hostname: "h", DNSPolicy: v1.DNSDefault}, ""},
	} {
		pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns1", UID: "u"}, Spec: tt.spec}
		cfg, err := s.sandboxConfig(pod, 0)
		if err != nil {
			t.Fatalf("sandboxConfig: %v", err)
		}
		if cfg.Hostname != tt.want {
			t.Errorf("hostNetwork=%v hostname=%q: sandbox hostname %q, want %q", tt.spec.HostNetwork, tt.spec.Hostname, cfg.Hostname, tt.want)
		}
	}
}

func TestGRPCMessage(t *testing.T) {
	inner := grpcstatus.Error(codes.Unknown, "failed to create shim task: exec: \"nosuch\": not found")
	if got := grpcMessage(&runError{fmt.Errorf("start container %q: %w", "c", inner)}); got != "failed to create shim task: exec: \"nosuch\": not found" {
		t.Errorf("grpcMessage = %q", got)
	}
	if got := grpcMessage(errors.New("plain")); got != "plain" {
		t.Errorf("grpcMessage = %q", got)
	}
}

// A pod whose only sandbox left is attempt 1 (attempt 0 was collected)
// gets attempt 2, not a second attempt 1: the runtime keeps the name of a
// stopped sandbox reserved and would refuse it on every sync.
func TestSyncPodSandboxAttemptAfterCollection(t *testing.T) {
	e := newEnv(t)
	pod := testPod("uid1", v1.RestartPolicyAlways)
	cfg, err := e.s.sandboxConfig(pod, 1)
	if err != nil {
		t.Fatal(err)
	}
	old, err := e.rt.RunPodSandbox(context.Background(), cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.rt.StopPodSandbox(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	e.sync(t, pod)
	var attempts []uint32
	for _, sb := range e.sandboxesOf(pod.UID) {
		if sb.Id != old {
			attempts = append(attempts, sb.Metadata.GetAttempt())
		}
	}
	if len(attempts) != 1 || attempts[0] != 2 {
		t.Errorf("new sandbox attempts = %v, want [2]", attempts)
	}
}

func TestNextSandboxAttempt(t *testing.T) {
	sb := func(a uint32) *runtimeapi.PodSandbox {
		return &runtimeapi.PodSandbox{Metadata: &runtimeapi.PodSandboxMetadata{Attempt: a}}
	}
	for _, tc := range []struct {
		sandboxes []*runtimeapi.PodSandbox
		want      uint32
	}{
		{nil, 0},
		{[]*runtimeapi.PodSandbox{sb(0)}, 1},
		{[]*runtimeapi.PodSandbox{sb(1)}, 2},
		{[]*runtimeapi.PodSandbox{sb(3), sb(1)}, 4},
		{[]*runtimeapi.PodSandbox{sb(1), sb(3)}, 4},
	} {
		if got := (&podState{sandboxes: tc.sandboxes}).nextSandboxAttempt(); got != tc.want {
			t.Errorf("nextSandboxAttempt(%v) = %d, want %d", tc.sandboxes, got, tc.want)
		}
	}
}
