#!/usr/bin/env bash
# One-command demo on the embedded defaults: a real local control plane (etcd + kube-apiserver 1.20.2 +
# kube-controller-manager), the embedded Avi controller emulator with the seed's lab on its loopback twin network,
# its DNS and data plane, and `ako run` (webhook + reconciler, NodePort mode as in the seed) registered with the API
# server. Applies the lab's demo Service and Ingress (admitted; the legacy class annotation is rewritten; both get
# VIPs: `kubectl get svc,ingress` shows EXTERNAL-IP and ADDRESS), resolves their names with the emulator's DNS,
# reaches small backends on the Nodes' loopback addresses through the VIPs by name, shows an Ingress whose host is
# outside the delegated subdomain denied, then keeps everything running until Ctrl-C (or exits with --exit).
set -euo pipefail
cd "$(dirname "$0")/.."
exit_after=0; [ "${1:-}" = "--exit" ] && exit_after=1
failed=()
# check DESCRIPTION CMD...: runs CMD (quietly); a failure is listed at the end, and with --exit makes the demo fail.
check() { local what="$1"; shift; if "$@" >/dev/null 2>&1; then echo "  ok: $what"; else echo "  FAILED: $what"; failed+=("$what"); fi; }

scripts/install-cluster.sh
cargo build --quiet
AKO="${CARGO_TARGET_DIR:-target}/debug/ako"
DEMO=${AKO_DEMO_DIR:-/tmp/ako-demo}
rm -rf "$DEMO"; mkdir -p "$DEMO"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "starting etcd + kube-apiserver + kube-controller-manager 1.20.2 on loopback"
scripts/cluster.sh start "$DEMO/cluster" --watch-pid $$ --controller-manager >/dev/null
export KUBECONFIG="$DEMO/cluster/kubeconfig"
kubectl get namespaces

# Traffic may only use loopback here: the lab's VIP network dpg-sedatapath-18 is its loopback twin 127.10.18.0/26,
# the Nodes' InternalIPs are 127.0.0.2 and 127.0.0.3, and NodePort mode (the seed's serviceType) sends the
# emulator's data plane to small backends on NodeIP:nodePort, standing in for kube-proxy.
say "starting the Avi controller emulator (https://127.0.0.1:9443, admin / ${AVI_PASSWORD:=avi123}), its DNS and data plane"
AKO_EMULATOR_PASSWORD="$AVI_PASSWORD" scripts/run-while.sh $$ "$AKO" --log-format text emulator --listen 127.0.0.1:9443 --state-dir "$DEMO/emulator" \
  --dns-listen 127.0.0.1:5353 \
  --loopback-vips --dataplane --health-interval-ms 1000 >"$DEMO/emulator.log" 2>&1 &

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
  --controller-host 127.0.0.1:9443 --cloud-name Default-Cloud --se-group vmug-se-group --service-type NodePort \
  --vip-network-list '[{"networkName":"dpg-sedatapath-18","cidr":"127.10.18.0/26"}]' --log-level INFO \
  >"$DEMO/ako.log" 2>&1 &
for _ in $(seq 1 100); do curl -fs http://127.0.0.1:8080/readyz >/dev/null 2>&1 && break; sleep 0.2; done
curl -fs http://127.0.0.1:8080/readyz || { echo "webhook not ready:"; tail -20 "$DEMO/ako.log"; exit 1; }
echo
"$AKO" certs --out-dir "$DEMO/certs" --render webhook-config/webhooks.yaml --webhook-url https://127.0.0.1:8443 \
  | kubectl apply -f -
kubectl apply -f webhook-config/ingressclass.yaml

say "two Nodes with loopback InternalIPs (no kubelet runs here: their status is written directly)"
api=$(awk '/server:/ {print $2; exit}' "$KUBECONFIG"); token=$(awk '/token:/ {print $2; exit}' "$KUBECONFIG")
for n in 2 3; do
  printf 'apiVersion: v1\nkind: Node\nmetadata: {name: node-%s}\n' "$n" | kubectl apply -f - >/dev/null
  curl -fsk -X PATCH -H "Authorization: Bearer $token" -H 'Content-Type: application/merge-patch+json' \
    "$api/api/v1/nodes/node-$n/status" \
    -d "{\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"127.0.0.$n\"}],\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"Demo\",\"message\":\"played by demo.sh\"}]}}" >/dev/null
done
kubectl get nodes -o wide | cut -c1-90

