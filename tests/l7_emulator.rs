//! Every body the L7 translation produces is accepted by the emulator's write path (defaults, reference
//! resolution, field validation, certificate parsing, VIP allocation, DNS domains), created in plan order, for
//! shared and dedicated mode: this catches shapes a real controller refuses.

use std::collections::BTreeMap;

use ako::core::config::Config;
use ako::core::index::ObjKey;
use ako::core::l4::{
    EndpointAddress, EndpointGroup, MemberMode, NodeInfo, Placement, ServiceInput,
};
use ako::core::l7::{self, L7Input, ShardSize, TlsPair};
use ako::core::plan::{self, Kind, Observed, Step};
use ako::emulator::store::{Store, TenantSel};
use ako::emulator::{DEFAULT_SEED, DnsPolicy};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use serde_json::{Map, Value};

fn seeded_store() -> Store {
    let seed: serde_yaml_ng::Value = serde_yaml_ng::from_str(DEFAULT_SEED).expect("seed yaml");
    let seed: Value = serde_json::to_value(seed).expect("seed json");
    let entries: Vec<(String, Map<String, Value>)> = seed["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .map(|o| {
            let mut m = o.as_object().expect("object").clone();
            let t = m
                .remove("type")
                .and_then(|t| t.as_str().map(String::from))
                .expect("type");
            if let Some(own) = m.remove("type_") {
                m.insert("type".into(), own);
            }
            (t, m)
        })
        .collect();
    let mut store = Store::new(DnsPolicy::Reject);
    store.load_seed(entries).expect("seed loads");
    store
}

fn pair(cn: &str) -> TlsPair {
    let ca = ako::certs::generate_ca(cn, 30).expect("cert");
    TlsPair {
        cert_pem: ca.cert_pem,
        key_pem: ca.key_pem,
        problem: None,
    }
}

const INGRESSES: &[&str] = &[
    r#"
metadata: {name: hackazon, namespace: vmug, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  rules:
  - host: hackazon.avi.jarvis.lab
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /foo, pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /foo/, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}
      - {path: /gone, pathType: Prefix, backend: {service: {name: gone, port: {number: 80}}}}
"#,
    r#"
metadata: {name: shop, namespace: vmug, creationTimestamp: "2026-01-02T00:00:00Z"}
spec:
  tls: [{hosts: [shop.avi.jarvis.lab, '*.eu.avi.jarvis.lab'], secretName: shop-tls}]
  rules:
  - host: shop.avi.jarvis.lab
    http: {paths: [{path: /cart, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
  - host: '*.eu.avi.jarvis.lab'
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
"#,
    r#"
metadata: {name: blog, namespace: team, annotations: {ako.vmware.com/enable-tls: "true"}}
spec:
  rules:
  - http: {paths: [{path: /, pathType: ImplementationSpecific, backend: {service: {name: web, port: {number: 80}}}}]}
  - host: a.avi.jarvis.lab
    http: {paths: [{path: /x, pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}]}
"#,
];

/// Creates every desired object in plan order through the store's write path; returns the store.
fn apply_all(shard: ShardSize) -> (Store, l7::L7Desired) {
    let ingresses: Vec<Ingress> = INGRESSES
        .iter()
        .map(|y| serde_yaml_ng::from_str(y).expect("ingress"))
        .collect();
    let refs: Vec<&Ingress> = ingresses.iter().collect();
    let services: Vec<Service> = ["vmug", "team"]
        .iter()
        .map(|ns| {
            serde_yaml_ng::from_str(&format!(
                "metadata: {{name: web, namespace: {ns}}}\nspec: {{ports: [{{name: http, port: 80, targetPort: 8080}}]}}"
            ))
            .expect("service")
        })
        .collect();
    let endpoints = vec![EndpointGroup {
        ports: vec![(Some("http".into()), 8080, "TCP".into())],
        addresses: vec![EndpointAddress {
            ip: "10.244.0.5".parse().expect("ip"),
            ready: true,
            terminating: false,
        }],
    }];
    let inputs: Vec<ServiceInput<'_>> = services
        .iter()
        .map(|s| ServiceInput {
            service: s,
            endpoints: &endpoints,
        })
        .collect();
    let secrets = BTreeMap::from([(ObjKey::new("vmug", "shop-tls"), Some(pair("shop")))]);
    let default_cert = pair("default");
    let nodes: Vec<NodeInfo> = Vec::new();
    let input = L7Input {
        classes: None,
        namespace_infra: None,
        ingresses: &refs,
        services: &inputs,
        nodes: &nodes,
        secrets: &secrets,
        default_cert: Some(&default_cert),
        part: None,
        rules: None,
    };
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
        member_mode: MemberMode::ClusterIp,
        license_tier: Default::default(),
        vip_family: Default::default(),
    };
    let desired = l7::translate(&input, &cfg, &place, shard);
    let steps = plan::plan(&desired.objects, &Observed::default(), &place.owner());
    assert_eq!(steps.len(), desired.objects.len());
    let mut store = seeded_store();
    let sel = TenantSel::One("admin".into());
    for (i, step) in steps.into_iter().enumerate() {
        let Step::Create { kind, name, body } = step else {
            panic!("only creates expected, got {step:?}");
        };
        let uuid = format!("{}-l7-{i}", kind.obj_type());
        let obj = store
            .prepare(kind.obj_type(), body, &uuid, &sel, None)
            .unwrap_or_else(|e| panic!("{kind:?} {name} refused: {} {}", e.status, e.message));
        store.commit(obj);
    }
    (store, desired)
}

fn stored<'a>(store: &'a Store, obj_type: &str, name: &str) -> &'a Map<String, Value> {
    &store
        .find_by_name(obj_type, name, "admin", None)
        .unwrap_or_else(|| panic!("{obj_type} {name} not stored"))
        .body
}

