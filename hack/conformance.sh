#!/usr/bin/env bash
# Upstream conformance (the v1.36.3 e2e suite) against the local cluster:
# builds e2e.test, agnhost, nonewprivs and the ginkgo CLI (only here, never
# for make up / make test), the agnhost, nonewprivs, nonroot and
# glibc-dns-testing images, (re)starts the cluster, loads the images and runs
# the selected specs in parallel with the ginkgo CLI.
#
#   LABEL  ginkgo label filter; default, when FOCUS is not set,
#          'NodeConformance && !Serial && !Disruptive && !Flaky': every
#          NodeConformance spec one node can serve. The Serial ones pull
#          images from registries, which this offline harness cannot.
#          LABEL='Conformance && NodeConformance' is the 141-spec set.
#   FOCUS  regex on spec names (as before); alone, it runs just those specs.
#   PROCS  ginkgo processes (default 4); PROCS=1 runs them one by one.
#   AGENT  nodeagent (default) or kubelet: the upstream kubelet v1.36.3 as
#          the node, switched in as hack/bench.sh does (never beside
#          nodeagent), and nodeagent back as the node afterwards.
#   RECORD 1 writes the agent's section of docs/conformance.md; default 1
#          without FOCUS, 0 with it (a focused run is not the measure).
#   TIMEOUT ginkgo suite timeout (default 2h).
#   DRY_RUN=1 lists the selected specs (ginkgo --dry-run): no cluster, no record.
#
# Output: $STATE/logs/conformance.log (nodeagent) or conformance-kubelet.log.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
STATE=${NODEAGENT_STATE:-/var/lib/nodeagent-harness}
CACHE=${NODEAGENT_CACHE:-$HOME/.cache/nodeagent}
BIN=$CACHE/bin
AGENT=${AGENT:-nodeagent}
FOCUS=${FOCUS:-}
if [[ -z $FOCUS ]]; then
  LABEL=${LABEL-'NodeConformance && !Serial && !Disruptive && !Flaky'}
else
  LABEL=${LABEL:-}
fi
PROCS=${PROCS:-4}
TIMEOUT=${TIMEOUT:-2h}
DRY_RUN=${DRY_RUN:-0}
if [[ -n $FOCUS ]]; then RECORD=${RECORD:-0}; else RECORD=${RECORD:-1}; fi
DOC=$repo/docs/conformance.md
log() { echo "conformance: $*" >&2; }

case $AGENT in
nodeagent) out=$STATE/logs/conformance.log ;;
kubelet) out=$STATE/logs/conformance-kubelet.log ;;
*) log "AGENT must be nodeagent or kubelet, not $AGENT"; exit 2 ;;
esac
[[ $PROCS =~ ^[1-9][0-9]*$ ]] || { log "PROCS must be a positive number, not $PROCS"; exit 2; }
if [[ -z $LABEL && -z $FOCUS ]]; then
  log "LABEL and FOCUS are both empty: that would run the whole e2e suite"
  exit 2
fi

[[ $(id -u) == 0 ]] || { log "must run as root"; exit 1; }
# The agnhost image carries the host's curl, netcat-openbsd and dash, the
# glibc-dns-testing image its hostname and dash.
missing=()
command -v curl >/dev/null || missing+=(curl)
[[ -x /bin/nc.openbsd ]] || missing+=(netcat-openbsd)
[[ -x /bin/dash ]] || missing+=(dash)
[[ -x /bin/hostname ]] || missing+=(hostname)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

t0=$SECONDS
tools=(--with-conformance)
[[ $AGENT == kubelet ]] && tools+=(--with-kubelet)
"$here/build-tools.sh" "${tools[@]}"

# What ginkgo selects, and how: its own flags go to the ginkgo CLI, which
# hands them to each e2e.test process; the e2e flags go after "--".
gflags=(--no-color -v --timeout "$TIMEOUT")
[[ -n $LABEL ]] && gflags+=(--label-filter "$LABEL")
[[ -n $FOCUS ]] && gflags+=(--focus "$FOCUS")
e2eflags=(--provider skeleton --kubeconfig "$STATE/admin.kubeconfig" --kubectl-path "$BIN/kubectl")
mkdir -p "$STATE/logs"

