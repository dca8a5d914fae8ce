//! The command line and the configuration sources: clap's view of AKO's settings (flags and env), the
//! `avi-k8s-config` file or mounted ConfigMap directory, and the mounted `avi-secret`. Everything here reads or
//! parses input; validation is the pure core's ([`ako_core::config::resolve`], [`ako_core::settings::resolve`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ako_core::config::{Config, ConfigErrors};
use ako_core::settings::{ControllerSettings, Redacted};

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

/// Reads ConfigMap data from a YAML/JSON file or a directory of key files (a mounted ConfigMap).
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
    ako_core::config::parse_config_text(&text, &path.display().to_string())
}

/// The file's values with `overrides` (env and flags, by ConfigMap key) laid over them; empty overrides count as
/// unset.
fn merged(
    file: Option<&Path>,
    overrides: &[(&str, Option<String>)],
) -> Result<BTreeMap<String, String>, ConfigErrors> {
    let mut values = match file {
        Some(p) => read_config_source(p).map_err(|e| ConfigErrors(vec![e]))?,
        None => BTreeMap::new(),
    };
    // AKO's ConfigMap is accepted unchanged; a key neither ako nor AKO knows is refused (a misspelt key would be
    // ignored otherwise).
    let keys = ako_core::config::keys::check(&values);
    for w in &keys.warnings {
        tracing::warn!("{w}");
    }
    if !keys.errors.is_empty() {
        return Err(ConfigErrors(keys.errors));
    }
    for (key, value) in overrides {
        if let Some(v) = value {
            values.insert((*key).to_string(), v.clone());
        }
    }
    Ok(values)
}

impl ConfigArgs {
    /// Merges file < env/flags and validates everything, reporting every bad value at once.
    pub fn resolve(&self) -> Result<Config, ConfigErrors> {
        let domains: Vec<&str> = self
            .dns_domains
            .iter()
            .map(|d| d.trim())
            .filter(|d| !d.is_empty())
            .collect();
        let overrides = [
            ("clusterName", self.cluster_name.clone()),
            ("logLevel", self.log_level.clone()),
            ("defaultDomain", self.default_domain.clone()),
            ("fqdnReusePolicy", self.fqdn_reuse_policy.clone()),
            ("autoFQDN", self.auto_fqdn.clone()),
            ("vipNetworkList", self.vip_network_list.clone()),
            ("defaultIngController", self.default_ing_controller.clone()),
            ("defaultLBController", self.default_lb_controller.clone()),
            ("ingressClassName", self.ingress_class_name.clone()),
            ("legacyIngressClass", self.legacy_ingress_class.clone()),
            (
                "dnsDomains",
                (!domains.is_empty()).then(|| domains.join(",")),
            ),
        ];
        ako_core::config::resolve(&merged(self.config_file.as_deref(), &overrides)?)
    }
}

