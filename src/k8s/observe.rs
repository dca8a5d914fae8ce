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
}

/// What ako holds of a TLS Secret whose data it read.
#[derive(Clone)]
struct SecretData {
    version: String,
    pair: Option<TlsPair>,
}

/// The in-memory view.
#[derive(Default)]
pub struct View {
    services: RwLock<HashMap<ObjKey, Arc<Service>>>,
    /// Service -> (slice or subset name -> group).
    endpoints: RwLock<HashMap<ObjKey, BTreeMap<String, EndpointGroup>>>,
    nodes: RwLock<BTreeMap<String, NodeInfo>>,
    /// Namespace -> labels (for `namespaceSelector`).
    namespaces: RwLock<HashMap<String, BTreeMap<String, String>>>,
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

    /// Namespace labels decide the scope (a `namespaceSelector` is set): the view is synced only once Namespaces
    /// are listed.
    pub fn require_namespaces(&self, required: bool) {
        self.namespaces_required.store(required, Ordering::Release);
    }

    /// The labels of a namespace (`None`: not known).
    pub fn namespace_labels(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.namespaces.read().get(name).cloned()
    }

    /// Sets a namespace's labels (what the Namespace watch does; also for tests).
    pub fn set_namespace(&self, name: &str, labels: BTreeMap<String, String>) -> Change {
        self.namespaces.write().insert(name.to_string(), labels);
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
        ] {
            f.store(true, Ordering::Release);
        }
        v
    }
}

/// Finds the endpoint API this server serves: EndpointSlice v1, then v1beta1, then v1 Endpoints. Only an answer
/// that the API is not served (404) moves on to the next; any other failure (a timeout, a 5xx, a 403 while RBAC
/// is being fixed) is retried with backoff, so a passing hiccup never settles ako on the wrong API.
pub async fn endpoint_source(client: &Client) -> EndpointSource {
    let mut delay = std::time::Duration::from_millis(500);
    loop {
        match probe_endpoint_source(client).await {
            Ok(source) => return source,
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "could not tell which endpoint API the API server serves; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(30));
            }
        }
    }
}

/// One probe: `Ok` when the server answered for every API it had to be asked about.
async fn probe_endpoint_source(client: &Client) -> Result<EndpointSource, kube::Error> {
    let lp = ListParams::default().limit(1);
    let not_served = |e: &kube::Error| matches!(e, kube::Error::Api(s) if s.code == 404);
    match Api::<EndpointSlice>::all(client.clone())
        .list_metadata(&lp)
        .await
    {
        Ok(_) => return Ok(EndpointSource::SliceV1),
        Err(e) if not_served(&e) => {}
        Err(e) => return Err(e),
    }
    let ar = slice_v1beta1();
    match Api::<DynamicObject>::all_with(client.clone(), &ar)
        .list_metadata(&lp)
        .await
    {
        Ok(_) => Ok(EndpointSource::SliceV1beta1),
        Err(e) if not_served(&e) => Ok(EndpointSource::Endpoints),
        Err(e) => Err(e),
    }
}

fn slice_v1beta1() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("discovery.k8s.io", "v1beta1", "EndpointSlice"),
        "endpointslices",
    )
}

/// Which kinds to watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kinds {
    /// What the webhook decides on: Services, Ingresses, IngressClasses, TLS Secrets (`ako webhook`).
    Admission,
    /// Everything (the reconciler, with or without a webhook), endpoints from this source.
    All(EndpointSource),
}