#[test]
fn shared_mode_bodies_are_accepted_by_the_emulator() {
    let (store, desired) = apply_all(ShardSize::Large);
    let kinds: Vec<Kind> = desired.objects.iter().map(|o| o.kind).collect();
    for k in [
        Kind::VsVip,
        Kind::SslKeyAndCertificate,
        Kind::Pool,
        Kind::PoolGroup,
        Kind::HttpPolicySet,
        Kind::VirtualService,
        Kind::VirtualServiceChild,
    ] {
        assert!(kinds.contains(&k), "no {k:?} produced");
    }
    // Every parent got a VIP; every child points at a stored parent.
    for o in desired.objects.iter().filter(|o| o.kind == Kind::VsVip) {
        let vip = stored(&store, "vsvip", &o.name);
        assert!(
            vip["vip"][0]["ip_address"]["addr"].is_string(),
            "{} has no VIP",
            o.name
        );
    }
    for o in desired
        .objects
        .iter()
        .filter(|o| o.kind == Kind::VirtualServiceChild)
    {
        let child = stored(&store, "virtualservice", &o.name);
        let parent = child["vh_parent_vs_ref"].as_str().expect("parent ref");
        assert!(parent.starts_with("/api/virtualservice/"), "{parent}");
    }
    let cert = stored(
        &store,
        "sslkeyandcertificate",
        "veba-of--shop.avi.jarvis.lab",
    );
    assert!(
        cert["certificate"]["not_after"].is_string(),
        "certificate parsed"
    );
    let problems: Vec<String> = desired
        .outcomes
        .iter()
        .flat_map(|o| o.problems.iter().map(|p| p.message.clone()))
        .collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("\"gone\""));
}

#[test]
fn dedicated_mode_bodies_are_accepted_by_the_emulator() {
    let (store, desired) = apply_all(ShardSize::Dedicated);
    let vs: Vec<&str> = desired
        .objects
        .iter()
        .filter(|o| o.kind == Kind::VirtualService)
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(vs.len(), 5, "{vs:?}");
    let shop = stored(
        &store,
        "virtualservice",
        "veba-of--shop.avi.jarvis.lab-L7-dedicated",
    );
    assert!(
        shop["ssl_profile_ref"].is_string(),
        "SSL service gets a profile"
    );
}
