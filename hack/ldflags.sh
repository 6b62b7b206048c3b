#!/usr/bin/env bash
# Prints the -ldflags of nodeagent's builds (make build, hack/cluster.sh):
# the commit and build date that `nodeagent --version` shows (package
# version). It never fails: without git, outside a checkout or in a
# repository git refuses to read, the commit is "unknown".
#
#   GIT_COMMIT         the commit to record instead of asking git
#   BUILD_DATE         the date to record instead of now (UTC, RFC 3339)
#   SOURCE_DATE_EPOCH  reproducible builds: the date is this instant
set -u
cd "$(dirname "$0")/.." || exit 1
commit=${GIT_COMMIT:-$(git describe --always --dirty --abbrev=12 --exclude='*' 2>/dev/null || echo unknown)}
if [[ -z ${BUILD_DATE:-} ]]; then
  if [[ -n ${SOURCE_DATE_EPOCH:-} ]]; then
    BUILD_DATE=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
  else
    BUILD_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  fi
fi
pkg=github.com/nodeagent/nodeagent/version
echo "-X $pkg.Commit=$commit -X $pkg.Date=$BUILD_DATE"