/// Flags and env of the reconciler's settings (ConfigMap key in parentheses).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ControllerArgs {
    /// Avi Controller address, host[:port] or https://host[:port] (controllerIP).
    #[arg(long = "controller-host", env = "CTRL_IPADDRESS")]
    pub controller_host: Option<String>,
    /// Avi API version, e.g. 20.1.5; discovered when empty (controllerVersion).
    #[arg(long, env = "CTRL_VERSION")]
    pub controller_version: Option<String>,
    /// Avi cloud (cloudName).
    #[arg(long, env = "CLOUD_NAME")]
    pub cloud_name: Option<String>,
    /// Service Engine group (serviceEngineGroupName).
    #[arg(long = "se-group", env = "SEG_NAME")]
    pub se_group: Option<String>,
    /// Avi tenant (tenantName).
    #[arg(long, env = "TENANT_NAME")]
    pub tenant_name: Option<String>,
    /// VRF context (vrfName).
    #[arg(long, env = "VRF_NAME")]
    pub vrf_name: Option<String>,
    /// Seconds between full syncs that repair drift; 0 disables (fullSyncFrequency).
    #[arg(long, env = "FULL_SYNC_INTERVAL")]
    pub full_sync_frequency: Option<String>,
    /// true: remove every Avi object ako created (deleteConfig).
    #[arg(long, env = "DELETE_CONFIG")]
    pub delete_config: Option<String>,
    /// ClusterIP or NodePort: where pool members come from (serviceType).
    #[arg(long, env = "SERVICE_TYPE")]
    pub service_type: Option<String>,
    /// LARGE (8 shared L7 parents), MEDIUM (4), SMALL (1) or DEDICATED (one virtual service per host)
    /// (L7Settings.shardVSSize).
    #[arg(long = "shard-vs-size", env = "SHARD_VS_SIZE")]
    pub shard_vs_size: Option<String>,
    /// true: no static routes to the Nodes' pod CIDRs in ClusterIP mode (disableStaticRouteSync; default false).
    #[arg(long = "disable-static-route-sync", env = "DISABLE_STATIC_ROUTE_SYNC")]
    pub disable_static_route_sync: Option<String>,
    /// Node label key and value selecting NodePort members (nodeKey, nodeValue).
    #[arg(long, env = "NODE_KEY")]
    pub node_key: Option<String>,
    #[arg(long, env = "NODE_VALUE")]
    pub node_value: Option<String>,
    /// Namespace label key and value ako serves (nsSyncLabelKey, nsSyncLabelValue: AKO's names).
    #[arg(long, env = "NAMESPACE_SYNC_LABEL_KEY")]
    pub ns_selector_key: Option<String>,
    #[arg(long, env = "NAMESPACE_SYNC_LABEL_VALUE")]
    pub ns_selector_value: Option<String>,
    /// JSON list of namespaces ako ignores (blockedNamespaceList).
    #[arg(long, env = "BLOCKED_NS_LIST")]
    pub blocked_namespace_list: Option<String>,
    /// Deletions that no observed deletion explains are held above this many objects... (deletionGuardMaxObjects,
    /// default 10)
    #[arg(long, env = "DELETION_GUARD_MAX_OBJECTS")]
    pub deletion_guard_max_objects: Option<String>,
    /// ...and above this percentage of the objects ako owns (deletionGuardMaxPercent, default 20; 100 turns the
    /// guard off).
    #[arg(long, env = "DELETION_GUARD_MAX_PERCENT")]
    pub deletion_guard_max_percent: Option<String>,
    /// The id of held deletions to let proceed, as the DeletionsHeld Event names it (releaseHeldDeletions).
    #[arg(long, env = "RELEASE_HELD_DELETIONS")]
    pub release_held_deletions: Option<String>,
    /// Seconds an Avi request may take before ako gives up on it (aviRequestTimeoutSeconds, default 60).
    #[arg(long, env = "AVI_REQUEST_TIMEOUT_SECONDS")]
    pub avi_request_timeout_seconds: Option<String>,
    /// Requests per second ako sends the Avi controller at most while it answers well (aviMaxRequestsPerSecond,
    /// default 2000); ako lowers this by itself, down to 2 a second, while the controller signals overload.
    #[arg(long, env = "AVI_MAX_REQUESTS_PER_SECOND")]
    pub avi_max_requests_per_second: Option<String>,
    /// Run with AKO's default clusterName "my-cluster" (allowDefaultClusterName): only when no other cluster
    /// on the controller uses it.
    #[arg(long, env = "ALLOW_DEFAULT_CLUSTER_NAME")]
    pub allow_default_cluster_name: Option<String>,
    /// Directory of the mounted avi-secret (files username, password or authtoken, certificateAuthorityData).
    #[arg(
        long = "avi-credentials-dir",
        env = "AVI_CREDENTIALS_DIR",
        value_name = "DIR"
    )]
    pub credentials_dir: Option<PathBuf>,
    /// Avi user (avi-secret username).
    #[arg(long, env = "AVI_USERNAME", hide_env_values = true)]
    pub avi_username: Option<String>,
    /// Avi password (avi-secret password): from the environment (`AVI_PASSWORD`) or the credentials directory
    /// only, never a flag, which anyone on the host could read in the process list.
    #[arg(skip)]
    pub avi_password: Option<Redacted>,
    /// Avi auth token (avi-secret authtoken), instead of a password: `AVI_AUTHTOKEN` or the credentials
    /// directory only.
    #[arg(skip)]
    pub avi_authtoken: Option<Redacted>,
    /// Worker threads of the reconciler's runtime; 0 takes one per CPU core. One is the default: the reconciler
    /// waits on the API server and the controller far more than it computes, and each extra thread keeps its
    /// own allocator pages (one thread measured 5-12 MiB lower peak RSS at 10,000 objects, no slower).
    #[arg(long, env = "AKO_CONTROLLER_THREADS", default_value_t = 1)]
    pub controller_threads: usize,
    /// PEM CA bundle of the controller (avi-secret certificateAuthorityData), or a path to one.
    #[arg(long = "avi-ca", env = "AVI_CA_DATA")]
    pub avi_ca: Option<String>,
    /// Skip verification of the controller's certificate (insecure; logged).
    #[arg(long, env = "AVI_INSECURE_SKIP_VERIFY")]
    pub avi_insecure_skip_verify: bool,
}

