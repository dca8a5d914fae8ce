//! HTTP layer of the emulator: routing (tolerating `//api` and trailing slashes), sessions and CSRF,
//! tenancy headers, version echo, collections, CRUD, runtime endpoints, admin endpoints and faults.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use rand::Rng;
use serde_json::{Map, Value, json};

use super::faults::{Counters, Faults, Fired};
use super::journal::{Journal, RecordRef};
use super::store::{ApiError, Obj, Store, TenantSel, apply_patch, type_info};

mod auth;
mod reads;
mod runtime;
mod writes;

#[allow(clippy::wildcard_imports)]
use auth::*;
#[allow(clippy::wildcard_imports)]
use reads::*;
#[allow(clippy::wildcard_imports)]
use runtime::*;
#[allow(clippy::wildcard_imports)]
use writes::*;

const IDLE_TIMEOUT: Duration = Duration::from_secs(15 * 60);
const SESSION_MAX_AGE: u64 = 86_400;
const CSRF_MAX_AGE: u64 = 31_449_600;
const MAX_BODY: usize = 16 << 20;

/// What the API reads of a running data plane. The data plane reads the server's state to serve; the server
/// sees the data plane only through this (no import back).
pub trait DataPlaneView: Send + Sync {
    /// Everything served, with its state (`/admin/dataplane`).
    fn runtime(&self) -> Value;
    /// A virtual service's runtime, with its analytics.
    fn vs_runtime(&self, uuid: &str) -> Option<Value>;
    /// A pool's runtime detail: its servers and their state.
    fn pool_runtime(&self, uuid: &str) -> Option<Value>;
    /// A virtual service's operational state and why.
    fn oper_status(&self, uuid: &str) -> Option<(&'static str, Vec<String>)>;
    /// The read-only analytics page (`/admin/analytics`).
    fn analytics_page(&self) -> String;
}

/// Shared emulator state. `Debug` shows counts only: users, tokens, sessions and stored objects
/// hold passwords, tokens, CSRF secrets and private keys.
pub struct App {
    pub store: parking_lot::Mutex<Store>,
    pub journal: parking_lot::Mutex<Option<Journal>>,
    sessions: parking_lot::Mutex<HashMap<String, Session>>,
    pub users: parking_lot::Mutex<HashMap<String, String>>,
    tokens: parking_lot::Mutex<HashMap<String, TokenInfo>>,
    pub faults: parking_lot::Mutex<Faults>,
    pub counters: Counters,
    pub version: String,
    pub default_page_size: usize,
    cluster_uuid: String,
    started: jiff::Timestamp,
    /// The data plane, when it runs: runtime state and analytics come from it.
    pub dataplane: std::sync::OnceLock<Arc<dyn DataPlaneView>>,
    /// Every answered API request ([`super::requests`]).
    pub requests: parking_lot::Mutex<super::requests::Requests>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("objects", &self.store.lock().len())
            .field("users", &self.users.lock().len())
            .field("tokens", &self.tokens.lock().len())
            .field("sessions", &self.sessions.lock().len())
            .field("faults", &*self.faults.lock())
            .field("version", &self.version)
            .field("default_page_size", &self.default_page_size)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Expires every current session now: each is refused with 401 at its next use, exactly as a
    /// timed-out one (deterministic replacement for waiting out `session_expiry_secs`).
    pub fn expire_sessions(&self) {
        for s in self.sessions.lock().values_mut() {
            s.expired = true;
        }
    }

    pub fn new(
        store: Store,
        journal: Option<Journal>,
        users: HashMap<String, String>,
        faults: Faults,
        version: String,
        default_page_size: usize,
    ) -> Self {
        Self {
            store: parking_lot::Mutex::new(store),
            journal: parking_lot::Mutex::new(journal),
            sessions: parking_lot::Mutex::default(),
            users: parking_lot::Mutex::new(users),
            tokens: parking_lot::Mutex::default(),
            faults: parking_lot::Mutex::new(faults),
            counters: Counters::default(),
            version,
            default_page_size,
            cluster_uuid: format!("cluster-{}", uuid::Uuid::new_v4()),
            started: jiff::Timestamp::now(),
            dataplane: std::sync::OnceLock::new(),
            requests: parking_lot::Mutex::default(),
        }
    }
}

/// Per-request context.
struct Ctx {
    host: String,
    api_version: String,
    session_id: Option<String>,
}

/// A time as RFC 3339 with the UTC offset written `+00:00`, as the controller shows it.
fn rfc3339(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.f+00:00").to_string()
}

fn finish(ctx: &Ctx, mut resp: Response) -> Response {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&ctx.api_version) {
        h.insert("avi_api_version", v);
    }
    if let Some(id) = &ctx.session_id {
        for c in session_cookies(id) {
            if let Ok(v) = HeaderValue::from_str(&c) {
                h.append(header::SET_COOKIE, v);
            }
        }
    }
    resp
}

