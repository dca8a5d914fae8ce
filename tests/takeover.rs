//! Taking over from AKO: the emulator holds what AKO 2.2 made for a small cluster (built from AKO's naming and
//! body rules: an L4 Service, two Services on a shared VIP, a shared L7 parent with AKO's DataScript, pool group
//! and redirect policy set, an SNI child with its certificate and policy set, and objects of features ako does not
//! model: an EVH-encoded pool and a passthrough virtual service), all `created_by: ako-veba-of`. ako starts with
//! the same configuration while a client keeps sending requests through the data plane.
//!
//! What must hold: every VIP address unchanged and no VsVip deleted or re-created; no failed request during the
//! takeover; nothing of AKO's deleted (what ako models is adopted in place, the rest left alone and listed in one
//! Event on ako's Pod); AKO's DataScript detached from the parent ako now routes with policy sets.

mod avi_support;
mod reconciler_support;
mod traffic;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ako::core::index::ObjKey;
use ako::core::l4::{EndpointAddress, EndpointGroup, MemberMode};
use ako::core::l7::{self, TlsPair};
use ako::k8s::observe::View;
use reconciler_support::{Running, ingress, service};
use serde_json::{Value, json};
use traffic::{Backend, Lab, NODE_IP, http_get, https_get, start_lab};

const C: &str = "veba-of";
const OWNER: &str = "ako-veba-of";
const SHOP: &str = "shop.avi.jarvis.lab";
const HACKAZON: &str = "hackazon.avi.jarvis.lab";
const EVH_POOL: &str = "veba-of--0123456789abcdef0123456789abcdef01234567";
const PASSTHROUGH: &str = "veba-of--Shared-Passthrough-0";

/// POSTs an object as AKO wrote it; returns its uuid.
async fn post(lab: &Lab, obj_type: &str, body: Value) -> String {
    let name = body["name"].as_str().unwrap_or_default().to_string();
    let created = lab
        .client
        .send(
            reqwest::Method::POST,
            &format!("/api/{obj_type}"),
            Some(&body),
        )
        .await
        .unwrap_or_else(|e| panic!("AKO's {obj_type} {name} refused: {e}"));
    let v: Value = serde_json::from_slice(&created.body).expect("created JSON");
    v["uuid"].as_str().expect("uuid").to_string()
}

fn r(obj_type: &str, name: &str) -> String {
    format!("/api/{obj_type}/?name={name}")
}

fn common(name: &str) -> Value {
    json!({"name": name, "created_by": OWNER, "tenant_ref": r("tenant", "admin")})
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

fn markers(pairs: &[(&str, &str)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(k, v)| json!({"key": k, "values": [v]}))
            .collect(),
    )
}

/// A VsVip as AKO asks for one: auto-allocated in the VIP network, the FQDNs in dns_info.
async fn vsvip(lab: &Lab, name: &str, fqdns: &[&str]) -> String {
    let net = lab.vip_net;
    let body = json!({
        "name": name,
        "tenant_ref": r("tenant", "admin"),
        "cloud_ref": r("cloud", "Default-Cloud"),
        "vrf_context_ref": r("vrfcontext", "global"),
        "east_west_placement": false,
        "vip": [{"vip_id": "0", "auto_allocate_ip": true, "ipam_network_subnet": {
            "network_ref": r("network", "dpg-sedatapath-18"),
            "subnet": {"ip_addr": {"addr": net.network().to_string(), "type": "V4"}, "mask": net.prefix_len()}}}],
        "dns_info": fqdns.iter().map(|f| json!({"fqdn": f})).collect::<Vec<_>>(),
        "markers": markers(&[("clustername", C)]),
    });
    post(lab, "vsvip", body).await
}

fn pool_body(name: &str, backend: SocketAddr) -> Value {
    with(
        common(name),
        json!({
            "cloud_ref": r("cloud", "Default-Cloud"),
            "servers": [{"ip": {"addr": backend.ip().to_string(), "type": "V4"}, "port": backend.port(), "enabled": true}],
            "health_monitor_refs": [r("healthmonitor", "System-TCP")],
            "markers": markers(&[("clustername", C)]),
        }),
    )
}

