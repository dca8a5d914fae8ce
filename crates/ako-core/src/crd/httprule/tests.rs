use super::*;
use crate::crd::spec_of;

fn spec(yaml: &str) -> HttpRuleSpec {
    let v: Value = serde_yaml_ng::from_str(yaml).expect("yaml");
    spec_of(&serde_json::json!({ "spec": v })).expect("spec")
}

#[test]
fn akos_documentation_sample_reads_with_every_field_applied() {
    let doc: Value = serde_yaml_ng::from_str(include_str!(
        "../../../../../tests/data/ako/crds/httprule.yaml"
    ))
    .expect("yaml");
    let s: HttpRuleSpec = spec_of(&doc).expect("AKO's sample reads");
    assert_eq!(s.fqdn, "foo.avi.internal");
    assert_eq!(s.check(), Ok(()));
    let n = s.notes();
    assert!(n.unknown.is_empty());
    assert!(n.unimplemented.is_empty(), "{:?}", n.unimplemented);
    let kinds: Vec<&str> = s.refs().iter().map(|r| r.obj_type).collect();
    assert_eq!(
        kinds,
        [
            "healthmonitor",
            "healthmonitor",
            "applicationpersistenceprofile",
            "sslprofile"
        ]
    );
}

#[test]
fn checks_refuse_bad_paths_algorithms_and_both_ca_sources() {
    let cases = [
        (
            "fqdn: a.example.com\npaths: [{target: foo}]",
            Some("must start with '/'"),
        ),
        (
            "fqdn: a.example.com\npaths: [{target: /, loadBalancerPolicy: {algorithm: LB_ALGORITHM_RANDOM}}]",
            Some("is not one of"),
        ),
        (
            "fqdn: a.example.com\npaths: [{target: /, loadBalancerPolicy: {hash: NOPE}}]",
            Some("is not one of"),
        ),
        (
            "fqdn: a.example.com\npaths: [{target: /, tls: {type: passthrough}}]",
            Some("reencrypt"),
        ),
        (
            "fqdn: a.example.com\npaths: [{target: /, tls: {type: reencrypt, pkiProfile: p, destinationCA: x}}]",
            Some("Only one of the field should be set"),
        ),
        ("fqdn: ''", Some("fqdn is required")),
        (
            "fqdn: a.example.com\npaths: [{target: /, loadBalancerPolicy: {algorithm: LB_ALGORITHM_ROUND_ROBIN}}]",
            None,
        ),
    ];
    for (yaml, want) in cases {
        let got = spec(yaml).check();
        match want {
            None => assert_eq!(got, Ok(()), "{yaml}"),
            Some(part) => assert!(got.expect_err(yaml).contains(part), "{yaml}"),
        }
    }
}

#[test]
fn the_longest_target_that_prefixes_the_path_decides_as_text() {
    let s = spec("fqdn: a.example.com\npaths: [{target: /}, {target: /foo}, {target: /foo/bar}]");
    let cases = [
        ("/", Some("/")),
        ("", Some("/")),
        ("/foo", Some("/foo")),
        ("/foobar", Some("/foo")),
        ("/foo/bar/baz", Some("/foo/bar")),
        ("/other", Some("/")),
    ];
    for (path, want) in cases {
        assert_eq!(s.path_for(path).map(|p| p.target.as_str()), want, "{path}");
    }
    let narrow = spec("fqdn: a.example.com\npaths: [{target: /api}]");
    assert!(narrow.path_for("/web").is_none());
}

#[test]
fn each_field_lands_in_the_pool_body() {
    let r = |t: &str, n: &str| Value::String(crate::plan::name_ref(t, n));
    let cases: Vec<(&str, Vec<(&str, Value)>)> = vec![
        (
            "{target: /, loadBalancerPolicy: {algorithm: LB_ALGORITHM_FEWEST_SERVERS, hash: LB_ALGORITHM_CONSISTENT_HASH_URI}}",
            vec![("lb_algorithm", json!("LB_ALGORITHM_FEWEST_SERVERS"))],
        ),
        (
            "{target: /, loadBalancerPolicy: {algorithm: LB_ALGORITHM_CONSISTENT_HASH, hash: LB_ALGORITHM_CONSISTENT_HASH_CUSTOM_HEADER, hostHeader: X-User}}",
            vec![
                ("lb_algorithm", json!("LB_ALGORITHM_CONSISTENT_HASH")),
                (
                    "lb_algorithm_hash",
                    json!("LB_ALGORITHM_CONSISTENT_HASH_CUSTOM_HEADER"),
                ),
                ("lb_algorithm_consistent_hash_hdr", json!("X-User")),
            ],
        ),
        (
            "{target: /, healthMonitors: [hm1, hm2, hm1], applicationPersistence: System-Persistence-Http-Cookie}",
            vec![
                (
                    "health_monitor_refs",
                    json!([r("healthmonitor", "hm1"), r("healthmonitor", "hm2")]),
                ),
                (
                    "application_persistence_profile_ref",
                    r(
                        "applicationpersistenceprofile",
                        "System-Persistence-Http-Cookie",
                    ),
                ),
            ],
        ),
        (
            "{target: /, tls: {type: reencrypt}, enableHTTP2: true}",
            vec![
                ("ssl_profile_ref", r("sslprofile", "System-Standard")),
                ("sni_enabled", json!(true)),
                ("enable_http2", json!(true)),
            ],
        ),
        (
            "{target: /, tls: {type: reencrypt, sslProfile: strong, pkiProfile: my-ca}}",
            vec![
                ("ssl_profile_ref", r("sslprofile", "strong")),
                ("pki_profile_ref", r("pkiprofile", "my-ca")),
            ],
        ),
    ];
    for (path, want) in cases {
        let s = spec(&format!("fqdn: a.example.com\npaths: [{path}]"));
        let mut pool = Map::new();
        pool.insert(
            "health_monitor_refs".into(),
            json!([r("healthmonitor", "System-TCP")]),
        );
        s.paths[0].apply(&mut pool);
        for (field, value) in want {
            assert_eq!(pool.get(field), Some(&value), "{path}: {field}");
        }
        if !path.contains("CONSISTENT_HASH,")
            && !path.contains("CONSISTENT_HASH }")
            && !path.contains("algorithm: LB_ALGORITHM_CONSISTENT_HASH")
        {
            assert!(!pool.contains_key("lb_algorithm_hash"), "{path}");
        }
    }
}