/// Starts one watch per kind; they run until the tasks are aborted. Changes go to `tx` when a reconciler
/// listens; the view's index, if it has one, is kept by the same watches.
pub fn spawn(
    client: Client,
    view: Arc<View>,
    kinds: Kinds,
    tx: Option<ChangeSender>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let cfg = watcher::Config::default();
    let services =
        watcher::watcher(Api::<Service>::all(client.clone()), cfg.clone()).default_backoff();
    let ingresses =
        watcher::watcher(Api::<Ingress>::all(client.clone()), cfg.clone()).default_backoff();
    let classes =
        watcher::watcher(Api::<IngressClass>::all(client.clone()), cfg.clone()).default_backoff();
    // Only the Secrets an Ingress can use: kubernetes.io/tls (a cluster's other Secrets, often thousands, are
    // none of ako's business), and only their metadata.
    let secrets = watcher::watcher(
        Api::<PartialObjectMeta<Secret>>::all(client.clone()),
        cfg.clone().fields("type=kubernetes.io/tls"),
    )
    .default_backoff();
    *view.client.lock() = Some(client.clone());
    let mut tasks = vec![
        tokio::spawn(drive(view.clone(), ServicesFeed, services, tx.clone())),
        tokio::spawn(drive(view.clone(), ClassesFeed, classes, tx.clone())),
        tokio::spawn(drive(view.clone(), SecretsFeed, secrets, tx.clone())),
        tokio::spawn(drive(view.clone(), IngressesFeed, ingresses, tx.clone())),
    ];
    let Kinds::All(source) = kinds else {
        return tasks;
    };
    let nodes = watcher::watcher(Api::<Node>::all(client.clone()), cfg.clone()).default_backoff();
    let namespaces =
        watcher::watcher(Api::<Namespace>::all(client.clone()), cfg.clone()).default_backoff();
    tasks.push(tokio::spawn(drive(
        view.clone(),
        NamespacesFeed,
        namespaces,
        tx.clone(),
    )));
    tasks.push(tokio::spawn(drive(
        view.clone(),
        NodesFeed,
        nodes,
        tx.clone(),
    )));
    tasks.push(match source {
        EndpointSource::SliceV1 => {
            let s = watcher::watcher(Api::<EndpointSlice>::all(client), cfg).default_backoff();
            tokio::spawn(drive(view, SlicesFeed, s.map(|e| e.map(as_json)), tx))
        }
        EndpointSource::SliceV1beta1 => {
            let s = watcher::watcher(
                Api::<DynamicObject>::all_with(client, &slice_v1beta1()),
                cfg,
            )
            .default_backoff();
            tokio::spawn(drive(view, SlicesFeed, s.map(|e| e.map(as_json)), tx))
        }
        EndpointSource::Endpoints => {
            let s = watcher::watcher(Api::<Endpoints>::all(client), cfg).default_backoff();
            tokio::spawn(drive(view, EndpointsFeed, s, tx))
        }
    });
    tasks
}

/// The admission kinds' watches keeping `index` (`ako webhook`, and benchmarks of the webhook alone); the view
/// they fill is returned with them.
pub fn spawn_admission(
    client: Client,
    index: Arc<Index>,
) -> (Arc<View>, Vec<tokio::task::JoinHandle<()>>) {
    let view = Arc::new(View::with_index(index));
    let tasks = spawn(client, view.clone(), Kinds::Admission, None);
    (view, tasks)
}

/// A watch event with its object as JSON (EndpointSlices of either version are read the same way).
fn as_json<K: serde::Serialize>(e: Event<K>) -> Event<serde_json::Value> {
    let j = |k: K| serde_json::to_value(k).unwrap_or_default();
    match e {
        Event::Apply(k) => Event::Apply(j(k)),
        Event::Delete(k) => Event::Delete(j(k)),
        Event::Init => Event::Init,
        Event::InitApply(k) => Event::InitApply(j(k)),
        Event::InitDone => Event::InitDone,
    }
}

/// How one watched kind updates the view.
/// How one watched kind updates the view (and the reconciler's changes) and, for the kinds the webhook decides
/// on, the admission index. The index's side defaults to nothing: a kind sets [`Feed::INDEXED`] and says what
/// the index keeps of an object ([`Feed::entry`]) and how it is stored.
trait Feed<K>: Send + 'static {
    const KIND: &'static str;
    /// Inserts or replaces one object; returns the change to report.
    fn apply(view: &View, obj: K) -> Option<Change>;
    fn delete(view: &View, obj: K) -> Option<Change>;
    /// Replaces the whole view of the kind.
    fn replace(view: &View, all: Vec<K>) -> Option<Change>;
    fn synced(view: &View) -> &AtomicBool;

    /// Whether the admission index keeps this kind.
    const INDEXED: bool = false;
    /// What the index keeps of one object (computed outside the index's lock).
    type Entry: Send;
    fn entry(_index: &Index, _obj: &K) -> Option<Self::Entry> {
        None
    }
    fn index_key(_obj: &K) -> Option<ObjKey> {
        None
    }
    fn index_upsert(_snap: &mut Snapshot, _entry: Self::Entry) {}
    fn index_remove(_snap: &mut Snapshot, _key: &ObjKey) {}
    fn index_replace(_snap: &mut Snapshot, _all: Vec<Self::Entry>) {}
    fn index_synced(_sync: &mut SyncState) {}
    /// The kind's entries recomputed from the view, for a kind whose entries depend on the index's
    /// configuration (`None`: they do not).
    fn reentries(_view: &View, _index: &Index) -> Option<Vec<Self::Entry>> {
        None
    }
}

