use super::*;
use crate::config::Config;
use crate::crd::{
    L4RuleEntry, Lookup, RuleId, RuleSet, Verdict, apply_l4_rules, judge_l4_rules, spec_of,
};
use crate::l4::{self, MemberMode, Placement, ServiceInput};
use crate::plan::Kind;
use k8s_openapi::api::core::v1::Service;

fn spec(yaml: &str) -> L4RuleSpec {
    let v: Value = serde_yaml_ng::from_str(yaml).expect("yaml");
    spec_of(&json!({ "spec": v })).expect("spec")
}

#[test]
fn akos_documentation_sample_reads_and_names_what_is_not_applied_yet() {
    let doc: Value = serde_yaml_ng::from_str(include_str!(
        "../../../../../tests/data/ako/crds/l4rule.yaml"
    ))
    .expect("yaml");
    let s: L4RuleSpec = spec_of(&doc).expect("AKO's sample reads");
    assert_eq!(s.check(), Ok(()));
    let n = s.notes();
    assert!(n.unknown.is_empty(), "{:?}", n.unknown);
    let fields: Vec<&str> = n.unimplemented.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "spec.revokeVipRoute",
            "spec.backendProperties[].healthMonitorCrdRefs"
        ]
    );
    assert_eq!(s.refs().len(), 15);
}

#[test]
fn the_load_balancing_checks_are_akos() {
    let cases = [
        (
            "loadBalancerIP: '10.1'",
            Some("loadBalancerIP 10.1 is not valid"),
        ),
        (
            "backendProperties: [{port: 80, protocol: TCP, lbAlgorithm: LB_ALGORITHM_CONSISTENT_HASH}]",
            Some("lbAlgorithmHash must be specified"),
        ),
        (
            "backendProperties: [{port: 80, protocol: TCP, lbAlgorithmHash: LB_ALGORITHM_CONSISTENT_HASH_URI}]",
            Some(
                "lbAlgorithmHash must not be specified when lbAlgorithm is \"LB_ALGORITHM_LEAST_CONNECTIONS\"",
            ),
        ),
        (
            "backendProperties: [{port: 80, protocol: TCP, lbAlgorithm: LB_ALGORITHM_CONSISTENT_HASH, lbAlgorithmHash: LB_ALGORITHM_CONSISTENT_HASH_CUSTOM_HEADER}]",
            Some("lbAlgorithmConsistentHashHdr must be specified"),
        ),
        (
            "backendProperties: [{port: 80, protocol: QUIC}]",
            Some("is not one of TCP, UDP, SCTP"),
        ),
        (
            "backendProperties: [{port: 80, protocol: TCP, lbAlgorithm: LB_ALGORITHM_CONSISTENT_HASH, lbAlgorithmHash: LB_ALGORITHM_CONSISTENT_HASH_SOURCE_IP_ADDRESS}]",
            None,
        ),
        ("loadBalancerIP: 10.10.18.9", None),
    ];
    for (yaml, want) in cases {
        match want {
            None => assert_eq!(spec(yaml).check(), Ok(()), "{yaml}"),
            Some(part) => {
                let e = spec(yaml).check().expect_err(yaml);
                assert!(e.contains(part), "{yaml}: {e}");
            }
        }
    }
}

#[test]
fn the_annotation_names_a_rule_in_the_services_namespace_or_another() {
    let ann = |v: &str| std::collections::BTreeMap::from([(ANNOTATION.to_string(), v.to_string())]);
    assert_eq!(
        bound("green", Some(&ann("my-rule"))),
        Some(ObjKey::new("green", "my-rule"))
    );
    assert_eq!(
        bound("default", Some(&ann("green/my-rule"))),
        Some(ObjKey::new("green", "my-rule"))
    );
    assert_eq!(bound("default", Some(&ann(" "))), None);
    assert_eq!(bound("default", None), None);
}

fn service(yaml: &str) -> Service {
    serde_yaml_ng::from_str(yaml).expect("service")
}

fn translate(svc: &Service, rules: Option<&RuleSet>) -> l4::L4Desired {
    let cfg = Config {
        cluster_name: "veba-of".into(),
        dns_domains: vec!["avi.jarvis.lab".into()],
        ..Config::default()
    };
    let place = Placement {
        rhi: Default::default(),
        cluster_name: "veba-of".into(),
        tenant: "admin".into(),
        cloud: "Default-Cloud".into(),
        se_group: "vmug-se-group".into(),
        vrf: "global".into(),
        vip_network: Some(("dpg-sedatapath-18".into(), "10.10.18.0/26".parse().ok())),
        member_mode: MemberMode::NodePort { selector: None },
        license_tier: Default::default(),
        vip_family: Default::default(),
    };
    let input = [ServiceInput {
        service: svc,
        endpoints: &[],
    }];
    let mut d = l4::translate(&input, &[], &cfg, &place);
    let key = ObjKey::of(&svc.metadata);
    let member = crate::crd::L4Member {
        key: &key,
        annotations: svc.metadata.annotations.as_ref(),
    };
    apply_l4_rules(&mut d, &[member], rules);
    crate::schema_check::assert_valid(&d.objects);
    d
}

