//! The one observation layer: one watch per kind, whose events feed everything that reads Kubernetes. The
//! [`View`] keeps Services, their endpoints, the nodes, Ingresses, IngressClasses and the TLS Secrets Ingresses
//! name; the admission [`Index`] attached to it keeps what the webhook decides on (host claims, classes, Secret
//! existence, requested VIPs), updated by the same events; the reconciler gets the keys each change affects
//! through the merging queue of [`super::changes`]. One trait ([`Feed`]) says how a kind updates each of them, and
//! each kind's watch is the only writer of its part of both, so they never disagree for long. `ako run` starts
//! one set for the webhook and the reconciler; `ako webhook` starts the admission kinds only ([`Kinds`]).
//!
//! - Endpoints come from `discovery.k8s.io/v1` EndpointSlices, or `v1beta1` where the API server has no v1 (the
//!   1.20 test server), or v1 Endpoints where it has neither. Only what translation needs is kept
//!   ([`EndpointGroup`]), never the objects.
//! - A re-list replaces a kind's view at `InitDone`, and every key that was or is in it is reported as changed.
//!   A failed list or watch keeps the last good view (and is logged); it never empties a view, so it can never
//!   look like a deletion.
//! - Ingresses are kept without `managedFields` and the `last-applied-configuration` annotation.
//! - TLS Secrets: only their metadata is watched (`type=kubernetes.io/tls`, cluster-wide); the data of a Secret
//!   is read ([`View::tls_secrets`]) only when an Ingress of ako names it, and read again only when its
//!   resourceVersion changes. No other Secret's data is ever fetched or held.
//! - [`View::synced`] says when every kind has been listed once; [`View::complete`] also needs every watch to be
//!   delivering (a failing one makes the view possibly stale): nothing may be deleted unless it holds. The index's
//!   own readiness ([`Index::is_synced`](ako_core::index::Index)) is marked by the same event.
//! - When the webhook's configuration changes (`ako run` learns the DNS profile's subdomains), [`View::reindex`]
//!   has each kind's watch recompute its index entries from the view: no second list, no second watch.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::changes::ChangeSender;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, PartialObjectMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use parking_lot::RwLock;

use ako_core::index::{Index, IngressClaims, ObjKey, ServiceEntry, Snapshot, SyncState};
use ako_core::intent::{ClassInfo, ClassView};
use ako_core::l4::{EndpointGroup, NodeInfo, slice_from_json};
use ako_core::l7::TlsPair;

mod rules;
pub use rules::{RuleKind, RuleObject, api_resource};

/// The label EndpointSlices carry with their Service's name.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Which API serves endpoints on this cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointSource {
    SliceV1,
    SliceV1beta1,
    Endpoints,
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// These Services (or their endpoints) changed.
    Services(Vec<ObjKey>),
    /// The nodes changed: every Service in NodePort mode is affected.
    Nodes,
    /// A namespace's labels changed: its Services may enter or leave ako's scope.
    Namespace(String),
    /// A kind finished a (re-)list, after the changes it made: the view may have become complete, so whoever
    /// waits for it must look again (without this, a last list that changes nothing, such as an empty Node list,
    /// would leave the reconciler waiting); and objects missing from the list were not seen deleted one by one.
    Listed,
    /// Asked for a full sync now (re-read the controller, re-plan everything, delete orphans).
    Resync,
    /// These Ingresses changed (or appeared, or went).
    Ingresses(Vec<ObjKey>),
    /// Only the status of these Services changed: ako's own write coming back, or someone else's edit, which
    /// the reconciler restores.
    ServiceStatus(Vec<ObjKey>),
    /// Only the status of these Ingresses changed (as for [`Change::ServiceStatus`]).
    IngressStatus(Vec<ObjKey>),
    /// These TLS Secrets changed (their resourceVersion), appeared or went.
    Secrets(Vec<ObjKey>),
    /// The IngressClasses changed: which Ingresses are ako's may have changed.
    Classes,
    /// HostRules, HTTPRules or L4Rules changed (their spec, or the status someone else wrote).
    Rules,
}

/// What ako holds of a TLS Secret whose data it read.
#[derive(Clone)]
struct SecretData {
    version: String,
    pair: Option<TlsPair>,
}

/// What ako reads of a Namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceInfo {
    pub labels: BTreeMap<String, String>,
    /// `aviinfrasetting.ako.vmware.com/name`.
    pub infra: Option<String>,
}

