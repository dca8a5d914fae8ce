//! The async Avi Controller client: session login with CSRF, a bounded pool of sessions, re-login on
//! 401/419 (once per failure), retries with exponential backoff and jitter honouring `Retry-After`,
//! pagination by `next`, and typed CRUD over [`AviObject`] models.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Semaphore;

use super::error::{AviError, controller_message};
use super::models::{AviObject, CollectionPage, DomainList};

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
        }
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

/// Result of a create: the object, and whether it already existed (409 re-read by name).
#[derive(Debug, Clone, PartialEq)]
pub struct Created<T> {
    pub object: T,
    pub already_existed: bool,
}

/// A raw answer of the controller.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
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

#[derive(Default)]
struct SessionCookies {
    csrftoken: String,
    session_id: String,
}

#[derive(Default)]
struct SessionSlot {
    cookies: Option<SessionCookies>,
}

struct Inner {
    http: reqwest::Client,
    /// `https://host[:port]`, no trailing slash.
    base: String,
    config: ClientConfig,
    version: parking_lot::RwLock<Option<String>>,
    slots: parking_lot::Mutex<Vec<SessionSlot>>,
    permits: Semaphore,
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

/// Normalises `host`, `host:port`, `https://host/` to `https://host[:port]`.
pub fn normalize_base(controller: &str) -> Result<String, AviError> {
    let trimmed = controller.trim().trim_end_matches('/');
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("https://{trimmed}")
    };
    let url = url::Url::parse(&with_scheme)
        .map_err(|e| AviError::Config(format!("controller {controller:?}: {e}")))?;
    let host = url
        .host_str()
        .ok_or_else(|| AviError::Config(format!("controller {controller:?} has no host")))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(AviError::Config(format!(
            "controller {controller:?}: scheme must be https"
        )));
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

fn set_cookie_values(headers: &HeaderMap) -> impl Iterator<Item = (String, String)> + '_ {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| {
            let s = v.to_str().ok()?;
            let pair = s.split(';').next()?;
            let (k, v) = pair.split_once('=')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

enum Attempt {
    Done(RawResponse),
    Retry(AviError),
    Fail(AviError),
}

impl AviClient {
    /// Builds a client; does not contact the controller (login is lazy, per session).
    pub fn new(config: ClientConfig) -> Result<Self, AviError> {
        let base = normalize_base(&config.controller)?;
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

    /// Forgets every session, so the next request logs in again.
    pub fn reset_sessions(&self) {
        for slot in self.inner.slots.lock().iter_mut() {
            slot.cookies = None;
        }
    }

    /// Sends a request with retries and re-login; returns any answered status (callers map errors).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<RawResponse, AviError> {
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
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|_| AviError::Config("client closed".into()))?;
        let mut slot = self.inner.slots.lock().pop().unwrap_or_default();
        let result = self.send_with_slot(&mut slot, &method, path, body).await;
        self.inner.slots.lock().push(slot);
        result
    }

