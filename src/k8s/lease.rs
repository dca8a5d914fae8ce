//! High availability: leader election on a `coordination.k8s.io/v1` Lease (`ako-lease-lock` in ako's
//! namespace). Several replicas run; exactly one holds the Lease and reconciles (writes to Avi and to Kubernetes
//! status); all serve the webhook. A single replica runs with [`LeaderHandle::always`] and creates no Lease.
//!
//! # Fencing by time
//! A leader must stop writing *before* another replica can start. The leader records the monotonic instant
//! `t_send` at which it *sends* each renewal (or the acquiring write); once the server accepts it, the leader
//! considers itself leader until `t_send + renew_deadline` and not one moment longer, whether or not its
//! background task is still running: [`LeaderHandle::is_leader`] compares that deadline with the clock, so a
//! stuck or cut-off replica turns itself into a follower on time even if its renewal request never returns.
//!
//! Candidates never trust the holder's wall clock: like client-go, a candidate measures expiry from the local
//! instant at which it first *observed* the current record (its `resourceVersion`), and may take the Lease only
//! `lease_duration` after that. A record is observed no earlier than it was written, hence no earlier than its
//! `t_send`, so a candidate can take over no earlier than `t_send + lease_duration`, strictly after the old
//! leader's `t_send + renew_deadline`. The difference (`lease_duration - renew_deadline`, 5 s with AKO's
//! figures) absorbs clock-rate differences and a write that was already under way at the deadline; callers
//! can bound their writes with [`LeaderHandle::remaining`]. Every write to the Lease is an update guarded by
//! the `resourceVersion` that was read (optimistic concurrency), so two candidates cannot both take it.
//!
//! # Why not `kube-lease-manager`
//! `kube-lease-manager` 0.13.1 is compatible with kube 5, but its leadership flag only changes when a
//! `changed()` call returns: while renewals fail it keeps reporting "leader" and retries with back-off, and it
//! has no renew deadline, so it cannot fence by time as required here. It also computes expiry from the
//! holder's `renewTime` (wall clocks of two nodes) and only supports whole seconds. This module is a small
//! implementation of client-go's algorithm directly on `Api<Lease>`, with the strict deadline added.
//!
//! # Use
//! [`start`] (or [`LeaderElection::new`] + [`spawn`](LeaderElection::spawn)) gives a [`LeaderHandle`]. The
//! reconciler checks [`is_leader`](LeaderHandle::is_leader) right before each write (an atomic load and a clock
//! read), waits with [`changed`](LeaderHandle::changed) / [`wait_leader`](LeaderHandle::wait_leader) to pause
//! and resume, and calls [`step_down`](LeaderHandle::step_down) on shutdown so another replica takes over at
//! once instead of after a lease duration. The task also releases the Lease when every handle is dropped.
//! Timings default to AKO's: lease duration 15 s, renew deadline 10 s, retry period 2 s. RBAC: `get`, `create`
//! and `update` on `leases.coordination.k8s.io` in ako's namespace.
//!
//! Logs (target `ako::k8s::lease`): `acquired leadership` (info), `lost leadership` with the reason (warn),
//! `stepped down` (info); failed Lease requests are warnings.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};
use rand::Rng;
use tokio::sync::{mpsc, oneshot, watch};

/// The Lease's name, as in AKO.
pub const LEASE_NAME: &str = "ako-lease-lock";

/// The field manager recorded on the Lease's writes.
const FIELD_MANAGER: &str = "ako-leader-election";

/// Candidates retry after `retry_period * (1 + random[0, JITTER))`, like client-go's `JitterUntil(.., 1.2)`.
const JITTER: f64 = 0.2;

mod rules;
#[allow(clippy::wildcard_imports)]
use rules::*;

/// Leader-election errors.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The timings violate `0 < retry_period < renew_deadline < lease_duration`.
    #[error("invalid leader-election timings: {0}")]
    InvalidTimings(&'static str),
    /// The API server refused or failed a Lease request.
    #[error("Lease {lease}: {source}")]
    Api {
        lease: String,
        #[source]
        source: kube::Error,
    },
    /// A Lease request did not complete in time.
    #[error("Lease {lease}: request timed out")]
    Timeout { lease: String },
}

