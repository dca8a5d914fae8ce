//! HostRules and HTTPRules on the translated objects: which virtual service and which pools they change.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::crd::{
    HostRuleEntry, HttpRuleEntry, Lookup, RuleId, RuleSet, Verdict, judge_host_rules,
    judge_http_rules, spec_of,
};

fn id(ns: &str, name: &str) -> RuleId {
    RuleId {
        created: Some(1),
        key: ObjKey::new(ns, name),
    }
}

fn rules(host_rules: &[(&str, &str)], http_rules: &[(&str, &str)]) -> RuleSet {
    let found = |_: &str, _: &str| Lookup::Found;
    let mut hr: Vec<HostRuleEntry> = host_rules
        .iter()
        .enumerate()
        .map(|(i, (ns, yaml))| HostRuleEntry {
            id: id(ns, &format!("hr{i}")),
            spec: spec_of(&json!({"spec": serde_yaml_ng::from_str::<Value>(yaml).expect("yaml")})),
            verdict: Verdict::Accepted,
        })
        .collect();
    judge_host_rules(&mut hr, &[], &found);
    let mut tr: Vec<HttpRuleEntry> = http_rules
        .iter()
        .enumerate()
        .map(|(i, (ns, yaml))| HttpRuleEntry {
            id: id(ns, &format!("r{i}")),
            spec: spec_of(&json!({"spec": serde_yaml_ng::from_str::<Value>(yaml).expect("yaml")})),
            verdict: Verdict::Accepted,
        })
        .collect();
    judge_http_rules(&mut tr, &found);
    RuleSet::new(&hr, &tr)
}

const CHILD: &str = "veba-of--shop.avi.jarvis.lab";

#[test]
fn a_host_rule_sets_the_sni_childs_fields_and_its_controller_certificate_replaces_the_secret() {
    let mut w = World::new(&[SHOP_TLS]);
    w.secrets
        .insert(ObjKey::new("vmug", "shop-tls"), Some(pair()));
    w.rules = Some(rules(
        &[(
            "vmug",
            "virtualhost: {fqdn: shop.avi.jarvis.lab, wafPolicy: System-WAF-Policy,
               tls: {sslKeyCertificate: {name: corp-cert, type: ref}},
               analyticsPolicy: {fullClientLogs: {enabled: true}}}",
        )],
        &[],
    ));
    let d = w.run(ShardSize::Medium, &cfg());
    let child = find(&d, Kind::VirtualServiceChild, CHILD);
    assert_eq!(
        child["waf_policy_ref"],
        json!("/api/wafpolicy/?name=System-WAF-Policy")
    );
    assert_eq!(
        child["ssl_key_and_certificate_refs"],
        json!(["/api/sslkeyandcertificate/?name=corp-cert"])
    );
    assert_eq!(
        child["analytics_policy"]["full_client_logs"],
        json!({"enabled": true, "throttle": 10, "duration": 0})
    );
    // The Secret's certificate is not uploaded when a controller certificate serves the host.
    assert!(names(&d, Kind::SslKeyAndCertificate).is_empty());
    assert!(outcome(&d, "shop").hosts.iter().all(|h| h.tls));
}

#[test]
fn a_controller_certificate_makes_an_insecure_host_secure_with_a_redirect() {
    let mut w = World::new(&[HACKAZON]);
    w.rules = Some(rules(
        &[(
            "vmug",
            "virtualhost: {fqdn: hackazon.avi.jarvis.lab, tls: {sslKeyCertificate: {name: corp-cert, type: ref}}}",
        )],
        &[],
    ));
    let d = w.run(ShardSize::Medium, &cfg());
    let child = find(
        &d,
        Kind::VirtualServiceChild,
        "veba-of--hackazon.avi.jarvis.lab",
    );
    assert_eq!(
        child["ssl_key_and_certificate_refs"],
        json!(["/api/sslkeyandcertificate/?name=corp-cert"])
    );
    let parent = parent_routes(&d, "veba-of--Shared-L7-0");
    assert_eq!(
        route(&parent, "hackazon.avi.jarvis.lab", "/", 80),
        "redirect"
    );
}

#[test]
fn a_host_rule_on_an_insecure_shared_host_is_reported_not_applied() {
    let mut w = World::new(&[HACKAZON]);
    w.rules = Some(rules(
        &[(
            "vmug",
            "virtualhost: {fqdn: hackazon.avi.jarvis.lab, wafPolicy: w}",
        )],
        &[],
    ));
    let d = w.run(ShardSize::Medium, &cfg());
    assert!(names(&d, Kind::VirtualServiceChild).is_empty());
    let problems = &outcome(&d, "hackazon").problems;
    assert!(
        problems
            .iter()
            .any(|p| p.message.contains("HostRule vmug/hr0") && p.message.contains("without TLS")),
        "{problems:?}"
    );
}