fn vs_body(name: &str, extra: Value) -> Value {
    with(
        with(
            common(name),
            json!({
                "cloud_ref": r("cloud", "Default-Cloud"),
                "se_group_ref": r("serviceenginegroup", "vmug-se-group"),
                "vrf_context_ref": r("vrfcontext", "global"),
                "enabled": true,
                "traffic_enabled": true,
                "markers": markers(&[("clustername", C)]),
            }),
        ),
        extra,
    )
}

/// AKO's L4 objects of one virtual service: VsVip, pools, L4PolicySet, VirtualService.
async fn ako_l4(lab: &Lab, vs: &str, fqdns: &[&str], pools: &[(&str, u16, SocketAddr)]) {
    vsvip(lab, vs, fqdns).await;
    let mut rules = Vec::new();
    for (i, (pool, port, backend)) in pools.iter().enumerate() {
        post(lab, "pool", pool_body(pool, *backend)).await;
        rules.push(json!({
            "name": format!("{vs}-{i}"), "index": i, "enable": true,
            "match": {"port": {"match_criteria": "IS_IN", "ports": [port]},
                      "protocol": {"match_criteria": "IS_IN", "protocol": "PROTOCOL_TCP"}},
            "action": {"select_pool": {"action_type": "L4_RULE_ACTION_SELECT_POOL", "pool_ref": r("pool", pool)}},
        }));
    }
    post(
        lab,
        "l4policyset",
        with(
            common(vs),
            json!({"is_internal_policy": false, "l4_connection_policy": {"rules": rules}}),
        ),
    )
    .await;
    let services: Vec<Value> = pools
        .iter()
        .map(|(_, port, _)| json!({"port": port, "enable_ssl": false}))
        .collect();
    post(
        lab,
        "virtualservice",
        vs_body(
            vs,
            json!({
                "type": "VS_TYPE_NORMAL",
                "vsvip_ref": r("vsvip", vs),
                "application_profile_ref": r("applicationprofile", "System-L4-Application"),
                "network_profile_ref": r("networkprofile", "System-TCP-Proxy"),
                "services": services,
                "l4_policies": [{"index": 0, "l4_policy_set_ref": r("l4policyset", vs)}],
            }),
        ),
    )
    .await;
}

/// AKO's shared parent of a shard: VsVip, the pool group and DataScript of its host routing, the redirect policy
/// set (named as the parent), the virtual service.
async fn ako_parent(
    lab: &Lab,
    shard: u32,
    hosts: &[&str],
    insecure: &[(&str, &str)],
    redirect: &[&str],
) {
    let parent = format!("{C}--Shared-L7-{shard}");
    vsvip(lab, &parent, hosts).await;
    let members: Vec<Value> = insecure
        .iter()
        .map(|(pool, label)| json!({"pool_ref": r("pool", pool), "ratio": 100, "priority_label": label}))
        .collect();
    post(
        lab,
        "poolgroup",
        with(
            common(&parent),
            json!({"cloud_ref": r("cloud", "Default-Cloud"), "members": members}),
        ),
    )
    .await;
    post(
        lab,
        "vsdatascriptset",
        with(
            common(&parent),
            json!({
                "datascript": [{"evt": "VS_DATASCRIPT_EVT_HTTP_REQ",
                                "script": "-- AKO's host routing by pool priority label (not run by the emulator)"}],
                "pool_group_refs": [r("poolgroup", &parent)],
            }),
        ),
    )
    .await;
    let rules: Vec<Value> = redirect
        .iter()
        .enumerate()
        .map(|(i, host)| {
            json!({
                "name": format!("{parent}-{i}"), "index": i, "enable": true,
                "match": {"host_hdr": {"match_criteria": "HDR_EQUALS", "match_case": "INSENSITIVE", "value": [host]},
                          "vs_port": {"match_criteria": "IS_IN", "ports": [80]}},
                "redirect_action": {"protocol": "HTTPS", "port": 443, "status_code": "HTTP_REDIRECT_STATUS_CODE_302"},
            })
        })
        .collect();
    let mut policies = Vec::new();
    if !rules.is_empty() {
        post(
            lab,
            "httppolicyset",
            with(
                common(&parent),
                json!({"is_internal_policy": false, "http_request_policy": {"rules": rules}}),
            ),
        )
        .await;
        policies.push(json!({"index": 11, "http_policy_set_ref": r("httppolicyset", &parent)}));
    }
    post(
        lab,
        "virtualservice",
        vs_body(
            &parent,
            json!({
                "type": "VS_TYPE_VH_PARENT",
                "vsvip_ref": r("vsvip", &parent),
                "application_profile_ref": r("applicationprofile", "System-Secure-HTTP"),
                "network_profile_ref": r("networkprofile", "System-TCP-Proxy"),
                "services": [{"port": 80, "enable_ssl": false}, {"port": 443, "enable_ssl": true}],
                "http_policies": policies,
                "vs_datascripts": [{"index": 1, "vs_datascript_set_ref": r("vsdatascriptset", &parent)}],
            }),
        ),
    )
    .await;
}

