//! The reconciler: observe -> translate -> plan -> apply -> report.
//!
//! ```text
//!  k8s::observe (watches) ──changes──► worker ──► core::l4 / core::l7 translate ──► core::plan::plan ──► apply
//!                                        ▲                                                     │
//!                                        └──── retry with backoff / full sync ◄── k8s::report ◄┘ (status, Events)
//! ```
//!
//! - One worker owns the state: the cache of ako's Avi objects, and which objects each *group* produced last
//!   time. A group is one Service, the Services sharing a VIP, or one L7 part: a shared parent virtual service
//!   with every host hashed to it, or one host in dedicated mode ([`ako_core::l7::Part`]). An Ingress is in
//!   the parts of its hosts; a change of an Ingress, of a backend Service it names or of its TLS Secret
//!   re-plans only those parts. A change re-translates only the groups it touches, so one
//!   edit costs the same with 10 or 5,000 Services; groups are applied concurrently, the steps of one group in
//!   plan order.
//! - A full sync (at start, on becoming leader, and every `fullSyncFrequency`) re-reads every owned object from
//!   the controller, re-plans every group and deletes orphans: this is what repairs drift without a restart.
//! - Deletions need certainty: the Kubernetes view must have been listed completely and the controller's objects
//!   read completely. A failed list or watch stops deletions until both are known again.
//! - A group that fails is retried with exponential backoff; the others go on.

pub mod apply;
pub mod env;
pub mod health;
pub mod ingress;
pub mod live;
pub mod metrics;
pub mod retry;
pub mod runtime;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{LoadBalancerIngress, Service};
use k8s_openapi::api::networking::v1::Ingress;
use serde_json::Map;
use tokio::sync::{mpsc, watch};

use crate::k8s::observe::{Change, SecretReads, View};
use crate::k8s::report::{Notice, Sink, Target};
use ako_avi::{AviApi, AviError};
use ako_core::config::Config;
use ako_core::index::ObjKey;
use ako_core::intent::{self, Severity};
use ako_core::l4::{self, L4Desired, Placement, ServiceInput, ServiceOutcome};
use ako_core::l7::{self, HostFragment, L7Input, Part, ShardSize, TlsPair};
use ako_core::plan::{self, Desired, Existing, Kind, Observed, Step};
use ako_core::safety;
use ako_core::settings::Scope;

use apply::Applied;

/// How the reconciler runs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub placement: Placement,
    /// `fullSyncFrequency`; `None` disables the periodic full sync (the one at start always runs).
    pub full_sync: Option<Duration>,
    /// Groups applied at the same time.
    pub concurrency: usize,
    /// First and longest delay before a failed group is tried again.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// `deleteConfig`: every object ako owns is deleted and no status is published.
    pub delete_all: bool,
    /// Namespaces ako serves; Services and Ingresses elsewhere have their objects removed.
    pub scope: Scope,
    /// `shardVSSize`: shared L7 parents, or one virtual service per host.
    pub shard: ShardSize,
    /// The default certificate's Secret (`router-certs-default` in ako's namespace).
    pub default_cert: Option<ObjKey>,
    /// When deletions no observed deletion explains are held ([`safety::Guard`]).
    pub guard: safety::GuardLimits,
    /// The id of a hold the operator released (`releaseHeldDeletions`).
    pub release_held: Option<String>,
    /// The cluster's identity (the kube-system Namespace's UID), marked on every object ako writes.
    pub cluster_uid: Option<String>,
}

impl Settings {
    pub fn new(placement: Placement) -> Self {
        Self {
            placement,
            full_sync: Some(Duration::from_secs(1800)),
            concurrency: 16,
            retry_base: Duration::from_millis(500),
            retry_max: Duration::from_secs(300),
            delete_all: false,
            scope: Scope::default(),
            shard: ShardSize::Large,
            default_cert: None,
            guard: safety::GuardLimits::default(),
            release_held: None,
            cluster_uid: None,
        }
    }
}

/// A Service, or the Services of one namespace sharing a VIP under one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceGroup {
    pub namespace: String,
    /// The Service name, or the shared-VIP key.
    pub base: String,
    pub shared: bool,
}

/// What is planned and applied as one: its objects depend on nothing outside it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupId {
    Service(ServiceGroup),
    /// A shared L7 parent with its hosts, or one host in dedicated mode.
    L7(Part),
}

type ObjId = (&'static str, String);

fn obj_id(kind: Kind, name: &str) -> ObjId {
    (kind.obj_type(), name.to_string())
}

/// Counters the reconciler keeps (also the benchmarks' and tests' evidence).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub passes: u64,
    pub full_syncs: u64,
    pub creates: u64,
    pub updates: u64,
    pub deletes: u64,
    pub failures: u64,
    pub status_patches: u64,
    /// Passes of L7 parts.
    pub l7_parts: u64,
}

/// What the worker publishes after each pass.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub stats: Stats,
    /// Whether the last full sync read the controller completely and the view was synced.
    pub converged_once: bool,
    /// Groups waiting for a retry.
    pub retrying: usize,
    /// Events queued and not yet published.
    pub events_pending: usize,
    /// The most failures in a row of any group, and the longest delay now scheduled before a retry.
    pub max_attempts: u32,
    pub longest_retry: Duration,
    /// Groups not planned because an input could not be read.
    pub unknown_groups: usize,
    /// The deletions the guard holds: the hold's id and how many objects.
    pub held: Option<(String, usize)>,
}

/// An object ako owns, as kept between passes: its identity, the controller's body as compact JSON text
/// compressed with LZ4 against a dictionary of its kind (a controller's body repeats its field names, defaults
/// and references; it is parsed only when the object is planned: a parsed body costs about seven times its
/// text), and a VsVip's addresses.
#[derive(Clone)]
struct Cached {
    kind: Kind,
    uuid: Box<str>,
    /// Shared with the reconciler's owner text when it is ako's (nearly every cached object).
    created_by: Option<Arc<str>>,
    json: Box<[u8]>,
    vips: Box<[IpAddr]>,
}

impl std::fmt::Debug for Cached {
    /// Without the body: it may hold a certificate's private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached")
            .field("kind", &self.kind)
            .field("uuid", &self.uuid)
            .field("created_by", &self.created_by)
            .field("body_bytes", &self.json.len())
            .field("vips", &self.vips)
            .finish()
    }
}

/// The LZ4 dictionary of a kind's cached bodies: the text of the first body of that kind this process caches,
/// never changed after, so every body of the kind is compressed and read back with the same one. Bodies of one
/// kind share most of their text (field names, the controller's defaults, tenant and cloud references), so
/// against it a body compresses several times better than alone.
fn dictionary(kind: Kind, first: &[u8]) -> &'static [u8] {
    static DICTIONARIES: [std::sync::OnceLock<Box<[u8]>>; Kind::ALL.len()] =
        [const { std::sync::OnceLock::new() }; Kind::ALL.len()];
    // LZ4 refers back at most 64 KiB: a longer first body only contributes its end.
    DICTIONARIES[kind as usize].get_or_init(|| first[first.len().saturating_sub(1 << 16)..].into())
}

impl Cached {
    /// `owner` is ako's `created_by`, shared by the entries of ako's objects.
    fn of(e: &Existing, owner: &Arc<str>) -> Self {
        let text = serde_json::to_vec(&e.body).unwrap_or_default();
        let dict = dictionary(e.kind, &text);
        Cached {
            kind: e.kind,
            uuid: e.uuid.as_str().into(),
            created_by: e.created_by.as_deref().map(|c| {
                if c == &**owner {
                    Arc::clone(owner)
                } else {
                    c.into()
                }
            }),
            json: lz4_flex::block::compress_prepend_size_with_dict(&text, dict).into_boxed_slice(),
            vips: if e.kind == Kind::VsVip {
                l4::vips_of(&e.body).into_boxed_slice()
            } else {
                Box::default()
            },
        }
    }

    /// The controller's body as kept (ako's own serialization and compression, so it reads back); `None` if it
    /// does not (memory damage, a bug): the caller must read the object again rather than plan on an empty body,
    /// whose update would drop every field ako does not manage.
    fn body(&self) -> Option<Map<String, serde_json::Value>> {
        let dict = dictionary(self.kind, &[]);
        lz4_flex::block::decompress_size_prepended_with_dict(&self.json, dict)
            .ok()
            .and_then(|text| serde_json::from_slice(&text).ok())
    }

    /// The object as the planner reads it; with an empty body if it does not read back (enough for a deletion,
    /// which needs only the uuid).
    fn existing(&self, name: &str) -> Existing {
        Existing {
            kind: self.kind,
            uuid: self.uuid.to_string(),
            name: name.to_string(),
            created_by: self.created_by.as_deref().map(String::from),
            body: self.body().unwrap_or_default(),
        }
    }
}

struct State {
    cache: HashMap<ObjId, Cached>,
    /// Whether `cache` holds every owned object (the last full read succeeded).
    cache_complete: bool,
    members: HashMap<GroupId, BTreeSet<ObjKey>>,
    group_of: HashMap<ObjKey, GroupId>,
    /// Objects each group wanted at its last pass (kept while a pass fails, so a later one still cleans up); for
    /// an L7 part, its parent's objects (its hosts' are in `produced_host`).
    produced: HashMap<GroupId, HashSet<ObjId>>,
    retries: retry::Retries<GroupId>,
    /// Groups whose last translation could not read an input: not planned, and no orphan scan until known.
    knowledge: safety::Knowledge<GroupId>,
    /// Deletions held until an operator releases them.
    guard: safety::Guard<ObjId>,
    /// An orphan scan could not run (a group was unknown): it runs after the next pass that knows everything.
    orphan_scan_due: bool,
    /// Every address seen on a VsVip of ako's: a status is removed only if its addresses are among them (or ako
    /// wrote it), never another load balancer's.
    known_vips: HashSet<IpAddr>,
    /// Cached objects whose body did not read back at planning: read again from the controller before the
    /// group's next pass (their update was not planned).
    unreadable: Vec<(ObjId, GroupId)>,
    /// Problems last reported per Service, so an unchanged problem is not re-announced at every pass.
    reported: HashMap<ObjKey, Vec<String>>,
    /// Services whose status ako wrote, with the fingerprint of what it wrote ([`status_print`]).
    status_written: HashMap<ObjKey, u64>,
    /// Statuses written again after someone else overwrote them: restores in a row and when the last one was due.
    status_fights: HashMap<ObjKey, (u32, Instant)>,
    /// deleteConfig's completion was announced.
    delete_reported: bool,
    /// Ingresses: what they name, their hosts' translations, what was reported.
    l7: ingress::L7State,
    /// Host -> the objects it produced (wanted, or still to delete), sorted (a host has a handful: a set's table
    /// would cost more than its items).
    produced_host: HashMap<String, Vec<ObjId>>,
    stats: Stats,
}

impl State {
    fn new(settings: &Settings) -> Self {
        let mut guard = safety::Guard::new(settings.guard);
        guard.set_release(settings.release_held.clone());
        Self {
            cache: HashMap::new(),
            cache_complete: false,
            members: HashMap::new(),
            group_of: HashMap::new(),
            produced: HashMap::new(),
            retries: retry::Retries::new(settings.retry_base, settings.retry_max),
            knowledge: safety::Knowledge::default(),
            guard,
            orphan_scan_due: false,
            known_vips: HashSet::new(),
            unreadable: Vec::new(),
            reported: HashMap::new(),
            status_written: HashMap::new(),
            status_fights: HashMap::new(),
            delete_reported: false,
            l7: ingress::L7State::new(settings.shard),
            produced_host: HashMap::new(),
            stats: Stats::default(),
        }
    }
}

