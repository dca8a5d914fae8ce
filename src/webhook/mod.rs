//! The HTTPS admission webhook: a thin axum layer around [`ako_core::admission::decide`], with the body read by
//! [`review::read`] and the answer written by [`ako_core::admission::Decision::review_json`].
//!
//! - `POST /validate`, `POST /mutate`: admission.k8s.io/v1 AdmissionReview in and out (TLS only).
//! - Plain health port: `/healthz`, `/readyz` (index synced), `/metrics` (Prometheus text), `/claims?host=H`
//!   (which Ingresses claim a host) and `/claims?vip=IP` (which Services ask for a VIP), oldest first.
//!
//! Malformed bodies get 400 with a message, bodies over 3 MiB get 413; every decision is one audit log line.
//! The admission listener runs on threads of its own ([`Workers`]); the health listener on the caller's runtime.
//! `/claims` lists namespaces, names and hosts, so it is off unless [`AppState::with_claims`] turns it on.
//!
//! Overload ([`Limits`]): every admission request must get a slot (at most `max_in_flight` at once) and be
//! answered within `deadline`, which stays below the webhook configuration's `timeoutSeconds`. Reviews larger
//! than [`LARGE_BODY`] are read under a second, smaller budget (`max_large_in_flight`) and decided on the
//! blocking pool, so a flood of huge objects never holds up the listener thread that answers normal reviews. A
//! request that gets no slot in time, or misses its deadline, is answered 503 with a `Status` saying the webhook
//! is overloaded (the API server puts that message into its error; the validating webhook's failurePolicy Fail
//! then refuses the write, the mutating webhook's Ignore lets it through unmutated), never by a timeout.

pub mod metrics;
pub mod review;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use ako_core::admission::{self, Decision, Mode, Subject};
use ako_core::index::Index;
use ako_core::ownership::Claim;
use metrics::Metrics;
use review::RequestIn;

/// Largest AdmissionReview accepted (the API server's own request limit is 3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Reviews with a body larger than this are decided on idle-priority threads of their own under
/// [`Limits::max_large_in_flight`].
/// A `kubectl apply` of an ordinary Ingress is 2 to 20 KiB.
pub const LARGE_BODY: usize = 64 * 1024;

/// The share of one core that each large-review slot may use: after a large review, its slot stays taken for
/// three times as long as the review took.
pub const LARGE_CPU_SHARE: f64 = 0.25;

/// Overload protection of the admission endpoints (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// From the start of a request to its answer. Keep it below the webhook configuration's `timeoutSeconds`
    /// (5 in webhook-config/), so that the API server gets ako's answer rather than a timeout.
    pub deadline: Duration,
    /// Admission requests served at once; more wait for a slot until their deadline.
    pub max_in_flight: usize,
    /// Large reviews (over [`LARGE_BODY`]) read and decided at once.
    pub max_large_in_flight: usize,
    /// Admission connections open at once (TLS handshakes included); one more is closed at once. A few slow or
    /// idle clients can then never take every socket and task of the listener.
    pub max_connections: usize,
    /// Time a connection gets to send a request's head (its TLS handshake has a bound of its own): a client
    /// trickling headers is cut off instead of holding its connection.
    pub header_timeout: Duration,
}

impl Limits {
    /// timeoutSeconds 5 (webhook-config/) minus a one-second margin for the network and the API server.
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(4);
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;
    pub const DEFAULT_MAX_LARGE_IN_FLIGHT: usize = 1;
    /// The API server keeps a handful of connections to a webhook; 256 leaves room for several API servers.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
    pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: Self::DEFAULT_DEADLINE,
            max_in_flight: Self::DEFAULT_MAX_IN_FLIGHT,
            max_large_in_flight: Self::DEFAULT_MAX_LARGE_IN_FLIGHT,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            header_timeout: Self::DEFAULT_HEADER_TIMEOUT,
        }
    }
}

/// The slots of [`Limits`].
#[derive(Debug)]
struct Guard {
    limits: Limits,
    all: Arc<tokio::sync::Semaphore>,
    large: Arc<tokio::sync::Semaphore>,
    lane: LargeLane,
    buffers: BodyBuffers,
}

