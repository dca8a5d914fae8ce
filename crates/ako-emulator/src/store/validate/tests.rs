//! Tests of `validate`.

use super::*;
use serde_json::json;

fn run(t: &str, body: Value) -> Result<(), String> {
    check(t, body.as_object().expect("object")).map_err(|e| {
        assert_eq!(e.status, 400);
        e.message
    })
}

#[test]
fn each_rule_kind_accepts_good_values_and_names_the_field_of_a_bad_one() {
    let vs = "/api/vsvip/vsvip-1";
    let cases: Vec<(&str, Value, Option<&str>)> = vec![
        // Required list entry fields and port ranges.
        (
            "virtualservice",
            json!({"name": "v", "services": [{"port": 80}]}),
            None,
        ),
        (
            "virtualservice",
            json!({"name": "v", "services": [{"enable_ssl": true}]}),
            Some(r#"{"services":"{"port":"This field is required."}"}"#),
        ),
        (
            "virtualservice",
            json!({"name": "v", "services": [{"port": 0}]}),
            Some(r#"{"services":"{"port":"Ensure this value is greater than or equal to 1."}"}"#),
        ),
        (
            "virtualservice",
            json!({"name": "v", "services": [{"port": 65536}]}),
            Some(r#"{"services":"{"port":"Ensure this value is less than or equal to 65535."}"}"#),
        ),
        (
            "virtualservice",
            json!({"name": "v", "services": [{"port": "x"}]}),
            Some(r#"{"services":"{"port":"A valid integer is required."}"}"#),
        ),
        (
            "virtualservice",
            json!({"name": "v", "services": {"port": 80}}),
            Some(r#"{"services":"Expected a list of items but got type "dict"."}"#),
        ),
        // Enums.
        (
            "virtualservice",
            json!({"name": "v", "type": "VS_TYPE_FANCY"}),
            Some(r#"{"type":""VS_TYPE_FANCY" is not a valid choice."}"#),
        ),
        (
            "pool",
            json!({"name": "p", "lb_algorithm": "LB_ALGORITHM_ROUND_ROBIN"}),
            None,
        ),
        (
            "pool",
            json!({"name": "p", "lb_algorithm": "FASTEST"}),
            Some(r#"{"lb_algorithm":""FASTEST" is not a valid choice."}"#),
        ),
        // Ref targets.
        (
            "virtualservice",
            json!({"name": "v", "vsvip_ref": vs}),
            None,
        ),
        (
            "virtualservice",
            json!({"name": "v", "pool_ref": vs}),
            Some(r#"{"pool_ref":"Refers to a VsVip object; this field takes a Pool"}"#),
        ),
        (
            "virtualservice",
            json!({"name": "v", "ssl_key_and_certificate_refs": ["/api/pool/pool-1"]}),
            Some(
                r#"{"ssl_key_and_certificate_refs":"Refers to a Pool object; this field takes a SSLKeyAndCertificate"}"#,
            ),
        ),
        // Addresses.
        (
            "vsvip",
            json!({"name": "v", "vip": [{"vip_id": "0", "ip_address": {"addr": "10.0.0.1", "type": "V4"}}]}),
            None,
        ),
        (
            "vsvip",
            json!({"name": "v", "vip": [{"vip_id": "0", "ip_address": {"addr": "fd00::1", "type": "V6"}}]}),
            None,
        ),
        (
            "vsvip",
            json!({"name": "v", "vip": [{"vip_id": "0", "ip_address": {"addr": "10.0.0.300", "type": "V4"}}]}),
            Some(r#"{"vip":"{"ip_address":"{"addr":"10.0.0.300 is not a valid IPv4 address"}"}"}"#),
        ),
        (
            "vsvip",
            json!({"name": "v", "vip": [{"vip_id": "0", "ip_address": {"addr": "10.0.0.1", "type": "V6"}}]}),
            Some(r#"{"vip":"{"ip_address":"{"addr":"10.0.0.1 is not a valid IPv6 address"}"}"}"#),
        ),
        (
            "vsvip",
            json!({"name": "v", "vip": [{"vip_id": "0", "ip_address": {"addr": "10.0.0.1"}}]}),
            Some(r#"{"vip":"{"ip_address":"{"type":"This field is required."}"}"}"#),
        ),
        (
            "pool",
            json!({"name": "p", "servers": [{"port": 80}]}),
            Some(r#"{"servers":"{"ip":"This field is required."}"}"#),
        ),
        (
            "pool",
            json!({"name": "p", "servers": [{"ip": {"addr": "1.1.1.1", "type": "V4"}, "port": 0}]}),
            None,
        ),
        // Prefixes.
        (
            "network",
            json!({"name": "n", "configured_subnets": [{"prefix": {"ip_addr": {"addr": "10.0.0.0", "type": "V4"}, "mask": 33}}]}),
            Some(
                r#"{"configured_subnets":"{"prefix":"{"mask":"Ensure this value is less than or equal to 32."}"}"}"#,
            ),
        ),
        // Nested required fields.
        (
            "poolgroup",
            json!({"name": "g", "members": [{"ratio": 1}]}),
            Some(r#"{"members":"{"pool_ref":"This field is required."}"}"#),
        ),
        (
            "httppolicyset",
            json!({"name": "h", "http_request_policy": {"rules": [{"name": "r", "index": 0, "enable": true,
                    "switching_action": {"action": "HTTP_SWITCHING_SELECT_POOL", "pool_ref": "/api/pool/pool-1"}}]}}),
            None,
        ),
        (
            "httppolicyset",
            json!({"name": "h", "http_request_policy": {"rules": [{"name": "r", "index": 0, "enable": true,
                    "switching_action": {"pool_ref": "/api/pool/pool-1"}}]}}),
            Some(
                r#"{"http_request_policy":"{"rules":"{"switching_action":"{"action":"This field is required."}"}"}"}"#,
            ),
        ),
        (
            "l4policyset",
            json!({"name": "l", "l4_connection_policy": {"rules": [{"name": "r", "index": 0,
                    "match": {"port": {"match_criteria": "IS_IN", "ports": [70000]}},
                    "action": {"select_pool": {"action_type": "L4_RULE_ACTION_SELECT_POOL"}}}]}}),
            Some(
                r#"{"l4_connection_policy":"{"rules":"{"match":"{"port":"{"ports":"Ensure this value is less than or equal to 65535."}"}"}"}"}"#,
            ),
        ),
        (
            "ipamdnsproviderprofile",
            json!({"name": "i"}),
            Some(r#"{"type":"This field is required."}"#),
        ),
        (
            "sslkeyandcertificate",
            json!({"name": "c", "certificate": {}}),
            Some(r#"{"certificate":"{"certificate":"This field is required."}"}"#),
        ),
        ("tenant", json!({"name": "t", "local": "true"}), None),
        (
            "tenant",
            json!({"name": "t", "local": "yes"}),
            Some(r#"{"local":"Must be a valid boolean."}"#),
        ),
    ];
    for (t, body, want) in cases {
        let got = run(t, body.clone());
        assert_eq!(got.err().as_deref(), want, "{t} {body}");
    }
}

#[test]
fn every_operator_written_type_has_a_rule_table() {
    for t in [
        "virtualservice",
        "vsvip",
        "pool",
        "poolgroup",
        "httppolicyset",
        "sslkeyandcertificate",
        "l4policyset",
        "network",
        "ipamdnsproviderprofile",
        "cloud",
    ] {
        assert!(rules_for(t).len() > 1, "{t}");
        for r in rules_for(t) {
            assert!(
                !r.path.is_empty() && !r.path.contains(".."),
                "{t}: {}",
                r.path
            );
        }
    }
}
