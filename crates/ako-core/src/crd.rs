//! AKO's custom resources (group `ako.vmware.com`), with AKO's field names and API versions so the YAML users
//! keep in Git applies unchanged: [`hostrule`] (a virtual host's settings: controller certificate, WAF policy,
//! profiles, policy sets, DataScripts, client logs) and [`httprule`] (per path pool settings: algorithm, health
//! monitors, persistence, re-encryption). Pure: a rule's spec comes in as a value, the controller's names come in
//! through [`Lookup`], and what comes out is a verdict ([`Verdict`], AKO's `status.status` and `status.error`)
//! and changes to the Avi bodies the Ingress translation produced.
//!
//! One check ([`check_host_rule`], [`check_http_rule`]) serves the webhook (at `kubectl apply`), the reconciler
//! (the status it writes) and `ako check` (offline, where the controller's names are [`Lookup::Unknown`]).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::index::ObjKey;

pub mod hostrule;
pub mod httprule;
pub mod infra;
pub mod l4rule;
mod rules;

pub use hostrule::{FqdnType, HostRuleSpec};
pub use httprule::HttpRuleSpec;
pub use infra::InfraSettingSpec;
pub use l4rule::L4RuleSpec;
pub use rules::{
    HostRuleEntry, HttpRuleEntry, InfraEntry, L4Member, L4RuleEntry, RuleEntry, RuleSet,
    apply_l4_rules, changed, check_host_rule, check_http_rule, check_infra_setting, check_l4_rule,
    judge_host_rules, judge_http_rules, judge_infra_settings, judge_l4_rules,
    reject_missing_secrets, secrets_named, touched_hosts,
};

/// The API group of AKO's resources.
pub const GROUP: &str = "ako.vmware.com";
/// The versions AKO serves for HostRule, HTTPRule and AviInfraSetting (v1beta1 is stored).
pub const RULE_VERSIONS: [&str; 2] = ["v1beta1", "v1alpha1"];

/// Which of AKO's rule kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleKind {
    HostRule,
    HttpRule,
    L4Rule,
    /// Cluster scoped (its key's namespace is empty).
    AviInfraSetting,
}

impl RuleKind {
    pub const ALL: [RuleKind; 4] = [
        RuleKind::HostRule,
        RuleKind::HttpRule,
        RuleKind::L4Rule,
        RuleKind::AviInfraSetting,
    ];

    pub fn kind(self) -> &'static str {
        match self {
            RuleKind::HostRule => "HostRule",
            RuleKind::HttpRule => "HTTPRule",
            RuleKind::L4Rule => "L4Rule",
            RuleKind::AviInfraSetting => "AviInfraSetting",
        }
    }

    /// Whether objects of the kind live in a namespace (AviInfraSetting does not).
    pub fn namespaced(self) -> bool {
        !matches!(self, RuleKind::AviInfraSetting)
    }

    pub fn plural(self) -> &'static str {
        match self {
            RuleKind::HostRule => "hostrules",
            RuleKind::HttpRule => "httprules",
            RuleKind::L4Rule => "l4rules",
            RuleKind::AviInfraSetting => "aviinfrasettings",
        }
    }

    /// The stored version AKO's CRDs serve (and ako's chart installs).
    pub fn version(self) -> &'static str {
        match self {
            RuleKind::HostRule | RuleKind::HttpRule | RuleKind::AviInfraSetting => RULE_VERSIONS[0],
            RuleKind::L4Rule => L4RULE_VERSION,
        }
    }

    pub fn api_version(self) -> String {
        format!("{GROUP}/{}", self.version())
    }

    /// The versions served.
    pub fn versions(self) -> &'static [&'static str] {
        match self {
            RuleKind::HostRule | RuleKind::HttpRule | RuleKind::AviInfraSetting => &RULE_VERSIONS,
            RuleKind::L4Rule => &[L4RULE_VERSION],
        }
    }

    /// The kind of an admission request's `kind`, if it is one of these.
    pub fn of(group: &str, kind: &str) -> Option<Self> {
        match (group, kind) {
            (GROUP, "HostRule") => Some(RuleKind::HostRule),
            (GROUP, "HTTPRule") => Some(RuleKind::HttpRule),
            (GROUP, "L4Rule") => Some(RuleKind::L4Rule),
            (GROUP, "AviInfraSetting") => Some(RuleKind::AviInfraSetting),
            _ => None,
        }
    }
}

/// The one version AKO serves L4Rule in.
pub const L4RULE_VERSION: &str = "v1alpha2";

/// AKO's `status.status` values.
pub const ACCEPTED: &str = "Accepted";
pub const REJECTED: &str = "Rejected";

/// What ako says about a rule: AKO's `status.status` and `status.error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Rejected(String),
}

impl Verdict {
    pub fn is_accepted(&self) -> bool {
        matches!(self, Verdict::Accepted)
    }

