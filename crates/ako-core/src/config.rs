//! Configuration with AKO's names.
//!
//! Values come from, in rising precedence: a file holding the `avi-k8s-config` ConfigMap data (YAML or JSON
//! map, or a mounted ConfigMap directory with one file per key), environment variables (AKO's names, e.g.
//! `CLUSTER_NAME`, `VIP_NETWORK_LIST`), and command-line flags; the binary reads and merges them (`ako::cli`),
//! and [`resolve`] validates the result. Every value is validated at start; each bad value gets its own message.
//! Tests build [`Config`] directly.

pub mod keys; // which keys a configuration may carry: ako's and AKO's

use std::collections::BTreeMap;
use std::fmt;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The IngressClass controller name ako answers to.
pub const INGRESS_CONTROLLER: &str = "ako.vmware.com/avi-lb";
/// The Service `spec.loadBalancerClass` ako answers to.
pub const LB_CLASS: &str = "ako.vmware.com/avi-lb";
/// The legacy Ingress class annotation.
pub const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// The annotation on an IngressClass that makes it the cluster default.
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";
/// AKO's preferred-VIP annotation on Services.
pub const LB_IP_ANNOTATION: &str = "ako.vmware.com/load-balancer-ip";
/// external-dns hostname annotation, honoured for L4 FQDNs.
pub const EXTERNAL_DNS_HOSTNAME: &str = "external-dns.alpha.kubernetes.io/hostname";
/// AKO's annotation that lets LoadBalancer Services with the same value share one VIP.
pub const SHARED_VIP_ANNOTATION: &str = "ako.vmware.com/enable-shared-vip";

/// `L7Settings.fqdnReusePolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FqdnReusePolicy {
    /// A host belongs to the namespace that claimed it first.
    Strict,
    /// Several namespaces may share a host (AKO's default); ako warns.
    InterNamespaceAllowed,
}

/// `L4Settings.autoFQDN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AutoFqdn {
    /// `<svc>.<ns>.<subdomain>`
    Default,
    /// `<svc>-<ns>.<subdomain>`
    Flat,
    /// No FQDN for L4 Services.
    Disabled,
}

/// One entry of `NetworkSettings.vipNetworkList`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VipNetwork {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<IpNet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v6cidr: Option<IpNet>,
}

/// Validated settings shared by the webhook, `ako check` and (later) the reconciler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `AKOSettings.clusterName`: prefix of every Avi object name.
    pub cluster_name: String,
    /// `AKOSettings.logLevel`.
    pub log_level: String,
    /// Delegated DNS subdomains (lowercase, no trailing dot). Later read from the cloud's DNS profile;
    /// configured values stay as an override.
    pub dns_domains: Vec<String>,
    /// `NetworkSettings.defaultDomain`: the subdomain used for generated names.
    pub default_domain: Option<String>,
    pub fqdn_reuse_policy: FqdnReusePolicy,
    pub auto_fqdn: AutoFqdn,
    pub vip_networks: Vec<VipNetwork>,
    /// `L7Settings.defaultIngController`.
    pub default_ing_controller: bool,
    /// `L4Settings.defaultLBController`.
    pub default_lb_controller: bool,
    /// The IngressClass name ako installs (`avi-lb`).
    pub ingress_class_name: String,
    /// The legacy `kubernetes.io/ingress.class` value that means ako (`avi`).
    pub legacy_class_value: String,
    /// The delegated subdomains are still to be read from the cloud's DNS profile (`ako run` before the
    /// controller answered): the webhook denies ako's objects as "not ready" instead of admitting any host.
    pub domains_pending: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            cluster_name: "my-cluster".into(),
            log_level: "WARN".into(),
            dns_domains: Vec::new(),
            default_domain: None,
            fqdn_reuse_policy: FqdnReusePolicy::InterNamespaceAllowed,
            auto_fqdn: AutoFqdn::Default,
            vip_networks: Vec::new(),
            default_ing_controller: true,
            default_lb_controller: true,
            ingress_class_name: "avi-lb".into(),
            legacy_class_value: "avi".into(),
            domains_pending: false,
        }
    }
}

impl Config {
    /// The subdomain used for generated names: `defaultDomain` if set, else the first delegated one in
    /// sorted order (AKO's rule).
    pub fn generated_name_domain(&self) -> Option<&str> {
        self.default_domain
            .as_deref()
            .or_else(|| self.dns_domains.iter().min().map(String::as_str))
    }
}

