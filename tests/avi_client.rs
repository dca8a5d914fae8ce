//! The Avi client against small fake controllers on 127.0.0.1 (plain HTTP with the explicit opt-in), for the
//! failure modes the emulator does not stage: huge `Retry-After`, cancelled requests, writes applied
//! before the connection dropped or a 502, 409 on objects of other owners, cookie deletions, and secrets
//! in `Debug` output.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ako::avi::client::RawResponse;
use ako::avi::models::{IpAddr, Pool, Server, SslKeyAndCertificate};
use ako::avi::{AviClient, AviError, ClientConfig, Credentials, ListQuery, PatchOp, RetryPolicy};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use cookie::Cookie;
use serde_json::{Value, json};

const PASSWORD: &str = "pw-Sup3r-s3cret";

/// What the fake does to the next request of a method under `/api`.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Apply the write, then answer 502.
    ApplyThen502,
    /// Apply the write, then drop the connection in the middle of the answer.
    ApplyThenDrop,
    /// Answer 502 without applying anything.
    Fail502,
    /// Answer this status with `Retry-After: <secs>`, without applying anything.
    RetryAfter(u16, u64),
    /// Answer with a cookie deletion (Django style) after handling the request.
    DeleteSessionCookie,
}

/// A fake controller: login with CSRF and session cookies, `/api/pool` with name uniqueness (409),
/// `PATCH` add/replace, `PUT`, and scripted faults.
#[derive(Default)]
struct Fake {
    pools: parking_lot::Mutex<Vec<Value>>,
    faults: parking_lot::Mutex<HashMap<Method, VecDeque<Fault>>>,
    calls: parking_lot::Mutex<HashMap<String, usize>>,
    logins: AtomicUsize,
    /// `GET /api/pool` waits until this is cleared.
    slow_gets: AtomicBool,
}

impl Fake {
    fn calls(&self, method: &str, what: &str) -> usize {
        self.calls
            .lock()
            .get(&format!("{method} {what}"))
            .copied()
            .unwrap_or(0)
    }

    fn fault(&self, method: Method, fault: Fault) {
        self.faults
            .lock()
            .entry(method)
            .or_default()
            .push_back(fault);
    }

    fn pool(&self, name: &str) -> Option<Value> {
        self.pools
            .lock()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
    }

    fn seed(&self, pool: Value) {
        self.pools.lock().push(pool);
    }
}

fn json_response(status: u16, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("response")
}

/// The session cookies the fake issues for login number `n`.
fn session_cookies(n: usize) -> [String; 3] {
    [
        format!(
            "csrftoken=csrf-{n}-tok; expires=Tue, 20-Jul-2021 07:51:35 GMT; Max-Age=31449600; Path=/; Secure"
        ),
        format!(
            "avi-sessionid=sess-{n}-id; HttpOnly; Max-Age=86400; Path=/; Secure; SameSite=None"
        ),
        format!("sessionid=sess-{n}-id; HttpOnly; Max-Age=86400; Path=/; Secure"),
    ]
}

/// Whether the request carries a session of this fake: both session cookies, and an `X-CSRFToken` equal to
/// the `csrftoken` cookie.
fn authenticated(headers: &HeaderMap) -> bool {
    let Some(cookie) = headers.get("cookie").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let jar: HashMap<String, String> = Cookie::split_parse(cookie)
        .filter_map(Result::ok)
        .map(|c| (c.name().to_string(), c.value().to_string()))
        .collect();
    let csrf = headers.get("x-csrftoken").and_then(|v| v.to_str().ok());
    let session = jar.get("avi-sessionid");
    session.is_some_and(|s| s.starts_with("sess-"))
        && jar.get("sessionid") == session
        && csrf.is_some()
        && jar.get("csrftoken").map(String::as_str) == csrf
}