if [[ $DRY_RUN == 1 ]]; then
  rc=0
  "$BIN/ginkgo" run --dry-run "${gflags[@]}" "$BIN/e2e.test" -- "${e2eflags[@]}" >"$STATE/logs/conformance-dry-run.log" 2>&1 || rc=$?
  grep -E '^Ran [0-9]+ of [0-9]+ Specs' "$STATE/logs/conformance-dry-run.log" || tail -n 20 "$STATE/logs/conformance-dry-run.log"
  log "dry run (label: ${LABEL:-none}, focus: ${FOCUS:-none}), exit $rc; spec list in $STATE/logs/conformance-dry-run.log"
  exit $rc
fi

# The images are rebuilt when what they are made of changes: the builder,
# busybox, the agnhost and nonewprivs binaries, agnhost's TLS pair, and the
# host programs the images copy (curl, nc, dash, bash, hostname) with the
# shared libraries ldd names for them, as the builder copies them
# (cluster.sh import-conformance-images loads every .tar of $images). The
# pair (/localhost.crt, /localhost.key in the image, as upstream's
# Dockerfile ADDs them) comes from the k8s.io/kubernetes module that
# build-tools.sh built agnhost from.
images=$CACHE/images/conformance
k8s_dir=$(cd "$here/tools" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)
porter=$k8s_dir/test/images/agnhost/porter
host_bins=(/usr/bin/curl /bin/nc.openbsd /bin/dash /bin/bash /bin/hostname)
mapfile -t host_libs < <(for b in "${host_bins[@]}"; do ldd "$b" | grep -oE '/[^ ]+'; done | sort -u)
want=$(cat "$here/images/main.go" /bin/busybox "$BIN/agnhost" "$BIN/nonewprivs" "$porter/localhost.crt" "$porter/localhost.key" "${host_bins[@]}" "${host_libs[@]}" | sha256sum | cut -c1-16)
image_files=(agnhost.tar nonewprivs.tar nonroot.tar glibc-dns-testing.tar)
rebuild=0
[[ -f $images/.stamp && "$(cat "$images/.stamp")" == "$want" ]] || rebuild=1
for f in "${image_files[@]}"; do [[ -f $images/$f ]] || rebuild=1; done
if ((rebuild)); then
  log "building the ${image_files[*]} images"
  mkdir -p "$images"
  (cd "$here/images" && go run . -agnhost "$BIN/agnhost" -porter "$porter" -nonewprivs "$BIN/nonewprivs" -nonroot -glibc-dns-testing -out "$images")
  echo "$want" >"$images/.stamp"
fi
log "build: $((SECONDS - t0)) s"

if [[ $AGENT == kubelet ]]; then
  # As hack/bench.sh: containerd runs the bridge CNI config (the kubelet has
  # no delegate), a fresh runtime and Node object, and the kubelet in
  # nodeagent's place, never beside it.
  export NETWORK_PLUGIN=runtime
  FRESH_CLUSTER=1 "$here/cluster.sh" up
  restore_nodeagent() {
    log "switching the node back to nodeagent"
    { "$here/cluster.sh" runtime-reset && "$here/cluster.sh" agent-start && "$here/cluster.sh" wait-node nodeagent; } ||
      log "could not restart nodeagent; make up starts the cluster afresh"
  }
  trap restore_nodeagent EXIT
  "$here/cluster.sh" runtime-reset
  "$here/cluster.sh" import-conformance-images
  "$here/cluster.sh" kubelet-start
  "$here/cluster.sh" wait-node kubelet
else
  FRESH_CLUSTER=1 "$here/cluster.sh" up
  "$here/cluster.sh" import-conformance-images
fi

t1=$SECONDS
started=$(date -u '+%Y-%m-%d %H:%M UTC')
rc=0
"$BIN/ginkgo" run --procs "$PROCS" "${gflags[@]}" "$BIN/e2e.test" -- "${e2eflags[@]}" >"$out" 2>&1 || rc=$?
wall=$((SECONDS - t1))
log "run ($AGENT, $PROCS processes): $((wall / 60)) min $((wall % 60)) s, exit $rc; output in $out"
# The ginkgo summary: the failures, "Ran N of M Specs" and the verdict.
if grep -q '^Summarizing [0-9]* Failure' "$out"; then
  sed -n '/^Summarizing [0-9]* Failure/,$p' "$out" | grep -v '^\s*$'
else
  grep -E '^Ran [0-9]+ of [0-9]+ Specs|^(SUCCESS|FAIL)!|^Test Suite (Passed|Failed)' "$out" || tail -n 20 "$out"
fi