say "kubectl apply -f examples/demo/demo.yaml   (admitted; in NodePort mode the Ingress's backend is a NodePort Service)"
sed '/^metadata: {name: hackazon, namespace: vmug}$/{n;s/^spec:$/spec:\n  type: NodePort/}' examples/demo/demo.yaml \
  | kubectl apply -f -
for svc in avisvc-lb hackazon; do
  port=$(kubectl -n vmug get svc "$svc" -o jsonpath='{.spec.ports[0].nodePort}')
  mkdir -p "$DEMO/www/$svc"; echo "hello from $svc" > "$DEMO/www/$svc/index.html"
  for n in 2 3; do
    scripts/run-while.sh $$ python3 -m http.server --bind "127.0.0.$n" --directory "$DEMO/www/$svc" "$port" \
      >"$DEMO/backend-$svc-$n.log" 2>&1 &
  done
  echo "backend of $svc on 127.0.0.2:$port and 127.0.0.3:$port"
done
echo "stored spec.ingressClassName: $(kubectl get ingress -n vmug hackazon -o jsonpath='{.spec.ingressClassName}')"

say "kubectl apply -f examples/demo/outside.yaml   (denied)"
kubectl apply -f examples/demo/outside.yaml || true
check "outside.yaml is denied" bash -c '! kubectl apply --dry-run=server -f examples/demo/outside.yaml' 

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
avi_get '/api/virtualservice?name=veba-of--Shared-L7-0&include_name=true' \
  | python3 -c 'import json,sys; v=json.load(sys.stdin)["results"][0]; print(json.dumps({"name": v["name"], "type": v["type"], "services": v["services"], "http_policies": [p["http_policy_set_ref"].split("#")[-1] for p in v.get("http_policies", [])]}, indent=1))'
avi_get '/api/httppolicyset?name=veba-of--Shared-L7-0--hackazon.avi.jarvis.lab&include_name=true' \
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

say "HTTPS for the Ingress host: the default certificate (Secret router-certs-default in ako's namespace) and the enable-tls annotation"
"$AKO" certs --out-dir "$DEMO/hackazon-tls" --dns-name hackazon.avi.jarvis.lab >/dev/null 2>&1
kubectl create namespace avi-system >/dev/null 2>&1 || true
kubectl -n avi-system create secret tls router-certs-default \
  --cert "$DEMO/hackazon-tls/tls.crt" --key "$DEMO/hackazon-tls/tls.key"
kubectl -n vmug annotate ingress hackazon ako.vmware.com/enable-tls=true

say "traffic by name: DNS -> VIP -> virtual service -> pool member (the backends above)"
vip=$(kubectl -n vmug get svc avisvc-lb -o jsonpath='{.status.loadBalancer.ingress[0].ip}')
ing_vip=$(kubectl -n vmug get ingress hackazon -o jsonpath='{.status.loadBalancer.ingress[0].ip}')
check "the Service has an EXTERNAL-IP in 127.10.18.0/26" bash -c "[[ '$vip' == 127.10.18.* ]]"
check "the Ingress has an ADDRESS in 127.10.18.0/26" bash -c "[[ '$ing_vip' == 127.10.18.* ]]"
if command -v dig >/dev/null 2>&1; then
  check "the emulator's DNS answers the Service's FQDN with its VIP" \
    bash -c "[ \"\$(dig @127.0.0.1 -p 5353 avisvc-lb.vmug.avi.jarvis.lab +short)\" = '$vip' ]"
  check "the emulator's DNS answers the Ingress host with its VIP" \
    bash -c "[ \"\$(dig @127.0.0.1 -p 5353 hackazon.avi.jarvis.lab +short)\" = '$ing_vip' ]"
fi
for _ in $(seq 1 50); do curl -fsI --max-time 1 "http://$vip/" >/dev/null 2>&1 && break; sleep 0.2; done
echo "\$ curl -I http://avisvc-lb.vmug.avi.jarvis.lab/   (resolved by the emulator's DNS: $vip)"
curl -sI --max-time 5 --resolve "avisvc-lb.vmug.avi.jarvis.lab:80:$vip" http://avisvc-lb.vmug.avi.jarvis.lab/ | head -3
for _ in $(seq 1 50); do curl -fs --max-time 1 --resolve "hackazon.avi.jarvis.lab:80:$ing_vip" http://hackazon.avi.jarvis.lab/ >/dev/null 2>&1 && break; sleep 0.2; done
echo "\$ curl http://hackazon.avi.jarvis.lab/   (the Ingress, through the shared parent's host rule: $ing_vip)"
curl -s --max-time 5 --resolve "hackazon.avi.jarvis.lab:80:$ing_vip" http://hackazon.avi.jarvis.lab/
for _ in $(seq 1 50); do
  curl -fs --max-time 1 --cacert "$DEMO/hackazon-tls/ca.crt" --resolve "hackazon.avi.jarvis.lab:443:$ing_vip" \
    https://hackazon.avi.jarvis.lab/ >/dev/null 2>&1 && break
  sleep 0.2
