#!/usr/bin/env bash
# Local cluster whose node is nodeagent; "join-node" adds a second node that
# joins with kubeadm join and a bootstrap token.
#
#   hack/cluster.sh up     install, build, start everything (idempotent;
#                          FRESH_CLUSTER=1 starts from an empty etcd, as
#                          make test does: no object of an earlier run)
#   hack/cluster.sh down   stop everything and remove what the harness made
#   hack/cluster.sh agent-restart   restart only nodeagent
#   hack/cluster.sh import-conformance-images   load the images hack/conformance.sh built
#   hack/cluster.sh join-node        a second node joins with kubeadm join (JOIN_AGENT=nodeagent|kubelet)
#   hack/cluster.sh join-node-down   remove it again ("down" does too)
#   hack/cluster.sh join-agent-restart   restart only the second node's agent
#   hack/cluster.sh join-node-exec CMD...   run CMD in the second node's network and mount namespaces
#
# Everything lives under $STATE (default /var/lib/nodeagent-harness) and talks
# on loopback or on the harness's own addresses: the node's address is
# 192.0.2.10 (TEST-NET-1) on an empty bridge "nahost0"; pods get addresses
# from 198.18.0.0/24 on the bridge "nacni0". Image pulls go to a closed
# loopback port, so nothing leaves the machine.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
STATE=${NODEAGENT_STATE:-/var/lib/nodeagent-harness}
CACHE=${NODEAGENT_CACHE:-$HOME/.cache/nodeagent}
BIN=$CACHE/bin
# Where containerd finds the nodeagent-delegate plugin (before /usr/lib/cni).
CNI_BIN=$CACHE/cni-bin
NODE_NAME=${NODE_NAME:-nodeagent-node}
NODE_IP=192.0.2.10
HOST_BRIDGE=nahost0
POD_BRIDGE=nacni0
POD_SUBNET=198.18.0.0/24
SERVICE_CIDR=198.19.0.0/24
CGROUP_ROOT=/nodeagent
# The second node of "join-node": its own network namespace (veth into
# nahost0), mount namespace, containerd, cgroup root and pod subnet. In its
# mount namespace the paths of a kubeadm node (JOIN_PRIVATE) are private
# directories under $JOIN/fs, so that kubeadm and the agent use the paths
# they always use and nothing of the host's is touched.
JOIN=$STATE/join
JOIN_NODE=nodeagent-join
JOIN_IP=192.0.2.11
JOIN_NETNS=najoin
JOIN_VETH=najoin0 # the host's end; eth0 in the netns
JOIN_POD_BRIDGE=nacni1
JOIN_POD_SUBNET=198.18.1.0/24
JOIN_CGROUP_ROOT=/nodeagent-join
JOIN_SOCK=$JOIN/run/containerd.sock
JOIN_MNTNS=$JOIN/ns/mnt
JOIN_PRIVATE=(/etc/kubernetes /var/lib/kubelet /var/lib/nodeagent /var/log/pods /var/log/containers /var/lib/cni)
# Which agent the second node runs: nodeagent (default) or the upstream
# kubelet. "join-node" takes JOIN_AGENT from the environment; the other
# commands keep the agent of the last "join-node".
if [[ ${1:-} == join-node ]]; then
  JOIN_AGENT=${JOIN_AGENT:-nodeagent}
else
  JOIN_AGENT=${JOIN_AGENT:-$(cat "$JOIN/agent" 2>/dev/null || echo nodeagent)}
fi
PKI=$STATE/pki
LOGS=$STATE/logs
RUN=$STATE/run
CTRD_SOCK=$RUN/containerd.sock
# Who wires pod networks. "cni": nodeagent runs the bridge config, and
# containerd, which runs CNI inside RunPodSandbox whatever its config, gets a
# config whose only plugin (nodeagent-delegate, cmd/nodeagent-cni) hands the
# work to nodeagent over <root-dir>/cni.sock. "runtime": containerd runs the
# bridge config itself. The mode of the last "up" sticks for agent-restart.
# "up" takes NETWORK_PLUGIN from the environment (default cni); the other
# commands keep the mode of the last "up".
if [[ ${1:-} == up ]]; then
  NETWORK_PLUGIN=${NETWORK_PLUGIN:-cni}
else
  NETWORK_PLUGIN=${NETWORK_PLUGIN:-$(cat "$STATE/network-plugin" 2>/dev/null || echo cni)}
fi
if [[ $NETWORK_PLUGIN == cni ]]; then
  RUNTIME_CNI_DIR=$STATE/cni/runtime.d
else
  RUNTIME_CNI_DIR=$STATE/cni/net.d
fi

log() { echo "cluster: $*" >&2; }