impl Guard {
    fn new(limits: Limits) -> Self {
        let large = limits.max_large_in_flight.max(1);
        Self {
            limits,
            all: Arc::new(tokio::sync::Semaphore::new(limits.max_in_flight.max(1))),
            large: Arc::new(tokio::sync::Semaphore::new(large)),
            lane: LargeLane::new(large),
            buffers: BodyBuffers::new(large),
        }
    }
}

type LaneJob = Box<dyn FnOnce() + Send>;

/// Threads of their own that decide large reviews at idle CPU priority (Linux `SCHED_IDLE`): they run only when
/// nothing else wants the CPU, so a flood of 3 MiB reviews never delays the listener thread that answers everyone
/// else. Under a CPU saturated by other work, a large review may then miss its deadline (503), by design.
struct LargeLane {
    tx: std::sync::mpsc::Sender<LaneJob>,
}

impl std::fmt::Debug for LargeLane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LargeLane")
    }
}

impl LargeLane {
    fn new(threads: usize) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<LaneJob>();
        let rx = Arc::new(parking_lot::Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("ako-large-review-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let job = rx.lock().recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return, // the state was dropped
                        }
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "could not start a large-review thread");
            }
        }
        Self { tx }
    }

    /// Runs `job` on a lane thread; `false` if no lane thread is running.
    fn run(&self, job: LaneJob) -> bool {
        self.tx.send(job).is_ok()
    }
}

/// Idle scheduling priority for the calling thread (best effort: logged when refused).
fn lower_priority() {
    use thread_priority::unix::{
        NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
        thread_native_id,
    };
    let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    if let Err(error) = set_thread_priority_and_policy(
        thread_native_id(),
        thread_priority::ThreadPriority::Min,
        idle,
    ) {
        tracing::debug!(
            ?error,
            "large reviews run at normal priority (SCHED_IDLE refused)"
        );
    }
}

/// State shared by the handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    pub index: Arc<Index>,
    pub metrics: Arc<Metrics>,
    guard: Arc<Guard>,
    /// Whether the health port serves `/claims`.
    expose_claims: bool,
    /// The reconciler of the same process (`ako run`): its liveness joins `/healthz`, its metrics `/metrics`.
    controller: Option<Arc<crate::reconcile::health::ControllerHealth>>,
}

impl AppState {
    /// Default [`Limits`], `/claims` off.
    pub fn new(index: Arc<Index>, metrics: Arc<Metrics>) -> Self {
        Self {
            index,
            metrics,
            guard: Arc::new(Guard::new(Limits::default())),
            expose_claims: false,
            controller: None,
        }
    }

    /// Adds the reconciler's health and metrics to the health port.
    pub fn with_controller(
        mut self,
        controller: Arc<crate::reconcile::health::ControllerHealth>,
    ) -> Self {
        self.controller = Some(controller);
        self
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.guard = Arc::new(Guard::new(limits));
        self
    }

    /// Serve `/claims` on the health port (it lists namespaces, names and hosts to anyone who can reach it).
    pub fn with_claims(mut self, expose: bool) -> Self {
        self.expose_claims = expose;
        self
    }

    pub fn limits(&self) -> Limits {
        self.guard.limits
    }
}

/// A slot of [`Limits::max_in_flight`], counted in the in-flight gauge while held.
struct Slot {
    _permit: tokio::sync::OwnedSemaphorePermit,
    gauge: prometheus_client::metrics::gauge::Gauge,
}

impl Slot {
    fn new(
        permit: tokio::sync::OwnedSemaphorePermit,
        gauge: &prometheus_client::metrics::gauge::Gauge,
    ) -> Self {
        gauge.inc();
        Self {
            _permit: permit,
            gauge: gauge.clone(),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// Why a request was answered "overloaded".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overload {
    /// No slot became free before the deadline.
    NoSlot,
    /// The body was not received, or the decision not made, before the deadline.
    Deadline,
}

impl Overload {
    pub fn as_str(self) -> &'static str {
        match self {
            Overload::NoSlot => "no_slot",
            Overload::Deadline => "deadline",
        }
    }
}

/// Errors that end a request before a decision; the one place they map to HTTP.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("request body exceeds {MAX_BODY} bytes")]
    TooLarge,
    #[error("cannot read the request body: {0}")]
    Body(String),
    #[error(transparent)]
    Read(#[from] review::ReadError),
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        let status = match self {
            WebhookError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = serde_json::json!({ "error": self.to_string() });
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

/// The TLS router with the admission endpoints.
pub fn admission_router(state: AppState) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .with_state(state)
}

/// The plain-HTTP router with health and metrics (and `/claims` when turned on).
pub fn health_router(state: AppState) -> Router {
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text));
    let router = if state.expose_claims {
        router.route("/claims", get(claims))
    } else {
        router.route("/claims", get(claims_off))
    };
    router.with_state(state)
}