fn raw(status: u16, content_type: &str, body: impl Into<Body>) -> Response {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

fn json_resp(status: u16, value: &Value) -> Response {
    raw(
        status,
        "application/json",
        serde_json::to_vec(value).unwrap_or_default(),
    )
}

fn err_resp(e: &ApiError) -> Response {
    json_resp(e.status, &json!({"error": e.message}))
}

/// Decodes the raw query. A valueless flag (`?include_name`) and an empty value both give `None`.
fn parse_query(query: Option<&str>) -> Vec<(String, Option<String>)> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), (!v.is_empty()).then(|| v.into_owned())))
        .collect()
}

fn flag(q: &[(String, Option<String>)], key: &str) -> bool {
    q.iter().any(|(k, v)| {
        k == key
            && v.as_deref()
                .is_none_or(|v| v.is_empty() || v.eq_ignore_ascii_case("true"))
    })
}

fn param<'a>(q: &'a [(String, Option<String>)], key: &str) -> Option<&'a str> {
    q.iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.as_deref())
}

/// Entry point for every request.
pub async fn dispatch(State(app): State<Arc<App>>, req: Request) -> Response {
    let method = req.method().to_string();
    let agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let segs: Vec<String> = req
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if segs.first().map(String::as_str) == Some("admin") {
        return handle(app, req).await;
    }
    let (kind, uuid) = match segs.as_slice() {
        [api, t, rest @ ..] if api == "api" => (t.clone(), rest.first().cloned()),
        [first, ..] => (first.clone(), None),
        [] => (String::new(), None),
    };
    // The name of the object a request names by uuid, as it is before the request (a DELETE removes it).
    let mut name = uuid
        .as_ref()
        .and_then(|u| app.store.lock().get_any(u).map(|o| o.name.clone()));
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return json_resp(413, &json!({"error": "request body too large"})),
    };
    if name.is_none() && method == "POST" {
        name = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("name").and_then(Value::as_str).map(str::to_string));
    }
    let resp = handle(app.clone(), Request::from_parts(parts, Body::from(body))).await;
    let at_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX);
    app.requests.lock().push(super::requests::RequestRecord {
        seq: 0,
        at_ms,
        method,
        kind,
        uuid,
        name,
        status: resp.status().as_u16(),
        agent,
    });
    resp
}

