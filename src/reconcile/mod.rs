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

// The worker, by what each part owns (one `impl Reconciler` split across them):
mod cache; // the Avi objects ako owns, kept between passes
mod events; // the Event publisher and the change stream
mod full_sync; // full sync, orphan scan, deletion guard
mod groups; // a group's translation and plan
mod pass; // one pass: plan, apply, record
mod regroup; // from changes to the groups they touch
mod routes; // ClusterIP mode's static routes on the VRF
mod rules; // HostRules and HTTPRules: verdicts, statuses, the hosts they touch
mod state; // what the worker owns
mod status; // status and Events after a pass
mod worker; // the loop

use cache::*;
use events::*;
use state::*;
use status::*;

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

use crate::k8s::changes::ChangeReceiver;
use crate::k8s::observe::{SecretReads, View};
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
    /// ClusterIP mode: sync static routes to the Nodes' pod CIDRs on the VRF (not `disableStaticRouteSync`).
    pub static_routes: bool,
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
            static_routes: false,
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
    /// Times the worker took the queued changes (all of them at once).
    pub changes_taken: u64,
    /// Times the worker went back to waiting (for a change, leadership, a retry or the next full sync). A worker
    /// that spins on a past deadline would count thousands a second.
    pub waits: u64,
}

/// What the worker publishes after each pass.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub stats: Stats,
    /// Whether a full sync has run (the view was synced and every group passed once).
    pub converged_once: bool,
    /// Whether ako's objects on the controller are read completely (the last full sync's read succeeded; a
    /// failed one is retried with backoff).
    pub controller_read: bool,
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

/// Aborts a background task when dropped (the event publisher ends with the reconciler; `ako run`'s watchers).
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Exponential backoff: `base * 2^(attempts-1)`, at most `max`.
pub fn backoff(base: Duration, max: Duration, attempts: u32) -> Duration {
    let factor = 1u32
        .checked_shl(attempts.saturating_sub(1).min(20))
        .unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::regroup::group_of;

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
