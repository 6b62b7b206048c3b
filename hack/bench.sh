#!/usr/bin/env bash
# Side-by-side benchmark of nodeagent and the upstream kubelet v1.36.3 on
# the same machine, harness and containerd, in one run (make bench). Each
# agent gets a fresh containerd with the same config and the same node
# name; they never run at the same time. Results go to docs/benchmarks.md.
set -euo pipefail
export NETWORK_PLUGIN=runtime # both agents get the same network path: containerd runs CNI
export CONTAINER_LOG_MAX_SIZE=2Gi # a 1 GiB log stream is not rotated under its follower
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
STATE=${NODEAGENT_STATE:-/var/lib/nodeagent-harness}
REPS=${BENCH_REPS:-2}
out=$STATE/bench
cd "$repo"

"$here/build-tools.sh" --with-kubelet
NETWORK_PLUGIN=runtime FRESH_CLUSTER=1 "$here/cluster.sh" up
go build -o "$out/bench" ./hack/bench 2>/dev/null || { mkdir -p "$out"; go build -o "$out/bench" ./hack/bench; }
rm -f "$out"/*.json
# Pods of an earlier, interrupted run would count against maxPods.
kubectl=$HOME/.cache/nodeagent/bin/kubectl
for ns in $("$kubectl" --kubeconfig "$STATE/admin.kubeconfig" get ns -o name | grep '^namespace/bench-' || true); do
  "$kubectl" --kubeconfig "$STATE/admin.kubeconfig" delete "$ns" --wait=false >/dev/null
done

# The runtime floor, with no agent at all.
"$here/cluster.sh" runtime-reset
"$out/bench" floor -out "$out/floor.json"

for rep in $(seq "$REPS"); do
  for agent in nodeagent kubelet; do
    echo "bench: $agent, run $rep" >&2
    "$here/cluster.sh" runtime-reset
    if [[ $agent == nodeagent ]]; then "$here/cluster.sh" agent-start; else "$here/cluster.sh" kubelet-start; fi
    "$here/cluster.sh" wait-node "$agent"
    sleep 5 # let registration settle before the idle window
    "$out/bench" run -agent "$agent" -pid-file "$STATE/run/$agent.pid" -out "$out/$agent-$rep.json"
  done
done

"$here/cluster.sh" runtime-reset
"$here/cluster.sh" agent-start
machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB, kernel $(uname -r), containerd v2.2.1"
"$out/bench" report -out docs/benchmarks.md -svg docs/benchmark-start-latency.svg -machine "$machine" "$out"/*.json