async fn handle(app: Arc<App>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let headers = parts.headers;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".into());
    let path: Vec<String> = parts
        .uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let query = parse_query(parts.uri.query());
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return json_resp(413, &json!({"error": "request body too large"})),
    };
    let api_version = headers
        .get("x-avi-version")
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| "16_4_2".to_string(), str::to_string);
    let mut ctx = Ctx {
        host,
        api_version,
        session_id: None,
    };
    let segs: Vec<&str> = path.iter().map(String::as_str).collect();

    if segs.first() == Some(&"admin") {
        return admin(&app, &method, &segs[1..], &query, &body);
    }
    // Faults: latency and dropped connections apply to everything but the admin endpoints.
    let (latency, drop) = {
        let mut f = app.faults.lock();
        let mut rng = rand::rng();
        let slow = f.pick_slow(|| rng.random::<f64>());
        (f.latency_ms + slow, f.pick_drop(|| rng.random::<f64>()))
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    if drop {
        app.counters.fired(Fired::Dropped);
        let stream = futures::stream::once(async {
            Err::<Bytes, std::io::Error>(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "injected drop",
            ))
        });
        return Response::new(Body::from_stream(stream));
    }
    let counted_type = match segs.as_slice() {
        ["login"] => "login",
        ["logout"] => "logout",
        ["api", t, ..] => t,
        _ => "other",
    };
    app.counters.count(method.as_str(), counted_type);
    let resp = match segs.as_slice() {
        ["login"] if method == Method::POST => login(&app, &headers, &body),
        ["logout"] => {
            for id in
                cookie_values(&headers, "avi-sessionid").chain(cookie_values(&headers, "sessionid"))
            {
                app.sessions.lock().remove(id);
            }
            json_resp(200, &json!({}))
        }
        ["api", "cluster", "status"] => json_resp(
            200,
            &json!({"cluster_state": {"state": "CLUSTER_UP_NO_HA", "progress": 100,
                    "up_since": app.started.strftime("%Y-%m-%d %H:%M:%S").to_string()},
                    "node_states": [{"name": "127.0.0.1", "role": "CLUSTER_LEADER", "state": "CLUSTER_ACTIVE"}]}),
        ),
        ["api", "initial-data"] => json_resp(200, &initial_data(&app)),
        ["api", rest @ ..] => {
            if let Some(status) = {
                let mut f = app.faults.lock();
                let mut rng = rand::rng();
                f.pick_error(method.as_str(), || rng.random::<f64>())
            } {
                app.counters.fired(Fired::Injected(status));
                let retry_after = app.faults.lock().retry_after_secs;
                let mut resp = json_resp(
                    status,
                    &json!({"error": format!("injected fault {status}")}),
                );
                if matches!(status, 429 | 503)
                    && let Ok(v) = HeaderValue::from_str(&retry_after.to_string())
                {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return finish(&ctx, resp);
            }
            match authenticate(&app, &method, &headers) {
                Ok((sid, user)) => {
                    ctx.session_id = sid;
                    api(&app, &ctx, &method, rest, &query, &headers, &body, &user)
                        .await
                        .unwrap_or_else(|e| err_resp(&e))
                }
                Err(resp) => resp,
            }
        }
        _ => json_resp(404, &json!({"error": "Not found"})),
    };
    finish(&ctx, resp)
}

fn admin(
    app: &App,
    method: &Method,
    segs: &[&str],
    query: &[(String, Option<String>)],
    body: &[u8],
) -> Response {
    match (method, segs) {
        (&Method::GET, ["faults"]) => json_resp(
            200,
            &serde_json::to_value(&*app.faults.lock()).unwrap_or_default(),
        ),
        (&Method::PUT, ["faults"]) => match serde_json::from_slice::<Faults>(body) {
            Ok(f) => match f.validate() {
                Ok(()) => {
                    *app.faults.lock() = f.clone();
                    json_resp(200, &serde_json::to_value(&f).unwrap_or_default())
                }
                Err(e) => json_resp(400, &json!({"error": e})),
            },
            Err(e) => json_resp(400, &json!({"error": e.to_string()})),
        },
        (&Method::GET, ["counters"]) => json_resp(
            200,
            &serde_json::to_value(app.counters.snapshot()).unwrap_or_default(),
        ),
        (&Method::DELETE, ["counters"]) => {
            app.counters.reset();
            raw(204, "application/json", Body::empty())
        }
        (&Method::DELETE, ["sessions"]) => {
            app.sessions.lock().clear();
            raw(204, "application/json", Body::empty())
        }
        (&Method::POST, ["sessions", "expire"]) => {
            app.expire_sessions();
            raw(204, "application/json", Body::empty())
        }
        // The request journal from `since` (default 0), at most `limit` (default 10,000) records, and where to
        // ask from next.
        (&Method::GET, ["requests"]) => {
            let since = param(query, "since")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let limit = param(query, "limit")
                .and_then(|v| v.parse().ok())
                .unwrap_or(10_000);
            let journal = app.requests.lock();
            let records = journal.since(since, limit);
            let next = records.last().map_or(since, |r| r.seq + 1);
            json_resp(200, &json!({"requests": records, "next": next}))
        }
        (&Method::GET, ["dataplane"]) => match app.dataplane.get() {
            Some(p) => json_resp(200, &p.runtime()),
            None => json_resp(
                404,
                &json!({"error": "the data plane is not running (start the emulator with --dataplane)"}),
            ),
        },
        (&Method::GET, ["analytics"]) => match app.dataplane.get() {
            Some(p) => raw(200, "text/html; charset=utf-8", p.analytics_page()),
            None => raw(
                404,
                "text/plain; charset=utf-8",
                "the data plane is not running (start the emulator with --dataplane)\n",
            ),
        },
        _ => json_resp(404, &json!({"error": "Not found"})),
    }
}