fn read_secret_dir(dir: &Path, errors: &mut Vec<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for key in [
        "username",
        "password",
        "authtoken",
        "certificateAuthorityData",
    ] {
        let p = dir.join(key);
        match std::fs::read_to_string(&p) {
            Ok(v) => {
                let v = v.trim().to_string();
                if !v.is_empty() {
                    out.insert(key.to_string(), v);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => errors.push(format!("avi-secret {}: {e}", p.display())),
        }
    }
    out
}

impl ControllerArgs {
    /// Merges the config source (`config_file`, the same as the webhook's) < env/flags, reads the credentials
    /// (the mounted avi-secret, then env and flags; a CA given as a path is read) and validates.
    pub fn resolve(&self, config_file: Option<&Path>) -> Result<ControllerSettings, ConfigErrors> {
        // Flags and env by ConfigMap key; a blank one counts as unset.
        let overrides = [
            ("controllerIP", &self.controller_host),
            ("fullSyncFrequency", &self.full_sync_frequency),
            ("deleteConfig", &self.delete_config),
            ("nodeKey", &self.node_key),
            ("nodeValue", &self.node_value),
            ("serviceType", &self.service_type),
            ("shardVSSize", &self.shard_vs_size),
            ("disableStaticRouteSync", &self.disable_static_route_sync),
            ("nsSyncLabelKey", &self.ns_selector_key),
            ("nsSyncLabelValue", &self.ns_selector_value),
            ("blockedNamespaceList", &self.blocked_namespace_list),
            ("deletionGuardMaxObjects", &self.deletion_guard_max_objects),
            ("deletionGuardMaxPercent", &self.deletion_guard_max_percent),
            ("releaseHeldDeletions", &self.release_held_deletions),
            (
                "aviRequestTimeoutSeconds",
                &self.avi_request_timeout_seconds,
            ),
            ("aviMaxRequestsPerSecond", &self.avi_max_requests_per_second),
            ("allowDefaultClusterName", &self.allow_default_cluster_name),
            ("controllerVersion", &self.controller_version),
            ("cloudName", &self.cloud_name),
            ("serviceEngineGroupName", &self.se_group),
            ("tenantName", &self.tenant_name),
            ("vrfName", &self.vrf_name),
        ]
        .map(|(key, v)| (key, v.clone().filter(|v| !v.trim().is_empty())));
        let values = merged(config_file, &overrides)?;
        let mut errors = Vec::new();
        let mut secret = match &self.credentials_dir {
            Some(d) => read_secret_dir(d, &mut errors),
            None => BTreeMap::new(),
        };
        let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let password = self
            .avi_password
            .as_ref()
            .map(|r| r.0.clone())
            .or_else(|| from_env("AVI_PASSWORD"));
        let token = self
            .avi_authtoken
            .as_ref()
            .map(|r| r.0.clone())
            .or_else(|| from_env("AVI_AUTHTOKEN"));
        for (key, flag) in [
            ("username", &self.avi_username),
            ("password", &password),
            ("authtoken", &token),
            ("certificateAuthorityData", &self.avi_ca),
        ] {
            if let Some(v) = flag.as_ref().filter(|v| !v.is_empty()) {
                secret.insert(key.into(), v.clone());
            }
        }
        // A CA given as a path is read here; the core takes PEM.
        if let Some(path) = secret
            .get("certificateAuthorityData")
            .filter(|v| !v.contains("-----BEGIN"))
            .cloned()
        {
            match std::fs::read_to_string(&path) {
                Ok(pem) => {
                    secret.insert("certificateAuthorityData".into(), pem);
                }
                Err(e) => errors.push(format!(
                    "certificateAuthorityData: neither PEM nor a readable file ({path}: {e})"
                )),
            }
        }
        let settings = ako_core::settings::resolve(&values, &secret, self.avi_insecure_skip_verify);
        match (settings, errors.is_empty()) {
            (Ok(s), true) => Ok(s),
            (Ok(_), false) => Err(ConfigErrors(errors)),
            (Err(e), _) => {
                errors.extend(e.0);
                Err(ConfigErrors(errors))
            }
        }
    }
}

#[cfg(test)]
mod config_tests {
    use super::*;
    use ako_core::config::{AutoFqdn, FqdnReusePolicy};

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
}

#[cfg(test)]
mod settings_tests {
    use super::*;
    use ako_core::l4::MemberMode;
    use ako_core::l7::ShardSize;
    use ako_core::settings::Login;
    use std::time::Duration;

    fn args() -> ControllerArgs {
        ControllerArgs {
            controller_host: Some("avi-ctrl.jarvis.lab".into()),
            avi_username: Some("admin".into()),
            avi_password: Some(Redacted("VMware1!".into())),
            ..ControllerArgs::default()
        }
    }

    #[test]
    fn defaults_are_akos() {
        let s = args().resolve(None).expect("valid");
        assert_eq!(
            (
                s.cloud.as_str(),
                s.se_group.as_str(),
                s.tenant.as_str(),
                s.vrf.as_str()
            ),
            ("Default-Cloud", "Default-Group", "admin", "global")
        );
        assert_eq!(s.full_sync, Some(Duration::from_secs(1800)));
        assert!(!s.delete_config);
        assert_eq!(s.member_mode, MemberMode::ClusterIp);
    }

    #[test]
    fn config_file_keys_are_akos_and_flags_win() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("cm.yaml");
        std::fs::write(
            &file,
            "controllerIP: from-file\ncloudName: Default-Cloud\nserviceEngineGroupName: vmug-se-group\nfullSyncFrequency: \"0\"\n\
             serviceType: NodePort\nnodeKey: lb\nnodeValue: \"yes\"\nblockedNamespaceList: '[\"kube-system\"]'\ndeleteConfig: \"true\"\n\
             shardVSSize: MEDIUM\n",
        )
        .expect("write");
        let mut a = args();
        a.controller_host = None;
        let s = a.resolve(Some(&file)).expect("valid");
        assert_eq!(s.controller_host, "from-file");
        assert_eq!(s.se_group, "vmug-se-group");
        assert_eq!(s.full_sync, None, "0 disables");
        assert_eq!(
            s.member_mode,
            MemberMode::NodePort {
                selector: Some(("lb".into(), "yes".into()))
            }
        );
        assert_eq!(s.scope.blocked, ["kube-system"]);
        assert!(s.delete_config);
        assert_eq!(s.shard_size, ShardSize::Medium);
        let mut b = args();
        b.se_group = Some("flag-group".into());
        assert_eq!(
            b.resolve(Some(&file)).expect("valid").se_group,
            "flag-group"
        );
    }

    #[test]
    fn akos_configmap_is_read_unchanged_with_its_namespace_selector_and_a_misspelt_key_is_refused()
    {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/ako/avi-k8s-config.yaml");
        let mut a = args();
        a.controller_host = None;
        let s = a.resolve(Some(&file)).expect("AKO's ConfigMap is valid");
        assert_eq!(s.controller_host, "avi-ctrl.jarvis.lab");
        assert_eq!(s.scope.selector, Some(("ako".into(), "yes".into())));
        assert_eq!(s.shard_size, ShardSize::Large);
        let c = ConfigArgs {
            config_file: Some(file.clone()),
            ..ConfigArgs::default()
        }
        .resolve()
        .expect("the webhook reads it too");
        assert_eq!(c.cluster_name, "veba-of");

        let dir = tempfile::tempdir().expect("tmp");
        let typo = dir.path().join("cm.yaml");
        let text = std::fs::read_to_string(&file).expect("read");
        std::fs::write(&typo, text.replace("nsSyncLabelKey", "nsSyncLabelkey")).expect("write");
        let errors = a.resolve(Some(&typo)).expect_err("a key nobody knows").0;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("nsSyncLabelkey")
                && errors[0].contains("did you mean \"nsSyncLabelKey\""),
            "{errors:?}"
        );
    }

    #[test]
    fn every_bad_value_is_reported_once() {
        let a = ControllerArgs {
            full_sync_frequency: Some("soon".into()),
            service_type: Some("LoadBalancer".into()),
            node_key: Some("lb".into()),
            delete_config: Some("yes".into()),
            shard_vs_size: Some("HUGE".into()),
            ..ControllerArgs::default()
        };
        let errors = a.resolve(None).expect_err("invalid").0;
        let text = errors.join("\n");
        for want in [
            "controllerIP",
            "fullSyncFrequency",
            "serviceType",
            "nodeKey and nodeValue",
            "deleteConfig",
            "shardVSSize",
            "username",
        ] {
            assert!(text.contains(want), "missing {want}: {text}");
        }
        assert_eq!(errors.len(), 7, "{text}");
    }

    #[test]
    fn credentials_come_from_the_mounted_secret_and_never_print() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("username"), "admin\n").expect("write");
        std::fs::write(dir.path().join("authtoken"), "tok-123-secret").expect("write");
        let a = ControllerArgs {
            controller_host: Some("ctrl".into()),
            credentials_dir: Some(dir.path().to_path_buf()),
            ..ControllerArgs::default()
        };
        let s = a.resolve(None).expect("valid");
        assert_eq!(
            s.login,
            Login::Token {
                username: "admin".into(),
                token: "tok-123-secret".into()
            }
        );
        let printed = format!("{s:?} {a:?}");
        assert!(!printed.contains("tok-123-secret"), "{printed}");
        let p = args().resolve(None).expect("valid");
        assert!(!format!("{p:?} {:?}", args()).contains("VMware1!"));
    }
}