/// Live unless the reconciler of the same process is stalled or gone.
async fn healthz(State(s): State<AppState>) -> Response {
    match s.controller.as_ref().map(|c| c.live()) {
        Some(Err(why)) => (StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
        _ => (StatusCode::OK, "ok").into_response(),
    }
}

async fn claims_off() -> Response {
    (
        StatusCode::NOT_FOUND,
        "/claims is off: it lists namespaces, names and hosts without authentication; start ako webhook with --expose-claims (AKO_EXPOSE_CLAIMS=true) to serve it",
    )
        .into_response()
}

async fn readyz(State(s): State<AppState>) -> Response {
    let sync = s.index.sync_state();
    if sync.all() {
        (StatusCode::OK, "ready").into_response()
    } else {
        let msg = format!(
            "index not synced: ingresses={} ingressclasses={} secrets={} services={}",
            sync.ingresses, sync.classes, sync.secrets, sync.services
        );
        (StatusCode::SERVICE_UNAVAILABLE, msg).into_response()
    }
}

#[derive(Debug, serde::Deserialize)]
struct ClaimsQuery {
    host: Option<String>,
    vip: Option<String>,
}

/// Who claims a host (Ingresses) or a VIP (LoadBalancer Services of ours), oldest first: under
/// fqdnReusePolicy Strict, and always for a VIP, the owner comes first.
async fn claims(
    State(s): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<ClaimsQuery>,
) -> Response {
    match (q.host, q.vip) {
        (Some(host), None) => host_claims(&s, &host),
        (None, Some(vip)) => match vip.trim().parse::<std::net::IpAddr>() {
            Ok(ip) => vip_claims(&s, ip),
            Err(_) => (
                StatusCode::BAD_REQUEST,
                format!("vip={vip:?} is not an IP address"),
            )
                .into_response(),
        },
        _ => (
            StatusCode::BAD_REQUEST,
            "give exactly one of ?host=NAME or ?vip=ADDRESS",
        )
            .into_response(),
    }
}

fn host_claims(s: &AppState, host: &str) -> Response {
    let host = ako_core::hosts::normalize(host);
    let cfg = s.index.config();
    let list = s.index.read(|snap| {
        let mut v: Vec<_> = snap.claims_for_host(&host).to_vec();
        v.sort_by(|a, b| a.order().cmp(&b.order()));
        v.iter()
            .map(|c| {
                let paths: Vec<String> = c
                    .hosts
                    .iter()
                    .filter(|(h, _)| *h == host)
                    .flat_map(|(_, p)| p.iter().map(|p| format!("{} ({})", p.path, p.path_type)))
                    .collect();
                serde_json::json!({
                    "ingress": c.key.to_string(),
                    "ours": snap.classes.is_ours(&c.class, &cfg),
                    "created": c.created,
                    "paths": paths,
                })
            })
            .collect::<Vec<_>>()
    });
    axum::Json(serde_json::json!({ "host": host, "claims": list })).into_response()
}

fn vip_claims(s: &AppState, ip: std::net::IpAddr) -> Response {
    let list = s.index.read(|snap| {
        let mut v: Vec<_> = snap.vip_claims(&ip).to_vec();
        v.sort_by(|a, b| a.order().cmp(&b.order()));
        v.iter()
            .map(|c| {
                serde_json::json!({
                    "service": c.key.to_string(),
                    "created": c.created,
                    "sharedVip": c.shared,
                })
            })
            .collect::<Vec<_>>()
    });
    axum::Json(serde_json::json!({ "vip": ip.to_string(), "claims": list })).into_response()
}

async fn metrics_text(State(s): State<AppState>) -> Response {
    let count = s.index.read(|snap| snap.ingress_count());
    s.metrics.indexed_ingresses.set(count as i64);
    let encoded = s.metrics.encode_with(|out| match &s.controller {
        Some(c) => c.encode_into(out),
        None => Ok(()),
    });
    match encoded {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn validate(State(s): State<AppState>, req: Request) -> Response {
    review(s, Mode::Validate, req).await
}

async fn mutate(State(s): State<AppState>, req: Request) -> Response {
    review(s, Mode::Mutate, req).await
}

async fn read_body(body: Body) -> Result<Bytes, WebhookError> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|e| {
        // to_bytes reports the limit through a LengthLimitError source.
        let mut src: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = src {
            if err.is::<http_body_util::LengthLimitError>() {
                return WebhookError::TooLarge;
            }
            src = err.source();
        }
        WebhookError::Body(e.to_string())
    })
}

/// Reads a large body into `buf` in steps of at most one read buffer ([`READ_BUFFER`]), letting the listener's
/// other connections run between steps. Decrypting and copying a 3 MiB body costs milliseconds of the listener's
/// CPU; read in one go (as `to_bytes` does while data keeps arriving), every small review arriving meanwhile on
/// that listener would wait for all of it. The body is copied once, into a buffer of its announced size.
async fn read_large_body(mut body: Body, mut buf: Vec<u8>) -> Result<Vec<u8>, WebhookError> {
    use http_body_util::BodyExt;
    // Read up to the limit even when the announced length is over it: a client still writing its body would
    // otherwise meet a closed connection (a broken pipe) instead of the 413 that says why.
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| WebhookError::Body(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > MAX_BODY {
                return Err(WebhookError::TooLarge);
            }
            buf.extend_from_slice(&data);
        }
        tokio::task::yield_now().await;
    }
    Ok(buf)
}