/// An object's parts as an update is compared: its spec, its metadata (as [`same_meta`] reads it), its status.
type Parts<'a, S, T> = (
    &'a S,
    &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    &'a T,
);

/// Whether an update leaves what ako translates (spec and metadata) the same, and whether it leaves the status
/// the same, against the object kept before (none: it is new).
fn compared<S: PartialEq, T: PartialEq>(
    old: Option<Parts<'_, S, T>>,
    new: Parts<'_, S, T>,
) -> (bool, bool) {
    old.map_or((false, false), |(spec, meta, status)| {
        (spec == new.0 && same_meta(meta, new.1), status == new.2)
    })
}

/// What an update of an object with a status reports: any other change as `change`, a status-only one as
/// `status_only`, nothing if nothing changed.
fn told_apart(
    same: bool,
    same_status: bool,
    change: Change,
    status_only: impl FnOnce() -> Change,
) -> Option<Change> {
    match (same, same_status) {
        (false, _) => Some(change),
        (true, false) => Some(status_only()),
        (true, true) => None,
    }
}

struct ServicesFeed;
impl Feed<Service> for ServicesFeed {
    const KIND: &'static str = "Service";
    fn apply(view: &View, obj: Service) -> Option<Change> {
        // A status-only update changes nothing ako translates: it is reported as such, and the reconciler
        // looks only at whether the status is still the one it wrote (its own write coming back) or not (someone
        // else's edit, restored).
        let key = ObjKey::of(&obj.metadata);
        let obj = slim_service(obj);
        let (same, same_status) = compared(
            view.services
                .read()
                .get(&key)
                .map(|o| (&o.spec, &o.metadata, &o.status)),
            (&obj.spec, &obj.metadata, &obj.status),
        );
        let change = view.upsert_service(obj);
        told_apart(same, same_status, change, || {
            Change::ServiceStatus(vec![key])
        })
    }
    fn delete(view: &View, obj: Service) -> Option<Change> {
        Some(view.remove_service(&ObjKey::of(&obj.metadata)))
    }
    fn replace(view: &View, all: Vec<Service>) -> Option<Change> {
        let new: HashMap<ObjKey, Arc<Service>> = all
            .into_iter()
            .map(|s| (ObjKey::of(&s.metadata), Arc::new(slim_service(s))))
            .collect();
        let mut keys: HashSet<ObjKey> = new.keys().cloned().collect();
        let old = std::mem::replace(&mut *view.services.write(), new);
        keys.extend(old.into_keys());
        Some(Change::Services(keys.into_iter().collect()))
    }
    fn synced(view: &View) -> &AtomicBool {
        &view.services_synced
    }

    const INDEXED: bool = true;
    /// Existence, and the VIP a LoadBalancer Service of ako's asks for.
    type Entry = ServiceEntry;
    fn entry(index: &Index, obj: &Service) -> Option<ServiceEntry> {
        Some(ServiceEntry::of(obj, &index.config()))
    }
    fn index_key(obj: &Service) -> Option<ObjKey> {
        Some(ObjKey::of(&obj.metadata))
    }
    fn index_upsert(snap: &mut Snapshot, entry: ServiceEntry) {
        snap.upsert_service(entry);
    }
    fn index_remove(snap: &mut Snapshot, key: &ObjKey) {
        snap.remove_service(key);
    }
    fn index_replace(snap: &mut Snapshot, all: Vec<ServiceEntry>) {
        snap.replace_services(all);
    }
    fn index_synced(sync: &mut SyncState) {
        sync.services = true;
    }
    fn reentries(view: &View, index: &Index) -> Option<Vec<ServiceEntry>> {
        let cfg = index.config();
        Some(
            view.services
                .read()
                .values()
                .map(|s| ServiceEntry::of(s, &cfg))
                .collect(),
        )
    }
}

