//! Embedded Avi controller emulator (issue 3): `ako emulator`, or [`spawn`] in-process for tests.
//! It answers the avi-api.md §7 checklist over HTTPS, persists to a journal, and injects faults.
//!
//! Choices where the real controller is unknown (avi-api.md §8): an FQDN outside the DNS profile's
//! domains gets 400 [`store::dns_domain_error`]; an expired session gets 401
//! `{"error": "Authentication credentials were not provided."}`; a PUT with a stale `_last_modified`
//! gets 412; PATCH `delete` removes list entries matching every field given; a write with
//! `X-Avi-Tenant: *` gets 400 [`store::WILDCARD_WRITE`]; field rules are in [`store::validate`].
//!
//! Traffic (issue 11): `--dns-listen` serves the Avi DNS ([`dns`]), `--dataplane` carries the virtual services'
//! traffic on loopback VIPs ([`dataplane`]), `--loopback-vips` seeds the lab with `dpg-sedatapath-18` on
//! 127.10.18.0/26. Choices: a Host header is matched without its port; a request no rule routes and no default
//! pool takes gets 503; pool servers start up and are taken out by failed connections and monitors; unknown
//! `lb_algorithm`s act as least connections; UDP and PING monitors are not run (they pass).

pub mod dataplane;
pub mod dns;
pub mod faults;
pub mod journal;
pub mod requests;
pub mod server;
pub mod store;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde_json::{Map, Value};

pub use faults::{CounterSnapshot, FaultCounts, Faults};
pub use store::{DnsPolicy, ipam};

use journal::{Journal, Record};
use server::App;
use store::Store;

/// The default seed (the lab of the seed cluster).
pub const DEFAULT_SEED: &str = include_str!("seed.yaml");

/// The same lab with the VIP network `dpg-sedatapath-18` on loopback (127.10.18.0/26), for traffic.
pub const LOOPBACK_SEED: &str = include_str!("seed-loopback.yaml");

/// The embedded lab seed with one more VIP network, `name` over `subnet` (VIPs from its 10th address to 5 before
/// its broadcast), usable by the lab's IPAM: for tests and benchmarks that need more VIPs than the lab's /26.
/// The addresses are data only: nothing dials them.
pub fn seed_with_vip_network(name: &str, subnet: ipnet::Ipv4Net) -> Result<String, EmulatorError> {
    let bad = |e: String| EmulatorError::Seed(e);
    let mut seed: Value = serde_yaml_ng::from_str(DEFAULT_SEED).map_err(|e| bad(e.to_string()))?;
    let first = std::net::Ipv4Addr::from(u32::from(subnet.network()).saturating_add(10));
    let last = std::net::Ipv4Addr::from(u32::from(subnet.broadcast()).saturating_sub(5));
    let objects = seed
        .get_mut("objects")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| bad("the seed has no objects".into()))?;
    objects.push(serde_json::json!({
        "type": "network", "name": name, "cloud_ref": "/api/cloud/?name=Default-Cloud", "dhcp_enabled": false,
        "configured_subnets": [{
            "prefix": {"ip_addr": {"addr": subnet.network().to_string(), "type": "V4"}, "mask": subnet.prefix_len()},
            "static_ip_ranges": [{"type": "STATIC_IPS_FOR_VIP", "range": {
                "begin": {"addr": first.to_string(), "type": "V4"},
                "end": {"addr": last.to_string(), "type": "V4"}}}]}]
    }));
    for o in objects.iter_mut() {
        if o["name"] == "ipam-jarvis"
            && let Some(nets) = o["internal_profile"]["usable_networks"].as_array_mut()
        {
            nets.push(serde_json::json!({"nw_ref": format!("/api/network/?name={name}")}));
        }
    }
    serde_yaml_ng::to_string(&seed).map_err(|e| bad(e.to_string()))
}

