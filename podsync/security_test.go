package podsync

import (
	"context"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/version"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

// newSecEnv is newEnv with a Config changed by mutate.
func newSecEnv(t *testing.T, mutate func(*Config)) *env {
	t.Helper()
	e := newEnv(t)
	if mutate != nil {
		mutate(&e.cfg)
		e.s = New(e.cfg, e.rt, e.images, e.vols, fakeEnv{}, e.status, e.rec, e.clock)
	}
	return e
}

// setImageUser makes the fake runtime report the test image's user.
func (e *env) setImageUser(uid *int64, name string) {
	e.images.Lock()
	defer e.images.Unlock()
	img := e.images.Images[testImage]
	img.Uid, img.Username = nil, name
	if uid != nil {
		img.Uid = &runtimeapi.Int64Value{Value: *uid}
	}
}

func (e *env) imageStatusCalls() int {
	e.images.Lock()
	defer e.images.Unlock()
	n := 0
	for _, c := range e.images.Called {
		if c == "ImageStatus" {
			n++
		}
	}
	return n
}

// lastContainer is the security context of the last container created.
func (e *env) lastContainer(t *testing.T) *runtimeapi.LinuxContainerSecurityContext {
	t.Helper()
	e.rt.mu.Lock()
	defer e.rt.mu.Unlock()
	if len(e.rt.containers) == 0 {
		t.Fatal("no container created")
	}
	return e.rt.containers[len(e.rt.containers)-1].GetLinux().GetSecurityContext()
}

func (e *env) lastSandbox(t *testing.T) *runtimeapi.LinuxPodSandboxConfig {
	t.Helper()
	e.rt.mu.Lock()
	defer e.rt.mu.Unlock()
	if len(e.rt.sandboxes) == 0 {
		t.Fatal("no sandbox created")
	}
	return e.rt.sandboxes[len(e.rt.sandboxes)-1].GetLinux()
}

// waiting returns the waiting reason and message of the pod's first
// container.
func (e *env) waiting(t *testing.T, pod *v1.Pod) (string, string) {
	t.Helper()
	st := e.status.get(pod.UID)
	if st == nil || len(st.ContainerStatuses) == 0 || st.ContainerStatuses[0].State.Waiting == nil {
		t.Fatalf("no waiting container in status %+v", st)
	}
	w := st.ContainerStatuses[0].State.Waiting
	return w.Reason, w.Message
}

func TestSeccompProfile(t *testing.T) {
	runtimeDefault := &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	unconfined := &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}
	localhost := func(p string) *v1.SeccompProfile {
		return &v1.SeccompProfile{Type: v1.SeccompProfileTypeLocalhost, LocalhostProfile: &p}
	}
	typ := func(ty v1.SeccompProfileType) *v1.SeccompProfile { return &v1.SeccompProfile{Type: ty} }
	cases := []struct {
		name           string
		seccompDefault bool
		pod, container *v1.SeccompProfile
		want           *runtimeapi.SecurityProfile
		wantErr        string
	}{
		{name: "unset is unconfined", want: unconfined},
		{name: "unset with seccompDefault", seccompDefault: true, want: runtimeDefault},
		{name: "pod RuntimeDefault", pod: typ(v1.SeccompProfileTypeRuntimeDefault), want: runtimeDefault},
		{name: "container overrides pod", pod: typ(v1.SeccompProfileTypeRuntimeDefault), container: typ(v1.SeccompProfileTypeUnconfined), want: unconfined},
		{name: "explicit Unconfined beats seccompDefault", seccompDefault: true, container: typ(v1.SeccompProfileTypeUnconfined), want: unconfined},
		{name: "localhost below the root", container: localhost("profiles/audit.json"),
			want: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "ROOT/seccomp/profiles/audit.json"}},
		{name: "localhost from the pod", pod: localhost("a.json"),
			want: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "ROOT/seccomp/a.json"}},
		{name: "dots inside a name are fine", container: localhost("a..b.json"),
			want: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "ROOT/seccomp/a..b.json"}},
		{name: "localhost escaping with ..", container: localhost("../../etc/passwd"), wantErr: "relative path below"},
		{name: "localhost escaping inside", container: localhost("a/../../b.json"), wantErr: "relative path below"},
		{name: "localhost absolute", container: localhost("/etc/seccomp.json"), wantErr: "relative path below"},
		{name: "localhost without a name", container: &v1.SeccompProfile{Type: v1.SeccompProfileTypeLocalhost}, wantErr: "localhostProfile must be set"},
		{name: "unknown type", container: typ("Other"), wantErr: "unknown seccomp profile type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &Syncer{cfg: Config{RootDir: "ROOT", SeccompDefault: tc.seccompDefault}}
			pod := &v1.Pod{Spec: v1.PodSpec{SecurityContext: &v1.PodSecurityContext{SeccompProfile: tc.pod}}}
			c := &v1.Container{Name: "c", SecurityContext: &v1.SecurityContext{SeccompProfile: tc.container}}
			got, err := s.seccompProfile(pod, c)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ProfileType != tc.want.ProfileType || got.LocalhostRef != filepath.FromSlash(tc.want.LocalhostRef) {
				t.Errorf("profile = %v, want %v", got, tc.want)
			}
			// What reaches the runtime is the same.
			if sc := s.containerSecurity(pod, c, nil); sc.Seccomp.ProfileType != tc.want.ProfileType || sc.SeccompProfilePath != "" {
				t.Errorf("container seccomp = %v (path %q), want %v", sc.Seccomp, sc.SeccompProfilePath, tc.want)
			}
		})
	}
}

