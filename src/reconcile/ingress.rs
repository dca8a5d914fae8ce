//! The reconciler's bookkeeping for Ingresses: which L7 parts (shared parents or dedicated hosts) each Ingress
//! of ako touches, which backend Services and TLS Secrets it names (so a change of one re-plans only the parts
//! that use it), what each part's last translation said about it, and how that becomes its status and Events.
//! Pure: the worker in [`super`] does the I/O.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::LoadBalancerIngress;
use k8s_openapi::api::networking::v1::Ingress;

use crate::core::config::Config;
use crate::core::index::ObjKey;
use crate::core::intent::{self, Problem};
use crate::core::l7::{HostOutcome, IngressOutcome, Part, ShardSize, part_of};

/// What one Ingress of ako names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngressRefs {
    /// The parts of its hosts.
    pub parts: BTreeSet<Part>,
    /// Backend Services (in its namespace).
    pub services: BTreeSet<ObjKey>,
    /// TLS Secrets of `spec.tls` (in its namespace).
    pub secrets: BTreeSet<ObjKey>,
    /// Problems found before any host is planned (size limits, hosts outside the subdomains...): reported even
    /// when no host is left to plan.
    pub problems: Vec<Problem>,
}

/// Reads what an Ingress names. An Ingress over the size limits names nothing (it is refused whole).
pub fn refs_of(ing: &Ingress, cfg: &Config, shard: ShardSize) -> IngressRefs {
    let too_big = intent::check_ingress_limits(ing);
    if !too_big.is_empty() {
        return IngressRefs {
            problems: too_big,
            ..IngressRefs::default()
        };
    }
    let (intent, problems) = intent::translate_ingress(ing, cfg);
    let ns = &intent.namespace;
    IngressRefs {
        parts: intent
            .hosts
            .iter()
            .map(|h| part_of(&h.host, shard))
            .collect(),
        services: intent
            .backend_services()
            .map(|s| ObjKey::new(ns.clone(), s))
            .collect(),
        secrets: intent
            .tls
            .iter()
            .filter_map(|t| t.secret.as_ref())
            .map(|s| ObjKey::new(ns.clone(), s.clone()))
            .collect(),
        problems,
    }
}

/// The Ingress side of the reconciler's state.
#[derive(Debug, Default)]
pub struct L7State {
    /// Ingresses of ako, with what they name.
    pub refs: HashMap<ObjKey, IngressRefs>,
    /// Part -> Ingresses with a host in it.
    pub members: HashMap<Part, BTreeSet<ObjKey>>,
    by_service: HashMap<ObjKey, BTreeSet<ObjKey>>,
    by_secret: HashMap<ObjKey, BTreeSet<ObjKey>>,
    /// Part -> what its last translation said about each of its Ingresses.
    pub outcomes: HashMap<Part, HashMap<ObjKey, IngressOutcome>>,
    /// Parts whose last pass wrote everything it planned.
    pub applied: HashMap<Part, bool>,
    /// Part -> Warning texts of its last pass (Avi errors, name conflicts).
    pub part_notices: HashMap<Part, Vec<String>>,
    /// Ingresses whose status ako wrote.
    pub status_written: HashSet<ObjKey>,
    /// Problems last reported per Ingress (re-announced only when they change).
    pub reported: HashMap<ObjKey, Vec<String>>,
    /// Hosts last announced as programmed, per Ingress.
    pub announced: HashMap<ObjKey, BTreeSet<String>>,
}

fn index_add(map: &mut HashMap<ObjKey, BTreeSet<ObjKey>>, from: &BTreeSet<ObjKey>, key: &ObjKey) {
    for k in from {
        map.entry(k.clone()).or_default().insert(key.clone());
    }
}

fn index_remove(
    map: &mut HashMap<ObjKey, BTreeSet<ObjKey>>,
    from: &BTreeSet<ObjKey>,
    key: &ObjKey,
) {
    for k in from {
        if let Some(set) = map.get_mut(k) {
            set.remove(key);
            if set.is_empty() {
                map.remove(k);
            }
        }
    }
}

impl L7State {
    /// Records what an Ingress names now (`None`: not ako's, or gone); returns every part it was or is in.
    pub fn set(&mut self, key: &ObjKey, refs: Option<IngressRefs>) -> BTreeSet<Part> {
        let mut touched = BTreeSet::new();
        if let Some(old) = self.refs.remove(key) {
            for p in &old.parts {
                if let Some(m) = self.members.get_mut(p) {
                    m.remove(key);
                }
            }
            index_remove(&mut self.by_service, &old.services, key);
            index_remove(&mut self.by_secret, &old.secrets, key);
            touched.extend(old.parts);
        }
        if let Some(new) = refs {
            for p in &new.parts {
                self.members
                    .entry(p.clone())
                    .or_default()
                    .insert(key.clone());
            }
            index_add(&mut self.by_service, &new.services, key);
            index_add(&mut self.by_secret, &new.secrets, key);
            touched.extend(new.parts.iter().cloned());
            self.refs.insert(key.clone(), new);
        }
        touched
    }

