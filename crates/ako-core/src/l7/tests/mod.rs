//! Tests of the L7 translation: shared helpers; the scenarios by concern in the submodules.

mod crds;
mod infra;
mod routing;
mod tls;

use super::*;
use crate::l4::{EndpointAddress, EndpointGroup, MemberMode};
use k8s_openapi::api::core::v1::Service;

const C: &str = "veba-of";

fn cfg() -> Config {
    Config {
        cluster_name: C.into(),
        dns_domains: vec!["avi.jarvis.lab".into()],
        ..Config::default()
    }
}

fn place(mode: MemberMode) -> Placement {
    Placement {
        rhi: Default::default(),
        cluster_name: C.into(),
        tenant: "admin".into(),
        cloud: "Default-Cloud".into(),
        se_group: "vmug-se-group".into(),
        vrf: "global".into(),
        vip_network: Some(("dpg-sedatapath-18".into(), "10.10.18.0/26".parse().ok())),
        member_mode: mode,
        license_tier: Default::default(),
        vip_family: Default::default(),
    }
}

fn ing(yaml: &str) -> Ingress {
    serde_yaml_ng::from_str(yaml).expect("ingress yaml")
}

fn svc(yaml: &str) -> Service {
    serde_yaml_ng::from_str(yaml).expect("service yaml")
}

fn web_endpoints() -> Vec<EndpointGroup> {
    vec![EndpointGroup {
        ports: vec![(Some("http".into()), 8080, "TCP".into())],
        addresses: vec![EndpointAddress {
            ip: "10.244.0.5".parse().expect("ip"),
            ready: true,
            terminating: false,
        }],
    }]
}

fn pair() -> TlsPair {
    let ca = ako_certs::generate_ca("shop.avi.jarvis.lab", 30).expect("cert");
    tls(ca.cert_pem, ca.key_pem)
}

/// A pair as the Secret reader makes it: checked by ako-certs.
fn tls(cert_pem: impl Into<String>, key_pem: impl Into<String>) -> TlsPair {
    let (cert_pem, key_pem) = (cert_pem.into(), key_pem.into());
    TlsPair {
        problem: ako_certs::check_pair(&cert_pem, &key_pem).err(),
        cert_pem,
        key_pem,
    }
}

/// A world: Ingresses (YAML), the Services `web` and `api` in every namespace used, Secrets.
struct World {
    ingresses: Vec<Ingress>,
    services: Vec<Service>,
    endpoints: Vec<EndpointGroup>,
    secrets: BTreeMap<ObjKey, Option<TlsPair>>,
    default_cert: Option<TlsPair>,
    rules: Option<crate::crd::RuleSet>,
    classes: Option<intent::ClassView>,
    namespace_infra: Option<BTreeMap<String, String>>,
}

impl World {
    fn new(ingresses: &[&str]) -> Self {
        let ingresses: Vec<Ingress> = ingresses.iter().map(|y| ing(y)).collect();
        let namespaces: BTreeSet<String> = ingresses
            .iter()
            .filter_map(|i| i.metadata.namespace.clone())
            .collect();
        let services = namespaces
            .iter()
            .flat_map(|ns| {
                ["web", "api"].map(|n| {
                    svc(&format!(
                        "metadata: {{name: {n}, namespace: {ns}}}\nspec: {{ports: [{{name: http, port: 80, targetPort: http, nodePort: 30080}}]}}"
                    ))
                })
            })
            .collect();
        Self {
            ingresses,
            services,
            endpoints: web_endpoints(),
            secrets: BTreeMap::new(),
            default_cert: None,
            rules: None,
            classes: None,
            namespace_infra: None,
        }
    }

    fn run(&self, shard: ShardSize, cfg: &Config) -> L7Desired {
        self.run_mode(shard, cfg, MemberMode::ClusterIp)
    }

    fn run_mode(&self, shard: ShardSize, cfg: &Config, mode: MemberMode) -> L7Desired {
        self.run_part(shard, cfg, mode, None)
    }

    /// Translates the world, or only one part of it.
    fn run_part(
        &self,
        shard: ShardSize,
        cfg: &Config,
        mode: MemberMode,
        part: Option<&Part>,
    ) -> L7Desired {
        let refs: Vec<&Ingress> = self.ingresses.iter().collect();
        let inputs: Vec<ServiceInput<'_>> = self
            .services
            .iter()
            .map(|s| ServiceInput {
                service: s,
                endpoints: &self.endpoints,
            })
            .collect();
        let nodes = [NodeInfo {
            name: "n1".into(),
            internal_ip: "127.0.0.2".parse().ok(),
            labels: BTreeMap::new(),
            ..Default::default()
        }];
        let input = L7Input {
            classes: self.classes.as_ref(),
            namespace_infra: self.namespace_infra.as_ref(),
            ingresses: &refs,
            services: &inputs,
            nodes: &nodes,
            secrets: &self.secrets,
            default_cert: self.default_cert.as_ref(),
            part,
            rules: self.rules.as_ref(),
        };
        let d = translate(&input, cfg, &place(mode), shard);
        crate::schema_check::assert_valid(&d.objects);
        d
    }

