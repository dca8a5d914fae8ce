//! The watches: which API serves endpoints, one watch per kind, and how each kind's events update the view, the
//! admission index and the reconciler's changes ([`Feed`], [`drive`]).

#[allow(clippy::wildcard_imports)]
use super::*;

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
        tokio::spawn(drive(
            view.clone(),
            rules::RulesFeed::<0>,
            rules::rule_events(client.clone(), RuleKind::HostRule),
            tx.clone(),
        )),
        tokio::spawn(drive(
            view.clone(),
            rules::RulesFeed::<1>,
            rules::rule_events(client.clone(), RuleKind::HttpRule),
            tx.clone(),
        )),
        tokio::spawn(drive(
            view.clone(),
            rules::RulesFeed::<2>,
            rules::rule_events(client.clone(), RuleKind::L4Rule),
            tx.clone(),
        )),
        tokio::spawn(drive(
            view.clone(),
            rules::RulesFeed::<3>,
            rules::rule_events(client.clone(), RuleKind::AviInfraSetting),
            tx.clone(),
        )),
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
pub(super) trait Feed<K>: Send + 'static {
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

pub(super) struct ServicesFeed;
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
        let name = obj.metadata.name.clone().unwrap_or_default();
        let info = NamespaceInfo::of(&obj);
        let mut ns = view.namespaces.write();
        (ns.insert(name.clone(), info.clone()).as_ref() != Some(&info))
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
        let new: HashMap<String, NamespaceInfo> = all
            .iter()
            .map(|n| {
                (
                    n.metadata.name.clone().unwrap_or_default(),
                    NamespaceInfo::of(n),
                )
            })
            .collect();
        let old = std::mem::replace(&mut *view.namespaces.write(), new);
        // A re-list after a watch failure: if labels or bindings moved meanwhile, a full sync re-evaluates them.
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
pub(super) async fn write_index<R, F: FnOnce(&mut Snapshot) -> R>(index: &Index, mut f: F) -> R {
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
pub(super) async fn drive<K, F, S>(view: Arc<View>, _feed: F, stream: S, tx: Option<ChangeSender>)
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
