#!/usr/bin/env bash
# make install: nodeagent as a host service, at the kubelet's paths.
#
#   $BINDIR/nodeagent                      replaced (an upgrade is what install is for)
#   $CNI_BIN_DIR/nodeagent-delegate        replaced (cmd/nodeagent-cni: the plugin containerd runs)
#   $UNITDIR/nodeagent.service             kept if it exists and differs, unless FORCE=1
#   $KUBELET_DIR/config.yaml               kept if it exists and differs, unless FORCE=1
#
# Everything goes under $DESTDIR (staging; empty for the real thing). A file
# FORCE=1 replaces is kept beside as <file>.bak. Nothing is started, enabled
# or reloaded: the next steps are printed. Needs root only for the real
# paths.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
DESTDIR=${DESTDIR:-}
BINDIR=${BINDIR:-/usr/bin}
CNI_BIN_DIR=${CNI_BIN_DIR:-/opt/cni/bin}
UNITDIR=${UNITDIR:-/etc/systemd/system}
KUBELET_DIR=${KUBELET_DIR:-/var/lib/kubelet}
OUT_DIR=${OUT_DIR:-bin}
FORCE=${FORCE:-}
[[ $OUT_DIR == /* ]] || OUT_DIR=$repo/$OUT_DIR

log() { echo "install: $*" >&2; }

for d in BINDIR CNI_BIN_DIR UNITDIR KUBELET_DIR; do
  [[ ${!d} == /* ]] || { log "$d must be an absolute path, got '${!d}'"; exit 1; }
done
for b in nodeagent nodeagent-cni; do
  [[ -x $OUT_DIR/$b ]] || { log "$OUT_DIR/$b is missing: run make build first"; exit 1; }
done

# install_replace SRC DST MODE: binaries.
install_replace() {
  install -D -m "$3" "$1" "$DESTDIR$2"
  log "$2"
}

# install_kept SRC DST MODE: a file an administrator (or kubeadm) may have
# written: never replaced unless FORCE=1.
install_kept() {
  local src=$1 dst=$DESTDIR$2
  if [[ -e $dst || -L $dst ]]; then
    if cmp -s "$src" "$dst"; then
      log "$2 unchanged"
      return
    fi
    if [[ $FORCE != 1 ]]; then
      log "$2 exists and differs: kept (FORCE=1 replaces it)"
      return
    fi
    cp -a "$dst" "$dst.bak"
    log "$2 replaced (FORCE=1), the old one is $2.bak"
  else
    log "$2"
  fi
  install -D -m "$3" "$src" "$dst"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

install_replace "$OUT_DIR/nodeagent" "$BINDIR/nodeagent" 0755
install_replace "$OUT_DIR/nodeagent-cni" "$CNI_BIN_DIR/nodeagent-delegate" 0755

# The unit names the binary where it was installed.
sed "s|/usr/bin/nodeagent|$BINDIR/nodeagent|g" "$repo/deploy/systemd/nodeagent.service" >"$tmp/nodeagent.service"
install_kept "$tmp/nodeagent.service" "$UNITDIR/nodeagent.service" 0644

# The kubelet's root dir is 0700 when kubeadm or the kubelet made it; only
# a missing one is created.
[[ -d $DESTDIR$KUBELET_DIR ]] || install -d -m 0700 "$DESTDIR$KUBELET_DIR"
install_kept "$repo/deploy/systemd/config.yaml" "$KUBELET_DIR/config.yaml" 0644

cat >&2 <<EOF
install: done. Nothing was started. To run nodeagent instead of the kubelet:
  systemctl disable --now kubelet; systemctl mask kubelet   # the two must never share a runtime
  systemctl daemon-reload && systemctl enable --now nodeagent
EOF