    /// Translates each part on its own (as the reconciler does) and merges the results.
    fn run_by_part(&self, shard: ShardSize, cfg: &Config) -> L7Desired {
        let whole = self.run(shard, cfg);
        let parts: BTreeSet<Part> = whole
            .outcomes
            .iter()
            .flat_map(|o| o.hosts.iter().map(|h| part_of(&h.host, shard)))
            .collect();
        let mut merged = L7Desired::default();
        for part in &parts {
            let d = self.run_part(shard, cfg, MemberMode::ClusterIp, Some(part));
            for o in d.objects {
                if !merged
                    .objects
                    .iter()
                    .any(|m| m.kind == o.kind && m.name == o.name)
                {
                    merged.objects.push(o);
                }
            }
            merged.outcomes.extend(d.outcomes);
        }
        merged
    }
}

fn find<'a>(d: &'a L7Desired, kind: Kind, name: &str) -> &'a Map<String, Value> {
    &d.objects
        .iter()
        .find(|o| o.kind == kind && o.name == name)
        .unwrap_or_else(|| {
            panic!(
                "no {kind:?} {name} in {:#?}",
                d.objects
                    .iter()
                    .map(|o| (o.kind, &o.name))
                    .collect::<Vec<_>>()
            )
        })
        .body
}

fn names(d: &L7Desired, kind: Kind) -> Vec<&str> {
    d.objects
        .iter()
        .filter(|o| o.kind == kind)
        .map(|o| o.name.as_str())
        .collect()
}

fn outcome<'a>(d: &'a L7Desired, name: &str) -> &'a IngressOutcome {
    d.outcomes
        .iter()
        .find(|o| o.key.name == name)
        .expect("outcome")
}

/// The rules of a shared parent's policy sets as one set, in the order Avi evaluates them (sets by their
/// `http_policies` index, rules by theirs), renumbered.
fn parent_routes(d: &L7Desired, parent: &str) -> Map<String, Value> {
    let vs = find(d, Kind::VirtualService, parent);
    let mut sets: Vec<&Value> = vs["http_policies"]
        .as_array()
        .expect("policies")
        .iter()
        .collect();
    sets.sort_by_key(|p| p["index"].as_u64());
    let mut rules = Vec::new();
    for p in sets {
        let name = p["http_policy_set_ref"]
            .as_str()
            .expect("ref")
            .trim_start_matches("/api/httppolicyset/?name=");
        let set = find(d, Kind::HttpPolicySet, name);
        let mut own: Vec<Value> = set["http_request_policy"]["rules"]
            .as_array()
            .expect("rules")
            .clone();
        own.sort_by_key(|r| r["index"].as_u64());
        for mut r in own {
            r["index"] = json!(rules.len());
            rules.push(r);
        }
    }
    let mut out = Map::new();
    out.insert("http_request_policy".into(), json!({ "rules": rules }));
    out
}

/// What Avi does with a request (host, path, port) on a policy: rules by index, the first match acts.
/// Returns the pool group chosen, `redirect`, the status of a local response (`404`), or `none`.
fn route(policy: &Map<String, Value>, host: &str, path: &str, port: u16) -> String {
    let mut rules: Vec<&Value> = policy["http_request_policy"]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .collect();
    rules.sort_by_key(|r| r["index"].as_u64());
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .expect("list")
            .iter()
            .map(|s| s.as_str().expect("str").to_string())
            .collect()
    };
    for r in rules {
        let m = &r["match"];
        let h = &m["host_hdr"];
        let host_ok = match h["match_criteria"].as_str() {
            None if h.is_null() => true,
            Some("HDR_EQUALS") => strs(&h["value"])
                .iter()
                .any(|v| v.eq_ignore_ascii_case(host)),
            Some("HDR_ENDS_WITH") => strs(&h["value"])
                .iter()
                .any(|v| host.to_ascii_lowercase().ends_with(&v.to_ascii_lowercase())),
            other => panic!("host criteria {other:?}"),
        };
        let p = &m["path"];
        let path_ok = p.is_null()
            || match p["match_criteria"].as_str() {
                Some("EQUALS") => strs(&p["match_str"]).iter().any(|s| s == path),
                Some("BEGINS_WITH") => strs(&p["match_str"])
                    .iter()
                    .any(|s| path.starts_with(s.as_str())),
                other => panic!("path criteria {other:?}"),
            };
        let port_ok = m["vs_port"].is_null()
            || m["vs_port"]["ports"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p.as_u64() == Some(u64::from(port))));
        if host_ok && path_ok && port_ok {
            if !r["redirect_action"].is_null() {
                return "redirect".into();
            }
            if r["switching_action"]["action"] == "HTTP_SWITCHING_SELECT_LOCAL" {
                let code = r["switching_action"]["status_code"]
                    .as_str()
                    .expect("status");
                return code.rsplit('_').next().expect("code").to_string();
            }
            let pg = r["switching_action"]["pool_group_ref"]
                .as_str()
                .expect("pg ref");
            return pg.trim_start_matches("/api/poolgroup/?name=").to_string();
        }
    }
    "none".into()
}

const HACKAZON: &str = r#"
metadata: {name: hackazon, namespace: vmug, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  rules:
  - host: hackazon.avi.jarvis.lab
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /foo, pathType: Prefix, backend: {service: {name: api, port: {name: http}}}}
      - {path: /foo, pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /foo/bar/, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}
"#;

const SHOP_TLS: &str = r#"
metadata: {name: shop, namespace: vmug, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  tls: [{hosts: [shop.avi.jarvis.lab], secretName: shop-tls}]
  rules:
  - host: shop.avi.jarvis.lab
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#;
