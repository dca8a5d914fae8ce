#!/usr/bin/env bash
# Starts a real control plane on loopback: etcd + kube-apiserver 1.20.2 (static token auth, RBAC), and with
# --controller-manager the kube-controller-manager 1.20.2 (endpoints, endpointslices, namespace deletion, garbage
# collection...; not the cloud `service` controller: ako is the LoadBalancer controller).
#
#   scripts/cluster.sh start DIR [--watch-pid PID] [--controller-manager]   # prints "KUBECONFIG=DIR/kubeconfig"
#   scripts/cluster.sh restart-apiserver DIR   # kill -9 kube-apiserver and start it again (same port, same etcd)
#   scripts/cluster.sh stop DIR
#
# AKO_APISERVER_EXTRA_ARGS adds flags to kube-apiserver (benchmarks widen --service-node-port-range).
# Ports are picked free at start. With --watch-pid, a watchdog stops the control plane when PID exits, so a
# crashed test run never leaves servers behind. Run scripts/install-cluster.sh first (idempotent).
set -euo pipefail

CACHE="${AKO_CACHE:-$HOME/.cache/ako}"
APISERVER="${AKO_KUBE_APISERVER:-$CACHE/kube-apiserver-1.20.2-r1}"
KCM="${AKO_KUBE_CONTROLLER_MANAGER:-$CACHE/kube-controller-manager-1.20.2-r1}"
cmd="${1:-}"; dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR [--watch-pid PID]" >&2; exit 2; }
shift 2
watch_pid=""
with_kcm=0
while [ $# -gt 0 ]; do
  case "$1" in
    --watch-pid) watch_pid="$2"; shift 2 ;;
    --controller-manager) with_kcm=1; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# SIGTERM, up to 5 s of grace, then SIGKILL.
kill_wait() {
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}

stop() {
  for f in "$dir"/watchdog.pid "$dir"/kube-controller-manager.pid "$dir"/kube-apiserver.pid "$dir"/etcd.pid; do
    [ -f "$f" ] || continue
    kill_wait "$(cat "$f")"
    rm -f "$f"
  done
}

# Starts kube-apiserver with the command line saved at start (same port and etcd), in the background.
launch_apiserver() {
  local -a cmdline
  read -r -a cmdline < "$dir/kube-apiserver.cmd"
  "${cmdline[@]}" >>"$dir/kube-apiserver.log" 2>&1 &
  echo $! > "$dir/kube-apiserver.pid"
}

wait_apiserver() {
  for _ in $(seq 1 120); do
    if ! kill -0 "$(cat "$dir/kube-apiserver.pid")" 2>/dev/null; then
      echo "kube-apiserver exited; last log lines:" >&2; tail -n 20 "$dir/kube-apiserver.log" >&2; return 1
    fi
    if KUBECONFIG="$dir/kubeconfig" kubectl get --raw /readyz >/dev/null 2>&1 \
       && KUBECONFIG="$dir/kubeconfig" kubectl get namespace default >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  echo "kube-apiserver not ready after 60 s; last log lines:" >&2
  tail -n 20 "$dir/kube-apiserver.log" >&2
  return 1
}

case "$cmd" in
  stop) stop; exit 0 ;;
  start) ;;
  restart-apiserver)
    dir=$(cd "$dir" && pwd)
    kill -9 "$(cat "$dir/kube-apiserver.pid")" 2>/dev/null || true
    sleep 0.2
    launch_apiserver
    # The watchdog of `start` knows the old process only: this one gets its own.
    if [ -f "$dir/watch.pid" ]; then
      watch_pid=$(cat "$dir/watch.pid"); new_pid=$(cat "$dir/kube-apiserver.pid")
      ( trap '' HUP; while kill -0 "$watch_pid" 2>/dev/null; do sleep 1; done; kill_wait "$new_pid" ) \
        </dev/null >/dev/null 2>&1 &
    fi
    wait_apiserver
    exit $? ;;
  *) echo "unknown command $cmd" >&2; exit 2 ;;
esac

[ -x "$APISERVER" ] || { echo "kube-apiserver not found at $APISERVER: run scripts/install-cluster.sh" >&2; exit 1; }
[ "$with_kcm" = 0 ] || [ -x "$KCM" ] \
  || { echo "kube-controller-manager not found at $KCM: run scripts/install-cluster.sh" >&2; exit 1; }