/// Errors starting the emulator.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    #[error("state {path}: {reason}")]
    State { path: PathBuf, reason: String },
    #[error("seed: {0}")]
    Seed(String),
    #[error("TLS: {0}")]
    Cert(#[from] ako_certs::CertError),
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Dns(#[from] dns::DnsError),
    #[error("data plane: {0}")]
    DataPlane(#[source] std::io::Error),
}

/// Where the serving certificate comes from.
#[derive(Debug, Clone, Default)]
pub enum TlsSource {
    /// A CA kept in the state directory (or in memory when ephemeral) issues a certificate for
    /// localhost, 127.0.0.1, ::1 and the extra names.
    #[default]
    SelfSigned,
    /// PEM files, reloaded when they change.
    Files { cert: PathBuf, key: PathBuf },
}

/// Emulator configuration. `Debug` redacts the admin password.
#[derive(Clone)]
pub struct EmulatorConfig {
    pub listen: SocketAddr,
    /// Persistence directory; `None` keeps everything in memory.
    pub state_dir: Option<PathBuf>,
    /// Seed YAML used when the state directory holds no journal yet.
    pub seed: String,
    /// Overrides the seed's `admin` password.
    pub admin_password: Option<String>,
    pub controller_version: String,
    pub tls: TlsSource,
    pub extra_sans: Vec<String>,
    pub dns_policy: DnsPolicy,
    pub fsync: bool,
    pub default_page_size: usize,
    pub faults: Faults,
    /// Serve the Avi DNS on this address (UDP and TCP; port 0 picks one).
    pub dns_listen: Option<SocketAddr>,
    /// Run the data plane (VIP listeners, proxies, health monitors, analytics).
    pub dataplane: Option<dataplane::DataPlaneConfig>,
    /// Also append the request journal to this file (JSON lines).
    pub request_log: Option<PathBuf>,
}

/// What `Debug` shows instead of a secret.
const REDACTED: &str = "<redacted>";

impl std::fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field("listen", &self.listen)
            .field("state_dir", &self.state_dir)
            .field("seed", &format_args!("<{} bytes>", self.seed.len()))
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| REDACTED),
            )
            .field("controller_version", &self.controller_version)
            .field("tls", &self.tls)
            .field("extra_sans", &self.extra_sans)
            .field("dns_policy", &self.dns_policy)
            .field("fsync", &self.fsync)
            .field("default_page_size", &self.default_page_size)
            .field("faults", &self.faults)
            .field("dns_listen", &self.dns_listen)
            .field("dataplane", &self.dataplane)
            .field("request_log", &self.request_log)
            .finish()
    }
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            state_dir: None,
            seed: DEFAULT_SEED.to_string(),
            admin_password: None,
            controller_version: "22.1.5".into(),
            tls: TlsSource::SelfSigned,
            extra_sans: Vec::new(),
            dns_policy: DnsPolicy::Reject,
            fsync: true,
            default_page_size: 25,
            faults: Faults::default(),
            dns_listen: None,
            dataplane: None,
            request_log: None,
        }
    }
}

/// A running emulator.
#[derive(Debug)]
pub struct EmulatorHandle {
    addr: SocketAddr,
    ca_pem: Option<String>,
    server: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    app: Arc<App>,
    dns: Option<dns::DnsHandle>,
    dataplane: Option<dataplane::DataPlaneHandle>,
}

impl EmulatorHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
    /// `https://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.addr)
    }
    /// The CA that signed the serving certificate (self-signed mode).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }
    pub fn set_faults(&self, faults: Faults) {
        *self.app.faults.lock() = faults;
    }
    pub fn counters(&self) -> CounterSnapshot {
        self.app.counters.snapshot()
    }
    /// The request journal from position `since` on.
    pub fn requests(&self, since: u64) -> Vec<requests::RequestRecord> {
        self.app.requests.lock().since(since, usize::MAX)
    }
    pub fn reset_counters(&self) {
        self.app.counters.reset();
    }
    /// Expires every session now (the next request of each client gets 401 and must log in again).
    pub fn expire_sessions(&self) {
        self.app.expire_sessions();
    }
    /// Number of stored objects.
    pub fn object_count(&self) -> usize {
        self.app.store.lock().len()
    }
    /// The Avi DNS address (UDP and TCP), when it runs.
    pub fn dns_addr(&self) -> Option<SocketAddr> {
        self.dns.as_ref().map(dns::DnsHandle::addr)
    }
    /// The number of configuration changes so far (the data plane and the DNS follow it).
    pub fn generation(&self) -> u64 {
        self.app.store.lock().generation()
    }
    /// The data plane, when it runs.
    pub fn dataplane(&self) -> Option<&Arc<dataplane::Plane>> {
        self.dataplane
            .as_ref()
            .map(dataplane::DataPlaneHandle::plane)
    }
    /// Stops serving, flushes and closes the journal.
    pub async fn shutdown(mut self) {
        self.dataplane.take();
        if let Some(d) = self.dns.take() {
            d.shutdown().await;
        }
        self.server.shutdown();
        let _ = self.task.await;
        if let Some(mut j) = self.app.journal.lock().take() {
            j.close();
        }
    }
}