/// What changed since the last pass.
#[derive(Default)]
struct Dirty {
    services: HashSet<ObjKey>,
    ingresses: HashSet<ObjKey>,
    secrets: HashSet<ObjKey>,
    /// Objects whose status alone changed: looked at only if it is no longer what ako wrote.
    service_status: HashSet<ObjKey>,
    ingress_status: HashSet<ObjKey>,
    nodes: bool,
    classes: bool,
    full: bool,
    /// A watch re-listed its kind: objects missing from the list were not seen deleted one by one, so what the
    /// pass deletes is not explained by deletions ako observed (the deletion guard weighs it).
    relisted: bool,
}

impl Dirty {
    fn absorb(&mut self, change: Change) {
        match change {
            Change::Services(keys) => self.services.extend(keys),
            Change::Ingresses(keys) => self.ingresses.extend(keys),
            Change::ServiceStatus(keys) => self.service_status.extend(keys),
            Change::IngressStatus(keys) => self.ingress_status.extend(keys),
            Change::Secrets(keys) => self.secrets.extend(keys),
            Change::Nodes => self.nodes = true,
            Change::Classes => self.classes = true,
            Change::Resync => self.full = true,
            Change::Listed => self.relisted = true,
            Change::Namespace(ns) => {
                // Resolved against the view and the state at the next pass.
                self.services.insert(ObjKey::new(ns.clone(), String::new()));
                self.ingresses.insert(ObjKey::new(ns, String::new()));
            }
        }
    }

    fn pending(&self) -> bool {
        !self.services.is_empty()
            || !self.ingresses.is_empty()
            || !self.secrets.is_empty()
            || !self.service_status.is_empty()
            || !self.ingress_status.is_empty()
            || self.nodes
            || self.classes
    }
}

/// The reconciler.
pub struct Reconciler<A> {
    avi: A,
    view: Arc<View>,
    cfg: Arc<Config>,
    settings: Settings,
    sink: Arc<dyn Sink>,
    owner: Arc<str>,
    identity: ako_core::ownership::Identity,
    events: EventQueue,
    /// Checked before every write: false once this replica may no longer be the leader.
    fence: Fence,
    /// Live settings (deleteConfig, namespace scope), if the configuration is watched.
    live: Option<watch::Receiver<live::Live>>,
    metrics: Arc<metrics::ReconcileMetrics>,
    heartbeat: Arc<metrics::Heartbeat>,
}

/// Whether this replica may still write.
pub type Fence = Arc<dyn Fn() -> bool + Send + Sync>;

fn in_scope(ns: &str, scope: &Scope, view: &View) -> bool {
    (scope.selector.is_none() && scope.blocked.is_empty())
        || scope.contains(ns, view.namespace_labels(ns).as_ref())
}

/// The group a Service belongs to, if it is a LoadBalancer Service of ako in a namespace ako serves.
fn group_of(svc: &Service, cfg: &Config, scope: &Scope, view: &View) -> Option<GroupId> {
    if !intent::service_is_ours(svc, cfg) {
        return None;
    }
    let ns = svc.metadata.namespace.as_deref().unwrap_or_default();
    if !in_scope(ns, scope, view) {
        return None;
    }
    let key = ObjKey::of(&svc.metadata);
    let shared = svc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ako_core::config::SHARED_VIP_ANNOTATION))
        .map(|v| v.trim())
        .filter(|v| !v.is_empty());
    Some(GroupId::Service(match shared {
        Some(k) => ServiceGroup {
            namespace: key.namespace,
            base: k.to_string(),
            shared: true,
        },
        None => ServiceGroup {
            namespace: key.namespace,
            base: key.name,
            shared: false,
        },
    }))
}

/// Whether an Ingress is ako's (its class) in a namespace ako serves.
fn ingress_is_ours(ing: &Ingress, cfg: &Config, scope: &Scope, view: &View) -> bool {
    let ns = ing.metadata.namespace.as_deref().unwrap_or_default();
    view.classes().is_ours(&intent::classify(ing), cfg) && in_scope(ns, scope, view)
}

/// Status writes and Events produced by a pass.
#[derive(Default)]
struct Outbox {
    /// Groups whose Avi writes all succeeded: their failures are forgotten once their statuses are written too.
    applied_ok: Vec<GroupId>,
    /// The groups to retry if the write fails (none: the next full sync writes it).
    statuses: Vec<(Vec<GroupId>, Target, ObjKey, Vec<LoadBalancerIngress>)>,
    events: Vec<QueuedEvent>,
}

type QueuedEvent = (Target, ObjKey, Option<String>, Notice);

/// A group's translation.
enum Translated {
    L4(L4Desired),
    /// A part, and whether every object of it was compared.
    L7(Part, bool),
}

/// Events are published by a task of their own, so a pass never waits for them; `pending` counts the queue.
struct EventQueue {
    tx: mpsc::UnboundedSender<QueuedEvent>,
    rx: parking_lot::Mutex<Option<mpsc::UnboundedReceiver<QueuedEvent>>>,
    pending: Arc<AtomicUsize>,
    /// Open unless a full sync runs: its Events (one per object at a cold start) wait for it to end, so the
    /// status writes, which users wait for, do not share the API server with thousands of Event creations.
    open: watch::Sender<bool>,
}

impl EventQueue {
    fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            tx,
            rx: parking_lot::Mutex::new(Some(rx)),
            pending: Arc::default(),
            open: watch::Sender::new(true),
        }
    }

    /// Holds (`false`) or releases (`true`) the publication of queued Events.
    fn gate(&self, open: bool) {
        self.open.send_replace(open);
    }

    fn send(&self, e: QueuedEvent) {
        self.pending.fetch_add(1, Ordering::AcqRel);
        if self.tx.send(e).is_err() {
            self.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Starts the publisher (once).
    fn spawn(
        &self,
        sink: Arc<dyn Sink>,
        progress: Arc<watch::Sender<Progress>>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let rx = self.rx.lock().take()?;
        let pending = self.pending.clone();
        let open = self.open.subscribe();
        Some(tokio::spawn(async move {
            tokio_stream_unbounded(rx)
                .for_each_concurrent(4, |(target, key, uid, notice)| {
                    let sink = sink.clone();
                    let pending = pending.clone();
                    let progress = progress.clone();
                    let mut open = open.clone();
                    async move {
                        // A closed sender (the worker is gone) publishes what is left.
                        let _ = open.wait_for(|o| *o).await;
                        sink.event(target, &key, uid.as_deref(), &notice).await;
                        let left = pending.fetch_sub(1, Ordering::AcqRel) - 1;
                        progress.send_modify(|p| p.events_pending = left);
                    }
                })
                .await;
        }))
    }
}

/// An unbounded receiver as a stream.
fn tokio_stream_unbounded<T: Send + 'static>(
    rx: mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}

/// The result of applying one group's plan.
struct GroupResult {
    group: GroupId,
    /// Each write done, without its body, with what the controller now holds (`None`: deleted).
    applied: Vec<(Step, Option<Cached>)>,
    error: Option<(Step, AviError)>,
}

/// A step without its body (what is kept of a write once it is done).
fn lighten(step: Step) -> Step {
    match step {
        Step::Create { kind, name, .. } => Step::Create {
            kind,
            name,
            body: Map::new(),
        },
        Step::Update {
            kind, name, uuid, ..
        } => Step::Update {
            kind,
            name,
            uuid,
            body: Map::new(),
        },
        other => other,
    }
}