impl NamespaceInfo {
    pub fn of(ns: &k8s_openapi::api::core::v1::Namespace) -> Self {
        Self {
            labels: ns.metadata.labels.clone().unwrap_or_default(),
            infra: ako_core::crd::infra::named(ns.metadata.annotations.as_ref()),
        }
    }
}

/// The in-memory view.
#[derive(Default)]
pub struct View {
    services: RwLock<HashMap<ObjKey, Arc<Service>>>,
    /// Service -> (slice or subset name -> group).
    endpoints: RwLock<HashMap<ObjKey, BTreeMap<String, EndpointGroup>>>,
    nodes: RwLock<BTreeMap<String, NodeInfo>>,
    /// Namespace -> labels (for `namespaceSelector`) and the AviInfraSetting it binds.
    namespaces: RwLock<HashMap<String, NamespaceInfo>>,
    services_synced: AtomicBool,
    namespaces_synced: AtomicBool,
    /// Whether namespace labels matter (a `namespaceSelector` is set): only then must Namespaces be listed before
    /// the view counts as synced.
    namespaces_required: AtomicBool,
    /// Kinds whose watch failed and has not delivered since: the view may be stale there.
    failing: parking_lot::Mutex<HashSet<&'static str>>,
    endpoints_synced: AtomicBool,
    nodes_synced: AtomicBool,
    ingresses: RwLock<HashMap<ObjKey, Arc<Ingress>>>,
    classes: RwLock<ClassView>,
    /// TLS Secrets by key: resourceVersion (metadata only).
    secret_versions: RwLock<HashMap<ObjKey, String>>,
    /// The data of the TLS Secrets ako read (Ingresses name them).
    secret_data: RwLock<HashMap<ObjKey, SecretData>>,
    /// Reads Secret data; `None` in views filled by hand.
    client: parking_lot::Mutex<Option<Client>>,
    /// Secrets of a view filled by hand that cannot be read, with why (tests).
    unreadable: RwLock<HashMap<ObjKey, String>>,
    ingresses_synced: AtomicBool,
    classes_synced: AtomicBool,
    secrets_synced: AtomicBool,
    /// AKO's HostRules and HTTPRules (group ako.vmware.com), by kind.
    rules: RwLock<BTreeMap<RuleKind, BTreeMap<ObjKey, RuleObject>>>,
    host_rules_synced: AtomicBool,
    http_rules_synced: AtomicBool,
    l4_rules_synced: AtomicBool,
    infra_settings_synced: AtomicBool,
    /// The admission index the same watches keep, if a webhook runs in this process.
    index: Option<Arc<Index>>,
    /// Bumped to have the watches recompute their index entries (the index's configuration changed).
    reindex: tokio::sync::watch::Sender<u64>,
}

/// What reading TLS Secrets gave: the ones read (absent from `found`: no such TLS Secret; `None`: no usable
/// `tls.crt`/`tls.key`), and the ones that could not be read (403, 5xx, timeout: never taken for "not found").
#[derive(Debug, Default)]
pub struct SecretReads {
    found: BTreeMap<ObjKey, Option<TlsPair>>,
    failed: BTreeMap<ObjKey, String>,
}

impl SecretReads {
    /// The Secrets read.
    pub fn found(&self) -> &BTreeMap<ObjKey, Option<TlsPair>> {
        &self.found
    }

    /// Whether every Secret in `needed` was read; otherwise what could not be, and why.
    pub fn check(&self, needed: &BTreeSet<ObjKey>) -> Result<(), Vec<ako_core::safety::Unknown>> {
        let unknown: Vec<_> = needed
            .iter()
            .filter_map(|k| {
                self.failed.get(k).map(|reason| ako_core::safety::Unknown {
                    input: format!("Secret {k}"),
                    reason: reason.clone(),
                })
            })
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(unknown)
        }
    }
}