/// A configuration that failed validation: every bad value, one line each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration:")?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads ConfigMap data from the text of a YAML or JSON file: the data map itself, or a whole ConfigMap object.
/// `origin` names the file in errors.
pub fn parse_config_text(text: &str, origin: &str) -> Result<BTreeMap<String, String>, String> {
    let value: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
    // Accept either the data map itself or a whole ConfigMap object.
    let data = match value.get("data") {
        Some(d) if value.get("kind").is_some() => d.clone(),
        _ => value,
    };
    let serde_yaml_ng::Value::Mapping(m) = data else {
        return Err(format!("{origin}: expected a map of ConfigMap keys"));
    };
    let mut map = BTreeMap::new();
    for (k, v) in m {
        let key = k
            .as_str()
            .ok_or_else(|| format!("{origin}: keys must be strings"))?
            .to_string();
        let value = match v {
            serde_yaml_ng::Value::String(s) => s,
            serde_yaml_ng::Value::Bool(b) => b.to_string(),
            serde_yaml_ng::Value::Number(n) => n.to_string(),
            serde_yaml_ng::Value::Null => continue,
            other => serde_json::to_string(&other).map_err(|e| format!("{origin}: {key}: {e}"))?,
        };
        map.insert(key, value);
    }
    Ok(map)
}

const KNOWN_FILE_KEYS: &[&str] = &[
    "clusterName",
    "logLevel",
    "dnsDomains",
    "defaultDomain",
    "fqdnReusePolicy",
    "autoFQDN",
    "vipNetworkList",
    "defaultIngController",
    "defaultLBController",
    "ingressClassName",
    "legacyIngressClass",
];

fn parse_bool(key: &str, v: &str, errors: &mut Vec<String>) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => {
            errors.push(format!(
                "{key}: {v:?} is not a boolean; use \"true\" or \"false\""
            ));
            None
        }
    }
}

fn normalize_domain(key: &str, raw: &str, errors: &mut Vec<String>) -> Option<String> {
    let d = crate::hosts::normalize(raw);
    match crate::hosts::validate_dns_name(&d) {
        Ok(()) if !d.starts_with("*.") => Some(d),
        Ok(()) => {
            errors.push(format!(
                "{key}: {raw:?} must be a plain subdomain, not a wildcard"
            ));
            None
        }
        Err(e) => {
            errors.push(format!("{key}: {raw:?} is not a valid DNS name: {e}"));
            None
        }
    }
}