    /// Forgets every Ingress (a full sync rebuilds them); keeps outcomes and what was reported.
    pub fn clear_refs(&mut self) {
        self.refs.clear();
        self.by_service.clear();
        self.by_secret.clear();
        for m in self.members.values_mut() {
            m.clear();
        }
    }

    /// The parts of the Ingresses naming this backend Service.
    pub fn parts_using_service(&self, svc: &ObjKey) -> BTreeSet<Part> {
        self.parts_of_all(self.by_service.get(svc))
    }

    /// The parts of the Ingresses naming this TLS Secret.
    pub fn parts_using_secret(&self, secret: &ObjKey) -> BTreeSet<Part> {
        self.parts_of_all(self.by_secret.get(secret))
    }

    fn parts_of_all(&self, keys: Option<&BTreeSet<ObjKey>>) -> BTreeSet<Part> {
        keys.into_iter()
            .flatten()
            .filter_map(|k| self.refs.get(k))
            .flat_map(|r| r.parts.iter().cloned())
            .collect()
    }

    /// The Services and Secrets the Ingresses of a part name.
    pub fn names_of_part(&self, part: &Part) -> (BTreeSet<ObjKey>, BTreeSet<ObjKey>) {
        let mut services = BTreeSet::new();
        let mut secrets = BTreeSet::new();
        for k in self.members.get(part).into_iter().flatten() {
            if let Some(r) = self.refs.get(k) {
                services.extend(r.services.iter().cloned());
                secrets.extend(r.secrets.iter().cloned());
            }
        }
        (services, secrets)
    }

    /// Stores a part's translation; returns the Ingresses it was or is about (their report may have changed).
    pub fn store(&mut self, part: &Part, outcomes: Vec<IngressOutcome>) -> BTreeSet<ObjKey> {
        let new: HashMap<ObjKey, IngressOutcome> =
            outcomes.into_iter().map(|o| (o.key.clone(), o)).collect();
        let mut keys: BTreeSet<ObjKey> = new.keys().cloned().collect();
        if let Some(old) = self.outcomes.insert(part.clone(), new) {
            keys.extend(old.into_keys());
        }
        keys
    }

    /// Everything translation said about one Ingress over its parts: its hosts (sorted) and its problems
    /// (each once, those found before planning first).
    pub fn merged(&self, key: &ObjKey) -> (Vec<HostOutcome>, Vec<Problem>) {
        let Some(refs) = self.refs.get(key) else {
            return (Vec::new(), Vec::new());
        };
        let mut hosts: Vec<HostOutcome> = Vec::new();
        let mut problems: Vec<Problem> = refs.problems.clone();
        let mut seen: HashSet<(String, String)> = problems
            .iter()
            .map(|p| (p.field.clone(), p.message.clone()))
            .collect();
        for part in &refs.parts {
            let Some(o) = self.outcomes.get(part).and_then(|m| m.get(key)) else {
                continue;
            };
            hosts.extend(o.hosts.iter().cloned());
            for p in &o.problems {
                if seen.insert((p.field.clone(), p.message.clone())) {
                    problems.push(p.clone());
                }
            }
        }
        hosts.sort_by(|a, b| a.host.cmp(&b.host));
        hosts.dedup_by(|a, b| a.host == b.host);
        (hosts, problems)
    }

    /// Forgets an Ingress entirely (deleted).
    pub fn forget(&mut self, key: &ObjKey) {
        self.status_written.remove(key);
        self.reported.remove(key);
        self.announced.remove(key);
    }
}

/// `status.loadBalancer.ingress` of an Ingress: one `{ip, hostname}` per host and VIP, sorted by host then
/// address; hosts whose VIP is not known yet are left out.
pub fn status_of(
    hosts: &[HostOutcome],
    vips: &BTreeMap<String, Vec<IpAddr>>,
) -> Vec<LoadBalancerIngress> {
    let mut out = Vec::new();
    for h in hosts {
        for ip in vips.get(&h.vip_name).into_iter().flatten() {
            out.push(LoadBalancerIngress {
                ip: Some(ip.to_string()),
                hostname: Some(h.host.clone()),
                ..LoadBalancerIngress::default()
            });
        }
    }
    out
}

