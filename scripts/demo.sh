#!/usr/bin/env bash
# One-command demo on the embedded defaults: a real local kube-apiserver (etcd + kube-apiserver 1.20.2), the
# embedded Avi controller emulator, and the ako webhook registered with the API server. Applies the lab's demo
# Service and Ingress (admitted; the legacy class annotation is rewritten) and an Ingress whose host is outside
# the delegated subdomain (denied), then keeps everything running until Ctrl-C (or exits with --exit).
set -euo pipefail
cd "$(dirname "$0")/.."
exit_after=0; [ "${1:-}" = "--exit" ] && exit_after=1

scripts/install-cluster.sh
cargo build --quiet
AKO=target/debug/ako
DEMO=${AKO_DEMO_DIR:-/tmp/ako-demo}
rm -rf "$DEMO"; mkdir -p "$DEMO"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "starting etcd + kube-apiserver 1.20.2 on loopback"
scripts/cluster.sh start "$DEMO/cluster" --watch-pid $$ >/dev/null
export KUBECONFIG="$DEMO/cluster/kubeconfig"
kubectl get namespaces

say "starting the Avi controller emulator (https://127.0.0.1:9443, admin / ${AVI_PASSWORD:=avi123})"
scripts/run-while.sh $$ "$AKO" --log-format text emulator --listen 127.0.0.1:9443 --state-dir "$DEMO/emulator" \
  --admin-password "$AVI_PASSWORD" >"$DEMO/emulator.log" 2>&1 &

for _ in $(seq 1 100); do curl -fsk https://127.0.0.1:9443/api/cluster/status >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsk https://127.0.0.1:9443/api/cluster/status || { echo "emulator not up:"; tail -20 "$DEMO/emulator.log"; exit 1; }
echo

say "starting ako webhook (https://127.0.0.1:8443, health http://127.0.0.1:8080)"
"$AKO" certs --out-dir "$DEMO/certs" >/dev/null 2>&1
scripts/run-while.sh $$ "$AKO" --log-format json webhook --listen 127.0.0.1:8443 --health-listen 127.0.0.1:8080 \
  --tls-cert "$DEMO/certs/tls.crt" --tls-key "$DEMO/certs/tls.key" --dns-domain avi.jarvis.lab \
  --vip-network-list '[{"networkName":"dpg-sedatapath-18","cidr":"10.10.18.0/26"}]' --log-level INFO \
  >"$DEMO/webhook.log" 2>&1 &
for _ in $(seq 1 100); do curl -fs http://127.0.0.1:8080/readyz >/dev/null 2>&1 && break; sleep 0.2; done
curl -fs http://127.0.0.1:8080/readyz || { echo "webhook not ready:"; tail -20 "$DEMO/webhook.log"; exit 1; }
echo
"$AKO" certs --out-dir "$DEMO/certs" --render webhook-config/webhooks.yaml --webhook-url https://127.0.0.1:8443 \
  | kubectl apply -f -
kubectl apply -f webhook-config/ingressclass.yaml

say "kubectl apply -f examples/demo/demo.yaml   (admitted)"
kubectl apply -f examples/demo/demo.yaml
echo "stored spec.ingressClassName: $(kubectl get ingress -n vmug hackazon -o jsonpath='{.spec.ingressClassName}')"

say "kubectl apply -f examples/demo/outside.yaml   (denied)"
kubectl apply -f examples/demo/outside.yaml || true

say "the audit lines of these decisions ($DEMO/webhook.log)"
grep '"admission decision"' "$DEMO/webhook.log" | grep -v '"result":"not-ours"' | tail -n 4

say "offline: ako check -f examples/demo --dns-domain avi.jarvis.lab"
"$AKO" check -f examples/demo --dns-domain avi.jarvis.lab || true

if [ "$exit_after" = 1 ]; then exit 0; fi
say "running; KUBECONFIG=$KUBECONFIG. Ctrl-C stops everything."
while true; do sleep 3600; done