install_packages() {
  local missing=()
  command -v runc >/dev/null || missing+=(runc)
  [[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
  command -v iptables >/dev/null || missing+=(iptables)
  dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v ip >/dev/null || missing+=(iproute2)
  command -v curl >/dev/null || missing+=(curl)
  command -v tmux >/dev/null || missing+=(tmux) # the e2e test of terminal resizing
  command -v dbus-daemon >/dev/null || missing+=(dbus-daemon) # nodeshutdown/logind's tests run a private bus
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

build() {
  "$here/build-tools.sh"
  mkdir -p "$BIN"
  # Commit and build date for `nodeagent --version`, as make build does; the
  # commit is "unknown" without git (hack/ldflags.sh never fails), and
  # -buildvcs=false keeps the go command from asking git too. The date is
  # the day only, so an unchanged tree still links from the build cache.
  local ldflags
  ldflags=$(BUILD_DATE=$(date -u +%Y-%m-%d) "$here/ldflags.sh")
  (cd "$repo" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$BIN/nodeagent" ./cmd/nodeagent)
  mkdir -p "$CNI_BIN"
  (cd "$repo" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -o "$CNI_BIN/nodeagent-delegate" ./cmd/nodeagent-cni)
  local want
  # The image builder, the pause program it builds into the pause image and
  # the busybox both images hold.
  want=$(cat "$here/images/main.go" "$here"/images/pause/*.go /bin/busybox | sha256sum | cut -c1-16)
  if [[ ! -f "$CACHE/images/.stamp" || "$(cat "$CACHE/images/.stamp")" != "$want" ]]; then
    log "building images"
    mkdir -p "$CACHE/images"
    (cd "$here/images" && go run . -out "$CACHE/images")
    echo "$want" >"$CACHE/images/.stamp"
  fi
}

stop_pid() { # name
  local f=$RUN/$1.pid
  [[ -f $f ]] || return 0
  local pid
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

down() (
  # Best effort: every step tolerates what is already gone.
  set +e +o pipefail
  log "stopping"
  join_down
  for c in metrics-server kubelet nodeagent kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_pid $c; done
  # Leftovers of a run whose pid files are gone.
  pkill -f "$BIN/(nodeagent|kubelet|kube-|etcd|metrics-server)" 2>/dev/null || true
  if [[ -S $CTRD_SOCK ]] && [[ -x $BIN/ctr ]]; then
    # Stop every pod container of the harness's runtime before the runtime.
    for t in $("$BIN/ctr" -a "$CTRD_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
      "$BIN/ctr" -a "$CTRD_SOCK" -n k8s.io tasks kill -s KILL "$t" >/dev/null 2>&1 || true
    done
    sleep 0.5
  fi
  stop_pid containerd
  pkill -f "containerd-shim-runc-v2 .*-address $CTRD_SOCK" 2>/dev/null || true
  pkill -9 -f "$BIN/containerd" 2>/dev/null || true
  # Mounts under the state dir (sandbox shm, rootfs, volumes) and pod netns.
  if [[ -d $STATE ]]; then
    grep -o " $STATE[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  fi
  grep -o " /var/lib/nodeagent[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  for ns in $(ip netns list 2>/dev/null | awk '/^cni-/{print $1}'); do ip netns delete "$ns" 2>/dev/null || true; done
  # Pod namespaces that stayed mounted below a bind of /run/netns over them
  # (see netns_dir; an older harness's): uncovered and dropped.
  if grep -qE ' /run/netns/cni-' /proc/self/mounts && [[ ! -e /run/netns/$JOIN_NETNS ]]; then
    while mountpoint -q /run/netns; do umount -l /run/netns || break; done
    grep -oE ' /run/netns/cni-[^ ]*' /proc/self/mounts | sort -u | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -f /run/netns/cni-* 2>/dev/null || true
  fi
  ip link delete "$POD_BRIDGE" 2>/dev/null || true
  ip link delete "$HOST_BRIDGE" 2>/dev/null || true
  ip route del "$JOIN_POD_SUBNET" 2>/dev/null || true
  ip route del "$JOIN_IP/32" 2>/dev/null || true
  iptables -t nat -S 2>/dev/null | awk '/^-A POSTROUTING .*198\.18\.0\.0\/24/ {$1="-D"; print}' | while read -r r; do eval "iptables -t nat $r" 2>/dev/null || true; done
  for c in $(iptables -t nat -S 2>/dev/null | awk '/^-N CNI-/{print $2}'); do iptables -t nat -F "$c" 2>/dev/null || true; done
  for c in $(iptables -t nat -S 2>/dev/null | awk '/^-N CNI-/{print $2}'); do iptables -t nat -X "$c" 2>/dev/null || true; done
  rm -rf "$STATE/containerd/state" "$RUN" "$STATE/manifests" "$STATE/cni/cache" /var/lib/cni/networks/nodeagent-harness
  for h in /sys/fs/cgroup/*/; do
    for r in "$CGROUP_ROOT" /kubelet-bench /bench-floor; do
      [[ -d $h$r ]] && find "$h$r" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
  done
)

network() {
  ip link show "$HOST_BRIDGE" >/dev/null 2>&1 || ip link add "$HOST_BRIDGE" type bridge
  ip addr replace "$NODE_IP/32" dev "$HOST_BRIDGE"
  ip link set "$HOST_BRIDGE" up
  sysctl -qw net.ipv4.ip_forward=1 || true
  join_routes_unreachable
}

# The second node's address and pod subnet are the harness's while it runs:
# "join-node" routes them to the node, and otherwise they are unreachable,
# never sent through the default route (the machine's own network may be
# 192.0.2.0/24: a Node object left behind must not make metrics-server or
# the apiserver look for 192.0.2.11 there).
join_routes_unreachable() {
  ip route replace unreachable "$JOIN_IP/32"
  ip route replace unreachable "$JOIN_POD_SUBNET"
}

mkcert() { # name cn org [sans [ca]]
  local name=$1 cn=$2 org=$3 sans=${4:-} ca=${5:-ca}
  [[ -f $PKI/$name.crt ]] && return 0
  local subj="/CN=$cn"
  [[ -n $org ]] && subj="/O=$org/CN=$cn"
  openssl genrsa -out "$PKI/$name.key" 2048 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  local ext="$PKI/$name.ext"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [[ -n $sans ]]; then
      echo "extendedKeyUsage=serverAuth,clientAuth"
      echo "subjectAltName=$sans"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } >"$ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
}

kubeconfig() { # file cert user [server]
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: ${4:-https://127.0.0.1:6443}
    certificate-authority: $PKI/ca.crt
users:
- name: $3
  user:
    client-certificate: $PKI/$2.crt
    client-key: $PKI/$2.key
contexts:
- name: local
  context: {cluster: local, user: $3}
current-context: local
EOF
}

mkca() { # name cn
  [[ -f $PKI/$1.crt ]] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/$1.key" -out "$PKI/$1.crt" \
    -days 3650 -subj "/CN=$2" 2>/dev/null
}

pki() {
  mkdir -p "$PKI"
  mkca ca nodeagent-harness-ca
  # The aggregator's client identity toward metrics-server (requestheader).
  mkca front-proxy-ca nodeagent-harness-front-proxy-ca
  mkcert front-proxy-client front-proxy-client "" "" front-proxy-ca
  [[ -f $PKI/sa.key ]] || { openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null; openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null; }
  mkcert apiserver kube-apiserver "" "IP:127.0.0.1,IP:$NODE_IP,IP:198.19.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  mkcert etcd etcd "" "IP:127.0.0.1,DNS:localhost"
  mkcert admin admin system:masters
  mkcert controller-manager system:kube-controller-manager ""
  mkcert scheduler system:kube-scheduler ""
  mkcert apiserver-kubelet-client kube-apiserver-kubelet-client kubeadm:cluster-admins
  mkcert node "system:node:$NODE_NAME" system:nodes
  mkcert node-serving "system:node:$NODE_NAME" system:nodes "IP:$NODE_IP,IP:127.0.0.1,DNS:$NODE_NAME,DNS:localhost"
  mkcert metrics-server metrics-server ""
  mkcert metrics-server-serving metrics-server "" "IP:$NODE_IP,DNS:metrics-server.kube-system.svc,DNS:metrics-server.kube-system,DNS:metrics-server"
  kubeconfig "$STATE/admin.kubeconfig" admin admin
  kubeconfig "$STATE/controller-manager.kubeconfig" controller-manager controller-manager
  kubeconfig "$STATE/scheduler.kubeconfig" scheduler scheduler
  kubeconfig "$STATE/node.kubeconfig" node "system:node:$NODE_NAME"
  kubeconfig "$STATE/metrics-server.kubeconfig" metrics-server metrics-server
  # kubeadm's: cluster-info hands its server (and CA) to joining nodes.
  kubeconfig "$STATE/kubeadm-admin.kubeconfig" admin admin "https://$NODE_IP:6443"
}

start() { # name args...
  local name=$1; shift
  stop_pid "$name"
  setsid nohup "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

wait_for() { # what timeout-seconds command...
  local what=$1 t=$2; shift 2
  # A deadline, not a count: each try may take a while itself.
  local end=$((SECONDS + t))
  while ((SECONDS < end)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  log "$what did not come up; last log lines:"
  tail -n 30 "$LOGS/$what.log" >&2 || true
  return 1
}

# containerd_config [base socket runtime-cni-dir pod-bridge pod-subnet delegate-socket]
# writes containerd's config, its registry hosts and the two CNI configs
# under base/containerd and base/cni; without arguments, node 1's.
containerd_config() {
  local base=${1:-$STATE} sock=${2:-$CTRD_SOCK} runtime_cni=${3:-$RUNTIME_CNI_DIR}
  local bridge=${4:-$POD_BRIDGE} subnet=${5:-$POD_SUBNET} delegate_sock=${6:-$STATE/root/cni.sock}
  mkdir -p "$base/containerd/certs.d/_default" "$base/cni/net.d"
  cat >"$base/containerd/certs.d/_default/hosts.toml" <<'EOF'
# Every pull goes to a closed loopback port: nothing leaves the machine.
server = "http://127.0.0.1:1"

[host."http://127.0.0.1:1"]
  capabilities = ["pull", "resolve"]
EOF
  # nodeagent runs the pod network (bridge + host-local + portmap); the
  # runtime's only network hands ADD/DEL/CHECK to nodeagent, and containerd
  # brings lo up itself (use_internal_loopback).
  mkdir -p "$base/cni/runtime.d" "$base/cni/cache"
  rm -f "$base/cni/runtime.d/99-loopback.conflist"
  cat >"$base/cni/runtime.d/10-nodeagent.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "nodeagent", "plugins": [{"type": "nodeagent-delegate", "socket": "$delegate_sock"}]}
EOF
  cat >"$base/cni/net.d/10-nodeagent-harness.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "nodeagent-harness",
  "plugins": [
    {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$subnet"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  cat >"$base/containerd/config.toml" <<EOF
version = 3
root = "$base/containerd/root"
state = "$base/containerd/state"

[grpc]
  address = "$sock"

[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["$CNI_BIN", "/usr/lib/cni"]
    conf_dir = "$runtime_cni"
    use_internal_loopback = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
    Root = "$base/containerd/runc"
  # A second handler for RuntimeClasses, named as the upstream e2e suite's
  # preconfigured one (e2eruntimeclass.PreconfiguredRuntimeClassHandler),
  # runc again, as the GCE node e2e setup makes it.
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.test-handler]
    runtime_type = "io.containerd.runc.v2"
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.test-handler.options]
    Root = "$base/containerd/runc"

[plugins.'io.containerd.cri.v1.images']
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "registry.k8s.io/pause:3.10.2"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "$base/containerd/certs.d"

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
EOF
}

agent_config() {
  cat >"$STATE/nodeagent.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
tlsCertFile: $PKI/node-serving.crt
tlsPrivateKeyFile: $PKI/node-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: Webhook
cgroupDriver: cgroupfs
cgroupRoot: $CGROUP_ROOT
failSwapOn: false
failCgroupV1: false
containerRuntimeEndpoint: unix://$CTRD_SOCK
clusterDomain: cluster.local
resolvConf: $STATE/resolv.conf
staticPodPath: $STATE/manifests
fileCheckFrequency: 1s
# As kind configures its nodes: the harness shares its disk with the build
# caches, and image garbage collection or disk-pressure eviction would
# remove images nothing here can pull again and taint the node. Tests that
# exercise them set their own thresholds (flags).
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: 100Mi, nodefs.available: "0%", nodefs.inodesFree: "0%", imagefs.available: "0%"}
EOF
  # The benchmark streams 1 GiB of logs: it sets a size that holds them.
  if [[ -n ${CONTAINER_LOG_MAX_SIZE:-} ]]; then
    echo "containerLogMaxSize: $CONTAINER_LOG_MAX_SIZE" >>"$STATE/nodeagent.yaml"
  fi
  mkdir -p "$STATE/manifests"
  # Pods resolve nothing outside the machine.
  printf 'nameserver 127.0.0.1\noptions ndots:1\n' >"$STATE/resolv.conf"
}

# Extra nodeagent flags that survive agent-restart (e2e tests switch
# options with it); "up" clears them.
AGENT_ARGS_FILE=$STATE/nodeagent.args

start_agent() {
  # Never beside the benchmark's kubelet: it kills sandboxes it does not know.
  if [[ -f $RUN/kubelet.pid ]] && kill -0 "$(cat "$RUN/kubelet.pid")" 2>/dev/null; then
    log "the upstream kubelet of the benchmark is running; not starting nodeagent beside it"
    return 1
  fi
  local extra=()
  [[ -f $AGENT_ARGS_FILE ]] && read -r -a extra <"$AGENT_ARGS_FILE"
  start nodeagent "$BIN/nodeagent" --kubeconfig "$STATE/node.kubeconfig" --config "$STATE/nodeagent.yaml" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --root-dir "$STATE/root" \
    --network-plugin "$NETWORK_PLUGIN" \
    --cni-conf-dir "$STATE/cni/net.d" --cni-bin-dir /usr/lib/cni --cni-cache-dir "$STATE/cni/cache" \
    -v "${NODEAGENT_V:-2}" "${extra[@]}"
}

# metrics-server runs on the host at the node's address and scrapes the
# node's /metrics/resource as its client certificate's user (RBAC in
# hack/metrics-server/metrics-server.yaml); the aggregator reaches it through
# the EndpointSlice of its selectorless Service.
start_metrics_server() {
  sed -e "s|@CA_BUNDLE@|$(base64 -w0 "$PKI/ca.crt")|" -e "s|@NODE_IP@|$NODE_IP|" \
    "$here/metrics-server/metrics-server.yaml" | "$BIN/kubectl" --kubeconfig "$STATE/admin.kubeconfig" apply -f - >/dev/null
  start metrics-server "$BIN/metrics-server" --kubeconfig "$STATE/metrics-server.kubeconfig" \
    --authentication-kubeconfig "$STATE/metrics-server.kubeconfig" --authorization-kubeconfig "$STATE/metrics-server.kubeconfig" \
    --bind-address "$NODE_IP" --secure-port 4443 \
    --tls-cert-file "$PKI/metrics-server-serving.crt" --tls-private-key-file "$PKI/metrics-server-serving.key" \
    --kubelet-preferred-address-types InternalIP --kubelet-certificate-authority "$PKI/ca.crt" \
    --kubelet-use-node-status-port --metric-resolution 15s
  wait_for metrics-server 60 "$BIN/kubectl" --kubeconfig "$STATE/admin.kubeconfig" get --raw /apis/metrics.k8s.io/v1beta1
}

# The upstream kubelet, for the side-by-side benchmark only. It never runs
# beside nodeagent: it kills sandboxes it does not know.
start_kubelet() {
  local root=/kubelet-bench
  for h in /sys/fs/cgroup/*/; do [[ $h == */unified/ ]] || mkdir -p "$h$root"; done
  sed -e "s|^cgroupRoot: .*|cgroupRoot: $root|" -e '/^staticPodPath/d' -e '/^fileCheckFrequency/d' \
    "$STATE/nodeagent.yaml" >"$STATE/kubelet.yaml"
  start kubelet "$BIN/kubelet" --kubeconfig "$STATE/node.kubeconfig" --config "$STATE/kubelet.yaml" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --root-dir "$STATE/kubelet-root" -v 1
}

# reset_runtime gives the next agent a fresh containerd with the same
# config: every pod of the previous one is gone.
reset_runtime() (
  set +o pipefail
  stop_pid nodeagent
  stop_pid kubelet
  if [[ -S $CTRD_SOCK ]]; then
    for t in $("$BIN/ctr" -a "$CTRD_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
      "$BIN/ctr" -a "$CTRD_SOCK" -n k8s.io tasks kill -s KILL "$t" >/dev/null 2>&1 || true
    done
    sleep 1
  fi
  stop_pid containerd
  pkill -f "containerd-shim-runc-v2 .*-address $CTRD_SOCK" 2>/dev/null || true
  grep -o " $STATE/containerd[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  for ns in $(ip netns list 2>/dev/null | awk '/^cni-/{print $1}'); do ip netns delete "$ns" 2>/dev/null || true; done
  rm -rf "$STATE/containerd/root" "$STATE/containerd/state" /var/lib/cni/networks/nodeagent-harness "$STATE/cni/cache"
  PATH=$BIN:$PATH start containerd "$BIN/containerd" --config "$STATE/containerd/config.toml"
  wait_for containerd 30 "$BIN/ctr" -a "$CTRD_SOCK" version
  for f in pause busybox; do
    "$BIN/ctr" -a "$CTRD_SOCK" -n k8s.io images import "$CACHE/images/$f.tar" >/dev/null
  done
  "$BIN/kubectl" --kubeconfig "$STATE/admin.kubeconfig" delete node "$NODE_NAME" --ignore-not-found >/dev/null
)

# What "kubeadm init" puts in a cluster for nodes that join it with a
# bootstrap token, made by kubeadm's own phases against the running
# apiserver (about a second): the cluster-info ConfigMap in kube-public (the
# server https://$NODE_IP:6443 and the CA; the controller-manager's
# bootstrapsigner signs it for each token), the RBAC bindings of the
# bootstrappers (CSR create, nodeclient auto-approval) and of the nodes
# (selfnodeclient renewals), and the kubeadm-config and kubelet-config
# ConfigMaps. kubelet-config is the KubeletConfiguration of joining nodes:
# kubeadm's defaults (rotateCertificates, webhook authentication and
# authorization, the client CA /etc/kubernetes/pki/ca.crt, healthz on
# 127.0.0.1:10248) and what these machines need: cgroupfs, no swap or cgroup
# v1 refusal, a cgroup root other than node 1's, and the serving certificate
# join-node provisions (the apiserver checks the node's serving certificate
# against the cluster CA: --kubelet-certificate-authority).
kubeadm_init_phases() {
  cat >"$STATE/kubeadm.yaml" <<EOF
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
# The bootstrap-token phase always makes a token; this one is never used
# (join-node makes its own) and soon gone.
bootstrapTokens:
- description: made by hack/cluster.sh up, unused
  ttl: 1m0s
localAPIEndpoint:
  advertiseAddress: $NODE_IP
  bindPort: 6443
nodeRegistration:
  name: $NODE_NAME
  criSocket: unix://$CTRD_SOCK
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
clusterName: nodeagent-harness
# Never a label such as stable-1, which kubeadm would look up on the internet.
kubernetesVersion: $("$BIN/kubeadm" version -o short)
controlPlaneEndpoint: $NODE_IP:6443
networking:
  serviceSubnet: $SERVICE_CIDR
  podSubnet: 198.18.0.0/16
  dnsDomain: cluster.local
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: $JOIN_CGROUP_ROOT
failSwapOn: false
failCgroupV1: false
rotateCertificates: true
resolvConf: $STATE/resolv.conf
tlsCertFile: /var/lib/kubelet/pki/kubelet.crt
tlsPrivateKeyFile: /var/lib/kubelet/pki/kubelet.key
volumePluginDir: /var/lib/kubelet/volume-plugins
EOF
  local k=(--kubeconfig "$STATE/kubeadm-admin.kubeconfig" --config "$STATE/kubeadm.yaml") phase
  for phase in "bootstrap-token --skip-token-print" "upload-config all"; do
    # shellcheck disable=SC2086 # the phase and its flag
    if ! "$BIN/kubeadm" init phase $phase "${k[@]}" >>"$LOGS/kubeadm.log" 2>&1; then
      log "kubeadm init phase $phase failed; last log lines:"
      tail -n 20 "$LOGS/kubeadm.log" >&2
      return 1
    fi
  done
}

# The second node ("join-node") joins as on a machine of its own: kubeadm
# join with a bootstrap token and the CA's hash, and the agent started with
# exactly the files kubeadm writes, as kubeadm's systemd drop-in starts the
# kubelet: --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf
# --kubeconfig=/etc/kubernetes/kubelet.conf --config=/var/lib/kubelet/config.yaml
# $KUBELET_KUBEADM_ARGS (/var/lib/kubelet/kubeadm-flags.env)
# $KUBELET_EXTRA_ARGS (/etc/default/kubelet, here $JOIN/default-kubelet).
# Without systemd, kubeadm's "systemctl restart kubelet" only warns; the
# harness starts the agent once kubeadm has written its files, and kubeadm
# then waits for the agent's healthz and the TLS bootstrap (kubelet.conf).
in_join() { nsenter --net="/run/netns/$JOIN_NETNS" --mount="$JOIN_MNTNS" -- "$@"; }

# Exit code 3: the second node cannot be made here (the e2e test skips).
join_unavailable() { log "join-node unavailable: $*"; exit 3; }

join_agent_bin() {
  case $JOIN_AGENT in
    nodeagent) echo "$BIN/nodeagent" ;;
    kubelet) echo "$BIN/kubelet" ;;
    *) log "JOIN_AGENT is nodeagent or kubelet, not $JOIN_AGENT"; exit 2 ;;
  esac
}

start_join_agent() {
  local bin kubeadm_args extra_args args
  bin=$(join_agent_bin)
  kubeadm_args=$(sed -n 's/^KUBELET_KUBEADM_ARGS="\(.*\)"$/\1/p' "$JOIN/fs/var/lib/kubelet/kubeadm-flags.env")
  extra_args=$(sed -n 's/^KUBELET_EXTRA_ARGS="\(.*\)"$/\1/p' "$JOIN/default-kubelet")
  read -r -a args <<<"$kubeadm_args $extra_args"
  start join-agent nsenter --net="/run/netns/$JOIN_NETNS" --mount="$JOIN_MNTNS" -- "$bin" \
    --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf \
    --config=/var/lib/kubelet/config.yaml "${args[@]}"
}

join_node() {
  [[ $(id -u) == 0 ]] || join_unavailable "must run as root"
  { command -v nsenter && command -v unshare; } >/dev/null || join_unavailable "nsenter or unshare (util-linux) missing"
  local bin kc=(--kubeconfig "$STATE/admin.kubeconfig")
  bin=$(join_agent_bin)
  [[ $JOIN_AGENT != kubelet ]] || "$here/build-tools.sh" --with-kubelet
  [[ -x $BIN/kubeadm ]] || join_unavailable "$BIN/kubeadm is not built (hack/cluster.sh up builds it)"
  [[ -x $bin ]] || join_unavailable "$bin is not built"
  "$BIN/kubectl" "${kc[@]}" get --raw /readyz >/dev/null 2>&1 || { log "the cluster is not up (hack/cluster.sh up)"; return 1; }
  "$BIN/kubectl" "${kc[@]}" -n kube-public get configmap cluster-info >/dev/null 2>&1 ||
    join_unavailable "no cluster-info ConfigMap: the cluster was started by a hack/cluster.sh up without join support"
  join_down
  mkdir -p "$JOIN/run" "$JOIN/ns" "$LOGS" "$RUN"
  echo "$JOIN_AGENT" >"$JOIN/agent"

  # Network: eth0 in the netns at $JOIN_IP, its peer on the host's bridge;
  # no default route, so nothing the node or its pods send leaves the machine.
  ip netns add "$JOIN_NETNS"
  ip link add "$JOIN_VETH" type veth peer name eth0 netns "$JOIN_NETNS"
  ip link set "$JOIN_VETH" master "$HOST_BRIDGE" up
  ip -n "$JOIN_NETNS" addr add "$JOIN_IP/24" dev eth0
  ip -n "$JOIN_NETNS" link set eth0 up
  ip -n "$JOIN_NETNS" link set lo up
  # The host reaches the node, and its pods, on the bridge (replies to a pod
  # that talks to the host included): see join_routes_unreachable.
  ip route replace "$JOIN_IP/32" dev "$HOST_BRIDGE" src "$NODE_IP"
  ip route replace "$JOIN_POD_SUBNET" via "$JOIN_IP" dev "$HOST_BRIDGE"

  # Mount namespace, kept by a bind mount of its nsfs file (on a private
  # mount, as unshare wants): the kubeadm node's paths are private there.
  # Copies of node 1's mounts (pod volumes, rootfs, netns) are dropped.
  mount --bind "$JOIN/ns" "$JOIN/ns"
  mount --make-private "$JOIN/ns"
  touch "$JOIN_MNTNS"
  unshare --mount="$JOIN_MNTNS" --propagation slave true
  local p
  : >"$JOIN/created-mountpoints"
  for p in "${JOIN_PRIVATE[@]}"; do
    mkdir -p "$JOIN/fs$p"
    if [[ ! -d $p ]]; then
      mkdir "$p" # an empty mount point: the only change on the host
      echo "$p" >>"$JOIN/created-mountpoints"
    fi
    nsenter --mount="$JOIN_MNTNS" -- mount --bind "$JOIN/fs$p" "$p"
  done
  # A copy that went meanwhile (node 1 removed the pod) is gone already.
  nsenter --mount="$JOIN_MNTNS" -- sh -c "grep -oE ' ($STATE/|/run/netns/)[^ ]*' /proc/self/mounts | grep -v ' $JOIN' |
    sort -r | while read -r m; do umount -l \"\$m\" 2>/dev/null || true; done"

  for h in /sys/fs/cgroup/*/; do [[ $h == */unified/ ]] || mkdir -p "$h$JOIN_CGROUP_ROOT"; done
  # The node's serving certificate, where the kubelet-config ConfigMap says.
  mkcert join-node-serving "system:node:$JOIN_NODE" system:nodes "IP:$JOIN_IP,DNS:$JOIN_NODE"
  install -d -m 700 "$JOIN/fs/var/lib/kubelet/pki"
  mkdir -p "$JOIN/fs/etc/kubernetes/manifests" # as kubeadm's packages ship it
  install -m 644 "$PKI/join-node-serving.crt" "$JOIN/fs/var/lib/kubelet/pki/kubelet.crt"
  install -m 600 "$PKI/join-node-serving.key" "$JOIN/fs/var/lib/kubelet/pki/kubelet.key"
  # /etc/default/kubelet: the node's address (with no default route there is
  # nothing to find it by), a taint that keeps the scheduler's pods on node 1
  # (pods that name the node still run: the agent only checks NoExecute),
  # and nodeagent's CNI paths (node 1's plugins, this node's config).
  local default_kubelet="--node-ip=$JOIN_IP --register-with-taints=nodeagent.io/join-node=true:NoSchedule --v=${JOIN_V:-2}"
  [[ $JOIN_AGENT != nodeagent ]] || default_kubelet+=" --cni-conf-dir=$JOIN/cni/net.d --cni-bin-dir=/usr/lib/cni"
  echo "KUBELET_EXTRA_ARGS=\"$default_kubelet\"" >"$JOIN/default-kubelet"

  # containerd: node 1's config with this node's paths, pod bridge and
  # subnet. With nodeagent, its CNI config delegates to the agent's
  # <root-dir>/cni.sock (nodeagent's default root dir); with the kubelet, it
  # runs the bridge config itself. Its pod netns are kept under its state dir
  # (not in /run/netns beside node 1's), and NRI (one socket path per
  # machine) is off.
  local runtime_cni=$JOIN/cni/net.d
  [[ $JOIN_AGENT != nodeagent ]] || runtime_cni=$JOIN/cni/runtime.d
  containerd_config "$JOIN" "$JOIN_SOCK" "$runtime_cni" "$JOIN_POD_BRIDGE" "$JOIN_POD_SUBNET" /var/lib/nodeagent/cni.sock
  sed -i 's/^  restrict_oom_score_adj = true$/&\n  netns_mounts_under_state_dir = true/' "$JOIN/containerd/config.toml"
  printf "\n[plugins.'io.containerd.nri.v1.nri']\n  disable = true\n" >>"$JOIN/containerd/config.toml"
  PATH=$BIN:$PATH start join-containerd nsenter --net="/run/netns/$JOIN_NETNS" --mount="$JOIN_MNTNS" -- \
    "$BIN/containerd" --config "$JOIN/containerd/config.toml"
  wait_for join-containerd 30 "$BIN/ctr" -a "$JOIN_SOCK" version
  for f in pause busybox; do
    in_join "$BIN/ctr" -a "$JOIN_SOCK" -n k8s.io images import --no-unpack=false "$CACHE/images/$f.tar" >/dev/null
  done

  # The token and the CA's hash, as "kubeadm token create --print-join-command" gives them.
  local token id hash
  "$BIN/kubectl" "${kc[@]}" delete node "$JOIN_NODE" --ignore-not-found >/dev/null
  token=$("$BIN/kubeadm" token create --kubeconfig "$STATE/admin.kubeconfig" --ttl 15m --description "hack/cluster.sh join-node" 2>>"$LOGS/kubeadm.log")
  id=${token%%.*}
  echo "$id" >"$JOIN/token-id"
  hash=$(openssl x509 -pubkey -noout -in "$PKI/ca.crt" | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1)
  # kubeadm's discovery retries every 5 s until the bootstrapsigner has
  # signed cluster-info for the new token: wait for that here instead.
  wait_for kube-controller-manager 30 sh -c "'$BIN/kubectl' --kubeconfig '$STATE/admin.kubeconfig' -n kube-public \
    get configmap cluster-info -o jsonpath='{.data.jws-kubeconfig-$id}' | grep -q ."

  log "kubeadm join as $JOIN_NODE at $JOIN_IP ($JOIN_AGENT)"
  timeout 150 nsenter --net="/run/netns/$JOIN_NETNS" --mount="$JOIN_MNTNS" -- "$BIN/kubeadm" join "$NODE_IP:6443" \
    --token "$token" --discovery-token-ca-cert-hash "sha256:$hash" --node-name "$JOIN_NODE" \
    --cri-socket "unix://$JOIN_SOCK" --ignore-preflight-errors=all -v 1 >>"$LOGS/join-kubeadm.log" 2>&1 &
  local kubeadm_pid=$! flags=$JOIN/fs/var/lib/kubelet/kubeadm-flags.env
  until [[ -s $flags ]]; do
    if ! kill -0 "$kubeadm_pid" 2>/dev/null; then
      log "kubeadm join ended before it wrote $flags; last log lines:"
      tail -n 30 "$LOGS/join-kubeadm.log" >&2
      return 1
    fi
    sleep 0.1
  done
  start_join_agent
  local agent_pid
  agent_pid=$(cat "$RUN/join-agent.pid")
  while kill -0 "$kubeadm_pid" 2>/dev/null; do
    if ! kill -0 "$agent_pid" 2>/dev/null; then
      log "$JOIN_AGENT exited while kubeadm join waited for it; last lines of $LOGS/join-agent.log:"
      tail -n 30 "$LOGS/join-agent.log" >&2
      kill "$kubeadm_pid" 2>/dev/null
      return 1
    fi
    sleep 0.2
  done
  if ! wait "$kubeadm_pid"; then
    log "kubeadm join failed; last log lines:"
    tail -n 30 "$LOGS/join-kubeadm.log" >&2
    log "last lines of $LOGS/join-agent.log:"
    tail -n 30 "$LOGS/join-agent.log" >&2
    return 1
  fi
  wait_for join-agent 60 "$BIN/kubectl" "${kc[@]}" wait --for=condition=Ready "node/$JOIN_NODE" --timeout=1s
  log "node $JOIN_NODE is Ready ($JOIN_AGENT; hack/cluster.sh join-node-exec CMD runs CMD in its namespaces)"
}

# join_down removes the second node and whatever an earlier run of it left:
# processes (by pid file, network and mount namespace, cgroup), mounts, the
# netns with its veth (and its iptables rules), the host route, the mount
# points it made, its state, and its Node object and token.
join_down() (
  set +e +o pipefail
  stop_pid join-agent
  # An agent whose pid file is gone: it would register the Node again.
  local pid
  for pid in $(ip netns pids "$JOIN_NETNS" 2>/dev/null); do
    case $(readlink "/proc/$pid/exe") in
      "$BIN/nodeagent"* | "$BIN/kubelet"*)
        kill -9 "$pid" 2>/dev/null
        for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done ;;
    esac
  done
  # The Node object goes next, while the host's routes to the node still
  # exist: nothing (metrics-server, kubectl logs) may then look for
  # $JOIN_IP through the default route.
  local kc=(--kubeconfig "$STATE/admin.kubeconfig" --request-timeout=5s)
  if [[ -x $BIN/kubectl && -f $STATE/admin.kubeconfig ]] && "$BIN/kubectl" "${kc[@]}" get --raw /readyz >/dev/null 2>&1; then
    "$BIN/kubectl" "${kc[@]}" delete node "$JOIN_NODE" --ignore-not-found >/dev/null 2>&1
    [[ -f $JOIN/token-id ]] &&
      "$BIN/kubectl" "${kc[@]}" -n kube-system delete secret "bootstrap-token-$(cat "$JOIN/token-id")" --ignore-not-found >/dev/null 2>&1
  fi
  if [[ -S $JOIN_SOCK ]]; then
    for t in $("$BIN/ctr" -a "$JOIN_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
      "$BIN/ctr" -a "$JOIN_SOCK" -n k8s.io tasks kill -s KILL "$t" >/dev/null 2>&1
    done
  fi
  # Its state goes too: no need to wait for a clean shutdown.
  [[ -f $RUN/join-containerd.pid ]] && kill -9 "$(cat "$RUN/join-containerd.pid")" 2>/dev/null
  rm -f "$RUN/join-containerd.pid"
  local ns=
  for pid in $(ip netns pids "$JOIN_NETNS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
  mountpoint -q "$JOIN_MNTNS" 2>/dev/null && ns="mnt:[$(stat -L -c %i "$JOIN_MNTNS")]"
  if [[ -n $ns ]]; then
    for pid in /proc/[0-9]*; do
      [[ $(readlink "$pid/ns/mnt" 2>/dev/null) == "$ns" ]] && kill -9 "${pid#/proc/}" 2>/dev/null
    done
  fi
  pkill -9 -f "containerd-shim-runc-v2 .*-address $JOIN_SOCK" 2>/dev/null
  local left
  for _ in $(seq 50); do # the pods' processes
    left=$(find /sys/fs/cgroup/*"$JOIN_CGROUP_ROOT" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
    [[ -z $left ]] && break
    echo "$left" | xargs -r kill -9 2>/dev/null
    sleep 0.1
  done
  grep -o " ${JOIN}[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  ip netns delete "$JOIN_NETNS" 2>/dev/null
  ip link delete "$JOIN_VETH" 2>/dev/null
  if ip link show "$HOST_BRIDGE" >/dev/null 2>&1; then
    join_routes_unreachable
  else
    ip route del "$JOIN_POD_SUBNET" 2>/dev/null
    ip route del "$JOIN_IP/32" 2>/dev/null
  fi
  for h in /sys/fs/cgroup/*/; do
    [[ -d $h$JOIN_CGROUP_ROOT ]] && find "$h$JOIN_CGROUP_ROOT" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  if [[ -f $JOIN/created-mountpoints ]]; then
    while read -r p; do rmdir "$p" 2>/dev/null; done <"$JOIN/created-mountpoints"
  fi
  rm -rf --one-file-system "$JOIN"
  true
)

# The apiserver (its own function: the soak stops and starts it).
start_apiserver() {
  start kube-apiserver "$BIN/kube-apiserver" --etcd-servers http://127.0.0.1:2379 \
    --bind-address 0.0.0.0 --secure-port 6443 --advertise-address "$NODE_IP" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP,Hostname \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction --enable-bootstrap-token-auth \
    --allow-privileged=true --profiling=false --audit-log-path "$LOGS/audit.log" \
    --audit-policy-file "$here/audit-policy.yaml" --audit-log-maxsize 200 \
    --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-extra-headers-prefix X-Remote-Extra- --requestheader-group-headers X-Remote-Group \
    --requestheader-username-headers X-Remote-User \
    --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
    --enable-aggregator-routing=true
}

# netns_dir makes /run/netns a shared mount point of its own, as `ip netns
# add` does on first use, now, before any pod's network namespace is
# mounted there: made later (the join node's `ip netns add`), its recursive
# bind copies the pods' namespaces, and the copies below stay mounted when
# the runtime removes them (busy, never freed).
netns_dir() {
  mkdir -p /run/netns
  mountpoint -q /run/netns || mount --bind /run/netns /run/netns
  mount --make-shared /run/netns
}

up() {
  [[ $(id -u) == 0 ]] || { log "must run as root"; exit 1; }
  install_packages
  build
  down
  # The apiserver's objects outlive "down" (a cluster of "make up" keeps its
  # pods); the tests start from none, whatever an earlier run left.
  if [[ ${FRESH_CLUSTER:-0} == 1 ]]; then rm -rf "$STATE/etcd"; fi
  mkdir -p "$STATE" "$LOGS" "$RUN"
  netns_dir
  echo "$NETWORK_PLUGIN" >"$STATE/network-plugin"
  rm -f "$AGENT_ARGS_FILE"
  network
  pki
  containerd_config
  agent_config
  for h in /sys/fs/cgroup/*/; do [[ $h == */unified/ ]] || mkdir -p "$h$CGROUP_ROOT"; done

  start etcd "$BIN/etcd" --name harness --data-dir "$STATE/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster harness=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 \
    --quota-backend-bytes 4294967296 --unsafe-no-fsync
  PATH=$BIN:$PATH start containerd "$BIN/containerd" --config "$STATE/containerd/config.toml"
  wait_for etcd 30 curl -sf http://127.0.0.1:2381/health
  start_apiserver
  wait_for kube-apiserver 120 "$BIN/kubectl" --kubeconfig "$STATE/admin.kubeconfig" get --raw /readyz
  # A second node left in etcd by an earlier run is gone with its network.
  "$BIN/kubectl" --kubeconfig "$STATE/admin.kubeconfig" delete node "$JOIN_NODE" --ignore-not-found >/dev/null
  # Certificates issued through CSRs (the joined node's) live 2m30s, which
  # with the signer's 5-minute backdating makes the node renew its client
  # certificate 15 to 80 s after it got it: the join test sees a renewal.
  # Nothing else of the harness gets its certificates through CSRs.
  start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig "$STATE/controller-manager.kubeconfig" \
    --cluster-signing-duration 2m30s \
    --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10257 \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --use-service-account-credentials --leader-elect=false --service-cluster-ip-range "$SERVICE_CIDR" \
    --controllers '*,bootstrapsigner,tokencleaner'
  start kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig "$STATE/scheduler.kubeconfig" --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10259 --leader-elect=false
  # The apiserver's kubelet client may use the node API (exec, logs, ...).
  "$BIN/kubectl" --kubeconfig "$STATE/admin.kubeconfig" create clusterrolebinding apiserver-kubelet-api \
    --clusterrole system:kubelet-api-admin --user kube-apiserver-kubelet-client >/dev/null 2>&1 || true
  wait_for containerd 30 "$BIN/ctr" -a "$CTRD_SOCK" version
  for f in pause busybox; do
    "$BIN/ctr" -a "$CTRD_SOCK" -n k8s.io images import --no-unpack=false "$CACHE/images/$f.tar" >/dev/null
  done
  start_agent
  wait_for nodeagent 60 "$BIN/kubectl" --kubeconfig "$STATE/admin.kubeconfig" wait --for=condition=Ready "node/$NODE_NAME" --timeout=1s
  # The default service account appears once the controller-manager runs.
  wait_for kube-controller-manager 60 "$BIN/kubectl" --kubeconfig "$STATE/admin.kubeconfig" get serviceaccount default
  kubeadm_init_phases
  start_metrics_server
  cat <<EOF

nodeagent cluster is up (node $NODE_NAME at $NODE_IP). Use it with:

  export KUBECONFIG=$STATE/admin.kubeconfig PATH=$BIN:\$PATH
  kubectl get nodes
  kubectl run hello --image=registry.k8s.io/e2e-test-images/busybox:1.37.0-1 --image-pull-policy=IfNotPresent -- sh -c 'echo hello; sleep 3600'

Logs are in $LOGS; stop it with: make down
EOF
}

case ${1:-} in
  up) up ;;
  down) down ;;
  build) install_packages; build ;;
  packages) install_packages ;;
  agent-restart) stop_pid nodeagent; start_agent ;;
  agent-kill) [[ -f $RUN/nodeagent.pid ]] && kill -9 "$(cat "$RUN/nodeagent.pid")" 2>/dev/null; rm -f "$RUN/nodeagent.pid" ;;
  agent-start) start_agent ;;
  agent-stop) stop_pid nodeagent ;;
  containerd-stop) stop_pid containerd ;;
  containerd-kill) [[ -f $RUN/containerd.pid ]] && kill -9 "$(cat "$RUN/containerd.pid")" 2>/dev/null; rm -f "$RUN/containerd.pid" ;;
  apiserver-stop) stop_pid kube-apiserver ;;
  apiserver-start)
    start_apiserver
    wait_for kube-apiserver 120 "$BIN/kubectl" --kubeconfig "$STATE/admin.kubeconfig" get --raw /readyz ;;
  metrics-server-restart) start_metrics_server ;;
  containerd-start) PATH=$BIN:$PATH start containerd "$BIN/containerd" --config "$STATE/containerd/config.toml" ;;
  runtime-reset) reset_runtime ;;
  kubelet-start) start_kubelet ;;
  import-conformance-images)
    for f in "$CACHE"/images/conformance/*.tar; do
      "$BIN/ctr" -a "$CTRD_SOCK" -n k8s.io images import --no-unpack=false "$f" >/dev/null
    done ;;
  wait-node) wait_for "${2:-nodeagent}" 120 "$BIN/kubectl" --kubeconfig "$STATE/admin.kubeconfig" wait --for=condition=Ready "node/$NODE_NAME" --timeout=1s ;;
  join-node) join_node ;;
  join-node-down) join_down ;;
  join-agent-restart) stop_pid join-agent; start_join_agent ;;
  join-node-exec) shift; in_join "$@" ;;
  *) echo "usage: $0 up|down|build|packages|agent-restart|agent-kill|agent-start|agent-stop|metrics-server-restart|containerd-stop|containerd-kill|containerd-start|apiserver-stop|apiserver-start|runtime-reset|kubelet-start|wait-node|import-conformance-images|join-node|join-node-down|join-agent-restart|join-node-exec CMD..." >&2; exit 2 ;;
esac
