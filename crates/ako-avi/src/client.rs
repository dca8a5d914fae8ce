//! The async Avi Controller client: session login with CSRF, a bounded pool of sessions, re-login on
//! 401/419 (once per failure), retries with exponential backoff and jitter honouring `Retry-After`,
//! pagination by `next`, and typed CRUD over [`AviObject`] models.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use cookie::Cookie;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Semaphore;

use super::budget::{Budget, BudgetLimits};
use super::error::{AviError, controller_message};
use super::metrics::AviMetrics;
use super::models::{AviObject, CollectionPage, DomainList};
use ako_core::redact;

/// A secret that never shows up in `Debug` or logs.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Password(String),
    Token(String),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Password(_) => f.write_str("Password(<redacted>)"),
            Self::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

/// Login credentials (`avi-secret`: username + password or auth token).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub secret: Secret,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("secret", &self.secret)
            .finish()
    }
}

impl Credentials {
    pub fn password(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            secret: Secret::Password(password.into()),
        }
    }
    pub fn token(username: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            secret: Secret::Token(token.into()),
        }
    }
}

/// Backoff for retryable failures (transport, 408, 429, 5xx).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 4,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

/// Client configuration (the `avicredentials` + `ControllerSettings` of AKO).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host`, `host:port` or `https://host[:port]`.
    pub controller: String,
    pub credentials: Credentials,
    /// `X-Avi-Tenant`; default `admin`.
    pub tenant: String,
    /// `X-Avi-Version`; discovered from `/api/initial-data` when `None`.
    pub controller_version: Option<String>,
    /// PEM CA bundle (`certificateAuthorityData`); system roots when `None`.
    pub ca_pem: Option<String>,
    /// Skip certificate verification (explicit opt-in, logged).
    pub insecure_skip_verify: bool,
    /// Sessions (and concurrent requests); default 8.
    pub sessions: usize,
    /// Per-request timeout.
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    /// `page_size` for list calls (1..=200).
    pub page_size: u32,
    /// Longest `Retry-After` the client waits for by itself (default 30 s). A longer one is returned at once
    /// as the transient [`AviError::RetryAfterTooLong`] carrying the server's delay, so the caller requeues
    /// instead of holding a request (and a session) for that long.
    pub max_retry_after: Duration,
    /// Accept an `http://` controller URL (plain text: credentials and session cookies travel unencrypted).
    /// Off by default; only for local test servers.
    pub allow_insecure_http: bool,
    /// The `created_by` value of this client's objects (AKO: `ako-<clusterName>`), see
    /// [`ClientConfig::with_cluster_name`]. A create stamps it on objects that carry none, and adopts an
    /// existing object of the same name (409, or the read-back after an ambiguous failure) only when its
    /// `created_by` equals it. `None`: no existing object is ever adopted.
    pub created_by: Option<String>,
    /// Requests per second toward the controller, shared by every clone of the client ([`Budget`]).
    pub budget: BudgetLimits,
    /// Counted requests, retries and budget waits; `None`: not counted.
    pub metrics: Option<Arc<AviMetrics>>,
    /// Asked before every write (any method but GET): `None` refuses it ([`AviError::Fenced`]), `Some(left)`
    /// allows it with a deadline of at most `left` (the leadership's remaining time).
    pub write_fence: Option<WriteFence>,
    /// `User-Agent` of every request (`ako/<version>` by default; the operator adds its pod name, so the
    /// controller's logs and the emulator's request journal tell replicas apart).
    pub user_agent: String,
}

/// See [`ClientConfig::write_fence`].
#[derive(Clone)]
pub struct WriteFence(pub Arc<dyn Fn() -> Option<Duration> + Send + Sync>);

impl fmt::Debug for WriteFence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WriteFence")
    }
}

impl ClientConfig {
    pub fn new(controller: impl Into<String>, credentials: Credentials) -> Self {
        Self {
            controller: controller.into(),
            credentials,
            tenant: "admin".into(),
            controller_version: None,
            ca_pem: None,
            insecure_skip_verify: false,
            sessions: 8,
            request_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            page_size: 100,
            max_retry_after: Duration::from_secs(30),
            allow_insecure_http: false,
            created_by: None,
            budget: BudgetLimits::default(),
            metrics: None,
            write_fence: None,
            user_agent: format!("ako/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// Sets [`ClientConfig::created_by`] to AKO's `ako-<cluster_name>`.
    pub fn with_cluster_name(mut self, cluster_name: &str) -> Self {
        self.created_by = Some(format!("ako-{cluster_name}"));
        self
    }
}

/// PATCH operation of the classic form `{"<op>": {...}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOp {
    Add,
    Replace,
    Delete,
}

impl PatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Replace => "replace",
            Self::Delete => "delete",
        }
    }
}

/// Filters of a list call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub name: Option<String>,
    pub created_by: Option<String>,
    pub cloud_name: Option<String>,
    pub fields: Vec<String>,
    pub include_name: bool,
    /// Overrides the client's page size.
    pub page_size: Option<u32>,
    /// Other filters, e.g. `("name.contains", "x")`.
    pub extra: Vec<(String, String)>,
}

