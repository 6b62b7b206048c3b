package podenv

import (
	"context"
	"errors"
	"testing"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
)

func objects() []runtime.Object {
	return []runtime.Object{
		&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "ns"},
			Data: map[string]string{"LEVEL": "debug", "bad=key": "x", "HOST": "from-cm"}},
		&v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec", Namespace: "ns"},
			Data: map[string][]byte{"PASSWORD": []byte("hunter2")}},
		&v1.Service{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default"},
			Spec: v1.ServiceSpec{ClusterIP: "10.96.0.1", Ports: []v1.ServicePort{{Name: "https", Port: 443, Protocol: v1.ProtocolTCP}}}},
		&v1.Service{ObjectMeta: metav1.ObjectMeta{Name: "my-db", Namespace: "ns"},
			Spec: v1.ServiceSpec{ClusterIP: "10.96.0.9", Ports: []v1.ServicePort{{Port: 5432}}}},
		&v1.Service{ObjectMeta: metav1.ObjectMeta{Name: "headless", Namespace: "ns"},
			Spec: v1.ServiceSpec{ClusterIP: v1.ClusterIPNone, Ports: []v1.ServicePort{{Port: 80}}}},
		&v1.Service{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere", Namespace: "other"},
			Spec: v1.ServiceSpec{ClusterIP: "10.96.0.7", Ports: []v1.ServicePort{{Port: 80}}}},
	}
}

func ptr[T any](v T) *T { return &v }

// clientObjects is Objects read from a client (volumes.Manager reads them
// from watches).
type clientObjects struct{ c kubernetes.Interface }

func (o clientObjects) ConfigMap(ctx context.Context, pod *v1.Pod, name string) (*v1.ConfigMap, error) {
	return o.c.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
}

