//! The cross-object view admission decisions read: which Ingress claims which host and path, which Service of
//! ours asks for which VIP, the cluster's IngressClasses, and which Secrets and Services exist. Fed by watches (see [`crate::k8s::watch`]) or, in
//! `ako check`, by the files given. Lookups are by host, so a decision costs the same with 10 or 50,000 Ingresses.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use parking_lot::RwLock;

use super::ownership::{Claim, Order};
use crate::config::Config;
use crate::intent::{self, ClassInfo, ClassRef, ClassView};

/// Namespace and name of an object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjKey {
    pub namespace: String,
    pub name: String,
}

impl ObjKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
    pub fn of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Self {
        Self::new(
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        )
    }
}

impl std::fmt::Display for ObjKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A path an Ingress routes on a host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PathClaim {
    pub path: String,
    pub path_type: String,
}

/// What one Ingress claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressClaims {
    pub key: ObjKey,
    /// creationTimestamp in seconds; `None` for an object not yet stored (it is the newest).
    pub created: Option<i64>,
    pub class: ClassRef,
    /// Valid hosts (normalized, generated ones included) with their paths, each host once, sorted by host (so
    /// that [`IngressClaims::paths_for`] is a binary search).
    pub hosts: Vec<(String, Vec<PathClaim>)>,
}

impl IngressClaims {
    /// Derives claims with the same conversion the webhook and reconciler use.
    pub fn of(ing: &Ingress, cfg: &Config) -> Self {
        let (intent, _) = intent::translate_ingress(ing, cfg);
        Self::from_intent(&intent, created(&ing.metadata))
    }

    /// Claims of an already translated Ingress.
    pub fn from_intent(intent: &intent::IngressIntent, created: Option<i64>) -> Self {
        let mut hosts: Vec<(String, Vec<PathClaim>)> = Vec::with_capacity(intent.hosts.len());
        let mut at: HashMap<&str, usize> = HashMap::with_capacity(intent.hosts.len());
        for h in &intent.hosts {
            let paths = h.routes.iter().map(|r| PathClaim {
                path: r.path.clone(),
                path_type: r.path_type.clone(),
            });
            match at.get(h.host.as_str()) {
                Some(&i) => hosts[i].1.extend(paths),
                None => {
                    at.insert(h.host.as_str(), hosts.len());
                    hosts.push((h.host.clone(), paths.collect()));
                }
            }
        }
        hosts.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Self {
            key: ObjKey::new(intent.namespace.clone(), intent.name.clone()),
            created,
            class: intent.class.clone(),
            hosts,
        }
    }
}

impl IngressClaims {
    /// The paths this Ingress routes on `host` (none if it does not claim it).
    pub fn paths_for(&self, host: &str) -> &[PathClaim] {
        match self.hosts.binary_search_by(|(h, _)| h.as_str().cmp(host)) {
            Ok(i) => &self.hosts[i].1,
            // Claims built by hand may not be sorted: fall back to a scan rather than miss a path.
            Err(_) => self
                .hosts
                .iter()
                .find(|(h, _)| h == host)
                .map_or(&[], |(_, p)| p.as_slice()),
        }
    }
}

pub use super::ownership::created;

impl Claim for IngressClaims {
    fn order(&self) -> Order<'_> {
        Order::new(self.created, &self.key.namespace, &self.key.name)
    }
}

impl Claim for VipClaim {
    fn order(&self) -> Order<'_> {
        Order::new(self.created, &self.key.namespace, &self.key.name)
    }
}

/// A LoadBalancer Service of ours that asks for a particular VIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipClaim {
    pub key: ObjKey,
    /// creationTimestamp in seconds; `None` for an object not yet stored (it is the newest).
    pub created: Option<i64>,
    pub ip: IpAddr,
    /// The `ako.vmware.com/enable-shared-vip` key, if any.
    pub shared: Option<String>,
}

