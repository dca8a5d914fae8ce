//! The reconciler's view of Kubernetes: Services, their endpoints and the nodes, kept in memory from watches,
//! and a stream of the Service keys each change affects.
//!
//! - Endpoints come from `discovery.k8s.io/v1` EndpointSlices, or `v1beta1` where the API server has no v1 (the
//!   1.20 test server), or v1 Endpoints where it has neither. Only what translation needs is kept
//!   ([`EndpointGroup`]), never the objects.
//! - A re-list replaces a kind's view at `InitDone`, and every key that was or is in it is reported as changed.
//!   A failed list or watch keeps the last good view (and is logged); it never empties a view, so it can never
//!   look like a deletion.
//! - [`View::synced`] says when every kind has been listed once; [`View::complete`] also needs every watch to be
//!   delivering (a failing one makes the view possibly stale): nothing may be deleted unless it holds.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use parking_lot::RwLock;
use tokio::sync::mpsc;

use crate::core::index::ObjKey;
use crate::core::l4::{EndpointGroup, NodeInfo, slice_from_json};

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
    /// A kind finished a (re-)list: nothing in particular changed, but the view may have become complete, so
    /// whoever waits for it must look again (without this, a last list that changes nothing, such as an empty
    /// Node list, would leave the reconciler waiting).
    Listed,
    /// Asked for a full sync now (re-read the controller, re-plan everything, delete orphans).
    Resync,
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
}

impl View {
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
        self.services.write().insert(key.clone(), Arc::new(svc));
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
        ] {
            f.store(true, Ordering::Release);
        }
        v
    }
}

/// Finds the endpoint API this server serves: EndpointSlice v1, then v1beta1, then v1 Endpoints.
pub async fn endpoint_source(client: &Client) -> EndpointSource {
    let lp = ListParams::default().limit(1);
    if Api::<EndpointSlice>::all(client.clone())
        .list_metadata(&lp)
        .await
        .is_ok()
    {
        return EndpointSource::SliceV1;
    }
    let ar = slice_v1beta1();
    if Api::<DynamicObject>::all_with(client.clone(), &ar)
        .list_metadata(&lp)
        .await
        .is_ok()
    {
        return EndpointSource::SliceV1beta1;
    }
    EndpointSource::Endpoints
}

fn slice_v1beta1() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("discovery.k8s.io", "v1beta1", "EndpointSlice"),
        "endpointslices",
    )
}

/// Starts the watches; changes are sent on `tx`. They run until the tasks are aborted.
pub fn spawn(
    client: Client,
    view: Arc<View>,
    source: EndpointSource,
    tx: mpsc::UnboundedSender<Change>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let cfg = watcher::Config::default();
    let services =
        watcher::watcher(Api::<Service>::all(client.clone()), cfg.clone()).default_backoff();
    let nodes = watcher::watcher(Api::<Node>::all(client.clone()), cfg.clone()).default_backoff();
    let namespaces =
        watcher::watcher(Api::<Namespace>::all(client.clone()), cfg.clone()).default_backoff();
    let mut tasks = vec![
        tokio::spawn(drive(view.clone(), NamespacesFeed, namespaces, tx.clone())),
        tokio::spawn(drive(view.clone(), ServicesFeed, services, tx.clone())),
        tokio::spawn(drive(view.clone(), NodesFeed, nodes, tx.clone())),
    ];
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
trait Feed<K>: Send + 'static {
    const KIND: &'static str;
    /// Inserts or replaces one object; returns the change to report.
    fn apply(view: &View, obj: K) -> Option<Change>;
    fn delete(view: &View, obj: K) -> Option<Change>;
    /// Replaces the whole view of the kind.
    fn replace(view: &View, all: Vec<K>) -> Option<Change>;
    fn synced(view: &View) -> &AtomicBool;
}

struct ServicesFeed;
impl Feed<Service> for ServicesFeed {
    const KIND: &'static str = "Service";
    fn apply(view: &View, obj: Service) -> Option<Change> {
        Some(view.upsert_service(obj))
    }
    fn delete(view: &View, obj: Service) -> Option<Change> {
        Some(view.remove_service(&ObjKey::of(&obj.metadata)))
    }
    fn replace(view: &View, all: Vec<Service>) -> Option<Change> {
        let new: HashMap<ObjKey, Arc<Service>> = all
            .into_iter()
            .map(|s| (ObjKey::of(&s.metadata), Arc::new(s)))
            .collect();
        let mut keys: HashSet<ObjKey> = new.keys().cloned().collect();
        let old = std::mem::replace(&mut *view.services.write(), new);
        keys.extend(old.into_keys());
        Some(Change::Services(keys.into_iter().collect()))
    }
    fn synced(view: &View) -> &AtomicBool {
        &view.services_synced
    }
}

struct NamespacesFeed;
impl Feed<Namespace> for NamespacesFeed {
    const KIND: &'static str = "Namespace";
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

async fn drive<K, F, S>(view: Arc<View>, _feed: F, stream: S, tx: mpsc::UnboundedSender<Change>)
where
    K: Send,
    F: Feed<K>,
    S: Stream<Item = Result<Event<K>, watcher::Error>> + Send,
{
    let mut stream = std::pin::pin!(stream);
    let mut staging: Vec<K> = Vec::new();
    while let Some(event) = stream.next().await {
        if event.is_ok() {
            view.failing.lock().remove(F::KIND);
        }
        let change = match event {
            Ok(Event::Init) => {
                staging.clear();
                None
            }
            Ok(Event::InitApply(obj)) => {
                staging.push(obj);
                None
            }
            Ok(Event::InitDone) => {
                let all = std::mem::take(&mut staging);
                let n = all.len();
                let change = F::replace(&view, all);
                F::synced(&view).store(true, Ordering::Release);
                tracing::info!(kind = F::KIND, objects = n, "reconciler view synced");
                Some(change.unwrap_or(Change::Listed))
            }
            Ok(Event::Apply(obj)) => F::apply(&view, obj),
            Ok(Event::Delete(obj)) => F::delete(&view, obj),
            Err(error) => {
                tracing::warn!(kind = F::KIND, %error, "watch failed; retrying with backoff, the last view stays in use and nothing is deleted until it delivers again");
                view.failing.lock().insert(F::KIND);
                None
            }
        };
        if let Some(c) = change
            && tx.send(c).is_err()
        {
            return;
        }
    }
}