impl<A: AviApi + Clone + 'static> Reconciler<A> {
    pub fn new(
        avi: A,
        view: Arc<View>,
        cfg: Arc<Config>,
        settings: Settings,
        sink: Arc<dyn Sink>,
    ) -> Self {
        let owner = settings.placement.owner();
        let identity = ako_core::ownership::Identity::new(
            &settings.placement.cluster_name,
            settings.cluster_uid.clone(),
        );
        Self {
            avi,
            view,
            cfg,
            settings,
            sink,
            owner: owner.into(),
            identity,
            events: EventQueue::new(),
            fence: Arc::new(|| true),
            live: None,
            metrics: Arc::default(),
            heartbeat: Arc::default(),
        }
    }

    /// Metrics to update, and the heartbeat `/healthz` reads.
    pub fn with_metrics(
        mut self,
        metrics: Arc<metrics::ReconcileMetrics>,
        heartbeat: Arc<metrics::Heartbeat>,
    ) -> Self {
        self.metrics = metrics;
        self.heartbeat = heartbeat;
        self
    }

    /// Follows live settings: a change of deleteConfig or of the namespace scope takes effect with a full sync.
    pub fn with_live(mut self, live: watch::Receiver<live::Live>) -> Self {
        self.live = Some(live);
        self
    }

    /// Every write is preceded by `fence()`; a write it refuses fails the group (retried once leading again).
    pub fn with_fence(mut self, fence: Fence) -> Self {
        self.fence = fence;
        self
    }

    /// Runs until `changes` closes. Writes only while `leader` is true; on becoming leader, a full sync.
    pub async fn run(
        mut self,
        changes: mpsc::UnboundedReceiver<Change>,
        mut leader: watch::Receiver<bool>,
        progress: watch::Sender<Progress>,
    ) {
        let progress = Arc::new(progress);
        let publisher = self.events.spawn(self.sink.clone(), progress.clone());
        let _publisher = publisher.map(AbortOnDrop);
        // Changes pass through a counter on their way in, so `/healthz` sees changes waiting on a stalled worker.
        let (counted_tx, mut counted) = mpsc::unbounded_channel();
        let _counter = AbortOnDrop(tokio::spawn(count_changes(
            changes_in(changes),
            counted_tx,
            self.heartbeat.clone(),
        )));
        self.heartbeat.beat();
        let mut state = State::new(&self.settings);
        let mut dirty = Dirty {
            full: true,
            ..Dirty::default()
        };
        let mut next_full: Option<Instant> = None;
        // Full syncs in a row that could not read ako's objects from the controller.
        let mut unread: u32 = 0;
        // The next full sync was asked for by a settings change (deleteConfig, the namespace scope).
        let mut settings_changed = false;
        let mut live = self.live.take();
        self.view
            .require_namespaces(self.settings.scope.selector.is_some());
        loop {
            // Wait for the view, leadership, a change, a retry or the next full sync. The fence turns false at the
            // renew deadline even before the election task says so.
            let elected = *leader.borrow();
            let is_leader = elected && (self.fence)();
            if is_leader && self.view.synced() && dirty.full {
                self.heartbeat.busy();
                let started = Instant::now();
                self.full_sync(&mut state, std::mem::take(&mut settings_changed))
                    .await;
                self.metrics.pass(true, started.elapsed());
                if state.cache_complete {
                    self.metrics.full_sync_complete();
                }
                self.heartbeat.idle();
                dirty = Dirty::default();
                next_full = if state.cache_complete {
                    unread = 0;
                    self.settings.full_sync.map(|d| Instant::now() + d)
                } else {
                    // Nothing is deleted while ako's objects could not be read: read them again soon (with
                    // backoff), not only at the next periodic full sync, so deletions wait seconds, not minutes.
                    unread += 1;
                    let soon = backoff(self.settings.retry_base, self.settings.retry_max, unread);
                    Some(Instant::now() + self.settings.full_sync.map_or(soon, |d| d.min(soon)))
                };
                let _ = progress.send(self.progress(&state, true));
                continue;
            }
            if is_leader && self.view.synced() && dirty.pending() {
                self.heartbeat.busy();
                let started = Instant::now();
                let d = std::mem::take(&mut dirty);
                let unexplained = d.relisted;
                let (groups, report) = self.regroup_all(&mut state, d);
                self.pass(&mut state, groups, report, unexplained).await;
                self.scan_if_due(&mut state).await;
                self.metrics.pass(false, started.elapsed());
                self.heartbeat.idle();
                let _ = progress.send(self.progress(&state, true));
                continue;
            }
            if is_leader
                && self.view.synced()
                && state.orphan_scan_due
                && state
                    .knowledge
                    .complete(state.cache_complete, self.view.complete())
                    .is_some()
            {
                self.heartbeat.busy();
                self.scan_orphans(&mut state).await;
                self.heartbeat.idle();
                let _ = progress.send(self.progress(&state, true));
                continue;
            }
            let due = state.retries.due(Instant::now());
            if is_leader && self.view.synced() && !due.is_empty() {
                self.heartbeat.busy();
                let started = Instant::now();
                self.pass(
                    &mut state,
                    due.into_iter().collect(),
                    BTreeSet::new(),
                    false,
                )
                .await;
                self.scan_if_due(&mut state).await;
                self.metrics.pass(false, started.elapsed());
                self.heartbeat.idle();
                let _ = progress.send(self.progress(&state, !dirty.full));
                continue;
            }
            // Retries wake the worker only when it could run them (leading, view synced): a follower, or a
            // leader that lost its lease with retries pending, must sleep until something changes, not spin on
            // deadlines already past. The full-sync deadline fires once (below).
            let can_run = is_leader && self.view.synced();
            // Elected but past the renew deadline (a renewal running late): look again shortly, the election task
            // may extend the lease without the flag changing.
            let recheck = (elected && !is_leader).then(|| Instant::now() + Duration::from_secs(1));
            let wake = state
                .retries
                .next_due()
                .filter(|_| can_run)
                .into_iter()
                .chain(next_full)
                .chain(recheck)
                .min();
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                change = counted.recv() => match change {
                    Some(c) => {
                        self.heartbeat.taken();
                        dirty.absorb(c);
                    }
                    None => return,
                },
                res = async {
                    match live.as_mut() {
                        Some(l) => l.changed().await,
                        None => std::future::pending().await,
                    }
                } => {
                    if res.is_err() {
                        live = None;
                    } else if let Some(l) = &live {
                        let now = l.borrow().clone();
                        if now.release_held != self.settings.release_held {
                            self.settings.release_held = now.release_held.clone();
                            state.guard.set_release(now.release_held.clone());
                            // A release takes effect at the next orphan scan: now.
                            state.orphan_scan_due = true;
                        }
                        if now.guard != self.settings.guard {
                            self.settings.guard = now.guard;
                            state.guard.set_limits(now.guard);
                        }
                        if now.delete_all != self.settings.delete_all || now.scope != self.settings.scope {
                            self.settings.delete_all = now.delete_all;
                            self.settings.scope = now.scope;
                            self.view.require_namespaces(self.settings.scope.selector.is_some());
                            dirty.full = true;
                            settings_changed = true;
                        }
                    }
                }
                res = leader.changed() => {
                    if res.is_err() {
                        return;
                    }
                    if *leader.borrow() {
                        tracing::info!("leading: full sync");
                        dirty.full = true;
                    } else {
                        tracing::info!("no longer leading: writes stop");
                    }
                }
                () = sleep => {
                    if next_full.is_some_and(|at| at <= Instant::now()) {
                        // Due: it runs once leading and synced, and sets the next deadline then.
                        dirty.full = true;
                        next_full = None;
                    }
                }
            }
            // Drain what else is queued, so a burst becomes one pass.
            while let Ok(change) = counted.try_recv() {
                self.heartbeat.taken();
                dirty.absorb(change);
            }
        }
    }

    fn progress(&self, state: &State, converged: bool) -> Progress {
        self.metrics
            .groups_retrying
            .set(state.retries.waiting() as i64);
        self.metrics
            .retry_backoff
            .set(state.retries.longest_delay().as_secs_f64());
        self.metrics
            .unknown_groups
            .set(state.knowledge.unknown_groups().len() as i64);
        self.metrics.queue_depth.set(self.heartbeat.depth() as i64);
        Progress {
            stats: state.stats.clone(),
            converged_once: converged,
            retrying: state.retries.waiting(),
            events_pending: self.events.pending.load(Ordering::Acquire),
            max_attempts: state.retries.max_attempts(),
            longest_retry: state.retries.longest_delay(),
            unknown_groups: state.knowledge.unknown_groups().len(),
            held: state.guard.held().map(|h| (h.id.clone(), h.objects.len())),
        }
    }

    /// Every Service of a namespace, in the view or in a group.
    fn service_keys_in(&self, ns: &str, state: &State) -> Vec<ObjKey> {
        let mut keys: HashSet<ObjKey> = self
            .view
            .service_keys()
            .into_iter()
            .filter(|k| k.namespace == ns)
            .collect();
        keys.extend(state.group_of.keys().filter(|k| k.namespace == ns).cloned());
        keys.into_iter().collect()
    }

    /// Every Ingress of a namespace, in the view or known as ako's.
    fn ingress_keys_in(&self, ns: &str, state: &State) -> Vec<ObjKey> {
        let mut keys: HashSet<ObjKey> = self
            .view
            .ingress_keys()
            .into_iter()
            .filter(|k| k.namespace == ns)
            .collect();
        keys.extend(state.l7.refs.keys().filter(|k| k.namespace == ns).cloned());
        keys.into_iter().collect()
    }

    fn group(&self, svc: &Service) -> Option<GroupId> {
        group_of(svc, &self.cfg, &self.settings.scope, &self.view)
    }

    /// What an Ingress names, if it is ako's.
    fn ingress_refs(&self, key: &ObjKey) -> Option<ingress::IngressRefs> {
        let ing = self.view.ingress(key)?;
        ingress_is_ours(&ing, &self.cfg, &self.settings.scope, &self.view)
            .then(|| ingress::refs_of(&ing, &self.cfg, self.settings.shard))
    }

    /// Turns what changed into the groups to pass and the Ingresses to report on.
    fn regroup_all(&self, state: &mut State, d: Dirty) -> (BTreeSet<GroupId>, BTreeSet<ObjKey>) {
        // A namespace change arrives as a key with an empty name: every object of the namespace.
        let mut services: Vec<ObjKey> = Vec::new();
        // A status ako wrote that is no longer there (someone else's edit) is written again by its group's pass;
        // ako's own write coming back matches and costs nothing.
        for k in d.service_status {
            let Some(svc) = self.view.service(&k) else {
                continue;
            };
            if !overwritten(&state.status_written, &k, service_status(&svc)) {
                continue;
            }
            match self.status_restore(state, Target::Service, &k, svc.metadata.uid.clone()) {
                None => services.push(k),
                Some(at) => {
                    if let Some(g) = state.group_of.get(&k).cloned() {
                        state.retries.retry_at(&g, at);
                    }
                }
            }
        }
        for k in d.services {
            if k.name.is_empty() {
                services.extend(self.service_keys_in(&k.namespace, state));
            } else {
                services.push(k);
            }
        }
        let mut ingresses: BTreeSet<ObjKey> = BTreeSet::new();
        if d.classes {
            ingresses.extend(self.view.ingress_keys());
            ingresses.extend(state.l7.refs.keys().cloned());
        }
        for k in d.ingresses {
            if k.name.is_empty() {
                ingresses.extend(self.ingress_keys_in(&k.namespace, state));
            } else {
                ingresses.insert(k);
            }
        }
        let mut groups = self.regroup(state, &services);
        // Backend Services of Ingresses (a Service, its endpoints).
        for k in &services {
            groups.extend(state.l7.touch_service(k).into_iter().map(GroupId::L7));
        }
        for k in &ingresses {
            let refs = self.ingress_refs(k);
            groups.extend(state.l7.set(k, refs).into_iter().map(GroupId::L7));
        }
        for k in &d.secrets {
            if self.settings.default_cert.as_ref() == Some(k) {
                for p in state.l7.parts() {
                    state.l7.mark_all(&p);
                    groups.insert(GroupId::L7(p));
                }
            }
            groups.extend(state.l7.touch_secret(k).into_iter().map(GroupId::L7));
        }
        if d.nodes
            && matches!(
                self.settings.placement.member_mode,
                l4::MemberMode::NodePort { .. }
            )
        {
            groups.extend(state.members.keys().cloned());
            for p in state.l7.parts() {
                state.l7.mark_all(&p);
                groups.insert(GroupId::L7(p));
            }
        }
        // The same for Ingresses: an overwritten status is reported on again (nothing to re-plan).
        for k in d.ingress_status {
            let Some(ing) = self.view.ingress(&k) else {
                continue;
            };
            if !overwritten(&state.l7.status_written, &k, &ingress::current_status(&ing)) {
                continue;
            }
            match self.status_restore(state, Target::Ingress, &k, ing.metadata.uid.clone()) {
                None => {
                    ingresses.insert(k);
                }
                Some(at) => {
                    let parts = state.l7.refs.get(&k).map(|r| r.parts.clone());
                    for p in parts.unwrap_or_default() {
                        state.retries.retry_at(&GroupId::L7(p), at);
                    }
                }
            }
        }
        (groups, ingresses)
    }

    /// Decides when a status someone else overwrote is written again: at once the first two times, then, while
    /// the overwrites go on (another controller writing the same status), with backoff from `retry_base`, so two
    /// writers never race each other at API speed; the fight is announced once with a Warning. Returns `None`
    /// for now, or when it is due.
    fn status_restore(
        &self,
        state: &mut State,
        target: Target,
        key: &ObjKey,
        uid: Option<String>,
    ) -> Option<Instant> {
        let now = Instant::now();
        if state.status_fights.len() > 4096 {
            state
                .status_fights
                .retain(|_, (_, last)| now.saturating_duration_since(*last) <= STATUS_FIGHT_WINDOW);
        }
        let (restores, last) = state.status_fights.entry(key.clone()).or_insert((0, now));
        if now.saturating_duration_since(*last) > STATUS_FIGHT_WINDOW {
            *restores = 0;
        }
        *restores += 1;
        let wait = match restores.checked_sub(STATUS_RESTORES_AT_ONCE) {
            None | Some(0) => Duration::ZERO,
            Some(n) => backoff(self.settings.retry_base, self.settings.retry_max, n),
        };
        *last = now + wait;
        tracing::info!(kind = ?target, object = %key, wait_ms = wait.as_millis() as u64,
            "status changed by someone else; writing it again");
        if *restores == STATUS_RESTORES_AT_ONCE + 1 {
            self.events.send((
                target,
                key.clone(),
                uid,
                Notice::warning(
                    "StatusOverwritten",
                    "status.loadBalancer keeps being overwritten by another writer (another load balancer \
                     controller?); ako writes its own again with backoff",
                ),
            ));
        }
        (!wait.is_zero()).then_some(now + wait)
    }

    /// Moves changed Services between groups; returns every group touched.
    fn regroup(&self, state: &mut State, keys: &[ObjKey]) -> BTreeSet<GroupId> {
        let mut touched = BTreeSet::new();
        for key in keys {
            let new = self.view.service(key).and_then(|s| self.group(&s));
            let old = state.group_of.get(key).cloned();
            if let Some(o) = &old
                && Some(o) != new.as_ref()
            {
                if let Some(m) = state.members.get_mut(o) {
                    m.remove(key);
                }
                state.group_of.remove(key);
            }
            if let Some(n) = &new {
                state
                    .members
                    .entry(n.clone())
                    .or_default()
                    .insert(key.clone());
                state.group_of.insert(key.clone(), n.clone());
                touched.insert(n.clone());
            } else if state.status_written.contains_key(key) || old.is_some() {
                // Left ako (or deleted): its status goes with it.
                touched.extend(old.clone());
            }
            touched.extend(old);
            if new.is_none() {
                state.reported.remove(key);
            }
        }
        touched
    }

    /// Reads every owned object from the controller, re-plans every group and deletes orphans.
    /// Events found meanwhile wait for it to end (see [`EventQueue::open`]).
    /// `explained`: a settings change asked for it (deleteConfig, the namespace scope), so what its passes stop
    /// wanting they delete themselves; otherwise that is left to the orphan scan and its guard.
    async fn full_sync(&self, state: &mut State, explained: bool) {
        struct Release<'a>(&'a EventQueue);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.gate(true);
            }
        }
        self.events.gate(false);
        let _release = Release(&self.events);
        self.full_sync_inner(state, !explained).await;
    }

    async fn full_sync_inner(&self, state: &mut State, unexplained: bool) {
        state.stats.full_syncs += 1;
        let started = Instant::now();
        // Each object read replaces its cached entry, which is dropped as it arrives: a periodic full sync holds
        // the cache once, not an old and a new copy side by side.
        let mut read: HashMap<ObjId, Cached> = HashMap::new();
        let old = &mut state.cache;
        let known_vips = &mut state.known_vips;
        match apply::for_each_owned(&self.avi, &self.identity, |e| {
            let id = (e.kind.obj_type(), e.name.clone());
            old.remove(&id);
            let c = Cached::of(&e, &self.owner);
            remember_vips(known_vips, &c, &self.owner);
            read.insert(id, c);
        })
        .await
        {
            Ok(()) => {
                // What was cached and not read again is no longer on the controller.
                state.cache = read;
                state.cache_complete = true;
            }
            Err(error) => {
                tracing::warn!(%error, "could not read ako's objects from the controller; nothing will be deleted until they can be read");
                // The objects read so far are newer than what was cached; the rest stays as it was.
                state.cache.extend(read);
                state.cache_complete = false;
            }
        }
        // Rebuild the groups from the whole view.
        state.members.clear();
        state.group_of.clear();
        for svc in self.view.services() {
            if let Some(g) = self.group(&svc) {
                let key = ObjKey::of(&svc.metadata);
                state
                    .members
                    .entry(g.clone())
                    .or_default()
                    .insert(key.clone());
                state.group_of.insert(key, g);
            }
        }
        state.l7.clear_refs();
        let mut report: BTreeSet<ObjKey> = state.l7.status_written.keys().cloned().collect();
        for key in self.view.ingress_keys() {
            let refs = self.ingress_refs(&key);
            state.l7.set(&key, refs);
            report.insert(key);
        }
        let mut groups: BTreeSet<GroupId> = state.members.keys().cloned().collect();
        groups.extend(state.produced.keys().cloned());
        let mut parts = state.l7.parts();
        parts.extend(groups.iter().filter_map(|g| match g {
            GroupId::L7(p) => Some(p.clone()),
            GroupId::Service(_) => None,
        }));
        for p in parts {
            state.l7.mark_all(&p);
            groups.insert(GroupId::L7(p));
        }
        groups.extend(
            state
                .status_written
                .keys()
                .filter_map(|k| state.group_of.get(k).cloned()),
        );
        // In batches, so what a pass holds (plans, steps, answers) stays bounded whatever the cluster's size: at
        // most FULL_SYNC_BATCH groups, of which at most L7_PARTS_PER_BATCH L7 parts (a shared parent with a
        // thousand hosts plans thousands of objects), first in their batch so the Services fill the other slots
        // while they run.
        let (l7_parts, services): (Vec<GroupId>, Vec<GroupId>) = groups
            .into_iter()
            .partition(|g| matches!(g, GroupId::L7(_)));
        let mut batches: Vec<BTreeSet<GroupId>> = Vec::new();
        let mut services = services.into_iter();
        for parts in l7_parts.chunks(L7_PARTS_PER_BATCH) {
            let mut batch: BTreeSet<GroupId> = parts.iter().cloned().collect();
            batch.extend(
                services
                    .by_ref()
                    .take(FULL_SYNC_BATCH.saturating_sub(parts.len())),
            );
            batches.push(batch);
        }
        let rest: Vec<GroupId> = services.collect();
        batches.extend(
            rest.chunks(FULL_SYNC_BATCH)
                .map(|c| c.iter().cloned().collect()),
        );
        let last = batches.len().saturating_sub(1);
        let mut report = Some(report);
        // A batch's statuses are written while the next batch's Avi writes run: the two go to different
        // servers, and one after the other a cold start took the sum of both.
        let mut unwritten: Option<Outbox> = None;
        for (i, batch) in batches.into_iter().enumerate() {
            // A lost lease stops the full sync at once (the next leader runs its own).
            if !(self.fence)() {
                tracing::info!("no longer leading: the full sync stops");
                return;
            }
            let r = if i == last {
                report.take().unwrap_or_default()
            } else {
                BTreeSet::new()
            };
            let out = match unwritten.take() {
                // The batch that reports every Ingress compares their statuses with the view: the writes before
                // it must have landed, or it would write again what is on its way.
                Some(previous) if !r.is_empty() => {
                    self.publish(state, previous).await;
                    self.plan_and_apply(state, batch, r, unexplained).await
                }
                Some(previous) => {
                    let (out, written) = tokio::join!(
                        self.plan_and_apply(state, batch, r, unexplained),
                        self.write_statuses(previous)
                    );
                    self.settle(state, written);
                    out
                }
                None => self.plan_and_apply(state, batch, r, unexplained).await,
            };
            unwritten = Some(out);
        }
        if let Some(out) = unwritten {
            self.publish(state, out).await;
        }
        if let Some(r) = report {
            self.pass(state, BTreeSet::new(), r, unexplained).await;
        }

        self.scan_orphans(state).await;
        let none_left = !state
            .cache
            .values()
            .any(|c| c.created_by.as_deref() == Some(&*self.owner));
        if self.settings.delete_all && state.cache_complete && none_left {
            if !state.delete_reported {
                state.delete_reported = true;
                let msg = format!(
                    "deleteConfig: every Avi object created by {} is deleted",
                    self.owner
                );
                self.sink
                    .operator_event(&Notice::normal("DeleteConfigDone", msg))
                    .await;
            }
        } else if !self.settings.delete_all {
            state.delete_reported = false;
        }
        tracing::info!(
            groups = state.members.len(),
            ingresses = state.l7.refs.len(),
            objects = state.cache.len(),
            complete = state.cache_complete,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "full sync done"
        );
    }

    /// Translates, plans, applies and reports the given groups, then reports on `report` and on every Ingress
    /// of the L7 parts passed.
    /// `unexplained`: the pass follows a re-list, so it deletes nothing itself (see [`safety`]).
    async fn pass(
        &self,
        state: &mut State,
        groups: BTreeSet<GroupId>,
        report: BTreeSet<ObjKey>,
        unexplained: bool,
    ) {
        let outbox = self
            .plan_and_apply(state, groups, report, unexplained)
            .await;
        self.publish(state, outbox).await;
        if unexplained {
            state.orphan_scan_due = true;
        }
    }

    /// Runs an orphan scan that is due, once everything is known.
    async fn scan_if_due(&self, state: &mut State) {
        if state.orphan_scan_due {
            self.scan_orphans(state).await;
        }
    }

    /// Deletes the objects ako owns that no group wants, if everything they could depend on was read (else the
    /// scan stays due), through the deletion guard (unless deleteConfig asked for everything to go).
    async fn scan_orphans(&self, state: &mut State) {
        let Some(proof) = state
            .knowledge
            .complete(state.cache_complete, self.view.complete())
        else {
            if !state.orphan_scan_due {
                let unknown: Vec<String> = state
                    .knowledge
                    .unknown_groups()
                    .into_iter()
                    .map(|(g, u)| format!("{}: {}", group_name(g), join(u)))
                    .collect();
                tracing::warn!(
                    controller_read = state.cache_complete,
                    watches_complete = self.view.complete(),
                    ?unknown,
                    "orphan scan postponed: nothing is deleted until every input is known"
                );
            }
            state.orphan_scan_due = true;
            return;
        };
        state.orphan_scan_due = false;
        let wanted: BTreeSet<&ObjId> = state
            .produced
            .values()
            .flatten()
            .chain(state.produced_host.values().flatten())
            .collect();
        // Only ako's objects count: the cache also holds objects found with a name ako wants (someone else's,
        // another cluster's), which are never deleted.
        let ours: Vec<&ObjId> = state
            .cache
            .iter()
            .filter(|(_, c)| c.created_by.as_deref() == Some(&*self.owner))
            .map(|(id, _)| id)
            .collect();
        let owned = ours.len();
        let orphans: Vec<ObjId> = safety::orphans(ours, &wanted, &proof)
            .into_iter()
            .cloned()
            .collect();
        let orphans = if self.settings.delete_all {
            state.guard.clear();
            orphans
        } else {
            match state.guard.check(orphans, owned) {
                safety::Verdict::Proceed(o) => o,
                safety::Verdict::Held { hold, new } => {
                    self.announce_hold(&hold, new).await;
                    self.metrics.deletions_held.set(hold.objects.len() as i64);
                    return;
                }
            }
        };
        self.metrics.deletions_held.set(0);
        if orphans.is_empty() {
            return;
        }
        tracing::info!(
            objects = orphans.len(),
            "deleting objects no Service or Ingress wants any more"
        );
        let objects: Vec<Existing> = orphans
            .iter()
            .filter_map(|id| state.cache.get(id).map(|c| c.existing(&id.1)))
            .collect();
        let steps = plan::plan(
            &[],
            &Observed {
                objects,
                complete: true,
            },
            &self.owner,
        );
        for step in steps {
            match apply::execute(&self.avi, &step, &self.identity).await {
                Ok(_) => {
                    state.stats.deletes += 1;
                    state.cache.remove(&obj_id(step.kind(), step.name()));
                }
                Err(error) => {
                    state.stats.failures += 1;
                    tracing::warn!(kind = step.kind().obj_type(), name = step.name(), %error, "orphan not deleted; the next full sync tries again");
                }
            }
        }
    }

    /// Tells the operator about held deletions (a new hold: an Event on ako's Pod; the same hold again: a log line).
    async fn announce_hold(&self, hold: &safety::Hold<ObjId>, new: bool) {
        let sample: Vec<String> = hold
            .objects
            .iter()
            .take(5)
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        let share = hold.objects.len() * 100 / hold.owned.max(1);
        let msg = format!(
            "ako holds the deletion of {} Avi objects ({share}% of the {} it owns) that no Service or Ingress \
             deleted while ako watched explains (e.g. {}); this protects VIPs after a restore, a re-list that came \
             back short or a cluster emptied by mistake. If they should go, release exactly this set with \
             releaseHeldDeletions: \"{}\" in ako's ConfigMap (helm: --set AKOSettings.releaseHeldDeletions={}); \
             to keep them, restore their Services and Ingresses",
            hold.objects.len(),
            hold.owned,
            sample.join(", "),
            hold.id,
            hold.id
        );
        if new {
            self.sink
                .operator_event(&Notice::warning("DeletionsHeld", msg))
                .await;
        } else {
            tracing::warn!(objects = hold.objects.len(), id = %hold.id, "deletions still held");
        }
    }

    /// Writes an outbox's statuses, records how that went, and queues its Events.
    async fn publish(&self, state: &mut State, out: Outbox) {
        let written = self.write_statuses(out).await;
        self.settle(state, written);
    }

    /// A pass up to its Avi writes: plans the groups, applies them, and returns the statuses and Events to
    /// publish (a full sync writes a batch's statuses while the next batch's Avi writes run).
    async fn plan_and_apply(
        &self,
        state: &mut State,
        groups: BTreeSet<GroupId>,
        mut report: BTreeSet<ObjKey>,
        unexplained: bool,
    ) -> Outbox {
        if groups.is_empty() && report.is_empty() {
            return Outbox::default();
        }
        if !(self.fence)() {
            // Not leading any more: nothing is planned or written (the next leadership starts with a full sync).
            return Outbox::default();
        }
        state.stats.passes += 1;
        let nodes = self.view.nodes();
        // What a group stops wanting it deletes itself only when the change was observed as it happened; after
        // a re-list or in a full sync, the orphan scan (with its guard) decides.
        let can_delete = state.cache_complete && self.view.complete() && !unexplained;

        // What each L7 part must do: the hosts to translate again, whether to compare every object.
        let mut l7_work: HashMap<Part, (BTreeSet<String>, bool)> = HashMap::new();
        let mut secret_keys: BTreeSet<ObjKey> = BTreeSet::new();
        for g in &groups {
            if let GroupId::L7(part) = g {
                let (hosts, all) = state.l7.take_work(part);
                secret_keys.extend(state.l7.claimants_of(&hosts).2);
                l7_work.insert(part.clone(), (hosts, all));
            }
        }
        // The TLS Secrets those hosts need, read once for the pass (unchanged ones come from memory); each part
        // learns below whether the ones it needs were read.
        let secrets = if l7_work.is_empty() {
            SecretReads::default()
        } else {
            secret_keys.extend(self.settings.default_cert.clone());
            self.view.tls_secrets(&secret_keys).await
        };

        // L7 parts first: they are the longest groups, so their writes start at once and the Services fill the
        // other slots while they run.
        let (mut ordered, services): (Vec<GroupId>, Vec<GroupId>) = groups
            .into_iter()
            .partition(|g| matches!(g, GroupId::L7(_)));
        ordered.extend(services);
        let mut work: Vec<(GroupId, Vec<Step>, Translated)> = Vec::new();
        for g in ordered {
            state.retries.started(&g);
            let (objects, translated) = match &g {
                GroupId::Service(_) => {
                    // A Service group reads nothing but the view.
                    state.knowledge.record(&g, Ok(()));
                    let mut d = self.translate_services(state, &g, &nodes);
                    (std::mem::take(&mut d.objects), Translated::L4(d))
                }
                GroupId::L7(part) => {
                    let part = &part.clone();
                    let (hosts, all) = l7_work.remove(part).unwrap_or_default();
                    let needed = self.secrets_of_part(state, part, &hosts, all);
                    if let Err(unknown) = secrets.check(&needed) {
                        // Not knowing a certificate is not its absence: the part is unknown, its objects stay as
                        // they are, and it is tried again.
                        tracing::warn!(part = %part, unknown = %join(&unknown), "an input of the part could not be read; its objects are kept as they are and the part is retried");
                        state.knowledge.record(&g, Err(unknown));
                        state.l7.mark_hosts(&hosts);
                        if all {
                            state.l7.replan(part);
                        }
                        state.retries.failed(&g, retry::Remedy::Transient, None);
                        self.metrics.retried(retry::Remedy::Transient);
                        report.extend(state.l7.ingresses_of_part(part));
                        continue;
                    }
                    state.knowledge.record(&g, Ok(()));
                    state.stats.l7_parts += 1;
                    let fragments =
                        self.translate_hosts(state, part, &hosts, &nodes, secrets.found());
                    let (keys, parent_changed, fresh) = state.l7.store(&hosts, fragments);
                    report.extend(keys);
                    let scope = self.plan_scope(state, part, &hosts, all);
                    let (objects, ids) =
                        self.part_objects(state, part, &scope, all || parent_changed, fresh);
                    let steps = self.plan_ids(state, &g, objects, ids, can_delete);
                    self.update_produced_hosts(state, part, &scope, can_delete);
                    work.push((g, steps, Translated::L7(part.clone(), all)));
                    continue;
                }
            };
            let ids: HashSet<ObjId> = state.produced.get(&g).cloned().unwrap_or_default();
            let steps = self.plan_ids(state, &g, objects, ids, can_delete);
            work.push((g, steps, translated));
        }

        self.read_again(state).await;

        // Apply: groups concurrently, the steps of a group in order, stopping at its first failure. The steps
        // move into the writes; only the conflicts (nothing to write, something to report) stay.
        let mut futures = Vec::with_capacity(work.len());
        let work: Vec<(GroupId, Vec<Step>, Translated)> = work
            .into_iter()
            .map(|(g, steps, translated)| {
                let conflicts: Vec<Step> =
                    steps.iter().filter(|s| !s.is_write()).cloned().collect();
                futures.push(apply_group(
                    self.avi.clone(),
                    Arc::clone(&self.owner),
                    self.identity.clone(),
                    g.clone(),
                    steps,
                    self.fence.clone(),
                ));
                (g, conflicts, translated)
            })
            .collect();
        let results: Vec<GroupResult> = futures::stream::iter(futures)
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;

        let mut outbox = Outbox::default();
        let mut results: HashMap<GroupId, GroupResult> =
            results.into_iter().map(|r| (r.group.clone(), r)).collect();
        for (g, steps, translated) in work {
            let result = results.remove(&g);
            let mut notices: Vec<Notice> = Vec::new();
            let mut vs_written = None;
            let mut failed = false;
            if let Some(r) = &result {
                for (step, a) in &r.applied {
                    let id = obj_id(step.kind(), step.name());
                    match (step, a) {
                        (Step::Create { .. }, Some(c)) => {
                            state.stats.creates += 1;
                            remember_vips(&mut state.known_vips, c, &self.owner);
                            state.cache.insert(id, c.clone());
                        }
                        (Step::Update { .. }, Some(c)) => {
                            state.stats.updates += 1;
                            remember_vips(&mut state.known_vips, c, &self.owner);
                            state.cache.insert(id, c.clone());
                        }
                        _ => {
                            state.stats.deletes += 1;
                            state.cache.remove(&id);
                        }
                    }
                    if step.kind() == Kind::VirtualService && !matches!(step, Step::Delete { .. }) {
                        vs_written =
                            Some((step.name().to_string(), matches!(step, Step::Create { .. })));
                    }
                }
                if let Some((step, error)) = &r.error {
                    failed = true;
                    notices.push(self.failed(state, &g, step, error));
                }
            }
            let mut conflicts = 0;
            for step in &steps {
                match step {
                    Step::Conflict { kind, name, owner } => {
                        conflicts += 1;
                        notices.push(Notice::warning(
                            "NameConflict",
                            format!(
                                "{} {name} already exists on the controller and was not created by ako ({}); ako does not overwrite it or write anything that would refer to it: rename or delete it there",
                                kind.obj_type(),
                                owner.as_deref().map_or("created_by unset".to_string(), |o| format!("created_by {o}"))
                            ),
                        ));
                    }
                    Step::Blocked { kind, name, by } => {
                        tracing::info!(group = %group_name(&g), kind = kind.obj_type(), name = %name, blocked_by = %by, "not written: it would refer to an object ako does not own");
                    }
                    _ => {}
                }
            }
            if conflicts > 0 && !failed {
                // Someone must rename or remove the other object; look again now and then.
                state.retries.failed(&g, retry::Remedy::Controller, None);
                self.metrics.retried(retry::Remedy::Controller);
                failed = true;
            }
            if !failed {
                outbox.applied_ok.push(g.clone());
            }
            match translated {
                Translated::L4(desired) => {
                    self.report(state, &g, &desired, &notices, vs_written, &mut outbox);
                }
                Translated::L7(part, all) => {
                    // A new or changed VIP (or a full re-plan) concerns every Ingress of the part.
                    let vip_written = result.as_ref().is_some_and(|r| {
                        r.applied.iter().any(|(s, _)| {
                            s.kind() == Kind::VsVip && !matches!(s, Step::Delete { .. })
                        })
                    });
                    if vip_written || all || failed {
                        report.extend(state.l7.ingresses_of_part(&part));
                    }
                    if failed {
                        state.l7.replan(&part);
                    }
                    state.l7.applied.insert(part.clone(), !failed);
                    let texts: Vec<String> = notices.iter().map(|n| n.message.clone()).collect();
                    if texts.is_empty() {
                        state.l7.part_notices.remove(&part);
                    } else {
                        state.l7.part_notices.insert(part.clone(), texts);
                    }
                    if state.l7.hosts_of_part(&part).is_empty() && !state.produced.contains_key(&g)
                    {
                        state.l7.applied.remove(&part);
                        state.l7.part_notices.remove(&part);
                    }
                }
            }
        }
        for key in &report {
            self.report_ingress(state, key, &mut outbox);
        }
        outbox
    }

    /// Schedules the retry of a group whose write failed; returns the Warning to report. The text stays the same
    /// from one retry to the next (the delay is in the log and the metrics), so retries make one Event series.
    fn failed(&self, state: &mut State, g: &GroupId, step: &Step, error: &AviError) -> Notice {
        state.stats.failures += 1;
        let remedy = retry::classify(error);
        let delay = state.retries.failed(g, remedy, error.retry_after());
        self.metrics.retried(remedy);
        if let AviError::Conflict { uuid, owner, .. } = error {
            // Remember the stranger's object so the next plans report it without writing.
            state.cache.insert(
                obj_id(step.kind(), step.name()),
                Cached::of(
                    &Existing {
                        kind: step.kind(),
                        uuid: uuid.clone().unwrap_or_default(),
                        name: step.name().to_string(),
                        created_by: owner.clone(),
                        body: Default::default(),
                    },
                    &self.owner,
                ),
            );
        }
        tracing::warn!(group = %group_name(g), kind = step.kind().obj_type(), name = step.name(), %error,
            remedy = remedy.as_str(), attempts = state.retries.attempts(g), retry_in_ms = delay.as_millis() as u64,
            "Avi write failed");
        let what = format!("{} {}", step.kind().obj_type(), step.name());
        let text = match remedy {
            retry::Remedy::Transient => format!("{what}: {error}; ako retries with backoff"),
            retry::Remedy::Controller if retry::is_ipam_exhausted(error) => {
                let network = self
                    .settings
                    .placement
                    .vip_network
                    .as_ref()
                    .map_or("the VIP network", |(n, _)| n.as_str());
                format!(
                    "{what}: network {network} has no free address (the controller answered: {}); free \
                     addresses there or add a network to vipNetworkList; ako retries every few minutes and \
                     when this object changes",
                    error.message().unwrap_or_default()
                )
            }
            retry::Remedy::Controller => format!(
                "{what}: {error}; this needs a change on the Avi controller; ako retries every few minutes \
                 and when this object changes"
            ),
            retry::Remedy::Kubernetes => format!(
                "{what}: the Avi controller refused what this object asks for: {error}; change it and ako \
                 tries again at once (and every few minutes meanwhile)"
            ),
        };
        Notice::warning(remedy.reason(), text)
    }

    /// Reads again from the controller the cached objects whose body did not read back, and has their groups
    /// planned again at once: a plan never works from a body ako lost.
    async fn read_again(&self, state: &mut State) {
        for ((kind, name), g) in std::mem::take(&mut state.unreadable) {
            let Some(c) = state.cache.get(&(kind, name.clone())) else {
                continue;
            };
            let (k, uuid) = (c.kind, c.uuid.to_string());
            tracing::warn!(kind, name = %name, "a cached body did not read back; reading the object again");
            match apply::read(&self.avi, k, &uuid, &self.identity).await {
                Ok(Some(e)) => {
                    state
                        .cache
                        .insert((kind, name), Cached::of(&e, &self.owner));
                }
                Ok(None) => {
                    state.cache.remove(&(kind, name));
                }
                Err(error) => {
                    tracing::warn!(kind, %error, "reading it failed; the group is retried");
                }
            }
            state.retries.failed(&g, retry::Remedy::Transient, None);
        }
    }

    /// The TLS Secrets translating `hosts` of a part reads: those the Ingresses claiming them name, and the
    /// default certificate.
    fn secrets_of_part(
        &self,
        state: &State,
        _part: &Part,
        hosts: &BTreeSet<String>,
        _all: bool,
    ) -> BTreeSet<ObjKey> {
        let mut keys = state.l7.claimants_of(hosts).2;
        keys.extend(self.settings.default_cert.clone());
        keys
    }

    /// The desired objects of a Service group.
    fn translate_services(&self, state: &State, g: &GroupId, nodes: &[l4::NodeInfo]) -> L4Desired {
        let members: Vec<Arc<Service>> = state
            .members
            .get(g)
            .into_iter()
            .flatten()
            .filter_map(|k| self.view.service(k))
            .collect();
        if self.settings.delete_all {
            return L4Desired {
                objects: Vec::new(),
                outcomes: members
                    .iter()
                    .map(|s| ServiceOutcome::left_out(ObjKey::of(&s.metadata), Vec::new()))
                    .collect(),
            };
        }
        translate(
            &self.view,
            &members,
            nodes,
            &self.cfg,
            &self.settings.placement,
        )
    }

    /// Translates these hosts of a part again (each with every Ingress claiming it).
    fn translate_hosts(
        &self,
        state: &State,
        part: &Part,
        hosts: &BTreeSet<String>,
        nodes: &[l4::NodeInfo],
        secrets: &BTreeMap<ObjKey, Option<TlsPair>>,
    ) -> Vec<HostFragment> {
        if hosts.is_empty() || self.settings.delete_all {
            return Vec::new();
        }
        let (ingress_keys, service_keys, _) = state.l7.claimants_of(hosts);
        let members: Vec<Arc<Ingress>> = ingress_keys
            .iter()
            .filter_map(|k| self.view.ingress(k))
            .collect();
        let services: Vec<Arc<Service>> = service_keys
            .iter()
            .filter_map(|k| self.view.service(k))
            .collect();
        let endpoints: Vec<Vec<l4::EndpointGroup>> = services
            .iter()
            .map(|s| self.view.endpoints(&ObjKey::of(&s.metadata)))
            .collect();
        let inputs: Vec<ServiceInput<'_>> = services
            .iter()
            .zip(&endpoints)
            .map(|(s, e)| ServiceInput {
                service: s,
                endpoints: e,
            })
            .collect();
        let refs: Vec<&Ingress> = members.iter().map(AsRef::as_ref).collect();
        let default_cert = self
            .settings
            .default_cert
            .as_ref()
            .and_then(|k| secrets.get(k))
            .and_then(Option::as_ref);
        let input = L7Input {
            ingresses: &refs,
            services: &inputs,
            nodes,
            secrets,
            default_cert,
            part: Some(part),
        };
        l7::translate_hosts(
            &input,
            &self.cfg,
            &self.settings.placement,
            self.settings.shard,
            Some(hosts),
        )
        .0
    }

    /// The objects of a shared parent (none in dedicated mode: a host's fragment holds its virtual service),
    /// with the one HTTPPolicySet of every host that parents had before the per-host sets (deleted when found).
    fn parent_ids(&self, part: &Part) -> Vec<ObjId> {
        match part {
            Part::Shard { index, .. } => {
                let parent = l7::shared_vs_name(&self.cfg.cluster_name, *index);
                [Kind::VsVip, Kind::HttpPolicySet, Kind::VirtualService]
                    .into_iter()
                    .map(|kind| obj_id(kind, &parent))
                    .collect()
            }
            Part::Host(_) => Vec::new(),
        }
    }

    /// The hosts of a part whose objects a pass compares: those translated again, or (`all`) every host the part
    /// serves or produced objects for.
    fn plan_scope(
        &self,
        state: &State,
        part: &Part,
        hosts: &BTreeSet<String>,
        all: bool,
    ) -> BTreeSet<String> {
        let mut scope = hosts.clone();
        if all {
            scope.extend(
                state
                    .l7
                    .serving_hosts(part)
                    .iter()
                    .map(|(h, _)| (*h).to_string()),
            );
            scope.extend(
                state
                    .produced_host
                    .keys()
                    .filter(|h| l7::part_of(h, self.settings.shard) == *part)
                    .cloned(),
            );
        }
        scope
    }

    /// The objects of a part to compare: its parent (from the hosts it serves, when `parent`: it may have
    /// changed) and `fresh`, the objects of the hosts translated again (every host of the part when a pass
    /// compares everything); with the ids of every object the hosts in scope had or have.
    fn part_objects(
        &self,
        state: &State,
        part: &Part,
        scope: &BTreeSet<String>,
        parent: bool,
        fresh: Vec<Desired>,
    ) -> (Vec<Desired>, HashSet<ObjId>) {
        let mut objects = if parent {
            let serving: Vec<(&str, Option<&str>)> = state
                .l7
                .serving_hosts(part)
                .into_iter()
                .map(|(h, f)| (h, f.parent_policy.as_deref()))
                .collect();
            l7::assemble_parent(&self.cfg, &self.settings.placement, part, &serving)
        } else {
            Vec::new()
        };
        let mut ids: HashSet<ObjId> = HashSet::new();
        if parent {
            ids.extend(self.parent_ids(part));
        }
        for h in scope {
            ids.extend(state.produced_host.get(h).into_iter().flatten().cloned());
        }
        let mut seen: HashSet<ObjId> = objects.iter().map(|d| obj_id(d.kind, &d.name)).collect();
        for o in fresh {
            // The default certificate is one object, whichever hosts use it.
            if seen.insert(obj_id(o.kind, &o.name)) {
                objects.push(o);
            }
        }
        // The default certificate is shared by every host using it: while any host anywhere wants it, it is
        // not this part's to delete.
        let default_cert = (
            Kind::SslKeyAndCertificate,
            l7::default_cert_name(&self.cfg.cluster_name),
        );
        if !seen.contains(&obj_id(default_cert.0, &default_cert.1))
            && state
                .l7
                .fragments
                .values()
                .any(|f| f.ids.contains(&default_cert))
        {
            ids.remove(&obj_id(default_cert.0, &default_cert.1));
        }
        (objects, ids)
    }

    /// Plans a group's objects against what ako holds of `ids` and the objects themselves; records what the
    /// group now produces (what it wants, and what is still to delete) for a Service group.
    fn plan_ids(
        &self,
        state: &mut State,
        g: &GroupId,
        mut objects: Vec<Desired>,
        mut ids: HashSet<ObjId>,
        can_delete: bool,
    ) -> Vec<Step> {
        for d in &mut objects {
            self.identity.stamp(d.kind == Kind::VsVip, &mut d.body);
        }
        ids.extend(objects.iter().map(|d| obj_id(d.kind, &d.name)));
        let wanted: Vec<ObjId> = match g {
            GroupId::Service(_) => objects.iter().map(|d| obj_id(d.kind, &d.name)).collect(),
            GroupId::L7(_) => Vec::new(),
        };
        // Identities only: a cached body is read (decompressed and parsed) when its object is compared, and
        // dropped after.
        let known: Vec<plan::Known> = ids
            .iter()
            .filter_map(|id| {
                state.cache.get(id).map(|c| plan::Known {
                    kind: c.kind,
                    uuid: c.uuid.to_string(),
                    name: id.1.clone(),
                    created_by: c.created_by.as_deref().map(String::from),
                })
            })
            .collect();
        let cache = &state.cache;
        let unreadable: std::cell::RefCell<Vec<ObjId>> = Default::default();
        let steps = plan::plan_with(objects, &known, can_delete, &self.owner, |k| {
            let id = obj_id(k.kind, &k.name);
            let body = cache.get(&id).and_then(Cached::body);
            if body.is_none() {
                unreadable.borrow_mut().push(id);
            }
            body
        });
        state.unreadable.extend(
            unreadable
                .into_inner()
                .into_iter()
                .map(|id| (id, g.clone())),
        );
        if let GroupId::Service(_) = g {
            // Keep what is still to delete in `produced`, so a failed pass cleans up later; a pass that may not
            // delete leaves it to the orphan scan.
            let mut keep: HashSet<ObjId> = wanted.into_iter().collect();
            let stale: Vec<ObjId> = ids
                .into_iter()
                .filter(|id| state.cache.contains_key(id) && !keep.contains(id))
                .collect();
            if can_delete {
                keep.extend(stale);
            } else if !stale.is_empty() {
                state.orphan_scan_due = true;
            }
            if keep.is_empty() {
                state.produced.remove(g);
            } else {
                state.produced.insert(g.clone(), keep);
            }
        }
        steps
    }

    /// Records what each host of a part in scope produces (what it wants, and what is still to delete), and the
    /// part's parent objects (full syncs delete only what no group or host produces).
    /// `can_delete` false: what a host or the parent no longer wants is left to the orphan scan.
    fn update_produced_hosts(
        &self,
        state: &mut State,
        part: &Part,
        scope: &BTreeSet<String>,
        can_delete: bool,
    ) {
        for h in scope {
            let mut keep: Vec<ObjId> = state
                .l7
                .fragments
                .get(h)
                .map(|f| f.ids.iter().map(|(k, n)| obj_id(*k, n)).collect())
                .unwrap_or_default();
            if let Some(old) = state.produced_host.remove(h) {
                let stale: Vec<ObjId> = old
                    .into_iter()
                    .filter(|id| state.cache.contains_key(id) && !keep.contains(id))
                    .collect();
                if can_delete {
                    keep.extend(stale);
                } else if !stale.is_empty() {
                    state.orphan_scan_due = true;
                }
            }
            keep.sort_unstable();
            keep.dedup();
            keep.shrink_to_fit();
            if !keep.is_empty() {
                state.produced_host.insert(h.clone(), keep);
            }
        }
        // The part's own entry holds its parent's objects; its hosts' objects are in `produced_host` (not copied
        // here: the orphan scan reads both).
        let g = GroupId::L7(part.clone());
        let wanted = !state.l7.serving_hosts(part).is_empty();
        // A parent serving hosts wants its VsVip and virtual service; anything else of it (all of it once it
        // serves none, and the single policy set of an earlier ako) is only still to delete.
        let still_wanted = |id: &ObjId| wanted && id.0 != Kind::HttpPolicySet.obj_type();
        let parent: HashSet<ObjId> = self
            .parent_ids(part)
            .into_iter()
            .filter(|id| still_wanted(id) || (can_delete && state.cache.contains_key(id)))
            .collect();
        if !can_delete
            && self
                .parent_ids(part)
                .iter()
                .any(|id| !still_wanted(id) && state.cache.contains_key(id))
        {
            state.orphan_scan_due = true;
        }
        let hosts = state
            .produced_host
            .keys()
            .any(|h| l7::part_of(h, self.settings.shard) == *part);
        if parent.is_empty() && !hosts {
            state.produced.remove(&g);
        } else {
            state.produced.insert(g, parent);
        }
    }

    /// Status and Events of one Ingress, from what its parts' last translations said about it.
    fn report_ingress(&self, state: &mut State, key: &ObjKey, out: &mut Outbox) {
        let Some(ing) = self.view.ingress(key) else {
            state.l7.forget(key);
            return;
        };
        let have = ingress::current_status(&ing);
        let uid = ing.metadata.uid.clone();
        let Some(refs) = state.l7.refs.get(key) else {
            // Not ako's (any more): its status goes if the addresses there are ako's.
            if !have.is_empty() && may_clear(state, &state.l7.status_written, key, &have) {
                out.statuses
                    .push((Vec::new(), Target::Ingress, key.clone(), Vec::new()));
            }
            state.l7.reported.remove(key);
            state.l7.announced.remove(key);
            return;
        };
        let parts: Vec<Part> = refs.parts.clone();
        // A part whose inputs could not be read keeps its objects as they are: so does the status, and the
        // Ingress says why.
        let unknown: Vec<safety::Unknown> = parts
            .iter()
            .filter_map(|p| state.knowledge.unknown(&GroupId::L7(p.clone())))
            .flatten()
            .cloned()
            .collect();
        if !unknown.is_empty() {
            let text = format!(
                "{}: the Avi objects of this Ingress's hosts are kept as they are (no update, no deletion) and \
                 ako retries with backoff",
                join(&unknown)
            );
            if state.l7.reported.get(key) != Some(&vec![text.clone()]) {
                out.events.push((
                    Target::Ingress,
                    key.clone(),
                    uid.clone(),
                    Notice::warning("InputUnreadable", text.clone()),
                ));
                state.l7.reported.insert(key.clone(), vec![text]);
            }
            return;
        }
        let (hosts, problems) = state.l7.merged(key);
        let mut vips: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        for h in &hosts {
            let ips = state
                .cache
                .get(&(Kind::VsVip.obj_type(), h.vip_name.clone()))
                .filter(|c| c.created_by.as_deref() == Some(&*self.owner))
                .map(|c| c.vips.to_vec())
                .unwrap_or_default();
            vips.insert(h.vip_name.clone(), ips);
        }
        let want = ingress::status_of(&hosts, &vips);
        let groups: Vec<GroupId> = parts.iter().cloned().map(GroupId::L7).collect();
        if !same_status(&have, &want) {
            if !want.is_empty() || may_clear(state, &state.l7.status_written, key, &have) {
                out.statuses
                    .push((groups, Target::Ingress, key.clone(), want.clone()));
            }
        } else if !want.is_empty() {
            state
                .l7
                .status_written
                .insert(key.clone(), status_print(&want));
        }
        let mut event = |n: Notice| {
            out.events
                .push((Target::Ingress, key.clone(), uid.clone(), n))
        };

        // Problems and the Avi errors of its parts: announced when they change.
        let mut texts: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
        for p in &parts {
            texts.extend(state.l7.part_notices.get(p).into_iter().flatten().cloned());
        }
        if state.l7.reported.get(key) != Some(&texts) {
            let before: HashSet<String> = state
                .l7
                .reported
                .get(key)
                .map(|v| v.iter().cloned().collect())
                .unwrap_or_default();
            for p in &problems {
                if before.contains(&p.message) {
                    continue;
                }
                event(problem_notice(p, Target::Ingress));
            }
            for p in &parts {
                for t in state.l7.part_notices.get(p).into_iter().flatten() {
                    if !before.contains(t) {
                        event(Notice::warning("AviError", t.clone()));
                    }
                }
            }
            state.l7.reported.insert(key.clone(), texts);
        }

        // Hosts programmed (their part applied and their VIP known): a Normal Event per new or moved host.
        let mut lines: BTreeSet<String> = BTreeSet::new();
        for h in &hosts {
            let part = l7::part_of(&h.host, self.settings.shard);
            let ips = vips.get(&h.vip_name).cloned().unwrap_or_default();
            if ips.is_empty() || !state.l7.applied.get(&part).copied().unwrap_or(false) {
                continue;
            }
            let ips: Vec<String> = ips.iter().map(ToString::to_string).collect();
            let proto = if h.tls { "HTTP and HTTPS" } else { "HTTP" };
            lines.insert(format!(
                "host {} is served by virtual service {} on the Avi controller (VIP {}, {proto})",
                h.host,
                h.vs_name,
                ips.join(", ")
            ));
        }
        let before = state.l7.announced.get(key).cloned().unwrap_or_default();
        for l in lines.difference(&before) {
            event(Notice::normal("Synced", l.clone()));
        }
        if lines.is_empty() {
            state.l7.announced.remove(key);
        } else {
            state.l7.announced.insert(key.clone(), lines);
        }
    }

    /// Status and Events for the Services of one group, queued in `out`.
    fn report(
        &self,
        state: &mut State,
        g: &GroupId,
        desired: &L4Desired,
        group_notices: &[Notice],
        vs_written: Option<(String, bool)>,
        out: &mut Outbox,
    ) {
        let mut outcomes: Vec<&ServiceOutcome> = desired.outcomes.iter().collect();
        // Services that left ako (or the group) while they had a status from ako: it is removed.
        let in_outcomes: HashSet<&ObjKey> = outcomes.iter().map(|o| &o.key).collect();
        let gone: Vec<ServiceOutcome> = state
            .status_written
            .keys()
            .filter(|k| !in_outcomes.contains(k) && !state.group_of.contains_key(*k))
            .map(|k| ServiceOutcome::left_out(k.clone(), Vec::new()))
            .collect();
        outcomes.extend(gone.iter());

        for o in outcomes {
            let Some(svc) = self.view.service(&o.key) else {
                state.status_written.remove(&o.key);
                continue;
            };
            let vips: Vec<IpAddr> = o
                .vs_name
                .as_ref()
                .and_then(|n| state.cache.get(&(Kind::VsVip.obj_type(), n.clone())))
                .filter(|c| c.created_by.as_deref() == Some(&*self.owner))
                .map(|c| c.vips.to_vec())
                .unwrap_or_default();
            let want = l4::load_balancer_ingress(o, &vips);
            let have = service_status(&svc);
            // Every outcome is a Service ako is the load balancer of, or one it published a status for; an
            // address ako did not write is never removed.
            if !same_status(have, &want) {
                if !want.is_empty() || may_clear(state, &state.status_written, &o.key, have) {
                    out.statuses
                        .push((vec![g.clone()], Target::Service, o.key.clone(), want));
                }
            } else if !want.is_empty() {
                state
                    .status_written
                    .insert(o.key.clone(), status_print(&want));
            }
            let uid = svc.metadata.uid.clone();
            let mut event = |n: Notice| {
                out.events
                    .push((Target::Service, o.key.clone(), uid.clone(), n))
            };
            // Problems: announced when they change, not at every pass.
            let texts: Vec<String> = o.problems.iter().map(|p| p.message.clone()).collect();
            if state.reported.get(&o.key) != Some(&texts) {
                for p in &o.problems {
                    event(problem_notice(p, Target::Service));
                }
                state.reported.insert(o.key.clone(), texts);
            }
            for n in group_notices {
                event(n.clone());
            }
            if let (Some((vs, created)), Some(_)) = (&vs_written, &o.vs_name) {
                let vip = vips
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                let verb = if *created { "created" } else { "updated" };
                event(Notice::normal(
                    "Synced",
                    format!("virtual service {vs} {verb} on the Avi controller (VIP {vip})"),
                ));
            }
        }
    }

    /// Writes an outbox's statuses concurrently (touching no state, so it can run beside the next batch's
    /// writes).
    async fn write_statuses(&self, out: Outbox) -> Written {
        let sink = &self.sink;
        let statuses = futures::stream::iter(out.statuses.into_iter().map(
            |(groups, target, key, want)| async move {
                let res = sink.status(target, &key, &want).await;
                let print = (!want.is_empty()).then(|| status_print(&want));
                (groups, target, key, print, res)
            },
        ))
        .buffer_unordered(self.settings.concurrency.max(1) * 2)
        .collect()
        .await;
        Written {
            statuses,
            events: out.events,
            applied_ok: out.applied_ok,
        }
    }

    /// Records what the status writes did (a failed one schedules its groups again) and queues the Events.
    fn settle(&self, state: &mut State, written: Written) {
        let mut failed_groups: HashSet<GroupId> = HashSet::new();
        let mut events = written.events;
        for (groups, target, key, print, res) in written.statuses {
            let written = match target {
                Target::Service => &mut state.status_written,
                Target::Ingress => &mut state.l7.status_written,
            };
            match res {
                Ok(()) => {
                    state.stats.status_patches += 1;
                    match print {
                        None => written.remove(&key),
                        Some(p) => written.insert(key, p),
                    };
                }
                Err(error) => {
                    tracing::warn!(kind = ?target, object = %key, %error, "status not written; retrying");
                    if groups.is_empty() {
                        tracing::warn!(kind = ?target, object = %key, "the next full sync writes this status");
                    }
                    // Never only a log line: the object says why its address is not shown.
                    events.push((
                        target,
                        key.clone(),
                        None,
                        Notice::warning(
                            "StatusNotWritten",
                            format!(
                                "status.loadBalancer could not be written: {}; ako retries with backoff",
                                cap_text(&error, 300)
                            ),
                        ),
                    ));
                    for g in groups {
                        if failed_groups.insert(g.clone()) {
                            state.retries.failed(&g, retry::Remedy::Transient, None);
                            self.metrics.retried(retry::Remedy::Transient);
                        }
                    }
                }
            }
        }
        for g in written.applied_ok {
            if !failed_groups.contains(&g) {
                state.retries.succeeded(&g);
            }
        }
        for e in events {
            self.events.send(e);
        }
    }
}