/// Lease duration, renew deadline and retry period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    lease_duration: Duration,
    renew_deadline: Duration,
    retry_period: Duration,
}

impl Timings {
    /// Validates `0 < retry_period < renew_deadline < lease_duration` and `lease_duration >= 1 s` (the Lease
    /// records whole seconds).
    pub fn new(
        lease_duration: Duration,
        renew_deadline: Duration,
        retry_period: Duration,
    ) -> Result<Timings, LeaseError> {
        if retry_period.is_zero() {
            return Err(LeaseError::InvalidTimings(
                "the retry period must be positive",
            ));
        }
        if retry_period >= renew_deadline {
            return Err(LeaseError::InvalidTimings(
                "the retry period must be shorter than the renew deadline",
            ));
        }
        if renew_deadline >= lease_duration {
            return Err(LeaseError::InvalidTimings(
                "the renew deadline must be shorter than the lease duration",
            ));
        }
        if lease_duration < Duration::from_secs(1) {
            return Err(LeaseError::InvalidTimings(
                "the lease duration must be at least one second",
            ));
        }
        Ok(Timings {
            lease_duration,
            renew_deadline,
            retry_period,
        })
    }

    /// How long candidates wait after observing a record before they may take the Lease.
    pub fn lease_duration(&self) -> Duration {
        self.lease_duration
    }

    /// How long after sending its last accepted renewal the leader stays leader.
    pub fn renew_deadline(&self) -> Duration {
        self.renew_deadline
    }

    /// How often the leader renews and candidates retry.
    pub fn retry_period(&self) -> Duration {
        self.retry_period
    }

    /// `leaseDurationSeconds` written on the Lease (rounded up).
    fn lease_duration_seconds(&self) -> i32 {
        let d = self.lease_duration;
        let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        i32::try_from(secs).unwrap_or(i32::MAX)
    }

    /// A candidate's pause between attempts: the retry period plus up to 20 % jitter.
    fn jittered_retry(&self, unit: f64) -> Duration {
        self.retry_period
            .mul_f64(1.0 + JITTER * unit.clamp(0.0, 1.0))
    }
}

impl Default for Timings {
    /// AKO's figures: 15 s / 10 s / 2 s.
    fn default() -> Timings {
        Timings {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// The identity recorded as holder: the pod name (env `POD_NAME`), else the hostname, plus a random suffix so
/// that a restarted container never mistakes its predecessor's record for its own.
pub fn default_identity() -> String {
    let pod = std::env::var("POD_NAME").ok();
    let host = std::env::var("HOSTNAME").ok().or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
    });
    let suffix: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(8)
        .map(|b| char::from(b).to_ascii_lowercase())
        .collect();
    identity_from(pod, host, &suffix)
}

fn identity_from(pod: Option<String>, host: Option<String>, suffix: &str) -> String {
    let base = pod
        .filter(|p| !p.trim().is_empty())
        .or(host.filter(|h| !h.trim().is_empty()))
        .unwrap_or_else(|| "ako".to_string());
    format!("{}_{suffix}", base.trim())
}

/// The leadership deadline, shared between the election task and every handle: readable without locks.
#[derive(Debug)]
struct Validity {
    base: Instant,
    /// Nanoseconds after `base` until which this replica leads; 0: not leader; `u64::MAX`: unbounded.
    until: AtomicU64,
    /// Set by `step_down`: no extension counts any more.
    closed: AtomicBool,
}

impl Validity {
    fn new(base: Instant) -> Validity {
        Validity {
            base,
            until: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        }
    }

    fn unbounded(base: Instant) -> Validity {
        Validity {
            base,
            until: AtomicU64::new(u64::MAX),
            closed: AtomicBool::new(false),
        }
    }

    /// Leader until `until` (never shortens an existing deadline).
    fn extend(&self, until: Instant) {
        let nanos = until.saturating_duration_since(self.base).as_nanos();
        let nanos = u64::try_from(nanos)
            .unwrap_or(u64::MAX - 1)
            .min(u64::MAX - 1);
        self.until.fetch_max(nanos, Ordering::AcqRel);
    }

    fn clear(&self) {
        self.until.store(0, Ordering::Release);
    }

    /// Permanently not leader.
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.clear();
    }

