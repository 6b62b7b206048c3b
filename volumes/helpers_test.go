package volumes

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	testingclock "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type fakeMounter struct {
	mu      sync.Mutex
	mounted map[string]int64
	// hugetlbfs holds the page size of each hugetlbfs mount.
	hugetlbfs map[string]int64
}

// MountHugetlbfs records the mount as one of size 0 and its page size,
// and gives target the mode of a new hugetlbfs's root (0755).
func (f *fakeMounter) MountHugetlbfs(target string, pageSize int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := os.Chmod(target, 0o755); err != nil {
		return err
	}
	f.mounted[target] = 0
	if f.hugetlbfs == nil {
		f.hugetlbfs = map[string]int64{}
	}
	f.hugetlbfs[target] = pageSize
	return nil
}

func (f *fakeMounter) MountTmpfs(target string, size int64, _ os.FileMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mounted[target] = size
	return nil
}

// BindMount records the bind as a mount of size -1.
func (f *fakeMounter) BindMount(_, target string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mounted[target] = -1
	return nil
}

func (f *fakeMounter) MountPoints(dir string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for p := range f.mounted {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	sortDeepestFirst(out)
	return out, nil
}

func (f *fakeMounter) Unmount(target string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.mounted, target)
	return nil
}

func (f *fakeMounter) IsMountPoint(p string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.mounted[p]
	return ok, nil
}

type env struct {
	m       *Manager
	client  *fake.Clientset
	clock   *testingclock.FakePassiveClock
	mounter *fakeMounter
	root    string
	// requests records the TokenRequests made.
	requests []*authenticationv1.TokenRequest
}

func newEnv(t *testing.T, objs ...runtime.Object) *env {
	t.Helper()
	e := &env{
		client:  fake.NewClientset(objs...),
		clock:   testingclock.NewFakePassiveClock(t0),
		mounter: &fakeMounter{mounted: map[string]int64{}},
		root:    t.TempDir(),
	}
	e.client.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "token" {
			return false, nil, nil
		}
		req := a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenRequest).DeepCopy()
		e.requests = append(e.requests, req)
		out := req.DeepCopy()
		out.Status.Token = "token-" + string(rune('0'+len(e.requests)))
		out.Status.ExpirationTimestamp = metav1.NewTime(e.clock.Now().Add(time.Duration(*req.Spec.ExpirationSeconds) * time.Second))
		return true, out, nil
	})
	e.m = NewManager(e.client, e.root, e.clock)
	e.m.Mounter = e.mounter
	return e
}

func basePod(vols ...v1.Volume) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "uid-1", Labels: map[string]string{"app": "web"}},
		Spec: v1.PodSpec{
			ServiceAccountName: "sa",
			NodeName:           "node1",
			Volumes:            vols,
			Containers: []v1.Container{{Name: "app", Resources: v1.ResourceRequirements{
				Requests: v1.ResourceList{v1.ResourceMemory: mustQ("64Mi")},
			}}},
		},
		Status: v1.PodStatus{HostIP: "10.0.0.1", PodIP: "10.1.0.5"},
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// dataDirs lists the timestamped data directories of a volume.
func dataDirs(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "..20*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func ptr[T any](v T) *T { return &v }
