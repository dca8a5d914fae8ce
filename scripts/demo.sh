#!/usr/bin/env bash
# One-command demo on the embedded defaults: a real local control plane (etcd + kube-apiserver 1.20.2 +
# kube-controller-manager), the embedded Avi controller emulator with the seed's lab, and `ako run` (webhook +
# reconciler) registered with the API server. Applies the lab's demo Service and Ingress (admitted; the legacy
# class annotation is rewritten; the Service and the Ingress get their VIPs: `kubectl get svc,ingress` shows
# EXTERNAL-IP and ADDRESS) and an Ingress
# whose host is outside the delegated subdomain (denied), then keeps everything running until Ctrl-C (or exits
# with --exit).
set -euo pipefail
cd "$(dirname "$0")/.."
exit_after=0; [ "${1:-}" = "--exit" ] && exit_after=1

scripts/install-cluster.sh
cargo build --quiet
AKO=target/debug/ako
DEMO=${AKO_DEMO_DIR:-/tmp/ako-demo}
rm -rf "$DEMO"; mkdir -p "$DEMO"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "starting etcd + kube-apiserver + kube-controller-manager 1.20.2 on loopback"
scripts/cluster.sh start "$DEMO/cluster" --watch-pid $$ --controller-manager >/dev/null
export KUBECONFIG="$DEMO/cluster/kubeconfig"
kubectl get namespaces

say "starting the Avi controller emulator (https://127.0.0.1:9443, admin / ${AVI_PASSWORD:=avi123})"
scripts/run-while.sh $$ "$AKO" --log-format text emulator --listen 127.0.0.1:9443 --state-dir "$DEMO/emulator" \
  --admin-password "$AVI_PASSWORD" --dns-listen 127.0.0.1:5353 >"$DEMO/emulator.log" 2>&1 &

for _ in $(seq 1 100); do curl -fsk https://127.0.0.1:9443/api/cluster/status >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsk https://127.0.0.1:9443/api/cluster/status || { echo "emulator not up:"; tail -20 "$DEMO/emulator.log"; exit 1; }
echo

say "starting ako run: webhook (https://127.0.0.1:8443, health http://127.0.0.1:8080) and reconciler"
"$AKO" certs --out-dir "$DEMO/certs" >/dev/null 2>&1
# The seed's helm install values: clusterName veba-of, SE group vmug-se-group, VIP network dpg-sedatapath-18;
# the delegated subdomain (avi.jarvis.lab) comes from the cloud's DNS profile on the controller.
CLUSTER_NAME=veba-of AVI_USERNAME=admin AVI_PASSWORD="$AVI_PASSWORD" AVI_CA_DATA="$DEMO/emulator/ca.crt" \
scripts/run-while.sh $$ "$AKO" --log-format json run --listen 127.0.0.1:8443 --health-listen 127.0.0.1:8080 \
  --tls-cert "$DEMO/certs/tls.crt" --tls-key "$DEMO/certs/tls.key" \
  --controller-host 127.0.0.1:9443 --cloud-name Default-Cloud --se-group vmug-se-group \
  --vip-network-list '[{"networkName":"dpg-sedatapath-18","cidr":"10.10.18.0/26"}]' --log-level INFO \
  >"$DEMO/ako.log" 2>&1 &
for _ in $(seq 1 100); do curl -fs http://127.0.0.1:8080/readyz >/dev/null 2>&1 && break; sleep 0.2; done
curl -fs http://127.0.0.1:8080/readyz || { echo "webhook not ready:"; tail -20 "$DEMO/ako.log"; exit 1; }
echo
"$AKO" certs --out-dir "$DEMO/certs" --render webhook-config/webhooks.yaml --webhook-url https://127.0.0.1:8443 \
  | kubectl apply -f -
kubectl apply -f webhook-config/ingressclass.yaml

say "kubectl apply -f examples/demo/demo.yaml   (admitted)"
kubectl apply -f examples/demo/demo.yaml
echo "stored spec.ingressClassName: $(kubectl get ingress -n vmug hackazon -o jsonpath='{.spec.ingressClassName}')"