    /// The time left at `now`: `None` when not leader, `Duration::MAX` when unbounded.
    fn remaining_at(&self, now: Instant) -> Option<Duration> {
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        match self.until.load(Ordering::Acquire) {
            0 => None,
            u64::MAX => Some(Duration::MAX),
            nanos => {
                let until = self.base + Duration::from_nanos(nanos);
                let left = until.saturating_duration_since(now);
                (!left.is_zero()).then_some(left)
            }
        }
    }

    fn is_valid_at(&self, now: Instant) -> bool {
        self.remaining_at(now).is_some()
    }

    /// The deadline, when leading with a bounded one.
    fn deadline(&self) -> Option<Instant> {
        match self.until.load(Ordering::Acquire) {
            0 | u64::MAX => None,
            nanos => Some(self.base + Duration::from_nanos(nanos)),
        }
    }
}

fn is_status(e: &kube::Error, pred: fn(&kube::core::Status) -> bool) -> bool {
    matches!(e, kube::Error::Api(s) if pred(s))
}

#[derive(Debug)]
struct Shared {
    identity: String,
    lease: String,
    validity: Validity,
}

/// A step-down request; answered once the Lease is released (or could not be).
type StepDown = oneshot::Sender<()>;

/// A leader elector, not yet running: [`LeaderElection::spawn`] starts it.
#[derive(Debug)]
pub struct LeaderElection {
    api: Api<Lease>,
    name: String,
    identity: String,
    timings: Timings,
}

impl LeaderElection {
    /// An elector for the Lease `lease_name` in `namespace`, holding it as `identity` (see
    /// [`default_identity`]).
    pub fn new(
        client: Client,
        namespace: &str,
        lease_name: &str,
        identity: impl Into<String>,
        timings: Timings,
    ) -> LeaderElection {
        LeaderElection {
            api: Api::namespaced(client, namespace),
            name: lease_name.to_string(),
            identity: identity.into(),
            timings,
        }
    }

    /// Starts the election task on the current tokio runtime. It runs until [`LeaderHandle::step_down`] or
    /// until every handle is dropped; both release the Lease if this replica holds it.
    pub fn spawn(self) -> LeaderHandle {
        let shared = Arc::new(Shared {
            identity: self.identity.clone(),
            lease: format!("{}/{}", self.api.namespace().unwrap_or_default(), self.name),
            validity: Validity::new(Instant::now()),
        });
        let (tx, rx) = watch::channel(false);
        let (control_tx, control_rx) = mpsc::channel(4);
        let task = Elector {
            api: self.api,
            name: self.name,
            timings: self.timings,
            shared: Arc::clone(&shared),
            tx,
            post: PostParams {
                field_manager: Some(FIELD_MANAGER.to_string()),
                ..PostParams::default()
            },
        };
        tokio::spawn(task.run(control_rx));
        LeaderHandle {
            shared,
            rx,
            control: Some(control_tx),
            last: false,
            always_tx: None,
        }
    }
}

/// The gate for this process: with leader election on, an elector for [`LEASE_NAME`] in `namespace` under
/// [`default_identity`], started on the current runtime; off (a single replica), [`LeaderHandle::always`].
pub fn start(
    client: Client,
    namespace: &str,
    leader_election: bool,
    timings: Timings,
) -> LeaderHandle {
    if leader_election {
        LeaderElection::new(client, namespace, LEASE_NAME, default_identity(), timings).spawn()
    } else {
        tracing::info!("leader election off: this replica always reconciles");
        LeaderHandle::always()
    }
}

/// Where this replica stands; cheap to clone, one per consumer.
#[derive(Debug, Clone)]
pub struct LeaderHandle {
    shared: Arc<Shared>,
    rx: watch::Receiver<bool>,
    control: Option<mpsc::Sender<StepDown>>,
    /// The value `changed` last returned.
    last: bool,
    /// `always` mode: the channel's sender, kept open; `step_down` sends false on it.
    always_tx: Option<Arc<watch::Sender<bool>>>,
}

impl LeaderHandle {
    /// Single-replica mode: always leader (until `step_down`), no Lease.
    pub fn always() -> LeaderHandle {
        let (tx, rx) = watch::channel(true);
        LeaderHandle {
            shared: Arc::new(Shared {
                identity: default_identity(),
                lease: String::new(),
                validity: Validity::unbounded(Instant::now()),
            }),
            rx,
            control: None,
            last: false,
            always_tx: Some(Arc::new(tx)),
        }
    }

