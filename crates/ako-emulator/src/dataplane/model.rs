//! What the data plane serves, read from the store (pure): listeners per VIP:port, virtual services with their
//! routing, pools with their servers and monitors, certificates. Everything not served carries its reason.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use rustls::sign::CertifiedKey;
use serde_json::{Map, Value};

use super::policy::{self, Rule, Target};
use crate::store::{Obj, Store};

/// Most ports one `services[]` range may open.
const MAX_RANGE: u16 = 16;

/// Transport of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Proto {
    Tcp,
    Udp,
}

/// How a virtual service handles a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppKind {
    L4,
    Http,
    /// Not carried by the emulator (DNS, SSL-Application, ...): the profile's name.
    Other(String),
}

/// One bound address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    pub addr: SocketAddr,
    pub proto: Proto,
    /// The virtual service (uuid) owning the address.
    pub vs: String,
    pub tls: bool,
    pub http: bool,
}

/// An L4 policy rule: ports and protocol -> pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L4Rule {
    ports: Vec<(u16, u16)>,
    negate_ports: bool,
    protocol: Option<(bool, Proto)>,
    pub pool: String,
}

impl L4Rule {
    pub fn matches(&self, port: u16, proto: Proto) -> bool {
        let in_ports =
            self.ports.is_empty() || self.ports.iter().any(|(a, b)| (*a..=*b).contains(&port));
        let port_ok = if self.ports.is_empty() {
            true
        } else {
            in_ports != self.negate_ports
        };
        let proto_ok = self
            .protocol
            .is_none_or(|(negate, p)| (p == proto) != negate);
        port_ok && proto_ok
    }
}

/// A virtual service as the data plane sees it.
#[derive(Debug, Clone, Default)]
pub struct VsModel {
    pub uuid: String,
    pub name: String,
    pub app: Option<AppKind>,
    pub enabled: bool,
    pub traffic_enabled: bool,
    pub vips: Vec<IpAddr>,
    pub fqdns: Vec<String>,
    pub parent: Option<String>,
    /// SNI children (enabled): their `vh_domain_name` entries and uuid.
    pub children: Vec<(Vec<String>, String)>,
    pub domain_names: Vec<String>,
    pub default_target: Option<Target>,
    pub rules: Vec<Rule>,
    pub l4_rules: Vec<L4Rule>,
    /// SSLKeyAndCertificate uuid.
    pub cert: Option<String>,
    /// Why (part of) the virtual service is not served.
    pub reasons: Vec<String>,
}

/// An active health monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorKind {
    Tcp,
    Http {
        request: String,
        codes: Vec<String>,
    },
    /// Monitors the emulator cannot run (UDP, PING, ...) count as passing.
    Passive(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Monitor {
    pub name: String,
    pub kind: MonitorKind,
    pub interval: Duration,
    pub timeout: Duration,
    pub successful_checks: u32,
    pub failed_checks: u32,
}

/// A pool server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerModel {
    pub addr: SocketAddr,
    pub enabled: bool,
    pub ratio: u32,
    /// Never dialed: why.
    pub blocked: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolModel {
    pub uuid: String,
    pub name: String,
    pub enabled: bool,
    pub algorithm: Algorithm,
    pub persistence: Option<Persistence>,
    pub servers: Vec<ServerModel>,
    pub monitors: Vec<Monitor>,
    /// Re-encryption: the pool reaches its servers over TLS (`ssl_profile_ref` set).
    pub tls: Option<BackendTls>,
}

/// A pool group member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub pool: String,
    pub ratio: u32,
    pub priority: i64,
}

/// Everything served, rebuilt after each store change.
#[derive(Debug, Default)]
pub struct Model {
    pub generation: u64,
    pub listeners: BTreeMap<(SocketAddr, Proto), ListenerSpec>,
    pub vs: HashMap<String, VsModel>,
    pub pools: HashMap<String, PoolModel>,
    pub pool_groups: HashMap<String, (String, Vec<Member>)>,
    pub certs: HashMap<String, Arc<CertifiedKey>>,
}

/// Which pool servers the data plane may dial: loopback and `allowed`; an address in `pod_networks` only through
/// a static route of the VRF (ClusterIP mode).
#[derive(Debug, Clone, Default)]
pub struct Reach {
    pub allowed: Vec<IpNet>,
    pub pod_networks: Vec<IpNet>,
}