fn version_obj(app: &App) -> Value {
    json!({"build": 1, "Tag": format!("{}-emulator", app.version), "ProductName": "Avi Cloud Controller",
           "min_version": 15.2, "Version": app.version, "Product": "controller",
           "Date": rfc3339(app.started)})
}

fn initial_data(app: &App) -> Value {
    json!({"version": version_obj(app), "user_initialized": true, "banner": "", "sso": false,
           "emulator": true})
}

fn tenant_sel(store: &Store, headers: &HeaderMap) -> Result<TenantSel, ApiError> {
    if let Some(u) = headers
        .get("x-avi-tenant-uuid")
        .and_then(|v| v.to_str().ok())
    {
        return match store.get_any(u) {
            Some(t) if t.obj_type == "tenant" => Ok(TenantSel::One(t.uuid.clone())),
            _ => Err(ApiError::new(403, format!("Tenant uuid {u} not found"))),
        };
    }
    match headers.get("x-avi-tenant").and_then(|v| v.to_str().ok()) {
        None | Some("") => Ok(TenantSel::One("admin".into())),
        Some("*") => Ok(TenantSel::All),
        Some(name) => store
            .tenant_by_name(name)
            .map(|t| TenantSel::One(t.uuid.clone()))
            .ok_or_else(|| ApiError::new(403, format!("Tenant {name} not found"))),
    }
}

fn render_out(
    store: &Store,
    obj: &Obj,
    host: &str,
    include_name: bool,
    write_answer: bool,
) -> Map<String, Value> {
    let mut out = store.render(obj, host, include_name);
    if obj.obj_type == "systemconfiguration" {
        out.insert(
            "url".into(),
            json!(format!("https://{host}/api/systemconfiguration")),
        );
        out.remove("name");
    }
    if obj.obj_type == "sslkeyandcertificate" {
        // As recorded: the write answer has neither the key nor the PEM texts; a GET masks the key.
        if write_answer {
            out.remove("key");
            if let Some(c) = out.get_mut("certificate").and_then(Value::as_object_mut) {
                c.remove("certificate");
                c.remove("public_key");
            }
        } else if out.contains_key("key") {
            out.insert("key".into(), json!(super::store::cert::SENSITIVE));
        }
    }
    if obj.obj_type == "vsvip" && !write_answer {
        // Back references, as the controller lists them on a VsVip.
        let vs: Vec<Value> = store
            .referrers_of(&obj.uuid)
            .filter(|o| o.obj_type == "virtualservice")
            .map(|o| json!(format!("https://{host}/api/virtualservice/{}", o.uuid)))
            .collect();
        if !vs.is_empty() {
            out.insert("vs_refs".into(), Value::Array(vs));
        }
    }
    out
}

fn select_fields(mut obj: Map<String, Value>, fields: Option<&str>) -> Map<String, Value> {
    if let Some(f) = fields {
        let keep: Vec<&str> = f.split(',').map(str::trim).collect();
        obj.retain(|k, _| {
            matches!(k.as_str(), "url" | "uuid" | "name" | "tenant_ref")
                || keep.contains(&k.as_str())
        });
    }
    obj
}

