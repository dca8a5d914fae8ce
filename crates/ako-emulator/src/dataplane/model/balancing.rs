//! How a pool chooses a server, read from its body: the algorithm (`lb_algorithm`, with the consistent hash's key)
//! and the session persistence of its `application_persistence_profile_ref`.

use serde_json::{Map, Value};

use super::target;
use crate::store::{Obj, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Algorithm {
    RoundRobin,
    LeastConnections,
    /// `LB_ALGORITHM_CONSISTENT_HASH`: the same key goes to the same server while the servers stay.
    ConsistentHash(HashKey),
}

/// What a consistent hash is computed on (`lb_algorithm_hash`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    SourceIp,
    SourceIpAndPort,
    Uri,
    Header(String),
}

/// A pool's session persistence (its `application_persistence_profile_ref`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Persistence {
    /// `PERSISTENCE_TYPE_HTTP_COOKIE`: the first answer sets a cookie naming the server; requests carrying it go
    /// back to that server while it is up.
    HttpCookie { cookie: String },
    /// `PERSISTENCE_TYPE_CLIENT_IP_ADDRESS`: a client address keeps its server.
    ClientIp,
}

pub(super) fn algorithm(body: &Map<String, Value>) -> Algorithm {
    let text = |k: &str| body.get(k).and_then(Value::as_str);
    match text("lb_algorithm") {
        Some("LB_ALGORITHM_ROUND_ROBIN") => Algorithm::RoundRobin,
        Some("LB_ALGORITHM_CONSISTENT_HASH") => {
            Algorithm::ConsistentHash(match text("lb_algorithm_hash") {
                Some("LB_ALGORITHM_CONSISTENT_HASH_SOURCE_IP_ADDRESS_AND_PORT") => {
                    HashKey::SourceIpAndPort
                }
                Some("LB_ALGORITHM_CONSISTENT_HASH_URI") => HashKey::Uri,
                Some("LB_ALGORITHM_CONSISTENT_HASH_CUSTOM_HEADER") => HashKey::Header(
                    text("lb_algorithm_consistent_hash_hdr")
                        .unwrap_or_default()
                        .to_ascii_lowercase(),
                ),
                _ => HashKey::SourceIp,
            })
        }
        _ => Algorithm::LeastConnections,
    }
}

pub(super) fn persistence(store: &Store, pool: &Obj) -> Option<Persistence> {
    let p = target(store, pool.body.get("application_persistence_profile_ref"))?;
    match p.body.get("persistence_type").and_then(Value::as_str) {
        Some("PERSISTENCE_TYPE_HTTP_COOKIE") => Some(Persistence::HttpCookie {
            cookie: p
                .body
                .get("http_cookie_persistence_profile")
                .and_then(|c| c.get("cookie_name"))
                .and_then(Value::as_str)
                .map_or_else(
                    // A name of the pool's own, like the controller's generated one.
                    || {
                        let id: String = pool.uuid.chars().filter(|c| *c != '-').take(8).collect();
                        format!("AVI-{id}")
                    },
                    str::to_string,
                ),
        }),
        Some("PERSISTENCE_TYPE_CLIENT_IP_ADDRESS") => Some(Persistence::ClientIp),
        _ => None,
    }
}
