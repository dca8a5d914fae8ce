//! HTTPRule (`ako.vmware.com/v1beta1` and `v1alpha1`, namespaced): pool settings per path of a host, for the
//! Ingresses of the rule's own namespace (as in AKO).
//!
//! | field | Avi Pool |
//! |---|---|
//! | `loadBalancerPolicy.algorithm` | `lb_algorithm` |
//! | `loadBalancerPolicy.hash` (with CONSISTENT_HASH) | `lb_algorithm_hash` |
//! | `loadBalancerPolicy.hostHeader` (with CUSTOM_HEADER) | `lb_algorithm_consistent_hash_hdr` |
//! | `healthMonitors` | `health_monitor_refs`, instead of ako's `System-TCP` |
//! | `applicationPersistence` | `application_persistence_profile_ref` |
//! | `tls.type: reencrypt`, `sslProfile` (default `System-Standard`), `pkiProfile` | `ssl_profile_ref`, `sni_enabled`, `pki_profile_ref` |
//! | `tls.destinationCA` (PEM) | a PKIProfile `<pool>-pkiprofile` holding the CA (AKO's name), as the pool's `pki_profile_ref` |
//! | `enableHTTP2` | `enable_http2` |
//!
//! `target` selects the host's pools whose Ingress path starts with it, as AKO does (a text prefix: `/foo` also
//! selects `/foobar`); where several targets select one pool, the longest target decides (AKO: whichever its map
//! yields last).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{AviRef, Notes, name_ref, unknown_fields};

/// The pool SSL profile of a re-encrypting path without `sslProfile` (AKO's default).
pub const DEFAULT_POOL_SSL_PROFILE: &str = "System-Standard";

/// The algorithms AKO's HTTPRule schema allows.
pub const ALGORITHMS: [&str; 7] = [
    "LB_ALGORITHM_CONSISTENT_HASH",
    "LB_ALGORITHM_CORE_AFFINITY",
    "LB_ALGORITHM_FASTEST_RESPONSE",
    "LB_ALGORITHM_FEWEST_SERVERS",
    "LB_ALGORITHM_LEAST_CONNECTIONS",
    "LB_ALGORITHM_LEAST_LOAD",
    "LB_ALGORITHM_ROUND_ROBIN",
];
/// The consistent-hash keys AKO's HTTPRule schema allows.
pub const HASHES: [&str; 6] = [
    "LB_ALGORITHM_CONSISTENT_HASH_CALLID",
    "LB_ALGORITHM_CONSISTENT_HASH_SOURCE_IP_ADDRESS",
    "LB_ALGORITHM_CONSISTENT_HASH_SOURCE_IP_ADDRESS_AND_PORT",
    "LB_ALGORITHM_CONSISTENT_HASH_URI",
    "LB_ALGORITHM_CONSISTENT_HASH_CUSTOM_HEADER",
    "LB_ALGORITHM_CONSISTENT_HASH_CUSTOM_STRING",
];

