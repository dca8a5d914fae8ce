//! The reconciler's bookkeeping for Ingresses: which L7 parts (shared parents or dedicated hosts) each Ingress
//! of ako touches, which backend Services and TLS Secrets it names (so a change of one re-plans only the parts
//! that use it), what each part's last translation said about it, and how that becomes its status and Events.
//! Pure: the worker in [`super`] does the I/O.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::LoadBalancerIngress;
use k8s_openapi::api::networking::v1::Ingress;

use ako_core::config::Config;
use ako_core::crd::RuleSet;
use ako_core::index::ObjKey;
use ako_core::intent::ClassView;
use ako_core::intent::{self, Problem};
use ako_core::l7::{HostFragment, HostOutcome, IngressOutcome, Part, ShardSize};
use ako_core::plan::{Desired, Kind};

/// What is kept of a host's last translation between passes: not its objects' bodies (a pass translates again
/// the hosts it plans), only what they are called, its policy set on its parent, and what it said about each
/// Ingress claiming it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostState {
    pub part: Part,
    /// The objects it wants (kind and name).
    pub ids: Vec<(Kind, String)>,
    /// Its HTTPPolicySet on its shared parent.
    pub parent_policy: Option<String>,
    /// Its HostRule's aliases (published by its parent).
    pub aliases: Vec<String>,
    pub outcomes: Vec<IngressOutcome>,
}

impl HostState {
    /// Whether its parent serves it (it has objects or routes there).
    pub fn serving(&self) -> bool {
        !self.ids.is_empty() || self.parent_policy.is_some()
    }
}

/// What one Ingress of ako names. Each list is sorted and holds each item once: a sorted `Vec` instead of a
/// `BTreeSet`, whose smallest node holds room for eleven items (an Ingress names one or two of each, and ako
/// keeps one of these per Ingress).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngressRefs {
    /// Its valid hosts.
    pub hosts: Vec<String>,
    /// creationTimestamp (seconds): the oldest Ingress claiming a host places it.
    pub created: Option<i64>,
    /// The AviInfraSetting its IngressClass names (`spec.parameters`).
    pub infra: Option<String>,
    /// Backend Services (in its namespace).
    pub services: Vec<ObjKey>,
    /// TLS Secrets of `spec.tls` (in its namespace).
    pub secrets: Vec<ObjKey>,
    /// Problems found before any host is planned (size limits, hosts outside the subdomains...): reported even
    /// when no host is left to plan.
    pub problems: Vec<Problem>,
}

/// Reads what an Ingress names. An Ingress over the size limits names nothing (it is refused whole).
pub fn refs_of(
    ing: &Ingress,
    cfg: &Config,
    classes: &ClassView,
    namespace_infra: Option<&str>,
) -> IngressRefs {
    let too_big = intent::check_ingress_limits(ing);
    if !too_big.is_empty() {
        return IngressRefs {
            problems: too_big,
            ..IngressRefs::default()
        };
    }
    let (intent, problems) = intent::translate_ingress(ing, cfg);
    let ns = &intent.namespace;
    let hosts = sorted(intent.hosts.iter().map(|h| h.host.clone()));
    IngressRefs {
        hosts,
        created: ako_core::ownership::created(&ing.metadata),
        infra: ako_core::l7::ingress_infra(ing, Some(classes), namespace_infra),
        services: sorted(
            intent
                .backend_services()
                .map(|s| ObjKey::new(ns.clone(), s)),
        ),
        secrets: sorted(
            intent
                .tls
                .iter()
                .filter_map(|t| t.secret.as_ref())
                .map(|s| ObjKey::new(ns.clone(), s.clone())),
        ),
        problems,
    }
}

/// The items sorted, each once, in a list of exactly their size.
fn sorted<T: Ord>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut v: Vec<T> = items.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    v.shrink_to_fit();
    v
}

/// Adds `key` to a sorted list of keys (once).
fn insert_sorted(list: &mut Vec<ObjKey>, key: &ObjKey) {
    if let Err(at) = list.binary_search(key) {
        list.insert(at, key.clone());
    }
}

/// Removes `key` from a sorted list of keys.
fn remove_sorted(list: &mut Vec<ObjKey>, key: &ObjKey) {
    if let Ok(at) = list.binary_search(key) {
        list.remove(at);
    }
}