async fn handle(
    State(fake): State<Arc<Fake>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_end_matches('/').to_string();
    let what = path.trim_start_matches("/api/").trim_start_matches('/');
    let what = what.split('/').next().unwrap_or_default().to_string();
    *fake
        .calls
        .lock()
        .entry(format!("{method} {what}"))
        .or_default() += 1;
    if path == "/login" {
        let form: HashMap<String, String> =
            url::form_urlencoded::parse(&body).into_owned().collect();
        if form.get("password").map(String::as_str) != Some(PASSWORD) {
            return json_response(401, &json!({"error": "Invalid credentials"}));
        }
        let n = fake.logins.fetch_add(1, Ordering::SeqCst) + 1;
        let mut resp = json_response(200, &json!({"session_cookie_name": "avi-sessionid"}));
        for c in session_cookies(n) {
            resp.headers_mut()
                .append("set-cookie", c.parse().expect("header"));
        }
        return resp;
    }
    if !authenticated(&headers) {
        return json_response(
            401,
            &json!({"error": "Authentication credentials were not provided."}),
        );
    }
    let fault = fake
        .faults
        .lock()
        .get_mut(&method)
        .and_then(VecDeque::pop_front);
    match fault {
        Some(Fault::Fail502) => return json_response(502, &json!({"error": "Bad Gateway"})),
        Some(Fault::RetryAfter(status, secs)) => {
            let mut resp = json_response(status, &json!({"error": "slow down"}));
            resp.headers_mut()
                .insert("retry-after", secs.to_string().parse().expect("header"));
            return resp;
        }
        _ => {}
    }
    if method == Method::GET && fake.slow_gets.load(Ordering::SeqCst) {
        while fake.slow_gets.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let (status, answer) = pools(&fake, &method, &uri, &body);
    let mut resp = match fault {
        Some(Fault::ApplyThen502) => json_response(502, &json!({"error": "Bad Gateway"})),
        Some(Fault::ApplyThenDrop) => {
            // Headers and a first chunk go out, then the connection breaks.
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(Bytes::from_static(b"{\"name\": \"trunc")),
                Err(std::io::Error::other("connection dropped")),
            ];
            Response::builder()
                .status(status)
                .header("Content-Type", "application/json")
                .body(Body::from_stream(futures::stream::iter(chunks)))
                .expect("response")
        }
        _ => json_response(status, &answer),
    };
    // Like the controller, every answer re-issues the session cookie (sliding expiry)…
    if let Some(session) = headers
        .get("cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| {
            Cookie::split_parse(c)
                .filter_map(Result::ok)
                .find(|c| c.name() == "avi-sessionid")
                .map(|c| c.value().to_string())
        })
    {
        resp.headers_mut().append(
            "set-cookie",
            format!("avi-sessionid={session}; HttpOnly; Max-Age=86400; Path=/; Secure")
                .parse()
                .expect("header"),
        );
    }
    // …and a Django-style deletion must not replace it.
    if matches!(fault, Some(Fault::DeleteSessionCookie)) {
        resp.headers_mut().append(
            "set-cookie",
            "sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/"
                .parse()
                .expect("header"),
        );
    }
    resp
}

/// `/api/pool` semantics: list by name, create with a unique name, PATCH add/replace, PUT.
fn pools(fake: &Fake, method: &Method, uri: &Uri, body: &[u8]) -> (u16, Value) {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let mut pools = fake.pools.lock();
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["api", "pool"]) => {
            let name = uri.query().and_then(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "name")
                    .map(|(_, v)| v.into_owned())
            });
            let results: Vec<Value> = pools
                .iter()
                .filter(|p| name.as_deref().is_none_or(|n| p["name"] == n))
                .cloned()
                .collect();
            (200, json!({"count": results.len(), "results": results}))
        }
        ("POST", ["api", "pool"]) => {
            if pools.iter().any(|p| p["name"] == body["name"]) {
                return (
                    409,
                    json!({"error": "Pool with this Name, Tenant ref and Cloud ref already exists."}),
                );
            }
            let mut obj = body.clone();
            obj["uuid"] = json!(format!("pool-{}", pools.len() + 1));
            pools.push(obj.clone());
            (201, obj)
        }
        ("PATCH", ["api", "pool", uuid]) | ("PUT", ["api", "pool", uuid]) => {
            let Some(obj) = pools.iter_mut().find(|p| p["uuid"] == *uuid) else {
                return (404, json!({"error": "Pool object not found!"}));
            };
            if method == Method::PUT {
                *obj = body;
                obj["uuid"] = json!(uuid);
                return (200, obj.clone());
            }
            if let Some(add) = body.get("add").and_then(Value::as_object) {
                for (k, v) in add {
                    match (obj.get_mut(k).and_then(Value::as_array_mut), v.as_array()) {
                        (Some(list), Some(more)) => list.extend(more.iter().cloned()),
                        _ => obj[k.as_str()] = v.clone(),
                    }
                }
            }
            if let Some(replace) = body.get("replace").and_then(Value::as_object) {
                for (k, v) in replace {
                    obj[k.as_str()] = v.clone();
                }
            }
            (200, obj.clone())
        }
        _ => (404, json!({"error": "unknown endpoint"})),
    }
}

