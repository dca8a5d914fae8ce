use super::*;
use crate::crd::Lookup;
use crate::index::{HostRuleClaim, IngressClaims};

fn cfg() -> Config {
    Config {
        cluster_name: "veba-of".into(),
        dns_domains: vec!["avi.jarvis.lab".into()],
        ..Config::default()
    }
}

fn snap() -> Snapshot {
    let mut s = Snapshot::default();
    let ing: k8s_openapi::api::networking::v1::Ingress = serde_yaml_ng::from_str(
        r#"
metadata: {name: shop, namespace: shop, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  rules:
  - host: shop.avi.jarvis.lab
    http:
      paths:
      - {path: /cart, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /api, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}
"#,
    )
    .expect("ingress");
    s.upsert_ingress(IngressClaims::of(&ing, &cfg()));
    s.upsert_host_rule(
        HostRuleClaim {
            key: ObjKey::new("shop", "holder"),
            created: Some(100),
            rejected: false,
        },
        Some("shop.avi.jarvis.lab".into()),
    );
    s.upsert_host_rule(
        HostRuleClaim {
            key: ObjKey::new("shop", "rejected-one"),
            created: Some(50),
            rejected: true,
        },
        Some("rejected.avi.jarvis.lab".into()),
    );
    s
}

fn review(kind: RuleKind, ns: &str, name: &str, created: Option<i64>, yaml: &str) -> RuleReview {
    RuleReview {
        kind,
        key: ObjKey::new(ns, name),
        created,
        spec: serde_yaml_ng::from_str(yaml).expect("spec"),
    }
}

fn names(t: &str, n: &str) -> Lookup {
    match (t, n) {
        ("wafpolicy", "System-WAF-Policy") | ("applicationpersistenceprofile", _) => Lookup::Found,
        ("wafpolicy", _) => Lookup::Missing,
        _ => Lookup::Unknown,
    }
}

#[test]
fn each_denial_says_why_and_what_to_do() {
    use RuleKind::{HostRule, HttpRule};
    /// (kind, namespace, created, spec, the denial's text or `None`: allowed)
    type Case<'a> = (RuleKind, &'a str, Option<i64>, &'a str, Option<&'a str>);
    let cases: Vec<Case<'_>> = vec![
        (
            HostRule,
            "other",
            None,
            "virtualhost: {fqdn: shop.avi.jarvis.lab}",
            Some("duplicate fqdn shop.avi.jarvis.lab found in shop/holder"),
        ),
        (
            HostRule,
            "shop",
            None,
            "virtualhost: {fqdn: shop.example.org}",
            Some("outside the delegated DNS subdomains"),
        ),
        (
            HostRule,
            "shop",
            None,
            "virtualhost: {fqdn: new.avi.jarvis.lab, wafPolicy: strict}",
            Some("wafpolicy \"strict\" not found on controller (spec.virtualhost.wafPolicy)"),
        ),
        (
            HostRule,
            "shop",
            None,
            "virtualhost: {fqdn: new.avi.jarvis.lab, fqdnType: Regex}",
            Some("HostRule spec is not valid"),
        ),
        (
            HttpRule,
            "other",
            None,
            "fqdn: shop.avi.jarvis.lab\npaths: [{target: /}]",
            Some("no Ingress in namespace \"other\" serves host"),
        ),
        (
            HttpRule,
            "shop",
            None,
            "fqdn: shop.avi.jarvis.lab\npaths: [{target: /checkout}]",
            Some("selects no path of host"),
        ),
        (
            HttpRule,
            "shop",
            None,
            "fqdn: shop.avi.jarvis.lab\npaths: [{target: /, tls: {type: reencrypt, pkiProfile: a, destinationCA: b}}]",
            Some("Only one of the field should be set"),
        ),
        // Allowed: the holder itself, a rejected holder's FQDN, an unknown name (controller unreachable), a
        // target selecting paths.
        (
            HostRule,
            "shop",
            Some(100),
            "virtualhost: {fqdn: shop.avi.jarvis.lab, wafPolicy: System-WAF-Policy}",
            None,
        ),
        (
            HostRule,
            "other",
            None,
            "virtualhost: {fqdn: rejected.avi.jarvis.lab, sslProfile: x}",
            None,
        ),
        (
            HostRule,
            "other",
            None,
            "virtualhost: {fqdn: new.avi.jarvis.lab, applicationProfile: maybe}",
            None,
        ),
        (
            HttpRule,
            "shop",
            None,
            "fqdn: shop.avi.jarvis.lab\npaths: [{target: /}, {target: /api, applicationPersistence: p}]",
            None,
        ),
    ];
    for (kind, ns, created, yaml, want) in cases {
        // The stored one (created) is the holder itself, under update.
        let name = if created.is_some() { "holder" } else { "r" };
        let d = validate_rule(
            &review(kind, ns, name, created, yaml),
            &cfg(),
            &snap(),
            &names,
        );
        match want {
            None => assert!(d.allowed, "{yaml}: {:?}", d.reasons),
            Some(part) => {
                assert!(!d.allowed, "{yaml}");
                assert!(
                    d.reasons.iter().any(|r| r.contains(part)),
                    "{yaml}: {:?}",
                    d.reasons
                );
            }
        }
    }
}

