//! Authentication as the controller does it: login with a session cookie and a CSRF token, basic auth when
//! enabled, user tokens, and the checks every API request passes.

#[allow(clippy::wildcard_imports)]
use super::*;

#[derive(Debug, Clone)]
pub(super) struct Session {
    pub(super) csrf: String,
    pub(super) username: String,
    pub(super) created: Instant,
    pub(super) last_used: Instant,
    /// Expired on demand ([`App::expire_sessions`]): refused at its next use like a timed-out one.
    pub(super) expired: bool,
}

#[derive(Debug, Clone)]
pub(super) struct TokenInfo {
    pub(super) username: String,
    pub(super) uuid: String,
    pub(super) expires: jiff::Timestamp,
}

pub(super) fn random_token(len: usize, lower_only: bool) -> String {
    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let set = if lower_only { &ALNUM[..26] } else { ALNUM };
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(set[rng.random_range(0..set.len())]))
        .collect()
}

/// A `Set-Cookie` value as the controller sends them: `expires`, `Max-Age`, `Path=/`, `Secure`.
pub(super) fn set_cookie(name: &'static str, value: &str, max_age: u64, http_only: bool) -> String {
    let secs = i64::try_from(max_age).unwrap_or(i64::MAX / 2);
    let expires = cookie::time::OffsetDateTime::now_utc() + cookie::time::Duration::seconds(secs);
    cookie::Cookie::build((name, value.to_string()))
        .expires(expires)
        .max_age(cookie::time::Duration::seconds(secs))
        .path("/")
        .secure(true)
        .http_only(http_only)
        .build()
        .to_string()
}

pub(super) fn session_cookies(id: &str) -> [String; 2] {
    [
        set_cookie("avi-sessionid", id, SESSION_MAX_AGE, true),
        set_cookie("sessionid", id, SESSION_MAX_AGE, true),
    ]
}

/// The values of cookie `name` in the request's `Cookie` headers.
pub(super) fn cookie_values<'a>(
    headers: &'a HeaderMap,
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(move |c| c.name() == name)
        .filter_map(|c| c.value_raw())
}

