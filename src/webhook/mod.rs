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

mod health;
pub mod metrics;
pub mod names;
pub mod review;
mod server;

pub use health::health_router;
pub use server::{Running, Workers, serve};

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
    /// The controller's names, for reviews of HostRules and HTTPRules (`None`: not known, never denied on).
    names: Option<Arc<names::Names>>,
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
            names: None,
        }
    }

    /// Asks the controller whether the objects HostRules and HTTPRules name exist.
    pub fn with_names(mut self, names: Arc<names::Names>) -> Self {
        self.names = Some(names);
        self
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
            Ok(Ok(bytes)) => {
                if let Some(n) = &s.names
                    && mode == Mode::Validate
                {
                    n.prefetch(
                        &bytes,
                        deadline.saturating_duration_since(tokio::time::Instant::now()),
                    )
                    .await;
                }
                answer(&s, mode, &bytes, started)
            }
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
    if let Some(n) = &s.names
        && mode == Mode::Validate
    {
        n.prefetch(
            &bytes,
            deadline.saturating_duration_since(tokio::time::Instant::now()),
        )
        .await;
    }
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
        (Ok(object), _) => {
            let unknown = |_: &str, _: &str| ako_core::crd::Lookup::Unknown;
            let names: &dyn ako_core::crd::ControllerView = match &s.names {
                Some(n) => n.as_ref(),
                None => &unknown,
            };
            s.index
                .read(|snap| admission::decide_with(&meta, object, mode, &cfg, snap, names))
        }
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