/// The static routes of every VRF context: (VRF name, prefix, next hop).
fn static_routes(store: &Store) -> Vec<(String, IpNet, IpAddr)> {
    let mut out = Vec::new();
    for vrf in store.iter_type("vrfcontext") {
        for r in vrf
            .body
            .get("static_routes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let prefix = r.get("prefix").and_then(|p| {
                let addr: IpAddr = p.get("ip_addr")?.get("addr")?.as_str()?.parse().ok()?;
                IpNet::new(addr, u8::try_from(p.get("mask")?.as_u64()?).ok()?).ok()
            });
            let hop = r
                .get("next_hop")
                .and_then(|h| h.get("addr"))
                .and_then(Value::as_str)
                .and_then(|a| a.parse().ok());
            if let (Some(p), Some(h)) = (prefix, hop) {
                out.push((vrf.name.clone(), p, h));
            }
        }
    }
    out
}

/// Whether a pool server may be dialed: a pod address through the most specific static route covering it,
/// whose next hop may be dialed; any other address as [`dialable`] says.
fn reachable(ip: IpAddr, reach: &Reach, routes: &[(String, IpNet, IpAddr)]) -> Result<(), String> {
    if !reach.pod_networks.iter().any(|n| n.contains(&ip)) {
        return dialable(ip, &reach.allowed);
    }
    let route = routes
        .iter()
        .filter(|(_, p, _)| p.contains(&ip))
        .max_by_key(|(_, p, _)| p.prefix_len());
    match route {
        None => Err(format!(
            "{ip} is a pod address and no static route of a VRF covers it (ClusterIP mode: one route per Node's \
             pod CIDR, next hop the Node)"
        )),
        Some((vrf, p, hop)) => dialable(*hop, &reach.allowed)
            .map_err(|e| format!("the static route {p} via {hop} (VRF {vrf}): {e}")),
    }
}

/// Whether the data plane may connect to `ip`: loopback, or a network the configuration allows.
pub fn dialable(ip: IpAddr, allowed: &[IpNet]) -> Result<(), String> {
    if ip.is_loopback() || allowed.iter().any(|n| n.contains(&ip)) {
        Ok(())
    } else {
        Err(format!(
            "{ip} is not a loopback address (nor in an allowed network); the emulator never connects to it"
        ))
    }
}

fn uuid_of(v: Option<&Value>) -> Option<&str> {
    v?.as_str()?.rsplit('/').next()
}

fn target<'s>(store: &'s Store, v: Option<&Value>) -> Option<&'s Obj> {
    store.get_any(uuid_of(v)?)
}

fn bool_or(body: &Map<String, Value>, key: &str, default: bool) -> bool {
    body.get(key).and_then(Value::as_bool).unwrap_or(default)
}

fn app_kind(store: &Store, vs: &Obj) -> AppKind {
    let Some(profile) = target(store, vs.body.get("application_profile_ref")) else {
        return AppKind::Http;
    };
    match (
        profile.name.as_str(),
        profile.body.get("type").and_then(Value::as_str),
    ) {
        ("System-L4-Application", _) | (_, Some("APPLICATION_PROFILE_TYPE_L4")) => AppKind::L4,
        ("System-HTTP" | "System-Secure-HTTP", _) | (_, Some("APPLICATION_PROFILE_TYPE_HTTP")) => {
            AppKind::Http
        }
        (name, _) => AppKind::Other(name.to_string()),
    }
}

fn is_udp(store: &Store, profile: Option<&Value>) -> bool {
    target(store, profile).is_some_and(|p| p.name.contains("UDP"))
}

