//! HostRules and HTTPRules through the reconciler against the emulator: the verdict written to status in AKO's
//! words, the settings on the virtual service and pools, and everything reverting when a rule goes.

mod avi_support;
mod reconciler_support;

use ako::core::index::ObjKey;
use ako::k8s::observe::{Change, RuleKind, RuleObject};
use reconciler_support::*;
use reqwest::Method;
use serde_json::{Value, json};

fn rule(spec_yaml: &str, created: i64) -> RuleObject {
    RuleObject {
        uid: Some(format!("uid-{created}")),
        created: Some(created),
        spec: serde_yaml_ng::from_str(spec_yaml).expect("spec yaml"),
        status: None,
    }
}

fn status_of(r: &Running, kind: RuleKind, key: &ObjKey) -> Option<Value> {
    r.sink
        .rule_statuses
        .lock()
        .iter()
        .rev()
        .find(|(k, o, _)| *k == kind && o == key)
        .map(|(_, _, s)| s.clone())
}

async fn upload_cert(c: &ako::avi::AviClient, name: &str, host: &str) {
    let ca = ako::certs::generate_ca("corp-ca", 30).expect("ca");
    let leaf = ca.issue(&[host.into()], &[], 30).expect("leaf");
    let body =
        json!({"name": name, "key": leaf.key_pem, "certificate": {"certificate": leaf.cert_pem}});
    let res = c
        .send(Method::POST, "/api/sslkeyandcertificate", Some(&body))
        .await
        .expect("upload");
    assert_eq!(res.status, 201);
}

#[tokio::test]
async fn a_host_rule_serves_a_host_with_a_controller_certificate_and_waf_and_reverts_when_deleted()
{
    let (emu, view, mut r) = l7_demo_converged().await;
    let c = client(&emu);
    upload_cert(&c, "corp-cert", "shop.avi.jarvis.lab").await;
    // shop's Ingress names a Secret that does not exist: not served until the HostRule gives a certificate.
    let shop = ObjKey::new("shop", "shop");
    assert!(r.sink.last_ingress_status(&shop).is_none());

    let key = ObjKey::new("shop", "shop-rule");
    view.upsert_rule(
        RuleKind::HostRule,
        key.clone(),
        rule(
            "virtualhost:
               fqdn: shop.avi.jarvis.lab
               tls: {sslKeyCertificate: {name: corp-cert, type: ref}, termination: edge}
               wafPolicy: System-WAF-Policy
               analyticsPolicy: {fullClientLogs: {enabled: true, throttle: LOW}, logAllHeaders: true}",
            10,
        ),
    );
    r.change(Change::Rules).await;
    r.until("shop served", |p| p.converged_once && p.events_pending == 0)
        .await;
    assert_eq!(
        status_of(&r, RuleKind::HostRule, &key),
        Some(json!({"status": "Accepted", "error": null}))
    );
    let child = get_named(&c, "virtualservice", "veba-of--shop.avi.jarvis.lab")
        .await
        .expect("the SNI child");
    let waf = child["waf_policy_ref"].as_str().expect("waf ref");
    assert!(waf.contains("/api/wafpolicy/"), "{waf}");
    let certs = child["ssl_key_and_certificate_refs"]
        .as_array()
        .expect("certs");
    assert_eq!(certs.len(), 1);
    assert_eq!(
        child["analytics_policy"]["full_client_logs"]["throttle"],
        50
    );
    assert_eq!(child["analytics_policy"]["all_headers"], true);
    assert!(
        r.sink
            .last_ingress_status(&shop)
            .is_some_and(|s| !s.is_empty()),
        "shop gets its address once a certificate serves it"
    );

    // Deleted: the host goes back to what its Ingress says (its Secret is missing: not served).
    remove_rule(&view, RuleKind::HostRule, &key);
    r.change(Change::Rules).await;
    r.until("reverted", |p| p.converged_once && p.events_pending == 0)
        .await;
    assert!(
        get_named(&c, "virtualservice", "veba-of--shop.avi.jarvis.lab")
            .await
            .is_none()
    );
}

