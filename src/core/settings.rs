//! The reconciler's settings: AKO's `ControllerSettings` and the operator switches of `AKOSettings`,
//! `L7Settings` and `NetworkSettings`, read from the same `avi-k8s-config` source as [`crate::core::config`]
//! (file or mounted ConfigMap directory, then env, then flags), and the `avi-secret` credentials (a mounted
//! Secret directory, or env). Every bad value is reported, one line each.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::core::config::{ConfigErrors, read_config_source};
use crate::core::l4::MemberMode;
use crate::core::l7::ShardSize;

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
    /// Node label key and value selecting NodePort members (nodeKey, nodeValue).
    #[arg(long, env = "NODE_KEY")]
    pub node_key: Option<String>,
    #[arg(long, env = "NODE_VALUE")]
    pub node_value: Option<String>,
    /// Namespace label key and value ako serves (nsSelectorLabelKey, nsSelectorLabelValue).
    #[arg(long, env = "NAMESPACE_SELECTOR_LABEL_KEY")]
    pub ns_selector_key: Option<String>,
    #[arg(long, env = "NAMESPACE_SELECTOR_LABEL_VALUE")]
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

/// A secret given on the command line or in env: `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Redacted(pub String);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Redacted {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Redacted(s.to_string()))
    }
}

/// How ako logs in.
#[derive(Clone, PartialEq, Eq)]
pub enum Login {
    Password { username: String, password: String },
    Token { username: String, token: String },
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Login::Password { username, .. } => write!(
                f,
                "Password {{ username: {username:?}, password: <redacted> }}"
            ),
            Login::Token { username, .. } => {
                write!(f, "Token {{ username: {username:?}, token: <redacted> }}")
            }
        }
    }
}

/// Validated reconciler settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerSettings {
    pub controller_host: String,
    pub controller_version: Option<String>,
    pub cloud: String,
    pub se_group: String,
    pub tenant: String,
    pub vrf: String,
    /// `None`: periodic full sync disabled.
    pub full_sync: Option<Duration>,
    pub delete_config: bool,
    pub member_mode: MemberMode,
    /// `shardVSSize` (LARGE by default, as AKO).
    pub shard_size: ShardSize,
    pub scope: Scope,
    pub login: Login,
    pub ca_pem: Option<String>,
    pub insecure_skip_verify: bool,
    /// When the deletion guard holds deletions.
    pub deletion_guard: crate::reconcile::safety::GuardLimits,
    /// The hold an operator released.
    pub release_held: Option<String>,
    /// `allowDefaultClusterName`: run even though clusterName is AKO's chart default.
    pub allow_default_cluster_name: bool,
    /// How long an Avi request may take.
    pub avi_request_timeout: Duration,
    /// The request budget's ceiling (requests per second).
    pub avi_max_rps: u32,
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

fn parse_bool(key: &str, v: &str, errors: &mut Vec<String>) -> bool {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => true,
        "false" | "" => false,
        _ => {
            errors.push(format!("{key}: {v:?} is not true or false"));
            false
        }
    }
}