/// Body buffers of large reviews, kept from one large review to the next (at most one per large slot).
/// Allocating, faulting in and returning 3 MiB per review to the system (and the allocator's purging after it)
/// measurably lengthened the normal reviews' tail under a flood of large ones (BENCHMARKS.md section 2b).
#[derive(Debug)]
struct BodyBuffers {
    kept: parking_lot::Mutex<Vec<Vec<u8>>>,
    max: usize,
}

impl BodyBuffers {
    fn new(max: usize) -> Self {
        Self {
            kept: parking_lot::Mutex::new(Vec::new()),
            max,
        }
    }

    /// An empty buffer with room for `len` bytes (kept buffers are emptied by [`BodyBuffers::give`]).
    fn take(&self, len: usize) -> Vec<u8> {
        let mut buf = self.kept.lock().pop().unwrap_or_default();
        buf.reserve(len);
        buf
    }

    /// Keeps `buf` for a later review, unless enough are kept already. Listener threads only: the lane thread
    /// must not take a lock the listener takes (see [`Decided`]).
    fn give(&self, mut buf: Vec<u8>) {
        if buf.capacity() > MAX_BODY + READ_BUFFER {
            return;
        }
        buf.clear();
        let mut kept = self.kept.lock();
        if kept.len() < self.max {
            kept.push(buf);
        }
    }
}

/// The most an admission connection reads (and decrypts) from its socket at once, and so the largest request
/// head (the API server's is under 2 KiB; beyond this it gets 431). hyper's default is about 400 KiB, and 8 KiB
/// is the least it allows. Ordinary reviews fit in one or a few reads; a large one is read in steps this size
/// (see [`read_large_body`]). Each step is a stretch of the listener's time that no other connection can use:
/// with steps of 64 KiB, the normal reviews' p99 under a flood of 3 MiB reviews was 0.75-0.94 ms, with 16 KiB
/// 0.46-0.59 ms and with 8 KiB 0.36-0.58 ms, against 0.16-0.26 ms without the flood (BENCHMARKS.md section 2b).
const READ_BUFFER: usize = 8 * 1024;