#[test]
fn a_host_rule_applies_to_a_dedicated_virtual_service_with_its_network_security_policy() {
    let mut w = World::new(&[HACKAZON]);
    w.rules = Some(rules(
        &[(
            "vmug",
            "virtualhost: {fqdn: '*.avi.jarvis.lab', fqdnType: Wildcard, enableVirtualHost: false,
               networkSecurityPolicy: allow-office, applicationProfile: System-HTTP-Policy-Set}",
        )],
        &[],
    ));
    let d = w.run(ShardSize::Dedicated, &cfg());
    let vs = find(
        &d,
        Kind::VirtualService,
        "veba-of--hackazon.avi.jarvis.lab-L7-dedicated",
    );
    assert_eq!(vs["enabled"], json!(false));
    assert_eq!(
        vs["network_security_policy_ref"],
        json!("/api/networksecuritypolicy/?name=allow-office")
    );
    assert_eq!(
        vs["application_profile_ref"],
        json!("/api/applicationprofile/?name=System-HTTP-Policy-Set")
    );
}

#[test]
fn an_http_rule_sets_the_pools_of_its_paths_in_its_namespace_only() {
    let other_ns = HACKAZON.replace(
        "name: hackazon, namespace: vmug",
        "name: hackazon, namespace: other",
    );
    let mut w = World::new(&[HACKAZON, &other_ns.replace("hackazon.avi", "hk2.avi")]);
    w.rules = Some(rules(
        &[],
        &[
            (
                "vmug",
                "fqdn: hackazon.avi.jarvis.lab
paths:
- {target: /, loadBalancerPolicy: {algorithm: LB_ALGORITHM_ROUND_ROBIN}}
- {target: /foo, applicationPersistence: System-Persistence-Http-Cookie, healthMonitors: [System-HTTP]}",
            ),
            (
                "other",
                "fqdn: hk2.avi.jarvis.lab\npaths: [{target: /, tls: {type: reencrypt}}]",
            ),
            (
                "vmug",
                "fqdn: hk2.avi.jarvis.lab\npaths: [{target: /, loadBalancerPolicy: {algorithm: LB_ALGORITHM_FEWEST_SERVERS}}]",
            ),
        ],
    ));
    let d = w.run(ShardSize::Medium, &cfg());
    let root = find(
        &d,
        Kind::Pool,
        "veba-of--hackazon.avi.jarvis.lab_-vmug-hackazon",
    );
    assert_eq!(root["lb_algorithm"], json!("LB_ALGORITHM_ROUND_ROBIN"));
    assert_eq!(root["application_persistence_profile_ref"], Value::Null);
    // /foo and /foo/bar/ are under the longer target /foo.
    for pool in [
        "veba-of--hackazon.avi.jarvis.lab_foo-vmug-hackazon",
        "veba-of--hackazon.avi.jarvis.lab_foo_bar_-vmug-hackazon",
    ] {
        let p = find(&d, Kind::Pool, pool);
        assert_eq!(
            p["application_persistence_profile_ref"],
            json!("/api/applicationpersistenceprofile/?name=System-Persistence-Http-Cookie"),
            "{pool}"
        );
        assert_eq!(
            p["health_monitor_refs"],
            json!(["/api/healthmonitor/?name=System-HTTP"]),
            "{pool}"
        );
        assert_eq!(
            p["lb_algorithm"],
            json!("LB_ALGORITHM_LEAST_CONNECTIONS"),
            "{pool}"
        );
    }
    // hk2's Ingress is in namespace other: only the rule of that namespace applies.
    let hk2 = find(
        &d,
        Kind::Pool,
        "veba-of--hk2.avi.jarvis.lab_-other-hackazon",
    );
    assert_eq!(hk2["sni_enabled"], json!(true));
    assert_eq!(hk2["lb_algorithm"], json!("LB_ALGORITHM_LEAST_CONNECTIONS"));
}

#[test]
fn tcp_settings_set_a_dedicated_virtual_services_listeners_and_address() {
    let mut w = World::new(&[HACKAZON]);
    w.rules = Some(rules(
        &[(
            "vmug",
            "virtualhost:
               fqdn: hackazon.avi.jarvis.lab
               tcpSettings: {listeners: [{port: 8081}, {port: 6443, enableSSL: true}], loadBalancerIP: 10.10.18.20}",
        )],
        &[],
    ));
    let d = w.run(ShardSize::Dedicated, &cfg());
    let name = "veba-of--hackazon.avi.jarvis.lab-L7-dedicated";
    assert_eq!(
        find(&d, Kind::VirtualService, name)["services"],
        json!([{"port": 8081, "enable_ssl": false}, {"port": 6443, "enable_ssl": true}])
    );
    assert_eq!(
        find(&d, Kind::VsVip, name)["vip"][0]["ip_address"]["addr"],
        json!("10.10.18.20")
    );
}

