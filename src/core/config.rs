//! Configuration with AKO's names.
//!
//! Values come from, in rising precedence: a file holding the `avi-k8s-config` ConfigMap data (YAML or JSON
//! map, or a mounted ConfigMap directory with one file per key), environment variables (AKO's names, e.g.
//! `CLUSTER_NAME`, `VIP_NETWORK_LIST`), and command-line flags. Every value is validated at start; each bad value
//! gets its own message. Tests build [`Config`] directly.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

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

/// Raw configuration values, as strings, exactly as a ConfigMap, env or flags carry them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    /// File with the avi-k8s-config ConfigMap data (YAML/JSON map), or a mounted ConfigMap directory.
    #[arg(long = "config", env = "AKO_CONFIG", value_name = "PATH")]
    pub config_file: Option<PathBuf>,
    /// Cluster name (clusterName), prefix of Avi object names.
    #[arg(long, env = "CLUSTER_NAME")]
    pub cluster_name: Option<String>,
    /// Log level (logLevel): INFO, DEBUG, WARN, ERROR.
    #[arg(long, env = "LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Delegated DNS subdomain (repeatable, or comma separated); overrides the Avi DNS profile.
    #[arg(long = "dns-domain", env = "AKO_DNS_DOMAINS", value_delimiter = ',')]
    pub dns_domains: Vec<String>,
    /// Subdomain for generated names (defaultDomain).
    #[arg(long, env = "DEFAULT_DOMAIN")]
    pub default_domain: Option<String>,
    /// Strict or InterNamespaceAllowed (fqdnReusePolicy).
    #[arg(long, env = "FQDN_REUSE_POLICY")]
    pub fqdn_reuse_policy: Option<String>,
    /// default, flat or disabled (autoFQDN).
    #[arg(long = "auto-fqdn", env = "AUTO_L4_FQDN")]
    pub auto_fqdn: Option<String>,
    /// JSON list of {networkName, cidr} (vipNetworkList).
    #[arg(long, env = "VIP_NETWORK_LIST")]
    pub vip_network_list: Option<String>,
    /// true/false: avi-lb is the default IngressClass (defaultIngController).
    #[arg(long, env = "DEFAULT_ING_CONTROLLER")]
    pub default_ing_controller: Option<String>,
    /// true/false: ako handles LoadBalancer Services with no class (defaultLBController).
    #[arg(long = "default-lb-controller", env = "DEFAULT_LB_CONTROLLER")]
    pub default_lb_controller: Option<String>,
    /// IngressClass name ako installs (ingressClassName).
    #[arg(long, env = "INGRESS_CLASS_NAME")]
    pub ingress_class_name: Option<String>,
    /// Legacy kubernetes.io/ingress.class value that selects ako.
    #[arg(long, env = "LEGACY_INGRESS_CLASS")]
    pub legacy_ingress_class: Option<String>,
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

