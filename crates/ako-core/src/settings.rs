//! The reconciler's settings: AKO's `ControllerSettings` and the operator switches of `AKOSettings`,
//! `L7Settings` and `NetworkSettings`, read from the same `avi-k8s-config` source as [`crate::config`]
//! (file or mounted ConfigMap directory, then env, then flags), and the `avi-secret` credentials (a mounted
//! Secret directory, or env). Every bad value is reported, one line each.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::config::ConfigErrors;
use crate::l4::MemberMode;
use crate::l7::ShardSize;

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
    /// ClusterIP mode syncs static routes to the Nodes' pod CIDRs on the VRF (AKO's default); false with
    /// `disableStaticRouteSync: true` (pods reachable from the Service Engines by other means).
    pub static_routes: bool,
    /// `shardVSSize` (LARGE by default, as AKO).
    pub shard_size: ShardSize,
    pub scope: Scope,
    pub login: Login,
    pub ca_pem: Option<String>,
    pub insecure_skip_verify: bool,
    /// When the deletion guard holds deletions.
    pub deletion_guard: crate::safety::GuardLimits,
    /// The hold an operator released.
    pub release_held: Option<String>,
    /// `allowDefaultClusterName`: run even though clusterName is AKO's chart default.
    pub allow_default_cluster_name: bool,
    /// How long an Avi request may take.
    pub avi_request_timeout: Duration,
    /// The request budget's ceiling (requests per second).
    pub avi_max_rps: u32,
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

/// The values being read, with every error found so far.
struct Reader<'a> {
    values: &'a BTreeMap<String, String>,
    errors: Vec<String>,
}

impl Reader<'_> {
    /// A value, unless missing or blank.
    fn pick(&self, key: &str) -> Option<String> {
        self.values
            .get(key)
            .cloned()
            .filter(|v| !v.trim().is_empty())
    }

    /// A boolean (false when missing).
    fn flag(&mut self, key: &str) -> bool {
        self.pick(key)
            .is_some_and(|v| parse_bool(key, &v, &mut self.errors))
    }

    /// A number `ok` accepts; `default` when missing, and when bad (with the error `what` completes).
    fn number<T: std::str::FromStr + Copy>(
        &mut self,
        key: &str,
        default: T,
        ok: impl Fn(T) -> bool,
        what: &str,
    ) -> T {
        let Some(v) = self.pick(key) else {
            return default;
        };
        match v.trim().parse::<T>() {
            Ok(n) if ok(n) => n,
            _ => {
                self.errors.push(format!("{key}: {v:?} is not {what}"));
                default
            }
        }
    }

    /// A key/value pair of settings given together or not at all.
    fn pair(
        &mut self,
        keys: (Option<String>, Option<String>),
        both: &str,
    ) -> Option<(String, String)> {
        match keys {
            (Some(k), Some(v)) => Some((k, v)),
            (None, None) => None,
            _ => {
                self.errors.push(both.to_string());
                None
            }
        }
    }
}