/// AKO's SNI child of a secure host: certificate, pool and pool group, policy set, child virtual service.
async fn ako_sni_child(
    lab: &Lab,
    shard: u32,
    ns: &str,
    ing: &str,
    host: &str,
    pair: &TlsPair,
    backend: SocketAddr,
) {
    let parent = format!("{C}--Shared-L7-{shard}");
    let child = format!("{C}--{host}");
    post(
        lab,
        "sslkeyandcertificate",
        with(
            common(&child),
            json!({"type": "SSL_CERTIFICATE_TYPE_VIRTUALSERVICE", "format": "SSL_PEM",
                   "certificate": {"certificate": pair.cert_pem}, "key": pair.key_pem}),
        ),
    )
    .await;
    let pool = format!("{C}--{ns}-{host}_-{ing}");
    post(lab, "pool", pool_body(&pool, backend)).await;
    post(
        lab,
        "poolgroup",
        with(
            common(&pool),
            json!({"cloud_ref": r("cloud", "Default-Cloud"), "members": [{"pool_ref": r("pool", &pool), "ratio": 100}]}),
        ),
    )
    .await;
    let policy = format!("{C}--{ns}-{host}");
    post(
        lab,
        "httppolicyset",
        with(
            common(&policy),
            json!({"is_internal_policy": false, "http_request_policy": {"rules": [{
                "name": format!("{policy}-0"), "index": 0, "enable": true,
                "match": {"host_hdr": {"match_criteria": "HDR_EQUALS", "match_case": "INSENSITIVE", "value": [host]},
                          "path": {"match_criteria": "BEGINS_WITH", "match_case": "SENSITIVE", "match_str": ["/"]}},
                "switching_action": {"action": "HTTP_SWITCHING_SELECT_POOLGROUP", "pool_group_ref": r("poolgroup", &pool)},
            }]}}),
        ),
    )
    .await;
    post(
        lab,
        "virtualservice",
        vs_body(
            &child,
            json!({
                "type": "VS_TYPE_VH_CHILD",
                "vh_parent_vs_ref": r("virtualservice", &parent),
                "vh_domain_name": [host],
                "application_profile_ref": r("applicationprofile", "System-Secure-HTTP"),
                "network_profile_ref": r("networkprofile", "System-TCP-Proxy"),
                "ssl_key_and_certificate_refs": [r("sslkeyandcertificate", &child)],
                "http_policies": [{"index": 11, "http_policy_set_ref": r("httppolicyset", &policy)}],
            }),
        ),
    )
    .await;
}

async fn named(lab: &Lab, obj_type: &str, name: &str) -> Option<Value> {
    let page: Value = lab
        .client
        .get_json(&format!("/api/{obj_type}?name={name}"))
        .await
        .expect("get");
    page["results"].as_array().and_then(|r| r.first()).cloned()
}

