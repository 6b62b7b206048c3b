package configs

import (
	"crypto/tls"
	"errors"
	"reflect"
	"strings"
	"testing"

	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
)

type kcfg = kubeletconfigv1beta1.KubeletConfiguration

func TestValidateSecurity(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*kcfg)
		wantErr []string // substrings; none means valid
	}{
		{"defaults", func(*kcfg) {}, nil},
		{"debugging handlers off", func(c *kcfg) { c.EnableDebuggingHandlers = ptr.To(false) }, nil},
		{"server off", func(c *kcfg) { c.EnableServer = ptr.To(false) }, nil},
		{"TLS 1.3", func(c *kcfg) { c.TLSMinVersion = "VersionTLS13" }, nil},
		{"unknown TLS version", func(c *kcfg) { c.TLSMinVersion = "TLSv1.2" }, []string{`tlsMinVersion: unknown tls version "TLSv1.2"`, "VersionTLS12"}},
		{"ciphers", func(c *kcfg) {
			c.TLSCipherSuites = []string{"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"}
		}, nil},
		{"unknown cipher", func(c *kcfg) { c.TLSCipherSuites = []string{"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "RC4"} }, []string{"tlsCipherSuites: Cipher suite RC4 not supported"}},
		{"curves", func(c *kcfg) { c.TLSCurvePreferences = []int32{int32(tls.X25519), int32(tls.CurveP256)} }, nil},
		{"unknown curve", func(c *kcfg) { c.TLSCurvePreferences = []int32{7} }, []string{"tlsCurvePreferences:"}},
		{"podPidsLimit", func(c *kcfg) { c.PodPidsLimit = ptr.To[int64](1024) }, nil},
		{"podPidsLimit, systemd driver", func(c *kcfg) { c.PodPidsLimit, c.CgroupDriver = ptr.To[int64](1024), "systemd" }, []string{"podPidsLimit: ", "got 1024", `"systemd"`}},
		{"podPidsLimit, no cgroupsPerQOS", func(c *kcfg) { c.PodPidsLimit, c.CgroupsPerQOS = ptr.To[int64](1024), ptr.To(false) }, []string{"podPidsLimit: ", "cgroupsPerQOS false"}},
		{"podPidsLimit unlimited", func(c *kcfg) { c.PodPidsLimit = ptr.To[int64](-1) }, nil},
		{"enforce pods", func(c *kcfg) { c.EnforceNodeAllocatable = []string{"pods"} }, nil},
		{"enforce none", func(c *kcfg) { c.EnforceNodeAllocatable = []string{"none"} }, nil},
		{"enforce nothing", func(c *kcfg) { c.EnforceNodeAllocatable = []string{} }, nil},
		{"enforce system-reserved", func(c *kcfg) {
			c.EnforceNodeAllocatable = []string{"pods", "system-reserved", "kube-reserved-compressible"}
		}, []string{"enforceNodeAllocatable: enforcing system-reserved, kube-reserved-compressible is not implemented"}},
		{"enforce unknown", func(c *kcfg) { c.EnforceNodeAllocatable = []string{"everything"} }, []string{`enforceNodeAllocatable[0]: unknown value "everything"`}},
		{"enforce none and pods", func(c *kcfg) { c.EnforceNodeAllocatable = []string{"pods", "none"} }, []string{`enforceNodeAllocatable[1]: "none" must be the only value`}},
		{"image policy default", func(c *kcfg) {
			c.ImagePullCredentialsVerificationPolicy = kubeletconfigv1beta1.NeverVerifyPreloadedImages
		}, nil},
		{"image policy never", func(c *kcfg) { c.ImagePullCredentialsVerificationPolicy = kubeletconfigv1beta1.NeverVerify }, nil},
		{"image policy always", func(c *kcfg) { c.ImagePullCredentialsVerificationPolicy = kubeletconfigv1beta1.AlwaysVerify }, []string{"imagePullCredentialsVerificationPolicy: AlwaysVerify is not implemented"}},
		{"image policy allowlist", func(c *kcfg) {
			c.ImagePullCredentialsVerificationPolicy = kubeletconfigv1beta1.NeverVerifyAllowlistedImages
		}, []string{"imagePullCredentialsVerificationPolicy: NeverVerifyAllowlistedImages"}},
		{"image policy unknown", func(c *kcfg) { c.ImagePullCredentialsVerificationPolicy = "Sometimes" }, []string{`imagePullCredentialsVerificationPolicy: unknown policy "Sometimes"`}},
		{"staticPodURL", func(c *kcfg) { c.StaticPodURL = "http://example.com/pods" }, []string{"staticPodURL: "}},
		{"all at once", func(c *kcfg) {
			c.PodPidsLimit, c.CgroupDriver, c.StaticPodURL, c.TLSMinVersion = ptr.To[int64](10), "systemd", "http://x", "x"
		}, []string{"podPidsLimit:", "staticPodURL:", "tlsMinVersion:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &kcfg{}
			Default(cfg)
			tt.mutate(cfg)
			err := Validate(cfg)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want error containing %q, got nil", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// Every refused field exists, and is not in the unimplemented warning
// unless nodeagent also ignores its default.
func TestRefusedFieldsKnown(t *testing.T) {
	for f := range refusedFields {
		if !knownFields[f] {
			t.Errorf("refused field %s is not a KubeletConfiguration field", f)
		}
		if !implementedFields[f] && f != "enforceNodeAllocatable" {
			t.Errorf("refused field %s: its accepted values are honoured, list it in implementedFields", f)
		}
	}
}

func TestTLSOptions(t *testing.T) {
	cfg := &kcfg{}
	Default(cfg)
	got, err := TLSOptions(cfg)
	if err != nil || got.MinVersion != tls.VersionTLS12 || got.CipherSuites != nil || got.CurvePreferences != nil {
		t.Errorf("defaults: %+v, %v", got, err)
	}
	cfg.TLSMinVersion = "VersionTLS13"
	cfg.TLSCipherSuites = []string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}
	cfg.TLSCurvePreferences = []int32{int32(tls.X25519)}
	got, err = TLSOptions(cfg)
	want := TLS{MinVersion: tls.VersionTLS13, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}, CurvePreferences: []tls.CurveID{tls.X25519}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, %v; want %+v", got, err, want)
	}
	cfg.TLSCipherSuites = []string{"nope"}
	if _, err := TLSOptions(cfg); err == nil || !strings.HasPrefix(err.Error(), "tlsCipherSuites: ") {
		t.Errorf("got %v, want an error naming tlsCipherSuites", err)
	}
}

func kubeletTunables() map[string]int {
	m := map[string]int{}
	for _, kt := range kernelTunables {
		m[kt.name] = kt.want
	}
	return m
}

func TestCheckHostKernelTunables(t *testing.T) {
	old := host
	t.Cleanup(func() { host = old })
	wrong := kubeletTunables()
	wrong["vm.overcommit_memory"] = 0
	wrong["kernel.panic"] = 1
	tests := []struct {
		name    string
		sysctls map[string]int
		protect bool
		wantErr []string
	}{
		{"kubelet values, protected", kubeletTunables(), true, nil},
		{"differ, protected", wrong, true, []string{"protectKernelDefaults: ", "vm.overcommit_memory=0 (want 1)", "kernel.panic=1 (want 10)"}},
		{"differ, not protected", wrong, false, nil},
		{"unreadable, protected", map[string]int{}, true, []string{"protectKernelDefaults: read kernel tunable vm.overcommit_memory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host = fakeHost{v2: true, sysctls: tt.sysctls}
			cfg := &kcfg{ProtectKernelDefaults: tt.protect}
			Default(cfg)
			err := CheckHost(cfg)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want error containing %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestSetupKernelTunables(t *testing.T) {
	old := host
	t.Cleanup(func() { host = old })
	wrongs := func() map[string]int {
		m := kubeletTunables()
		m["vm.overcommit_memory"] = 0
		m["kernel.panic_on_oops"] = 0
		return m
	}

	t.Run("root sets what differs", func(t *testing.T) {
		s := wrongs()
		host = fakeHost{sysctls: s}
		changed, warns, err := SetupKernelTunables(&kcfg{})
		if err != nil || len(warns) > 0 {
			t.Fatalf("err %v, warnings %q", err, warns)
		}
		if !reflect.DeepEqual(s, kubeletTunables()) {
			t.Errorf("tunables now %v", s)
		}
		if want := []string{"vm.overcommit_memory=0 (want 1)", "kernel.panic_on_oops=0 (want 1)"}; !reflect.DeepEqual(changed, want) {
			t.Errorf("changed %q, want %q", changed, want)
		}
	})
	t.Run("not root warns", func(t *testing.T) {
		s := wrongs()
		host = fakeHost{sysctls: s, notRoot: true}
		changed, warns, err := SetupKernelTunables(&kcfg{})
		if err != nil || len(changed) > 0 || len(warns) != 1 || !strings.Contains(warns[0], "vm.overcommit_memory=0 (want 1)") {
			t.Fatalf("changed %q, warnings %q, err %v", changed, warns, err)
		}
		if s["vm.overcommit_memory"] != 0 {
			t.Error("changed a tunable without root")
		}
	})
	t.Run("write fails", func(t *testing.T) {
		host = fakeHost{sysctls: wrongs(), setErr: errors.New("read-only file system")}
		if _, _, err := SetupKernelTunables(&kcfg{}); err == nil || !strings.Contains(err.Error(), "protectKernelDefaults") || !strings.Contains(err.Error(), "vm.overcommit_memory") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("protected does nothing", func(t *testing.T) {
		s := wrongs()
		host = fakeHost{sysctls: s}
		if changed, _, err := SetupKernelTunables(&kcfg{ProtectKernelDefaults: true}); err != nil || len(changed) > 0 || s["vm.overcommit_memory"] != 0 {
			t.Fatalf("changed %q, err %v", changed, err)
		}
	})
}

// Every KubeletConfiguration field is implemented, refused, or judged not
// security-relevant.
func TestEveryFieldDecided(t *testing.T) {
	for f := range knownFields {
		decided := 0
		for _, in := range []bool{implementedFields[f], refusedFields[f] && !implementedFields[f], notSecurityRelevant[f] != ""} {
			if in {
				decided++
			}
		}
		if decided != 1 {
			t.Errorf("field %s: implemented %v, refused %v, not security-relevant %q: want exactly one decision",
				f, implementedFields[f], refusedFields[f], notSecurityRelevant[f])
		}
	}
	for f := range notSecurityRelevant {
		if !knownFields[f] {
			t.Errorf("notSecurityRelevant lists %s, which is not a field", f)
		}
	}
}