#[derive(Debug)]
struct FixedCert(Arc<CertifiedKey>);

impl ResolvesServerCert for FixedCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

#[derive(serde::Deserialize)]
struct SeedFile {
    #[serde(default)]
    users: Vec<SeedUser>,
    #[serde(default)]
    objects: Vec<Value>,
}

#[derive(serde::Deserialize)]
struct SeedUser {
    username: String,
    password: String,
}

type SeedEntries = Vec<(String, Map<String, Value>)>;

fn parse_seed(text: &str) -> Result<(HashMap<String, String>, SeedEntries), EmulatorError> {
    let file: SeedFile =
        serde_yaml_ng::from_str(text).map_err(|e| EmulatorError::Seed(e.to_string()))?;
    let users = file
        .users
        .into_iter()
        .map(|u| (u.username, u.password))
        .collect();
    let mut entries = Vec::new();
    for (i, v) in file.objects.into_iter().enumerate() {
        let Value::Object(mut m) = v else {
            return Err(EmulatorError::Seed(format!(
                "objects[{i}] is not a mapping"
            )));
        };
        let Some(Value::String(t)) = m.remove("type") else {
            return Err(EmulatorError::Seed(format!("objects[{i}] has no `type`")));
        };
        if let Some(own) = m.remove("type_") {
            m.insert("type".into(), own);
        }
        entries.push((t, m));
    }
    Ok((users, entries))
}

fn create_private_dir(dir: &Path) -> Result<(), EmulatorError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| EmulatorError::Io {
            path: dir.to_path_buf(),
            source,
        })
}

fn load_or_create_ca(dir: Option<&Path>) -> Result<ako_certs::GeneratedCa, EmulatorError> {
    let Some(dir) = dir else {
        return Ok(ako_certs::generate_ca("ako emulator CA", 3650)?);
    };
    let (cert, key) = (dir.join("ca.crt"), dir.join("ca.key"));
    if cert.exists() && key.exists() {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|source| EmulatorError::Io {
                path: p.to_path_buf(),
                source,
            })
        };
        return Ok(ako_certs::GeneratedCa::from_pem(
            &read(&cert)?,
            &read(&key)?,
        )?);
    }
    let ca = ako_certs::generate_ca("ako emulator CA", 3650)?;
    let write = |p: &Path, data: &str, mode: u32| -> Result<(), EmulatorError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let io = |source| EmulatorError::Io {
            path: p.to_path_buf(),
            source,
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(p)
            .map_err(io)?;
        f.write_all(data.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)
    };
    write(&key, &ca.key_pem, 0o600)?;
    write(&cert, &ca.cert_pem, 0o644)?;
    Ok(ca)
}

/// Builds the store from the journal (restart) or the seed (first start), then compacts the journal.
type OpenedState = (Store, Option<Journal>, HashMap<String, String>);

