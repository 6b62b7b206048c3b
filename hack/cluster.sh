#!/usr/bin/env bash
# Local single-node cluster whose only node is nodeagent.
#
#   hack/cluster.sh up     install, build, start everything (idempotent)
#   hack/cluster.sh down   stop everything and remove what the harness made
#   hack/cluster.sh agent-restart   restart only nodeagent
#   hack/cluster.sh import-conformance-images   load the images hack/conformance.sh built
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
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

build() {
  "$here/build-tools.sh"
  mkdir -p "$BIN"
  (cd "$repo" && CGO_ENABLED=0 go build -trimpath -o "$BIN/nodeagent" ./cmd/nodeagent)
  mkdir -p "$CNI_BIN"
  (cd "$repo" && CGO_ENABLED=0 go build -trimpath -o "$CNI_BIN/nodeagent-delegate" ./cmd/nodeagent-cni)
  local want
  want=$(cat "$here/images/main.go" /bin/busybox | sha256sum | cut -c1-16)
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
  ip link delete "$POD_BRIDGE" 2>/dev/null || true
  ip link delete "$HOST_BRIDGE" 2>/dev/null || true
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

kubeconfig() { # file cert user
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:6443
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
}

start() { # name args...
  local name=$1; shift
  stop_pid "$name"
  setsid nohup "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

wait_for() { # what timeout-seconds command...
  local what=$1 t=$2; shift 2
  for _ in $(seq $((t * 5))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  log "$what did not come up; last log lines:"
  tail -n 30 "$LOGS/$what.log" >&2 || true
  return 1
}

containerd_config() {
  mkdir -p "$STATE/containerd/certs.d/_default" "$STATE/cni/net.d"
  cat >"$STATE/containerd/certs.d/_default/hosts.toml" <<'EOF'
# Every pull goes to a closed loopback port: nothing leaves the machine.
server = "http://127.0.0.1:1"

[host."http://127.0.0.1:1"]
  capabilities = ["pull", "resolve"]
EOF
  # nodeagent runs the pod network (bridge + host-local + portmap); the
  # runtime's only network hands ADD/DEL/CHECK to nodeagent, and containerd
  # brings lo up itself (use_internal_loopback).
  mkdir -p "$STATE/cni/runtime.d" "$STATE/cni/cache"
  rm -f "$STATE/cni/runtime.d/99-loopback.conflist"
  cat >"$STATE/cni/runtime.d/10-nodeagent.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "nodeagent", "plugins": [{"type": "nodeagent-delegate", "socket": "$STATE/root/cni.sock"}]}
EOF
  cat >"$STATE/cni/net.d/10-nodeagent-harness.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "nodeagent-harness",
  "plugins": [
    {"type": "bridge", "bridge": "$POD_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_SUBNET"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  cat >"$STATE/containerd/config.toml" <<EOF
version = 3
root = "$STATE/containerd/root"
state = "$STATE/containerd/state"

[grpc]
  address = "$CTRD_SOCK"

[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["$CNI_BIN", "/usr/lib/cni"]
    conf_dir = "$RUNTIME_CNI_DIR"
    use_internal_loopback = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
    Root = "$STATE/containerd/runc"

[plugins.'io.containerd.cri.v1.images']
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "registry.k8s.io/pause:3.10.2"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "$STATE/containerd/certs.d"

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

up() {
  [[ $(id -u) == 0 ]] || { log "must run as root"; exit 1; }
  install_packages
  build
  down
  mkdir -p "$STATE" "$LOGS" "$RUN"
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
  start kube-apiserver "$BIN/kube-apiserver" --etcd-servers http://127.0.0.1:2379 \
    --bind-address 0.0.0.0 --secure-port 6443 --advertise-address "$NODE_IP" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP,Hostname \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --allow-privileged=true --profiling=false --audit-log-path "$LOGS/audit.log" \
    --audit-policy-file "$here/audit-policy.yaml" --audit-log-maxsize 200 \
    --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-extra-headers-prefix X-Remote-Extra- --requestheader-group-headers X-Remote-Group \
    --requestheader-username-headers X-Remote-User \
    --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
    --enable-aggregator-routing=true
  wait_for kube-apiserver 120 "$BIN/kubectl" --kubeconfig "$STATE/admin.kubeconfig" get --raw /readyz
  start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10257 \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --use-service-account-credentials --leader-elect=false --service-cluster-ip-range "$SERVICE_CIDR"
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
  agent-restart) stop_pid nodeagent; start_agent ;;
  agent-kill) [[ -f $RUN/nodeagent.pid ]] && kill -9 "$(cat "$RUN/nodeagent.pid")" 2>/dev/null; rm -f "$RUN/nodeagent.pid" ;;
  agent-start) start_agent ;;
  containerd-stop) stop_pid containerd ;;
  metrics-server-restart) start_metrics_server ;;
  containerd-start) PATH=$BIN:$PATH start containerd "$BIN/containerd" --config "$STATE/containerd/config.toml" ;;
  runtime-reset) reset_runtime ;;
  kubelet-start) start_kubelet ;;
  import-conformance-images)
    for f in "$CACHE"/images/conformance/*.tar; do
      "$BIN/ctr" -a "$CTRD_SOCK" -n k8s.io images import --no-unpack=false "$f" >/dev/null
    done ;;
  wait-node) wait_for "${2:-nodeagent}" 120 "$BIN/kubectl" --kubeconfig "$STATE/admin.kubeconfig" wait --for=condition=Ready "node/$NODE_NAME" --timeout=1s ;;
  *) echo "usage: $0 up|down|build|agent-restart|agent-kill|agent-start|metrics-server-restart|containerd-stop|containerd-start|runtime-reset|kubelet-start|wait-node|import-conformance-images" >&2; exit 2 ;;
esac
