//! L4Rule (`ako.vmware.com/v1alpha2`, namespaced): the settings of a LoadBalancer Service's virtual service and
//! pools, bound by the Service annotation `ako.vmware.com/l4rule: [<namespace>/]<name>` (as in AKO).
//!
//! | field | Avi |
//! |---|---|
//! | `applicationProfileRef`, `networkProfileRef`, `analyticsProfileRef` (AKO's CRD defaults them: System-L4-Application, System-TCP-Proxy, System-Analytics-Profile) | the virtual service's profiles |
//! | `networkSecurityPolicyRef`, `securityPolicyRef` | `network_security_policy_ref`, `security_policy_ref` |
//! | `vsDatascriptRefs` | `vs_datascripts` in order |
//! | `performanceLimits` | `performance_limits {max_concurrent_connections, max_throughput}` |
//! | `analyticsPolicy.fullClientLogs` | `analytics_policy.full_client_logs {enabled, duration, throttle}` |
//! | `loadBalancerIP` | the VsVip's address, unless the Service asks for one itself |
//! | `listenerProperties[]` (every Service port; `enableSsl` on a single-port Service) | the port's `enable_ssl`, `ssl_key_and_certificate_refs` and `ssl_profile_ref` from `sslKeyAndCertificateRefs`/`sslProfileRef`, `System-SSL-Application` unless the rule names an application profile, the pool as `pool_ref` (no L4 policy set), as AKO |
//! | `backendProperties[]` (by port and protocol) | the pool's `lb_algorithm`, `lb_algorithm_hash`, `lb_algorithm_consistent_hash_hdr`, `application_persistence_profile_ref`, `health_monitor_refs`, `enabled`, `min_servers_up`, `ssl_profile_ref`, `pki_profile_ref`, `ssl_key_and_certificate_ref`, `analytics_policy.enable_realtime_metrics` |

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{AviRef, Notes, name_ref, unknown_fields};
use crate::index::ObjKey;

/// The Service annotation naming a Service's L4Rule.
pub const ANNOTATION: &str = "ako.vmware.com/l4rule";

/// The algorithms AKO's L4Rule schema allows.
pub const ALGORITHMS: [&str; 11] = [
    "LB_ALGORITHM_LEAST_CONNECTIONS",
    "LB_ALGORITHM_ROUND_ROBIN",
    "LB_ALGORITHM_FASTEST_RESPONSE",
    "LB_ALGORITHM_CONSISTENT_HASH",
    "LB_ALGORITHM_LEAST_LOAD",
    "LB_ALGORITHM_FEWEST_SERVERS",
    "LB_ALGORITHM_RANDOM",
    "LB_ALGORITHM_FEWEST_TASKS",
    "LB_ALGORITHM_NEAREST_SERVER",
    "LB_ALGORITHM_CORE_AFFINITY",
    "LB_ALGORITHM_TOPOLOGY",
];