func (o clientObjects) Secret(ctx context.Context, pod *v1.Pod, name string) (*v1.Secret, error) {
	return o.c.CoreV1().Secrets(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
}

func envMap(env []EnvVar) map[string]string {
	m := map[string]string{}
	for _, e := range env {
		m[e.Name] = e.Value
	}
	return m
}

func TestEnv(t *testing.T) {
	tests := []struct {
		name      string
		links     *bool
		c         v1.Container
		want      map[string]string // subset that must be present
		absent    []string
		wantOrder []string // names that must appear in this relative order
		wantErr   bool
	}{
		{
			name: "order and expansion",
			c: v1.Container{
				EnvFrom: []v1.EnvFromSource{{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}}},
				Env: []v1.EnvVar{
					{Name: "A", Value: "a"},
					{Name: "B", Value: "$(A)-$(LEVEL)-$(MY_DB_SERVICE_HOST)-$$(A)-$(NOPE)"},
					{Name: "LEVEL", Value: "info"},
					{Name: "C", Value: "$(LEVEL)"},
				},
			},
			want: map[string]string{
				"A": "a", "B": "a-debug-10.96.0.9-$(A)-$(NOPE)", "LEVEL": "info", "C": "info", "HOST": "from-cm",
				"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
			},
			absent:    []string{"bad=key"},
			wantOrder: []string{"KUBERNETES_SERVICE_HOST", "MY_DB_SERVICE_HOST", "HOST", "A", "B", "LEVEL", "C"},
		},
		{
			name:   "service links disabled keeps kubernetes",
			links:  ptr(false),
			want:   map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443"},
			absent: []string{"MY_DB_SERVICE_HOST", "HEADLESS_SERVICE_HOST", "ELSEWHERE_SERVICE_HOST"},
		},
		{
			name: "envFrom prefix and secret",
			c: v1.Container{EnvFrom: []v1.EnvFromSource{
				{Prefix: "S_", SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "sec"}}},
				{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "gone"}, Optional: ptr(true)}},
			}},
			want: map[string]string{"S_PASSWORD": "hunter2"},
		},
		{
			name: "valueFrom",
			c: v1.Container{Name: "app", Env: []v1.EnvVar{
				{Name: "POD", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				{Name: "IP", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
				{Name: "NODE_IP", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "status.hostIP"}}},
				{Name: "CPU", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.cpu"}}},
				{Name: "LVL", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}, Key: "LEVEL"}}},
				{Name: "PW", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "sec"}, Key: "PASSWORD"}}},
				{Name: "OPT_KEY", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}, Key: "nope", Optional: ptr(true)}}},
				{Name: "OPT_CM", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "gone"}, Key: "k", Optional: ptr(true)}}},
			}},
			want:   map[string]string{"POD": "web", "IP": "10.1.0.5", "NODE_IP": "10.0.0.1", "CPU": "2", "LVL": "debug", "PW": "hunter2"},
			absent: []string{"OPT_KEY", "OPT_CM"},
		},
		{
			name:    "missing configmap",
			c:       v1.Container{EnvFrom: []v1.EnvFromSource{{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "gone"}}}}},
			wantErr: true,
		},
		{
			name:    "missing secret key",
			c:       v1.Container{Env: []v1.EnvVar{{Name: "X", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "sec"}, Key: "nope"}}}}},
			wantErr: true,
		},
		{
			name:    "missing configmap for key",
			c:       v1.Container{Env: []v1.EnvVar{{Name: "X", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "gone"}, Key: "k"}}}}},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		for _, via := range []string{"client", "objects"} {
			t.Run(tt.name+" via "+via, func(t *testing.T) {
				r := &Resolver{
					Client:          fake.NewClientset(objects()...),
					NodeAllocatable: func() v1.ResourceList { return v1.ResourceList{v1.ResourceCPU: *resourceQ("2")} },
				}
				if via == "objects" {
					// ConfigMaps and Secrets come from Objects alone: the
					// client has the services only.
					var services []runtime.Object
					for _, o := range objects() {
						if _, ok := o.(*v1.Service); ok {
							services = append(services, o)
						}
					}
					r.Client = fake.NewClientset(services...)
					r.Objects = clientObjects{fake.NewClientset(objects()...)}
				}
				pod := testPod()
				pod.Spec.EnableServiceLinks = tt.links
				env, err := r.Env(context.Background(), pod, &tt.c, "", []string{"10.1.0.5"}, "10.0.0.1")
				if tt.wantErr {
					if !IsConfigError(err) {
						t.Fatalf("err = %v, want ErrConfig", err)
					}
					if !apierrors.IsNotFound(err) && !errors.Is(err, ErrConfig) {
						t.Fatalf("unexpected error %v", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				got := envMap(env)
				if len(got) != len(env) {
					t.Errorf("duplicate names in %v", env)
				}
				for k, v := range tt.want {
					if got[k] != v {
						t.Errorf("%s = %q, want %q", k, got[k], v)
					}
				}
				for _, k := range tt.absent {
					if _, ok := got[k]; ok {
						t.Errorf("%s should be absent", k)
					}
				}
				pos := map[string]int{}
				for i, e := range env {
					pos[e.Name] = i
				}
				for i := 1; i < len(tt.wantOrder); i++ {
					if pos[tt.wantOrder[i-1]] > pos[tt.wantOrder[i]] {
						t.Errorf("%s after %s in %v", tt.wantOrder[i-1], tt.wantOrder[i], env)
					}
				}
			})
		}
	}
}

func TestServiceEnv(t *testing.T) {
	svc := &v1.Service{ObjectMeta: metav1.ObjectMeta{Name: "my-svc"}, Spec: v1.ServiceSpec{
		ClusterIP: "fd00::10",
		Ports:     []v1.ServicePort{{Name: "http", Port: 80}, {Name: "dns-udp", Port: 53, Protocol: v1.ProtocolUDP}},
	}}
	want := []EnvVar{
		{"MY_SVC_SERVICE_HOST", "fd00::10"},
		{"MY_SVC_SERVICE_PORT", "80"},
		{"MY_SVC_SERVICE_PORT_HTTP", "80"},
		{"MY_SVC_SERVICE_PORT_DNS_UDP", "53"},
		{"MY_SVC_PORT", "tcp://[fd00::10]:80"},
		{"MY_SVC_PORT_80_TCP", "tcp://[fd00::10]:80"},
		{"MY_SVC_PORT_80_TCP_PROTO", "tcp"},
		{"MY_SVC_PORT_80_TCP_PORT", "80"},
		{"MY_SVC_PORT_80_TCP_ADDR", "fd00::10"},
		{"MY_SVC_PORT_53_UDP", "udp://[fd00::10]:53"},
		{"MY_SVC_PORT_53_UDP_PROTO", "udp"},
		{"MY_SVC_PORT_53_UDP_PORT", "53"},
		{"MY_SVC_PORT_53_UDP_ADDR", "fd00::10"},
	}
	got := ServiceEnv(svc)
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	svc.Spec.ClusterIP = v1.ClusterIPNone
	if got := ServiceEnv(svc); got != nil {
		t.Errorf("headless service: got %v", got)
	}
}

func TestEnvServiceLister(t *testing.T) {
	r := &Resolver{ServiceLister: func(ns string) ([]*v1.Service, error) {
		if ns != "default" {
			return nil, nil
		}
		return []*v1.Service{{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default"},
			Spec: v1.ServiceSpec{ClusterIP: "10.0.0.1", Ports: []v1.ServicePort{{Port: 443}}}}}, nil
	}}
	env, err := r.Env(context.Background(), testPod(), &v1.Container{}, "", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := envMap(env)["KUBERNETES_SERVICE_HOST"]; got != "10.0.0.1" {
		t.Errorf("KUBERNETES_SERVICE_HOST = %q", got)
	}
}