pub(super) fn login(app: &App, headers: &HeaderMap, body: &[u8]) -> Response {
    let is_json = body.first() == Some(&b'{')
        || headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.contains("json"));
    let fields: HashMap<String, String> = if is_json {
        match serde_json::from_slice::<Map<String, Value>>(body) {
            Ok(m) => m
                .into_iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
                .collect(),
            Err(_) => HashMap::new(),
        }
    } else {
        url::form_urlencoded::parse(body).into_owned().collect()
    };
    let username = fields.get("username").cloned().unwrap_or_default();
    let ok =
        match (fields.get("password"), fields.get("token")) {
            (Some(p), _) => app
                .users
                .lock()
                .get(&username)
                .is_some_and(|want| want == p),
            (None, Some(t)) => app.tokens.lock().get(t).is_some_and(|info| {
                info.username == username && info.expires > jiff::Timestamp::now()
            }),
            _ => false,
        };
    if !ok {
        return json_resp(401, &json!({"error": "Invalid credentials"}));
    }
    let id = random_token(32, true);
    let csrf = random_token(32, false);
    let now = Instant::now();
    app.sessions.lock().insert(
        id.clone(),
        Session {
            csrf: csrf.clone(),
            username: username.clone(),
            created: now,
            last_used: now,
            expired: false,
        },
    );
    let base = format!(
        "https://{}",
        headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost")
    );
    // As recorded: the system configuration with relative refs.
    let system_config = {
        let store = app.store.lock();
        let mut m = Map::new();
        m.insert("url".into(), json!("/api/systemconfiguration"));
        if let Some(o) = store.get_any("default") {
            m.extend(
                o.body
                    .iter()
                    .filter(|(k, _)| k.as_str() != "name")
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
        }
        Value::Object(m)
    };
    let body = json!({
        "user_initialized": true,
        "version": version_obj(app),
        "user": {"is_superuser": true, "default_tenant_ref": format!("{base}/api/tenant/admin"), "name": username,
                 "username": username, "full_name": "System Administrator", "email": "", "local": true, "uuid": "user-1",
                 "ui_property": "{\"defaultTimeframe\":\"6h\",\"valuesToDisplay\":\"avg\",\"grid\":{\"pageSize\":30}}"},
        "tenants": [{"url": format!("{base}/api/tenant/admin"), "uuid": "admin", "name": "admin", "local": true}],
        "system_config": system_config,
        "controller": {"api_idle_timeout": 15},
        "session_cookie_name": "avi-sessionid"
    });
    let mut resp = json_resp(200, &body);
    let h = resp.headers_mut();
    let csrf_cookie = set_cookie("csrftoken", &csrf, CSRF_MAX_AGE, false);
    for c in std::iter::once(csrf_cookie).chain(session_cookies(&id)) {
        if let Ok(v) = HeaderValue::from_str(&c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    resp
}

pub(super) fn basic_auth_enabled(app: &App) -> bool {
    app.store
        .lock()
        .get_any("default")
        .and_then(|o| o.body.get("portal_configuration"))
        .and_then(|p| p.get("allow_basic_authentication"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

pub(super) const UNAUTHENTICATED: &str = "Authentication credentials were not provided.";

/// Returns `(session id, username)` or the refusal (the refusal is the answer itself).
#[allow(clippy::result_large_err)]
pub(super) fn authenticate(
    app: &App,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(Option<String>, String), Response> {
    if let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(b64) = auth.strip_prefix("Basic ")
    {
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&decoded);
        let ok = basic_auth_enabled(app)
            && text
                .split_once(':')
                .is_some_and(|(u, p)| app.users.lock().get(u).is_some_and(|w| w == p));
        return match (ok, text.split_once(':')) {
            (true, Some((u, _))) => Ok((None, u.to_string())),
            _ => Err(json_resp(401, &json!({"error": "Invalid credentials"}))),
        };
    }
    let write = matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let csrf_header = headers
        .get("x-csrftoken")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let expiry = app
        .faults
        .lock()
        .session_expiry_secs
        .map(Duration::from_secs);
    let mut sessions = app.sessions.lock();
    let now = Instant::now();
    let ids: Vec<String> = cookie_values(headers, "avi-sessionid")
        .chain(cookie_values(headers, "sessionid"))
        .map(str::to_string)
        .collect();
    let mut valid: Option<(String, bool)> = None;
    for id in ids {
        let Some(s) = sessions.get(&id) else { continue };
        let expired = s.expired
            || now.duration_since(s.last_used) > IDLE_TIMEOUT
            || expiry.is_some_and(|e| now.duration_since(s.created) >= e);
        if expired {
            sessions.remove(&id);
            app.counters.fired(Fired::SessionExpired);
            continue;
        }
        let csrf_ok = s.csrf == csrf_header;
        if valid.is_none() || (csrf_ok && valid.as_ref().is_some_and(|(_, ok)| !ok)) {
            valid = Some((id, csrf_ok));
        }
    }
    let Some((id, csrf_ok)) = valid else {
        app.counters.fired(Fired::Unauthenticated);
        return Err(json_resp(401, &json!({"error": UNAUTHENTICATED})));
    };
    if write && !csrf_ok {
        // Recorded: plain text under an application/json content type.
        return Err(raw(
            401,
            "application/json",
            "CSRF token missing or incorrect.",
        ));
    }
    let Some(s) = sessions.get_mut(&id) else {
        return Err(json_resp(401, &json!({"error": UNAUTHENTICATED})));
    };
    s.last_used = now;
    let user = s.username.clone();
    Ok((Some(id), user))
}

pub(super) fn user_token(
    app: &App,
    method: &Method,
    rest: &[&str],
    body: &[u8],
    user: &str,
    host: &str,
) -> Result<Response, ApiError> {
    let view = |token: &str, info: &TokenInfo| {
        json!({"url": format!("https://{host}/api/user-token/{}", info.uuid), "uuid": info.uuid, "token": token,
               "expires_at": rfc3339(info.expires), "username": info.username})
    };
    match (method, rest) {
        (&Method::POST, []) => {
            let b = parse_body(body)?;
            let hours = match b.get("hours") {
                Some(Value::Number(n)) => n.as_i64().unwrap_or(24),
                Some(Value::String(s)) => s.parse().unwrap_or(24),
                _ => 24,
            };
            let token = random_token(40, false);
            let info = TokenInfo {
                username: user.to_string(),
                uuid: format!("user-token-{}", uuid::Uuid::new_v4()),
                expires: jiff::Timestamp::now()
                    .checked_add(jiff::SignedDuration::from_hours(hours.clamp(1, 24 * 365)))
                    .unwrap_or(jiff::Timestamp::MAX),
            };
            let v = view(&token, &info);
            app.tokens.lock().insert(token, info);
            Ok(json_resp(201, &v))
        }
        (&Method::GET, []) => {
            let tokens = app.tokens.lock();
            let results: Vec<Value> = tokens
                .iter()
                .filter(|(_, i)| i.username == user)
                .map(|(t, i)| view(t, i))
                .collect();
            Ok(json_resp(
                200,
                &json!({"count": results.len(), "results": results}),
            ))
        }
        (&Method::DELETE, [uuid]) => {
            let mut tokens = app.tokens.lock();
            let before = tokens.len();
            tokens.retain(|_, i| i.uuid != *uuid);
            if tokens.len() == before {
                return Err(ApiError::new(404, "UserToken object not found!"));
            }
            Ok(raw(204, "application/json", Body::empty()))
        }
        _ => Err(ApiError::new(404, "Not found")),
    }
}
