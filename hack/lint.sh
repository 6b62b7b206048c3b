#!/usr/bin/env bash
# make lint: golangci-lint with the repo's .golangci.yml over the whole
# module, the e2e build tag included. The linter is built from the Go
# module proxy, at the version hack/lint/go.mod pins, into the cache's bin
# directory; it is rebuilt only when that version or the Go version changes
# (a stamp), so a second run only lints. Arguments go to `golangci-lint run`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cache=${NODEAGENT_CACHE:-$HOME/.cache/nodeagent}
bin="$cache/bin"
pkg=github.com/golangci/golangci-lint/v2/cmd/golangci-lint
mod=github.com/golangci/golangci-lint/v2
version=$(awk -v m="$mod" '$1 == "require" && $2 == m { print $3 } $1 == m { print $2 }' "$here/lint/go.mod")
[[ -n $version ]] || { echo "lint.sh: no golangci-lint version in hack/lint/go.mod" >&2; exit 1; }

want="golangci-lint $version $(go env GOVERSION)"
stamp="$bin/.golangci-lint.stamp"
if [[ ! -x "$bin/golangci-lint" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "building golangci-lint $version" >&2
  mkdir -p "$bin"
  (cd "$here/lint" && CGO_ENABLED=0 go build -trimpath -o "$bin/golangci-lint.tmp" "$pkg")
  mv "$bin/golangci-lint.tmp" "$bin/golangci-lint"
  echo "$want" > "$stamp"
fi

cd "$root"
exec "$bin/golangci-lint" run "$@" ./...