impl ControllerArgs {
    /// Merges the config source (`config_file`, the same as the webhook's) < env/flags and validates.
    pub fn resolve(&self, config_file: Option<&Path>) -> Result<ControllerSettings, ConfigErrors> {
        let file = match config_file {
            Some(p) => read_config_source(p).map_err(|e| ConfigErrors(vec![e]))?,
            None => BTreeMap::new(),
        };
        let mut errors = Vec::new();
        let pick = |flag: &Option<String>, key: &str| {
            flag.clone()
                .or_else(|| file.get(key).cloned())
                .filter(|v| !v.trim().is_empty())
        };

        let controller_host = pick(&self.controller_host, "controllerIP").unwrap_or_default();
        if controller_host.is_empty() {
            errors.push("controllerIP (--controller-host, CTRL_IPADDRESS): the Avi Controller address is required".into());
        }
        let full_sync = match pick(&self.full_sync_frequency, "fullSyncFrequency") {
            None => Some(Duration::from_secs(1800)),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(0) => None,
                Ok(s) => Some(Duration::from_secs(s)),
                Err(_) => {
                    errors.push(format!(
                        "fullSyncFrequency: {v:?} is not a number of seconds (0 disables)"
                    ));
                    None
                }
            },
        };
        let delete_config = pick(&self.delete_config, "deleteConfig")
            .is_some_and(|v| parse_bool("deleteConfig", &v, &mut errors));
        let node_selector = match (
            pick(&self.node_key, "nodeKey"),
            pick(&self.node_value, "nodeValue"),
        ) {
            (Some(k), Some(v)) => Some((k, v)),
            (None, None) => None,
            _ => {
                errors
                    .push("nodeKey and nodeValue (nodePortSelector) must be given together".into());
                None
            }
        };
        let member_mode = match pick(&self.service_type, "serviceType")
            .as_deref()
            .map(str::trim)
        {
            None | Some("ClusterIP") => MemberMode::ClusterIp,
            Some("NodePort") => MemberMode::NodePort {
                selector: node_selector,
            },
            Some(other) => {
                errors.push(format!(
                    "serviceType: {other:?} is not supported (accepted: ClusterIP, NodePort; NodePortLocal needs Antrea)"
                ));
                MemberMode::ClusterIp
            }
        };
        let shard_size = match pick(&self.shard_vs_size, "shardVSSize") {
            None => ShardSize::Large,
            Some(v) => ShardSize::parse(&v).unwrap_or_else(|| {
                errors.push(format!(
                    "shardVSSize: {v:?} is not supported (accepted: LARGE, MEDIUM, SMALL, DEDICATED)"
                ));
                ShardSize::Large
            }),
        };
        let namespace_selector = match (
            pick(&self.ns_selector_key, "nsSelectorLabelKey"),
            pick(&self.ns_selector_value, "nsSelectorLabelValue"),
        ) {
            (Some(k), Some(v)) => Some((k, v)),
            (None, None) => None,
            _ => {
                errors.push("nsSelectorLabelKey and nsSelectorLabelValue (namespaceSelector) must be given together".into());
                None
            }
        };
        let blocked_namespaces = match pick(&self.blocked_namespace_list, "blockedNamespaceList") {
            None => Vec::new(),
            Some(v) => match serde_json::from_str::<Vec<String>>(&v) {
                Ok(list) => list,
                Err(_) if !v.trim_start().starts_with('[') => v
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
                Err(e) => {
                    errors.push(format!(
                        "blockedNamespaceList: {v:?} is not a JSON list of names: {e}"
                    ));
                    Vec::new()
                }
            },
        };