#[test]
fn aliases_are_served_matched_and_published_like_the_host() {
    let mut w = World::new(&[SHOP_TLS]);
    w.secrets
        .insert(ObjKey::new("vmug", "shop-tls"), Some(pair()));
    w.rules = Some(rules(
        &[(
            "vmug",
            "virtualhost: {fqdn: shop.avi.jarvis.lab, aliases: [store.avi.jarvis.lab, outside.example.org]}",
        )],
        &[],
    ));
    let d = w.run(ShardSize::Medium, &cfg());
    let child = find(&d, Kind::VirtualServiceChild, CHILD);
    assert_eq!(
        child["vh_domain_name"],
        json!([
            "shop.avi.jarvis.lab",
            "store.avi.jarvis.lab",
            "outside.example.org"
        ])
    );
    // The parent redirects the alias to HTTPS and the child routes it, as for the host.
    let parent = parent_routes(&d, "veba-of--Shared-L7-1");
    assert_eq!(route(&parent, "store.avi.jarvis.lab", "/", 80), "redirect");
    let child_policy = find(&d, Kind::HttpPolicySet, "veba-of--vmug-shop.avi.jarvis.lab");
    assert_eq!(
        route(child_policy, "store.avi.jarvis.lab", "/", 443),
        "veba-of--vmug-shop.avi.jarvis.lab_-shop"
    );
    // Published by the parent's VsVip (only inside the delegated subdomains).
    let dns = &find(&d, Kind::VsVip, "veba-of--Shared-L7-1")["dns_info"];
    assert_eq!(
        dns,
        &json!([{"fqdn": "shop.avi.jarvis.lab"}, {"fqdn": "store.avi.jarvis.lab"}])
    );
}

#[test]
fn a_gslb_name_is_answered_and_routed_like_the_host_but_not_published() {
    let mut w = World::new(&[SHOP_TLS]);
    w.secrets
        .insert(ObjKey::new("vmug", "shop-tls"), Some(pair()));
    w.rules = Some(rules(
        &[(
            "vmug",
            "virtualhost: {fqdn: shop.avi.jarvis.lab, gslb: {fqdn: shop.gslb.avi.jarvis.lab}}",
        )],
        &[],
    ));
    let d = w.run(ShardSize::Medium, &cfg());
    let child = find(&d, Kind::VirtualServiceChild, CHILD);
    assert_eq!(
        child["vh_domain_name"],
        json!(["shop.avi.jarvis.lab", "shop.gslb.avi.jarvis.lab"])
    );
    let parent = parent_routes(&d, "veba-of--Shared-L7-1");
    assert_eq!(
        route(&parent, "shop.gslb.avi.jarvis.lab", "/", 80),
        "redirect"
    );
    let child_policy = find(&d, Kind::HttpPolicySet, "veba-of--vmug-shop.avi.jarvis.lab");
    assert_eq!(
        route(child_policy, "shop.gslb.avi.jarvis.lab", "/", 443),
        "veba-of--vmug-shop.avi.jarvis.lab_-shop"
    );
    // The GSLB service answers for the name: the local VsVip does not publish it.
    let dns = &find(&d, Kind::VsVip, "veba-of--Shared-L7-1")["dns_info"];
    assert_eq!(dns, &json!([{"fqdn": "shop.avi.jarvis.lab"}]));
}

#[test]
fn a_host_rule_certificate_from_a_secret_of_its_namespace_makes_the_host_secure() {
    const HR: &str = "virtualhost: {fqdn: hackazon.avi.jarvis.lab, tls: {sslKeyCertificate: {name: corp-tls, type: secret}}}";
    let mut w = World::new(&[HACKAZON]);
    w.rules = Some(rules(&[("vmug", HR)], &[]));
    // The Secret does not exist (yet): the host stays as its Ingress says (insecure), and the Ingress is told.
    let d = w.run(ShardSize::Large, &cfg());
    let child = "veba-of--hackazon.avi.jarvis.lab";
    assert!(!d.objects.iter().any(|o| o.name == child));
    assert!(
        d.outcomes[0].problems.iter().any(|p| p.message.contains(
            "Secret vmug/corp-tls does not exist; the host keeps its Ingresses' certificate"
        )),
        "{:?}",
        d.outcomes[0].problems
    );
    // With the Secret: the host's certificate (AKO's name) from it, on an SNI child; HTTP redirects to HTTPS.
    w.secrets
        .insert(ObjKey::new("vmug", "corp-tls"), Some(pair()));
    let d = w.run(ShardSize::Large, &cfg());
    let cert = find(&d, Kind::SslKeyAndCertificate, child);
    assert!(
        cert["certificate"]["certificate"]
            .as_str()
            .is_some_and(|c| c.contains("BEGIN CERTIFICATE"))
    );
    let vs = find(&d, Kind::VirtualServiceChild, child);
    assert_eq!(
        vs["ssl_key_and_certificate_refs"],
        json!([crate::plan::name_ref("sslkeyandcertificate", child)])
    );
    let parent = parent_routes(&d, "veba-of--Shared-L7-0");
    assert_eq!(
        route(&parent, "hackazon.avi.jarvis.lab", "/", 80),
        "redirect"
    );
    assert!(d.outcomes[0].hosts[0].tls);
    // A Secret of another namespace is not the rule's.
    let mut other = World::new(&[HACKAZON]);
    other.rules = Some(rules(&[("shop", HR)], &[]));
    other
        .secrets
        .insert(ObjKey::new("vmug", "corp-tls"), Some(pair()));
    let d = other.run(ShardSize::Large, &cfg());
    assert!(!d.objects.iter().any(|o| o.name == child));
}