fn open_state(config: &EmulatorConfig) -> Result<OpenedState, EmulatorError> {
    let (mut users, entries) = parse_seed(&config.seed)?;
    if let Some(p) = &config.admin_password {
        users.insert("admin".into(), p.clone());
    }
    let mut store = Store::new(config.dns_policy);
    let existing = match &config.state_dir {
        Some(dir) => {
            create_private_dir(dir)?;
            journal::load(dir)?
        }
        None => None,
    };
    match existing {
        Some(records) => {
            let n = records.len();
            for (i, r) in records.into_iter().enumerate() {
                match r {
                    // Restore is never stricter than writes: a record that cannot be indexed is
                    // skipped with a warning instead of refusing the whole start.
                    Record::Put { t, o } => {
                        if let Err(reason) = store.restore(&t, o) {
                            tracing::warn!(record = i + 1, records = n, %reason, "journal record skipped");
                        }
                    }
                    Record::Delete { u, .. } => store.restore_delete(&u),
                }
            }
            tracing::info!(
                objects = store.len(),
                records = n,
                "emulator state restored from the journal"
            );
        }
        None => {
            store
                .load_seed(entries)
                .map_err(|e| EmulatorError::Seed(e.message))?;
            tracing::info!(
                objects = store.len(),
                "emulator state created from the seed"
            );
        }
    }
    let journal = match &config.state_dir {
        Some(dir) => {
            let records: Vec<Record> = store
                .all_in_order()
                .into_iter()
                .map(|o| Record::Put {
                    t: o.obj_type.clone(),
                    o: o.body.clone(),
                })
                .collect();
            journal::compact(dir, records)?;
            Some(Journal::open(dir, config.fsync)?)
        }
        None => None,
    };
    Ok((store, journal, users))
}

/// Starts the emulator on `config.listen` (use port 0 for an ephemeral port) and returns at once.
pub async fn spawn(config: EmulatorConfig) -> Result<EmulatorHandle, EmulatorError> {
    ako_certs::install_crypto_provider();
    let (store, journal, users) = open_state(&config)?;
    let (resolver, ca_pem): (Arc<dyn ResolvesServerCert>, Option<String>) = match &config.tls {
        TlsSource::Files { cert, key } => (
            Arc::new(ako_certs::ReloadingResolver::load(cert, key)?),
            None,
        ),
        TlsSource::SelfSigned => {
            let ca = load_or_create_ca(config.state_dir.as_deref())?;
            let mut names = vec!["localhost".to_string()];
            let mut ips: Vec<IpAddr> =
                vec![[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()];
            for san in &config.extra_sans {
                match san.parse::<IpAddr>() {
                    Ok(ip) => ips.push(ip),
                    Err(_) => names.push(san.clone()),
                }
            }
            if !config.listen.ip().is_unspecified() && !ips.contains(&config.listen.ip()) {
                ips.push(config.listen.ip());
            }
            let serving = ca.issue(&names, &ips, 825)?;
            let key = ako_certs::certified_key_from_pem(
                serving.cert_pem.as_bytes(),
                serving.key_pem.as_bytes(),
                Path::new("<generated>"),
            )?;
            (
                Arc::new(FixedCert(Arc::new(key))),
                Some(ca.cert_pem.clone()),
            )
        }
    };
    let tls = ako_certs::server_config(resolver)?;
    let listener =
        std::net::TcpListener::bind(config.listen).map_err(|source| EmulatorError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| EmulatorError::Bind {
            addr: config.listen,
            source,
        })?;
    let app = App::new(
        store,
        journal,
        users,
        config.faults.clone(),
        config.controller_version.clone(),
        config.default_page_size,
    );
    if let Some(path) = &config.request_log {
        *app.requests.lock() =
            requests::Requests::with_file(path).map_err(|e| EmulatorError::State {
                path: path.clone(),
                reason: format!("request log: {e}"),
            })?;
    }
    let app = Arc::new(app);
    let router = axum::Router::new()
        .fallback(server::dispatch)
        .with_state(Arc::clone(&app));
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls)),
    )
    .map_err(|source| EmulatorError::Bind { addr, source })?
    .handle(handle.clone());
    let dns = match config.dns_listen {
        Some(listen) => Some(dns::spawn(Arc::clone(&app), listen).await?),
        None => None,
    };
    let dataplane = match config.dataplane.clone() {
        Some(c) => {
            let dp = dataplane::spawn(&app, c).map_err(EmulatorError::DataPlane)?;
            let plane: Arc<dyn server::DataPlaneView> = Arc::clone(dp.plane()) as _;
            let _ = app.dataplane.set(plane);
            Some(dp)
        }
        None => None,
    };
    let task = tokio::spawn(server.serve(router.into_make_service()));
    Ok(EmulatorHandle {
        addr,
        ca_pem,
        server: handle,
        task,
        app,
        dns,
        dataplane,
    })
}

