#!/usr/bin/env bash
# All benchmarks, one command; results are printed and kept in bench-results/ (not committed).
# Run on an idle machine: every benchmark here shares 2 cores between load generator and server.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-cluster.sh
mkdir -p bench-results
stamp=$(date -u +%Y%m%dT%H%M%SZ)
run() {
  local name=$1; shift
  echo "== $name"
  env "$@" cargo bench --quiet --bench "$name" 2>&1 | grep -vE '^\s+(Compiling|Running|Finished)' | tee "bench-results/$stamp-$name${1:+-${1%%=*}}.txt"
}
run admission
run webhook_http
run webhook_hostile
run e2e_creates AKO_E2E_PAIRS=4
run emulator
run emulator EMULATOR=process
cargo build --quiet --release --bin ako   # reconcile_l4 and _l7 run the release ako binary as their own process
run reconcile_l4
run reconcile_l7
run l7_part
run dataplane
run failing_controller
run capacity   # about 35 minutes: 10k, 25k and 50k objects (BENCHMARKS.md section 9)