    /// Whether this replica may write now. Turns false at the renew deadline even if the election task is stuck
    /// or gone, so strictly before any other replica can take the Lease.
    pub fn is_leader(&self) -> bool {
        self.shared.validity.is_valid_at(Instant::now())
    }

    /// How long this replica stays leader unless it renews: `None` when not leader, `Duration::MAX` in
    /// [`always`](Self::always) mode. Bound a write by it to keep it inside the leadership.
    pub fn remaining(&self) -> Option<Duration> {
        self.shared.validity.remaining_at(Instant::now())
    }

    /// The holder identity this replica writes on the Lease.
    pub fn identity(&self) -> &str {
        &self.shared.identity
    }

    /// The election task's view (true on acquiring, false on losing or stepping down). It may lag
    /// [`is_leader`](Self::is_leader) by a moment; [`changed`](Self::changed) does not.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.rx.clone()
    }

    /// Waits until [`is_leader`](Self::is_leader) differs from the value this handle last returned (initially
    /// false) and returns it. Losing by deadline is noticed even without the task. After a step-down, waiting
    /// for leadership never ends.
    pub async fn changed(&mut self) -> bool {
        loop {
            let now = self.is_leader();
            if now != self.last {
                self.last = now;
                return now;
            }
            let open = self.rx.has_changed().is_ok();
            if now {
                match self.shared.validity.deadline() {
                    Some(deadline) => {
                        let deadline = tokio::time::Instant::from_std(deadline);
                        if open {
                            tokio::select! {
                                _ = self.rx.changed() => {}
                                _ = tokio::time::sleep_until(deadline) => {}
                            }
                        } else {
                            tokio::time::sleep_until(deadline).await;
                        }
                    }
                    // Unbounded (always): only a step-down ends it, and it sends on the channel.
                    None if open => {
                        let _ = self.rx.changed().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            } else if open {
                if self.rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            } else {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Waits until this replica leads.
    pub async fn wait_leader(&mut self) {
        while !self.is_leader() {
            self.changed().await;
        }
        self.last = true;
    }

    /// Stops leading at once and for good, then releases the Lease so another replica takes over without
    /// waiting for it to expire. Returns when the release is done (bounded by the renew deadline).
    pub async fn step_down(&self) {
        self.shared.validity.close();
        if let Some(tx) = &self.always_tx {
            tx.send_replace(false);
        }
        let Some(control) = &self.control else {
            tracing::info!(identity = %self.shared.identity, "stepped down (single replica, no lease)");
            return;
        };
        let (ack_tx, ack_rx) = oneshot::channel();
        if control.send(ack_tx).await.is_ok() {
            let _ = ack_rx.await;
        }
    }
}

/// The election task.
struct Elector {
    api: Api<Lease>,
    name: String,
    timings: Timings,
    shared: Arc<Shared>,
    tx: watch::Sender<bool>,
    post: PostParams,
}

/// The task's state: a candidate remembers the record it observed; the leader keeps the Lease it last wrote
/// (its resourceVersion guards the next renewal).
enum Role {
    Follower {
        observed: Option<Observed>,
    },
    Leader {
        lease: Box<Lease>,
        next_attempt: Instant,
    },
}

impl Elector {
    async fn run(self, mut control: mpsc::Receiver<StepDown>) {
        let mut role = Role::Follower { observed: None };
        tracing::info!(identity = %self.shared.identity, lease = %self.shared.lease, "leader election started");
        let ack = loop {
            tokio::select! {
                biased;
                cmd = control.recv() => break cmd,
                () = self.step(&mut role) => {}
            }
        };
        let was_leader = self.shared.validity.is_valid_at(Instant::now());
        self.shared.validity.close();
        self.publish(false);
        match self.release().await {
            Ok(true) => tracing::info!(
                identity = %self.shared.identity, lease = %self.shared.lease, was_leader,
                "stepped down: lease released"
            ),
            Ok(false) => tracing::info!(
                identity = %self.shared.identity, lease = %self.shared.lease, was_leader,
                "stepped down: lease not held"
            ),
            Err(e) => tracing::warn!(
                identity = %self.shared.identity, error = %e, was_leader,
                "stepped down: lease not released; others take over when it expires"
            ),
        }
        if let Some(ack) = ack {
            let _ = ack.send(());
        }
    }

    fn publish(&self, leader: bool) {
        self.tx.send_if_modified(|v| {
            let changed = *v != leader;
            *v = leader;
            changed
        });
    }

    fn lease_err(&self, source: kube::Error) -> LeaseError {
        LeaseError::Api {
            lease: self.shared.lease.clone(),
            source,
        }
    }

    fn timeout_err(&self) -> LeaseError {
        LeaseError::Timeout {
            lease: self.shared.lease.clone(),
        }
    }

    /// One candidate attempt or one renewal, including the pause before the next.
    async fn step(&self, role: &mut Role) {
        match role {
            Role::Follower { observed } => {
                if let Some(lease) = self.try_acquire(observed).await {
                    *role = Role::Leader {
                        lease: Box::new(lease),
                        next_attempt: Instant::now() + self.timings.retry_period,
                    };
                } else {
                    let pause = self.timings.jittered_retry(rand::rng().random::<f64>());
                    tokio::time::sleep(pause).await;
                }
            }
            Role::Leader {
                lease,
                next_attempt,
            } => {
                if let Some(follower) = self.renew(lease, next_attempt).await {
                    *role = follower;
                }
            }
        }
    }

    /// Reads the Lease and takes it when free, released, expired or ours. Returns the written Lease when this
    /// replica now leads.
    async fn try_acquire(&self, observed: &mut Option<Observed>) -> Option<Lease> {
        let limit = self.timings.renew_deadline;
        let current = match tokio::time::timeout(limit, self.api.get_opt(&self.name)).await {
            Ok(Ok(current)) => current,
            Ok(Err(e)) => {
                tracing::warn!(identity = %self.shared.identity, error = %self.lease_err(e), "reading the lease failed");
                return None;
            }
            Err(_) => {
                tracing::warn!(identity = %self.shared.identity, error = %self.timeout_err(), "reading the lease failed");
                return None;
            }
        };
        let now = Instant::now();
        let (base, create) = match current {
            None => {
                let fresh = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: None,
                };
                (fresh, true)
            }
            Some(lease) => {
                let seen = Observed::of(observed.as_ref(), &lease, now);
                let decision = verdict(
                    &seen,
                    &self.shared.identity,
                    self.timings.lease_duration,
                    now,
                );
                *observed = Some(seen);
                if let Verdict::HeldByOther { holder, until } = decision {
                    tracing::debug!(
                        identity = %self.shared.identity, %holder,
                        expires_in_ms = until.saturating_duration_since(now).as_millis() as u64,
                        "lease held by another replica"
                    );
                    return None;
                }
                (lease, false)
            }
        };
        let t_send = Instant::now();
        let wanted = claimed(
            &base,
            &self.shared.identity,
            self.timings.lease_duration_seconds(),
            Timestamp::now(),
        );
        let write = async {
            if create {
                self.api.create(&self.post, &wanted).await
            } else {
                self.api.replace(&self.name, &self.post, &wanted).await
            }
        };
        let written = match tokio::time::timeout(limit, write).await {
            Ok(Ok(written)) => written,
            Ok(Err(e))
                if is_status(&e, kube::core::Status::is_conflict)
                    || is_status(&e, kube::core::Status::is_already_exists) =>
            {
                tracing::debug!(identity = %self.shared.identity, "another replica wrote the lease first");
                return None;
            }
            Ok(Err(e)) => {
                tracing::warn!(identity = %self.shared.identity, error = %self.lease_err(e), "acquiring the lease failed");
                return None;
            }
            Err(_) => {
                tracing::warn!(identity = %self.shared.identity, error = %self.timeout_err(), "acquiring the lease failed");
                return None;
            }
        };
        self.shared
            .validity
            .extend(t_send + self.timings.renew_deadline);
        if !self.shared.validity.is_valid_at(Instant::now()) {
            // The write took longer than the renew deadline: not leader; the next attempt renews the record.
            return None;
        }
        self.publish(true);
        tracing::info!(
            identity = %self.shared.identity, lease = %self.shared.lease,
            previous_holder = holder(&base).unwrap_or(""), transitions = transitions(&written),
            "acquired leadership"
        );
        Some(written)
    }

    /// Renews at the next retry instant. Returns the follower role when leadership is lost: renew deadline
    /// passed without an accepted renewal, or another replica holds the Lease.
    async fn renew(&self, lease: &mut Lease, next_attempt: &mut Instant) -> Option<Role> {
        let Some(deadline) = self.shared.validity.deadline() else {
            return Some(self.lose("not leader any more", None));
        };
        let wake = (*next_attempt).min(deadline);
        tokio::time::sleep_until(tokio::time::Instant::from_std(wake)).await;
        if !self.shared.validity.is_valid_at(Instant::now()) {
            return Some(self.lose("renew deadline passed without an accepted renewal", None));
        }
        let t_send = Instant::now();
        *next_attempt = t_send + self.timings.retry_period;
        let wanted = claimed(
            lease,
            &self.shared.identity,
            self.timings.lease_duration_seconds(),
            Timestamp::now(),
        );
        let until = tokio::time::Instant::from_std(deadline);
        match tokio::time::timeout_at(until, self.api.replace(&self.name, &self.post, &wanted))
            .await
        {
            Ok(Ok(written)) => {
                self.shared
                    .validity
                    .extend(t_send + self.timings.renew_deadline);
                *lease = written;
                tracing::trace!(identity = %self.shared.identity, "lease renewed");
                None
            }
            Ok(Err(e)) if is_status(&e, kube::core::Status::is_conflict) => {
                // Someone wrote the Lease: read who holds it now.
                match tokio::time::timeout_at(until, self.api.get_opt(&self.name)).await {
                    Ok(Ok(Some(current)))
                        if holder(&current) == Some(self.shared.identity.as_str()) =>
                    {
                        *lease = current;
                        None
                    }
                    Ok(Ok(Some(current))) => {
                        let observed = Observed::of(None, &current, Instant::now());
                        let by = holder(&current).unwrap_or("").to_string();
                        Some(self.lose(&format!("the lease was taken by {by:?}"), Some(observed)))
                    }
                    Ok(Ok(None)) => Some(self.lose("the lease was deleted", None)),
                    Ok(Err(e)) => {
                        tracing::warn!(identity = %self.shared.identity, error = %self.lease_err(e), "reading the lease failed");
                        None
                    }
                    Err(_) => {
                        Some(self.lose("renew deadline passed without an accepted renewal", None))
                    }
                }
            }
            Ok(Err(e)) if is_status(&e, kube::core::Status::is_not_found) => {
                Some(self.lose("the lease was deleted", None))
            }
            Ok(Err(e)) => {
                tracing::warn!(identity = %self.shared.identity, error = %self.lease_err(e), "renewing the lease failed");
                None
            }
            Err(_) => Some(self.lose("renew deadline passed without an accepted renewal", None)),
        }
    }

    fn lose(&self, reason: &str, observed: Option<Observed>) -> Role {
        self.shared.validity.clear();
        self.publish(false);
        tracing::warn!(identity = %self.shared.identity, lease = %self.shared.lease, reason, "lost leadership");
        Role::Follower { observed }
    }

    /// Clears the holder if it is this replica. Returns whether a release was written.
    async fn release(&self) -> Result<bool, LeaseError> {
        let limit = self.timings.renew_deadline;
        for _ in 0..3 {
            let current = tokio::time::timeout(limit, self.api.get_opt(&self.name))
                .await
                .map_err(|_| self.timeout_err())?
                .map_err(|e| self.lease_err(e))?;
            let Some(current) = current else {
                return Ok(false);
            };
            if holder(&current) != Some(self.shared.identity.as_str()) {
                return Ok(false);
            }
            let free = released(&current, Timestamp::now());
            let write = self.api.replace(&self.name, &self.post, &free);
            match tokio::time::timeout(limit, write).await {
                Ok(Ok(_)) => return Ok(true),
                Ok(Err(e)) if is_status(&e, kube::core::Status::is_conflict) => continue,
                Ok(Err(e)) => return Err(self.lease_err(e)),
                Err(_) => return Err(self.timeout_err()),
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests;