/// Status writes done, with the Events of the same pass still to queue.
struct Written {
    statuses: Vec<StatusWrite>,
    events: Vec<QueuedEvent>,
    applied_ok: Vec<GroupId>,
}

/// One status write: the groups to retry if it failed, what it was written to, the fingerprint of what it wrote
/// (none: it cleared the status), and how it went.
type StatusWrite = (
    Vec<GroupId>,
    Target,
    ObjKey,
    Option<u64>,
    Result<(), String>,
);

/// Restores of an overwritten status done at once before backing off ([`Reconciler::status_restore`]).
const STATUS_RESTORES_AT_ONCE: u32 = 2;
/// Overwrites further apart than this start counting again.
const STATUS_FIGHT_WINDOW: Duration = Duration::from_secs(60);

/// Groups per pass of a full sync.
const FULL_SYNC_BATCH: usize = 256;

/// L7 parts per pass of a full sync.
const L7_PARTS_PER_BATCH: usize = 1;

/// Writes of one kind applied at the same time within a group (an L7 part creates thousands of pools).
const WAVE_CONCURRENCY: usize = 8;

/// Applies the steps of one group in plan order, stopping at the first failure. Consecutive steps of the same
/// kind and direction (a *wave*: say, every pool to create) depend on none of each other and are applied
/// concurrently; the next wave starts only once the previous one fully succeeded, so a reference never names
/// an object not yet written and no object is deleted while still referenced.
async fn apply_group<A: AviApi>(
    avi: A,
    owner: Arc<str>,
    identity: ako_core::ownership::Identity,
    group: GroupId,
    steps: Vec<Step>,
    fence: Fence,
) -> GroupResult {
    let mut applied = Vec::new();
    let mut waves: Vec<Vec<Step>> = Vec::new();
    for step in steps.into_iter().filter(Step::is_write) {
        let key = (matches!(step, Step::Delete { .. }), step.kind());
        match waves.last_mut() {
            Some(w)
                if w.first()
                    .is_some_and(|f| (matches!(f, Step::Delete { .. }), f.kind()) == key) =>
            {
                w.push(step);
            }
            _ => waves.push(vec![step]),
        }
    }
    for wave in waves {
        // Each answer is reduced to its cached form as it arrives: a wave of a thousand parsed answers would
        // otherwise be held at once.
        let results: Vec<(Step, Result<Option<Cached>, AviError>)> = futures::stream::iter(wave)
            .map(|step| {
                let avi = &avi;
                let fence = &fence;
                let owner = &owner;
                let identity = &identity;
                async move {
                    if !fence() {
                        return (step, Err(AviError::Fenced));
                    }
                    let r = apply::execute(avi, &step, identity).await.map(|a| match a {
                        Applied::Stored(e) => Some(Cached::of(&e, owner)),
                        Applied::Deleted => None,
                    });
                    (lighten(step), r)
                }
            })
            .buffer_unordered(WAVE_CONCURRENCY)
            .collect()
            .await;
        let mut error = None;
        for (step, r) in results {
            match r {
                Ok(cached) => applied.push((step, cached)),
                Err(e) => {
                    if error.is_none() {
                        error = Some((step, e));
                    }
                }
            }
        }
        if error.is_some() {
            return GroupResult {
                group,
                applied,
                error,
            };
        }
    }
    GroupResult {
        group,
        applied,
        error: None,
    }
}