say "kubectl apply -f examples/demo/outside.yaml   (denied)"
kubectl apply -f examples/demo/outside.yaml || true

say "kubectl -n vmug get svc,ingress   (the reconciler programs the virtual services, writes EXTERNAL-IP and ADDRESS)"
for _ in $(seq 1 100); do
  [ -n "$(kubectl -n vmug get svc avisvc-lb -o jsonpath='{.status.loadBalancer.ingress[0].ip}')" ] &&
    [ -n "$(kubectl -n vmug get ingress hackazon -o jsonpath='{.status.loadBalancer.ingress[0].ip}')" ] && break
  sleep 0.2
done
kubectl -n vmug get svc,ingress
kubectl -n vmug get svc avisvc-lb -o jsonpath='{.status.loadBalancer.ingress[0].hostname}{"\n"}'
kubectl -n vmug get events --field-selector involvedObject.name=avisvc-lb
kubectl -n vmug get events --field-selector involvedObject.kind=Ingress,involvedObject.name=hackazon

say "the virtual service on the Avi controller emulator"
curl -fsk -c "$DEMO/avi.cookies" --data-urlencode username=admin --data-urlencode "password=$AVI_PASSWORD" \
  https://127.0.0.1:9443/login >/dev/null
avi_get() { curl -fsk -b "$DEMO/avi.cookies" -H 'X-Avi-Version: 22.1.5' "https://127.0.0.1:9443$1"; }
avi_get '/api/virtualservice?name=veba-of--vmug-avisvc-lb&include_name=true' \
  | python3 -c 'import json,sys; v=json.load(sys.stdin)["results"][0]; print(json.dumps({k: v.get(k) for k in ("name","created_by","services","vsvip_ref","se_group_ref","application_profile_ref")}, indent=1))'
avi_get '/api/vsvip?name=veba-of--vmug-avisvc-lb' \
  | python3 -c 'import json,sys; v=json.load(sys.stdin)["results"][0]; print(json.dumps({"vip": [x.get("ip_address") for x in v["vip"]], "dns_info": v.get("dns_info")}, indent=1))'

say "the Ingress's shared parent virtual service (80 and 443) and its routing policy"
avi_get '/api/virtualservice?name=veba-of--Shared-L7-0' \
  | python3 -c 'import json,sys; v=json.load(sys.stdin)["results"][0]; print(json.dumps({k: v.get(k) for k in ("name","type","services")}, indent=1))'
avi_get '/api/httppolicyset?name=veba-of--Shared-L7-0&include_name=true' \
  | python3 -c 'import json,sys; v=json.load(sys.stdin)["results"][0]; print(json.dumps([{"match": r["match"], "pool_group": r.get("switching_action",{}).get("pool_group_ref","").split("#")[-1]} for r in v["http_request_policy"]["rules"]], indent=1))'

say "the Avi DNS (the emulator's, on 127.0.0.1:5353) answers for the FQDNs ako published"
if command -v dig >/dev/null 2>&1; then
  echo "\$ dig @127.0.0.1 -p 5353 avisvc-lb.vmug.avi.jarvis.lab +short"
  dig @127.0.0.1 -p 5353 avisvc-lb.vmug.avi.jarvis.lab +short
  echo "\$ dig @127.0.0.1 -p 5353 hackazon.avi.jarvis.lab +short"
  dig @127.0.0.1 -p 5353 hackazon.avi.jarvis.lab +short
else
  echo "(dig not installed: scripts/install-tools.sh installs it)"
fi

say "the audit lines of these decisions ($DEMO/ako.log)"
grep '"admission decision"' "$DEMO/ako.log" | grep -v '"result":"not-ours"' | tail -n 4

say "offline: ako check -f examples/demo --dns-domain avi.jarvis.lab"
"$AKO" check -f examples/demo --dns-domain avi.jarvis.lab || true

if [ "$exit_after" = 1 ]; then exit 0; fi
say "running; KUBECONFIG=$KUBECONFIG. Ctrl-C stops everything."
while true; do sleep 3600; done