/// `spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRuleSpec {
    pub fqdn: String,
    #[serde(default)]
    pub paths: Vec<HttpRulePath>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `spec.paths[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRulePath {
    pub target: String,
    pub load_balancer_policy: Option<LoadBalancerPolicy>,
    #[serde(default)]
    pub health_monitors: Vec<String>,
    pub application_persistence: Option<String>,
    pub tls: Option<PathTls>,
    #[serde(rename = "enableHTTP2")]
    pub enable_http2: Option<bool>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerPolicy {
    pub algorithm: Option<String>,
    pub hash: Option<String>,
    pub host_header: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PathTls {
    #[serde(rename = "type")]
    pub tls_type: String,
    pub ssl_profile: Option<String>,
    pub pki_profile: Option<String>,
    #[serde(rename = "destinationCA")]
    pub destination_ca: Option<String>,
}

impl HttpRuleSpec {
    /// What can be checked without the controller; the first problem, in AKO's words where it has them.
    pub fn check(&self) -> Result<(), String> {
        if self.fqdn.trim().is_empty() {
            return Err("spec.fqdn is required".into());
        }
        for (i, p) in self.paths.iter().enumerate() {
            let at = format!("spec.paths[{i}]");
            if !p.target.starts_with('/') {
                return Err(format!("{at}.target {:?} must start with '/'", p.target));
            }
            if let Some(lb) = &p.load_balancer_policy {
                if let Some(a) = &lb.algorithm
                    && !ALGORITHMS.contains(&a.as_str())
                {
                    return Err(format!(
                        "{at}.loadBalancerPolicy.algorithm {a:?} is not one of {}",
                        ALGORITHMS.join(", ")
                    ));
                }
                if let Some(h) = &lb.hash
                    && !HASHES.contains(&h.as_str())
                {
                    return Err(format!(
                        "{at}.loadBalancerPolicy.hash {h:?} is not one of {}",
                        HASHES.join(", ")
                    ));
                }
            }
            if let Some(tls) = &p.tls {
                if tls.tls_type != "reencrypt" {
                    return Err(format!(
                        "{at}.tls.type {:?} is not supported; the only value is \"reencrypt\"",
                        tls.tls_type
                    ));
                }
                if tls.pki_profile.is_some() && tls.destination_ca.is_some() {
                    return Err("PKIProfile and DestinationCA fields are set in the HTTPRule. Only one of the field should be set.".into());
                }
            }
        }
        Ok(())
    }

    /// The controller objects the rule names, with the field naming each.
    pub fn refs(&self) -> Vec<AviRef> {
        let mut out = Vec::new();
        for (i, p) in self.paths.iter().enumerate() {
            let at = format!("spec.paths[{i}]");
            for (j, hm) in p.health_monitors.iter().enumerate() {
                out.push(AviRef::new(
                    "healthmonitor",
                    hm,
                    format!("{at}.healthMonitors[{j}]"),
                ));
            }
            if let Some(ap) = &p.application_persistence {
                out.push(AviRef::new(
                    "applicationpersistenceprofile",
                    ap,
                    format!("{at}.applicationPersistence"),
                ));
            }
            if let Some(tls) = &p.tls {
                if let Some(s) = &tls.ssl_profile {
                    out.push(AviRef::new("sslprofile", s, format!("{at}.tls.sslProfile")));
                }
                if let Some(s) = &tls.pki_profile {
                    out.push(AviRef::new("pkiprofile", s, format!("{at}.tls.pkiProfile")));
                }
            }
        }
        out
    }

    /// Fields ako reads but does not apply yet, and unknown ones.
    pub fn notes(&self) -> Notes {
        let mut n = Notes::default();
        unknown_fields("spec", &self.other, &mut n.unknown);
        for (i, p) in self.paths.iter().enumerate() {
            let at = format!("spec.paths[{i}]");
            unknown_fields(&at, &p.other, &mut n.unknown);
        }
        n
    }

    /// The path entry deciding a pool of Ingress path `path`: the longest target that is a prefix of it.
    pub fn path_for(&self, path: &str) -> Option<&HttpRulePath> {
        // An Ingress path left empty is `/` for this purpose (AKO always includes it).
        let path = if path.is_empty() { "/" } else { path };
        self.paths
            .iter()
            .filter(|p| path.starts_with(p.target.as_str()))
            .max_by_key(|p| p.target.len())
    }
}

impl HttpRulePath {
    /// Applies the path's settings to a pool body.
    pub fn apply(&self, pool: &mut Map<String, Value>) {
        if let Some(lb) = &self.load_balancer_policy
            && let Some(a) = &lb.algorithm
        {
            pool.insert("lb_algorithm".into(), Value::String(a.clone()));
            if a == "LB_ALGORITHM_CONSISTENT_HASH" {
                let hash = lb
                    .hash
                    .clone()
                    .unwrap_or_else(|| "LB_ALGORITHM_CONSISTENT_HASH_SOURCE_IP_ADDRESS".into());
                if hash == "LB_ALGORITHM_CONSISTENT_HASH_CUSTOM_HEADER"
                    && let Some(h) = &lb.host_header
                {
                    pool.insert(
                        "lb_algorithm_consistent_hash_hdr".into(),
                        Value::String(h.clone()),
                    );
                }
                pool.insert("lb_algorithm_hash".into(), Value::String(hash));
            }
        }
        if !self.health_monitors.is_empty() {
            let mut seen = std::collections::BTreeSet::new();
            let refs: Vec<Value> = self
                .health_monitors
                .iter()
                .filter(|h| seen.insert(h.as_str()))
                .map(|h| name_ref("healthmonitor", h))
                .collect();
            pool.insert("health_monitor_refs".into(), Value::Array(refs));
        }
        if let Some(ap) = &self.application_persistence {
            pool.insert(
                "application_persistence_profile_ref".into(),
                name_ref("applicationpersistenceprofile", ap),
            );
        }
        if let Some(tls) = &self.tls {
            let profile = tls
                .ssl_profile
                .as_deref()
                .unwrap_or(DEFAULT_POOL_SSL_PROFILE);
            pool.insert("ssl_profile_ref".into(), name_ref("sslprofile", profile));
            pool.insert("sni_enabled".into(), Value::Bool(true));
            if let Some(pki) = &tls.pki_profile {
                pool.insert("pki_profile_ref".into(), name_ref("pkiprofile", pki));
            }
        }
        if let Some(h2) = self.enable_http2 {
            pool.insert("enable_http2".into(), json!(h2));
        }
    }
}

#[cfg(test)]
mod tests;
