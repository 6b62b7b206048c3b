package version

import (
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	info := func(settings ...debug.BuildSetting) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) { return &debug.BuildInfo{Settings: settings}, true }
	}
	tests := []struct {
		name         string
		commit, date string
		read         func() (*debug.BuildInfo, bool)
		wantCommit   string
		wantDate     string
	}{
		{name: "set by the linker", commit: "0123456789ab", date: "2026-01-02T03:04:05Z",
			read: info(debug.BuildSetting{Key: "vcs.revision", Value: "ffff"}), wantCommit: "0123456789ab", wantDate: "2026-01-02T03:04:05Z"},
		{name: "stamped by the go command", read: info(debug.BuildSetting{Key: "vcs.revision", Value: "0123456789abcdef0123"}),
			wantCommit: "0123456789ab", wantDate: Unknown},
		{name: "stamped, modified tree", read: info(debug.BuildSetting{Key: "vcs.revision", Value: "0123456789abcdef"}, debug.BuildSetting{Key: "vcs.modified", Value: "true"}),
			wantCommit: "0123456789ab-dirty", wantDate: Unknown},
		{name: "no vcs", read: info(), wantCommit: Unknown, wantDate: Unknown},
		{name: "no build info", read: func() (*debug.BuildInfo, bool) { return nil, false }, wantCommit: Unknown, wantDate: Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oldC, oldD := Commit, Date
			t.Cleanup(func() { Commit, Date = oldC, oldD })
			Commit, Date = tt.commit, tt.date
			got := get(tt.read)
			if got.Commit != tt.wantCommit || got.Date != tt.wantDate || got.Version != Version {
				t.Errorf("got %+v, want commit %q date %q version %q", got, tt.wantCommit, tt.wantDate, Version)
			}
		})
	}
}

// kubeadm's preflight (cmd/kubeadm/app/preflight/utils.go, v1.36.3) runs
// `kubelet --version` and wants its whole trimmed stdout to match this.
var kubeadmKubeletVersion = regexp.MustCompile(`^\s*Kubernetes v((0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)([-\w.+]*)?)\s*$`)

func TestLines(t *testing.T) {
	i := Info{Version: Version, Commit: "0123456789ab", Date: "2026-01-02T03:04:05Z", GoVersion: "go1.26.8", Platform: "linux/amd64"}
	if m := kubeadmKubeletVersion.FindStringSubmatch(i.Kubelet() + "\n"); m == nil || m[1] != strings.TrimPrefix(Version, "v") {
		t.Errorf("kubeadm cannot parse %q", i.Kubelet())
	}
	if want := "nodeagent " + Version + " (commit 0123456789ab, built 2026-01-02T03:04:05Z, go1.26.8 linux/amd64)"; i.String() != want {
		t.Errorf("String() = %q, want %q", i.String(), want)
	}
}