impl ListQuery {
    pub fn by_name(name: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    /// The query string (without `?`).
    pub fn to_query(&self, default_page_size: u32) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(name) = &self.name {
            q.append_pair("name", name);
        }
        if let Some(created_by) = &self.created_by {
            q.append_pair("created_by", created_by);
        }
        if let Some(cloud) = &self.cloud_name {
            q.append_pair("cloud_ref.name", cloud);
        }
        if !self.fields.is_empty() {
            q.append_pair("fields", &self.fields.join(","));
        }
        if self.include_name {
            q.append_pair("include_name", "true");
        }
        for (k, v) in &self.extra {
            q.append_pair(k, v);
        }
        q.append_pair(
            "page_size",
            &self
                .page_size
                .unwrap_or(default_page_size)
                .clamp(1, 200)
                .to_string(),
        );
        q.finish()
    }
}

/// Result of a create: the object, and whether it already existed (409 re-read by name and adopted). After
/// an ambiguous failure whose write turned out to be applied, `already_existed` is `false`.
#[derive(Debug, Clone, PartialEq)]
pub struct Created<T> {
    pub object: T,
    pub already_existed: bool,
}

/// A raw answer of the controller. `Debug` redacts cookies, CSRF tokens and secrets in the body.
#[derive(Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl fmt::Debug for RawResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawResponse")
            .field("status", &self.status)
            .field("headers", &redact::Headers(&self.headers))
            .field("body", &redact::Body(&self.body))
            .finish()
    }
}

impl RawResponse {
    pub fn json<T: DeserializeOwned>(&self, method: &Method, path: &str) -> Result<T, AviError> {
        serde_json::from_slice(&self.body).map_err(|source| AviError::Decode {
            method: method.to_string(),
            path: path.to_string(),
            source,
        })
    }
}

/// The cookies of a logged-in session. `Debug` never shows them.
#[derive(Default)]
struct SessionCookies {
    csrftoken: String,
    session_id: String,
}

impl fmt::Debug for SessionCookies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCookies")
            .field("csrftoken", &redact::REDACTED)
            .field("session_id", &redact::REDACTED)
            .finish()
    }
}

impl SessionCookies {
    /// The `Cookie` header: the CSRF token and the session id under both names (avi-api.md §1.2).
    fn header(&self) -> String {
        [
            Cookie::new("csrftoken", self.csrftoken.as_str()),
            Cookie::new("sessionid", self.session_id.as_str()),
            Cookie::new("avi-sessionid", self.session_id.as_str()),
        ]
        .iter()
        .map(|c| c.stripped().to_string())
        .collect::<Vec<_>>()
        .join("; ")
    }

    /// Takes the session cookies a response (re-)issues. Deletions (`Max-Age=0`), empty values and the
    /// `None` a basic-auth answer carries are ignored.
    fn update(&mut self, headers: &HeaderMap) {
        for c in set_cookies(headers) {
            match c.name() {
                "avi-sessionid" | "sessionid" => self.session_id = c.value().to_string(),
                "csrftoken" => self.csrftoken = c.value().to_string(),
                _ => {}
            }
        }
    }
}

#[derive(Debug, Default)]
struct SessionSlot {
    cookies: Option<SessionCookies>,
}

/// A session taken from the pool, with the permit that bounds concurrency. Dropping it (also when the
/// request future is cancelled or times out) returns the session, logged in or not, to the pool.
struct SlotGuard<'a> {
    inner: &'a Inner,
    slot: Option<SessionSlot>,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl SlotGuard<'_> {
    fn slot(&mut self) -> &mut SessionSlot {
        self.slot.get_or_insert_with(SessionSlot::default)
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.inner.slots.lock().push(slot);
        }
    }
}

struct Inner {
    http: reqwest::Client,
    /// `https://host[:port]`, no trailing slash.
    base: String,
    config: ClientConfig,
    version: parking_lot::RwLock<Option<String>>,
    slots: parking_lot::Mutex<Vec<SessionSlot>>,
    permits: Semaphore,
    budget: Budget,
}

/// The Avi Controller client. Cheap to clone; clones share sessions and the connection pool.
#[derive(Clone)]
pub struct AviClient {
    inner: Arc<Inner>,
    tenant: Arc<str>,
}

impl fmt::Debug for AviClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AviClient")
            .field("controller", &self.inner.base)
            .field("tenant", &self.tenant)
            .finish()
    }
}

/// Normalises `host`, `host:port`, `https://host/` to `https://host[:port]`. `http://` is refused unless
/// `allow_insecure_http` (credentials and session cookies would travel in plain text).
pub fn normalize_base(controller: &str, allow_insecure_http: bool) -> Result<String, AviError> {
    let trimmed = controller.trim().trim_end_matches('/');
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("https://{trimmed}")
    };
    let url = url::Url::parse(&with_scheme)
        .map_err(|e| AviError::Config(format!("controller {controller:?}: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        // Not echoed: the URL holds credentials.
        return Err(AviError::Config(
            "the controller URL must not contain credentials (user:password@); use the avi-secret"
                .into(),
        ));
    }
    let host = url
        .host_str()
        .ok_or_else(|| AviError::Config(format!("controller {controller:?} has no host")))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure_http => {
            tracing::warn!(
                controller,
                "plain-HTTP controller URL (explicit opt-in): credentials and session cookies are not encrypted"
            );
        }
        "http" => {
            return Err(AviError::Config(format!(
                "controller {controller:?}: scheme must be https; plain http would send the credentials \
                 and session cookies unencrypted (set allow_insecure_http only for a local test server)"
            )));
        }
        other => {
            return Err(AviError::Config(format!(
                "controller {controller:?}: scheme must be https, not {other:?}"
            )));
        }
    }
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    Ok(match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    })
}

/// Reduces a `next` link to the path and query under `/api/`, so paging never leaves the controller.
pub fn next_path(next: &str) -> Option<String> {
    let idx = next.find("/api/")?;
    Some(next[idx..].to_string())
}