/// Starts the fake on 127.0.0.1; returns its `http://` base.
async fn serve(fake: Arc<Fake>) -> String {
    let app = Router::new().fallback(handle).with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn config(base: &str) -> ClientConfig {
    let mut c = ClientConfig::new(base, Credentials::password("admin", PASSWORD));
    c.allow_insecure_http = true;
    c.controller_version = Some("22.1.5".into());
    c.retry = RetryPolicy {
        max_retries: 4,
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    };
    c.request_timeout = Duration::from_secs(10);
    c.with_cluster_name("c1")
}

async fn start() -> (Arc<Fake>, AviClient) {
    let fake = Arc::new(Fake::default());
    let base = serve(Arc::clone(&fake)).await;
    let api = AviClient::new(config(&base)).expect("client");
    (fake, api)
}

fn pool(name: &str) -> Pool {
    Pool {
        name: name.into(),
        servers: Some(vec![Server {
            ip: Some(IpAddr::v4("10.0.0.1")),
            port: Some(80),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------------
// 1. Retry-After is capped.

#[tokio::test]
async fn a_retry_after_beyond_the_cap_is_returned_at_once_as_a_transient_error() {
    let (fake, api) = start().await;
    for status in [429, 503] {
        fake.fault(Method::GET, Fault::RetryAfter(status, 86_400));
        let started = Instant::now();
        let err = tokio::time::timeout(
            Duration::from_secs(5),
            api.list::<Pool>(&ListQuery::default()),
        )
        .await
        .expect("does not wait for the server's day")
        .expect_err("too long to wait");
        assert!(started.elapsed() < Duration::from_secs(2), "{status}");
        assert!(
            matches!(&err, AviError::RetryAfterTooLong { status: s, retry_after, cap, .. }
                if *s == status && *retry_after == Duration::from_secs(86_400) && *cap == Duration::from_secs(30)),
            "{err:?}"
        );
        assert!(err.is_transient(), "the caller requeues: {err}");
        assert!(!err.is_retryable_by_client());
        assert_eq!(err.retry_after(), Some(Duration::from_secs(86_400)));
        assert!(err.to_string().contains("86400"), "{err}");
    }
    assert_eq!(fake.calls("GET", "pool"), 2, "one try each, no retry");
}

#[tokio::test]
async fn the_retry_after_cap_is_configurable_and_a_shorter_wait_is_honoured() {
    let fake = Arc::new(Fake::default());
    let base = serve(Arc::clone(&fake)).await;
    let mut cfg = config(&base);
    cfg.max_retry_after = Duration::from_secs(1);
    let api = AviClient::new(cfg).expect("client");

    fake.fault(Method::GET, Fault::RetryAfter(429, 2));
    let err = api
        .list::<Pool>(&ListQuery::default())
        .await
        .expect_err("2 s is over the 1 s cap");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
    assert!(matches!(err, AviError::RetryAfterTooLong { .. }), "{err}");

    fake.fault(Method::GET, Fault::RetryAfter(429, 1));
    let started = Instant::now();
    api.list::<Pool>(&ListQuery::default())
        .await
        .expect("waited and retried");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(fake.calls("GET", "pool"), 3);
}

// ---------------------------------------------------------------------------------------------------
// 2. Cancelled requests give their session back.

#[tokio::test]
async fn cancelled_requests_return_their_session_to_the_pool_without_new_logins() {
    let fake = Arc::new(Fake::default());
    let base = serve(Arc::clone(&fake)).await;
    let mut cfg = config(&base);
    cfg.sessions = 2;
    let api = AviClient::new(cfg).expect("client");
    api.list::<Pool>(&ListQuery::default())
        .await
        .expect("first request logs in");
    api.list::<Pool>(&ListQuery::default())
        .await
        .expect("second request reuses the session");
    assert_eq!(fake.logins.load(Ordering::SeqCst), 1);

    fake.slow_gets.store(true, Ordering::SeqCst);
    for _ in 0..6 {
        let cancelled = tokio::time::timeout(
            Duration::from_millis(100),
            api.list::<Pool>(&ListQuery::default()),
        )
        .await;
        assert!(cancelled.is_err(), "the slow server outlasts the timeout");
    }
    fake.slow_gets.store(false, Ordering::SeqCst);
    for _ in 0..4 {
        api.list::<Pool>(&ListQuery::default())
            .await
            .expect("after cancellations");
    }
    assert_eq!(
        fake.logins.load(Ordering::SeqCst),
        1,
        "every cancelled request returned its logged-in session"
    );
}

// ---------------------------------------------------------------------------------------------------
// 3. POST and PATCH are not repeated blindly.

#[tokio::test]
async fn a_create_applied_before_a_502_or_a_dropped_connection_is_read_back_not_repeated() {
    for fault in [Fault::ApplyThen502, Fault::ApplyThenDrop] {
        let (fake, api) = start().await;
        api.list::<Pool>(&ListQuery::default())
            .await
            .expect("warm up");
        fake.fault(Method::POST, fault);
        let created = api
            .create(&pool("web"))
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: read back by name: {e}"));
        assert_eq!(fake.calls("POST", "pool"), 1, "{fault:?}: one POST only");
        assert_eq!(fake.pools.lock().len(), 1, "{fault:?}");
        assert_eq!(created.object.uuid.as_deref(), Some("pool-1"), "{fault:?}");
        assert_eq!(created.object.created_by.as_deref(), Some("ako-c1"));
        assert!(!created.already_existed);
    }
}

#[tokio::test]
async fn a_create_that_failed_without_being_applied_is_repeated() {
    let (fake, api) = start().await;
    fake.fault(Method::POST, Fault::Fail502);
    let created = api.create(&pool("web")).await.expect("repeated");
    assert_eq!(fake.calls("POST", "pool"), 2);
    assert_eq!(fake.calls("GET", "pool"), 1, "one read-back in between");
    assert_eq!(fake.pools.lock().len(), 1);
    assert!(!created.already_existed);
}

#[tokio::test]
async fn a_patch_add_with_an_unknown_outcome_is_not_repeated_and_says_so() {
    for fault in [Fault::ApplyThen502, Fault::ApplyThenDrop] {
        let (fake, api) = start().await;
        let uuid = api
            .create(&pool("web"))
            .await
            .expect("create")
            .object
            .uuid
            .expect("uuid");
        fake.fault(Method::PATCH, fault);
        let err = api
            .patch::<Pool>(
                &uuid,
                PatchOp::Add,
                json!({"servers": [{"ip": {"addr": "10.0.0.2", "type": "V4"}, "port": 80}]}),
            )
            .await
            .expect_err("outcome unknown");
        assert!(
            matches!(&err, AviError::OutcomeUnknown { method, .. } if method == "PATCH"),
            "{fault:?}: {err:?}"
        );
        assert!(err.is_transient(), "{err}");
        assert!(
            err.to_string().contains("may or may not have been applied"),
            "{err}"
        );
        assert_eq!(fake.calls("PATCH", "pool"), 1, "{fault:?}: not repeated");
        let servers = fake.pool("web").expect("pool")["servers"].clone();
        assert_eq!(
            servers.as_array().map(Vec::len),
            Some(2),
            "{fault:?}: the server was added once"
        );
    }
}

#[tokio::test]
async fn idempotent_writes_are_still_retried_after_a_502() {
    let (fake, api) = start().await;
    let mut created = api.create(&pool("web")).await.expect("create").object;
    let uuid = created.uuid.clone().expect("uuid");

    fake.fault(Method::PUT, Fault::ApplyThen502);
    created.description = Some("v2".into());
    let updated = api.update(&created).await.expect("PUT retried");
    assert_eq!(updated.description.as_deref(), Some("v2"));
    assert_eq!(fake.calls("PUT", "pool"), 2);

    fake.fault(Method::PATCH, Fault::ApplyThen502);
    let patched: Pool = api
        .patch(&uuid, PatchOp::Replace, json!({"description": "v3"}))
        .await
        .expect("PATCH replace sets the same value again: retried");
    assert_eq!(patched.description.as_deref(), Some("v3"));
    assert_eq!(fake.calls("PATCH", "pool"), 2);
}

// ---------------------------------------------------------------------------------------------------
// 4. A 409 adopts only this client's objects.

#[tokio::test]
async fn a_conflict_adopts_only_an_object_created_by_this_client() {
    let (fake, api) = start().await;
    fake.seed(json!({"name": "theirs", "uuid": "pool-t", "created_by": "ako-other"}));
    fake.seed(json!({"name": "manual", "uuid": "pool-m"}));
    fake.seed(json!({"name": "ours", "uuid": "pool-o", "created_by": "ako-c1"}));

    let err = api.create(&pool("theirs")).await.expect_err("not ours");
    assert!(
        matches!(&err, AviError::Conflict { owner: Some(o), expected: Some(e), .. } if o == "ako-other" && e == "ako-c1"),
        "{err:?}"
    );
    assert!(err.is_conflict() && !err.is_transient());
    let text = err.to_string();
    assert!(
        text.contains("ako-other") && text.contains("theirs"),
        "{text}"
    );

    let err = api.create(&pool("manual")).await.expect_err("not ours");
    assert!(
        matches!(&err, AviError::Conflict { owner: None, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("not created by ako"), "{err}");

    let adopted = api.create(&pool("ours")).await.expect("ours is adopted");
    assert!(adopted.already_existed);
    assert_eq!(adopted.object.uuid.as_deref(), Some("pool-o"));

    let fresh = api.create(&pool("new")).await.expect("created");
    assert_eq!(
        fake.pool("new").expect("stored")["created_by"],
        "ako-c1",
        "the creator value is stamped on new objects"
    );
    assert!(!fresh.already_existed);
}

#[tokio::test]
async fn without_a_creator_value_no_existing_object_is_adopted() {
    let fake = Arc::new(Fake::default());
    let base = serve(Arc::clone(&fake)).await;
    let mut cfg = config(&base);
    cfg.created_by = None;
    let api = AviClient::new(cfg).expect("client");
    fake.seed(json!({"name": "ours", "uuid": "pool-o", "created_by": "ako-c1"}));
    let err = api.create(&pool("ours")).await.expect_err("refused");
    assert!(
        matches!(err, AviError::Conflict { expected: None, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("ClientConfig::created_by"),
        "{err}"
    );
    api.create(&pool("other")).await.expect("created");
    assert!(
        fake.pool("other")
            .expect("stored")
            .get("created_by")
            .is_none(),
        "nothing stamped without a creator value"
    );
}

// ---------------------------------------------------------------------------------------------------
// 5. http:// needs the explicit opt-in.

#[test]
fn an_http_controller_url_is_refused_without_the_explicit_opt_in() {
    let cfg = ClientConfig::new(
        "http://127.0.0.1:9",
        Credentials::password("admin", PASSWORD),
    );
    let err = AviClient::new(cfg.clone()).expect_err("plain http refused");
    let text = err.to_string();
    assert!(matches!(err, AviError::Config(_)), "{err:?}");
    assert!(
        text.contains("must be https") && text.contains("allow_insecure_http"),
        "{text}"
    );
    let mut insecure = cfg;
    insecure.allow_insecure_http = true;
    let api = AviClient::new(insecure).expect("explicit opt-in");
    assert_eq!(api.base_url(), "http://127.0.0.1:9");
}

// ---------------------------------------------------------------------------------------------------
// 6. Debug output carries no secret.

const SECRETS: &[&str] = &[
    PASSWORD,
    "tok-9f8e7d",
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
    "k3y-passphrase",
    "csrf-1-tok",
    "sess-1-id",
];

fn assert_no_secret(what: &str, shown: &str) {
    for secret in SECRETS {
        assert!(!shown.contains(secret), "{what} shows {secret:?}: {shown}");
    }
}

#[tokio::test]
async fn debug_output_never_shows_keys_passwords_tokens_or_session_cookies() {
    let (fake, api) = start().await;
    assert_no_secret("config", &format!("{:?}", config("http://127.0.0.1:9")));
    let token = Credentials::token("admin", "tok-9f8e7d");
    assert_no_secret("token credentials", &format!("{token:?}"));

    let key_pem = format!(
        "-----BEGIN {0}-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END {0}-----\n",
        "PRIVATE KEY"
    );
    let mut cert = SslKeyAndCertificate {
        name: "tls".into(),
        key: Some(key_pem),
        ..Default::default()
    };
    cert.extra
        .insert("key_passphrase".into(), json!("k3y-passphrase"));
    let shown = format!("{cert:?}");
    assert_no_secret("SslKeyAndCertificate", &shown);
    assert!(
        shown.contains("tls") && shown.contains("redacted"),
        "{shown}"
    );

    // A real answer: the fake re-issues the session cookie on it.
    let resp = api
        .send(Method::GET, "/api/pool", None)
        .await
        .expect("answer");
    assert!(resp.headers.contains_key("set-cookie"));
    assert_no_secret("RawResponse", &format!("{resp:?}"));
    assert_eq!(fake.logins.load(Ordering::SeqCst), 1);

    let mut headers = HeaderMap::new();
    for c in session_cookies(1) {
        headers.append("set-cookie", c.parse().expect("header"));
    }
    headers.insert("x-csrftoken", "csrf-1-tok".parse().expect("header"));
    let raw = RawResponse {
        status: 200,
        headers,
        body: Bytes::from(
            json!({"username": "admin", "password": PASSWORD, "token": "tok-9f8e7d",
                   "key": "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "csrftoken": "csrf-1-tok"})
            .to_string(),
        ),
    };
    let shown = format!("{raw:?}");
    assert_no_secret("RawResponse", &shown);
    assert!(shown.contains("admin"), "non-secret fields stay: {shown}");
}

// ---------------------------------------------------------------------------------------------------
// 7. Cookies are parsed properly.

#[tokio::test]
async fn a_cookie_deletion_in_an_answer_does_not_replace_the_session() {
    let (fake, api) = start().await;
    fake.fault(Method::GET, Fault::DeleteSessionCookie);
    for _ in 0..3 {
        api.list::<Pool>(&ListQuery::default()).await.expect("list");
    }
    assert_eq!(
        fake.logins.load(Ordering::SeqCst),
        1,
        "the session survived the Max-Age=0 deletion"
    );
    assert_eq!(fake.calls("GET", "pool"), 3, "no request was refused");
}

#[tokio::test]
async fn a_redirect_from_the_controller_is_never_followed_not_even_on_login() {
    // Where a redirect would send the password.
    let elsewhere_hits = Arc::new(AtomicUsize::new(0));
    let hits = elsewhere_hits.clone();
    let elsewhere = Router::new().fallback(move || {
        hits.fetch_add(1, Ordering::SeqCst);
        async { "captured" }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let target = format!("http://{}/login", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, elsewhere).await;
    });
    // A "controller" that redirects everything there, keeping the method and body (307).
    let redirecting = Router::new().fallback(move || {
        let target = target.clone();
        async move {
            Response::builder()
                .status(307)
                .header("location", target)
                .body(Body::empty())
                .unwrap_or_default()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, redirecting).await;
    });
    let api = AviClient::new(config(&base)).expect("client");
    let err = api
        .get::<Pool>("pool-1")
        .await
        .expect_err("a redirect is an error");
    assert!(err.to_string().contains("307"), "{err}");
    assert_eq!(
        elsewhere_hits.load(Ordering::SeqCst),
        0,
        "the password went nowhere else"
    );
}