done
echo "\$ curl https://hackazon.avi.jarvis.lab/   (SNI child of the parent, the default certificate)"
curl -s --max-time 5 --cacert "$DEMO/hackazon-tls/ca.crt" --resolve "hackazon.avi.jarvis.lab:443:$ing_vip" \
  https://hackazon.avi.jarvis.lab/
check "the Service answers 200 by name through its VIP" \
  bash -c "curl -fsI --max-time 5 --resolve avisvc-lb.vmug.avi.jarvis.lab:80:$vip http://avisvc-lb.vmug.avi.jarvis.lab/ | head -1 | grep -q ' 200 '"
check "the Ingress host answers on http" \
  bash -c "curl -fs --max-time 5 --resolve hackazon.avi.jarvis.lab:80:$ing_vip http://hackazon.avi.jarvis.lab/ | grep -q 'hello from hackazon'"
check "the Ingress host answers on https with a certificate for it" \
  bash -c "curl -fs --max-time 5 --cacert '$DEMO/hackazon-tls/ca.crt' --resolve hackazon.avi.jarvis.lab:443:$ing_vip https://hackazon.avi.jarvis.lab/ | grep -q 'hello from hackazon'"
echo "analytics: https://127.0.0.1:9443/admin/analytics"

say "HostRule (AKO's CRD): hackazon with the controller's certificate and full client logs"
echo "\$ kubectl apply -f examples/demo/hostrule.yaml   (denied: the certificate is not on the controller yet)"
kubectl apply -f examples/demo/hostrule.yaml || true
check "a HostRule naming a certificate the controller lacks is denied" \
  bash -c '! kubectl apply --dry-run=server -f examples/demo/hostrule.yaml'
"$AKO" certs --out-dir "$DEMO/corp-tls" --dns-name hackazon.avi.jarvis.lab >/dev/null 2>&1
csrf=$(awk '$6 == "csrftoken" {print $7}' "$DEMO/avi.cookies")
python3 -c 'import json,sys; print(json.dumps({"name": "hackazon-corp-cert", "certificate": {"certificate": open(sys.argv[1]).read()}, "key": open(sys.argv[2]).read()}))' \
  "$DEMO/corp-tls/tls.crt" "$DEMO/corp-tls/tls.key" \
  | curl -fsk -b "$DEMO/avi.cookies" -H 'X-Avi-Version: 22.1.5' -H "X-CSRFToken: $csrf" -H 'Referer: https://127.0.0.1:9443/' \
      -H 'Content-Type: application/json' --data-binary @- https://127.0.0.1:9443/api/sslkeyandcertificate >/dev/null
echo "(uploaded hackazon-corp-cert to the controller)"
kubectl apply -f examples/demo/hostrule.yaml
for _ in $(seq 1 100); do
  [ "$(kubectl -n vmug get hostrule hackazon -o jsonpath='{.status.status}')" = Accepted ] && break
  sleep 0.2
done
kubectl -n vmug get hostrule
for _ in $(seq 1 50); do
  curl -fs --max-time 1 --cacert "$DEMO/corp-tls/ca.crt" --resolve "hackazon.avi.jarvis.lab:443:$ing_vip" \
    https://hackazon.avi.jarvis.lab/ >/dev/null 2>&1 && break
  sleep 0.2
done
check "the HostRule is Accepted" bash -c "[ \"\$(kubectl -n vmug get hostrule hackazon -o jsonpath='{.status.status}')\" = Accepted ]"
check "hackazon answers https with the controller's certificate" \
  bash -c "curl -fs --max-time 5 --cacert '$DEMO/corp-tls/ca.crt' --resolve hackazon.avi.jarvis.lab:443:$ing_vip https://hackazon.avi.jarvis.lab/ | grep -q 'hello from hackazon'"
avi_get '/api/virtualservice?name=veba-of--hackazon.avi.jarvis.lab&include_name=true' \
  | python3 -c 'import json,sys; v=json.load(sys.stdin)["results"][0]; print(json.dumps({"name": v["name"], "ssl_key_and_certificate_refs": [r.split("#")[-1] for r in v.get("ssl_key_and_certificate_refs", [])], "analytics_policy": v.get("analytics_policy")}, indent=1))'