#[test]
fn fields_ako_does_not_apply_yet_are_admitted_with_a_warning() {
    let d = validate_rule(
        &review(
            RuleKind::HostRule,
            "shop",
            "r",
            None,
            "virtualhost: {fqdn: new.avi.jarvis.lab, gslb: {fqdn: g.example.com, includeAliases: true}, useRegex: true}",
        ),
        &cfg(),
        &snap(),
        &names,
    );
    assert!(d.allowed, "{:?}", d.reasons);
    assert_eq!(d.warnings.len(), 2, "{:?}", d.warnings);
    assert!(
        d.warnings[0].contains("gslb.includeAliases"),
        "{:?}",
        d.warnings
    );
}

/// A controller whose every name exists, with certificates valid for the given names.
struct Certs(Vec<(&'static str, Vec<&'static str>)>);

impl crate::crd::ControllerView for Certs {
    fn lookup(&self, _: &str, _: &str) -> Lookup {
        Lookup::Found
    }
    fn cert_names(&self, name: &str) -> Option<Vec<String>> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, names)| names.iter().map(|s| s.to_string()).collect())
    }
}

#[test]
fn a_controller_certificate_not_valid_for_the_fqdn_is_denied_with_its_names() {
    let certs = Certs(vec![
        ("shop-cert", vec!["new.avi.jarvis.lab"]),
        ("wild-cert", vec!["*.avi.jarvis.lab"]),
    ]);
    let hr = |fqdn: &str, cert: &str| {
        review(
            RuleKind::HostRule,
            "shop",
            "r",
            None,
            &format!(
                "virtualhost: {{fqdn: {fqdn}, tls: {{sslKeyCertificate: {{name: {cert}, type: ref}}}}}}"
            ),
        )
    };
    let d = validate_rule(
        &hr("cart.avi.jarvis.lab", "shop-cert"),
        &cfg(),
        &snap(),
        &certs,
    );
    assert!(!d.allowed);
    assert_eq!(
        d.reasons,
        [
            "certificate \"shop-cert\" (spec.virtualhost.tls.sslKeyCertificate.name) is not valid for cart.avi.jarvis.lab: it names new.avi.jarvis.lab; clients would get a name mismatch"
        ]
    );
    for (fqdn, cert) in [
        ("new.avi.jarvis.lab", "shop-cert"),
        ("cart.avi.jarvis.lab", "wild-cert"),
        // Names not known (the controller did not say): never denied on.
        ("cart.avi.jarvis.lab", "unknown-cert"),
    ] {
        let d = validate_rule(&hr(fqdn, cert), &cfg(), &snap(), &certs);
        assert!(d.allowed, "{fqdn} {cert}: {:?}", d.reasons);
    }
}

#[test]
fn certificate_names_cover_a_host_exactly_or_one_label_under_a_wildcard() {
    use crate::crd::hostrule::name_covers;
    for (name, host, covers) in [
        ("shop.example.com", "shop.example.com", true),
        ("SHOP.example.com", "shop.EXAMPLE.com", true),
        ("*.example.com", "shop.example.com", true),
        ("*.example.com", "a.shop.example.com", false),
        ("*.example.com", "example.com", false),
        ("shop.example.com", "cart.example.com", false),
    ] {
        assert_eq!(name_covers(name, host), covers, "{name} {host}");
    }
}