// The sandbox runs with RuntimeDefault whatever the pod asks, as the
// kubelet's (issue kubernetes#84623).
func TestSandboxSeccompRuntimeDefault(t *testing.T) {
	s := &Syncer{cfg: Config{ResolvConf: filepath.Join(t.TempDir(), "absent")}}
	pod := testPod("u1", v1.RestartPolicyAlways)
	pod.Spec.SecurityContext = &v1.PodSecurityContext{SeccompProfile: &v1.SeccompProfile{Type: v1.SeccompProfileTypeUnconfined}}
	cfg, err := s.sandboxConfig(pod, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Linux.SecurityContext.Seccomp.GetProfileType(); got != runtimeapi.SecurityProfile_RuntimeDefault {
		t.Errorf("sandbox seccomp = %v, want RuntimeDefault", got)
	}
}

func TestSeccompLocalhostEscapeIsConfigError(t *testing.T) {
	e := newEnv(t)
	pod := testPod("u1", v1.RestartPolicyAlways)
	escape := "../../../etc/evil.json"
	pod.Spec.Containers[0].SecurityContext = &v1.SecurityContext{SeccompProfile: &v1.SeccompProfile{Type: v1.SeccompProfileTypeLocalhost, LocalhostProfile: &escape}}
	if _, _, err := e.s.SyncPod(context.Background(), pod); err == nil {
		t.Fatal("SyncPod: no error")
	}
	if reason, msg := e.waiting(t, pod); reason != "CreateContainerConfigError" || !strings.Contains(msg, "relative path below") {
		t.Errorf("waiting = %s: %s", reason, msg)
	}
	if e.containerCount() != 0 {
		t.Error("container created")
	}
}

func TestRunAsNonRoot(t *testing.T) {
	uid := func(u int64) *int64 { return &u }
	cases := []struct {
		name            string
		pod, container  *v1.SecurityContext // pod: only the user fields are used
		imageUID        *int64
		imageName       string
		wantErr         string
		wantUser        *int64
		wantUsername    string
		wantGroup       *int64
		wantImageLookup bool
	}{
		{name: "image uid 0", container: &v1.SecurityContext{RunAsNonRoot: ptr.To(true)}, imageUID: uid(0),
			wantErr: "container has runAsNonRoot and image will run as root (pod: \"web-u1_ns1(u1)\", container: c)", wantImageLookup: true},
		{name: "image names no user: root", pod: &v1.SecurityContext{RunAsNonRoot: ptr.To(true)},
			wantErr: "image will run as root", wantImageLookup: true},
		{name: "image uid 1000", pod: &v1.SecurityContext{RunAsNonRoot: ptr.To(true)}, imageUID: uid(1000),
			wantUser: uid(1000), wantImageLookup: true},
		{name: "image user nginx", container: &v1.SecurityContext{RunAsNonRoot: ptr.To(true)}, imageName: "nginx",
			wantErr: "container has runAsNonRoot and image has non-numeric user (nginx), cannot verify user is non-root", wantImageLookup: true},
		{name: "image uid out of range", container: &v1.SecurityContext{RunAsNonRoot: ptr.To(true)}, imageUID: uid(1 << 40),
			wantErr: "image has an invalid user id", wantImageLookup: true},
		{name: "runAsUser 0", container: &v1.SecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: uid(0)}, imageUID: uid(1000),
			wantErr: "container's runAsUser breaks non-root policy (pod: \"web-u1_ns1(u1)\", container: c)"},
		{name: "pod runAsUser 0, container runAsUser 1000", pod: &v1.SecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: uid(0)},
			container: &v1.SecurityContext{RunAsUser: uid(1000)}, imageUID: uid(0), wantUser: uid(1000)},
		{name: "container allows root", pod: &v1.SecurityContext{RunAsNonRoot: ptr.To(true)},
			container: &v1.SecurityContext{RunAsNonRoot: ptr.To(false)}, imageUID: uid(0)},
		{name: "runAsGroup alone takes the image's uid", container: &v1.SecurityContext{RunAsGroup: uid(3000)}, imageUID: uid(1000),
			wantUser: uid(1000), wantGroup: uid(3000), wantImageLookup: true},
		{name: "runAsGroup alone takes the image's user name", pod: &v1.SecurityContext{RunAsGroup: uid(3000)}, imageName: "nginx",
			wantUsername: "nginx", wantGroup: uid(3000), wantImageLookup: true},
		{name: "runAsGroup alone, image names no user: root", container: &v1.SecurityContext{RunAsGroup: uid(3000)},
			wantUser: uid(0), wantGroup: uid(3000), wantImageLookup: true},
		{name: "nothing set: no look-up, the runtime applies the image's USER", imageUID: uid(0)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.setImageUser(tc.imageUID, tc.imageName)
			pod := testPod("u1", v1.RestartPolicyAlways)
			if p := tc.pod; p != nil {
				pod.Spec.SecurityContext = &v1.PodSecurityContext{RunAsUser: p.RunAsUser, RunAsGroup: p.RunAsGroup, RunAsNonRoot: p.RunAsNonRoot}
			}
			pod.Spec.Containers[0].SecurityContext = tc.container
			_, _, err := e.s.SyncPod(context.Background(), pod)
			// ensureImage asks once; the security check once more only
			// when it needs the image's user.
			if want := map[bool]int{false: 1, true: 2}[tc.wantImageLookup]; e.imageStatusCalls() != want {
				t.Errorf("%d ImageStatus calls, want %d", e.imageStatusCalls(), want)
			}
			if tc.wantErr != "" {
				if err == nil {
					t.Fatal("SyncPod: no error")
				}
				reason, msg := e.waiting(t, pod)
				if reason != "CreateContainerConfigError" || !strings.Contains(msg, tc.wantErr) {
					t.Errorf("waiting = %s: %q, want CreateContainerConfigError: %q", reason, msg, tc.wantErr)
				}
				if !hasEvent(e.events(), tc.wantErr) {
					t.Errorf("no event with %q", tc.wantErr)
				}
				if e.containerCount() != 0 {
					t.Error("container created")
				}
				return
			}
			if err != nil {
				t.Fatalf("SyncPod: %v", err)
			}
			sc := e.lastContainer(t)
			if !reflect.DeepEqual(int64Of(sc.RunAsUser), tc.wantUser) || sc.RunAsUsername != tc.wantUsername || !reflect.DeepEqual(int64Of(sc.RunAsGroup), tc.wantGroup) {
				t.Errorf("runAsUser %v, runAsUsername %q, runAsGroup %v; want %v, %q, %v",
					int64Of(sc.RunAsUser), sc.RunAsUsername, int64Of(sc.RunAsGroup), ptrString(tc.wantUser), tc.wantUsername, ptrString(tc.wantGroup))
			}
		})
	}
}

