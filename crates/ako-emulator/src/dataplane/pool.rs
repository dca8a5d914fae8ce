//! Pool servers at run time: health (passive failure detection and active monitors), active connections, and
//! the choice of a server (round robin, least connections; pool groups by priority then ratio).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};

use super::model::{Algorithm, HashKey, Model, Persistence, PoolModel};
use super::policy::Target;

/// Run-time state of one server of one pool.
#[derive(Debug)]
pub struct ServerState {
    pub addr: SocketAddr,
    up: AtomicBool,
    active: AtomicUsize,
    successes: AtomicU32,
    failures: AtomicU32,
    pub requests: AtomicU64,
    reason: Mutex<String>,
}

impl ServerState {
    fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            up: AtomicBool::new(true),
            active: AtomicUsize::new(0),
            successes: AtomicU32::new(0),
            failures: AtomicU32::new(0),
            requests: AtomicU64::new(0),
            reason: Mutex::new(String::new()),
        }
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    pub fn reason(&self) -> String {
        self.reason.lock().clone()
    }

    /// Takes the server out at once (a connection failed).
    pub fn mark_failed(&self, why: String) {
        self.successes.store(0, Ordering::Relaxed);
        if self.up.swap(false, Ordering::AcqRel) {
            tracing::info!(server = %self.addr, reason = %why, "pool server down");
        }
        *self.reason.lock() = why;
    }

    /// Records a health check: the server goes down after `failed` consecutive failures and comes back after
    /// `successful` consecutive successes.
    pub fn record_check(&self, ok: bool, why: &str, successful: u32, failed: u32) {
        if ok {
            self.failures.store(0, Ordering::Relaxed);
            let n = self.successes.fetch_add(1, Ordering::Relaxed) + 1;
            if !self.is_up() && n >= successful {
                self.up.store(true, Ordering::Release);
                self.reason.lock().clear();
                tracing::info!(server = %self.addr, "pool server up");
            }
        } else {
            self.successes.store(0, Ordering::Relaxed);
            let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
            if self.is_up() && n >= failed {
                self.mark_failed(why.to_string());
            } else if !self.is_up() {
                *self.reason.lock() = why.to_string();
            }
        }
    }
}

/// Counts a connection or request on a server while alive.
#[derive(Debug)]
pub struct Lease(pub Arc<ServerState>);

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What of a request a pool's algorithm or persistence may choose by (nothing, for L4 and health checks).
#[derive(Debug, Default, Clone, Copy)]
pub struct Affinity<'a> {
    pub peer: Option<SocketAddr>,
    pub uri: &'a str,
    pub headers: Option<&'a http::HeaderMap>,
}

impl Affinity<'_> {
    /// The value of a request cookie.
    fn cookie(&self, name: &str) -> Option<&str> {
        self.headers?
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// The key a consistent hash is computed on, if the request has it.
    fn hash_key(&self, key: &HashKey) -> Option<String> {
        match key {
            HashKey::SourceIp => self.peer.map(|p| p.ip().to_string()),
            HashKey::SourceIpAndPort => self.peer.map(|p| p.to_string()),
            HashKey::Uri => Some(self.uri.to_string()),
            HashKey::Header(h) => self
                .headers?
                .get(h.as_str())
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        }
    }
}

/// A server chosen for a request, with the cookie to set when the pool persists by cookie and the request did
/// not carry a valid one.
#[derive(Debug)]
pub struct Picked {
    pub pool: String,
    pub lease: Lease,
    pub set_cookie: Option<String>,
    /// The pool's re-encryption, if it re-encrypts.
    pub tls: Option<super::model::BackendTls>,
}