/// `spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct L4RuleSpec {
    pub analytics_profile_ref: Option<String>,
    pub application_profile_ref: Option<String>,
    pub network_profile_ref: Option<String>,
    pub network_security_policy_ref: Option<String>,
    pub security_policy_ref: Option<String>,
    #[serde(rename = "loadBalancerIP")]
    pub load_balancer_ip: Option<String>,
    #[serde(default)]
    pub ssl_key_and_certificate_refs: Vec<String>,
    pub ssl_profile_ref: Option<String>,
    #[serde(default)]
    pub vs_datascript_refs: Vec<String>,
    pub revoke_vip_route: Option<bool>,
    pub performance_limits: Option<PerformanceLimits>,
    pub analytics_policy: Option<L4AnalyticsPolicy>,
    #[serde(default)]
    pub backend_properties: Vec<BackendProperties>,
    #[serde(default)]
    pub listener_properties: Vec<ListenerProperties>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PerformanceLimits {
    pub max_concurrent_connections: Option<u32>,
    pub max_throughput: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct L4AnalyticsPolicy {
    pub full_client_logs: Option<L4FullClientLogs>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct L4FullClientLogs {
    #[serde(default)]
    pub enabled: bool,
    pub duration: Option<u32>,
    pub throttle: Option<u32>,
}

/// `spec.listenerProperties[]`: one port of the virtual service (AKO: every Service port, by port and protocol).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerProperties {
    pub port: u16,
    pub protocol: String,
    #[serde(default)]
    pub enable_ssl: bool,
}

/// `spec.backendProperties[]`: one pool, by the Service's port and protocol.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendProperties {
    pub port: u16,
    pub protocol: String,
    pub enabled: Option<bool>,
    pub lb_algorithm: Option<String>,
    pub lb_algorithm_hash: Option<String>,
    pub lb_algorithm_consistent_hash_hdr: Option<String>,
    pub application_persistence_profile_ref: Option<String>,
    #[serde(default)]
    pub health_monitor_refs: Vec<String>,
    #[serde(default)]
    pub health_monitor_crd_refs: Vec<String>,
    pub ssl_profile_ref: Option<String>,
    pub ssl_key_and_certificate_ref: Option<String>,
    pub pki_profile_ref: Option<String>,
    pub min_servers_up: Option<u32>,
    pub analytics_policy: Option<BackendAnalytics>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendAnalytics {
    pub enable_realtime_metrics: Option<bool>,
}

/// The L4Rule a Service names (`[<namespace>/]<name>`; the Service's namespace when none is given).
pub fn bound(namespace: &str, annotations: Option<&BTreeMap<String, String>>) -> Option<ObjKey> {
    let v = annotations?.get(ANNOTATION)?.trim();
    if v.is_empty() {
        return None;
    }
    Some(match v.split_once('/') {
        Some((ns, name)) => ObjKey::new(ns.trim(), name.trim()),
        None => ObjKey::new(namespace, v),
    })
}

impl L4RuleSpec {
    /// What can be checked without the controller; the first problem, in AKO's words where it has them.
    pub fn check(&self) -> Result<(), String> {
        if let Some(ip) = &self.load_balancer_ip
            && ip.parse::<std::net::IpAddr>().is_err()
        {
            return Err(format!("loadBalancerIP {ip} is not valid"));
        }
        for (i, b) in self.backend_properties.iter().enumerate() {
            let at = format!("spec.backendProperties[{i}]");
            if !matches!(b.protocol.as_str(), "TCP" | "UDP" | "SCTP") {
                return Err(format!(
                    "{at}.protocol {:?} is not one of TCP, UDP, SCTP",
                    b.protocol
                ));
            }
            let algorithm = b
                .lb_algorithm
                .as_deref()
                .unwrap_or("LB_ALGORITHM_LEAST_CONNECTIONS");
            if !ALGORITHMS.contains(&algorithm) {
                return Err(format!(
                    "{at}.lbAlgorithm {algorithm:?} is not one of {}",
                    ALGORITHMS.join(", ")
                ));
            }
            let consistent = algorithm == "LB_ALGORITHM_CONSISTENT_HASH";
            match (&b.lb_algorithm_hash, consistent) {
                (None, true) => {
                    return Err("lbAlgorithmHash must be specified when lbAlgorithm is \"LB_ALGORITHM_CONSISTENT_HASH\"".into());
                }
                (Some(_), false) => {
                    return Err(format!(
                        "lbAlgorithmHash must not be specified when lbAlgorithm is \"{algorithm}\""
                    ));
                }
                _ => {}
            }
            let custom = b.lb_algorithm_hash.as_deref()
                == Some("LB_ALGORITHM_CONSISTENT_HASH_CUSTOM_HEADER");
            match (&b.lb_algorithm_consistent_hash_hdr, custom) {
                (None, true) => {
                    return Err("lbAlgorithmConsistentHashHdr must be specified when lbAlgorithmHash is \"LB_ALGORITHM_CONSISTENT_HASH_CUSTOM_HEADER\"".into());
                }
                (Some(_), false) => {
                    return Err(format!(
                        "lbAlgorithmConsistentHashHdr must not be specified when lbAlgorithm is \"{algorithm}\""
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The controller objects the rule names, with the field naming each.
    pub fn refs(&self) -> Vec<AviRef> {
        let mut out = Vec::new();
        let mut one = |t: &'static str, name: &Option<String>, field: &str| {
            if let Some(n) = name {
                out.push(AviRef::new(t, n, format!("spec.{field}")));
            }
        };
        one(
            "analyticsprofile",
            &self.analytics_profile_ref,
            "analyticsProfileRef",
        );
        one(
            "applicationprofile",
            &self.application_profile_ref,
            "applicationProfileRef",
        );
        one(
            "networkprofile",
            &self.network_profile_ref,
            "networkProfileRef",
        );
        one(
            "networksecuritypolicy",
            &self.network_security_policy_ref,
            "networkSecurityPolicyRef",
        );
        one(
            "securitypolicy",
            &self.security_policy_ref,
            "securityPolicyRef",
        );
        one("sslprofile", &self.ssl_profile_ref, "sslProfileRef");
        for (i, c) in self.ssl_key_and_certificate_refs.iter().enumerate() {
            out.push(AviRef::new(
                "sslkeyandcertificate",
                c,
                format!("spec.sslKeyAndCertificateRefs[{i}]"),
            ));
        }
        for (i, d) in self.vs_datascript_refs.iter().enumerate() {
            out.push(AviRef::new(
                "vsdatascriptset",
                d,
                format!("spec.vsDatascriptRefs[{i}]"),
            ));
        }
        for (i, b) in self.backend_properties.iter().enumerate() {
            let at = format!("spec.backendProperties[{i}]");
            if let Some(p) = &b.application_persistence_profile_ref {
                out.push(AviRef::new(
                    "applicationpersistenceprofile",
                    p,
                    format!("{at}.applicationPersistenceProfileRef"),
                ));
            }
            for (j, h) in b.health_monitor_refs.iter().enumerate() {
                out.push(AviRef::new(
                    "healthmonitor",
                    h,
                    format!("{at}.healthMonitorRefs[{j}]"),
                ));
            }
            for (t, v, f) in [
                ("sslprofile", &b.ssl_profile_ref, "sslProfileRef"),
                ("pkiprofile", &b.pki_profile_ref, "pkiProfileRef"),
                (
                    "sslkeyandcertificate",
                    &b.ssl_key_and_certificate_ref,
                    "sslKeyAndCertificateRef",
                ),
            ] {
                if let Some(n) = v {
                    out.push(AviRef::new(t, n, format!("{at}.{f}")));
                }
            }
        }
        out
    }

    /// Fields ako reads but does not apply yet, and unknown ones.
    pub fn notes(&self) -> Notes {
        let mut n = Notes::default();
        if self.listener_properties.iter().all(|l| !l.enable_ssl)
            && (!self.ssl_key_and_certificate_refs.is_empty() || self.ssl_profile_ref.is_some())
        {
            n.unimplemented.push((
                "spec.sslKeyAndCertificateRefs / sslProfileRef".into(),
                "they apply to a listener with enableSsl",
            ));
        }
        if self.revoke_vip_route == Some(true) {
            n.unimplemented
                .push(("spec.revokeVipRoute".into(), "an NSX-T cloud feature"));
        }
        if self
            .backend_properties
            .iter()
            .any(|b| !b.health_monitor_crd_refs.is_empty())
        {
            n.unimplemented.push((
                "spec.backendProperties[].healthMonitorCrdRefs".into(),
                "name the controller's monitors in healthMonitorRefs",
            ));
        }
        unknown_fields("spec", &self.other, &mut n.unknown);
        n
    }

    /// The address the rule asks for, if valid.
    pub fn load_balancer_ip(&self) -> Option<std::net::IpAddr> {
        self.load_balancer_ip.as_deref()?.parse().ok()
    }

    /// Applies the rule's virtual-service fields.
    pub fn apply_vs(&self, vs: &mut Map<String, Value>) {
        let mut set = |field: &str, t: &str, name: &Option<String>| {
            if let Some(n) = name {
                vs.insert(field.into(), name_ref(t, n));
            }
        };
        set(
            "application_profile_ref",
            "applicationprofile",
            &self.application_profile_ref,
        );
        set(
            "network_profile_ref",
            "networkprofile",
            &self.network_profile_ref,
        );
        set(
            "analytics_profile_ref",
            "analyticsprofile",
            &self.analytics_profile_ref,
        );
        set(
            "network_security_policy_ref",
            "networksecuritypolicy",
            &self.network_security_policy_ref,
        );
        set(
            "security_policy_ref",
            "securitypolicy",
            &self.security_policy_ref,
        );
        if !self.vs_datascript_refs.is_empty() {
            let ds: Vec<Value> = self
                .vs_datascript_refs
                .iter()
                .enumerate()
                .map(|(i, d)| json!({"index": i, "vs_datascript_set_ref": name_ref("vsdatascriptset", d)}))
                .collect();
            vs.insert("vs_datascripts".into(), Value::Array(ds));
        }
        if let Some(p) = &self.performance_limits {
            let mut m = Map::new();
            if let Some(c) = p.max_concurrent_connections {
                m.insert("max_concurrent_connections".into(), json!(c));
            }
            if let Some(t) = p.max_throughput {
                m.insert("max_throughput".into(), json!(t));
            }
            vs.insert("performance_limits".into(), Value::Object(m));
        }
        if let Some(f) = self
            .analytics_policy
            .as_ref()
            .and_then(|a| a.full_client_logs.as_ref())
        {
            vs.insert(
                "analytics_policy".into(),
                json!({"full_client_logs": {
                    "enabled": f.enabled,
                    "duration": f.duration.unwrap_or(30),
                    "throttle": f.throttle.unwrap_or(10),
                }}),
            );
        }
    }

    /// Whether the rule terminates SSL on a port (`listenerProperties[].enableSsl`).
    pub fn terminates_ssl(&self) -> bool {
        self.listener_properties.iter().any(|l| l.enable_ssl)
    }

    /// AKO's checks when a Service uses the rule (`rule`, `service`: names for the messages; `ports`: the
    /// virtual service's ports and protocols): its listeners must be exactly the ports, SSL only on a single
    /// port and with the TCP proxy network profile. `Err`: the rule is not applied, and why, in AKO's words.
    pub fn check_listeners(
        &self,
        rule: &str,
        service: &str,
        ports: &[(u16, String)],
    ) -> Result<(), String> {
        let l = &self.listener_properties;
        if l.is_empty() {
            return Ok(());
        }
        if l.len() != ports.len() {
            return Err(format!(
                "Number of port definitions in {rule} l4rule listener spec does not match with the port definitons in {service} service"
            ));
        }
        for (port, proto) in ports {
            if !l
                .iter()
                .any(|x| x.port == *port && x.protocol.eq_ignore_ascii_case(proto))
            {
                return Err(format!(
                    "Port {port} defined in {service} service definition is not present in {rule} l4rule listener spec"
                ));
            }
        }
        if let Some(x) = l.iter().find(|x| x.enable_ssl) {
            if ports.len() > 1 {
                return Err(format!(
                    "Port {} requires enabling SSL for L4 but there are multiple ports defined in {service} service definition",
                    x.port
                ));
            }
            if let Some(np) = &self.network_profile_ref
                && np != "System-TCP-Proxy"
            {
                return Err(format!(
                    "SSL on port {} needs the network profile System-TCP-Proxy, not {np}",
                    x.port
                ));
            }
        }
        Ok(())
    }

    /// SSL termination on the virtual service of a single-port Service (`pool`: its one pool): the port's
    /// `enable_ssl`, the certificates and SSL profile, `System-SSL-Application` where the rule left the L4
    /// application profile, and the pool directly (`pool_ref`, no L4 policy set), as AKO builds it.
    pub fn apply_ssl(&self, vs: &mut Map<String, Value>, pool: &str) {
        if !self.terminates_ssl() {
            return;
        }
        if let Some(services) = vs.get_mut("services").and_then(Value::as_array_mut) {
            for s in services.iter_mut() {
                let port = s.get("port").and_then(Value::as_u64);
                let ssl = self
                    .listener_properties
                    .iter()
                    .any(|l| l.enable_ssl && Some(u64::from(l.port)) == port);
                if let Some(m) = s.as_object_mut() {
                    m.insert("enable_ssl".into(), json!(ssl));
                }
            }
        }
        let app = self
            .application_profile_ref
            .as_deref()
            .filter(|a| *a != "System-L4-Application")
            .unwrap_or("System-SSL-Application");
        vs.insert(
            "application_profile_ref".into(),
            name_ref("applicationprofile", app),
        );
        let certs: Vec<Value> = self
            .ssl_key_and_certificate_refs
            .iter()
            .map(|c| name_ref("sslkeyandcertificate", c))
            .collect();
        vs.insert("ssl_key_and_certificate_refs".into(), Value::Array(certs));
        if let Some(p) = &self.ssl_profile_ref {
            vs.insert("ssl_profile_ref".into(), name_ref("sslprofile", p));
        }
        vs.insert("pool_ref".into(), name_ref("pool", pool));
        vs.insert("l4_policies".into(), json!([]));
    }

    /// The backend properties of one pool (the Service's port and protocol).
    pub fn backend(&self, port: u16, protocol: &str) -> Option<&BackendProperties> {
        self.backend_properties
            .iter()
            .find(|b| b.port == port && b.protocol.eq_ignore_ascii_case(protocol))
    }
}

impl BackendProperties {
    /// Applies the pool fields.
    pub fn apply(&self, pool: &mut Map<String, Value>) {
        if let Some(e) = self.enabled {
            pool.insert("enabled".into(), json!(e));
        }
        if let Some(a) = &self.lb_algorithm {
            pool.insert("lb_algorithm".into(), json!(a));
        }
        if let Some(h) = &self.lb_algorithm_hash {
            pool.insert("lb_algorithm_hash".into(), json!(h));
        }
        if let Some(h) = &self.lb_algorithm_consistent_hash_hdr {
            pool.insert("lb_algorithm_consistent_hash_hdr".into(), json!(h));
        }
        for (field, t, v) in [
            (
                "application_persistence_profile_ref",
                "applicationpersistenceprofile",
                &self.application_persistence_profile_ref,
            ),
            ("ssl_profile_ref", "sslprofile", &self.ssl_profile_ref),
            ("pki_profile_ref", "pkiprofile", &self.pki_profile_ref),
            (
                "ssl_key_and_certificate_ref",
                "sslkeyandcertificate",
                &self.ssl_key_and_certificate_ref,
            ),
        ] {
            if let Some(n) = v {
                pool.insert(field.into(), name_ref(t, n));
            }
        }
        if !self.health_monitor_refs.is_empty() {
            let refs: Vec<Value> = self
                .health_monitor_refs
                .iter()
                .map(|h| name_ref("healthmonitor", h))
                .collect();
            pool.insert("health_monitor_refs".into(), Value::Array(refs));
        }
        if let Some(m) = self.min_servers_up {
            pool.insert("min_servers_up".into(), json!(m));
        }
        if let Some(rt) = self
            .analytics_policy
            .as_ref()
            .and_then(|a| a.enable_realtime_metrics)
        {
            pool.insert(
                "analytics_policy".into(),
                json!({"enable_realtime_metrics": rt}),
            );
        }
    }
}

/// What an L4Rule or an HTTPRule may set on a pool, at the controller's defaults: a rule that goes leaves
/// nothing behind.
pub fn pool_defaults() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        "lb_algorithm".into(),
        json!("LB_ALGORITHM_LEAST_CONNECTIONS"),
    );
    m.insert(
        "lb_algorithm_hash".into(),
        json!("LB_ALGORITHM_CONSISTENT_HASH_SOURCE_IP_ADDRESS"),
    );
    for f in [
        "lb_algorithm_consistent_hash_hdr",
        "application_persistence_profile_ref",
        "ssl_profile_ref",
        "pki_profile_ref",
        "ssl_key_and_certificate_ref",
        "min_servers_up",
    ] {
        m.insert(f.into(), Value::Null);
    }
    m.insert("enabled".into(), json!(true));
    m.insert("sni_enabled".into(), json!(true));
    m.insert("enable_http2".into(), json!(false));
    m
}

/// What an L4Rule may set on a virtual service besides its profiles, at the controller's defaults.
pub fn vs_defaults() -> Map<String, Value> {
    let mut m = Map::new();
    for f in [
        "network_security_policy_ref",
        "security_policy_ref",
        "performance_limits",
        "ssl_profile_ref",
        "pool_ref",
    ] {
        m.insert(f.into(), Value::Null);
    }
    m.insert("vs_datascripts".into(), json!([]));
    m.insert("ssl_key_and_certificate_refs".into(), json!([]));
    m.insert(
        "analytics_profile_ref".into(),
        name_ref("analyticsprofile", "System-Analytics-Profile"),
    );
    m.insert(
        "analytics_policy".into(),
        json!({"full_client_logs": {"enabled": false}}),
    );
    m
}

#[cfg(test)]
mod tests;