func int64Of(v *runtimeapi.Int64Value) *int64 {
	if v == nil {
		return nil
	}
	x := v.Value
	return &x
}

func ptrString(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestSandboxPrivileged(t *testing.T) {
	priv := &v1.SecurityContext{Privileged: ptr.To(true)}
	always := v1.ContainerRestartPolicyAlways
	cases := []struct {
		name   string
		mutate func(*v1.Pod)
		want   bool
	}{
		{"none", func(*v1.Pod) {}, false},
		{"app container", func(p *v1.Pod) { p.Spec.Containers[0].SecurityContext = priv }, true},
		{"init container", func(p *v1.Pod) {
			p.Spec.InitContainers = []v1.Container{{Name: "init", Image: testImage, SecurityContext: priv}}
		}, true},
		{"sidecar", func(p *v1.Pod) {
			p.Spec.InitContainers = []v1.Container{{Name: "side", Image: testImage, RestartPolicy: &always, SecurityContext: priv}}
		}, true},
		{"ephemeral container", func(p *v1.Pod) {
			p.Spec.EphemeralContainers = []v1.EphemeralContainer{{EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "dbg", SecurityContext: priv}}}
		}, true},
		{"privileged false", func(p *v1.Pod) {
			p.Spec.Containers[0].SecurityContext = &v1.SecurityContext{Privileged: ptr.To(false)}
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &Syncer{cfg: Config{ResolvConf: filepath.Join(t.TempDir(), "absent")}}
			pod := testPod("u1", v1.RestartPolicyAlways)
			tc.mutate(pod)
			cfg, err := s.sandboxConfig(pod, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Linux.SecurityContext.Privileged; got != tc.want {
				t.Errorf("sandbox privileged = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSysctlAdmission(t *testing.T) {
	cases := []struct {
		name             string
		sysctls          []string
		allowed          []string
		hostNet, hostIPC bool
		wantMsg          string // "" admits
	}{
		{name: "safe", sysctls: []string{"net.ipv4.ip_local_port_range", "kernel.shm_rmid_forced", "net.ipv4.ping_group_range"}},
		{name: "unsafe", sysctls: []string{"kernel.msgmax"}, wantMsg: `forbidden sysctl: "kernel.msgmax" not allowlisted`},
		{name: "unsafe allowed by name", sysctls: []string{"kernel.msgmax"}, allowed: []string{"kernel.msgmax"}},
		{name: "unsafe allowed by prefix", sysctls: []string{"kernel.msgmax", "kernel.msgmnb"}, allowed: []string{"kernel.msg*"}},
		{name: "net prefix", sysctls: []string{"net.core.somaxconn"}, allowed: []string{"net.*"}},
		{name: "prefix does not cover others", sysctls: []string{"kernel.shmmax"}, allowed: []string{"kernel.msg*"}, wantMsg: `"kernel.shmmax" not allowlisted`},
		{name: "net with hostNetwork", sysctls: []string{"net.ipv4.ip_local_port_range"}, hostNet: true,
			wantMsg: `forbidden sysctl: "net.ipv4.ip_local_port_range" not allowed with host Net enabled`},
		{name: "allowed net with hostNetwork", sysctls: []string{"net.core.somaxconn"}, allowed: []string{"net.core.somaxconn"}, hostNet: true,
			wantMsg: "not allowed with host Net enabled"},
		{name: "ipc with hostIPC", sysctls: []string{"kernel.shm_rmid_forced"}, hostIPC: true,
			wantMsg: `forbidden sysctl: "kernel.shm_rmid_forced" not allowed with host IPC enabled`},
		{name: "mqueue with hostIPC", sysctls: []string{"fs.mqueue.msg_max"}, allowed: []string{"fs.mqueue.*"}, hostIPC: true,
			wantMsg: "not allowed with host IPC enabled"},
		{name: "net with hostIPC is fine", sysctls: []string{"net.ipv4.tcp_syncookies"}, hostIPC: true},
		{name: "slash form", sysctls: []string{"net/ipv4/ip_local_port_range"}},
		{name: "slash form unsafe", sysctls: []string{"kernel/msgmax"}, wantMsg: `"kernel.msgmax" not allowlisted`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newSecEnv(t, func(c *Config) { c.AllowedUnsafeSysctls = tc.allowed })
			pod := testPod("u1", v1.RestartPolicyAlways)
			pod.Spec.HostNetwork, pod.Spec.HostIPC = tc.hostNet, tc.hostIPC
			pod.Spec.SecurityContext = &v1.PodSecurityContext{}
			for _, name := range tc.sysctls {
				pod.Spec.SecurityContext.Sysctls = append(pod.Spec.SecurityContext.Sysctls, v1.Sysctl{Name: name, Value: "1"})
			}
			e.sync(t, pod)
			st := e.status.get(pod.UID)
			if tc.wantMsg == "" {
				if st.Phase == v1.PodFailed {
					t.Fatalf("rejected: %s: %s", st.Reason, st.Message)
				}
				got := e.lastSandbox(t).Sysctls
				for _, name := range tc.sysctls {
					if _, ok := got[normalizeSysctl(name)]; !ok || strings.Contains(normalizeSysctl(name), "/") {
						t.Errorf("sandbox sysctls %v: no %s", got, normalizeSysctl(name))
					}
				}
				return
			}
			if st.Phase != v1.PodFailed || st.Reason != "SysctlForbidden" || !strings.Contains(st.Message, tc.wantMsg) {
				t.Errorf("status %s %s: %q, want Failed SysctlForbidden: %q", st.Phase, st.Reason, st.Message, tc.wantMsg)
			}
			if e.containerCount() != 0 || len(e.sandboxesOf(pod.UID)) != 0 {
				t.Error("rejected pod started")
			}
		})
	}
}

func TestNormalizeSysctl(t *testing.T) {
	for in, want := range map[string]string{
		"net.ipv4.ip_local_port_range":     "net.ipv4.ip_local_port_range",
		"net/ipv4/ip_local_port_range":     "net.ipv4.ip_local_port_range",
		"net/ipv4/conf/eno2.100/rp_filter": "net.ipv4.conf.eno2/100.rp_filter",
		"net.ipv4.conf.eno2/100.rp_filter": "net.ipv4.conf.eno2/100.rp_filter",
		"kernel":                           "kernel",
	} {
		if got := normalizeSysctl(in); got != want {
			t.Errorf("normalizeSysctl(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckAllowedUnsafeSysctls(t *testing.T) {
	cases := []struct {
		patterns []string
		wantErr  string
	}{
		{[]string{"kernel.msgmax", "kernel.shm*", "net.*", "fs.mqueue.*", "kernel.sem", "net/ipv4/route/min_pmtu"}, ""},
		{[]string{"vm.swappiness"}, "not known to be namespaced"},
		{[]string{"kernel.*"}, "not known to be namespaced"},
		{[]string{"net.*.foo"}, "must have at most"},
		{[]string{"Kernel.msgmax"}, "must have at most"},
	}
	for _, tc := range cases {
		err := CheckAllowedUnsafeSysctls(tc.patterns)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("CheckAllowedUnsafeSysctls(%v) = %v, want %q", tc.patterns, err, tc.wantErr)
		}
	}
}

func TestSafeSysctlsByKernel(t *testing.T) {
	for _, tc := range []struct {
		kernel   string
		has, not []string
	}{
		{"", []string{"net.ipv4.ip_unprivileged_port_start"}, []string{"net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_rmem"}},
		{"4.5.0", []string{"net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time"}, []string{"net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_wmem"}},
		{"6.8.0-45-generic", []string{"net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}, nil},
	} {
		var v *version.Version
		if tc.kernel != "" {
			v = version.MustParseGeneric(tc.kernel)
		}
		got := safeSysctlsFor(v)
		for _, s := range tc.has {
			if !slices.Contains(got, s) {
				t.Errorf("kernel %q: %s not safe", tc.kernel, s)
			}
		}
		for _, s := range tc.not {
			if slices.Contains(got, s) {
				t.Errorf("kernel %q: %s safe", tc.kernel, s)
			}
		}
	}
}

func TestAppArmor(t *testing.T) {
	local := func(name string) *v1.AppArmorProfile {
		return &v1.AppArmorProfile{Type: v1.AppArmorProfileTypeLocalhost, LocalhostProfile: &name}
	}
	cases := []struct {
		name           string
		enabled        bool
		pod, container *v1.AppArmorProfile
		annotation     string
		wantReject     string
		want           *runtimeapi.SecurityProfile
		wantDeprecated string
	}{
		{name: "none, disabled"},
		{name: "unconfined, disabled", container: &v1.AppArmorProfile{Type: v1.AppArmorProfileTypeUnconfined},
			want: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, wantDeprecated: "unconfined"},
		{name: "runtime default, disabled", pod: &v1.AppArmorProfile{Type: v1.AppArmorProfileTypeRuntimeDefault},
			wantReject: "Cannot enforce AppArmor: AppArmor is not enabled on the host"},
		{name: "annotation, disabled", annotation: "runtime/default", wantReject: "AppArmor is not enabled on the host"},
		{name: "localhost, disabled", container: local("k8s-nginx"), wantReject: "AppArmor is not enabled on the host"},
		{name: "runtime default, enabled", enabled: true, pod: &v1.AppArmorProfile{Type: v1.AppArmorProfileTypeRuntimeDefault},
			want: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, wantDeprecated: "runtime/default"},
		{name: "localhost, enabled", enabled: true, container: local("k8s-nginx"),
			want: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "k8s-nginx"}, wantDeprecated: "localhost/k8s-nginx"},
		{name: "annotation beats pod field", enabled: true, pod: &v1.AppArmorProfile{Type: v1.AppArmorProfileTypeRuntimeDefault}, annotation: "localhost/p1",
			want: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "p1"}, wantDeprecated: "localhost/p1"},
		{name: "container field beats annotation", enabled: true, container: &v1.AppArmorProfile{Type: v1.AppArmorProfileTypeUnconfined}, annotation: "localhost/p1",
			want: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, wantDeprecated: "unconfined"},
		{name: "localhost without a name", enabled: true, container: local(" "), wantReject: "invalid empty AppArmor profile name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newSecEnv(t, func(c *Config) { c.AppArmorEnabled = tc.enabled })
			pod := testPod("u1", v1.RestartPolicyAlways)
			pod.Spec.SecurityContext = &v1.PodSecurityContext{AppArmorProfile: tc.pod}
			pod.Spec.Containers[0].SecurityContext = &v1.SecurityContext{AppArmorProfile: tc.container}
			if tc.annotation != "" {
				pod.Annotations = map[string]string{v1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix + "c": tc.annotation}
			}
			e.sync(t, pod)
			st := e.status.get(pod.UID)
			if tc.wantReject != "" {
				if st.Phase != v1.PodFailed || st.Reason != "AppArmor" || !strings.Contains(st.Message, tc.wantReject) {
					t.Errorf("status %s %s: %q, want Failed AppArmor: %q", st.Phase, st.Reason, st.Message, tc.wantReject)
				}
				return
			}
			if st.Phase == v1.PodFailed {
				t.Fatalf("rejected: %s", st.Message)
			}
			sc := e.lastContainer(t)
			if !reflect.DeepEqual(sc.Apparmor, tc.want) || sc.ApparmorProfile != tc.wantDeprecated {
				t.Errorf("apparmor = %v %q, want %v %q", sc.Apparmor, sc.ApparmorProfile, tc.want, tc.wantDeprecated)
			}
		})
	}
}

func TestSupplementalGroupsPolicy(t *testing.T) {
	strict, merge := v1.SupplementalGroupsPolicyStrict, v1.SupplementalGroupsPolicyMerge
	cases := []struct {
		name       string
		policy     *v1.SupplementalGroupsPolicy
		supported  bool
		wantReject bool
		want       runtimeapi.SupplementalGroupsPolicy
	}{
		{name: "unset", want: runtimeapi.SupplementalGroupsPolicy_Merge},
		{name: "merge", policy: &merge, want: runtimeapi.SupplementalGroupsPolicy_Merge},
		{name: "strict, supported", policy: &strict, supported: true, want: runtimeapi.SupplementalGroupsPolicy_Strict},
		{name: "strict, not supported", policy: &strict, wantReject: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newSecEnv(t, func(c *Config) { c.SupplementalGroupsPolicySupported = func() bool { return tc.supported } })
			pod := testPod("u1", v1.RestartPolicyAlways)
			pod.Spec.SecurityContext = &v1.PodSecurityContext{SupplementalGroupsPolicy: tc.policy, SupplementalGroups: []int64{5, 6}, FSGroup: ptr.To(int64(4))}
			e.sync(t, pod)
			st := e.status.get(pod.UID)
			if tc.wantReject {
				if st.Phase != v1.PodFailed || st.Reason != "SupplementalGroupsPolicyNotSupported" || st.Message != "Pod was rejected: SupplementalGroupsPolicy=Strict is not supported in this node" {
					t.Errorf("status %s %s: %q", st.Phase, st.Reason, st.Message)
				}
				return
			}
			sb, c := e.lastSandbox(t).SecurityContext, e.lastContainer(t)
			if sb.SupplementalGroupsPolicy != tc.want || c.SupplementalGroupsPolicy != tc.want {
				t.Errorf("policy sandbox %v container %v, want %v", sb.SupplementalGroupsPolicy, c.SupplementalGroupsPolicy, tc.want)
			}
			if want := []int64{4, 5, 6}; !reflect.DeepEqual(sb.SupplementalGroups, want) || !reflect.DeepEqual(c.SupplementalGroups, want) {
				t.Errorf("groups sandbox %v container %v, want %v", sb.SupplementalGroups, c.SupplementalGroups, want)
			}
		})
	}
}

func TestContainerSecurityFields(t *testing.T) {
	unmasked, dflt := v1.UnmaskedProcMount, v1.DefaultProcMount
	podSE := &v1.SELinuxOptions{User: "system_u", Role: "system_r", Type: "pod_t", Level: "s0:c1,c2"}
	cases := []struct {
		name  string
		pod   *v1.PodSecurityContext
		c     *v1.SecurityContext
		check func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext)
	}{
		{"default masked and read-only paths", nil, nil, func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext) {
			for _, p := range []string{"/proc/interrupts", "/proc/kcore", "/proc/keys", "/sys/firmware", "/sys/devices/virtual/powercap"} {
				if !slices.Contains(sc.MaskedPaths, p) {
					t.Errorf("masked paths %v: no %s", sc.MaskedPaths, p)
				}
			}
			if !slices.Equal(sc.ReadonlyPaths, []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}) {
				t.Errorf("read-only paths %v", sc.ReadonlyPaths)
			}
		}},
		{"procMount Default", nil, &v1.SecurityContext{ProcMount: &dflt}, func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext) {
			if len(sc.MaskedPaths) < 12 || len(sc.ReadonlyPaths) != 5 {
				t.Errorf("paths %v %v", sc.MaskedPaths, sc.ReadonlyPaths)
			}
		}},
		{"procMount Unmasked", nil, &v1.SecurityContext{ProcMount: &unmasked}, func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext) {
			if sc.MaskedPaths == nil || len(sc.MaskedPaths) != 0 || sc.ReadonlyPaths == nil || len(sc.ReadonlyPaths) != 0 {
				t.Errorf("paths %v %v, want empty (not unset)", sc.MaskedPaths, sc.ReadonlyPaths)
			}
		}},
		{"privileged keeps the lists (the runtime drops them)", nil, &v1.SecurityContext{Privileged: ptr.To(true)}, func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext) {
			if !sc.Privileged || len(sc.MaskedPaths) == 0 {
				t.Errorf("privileged %v masked %v", sc.Privileged, sc.MaskedPaths)
			}
		}},
		{"pod seLinuxOptions", &v1.PodSecurityContext{SELinuxOptions: podSE}, nil, func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext) {
			want := &runtimeapi.SELinuxOption{User: "system_u", Role: "system_r", Type: "pod_t", Level: "s0:c1,c2"}
			if !reflect.DeepEqual(sc.SelinuxOptions, want) {
				t.Errorf("selinux %v, want %v", sc.SelinuxOptions, want)
			}
		}},
		{"container seLinuxOptions replace the pod's", &v1.PodSecurityContext{SELinuxOptions: podSE}, &v1.SecurityContext{SELinuxOptions: &v1.SELinuxOptions{Type: "c_t"}},
			func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext) {
				if !reflect.DeepEqual(sc.SelinuxOptions, &runtimeapi.SELinuxOption{Type: "c_t"}) {
					t.Errorf("selinux %v", sc.SelinuxOptions)
				}
			}},
		{"container user over the pod's", &v1.PodSecurityContext{RunAsUser: ptr.To(int64(1)), RunAsGroup: ptr.To(int64(2))}, &v1.SecurityContext{RunAsUser: ptr.To(int64(10))},
			func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext) {
				if sc.RunAsUser.GetValue() != 10 || sc.RunAsGroup.GetValue() != 2 {
					t.Errorf("user %v group %v", sc.RunAsUser, sc.RunAsGroup)
				}
			}},
		{"capabilities, read-only root, no privilege escalation", nil, &v1.SecurityContext{
			Capabilities:           &v1.Capabilities{Add: []v1.Capability{"NET_ADMIN"}, Drop: []v1.Capability{"ALL"}},
			ReadOnlyRootFilesystem: ptr.To(true), AllowPrivilegeEscalation: ptr.To(false),
		}, func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext) {
			if !slices.Equal(sc.Capabilities.AddCapabilities, []string{"NET_ADMIN"}) || !slices.Equal(sc.Capabilities.DropCapabilities, []string{"ALL"}) ||
				!sc.ReadonlyRootfs || !sc.NoNewPrivs {
				t.Errorf("got %v", sc)
			}
		}},
		{"windowsOptions are ignored on Linux", &v1.PodSecurityContext{WindowsOptions: &v1.WindowsSecurityContextOptions{RunAsUserName: ptr.To("ContainerUser")}}, nil,
			func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext) {
				if sc.RunAsUsername != "" || sc.RunAsUser != nil {
					t.Errorf("user %v %q", sc.RunAsUser, sc.RunAsUsername)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &Syncer{}
			pod := testPod("u1", v1.RestartPolicyAlways)
			pod.Spec.SecurityContext = tc.pod
			c := &pod.Spec.Containers[0]
			c.SecurityContext = tc.c
			tc.check(t, s.containerSecurity(pod, c, nil))
		})
	}
}