/// The cookie value naming a server (its address, hex-encoded: opaque to clients, like Avi's).
fn cookie_value(addr: SocketAddr) -> String {
    addr.to_string()
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn cookie_server(value: &str) -> Option<SocketAddr> {
    let bytes: Option<Vec<u8>> = (0..value.len())
        .step_by(2)
        .map(|i| {
            value
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    String::from_utf8(bytes?).ok()?.parse().ok()
}

/// FNV-1a, stable across runs (a consistent hash must not change with the process).
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Server states of every pool, kept across configuration changes for servers that stay.
#[derive(Debug, Default)]
pub struct ServerTable {
    servers: RwLock<HashMap<(String, SocketAddr), Arc<ServerState>>>,
    counters: RwLock<HashMap<String, Arc<AtomicUsize>>>,
}

impl ServerTable {
    /// The state of a server (created on first use).
    pub fn state(&self, pool: &str, addr: SocketAddr) -> Arc<ServerState> {
        let key = (pool.to_string(), addr);
        if let Some(s) = self.servers.read().get(&key) {
            return Arc::clone(s);
        }
        Arc::clone(
            self.servers
                .write()
                .entry(key)
                .or_insert_with(|| Arc::new(ServerState::new(addr))),
        )
    }

    fn counter(&self, key: &str) -> Arc<AtomicUsize> {
        if let Some(c) = self.counters.read().get(key) {
            return Arc::clone(c);
        }
        Arc::clone(self.counters.write().entry(key.to_string()).or_default())
    }

    /// Drops the states of servers no longer configured.
    pub fn retain(&self, model: &Model) {
        self.servers.write().retain(|(pool, addr), _| {
            model
                .pools
                .get(pool)
                .is_some_and(|p| p.servers.iter().any(|s| s.addr == *addr))
        });
    }

    /// Whether a pool has a server that may take traffic.
    pub fn pool_available(&self, pool: &PoolModel) -> bool {
        pool.enabled
            && pool
                .servers
                .iter()
                .any(|s| s.enabled && s.blocked.is_none() && self.state(&pool.uuid, s.addr).is_up())
    }

    /// Chooses a server of `pool`, skipping `tried`: the one the request's persistence cookie names if it is
    /// up, else by the pool's algorithm.
    pub fn pick_in_pool(
        &self,
        pool: &PoolModel,
        tried: &[SocketAddr],
        affinity: &Affinity<'_>,
    ) -> Option<(Lease, Option<String>)> {
        if !pool.enabled {
            return None;
        }
        let mut candidates: Vec<(Arc<ServerState>, u32)> = pool
            .servers
            .iter()
            .filter(|s| s.enabled && s.blocked.is_none() && s.ratio > 0 && !tried.contains(&s.addr))
            .map(|s| (self.state(&pool.uuid, s.addr), s.ratio))
            .filter(|(st, _)| st.is_up())
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let lease = |chosen: &Arc<ServerState>| {
            chosen.active.fetch_add(1, Ordering::Relaxed);
            chosen.requests.fetch_add(1, Ordering::Relaxed);
            Lease(Arc::clone(chosen))
        };
        let mut set_cookie = None;
        match &pool.persistence {
            Some(Persistence::HttpCookie { cookie }) => {
                let kept = affinity
                    .cookie(cookie)
                    .and_then(cookie_server)
                    .and_then(|addr| candidates.iter().find(|(s, _)| s.addr == addr));
                if let Some((s, _)) = kept {
                    return Some((lease(s), None));
                }
                set_cookie = Some(cookie.clone());
            }
            Some(Persistence::ClientIp) => {
                if let Some(ip) = affinity.peer.map(|p| p.ip().to_string()) {
                    candidates.sort_by_key(|(s, _)| s.addr);
                    let i = usize::try_from(fnv(&ip) % candidates.len() as u64).unwrap_or(0);
                    return Some((lease(&candidates[i].0), None));
                }
            }
            None => {}
        }
        let with_cookie = |l: Lease| {
            let header = set_cookie
                .as_ref()
                .map(|name| format!("{name}={}; Path=/; HttpOnly", cookie_value(l.0.addr)));
            (l, header)
        };
        if let Algorithm::ConsistentHash(key) = &pool.algorithm
            && let Some(k) = affinity.hash_key(key)
        {
            candidates.sort_by_key(|(s, _)| s.addr);
            let i = usize::try_from(fnv(&k) % candidates.len() as u64).unwrap_or(0);
            return Some(with_cookie(lease(&candidates[i].0)));
        }
        let turn = self.counter(&pool.uuid).fetch_add(1, Ordering::Relaxed);
        let chosen = match pool.algorithm {
            Algorithm::RoundRobin => {
                let total: usize = candidates.iter().map(|(_, r)| *r as usize).sum();
                let mut slot = turn % total.max(1);
                candidates
                    .iter()
                    .find(|(_, r)| {
                        if slot < *r as usize {
                            true
                        } else {
                            slot -= *r as usize;
                            false
                        }
                    })
                    .map(|(s, _)| s)
            }
            // A consistent hash without its key in the request (an L4 flow hashed on a header) behaves as least
            // connections.
            Algorithm::LeastConnections | Algorithm::ConsistentHash(_) => {
                let n = candidates.len();
                (0..n)
                    .map(|i| &candidates[(turn + i) % n].0)
                    .min_by_key(|s| s.active())
            }
        }?;
        Some(with_cookie(lease(chosen)))
    }

    /// Chooses a pool and server for a target. Pool groups: the highest priority with a server up, then
    /// members by ratio.
    pub fn pick(
        &self,
        model: &Model,
        target: &Target,
        tried: &[SocketAddr],
        affinity: &Affinity<'_>,
    ) -> Option<Picked> {
        let picked = |pool: &PoolModel, (lease, set_cookie): (Lease, Option<String>)| Picked {
            pool: pool.name.clone(),
            lease,
            set_cookie,
            tls: pool.tls.clone(),
        };
        match target {
            Target::Pool(p) => {
                let pool = model.pools.get(p)?;
                self.pick_in_pool(pool, tried, affinity)
                    .map(|l| picked(pool, l))
            }
            Target::PoolGroup(g) => {
                let (_, members) = model.pool_groups.get(g)?;
                let mut priorities: Vec<i64> = members.iter().map(|m| m.priority).collect();
                priorities.sort_unstable_by(|a, b| b.cmp(a));
                priorities.dedup();
                for prio in priorities {
                    let level: Vec<(&PoolModel, u32)> = members
                        .iter()
                        .filter(|m| m.priority == prio && m.ratio > 0)
                        .filter_map(|m| Some((model.pools.get(&m.pool)?, m.ratio)))
                        .collect();
                    if level.is_empty() {
                        continue;
                    }
                    let total: usize = level.iter().map(|(_, r)| *r as usize).sum();
                    let turn = self.counter(g).fetch_add(1, Ordering::Relaxed) % total.max(1);
                    // Start at the member the ratio designates, then try the others of this level.
                    let mut slot = turn;
                    let start = level
                        .iter()
                        .position(|(_, r)| {
                            if slot < *r as usize {
                                true
                            } else {
                                slot -= *r as usize;
                                false
                            }
                        })
                        .unwrap_or(0);
                    for i in 0..level.len() {
                        let (pool, _) = level[(start + i) % level.len()];
                        if let Some(l) = self.pick_in_pool(pool, tried, affinity) {
                            return Some(picked(pool, l));
                        }
                    }
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::model::ServerModel;

    fn pool(algorithm: Algorithm, n: u16) -> PoolModel {
        PoolModel {
            tls: None,
            uuid: "pool-1".into(),
            name: "p".into(),
            enabled: true,
            algorithm,
            persistence: None,
            servers: (0..n)
                .map(|i| ServerModel {
                    addr: SocketAddr::from(([127, 0, 0, 1], 9000 + i)),
                    enabled: true,
                    ratio: 1,
                    blocked: None,
                })
                .collect(),
            monitors: Vec::new(),
        }
    }

    #[test]
    fn round_robin_rotates_and_skips_servers_that_are_down() {
        let t = ServerTable::default();
        let p = pool(Algorithm::RoundRobin, 3);
        let picks: Vec<u16> = (0..6)
            .map(|_| {
                t.pick_in_pool(&p, &[], &none())
                    .expect("server")
                    .0
                    .0
                    .addr
                    .port()
            })
            .collect();
        assert_eq!(picks, vec![9000, 9001, 9002, 9000, 9001, 9002]);
        t.state("pool-1", p.servers[1].addr)
            .mark_failed("refused".into());
        for _ in 0..6 {
            assert_ne!(
                t.pick_in_pool(&p, &[], &none())
                    .expect("server")
                    .0
                    .0
                    .addr
                    .port(),
                9001
            );
        }
    }

    #[test]
    fn least_connections_prefers_the_idle_server() {
        let t = ServerTable::default();
        let p = pool(Algorithm::LeastConnections, 2);
        let (held, _) = t.pick_in_pool(&p, &[], &none()).expect("first");
        for _ in 0..4 {
            let (other, _) = t.pick_in_pool(&p, &[], &none()).expect("second");
            assert_ne!(other.0.addr, held.0.addr);
        }
    }

    fn none() -> Affinity<'static> {
        Affinity::default()
    }

    #[test]
    fn a_consistent_hash_sends_one_key_to_one_server_and_different_keys_apart() {
        let t = ServerTable::default();
        let p = pool(Algorithm::ConsistentHash(HashKey::SourceIp), 4);
        let from = |ip: [u8; 4]| Affinity {
            peer: Some(SocketAddr::from((ip, 40000))),
            ..Affinity::default()
        };
        let server = |a: &Affinity<'_>| t.pick_in_pool(&p, &[], a).expect("server").0.0.addr;
        let first = server(&from([127, 0, 0, 1]));
        for _ in 0..8 {
            assert_eq!(server(&from([127, 0, 0, 1])), first);
        }
        let spread: std::collections::BTreeSet<SocketAddr> =
            (1..=40).map(|i| server(&from([127, 0, 1, i]))).collect();
        assert!(spread.len() > 1, "every client on one server");
        // The server of a key going down moves only that key.
        t.state("pool-1", first).mark_failed("refused".into());
        assert_ne!(server(&from([127, 0, 0, 1])), first);
    }

    #[test]
    fn cookie_persistence_sets_a_cookie_once_and_keeps_its_server_while_it_is_up() {
        let t = ServerTable::default();
        let mut p = pool(Algorithm::RoundRobin, 3);
        p.persistence = Some(Persistence::HttpCookie {
            cookie: "AVI-P".into(),
        });
        let (first, set) = t.pick_in_pool(&p, &[], &none()).expect("server");
        let set = set.expect("a cookie for a request without one");
        let value = set
            .strip_prefix("AVI-P=")
            .and_then(|v| v.split(';').next())
            .expect("cookie value");
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            http::HeaderValue::from_str(&format!("other=1; AVI-P={value}")).expect("header"),
        );
        let with = Affinity {
            headers: Some(&headers),
            ..Affinity::default()
        };
        for _ in 0..6 {
            let (l, set) = t.pick_in_pool(&p, &[], &with).expect("server");
            assert_eq!(l.0.addr, first.0.addr);
            assert!(set.is_none());
        }
        // Without the cookie, round robin goes on.
        assert_ne!(
            t.pick_in_pool(&p, &[], &none()).expect("server").0.0.addr,
            first.0.addr
        );
        // Its server down: another one, and a new cookie.
        t.state("pool-1", first.0.addr)
            .mark_failed("refused".into());
        let (l, set) = t.pick_in_pool(&p, &[], &with).expect("server");
        assert_ne!(l.0.addr, first.0.addr);
        assert!(set.is_some());
    }

    #[test]
    fn a_server_comes_back_after_the_successful_checks() {
        let s = ServerState::new(SocketAddr::from(([127, 0, 0, 1], 1)));
        s.record_check(false, "refused", 2, 2);
        assert!(s.is_up(), "one failure is not enough");
        s.record_check(false, "refused", 2, 2);
        assert!(!s.is_up());
        s.record_check(true, "", 2, 2);
        assert!(!s.is_up());
        s.record_check(true, "", 2, 2);
        assert!(s.is_up());
    }
}