/// One admission request under [`Limits`]: a slot, the body, the decision, all before the deadline.
async fn review(s: AppState, mode: Mode, req: Request) -> Response {
    let started = Instant::now();
    let deadline = tokio::time::Instant::from_std(started + s.guard.limits.deadline);
    // The API server always sends Content-Length; a body of unknown length is treated as large.
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let large = announced.is_none_or(|n| n > LARGE_BODY);
    // A large review waits for its own slot first, so that a queue of them never holds the slots everyone needs.
    let large_slot = if large {
        match tokio::time::timeout_at(deadline, s.guard.large.clone().acquire_owned()).await {
            Ok(Ok(p)) => Some(p),
            _ => return overloaded(&s, mode, Overload::NoSlot),
        }
    } else {
        None
    };
    let Ok(Ok(permit)) =
        tokio::time::timeout_at(deadline, s.guard.all.clone().acquire_owned()).await
    else {
        return overloaded(&s, mode, Overload::NoSlot);
    };
    let slot = Slot::new(permit, &s.metrics.in_flight);
    let Some(large_slot) = large_slot else {
        // A small review costs microseconds: read and decided right here, on the listener thread.
        return match tokio::time::timeout_at(deadline, read_body(req.into_body())).await {
            Ok(Ok(bytes)) => answer(&s, mode, &bytes, started),
            Ok(Err(e)) => reject(&s, mode, e),
            Err(_) => overloaded(&s, mode, Overload::Deadline),
        };
    };
    let buf = s.guard.buffers.take(announced.unwrap_or(0).min(MAX_BODY));
    let bytes = match tokio::time::timeout_at(deadline, read_large_body(req.into_body(), buf)).await
    {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return reject(&s, mode, e),
        Err(_) => return overloaded(&s, mode, Overload::Deadline),
    };
    // A large one is decided on an idle-priority lane thread, holding its slots until it is done (even if its
    // answer comes too late), so the listener thread keeps answering the small ones meanwhile. After answering,
    // it keeps the large slot for a while in proportion to the work done, so that large reviews get at most
    // LARGE_CPU_SHARE of a core each: a flood of them queues (and meets its deadline) instead of taking the CPU
    // that normal reviews need. The body's buffer comes back with the answer, for the next large review.
    let state = s.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let queued = s.guard.lane.run(Box::new(move || {
        let work = Instant::now();
        let decided = decide_review(&state, mode, &bytes, started);
        let _ = tx.send((decided, bytes));
        drop(slot);
        std::thread::sleep(work.elapsed().mul_f64(1.0 / LARGE_CPU_SHARE - 1.0));
        drop(large_slot);
    }));
    if !queued {
        return overloaded(&s, mode, Overload::NoSlot);
    }
    match tokio::time::timeout_at(deadline, rx).await {
        Ok(Ok((decided, buf))) => {
            s.guard.buffers.give(buf);
            decided.finish(&s, mode)
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, mode = mode.as_str(), "admission review task ended without an answer (panicked)");
            let body =
                serde_json::json!({ "error": "the review could not be decided (internal error)" });
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
        Err(_) => overloaded(&s, mode, Overload::Deadline),
    }
}

/// Reads, decides, logs and answers one review body, all on the calling thread.
fn answer(s: &AppState, mode: Mode, bytes: &[u8], started: Instant) -> Response {
    decide_review(s, mode, bytes, started).finish(s, mode)
}

/// A decided review: its answer, and what is still to be logged and counted about it.
///
/// Deciding and recording are apart because a large review is decided on an idle-priority lane thread, which must
/// never take the locks the listener thread takes (the log batch, the metrics): preempted while holding one,
/// it would stall the listener until the CPU has nothing else to do (priority inversion). The lane thread only
/// decides; the listener thread records.
// Nearly every review is answered: the large variant is the usual one, moved once, and boxing it would cost
// an allocation per review.
#[allow(clippy::large_enum_variant)]
enum Decided {
    Answered(Response, Record),
    /// The request itself could not be read (400/413).
    Rejected(WebhookError),
}

/// What the listener logs and counts of a decision, owned (it outlives the request body it was read from).
struct Record {
    subject: Subject,
    /// Why a mutation was allowed unpatched (the object could not be read).
    unreadable: Option<String>,
    uid: String,
    kind: String,
    namespace: String,
    name: String,
    operation: &'static str,
    user: String,
    dry_run: bool,
    allowed: bool,
    result: &'static str,
    reasons: String,
    warnings: String,
    patch: String,
    elapsed: Duration,
}

