#!/usr/bin/env bash
# cargo-deny over the workspace (deny.toml): advisories, licences, bans and duplicate versions, sources.
#
# The test machines cannot reach GitHub, so advisories come from the snapshot of rustsec/advisory-db checked in
# under deny/advisory-db (its date is in deny/advisory-db/SOURCE; scripts/refresh-advisories.sh renews it where
# GitHub is reachable). cargo-deny opens its database as a git repository, so this script lays the snapshot out
# as one under the cache, re-made whenever the snapshot changes, and runs offline.
#
# AKO_CACHE (default ~/.cache/ako) keeps the cargo-deny build (one `cargo install`, about 5 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${AKO_CACHE:-$HOME/.cache/ako}"
DENY_VERSION=0.20.2
DENY="$CACHE/cargo-deny-$DENY_VERSION/bin/cargo-deny"
log() { printf '[deny] %s\n' "$*" >&2; }

if [ ! -x "$DENY" ]; then
  log "cargo install cargo-deny $DENY_VERSION (once per machine)"
  cargo install --quiet --locked cargo-deny --version "$DENY_VERSION" --root "$CACHE/cargo-deny-$DENY_VERSION"
fi

# The directory cargo-deny derives from the default db-url (https://github.com/rustsec/advisory-db).
export AKO_ADVISORY_DB_ROOT="$CACHE/advisory-dbs"
DB="$AKO_ADVISORY_DB_ROOT/advisory-db-3157b0e258782691"
STAMP="$(cd deny/advisory-db && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$DB/.ako-stamp" 2>/dev/null || true)" != "$STAMP" ]; then
  log "laying out the advisory snapshot as a git repository in $DB"
  rm -rf "$DB"
  mkdir -p "$DB"
  cp -r deny/advisory-db/. "$DB/"
  (
    cd "$DB"
    git init -q -b main
    git add -A
    # The commit's time is the snapshot's date, so cargo-deny's staleness check reads the real age.
    when="$(sed -n 's/.*(\([0-9-]*\)).*/\1/p' SOURCE | head -1)"
    GIT_AUTHOR_DATE="${when}T00:00:00Z" GIT_COMMITTER_DATE="${when}T00:00:00Z" \
      git -c user.name=ako -c user.email=ako@localhost commit -q -m "advisory-db snapshot $when"
  )
  echo "$STAMP" > "$DB/.ako-stamp"
fi

# Every package of the lock file for every target (cargo-deny reads the whole graph; a build fetches only its
# own target's), so the check itself can run offline.
cargo fetch --quiet
"$DENY" --log-level warn --offline check --hide-inclusion-graph "$@"
