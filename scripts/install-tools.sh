#!/usr/bin/env bash
# Installs the clients the emulator's traffic tests use, if missing (Debian 12): `dig` (bind9-dnsutils) for the
# DNS tests and Chromium for the analytics page's headless screenshot test. Idempotent.
set -euo pipefail

log() { printf '[install-tools] %s\n' "$*" >&2; }

need=()
command -v dig >/dev/null 2>&1 || need+=(bind9-dnsutils)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ "${#need[@]}" -eq 0 ]; then
  exit 0
fi
log "installing ${need[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