/// Command-line arguments of `ako emulator`. `Debug` redacts the admin password.
#[derive(Clone, clap::Args)]
pub struct EmulatorArgs {
    /// Address to listen on (HTTPS).
    #[arg(long, default_value = "127.0.0.1:8443", env = "AKO_EMULATOR_LISTEN")]
    pub listen: SocketAddr,
    /// State directory (journal, CA). Created if missing.
    #[arg(
        long,
        default_value = "ako-emulator-state",
        env = "AKO_EMULATOR_STATE_DIR"
    )]
    pub state_dir: PathBuf,
    /// Keep state in memory only (nothing written).
    #[arg(long)]
    pub ephemeral: bool,
    /// Seed YAML for a fresh state (default: the embedded lab seed).
    #[arg(long, conflicts_with = "loopback_vips")]
    pub seed: Option<PathBuf>,
    /// Use the lab seed with its VIP network dpg-sedatapath-18 on loopback (127.10.18.0/26), so the data
    /// plane can serve every VIP on this machine.
    #[arg(long)]
    pub loopback_vips: bool,
    /// Serve the Avi DNS (authoritative for the DNS profile's domains) on this address, UDP and TCP.
    #[arg(long, env = "AKO_EMULATOR_DNS_LISTEN")]
    pub dns_listen: Option<SocketAddr>,
    /// Run the data plane: listen on the loopback VIPs of enabled virtual services and carry their traffic.
    #[arg(long)]
    pub dataplane: bool,
    /// Network (CIDR) besides loopback whose pool servers the data plane may connect to, repeatable (only for
    /// network namespaces you created yourself).
    #[arg(long = "dataplane-allow", requires = "dataplane")]
    pub dataplane_allow: Vec<ipnet::IpNet>,
    /// Pod network (CIDR, on loopback), repeatable: the data plane reaches a pool server in it only through a
    /// static route of the VRF whose next hop may be dialed (ako's ClusterIP mode).
    #[arg(long = "pod-network", requires = "dataplane")]
    pub pod_networks: Vec<ipnet::IpNet>,
    /// Health monitor interval override in milliseconds (default: each monitor's send_interval).
    #[arg(long, requires = "dataplane")]
    pub health_interval_ms: Option<u64>,
    /// Worker threads of the data plane.
    #[arg(long, default_value_t = 1)]
    pub dataplane_threads: usize,
    /// Password of user `admin`.
    #[arg(long, env = "AKO_EMULATOR_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Controller version reported by `/login` and `/api/initial-data`.
    #[arg(long, default_value = "22.1.5")]
    pub controller_version: String,
    /// Serving certificate (PEM); a self-signed CA is used when absent.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Serving key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Extra DNS names / IPs for the self-signed certificate.
    #[arg(long = "san")]
    pub sans: Vec<String>,
    /// FQDNs outside the DNS profile domains: reject (400) or accept.
    #[arg(long, value_enum, default_value = "reject")]
    pub dns_policy: DnsPolicy,
    /// Do not fsync journal writes (faster, loses acknowledged writes on power loss).
    #[arg(long)]
    pub no_fsync: bool,
    /// Default `page_size` of collections.
    #[arg(long, default_value_t = 25)]
    pub page_size: usize,
    /// Fault: latency added to each request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub fault_latency_ms: u64,
    /// Fault: STATUS=RATE (500, 503, 429, 412), repeatable.
    #[arg(long = "fault-error-rate", value_parser = faults::parse_error_rate)]
    pub fault_error_rates: Vec<(u16, f64)>,
    /// Fault: Retry-After seconds on injected 429/503.
    #[arg(long, default_value_t = 1)]
    pub fault_retry_after_secs: u64,
    /// Fault: sessions expire after this many seconds.
    #[arg(long)]
    pub fault_session_expiry_secs: Option<u64>,
    /// Fault: probability of dropping a connection.
    #[arg(long, default_value_t = 0.0)]
    pub fault_drop_rate: f64,
    /// Fault: error rates apply to writes only (a controller that reads fine and refuses every change).
    #[arg(long)]
    pub fault_writes_only: bool,
    /// Append every answered API request (method, object, status, User-Agent) to FILE as JSON lines.
    #[arg(long, value_name = "FILE")]
    pub request_log: Option<PathBuf>,
}

