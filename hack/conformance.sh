#!/usr/bin/env bash
# Upstream conformance against the local cluster whose node is nodeagent:
# builds e2e.test and agnhost (only here, never for make up / make test),
# the agnhost image, (re)starts the cluster, loads the image and runs the
# specs FOCUS selects (default: the four sig-network specs of
# Conformance && NodeConformance). Output: $STATE/logs/conformance.log.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
STATE=${NODEAGENT_STATE:-/var/lib/nodeagent-harness}
CACHE=${NODEAGENT_CACHE:-$HOME/.cache/nodeagent}
BIN=$CACHE/bin
FOCUS=${FOCUS:-'\[sig-network\] Networking Granular Checks: Pods should function for (intra-pod|node-pod) communication: (http|udp)'}
log() { echo "conformance: $*" >&2; }

[[ $(id -u) == 0 ]] || { log "must run as root"; exit 1; }
# The agnhost image carries the host's curl, netcat-openbsd and dash.
missing=()
command -v curl >/dev/null || missing+=(curl)
[[ -x /bin/nc.openbsd ]] || missing+=(netcat-openbsd)
[[ -x /bin/dash ]] || missing+=(dash)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

t0=$SECONDS
"$here/build-tools.sh" --with-conformance
images=$CACHE/images/conformance
want=$(cat "$here/images/main.go" /bin/busybox "$BIN/agnhost" /usr/bin/curl /bin/nc.openbsd /bin/dash | sha256sum | cut -c1-16)
if [[ ! -f $images/.stamp || "$(cat "$images/.stamp")" != "$want" ]]; then
  log "building the agnhost image"
  mkdir -p "$images"
  (cd "$here/images" && go run . -agnhost "$BIN/agnhost" -out "$images")
  echo "$want" >"$images/.stamp"
fi
log "build: $((SECONDS - t0)) s"

"$here/cluster.sh" up
"$here/cluster.sh" import-conformance-images

t1=$SECONDS
mkdir -p "$STATE/logs"
rc=0
"$BIN/e2e.test" --provider skeleton --kubeconfig "$STATE/admin.kubeconfig" \
  --kubectl-path "$BIN/kubectl" --ginkgo.focus "$FOCUS" --ginkgo.no-color --ginkgo.v \
  --ginkgo.timeout 1h >"$STATE/logs/conformance.log" 2>&1 || rc=$?
log "run: $((SECONDS - t1)) s, exit $rc; output in $STATE/logs/conformance.log"
# The ginkgo summary: the failures, "Ran N of M Specs" and the verdict.
out=$STATE/logs/conformance.log
if grep -q '^Summarizing [0-9]* Failure' "$out"; then
  sed -n '/^Summarizing [0-9]* Failure/,$p' "$out" | grep -v '^\s*$'
else
  grep -E '^Ran [0-9]+ of [0-9]+ Specs|^(SUCCESS|FAIL)!|^--- (PASS|FAIL)' "$out" || tail -n 20 "$out"
fi
exit $rc