/// The `Set-Cookie` cookies of a response that set a value: unparsable ones, deletions (`Max-Age=0`), empty
/// values and `None` (sent by basic-auth answers) are skipped.
fn set_cookies(headers: &HeaderMap) -> impl Iterator<Item = Cookie<'static>> + '_ {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|s| Cookie::parse(s.to_string()).ok())
        .filter(|c| {
            !c.value().is_empty()
                && c.value() != "None"
                && c.max_age() != Some(cookie::time::Duration::ZERO)
        })
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// What one try of a request produced.
enum Attempt {
    Done(RawResponse),
    /// Failed before the request could have had an effect (connection refused, login, 408, 429, a
    /// session refused twice): safe to repeat whatever the method.
    Retry(AviError),
    /// Failed after the request may have been applied (transport error once sent, 5xx): repeating is
    /// safe only for idempotent requests.
    Ambiguous(AviError),
    Fail(AviError),
}

/// Whether repeating a request cannot apply a change twice: GET, HEAD, OPTIONS, PUT, DELETE, and a classic
/// PATCH that only `replace`s (it sets the same values again). POST and PATCH `add`/`delete` are not.
pub fn is_idempotent(method: &Method, body: Option<&Value>) -> bool {
    match *method {
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE => true,
        Method::PATCH => body
            .and_then(Value::as_object)
            .is_some_and(|o| !o.is_empty() && o.keys().all(|k| k == "replace")),
        _ => false,
    }
}

/// A transport error raised before the request was written (connection refused or not established).
fn is_connect_error(err: &AviError) -> bool {
    matches!(err, AviError::Transport { source, .. } if source.is_connect())
}

/// The error to return when the controller asks to wait longer than `cap`.
fn retry_after_too_long(err: AviError, cap: Duration) -> AviError {
    match err {
        AviError::Status {
            method,
            path,
            status,
            message,
            retry_after: Some(retry_after),
        } => AviError::RetryAfterTooLong {
            method,
            path,
            status,
            message,
            retry_after,
            cap,
        },
        AviError::OutcomeUnknown { source, .. } => retry_after_too_long(*source, cap),
        other => other,
    }
}