/// Which hosts of a part must be translated again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirtyHosts {
    All,
    Some(BTreeSet<String>),
}

/// The Ingress side of the reconciler's state.
#[derive(Debug)]
pub struct L7State {
    shard: ShardSize,
    /// The AviInfraSettings (with the other rules): they decide the parts of the hosts their classes place.
    rules: std::sync::Arc<RuleSet>,
    /// Host -> its part now (from its oldest claimant's class).
    host_parts: HashMap<String, Part>,
    /// Ingresses of ako, with what they name.
    pub refs: HashMap<ObjKey, IngressRefs>,
    /// Host -> Ingresses claiming it (sorted; usually one).
    host_members: HashMap<String, Vec<ObjKey>>,
    /// Part -> hosts claimed in it.
    part_hosts: HashMap<Part, BTreeSet<String>>,
    /// Backend Service -> the Ingresses naming it (sorted).
    by_service: HashMap<ObjKey, Vec<ObjKey>>,
    /// TLS Secret -> the Ingresses naming it (sorted).
    by_secret: HashMap<ObjKey, Vec<ObjKey>>,
    /// Host -> what its last translation produced.
    pub fragments: HashMap<String, HostState>,
    /// Hosts to translate again, per part.
    dirty: HashMap<Part, DirtyHosts>,
    /// Parts whose every object must be compared again (after a failure, at a full sync).
    replan: HashSet<Part>,
    /// Parts whose last pass wrote everything it planned.
    pub applied: HashMap<Part, bool>,
    /// Part -> Warning texts of its last pass (Avi errors, name conflicts).
    pub part_notices: HashMap<Part, Vec<String>>,
    /// Ingresses whose status ako wrote, with the fingerprint of what it wrote.
    pub status_written: HashMap<ObjKey, u64>,
    /// Problems last reported per Ingress (re-announced only when they change).
    pub reported: HashMap<ObjKey, Vec<String>>,
    /// Hosts last announced as programmed, per Ingress, with the line announcing each.
    pub announced: HashMap<ObjKey, BTreeMap<String, String>>,
}

fn index_add(map: &mut HashMap<ObjKey, Vec<ObjKey>>, from: &[ObjKey], key: &ObjKey) {
    for k in from {
        insert_sorted(map.entry(k.clone()).or_default(), key);
    }
}

fn index_remove(map: &mut HashMap<ObjKey, Vec<ObjKey>>, from: &[ObjKey], key: &ObjKey) {
    for k in from {
        if let Some(set) = map.get_mut(k) {
            remove_sorted(set, key);
            if set.is_empty() {
                map.remove(k);
            }
        }
    }
}

impl Default for L7State {
    fn default() -> Self {
        Self::new(ShardSize::Large)
    }
}

impl L7State {
    pub fn new(shard: ShardSize) -> Self {
        Self {
            shard,
            rules: std::sync::Arc::default(),
            host_parts: HashMap::new(),
            refs: HashMap::new(),
            host_members: HashMap::new(),
            part_hosts: HashMap::new(),
            by_service: HashMap::new(),
            by_secret: HashMap::new(),
            fragments: HashMap::new(),
            dirty: HashMap::new(),
            replan: HashSet::new(),
            applied: HashMap::new(),
            part_notices: HashMap::new(),
            status_written: HashMap::new(),
            reported: HashMap::new(),
            announced: HashMap::new(),
        }
    }

    /// The part a host is in: where its oldest claimant's class places it (the global parts for a host no
    /// Ingress claims any more: where its last translation was, else its global part).
    pub fn part_of_host(&self, host: &str) -> Part {
        if let Some(p) = self.host_parts.get(host) {
            return p.clone();
        }
        match self.fragments.get(host) {
            Some(f) => f.part.clone(),
            None => ako_core::l7::part_of(host, self.shard),
        }
    }

    /// The AviInfraSetting name the objects of a host carry (its part's, when the setting is accepted).
    pub fn infra_label(&self, host: &str) -> Option<String> {
        let owner = self.placing(host)?;
        let name = self.refs.get(owner)?.infra.as_deref()?;
        self.rules.accepted_infra(name).map(|_| name.to_string())
    }

