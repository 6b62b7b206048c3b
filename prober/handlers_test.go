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
			ok, out := Do(context.Background(), nil, h, Target{Container: c, PodIP: host}, time.Second)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v (%s)", ok, tc.ok, out)
			}
			if IsWarning(out) != tc.warning {
				t.Fatalf("warning = %v, want %v (%q)", IsWarning(out), tc.warning, out)
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
	if ok, out := Do(context.Background(), nil, h, Target{PodIP: "127.0.0.1"}, time.Second); !ok {
		t.Fatalf("open port failed: %s", out)
	}
	l.Close() //nolint:errcheck // test
	if ok, _ := Do(context.Background(), nil, h, Target{PodIP: "127.0.0.1"}, time.Second); ok {
		t.Fatal("closed port succeeded")
	}
}