/// Validates configuration values (ConfigMap keys -> values, with env and flags already laid over the file's),
/// reporting every bad value at once.
pub fn resolve(values: &BTreeMap<String, String>) -> Result<Config, ConfigErrors> {
    let file = values;
    let mut errors = Vec::new();
    for k in file.keys() {
        if !KNOWN_FILE_KEYS.contains(&k.as_str()) {
            tracing::debug!(key = %k, "configuration key not used by this command");
        }
    }
    let pick = |key: &str| file.get(key).cloned();
    let mut c = Config::default();

    if let Some(v) = pick("clusterName") {
        if v.is_empty()
            || !v
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        {
            errors.push(format!(
                "clusterName: {v:?} must be non-empty and match ^[a-zA-Z0-9-_]+$"
            ));
        }
        c.cluster_name = v;
    }
    if let Some(v) = pick("logLevel") {
        match v.to_ascii_uppercase().as_str() {
            "INFO" | "DEBUG" | "WARN" | "WARNING" | "ERROR" | "TRACE" => {
                c.log_level = v.to_ascii_uppercase()
            }
            _ => errors.push(format!(
                "logLevel: {v:?} is not one of INFO, DEBUG, WARN, ERROR"
            )),
        }
    }
    let domains: Vec<String> = file
        .get("dnsDomains")
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    for d in &domains {
        if let Some(n) = normalize_domain("dnsDomains", d, &mut errors)
            && !c.dns_domains.contains(&n)
        {
            c.dns_domains.push(n);
        }
    }
    if let Some(v) = pick("defaultDomain").filter(|v| !v.is_empty()) {
        c.default_domain = normalize_domain("defaultDomain", &v, &mut errors);
        if let Some(d) = &c.default_domain
            && !c.dns_domains.is_empty()
            && !c.dns_domains.contains(d)
        {
            errors.push(format!(
                "defaultDomain: {d:?} is not one of the DNS domains {:?}",
                c.dns_domains
            ));
        }
    }
    if let Some(v) = pick("fqdnReusePolicy") {
        match v.as_str() {
            "Strict" => c.fqdn_reuse_policy = FqdnReusePolicy::Strict,
            "InterNamespaceAllowed" => c.fqdn_reuse_policy = FqdnReusePolicy::InterNamespaceAllowed,
            _ => errors.push(format!(
                "fqdnReusePolicy: {v:?} is not Strict or InterNamespaceAllowed"
            )),
        }
    }
    if let Some(v) = pick("autoFQDN") {
        match v.as_str() {
            "default" => c.auto_fqdn = AutoFqdn::Default,
            "flat" => c.auto_fqdn = AutoFqdn::Flat,
            "disabled" => c.auto_fqdn = AutoFqdn::Disabled,
            _ => errors.push(format!("autoFQDN: {v:?} is not default, flat or disabled")),
        }
    }
    if let Some(v) = pick("vipNetworkList").filter(|v| !v.trim().is_empty()) {
        match serde_json::from_str::<Vec<VipNetwork>>(&v) {
                Ok(list) => {
                    for (i, n) in list.iter().enumerate() {
                        if n.network_name.is_none() && n.network_uuid.is_none() {
                            errors.push(format!("vipNetworkList[{i}]: needs networkName or networkUUID"));
                        }
                    }
                    c.vip_networks = list;
                }
                Err(e) => errors.push(format!(
                    "vipNetworkList: {e}; expected JSON like [{{\"networkName\":\"vip-net\",\"cidr\":\"10.10.18.0/24\"}}]"
                )),
            }
    }
    if let Some(v) = pick("defaultIngController")
        && let Some(b) = parse_bool("defaultIngController", &v, &mut errors)
    {
        c.default_ing_controller = b;
    }
    if let Some(v) = pick("defaultLBController")
        && let Some(b) = parse_bool("defaultLBController", &v, &mut errors)
    {
        c.default_lb_controller = b;
    }
    if let Some(v) = pick("ingressClassName") {
        if v.is_empty() {
            errors.push("ingressClassName: must not be empty".into());
        }
        c.ingress_class_name = v;
    }
    if let Some(v) = pick("legacyIngressClass") {
        c.legacy_class_value = v;
    }
    if errors.is_empty() {
        Ok(c)
    } else {
        Err(ConfigErrors(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_follow_akos_chart() {
        let c = resolve(&BTreeMap::new()).expect("valid");
        assert_eq!(c.fqdn_reuse_policy, FqdnReusePolicy::InterNamespaceAllowed);
        assert_eq!(c.auto_fqdn, AutoFqdn::Default);
        assert!(c.default_ing_controller && c.default_lb_controller);
        assert_eq!(c.ingress_class_name, "avi-lb");
    }

    #[test]
    fn every_bad_value_is_reported_with_its_key() {
        let err = resolve(&values(&[
            ("clusterName", "bad name!"),
            ("fqdnReusePolicy", "strict"),
            ("autoFQDN", "short"),
            ("vipNetworkList", "[{\"cidr\":\"10.0.0.0/33\"}]"),
            ("defaultIngController", "yes"),
            ("dnsDomains", "-bad-.lab"),
        ]))
        .expect_err("invalid");
        let text = err.to_string();
        for key in [
            "clusterName",
            "fqdnReusePolicy",
            "autoFQDN",
            "vipNetworkList",
            "defaultIngController",
            "dnsDomains",
        ] {
            assert!(text.contains(key), "{key} missing from {text}");
        }
        assert_eq!(err.0.len(), 6);
    }

    #[test]
    fn domains_are_normalized_and_deduplicated() {
        let c =
            resolve(&values(&[("dnsDomains", "Avi.Jarvis.Lab.,avi.jarvis.lab")])).expect("valid");
        assert_eq!(c.dns_domains, vec!["avi.jarvis.lab".to_string()]);
    }

    #[test]
    fn a_configmap_or_its_data_map_reads_as_keys() {
        let cm = "apiVersion: v1\nkind: ConfigMap\ndata:\n  clusterName: lab\n  shardVSSize: 8\n  enabled: true\n";
        let m = parse_config_text(cm, "cm.yaml").expect("parses");
        assert_eq!(m["clusterName"], "lab");
        assert_eq!(m["shardVSSize"], "8");
        assert_eq!(m["enabled"], "true");
        assert_eq!(
            parse_config_text("clusterName: lab\n", "x").expect("data map")["clusterName"],
            "lab"
        );
        assert!(
            parse_config_text("- a\n", "x").is_err(),
            "a list is not a ConfigMap"
        );
    }

    #[test]
    fn generated_names_use_default_domain_or_the_first_sorted_domain() {
        let mut c = Config {
            dns_domains: vec!["z.lab".into(), "a.lab".into()],
            ..Config::default()
        };
        assert_eq!(c.generated_name_domain(), Some("a.lab"));
        c.default_domain = Some("z.lab".into());
        assert_eq!(c.generated_name_domain(), Some("z.lab"));
    }
}
