package server

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critesting "k8s.io/cri-api/pkg/apis/testing"

	"github.com/nodeagent/nodeagent/cri"
)

// logsFixture is newFixture with more runtime containers, each with a log
// file in pod1's log directory that holds its own id:
//   - init-1 of init container "init", debug-1 of ephemeral container
//     "debug", crashed-1 and crashed-2, two ended instances of c1;
//   - foreign (labelled for another pod), unmanaged (this pod's labels
//     without the agent's) and sibling (this pod's container "never"):
//     containers a forged status may point c1 at, whose logs must never
//     be served as c1's.
func logsFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, false)
	f.pod.Spec.InitContainers = []v1.Container{{Name: "init"}}
	f.pod.Spec.EphemeralContainers = []v1.EphemeralContainer{{EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "debug"}}}
	dir := cri.PodLogDir(f.logsDir, "ns1", "pod1", testUID)
	add := func(id, name string, labels map[string]string) {
		p := filepath.Join(dir, "c1", id+".log")
		if err := os.WriteFile(p, []byte("2024-01-01T00:00:00.000000000Z stdout F log of "+id+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		f.rt.Lock()
		defer f.rt.Unlock()
		f.rt.Containers[id] = &critesting.FakeContainer{ContainerStatus: runtimeapi.ContainerStatus{
			Id: id, Metadata: &runtimeapi.ContainerMetadata{Name: name},
			State: runtimeapi.ContainerState_CONTAINER_EXITED, LogPath: p, Labels: labels,
		}, SandboxID: "sb1"}
	}
	add("init-1", "init", cri.ContainerLabels("pod1", "ns1", testUID, "init"))
	add("debug-1", "debug", cri.ContainerLabels("pod1", "ns1", testUID, "debug"))
	add("crashed-1", "c1", cri.ContainerLabels("pod1", "ns1", testUID, "c1"))
	add("crashed-2", "c1", cri.ContainerLabels("pod1", "ns1", testUID, "c1"))
	add("foreign", "c1", cri.ContainerLabels("pod9", "ns9", "uid-9", "c1"))
	unmanaged := cri.ContainerLabels("pod1", "ns1", testUID, "c1")
	delete(unmanaged, cri.ManagedLabel)
	add("unmanaged", "c1", unmanaged)
	add("sibling", "never", cri.ContainerLabels("pod1", "ns1", testUID, "never"))
	return f
}

func cid(id string) string { return "containerd://" + id }

func running() v1.ContainerState {
	return v1.ContainerState{Running: &v1.ContainerStateRunning{}}
}

func terminated(id string) v1.ContainerState {
	return v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ContainerID: id}}
}

func waiting(reason string) v1.ContainerState {
	return v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: reason}}
}