impl Record {
    fn new(
        req: &RequestIn<'_>,
        subject: Subject,
        unreadable: Option<String>,
        d: &Decision,
        elapsed: Duration,
    ) -> Self {
        Record {
            subject,
            unreadable,
            uid: req.uid.to_string(),
            kind: req.kind.kind.to_string(),
            namespace: req.namespace.as_deref().unwrap_or("").to_string(),
            name: req.name.to_string(),
            operation: operation_name(&req.operation),
            user: req.user_info.username.as_deref().unwrap_or("").to_string(),
            dry_run: req.dry_run,
            allowed: d.allowed,
            result: d.result(),
            reasons: d.reasons.join("; "),
            warnings: d.warnings.join("; "),
            patch: d.patch_summary.join("; "),
            elapsed,
        }
    }

    /// One structured audit line per decision (and a warning first when a mutation was allowed unpatched);
    /// counts it. Never logs object contents (which may hold secrets).
    fn log_and_count(&self, s: &AppState, mode: Mode) {
        if let Some(error) = &self.unreadable {
            tracing::warn!(
                target: "audit",
                uid = self.uid.as_str(),
                mode = mode.as_str(),
                error = error.as_str(),
                "object cannot be read; allowed without mutation (the validating webhook denies it)"
            );
        }
        tracing::info!(
            target: "audit",
            uid = self.uid.as_str(),
            mode = mode.as_str(),
            kind = self.kind.as_str(),
            namespace = self.namespace.as_str(),
            name = self.name.as_str(),
            operation = self.operation,
            user = self.user.as_str(),
            dry_run = self.dry_run,
            allowed = self.allowed,
            result = self.result,
            reasons = self.reasons.as_str(),
            warnings = self.warnings.as_str(),
            patch = self.patch.as_str(),
            latency_us = self.elapsed.as_micros() as u64,
            "admission decision"
        );
        s.metrics
            .observe(mode, self.subject, self.result, self.elapsed);
    }
}

impl Decided {
    /// Logs and counts the review (on the calling thread) and returns its answer.
    fn finish(self, s: &AppState, mode: Mode) -> Response {
        match self {
            Decided::Rejected(e) => reject(s, mode, e),
            Decided::Answered(response, record) => {
                record.log_and_count(s, mode);
                response
            }
        }
    }
}

/// Reads and decides one review body; logs and counts nothing (see [`Decided`]).
fn decide_review(s: &AppState, mode: Mode, bytes: &[u8], started: Instant) -> Decided {
    let (req, object) = match review::read(bytes, mode) {
        Ok(r) => (r.request, r.object),
        Err(e) => return Decided::Rejected(e.into()),
    };
    let meta = req.meta();
    let cfg = s.index.config();
    let mut unreadable = None;
    let decision = match (object, mode) {
        (Ok(object), _) => s
            .index
            .read(|snap| admission::decide(&meta, object, mode, &cfg, snap)),
        // Mutation never denies: allow unpatched; the validator reads the object again and denies, saying why.
        (Err(e), Mode::Mutate) => {
            unreadable = Some(e.to_string());
            Decision::unreadable_for_mutation()
        }
        // A review we can read around an object we cannot: deny, saying why (kubectl shows it).
        (Err(e), Mode::Validate) => Decision::unreadable(&e),
    };
    let body = decision.review_json(&req.uid);
    let record = Record::new(&req, meta.subject, unreadable, &decision, started.elapsed());
    Decided::Answered(
        ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        record,
    )
}