impl VipClaim {
    /// The claim of an already translated Service (`None` if it asks for no particular VIP).
    pub fn from_intent(intent: &intent::ServiceIntent, created: Option<i64>) -> Option<Self> {
        Some(Self {
            key: ObjKey::new(intent.namespace.clone(), intent.name.clone()),
            created,
            ip: intent.requested_ip?,
            shared: intent.shared_vip.clone(),
        })
    }

    /// Whether `other` may hold the same VIP: it is the same Service, or both share it under the same key.
    pub fn compatible_with(&self, other: &VipClaim) -> bool {
        self.key == other.key || (self.shared.is_some() && self.shared == other.shared)
    }
}

/// One Service as the index keeps it: that it exists (for backend checks) and the VIP it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    pub key: ObjKey,
    pub vip: Option<VipClaim>,
}

impl ServiceEntry {
    /// Derives the entry with the same conversion the webhook and reconciler use.
    pub fn of(svc: &Service, cfg: &Config) -> Self {
        let vip = intent::service_is_ours(svc, cfg)
            .then(|| {
                let (intent, _) = intent::translate_service(svc, cfg);
                VipClaim::from_intent(&intent, created(&svc.metadata))
            })
            .flatten();
        Self {
            key: ObjKey::of(&svc.metadata),
            vip,
        }
    }
}

/// An immutable-per-read view of the cluster. All admission lookups go through it.
#[derive(Debug, Default)]
pub struct Snapshot {
    ingresses: HashMap<ObjKey, Arc<IngressClaims>>,
    by_host: HashMap<String, Vec<Arc<IngressClaims>>>,
    pub classes: ClassView,
    secrets: HashSet<ObjKey>,
    services: HashSet<ObjKey>,
    /// Requested VIPs of LoadBalancer Services of ours, and the VIP of each such Service.
    vips: HashMap<IpAddr, Vec<Arc<VipClaim>>>,
    vip_of: HashMap<ObjKey, IpAddr>,
    /// Whether Secrets and Services are known; until then nothing is reported missing.
    pub refs_synced: bool,
    /// HostRules by the FQDN they claim (lower case), and each rule's FQDN.
    host_rules: HashMap<String, Vec<HostRuleClaim>>,
    host_rule_fqdn: HashMap<ObjKey, String>,
}

/// A HostRule's claim on its FQDN, as the webhook weighs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRuleClaim {
    pub key: ObjKey,
    pub created: Option<i64>,
    /// Its status says Rejected: it holds no FQDN.
    pub rejected: bool,
}

