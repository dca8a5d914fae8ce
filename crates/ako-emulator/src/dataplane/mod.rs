//! The Service Engine data plane: listens on each loopback VIP:port of each enabled virtual service and
//! carries its traffic (L4 TCP/UDP, L7 HTTP/HTTPS), following the store live.
//!
//! ```text
//! store change -> Model::build -> listeners (bind/unbind) -> proxy (policies, SNI) -> pool (health, LB) -> server
//! ```
//!
//! Hard rule of these machines: only pool servers on loopback (or in `allowed_networks`) are ever dialed, and
//! only loopback VIPs are bound; everything else is shown down with the reason in the runtime API.

pub mod analytics;
pub mod model;
pub mod policy;
pub mod pool;
mod proxy;
mod splice;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use ipnet::IpNet;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use super::server::App;
use analytics::Analytics;
use model::{Model, MonitorKind, PoolModel, Proto, VsModel};
use policy::{Action, Target};
use pool::ServerTable;

/// Data plane settings.
#[derive(Debug, Clone)]
pub struct DataPlaneConfig {
    /// Networks besides loopback whose pool servers may be dialed (network namespaces a test creates).
    pub allowed_networks: Vec<IpNet>,
    /// Pod networks (ClusterIP mode): a pool server in one is reached only through a static route of the VRF
    /// whose prefix covers it and whose next hop (a Node) may be dialed, as a Service Engine reaches pods.
    pub pod_networks: Vec<IpNet>,
    /// Overrides every health monitor's send interval (tests, demos); also the re-check interval of servers
    /// taken out by passive detection in pools without monitors (default 10 s).
    pub health_interval: Option<Duration>,
    /// Worker threads of the data plane's runtime (0 counts as 1). One is the default: on the 2-core machines
    /// measured (BENCHMARKS.md) more threads lost to the cost of tasks moving between them.
    pub threads: usize,
}

impl Default for DataPlaneConfig {
    fn default() -> Self {
        Self {
            allowed_networks: Vec::new(),
            pod_networks: Vec::new(),
            health_interval: None,
            threads: 1,
        }
    }
}

impl DataPlaneConfig {
    /// Which pool servers may be dialed, and how.
    pub fn reach(&self) -> model::Reach {
        model::Reach {
            allowed: self.allowed_networks.clone(),
            pod_networks: self.pod_networks.clone(),
        }
    }
}

/// Shared state of the data plane.
pub struct Plane {
    pub model: ArcSwap<Model>,
    pub servers: ServerTable,
    pub analytics: Analytics,
    config: DataPlaneConfig,
    bind_errors: Mutex<BTreeMap<(SocketAddr, Proto), String>>,
}

impl std::fmt::Debug for Plane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plane")
            .field("generation", &self.model.load().generation)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A running data plane: stops (listeners, monitors, its thread) when dropped.