// TestContainerLogsByStatus: the container whose log is served is the one
// the pod's status names, case by case as the kubelet's
// validateContainerLogStatus, with its words when there is none.
func TestContainerLogsByStatus(t *testing.T) {
	c1 := func(id string, state, last v1.ContainerState) v1.PodStatus {
		return v1.PodStatus{ContainerStatuses: []v1.ContainerStatus{{Name: "c1", ContainerID: id, State: state, LastTerminationState: last}}}
	}
	none := v1.ContainerState{}
	tests := []struct {
		name   string
		status v1.PodStatus
		ctr    string
		query  string
		code   int
		body   string // the whole body, or for 200 what it contains
	}{
		{"running", c1(cid("cur"), running(), terminated(cid("old"))), "c1", "", 200, "new-1\nnew-2\n"},
		{"previous", c1(cid("cur"), running(), terminated(cid("old"))), "c1", "previous=true", 200, "old-1\n"},
		// Waiting in CrashLoopBackOff: no current instance, the last
		// one ended (seen live: kubectl logs --previous failed).
		{"crash loop previous", c1("", waiting("CrashLoopBackOff"), terminated(cid("crashed-2"))), "c1", "previous=true", 200, "log of crashed-2"},
		{"crash loop current is the last", c1("", waiting("CrashLoopBackOff"), terminated(cid("crashed-2"))), "c1", "", 200, "log of crashed-2"},
		{"previous none", c1(cid("cur"), running(), none), "c1", "previous=1", 400, `previous terminated container "c1" in pod "pod1" not found`},
		{"previous without id", c1(cid("cur"), running(), terminated("")), "c1", "previous=true", 400, `previous terminated container "c1" in pod "pod1" not found`},
		{"terminated", c1(cid("crashed-1"), terminated(cid("crashed-1")), none), "c1", "", 200, "log of crashed-1"},
		{"terminated without id, last", c1("", terminated(""), terminated(cid("crashed-1"))), "c1", "", 200, "log of crashed-1"},
		{"terminated without id", c1("", terminated(""), none), "c1", "", 400, `container "c1" in pod "pod1" is terminated`},
		{"last without id", c1("", waiting("CrashLoopBackOff"), terminated("")), "c1", "", 400, `container "c1" in pod "pod1" is terminated`},
		{"image pull", c1("", waiting("ErrImagePull"), none), "c1", "", 400, `container "c1" in pod "pod1" is waiting to start: image can't be pulled`},
		{"image pull back-off", c1("", waiting("ImagePullBackOff"), none), "c1", "", 400, `container "c1" in pod "pod1" is waiting to start: trying and failing to pull image`},
		{"creating", c1("", waiting("ContainerCreating"), none), "c1", "", 400, `container "c1" in pod "pod1" is waiting to start: ContainerCreating`},
		{"no state", c1("", none, none), "c1", "", 400, `container "c1" in pod "pod1" is waiting to start - no logs yet`},
		{"not in status", v1.PodStatus{}, "c1", "", 400, `container "c1" in pod "pod1" is not available`},
		{"init", v1.PodStatus{InitContainerStatuses: []v1.ContainerStatus{{Name: "init", State: terminated(cid("init-1"))}}}, "init", "", 200, "log of init-1"},
		{"ephemeral", v1.PodStatus{EphemeralContainerStatuses: []v1.ContainerStatus{{Name: "debug", ContainerID: cid("debug-1"), State: running()}}}, "debug", "", 200, "log of debug-1"},
		// The runtime no longer has it (removed), or the id is not one.
		{"gone", c1(cid("gone"), running(), none), "c1", "", 400, `unable to retrieve container logs for containerd://gone`},
		{"not an id", c1("cur", running(), none), "c1", "", 400, `unable to retrieve container logs for cur`},
		{"two schemes", c1("a://b://cur", running(), none), "c1", "", 400, `unable to retrieve container logs for a://b://cur`},
		// A status naming a container that is not this one of this pod
		// (anyone allowed to patch pods/status can write one).
		{"another pod's", c1(cid("foreign"), running(), none), "c1", "", 400, `unable to retrieve container logs for containerd://foreign: not container "c1" of pod "pod1"`},
		{"not the agent's", c1(cid("unmanaged"), running(), none), "c1", "", 400, `unable to retrieve container logs for containerd://unmanaged: not container "c1" of pod "pod1"`},
		{"another container's", c1(cid("sibling"), running(), none), "c1", "", 400, `unable to retrieve container logs for containerd://sibling: not container "c1" of pod "pod1"`},
		{"another pod's previous", c1(cid("cur"), running(), terminated(cid("foreign"))), "c1", "previous=true", 400, `unable to retrieve container logs for containerd://foreign: not container "c1" of pod "pod1"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := logsFixture(t)
			f.pod.Status = tc.status
			w := f.do("GET", "/containerLogs/ns1/pod1/"+tc.ctr+"?"+tc.query)
			if w.Code != tc.code {
				t.Fatalf("status %d, want %d; body %q", w.Code, tc.code, w.Body.String())
			}
			if tc.code == http.StatusOK {
				if !strings.Contains(w.Body.String(), tc.body) {
					t.Fatalf("body %q does not contain %q", w.Body.String(), tc.body)
				}
				return
			}
			if w.Body.String() != tc.body {
				t.Fatalf("body %q, want %q", w.Body.String(), tc.body)
			}
		})
	}
}

// TestContainerLogsAgentStatusFirst: the agent's own status of the pod
// picks the container before the pod object's (which may lag behind it),
// as the kubelet's status manager's copy does; without one, the pod
// object's serves.
func TestContainerLogsAgentStatusFirst(t *testing.T) {
	f := logsFixture(t)
	// The apiserver's copy still shows the container waiting.
	f.pod.Status = v1.PodStatus{ContainerStatuses: []v1.ContainerStatus{{Name: "c1", State: waiting("ContainerCreating")}}}
	agent := map[types.UID]*v1.PodStatus{}
	f.srv.deps.PodStatus = func(uid types.UID) (*v1.PodStatus, bool) {
		st, ok := agent[uid]
		return st, ok
	}
	if w := f.do("GET", "/containerLogs/ns1/pod1/c1"); w.Code != http.StatusBadRequest {
		t.Fatalf("without the agent's status: status %d body %q, want 400", w.Code, w.Body.String())
	}
	st := fixtureStatus("crashed-2", "crashed-1")
	agent[testUID] = &st
	w := f.do("GET", "/containerLogs/ns1/pod1/c1")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "log of crashed-2") {
		t.Fatalf("status %d body %q, want the log of crashed-2", w.Code, w.Body.String())
	}
	w = f.do("GET", "/containerLogs/ns1/pod1/c1?previous=true")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "log of crashed-1") {
		t.Fatalf("previous: status %d body %q, want the log of crashed-1", w.Code, w.Body.String())
	}
}

// TestContainerLogsErrorReplies: errors are answered as the kubelet's
// go-restful WriteError: the status code and the text alone, plain text,
// which the apiserver passes on as its message.
func TestContainerLogsErrorReplies(t *testing.T) {
	f := newFixture(t, false)
	tests := []struct {
		path string
		code int
		body string
	}{
		{"/containerLogs/ns1/nopod/c1", 404, `pod "nopod" does not exist`},
		{"/containerLogs/ns1/pod1/zz", 404, `container "zz" not found in pod "pod1"`},
		{"/containerLogs/ns1/pod1/never", 400, `container "never" in pod "pod1" is waiting to start: ContainerCreating`},
		{"/containerLogs/ns1/pod1/c1?stream=Stderr", 400, `unable to return the given log stream: "Stderr". Please enable PodLogsQuerySplitStreams feature gate in kubelet`},
		{"/containerLogs/ns1/pod1/c1?tailLines=x", 400, `tailLines "x" is not an integer`},
		{"/containerLogs/ns1/pod1/c1?limitBytes=0", 422, `limitBytes must be greater than 0`},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			w := f.do("GET", tc.path)
			if w.Code != tc.code || w.Body.String() != tc.body {
				t.Fatalf("got %d %q, want %d %q", w.Code, w.Body.String(), tc.code, tc.body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Fatalf("Content-Type %q", ct)
			}
		})
	}
}