sni_logs_all() {
  avi_get '/api/virtualservice?name=veba-of--hackazon.avi.jarvis.lab' | python3 -c \
    'import json,sys; v=json.load(sys.stdin)["results"][0]; sys.exit(0 if v["analytics_policy"]["full_client_logs"]["enabled"] else 1)'
}
check "the SNI child logs every request (full client logs)" sni_logs_all
wrong_host_rule='{"apiVersion":"ako.vmware.com/v1beta1","kind":"HostRule","metadata":{"name":"blog","namespace":"vmug"},"spec":{"virtualhost":{"fqdn":"blog.avi.jarvis.lab","tls":{"sslKeyCertificate":{"name":"hackazon-corp-cert","type":"ref"}}}}}'
echo "\$ kubectl apply (a HostRule giving blog.avi.jarvis.lab the hackazon certificate)   (denied: not valid for that host)"
echo "$wrong_host_rule" | kubectl apply -f - || true
check "a HostRule whose controller certificate does not cover its FQDN is denied" \
  bash -c "echo '$wrong_host_rule' | kubectl apply --dry-run=server -f - 2>&1 | grep -q 'is not valid for blog.avi.jarvis.lab'"

say "AviInfraSetting (AKO's CRD) bound to a second IngressClass: its Ingresses on a parent of their own"
echo "\$ kubectl apply -f examples/demo/infrasetting.yaml   (AviInfraSetting lab20, IngressClass avi-lb-lab20, Ingress blog)"
kubectl apply -f examples/demo/infrasetting.yaml
for _ in $(seq 1 100); do
  [ -n "$(kubectl -n vmug get ingress blog -o jsonpath='{.status.loadBalancer.ingress[0].ip}')" ] && break
  sleep 0.2
done
kubectl get aviinfrasetting
kubectl -n vmug get ingress
blog_vip=$(kubectl -n vmug get ingress blog -o jsonpath='{.status.loadBalancer.ingress[0].ip}')
avi_get '/api/virtualservice?name=veba-of--Shared-L7-lab20-0&include_name=true' \
  | python3 -c 'import json,sys; v=json.load(sys.stdin)["results"][0]; print(json.dumps({"name": v["name"], "se_group_ref": v["se_group_ref"].split("#")[-1], "enable_rhi": v.get("enable_rhi")}, indent=1))'
for _ in $(seq 1 50); do
  curl -fs --max-time 1 --resolve "blog.avi.jarvis.lab:80:$blog_vip" http://blog.avi.jarvis.lab/ >/dev/null 2>&1 && break
  sleep 0.2
done
echo "\$ curl http://blog.avi.jarvis.lab/   (through the setting's parent: $blog_vip)"
curl -s --max-time 5 --resolve "blog.avi.jarvis.lab:80:$blog_vip" http://blog.avi.jarvis.lab/
check "the AviInfraSetting is Accepted" bash -c "[ \"\$(kubectl get aviinfrasetting lab20 -o jsonpath='{.status.status}')\" = Accepted ]"
check "the Ingress of the second class has an ADDRESS in the setting's network 127.10.20.0/26" \
  bash -c "[[ '$blog_vip' == 127.10.20.* ]]"
blog_parent_on_default_group() {
  avi_get '/api/virtualservice?name=veba-of--Shared-L7-lab20-0&include_name=true' | python3 -c \
    'import json,sys; v=json.load(sys.stdin)["results"][0]; sys.exit(0 if v["se_group_ref"].endswith("#Default-Group") and v.get("enable_rhi") else 1)'
}
check "its parent is on the setting's SE group with route health injection" blog_parent_on_default_group
check "the Ingress of the second class answers through its own VIP" \
  bash -c "curl -fs --max-time 5 --resolve blog.avi.jarvis.lab:80:$blog_vip http://blog.avi.jarvis.lab/ | grep -q 'hello from hackazon'"

say "the audit lines of these decisions ($DEMO/ako.log)"
grep '"admission decision"' "$DEMO/ako.log" | grep -v '"result":"not-ours"' | tail -n 4

say "offline: ako check -f examples/demo --dns-domain avi.jarvis.lab"
"$AKO" check -f examples/demo --dns-domain avi.jarvis.lab || true

if [ "${#failed[@]}" -gt 0 ]; then
  say "${#failed[@]} check(s) failed: ${failed[*]}"
  [ "$exit_after" = 1 ] && exit 1
fi
if [ "$exit_after" = 1 ]; then exit 0; fi
say "running; KUBECONFIG=$KUBECONFIG. Ctrl-C stops everything."
while true; do sleep 3600; done
