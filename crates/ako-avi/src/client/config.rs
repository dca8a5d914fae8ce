//! What a client is made of and speaks in: credentials (never in `Debug`), the retry policy, the configuration,
//! the write fence, list queries, patch operations and raw answers.

#[allow(clippy::wildcard_imports)]
use super::*;

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
