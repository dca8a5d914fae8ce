#!/usr/bin/env bash
# All tests: formatting, lints, unit, integration and end-to-end (real etcd + kube-apiserver 1.20.2 + kubectl).
# Installs what it needs on a fresh Debian machine (apt packages, kube-apiserver built once into ~/.cache/ako).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-cluster.sh
scripts/install-tools.sh   # dig and Chromium for the emulator DNS and analytics page tests
export AKO_LOG_FORMAT=text
scripts/install-helm.sh >/dev/null
echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== the pure core reaches no I/O crate (crates/ako-core/Cargo.toml)"
scripts/check-core-purity.sh
echo "== cargo deny: advisories (checked-in snapshot), licences, bans and duplicates, sources (deny.toml)"
scripts/deny.sh
echo "== the production build: without the emulator"
cargo build --quiet --no-default-features --bin ako
echo "== cargo test"
cargo test --workspace --lib --bins --tests --no-fail-fast
echo "== scripts/demo.sh --exit (the one-command demo, its checks must pass)"
AKO_DEMO_DIR="$(mktemp -d)/demo" scripts/demo.sh --exit
