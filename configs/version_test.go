package configs

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/nodeagent/nodeagent/version"
)

func TestParseVersion(t *testing.T) {
	kubelet := "Kubernetes " + version.Version + "\n"
	tests := []struct {
		name       string
		args       []string
		wantErr    error
		errText    string
		wantStdout string
		wantStderr string // substring
	}{
		{name: "plain", args: []string{"--version"}, wantErr: ErrVersion, wantStdout: kubelet, wantStderr: "nodeagent " + version.Version + " (commit "},
		{name: "true", args: []string{"--version=true"}, wantErr: ErrVersion, wantStdout: kubelet, wantStderr: ", built "},
		{name: "with other flags", args: []string{"--kubeconfig=/nonexistent", "--version", "-v", "4"}, wantErr: ErrVersion, wantStdout: kubelet},
		{name: "raw", args: []string{"--version=raw"}, wantErr: ErrVersion, wantStdout: `version.Info{Version:"` + version.Version + `", Commit:"`},
		{name: "false", args: []string{"--version=false"}},
		{name: "set the reported version", args: []string{"--version=v1.36.4"}, errText: "setting the reported version is not implemented"},
		{name: "bad value", args: []string{"--version=yes please"}, errText: "must be true, false or raw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			goodHost(t)
			var stdout, stderr bytes.Buffer
			old := versionOutput
			t.Cleanup(func() { versionOutput = old })
			versionOutput, usageOutput = &stdout, &stderr
			_, _, err := Parse(tt.args)
			switch {
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			case tt.errText != "" && (err == nil || !strings.Contains(err.Error(), tt.errText) || !strings.Contains(err.Error(), "--version")):
				t.Fatalf("got %v, want an error naming --version with %q", err, tt.errText)
			case tt.wantErr == nil && tt.errText == "" && err != nil:
				t.Fatalf("got %v, want the agent to start", err)
			}
			if tt.wantStdout != "" && !strings.HasPrefix(stdout.String(), tt.wantStdout) ||
				tt.wantStdout == kubelet && stdout.String() != kubelet || tt.wantStdout == "" && stdout.Len() > 0 {
				t.Errorf("stdout %q, want %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q, want it to contain %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}