impl std::fmt::Debug for EmulatorArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorArgs")
            .field("listen", &self.listen)
            .field("state_dir", &self.state_dir)
            .field("ephemeral", &self.ephemeral)
            .field("seed", &self.seed)
            .field("loopback_vips", &self.loopback_vips)
            .field("dns_listen", &self.dns_listen)
            .field("dataplane", &self.dataplane)
            .field("dataplane_allow", &self.dataplane_allow)
            .field("pod_networks", &self.pod_networks)
            .field("health_interval_ms", &self.health_interval_ms)
            .field("dataplane_threads", &self.dataplane_threads)
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| REDACTED),
            )
            .field("controller_version", &self.controller_version)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("sans", &self.sans)
            .field("dns_policy", &self.dns_policy)
            .field("no_fsync", &self.no_fsync)
            .field("page_size", &self.page_size)
            .field("fault_latency_ms", &self.fault_latency_ms)
            .field("fault_error_rates", &self.fault_error_rates)
            .field("fault_retry_after_secs", &self.fault_retry_after_secs)
            .field("fault_session_expiry_secs", &self.fault_session_expiry_secs)
            .field("fault_drop_rate", &self.fault_drop_rate)
            .field("fault_writes_only", &self.fault_writes_only)
            .field("request_log", &self.request_log)
            .finish()
    }
}

impl EmulatorArgs {
    fn into_config(self) -> anyhow::Result<EmulatorConfig> {
        let seed = match &self.seed {
            Some(p) => {
                std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
            }
            None if self.loopback_vips => LOOPBACK_SEED.to_string(),
            None => DEFAULT_SEED.to_string(),
        };
        let dataplane = self.dataplane.then(|| dataplane::DataPlaneConfig {
            allowed_networks: self.dataplane_allow.clone(),
            pod_networks: self.pod_networks.clone(),
            health_interval: self
                .health_interval_ms
                .map(|ms| std::time::Duration::from_millis(ms.max(10))),
            threads: self.dataplane_threads,
        });
        let faults = Faults {
            latency_ms: self.fault_latency_ms,
            error_rates: self.fault_error_rates.into_iter().collect(),
            retry_after_secs: self.fault_retry_after_secs,
            session_expiry_secs: self.fault_session_expiry_secs,
            drop_rate: self.fault_drop_rate,
            writes_only: self.fault_writes_only,
            ..Default::default()
        };
        faults
            .validate()
            .map_err(|e| anyhow::anyhow!("fault flags: {e}"))?;
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => TlsSource::Files { cert, key },
            _ => TlsSource::SelfSigned,
        };
        Ok(EmulatorConfig {
            listen: self.listen,
            state_dir: (!self.ephemeral).then_some(self.state_dir),
            seed,
            admin_password: self.admin_password,
            controller_version: self.controller_version,
            tls,
            extra_sans: self.sans,
            dns_policy: self.dns_policy,
            fsync: !self.no_fsync,
            default_page_size: self.page_size,
            faults,
            dns_listen: self.dns_listen,
            dataplane,
            request_log: self.request_log,
        })
    }
}

/// Runs the emulator until Ctrl-C / SIGTERM.
pub async fn run(args: EmulatorArgs) -> anyhow::Result<()> {
    let config = args.into_config()?;
    let state_dir = config.state_dir.clone();
    let handle = spawn(config).await?;
    tracing::info!(url = %handle.base_url(), "Avi controller emulator listening");
    println!("ako emulator listening on {}", handle.base_url());
    if let Some(dns) = handle.dns_addr() {
        println!("Avi DNS listening on {dns} (UDP and TCP)");
    }
    if handle.dataplane().is_some() {
        println!(
            "data plane running; analytics page: {}/admin/analytics",
            handle.base_url()
        );
    }
    match (&state_dir, handle.ca_pem()) {
        (Some(dir), Some(_)) => println!("CA certificate: {}", dir.join("ca.crt").display()),
        (None, Some(pem)) => println!("CA certificate (ephemeral):\n{pem}"),
        _ => {}
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    tracing::info!("emulator shutting down");
    handle.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests;