/// The status an Ingress has now, as `{ip, hostname}` pairs.
pub fn current_status(ing: &Ingress) -> Vec<LoadBalancerIngress> {
    ing.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|list| {
            list.iter()
                .map(|i| LoadBalancerIngress {
                    ip: i.ip.clone(),
                    hostname: i.hostname.clone(),
                    ..LoadBalancerIngress::default()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ing(yaml: &str) -> Ingress {
        serde_yaml_ng::from_str(yaml).expect("ingress yaml")
    }

    fn cfg() -> Config {
        Config {
            cluster_name: "veba-of".into(),
            dns_domains: vec!["avi.jarvis.lab".into()],
            ..Config::default()
        }
    }

    const TWO_HOSTS: &str = r#"
metadata: {name: shop, namespace: vmug}
spec:
  tls: [{hosts: [shop.avi.jarvis.lab], secretName: shop-tls}]
  rules:
  - host: shop.avi.jarvis.lab
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
  - host: hackazon.avi.jarvis.lab
    http: {paths: [{path: /api, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}]}
  - host: outside.example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
"#;

    #[test]
    fn refs_name_the_parts_services_and_secrets_of_valid_hosts_only() {
        let r = refs_of(&ing(TWO_HOSTS), &cfg(), ShardSize::Large);
        assert_eq!(
            r.parts,
            BTreeSet::from([
                Part::Shard { index: 0, of: 8 },
                Part::Shard { index: 1, of: 8 }
            ])
        );
        assert_eq!(
            r.services,
            BTreeSet::from([ObjKey::new("vmug", "web"), ObjKey::new("vmug", "api")])
        );
        assert_eq!(r.secrets, BTreeSet::from([ObjKey::new("vmug", "shop-tls")]));
        assert!(
            r.problems
                .iter()
                .any(|p| p.message.contains("outside.example.com")),
            "{:?}",
            r.problems
        );
        let dedicated = refs_of(&ing(TWO_HOSTS), &cfg(), ShardSize::Dedicated);
        assert_eq!(dedicated.parts.len(), 2);
    }

    #[test]
    fn indexes_follow_an_ingress_as_it_changes_and_goes() {
        let mut s = L7State::default();
        let key = ObjKey::new("vmug", "shop");
        let r = refs_of(&ing(TWO_HOSTS), &cfg(), ShardSize::Large);
        let touched = s.set(&key, Some(r));
        assert_eq!(touched.len(), 2);
        let web = ObjKey::new("vmug", "web");
        let tls = ObjKey::new("vmug", "shop-tls");
        assert_eq!(s.parts_using_service(&web).len(), 2);
        assert_eq!(
            s.parts_using_secret(&tls),
            BTreeSet::from([Part::Shard { index: 1, of: 8 }])
        );
        let (services, secrets) = s.names_of_part(&Part::Shard { index: 1, of: 8 });
        assert!(services.contains(&web) && secrets.contains(&tls));
        // Gone: every part it was in is touched, and nothing names it any more.
        let touched = s.set(&key, None);
        assert_eq!(touched.len(), 2);
        assert!(s.parts_using_service(&web).is_empty());
        assert!(s.parts_using_secret(&tls).is_empty());
        assert!(s.members.values().all(BTreeSet::is_empty));
    }

    #[test]
    fn merged_outcome_joins_hosts_of_every_part_and_names_each_problem_once() {
        let mut s = L7State::default();
        let key = ObjKey::new("vmug", "shop");
        s.set(
            &key,
            Some(refs_of(&ing(TWO_HOSTS), &cfg(), ShardSize::Large)),
        );
        let host = |h: &str, vs: &str| HostOutcome {
            host: h.into(),
            vs_name: vs.into(),
            vip_name: vs.into(),
            tls: false,
        };
        let warn = Problem::warn("spec.rules[1]", "backend Service \"api\" not found");
        s.store(
            &Part::Shard { index: 1, of: 8 },
            vec![IngressOutcome {
                key: key.clone(),
                hosts: vec![host("shop.avi.jarvis.lab", "p1")],
                problems: vec![warn.clone()],
            }],
        );
        let touched = s.store(
            &Part::Shard { index: 0, of: 8 },
            vec![IngressOutcome {
                key: key.clone(),
                hosts: vec![host("hackazon.avi.jarvis.lab", "p0")],
                problems: vec![warn.clone()],
            }],
        );
        assert_eq!(touched, BTreeSet::from([key.clone()]));
        let (hosts, problems) = s.merged(&key);
        assert_eq!(
            hosts.iter().map(|h| h.host.as_str()).collect::<Vec<_>>(),
            ["hackazon.avi.jarvis.lab", "shop.avi.jarvis.lab"]
        );
        assert_eq!(problems.iter().filter(|p| **p == warn).count(), 1);
        assert!(
            problems
                .iter()
                .any(|p| p.message.contains("outside.example.com"))
        );

        let vips = BTreeMap::from([
            ("p0".to_string(), vec!["10.10.18.19".parse().expect("ip")]),
            ("p1".to_string(), Vec::new()),
        ]);
        let st = status_of(&hosts, &vips);
        assert_eq!(st.len(), 1, "a host without a known VIP is left out");
        assert_eq!(st[0].ip.as_deref(), Some("10.10.18.19"));
        assert_eq!(st[0].hostname.as_deref(), Some("hackazon.avi.jarvis.lab"));
    }
}