struct IngressesFeed;
impl Feed<Ingress> for IngressesFeed {
    const KIND: &'static str = "Ingress";
    fn apply(view: &View, obj: Ingress) -> Option<Change> {
        // As for Services: a status-only update is reported as such.
        let key = ObjKey::of(&obj.metadata);
        let slim = slim_ingress(obj);
        let (same, same_status) = compared(
            view.ingresses
                .read()
                .get(&key)
                .map(|o| (&o.spec, &o.metadata, &o.status)),
            (&slim.spec, &slim.metadata, &slim.status),
        );
        let change = view.upsert_ingress(slim);
        told_apart(same, same_status, change, || {
            Change::IngressStatus(vec![key])
        })
    }
    fn delete(view: &View, obj: Ingress) -> Option<Change> {
        Some(view.remove_ingress(&ObjKey::of(&obj.metadata)))
    }
    fn replace(view: &View, all: Vec<Ingress>) -> Option<Change> {
        let new: HashMap<ObjKey, Arc<Ingress>> = all
            .into_iter()
            .map(|i| (ObjKey::of(&i.metadata), Arc::new(slim_ingress(i))))
            .collect();
        let mut keys: HashSet<ObjKey> = new.keys().cloned().collect();
        let old = std::mem::replace(&mut *view.ingresses.write(), new);
        keys.extend(old.into_keys());
        Some(Change::Ingresses(keys.into_iter().collect()))
    }
    fn synced(view: &View) -> &AtomicBool {
        &view.ingresses_synced
    }

    const INDEXED: bool = true;
    /// The hosts, paths and class the Ingress claims.
    type Entry = IngressClaims;
    fn entry(index: &Index, obj: &Ingress) -> Option<IngressClaims> {
        Some(IngressClaims::of(obj, &index.config()))
    }
    fn index_key(obj: &Ingress) -> Option<ObjKey> {
        Some(ObjKey::of(&obj.metadata))
    }
    fn index_upsert(snap: &mut Snapshot, entry: IngressClaims) {
        snap.upsert_ingress(entry);
    }
    fn index_remove(snap: &mut Snapshot, key: &ObjKey) {
        snap.remove_ingress(key);
    }
    fn index_replace(snap: &mut Snapshot, all: Vec<IngressClaims>) {
        snap.replace_ingresses(all);
    }
    fn index_synced(sync: &mut SyncState) {
        sync.ingresses = true;
    }
    fn reentries(view: &View, index: &Index) -> Option<Vec<IngressClaims>> {
        let cfg = index.config();
        Some(
            view.ingresses
                .read()
                .values()
                .map(|i| IngressClaims::of(i, &cfg))
                .collect(),
        )
    }
}

struct ClassesFeed;
impl Feed<IngressClass> for ClassesFeed {
    const KIND: &'static str = "IngressClass";
    fn apply(view: &View, obj: IngressClass) -> Option<Change> {
        let info = ClassInfo::from_ingress_class(&obj);
        let name = obj.metadata.name.unwrap_or_default();
        let mut c = view.classes.write();
        (c.classes.insert(name, info.clone()).as_ref() != Some(&info)).then_some(Change::Classes)
    }
    fn delete(view: &View, obj: IngressClass) -> Option<Change> {
        let name = obj.metadata.name.unwrap_or_default();
        view.classes
            .write()
            .classes
            .remove(&name)
            .map(|_| Change::Classes)
    }
    fn replace(view: &View, all: Vec<IngressClass>) -> Option<Change> {
        let new = ClassView {
            classes: all
                .iter()
                .map(|ic| {
                    (
                        ic.metadata.name.clone().unwrap_or_default(),
                        ClassInfo::from_ingress_class(ic),
                    )
                })
                .collect(),
        };
        let old = std::mem::replace(&mut *view.classes.write(), new.clone());
        (old != new).then_some(Change::Classes)
    }
    fn synced(view: &View) -> &AtomicBool {
        &view.classes_synced
    }

    const INDEXED: bool = true;
    type Entry = IngressClass;
    fn entry(_index: &Index, obj: &IngressClass) -> Option<IngressClass> {
        Some(obj.clone())
    }
    fn index_key(obj: &IngressClass) -> Option<ObjKey> {
        Some(ObjKey::of(&obj.metadata))
    }
    fn index_upsert(snap: &mut Snapshot, entry: IngressClass) {
        snap.upsert_class(&entry);
    }
    fn index_remove(snap: &mut Snapshot, key: &ObjKey) {
        snap.remove_class(&key.name);
    }
    fn index_replace(snap: &mut Snapshot, all: Vec<IngressClass>) {
        snap.replace_classes(&all);
    }
    fn index_synced(sync: &mut SyncState) {
        sync.classes = true;
    }
}