    /// The Ingress whose class places a host: its oldest claimant.
    fn placing(&self, host: &str) -> Option<&ObjKey> {
        self.host_members.get(host)?.iter().min_by(|a, b| {
            let order = |k: &ObjKey| {
                let c = self.refs.get(k).and_then(|r| r.created);
                (c.is_none(), c)
            };
            order(a).cmp(&order(b)).then_with(|| a.cmp(b))
        })
    }

    /// Where a claimed host belongs now.
    fn computed_part(&self, host: &str) -> Part {
        let infra = self
            .placing(host)
            .and_then(|k| self.refs.get(k))
            .and_then(|r| r.infra.as_deref());
        ako_core::l7::host_part(host, infra, self.shard, Some(&self.rules))
    }

    /// Puts a host in the part it belongs to now (`None`: no Ingress claims it). A host moving to another part
    /// (its class's AviInfraSetting changed) leaves its old part's parent at once, and both parts are compared
    /// whole: the new part's pass creates its objects under their new names and deletes the old ones.
    fn place_host(&mut self, host: &str, part: Option<Part>) -> BTreeSet<Part> {
        let mut touched = BTreeSet::new();
        let old = match &part {
            Some(p) => self.host_parts.insert(host.to_string(), p.clone()),
            None => self.host_parts.remove(host),
        };
        if let Some(o) = &old
            && Some(o) != part.as_ref()
            && let Some(ph) = self.part_hosts.get_mut(o)
        {
            ph.remove(host);
        }
        if let Some(p) = &part {
            self.part_hosts
                .entry(p.clone())
                .or_default()
                .insert(host.to_string());
            if let Some(f) = self.fragments.get(host)
                && f.part != *p
            {
                let from = f.part.clone();
                self.fragments.remove(host);
                self.mark_all(&from);
                self.mark_all(p);
                touched.extend([from, p.clone()]);
            }
        }
        touched
    }

    /// The rules changed: hosts whose AviInfraSetting was accepted, changed or went move to their parts, and
    /// the parts of hosts placed by a setting that changed (`changed`: names) are compared whole. Returns the
    /// parts to pass.
    pub fn set_rules(
        &mut self,
        rules: std::sync::Arc<RuleSet>,
        changed: &HashSet<String>,
    ) -> BTreeSet<Part> {
        self.rules = rules;
        let mut parts = BTreeSet::new();
        let hosts: Vec<String> = self.host_members.keys().cloned().collect();
        for h in hosts {
            let named = self
                .placing(&h)
                .and_then(|k| self.refs.get(k))
                .and_then(|r| r.infra.clone());
            let part = self.computed_part(&h);
            parts.extend(self.place_host(&h, Some(part.clone())));
            if named.is_some_and(|n| changed.contains(&n)) {
                self.mark_all(&part);
                parts.insert(part);
            }
        }
        parts
    }

    /// The parts of an Ingress's hosts.
    pub fn parts_of(&self, key: &ObjKey) -> Vec<Part> {
        let mut parts: Vec<Part> = self
            .refs
            .get(key)
            .into_iter()
            .flat_map(|r| r.hosts.iter().map(|h| self.part_of_host(h)))
            .collect();
        parts.sort();
        parts.dedup();
        parts
    }

