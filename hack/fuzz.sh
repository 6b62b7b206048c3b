#!/usr/bin/env bash
# Runs every Go fuzz target of the module (each `func FuzzX(f *testing.F)`
# in a *_test.go file, found by grep), one after the other, each for
# $FUZZ_TIME (60s) with $FUZZ_PARALLEL (1) workers, new inputs minimized
# for at most $FUZZ_MINIMIZE_TIME (10s): one line per target
# ("target package result elapsed"), then a summary. An argument is an
# extended regular expression the target's name must match. Exits non-zero
# if a target failed; go test has then saved the failing input under the
# package's testdata/fuzz/<target>/, and its output is printed. A target
# ended only by Go's own deadline race (see below) is "deadline", not a
# failure. FUZZ_TIME may also be a count of inputs ("10000x"). With
# $FUZZ_REPORT set, a markdown table of the results is written there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
FUZZ_TIME=${FUZZ_TIME:-60s}
FUZZ_PARALLEL=${FUZZ_PARALLEL:-1}
# go test minimizes each new interesting input for up to 60s, which a slow
# target's whole minute can go to.
FUZZ_MINIMIZE_TIME=${FUZZ_MINIMIZE_TIME:-10s}
FUZZ_REPORT=${FUZZ_REPORT:-}
match=${1:-.}
cd "$repo"

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# "<target> ./<package dir>", sorted by package then target.
mapfile -t targets < <(
  grep -rEo --include='*_test.go' --exclude-dir=vendor --exclude-dir=testdata \
    '^func Fuzz[A-Za-z0-9_]*\([A-Za-z_][A-Za-z0-9_]* \*testing\.F\)' . |
    sed -E 's#^(.*)/[^/]+:func (Fuzz[A-Za-z0-9_]*)\(.*#\2 \1#' |
    awk -v m="$match" '$1 ~ m' | sort -k2,2 -k1,1 -u
)
if ((${#targets[@]} == 0)); then
  echo "fuzz: no fuzz target matches '$match'" >&2
  exit 1
fi

rows=()
passed=0 failed=0 skipped=0 deadlines=0
failures=()
for t in "${targets[@]}"; do
  read -r name pkg <<<"$t"
  log="$logs/$name.log"
  start=$(date +%s)
  result=ok
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZ_TIME" -fuzzminimizetime "$FUZZ_MINIMIZE_TIME" -parallel "$FUZZ_PARALLEL" -v "$pkg" >"$log" 2>&1 || result=FAIL
  elapsed=$(($(date +%s) - start))s
  # A target behind a build tag the default build does not set.
  if [[ $result == ok ]] && grep -q 'matches no fuzz tests' "$log"; then
    result=skip
  fi
  # Go before 1.27 may fail a target with a bare "context deadline
  # exceeded" when -fuzztime ends while a worker is busy (a race in its
  # coordinator, go.dev/issue/75804): no input failed and none was saved.
  if [[ $result == FAIL ]] && grep -qE '^\s+context deadline exceeded$' "$log" &&
    ! grep -qE 'Failing input written to|^\s*--- FAIL: Fuzz[^ ]*/' "$log"; then
    result=deadline
  fi
  # go test -v prints "fuzz: elapsed: 1m0s, execs: 123456 (2057/sec), ...".
  progress=$(grep -E '^fuzz: elapsed: [^,]+, execs: [0-9]+' "$log" | tail -n 1 || true)
  execs=$(sed -E 's/^fuzz: elapsed: [^,]+, execs: ([0-9]+).*/\1/' <<<"$progress")
  fuzzed=$(sed -E 's/^fuzz: elapsed: ([^,]+),.*/\1/' <<<"$progress")
  # Time may run out while the cached corpus is still being replayed.
  if [[ -z $progress ]]; then
    baseline=$(grep -oE 'gathering baseline coverage: [0-9]+/[0-9]+' "$log" | tail -n 1 | cut -d' ' -f4 || true)
    [[ -z $baseline ]] || execs="0 (baseline $baseline)"
  fi
  case $result in
    ok) passed=$((passed + 1)) ;;
    skip) skipped=$((skipped + 1)) ;;
    deadline) deadlines=$((deadlines + 1)) ;;
    FAIL)
      failed=$((failed + 1))
      failures+=("$name $pkg")
      echo "--- $name ($pkg) failed:" >&2
      grep -vE '^fuzz: elapsed:' "$log" | tail -n 60 >&2
      ;;
  esac
  printf '%-32s %-20s %-4s %s\n' "$name" "$pkg" "$result" "$elapsed"
  rows+=("| $name | $pkg | ${fuzzed:-$elapsed} | ${execs:--} | $result |")
done

summary="targets: ${#targets[@]}, $FUZZ_TIME each with -parallel $FUZZ_PARALLEL: $passed ok, $failed failed, $skipped skipped"
if ((deadlines > 0)); then
  summary+=", $deadlines ended by Go's fuzztime deadline race (no failing input)"
fi
echo "fuzz: $summary"
for f in "${failures[@]}"; do
  echo "fuzz: FAILED $f" >&2
done

if [[ -n $FUZZ_REPORT ]]; then
  {
    echo "Fuzzing on $(date -u +%Y-%m-%d) at $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(go env GOVERSION): $summary."
    echo
    echo "| target | package | time | executions | result |"
    echo "|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
  } >"$FUZZ_REPORT"
fi
((failed == 0))