/// A group as logs and messages name it: `Service shop/web`, `shared VIP shop/web-key`, `L7 shard 3`, `host a.b`.
fn group_name(g: &GroupId) -> String {
    match g {
        GroupId::Service(sg) if sg.shared => format!("shared VIP {}/{}", sg.namespace, sg.base),
        GroupId::Service(sg) => format!("Service {}/{}", sg.namespace, sg.base),
        GroupId::L7(p) => format!("L7 {p}"),
    }
}

/// Unknown inputs as one line.
fn join(unknown: &[safety::Unknown]) -> String {
    unknown
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// `text` cut to at most `max` bytes (at a character boundary), with an ellipsis when cut.
fn cap_text(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// An unbounded receiver as a stream of changes.
fn changes_in(rx: mpsc::UnboundedReceiver<Change>) -> impl futures::Stream<Item = Change> {
    tokio_stream_unbounded(rx)
}

/// Forwards changes to the worker, counting each on the heartbeat (the worker counts it taken).
async fn count_changes(
    input: impl futures::Stream<Item = Change>,
    out: mpsc::UnboundedSender<Change>,
    heartbeat: Arc<metrics::Heartbeat>,
) {
    let mut input = std::pin::pin!(input);
    while let Some(c) = input.next().await {
        heartbeat.queued();
        if out.send(c).is_err() {
            return;
        }
    }
}

/// Aborts a background task when dropped (the event publisher ends with the reconciler; `ako run`'s watchers).
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The Warning Event of a translation problem: `Invalid*` for what the webhook would deny, `*Warning` otherwise,
/// with the field when there is one.
fn problem_notice(p: &intent::Problem, target: Target) -> Notice {
    let reason = match (p.severity == Severity::Deny, target) {
        (true, Target::Service) => "InvalidService",
        (false, Target::Service) => "ServiceWarning",
        (true, Target::Ingress) => "InvalidIngress",
        (false, Target::Ingress) => "IngressWarning",
    };
    let field = if p.field.is_empty() {
        String::new()
    } else {
        format!(" ({})", p.field)
    };
    Notice::warning(reason, format!("{}{field}", p.message))
}

/// Remembers the addresses of one of ako's VsVips.
fn remember_vips(known: &mut HashSet<IpAddr>, c: &Cached, owner: &str) {
    if c.kind == Kind::VsVip && c.created_by.as_deref() == Some(owner) {
        known.extend(c.vips.iter().copied());
    }
}

/// Whether a status may be removed: ako wrote exactly it, or every entry is an address of one of ako's VsVips.
/// Another load balancer's status (or a hand-written one) stays.
fn may_clear(
    state: &State,
    written: &HashMap<ObjKey, u64>,
    key: &ObjKey,
    have: &[LoadBalancerIngress],
) -> bool {
    if written.get(key) == Some(&status_print(have)) {
        return true;
    }
    let ours = !have.is_empty()
        && have.iter().all(|i| {
            i.ip.as_deref()
                .and_then(|ip| ip.parse::<IpAddr>().ok())
                .is_some_and(|ip| state.known_vips.contains(&ip))
        });
    if !ours {
        tracing::info!(object = %key, "status not written by ako; left as it is");
    }
    ours
}

/// A Service's `status.loadBalancer.ingress` (empty if it has none).
fn service_status(svc: &Service) -> &[LoadBalancerIngress] {
    svc.status
        .as_ref()
        .and_then(|st| st.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_deref())
        .unwrap_or_default()
}

/// Whether ako wrote a status for `key` and the one now shown differs from it (someone else's edit; ako's own
/// write coming back matches).
fn overwritten(written: &HashMap<ObjKey, u64>, key: &ObjKey, now: &[LoadBalancerIngress]) -> bool {
    written.get(key).is_some_and(|w| *w != status_print(now))
}

/// A status's fingerprint, over what [`same_status`] compares (each entry's address and hostname, in order).
fn status_print(list: &[LoadBalancerIngress]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    list.len().hash(&mut h);
    for i in list {
        i.ip.hash(&mut h);
        i.hostname.hash(&mut h);
    }
    h.finish()
}

fn same_status(have: &[LoadBalancerIngress], want: &[LoadBalancerIngress]) -> bool {
    have.len() == want.len()
        && have
            .iter()
            .zip(want)
            .all(|(h, w)| h.ip == w.ip && h.hostname == w.hostname)
}

/// Exponential backoff: `base * 2^(attempts-1)`, at most `max`.
pub fn backoff(base: Duration, max: Duration, attempts: u32) -> Duration {
    let factor = 1u32
        .checked_shl(attempts.saturating_sub(1).min(20))
        .unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(max)
}

/// Translates Services with their endpoints from the view.
fn translate(
    view: &View,
    services: &[Arc<Service>],
    nodes: &[l4::NodeInfo],
    cfg: &Config,
    placement: &Placement,
) -> L4Desired {
    let endpoints: Vec<Vec<l4::EndpointGroup>> = services
        .iter()
        .map(|s| view.endpoints(&ObjKey::of(&s.metadata)))
        .collect();
    let inputs: Vec<ServiceInput<'_>> = services
        .iter()
        .zip(&endpoints)
        .map(|(s, e)| ServiceInput {
            service: s,
            endpoints: e,
        })
        .collect();
    l4::translate(&inputs, nodes, cfg, placement)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the Events it is asked to publish.
    #[derive(Default)]
    struct CountingSink(AtomicUsize);

    impl Sink for CountingSink {
        fn status<'a>(
            &'a self,
            _target: Target,
            _key: &'a ObjKey,
            _ingress: &'a [LoadBalancerIngress],
        ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
            Box::pin(async { Ok(()) })
        }
        fn event<'a>(
            &'a self,
            _target: Target,
            _key: &'a ObjKey,
            _uid: Option<&'a str>,
            _notice: &'a Notice,
        ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
            self.0.fetch_add(1, Ordering::AcqRel);
            Box::pin(async {})
        }
    }

    #[tokio::test]
    async fn events_queued_during_a_full_sync_are_published_when_it_ends() {
        let sink = Arc::new(CountingSink::default());
        let progress = Arc::new(watch::Sender::new(Progress::default()));
        let queue = EventQueue::new();
        let _publisher = queue.spawn(sink.clone(), progress).map(AbortOnDrop);
        let event = |name: &str| {
            (
                Target::Service,
                ObjKey::new("vmug", name),
                None,
                Notice::normal("Synced", "virtual service created"),
            )
        };
        queue.gate(false);
        for i in 0..10 {
            queue.send(event(&format!("svc-{i}")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            sink.0.load(Ordering::Acquire),
            0,
            "held while the gate is closed"
        );
        assert_eq!(queue.pending.load(Ordering::Acquire), 10);
        queue.gate(true);
        for _ in 0..200 {
            if queue.pending.load(Ordering::Acquire) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            sink.0.load(Ordering::Acquire),
            10,
            "all published once open"
        );
        // Open: published at once.
        queue.send(event("later"));
        for _ in 0..200 {
            if sink.0.load(Ordering::Acquire) == 11 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(sink.0.load(Ordering::Acquire), 11);
    }

    #[test]
    fn cached_bodies_read_back_exactly_and_compress_against_their_kind() {
        let pool = |i: usize| {
            Existing {
            kind: Kind::Pool,
            uuid: format!("pool-{i:08x}-5d7f-4a4e-9d3c-27c1a0f3b2e1"),
            name: format!("veba-of--ns-app{i}-80"),
            created_by: Some("ako-veba-of".into()),
            body: serde_json::json!({
                "name": format!("veba-of--ns-app{i}-80"),
                "url": format!("https://ctl.example/api/pool/pool-{i:08x}-5d7f-4a4e-9d3c-27c1a0f3b2e1"),
                "tenant_ref": "https://ctl.example/api/tenant/admin",
                "cloud_ref": "https://ctl.example/api/cloud/cloud-8d0e3b5e-33a4-4b3e-9b1a-0e0c4e1f5a11",
                "lb_algorithm": "LB_ALGORITHM_LEAST_CONNECTIONS",
                "default_server_port": 80, "enabled": true, "graceful_disable_timeout": 1,
                "connection_ramp_duration": 10, "max_concurrent_connections_per_server": 0,
                "servers": [{"ip": {"addr": format!("10.244.0.{}", i % 250), "type": "V4"}, "port": 8080,
                             "enabled": true, "ratio": 1, "hostname": format!("10.244.0.{}", i % 250)}],
                "created_by": "ako-veba-of",
                "markers": [{"key": "clustername", "values": ["veba-of"]}],
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        }
        };
        let texts: usize = (0..50)
            .map(|i| serde_json::to_vec(&pool(i).body).map_or(0, |t| t.len()))
            .sum();
        let owner: Arc<str> = "ako-veba-of".into();
        let mut packed = 0;
        for i in 0..50 {
            let e = pool(i);
            let c = Cached::of(&e, &owner);
            packed += c.json.len();
            let back = c.existing(&e.name);
            assert_eq!(back.body, e.body, "body {i} reads back");
            assert_eq!((back.uuid, back.created_by), (e.uuid, e.created_by));
        }
        // Alone, such a body compresses by well under half; against the first body of its kind, by far more.
        assert!(
            packed * 3 < texts,
            "{packed} bytes for {texts} bytes of text"
        );
    }

    #[test]
    fn a_cached_body_that_does_not_read_back_is_none_not_empty() {
        let owner: Arc<str> = "ako-c".into();
        // Not a pool: the first body of a kind cached in this process is that kind's dictionary, and the
        // compression test measures pools.
        let mut c = Cached::of(
            &Existing {
                kind: Kind::L4PolicySet,
                uuid: "pool-1".into(),
                name: "c--p".into(),
                created_by: Some("ako-c".into()),
                body: serde_json::json!({"name": "c--p", "enabled": true})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            },
            &owner,
        );
        assert!(c.body().is_some());
        c.json = vec![0xff; 12].into_boxed_slice();
        assert_eq!(
            c.body(),
            None,
            "damage is reported, never read as an empty body"
        );
        assert!(c.existing("c--p").body.is_empty(), "enough for a deletion");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let base = Duration::from_millis(500);
        let max = Duration::from_secs(300);
        let got: Vec<u64> = (1..=12)
            .map(|n| backoff(base, max, n).as_millis() as u64)
            .collect();
        assert_eq!(
            got,
            [
                500, 1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 300000, 300000
            ]
        );
        assert_eq!(backoff(base, max, u32::MAX), max);
    }

    #[test]
    fn shared_vip_services_form_one_group_and_others_none() {
        let cfg = Config::default();
        let svc = |yaml: &str| -> Service { serde_yaml_ng::from_str(yaml).expect("yaml") };
        let a = svc(
            "metadata: {name: a, namespace: n, annotations: {ako.vmware.com/enable-shared-vip: web}}\nspec: {type: LoadBalancer}",
        );
        let b = svc("metadata: {name: b, namespace: n}\nspec: {type: LoadBalancer}");
        let c = svc("metadata: {name: c, namespace: n}\nspec: {type: ClusterIP}");
        let view = View::default();
        let scope = Scope::default();
        assert_eq!(
            group_of(&a, &cfg, &scope, &view),
            Some(GroupId::Service(ServiceGroup {
                namespace: "n".into(),
                base: "web".into(),
                shared: true
            }))
        );
        assert_eq!(
            group_of(&b, &cfg, &scope, &view),
            Some(GroupId::Service(ServiceGroup {
                namespace: "n".into(),
                base: "b".into(),
                shared: false
            }))
        );
        assert_eq!(group_of(&c, &cfg, &scope, &view), None);
        let blocked = Scope {
            selector: None,
            blocked: vec!["n".into()],
        };
        assert_eq!(group_of(&b, &cfg, &blocked, &view), None);
    }
}