fn remove_rule(view: &ako::k8s::observe::View, kind: RuleKind, key: &ObjKey) {
    view.remove_rule(kind, key);
}

#[tokio::test]
async fn a_host_rule_naming_what_the_controller_lacks_is_rejected_in_akos_words_and_changes_nothing()
 {
    let (emu, view, mut r) = l7_demo_converged().await;
    let c = client(&emu);
    let before = get_named(&c, "virtualservice", "veba-of--Shared-L7-0")
        .await
        .expect("parent");
    let key = ObjKey::new("vmug", "strict");
    view.upsert_rule(
        RuleKind::HostRule,
        key.clone(),
        rule(
            "virtualhost: {fqdn: hackazon.avi.jarvis.lab, wafPolicy: no-such-waf}",
            10,
        ),
    );
    let older = ObjKey::new("vmug", "first");
    view.upsert_rule(
        RuleKind::HostRule,
        older.clone(),
        rule("virtualhost: {fqdn: other.avi.jarvis.lab}", 5),
    );
    let dup = ObjKey::new("shop", "second");
    view.upsert_rule(
        RuleKind::HostRule,
        dup.clone(),
        rule("virtualhost: {fqdn: other.avi.jarvis.lab}", 20),
    );
    r.change(Change::Rules).await;
    r.until("judged", |p| p.converged_once && p.events_pending == 0)
        .await;
    assert_eq!(
        status_of(&r, RuleKind::HostRule, &key),
        Some(json!({"status": "Rejected",
            "error": "wafpolicy \"no-such-waf\" not found on controller (spec.virtualhost.wafPolicy)"}))
    );
    assert_eq!(
        status_of(&r, RuleKind::HostRule, &older),
        Some(json!({"status": "Accepted", "error": null}))
    );
    assert_eq!(
        status_of(&r, RuleKind::HostRule, &dup),
        Some(json!({"status": "Rejected",
            "error": "duplicate fqdn other.avi.jarvis.lab found in vmug/first"}))
    );
    let events: Vec<_> = r
        .sink
        .rule_events
        .lock()
        .iter()
        .filter(|(k, _)| *k == key)
        .map(|(_, n)| n.clone())
        .collect();
    assert!(
        events
            .iter()
            .any(|n| n.warning && n.reason == "Rejected" && n.message.contains("no-such-waf")),
        "{events:?}"
    );
    let after = get_named(&c, "virtualservice", "veba-of--Shared-L7-0")
        .await
        .expect("parent");
    assert_eq!(before["_last_modified"], after["_last_modified"]);
}

#[tokio::test]
async fn an_http_rule_sets_the_pool_algorithm_persistence_and_monitor_then_reverts() {
    let (emu, view, mut r) = l7_demo_converged().await;
    let c = client(&emu);
    let pool_name = "veba-of--hackazon.avi.jarvis.lab_-vmug-hackazon";
    let key = ObjKey::new("vmug", "hackazon-pools");
    view.upsert_rule(
        RuleKind::HttpRule,
        key.clone(),
        rule(
            "fqdn: hackazon.avi.jarvis.lab
paths:
- target: /
  loadBalancerPolicy: {algorithm: LB_ALGORITHM_CONSISTENT_HASH, hash: LB_ALGORITHM_CONSISTENT_HASH_SOURCE_IP_ADDRESS}
  applicationPersistence: System-Persistence-Http-Cookie
  healthMonitors: [System-HTTP]",
            10,
        ),
    );
    r.change(Change::Rules).await;
    r.until("applied", |p| p.converged_once && p.events_pending == 0)
        .await;
    assert_eq!(
        status_of(&r, RuleKind::HttpRule, &key),
        Some(json!({"status": "Accepted", "error": null}))
    );
    let pool = get_named(&c, "pool", pool_name).await.expect("pool");
    assert_eq!(pool["lb_algorithm"], "LB_ALGORITHM_CONSISTENT_HASH");
    assert_eq!(
        pool["lb_algorithm_hash"],
        "LB_ALGORITHM_CONSISTENT_HASH_SOURCE_IP_ADDRESS"
    );
    assert!(
        pool["application_persistence_profile_ref"]
            .as_str()
            .is_some_and(|s| s.contains("applicationpersistenceprofile")),
        "{pool}"
    );
    assert_eq!(
        pool["health_monitor_refs"].as_array().map(Vec::len),
        Some(1)
    );

    remove_rule(&view, RuleKind::HttpRule, &key);
    r.change(Change::Rules).await;
    r.until("reverted", |p| p.converged_once && p.events_pending == 0)
        .await;
    let pool = get_named(&c, "pool", pool_name).await.expect("pool");
    assert_ne!(
        pool["lb_algorithm"], "LB_ALGORITHM_CONSISTENT_HASH",
        "{pool}"
    );
    assert!(
        pool.get("application_persistence_profile_ref")
            .is_none_or(Value::is_null),
        "{pool}"
    );
}