/// Drops what the reconciler never reads and what costs the most memory in an object's metadata (managedFields
/// alone are about half of a Service).
fn slim_meta(meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) {
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// Whether two versions of an object's metadata are the same for ako (annotations, labels, deletion): with the
/// same spec, an update that differs in nothing else is a status write.
fn same_meta(
    a: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    b: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> bool {
    a.annotations == b.annotations
        && a.labels == b.labels
        && a.deletion_timestamp == b.deletion_timestamp
}

fn slim_ingress(mut ing: Ingress) -> Ingress {
    slim_meta(&mut ing.metadata);
    ing
}

fn slim_service(mut svc: Service) -> Service {
    slim_meta(&mut svc.metadata);
    svc
}

/// `tls.crt` and `tls.key` of a Secret, if both are there and are text.
fn tls_pair_of(secret: &Secret) -> Option<TlsPair> {
    let data = secret.data.as_ref()?;
    let text = |k: &str| {
        data.get(k)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
            .filter(|s| !s.trim().is_empty())
    };
    let (cert_pem, key_pem) = (text("tls.crt")?, text("tls.key")?);
    Some(TlsPair {
        problem: ako_certs::check_pair(&cert_pem, &key_pem).err(),
        cert_pem,
        key_pem,
    })
}

impl View {
    /// A view whose watches also keep `index` (the webhook's).
    pub fn with_index(index: Arc<Index>) -> Self {
        Self {
            index: Some(index),
            ..Self::default()
        }
    }

    /// The admission index the watches keep, if any.
    pub fn index(&self) -> Option<&Arc<Index>> {
        self.index.as_ref()
    }

    /// Has the watches recompute their index entries with the index's current configuration (each from the
    /// objects the view holds; the kind's watch does it, so no event of the kind can come in between).
    pub fn reindex(&self) {
        self.reindex.send_modify(|g| *g += 1);
    }

    /// Whether every kind has been listed at least once and no watch is failing now: only then is the view
    /// complete enough to delete on its basis.
    pub fn complete(&self) -> bool {
        self.synced() && self.failing.lock().is_empty()
    }

    /// Whether every kind has been listed at least once.
    pub fn synced(&self) -> bool {
        self.services_synced.load(Ordering::Acquire)
            && self.endpoints_synced.load(Ordering::Acquire)
            && self.nodes_synced.load(Ordering::Acquire)
            && (self.namespaces_synced.load(Ordering::Acquire)
                || !self.namespaces_required.load(Ordering::Acquire))
            && self.ingresses_synced.load(Ordering::Acquire)
            && self.classes_synced.load(Ordering::Acquire)
            && self.secrets_synced.load(Ordering::Acquire)
            && self.host_rules_synced.load(Ordering::Acquire)
            && self.http_rules_synced.load(Ordering::Acquire)
            && self.l4_rules_synced.load(Ordering::Acquire)
            && self.infra_settings_synced.load(Ordering::Acquire)
    }

    /// The rules of a kind, by key.
    pub fn rules(&self, kind: RuleKind) -> BTreeMap<ObjKey, RuleObject> {
        self.rules.read().get(&kind).cloned().unwrap_or_default()
    }

    /// Removes a rule (a watch event; also for tests).
    pub fn remove_rule(&self, kind: RuleKind, key: &ObjKey) -> bool {
        self.rules
            .write()
            .get_mut(&kind)
            .and_then(|m| m.remove(key))
            .is_some()
    }

    /// Inserts or replaces a rule (a watch event; also for tests).
    pub fn upsert_rule(&self, kind: RuleKind, key: ObjKey, rule: RuleObject) -> bool {
        let mut r = self.rules.write();
        let m = r.entry(kind).or_default();
        m.insert(key, rule.clone()).as_ref() != Some(&rule)
    }

    pub fn ingress(&self, key: &ObjKey) -> Option<Arc<Ingress>> {
        self.ingresses.read().get(key).cloned()
    }

    pub fn ingresses(&self) -> Vec<Arc<Ingress>> {
        self.ingresses.read().values().cloned().collect()
    }

    pub fn ingress_keys(&self) -> Vec<ObjKey> {
        self.ingresses.read().keys().cloned().collect()
    }

    /// Inserts or replaces an Ingress (a watch event; also for tests and benchmarks).
    pub fn upsert_ingress(&self, ing: Ingress) -> Change {
        let key = ObjKey::of(&ing.metadata);
        self.ingresses
            .write()
            .insert(key.clone(), Arc::new(slim_ingress(ing)));
        Change::Ingresses(vec![key])
    }

    pub fn remove_ingress(&self, key: &ObjKey) -> Change {
        self.ingresses.write().remove(key);
        Change::Ingresses(vec![key.clone()])
    }

    /// The IngressClasses, for deciding which Ingresses are ako's.
    pub fn classes(&self) -> ClassView {
        self.classes.read().clone()
    }

    /// Sets (or with `None` removes) an IngressClass (a watch event; also for tests).
    pub fn set_class(&self, name: &str, info: Option<ClassInfo>) -> Change {
        let mut c = self.classes.write();
        match info {
            Some(i) => c.classes.insert(name.to_string(), i),
            None => c.classes.remove(name),
        };
        Change::Classes
    }

    /// Whether a TLS Secret of this key exists (as the Secret watch last saw it).
    pub fn has_tls_secret(&self, key: &ObjKey) -> bool {
        self.secret_versions.read().contains_key(key)
    }

    /// Sets a TLS Secret by hand (tests and benchmarks): `None` removes it, `Some(None)` is a Secret without a
    /// usable `tls.crt`/`tls.key`.
    pub fn set_tls_secret(&self, key: &ObjKey, pair: Option<Option<TlsPair>>) -> Change {
        match pair {
            None => {
                self.secret_versions.write().remove(key);
                self.secret_data.write().remove(key);
            }
            Some(pair) => {
                let mut versions = self.secret_versions.write();
                let version = versions
                    .get(key)
                    .and_then(|v| v.parse::<u64>().ok())
                    .map_or(1, |v| v + 1)
                    .to_string();
                versions.insert(key.clone(), version.clone());
                self.secret_data
                    .write()
                    .insert(key.clone(), SecretData { version, pair });
            }
        }
        Change::Secrets(vec![key.clone()])
    }

    /// The TLS Secrets asked for ([`SecretReads`]). Data is read from the API server only for a Secret not read
    /// before or whose resourceVersion changed since; a failed read is reported as such, per Secret.
    pub async fn tls_secrets(&self, keys: &BTreeSet<ObjKey>) -> SecretReads {
        let mut out = BTreeMap::new();
        let mut failed = BTreeMap::new();
        let mut fetch: Vec<(ObjKey, String)> = Vec::new();
        {
            let versions = self.secret_versions.read();
            let data = self.secret_data.read();
            let unreadable = self.unreadable.read();
            for key in keys {
                if let Some(reason) = unreadable.get(key) {
                    failed.insert(key.clone(), reason.clone());
                    continue;
                }
                let Some(version) = versions.get(key) else {
                    continue;
                };
                match data.get(key) {
                    Some(d) if d.version == *version => {
                        out.insert(key.clone(), d.pair.clone());
                    }
                    _ => fetch.push((key.clone(), version.clone())),
                }
            }
        }
        if fetch.is_empty() {
            return SecretReads { found: out, failed };
        }
        let client = self.client.lock().clone();
        let Some(client) = client else {
            // A view filled by hand knows only what it was given.
            return SecretReads { found: out, failed };
        };
        let reads = futures::stream::iter(fetch.into_iter().map(|(key, version)| {
            let client = client.clone();
            async move {
                let api: Api<Secret> = Api::namespaced(client, &key.namespace);
                let got = api.get_opt(&key.name).await;
                (key, version, got)
            }
        }))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
        let mut data = self.secret_data.write();
        for (key, version, got) in reads {
            match got {
                Ok(Some(secret)) => {
                    let is_tls = secret.type_.as_deref() == Some("kubernetes.io/tls");
                    let pair = if is_tls { tls_pair_of(&secret) } else { None };
                    let version = secret.metadata.resource_version.clone().unwrap_or(version);
                    data.insert(
                        key.clone(),
                        SecretData {
                            version,
                            pair: pair.clone(),
                        },
                    );
                    if is_tls {
                        out.insert(key, pair);
                    }
                }
                Ok(None) => {
                    data.remove(&key);
                }
                Err(e) => {
                    tracing::warn!(secret = %key, error = %e, "TLS Secret not readable");
                    failed.insert(key, e.to_string());
                }
            }
        }
        SecretReads { found: out, failed }
    }

    /// Marks a Secret of a view filled by hand as unreadable (`Some(reason)`) or readable again (tests: a 403).
    pub fn set_secret_unreadable(&self, key: &ObjKey, reason: Option<&str>) -> Change {
        match reason {
            Some(r) => {
                self.unreadable.write().insert(key.clone(), r.to_string());
            }
            None => {
                self.unreadable.write().remove(key);
            }
        }
        Change::Secrets(vec![key.clone()])
    }

    pub fn service(&self, key: &ObjKey) -> Option<Arc<Service>> {
        self.services.read().get(key).cloned()
    }

    pub fn services(&self) -> Vec<Arc<Service>> {
        self.services.read().values().cloned().collect()
    }

    pub fn service_keys(&self) -> Vec<ObjKey> {
        self.services.read().keys().cloned().collect()
    }

    pub fn endpoints(&self, key: &ObjKey) -> Vec<EndpointGroup> {
        self.endpoints
            .read()
            .get(key)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.nodes.read().values().cloned().collect()
    }

    /// Namespaces matter (their labels decide the scope, their annotation the AviInfraSetting): the view is
    /// synced only once they are listed.
    pub fn require_namespaces(&self, required: bool) {
        self.namespaces_required.store(required, Ordering::Release);
    }

    /// The labels of a namespace (`None`: not known).
    pub fn namespace_labels(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.namespaces.read().get(name).map(|n| n.labels.clone())
    }

    /// The AviInfraSetting a namespace's annotation names, if it is known and names one.
    pub fn namespace_infra(&self, name: &str) -> Option<String> {
        self.namespaces.read().get(name)?.infra.clone()
    }

    /// Sets a namespace's labels (what the Namespace watch does; also for tests).
    pub fn set_namespace(&self, name: &str, labels: BTreeMap<String, String>) -> Change {
        let mut ns = self.namespaces.write();
        ns.entry(name.to_string()).or_default().labels = labels;
        Change::Namespace(name.to_string())
    }

    /// Sets the AviInfraSetting a namespace binds (what the Namespace watch does; also for tests).
    pub fn set_namespace_infra(&self, name: &str, infra: Option<String>) -> Change {
        let mut ns = self.namespaces.write();
        ns.entry(name.to_string()).or_default().infra = infra;
        Change::Namespace(name.to_string())
    }

    /// Inserts or replaces a Service (what a watch event does; also for tests and benchmarks).
    pub fn upsert_service(&self, svc: Service) -> Change {
        let key = ObjKey::of(&svc.metadata);
        self.services
            .write()
            .insert(key.clone(), Arc::new(slim_service(svc)));
        Change::Services(vec![key])
    }

    pub fn remove_service(&self, key: &ObjKey) -> Change {
        self.services.write().remove(key);
        Change::Services(vec![key.clone()])
    }

    /// Inserts or replaces a Node (what a watch event does; also for tests).
    pub fn upsert_node(&self, node: NodeInfo) -> Change {
        self.nodes.write().insert(node.name.clone(), node);
        Change::Nodes
    }

    pub fn remove_node(&self, name: &str) -> Change {
        self.nodes.write().remove(name);
        Change::Nodes
    }

    /// Replaces the endpoints of a Service.
    pub fn set_endpoints(&self, key: &ObjKey, groups: Vec<EndpointGroup>) -> Change {
        let groups: BTreeMap<String, EndpointGroup> = groups
            .into_iter()
            .enumerate()
            .map(|(i, g)| (i.to_string(), g))
            .collect();
        self.endpoints.write().insert(key.clone(), groups);
        Change::Services(vec![key.clone()])
    }

    /// A view filled by hand (tests and benchmarks).
    pub fn from_parts(
        services: Vec<Service>,
        endpoints: Vec<(ObjKey, EndpointGroup)>,
        nodes: Vec<NodeInfo>,
    ) -> Self {
        let v = View::default();
        {
            let mut s = v.services.write();
            for svc in services {
                s.insert(ObjKey::of(&svc.metadata), Arc::new(svc));
            }
            let mut e = v.endpoints.write();
            for (i, (k, g)) in endpoints.into_iter().enumerate() {
                e.entry(k).or_default().insert(i.to_string(), g);
            }
            let mut n = v.nodes.write();
            for node in nodes {
                n.insert(node.name.clone(), node);
            }
        }
        for f in [
            &v.services_synced,
            &v.endpoints_synced,
            &v.nodes_synced,
            &v.namespaces_synced,
            &v.ingresses_synced,
            &v.classes_synced,
            &v.secrets_synced,
            &v.host_rules_synced,
            &v.http_rules_synced,
            &v.l4_rules_synced,
            &v.infra_settings_synced,
        ] {
            f.store(true, Ordering::Release);
        }
        v
    }
}

mod watches;
pub use watches::{Kinds, endpoint_source, spawn, spawn_admission};

#[cfg(test)]
mod tests;
