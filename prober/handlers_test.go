package prober

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestHTTPGet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			if r.Header.Get("User-Agent") != UserAgent || r.Header.Get("X-Test") != "yes" {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			w.Write([]byte("fine")) //nolint:errcheck // test
		case "/redirect":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/away":
			http.Redirect(w, r, "http://192.0.2.1:1/elsewhere", http.StatusFound)
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	host, portStr, _ := net.SplitHostPort(srv.Listener.Addr().String())
	portNum, _ := strconv.Atoi(portStr)
	c := &v1.Container{Ports: []v1.ContainerPort{{Name: "web", ContainerPort: int32(portNum)}}}
	headers := []v1.HTTPHeader{{Name: "X-Test", Value: "yes"}}
	for _, tc := range []struct {
		path    string
		port    intstr.IntOrString
		ok      bool
		warning bool // a success the kubelet warns of (ProbeWarning)
	}{
		{"/ok", intstr.FromInt32(int32(portNum)), true, false},
		{"/ok", intstr.FromString("web"), true, false},
		{"/redirect", intstr.FromString("web"), true, false},
		{"/away", intstr.FromString("web"), true, true},
		{"/fail", intstr.FromString("web"), false, false},
		{"/ok", intstr.FromString("nope"), false, false},
	} {
		t.Run(tc.path+"/"+tc.port.String(), func(t *testing.T) {
			h := &v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: tc.path, Port: tc.port, HTTPHeaders: headers}}
			r := Do(context.Background(), nil, h, Target{Container: c, PodIP: host}, time.Second)
			if r.OK != tc.ok {
				t.Fatalf("ok = %v, want %v (%s)", r.OK, tc.ok, r.Output)
			}
			if r.Warning != tc.warning {
				t.Fatalf("warning = %v, want %v (%q)", r.Warning, tc.warning, r.Output)
			}
		})
	}
}

func TestTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	h := &v1.ProbeHandler{TCPSocket: &v1.TCPSocketAction{Port: intstr.FromInt32(int32(addr.Port))}}
	if r := Do(context.Background(), nil, h, Target{PodIP: "127.0.0.1"}, time.Second); !r.OK {
		t.Fatalf("open port failed: %s", r.Output)
	}
	l.Close() //nolint:errcheck // test
	if r := Do(context.Background(), nil, h, Target{PodIP: "127.0.0.1"}, time.Second); r.OK {
		t.Fatal("closed port succeeded")
	}
}

type echoExecer string

func (e echoExecer) ExecSync(context.Context, string, []string, time.Duration) ([]byte, []byte, error) {
	return []byte(e), nil, nil
}

// An exec probe that prints the kubelet's redirect warning text succeeds
// without a warning: only an HTTP probe's redirect is one.
func TestExecOutputIsNoWarning(t *testing.T) {
	h := &v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"echo"}}}
	r := Do(context.Background(), echoExecer(redirectWarning+"x"), h, Target{ContainerID: "c1"}, time.Second)
	if !r.OK || r.Warning {
		t.Fatalf("result = %+v, want a success without warning", r)
	}
}