command -v etcd >/dev/null || { echo "etcd not installed: run scripts/install-cluster.sh" >&2; exit 1; }

mkdir -p "$dir/etcd" "$dir/certs"
dir=$(cd "$dir" && pwd)
etcd_port=$(free_port); peer_port=$(free_port); api_port=$(free_port)
[ -f "$dir/sa.key" ] || openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$token,admin,admin,system:masters" > "$dir/tokens.csv"

ETCD_UNSUPPORTED_ARCH="" etcd --data-dir "$dir/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "default=http://127.0.0.1:$peer_port" --name default \
  >"$dir/etcd.log" 2>&1 &
echo $! > "$dir/etcd.pid"

# The command line is saved so that restart-apiserver starts the same server (port, etcd, flags).
printf '%s ' "$APISERVER" --etcd-servers="http://127.0.0.1:$etcd_port" --secure-port="$api_port" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --cert-dir="$dir/certs" \
  --service-account-key-file="$dir/sa.pub" --service-account-signing-key-file="$dir/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc --token-auth-file="$dir/tokens.csv" \
  --authorization-mode=RBAC --service-cluster-ip-range=10.96.0.0/16 ${AKO_APISERVER_EXTRA_ARGS:-} \
  > "$dir/kube-apiserver.cmd"
echo >> "$dir/kube-apiserver.cmd"
launch_apiserver
[ -z "$watch_pid" ] || echo "$watch_pid" > "$dir/watch.pid"

cat > "$dir/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority: $dir/certs/apiserver.crt
users:
- name: admin
  user:
    token: $token
contexts:
- name: local
  context: {cluster: local, user: admin}
current-context: local
KC

# kubectl and ako verify the API server's self-signed serving certificate (written by the API server at start,
# its issuing CA included in the same file).
wait_apiserver || { stop; exit 1; }

if [ "$with_kcm" = 1 ]; then
  "$KCM" --kubeconfig="$dir/kubeconfig" --authentication-kubeconfig="$dir/kubeconfig" \
    --authorization-kubeconfig="$dir/kubeconfig" --service-account-private-key-file="$dir/sa.key" \
    --root-ca-file="$dir/certs/apiserver.crt" --use-service-account-credentials=false --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port=0 --port=0 \
    --controllers='*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-service,-route,-attachdetach,-persistentvolume-binder,-persistentvolume-expander,-ttl,-bootstrapsigner,-tokencleaner,-csrsigning,-csrapproving,-csrcleaner' \
    >"$dir/kube-controller-manager.log" 2>&1 &
  echo $! > "$dir/kube-controller-manager.pid"
  # Ready when the default ServiceAccount exists (the serviceaccount controller made it after its caches synced).
  for _ in $(seq 1 120); do
    if ! kill -0 "$(cat "$dir/kube-controller-manager.pid")" 2>/dev/null; then
      echo "kube-controller-manager exited; last log lines:" >&2; tail -n 20 "$dir/kube-controller-manager.log" >&2
      stop; exit 1
    fi
    KUBECONFIG="$dir/kubeconfig" kubectl -n default get serviceaccount default >/dev/null 2>&1 && kcm_ready=1 && break
    sleep 0.5
  done
  if [ "${kcm_ready:-0}" != 1 ]; then
    echo "kube-controller-manager not ready after 60 s; last log lines:" >&2
    tail -n 20 "$dir/kube-controller-manager.log" >&2
    stop
    exit 1
  fi
fi

if [ -n "$watch_pid" ]; then
  # The pids are held here, not read back from files: the caller may delete DIR as it exits.
  api_pid=$(cat "$dir/kube-apiserver.pid"); etcd_pid=$(cat "$dir/etcd.pid")
  kcm_pid=$(cat "$dir/kube-controller-manager.pid" 2>/dev/null || true)
  ( trap '' HUP
    while kill -0 "$watch_pid" 2>/dev/null; do sleep 1; done
    [ -z "$kcm_pid" ] || kill_wait "$kcm_pid"
    kill_wait "$api_pid"; kill_wait "$etcd_pid"
  ) </dev/null >/dev/null 2>&1 &
  echo $! > "$dir/watchdog.pid"
fi
echo "KUBECONFIG=$dir/kubeconfig"