        let mut guard = crate::reconcile::safety::GuardLimits::default();
        if let Some(v) = pick(&self.deletion_guard_max_objects, "deletionGuardMaxObjects") {
            match v.trim().parse::<usize>() {
                Ok(n) => guard.max_objects = n,
                Err(_) => errors.push(format!(
                    "deletionGuardMaxObjects: {v:?} is not a number of objects"
                )),
            }
        }
        if let Some(v) = pick(&self.deletion_guard_max_percent, "deletionGuardMaxPercent") {
            match v.trim().parse::<u32>() {
                Ok(n) if n <= 100 => guard.max_percent = n,
                _ => errors.push(format!(
                    "deletionGuardMaxPercent: {v:?} is not a percentage from 0 to 100 (100 turns the guard off)"
                )),
            }
        }
        let release_held = pick(&self.release_held_deletions, "releaseHeldDeletions")
            .map(|v| v.trim().to_string());
        let avi_request_timeout = match pick(
            &self.avi_request_timeout_seconds,
            "aviRequestTimeoutSeconds",
        ) {
            None => Duration::from_secs(60),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if (1..=3600).contains(&n) => Duration::from_secs(n),
                _ => {
                    errors.push(format!(
                        "aviRequestTimeoutSeconds: {v:?} is not a number of seconds from 1 to 3600"
                    ));
                    Duration::from_secs(60)
                }
            },
        };
        let avi_max_rps = match pick(&self.avi_max_requests_per_second, "aviMaxRequestsPerSecond") {
            None => 2000,
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if n >= 2 => n,
                _ => {
                    errors.push(format!(
                        "aviMaxRequestsPerSecond: {v:?} is not a whole number of requests per second, 2 or more"
                    ));
                    2000
                }
            },
        };
        let allow_default_cluster_name =
            pick(&self.allow_default_cluster_name, "allowDefaultClusterName")
                .is_some_and(|v| parse_bool("allowDefaultClusterName", &v, &mut errors));

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
        let username = secret.get("username").cloned().unwrap_or_default();
        let login = match (secret.get("password"), secret.get("authtoken")) {
            _ if username.is_empty() => {
                errors.push("avi-secret username (AVI_USERNAME) is required".into());
                Login::Password {
                    username,
                    password: String::new(),
                }
            }
            (Some(p), _) => Login::Password {
                username,
                password: p.clone(),
            },
            (None, Some(t)) => Login::Token {
                username,
                token: t.clone(),
            },
            (None, None) => {
                errors.push(
                    "avi-secret password or authtoken (AVI_PASSWORD, AVI_AUTHTOKEN) is required"
                        .into(),
                );
                Login::Password {
                    username,
                    password: String::new(),
                }
            }
        };
        let ca_pem = match secret.get("certificateAuthorityData") {
            None => None,
            Some(v) if v.contains("-----BEGIN") => Some(v.clone()),
            Some(path) => {
                match std::fs::read_to_string(path) {
                    Ok(pem) => Some(pem),
                    Err(e) => {
                        errors.push(format!("certificateAuthorityData: neither PEM nor a readable file ({path}: {e})"));
                        None
                    }
                }
            }
        };

        let settings = ControllerSettings {
            controller_host,
            controller_version: pick(&self.controller_version, "controllerVersion"),
            cloud: pick(&self.cloud_name, "cloudName").unwrap_or_else(|| "Default-Cloud".into()),
            se_group: pick(&self.se_group, "serviceEngineGroupName")
                .unwrap_or_else(|| "Default-Group".into()),
            tenant: pick(&self.tenant_name, "tenantName").unwrap_or_else(|| "admin".into()),
            vrf: pick(&self.vrf_name, "vrfName").unwrap_or_else(|| "global".into()),
            full_sync,
            delete_config,
            member_mode,
            shard_size,
            scope: Scope {
                selector: namespace_selector,
                blocked: blocked_namespaces,
            },
            login,
            ca_pem,
            insecure_skip_verify: self.avi_insecure_skip_verify,
            deletion_guard: guard,
            release_held,
            allow_default_cluster_name,
            avi_request_timeout,
            avi_max_rps,
        };
        if errors.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

/// Which namespaces ako serves (`namespaceSelector`, `blockedNamespaceList`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Only namespaces with this label key and value, if set.
    pub selector: Option<(String, String)>,
    pub blocked: Vec<String>,
}

impl Scope {
    /// Whether ako serves namespace `name` with these labels (`None`: labels not known yet).
    pub fn contains(&self, name: &str, labels: Option<&BTreeMap<String, String>>) -> bool {
        if self.blocked.iter().any(|b| b == name) {
            return false;
        }
        match &self.selector {
            None => true,
            Some((k, v)) => labels.and_then(|l| l.get(k)) == Some(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn namespace_scope_table() {
        let mut s = Scope {
            selector: None,
            blocked: vec!["kube-system".into()],
        };
        let labels: BTreeMap<String, String> = [("ako".to_string(), "yes".to_string())].into();
        assert!(s.contains("vmug", None));
        assert!(!s.contains("kube-system", Some(&labels)));
        s.selector = Some(("ako".into(), "yes".into()));
        assert!(s.contains("vmug", Some(&labels)));
        assert!(!s.contains("other", None));
        assert!(!s.contains("other", Some(&BTreeMap::new())));
    }
}