/// Every VsVip: name -> (uuid, addresses).
async fn vsvips(lab: &Lab) -> BTreeMap<String, (String, Vec<String>)> {
    let page: Value = lab
        .client
        .get_json("/api/vsvip?page_size=200")
        .await
        .expect("vsvips");
    page["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            let addrs = v["vip"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x["ip_address"]["addr"].as_str().map(str::to_string))
                .collect();
            (
                v["name"].as_str().unwrap_or_default().to_string(),
                (v["uuid"].as_str().unwrap_or_default().to_string(), addrs),
            )
        })
        .collect()
}

fn vip(map: &BTreeMap<String, (String, Vec<String>)>, name: &str) -> IpAddr {
    map.get(name)
        .and_then(|(_, a)| a.first())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no VIP for {name}: {map:?}"))
}

fn group(port: u16) -> EndpointGroup {
    EndpointGroup {
        ports: vec![(Some("http".into()), port, "TCP".into())],
        addresses: vec![EndpointAddress {
            ip: IpAddr::from(NODE_IP),
            ready: true,
            terminating: false,
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ako_takes_over_akos_objects_with_no_vip_change_no_failed_request_and_nothing_deleted() {
    let lab = start_lab(100).await;
    let lb = Backend::start("lb", NODE_IP).await;
    let a = Backend::start("a", NODE_IP).await;
    let b = Backend::start("b", NODE_IP).await;
    let vmug_web = Backend::start("vmug-web", NODE_IP).await;
    let shop_web = Backend::start("shop-web", NODE_IP).await;
    let ca = ako::certs::generate_ca("takeover CA", 30).expect("ca");
    let leaf = ca.issue(&[SHOP.to_string()], &[], 30).expect("leaf");
    let pair = TlsPair {
        cert_pem: leaf.cert_pem,
        key_pem: leaf.key_pem,
        problem: None,
    };
    let hack_shard = l7::shard_of(HACKAZON, 8);
    let shop_shard = l7::shard_of(SHOP, 8);
    assert_ne!(hack_shard, shop_shard, "the fixture wants two parents");

    // What AKO made.
    ako_l4(
        &lab,
        &format!("{C}--vmug-avisvc-lb"),
        &["avisvc-lb.vmug.avi.jarvis.lab"],
        &[(&format!("{C}--vmug-avisvc-lb-TCP-80"), 80, lb.addr)],
    )
    .await;
    ako_l4(
        &lab,
        &format!("{C}--vmug-web"),
        &["a.vmug.avi.jarvis.lab", "b.vmug.avi.jarvis.lab"],
        &[
            (&format!("{C}--vmug-a-web-TCP-8081"), 8081, a.addr),
            (&format!("{C}--vmug-b-web-TCP-8082"), 8082, b.addr),
        ],
    )
    .await;
    let hack_pool = format!("{C}--{HACKAZON}_-vmug-hackazon");
    post(&lab, "pool", pool_body(&hack_pool, vmug_web.addr)).await;
    ako_parent(
        &lab,
        hack_shard,
        &[HACKAZON],
        &[(&hack_pool, &format!("{HACKAZON}/"))],
        &[],
    )
    .await;
    ako_parent(&lab, shop_shard, &[SHOP], &[], &[SHOP]).await;
    ako_sni_child(&lab, shop_shard, "shop", "shop", SHOP, &pair, shop_web.addr).await;
    // Objects of features ako does not model.
    post(&lab, "pool", pool_body(EVH_POOL, vmug_web.addr)).await;
    vsvip(&lab, PASSTHROUGH, &[]).await;
    post(
        &lab,
        "virtualservice",
        vs_body(
            PASSTHROUGH,
            json!({"type": "VS_TYPE_NORMAL", "vsvip_ref": r("vsvip", PASSTHROUGH),
                   "application_profile_ref": r("applicationprofile", "System-L4-Application"),
                   "network_profile_ref": r("networkprofile", "System-TCP-Proxy"),
                   "services": [{"port": 443, "enable_ssl": false}]}),
        ),
    )
    .await;
    let before = vsvips(&lab).await;
    assert_eq!(before.len(), 5, "{before:?}");

    // Traffic through AKO's objects, from before ako starts until after it has converged.
    let lb_vip = SocketAddr::new(vip(&before, &format!("{C}--vmug-avisvc-lb")), 80);
    let shared = vip(&before, &format!("{C}--vmug-web"));
    let shop_vip = SocketAddr::new(vip(&before, &format!("{C}--Shared-L7-{shop_shard}")), 443);
    let up = async || {
        let one = http_get(lb_vip, "avisvc-lb", "/").await.ok()?;
        let two = http_get(SocketAddr::new(shared, 8082), "b", "/")
            .await
            .ok()?;
        let (three, _) = https_get(shop_vip, SHOP, "/cart", &ca.cert_pem)
            .await
            .ok()?;
        [&one, &two, &three]
            .iter()
            .all(|x| x.status == 200)
            .then_some(())
    };
    traffic::wait_for("AKO's objects carry traffic", || async {
        up().await.is_some()
    })
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let failed: Arc<parking_lot::Mutex<Vec<String>>> = Arc::default();
    let loop_task = {
        let (stop, sent, failed, ca_pem) = (
            stop.clone(),
            sent.clone(),
            failed.clone(),
            ca.cert_pem.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let checks = [
                    (
                        "lb",
                        http_get(lb_vip, "avisvc-lb", "/")
                            .await
                            .map(|x| (x.status, x.backend().map(str::to_string))),
                    ),
                    (
                        "a",
                        http_get(SocketAddr::new(shared, 8081), "a", "/")
                            .await
                            .map(|x| (x.status, x.backend().map(str::to_string))),
                    ),
                    (
                        "b",
                        http_get(SocketAddr::new(shared, 8082), "b", "/")
                            .await
                            .map(|x| (x.status, x.backend().map(str::to_string))),
                    ),
                    (
                        "shop-web",
                        https_get(shop_vip, SHOP, "/cart", &ca_pem)
                            .await
                            .map(|(x, _)| (x.status, x.backend().map(str::to_string))),
                    ),
                ];
                for (want, got) in checks {
                    sent.fetch_add(1, Ordering::Relaxed);
                    match got {
                        Ok((200, Some(b))) if b == want => {}
                        other => failed.lock().push(format!("{want}: {other:?}")),
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    // ako, with the same configuration.
    let services = vec![
        service(
            "metadata: {name: avisvc-lb, namespace: vmug, uid: s-1, creationTimestamp: \"2026-01-01T00:00:00Z\"}\n\
             spec: {type: LoadBalancer, ports: [{name: http, port: 80, targetPort: http, protocol: TCP}]}",
        ),
        service(
            "metadata: {name: a, namespace: vmug, uid: s-2, creationTimestamp: \"2026-01-01T00:00:00Z\", annotations: {ako.vmware.com/enable-shared-vip: web}}\n\
             spec: {type: LoadBalancer, ports: [{name: http, port: 8081, targetPort: http, protocol: TCP}]}",
        ),
        service(
            "metadata: {name: b, namespace: vmug, uid: s-3, creationTimestamp: \"2026-01-02T00:00:00Z\", annotations: {ako.vmware.com/enable-shared-vip: web}}\n\
             spec: {type: LoadBalancer, ports: [{name: http, port: 8082, targetPort: http, protocol: TCP}]}",
        ),
        reconciler_support::web_service("vmug"),
        reconciler_support::web_service("shop"),
    ];
    let view = Arc::new(View::from_parts(
        services,
        vec![
            (ObjKey::new("vmug", "avisvc-lb"), group(lb.addr.port())),
            (ObjKey::new("vmug", "a"), group(a.addr.port())),
            (ObjKey::new("vmug", "b"), group(b.addr.port())),
            (ObjKey::new("vmug", "web"), group(vmug_web.addr.port())),
            (ObjKey::new("shop", "web"), group(shop_web.addr.port())),
        ],
        vec![],
    ));
    view.upsert_ingress(ingress(reconciler_support::HACKAZON_ING));
    view.upsert_ingress(ingress(reconciler_support::SHOP_ING));
    view.set_tls_secret(&ObjKey::new("shop", "shop-tls"), Some(Some(pair.clone())));
    let place = traffic::placement(&lab);
    let seq = lab.emu.requests(0).len() as u64;
    let mut run = Running::start_with(&lab.emu, view, |s| {
        s.placement = place;
        s.placement.member_mode = MemberMode::ClusterIp;
        s.full_sync = Some(Duration::from_secs(3600));
    });
    run.until("ako converged on AKO's objects", |p| {
        p.converged_once && p.events_pending == 0 && p.stats.full_syncs > 0
    })
    .await;
    // Traffic keeps flowing a little longer through what ako now owns.
    let at = sent.load(Ordering::Relaxed);
    traffic::wait_for("more requests after the takeover", || async {
        sent.load(Ordering::Relaxed) > at + 40
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    loop_task.await.expect("client loop");

    // No failed request; every VIP where it was; no VsVip re-created.
    let failed = failed.lock().clone();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:?}",
        failed.len(),
        sent.load(Ordering::Relaxed)
    );
    let after = vsvips(&lab).await;
    for (name, (uuid, addrs)) in &before {
        let (u, a) = after
            .get(name)
            .unwrap_or_else(|| panic!("VsVip {name} gone"));
        assert_eq!((u, a), (uuid, addrs), "VsVip {name} changed");
    }
    // Nothing deleted at all: what ako models was adopted in place, the rest left alone.
    let writes: Vec<String> = lab
        .emu
        .requests(seq)
        .into_iter()
        .filter(|q| q.method != "GET" && q.kind != "login" && q.kind != "logout")
        .map(|q| format!("{} {} {}", q.method, q.kind, q.name.unwrap_or_default()))
        .collect();
    assert!(
        !writes.iter().any(|w| w.starts_with("DELETE")
            || w.starts_with("POST vsvip")
            || w.starts_with("POST virtualservice")
            || w.starts_with("POST pool ")),
        "{writes:#?}"
    );
    for (t, n) in [
        ("pool", EVH_POOL),
        ("virtualservice", PASSTHROUGH),
        ("vsvip", PASSTHROUGH),
        ("poolgroup", &*format!("{C}--Shared-L7-{hack_shard}")),
        ("vsdatascriptset", &*format!("{C}--Shared-L7-{hack_shard}")),
    ] {
        assert!(named(&lab, t, n).await.is_some(), "{t} {n} was deleted");
    }
    // The operator is told what was left alone and why, once.
    let told: Vec<String> = run
        .sink
        .operator
        .lock()
        .iter()
        .filter(|n| n.reason == "AKOObjectsLeftAlone")
        .map(|n| n.message.clone())
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    for want in [EVH_POOL, PASSTHROUGH, "EVH", "passthrough", "DataScript"] {
        assert!(told[0].contains(want), "{want} not in {}", told[0]);
    }
    // ako routes the parent with its policy sets: AKO's DataScript is detached, the insecure host answers.
    let parent = named(
        &lab,
        "virtualservice",
        &format!("{C}--Shared-L7-{hack_shard}"),
    )
    .await
    .expect("parent");
    assert!(
        parent["vs_datascripts"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{parent}"
    );
    let hack_vip = SocketAddr::new(vip(&after, &format!("{C}--Shared-L7-{hack_shard}")), 80);
    traffic::wait_for("the insecure host routed by ako", || async {
        http_get(hack_vip, HACKAZON, "/")
            .await
            .is_ok_and(|x| x.backend() == Some("vmug-web"))
    })
    .await;
    // HTTP to the secure host still redirects.
    let red = http_get(SocketAddr::new(shop_vip.ip(), 80), SHOP, "/cart")
        .await
        .expect("http");
    assert_eq!(red.status, 302, "{red:?}");
    run.stop().await;
}