/// Reads ConfigMap data from a YAML/JSON file or a directory of key files.
pub fn read_config_source(path: &Path) -> Result<BTreeMap<String, String>, String> {
    if path.is_dir() {
        let mut map = BTreeMap::new();
        let entries = std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", path.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // ConfigMap volumes hold `..data` and `..<timestamp>` entries next to the key links.
            if name.starts_with('.') || !entry.path().is_file() {
                continue;
            }
            let value = std::fs::read_to_string(entry.path())
                .map_err(|e| format!("{}: {e}", entry.path().display()))?;
            map.insert(name, value.trim_end_matches('\n').to_string());
        }
        return Ok(map);
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let value: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    // Accept either the data map itself or a whole ConfigMap object.
    let data = match value.get("data") {
        Some(d) if value.get("kind").is_some() => d.clone(),
        _ => value,
    };
    let serde_yaml_ng::Value::Mapping(m) = data else {
        return Err(format!(
            "{}: expected a map of ConfigMap keys",
            path.display()
        ));
    };
    let mut map = BTreeMap::new();
    for (k, v) in m {
        let key = k
            .as_str()
            .ok_or_else(|| format!("{}: keys must be strings", path.display()))?
            .to_string();
        let value = match v {
            serde_yaml_ng::Value::String(s) => s,
            serde_yaml_ng::Value::Bool(b) => b.to_string(),
            serde_yaml_ng::Value::Number(n) => n.to_string(),
            serde_yaml_ng::Value::Null => continue,
            other => serde_json::to_string(&other)
                .map_err(|e| format!("{}: {key}: {e}", path.display()))?,
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
    let d = crate::core::hosts::normalize(raw);
    match crate::core::hosts::validate_dns_name(&d) {
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

impl ConfigArgs {
    /// Merges file < env/flags and validates everything, reporting every bad value at once.
    pub fn resolve(&self) -> Result<Config, ConfigErrors> {
        let file = match &self.config_file {
            Some(p) => read_config_source(p).map_err(|e| ConfigErrors(vec![e]))?,
            None => BTreeMap::new(),
        };
        let mut errors = Vec::new();
        for k in file.keys() {
            if !KNOWN_FILE_KEYS.contains(&k.as_str()) {
                tracing::debug!(key = %k, "configuration key not used by this command");
            }
        }
        let pick =
            |flag: &Option<String>, key: &str| flag.clone().or_else(|| file.get(key).cloned());
        let mut c = Config::default();

        if let Some(v) = pick(&self.cluster_name, "clusterName") {
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
        if let Some(v) = pick(&self.log_level, "logLevel") {
            match v.to_ascii_uppercase().as_str() {
                "INFO" | "DEBUG" | "WARN" | "WARNING" | "ERROR" | "TRACE" => {
                    c.log_level = v.to_ascii_uppercase()
                }
                _ => errors.push(format!(
                    "logLevel: {v:?} is not one of INFO, DEBUG, WARN, ERROR"
                )),
            }
        }
        let mut domains: Vec<String> = self
            .dns_domains
            .iter()
            .filter(|d| !d.trim().is_empty())
            .cloned()
            .collect();
        if domains.is_empty()
            && let Some(v) = file.get("dnsDomains")
        {
            domains = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
        }
        for d in &domains {
            if let Some(n) = normalize_domain("dnsDomains", d, &mut errors)
                && !c.dns_domains.contains(&n)
            {
                c.dns_domains.push(n);
            }
        }
        if let Some(v) = pick(&self.default_domain, "defaultDomain").filter(|v| !v.is_empty()) {
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
        if let Some(v) = pick(&self.fqdn_reuse_policy, "fqdnReusePolicy") {
            match v.as_str() {
                "Strict" => c.fqdn_reuse_policy = FqdnReusePolicy::Strict,
                "InterNamespaceAllowed" => {
                    c.fqdn_reuse_policy = FqdnReusePolicy::InterNamespaceAllowed
                }
                _ => errors.push(format!(
                    "fqdnReusePolicy: {v:?} is not Strict or InterNamespaceAllowed"
                )),
            }
        }
        if let Some(v) = pick(&self.auto_fqdn, "autoFQDN") {
            match v.as_str() {
                "default" => c.auto_fqdn = AutoFqdn::Default,
                "flat" => c.auto_fqdn = AutoFqdn::Flat,
                "disabled" => c.auto_fqdn = AutoFqdn::Disabled,
                _ => errors.push(format!("autoFQDN: {v:?} is not default, flat or disabled")),
            }
        }
        if let Some(v) =
            pick(&self.vip_network_list, "vipNetworkList").filter(|v| !v.trim().is_empty())
        {
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
        if let Some(v) = pick(&self.default_ing_controller, "defaultIngController")
            && let Some(b) = parse_bool("defaultIngController", &v, &mut errors)
        {
            c.default_ing_controller = b;
        }
        if let Some(v) = pick(&self.default_lb_controller, "defaultLBController")
            && let Some(b) = parse_bool("defaultLBController", &v, &mut errors)
        {
            c.default_lb_controller = b;
        }
        if let Some(v) = pick(&self.ingress_class_name, "ingressClassName") {
            if v.is_empty() {
                errors.push("ingressClassName: must not be empty".into());
            }
            c.ingress_class_name = v;
        }
        if let Some(v) = pick(&self.legacy_ingress_class, "legacyIngressClass") {
            c.legacy_class_value = v;
        }
        if errors.is_empty() {
            Ok(c)
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ConfigArgs {
        ConfigArgs::default()
    }

    #[test]
    fn defaults_follow_akos_chart() {
        let c = args().resolve().expect("valid");
        assert_eq!(c.fqdn_reuse_policy, FqdnReusePolicy::InterNamespaceAllowed);
        assert_eq!(c.auto_fqdn, AutoFqdn::Default);
        assert!(c.default_ing_controller && c.default_lb_controller);
        assert_eq!(c.ingress_class_name, "avi-lb");
    }

    #[test]
    fn every_bad_value_is_reported_with_its_key() {
        let a = ConfigArgs {
            cluster_name: Some("bad name!".into()),
            fqdn_reuse_policy: Some("strict".into()),
            auto_fqdn: Some("short".into()),
            vip_network_list: Some("[{\"cidr\":\"10.0.0.0/33\"}]".into()),
            default_ing_controller: Some("yes".into()),
            dns_domains: vec!["-bad-.lab".into()],
            ..args()
        };
        let err = a.resolve().expect_err("invalid");
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
        let a = ConfigArgs {
            dns_domains: vec!["Avi.Jarvis.Lab.".into(), "avi.jarvis.lab".into()],
            ..args()
        };
        assert_eq!(
            a.resolve().expect("valid").dns_domains,
            vec!["avi.jarvis.lab".to_string()]
        );
    }

    #[test]
    fn file_values_are_overridden_by_flags() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("cm.yaml");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: ConfigMap\ndata:\n  clusterName: lab\n  fqdnReusePolicy: Strict\n  vipNetworkList: '[{\"networkName\":\"dpg\",\"cidr\":\"10.10.18.0/26\"}]'\n",
        )
        .expect("write");
        let a = ConfigArgs {
            config_file: Some(path),
            cluster_name: Some("override".into()),
            ..args()
        };
        let c = a.resolve().expect("valid");
        assert_eq!(c.cluster_name, "override");
        assert_eq!(c.fqdn_reuse_policy, FqdnReusePolicy::Strict);
        assert_eq!(
            c.vip_networks[0].cidr,
            Some("10.10.18.0/26".parse().expect("net"))
        );
    }

    #[test]
    fn a_mounted_configmap_directory_is_read_key_by_key() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("autoFQDN"), "flat\n").expect("write");
        std::fs::create_dir(dir.path().join("..data")).expect("mkdir");
        let a = ConfigArgs {
            config_file: Some(dir.path().to_path_buf()),
            ..args()
        };
        assert_eq!(a.resolve().expect("valid").auto_fqdn, AutoFqdn::Flat);
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