/// TLS Secrets, metadata only.
struct SecretsFeed;
impl Feed<PartialObjectMeta<Secret>> for SecretsFeed {
    const KIND: &'static str = "Secret";
    fn apply(view: &View, obj: PartialObjectMeta<Secret>) -> Option<Change> {
        let key = ObjKey::of(&obj.metadata);
        let version = obj.metadata.resource_version.unwrap_or_default();
        let mut v = view.secret_versions.write();
        (v.insert(key.clone(), version.clone()).as_ref() != Some(&version))
            .then(|| Change::Secrets(vec![key]))
    }
    fn delete(view: &View, obj: PartialObjectMeta<Secret>) -> Option<Change> {
        let key = ObjKey::of(&obj.metadata);
        view.secret_data.write().remove(&key);
        view.secret_versions
            .write()
            .remove(&key)
            .map(|_| Change::Secrets(vec![key]))
    }
    fn replace(view: &View, all: Vec<PartialObjectMeta<Secret>>) -> Option<Change> {
        let new: HashMap<ObjKey, String> = all
            .into_iter()
            .map(|s| {
                (
                    ObjKey::of(&s.metadata),
                    s.metadata.resource_version.unwrap_or_default(),
                )
            })
            .collect();
        let mut versions = view.secret_versions.write();
        let mut changed: Vec<ObjKey> = new
            .iter()
            .filter(|(k, v)| versions.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .collect();
        changed.extend(versions.keys().filter(|k| !new.contains_key(*k)).cloned());
        view.secret_data.write().retain(|k, _| new.contains_key(k));
        *versions = new;
        Some(Change::Secrets(changed))
    }
    fn synced(view: &View) -> &AtomicBool {
        &view.secrets_synced
    }

    const INDEXED: bool = true;
    /// Existence only: the webhook checks that a named TLS Secret is there.
    type Entry = ObjKey;
    fn entry(_index: &Index, obj: &PartialObjectMeta<Secret>) -> Option<ObjKey> {
        Some(ObjKey::of(&obj.metadata))
    }
    fn index_key(obj: &PartialObjectMeta<Secret>) -> Option<ObjKey> {
        Some(ObjKey::of(&obj.metadata))
    }
    fn index_upsert(snap: &mut Snapshot, entry: ObjKey) {
        snap.set_secret(entry, true);
    }
    fn index_remove(snap: &mut Snapshot, key: &ObjKey) {
        snap.set_secret(key.clone(), false);
    }
    fn index_replace(snap: &mut Snapshot, all: Vec<ObjKey>) {
        snap.replace_secrets(all.into_iter().collect::<HashSet<_>>());
    }
    fn index_synced(sync: &mut SyncState) {
        sync.secrets = true;
    }
}

struct NamespacesFeed;
impl Feed<Namespace> for NamespacesFeed {
    const KIND: &'static str = "Namespace";
    type Entry = ();
    fn apply(view: &View, obj: Namespace) -> Option<Change> {
        let name = obj.metadata.name.unwrap_or_default();
        let labels = obj.metadata.labels.unwrap_or_default();
        let mut ns = view.namespaces.write();
        (ns.insert(name.clone(), labels.clone()).as_ref() != Some(&labels))
            .then_some(Change::Namespace(name))
    }
    fn delete(view: &View, obj: Namespace) -> Option<Change> {
        let name = obj.metadata.name.unwrap_or_default();
        view.namespaces
            .write()
            .remove(&name)
            .map(|_| Change::Namespace(name))
    }
    fn replace(view: &View, all: Vec<Namespace>) -> Option<Change> {
        let new: HashMap<String, BTreeMap<String, String>> = all
            .into_iter()
            .map(|n| {
                (
                    n.metadata.name.unwrap_or_default(),
                    n.metadata.labels.unwrap_or_default(),
                )
            })
            .collect();
        let old = std::mem::replace(&mut *view.namespaces.write(), new);
        // A re-list after a watch failure: if labels moved meanwhile, a full sync re-evaluates the scope.
        (!old.is_empty() && old != *view.namespaces.read()).then_some(Change::Resync)
    }
    fn synced(view: &View) -> &AtomicBool {
        &view.namespaces_synced
    }
}

struct NodesFeed;
impl Feed<Node> for NodesFeed {
    const KIND: &'static str = "Node";
    type Entry = ();
    fn apply(view: &View, obj: Node) -> Option<Change> {
        let info = NodeInfo::from_node(&obj);
        let mut nodes = view.nodes.write();
        (nodes.insert(info.name.clone(), info.clone()).as_ref() != Some(&info))
            .then_some(Change::Nodes)
    }
    fn delete(view: &View, obj: Node) -> Option<Change> {
        let name = obj.metadata.name.unwrap_or_default();
        view.nodes.write().remove(&name).map(|_| Change::Nodes)
    }
    fn replace(view: &View, all: Vec<Node>) -> Option<Change> {
        let new: BTreeMap<String, NodeInfo> = all
            .iter()
            .map(NodeInfo::from_node)
            .map(|n| (n.name.clone(), n))
            .collect();
        let old = std::mem::replace(&mut *view.nodes.write(), new.clone());
        (old != new).then_some(Change::Nodes)
    }
    fn synced(view: &View) -> &AtomicBool {
        &view.nodes_synced
    }
}

/// EndpointSlices of either version, as JSON.
struct SlicesFeed;
impl SlicesFeed {
    fn read(obj: serde_json::Value) -> Option<(ObjKey, String, EndpointGroup)> {
        let slice = match slice_from_json(obj) {
            Ok(s) => s,
            Err(error) => {
                tracing::warn!(%error, "EndpointSlice not readable; skipped");
                return None;
            }
        };
        let meta = &slice.metadata;
        let svc = meta.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
        let key = ObjKey::new(meta.namespace.clone().unwrap_or_default(), svc.clone());
        Some((
            key,
            meta.name.clone().unwrap_or_default(),
            EndpointGroup::from_slice(&slice),
        ))
    }
}
impl Feed<serde_json::Value> for SlicesFeed {
    const KIND: &'static str = "EndpointSlice";
    type Entry = ();
    fn apply(view: &View, obj: serde_json::Value) -> Option<Change> {
        let (key, name, group) = Self::read(obj)?;
        let mut eps = view.endpoints.write();
        let slot = eps.entry(key.clone()).or_default();
        (slot.insert(name, group.clone()).as_ref() != Some(&group))
            .then(|| Change::Services(vec![key]))
    }
    fn delete(view: &View, obj: serde_json::Value) -> Option<Change> {
        let (key, name, _) = Self::read(obj)?;
        let mut eps = view.endpoints.write();
        let slot = eps.get_mut(&key)?;
        slot.remove(&name)?;
        if slot.is_empty() {
            eps.remove(&key);
        }
        Some(Change::Services(vec![key]))
    }
    fn replace(view: &View, all: Vec<serde_json::Value>) -> Option<Change> {
        let mut new: HashMap<ObjKey, BTreeMap<String, EndpointGroup>> = HashMap::new();
        for (key, name, group) in all.into_iter().filter_map(Self::read) {
            new.entry(key).or_default().insert(name, group);
        }
        Some(replace_endpoints(view, new))
    }
    fn synced(view: &View) -> &AtomicBool {
        &view.endpoints_synced
    }
}

fn replace_endpoints(view: &View, new: HashMap<ObjKey, BTreeMap<String, EndpointGroup>>) -> Change {
    let mut eps = view.endpoints.write();
    let mut changed: Vec<ObjKey> = new
        .iter()
        .filter(|(k, v)| eps.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    changed.extend(eps.keys().filter(|k| !new.contains_key(*k)).cloned());
    *eps = new;
    Change::Services(changed)
}

struct EndpointsFeed;
impl EndpointsFeed {
    fn read(ep: &Endpoints) -> (ObjKey, BTreeMap<String, EndpointGroup>) {
        let groups = EndpointGroup::from_endpoints(ep)
            .into_iter()
            .enumerate()
            .map(|(i, g)| (i.to_string(), g))
            .collect();
        (ObjKey::of(&ep.metadata), groups)
    }
}
impl Feed<Endpoints> for EndpointsFeed {
    const KIND: &'static str = "Endpoints";
    type Entry = ();
    fn apply(view: &View, obj: Endpoints) -> Option<Change> {
        let (key, groups) = Self::read(&obj);
        let mut eps = view.endpoints.write();
        (eps.insert(key.clone(), groups.clone()).as_ref() != Some(&groups))
            .then(|| Change::Services(vec![key]))
    }
    fn delete(view: &View, obj: Endpoints) -> Option<Change> {
        let key = ObjKey::of(&obj.metadata);
        view.endpoints
            .write()
            .remove(&key)
            .map(|_| Change::Services(vec![key]))
    }
    fn replace(view: &View, all: Vec<Endpoints>) -> Option<Change> {
        Some(replace_endpoints(
            view,
            all.iter().map(Self::read).collect(),
        ))
    }
    fn synced(view: &View) -> &AtomicBool {
        &view.endpoints_synced
    }
}

/// Applies an update to the index without blocking the runtime's thread: while a reader holds the index (a large
/// review is decided on an idle-priority thread and can hold it long), the update waits here, asleep, and the
/// thread runs the other tasks (in `ako run`, the reconciler's).
async fn write_index<R, F: FnOnce(&mut Snapshot) -> R>(index: &Index, mut f: F) -> R {
    let mut pause = std::time::Duration::from_micros(200);
    loop {
        match index.try_write(f) {
            Ok(r) => return r,
            Err(back) => f = back,
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(20));
    }
}

/// Sends a change to the reconciler, if one listens; `false` once it is gone (the watch then ends).
fn send(tx: Option<&ChangeSender>, change: Option<Change>) -> bool {
    match (tx, change) {
        (Some(tx), Some(c)) => tx.send(c).is_ok(),
        _ => true,
    }
}

/// One kind's watch: the only writer of the kind's part of the view and of the index.
async fn drive<K, F, S>(view: Arc<View>, _feed: F, stream: S, tx: Option<ChangeSender>)
where
    K: Send,
    F: Feed<K>,
    S: Stream<Item = Result<Event<K>, watcher::Error>> + Send,
{
    let index = view.index().filter(|_| F::INDEXED).cloned();
    let mut reindex = view.reindex.subscribe();
    let mut stream = std::pin::pin!(stream);
    let mut staging: Vec<K> = Vec::new();
    let mut entries: Vec<F::Entry> = Vec::new();
    loop {
        let event = tokio::select! {
            event = stream.next() => match event {
                Some(e) => e,
                None => return,
            },
            changed = reindex.changed() => {
                if changed.is_err() {
                    return;
                }
                if let Some(ix) = &index
                    && let Some(all) = F::reentries(&view, ix)
                {
                    let n = all.len();
                    write_index(ix, |s| F::index_replace(s, all)).await;
                    tracing::info!(kind = F::KIND, objects = n, "admission index recomputed with the new configuration");
                }
                continue;
            }
        };
        if event.is_ok() {
            view.failing.lock().remove(F::KIND);
        }
        let change = match event {
            Ok(Event::Init) => {
                staging.clear();
                entries.clear();
                None
            }
            Ok(Event::InitApply(obj)) => {
                if let Some(e) = index.as_ref().and_then(|ix| F::entry(ix, &obj)) {
                    entries.push(e);
                }
                staging.push(obj);
                None
            }
            Ok(Event::InitDone) => {
                let all = std::mem::take(&mut staging);
                let n = all.len();
                let change = F::replace(&view, all);
                F::synced(&view).store(true, Ordering::Release);
                if let Some(ix) = &index {
                    let all = std::mem::take(&mut entries);
                    write_index(ix, |s| F::index_replace(s, all)).await;
                    ix.mark_synced(F::index_synced);
                }
                tracing::info!(
                    kind = F::KIND,
                    objects = n,
                    index = index.is_some(),
                    "watch listed"
                );
                // What the list changed, then that a list happened: objects missing from it were not seen
                // deleted one by one.
                if !send(tx.as_ref(), change) {
                    return;
                }
                Some(Change::Listed)
            }
            Ok(Event::Apply(obj)) => {
                if let Some(ix) = &index
                    && let Some(e) = F::entry(ix, &obj)
                {
                    write_index(ix, |s| F::index_upsert(s, e)).await;
                }
                F::apply(&view, obj)
            }
            Ok(Event::Delete(obj)) => {
                if let Some(ix) = &index
                    && let Some(key) = F::index_key(&obj)
                {
                    write_index(ix, |s| F::index_remove(s, &key)).await;
                }
                F::delete(&view, obj)
            }
            Err(error) => {
                tracing::warn!(kind = F::KIND, %error, "watch failed; retrying with backoff, the last view stays in use and nothing is deleted until it delivers again");
                view.failing.lock().insert(F::KIND);
                None
            }
        };
        if !send(tx.as_ref(), change) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_watch_feeds_the_view_the_index_and_the_changes_and_reindexes_on_a_new_configuration()
     {
        use ako_core::config::Config;
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "1",
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"type": "LoadBalancer", "loadBalancerIP": "127.10.18.9", "ports": [{"port": 80}]}
        }))
        .expect("service");
        let vip: std::net::IpAddr = "127.10.18.9".parse().expect("ip");
        // Not ako's Service under this configuration (it is not the default load balancer).
        let index = Arc::new(Index::new(Arc::new(Config {
            default_lb_controller: false,
            ..Config::default()
        })));
        let view = Arc::new(View::with_index(index.clone()));
        let (tx, mut rx) = crate::k8s::changes::channel();
        let events = futures::stream::iter([
            Ok(Event::Init),
            Ok(Event::InitApply(svc)),
            Ok(Event::InitDone),
        ])
        .chain(futures::stream::pending());
        let task = tokio::spawn(drive(view.clone(), ServicesFeed, events, Some(tx)));
        let listed = rx.recv().await.expect("a change");
        assert!(listed.services.contains(&ObjKey::new("shop", "web")) && listed.relisted);
        assert!(
            view.service(&ObjKey::new("shop", "web")).is_some(),
            "the view holds it"
        );
        assert!(
            index.read(|s| s.vip_claims(&vip).is_empty()),
            "not ours: no VIP claim"
        );
        // The configuration changes (as `ako run` learns it): the watch recomputes its entries, no re-list.
        index.set_config(Arc::new(Config {
            default_lb_controller: true,
            ..Config::default()
        }));
        view.reindex();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while index.read(|s| s.vip_claims(&vip).is_empty()) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the index was not recomputed"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        task.abort();
    }
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    #[tokio::test(flavor = "current_thread")]
    async fn an_index_update_waiting_for_a_long_read_leaves_its_thread_to_other_tasks() {
        let index = Arc::new(Index::new(Arc::new(ako_core::config::Config::default())));
        // A large review's decision holds a read view on another thread for 300 ms.
        let (held_tx, held) = std::sync::mpsc::channel::<()>();
        let reader = {
            let index = Arc::clone(&index);
            std::thread::spawn(move || {
                index.read(|_| {
                    let _ = held_tx.send(());
                    std::thread::sleep(Duration::from_millis(300));
                })
            })
        };
        held.recv().expect("the read holds the index");
        // Another task of this (single) thread counts while the update waits.
        let ticks = Arc::new(AtomicUsize::new(0));
        let ticker = {
            let ticks = Arc::clone(&ticks);
            tokio::spawn(async move {
                loop {
                    ticks.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        };
        let update = tokio::spawn({
            let index = Arc::clone(&index);
            async move { write_index(&index, |s| s.set_secret(ObjKey::new("n", "s"), true)).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!update.is_finished(), "the update waits for the read");
        let counted = ticks.load(Ordering::Relaxed);
        assert!(
            counted >= 20,
            "the thread kept running other tasks: {counted} ticks in 100 ms"
        );
        reader.join().expect("reader");
        tokio::time::timeout(Duration::from_secs(2), update)
            .await
            .expect("the update lands once the read ends")
            .expect("update task");
        ticker.abort();
    }

    fn service(port: i32, vip: Option<&str>) -> Service {
        let mut svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "1"},
            "spec": {"type": "LoadBalancer", "ports": [{"port": port}]}
        }))
        .expect("service");
        if let Some(ip) = vip {
            svc.status = serde_json::from_value(
                serde_json::json!({"loadBalancer": {"ingress": [{"ip": ip}]}}),
            )
            .expect("status");
        }
        svc
    }

    fn keys(c: Option<Change>) -> (&'static str, Vec<ObjKey>) {
        match c {
            Some(Change::Services(k)) => ("spec", k),
            Some(Change::ServiceStatus(k)) => ("status", k),
            None => ("none", Vec::new()),
            Some(_) => ("other", Vec::new()),
        }
    }

    #[test]
    fn a_service_update_is_told_apart_as_new_spec_status_only_or_nothing() {
        let key = ObjKey::new("shop", "web");
        let view = View::from_parts(Vec::new(), Vec::new(), Vec::new());
        let cases = [
            ("first seen", service(80, None), ("spec", vec![key.clone()])),
            ("the same again", service(80, None), ("none", vec![])),
            (
                "a status appears",
                service(80, Some("192.0.2.7")),
                ("status", vec![key.clone()]),
            ),
            (
                "the status changes",
                service(80, Some("192.0.2.8")),
                ("status", vec![key.clone()]),
            ),
            (
                "the spec changes",
                service(81, Some("192.0.2.8")),
                ("spec", vec![key.clone()]),
            ),
        ];
        for (what, svc, want) in cases {
            assert_eq!(keys(ServicesFeed::apply(&view, svc)), want, "{what}");
        }
    }
}
