package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/utils"
	"github.com/go-logr/logr"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/cni/delegateapi"
)

// FuzzDelegateRequest fuzzes the body of a request to the delegate, as
// the nodeagent-delegate plugin forwards the runtime's CNI command: no
// panic; a 200, or a 400 or 500 with a CNI error; plugins only ever see a
// container ID that libcni accepts; and nothing outside the CNI cache dir
// is created, changed or removed (the cache file's name is built from the
// container ID).
func FuzzDelegateRequest(f *testing.F) {
	seed := func(mutate func(r *delegateapi.Request)) []byte {
		r := delegateReq("ADD")
		mutate(&r)
		b, err := json.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	for _, b := range [][]byte{
		seed(func(*delegateapi.Request) {}),
		seed(func(r *delegateapi.Request) { r.Command = "DEL" }),
		seed(func(r *delegateapi.Request) { r.Command = "CHECK" }),
		seed(func(r *delegateapi.Request) { r.Command = "DEL"; r.NetNS = "" }),
		seed(func(r *delegateapi.Request) { r.Command = "VERSION" }),
		seed(func(r *delegateapi.Request) { r.ContainerID = "" }),
		seed(func(r *delegateapi.Request) { r.ContainerID = "/../../../victim" }),
		seed(func(r *delegateapi.Request) { r.Command = "DEL"; r.ContainerID = "/../../victim" }),
		seed(func(r *delegateapi.Request) { r.Command = "CHECK"; r.ContainerID = "%2e%2e/%2e%2e/victim" }),
		seed(func(r *delegateapi.Request) { r.ContainerID = "sb1\x00" }),
		seed(func(r *delegateapi.Request) { r.ContainerID = "sb 1" }),
		seed(func(r *delegateapi.Request) { r.ContainerID = ".." }),
		seed(func(r *delegateapi.Request) { r.IfName = "eth0/../x" }),
		seed(func(r *delegateapi.Request) { r.NetNS = "../../proc/1/ns/net" }),
		seed(func(r *delegateapi.Request) { r.Args = ";;=;K8S_POD_NAME=;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web;=x" }),
		seed(func(r *delegateapi.Request) {
			r.Args = "K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=wéb\u2028;K8S_POD_UID=" + strings.Repeat("u", 4096)
		}),
		seed(func(r *delegateapi.Request) { r.Config = json.RawMessage(`null`) }),
		[]byte(`{"command":"ADD","containerID":"sb1","ifName":"eth0","config":`),
		[]byte(`{"command":"ADD","containerID":1,"ifName":["eth0"]}`),
		[]byte(`{"command":"ADD"}{"command":"DEL"}`),
		[]byte(`null`),
		[]byte(`[]`),
		[]byte("\x00\xff"),
		{},
	} {
		f.Add(b)
	}
	ctx := klog.NewContext(context.Background(), logr.Discard())
	pod := testPod()
	lookup := func(_ context.Context, ns, name, uid string) (PodNetwork, bool) {
		if ns == pod.Namespace && name == pod.Name && uid == pod.UID {
			return pod, true
		}
		return PodNetwork{}, false
	}
	// One manager for the process; each input starts with an empty cache.
	root := f.TempDir()
	confDir, cacheDir := filepath.Join(root, "net.d"), filepath.Join(root, "cache")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(confDir, "10-net.conflist"), []byte(bridgeList("podnet", "cni0")), 0o644); err != nil {
		f.Fatal(err)
	}
	fe := newFakeExec()
	m := New(Config{ConfDir: confDir, BinDirs: []string{"/fake/bin"}, CacheDir: cacheDir}, fe)
	if err := m.Load(ctx); err != nil {
		f.Fatal(err)
	}
	// Files a container ID with ".." in it would name in the cache file
	// path ("<cache>/results/<network>-<ID>-eth0").
	victims := []string{filepath.Join(root, "victim-eth0"), filepath.Join(cacheDir, "victim-eth0")}
	f.Fuzz(func(t *testing.T, body []byte) {
		if err := os.RemoveAll(cacheDir); err != nil {
			t.Fatal(err)
		}
		for _, p := range victims {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("keep"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		fe.take()
		before := treeOutside(t, root, cacheDir)

		// The fake plugins answer at once: a request still running after
		// seconds hangs.
		timer := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("delegate request did not end: %q", body)) })
		defer timer.Stop()
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, delegateapi.Path, bytes.NewReader(body))
		w := httptest.NewRecorder()
		(&Delegate{m: m, lookup: lookup}).handle(w, req)

		switch w.Code {
		case http.StatusOK:
		case http.StatusBadRequest, http.StatusInternalServerError:
			var e types.Error
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code == 0 || e.Msg == "" {
				t.Errorf("status %d with body %q, want a CNI error", w.Code, w.Body.String())
			}
		default:
			t.Errorf("status %d", w.Code)
		}
		for _, c := range fe.take() {
			if err := utils.ValidateContainerID(c.ContainerID); err != nil {
				t.Errorf("%s %s ran with container ID %q", c.Command, c.Plugin, c.ContainerID)
			}
		}
		if after := treeOutside(t, root, cacheDir); after != before {
			t.Errorf("files outside the CNI cache changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
}

// treeOutside lists the files under root but not under skip, with their
// content; of skip only its victim-eth0.
func treeOutside(t *testing.T, root, skip string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			b.WriteString(p + "\n")
			data, err := os.ReadFile(filepath.Join(p, "victim-eth0"))
			b.WriteString("victim-eth0 " + string(data) + fmt.Sprint(err) + "\n")
			return filepath.SkipDir
		}
		b.WriteString(p)
		if d.Type().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b.WriteString(" " + string(data))
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
