#!/usr/bin/env bash
# Renews deny/advisory-db (the snapshot of rustsec/advisory-db that scripts/deny.sh checks against) from GitHub,
# on a machine that can reach it. Commit the result; the snapshot's date is in deny/advisory-db/SOURCE.
#
#   scripts/refresh-advisories.sh [path-to-an-existing-clone]
set -euo pipefail
cd "$(dirname "$0")/.."
src="${1:-}"
if [ -z "$src" ]; then
  src="$(mktemp -d)/advisory-db"
  git clone --quiet --depth 1 https://github.com/rustsec/advisory-db "$src"
fi
commit="$(git -C "$src" rev-parse HEAD)"
when="$(git -C "$src" show -s --format=%cs HEAD)"
rm -rf deny/advisory-db/crates
mkdir -p deny/advisory-db
git -C "$src" archive HEAD crates LICENSE.txt | tar -x -C deny/advisory-db
cat > deny/advisory-db/SOURCE <<SRC
rustsec/advisory-db @ $commit ($when), crates/ and LICENSE.txt (CC0-1.0).
A snapshot, because the test machines cannot reach GitHub: scripts/deny.sh turns it into the git repository
cargo-deny reads offline. Refresh with scripts/refresh-advisories.sh where GitHub is reachable.
SRC
echo "deny/advisory-db now at $commit ($when)"