    /// Marks hosts to translate again; returns their parts.
    pub fn mark_hosts<'h>(
        &mut self,
        hosts: impl IntoIterator<Item = &'h String>,
    ) -> BTreeSet<Part> {
        let mut parts = BTreeSet::new();
        for h in hosts {
            let part = self.part_of_host(h);
            match self
                .dirty
                .entry(part.clone())
                .or_insert_with(|| DirtyHosts::Some(BTreeSet::new()))
            {
                DirtyHosts::All => {}
                DirtyHosts::Some(set) => {
                    set.insert(h.clone());
                }
            }
            parts.insert(part);
        }
        parts
    }

    /// Marks every host of a part to translate, and every object of it to compare.
    pub fn mark_all(&mut self, part: &Part) {
        self.dirty.insert(part.clone(), DirtyHosts::All);
        self.replan.insert(part.clone());
    }

    /// Every host of the part is translated and every object compared at its next pass (its last one failed).
    pub fn replan(&mut self, part: &Part) {
        self.mark_all(part);
    }

    /// Records what an Ingress names now (`None`: not ako's, or gone); marks every host it had or has, and
    /// returns their parts.
    pub fn set(&mut self, key: &ObjKey, refs: Option<IngressRefs>) -> BTreeSet<Part> {
        let mut touched: BTreeSet<String> = BTreeSet::new();
        if let Some(old) = self.refs.remove(key) {
            for h in &old.hosts {
                if let Some(m) = self.host_members.get_mut(h) {
                    remove_sorted(m, key);
                    if m.is_empty() {
                        self.host_members.remove(h);
                    }
                }
            }
            index_remove(&mut self.by_service, &old.services, key);
            index_remove(&mut self.by_secret, &old.secrets, key);
            touched.extend(old.hosts);
        }
        if let Some(new) = refs {
            for h in &new.hosts {
                insert_sorted(self.host_members.entry(h.clone()).or_default(), key);
            }
            index_add(&mut self.by_service, &new.services, key);
            index_add(&mut self.by_secret, &new.secrets, key);
            touched.extend(new.hosts.iter().cloned());
            self.refs.insert(key.clone(), new);
        }
        let mut parts = BTreeSet::new();
        for h in &touched {
            let part = self
                .host_members
                .contains_key(h)
                .then(|| self.computed_part(h));
            parts.extend(self.place_host(h, part));
        }
        parts.extend(self.mark_hosts(&touched));
        parts
    }

    /// Forgets every Ingress (a full sync rebuilds them); keeps fragments and what was reported.
    pub fn clear_refs(&mut self) {
        self.refs.clear();
        self.host_members.clear();
        self.part_hosts.clear();
        self.host_parts.clear();
        self.by_service.clear();
        self.by_secret.clear();
    }

    fn hosts_of_ingresses(&self, keys: Option<&Vec<ObjKey>>) -> BTreeSet<String> {
        keys.into_iter()
            .flatten()
            .filter_map(|k| self.refs.get(k))
            .flat_map(|r| r.hosts.iter().cloned())
            .collect()
    }

    /// A backend Service changed: marks the hosts of the Ingresses naming it; returns their parts.
    pub fn touch_service(&mut self, svc: &ObjKey) -> BTreeSet<Part> {
        let hosts = self.hosts_of_ingresses(self.by_service.get(svc));
        self.mark_hosts(&hosts)
    }

    /// A TLS Secret changed: marks the hosts of the Ingresses naming it; returns their parts.
    pub fn touch_secret(&mut self, secret: &ObjKey) -> BTreeSet<Part> {
        let hosts = self.hosts_of_ingresses(self.by_secret.get(secret));
        self.mark_hosts(&hosts)
    }

    /// Every part with a claimed host or a translated one.
    /// Every host of ako's Ingresses, with the Ingresses naming it.
    pub fn hosts(&self) -> impl Iterator<Item = (&String, &Vec<ObjKey>)> {
        self.host_members.iter()
    }

    pub fn parts(&self) -> BTreeSet<Part> {
        let mut parts: BTreeSet<Part> = self
            .part_hosts
            .iter()
            .filter(|(_, h)| !h.is_empty())
            .map(|(p, _)| p.clone())
            .collect();
        parts.extend(self.fragments.values().map(|f| f.part.clone()));
        parts
    }

    /// Every host of a part: claimed now, or translated before (a host no longer claimed must be translated once
    /// more, to nothing).
    pub fn hosts_of_part(&self, part: &Part) -> BTreeSet<String> {
        let mut hosts = self.part_hosts.get(part).cloned().unwrap_or_default();
        hosts.extend(
            self.fragments
                .iter()
                .filter(|(_, f)| f.part == *part)
                .map(|(h, _)| h.clone()),
        );
        hosts
    }

    /// Takes what must be done for a part: the hosts to translate again and whether to compare every object.
    pub fn take_work(&mut self, part: &Part) -> (BTreeSet<String>, bool) {
        let replan = self.replan.remove(part);
        let hosts = match self.dirty.remove(part) {
            Some(DirtyHosts::All) => self.hosts_of_part(part),
            Some(DirtyHosts::Some(set)) => set,
            None => BTreeSet::new(),
        };
        (hosts, replan)
    }

    /// The Ingresses claiming these hosts, and the Services and Secrets they name.
    pub fn claimants_of(
        &self,
        hosts: &BTreeSet<String>,
    ) -> (BTreeSet<ObjKey>, BTreeSet<ObjKey>, BTreeSet<ObjKey>) {
        let mut ingresses = BTreeSet::new();
        for h in hosts {
            ingresses.extend(self.host_members.get(h).into_iter().flatten().cloned());
        }
        let mut services = BTreeSet::new();
        let mut secrets = BTreeSet::new();
        for k in &ingresses {
            if let Some(r) = self.refs.get(k) {
                services.extend(r.services.iter().cloned());
                secrets.extend(r.secrets.iter().cloned());
            }
        }
        (ingresses, services, secrets)
    }

    /// The Ingresses of a part.
    pub fn ingresses_of_part(&self, part: &Part) -> BTreeSet<ObjKey> {
        self.claimants_of(&self.hosts_of_part(part)).0
    }

    /// Stores the new translation of these hosts (a host without fragment is gone); returns the Ingresses the
    /// old or new fragments are about (their report may have changed), whether the shared parent changes (which
    /// hosts it serves, or which of them have a policy set on it; a change inside a host's set is that host's own
    /// object), and the new fragments' objects (the pass plans them; they are not kept).
    pub fn store(
        &mut self,
        hosts: &BTreeSet<String>,
        fragments: Vec<HostFragment>,
    ) -> (BTreeSet<ObjKey>, bool, Vec<Desired>) {
        let mut keys = BTreeSet::new();
        let mut old: HashMap<String, HostState> = HashMap::new();
        for h in hosts {
            if let Some(f) = self.fragments.remove(h) {
                old.insert(h.clone(), f);
            }
        }
        let mut parent_changed = false;
        let mut objects = Vec::new();
        for f in fragments {
            keys.extend(f.outcomes.iter().map(|o| o.key.clone()));
            let new = HostState {
                part: f.part,
                ids: f.objects.iter().map(|o| (o.kind, o.name.clone())).collect(),
                parent_policy: f.parent_policy,
                aliases: f.aliases,
                outcomes: f.outcomes,
            };
            objects.extend(f.objects);
            match old.remove(&f.host) {
                Some(o) => {
                    parent_changed |= o.serving() != new.serving()
                        || o.parent_policy != new.parent_policy
                        || o.aliases != new.aliases;
                    keys.extend(o.outcomes.into_iter().map(|o| o.key));
                }
                None => parent_changed |= new.serving(),
            }
            if new.serving() || !new.outcomes.is_empty() {
                self.fragments.insert(f.host, new);
            }
        }
        for (_, o) in old {
            parent_changed |= o.serving();
            keys.extend(o.outcomes.into_iter().map(|o| o.key));
        }
        (keys, parent_changed, objects)
    }

    /// The hosts of a part that its parent serves, sorted, with what is kept of them.
    pub fn serving_hosts(&self, part: &Part) -> Vec<(&str, &HostState)> {
        let mut v: Vec<(&str, &HostState)> = self
            .fragments
            .iter()
            .filter(|(_, f)| f.part == *part && f.serving())
            .map(|(h, f)| (h.as_str(), f))
            .collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }

    /// Everything translation said about one Ingress over its hosts: its hosts (sorted) and its problems (each
    /// once, those found before planning first).
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
        for h in &refs.hosts {
            let Some(o) = self
                .fragments
                .get(h)
                .and_then(|f| f.outcomes.iter().find(|o| o.key == *key))
            else {
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
/// address; hosts whose VIP is not known yet are left out. A wildcard host or a default backend has no
/// hostname to show (the API server refuses `*.example.com` there): the address alone, once.
pub fn status_of(
    hosts: &[HostOutcome],
    vips: &BTreeMap<String, Vec<IpAddr>>,
) -> Vec<LoadBalancerIngress> {
    let mut out: Vec<LoadBalancerIngress> = Vec::new();
    for h in hosts {
        let hostname = ako_core::intent::status_hostname(&h.host);
        for ip in vips.get(&h.vip_name).into_iter().flatten() {
            let entry = LoadBalancerIngress {
                ip: Some(ip.to_string()),
                hostname: hostname.map(str::to_string),
                ..LoadBalancerIngress::default()
            };
            if hostname.is_some() || !out.contains(&entry) {
                out.push(entry);
            }
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
mod tests;