#[allow(clippy::too_many_arguments)]
async fn api(
    app: &App,
    ctx: &Ctx,
    method: &Method,
    segs: &[&str],
    query: &[(String, Option<String>)],
    headers: &HeaderMap,
    body: &[u8],
    user: &str,
) -> Result<Response, ApiError> {
    let host = ctx.host.as_str();
    let include_name = flag(query, "include_name");
    match (method, segs) {
        (&Method::GET, ["cluster"]) => Ok(json_resp(
            200,
            &json!({"url": format!("https://{host}/api/cluster"), "uuid": app.cluster_uuid, "name": "cluster-0-1",
                    "nodes": [{"name": "127.0.0.1", "ip": {"addr": "127.0.0.1", "type": "V4"}}]}),
        )),
        (&Method::GET, ["cluster", "runtime"]) => Ok(json_resp(
            200,
            &json!({"node_states": [{"name": "127.0.0.1", "role": "CLUSTER_LEADER",
                                     "up_since": app.started.strftime("%Y-%m-%d %H:%M:%S").to_string()}],
                    "cluster_state": {"state": "CLUSTER_UP_NO_HA"}}),
        )),
        (&Method::PUT, ["useraccount"]) => change_password(app, body, user),
        (_, ["user-token", rest @ ..]) => user_token(app, method, rest, body, user, host),
        (&Method::GET, ["ipamdnsproviderprofiledomainlist"]) => domain_list(app, query),
        (&Method::GET, ["virtualservice-inventory", rest @ ..]) => {
            inventory(app, host, rest, query, headers, include_name)
        }
        (&Method::GET, ["systemconfiguration"]) => {
            let store = app.store.lock();
            let obj = store
                .get_any("default")
                .ok_or_else(|| ApiError::new(404, "SystemConfiguration object not found!"))?;
            Ok(json_resp(
                200,
                &Value::Object(render_out(&store, obj, host, include_name, false)),
            ))
        }
        (&Method::PUT, ["systemconfiguration"]) => {
            write(
                app,
                ctx,
                method,
                "systemconfiguration",
                Some("default"),
                headers,
                body,
            )
            .await
        }
        (&Method::GET, [t]) => list(app, host, t, query, headers, include_name),
        (&Method::GET, [t, uuid]) => get_one(app, host, t, uuid, query, headers, include_name),
        (&Method::GET, ["pool", uuid, "runtime", ..]) => pool_runtime(app, uuid, headers),
        (&Method::GET, ["analytics", "metrics", "virtualservice", uuid]) => {
            vs_metrics(app, uuid, headers)
        }
        (&Method::GET, ["virtualservice", uuid, "runtime", ..]) => {
            let store = app.store.lock();
            let sel = tenant_sel(&store, headers)?;
            let obj = store.get("virtualservice", uuid, &sel)?;
            Ok(json_resp(200, &vs_runtime(app, &store, obj)))
        }
        (&Method::POST, [t]) => write(app, ctx, method, t, None, headers, body).await,
        (&Method::PUT | &Method::PATCH, [t, uuid]) => {
            write(app, ctx, method, t, Some(uuid), headers, body).await
        }
        (&Method::DELETE, [t, uuid]) => {
            type_info(t).ok_or_else(|| ApiError::new(404, "Not found"))?;
            let ack = {
                let mut store = app.store.lock();
                let sel = tenant_sel(&store, headers)?;
                sel.write_tenant()?;
                store.delete(t, uuid, &sel)?;
                submit(app, RecordRef::Delete { t, u: uuid })?
            };
            persist(app, ack).await?;
            Ok(raw(204, "application/json", Body::empty()))
        }
        _ => Err(ApiError::new(404, "Not found")),
    }
}

/// `PUT /api/useraccount`: a user changes their password.
fn change_password(app: &App, body: &[u8], user: &str) -> Result<Response, ApiError> {
    let b = parse_body(body)?;
    let old = b
        .get("old_password")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let new = b
        .get("password")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut users = app.users.lock();
    if users.get(user).is_none_or(|p| p != old) {
        return Err(ApiError::new(400, "Old password is incorrect"));
    }
    if new.is_empty() {
        return Err(ApiError::new(400, "Password cannot be empty"));
    }
    users.insert(user.to_string(), new.to_string());
    Ok(raw(200, "application/json", Body::empty()))
}

fn page(
    app: &App,
    host: &str,
    t: &str,
    query: &[(String, Option<String>)],
    total: usize,
    results: impl FnOnce(std::ops::Range<usize>) -> Vec<Value>,
) -> Value {
    let page_size = param(query, "page_size")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(app.default_page_size)
        .clamp(1, 200);
    let page_no = param(query, "page")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let start = (page_no - 1).saturating_mul(page_size).min(total);
    let end = start.saturating_add(page_size).min(total);
    let mut out = Map::new();
    out.insert("count".into(), json!(total));
    out.insert("results".into(), Value::Array(results(start..end)));
    if end < total {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in query.iter().filter(|(k, _)| k != "page") {
            match v {
                Some(v) => q.append_pair(k, v),
                None => q.append_key_only(k),
            };
        }
        q.append_pair("page", &(page_no + 1).to_string());
        out.insert(
            "next".into(),
            json!(format!("https://{host}/api/{t}?{}", q.finish())),
        );
    }
    Value::Object(out)
}
