#!/usr/bin/env bash
# ako-core is the pure core: translation, planning, admission, host rules. Its dependency tree must not reach a
# runtime, a network or HTTP client, a Kubernetes client, a command-line parser or a TLS stack. Fails naming
# what it found.
set -euo pipefail
cd "$(dirname "$0")/.."
forbidden='^(tokio|mio|reqwest|hyper|hyper-util|kube-client|kube-runtime|kube|clap|rustls|ring|axum|tower|socket2|openssl)$'
found=$(cargo tree --quiet -p ako-core -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u \
  | grep -E "$forbidden" || true)
if [ -n "$found" ]; then
  echo "ako-core depends on I/O crates:" >&2
  echo "$found" >&2
  cargo tree -p ako-core -e normal -i "$(echo "$found" | head -1)" >&2 || true
  exit 1
fi
echo "ako-core: no I/O crate among $(cargo tree --quiet -p ako-core -e normal --prefix none --format '{p}' | sort -u | wc -l) dependencies"