    /// `status.status`.
    pub fn status(&self) -> &'static str {
        match self {
            Verdict::Accepted => ACCEPTED,
            Verdict::Rejected(_) => REJECTED,
        }
    }

    /// `status.error` (empty when accepted, as AKO writes it).
    pub fn error(&self) -> &str {
        match self {
            Verdict::Accepted => "",
            Verdict::Rejected(e) => e,
        }
    }

    /// The `status` object as a merge patch: AKO's `status` and `error`; an accepted rule's `error` is removed
    /// (null), since API servers before 1.21 turn an empty string in a patch into null and refuse it.
    pub fn status_json(&self) -> Value {
        match self {
            Verdict::Accepted => serde_json::json!({"status": ACCEPTED, "error": null}),
            Verdict::Rejected(e) => serde_json::json!({"status": REJECTED, "error": e}),
        }
    }
}

/// Whether the controller has an object of a kind and name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Found,
    Missing,
    /// Not known: the controller cannot be asked (offline, or unreachable). A check never rejects on it.
    Unknown,
}

/// What is known of the controller's objects when a rule is reviewed: whether a name exists and, for a
/// certificate, the names it is valid for. A closure `Fn(&str, &str) -> Lookup` is one that knows no
/// certificate's names.
pub trait ControllerView {
    fn lookup(&self, obj_type: &str, name: &str) -> Lookup;
    /// The DNS names a controller certificate is valid for (its SANs, else its CN); `None`: not known (never
    /// denied on).
    fn cert_names(&self, _name: &str) -> Option<Vec<String>> {
        None
    }
}

impl<F: Fn(&str, &str) -> Lookup> ControllerView for F {
    fn lookup(&self, obj_type: &str, name: &str) -> Lookup {
        self(obj_type, name)
    }
}

/// A controller object a rule names: the collection (`wafpolicy`), the name, and the rule's field naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AviRef {
    pub obj_type: &'static str,
    pub name: String,
    pub field: String,
}

impl AviRef {
    pub fn new(obj_type: &'static str, name: &str, field: impl Into<String>) -> Self {
        Self {
            obj_type,
            name: name.to_string(),
            field: field.into(),
        }
    }
}

/// Checks that every reference exists on the controller; the first missing one is the error, in AKO's words
/// (`wafpolicy "x" not found on controller`) with the field that names it.
pub fn check_refs(refs: &[AviRef], lookup: &dyn Fn(&str, &str) -> Lookup) -> Result<(), String> {
    for r in refs {
        if r.name.is_empty() {
            continue;
        }
        if lookup(r.obj_type, &r.name) == Lookup::Missing {
            return Err(format!(
                "{} {:?} not found on controller ({})",
                r.obj_type, r.name, r.field
            ));
        }
    }
    Ok(())
}

/// The fields of a spec that ako reads but does not implement yet (admission warnings, `ako check` notes).
/// Fields a spec carries that neither AKO nor ako knows are in `unknown`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notes {
    /// `(field, why)`.
    pub unimplemented: Vec<(String, &'static str)>,
    pub unknown: Vec<String>,
}

impl Notes {
    /// Admission warnings, one line each.
    pub fn warnings(&self, kind: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .unimplemented
            .iter()
            .map(|(f, why)| format!("{kind} {f}: accepted, but ako does not apply it yet ({why})"))
            .collect();
        out.extend(
            self.unknown
                .iter()
                .map(|f| format!("{kind} {f}: not a field of AKO's {kind}; it is ignored")),
        );
        out
    }
}

/// The unknown fields a flattened map collected, prefixed with where they were.
fn unknown_fields(at: &str, other: &BTreeMap<String, Value>, out: &mut Vec<String>) {
    out.extend(other.keys().map(|k| format!("{at}.{k}")));
}

/// A name reference as AKO writes it, `/api/<type>?name=<name>` (the form ako's bodies use everywhere).
fn name_ref(obj_type: &str, name: &str) -> Value {
    Value::String(crate::plan::name_ref(obj_type, name))
}

/// Asks a VsVip body for a rule's address: its first VIP gets it, unless that VIP already asks for one (the
/// Service's own address wins over a rule's).
fn request_address(vsvip: &mut serde_json::Map<String, Value>, ip: std::net::IpAddr) {
    let Some(vip) = vsvip
        .get_mut("vip")
        .and_then(Value::as_array_mut)
        .and_then(|v| v.first_mut())
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if vip.contains_key("ip_address") || vip.contains_key("ip6_address") {
        return;
    }
    let key = if ip.is_ipv6() {
        "ip6_address"
    } else {
        "ip_address"
    };
    vip.insert(key.into(), crate::l4::ip_json(ip));
}

/// Reads a rule's spec from its object (`spec`), with the serde error as a status error.
pub fn spec_of<T: serde::de::DeserializeOwned>(object: &Value) -> Result<T, String> {
    let spec = object.get("spec").cloned().unwrap_or(Value::Null);
    serde_json::from_value(spec).map_err(|e| format!("spec is not valid: {e}"))
}

/// A rule's identity and age, as the reconciler and the webhook's index hold it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId {
    /// Creation time (seconds); `None` for an object not stored yet (it sorts last).
    pub created: Option<i64>,
    pub key: ObjKey,
}

impl RuleId {
    /// The ownership order: oldest first, then namespace and name (AKO: "the first HostRule wins").
    pub fn order(&self) -> (bool, i64, &str, &str) {
        (
            self.created.is_none(),
            self.created.unwrap_or_default(),
            &self.key.namespace,
            &self.key.name,
        )
    }
}
