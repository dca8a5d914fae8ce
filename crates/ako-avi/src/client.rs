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

mod config;
mod objects;
mod session;

pub use config::*;
#[allow(clippy::wildcard_imports)]
use session::*;

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
    /// Whether an object of any collection (`wafpolicy`, `sslprofile`...) has this name in the client's
    /// tenant: what a HostRule or HTTPRule names must exist.
    fn exists(
        &self,
        obj_type: &str,
        name: &str,
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
    async fn exists(&self, obj_type: &str, name: &str) -> Result<bool, AviError> {
        AviClient::exists(self, obj_type, name).await
    }
}

#[cfg(test)]
mod tests;