fn rule_set(yaml: &str, accepted: bool) -> RuleSet {
    let v: Value = serde_yaml_ng::from_str(yaml).expect("yaml");
    let mut e = vec![L4RuleEntry {
        id: RuleId {
            created: Some(1),
            key: ObjKey::new("green", "my-l4-rule"),
        },
        spec: spec_of(&json!({ "spec": v })),
        verdict: Verdict::Accepted,
    }];
    let lookup = |_: &str, _: &str| {
        if accepted {
            Lookup::Found
        } else {
            Lookup::Missing
        }
    };
    judge_l4_rules(&mut e, &lookup);
    RuleSet::default().with_l4(&e)
}

const SVC: &str = r#"
metadata: {name: my-service, namespace: green, annotations: {ako.vmware.com/l4rule: my-l4-rule}}
spec:
  type: LoadBalancer
  ports: [{name: http, port: 80, targetPort: 9376, protocol: TCP, nodePort: 30080}, {name: dns, port: 53, targetPort: 53, protocol: UDP, nodePort: 30053}]
"#;

fn find<'a>(d: &'a l4::L4Desired, kind: Kind, name: &str) -> &'a serde_json::Map<String, Value> {
    &d.objects
        .iter()
        .find(|o| o.kind == kind && o.name == name)
        .unwrap_or_else(|| panic!("no {kind:?} {name}"))
        .body
}