#[tokio::test]
async fn an_l4_rule_named_by_a_service_sets_its_virtual_service_and_pool_and_a_rejected_one_leaves_the_defaults()
 {
    let emu = avi_support::start(None).await;
    let annotated = DEMO.replace(
        "uid: u-1,",
        "uid: u-1, annotations: {ako.vmware.com/l4rule: fast},",
    );
    let key = ObjKey::new("vmug", "fast");
    let view = std::sync::Arc::new(ako::k8s::observe::View::from_parts(
        vec![service(&annotated)],
        vec![],
        vec![],
    ));
    view.upsert_rule(
        RuleKind::L4Rule,
        key.clone(),
        rule(
            "applicationProfileRef: System-L4-Application
networkProfileRef: System-TCP-Proxy
analyticsProfileRef: System-Analytics-Profile
performanceLimits: {maxConcurrentConnections: 105}
backendProperties:
- {port: 80, protocol: TCP, lbAlgorithm: LB_ALGORITHM_ROUND_ROBIN, applicationPersistenceProfileRef: System-Persistence-Client-IP}",
            10,
        ),
    );
    let mut r = Running::start(&emu, view.clone(), None);
    r.until("converged", |p| p.converged_once && p.events_pending == 0)
        .await;
    assert_eq!(
        status_of(&r, RuleKind::L4Rule, &key),
        Some(json!({"status": "Accepted", "error": null}))
    );
    let c = client(&emu);
    let vs = get_named(&c, "virtualservice", "veba-of--vmug-avisvc-lb")
        .await
        .expect("vs");
    assert_eq!(vs["performance_limits"]["max_concurrent_connections"], 105);
    let pool = get_named(&c, "pool", "veba-of--vmug-avisvc-lb-TCP-80")
        .await
        .expect("pool");
    assert_eq!(pool["lb_algorithm"], "LB_ALGORITHM_ROUND_ROBIN");
    assert!(
        pool["application_persistence_profile_ref"]
            .as_str()
            .is_some_and(|s| s.contains("applicationpersistenceprofile")),
        "{pool}"
    );

    // The rule changed to name a profile the controller lacks: Rejected, and the Service back at the defaults.
    view.upsert_rule(
        RuleKind::L4Rule,
        key.clone(),
        rule("networkProfileRef: Custom-Network-Profile", 10),
    );
    r.change(Change::Rules).await;
    r.until("judged", |p| p.converged_once && p.events_pending == 0)
        .await;
    assert_eq!(
        status_of(&r, RuleKind::L4Rule, &key),
        Some(json!({"status": "Rejected",
            "error": "networkprofile \"Custom-Network-Profile\" not found on controller (spec.networkProfileRef)"}))
    );
    let pool = get_named(&c, "pool", "veba-of--vmug-avisvc-lb-TCP-80")
        .await
        .expect("pool");
    assert_eq!(
        pool["lb_algorithm"], "LB_ALGORITHM_LEAST_CONNECTIONS",
        "{pool}"
    );
    let vs = get_named(&c, "virtualservice", "veba-of--vmug-avisvc-lb")
        .await
        .expect("vs");
    assert!(
        vs.get("performance_limits").is_none_or(Value::is_null),
        "{vs}"
    );
    let warned = r.sink.events_for(&demo_key());
    assert!(
        warned
            .iter()
            .any(|n| n.message.contains("L4Rule vmug/fast is Rejected")),
        "{warned:?}"
    );
}

