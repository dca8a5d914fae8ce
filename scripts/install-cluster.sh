#!/usr/bin/env bash
# Installs what the end-to-end tests need on a Debian 12 machine, idempotently:
#   etcd (Debian), kubectl, and kube-apiserver + kube-controller-manager 1.20.2 built from Debian's `kubernetes`
#   source package.
# The binaries are cached outside the repo (AKO_CACHE, default ~/.cache/ako) keyed by version,
# so the ~8 minute build happens once per machine.
set -euo pipefail

CACHE="${AKO_CACHE:-$HOME/.cache/ako}"
KUBE_VERSION=1.20.2
# r1: vendored modern-go/reflect2 replaced by Debian's 1.0.2. With v1.0.1 and Go >= 1.18 the API server
# segfaults (mapiterinit) when a mutating webhook returns a patch, in its audit annotation of the patch.
BUILD_REV=r1
BIN="$CACHE/kube-apiserver-$KUBE_VERSION-$BUILD_REV"
KCM="$CACHE/kube-controller-manager-$KUBE_VERSION-$BUILD_REV"
mkdir -p "$CACHE"

log() { printf '[install-cluster] %s\n' "$*" >&2; }

apt_updated=0
apt_update() {
  if [ "$apt_updated" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
}

need_pkgs=()
command -v etcd >/dev/null 2>&1 || need_pkgs+=(etcd-server)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
command -v kubectl >/dev/null 2>&1 || need_pkgs+=(kubernetes-client)
command -v wrk >/dev/null 2>&1 || need_pkgs+=(wrk)
if [ ! -x "$BIN" ] || [ ! -x "$KCM" ]; then
  [ -x /usr/lib/go-1.19/bin/go ] || need_pkgs+=(golang-1.19-go)
  command -v rsync >/dev/null 2>&1 || need_pkgs+=(rsync)
  [ -d /usr/share/gocode/src/github.com/modern-go/reflect2 ] || need_pkgs+=(golang-github-modern-go-reflect2-dev)
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "apt-get install ${need_pkgs[*]}"
  apt_update
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

if [ -x "$BIN" ] && [ -x "$KCM" ]; then
  log "kube-apiserver and kube-controller-manager $KUBE_VERSION cached in $CACHE"
  exit 0
fi

# Debian's source package carries the full Kubernetes tree with vendor/.
if [ ! -f /etc/apt/sources.list.d/debian-src.sources ]; then
  log "adding deb-src entries"
  sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
    > /etc/apt/sources.list.d/debian-src.sources
  apt_updated=0
fi
apt_update

SRC="$CACHE/src"
mkdir -p "$SRC"
cd "$SRC"
if ! ls kubernetes_*.orig.tar.gz >/dev/null 2>&1; then
  log "downloading the kubernetes source package"
  apt-get source --download-only kubernetes >/dev/null
fi
TREE="$SRC/kubernetes-$KUBE_VERSION"
if [ ! -d "$TREE" ]; then
  mkdir -p "$TREE.tmp"
  tar -xzf kubernetes_*.orig.tar.gz -C "$TREE.tmp" --strip-components=1
  mv "$TREE.tmp" "$TREE"
fi
cd "$TREE"
R2=vendor/github.com/modern-go/reflect2
rm -f "$R2"/*.go "$R2"/*.s
cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.go /usr/share/gocode/src/github.com/modern-go/reflect2/*.s "$R2"/
log "patched $R2 with Debian's reflect2 1.0.2"
rm -rf _output
WHAT=()
[ -x "$BIN" ] || WHAT+=(cmd/kube-apiserver)
[ -x "$KCM" ] || WHAT+=(cmd/kube-controller-manager)
log "building ${WHAT[*]} (about 4 minutes each on 2 cores)"
mkdir -p "$CACHE/gohome"
PATH=/usr/lib/go-1.19/bin:$PATH CGO_ENABLED=0 HOME="$CACHE/gohome" make WHAT="${WHAT[*]}" >"$CACHE/build.log" 2>&1 \
  || { tail -n 40 "$CACHE/build.log" >&2; exit 1; }
for pair in "kube-apiserver:$BIN" "kube-controller-manager:$KCM"; do
  name="${pair%%:*}" dest="${pair#*:}"
  if [ -f "_output/bin/$name" ]; then
    install -m 0755 "_output/bin/$name" "$dest.tmp"
    mv "$dest.tmp" "$dest"
    log "$name $KUBE_VERSION built: $dest"
  fi
done
rm -rf _output "$CACHE/gohome/.cache/go-build"
