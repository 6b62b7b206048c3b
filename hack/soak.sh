#!/usr/bin/env bash
# make soak (issue 12): the fault, load and bad-input campaign of
# test/e2e/soak_*_test.go against a fresh local cluster, scaled to
# $SOAK_MINUTES (30; the tests' long counts are for 30 and scale with it),
# then every fuzz target for $FUZZ_TIME each (SOAK_MINUTES x 2 s, so 60 s by
# default; FUZZ_TIME=0 skips it). The results replace the part of docs/reliability.md between its
# "soak:begin" and "soak:end" markers (or $SOAK_OUT): one row per test, as
# the tests record them in $SOAK_REPORT, and the fuzzing table. Root; not
# part of make test, which runs the short slice (SOAK_MINUTES unset).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
[[ $(id -u) == 0 ]] || { echo "soak: must run as root" >&2; exit 1; }
SOAK_MINUTES=${SOAK_MINUTES:-30}
STATE=${NODEAGENT_STATE:-/var/lib/nodeagent-harness}
FUZZ_TIME=${FUZZ_TIME:-$((SOAK_MINUTES * 2))s}
OUT=${SOAK_OUT:-docs/reliability.md}
RUN=${SOAK_RUN:-^TestSoak}
rows=$(mktemp)
fuzz=$(mktemp)
trap 'rm -f "$rows" "$fuzz"' EXIT

start=$SECONDS
FRESH_CLUSTER=1 hack/cluster.sh up
set +e
SOAK_MINUTES=$SOAK_MINUTES SOAK_REPORT=$rows go test -tags e2e -count=1 -timeout "$((SOAK_MINUTES * 4 + 30))m" -v \
  -run "$RUN" ./test/e2e/ 2>&1 | tee "$STATE/logs/soak.log"
rc=${PIPESTATUS[0]}
hack/cluster.sh down
campaign=$((SECONDS - start))
frc=0
if [[ $FUZZ_TIME != 0 ]]; then
  FUZZ_REPORT=$fuzz FUZZ_TIME=$FUZZ_TIME hack/fuzz.sh
  frc=$?
else
  echo "(not run: FUZZ_TIME=0)" >"$fuzz"
fi
set -e

{
  echo "<!-- soak:begin (written by hack/soak.sh) -->"
  echo "Last run: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!docs' || echo ' with local changes'),"
  echo "SOAK_MINUTES=$SOAK_MINUTES, $(nproc) cores, campaign $((campaign / 60)) min $((campaign % 60)) s,"
  echo "go test exit $rc; fuzzing $FUZZ_TIME per target, exit $frc."
  echo
  echo "| test | fault or load | injected | checked | found | result | time |"
  echo "|---|---|---|---|---|---|---|"
  cat "$rows"
  echo
  echo "Fuzzing (hack/fuzz.sh):"
  echo
  cat "$fuzz"
  echo "<!-- soak:end -->"
} >"$rows.section"
if grep -q '<!-- soak:begin' "$OUT" 2>/dev/null; then
  awk -v f="$rows.section" '
    /<!-- soak:begin/ { while ((getline l < f) > 0) print l; skip = 1; next }
    /<!-- soak:end -->/ { skip = 0; next }
    !skip { print }' "$OUT" >"$OUT.new" && mv "$OUT.new" "$OUT"
else
  cat "$rows.section" >>"$OUT"
fi
rm -f "$rows.section"
echo "soak: results in $OUT (go test exit $rc, fuzzing exit $frc)"
exit $((rc != 0 || frc != 0))