#[test]
fn an_accepted_rule_sets_the_virtual_service_the_vip_and_the_pool_of_its_port() {
    let rules = rule_set(
        "applicationProfileRef: System-L4-Application
networkProfileRef: System-TCP-Proxy
analyticsProfileRef: System-Analytics-Profile
loadBalancerIP: 10.10.18.9
vsDatascriptRefs: [ds1]
performanceLimits: {maxConcurrentConnections: 105, maxThroughput: 100}
analyticsPolicy: {fullClientLogs: {enabled: true, duration: 0, throttle: 30}}
backendProperties:
- {port: 80, protocol: TCP, lbAlgorithm: LB_ALGORITHM_CONSISTENT_HASH, lbAlgorithmHash: LB_ALGORITHM_CONSISTENT_HASH_SOURCE_IP_ADDRESS,
   applicationPersistenceProfileRef: System-Persistence-Client-IP, healthMonitorRefs: [System-HTTP], minServersUp: 1}",
        true,
    );
    let d = translate(&service(SVC), Some(&rules));
    let name = "veba-of--green-my-service";
    let vs = find(&d, Kind::VirtualService, name);
    assert_eq!(
        vs["network_profile_ref"],
        json!(crate::plan::name_ref("networkprofile", "System-TCP-Proxy"))
    );
    assert_eq!(
        vs["performance_limits"],
        json!({"max_concurrent_connections": 105, "max_throughput": 100})
    );
    assert_eq!(
        vs["analytics_policy"],
        json!({"full_client_logs": {"enabled": true, "duration": 0, "throttle": 30}})
    );
    assert_eq!(vs["vs_datascripts"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        find(&d, Kind::VsVip, name)["vip"][0]["ip_address"]["addr"],
        json!("10.10.18.9")
    );
    let tcp = find(&d, Kind::Pool, "veba-of--green-my-service-TCP-80");
    assert_eq!(tcp["lb_algorithm"], json!("LB_ALGORITHM_CONSISTENT_HASH"));
    assert_eq!(tcp["min_servers_up"], json!(1));
    assert_eq!(
        tcp["health_monitor_refs"],
        json!([crate::plan::name_ref("healthmonitor", "System-HTTP")])
    );
    // The UDP port has no backend properties: the defaults.
    let udp = find(&d, Kind::Pool, "veba-of--green-my-service-UDP-53");
    assert_eq!(udp["lb_algorithm"], json!("LB_ALGORITHM_LEAST_CONNECTIONS"));
    assert_eq!(udp["application_persistence_profile_ref"], Value::Null);
}

#[test]
fn a_missing_or_rejected_rule_leaves_the_defaults_and_says_why() {
    let rejected = rule_set("networkProfileRef: Custom-Network-Profile", false);
    let d = translate(&service(SVC), Some(&rejected));
    let vs = find(&d, Kind::VirtualService, "veba-of--green-my-service");
    assert_ne!(
        vs["network_profile_ref"],
        json!(crate::plan::name_ref(
            "networkprofile",
            "Custom-Network-Profile"
        ))
    );
    assert_eq!(vs["performance_limits"], Value::Null);
    let problems = &d.outcomes[0].problems;
    assert!(
        problems.iter().any(|p| p.message.contains(
            "is Rejected (networkprofile \"Custom-Network-Profile\" not found on controller"
        )),
        "{problems:?}"
    );
    let none = RuleSet::default();
    let d = translate(&service(SVC), Some(&none));
    assert!(
        d.outcomes[0]
            .problems
            .iter()
            .any(|p| p.message.contains("L4Rule green/my-l4-rule does not exist"))
    );
}

#[test]
fn the_services_own_address_wins_over_the_rules() {
    let rules = rule_set("loadBalancerIP: 10.10.18.9", true);
    let own = SVC.replace(
        "type: LoadBalancer",
        "type: LoadBalancer\n  loadBalancerIP: 10.10.18.5",
    );
    let d = translate(&service(&own), Some(&rules));
    assert_eq!(
        find(&d, Kind::VsVip, "veba-of--green-my-service")["vip"][0]["ip_address"]["addr"],
        json!("10.10.18.5")
    );
}

const ONE_PORT: &str = r#"
metadata: {name: my-service, namespace: green, annotations: {ako.vmware.com/l4rule: my-l4-rule}}
spec:
  type: LoadBalancer
  ports: [{name: https, port: 443, targetPort: 8080, protocol: TCP, nodePort: 30443}]
"#;

#[test]
fn a_listener_with_ssl_terminates_tls_on_the_virtual_service_with_the_pool_directly() {
    let rules = rule_set(
        "listenerProperties: [{port: 443, protocol: TCP, enableSsl: true}]
sslKeyAndCertificateRefs: [l4-cert]
sslProfileRef: System-Standard",
        true,
    );
    let d = translate(&service(ONE_PORT), Some(&rules));
    let name = "veba-of--green-my-service";
    let vs = find(&d, Kind::VirtualService, name);
    assert_eq!(vs["services"][0]["enable_ssl"], true, "{vs:?}");
    assert_eq!(
        vs["application_profile_ref"],
        json!(crate::plan::name_ref(
            "applicationprofile",
            "System-SSL-Application"
        ))
    );
    assert_eq!(
        vs["ssl_key_and_certificate_refs"],
        json!([crate::plan::name_ref("sslkeyandcertificate", "l4-cert")])
    );
    assert_eq!(
        vs["ssl_profile_ref"],
        json!(crate::plan::name_ref("sslprofile", "System-Standard"))
    );
    assert_eq!(
        vs["pool_ref"],
        json!(crate::plan::name_ref(
            "pool",
            "veba-of--green-my-service-TCP-443"
        ))
    );
    assert_eq!(vs["l4_policies"], json!([]));
    assert!(
        !d.objects.iter().any(|o| o.kind == Kind::L4PolicySet),
        "no L4 policy set with SSL"
    );
    assert!(
        d.outcomes[0].problems.is_empty(),
        "{:?}",
        d.outcomes[0].problems
    );
    // Without the rule: the L4 policy set, no pool_ref, no certificates (what the rule set is undone).
    let d = translate(&service(ONE_PORT), Some(&RuleSet::default()));
    let vs = find(&d, Kind::VirtualService, name);
    assert_eq!(vs["pool_ref"], Value::Null);
    assert_eq!(vs["ssl_key_and_certificate_refs"], json!([]));
    assert_eq!(vs["services"][0]["enable_ssl"], false);
    find(&d, Kind::L4PolicySet, name);
}

#[test]
fn listeners_must_be_the_services_ports_and_ssl_needs_a_single_port_in_akos_words() {
    let cases = [
        (
            SVC,
            "listenerProperties: [{port: 80, protocol: TCP}]",
            "Number of port definitions in green/my-l4-rule l4rule listener spec does not match with the port definitons in green/my-service service",
        ),
        (
            SVC,
            "listenerProperties: [{port: 80, protocol: TCP}, {port: 54, protocol: TCP}]",
            "Port 53 defined in green/my-service service definition is not present in green/my-l4-rule l4rule listener spec",
        ),
        (
            SVC,
            "listenerProperties: [{port: 80, protocol: TCP, enableSsl: true}, {port: 53, protocol: UDP}]",
            "Port 80 requires enabling SSL for L4 but there are multiple ports defined in green/my-service service definition",
        ),
        (
            ONE_PORT,
            "networkProfileRef: System-TCP-Fast-Path\nlistenerProperties: [{port: 443, protocol: TCP, enableSsl: true}]",
            "SSL on port 443 needs the network profile System-TCP-Proxy, not System-TCP-Fast-Path",
        ),
    ];
    for (svc, yaml, why) in cases {
        let d = translate(&service(svc), Some(&rule_set(yaml, true)));
        let problems = &d.outcomes[0].problems;
        assert!(
            problems
                .iter()
                .any(|p| p.message.contains(why) && p.message.contains("is not applied")),
            "{why}: {problems:?}"
        );
        let vs = find(&d, Kind::VirtualService, "veba-of--green-my-service");
        assert_eq!(vs["pool_ref"], Value::Null, "{yaml}");
    }
}