/// An object by name, its references carrying the names they point to (`...#<name>`).
async fn get_with_names(c: &ako::avi::AviClient, kind: &str, name: &str) -> Option<Value> {
    get_named(c, kind, &format!("{name}&include_name=true")).await
}

/// An emulator whose lab has a second VIP network, `infra-net` (127.20.0.0/24), for AviInfraSettings.
async fn with_infra_network() -> ako::emulator::EmulatorHandle {
    avi_support::start_with(ako::emulator::EmulatorConfig {
        seed: ako::emulator::seed_with_vip_network(
            "infra-net",
            "127.20.0.0/24".parse().expect("subnet"),
        )
        .expect("seed"),
        ..avi_support::config(None)
    })
    .await
}

/// The VsVip's VIP network (the name in its `network_ref`) and first address.
fn vip_placement(vsvip: &Value) -> (String, String) {
    let vip = &vsvip["vip"][0];
    let net = vip["ipam_network_subnet"]["network_ref"]
        .as_str()
        .and_then(|r| r.rsplit_once('#').map(|(_, n)| n.to_string()))
        .unwrap_or_default();
    let ip = vip["ip_address"]["addr"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (net, ip)
}

#[tokio::test]
async fn an_infra_setting_places_a_service_on_its_se_group_network_and_rhi_and_a_rejected_one_leaves_the_global_placement()
 {
    let emu = with_infra_network().await;
    let annotated = DEMO.replace(
        "uid: u-1,",
        "uid: u-1, annotations: {aviinfrasetting.ako.vmware.com/name: blue},",
    );
    let view = std::sync::Arc::new(ako::k8s::observe::View::from_parts(
        vec![service(&annotated)],
        vec![],
        vec![],
    ));
    let key = ObjKey::new("", "blue");
    view.upsert_rule(
        RuleKind::AviInfraSetting,
        key.clone(),
        rule(
            "seGroup: {name: Default-Group}
network:
  vipNetworks: [{networkName: infra-net, cidr: 127.20.0.0/24}]
  enableRhi: true
  bgpPeerLabels: [peer1]",
            10,
        ),
    );
    let mut r = Running::start(&emu, view.clone(), None);
    r.until("converged", |p| p.converged_once && p.events_pending == 0)
        .await;
    assert_eq!(
        status_of(&r, RuleKind::AviInfraSetting, &key),
        Some(json!({"status": "Accepted", "error": null}))
    );
    let c = client(&emu);
    let vs = get_with_names(&c, "virtualservice", "veba-of--vmug-avisvc-lb")
        .await
        .expect("vs");
    assert!(
        vs["se_group_ref"]
            .as_str()
            .is_some_and(|s| s.ends_with("#Default-Group")),
        "{vs}"
    );
    assert_eq!(vs["enable_rhi"], true);
    let vsvip = get_with_names(&c, "vsvip", "veba-of--vmug-avisvc-lb")
        .await
        .expect("vsvip");
    let (net, ip) = vip_placement(&vsvip);
    assert_eq!(net, "infra-net", "{vsvip}");
    assert!(ip.starts_with("127.20.0."), "{vsvip}");
    assert_eq!(vsvip["bgp_peer_labels"], json!(["peer1"]));
    let status = r.sink.last_status(&demo_key()).expect("status");
    assert_eq!(status[0].ip.as_deref(), Some(ip.as_str()));

    // Changed to name what the controller lacks: Rejected in AKO's words, the Service back on the global
    // placement with a Warning saying why, and nothing of the setting left on the objects.
    view.upsert_rule(
        RuleKind::AviInfraSetting,
        key.clone(),
        rule("seGroup: {name: no-such-group}", 10),
    );
    r.change(Change::Rules).await;
    r.until("judged", |p| p.converged_once && p.events_pending == 0)
        .await;
    assert_eq!(
        status_of(&r, RuleKind::AviInfraSetting, &key),
        Some(json!({"status": "Rejected",
            "error": "serviceenginegroup \"no-such-group\" not found on controller (spec.seGroup.name)"}))
    );
    let vs = get_with_names(&c, "virtualservice", "veba-of--vmug-avisvc-lb")
        .await
        .expect("vs");
    assert!(
        vs["se_group_ref"]
            .as_str()
            .is_some_and(|s| s.ends_with("#vmug-se-group")),
        "{vs}"
    );
    assert!(vs.get("enable_rhi").is_none_or(|v| v != true), "{vs}");
    let vsvip = get_with_names(&c, "vsvip", "veba-of--vmug-avisvc-lb")
        .await
        .expect("vsvip");
    assert_eq!(vip_placement(&vsvip).0, "dpg-sedatapath-18", "{vsvip}");
    assert!(
        vsvip.get("bgp_peer_labels").is_none_or(Value::is_null),
        "{vsvip}"
    );
    let warned = r.sink.events_for(&demo_key());
    assert!(
        warned
            .iter()
            .any(|n| n.message.contains("AviInfraSetting \"blue\" is Rejected")),
        "{warned:?}"
    );
}

#[tokio::test]
async fn a_namespace_annotation_binds_its_services_to_an_infra_setting() {
    let emu = avi_support::start(None).await;
    let (view, key) = (
        std::sync::Arc::new(ako::k8s::observe::View::from_parts(
            vec![service(DEMO)],
            vec![],
            vec![],
        )),
        ObjKey::new("", "compact"),
    );
    view.upsert_rule(
        RuleKind::AviInfraSetting,
        key,
        rule("seGroup: {name: Default-Group}", 10),
    );
    let mut r = Running::start(&emu, view.clone(), None);
    r.until("converged", |p| p.converged_once && p.events_pending == 0)
        .await;
    let c = client(&emu);
    let seg = async || {
        get_with_names(&c, "virtualservice", "veba-of--vmug-avisvc-lb")
            .await
            .and_then(|vs| vs["se_group_ref"].as_str().map(str::to_string))
            .unwrap_or_default()
    };
    assert!(seg().await.ends_with("#vmug-se-group"));
    r.change(view.set_namespace_infra("vmug", Some("compact".into())))
        .await;
    r.until("re-placed", |p| p.converged_once && p.retrying == 0)
        .await;
    assert!(seg().await.ends_with("#Default-Group"), "{}", seg().await);
    r.change(view.set_namespace_infra("vmug", None)).await;
    r.until("back", |p| p.converged_once && p.retrying == 0)
        .await;
    assert!(seg().await.ends_with("#vmug-se-group"));
}

#[tokio::test]
async fn an_ingress_class_naming_an_infra_setting_gets_its_own_parent_and_moves_back_when_the_setting_is_rejected()
 {
    let emu = with_infra_network().await;
    let view =
        l7_view(&[&HACKAZON_ING.replace("ingressClassName: avi-lb", "ingressClassName: blue")]);
    let ours = |infra: Option<&str>| ako::core::intent::ClassInfo {
        controller: Some(ako::core::config::INGRESS_CONTROLLER.into()),
        is_default: false,
        infra: infra.map(str::to_string),
    };
    view.set_class("avi-lb", Some(ours(None)));
    view.set_class("blue", Some(ours(Some("blue"))));
    let key = ObjKey::new("", "blue");
    view.upsert_rule(
        RuleKind::AviInfraSetting,
        key.clone(),
        rule(
            "seGroup: {name: Default-Group}
network: {vipNetworks: [{networkName: infra-net, cidr: 127.20.0.0/24}]}
l7Settings: {shardSize: SMALL}",
            10,
        ),
    );
    let mut r = Running::start(&emu, view.clone(), None);
    r.until("converged", |p| p.converged_once && p.events_pending == 0)
        .await;
    let c = client(&emu);
    let parent = get_with_names(&c, "virtualservice", "veba-of--Shared-L7-blue-0")
        .await
        .expect("the setting's own parent");
    assert!(
        parent["se_group_ref"]
            .as_str()
            .is_some_and(|s| s.ends_with("#Default-Group")),
        "{parent}"
    );
    let vsvip = get_with_names(&c, "vsvip", "veba-of--Shared-L7-blue-0")
        .await
        .expect("its VsVip");
    let (net, ip) = vip_placement(&vsvip);
    assert_eq!(net, "infra-net");
    let hackazon = ObjKey::new("vmug", "hackazon");
    let status = r.sink.last_ingress_status(&hackazon).expect("status");
    assert_eq!(status[0].ip.as_deref(), Some(ip.as_str()));
    assert!(
        get_named(
            &c,
            "pool",
            "veba-of--blue-hackazon.avi.jarvis.lab_-vmug-hackazon"
        )
        .await
        .is_some()
    );
    assert!(
        get_named(&c, "virtualservice", "veba-of--Shared-L7-0")
            .await
            .is_none(),
        "no global parent: no host of the global class"
    );

    // The setting now names an SE group the controller lacks: Rejected, and the host moves to the global
    // parent; the setting's objects go.
    view.upsert_rule(
        RuleKind::AviInfraSetting,
        key.clone(),
        rule("seGroup: {name: no-such-group}", 10),
    );
    r.change(Change::Rules).await;
    r.until("moved", |p| {
        p.converged_once && p.retrying == 0 && p.events_pending == 0
    })
    .await;
    let global = get_with_names(&c, "vsvip", "veba-of--Shared-L7-0")
        .await
        .expect("the global parent's VsVip");
    let (net, ip) = vip_placement(&global);
    assert_eq!(net, "dpg-sedatapath-18");
    assert!(
        r.sink
            .last_ingress_status(&hackazon)
            .is_some_and(|s| s[0].ip.as_deref() == Some(ip.as_str())),
        "the status follows the host"
    );
    for (kind, name) in [
        ("virtualservice", "veba-of--Shared-L7-blue-0"),
        ("vsvip", "veba-of--Shared-L7-blue-0"),
        (
            "pool",
            "veba-of--blue-hackazon.avi.jarvis.lab_-vmug-hackazon",
        ),
        (
            "httppolicyset",
            "veba-of--Shared-L7-blue-0--hackazon.avi.jarvis.lab",
        ),
    ] {
        assert!(
            get_named(&c, kind, name).await.is_none(),
            "{kind} {name} left"
        );
    }
    let warned = r.sink.ingress_events_for(&hackazon);
    assert!(
        warned
            .iter()
            .any(|n| n.message.contains("AviInfraSetting \"blue\" is Rejected")),
        "{warned:?}"
    );
}

#[tokio::test]
async fn an_l4_rule_listener_with_ssl_terminates_tls_on_the_virtual_service_and_reverts() {
    let emu = avi_support::start(None).await;
    let annotated = DEMO.replace(
        "uid: u-1,",
        "uid: u-1, annotations: {ako.vmware.com/l4rule: tls},",
    );
    let view = std::sync::Arc::new(ako::k8s::observe::View::from_parts(
        vec![service(&annotated)],
        vec![],
        vec![],
    ));
    let mut r = Running::start(&emu, view.clone(), None);
    r.until("converged", |p| p.converged_once && p.events_pending == 0)
        .await;
    let c = client(&emu);
    let name = "veba-of--vmug-avisvc-lb";
    assert!(get_named(&c, "l4policyset", name).await.is_some());
    let key = ObjKey::new("vmug", "tls");
    view.upsert_rule(
        RuleKind::L4Rule,
        key.clone(),
        rule(
            "listenerProperties: [{port: 80, protocol: TCP, enableSsl: true}]
sslKeyAndCertificateRefs: [System-Default-Portal-Cert]
sslProfileRef: System-Standard",
            10,
        ),
    );
    r.change(Change::Rules).await;
    r.until("applied", |p| p.converged_once && p.retrying == 0)
        .await;
    assert_eq!(
        status_of(&r, RuleKind::L4Rule, &key),
        Some(json!({"status": "Accepted", "error": null}))
    );
    let vs = get_with_names(&c, "virtualservice", name)
        .await
        .expect("vs");
    assert_eq!(vs["services"][0]["enable_ssl"], true, "{vs}");
    assert!(
        vs["pool_ref"]
            .as_str()
            .is_some_and(|p| p.ends_with("#veba-of--vmug-avisvc-lb-TCP-80")),
        "{vs}"
    );
    assert!(
        vs["application_profile_ref"]
            .as_str()
            .is_some_and(|p| p.ends_with("#System-SSL-Application")),
        "{vs}"
    );
    assert!(
        get_named(&c, "l4policyset", name).await.is_none(),
        "the pool directly, no L4 policy set"
    );
    // The rule goes: the L4 policy set again, and nothing of SSL left.
    view.remove_rule(RuleKind::L4Rule, &key);
    r.change(Change::Rules).await;
    r.until("reverted", |p| p.converged_once && p.retrying == 0)
        .await;
    let vs = get_named(&c, "virtualservice", name).await.expect("vs");
    assert_eq!(vs["services"][0]["enable_ssl"], false, "{vs}");
    assert!(vs.get("pool_ref").is_none_or(Value::is_null), "{vs}");
    assert!(get_named(&c, "l4policyset", name).await.is_some());
}

#[tokio::test]
async fn a_host_rule_certificate_from_a_secret_is_rejected_until_the_secret_exists_then_serves_the_host()
 {
    let (emu, view, mut r) = l7_demo_converged().await;
    let c = client(&emu);
    let shop = ObjKey::new("shop", "shop");
    let key = ObjKey::new("shop", "corp");
    view.upsert_rule(
        RuleKind::HostRule,
        key.clone(),
        rule(
            "virtualhost:
               fqdn: shop.avi.jarvis.lab
               tls: {sslKeyCertificate: {name: corp-tls, type: secret}}",
            10,
        ),
    );
    r.change(Change::Rules).await;
    r.until("judged", |p| p.converged_once && p.events_pending == 0)
        .await;
    assert_eq!(
        status_of(&r, RuleKind::HostRule, &key),
        Some(json!({"status": "Rejected", "error": "secret \"corp-tls\" not found"}))
    );
    assert!(r.sink.last_ingress_status(&shop).is_none());
    // The Secret arrives: the rule is judged again and the host served with its certificate.
    r.change(view.set_tls_secret(
        &ObjKey::new("shop", "corp-tls"),
        Some(Some(tls_pair("shop.avi.jarvis.lab"))),
    ))
    .await;
    r.until("served", |p| {
        p.converged_once && p.retrying == 0 && p.events_pending == 0
    })
    .await;
    assert_eq!(
        status_of(&r, RuleKind::HostRule, &key),
        Some(json!({"status": "Accepted", "error": null}))
    );
    let cert = get_named(&c, "sslkeyandcertificate", "veba-of--shop.avi.jarvis.lab")
        .await
        .expect("the certificate from the Secret");
    assert!(
        cert["certificate"]["certificate"]
            .as_str()
            .is_some_and(|p| p.contains("BEGIN CERTIFICATE"))
    );
    assert!(
        get_named(&c, "virtualservice", "veba-of--shop.avi.jarvis.lab")
            .await
            .is_some()
    );
    assert!(
        r.sink
            .last_ingress_status(&shop)
            .is_some_and(|s| !s.is_empty())
    );
}

#[tokio::test]
async fn an_http_rule_destination_ca_makes_the_pools_pki_profile_and_it_goes_with_the_rule() {
    let (emu, view, mut r) = l7_demo_converged().await;
    let c = client(&emu);
    let pool_name = "veba-of--hackazon.avi.jarvis.lab_-vmug-hackazon";
    let pki = format!("{pool_name}-pkiprofile");
    let ca = ako::certs::generate_ca("backend-ca", 30)
        .expect("ca")
        .cert_pem;
    let key = ObjKey::new("vmug", "reencrypt");
    let spec = format!(
        "fqdn: hackazon.avi.jarvis.lab\npaths:\n- target: /\n  tls:\n    type: reencrypt\n    destinationCA: |\n{}",
        ca.lines()
            .map(|l| format!("      {l}\n"))
            .collect::<String>()
    );
    view.upsert_rule(RuleKind::HttpRule, key.clone(), rule(&spec, 10));
    r.change(Change::Rules).await;
    r.until("applied", |p| {
        p.converged_once && p.retrying == 0 && p.events_pending == 0
    })
    .await;
    let profile = get_named(&c, "pkiprofile", &pki)
        .await
        .expect("the pool's PKI profile");
    assert_eq!(profile["created_by"], "ako-veba-of");
    assert!(
        profile["ca_certs"][0]["certificate"]
            .as_str()
            .is_some_and(|p| p.contains("BEGIN CERTIFICATE"))
    );
    let pool = get_with_names(&c, "pool", pool_name).await.expect("pool");
    assert!(
        pool["pki_profile_ref"]
            .as_str()
            .is_some_and(|r| r.ends_with(&format!("#{pki}"))),
        "{pool}"
    );
    // The rule goes: the pool lets go of the profile first, then the profile is deleted.
    remove_rule(&view, RuleKind::HttpRule, &key);
    r.change(Change::Rules).await;
    r.until("reverted", |p| {
        p.converged_once && p.retrying == 0 && p.events_pending == 0
    })
    .await;
    let pool = get_named(&c, "pool", pool_name).await.expect("pool");
    assert!(
        pool.get("pki_profile_ref").is_none_or(Value::is_null),
        "{pool}"
    );
    assert!(get_named(&c, "pkiprofile", &pki).await.is_none());
}

#[tokio::test]
async fn a_namespace_annotation_moves_its_ingresses_to_the_settings_parent_and_back() {
    let (emu, view, mut r) = l7_demo_converged().await;
    let c = client(&emu);
    view.upsert_rule(
        RuleKind::AviInfraSetting,
        ObjKey::new("", "green"),
        rule(
            "seGroup: {name: Default-Group}\nl7Settings: {shardSize: SMALL}",
            10,
        ),
    );
    // No host uses it yet: judged, nothing to pass.
    r.taken(Change::Rules).await;
    r.change(view.set_namespace_infra("vmug", Some("green".into())))
        .await;
    r.until("moved", |p| {
        p.converged_once && p.retrying == 0 && p.events_pending == 0
    })
    .await;
    let parent = get_with_names(&c, "virtualservice", "veba-of--Shared-L7-green-0")
        .await
        .expect("the setting's parent");
    assert!(
        parent["se_group_ref"]
            .as_str()
            .is_some_and(|s| s.ends_with("#Default-Group")),
        "{parent}"
    );
    assert!(
        get_named(
            &c,
            "pool",
            "veba-of--green-hackazon.avi.jarvis.lab_-vmug-hackazon"
        )
        .await
        .is_some()
    );
    assert!(
        get_named(
            &c,
            "pool",
            "veba-of--hackazon.avi.jarvis.lab_-vmug-hackazon"
        )
        .await
        .is_none(),
        "the old pool went"
    );
    // The annotation goes: back on the global parent.
    r.change(view.set_namespace_infra("vmug", None)).await;
    r.until("back", |p| {
        p.converged_once && p.retrying == 0 && p.events_pending == 0
    })
    .await;
    assert!(
        get_named(
            &c,
            "pool",
            "veba-of--hackazon.avi.jarvis.lab_-vmug-hackazon"
        )
        .await
        .is_some()
    );
    assert!(
        get_named(&c, "virtualservice", "veba-of--Shared-L7-green-0")
            .await
            .is_none()
    );
}
