#!/usr/bin/env bash
# Runs `ako run` (the webhook and the reconciler in one process) where a benchmark starts `ako controller`, for
# AKO_BENCH_CONTROLLER_WRAP: the same arguments, `controller` replaced by `run`, the webhook on loopback with dev
# certificates made once under $TMPDIR. Measures what the webhook's watches and index add to the controller.
#
#   AKO_BENCH_CONTROLLER_WRAP=benches/support/as-run.sh cargo bench --bench reconcile_l7
set -euo pipefail
bin="$1"; shift
certs="${TMPDIR:-/tmp}/ako-bench-run-certs"
if [ ! -f "$certs/tls.crt" ]; then
  "$bin" certs --out-dir "$certs" >/dev/null 2>&1
fi
args=()
for a in "$@"; do
  if [ "$a" = controller ]; then args+=(run); else args+=("$a"); fi
done
export AKO_WEBHOOK_LISTEN=127.0.0.1:0 AKO_TLS_CERT="$certs/tls.crt" AKO_TLS_KEY="$certs/tls.key"
exec "$bin" "${args[@]}"