#[test]
fn an_http_rule_destination_ca_becomes_the_pools_pki_profile_with_akos_name() {
    let ca = ako_certs::generate_ca("backend-ca", 30)
        .expect("ca")
        .cert_pem;
    let mut w = World::new(&[HACKAZON]);
    let yaml = format!(
        "fqdn: hackazon.avi.jarvis.lab\npaths:\n- target: /foo\n  tls:\n    type: reencrypt\n    destinationCA: |\n{}",
        ca.lines()
            .map(|l| format!("      {l}\n"))
            .collect::<String>()
    );
    w.rules = Some(rules(&[], &[("vmug", &yaml)]));
    let d = w.run(ShardSize::Medium, &cfg());
    let pool = "veba-of--hackazon.avi.jarvis.lab_foo-vmug-hackazon";
    let pki = format!("{pool}-pkiprofile");
    let profile = find(&d, Kind::PkiProfile, &pki);
    assert_eq!(
        profile["ca_certs"][0]["certificate"].as_str(),
        Some(ca.as_str())
    );
    assert_eq!(profile["crl_check"], false);
    let p = find(&d, Kind::Pool, pool);
    assert_eq!(
        p["pki_profile_ref"],
        json!(crate::plan::name_ref("pkiprofile", &pki))
    );
    assert_eq!(p["sni_enabled"], true);
    // The root path is not under the target: no profile, no reference.
    let root = find(
        &d,
        Kind::Pool,
        "veba-of--hackazon.avi.jarvis.lab_-vmug-hackazon",
    );
    assert_eq!(root["pki_profile_ref"], Value::Null);
    assert_eq!(
        d.objects
            .iter()
            .filter(|o| o.kind == Kind::PkiProfile)
            .count(),
        3,
        "one per pool under /foo (Prefix /foo, Exact /foo, /foo/bar/)"
    );
}

#[test]
fn an_alternate_certificate_from_a_secret_is_made_and_listed_after_the_main_one() {
    const HR: &str = "virtualhost: {fqdn: shop.avi.jarvis.lab, tls: {sslKeyCertificate: {name: corp-cert, type: ref, alternateCertificate: {name: ecc-tls, type: secret}}}}";
    let mut w = World::new(&[SHOP_TLS]);
    w.secrets
        .insert(ObjKey::new("vmug", "shop-tls"), Some(pair()));
    w.rules = Some(rules(&[("vmug", HR)], &[]));
    // Missing: the main certificate alone, and the Ingress is told.
    let d = w.run(ShardSize::Medium, &cfg());
    let child = find(&d, Kind::VirtualServiceChild, CHILD);
    assert_eq!(
        child["ssl_key_and_certificate_refs"],
        json!([crate::plan::name_ref("sslkeyandcertificate", "corp-cert")])
    );
    assert!(
        d.outcomes[0].problems.iter().any(|p| p
            .message
            .contains("alternateCertificate: Secret vmug/ecc-tls does not exist")),
        "{:?}",
        d.outcomes[0].problems
    );
    w.secrets
        .insert(ObjKey::new("vmug", "ecc-tls"), Some(pair()));
    let d = w.run(ShardSize::Medium, &cfg());
    let alt = format!("{CHILD}-alt");
    find(&d, Kind::SslKeyAndCertificate, &alt);
    let child = find(&d, Kind::VirtualServiceChild, CHILD);
    assert_eq!(
        child["ssl_key_and_certificate_refs"],
        json!([
            crate::plan::name_ref("sslkeyandcertificate", "corp-cert"),
            crate::plan::name_ref("sslkeyandcertificate", &alt)
        ])
    );
}
