package configs

import "testing"

// The default config `make install` puts at /var/lib/kubelet/config.yaml
// is valid and names nothing nodeagent ignores.
func TestDeployDefaultConfig(t *testing.T) {
	goodHost(t)
	o, warnings, err := Parse([]string{"--config", "../deploy/systemd/config.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings: %q", warnings)
	}
	if o.Config.CgroupDriver != "systemd" || o.Config.Authentication.X509.ClientCAFile != "/etc/kubernetes/pki/ca.crt" {
		t.Errorf("cgroupDriver %q clientCAFile %q", o.Config.CgroupDriver, o.Config.Authentication.X509.ClientCAFile)
	}
}
