//! Sessions: login with CSRF, the cookies a session holds, the pool of sessions and the controller version
//! discovered at the first login.

#[allow(clippy::wildcard_imports)]
use super::*;

/// The cookies of a logged-in session. `Debug` never shows them.
#[derive(Default)]
pub(super) struct SessionCookies {
    pub(super) csrftoken: String,
    pub(super) session_id: String,
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
    pub(super) fn header(&self) -> String {
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
    pub(super) fn update(&mut self, headers: &HeaderMap) {
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
pub(super) struct SessionSlot {
    pub(super) cookies: Option<SessionCookies>,
}

/// A session taken from the pool, with the permit that bounds concurrency. Dropping it (also when the
/// request future is cancelled or times out) returns the session, logged in or not, to the pool.
pub(super) struct SlotGuard<'a> {
    pub(super) inner: &'a Inner,
    pub(super) slot: Option<SessionSlot>,
    pub(super) _permit: tokio::sync::SemaphorePermit<'a>,
}

impl SlotGuard<'_> {
    pub(super) fn slot(&mut self) -> &mut SessionSlot {
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

/// The `Set-Cookie` cookies of a response that set a value: unparsable ones, deletions (`Max-Age=0`), empty
/// values and `None` (sent by basic-auth answers) are skipped.
pub(super) fn set_cookies(headers: &HeaderMap) -> impl Iterator<Item = Cookie<'static>> + '_ {
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

impl AviClient {
    pub(super) async fn login(&self, slot: &mut SessionSlot) -> Result<(), AviError> {
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

    pub(super) async fn discover_version(&self, slot: &mut SessionSlot) -> Result<(), AviError> {
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
}