/// 503 with a Kubernetes `Status`: the API server shows its message in the error kubectl prints
/// (`failed calling webhook "...": failed to call webhook: ako admission webhook is overloaded ...`).
fn overloaded(s: &AppState, mode: Mode, why: Overload) -> Response {
    s.metrics.observe_overload(mode, why);
    let limits = s.guard.limits;
    let ms = limits.deadline.as_millis();
    let message = match why {
        Overload::NoSlot => format!(
            "ako admission webhook is overloaded: no free slot within its {ms} ms deadline (at most {} reviews at once, {} of them large); retry shortly",
            limits.max_in_flight, limits.max_large_in_flight
        ),
        Overload::Deadline => format!(
            "ako admission webhook is overloaded: the review was not received and decided within its {ms} ms deadline; retry shortly"
        ),
    };
    tracing::warn!(target: "audit", mode = mode.as_str(), reason = why.as_str(), "admission request refused: overloaded");
    let body = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "ServiceUnavailable",
        "code": 503,
    });
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::RETRY_AFTER, "1"),
        ],
        body.to_string(),
    )
        .into_response()
}

fn operation_name(op: &kube::core::admission::Operation) -> &'static str {
    use kube::core::admission::Operation;
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

/// A request that could not be read: logged and counted, answered 400 or 413.
fn reject(s: &AppState, mode: Mode, e: WebhookError) -> Response {
    s.metrics.observe_rejected_request(mode, &e);
    tracing::warn!(target: "audit", mode = mode.as_str(), error = %e, "unreadable admission request");
    e.into_response()
}

/// Where the admission listener runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    /// On the caller's runtime, next to everything else (tests and embedding).
    Shared,
    /// On `n` threads of its own, each a single-threaded runtime accepting from the same socket. A review costs
    /// microseconds of CPU, so one thread serves tens of thousands a second; a thread of its own keeps admission
    /// latency independent of watch and reconcile work, and saves the cross-thread wake-ups of a work-stealing
    /// runtime on every request (BENCHMARKS.md).
    Dedicated(usize),
}

/// A running webhook: the bound addresses and a handle to stop it.
#[derive(Debug)]
pub struct Running {
    pub https: SocketAddr,
    pub health: SocketAddr,
    handles: Vec<axum_server::Handle<SocketAddr>>,
    health_task: tokio::task::JoinHandle<()>,
    shared_task: Option<tokio::task::JoinHandle<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Notified when an admission listener ends, for whatever reason.
    ended: Arc<tokio::sync::Notify>,
}

impl Running {
    /// Stops both listeners, letting in-flight admission requests finish for up to `grace`.
    pub fn shutdown(&self, grace: Duration) {
        for h in &self.handles {
            h.graceful_shutdown(Some(grace));
        }
        self.health_task.abort();
    }

    /// Completes when an admission listener has ended: it could not start serving, or its thread died. Unless
    /// [`Running::shutdown`] asked for it, the process should then exit, so that Kubernetes restarts it rather
    /// than route reviews to a dead port. (Accept errors such as running out of file descriptors are retried by
    /// the server and do not end it.)
    pub async fn ended(&self) {
        self.ended.notified().await;
    }

    /// After [`Running::shutdown`], waits up to `limit` for the admission listeners to finish their in-flight
    /// requests and end.
    pub async fn wait(self, limit: Duration) {
        let (shared, threads) = (self.shared_task, self.threads);
        let all = async move {
            if let Some(task) = shared {
                let _ = task.await;
            }
            let _ = tokio::task::spawn_blocking(move || {
                for t in threads {
                    let _ = t.join();
                }
            })
            .await;
        };
        if tokio::time::timeout(limit, all).await.is_err() {
            tracing::warn!(
                limit_ms = limit.as_millis() as u64,
                "admission listeners did not end in time"
            );
        }
    }
}

/// The HTTPS server of one admission listener: `TCP_NODELAY` on every connection (without it, an answer written
/// in two segments waits for the client's delayed ACK, up to 40 ms, about once in a thousand reviews) and reads
/// of at most [`READ_BUFFER`].
fn admission_server(
    listener: std::net::TcpListener,
    tls: axum_server::tls_rustls::RustlsConfig,
    connections: Arc<tokio::sync::Semaphore>,
    limits: Limits,
) -> std::io::Result<
    axum_server::Server<SocketAddr, axum_server::tls_rustls::RustlsAcceptor<CappedAcceptor>>,
> {
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(tls)
        .handshake_timeout(limits.header_timeout)
        .acceptor(CappedAcceptor { connections });
    let mut server = axum_server::from_tcp(listener)?.acceptor(acceptor);
    server
        .http_builder()
        .http1()
        .max_buf_size(READ_BUFFER)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    Ok(server)
}