#[derive(Debug)]
pub struct DataPlaneHandle {
    plane: Arc<Plane>,
    tasks: Vec<JoinHandle<()>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl DataPlaneHandle {
    pub fn plane(&self) -> &Arc<Plane> {
        &self.plane
    }
}

impl Drop for DataPlaneHandle {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts the data plane on the emulator's store, on threads of its own (`config.threads`), so the controller
/// API keeps its own threads.
pub fn spawn(app: &Arc<App>, config: DataPlaneConfig) -> std::io::Result<DataPlaneHandle> {
    let (model, changes) = {
        let store = app.store.lock();
        (
            Model::build(&store, &config.reach(), config.health_interval),
            store.subscribe(),
        )
    };
    let plane = Arc::new(Plane {
        model: ArcSwap::from_pointee(model),
        servers: ServerTable::default(),
        analytics: Analytics::default(),
        config,
        bind_errors: Mutex::default(),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(plane.config.threads.max(1))
        .thread_name("ako-dataplane")
        .enable_all()
        .build()?;
    let manager = rt.spawn(manage(Arc::clone(app), Arc::clone(&plane), changes));
    let health = rt.spawn(health(Arc::clone(&plane)));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("ako-dataplane".into())
        .spawn(move || {
            rt.block_on(async {
                let _ = stopped.await;
            });
        })?;
    Ok(DataPlaneHandle {
        plane,
        tasks: vec![manager, health],
        stop: Some(stop),
    })
}

/// Aborts the task when dropped (the manager's listeners end with it).
struct Listener {
    spec: model::ListenerSpec,
    task: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn bind(plane: &Arc<Plane>, spec: &model::ListenerSpec) -> std::io::Result<JoinHandle<()>> {
    let plane = Arc::clone(plane);
    let spec2 = spec.clone();
    Ok(match spec.proto {
        Proto::Tcp => {
            let l = tokio::net::TcpListener::bind(spec.addr).await?;
            tokio::spawn(proxy::serve_tcp(plane, spec2, l))
        }
        Proto::Udp => {
            let s = tokio::net::UdpSocket::bind(spec.addr).await?;
            tokio::spawn(proxy::serve_udp(plane, spec2, s))
        }
    })
}

async fn manage(app: Arc<App>, plane: Arc<Plane>, mut changes: tokio::sync::watch::Receiver<u64>) {
    let mut running: HashMap<(SocketAddr, Proto), Listener> = HashMap::new();
    loop {
        let model = {
            let store = app.store.lock();
            Arc::new(Model::build(
                &store,
                &plane.config.reach(),
                plane.config.health_interval,
            ))
        };
        plane.servers.retain(&model);
        plane.model.store(Arc::clone(&model));
        let stale: Vec<(SocketAddr, Proto)> = running
            .iter()
            .filter(|(k, l)| model.listeners.get(k) != Some(&l.spec))
            .map(|(k, _)| *k)
            .collect();
        for k in stale {
            if let Some(l) = running.remove(&k) {
                l.task.abort();
                // Wait until the socket is closed, so the same address can be bound again at once.
                let mut l = l;
                let _ = (&mut l.task).await;
                tracing::info!(addr = %k.0, proto = ?k.1, "VIP listener stopped");
            }
        }
        let mut errors = BTreeMap::new();
        for (k, spec) in &model.listeners {
            if running.contains_key(k) {
                continue;
            }
            match bind(&plane, spec).await {
                Ok(task) => {
                    tracing::info!(addr = %k.0, proto = ?k.1, vs = %spec.vs, "VIP listener started");
                    running.insert(
                        *k,
                        Listener {
                            spec: spec.clone(),
                            task,
                        },
                    );
                }
                Err(e) => {
                    tracing::warn!(addr = %k.0, error = %e, "VIP listener not started");
                    errors.insert(*k, format!("binding {} ({:?}) failed: {e}", k.0, k.1));
                }
            }
        }
        *plane.bind_errors.lock() = errors;
        if changes.changed().await.is_err() {
            return;
        }
    }
}

async fn health(plane: Arc<Plane>) {
    let passive_interval = plane
        .config
        .health_interval
        .unwrap_or(Duration::from_secs(10));
    let tick = passive_interval.min(Duration::from_secs(1)) / 2;
    let mut due: HashMap<(String, SocketAddr), Instant> = HashMap::new();
    loop {
        tokio::time::sleep(tick.max(Duration::from_millis(20))).await;
        let model = plane.model.load_full();
        let now = Instant::now();
        due.retain(|(p, a), _| {
            model
                .pools
                .get(p)
                .is_some_and(|pool| pool.servers.iter().any(|s| s.addr == *a))
        });
        for pool in model.pools.values() {
            for s in pool
                .servers
                .iter()
                .filter(|s| s.enabled && s.blocked.is_none())
            {
                let state = plane.servers.state(&pool.uuid, s.addr);
                let monitors: Vec<model::Monitor> = pool.monitors.clone();
                let (interval, timeout, ok_n, fail_n) =
                    match monitors.iter().map(|m| m.interval).min() {
                        Some(i) => (
                            i,
                            monitors.iter().map(|m| m.timeout).max().unwrap_or(i),
                            monitors
                                .iter()
                                .map(|m| m.successful_checks)
                                .max()
                                .unwrap_or(1),
                            monitors.iter().map(|m| m.failed_checks).max().unwrap_or(1),
                        ),
                        // No monitor: only a server taken out by a failed connection is re-checked (TCP).
                        None if !state.is_up() => (
                            passive_interval,
                            passive_interval.min(Duration::from_secs(3)),
                            1,
                            1,
                        ),
                        None => continue,
                    };
                let key = (pool.uuid.clone(), s.addr);
                if due.get(&key).is_some_and(|t| now < *t) {
                    continue;
                }
                due.insert(key, now + interval);
                let addr = s.addr;
                tokio::spawn(async move {
                    let kinds: Vec<MonitorKind> = if monitors.is_empty() {
                        vec![MonitorKind::Tcp]
                    } else {
                        monitors.into_iter().map(|m| m.kind).collect()
                    };
                    let mut verdict = Ok(());
                    for k in &kinds {
                        verdict = tokio::time::timeout(timeout, check(k, addr))
                            .await
                            .unwrap_or_else(|_| Err(format!("health check of {addr} timed out")));
                        if verdict.is_err() {
                            break;
                        }
                    }
                    match verdict {
                        Ok(()) => state.record_check(true, "", ok_n, fail_n),
                        Err(why) => state.record_check(false, &why, ok_n, fail_n),
                    }
                });
            }
        }
    }
}

/// One health check of a server.
async fn check(kind: &MonitorKind, addr: SocketAddr) -> Result<(), String> {
    match kind {
        MonitorKind::Passive(_) => Ok(()),
        MonitorKind::Tcp => tokio::net::TcpStream::connect(addr)
            .await
            .map(drop)
            .map_err(|e| format!("TCP health check of {addr} failed: {e}")),
        MonitorKind::Http { request, codes } => {
            let mut s = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| format!("HTTP health check of {addr} failed: {e}"))?;
            let req = format!(
                "{}\r\nHost: {addr}\r\nUser-Agent: avi/1.0\r\nConnection: close\r\n\r\n",
                request.trim_end()
            );
            s.write_all(req.as_bytes())
                .await
                .map_err(|e| format!("HTTP health check of {addr} failed: {e}"))?;
            let mut buf = [0u8; 64];
            let mut n = 0;
            while n < 12 {
                let m = s
                    .read(&mut buf[n..])
                    .await
                    .map_err(|e| format!("HTTP health check of {addr} failed: {e}"))?;
                if m == 0 {
                    break;
                }
                n += m;
            }
            let status: u16 = std::str::from_utf8(&buf[..n])
                .ok()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| format!("HTTP health check of {addr}: no status line"))?;
            let class = format!("HTTP_{}XX", status / 100);
            if codes.iter().any(|c| *c == class || c == "HTTP_ANY") {
                Ok(())
            } else {
                Err(format!(
                    "HTTP health check of {addr}: status {status} not in {codes:?}"
                ))
            }
        }
    }
}

impl Plane {
    /// Pools a virtual service may send traffic to (pool groups expanded).
    fn pools_of<'m>(model: &'m Model, vs: &VsModel) -> Vec<&'m PoolModel> {
        let mut targets: Vec<&Target> = vs.default_target.iter().collect();
        for r in &vs.rules {
            if let Action::Switch(t) = &r.action {
                targets.push(t);
            }
        }
        let l4: Vec<Target> = vs
            .l4_rules
            .iter()
            .map(|r| Target::Pool(r.pool.clone()))
            .collect();
        targets.extend(l4.iter());
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for t in targets {
            let pools: Vec<&String> = match t {
                Target::Pool(p) => vec![p],
                Target::PoolGroup(g) => model
                    .pool_groups
                    .get(g)
                    .map(|(_, m)| m.iter().map(|m| &m.pool).collect())
                    .unwrap_or_default(),
            };
            for p in pools {
                if seen.insert(p.clone())
                    && let Some(pm) = model.pools.get(p)
                {
                    out.push(pm);
                }
            }
        }
        out
    }

