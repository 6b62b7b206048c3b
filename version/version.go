// Package version says what nodeagent is and how it was built.
//
// Version is the kubelet version nodeagent follows, with its own name as
// semver build metadata ("v1.36.3+nodeagent"): the Node reports it as
// status.nodeInfo.kubeletVersion, and `--version` prints it in the
// kubelet's format ("Kubernetes v1.36.3+nodeagent"), which kubeadm's
// preflight parses. Commit and Date identify the build; `make build` and
// the harness set them with the linker flags hack/ldflags.sh prints:
//
//	go build -ldflags "-X github.com/nodeagent/nodeagent/version.Commit=0123456789ab
//	  -X github.com/nodeagent/nodeagent/version.Date=2026-01-02T03:04:05Z" ./cmd/nodeagent
//
// A plain `go build` in a git checkout still knows its commit: Get falls
// back to the revision the go command stamps into the binary.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set with -ldflags -X. Version keeps its default unless a release sets it
// to another semver the apiserver and kubeadm accept.
var (
	Version = "v1.36.3+nodeagent"
	Commit  = "" // short git commit, "-dirty" appended for a modified tree
	Date    = "" // build date in UTC, RFC 3339 (the harness records the day only)
)

// Unknown is what Info holds for a commit or date nobody set.
const Unknown = "unknown"

// Info describes the running binary.
type Info struct {
	Version   string
	Commit    string
	Date      string
	GoVersion string
	Platform  string
}

// Get returns the build's Info. The commit falls back to the binary's
// embedded VCS revision, then to Unknown; the date to Unknown.
func Get() Info {
	return get(debug.ReadBuildInfo)
}

func get(readBuildInfo func() (*debug.BuildInfo, bool)) Info {
	i := Info{Version: Version, Commit: Commit, Date: Date, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if i.Commit == "" {
		i.Commit = vcsRevision(readBuildInfo)
	}
	if i.Date == "" {
		i.Date = Unknown
	}
	return i
}

func vcsRevision(readBuildInfo func() (*debug.BuildInfo, bool)) string {
	bi, ok := readBuildInfo()
	if !ok {
		return Unknown
	}
	var rev string
	var modified bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		return Unknown
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified {
		rev += "-dirty"
	}
	return rev
}

// Kubelet is the kubelet's --version line: "Kubernetes <version>".
func (i Info) Kubelet() string {
	return "Kubernetes " + i.Version
}

// String is nodeagent's build line:
// "nodeagent v1.36.3+nodeagent (commit 0123456789ab, built 2026-01-02T03:04:05Z, go1.26.8 linux/amd64)".
func (i Info) String() string {
	return fmt.Sprintf("nodeagent %s (commit %s, built %s, %s %s)", i.Version, i.Commit, i.Date, i.GoVersion, i.Platform)
}
