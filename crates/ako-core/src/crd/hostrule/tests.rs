use super::*;
use crate::crd::{Lookup, check_refs, spec_of};

fn spec(yaml: &str) -> HostRuleSpec {
    let v: Value = serde_yaml_ng::from_str(yaml).expect("yaml");
    spec_of(&serde_json::json!({ "spec": v })).expect("spec")
}

/// AKO's documentation sample (tests/data/ako/crds/hostrule.yaml), as users apply it.
fn docs_sample() -> HostRuleSpec {
    let doc: Value = serde_yaml_ng::from_str(include_str!(
        "../../../../../tests/data/ako/crds/hostrule.yaml"
    ))
    .expect("yaml");
    spec_of(&doc).expect("AKO's sample reads")
}

#[test]
fn akos_documentation_sample_reads_with_every_field_known() {
    let s = docs_sample();
    assert_eq!(s.fqdn(), "foo.region1.com");
    assert_eq!(
        s.controller_certs(),
        vec!["avi-ssl-key-cert", "avi-ssl-key-cert2"]
    );
    let n = s.notes();
    assert!(n.unknown.is_empty(), "{:?}", n.unknown);
    let fields: Vec<&str> = n.unimplemented.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields, ["spec.virtualhost.l7Rule"]);
    // Every controller object the sample names, with its field.
    let refs = s.refs();
    let kinds: Vec<&str> = refs.iter().map(|r| r.obj_type).collect();
    assert_eq!(
        kinds,
        [
            "wafpolicy",
            "applicationprofile",
            "analyticsprofile",
            "errorpageprofile",
            "networksecuritypolicy",
            "sslprofile",
            "sslkeyandcertificate",
            "sslkeyandcertificate",
            "icapprofile",
            "httppolicyset",
            "vsdatascriptset"
        ]
    );
    assert_eq!(refs[0].field, "spec.virtualhost.wafPolicy");
}

#[test]
fn fqdn_types_match_as_akos_do() {
    let cases = [
        ("Exact", "a.example.com", "a.example.com", true),
        ("Exact", "a.example.com", "A.Example.com", true),
        ("Exact", "a.example.com", "b.a.example.com", false),
        ("Wildcard", "*.example.com", "a.example.com", true),
        ("Wildcard", "*.example.com", "a.b.example.com", true),
        ("Wildcard", "*.example.com", "example.com", false),
        ("Wildcard", "*.example.com", "a.example.org", false),
        ("Contains", "shop", "shop.example.com", true),
        ("Contains", "shop", "a.example.com", false),
    ];
    for (t, fqdn, host, want) in cases {
        let s = spec(&format!("virtualhost: {{fqdn: '{fqdn}', fqdnType: {t}}}"));
        assert_eq!(s.matches(host), want, "{t} {fqdn} vs {host}");
    }
}

#[test]
fn checks_refuse_what_akos_validator_refuses_in_its_words() {
    let cases = [
        ("virtualhost: {fqdn: ''}", Some("fqdn is required")),
        (
            "virtualhost: {fqdn: a.example.com, fqdnType: Wildcard}",
            Some("must start with '*'"),
        ),
        (
            "virtualhost: {fqdn: a.example.com, tcpSettings: {loadBalancerIP: 10.1.1}}",
            Some("loadBalancerIP 10.1.1 is not a valid IP"),
        ),
        (
            "virtualhost: {fqdn: a.example.com, gslb: {fqdn: a.example.com}}",
            Some("GSLB FQDN and local FQDN are same"),
        ),
        (
            "virtualhost: {fqdn: a.example.com, tcpSettings: {listeners: [{port: 80}]}}",
            Some("Hosting parent virtualservice must have SSL enabled"),
        ),
        (
            "virtualhost: {fqdn: '*.example.com', fqdnType: Wildcard, aliases: [b.example.com]}",
            Some("Aliases is supported only when FQDN type is set as Exact"),
        ),
        (
            "virtualhost: {fqdn: a.example.com, aliases: [a.example.com]}",
            Some("Aliases field has same entry as the FQDN field"),
        ),
        (
            "virtualhost: {fqdn: a.example.com, aliases: [b.example.com, b.example.com]}",
            Some("Aliases must be unique"),
        ),
        (
            "virtualhost: {fqdn: a.example.com, icapProfile: [a, b]}",
            Some("Can only have 1 ICAP profile"),
        ),
        (
            "virtualhost: {fqdn: a.example.com, tls: {sslKeyCertificate: {name: c, type: ref}, termination: passthrough}}",
            Some("termination"),
        ),
        (
            "virtualhost: {fqdn: a.example.com, tls: {sslKeyCertificate: {name: c, type: ref}, termination: edge}}",
            None,
        ),
        ("virtualhost: {fqdn: a.example.com, wafPolicy: w}", None),
    ];
    for (yaml, want) in cases {
        let got = spec(yaml).check();
        match want {
            None => assert_eq!(got, Ok(()), "{yaml}"),
            Some(part) => {
                let e = got.expect_err(yaml);
                assert!(e.contains(part), "{yaml}: {e}");
            }
        }
    }
}