    fn listeners_of(&self, model: &Model, vs: &str) -> (Vec<String>, Vec<String>) {
        let errors = self.bind_errors.lock();
        let mut up = Vec::new();
        let mut failed = Vec::new();
        for (k, spec) in model.listeners.iter().filter(|(_, s)| s.vs == vs) {
            let name = format!(
                "{}/{}{}",
                k.0,
                if k.1 == Proto::Udp { "UDP" } else { "TCP" },
                if spec.tls { " (TLS)" } else { "" }
            );
            match errors.get(k) {
                Some(e) => failed.push(e.clone()),
                None => up.push(name),
            }
        }
        (up, failed)
    }

    /// The store generation the served configuration was built from.
    pub fn generation(&self) -> u64 {
        self.model.load().generation
    }

    /// Operational state of a virtual service: `(state, reasons)`.
    pub fn oper_status(&self, uuid: &str) -> Option<(&'static str, Vec<String>)> {
        let model = self.model.load();
        self.oper_in(&model, uuid, 0)
    }

    fn oper_in(&self, model: &Model, uuid: &str, depth: u8) -> Option<(&'static str, Vec<String>)> {
        let vs = model.vs.get(uuid)?;
        if !vs.enabled {
            return Some(("OPER_DISABLED", vs.reasons.clone()));
        }
        let mut reasons = vs.reasons.clone();
        if let Some(parent) = &vs.parent {
            match self.oper_in(model, parent, depth + 1) {
                Some(("OPER_UP", _)) => {}
                Some((_, why)) if depth < 2 => {
                    reasons.push(format!(
                        "the parent virtual service is not up: {}",
                        why.join("; ")
                    ));
                    return Some(("OPER_DOWN", reasons));
                }
                _ => {
                    reasons.push("the parent virtual service does not exist".into());
                    return Some(("OPER_DOWN", reasons));
                }
            }
        } else {
            let (up, failed) = self.listeners_of(model, uuid);
            reasons.extend(failed);
            if up.is_empty() {
                if reasons.is_empty() {
                    reasons.push("no service port to listen on".into());
                }
                return Some(("OPER_DOWN", reasons));
            }
        }
        let pools = Self::pools_of(model, vs);
        if !pools.is_empty() && !pools.iter().any(|p| self.servers.pool_available(p)) {
            reasons.push(format!(
                "no pool server is up ({})",
                pools
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            return Some(("OPER_DOWN", reasons));
        }
        Some(("OPER_UP", reasons))
    }

    fn pool_json(&self, p: &PoolModel) -> Value {
        let servers: Vec<Value> = p
            .servers
            .iter()
            .map(|s| {
                let st = self.servers.state(&p.uuid, s.addr);
                let (state, reason) = if let Some(b) = &s.blocked {
                    ("OPER_DOWN", b.clone())
                } else if !s.enabled || !p.enabled {
                    ("OPER_DISABLED", "disabled".to_string())
                } else if st.is_up() {
                    ("OPER_UP", String::new())
                } else {
                    ("OPER_DOWN", st.reason())
                };
                json!({"ip": {"addr": s.addr.ip().to_string(), "type": if s.addr.is_ipv4() { "V4" } else { "V6" }},
                       "port": s.addr.port(), "hostname": s.addr.ip().to_string(),
                       "oper_status": {"state": state, "reason": if reason.is_empty() { vec![] } else { vec![reason] }},
                       "active_connections": st.active(),
                       "requests": st.requests.load(std::sync::atomic::Ordering::Relaxed)})
            })
            .collect();
        let up = self.servers.pool_available(p);
        json!({"name": p.name, "uuid": p.uuid,
               "oper_status": {"state": if !p.enabled { "OPER_DISABLED" } else if up { "OPER_UP" } else { "OPER_DOWN" }},
               "num_servers": p.servers.len(),
               "num_servers_up": p.servers.iter().filter(|s| s.enabled && s.blocked.is_none() && self.servers.state(&p.uuid, s.addr).is_up()).count(),
               "servers": servers})
    }

    /// Runtime of one pool, as `GET /api/pool/<uuid>/runtime/detail` lists it.
    pub fn pool_runtime(&self, uuid: &str) -> Option<Value> {
        let model = self.model.load();
        model.pools.get(uuid).map(|p| self.pool_json(p))
    }

    fn vs_json(&self, model: &Model, vs: &VsModel) -> Value {
        let (state, reasons) = self
            .oper_in(model, &vs.uuid, 0)
            .unwrap_or(("OPER_UNKNOWN", Vec::new()));
        let (listeners, _) = self.listeners_of(model, &vs.uuid);
        let pools: Vec<Value> = Self::pools_of(model, vs)
            .into_iter()
            .map(|p| self.pool_json(p))
            .collect();
        let children: Vec<Value> = vs
            .children
            .iter()
            .map(|(names, u)| json!({"uuid": u, "vh_domain_name": names}))
            .collect();
        json!({"name": vs.name, "uuid": vs.uuid,
               "oper_status": {"state": state, "reason": reasons},
               "vips": vs.vips.iter().map(ToString::to_string).collect::<Vec<_>>(),
               "fqdns": vs.fqdns, "listeners": listeners, "vh_domain_name": vs.domain_names,
               "vh_parent_vs": vs.parent, "children": children, "pools": pools,
               "analytics": self.analytics.of(&vs.uuid).to_json()})
    }

    /// Runtime and analytics of one virtual service.
    pub fn vs_runtime(&self, uuid: &str) -> Option<Value> {
        let model = self.model.load();
        model.vs.get(uuid).map(|vs| self.vs_json(&model, vs))
    }

    /// Everything: listeners, virtual services (with pools and analytics), by name.
    pub fn runtime(&self) -> Value {
        let model = self.model.load();
        let mut vss: Vec<&VsModel> = model.vs.values().collect();
        vss.sort_by(|a, b| a.name.cmp(&b.name));
        let errors = self.bind_errors.lock().clone();
        let listeners: Vec<Value> = model
            .listeners
            .iter()
            .map(|(k, s)| {
                json!({"address": k.0.to_string(), "protocol": if k.1 == Proto::Udp { "UDP" } else { "TCP" },
                       "tls": s.tls, "http": s.http, "virtualservice": s.vs,
                       "error": errors.get(k)})
            })
            .collect();
        json!({"generation": model.generation, "listeners": listeners,
               "virtualservices": vss.into_iter().map(|v| self.vs_json(&model, v)).collect::<Vec<_>>()})
    }
}

impl super::server::DataPlaneView for Plane {
    fn runtime(&self) -> Value {
        Plane::runtime(self)
    }
    fn vs_runtime(&self, uuid: &str) -> Option<Value> {
        Plane::vs_runtime(self, uuid)
    }
    fn pool_runtime(&self, uuid: &str) -> Option<Value> {
        Plane::pool_runtime(self, uuid)
    }
    fn oper_status(&self, uuid: &str) -> Option<(&'static str, Vec<String>)> {
        Plane::oper_status(self, uuid)
    }
    fn analytics_page(&self) -> String {
        analytics::page(&Plane::runtime(self))
    }
}