fn monitor(obj: &Obj, interval_override: Option<Duration>) -> Monitor {
    let secs = |k: &str, d: u64| obj.body.get(k).and_then(Value::as_u64).unwrap_or(d);
    let count = |k: &str, d: u32| {
        obj.body
            .get(k)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(d)
            .max(1)
    };
    let kind = match obj.body.get("type").and_then(Value::as_str) {
        Some("HEALTH_MONITOR_TCP") => MonitorKind::Tcp,
        Some("HEALTH_MONITOR_HTTP") => {
            let http = obj.body.get("http_monitor");
            let request = http
                .and_then(|h| h.get("http_request"))
                .and_then(Value::as_str)
                .unwrap_or("GET / HTTP/1.0")
                .to_string();
            let mut codes: Vec<String> = http
                .and_then(|h| h.get("http_response_code"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().or_else(|| c.get("code")?.as_str()))
                .map(str::to_string)
                .collect();
            if codes.is_empty() {
                codes = vec!["HTTP_2XX".into(), "HTTP_3XX".into()];
            }
            MonitorKind::Http { request, codes }
        }
        other => MonitorKind::Passive(other.unwrap_or("unknown").to_string()),
    };
    let interval =
        interval_override.unwrap_or(Duration::from_secs(secs("send_interval", 10).max(1)));
    let timeout = interval_override.map_or_else(
        || Duration::from_secs(secs("receive_timeout", 4).max(1)),
        |i| i.max(Duration::from_millis(200)),
    );
    Monitor {
        name: obj.name.clone(),
        kind,
        interval,
        timeout,
        successful_checks: count("successful_checks", 2),
        failed_checks: count("failed_checks", 2),
    }
}

fn pool_model(
    store: &Store,
    obj: &Obj,
    reach: &Reach,
    routes: &[(String, IpNet, IpAddr)],
    interval: Option<Duration>,
) -> PoolModel {
    let default_port = obj
        .body
        .get("default_server_port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(80);
    let servers = obj
        .body
        .get("servers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let ip: IpAddr = s.get("ip")?.get("addr")?.as_str()?.parse().ok()?;
            let port = s
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0)
                .unwrap_or(default_port);
            Some(ServerModel {
                addr: SocketAddr::new(ip, port),
                enabled: s.get("enabled").and_then(Value::as_bool).unwrap_or(true),
                ratio: s
                    .get("ratio")
                    .and_then(Value::as_u64)
                    .and_then(|r| u32::try_from(r).ok())
                    .unwrap_or(1),
                blocked: reachable(ip, reach, routes).err(),
            })
        })
        .collect();
    let monitors = obj
        .body
        .get("health_monitor_refs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| target(store, Some(r)))
        .map(|m| monitor(m, interval))
        .collect();
    let algorithm = balancing::algorithm(&obj.body);
    let persistence = balancing::persistence(store, obj);
    PoolModel {
        uuid: obj.uuid.clone(),
        name: obj.name.clone(),
        enabled: bool_or(&obj.body, "enabled", true),
        algorithm,
        persistence,
        servers,
        monitors,
        tls: backend_tls(store, obj),
    }
}

fn l4_rules(store: &Store, vs: &Obj) -> Vec<L4Rule> {
    let mut sets: Vec<&Value> = vs
        .body
        .get("l4_policies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    sets.sort_by_key(|p| p.get("index").and_then(Value::as_i64).unwrap_or(i64::MAX));
    let mut out = Vec::new();
    for set in sets {
        let Some(obj) = target(store, set.get("l4_policy_set_ref")) else {
            continue;
        };
        let mut rules: Vec<&Value> = obj
            .body
            .get("l4_connection_policy")
            .and_then(|p| p.get("rules"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|r| r.get("enable").and_then(Value::as_bool) != Some(false))
            .collect();
        rules.sort_by_key(|r| r.get("index").and_then(Value::as_i64).unwrap_or(i64::MAX));
        for r in rules {
            let Some(pool) = r
                .get("action")
                .and_then(|a| a.get("select_pool"))
                .and_then(|s| uuid_of(s.get("pool_ref")))
            else {
                continue;
            };
            let m = r.get("match");
            let port = m.and_then(|m| m.get("port"));
            let mut ports: Vec<(u16, u16)> = port
                .and_then(|p| p.get("ports"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_u64)
                .filter_map(|p| u16::try_from(p).ok())
                .map(|p| (p, p))
                .collect();
            ports.extend(
                port.and_then(|p| p.get("range"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|r| {
                        let s = u16::try_from(r.get("start")?.as_u64()?).ok()?;
                        let e = u16::try_from(r.get("end")?.as_u64()?).ok()?;
                        Some((s, e))
                    }),
            );
            let protocol = m.and_then(|m| m.get("protocol")).map(|p| {
                let negate = p.get("match_criteria").and_then(Value::as_str) == Some("IS_NOT_IN");
                let proto = if p.get("protocol").and_then(Value::as_str) == Some("PROTOCOL_UDP") {
                    Proto::Udp
                } else {
                    Proto::Tcp
                };
                (negate, proto)
            });
            out.push(L4Rule {
                negate_ports: port
                    .and_then(|p| p.get("match_criteria"))
                    .and_then(Value::as_str)
                    == Some("IS_NOT_IN"),
                ports,
                protocol,
                pool: pool.to_string(),
            });
        }
    }
    out
}

fn http_rules(store: &Store, vs: &Obj, reasons: &mut Vec<String>) -> Vec<Rule> {
    let mut sets: Vec<&Value> = vs
        .body
        .get("http_policies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    sets.sort_by_key(|p| p.get("index").and_then(Value::as_i64).unwrap_or(i64::MAX));
    let mut rules = Vec::new();
    for set in sets {
        if let Some(obj) = target(store, set.get("http_policy_set_ref")) {
            for r in policy::compile_set(&obj.body) {
                if let Some(why) = &r.unsupported {
                    reasons.push(format!(
                        "HTTPPolicySet {} rule {}: {why} is not evaluated by the emulator, the rule never matches",
                        obj.name, r.name
                    ));
                }
                rules.push(r);
            }
        }
    }
    rules
}

fn cert_of(
    store: &Store,
    vs: &Obj,
    certs: &mut HashMap<String, Arc<CertifiedKey>>,
    reasons: &mut Vec<String>,
) -> Option<String> {
    for r in vs
        .body
        .get("ssl_key_and_certificate_refs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(obj) = target(store, Some(r)) else {
            continue;
        };
        if certs.contains_key(&obj.uuid) {
            return Some(obj.uuid.clone());
        }
        let pem = obj
            .body
            .get("certificate")
            .and_then(|c| c.get("certificate"))
            .and_then(Value::as_str);
        let key = obj.body.get("key").and_then(Value::as_str);
        match (pem, key) {
            (Some(pem), Some(key)) => match ako_certs::certified_key_from_pem(
                pem.as_bytes(),
                key.as_bytes(),
                std::path::Path::new(&obj.name),
            ) {
                Ok(k) => {
                    certs.insert(obj.uuid.clone(), Arc::new(k));
                    return Some(obj.uuid.clone());
                }
                Err(e) => reasons.push(format!("certificate {}: {e}", obj.name)),
            },
            _ => reasons.push(format!(
                "certificate {} has no certificate PEM and key",
                obj.name
            )),
        }
    }
    None
}

/// The members of a pool group: pool, ratio and priority.
fn pool_group_members(pg: &Obj) -> Vec<Member> {
    pg.body
        .get("members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| {
            Some(Member {
                pool: uuid_of(m.get("pool_ref"))?.to_string(),
                ratio: m
                    .get("ratio")
                    .and_then(Value::as_u64)
                    .and_then(|r| u32::try_from(r).ok())
                    .unwrap_or(1),
                priority: m
                    .get("priority_label")
                    .and_then(Value::as_str)
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0),
            })
        })
        .collect()
}

impl Model {
    /// Builds the model from the store. `reach` says which pool servers may be dialed; `interval` overrides the
    /// monitors' send interval.
    pub fn build(store: &Store, reach: &Reach, interval: Option<Duration>) -> Self {
        let mut model = Self {
            generation: store.generation(),
            ..Self::default()
        };
        let routes = static_routes(store);
        for p in store.iter_type("pool") {
            model.pools.insert(
                p.uuid.clone(),
                pool_model(store, p, reach, &routes, interval),
            );
        }
        for pg in store.iter_type("poolgroup") {
            model
                .pool_groups
                .insert(pg.uuid.clone(), (pg.name.clone(), pool_group_members(pg)));
        }
        let mut children: HashMap<String, Vec<(Vec<String>, String)>> = HashMap::new();
        for vs in store.iter_type("virtualservice") {
            let mut m = VsModel {
                uuid: vs.uuid.clone(),
                name: vs.name.clone(),
                enabled: bool_or(&vs.body, "enabled", true),
                traffic_enabled: bool_or(&vs.body, "traffic_enabled", true),
                ..VsModel::default()
            };
            let app = app_kind(store, vs);
            m.default_target = uuid_of(vs.body.get("pool_group_ref"))
                .map(|u| Target::PoolGroup(u.to_string()))
                .or_else(|| uuid_of(vs.body.get("pool_ref")).map(|u| Target::Pool(u.to_string())));
            m.rules = http_rules(store, vs, &mut m.reasons);
            m.l4_rules = l4_rules(store, vs);
            m.cert = cert_of(store, vs, &mut model.certs, &mut m.reasons);
            m.domain_names = vs
                .body
                .get("vh_domain_name")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_ascii_lowercase)
                .collect();
            let parent = uuid_of(vs.body.get("vh_parent_vs_ref"))
                .or_else(|| uuid_of(vs.body.get("vh_parent_vs_uuid")));
            if vs.body.get("type").and_then(Value::as_str) == Some("VS_TYPE_VH_CHILD")
                && let Some(parent) = parent
            {
                m.parent = Some(parent.to_string());
                if m.enabled {
                    children
                        .entry(parent.to_string())
                        .or_default()
                        .push((m.domain_names.clone(), vs.uuid.clone()));
                } else {
                    m.reasons
                        .push("the virtual service is disabled (enabled: false)".into());
                }
                m.app = Some(app);
                model.vs.insert(vs.uuid.clone(), m);
                continue;
            }
            if let Some(vsvip) = target(store, vs.body.get("vsvip_ref")) {
                m.vips = ako_core::l4::vips_of(&vsvip.body);
                m.fqdns = vsvip
                    .body
                    .get("dns_info")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|d| d.get("fqdn")?.as_str().map(str::to_string))
                    .collect();
            }
            if !m.enabled {
                m.reasons
                    .push("the virtual service is disabled (enabled: false)".into());
            } else if !m.traffic_enabled {
                m.reasons
                    .push("traffic is disabled (traffic_enabled: false)".into());
            } else if let AppKind::Other(name) = &app {
                m.reasons.push(format!(
                    "application profile {name} is not carried by the emulator (only L4 and HTTP)"
                ));
            } else if m.vips.is_empty() {
                m.reasons
                    .push("no VIP address (no vsvip_ref or nothing allocated)".into());
            } else {
                model.listen(store, vs, &mut m, app == AppKind::Http);
            }
            m.app = Some(app);
            model.vs.insert(vs.uuid.clone(), m);
        }
        for (parent, kids) in children {
            if let Some(p) = model.vs.get_mut(&parent) {
                p.children = kids;
            }
        }
        model
    }

    /// The listeners of an enabled virtual service with a VIP: one per VIP and port of each `services` entry
    /// (port ranges up to MAX_RANGE ports), UDP where its network profile is; loopback VIPs only. Conflicts and
    /// refusals are added to the VS's reasons.
    fn listen(&mut self, store: &Store, vs: &Obj, m: &mut VsModel, http: bool) {
        let default_udp = is_udp(store, vs.body.get("network_profile_ref"));
        for s in vs
            .body
            .get("services")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(port) = s
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
            else {
                continue;
            };
            let end = s
                .get("port_range_end")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(port)
                .max(port);
            if end - port >= MAX_RANGE {
                m.reasons.push(format!(
                    "port range {port}-{end} is wider than {MAX_RANGE} ports; only {port} is served"
                ));
            }
            let end = end.min(port.saturating_add(MAX_RANGE - 1));
            let tls = s
                .get("enable_ssl")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let udp = match s.get("override_network_profile_ref") {
                Some(p) => is_udp(store, Some(p)),
                None => default_udp,
            };
            let proto = if udp && !http { Proto::Udp } else { Proto::Tcp };
            for vip in &m.vips {
                if let Err(why) = dialable(*vip, &[]) {
                    let why = format!(
                        "VIP {vip} is not served: only loopback VIPs are bound on this machine ({why}); use the loopback VIP network"
                    );
                    if !m.reasons.contains(&why) {
                        m.reasons.push(why);
                    }
                    continue;
                }
                for p in port..=end {
                    let addr = SocketAddr::new(*vip, p);
                    match self.listeners.get(&(addr, proto)) {
                        Some(other) if other.vs != vs.uuid => m.reasons.push(format!(
                            "{addr} ({proto:?}) is already served by another virtual service"
                        )),
                        _ => {
                            self.listeners.insert(
                                (addr, proto),
                                ListenerSpec {
                                    addr,
                                    proto,
                                    vs: vs.uuid.clone(),
                                    tls: tls && http,
                                    http,
                                },
                            );
                        }
                    }
                }
            }
        }
    }

    /// The SNI child of `parent` serving `sni`: an exact `vh_domain_name`, else a wildcard `*.suffix`.
    pub fn child_for(&self, parent: &str, sni: &str) -> Option<&VsModel> {
        let sni = sni.to_ascii_lowercase();
        let p = self.vs.get(parent)?;
        let exact = p.children.iter().find(|(names, _)| names.contains(&sni));
        let wild = || {
            p.children.iter().find(|(names, _)| {
                names.iter().any(|n| {
                    n.strip_prefix('*')
                        .is_some_and(|suffix| sni.ends_with(suffix) && sni.len() > suffix.len())
                })
            })
        };
        exact.or_else(wild).and_then(|(_, u)| self.vs.get(u))
    }
}

mod balancing; // how a pool chooses a server: algorithm and persistence
mod reencrypt; // a pool's TLS to its servers
pub use balancing::{Algorithm, HashKey, Persistence};
pub use reencrypt::BackendTls;
use reencrypt::backend_tls;

#[cfg(test)]
mod tests;