/// Validates the reconciler's settings: `values` are ConfigMap keys -> values (env and flags already laid over the
/// file's), `secret` the avi-secret's keys (`username`, `password` or `authtoken`, `certificateAuthorityData` as
/// PEM). Every bad value is reported at once.
pub fn resolve(
    values: &BTreeMap<String, String>,
    secret: &BTreeMap<String, String>,
    insecure_skip_verify: bool,
) -> Result<ControllerSettings, ConfigErrors> {
    let mut r = Reader {
        values,
        errors: Vec::new(),
    };
    let controller_host = r.pick("controllerIP").unwrap_or_default();
    if controller_host.is_empty() {
        r.errors.push("controllerIP (--controller-host, CTRL_IPADDRESS): the Avi Controller address is required".into());
    }
    let full_sync = match r.number(
        "fullSyncFrequency",
        1800u64,
        |_| true,
        "a number of seconds (0 disables)",
    ) {
        0 => None,
        s => Some(Duration::from_secs(s)),
    };
    let delete_config = r.flag("deleteConfig");
    let static_routes = !r.flag("disableStaticRouteSync");
    let member_mode = member_mode(&mut r);
    let shard_size = match r.pick("shardVSSize") {
        None => ShardSize::Large,
        Some(v) => ShardSize::parse(&v).unwrap_or_else(|| {
            r.errors.push(format!(
                "shardVSSize: {v:?} is not supported (accepted: LARGE, MEDIUM, SMALL, DEDICATED)"
            ));
            ShardSize::Large
        }),
    };
    let scope = scope(&mut r);
    let guard = crate::safety::GuardLimits {
        max_objects: r.number(
            "deletionGuardMaxObjects",
            crate::safety::GuardLimits::default().max_objects,
            |_| true,
            "a number of objects",
        ),
        max_percent: r.number(
            "deletionGuardMaxPercent",
            crate::safety::GuardLimits::default().max_percent,
            |n| n <= 100,
            "a percentage from 0 to 100 (100 turns the guard off)",
        ),
    };
    let release_held = r.pick("releaseHeldDeletions").map(|v| v.trim().to_string());
    let avi_request_timeout = Duration::from_secs(r.number(
        "aviRequestTimeoutSeconds",
        60u64,
        |n| (1..=3600).contains(&n),
        "a number of seconds from 1 to 3600",
    ));
    let avi_max_rps = r.number(
        "aviMaxRequestsPerSecond",
        2000u32,
        |n| n >= 2,
        "a whole number of requests per second, 2 or more",
    );
    let allow_default_cluster_name = r.flag("allowDefaultClusterName");
    let (login, ca_pem) = credentials(secret, &mut r.errors);

    let settings = ControllerSettings {
        controller_host,
        controller_version: r.pick("controllerVersion"),
        cloud: r
            .pick("cloudName")
            .unwrap_or_else(|| "Default-Cloud".into()),
        se_group: r
            .pick("serviceEngineGroupName")
            .unwrap_or_else(|| "Default-Group".into()),
        tenant: r.pick("tenantName").unwrap_or_else(|| "admin".into()),
        vrf: r.pick("vrfName").unwrap_or_else(|| "global".into()),
        full_sync,
        delete_config,
        member_mode,
        static_routes,
        shard_size,
        scope,
        login,
        ca_pem,
        insecure_skip_verify,
        deletion_guard: guard,
        release_held,
        allow_default_cluster_name,
        avi_request_timeout,
        avi_max_rps,
    };
    if r.errors.is_empty() {
        Ok(settings)
    } else {
        Err(ConfigErrors(r.errors))
    }
}

/// `serviceType` (with `nodeKey`/`nodeValue` in NodePort mode).
fn member_mode(r: &mut Reader<'_>) -> MemberMode {
    let node_selector = r.pair(
        (r.pick("nodeKey"), r.pick("nodeValue")),
        "nodeKey and nodeValue (nodePortSelector) must be given together",
    );
    match r.pick("serviceType").as_deref().map(str::trim) {
        None | Some("ClusterIP") => MemberMode::ClusterIp,
        Some("NodePort") => MemberMode::NodePort {
            selector: node_selector,
        },
        Some(other) => {
            r.errors.push(format!(
                "serviceType: {other:?} is not supported (accepted: ClusterIP, NodePort; NodePortLocal needs Antrea)"
            ));
            MemberMode::ClusterIp
        }
    }
}

/// The namespaces served: AKO's `nsSyncLabelKey`/`nsSyncLabelValue` (or ako's earlier names of the same setting)
/// and `blockedNamespaceList` (a JSON list, or comma-separated).
fn scope(r: &mut Reader<'_>) -> Scope {
    let keys = (
        r.pick("nsSyncLabelKey")
            .or_else(|| r.pick("nsSelectorLabelKey")),
        r.pick("nsSyncLabelValue")
            .or_else(|| r.pick("nsSelectorLabelValue")),
    );
    let selector = r.pair(
        keys,
        "nsSyncLabelKey and nsSyncLabelValue (AKOSettings.namespaceSelector labelKey and labelValue) must be given together: with only one, AKO would serve every namespace, ako refuses to guess",
    );
    let blocked = match r.pick("blockedNamespaceList") {
        None => Vec::new(),
        Some(v) => match serde_json::from_str::<Vec<String>>(&v) {
            Ok(list) => list,
            Err(_) if !v.trim_start().starts_with('[') => v
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            Err(e) => {
                r.errors.push(format!(
                    "blockedNamespaceList: {v:?} is not a JSON list of names: {e}"
                ));
                Vec::new()
            }
        },
    };
    Scope { selector, blocked }
}

/// The login (a password or a token) and the controller's CA from the avi-secret's keys.
fn credentials(
    secret: &BTreeMap<String, String>,
    errors: &mut Vec<String>,
) -> (Login, Option<String>) {
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
                "avi-secret password or authtoken (AVI_PASSWORD, AVI_AUTHTOKEN) is required".into(),
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
        Some(_) => {
            errors.push(
                "certificateAuthorityData: not a PEM certificate (-----BEGIN CERTIFICATE-----)"
                    .into(),
            );
            None
        }
    };
    (login, ca_pem)
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