func TestSandboxSecurityFields(t *testing.T) {
	s := &Syncer{cfg: Config{ResolvConf: filepath.Join(t.TempDir(), "absent")}}
	pod := testPod("u1", v1.RestartPolicyAlways)
	pod.Spec.SecurityContext = &v1.PodSecurityContext{
		RunAsUser: ptr.To(int64(1000)), RunAsGroup: ptr.To(int64(2000)),
		SELinuxOptions: &v1.SELinuxOptions{Level: "s0:c1"},
		Sysctls:        []v1.Sysctl{{Name: "net/ipv4/ip_local_port_range", Value: "1024 65000"}},
	}
	cfg, err := s.sandboxConfig(pod, 0)
	if err != nil {
		t.Fatal(err)
	}
	sc := cfg.Linux.SecurityContext
	if sc.RunAsUser.GetValue() != 1000 || sc.RunAsGroup.GetValue() != 2000 || sc.SelinuxOptions.GetLevel() != "s0:c1" {
		t.Errorf("sandbox security %v", sc)
	}
	if want := map[string]string{"net.ipv4.ip_local_port_range": "1024 65000"}; !reflect.DeepEqual(cfg.Linux.Sysctls, want) {
		t.Errorf("sysctls %v, want %v", cfg.Linux.Sysctls, want)
	}
}