impl AviClient {
    /// Builds a client; does not contact the controller (login is lazy, per session).
    pub fn new(config: ClientConfig) -> Result<Self, AviError> {
        let base = normalize_base(&config.controller, config.allow_insecure_http)?;
        if config.sessions == 0 {
            return Err(AviError::Config("sessions must be at least 1".into()));
        }
        let tls =
            super::tls::client_tls_config(config.ca_pem.as_deref(), config.insecure_skip_verify)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(15)))
            .pool_max_idle_per_host(config.sessions)
            .tcp_nodelay(true)
            .http1_only()
            // A controller never redirects its API; following one would send the session (or, on /login, the
            // password) to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|e| AviError::Config(format!("HTTP client: {e}")))?;
        let slots = (0..config.sessions)
            .map(|_| SessionSlot::default())
            .collect();
        let tenant: Arc<str> = Arc::from(config.tenant.as_str());
        let version = config.controller_version.clone().filter(|v| !v.is_empty());
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                permits: Semaphore::new(config.sessions),
                budget: Budget::new(config.budget),
                config,
                version: parking_lot::RwLock::new(version),
                slots: parking_lot::Mutex::new(slots),
            }),
            tenant,
        })
    }

    /// A client sharing sessions with this one but sending another `X-Avi-Tenant` (`*` = all tenants).
    pub fn with_tenant(&self, tenant: &str) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            tenant: Arc::from(tenant),
        }
    }

    /// The `https://host[:port]` base.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The API version sent in `X-Avi-Version` (configured or discovered).
    pub fn api_version(&self) -> Option<String> {
        self.inner.version.read().clone()
    }

    /// The `created_by` value this client stamps and adopts ([`ClientConfig::created_by`]).
    pub fn created_by(&self) -> Option<&str> {
        self.inner.config.created_by.as_deref()
    }

    /// Forgets every session, so the next request logs in again.
    pub fn reset_sessions(&self) {
        for slot in self.inner.slots.lock().iter_mut() {
            slot.cookies = None;
        }
    }

    /// Sends a request with retries and re-login; returns any answered 2xx (callers map errors).
    ///
    /// Failures before the request could have had an effect are retried for every method. Failures after
    /// it may have been applied (transport error once sent, 5xx) are retried only for idempotent requests
    /// ([`is_idempotent`]); for POST and PATCH `add`/`delete` they end in [`AviError::OutcomeUnknown`].
    /// A `Retry-After` longer than [`ClientConfig::max_retry_after`] ends in
    /// [`AviError::RetryAfterTooLong`].
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<RawResponse, AviError> {
        let mut backoff = self.backoff();
        self.send_with_backoff(&method, path, body, &mut backoff)
            .await
    }

    fn backoff(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        let policy = self.inner.config.retry;
        ExponentialBuilder::default()
            .with_min_delay(policy.min_delay)
            .with_max_delay(policy.max_delay)
            .with_max_times(policy.max_retries)
            .with_jitter()
            .build()
    }

    /// Takes a session from the pool; the guard gives it back when dropped.
    async fn take_session(&self) -> Result<SlotGuard<'_>, AviError> {
        let permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|_| AviError::Config("client closed".into()))?;
        let slot = self.inner.slots.lock().pop();
        Ok(SlotGuard {
            inner: &self.inner,
            slot,
            _permit: permit,
        })
    }

    async fn send_with_backoff(
        &self,
        method: &Method,
        path: &str,
        body: Option<&Value>,
        backoff: &mut (impl Iterator<Item = Duration> + Send),
    ) -> Result<RawResponse, AviError> {
        let idempotent = is_idempotent(method, body);
        let body = match body {
            Some(v) => Some(Bytes::from(serde_json::to_vec(v).map_err(|source| {
                AviError::Decode {
                    method: method.to_string(),
                    path: path.to_string(),
                    source,
                }
            })?)),
            None => None,
        };
        loop {
            // The session goes back to the pool before any backoff sleep, and also if this future is
            // dropped mid-request.
            let attempt = {
                let mut session = self.take_session().await?;
                self.attempt(session.slot(), method, path, body.clone())
                    .await
            };
            let err = match attempt {
                Attempt::Done(resp) => return Ok(resp),
                Attempt::Fail(err) => return Err(err),
                Attempt::Retry(err) => err,
                Attempt::Ambiguous(err) if idempotent => err,
                Attempt::Ambiguous(err) => {
                    return Err(AviError::OutcomeUnknown {
                        method: method.to_string(),
                        path: path.to_string(),
                        reason: format!(
                            "{method} is not idempotent, so the client did not repeat it"
                        ),
                        source: Box::new(err),
                    });
                }
            };
            self.wait_before_retry(method, path, err, backoff).await?;
        }
    }

    /// Sleeps before the next try: the backoff delay, or the controller's `Retry-After` when longer. Gives
    /// up with `err` when the retries are used up, and with [`AviError::RetryAfterTooLong`] when the
    /// controller asks for more than the cap.
    async fn wait_before_retry(
        &self,
        method: &Method,
        path: &str,
        err: AviError,
        backoff: &mut (impl Iterator<Item = Duration> + Send),
    ) -> Result<(), AviError> {
        let cap = self.inner.config.max_retry_after;
        let asked = err.retry_after();
        if asked.is_some_and(|ra| ra > cap) {
            return Err(retry_after_too_long(err, cap));
        }
        let Some(delay) = backoff.next() else {
            return Err(err);
        };
        let delay = asked.map_or(delay, |ra| ra.max(delay));
        tracing::debug!(%method, path, error = %err, ?delay, "retrying Avi request");
        if let Some(m) = &self.inner.config.metrics {
            m.retries.inc();
        }
        tokio::time::sleep(delay).await;
        Ok(())
    }

    async fn attempt(
        &self,
        slot: &mut SessionSlot,
        method: &Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Attempt {
        let mut relogged = false;
        loop {
            if slot.cookies.is_none() {
                match self.login(slot).await {
                    Ok(()) => {}
                    Err(err) if err.is_retryable_by_client() => return Attempt::Retry(err),
                    Err(err) => return Attempt::Fail(err),
                }
            }
            let unknown_version = self.inner.version.read().is_none();
            if unknown_version && let Err(err) = self.discover_version(slot).await {
                return if err.is_retryable_by_client() {
                    Attempt::Retry(err)
                } else {
                    Attempt::Fail(err)
                };
            }
            let resp = match self.raw_request(slot, method, path, body.clone()).await {
                Ok(resp) => resp,
                Err(err) if is_connect_error(&err) => return Attempt::Retry(err),
                Err(err @ AviError::Transport { .. }) => return Attempt::Ambiguous(err),
                Err(err) => return Attempt::Fail(err),
            };
            match resp.status {
                200..=299 => return Attempt::Done(resp),
                401 | 419 if !relogged => {
                    tracing::debug!(%method, path, status = resp.status, "session refused; logging in again");
                    slot.cookies = None;
                    relogged = true;
                }
                status => {
                    let err = AviError::Status {
                        method: method.to_string(),
                        path: path.to_string(),
                        status,
                        message: controller_message(&resp.body),
                        retry_after: retry_after(&resp.headers),
                    };
                    if status == 401 || status == 419 {
                        slot.cookies = None;
                    }
                    return match status {
                        // Refused before processing.
                        408 | 429 => Attempt::Retry(err),
                        // The controller may have applied the request before failing.
                        500..=599 => Attempt::Ambiguous(err),
                        _ => Attempt::Fail(err),
                    };
                }
            }
        }
    }

    fn url(&self, path: &str) -> String {
        let path = path.trim_start_matches('/');
        format!("{}/{}", self.inner.base, path)
    }

    /// Waits for the request budget, then asks the fence about a write: returns the request's timeout (the
    /// configured one, shortened to the leadership's remaining time for a write).
    async fn gate(&self, method: &Method, path: &str) -> Result<Duration, AviError> {
        let waited = self.inner.budget.acquire().await;
        if let Some(m) = &self.inner.config.metrics {
            m.waited(waited);
            m.budget_rate.set(self.inner.budget.rate());
        }
        let mut timeout = self.inner.config.request_timeout;
        if *method != Method::GET
            && let Some(fence) = &self.inner.config.write_fence
        {
            match (fence.0)() {
                Some(left) => timeout = timeout.min(left),
                None => {
                    if let Some(m) = &self.inner.config.metrics {
                        m.fenced.inc();
                    }
                    tracing::debug!(%method, path, "write not sent: this replica no longer leads");
                    return Err(AviError::Fenced);
                }
            }
        }
        Ok(timeout)
    }

    /// Counts an answer (or its absence) and tells the budget whether the controller signals overload.
    fn observe_answer(&self, method: &Method, path: &str, status: Option<u16>) {
        match status {
            None | Some(429 | 500..=599) => self.inner.budget.overloaded(),
            Some(_) => self.inner.budget.answered(),
        }
        if let Some(m) = &self.inner.config.metrics {
            m.request(path, method.as_str(), status);
        }
    }

    async fn raw_request(
        &self,
        slot: &mut SessionSlot,
        method: &Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<RawResponse, AviError> {
        let timeout = self.gate(method, path).await?;
        let mut req = self
            .inner
            .http
            .request(method.clone(), self.url(path))
            .timeout(timeout);
        req = req
            .header("Referer", self.inner.base.as_str())
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .header("X-Avi-Tenant", &*self.tenant);
        if let Some(version) = self.inner.version.read().clone() {
            req = req.header("X-Avi-Version", version);
        }
        if let Some(c) = &slot.cookies {
            // The error text never includes the value (a session id).
            let mut value = HeaderValue::from_str(&c.header()).map_err(|_| {
                AviError::Config(
                    "the controller issued a session cookie that is not a valid header value"
                        .into(),
                )
            })?;
            value.set_sensitive(true);
            let mut csrf = HeaderValue::from_str(&c.csrftoken).map_err(|_| {
                AviError::Config(
                    "the controller issued a CSRF token that is not a valid header value".into(),
                )
            })?;
            csrf.set_sensitive(true);
            req = req.header("Cookie", value).header("X-CSRFToken", csrf);
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        let resp = req.send().await.map_err(|source| {
            self.observe_answer(method, path, None);
            AviError::Transport {
                method: method.to_string(),
                path: path.to_string(),
                source,
            }
        })?;
        let status = resp.status().as_u16();
        self.observe_answer(method, path, Some(status));
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(|source| AviError::Transport {
            method: method.to_string(),
            path: path.to_string(),
            source,
        })?;
        if let Some(c) = slot.cookies.as_mut() {
            c.update(&headers);
        }
        tracing::trace!(%method, path, status, "Avi request");
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }

    async fn login(&self, slot: &mut SessionSlot) -> Result<(), AviError> {
        let creds = &self.inner.config.credentials;
        let form = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("username", &creds.username);
            match &creds.secret {
                Secret::Password(p) => form.append_pair("password", p),
                Secret::Token(t) => form.append_pair("token", t),
            };
            form.finish()
        };
        let waited = self.inner.budget.acquire().await;
        if let Some(m) = &self.inner.config.metrics {
            m.waited(waited);
        }
        let resp = self
            .inner
            .http
            .post(self.url("login"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|source| {
                self.observe_answer(&Method::POST, "/login", None);
                AviError::Transport {
                    method: "POST".into(),
                    path: "/login".into(),
                    source,
                }
            })?;
        let status = resp.status().as_u16();
        self.observe_answer(&Method::POST, "/login", Some(status));
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(|source| AviError::Transport {
            method: "POST".into(),
            path: "/login".into(),
            source,
        })?;
        if !(200..300).contains(&status) {
            let message = controller_message(&body);
            if matches!(status, 408 | 429 | 500..=599) {
                return Err(AviError::Status {
                    method: "POST".into(),
                    path: "/login".into(),
                    status,
                    message,
                    retry_after: retry_after(&headers),
                });
            }
            return Err(AviError::Login { status, message });
        }
        let mut cookies = SessionCookies::default();
        for c in set_cookies(&headers) {
            match c.name() {
                "csrftoken" => cookies.csrftoken = c.value().to_string(),
                "avi-sessionid" => cookies.session_id = c.value().to_string(),
                "sessionid" if cookies.session_id.is_empty() => {
                    cookies.session_id = c.value().to_string()
                }
                _ => {}
            }
        }
        if cookies.csrftoken.is_empty() || cookies.session_id.is_empty() {
            return Err(AviError::Login {
                status,
                message: "login answer lacks the csrftoken or session cookie".into(),
            });
        }
        tracing::debug!(controller = %self.inner.base, user = %creds.username, "logged in to the Avi Controller");
        slot.cookies = Some(cookies);
        Ok(())
    }

    async fn discover_version(&self, slot: &mut SessionSlot) -> Result<(), AviError> {
        let method = Method::GET;
        let path = "/api/initial-data";
        let resp = self.raw_request(slot, &method, path, None).await?;
        if !(200..300).contains(&resp.status) {
            return Err(AviError::Status {
                method: method.to_string(),
                path: path.into(),
                status: resp.status,
                message: controller_message(&resp.body),
                retry_after: retry_after(&resp.headers),
            });
        }
        let value: Value = resp.json(&method, path)?;
        let version = value
            .pointer("/version/Version")
            .and_then(Value::as_str)
            .ok_or_else(|| AviError::Config("/api/initial-data has no version.Version".into()))?;
        tracing::info!(version, "discovered the Avi Controller version");
        *self.inner.version.write() = Some(version.to_string());
        Ok(())
    }

    async fn json_call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, AviError> {
        let resp = self.send(method.clone(), path, body).await?;
        resp.json(&method, path)
    }

    /// GET a path under the controller and decode it.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, AviError> {
        self.json_call(Method::GET, path, None).await
    }

    /// One page of a collection.
    pub async fn list_page<T: AviObject>(
        &self,
        query: &ListQuery,
    ) -> Result<CollectionPage<T>, AviError> {
        let path = format!(
            "/api/{}?{}",
            T::OBJ_TYPE,
            query.to_query(self.inner.config.page_size)
        );
        self.get_json(&path).await
    }

    /// Every object matching the query, following `next` links.
    pub async fn list<T: AviObject>(&self, query: &ListQuery) -> Result<Vec<T>, AviError> {
        let mut out = Vec::new();
        self.list_each(query, |o| out.push(o)).await?;
        Ok(out)
    }

    /// Every object matching the query, handed to `f` page by page as the pages arrive (following `next`
    /// links), so a caller that keeps a compact form never holds every object of a large collection at once.
    pub async fn list_each<T: AviObject>(
        &self,
        query: &ListQuery,
        mut f: impl FnMut(T) + Send,
    ) -> Result<(), AviError> {
        let mut path = format!(
            "/api/{}?{}",
            T::OBJ_TYPE,
            query.to_query(self.inner.config.page_size)
        );
        loop {
            let page: CollectionPage<T> = self.get_json(&path).await?;
            let n = page.results.len();
            page.results.into_iter().for_each(&mut f);
            match page.next.as_deref().and_then(next_path) {
                Some(next) if n > 0 && next != path => path = next,
                _ => return Ok(()),
            }
        }
    }

    /// GET by uuid.
    pub async fn get<T: AviObject>(&self, uuid: &str) -> Result<T, AviError> {
        self.get_json(&format!("/api/{}/{}", T::OBJ_TYPE, uuid))
            .await
    }

    /// GET by uuid, `None` on 404.
    pub async fn get_opt<T: AviObject>(&self, uuid: &str) -> Result<Option<T>, AviError> {
        match self.get::<T>(uuid).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The object with this name in the client's tenant, if any.
    pub async fn get_by_name<T: AviObject>(&self, name: &str) -> Result<Option<T>, AviError> {
        let page: CollectionPage<T> = self.list_page(&ListQuery::by_name(name)).await?;
        Ok(page.results.into_iter().find(|o| o.name() == name))
    }

    /// POST. The client's `created_by` ([`ClientConfig::created_by`]) is stamped on an object that carries
    /// none. A 409 (duplicate name) re-reads the existing object by name and adopts it only when its
    /// `created_by` is this client's, else [`AviError::Conflict`] names the owner. After a failure that
    /// leaves open whether the POST was applied (transport error once sent, 5xx), the object is read back
    /// by name: found and ours, it is the result; absent, the POST is repeated (within the retry policy);
    /// unreadable, the error is [`AviError::OutcomeUnknown`].
    pub async fn create<T: AviObject>(&self, object: &T) -> Result<Created<T>, AviError> {
        let path = format!("/api/{}", T::OBJ_TYPE);
        let mut body = to_value(object, &path)?;
        if T::HAS_CREATED_BY
            && object.created_by().is_none()
            && let (Some(creator), Some(fields)) = (self.created_by(), body.as_object_mut())
        {
            fields.insert("created_by".into(), Value::String(creator.to_string()));
        }
        let expected = self.created_by().or(object.created_by());
        let mut backoff = self.backoff();
        loop {
            let err = match self
                .send_with_backoff(&Method::POST, &path, Some(&body), &mut backoff)
                .await
            {
                Ok(resp) => {
                    return Ok(Created {
                        object: resp.json(&Method::POST, &path)?,
                        already_existed: false,
                    });
                }
                Err(err) => err,
            };
            if err.is_conflict() {
                tracing::debug!(
                    obj_type = T::OBJ_TYPE,
                    name = object.name(),
                    "already exists; reading it back"
                );
                return match self.get_by_name::<T>(object.name()).await? {
                    Some(existing) => adopt(existing, expected, true),
                    None => Err(AviError::ConflictNotFound {
                        obj_type: T::OBJ_TYPE,
                        name: object.name().into(),
                    }),
                };
            }
            let AviError::OutcomeUnknown { source, .. } = err else {
                return Err(err);
            };
            // The POST may have been applied: learn it by name before repeating it.
            match self.get_by_name::<T>(object.name()).await {
                Ok(Some(existing)) => {
                    tracing::debug!(
                        obj_type = T::OBJ_TYPE,
                        name = object.name(),
                        error = %source,
                        "the failed create was applied; read back by name"
                    );
                    return adopt(existing, expected, false);
                }
                Ok(None) => {
                    tracing::debug!(
                        obj_type = T::OBJ_TYPE,
                        name = object.name(),
                        error = %source,
                        "the failed create was not applied; repeating it"
                    );
                    self.wait_before_retry(&Method::POST, &path, *source, &mut backoff)
                        .await?;
                }
                Err(read_err) => {
                    return Err(AviError::OutcomeUnknown {
                        method: Method::POST.to_string(),
                        path,
                        reason: format!(
                            "reading {:?} back by name failed: {read_err}",
                            object.name()
                        ),
                        source,
                    });
                }
            }
        }
    }

    /// PUT (full replacement) of an object that has a uuid.
    pub async fn update<T: AviObject>(&self, object: &T) -> Result<T, AviError> {
        let uuid = object.uuid().ok_or_else(|| AviError::MissingUuid {
            obj_type: T::OBJ_TYPE,
            name: object.name().into(),
        })?;
        let path = format!("/api/{}/{}", T::OBJ_TYPE, uuid);
        let body = to_value(object, &path)?;
        self.json_call(Method::PUT, &path, Some(&body)).await
    }

    /// PATCH `{"<op>": fields}`.
    pub async fn patch<T: AviObject>(
        &self,
        uuid: &str,
        op: PatchOp,
        fields: Value,
    ) -> Result<T, AviError> {
        let path = format!("/api/{}/{}", T::OBJ_TYPE, uuid);
        let mut body = serde_json::Map::new();
        body.insert(op.as_str().to_string(), fields);
        self.json_call(Method::PATCH, &path, Some(&Value::Object(body)))
            .await
    }

    /// DELETE by uuid.
    pub async fn delete<T: AviObject>(&self, uuid: &str) -> Result<(), AviError> {
        let path = format!("/api/{}/{}", T::OBJ_TYPE, uuid);
        self.send(Method::DELETE, &path, None).await.map(|_| ())
    }

    /// DELETE by uuid; `false` when it was already gone (404).
    pub async fn delete_if_exists<T: AviObject>(&self, uuid: &str) -> Result<bool, AviError> {
        match self.delete::<T>(uuid).await {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `GET /api/ipamdnsproviderprofiledomainlist?cloud_uuid=…`.
    pub async fn dns_domains(&self, cloud_uuid: &str) -> Result<DomainList, AviError> {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("cloud_uuid", cloud_uuid)
            .finish();
        self.get_json(&format!("/api/ipamdnsproviderprofiledomainlist?{q}"))
            .await
    }

    /// `GET /api/virtualservice/<uuid>/runtime` (raw JSON).
    pub async fn vs_runtime(&self, uuid: &str) -> Result<Value, AviError> {
        self.get_json(&format!("/api/virtualservice/{uuid}/runtime"))
            .await
    }

    /// `POST /logout` on every logged-in session.
    pub async fn logout(&self) {
        let sessions: Vec<SessionSlot> = std::mem::take(&mut *self.inner.slots.lock());
        let mut returned = Vec::with_capacity(sessions.len());
        for mut slot in sessions {
            if slot.cookies.is_some() {
                let _ = self
                    .raw_request(&mut slot, &Method::POST, "/logout", None)
                    .await;
                slot.cookies = None;
            }
            returned.push(slot);
        }
        self.inner.slots.lock().extend(returned);
    }
}

/// Takes an existing object as the result of a create if it was created by `expected`.
fn adopt<T: AviObject>(
    existing: T,
    expected: Option<&str>,
    already_existed: bool,
) -> Result<Created<T>, AviError> {
    match (existing.created_by(), expected) {
        (_, Some(expected)) if existing.owned_by(expected) => Ok(Created {
            object: existing,
            already_existed,
        }),
        (owner, expected) => Err(AviError::Conflict {
            obj_type: T::OBJ_TYPE,
            name: existing.name().to_string(),
            uuid: existing.uuid().map(str::to_string),
            owner: owner.map(str::to_string),
            expected: expected.map(str::to_string),
        }),
    }
}

fn to_value<T: serde::Serialize>(object: &T, path: &str) -> Result<Value, AviError> {
    serde_json::to_value(object).map_err(|source| AviError::Decode {
        method: "serialize".into(),
        path: path.to_string(),
        source,
    })
}

/// The operations the reconciler needs (observe → plan → apply), so it can run against a fake.
pub trait AviApi: Send + Sync {
    fn list<T: AviObject>(
        &self,
        query: &ListQuery,
    ) -> impl Future<Output = Result<Vec<T>, AviError>> + Send;
    /// Every object matching the query, handed to `f` as the pages arrive.
    fn list_each<T: AviObject>(
        &self,
        query: &ListQuery,
        f: impl FnMut(T) + Send,
    ) -> impl Future<Output = Result<(), AviError>> + Send;
    fn get<T: AviObject>(
        &self,
        uuid: &str,
    ) -> impl Future<Output = Result<Option<T>, AviError>> + Send;
    fn get_by_name<T: AviObject>(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<T>, AviError>> + Send;
    fn create<T: AviObject>(
        &self,
        object: &T,
    ) -> impl Future<Output = Result<Created<T>, AviError>> + Send;
    fn update<T: AviObject>(&self, object: &T) -> impl Future<Output = Result<T, AviError>> + Send;
    fn patch<T: AviObject>(
        &self,
        uuid: &str,
        op: PatchOp,
        fields: Value,
    ) -> impl Future<Output = Result<T, AviError>> + Send;
    /// `Ok(false)` when the object was already gone.
    fn delete<T: AviObject>(
        &self,
        uuid: &str,
    ) -> impl Future<Output = Result<bool, AviError>> + Send;
}

impl AviApi for AviClient {
    async fn list<T: AviObject>(&self, query: &ListQuery) -> Result<Vec<T>, AviError> {
        AviClient::list(self, query).await
    }
    async fn list_each<T: AviObject>(
        &self,
        query: &ListQuery,
        f: impl FnMut(T) + Send,
    ) -> Result<(), AviError> {
        AviClient::list_each(self, query, f).await
    }
    async fn get<T: AviObject>(&self, uuid: &str) -> Result<Option<T>, AviError> {
        self.get_opt(uuid).await
    }
    async fn get_by_name<T: AviObject>(&self, name: &str) -> Result<Option<T>, AviError> {
        AviClient::get_by_name(self, name).await
    }
    async fn create<T: AviObject>(&self, object: &T) -> Result<Created<T>, AviError> {
        AviClient::create(self, object).await
    }
    async fn update<T: AviObject>(&self, object: &T) -> Result<T, AviError> {
        AviClient::update(self, object).await
    }
    async fn patch<T: AviObject>(
        &self,
        uuid: &str,
        op: PatchOp,
        fields: Value,
    ) -> Result<T, AviError> {
        AviClient::patch(self, uuid, op, fields).await
    }
    async fn delete<T: AviObject>(&self, uuid: &str) -> Result<bool, AviError> {
        self.delete_if_exists::<T>(uuid).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_debug_never_shows_the_secret() {
        for creds in [
            Credentials::password("admin", "s3cr3t-pw"),
            Credentials::token("admin", "tok-123456"),
        ] {
            let shown = format!("{creds:?}");
            assert!(
                shown.contains("admin") && shown.contains("<redacted>"),
                "{shown}"
            );
            assert!(
                !shown.contains("s3cr3t-pw") && !shown.contains("tok-123456"),
                "{shown}"
            );
            let config = ClientConfig::new("10.0.0.1", creds);
            let shown = format!("{config:?}");
            assert!(
                !shown.contains("s3cr3t-pw") && !shown.contains("tok-123456"),
                "{shown}"
            );
        }
    }

    #[test]
    fn controller_addresses_normalise_to_an_https_base() {
        let cases = [
            ("10.10.10.10", Ok("https://10.10.10.10")),
            ("avi.lab:9443", Ok("https://avi.lab:9443")),
            ("https://avi.lab/", Ok("https://avi.lab")),
            ("https://127.0.0.1:8443", Ok("https://127.0.0.1:8443")),
            ("ftp://avi.lab", Err(())),
            ("http://avi.lab", Err(())),
            ("https://admin:pw@avi.lab", Err(())),
            ("HTTP://avi.lab:80", Err(())),
            ("", Err(())),
        ];
        for (input, want) in cases {
            assert_eq!(
                normalize_base(input, false).map_err(|_| ()),
                want.map(str::to_string),
                "{input}"
            );
        }
        assert_eq!(
            normalize_base("http://127.0.0.1:8080/", true)
                .ok()
                .as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert!(normalize_base("ftp://avi.lab", true).is_err());
    }

    #[test]
    fn only_get_put_delete_and_patch_replace_are_idempotent() {
        let replace = serde_json::json!({"replace": {"description": "x"}});
        let add = serde_json::json!({"add": {"servers": []}});
        let mixed = serde_json::json!({"replace": {}, "delete": {}});
        let cases = [
            (Method::GET, None, true),
            (Method::PUT, Some(&replace), true),
            (Method::DELETE, None, true),
            (Method::PATCH, Some(&replace), true),
            (Method::PATCH, Some(&add), false),
            (Method::PATCH, Some(&mixed), false),
            (Method::PATCH, None, false),
            (Method::POST, Some(&replace), false),
        ];
        for (method, body, want) in cases {
            assert_eq!(is_idempotent(&method, body), want, "{method} {body:?}");
        }
    }

    #[test]
    fn session_cookies_come_from_set_cookie_and_ignore_deletions() {
        let mut headers = HeaderMap::new();
        for v in [
            "csrftoken=3tHc4Xa16YxZ; expires=Tue, 20-Jul-2021 07:51:35 GMT; Max-Age=31449600; Path=/; Secure",
            "avi-sessionid=ecrd8sbr; expires=Wed, 22-Jul-2020 07:51:35 GMT; HttpOnly; Max-Age=86400; Path=/; Secure; SameSite=None",
            "sessionid=ecrd8sbr; HttpOnly; Max-Age=86400; Path=/; Secure",
            "other=1",
            "not a cookie",
        ] {
            headers.append(
                reqwest::header::SET_COOKIE,
                HeaderValue::from_str(v).expect("header"),
            );
        }
        let mut cookies = SessionCookies::default();
        cookies.update(&headers);
        assert_eq!(
            (cookies.csrftoken.as_str(), cookies.session_id.as_str()),
            ("3tHc4Xa16YxZ", "ecrd8sbr")
        );
        assert_eq!(
            cookies.header(),
            "csrftoken=3tHc4Xa16YxZ; sessionid=ecrd8sbr; avi-sessionid=ecrd8sbr"
        );

        let mut later = HeaderMap::new();
        for v in [
            "sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/",
            "sessionid=None; Path=/",
            "avi-sessionid=; Path=/",
        ] {
            later.append(
                reqwest::header::SET_COOKIE,
                HeaderValue::from_str(v).expect("header"),
            );
        }
        cookies.update(&later);
        assert_eq!(cookies.session_id, "ecrd8sbr", "deletions are ignored");

        let shown = format!("{cookies:?}");
        let shown = format!(
            "{shown} {:?}",
            SessionSlot {
                cookies: Some(cookies)
            }
        );
        assert!(
            !shown.contains("3tHc4Xa16YxZ") && !shown.contains("ecrd8sbr"),
            "{shown}"
        );
    }

    #[test]
    fn next_links_are_reduced_to_the_api_path() {
        let cases = [
            (
                "https://10.0.0.1/api/pool?page=2&page_size=100",
                Some("/api/pool?page=2&page_size=100"),
            ),
            (
                "https://evil.example//api/vsvip?page=3",
                Some("/api/vsvip?page=3"),
            ),
            ("https://host/other", None),
        ];
        for (next, want) in cases {
            assert_eq!(next_path(next).as_deref(), want, "{next}");
        }
    }

    #[test]
    fn list_query_encodes_the_filters() {
        let q = ListQuery {
            name: Some("a b".into()),
            created_by: Some("ako-c1".into()),
            cloud_name: Some("Default-Cloud".into()),
            fields: vec!["name".into(), "uuid".into()],
            include_name: true,
            page_size: Some(500),
            extra: vec![("name.contains".into(), "c1--".into())],
        };
        assert_eq!(
            q.to_query(100),
            "name=a+b&created_by=ako-c1&cloud_ref.name=Default-Cloud&fields=name%2Cuuid&include_name=true\
             &name.contains=c1--&page_size=200"
        );
        assert_eq!(ListQuery::default().to_query(100), "page_size=100");
    }
}