#[test]
fn a_missing_controller_object_is_named_with_its_kind_and_field() {
    let s = spec(
        "virtualhost: {fqdn: a.example.com, wafPolicy: strict-waf, applicationProfile: System-HTTP}",
    );
    let lookup = |t: &str, n: &str| {
        if t == "wafpolicy" && n == "strict-waf" {
            Lookup::Missing
        } else {
            Lookup::Found
        }
    };
    assert_eq!(
        check_refs(&s.refs(), &lookup),
        Err("wafpolicy \"strict-waf\" not found on controller (spec.virtualhost.wafPolicy)".into())
    );
    // Offline (or the controller unreachable): never a rejection.
    assert_eq!(check_refs(&s.refs(), &|_, _| Lookup::Unknown), Ok(()));
}

#[test]
fn each_field_lands_in_the_virtual_service_body() {
    let s = spec(
        "virtualhost:
           fqdn: a.example.com
           enableVirtualHost: false
           tls: {sslKeyCertificate: {name: main, type: ref, alternateCertificate: {name: ecc, type: ref}}, sslProfile: strong}
           httpPolicy: {policySets: [p1, p2, p1]}
           datascripts: [ds1, ds2]
           wafPolicy: waf
           applicationProfile: app
           analyticsProfile: an
           errorPageProfile: err
           icapProfile: [icap]
           networkSecurityPolicy: nsp
           analyticsPolicy: {fullClientLogs: {enabled: true, throttle: MEDIUM, duration: 30}, logAllHeaders: true}",
    );
    let mut body = serde_json::json!({
        "http_policies": [{"index": 11, "http_policy_set_ref": "/api/httppolicyset/?name=own"}],
        "enabled": true,
    })
    .as_object()
    .cloned()
    .expect("object");
    let warnings = s.apply(&mut body, false);
    assert!(warnings.is_empty());
    let r = |t: &str, n: &str| Value::String(crate::plan::name_ref(t, n));
    let want = [
        ("enabled", Value::Bool(false)),
        (
            "ssl_key_and_certificate_refs",
            json!([
                r("sslkeyandcertificate", "main"),
                r("sslkeyandcertificate", "ecc")
            ]),
        ),
        ("ssl_profile_ref", r("sslprofile", "strong")),
        ("waf_policy_ref", r("wafpolicy", "waf")),
        ("application_profile_ref", r("applicationprofile", "app")),
        ("analytics_profile_ref", r("analyticsprofile", "an")),
        ("error_page_profile_ref", r("errorpageprofile", "err")),
        (
            "icap_request_profile_refs",
            json!([r("icapprofile", "icap")]),
        ),
        (
            "network_security_policy_ref",
            r("networksecuritypolicy", "nsp"),
        ),
        (
            "vs_datascripts",
            json!([
            {"index": 0, "vs_datascript_set_ref": r("vsdatascriptset", "ds1")},
            {"index": 1, "vs_datascript_set_ref": r("vsdatascriptset", "ds2")}]),
        ),
        // ako's own set keeps 11; the HostRule's follow at 11 + 1 + 5, each once.
        (
            "http_policies",
            json!([
            {"index": 11, "http_policy_set_ref": "/api/httppolicyset/?name=own"},
            {"index": 17, "http_policy_set_ref": r("httppolicyset", "p1")},
            {"index": 18, "http_policy_set_ref": r("httppolicyset", "p2")}]),
        ),
        (
            "analytics_policy",
            json!({"full_client_logs": {"enabled": true, "throttle": 30, "duration": 30}, "all_headers": true}),
        ),
    ];
    for (field, value) in want {
        assert_eq!(body.get(field), Some(&value), "{field}");
    }
}

#[test]
fn overwrite_replaces_akos_policy_sets_and_a_child_cannot_carry_a_network_security_policy() {
    let s = spec(
        "virtualhost: {fqdn: a.example.com, networkSecurityPolicy: nsp, httpPolicy: {policySets: [mine], overwrite: true}}",
    );
    let mut body =
        serde_json::json!({"http_policies": [{"index": 11, "http_policy_set_ref": "x"}]})
            .as_object()
            .cloned()
            .expect("object");
    let warnings = s.apply(&mut body, true);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(!body.contains_key("network_security_policy_ref"));
    assert_eq!(
        body.get("http_policies"),
        Some(
            &json!([{"index": 16, "http_policy_set_ref": crate::plan::name_ref("httppolicyset", "mine")}])
        )
    );
}

#[test]
fn throttle_names_map_to_akos_numbers() {
    for (name, want) in [
        (Some("HIGH"), 10),
        (Some("MEDIUM"), 30),
        (Some("LOW"), 50),
        (Some("DISABLED"), 0),
        (None, 10),
    ] {
        assert_eq!(throttle_value(name), want, "{name:?}");
    }
}