/// Accepts a connection only while fewer than [`Limits::max_connections`] are open (closing it at once
/// otherwise), with `TCP_NODELAY` set.
#[derive(Debug, Clone)]
struct CappedAcceptor {
    connections: Arc<tokio::sync::Semaphore>,
}

impl<S> axum_server::accept::Accept<tokio::net::TcpStream, S> for CappedAcceptor {
    type Stream = Capped;
    type Service = S;
    type Future = std::future::Ready<std::io::Result<(Capped, S)>>;

    fn accept(&self, stream: tokio::net::TcpStream, service: S) -> Self::Future {
        let result = match self.connections.clone().try_acquire_owned() {
            Ok(permit) => stream.set_nodelay(true).map(|()| {
                (
                    Capped {
                        stream,
                        _permit: permit,
                    },
                    service,
                )
            }),
            Err(_) => {
                tracing::warn!(
                    "admission connection refused: too many open (AKO_WEBHOOK_MAX_CONNECTIONS)"
                );
                Err(std::io::Error::other("too many admission connections"))
            }
        };
        std::future::ready(result)
    }
}

/// An admission connection, holding its place among [`Limits::max_connections`] until it closes.
#[derive(Debug)]
struct Capped {
    stream: tokio::net::TcpStream,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl tokio::io::AsyncRead for Capped {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Capped {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Serves the admission router over TLS and the health router over plain HTTP. The health listener always runs
/// on the caller's runtime; the admission listener where `workers` says.
pub async fn serve(
    state: AppState,
    https: std::net::TcpListener,
    health: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    workers: Workers,
) -> std::io::Result<Running> {
    https.set_nonblocking(true)?;
    let https_addr = https.local_addr()?;
    let health_addr = health.local_addr()?;
    let rustls_config = axum_server::tls_rustls::RustlsConfig::from_config(tls);
    let limits = state.limits();
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let app = admission_router(state.clone());
    let mut handles = Vec::new();
    let mut threads = Vec::new();
    let mut shared_task = None;
    let ended = Arc::new(tokio::sync::Notify::new());
    match workers {
        Workers::Shared => {
            let handle = axum_server::Handle::new();
            let server = admission_server(https, rustls_config, connections.clone(), limits)?
                .handle(handle.clone());
            handles.push(handle);
            let ended = NotifyOnDrop(ended.clone());
            shared_task = Some(tokio::spawn(async move {
                let _ended = ended;
                if let Err(e) = server.serve(app.into_make_service()).await {
                    tracing::error!(error = %e, "webhook HTTPS server stopped");
                }
            }));
        }
        Workers::Dedicated(n) => {
            for i in 0..n.max(1) {
                let listener = https.try_clone()?;
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let handle = axum_server::Handle::new();
                handles.push(handle.clone());
                let (app, rustls_config, connections) =
                    (app.clone(), rustls_config.clone(), connections.clone());
                let ended = NotifyOnDrop(ended.clone());
                let thread = std::thread::Builder::new()
                    .name(format!("webhook-{i}"))
                    .spawn(move || {
                        let _ended = ended;
                        rt.block_on(async move {
                            let served = match admission_server(
                                listener,
                                rustls_config,
                                connections,
                                limits,
                            ) {
                                Ok(server) => server.handle(handle).serve(app.into_make_service()).await,
                                Err(e) => Err(e),
                            };
                            if let Err(e) = served {
                                tracing::error!(error = %e, worker = i, "webhook HTTPS server stopped");
                            }
                        })
                    })?;
                threads.push(thread);
            }
        }
    }
    let health_app = health_router(state);
    let health_task = tokio::spawn(async move {
        if let Err(e) = axum::serve(health, health_app).await {
            tracing::error!(error = %e, "health server stopped");
        }
    });
    Ok(Running {
        https: https_addr,
        health: health_addr,
        handles,
        health_task,
        shared_task,
        threads,
        ended,
    })
}

/// Reports the end of a listener when dropped, so that a listener whose thread panics is reported too.
struct NotifyOnDrop(Arc<tokio::sync::Notify>);

impl Drop for NotifyOnDrop {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}
