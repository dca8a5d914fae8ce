#!/usr/bin/env bash
# The fault-injection suite, long form (RELIABILITY.md): the same test as the short one run by scripts/test.sh,
# with more steps and the seeds given. Writes one JSON report per seed into DIR (default target/faults).
#
#   scripts/faults.sh [STEPS] [SEED...]        # e.g. scripts/faults.sh 400 11 23 42
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-400}"; shift || true
seeds=("$@"); [ ${#seeds[@]} -gt 0 ] || seeds=(11 23 42)
out="${AKO_FAULT_DIR:-target/faults}"
mkdir -p "$out"
scripts/install-cluster.sh >/dev/null
export AKO_LOG_FORMAT=text
status=0
for seed in "${seeds[@]}"; do
  echo "== seed $seed, $steps steps"
  if AKO_FAULT_SEED="$seed" AKO_FAULT_STEPS="$steps" AKO_FAULT_REPORT="$out/seed-$seed.json" \
     cargo test --quiet --test e2e_faults -- --nocapture >"$out/seed-$seed.log" 2>&1; then
    echo "   passed"
  else
    echo "   FAILED (see $out/seed-$seed.log)"; status=1
  fi
  python3 - "$out/seed-$seed.json" <<'PY' || true
import json, sys
r = json.load(open(sys.argv[1]))
ops = sum(r["operations"].values())
f = r["faults"]
print(f"   {r['steps']} steps, {ops} changes, {r['avi_requests']} Avi requests ({r['avi_deletes']} deletes); "
      f"violations {len(r['violations'])}; converged {r['converge_ms']/1000:.1f} s after faults stopped; "
      f"max {r['max_rps_while_failing']} refused requests/s ({r['max_all_rps_while_failing']} in all) while every write failed")
print("   faults: " + ", ".join(f"{k} {v}" for k, v in f.items() if k != "emulator_fired"))
print(f"   fired at the emulator: {json.dumps(f['emulator_fired'])}")
PY
done
exit $status
