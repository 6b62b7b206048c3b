#!/usr/bin/env bash
# Builds the upstream components the harness runs (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl, kubeadm, containerd v2,
# metrics-server) from the Go module proxy into a fixed cache directory. A second run rebuilds nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${NODEAGENT_CACHE:-$HOME/.cache/nodeagent}
k8s_version=v1.36.3
containerd_version=v2.2.1
# Must match the require line of hack/metrics-server/go.mod.
metrics_server_version=v0.9.0 # in the ldflags, hence in its stamp
bin="$cache/bin"
mkdir -p "$bin"

build_if_missing() { # name dir pkg [flags...]; GOCMD="test -c" for a test binary
  local name=$1 dir=$2 pkg=$3; shift 3
  local gocmd=${GOCMD:-build} kind=
  [[ $gocmd == build ]] || kind="$gocmd " # keeps the stamps of go build binaries as they were
  local stamp="$bin/.$name.stamp" want
  # Keyed by what the binary is made of: the pinned versions, the package,
  # the flags and the Go version (not by go.sum, which grows when another
  # command is added to the module).
  # STAMP_EXTRA names what else the binary is made of (empty: the stamps of
  # the binaries above stay as they were).
  want="$(echo "$k8s_version $containerd_version $kind$pkg $* $(go env GOVERSION)${STAMP_EXTRA:+ $STAMP_EXTRA}" | sha256sum | cut -c1-16)"
  if [[ -x "$bin/$name" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  echo "building $name" >&2
  (cd "$dir" && CGO_ENABLED=${CGO:-0} go $gocmd -trimpath -o "$bin/$name.tmp" "$@" "$pkg")
  mv "$bin/$name.tmp" "$bin/$name"
  echo "$want" > "$stamp"
}

vpkg="k8s.io/component-base/version"
cpkg="k8s.io/client-go/pkg/version"
ldflags="-s -w"
for p in $vpkg $cpkg; do
  ldflags+=" -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=36 -X $p.gitTreeState=clean -X $p.buildDate=2026-01-01T00:00:00Z -X $p.gitCommit=0000000000000000000000000000000000000000"
done

build_if_missing etcd "$here/tools" ./etcd -ldflags "-s -w"
build_if_missing kube-apiserver "$here/tools" k8s.io/kubernetes/cmd/kube-apiserver -ldflags "$ldflags"
build_if_missing kubectl "$here/tools" k8s.io/kubernetes/cmd/kubectl -ldflags "$ldflags"
build_if_missing kube-controller-manager "$here/tools" k8s.io/kubernetes/cmd/kube-controller-manager -ldflags "$ldflags"
build_if_missing kube-scheduler "$here/tools" k8s.io/kubernetes/cmd/kube-scheduler -ldflags "$ldflags"
# kubeadm: the bootstrap-token and kubelet-config phases of "up", and the
# second node of "join-node".
build_if_missing kubeadm "$here/tools" k8s.io/kubernetes/cmd/kubeadm -ldflags "$ldflags"
ctags="no_btrfs no_devmapper no_zfs"
cldflags="-s -w -X github.com/containerd/containerd/v2/version.Version=$containerd_version"
build_if_missing containerd "$here/containerd" github.com/containerd/containerd/v2/cmd/containerd -tags "$ctags" -ldflags "$cldflags"
build_if_missing containerd-shim-runc-v2 "$here/containerd" github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 -tags "$ctags" -ldflags "$cldflags"
build_if_missing ctr "$here/containerd" github.com/containerd/containerd/v2/cmd/ctr -tags "$ctags" -ldflags "$cldflags"
# metrics-server is its own module: its k8s.io dependencies follow its
# release, not the control plane's.
msldflags="-s -w -X $cpkg.gitVersion=$metrics_server_version"
build_if_missing metrics-server "$here/metrics-server" sigs.k8s.io/metrics-server/cmd/metrics-server -ldflags "$msldflags"
for arg in "$@"; do
  case $arg in
  # The upstream kubelet is only for the side-by-side benchmark.
  --with-kubelet)
    build_if_missing kubelet "$here/tools" k8s.io/kubernetes/cmd/kubelet -ldflags "$ldflags" ;;
  # The upstream e2e suite, agnhost, nonewprivs and the ginkgo CLI (which
  # runs e2e.test in parallel processes) are only for make conformance. The
  # CLI is the version of the ginkgo library e2e.test is built with: the
  # tools module's. nonewprivs (static, CGO off) is the nnp binary of the
  # nonewprivs image.
  --with-conformance)
    GOCMD="test -c" build_if_missing e2e.test "$here/tools" k8s.io/kubernetes/test/e2e -ldflags "$ldflags"
    build_if_missing agnhost "$here/tools" k8s.io/kubernetes/test/images/agnhost -ldflags "$ldflags"
    build_if_missing nonewprivs "$here/tools" k8s.io/kubernetes/test/images/nonewprivs -ldflags "-s -w"
    ginkgo_version=$(awk '$1 == "github.com/onsi/ginkgo/v2" { print $2 }' "$here/tools/go.mod")
    STAMP_EXTRA="ginkgo $ginkgo_version" build_if_missing ginkgo "$here/tools" github.com/onsi/ginkgo/v2/ginkgo -ldflags "-s -w" ;;
  *) echo "build-tools.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done
