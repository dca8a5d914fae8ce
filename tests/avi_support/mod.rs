//! Shared helpers of the avi_* integration tests: an in-process emulator and a client trusting it.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use ako::avi::models::{IpAddr, Pool, Server, VsVip};
use ako::avi::{AviClient, ClientConfig, Credentials, RetryPolicy};
use ako::emulator::{self, EmulatorConfig, EmulatorHandle};

pub const PASSWORD: &str = "emulator-test-pw";

pub fn config(state_dir: Option<&Path>) -> EmulatorConfig {
    EmulatorConfig {
        state_dir: state_dir.map(Path::to_path_buf),
        admin_password: Some(PASSWORD.into()),
        fsync: true,
        ..EmulatorConfig::default()
    }
}

pub async fn start(state_dir: Option<&Path>) -> EmulatorHandle {
    emulator::spawn(config(state_dir))
        .await
        .expect("emulator starts")
}

pub async fn start_with(config: EmulatorConfig) -> EmulatorHandle {
    emulator::spawn(config).await.expect("emulator starts")
}

pub fn client_config(emu: &EmulatorHandle) -> ClientConfig {
    let mut c = ClientConfig::new(emu.base_url(), Credentials::password("admin", PASSWORD));
    c.ca_pem = emu.ca_pem().map(str::to_string);
    c.retry = RetryPolicy {
        max_retries: 4,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(2),
    };
    c.request_timeout = Duration::from_secs(10);
    // These tests pin behaviour, not pacing: the request budget (tested on its own) stays out of their way.
    c.budget = ako::avi::budget::BudgetLimits {
        ceiling: 100_000.0,
        floor: 10_000.0,
    };
    c
}

pub fn client(emu: &EmulatorHandle) -> AviClient {
    AviClient::new(client_config(emu)).expect("client builds")
}

/// A pool with one server.
pub fn pool(name: &str, addr: &str) -> Pool {
    Pool {
        name: name.into(),
        servers: Some(vec![Server {
            ip: Some(IpAddr::v4(addr)),
            port: Some(8080),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

/// The first VIP address of a VsVip (as allocated by IPAM).
pub fn vip_addr(v: &VsVip) -> String {
    v.vip
        .as_ref()
        .and_then(|v| v.first())
        .and_then(|v| v.ip_address.as_ref())
        .and_then(|a| a.addr.clone())
        .expect("vip address")
}

/// A logged-in raw HTTP session against the emulator, for requests the typed client cannot express
/// (invalid bodies, other tenants' uuids, `X-Avi-Tenant: *` writes).
pub struct Raw {
    http: reqwest::Client,
    base: String,
    csrf: String,
    session: String,
}

/// The value of cookie `name` among `Set-Cookie` headers.
pub fn set_cookie_value(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| cookie::Cookie::parse(v).ok())
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

impl Raw {
    pub async fn login(emu: &EmulatorHandle) -> Self {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(
                ako::avi::tls::client_tls_config(emu.ca_pem(), false).expect("tls"),
            )
            .build()
            .expect("http");
        let base = emu.base_url();
        let resp = http
            .post(format!("{base}/login"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("username", "admin")
                    .append_pair("password", PASSWORD)
                    .finish(),
            )
            .send()
            .await
            .expect("login");
        assert_eq!(resp.status(), 200);
        let csrf = set_cookie_value(resp.headers(), "csrftoken").expect("csrftoken");
        let session = set_cookie_value(resp.headers(), "avi-sessionid").expect("session");
        Self {
            http,
            base,
            csrf,
            session,
        }
    }

    /// Sends a request in `tenant` (`None`: no tenant header) and returns status and JSON body
    /// (`Null` when empty).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        tenant: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("X-CSRFToken", &self.csrf)
            .header("X-Avi-Version", "22.1.5")
            .header(
                "Cookie",
                format!(
                    "csrftoken={}; avi-sessionid={}; sessionid={}",
                    self.csrf, self.session, self.session
                ),
            );
        if let Some(t) = tenant {
            req = req.header("X-Avi-Tenant", t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("answer");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let value = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        (status, value)
    }
}