// Every field of the security contexts is handled, or knowingly left to
// another part: a field added to the API fails this test until it is.
func TestSecurityContextFieldsHandled(t *testing.T) {
	handled := map[string]string{
		"SecurityContext.Capabilities":             "containerSecurity",
		"SecurityContext.Privileged":               "containerSecurity, sandbox privileged",
		"SecurityContext.SELinuxOptions":           "containerSecurity",
		"SecurityContext.WindowsOptions":           "ignored on Linux, as the kubelet",
		"SecurityContext.RunAsUser":                "containerSecurity, verifyRunAsNonRoot",
		"SecurityContext.RunAsGroup":               "containerSecurity",
		"SecurityContext.RunAsNonRoot":             "verifyRunAsNonRoot",
		"SecurityContext.ReadOnlyRootFilesystem":   "containerSecurity",
		"SecurityContext.AllowPrivilegeEscalation": "containerSecurity",
		"SecurityContext.ProcMount":                "maskedPaths, readonlyPaths",
		"SecurityContext.SeccompProfile":           "seccompProfile",
		"SecurityContext.AppArmorProfile":          "appArmorProfile, admitAppArmor",

		"PodSecurityContext.SELinuxOptions":           "containerSecurity, sandboxLinux",
		"PodSecurityContext.WindowsOptions":           "ignored on Linux, as the kubelet",
		"PodSecurityContext.RunAsUser":                "containerSecurity, sandboxLinux",
		"PodSecurityContext.RunAsGroup":               "containerSecurity, sandboxLinux",
		"PodSecurityContext.RunAsNonRoot":             "verifyRunAsNonRoot",
		"PodSecurityContext.SupplementalGroups":       "supplementalGroups",
		"PodSecurityContext.SupplementalGroupsPolicy": "supplementalGroups, admitSupplementalGroupsPolicy",
		"PodSecurityContext.FSGroup":                  "supplementalGroups; volume ownership (volumes.writeAtomic, setupEmptyDir)",
		"PodSecurityContext.Sysctls":                  "admitSysctls, sandboxSysctls",
		"PodSecurityContext.FSGroupChangePolicy":      "volumes: ownership is set as the agent writes, which Always and OnRootMismatch agree on",
		"PodSecurityContext.SeccompProfile":           "seccompProfile",
		"PodSecurityContext.AppArmorProfile":          "appArmorProfile, admitAppArmor",
		"PodSecurityContext.SELinuxChangePolicy":      "mounts.go relabel: these volume types are relabelled either way, as the kubelet",
	}
	seen := map[string]bool{}
	for _, typ := range []reflect.Type{reflect.TypeOf(v1.SecurityContext{}), reflect.TypeOf(v1.PodSecurityContext{})} {
		for _, f := range reflect.VisibleFields(typ) {
			key := typ.Name() + "." + f.Name
			seen[key] = true
			if _, ok := handled[key]; !ok {
				t.Errorf("%s: not handled; honour it or refuse it (security.go)", key)
			}
		}
	}
	for key := range handled {
		if !seen[key] {
			t.Errorf("%s: no longer in the API", key)
		}
	}
}
