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

pub fn client_config(emu: &EmulatorHandle) -> ClientConfig {
    let mut c = ClientConfig::new(emu.base_url(), Credentials::password("admin", PASSWORD));
    c.ca_pem = emu.ca_pem().map(str::to_string);
    c.retry = RetryPolicy {
        max_retries: 4,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(2),
    };
    c.request_timeout = Duration::from_secs(10);
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