impl Snapshot {
    /// Ingresses (of any class) that claim `host`.
    pub fn claims_for_host(&self, host: &str) -> &[Arc<IngressClaims>] {
        self.by_host.get(host).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn ingress_count(&self) -> usize {
        self.ingresses.len()
    }

    pub fn secret_exists(&self, key: &ObjKey) -> Option<bool> {
        self.refs_synced.then(|| self.secrets.contains(key))
    }

    pub fn service_exists(&self, key: &ObjKey) -> Option<bool> {
        self.refs_synced.then(|| self.services.contains(key))
    }

    /// Adds or replaces one Ingress.
    pub fn upsert_ingress(&mut self, claims: IngressClaims) {
        self.remove_ingress(&claims.key.clone());
        let claims = Arc::new(claims);
        for (host, _) in &claims.hosts {
            self.by_host
                .entry(host.clone())
                .or_default()
                .push(Arc::clone(&claims));
        }
        self.ingresses.insert(claims.key.clone(), claims);
    }

    pub fn remove_ingress(&mut self, key: &ObjKey) {
        let Some(old) = self.ingresses.remove(key) else {
            return;
        };
        for (host, _) in &old.hosts {
            if let Some(list) = self.by_host.get_mut(host) {
                list.retain(|c| c.key != *key);
                if list.is_empty() {
                    self.by_host.remove(host);
                }
            }
        }
    }

    /// Inserts or replaces a HostRule's claim (`fqdn` `None`: its spec has none it can claim).
    pub fn upsert_host_rule(&mut self, claim: HostRuleClaim, fqdn: Option<String>) {
        self.remove_host_rule(&claim.key);
        if let Some(f) = fqdn {
            let f = f.to_ascii_lowercase();
            self.host_rule_fqdn.insert(claim.key.clone(), f.clone());
            self.host_rules.entry(f).or_default().push(claim);
        }
    }

    pub fn remove_host_rule(&mut self, key: &ObjKey) {
        if let Some(f) = self.host_rule_fqdn.remove(key)
            && let Some(list) = self.host_rules.get_mut(&f)
        {
            list.retain(|c| c.key != *key);
            if list.is_empty() {
                self.host_rules.remove(&f);
            }
        }
    }

    /// Replaces every HostRule (a watch re-list).
    pub fn replace_host_rules(&mut self, all: Vec<(HostRuleClaim, Option<String>)>) {
        self.host_rules.clear();
        self.host_rule_fqdn.clear();
        for (c, f) in all {
            self.upsert_host_rule(c, f);
        }
    }

    /// The HostRule other than `key` holding `fqdn`: the oldest one not rejected.
    pub fn host_rule_holding(&self, fqdn: &str, key: &ObjKey) -> Option<&HostRuleClaim> {
        self.host_rules
            .get(&fqdn.to_ascii_lowercase())?
            .iter()
            .filter(|c| c.key != *key && !c.rejected)
            .min_by(|a, b| {
                (a.created.is_none(), a.created, &a.key).cmp(&(
                    b.created.is_none(),
                    b.created,
                    &b.key,
                ))
            })
    }

    /// Replaces every Ingress (a watch re-list).
    pub fn replace_ingresses(&mut self, all: Vec<IngressClaims>) {
        self.ingresses.clear();
        self.by_host.clear();
        for c in all {
            self.upsert_ingress(c);
        }
    }

    pub fn upsert_class(&mut self, ic: &IngressClass) {
        if let Some(name) = ic.metadata.name.clone() {
            self.classes
                .classes
                .insert(name, ClassInfo::from_ingress_class(ic));
        }
    }

    pub fn remove_class(&mut self, name: &str) {
        self.classes.classes.remove(name);
    }

    pub fn replace_classes(&mut self, all: &[IngressClass]) {
        self.classes.classes.clear();
        for ic in all {
            self.upsert_class(ic);
        }
    }

    pub fn set_secret(&mut self, key: ObjKey, present: bool) {
        if present {
            self.secrets.insert(key)
        } else {
            self.secrets.remove(&key)
        };
    }

    /// Services of ours that ask for `ip`.
    pub fn vip_claims(&self, ip: &IpAddr) -> &[Arc<VipClaim>] {
        self.vips.get(ip).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Adds or replaces one Service.
    pub fn upsert_service(&mut self, entry: ServiceEntry) {
        self.remove_service(&entry.key);
        if let Some(vip) = entry.vip {
            self.vip_of.insert(entry.key.clone(), vip.ip);
            self.vips.entry(vip.ip).or_default().push(Arc::new(vip));
        }
        self.services.insert(entry.key);
    }

    pub fn remove_service(&mut self, key: &ObjKey) {
        self.services.remove(key);
        let Some(ip) = self.vip_of.remove(key) else {
            return;
        };
        if let Some(list) = self.vips.get_mut(&ip) {
            list.retain(|c| c.key != *key);
            if list.is_empty() {
                self.vips.remove(&ip);
            }
        }
    }

    pub fn replace_secrets(&mut self, all: HashSet<ObjKey>) {
        self.secrets = all;
    }

    /// Replaces every Service (a watch re-list).
    pub fn replace_services(&mut self, all: Vec<ServiceEntry>) {
        self.services.clear();
        self.vips.clear();
        self.vip_of.clear();
        for e in all {
            self.upsert_service(e);
        }
    }
}

/// Which watched kinds have completed their first list.
#[derive(Debug, Default, Clone, Copy)]
pub struct SyncState {
    pub ingresses: bool,
    pub classes: bool,
    pub secrets: bool,
    pub services: bool,
}

impl SyncState {
    pub fn all(&self) -> bool {
        self.ingresses && self.classes && self.secrets && self.services
    }
}

/// The shared, concurrently readable index.
#[derive(Debug)]
pub struct Index {
    snapshot: RwLock<Snapshot>,
    sync: RwLock<SyncState>,
    cfg: arc_swap::ArcSwap<Config>,
}

impl Index {
    pub fn new(cfg: Arc<Config>) -> Self {
        Self {
            snapshot: RwLock::new(Snapshot::default()),
            sync: RwLock::new(SyncState::default()),
            cfg: arc_swap::ArcSwap::new(cfg),
        }
    }

    /// The configuration in force (cheap: no lock, no allocation).
    pub fn config(&self) -> arc_swap::Guard<Arc<Config>> {
        self.cfg.load()
    }

    /// Replaces the configuration (e.g. with the DNS subdomains read from the controller). Claims already in the
    /// index were computed with the old one: re-list the watches to recompute them.
    pub fn set_config(&self, cfg: Arc<Config>) {
        self.cfg.store(cfg);
    }

    /// Runs `f` with a read view. Keep `f` short: writers wait for it.
    ///
    /// A reader never queues behind a waiting writer: a large review is decided on an idle-priority thread that
    /// holds its read view for its whole decision and may wait for the CPU meanwhile; with a watch update waiting
    /// to write, a writer-first lock would hold every small review on the listener behind both (priority
    /// inversion). An update waits for the readers of the moment instead.
    pub fn read<R>(&self, f: impl FnOnce(&Snapshot) -> R) -> R {
        f(&self.snapshot.read_recursive())
    }

    pub fn write<R>(&self, f: impl FnOnce(&mut Snapshot) -> R) -> R {
        f(&mut self.snapshot.write())
    }

    /// Runs `f` with the write view if no one is reading now; otherwise hands `f` back (for callers that must not
    /// block their thread while a long read lasts; see [`Index::read`]).
    pub fn try_write<R, F: FnOnce(&mut Snapshot) -> R>(&self, f: F) -> Result<R, F> {
        match self.snapshot.try_write() {
            Some(mut snap) => Ok(f(&mut snap)),
            None => Err(f),
        }
    }

    pub fn sync_state(&self) -> SyncState {
        *self.sync.read()
    }

    pub fn mark_synced(&self, f: impl FnOnce(&mut SyncState)) {
        let mut s = self.sync.write();
        f(&mut s);
        let refs = s.secrets && s.services;
        drop(s);
        self.snapshot.write().refs_synced = refs;
    }

    pub fn is_ready(&self) -> bool {
        self.sync.read().all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(ns: &str, name: &str, created: Option<i64>, hosts: &[&str]) -> IngressClaims {
        IngressClaims {
            key: ObjKey::new(ns, name),
            created,
            class: ClassRef::Unset,
            hosts: hosts.iter().map(|h| (h.to_string(), vec![])).collect(),
        }
    }

    #[test]
    fn upsert_replaces_previous_hosts_and_remove_cleans_up() {
        let mut s = Snapshot::default();
        s.upsert_ingress(claims("a", "x", Some(1), &["h1", "h2"]));
        s.upsert_ingress(claims("b", "y", Some(2), &["h1"]));
        assert_eq!(s.claims_for_host("h1").len(), 2);
        s.upsert_ingress(claims("a", "x", Some(1), &["h3"]));
        assert_eq!(s.claims_for_host("h1").len(), 1);
        assert!(s.claims_for_host("h2").is_empty());
        assert_eq!(s.claims_for_host("h3").len(), 1);
        s.remove_ingress(&ObjKey::new("b", "y"));
        assert!(s.claims_for_host("h1").is_empty());
        assert_eq!(s.ingress_count(), 1);
    }

    #[test]
    fn ownership_order_puts_unstored_objects_last() {
        let stored = claims("z", "z", Some(100), &[]);
        let unstored = claims("a", "a", None, &[]);
        assert!(stored.order() < unstored.order());
        assert!(claims("a", "b", Some(5), &[]).order() < claims("b", "a", Some(5), &[]).order());
    }

    #[test]
    fn only_load_balancer_services_of_ours_claim_their_requested_vip() {
        let cfg = Config::default();
        let svc = |name: &str, spec: &str| -> Service {
            serde_yaml_ng::from_str(&format!(
                "metadata: {{name: {name}, namespace: n}}\nspec: {spec}"
            ))
            .expect("service")
        };
        let entries: Vec<ServiceEntry> = [
            svc("lb", "{type: LoadBalancer, loadBalancerIP: 10.10.18.5}"),
            svc(
                "cluster-ip",
                "{type: ClusterIP, loadBalancerIP: 10.10.18.5}",
            ),
            svc(
                "other-class",
                "{type: LoadBalancer, loadBalancerClass: x/y, loadBalancerIP: 10.10.18.5}",
            ),
            svc("no-ip", "{type: LoadBalancer}"),
        ]
        .iter()
        .map(|s| ServiceEntry::of(s, &cfg))
        .collect();
        let mut snap = Snapshot::default();
        snap.replace_services(entries);
        let ip: IpAddr = "10.10.18.5".parse().expect("ip");
        let keys: Vec<String> = snap
            .vip_claims(&ip)
            .iter()
            .map(|c| c.key.to_string())
            .collect();
        assert_eq!(keys, ["n/lb"]);
        snap.refs_synced = true;
        for name in ["lb", "cluster-ip", "other-class", "no-ip"] {
            assert_eq!(
                snap.service_exists(&ObjKey::new("n", name)),
                Some(true),
                "{name}"
            );
        }
        // Changing the request moves the claim; deleting drops it.
        snap.upsert_service(ServiceEntry::of(
            &svc("lb", "{type: LoadBalancer, loadBalancerIP: 10.10.18.9}"),
            &cfg,
        ));
        assert!(snap.vip_claims(&ip).is_empty());
        snap.remove_service(&ObjKey::new("n", "lb"));
        assert!(
            snap.vip_claims(&"10.10.18.9".parse().expect("ip"))
                .is_empty()
        );
        assert_eq!(snap.service_exists(&ObjKey::new("n", "lb")), Some(false));
    }

    #[test]
    fn a_read_is_not_queued_behind_a_waiting_update_while_a_long_read_holds_the_index() {
        use std::sync::mpsc;
        use std::time::Duration;
        let idx = Arc::new(Index::new(Arc::new(Config::default())));
        // A large review's decision holds a read view until told to finish.
        let (release, hold) = mpsc::channel::<()>();
        let (held_tx, held) = mpsc::channel::<()>();
        let long = {
            let idx = Arc::clone(&idx);
            std::thread::spawn(move || {
                idx.read(|_| {
                    let _ = held_tx.send(());
                    let _ = hold.recv();
                })
            })
        };
        held.recv().expect("the long read holds the index");
        // A watch update arrives and waits to write.
        let update = {
            let idx = Arc::clone(&idx);
            std::thread::spawn(move || idx.write(|s| s.set_secret(ObjKey::new("n", "s"), true)))
        };
        std::thread::sleep(Duration::from_millis(100));
        // A small review reads meanwhile: it must not wait for the update, which waits for the long read.
        let (done_tx, done) = mpsc::channel();
        let small = {
            let idx = Arc::clone(&idx);
            std::thread::spawn(move || {
                let n = idx.read(|s| s.ingress_count());
                let _ = done_tx.send(n);
            })
        };
        let answered = done.recv_timeout(Duration::from_secs(2));
        let _ = release.send(());
        for t in [long, update, small] {
            t.join().expect("thread");
        }
        assert_eq!(answered, Ok(0), "the small review read at once");
    }

    #[test]
    fn references_are_unknown_until_synced() {
        let idx = Index::new(Arc::new(Config::default()));
        let key = ObjKey::new("n", "s");
        idx.write(|s| s.set_secret(key.clone(), true));
        assert_eq!(idx.read(|s| s.secret_exists(&key)), None);
        idx.mark_synced(|s| {
            s.secrets = true;
            s.services = true;
        });
        assert_eq!(idx.read(|s| s.secret_exists(&key)), Some(true));
        assert_eq!(idx.read(|s| s.service_exists(&key)), Some(false));
    }
}