# record_section writes this agent's section of docs/conformance.md from the
# ginkgo summary, keeping the rest of the file (the other agent's section).
record_section() {
  local ran total passed failed pending skipped selected secs commit section
  ran=$(sed -nE 's/^Ran ([0-9]+) of ([0-9]+) Specs in ([0-9.]+) seconds.*/\1/p' "$out" | tail -n1)
  total=$(sed -nE 's/^Ran ([0-9]+) of ([0-9]+) Specs in ([0-9.]+) seconds.*/\2/p' "$out" | tail -n1)
  secs=$(sed -nE 's/^Ran ([0-9]+) of ([0-9]+) Specs in ([0-9.]+) seconds.*/\3/p' "$out" | tail -n1)
  if [[ -z $ran ]]; then
    log "no ginkgo summary in $out; $DOC left as it was"
    return 0
  fi
  count() { grep -E '[0-9]+ Passed \|' "$out" | tail -n1 | grep -oE "[0-9]+ $1" | grep -oE '^[0-9]+' || echo 0; }
  passed=$(count Passed); failed=$(count Failed); pending=$(count Pending); skipped=$(count Skipped)
  selected=$(sed -nE 's/^Will run ([0-9]+) of [0-9]+ specs.*/\1/p' "$out" | head -n1)
  commit=$(git -c safe.directory="$repo" -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
  if [[ $commit != unknown && -n "$(git -c safe.directory="$repo" -C "$repo" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
    commit+=" (with uncommitted changes)"
  fi
  section=$(mktemp)
  {
    echo "<!-- conformance:$AGENT:begin -->"
    if [[ $AGENT == kubelet ]]; then echo "## The upstream kubelet v1.36.3"; else echo "## nodeagent"; fi
    echo
    echo "Recorded by \`hack/conformance.sh\` from the run of $started:"
    echo
    echo "- selection: label \`${LABEL:-none}\`, focus \`${FOCUS:-none}\`"
    echo "- $PROCS ginkgo processes, wall time $((wall / 60)) min $((wall % 60)) s (ginkgo: $secs s), commit $commit"
    echo "- network: \`NETWORK_PLUGIN=${NETWORK_PLUGIN:-$(cat "$STATE/network-plugin" 2>/dev/null || echo cni)}\`"
    echo
    echo "| Selected | Ran | Passed | Failed | Pending | Skipped | Specs in e2e.test |"
    echo "|---:|---:|---:|---:|---:|---:|---:|"
    echo "| ${selected:-?} | $ran | $passed | $failed | $pending | $skipped | $total |"
    echo
    echo "Skipped counts the specs the selection left out as well; Selected minus Ran"
    echo "is what the selected specs skipped themselves (the log has their reasons)."
    echo
    if ((failed == 0)); then
      echo "No spec failed."
    else
      echo "Failing specs ($failed):"
      echo
      echo "| Spec | Reason |"
      echo "|---|---|"
      # "  [FAIL] <spec text, [It] marking the failed node> [labels]" lines of
      # the summary; the label list and the node marker are dropped.
      sed -n '/^Summarizing [0-9]* Failure/,/^Ran [0-9]* of/p' "$out" |
        sed -nE 's/^ *\[(FAIL|TIMEDOUT|PANICKED!|INTERRUPTED|ABORTED)\] (.*)$/\1 \2/p' |
        sed -E -e 's/ \[[^]]*, [^]]*\]$//' -e 's/ \[It\] / /' |
        while read -r state name; do
          name=${name//|/\\|}
          if [[ $state == FAIL ]]; then echo "| $name | |"; else echo "| $name ($state) | |"; fi
        done
    fi
    echo "<!-- conformance:$AGENT:end -->"
  } >"$section"
  if [[ ! -f $DOC ]]; then
    printf '# Upstream conformance\n\nWritten by `make conformance` (hack/conformance.sh).\n\n' >"$DOC"
  fi
  if grep -q "^<!-- conformance:$AGENT:begin -->" "$DOC"; then
    awk -v begin="<!-- conformance:$AGENT:begin -->" -v end="<!-- conformance:$AGENT:end -->" -v file="$section" '
      $0 == begin { while ((getline line < file) > 0) print line; skip = 1; next }
      skip && $0 == end { skip = 0; next }
      !skip { print }' "$DOC" >"$DOC.tmp"
    mv "$DOC.tmp" "$DOC"
  else
    { echo; cat "$section"; } >>"$DOC"
  fi
  rm -f "$section"
  # The docs belong to the repository's owner, not to root.
  chown --reference="$repo" "$DOC" 2>/dev/null || true
  log "recorded in $DOC"
}
if [[ $RECORD == 1 ]]; then record_section; fi
exit $rc