    async fn send_with_slot(
        &self,
        slot: &mut SessionSlot,
        method: &Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<RawResponse, AviError> {
        let policy = self.inner.config.retry;
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(policy.min_delay)
            .with_max_delay(policy.max_delay)
            .with_max_times(policy.max_retries)
            .with_jitter()
            .build();
        loop {
            match self.attempt(slot, method, path, body.clone()).await {
                Attempt::Done(resp) => return Ok(resp),
                Attempt::Fail(err) => return Err(err),
                Attempt::Retry(err) => match backoff.next() {
                    Some(delay) => {
                        let delay = err
                            .retry_after()
                            .map_or(delay, |ra| ra.max(delay).min(policy.max_delay.max(ra)));
                        tracing::debug!(%method, path, error = %err, ?delay, "retrying Avi request");
                        tokio::time::sleep(delay).await;
                    }
                    None => return Err(err),
                },
            }
        }
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
                Err(err) => return Attempt::Retry(err),
            };
            match resp.status {
                200..=299 => return Attempt::Done(resp),
                401 | 419 if !relogged => {
                    tracing::debug!(%method, path, status = resp.status, "session refused; logging in again");
                    slot.cookies = None;
                    relogged = true;
                }
                _ => {
                    let err = AviError::Status {
                        method: method.to_string(),
                        path: path.to_string(),
                        status: resp.status,
                        message: controller_message(&resp.body),
                        retry_after: retry_after(&resp.headers),
                    };
                    if resp.status == 401 || resp.status == 419 {
                        slot.cookies = None;
                    }
                    return if err.is_retryable_by_client() {
                        Attempt::Retry(err)
                    } else {
                        Attempt::Fail(err)
                    };
                }
            }
        }
    }

    fn url(&self, path: &str) -> String {
        let path = path.trim_start_matches('/');
        format!("{}/{}", self.inner.base, path)
    }

    async fn raw_request(
        &self,
        slot: &mut SessionSlot,
        method: &Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<RawResponse, AviError> {
        let mut req = self.inner.http.request(method.clone(), self.url(path));
        req = req
            .header("Referer", self.inner.base.as_str())
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .header("X-Avi-Tenant", &*self.tenant);
        if let Some(version) = self.inner.version.read().clone() {
            req = req.header("X-Avi-Version", version);
        }
        if let Some(c) = &slot.cookies {
            let cookie = format!(
                "csrftoken={0}; sessionid={1}; avi-sessionid={1}",
                c.csrftoken, c.session_id
            );
            let mut value = HeaderValue::from_str(&cookie)
                .map_err(|e| AviError::Config(format!("cookie: {e}")))?;
            value.set_sensitive(true);
            let mut csrf = HeaderValue::from_str(&c.csrftoken)
                .map_err(|e| AviError::Config(format!("csrf token: {e}")))?;
            csrf.set_sensitive(true);
            req = req.header("Cookie", value).header("X-CSRFToken", csrf);
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        let resp = req.send().await.map_err(|source| AviError::Transport {
            method: method.to_string(),
            path: path.to_string(),
            source,
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(|source| AviError::Transport {
            method: method.to_string(),
            path: path.to_string(),
            source,
        })?;
        if let Some(c) = slot.cookies.as_mut() {
            for (k, v) in set_cookie_values(&headers) {
                match k.as_str() {
                    "avi-sessionid" | "sessionid" if !v.is_empty() && v != "None" => {
                        c.session_id = v
                    }
                    "csrftoken" if !v.is_empty() => c.csrftoken = v,
                    _ => {}
                }
            }
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
        let resp = self
            .inner
            .http
            .post(self.url("login"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|source| AviError::Transport {
                method: "POST".into(),
                path: "/login".into(),
                source,
            })?;
        let status = resp.status().as_u16();
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
        for (k, v) in set_cookie_values(&headers) {
            match k.as_str() {
                "csrftoken" => cookies.csrftoken = v,
                "avi-sessionid" => cookies.session_id = v,
                "sessionid" if cookies.session_id.is_empty() => cookies.session_id = v,
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
        let mut path = format!(
            "/api/{}?{}",
            T::OBJ_TYPE,
            query.to_query(self.inner.config.page_size)
        );
        let mut out = Vec::new();
        loop {
            let page: CollectionPage<T> = self.get_json(&path).await?;
            let n = page.results.len();
            out.extend(page.results);
            match page.next.as_deref().and_then(next_path) {
                Some(next) if n > 0 && next != path => path = next,
                _ => return Ok(out),
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

    /// POST; a 409 (duplicate name) re-reads the existing object by name.
    pub async fn create<T: AviObject>(&self, object: &T) -> Result<Created<T>, AviError> {
        let path = format!("/api/{}", T::OBJ_TYPE);
        let body = to_value(object, &path)?;
        match self.json_call::<T>(Method::POST, &path, Some(&body)).await {
            Ok(object) => Ok(Created {
                object,
                already_existed: false,
            }),
            Err(err) if err.is_conflict() => {
                tracing::debug!(
                    obj_type = T::OBJ_TYPE,
                    name = object.name(),
                    "already exists; reading it back"
                );
                match self.get_by_name::<T>(object.name()).await? {
                    Some(existing) => Ok(Created {
                        object: existing,
                        already_existed: true,
                    }),
                    None => Err(AviError::ConflictNotFound {
                        obj_type: T::OBJ_TYPE,
                        name: object.name().into(),
                    }),
                }
            }
            Err(err) => Err(err),
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
            ("", Err(())),
        ];
        for (input, want) in cases {
            assert_eq!(
                normalize_base(input).map_err(|_| ()),
                want.map(str::to_string),
                "{input}"
            );
        }
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
