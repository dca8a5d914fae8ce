//! The one conversion from Kubernetes objects to what ako will build, shared by the webhook (which denies on
//! [`Severity::Deny`] problems and warns on the rest) and the reconciler (which skips what is denied and reports
//! every problem as an Event). Pure: no I/O.
//!
//! ```text
//!  Ingress ─► classify ─► ClassRef ─(ClassView)─► ours?
//!     └────► translate_ingress ─► IngressIntent { hosts, paths, tls } + [Problem]
//!  Service ─► translate_service ─► ServiceIntent { fqdns, requested VIP, shared-VIP key } + [Problem]
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};

use crate::config::{self, AutoFqdn, Config};
use crate::hosts;

/// How an Ingress names its class.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClassRef {
    /// `spec.ingressClassName`.
    Name(String),
    /// The legacy `kubernetes.io/ingress.class` annotation.
    Legacy(String),
    /// No class at all: the cluster default applies.
    Unset,
}

/// Reads the class reference of an Ingress; the field wins over the annotation, as in Kubernetes.
pub fn classify(ing: &Ingress) -> ClassRef {
    if let Some(name) = ing
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_ref())
    {
        return ClassRef::Name(name.clone());
    }
    match ing
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(config::LEGACY_CLASS_ANNOTATION))
    {
        Some(v) => ClassRef::Legacy(v.clone()),
        None => ClassRef::Unset,
    }
}

/// What ako knows of one IngressClass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassInfo {
    pub controller: Option<String>,
    pub is_default: bool,
    /// The AviInfraSetting its `spec.parameters` name (`{apiGroup: ako.vmware.com, kind: AviInfraSetting}`).
    pub infra: Option<String>,
}

impl ClassInfo {
    pub fn from_ingress_class(ic: &IngressClass) -> Self {
        let is_default = ic
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(config::DEFAULT_CLASS_ANNOTATION))
            .is_some_and(|v| v == "true");
        let infra = ic
            .spec
            .as_ref()
            .and_then(|s| s.parameters.as_ref())
            .filter(|p| {
                p.api_group.as_deref() == Some(crate::crd::GROUP) && p.kind == "AviInfraSetting"
            })
            .map(|p| p.name.clone());
        Self {
            controller: ic.spec.as_ref().and_then(|s| s.controller.clone()),
            is_default,
            infra,
        }
    }
}

/// The cluster's IngressClasses, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClassView {
    pub classes: HashMap<String, ClassInfo>,
}

impl ClassView {
    /// Whether an Ingress with this class reference is handled by ako.
    pub fn is_ours(&self, class: &ClassRef, cfg: &Config) -> bool {
        match class {
            ClassRef::Name(n) => match self.classes.get(n) {
                Some(info) => info.controller.as_deref() == Some(config::INGRESS_CONTROLLER),
                // The class object may be created after the Ingress (or not be visible to `ako check`).
                None => *n == cfg.ingress_class_name,
            },
            ClassRef::Legacy(v) => *v == cfg.legacy_class_value,
            ClassRef::Unset => self.ours_is_default(cfg),
        }
    }

    /// The AviInfraSetting an Ingress with this class reference is placed by: its class's `spec.parameters`
    /// (the cluster default class's for an Ingress without one).
    pub fn infra_of(&self, class: &ClassRef) -> Option<&str> {
        let info = match class {
            ClassRef::Name(n) => self.classes.get(n)?,
            ClassRef::Legacy(_) => return None,
            ClassRef::Unset => self.classes.values().find(|i| {
                i.is_default && i.controller.as_deref() == Some(config::INGRESS_CONTROLLER)
            })?,
        };
        info.infra.as_deref()
    }

    /// Whether an Ingress with no class lands on ako.
    pub fn ours_is_default(&self, cfg: &Config) -> bool {
        let mut other_default = false;
        for info in self.classes.values().filter(|i| i.is_default) {
            if info.controller.as_deref() == Some(config::INGRESS_CONTROLLER) {
                return true;
            }
            other_default = true;
        }
        !other_default && cfg.default_ing_controller
    }
}

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The object must not be admitted; the reconciler skips the offending part.
    Deny,
    /// Admitted, but the user should know.
    Warn,
}

/// One finding about an object. `message` is complete on its own (it names the field); `field` is kept
/// separately for Events and audit lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    /// JSON-path-like field, e.g. `spec.rules[0].host`.
    pub field: String,
    pub message: String,
    /// The Event reason AKO uses for the same condition (`DuplicateHostPath`...), so that alerts written for AKO
    /// keep working; `None`: ako's generic reason for the severity.
    pub reason: Option<&'static str>,
}

impl Problem {
    pub fn deny(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Deny,
            field: field.into(),
            message: message.into(),
            reason: None,
        }
    }
    pub fn warn(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warn,
            field: field.into(),
            message: message.into(),
            reason: None,
        }
    }

    /// The same problem, reported with AKO's Event reason.
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }
}

/// AKO's Event reasons for conditions ako reports too.
pub mod reasons {
    /// A path of a host routed by two Ingresses (AKO: "Duplicate entries found for hostpath").
    pub const DUPLICATE_HOST_PATH: &str = "DuplicateHostPath";
    /// A host claimed by another namespace under fqdnReusePolicy Strict (AKO: "Host ... already claimed").
    pub const HOST_ALREADY_CLAIMED: &str = "IngressUpdateEvent";
    /// A host no longer served (AKO: "Removed virtualservice for <host>").
    pub const REMOVED: &str = "Removed";
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A backend Service reference of an Ingress path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Backend {
    pub service: String,
    pub port: BackendPort,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BackendPort {
    Number(i32),
    Name(String),
    Unset,
}

/// One routed path of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub path: String,
    pub path_type: String,
    pub backend: Option<Backend>,
}

/// A host with its routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoutes {
    /// Normalized host.
    pub host: String,
    /// True when ako generated the host for a rule without one.
    pub generated: bool,
    /// Index of the rule in `spec.rules`.
    pub rule: usize,
    pub routes: Vec<Route>,
}

/// A TLS block: hosts served with one Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsBlock {
    pub hosts: Vec<String>,
    pub secret: Option<String>,
}

/// What ako builds for one Ingress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressIntent {
    pub namespace: String,
    pub name: String,
    pub class: ClassRef,
    /// Valid hosts only: a host with a deny problem is left out.
    pub hosts: Vec<HostRoutes>,
    pub tls: Vec<TlsBlock>,
    pub default_backend: Option<Backend>,
}

impl IngressIntent {
    /// Backend Services referenced anywhere in the Ingress.
    pub fn backend_services(&self) -> impl Iterator<Item = &str> {
        self.hosts
            .iter()
            .flat_map(|h| h.routes.iter().filter_map(|r| r.backend.as_ref()))
            .chain(self.default_backend.iter())
            .map(|b| b.service.as_str())
    }
}

fn backend_of(b: &k8s_openapi::api::networking::v1::IngressBackend) -> Option<Backend> {
    let svc = b.service.as_ref()?;
    let port = match &svc.port {
        Some(p) => match (&p.number, &p.name) {
            (Some(n), _) => BackendPort::Number(*n),
            (None, Some(name)) => BackendPort::Name(name.clone()),
            (None, None) => BackendPort::Unset,
        },
        None => BackendPort::Unset,
    };
    Some(Backend {
        service: svc.name.clone(),
        port,
    })
}

/// The "host" under which an Ingress of only `spec.defaultBackend` is planned: `<namespace>/<name>/default-backend`.
/// The slashes keep it apart from every DNS name, so it is never published, matched or written as a hostname.
pub fn default_backend_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}/{DEFAULT_BACKEND_SUFFIX}")
}

const DEFAULT_BACKEND_SUFFIX: &str = "default-backend";

/// The Ingress (namespace, name) of a [`default_backend_key`]; `None` for a host.
pub fn default_backend_of(host: &str) -> Option<(&str, &str)> {
    let rest = host
        .strip_suffix(DEFAULT_BACKEND_SUFFIX)?
        .strip_suffix('/')?;
    rest.split_once('/')
}

/// The hostname to write into `status.loadBalancer.ingress[].hostname` for a host: none for a wildcard (the API
/// server refuses `*` there) or a default backend (it has no host); the address alone says where it is served.
pub fn status_hostname(host: &str) -> Option<&str> {
    (!host.starts_with('*') && default_backend_of(host).is_none()).then_some(host)
}

/// AKO's generated host for a rule without one: `<ingress>.<namespace>.<domain>`.
pub fn generated_ingress_host(name: &str, namespace: &str, domain: &str) -> String {
    format!("{name}.{namespace}.{domain}")
}

/// Size limits of one Ingress. Far above real use (the largest Ingresses seen in AKO and ingress-nginx
/// deployments carry a few hundred hosts, each with a handful of paths) and low enough that a hostile object
/// cannot make a review expensive. An object beyond any of them is denied before it is translated, with a
/// message naming the field, the count and the limit (README, "Admission rules").
pub mod limits {
    /// `spec.rules` entries.
    pub const MAX_RULES: usize = 2_000;
    /// `spec.rules[i].http.paths` entries of one rule.
    pub const MAX_PATHS_PER_RULE: usize = 1_000;
    /// Paths over all rules.
    pub const MAX_PATHS: usize = 10_000;
    /// `spec.tls` entries.
    pub const MAX_TLS: usize = 2_000;
    /// `spec.tls[].hosts` entries over all TLS entries.
    pub const MAX_TLS_HOSTS: usize = 5_000;
}

/// Checks an Ingress against [`limits`]; every limit exceeded is one deny problem. Costs one pass over the
/// rule and TLS lists (the path lists are counted, not read).
pub fn check_ingress_limits(ing: &Ingress) -> Vec<Problem> {
    use limits::*;
    let mut problems = Vec::new();
    let Some(spec) = ing.spec.as_ref() else {
        return problems;
    };
    let mut over = |field: String, what: &str, count: usize, limit: usize, per: &str| {
        if count > limit {
            problems.push(Problem::deny(
                &field,
                format!(
                    "{field} has {count} {what}; ako accepts at most {limit} per {per}; split it into several Ingresses"
                ),
            ));
        }
    };
    let rules = spec.rules.as_deref().unwrap_or_default();
    over(
        "spec.rules".into(),
        "rules",
        rules.len(),
        MAX_RULES,
        "Ingress",
    );
    let mut total_paths = 0usize;
    let mut first_long_rule = None;
    for (i, rule) in rules.iter().enumerate() {
        let n = rule.http.as_ref().map_or(0, |h| h.paths.len());
        total_paths += n;
        if n > MAX_PATHS_PER_RULE && first_long_rule.is_none() {
            first_long_rule = Some((i, n));
        }
    }
    if let Some((i, n)) = first_long_rule {
        over(
            format!("spec.rules[{i}].http.paths"),
            "paths",
            n,
            MAX_PATHS_PER_RULE,
            "rule",
        );
    }
    over(
        "spec.rules[*].http.paths".into(),
        "paths in all",
        total_paths,
        MAX_PATHS,
        "Ingress",
    );
    let tls = spec.tls.as_deref().unwrap_or_default();
    over("spec.tls".into(), "entries", tls.len(), MAX_TLS, "Ingress");
    let tls_hosts: usize = tls
        .iter()
        .map(|t| t.hosts.as_ref().map_or(0, Vec::len))
        .sum();
    over(
        "spec.tls[*].hosts".into(),
        "hosts in all",
        tls_hosts,
        MAX_TLS_HOSTS,
        "Ingress",
    );
    problems
}

/// Checks a host of ours. With delegated subdomains configured, the host must lie within one
/// ([`hosts::check_host`]). With none, AKO publishes no FQDN but still serves the host: the host only has to be
/// a valid DNS name, and the second value says that no DNS record will be published for it.
fn check_our_host(raw: &str, cfg: &Config) -> Result<(String, bool), hosts::HostError> {
    if cfg.dns_domains.is_empty() {
        let host = hosts::normalize(raw);
        return match hosts::validate_dns_name(&host) {
            Ok(()) => Ok((host, true)),
            Err(reason) => Err(hosts::HostError::Invalid { host, reason }),
        };
    }
    hosts::check_host(raw, &cfg.dns_domains).map(|h| (h, false))
}

/// The warning for a host served without a DNS record (no delegated subdomain configured).
fn no_dns_record(host: &str, field: &str) -> Problem {
    Problem::warn(
        field,
        format!("no DNS record for host {host:?} ({field}): no DNS subdomain is configured"),
    )
}

/// Converts an Ingress into what ako builds, with every problem found.
pub fn translate_ingress(ing: &Ingress, cfg: &Config) -> (IngressIntent, Vec<Problem>) {
    let namespace = ing.metadata.namespace.clone().unwrap_or_default();
    let name = ing.metadata.name.clone().unwrap_or_default();
    let mut problems = Vec::new();
    let mut hosts_out: Vec<HostRoutes> = Vec::new();
    // Hosts warned about having no DNS record, so each is named once.
    let mut unpublished: HashSet<String> = HashSet::new();
    let spec = ing.spec.as_ref();

    for (i, rule) in spec
        .and_then(|s| s.rules.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let routes: Vec<Route> = rule
            .http
            .as_ref()
            .map(|h| {
                h.paths
                    .iter()
                    .map(|p| Route {
                        path: p.path.clone().unwrap_or_else(|| "/".into()),
                        path_type: p.path_type.clone(),
                        backend: backend_of(&p.backend),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let (host, generated) = match rule.host.as_deref().filter(|h| !h.is_empty()) {
            Some(h) => match check_our_host(h, cfg) {
                Ok((h, no_record)) => {
                    if no_record && unpublished.insert(h.clone()) {
                        problems.push(no_dns_record(&h, &format!("spec.rules[{i}].host")));
                    }
                    (h, false)
                }
                Err(e) => {
                    let field = format!("spec.rules[{i}].host");
                    problems.push(Problem::deny(&field, e.describe(Some(&field))));
                    continue;
                }
            },
            None => {
                let Some(domain) = cfg.generated_name_domain() else {
                    problems.push(Problem::deny(
                        format!("spec.rules[{i}]"),
                        format!("spec.rules[{i}] has no host and no DNS subdomain is configured to generate <ingress>.<namespace>.<subdomain>; set a host"),
                    ));
                    continue;
                };
                let generated = generated_ingress_host(&name, &namespace, domain);
                if let Err(reason) = hosts::validate_dns_name(&generated) {
                    problems.push(Problem::deny(
                        format!("spec.rules[{i}]"),
                        format!("spec.rules[{i}] has no host and the generated host {generated:?} is not a valid DNS name ({reason}); set a host"),
                    ));
                    continue;
                }
                (generated, true)
            }
        };
        hosts_out.push(HostRoutes {
            host,
            generated,
            rule: i,
            routes,
        });
    }

    // One set of the rules' hosts, so each TLS host is checked in constant time.
    let rule_hosts: HashSet<&str> = hosts_out.iter().map(|r| r.host.as_str()).collect();
    let mut tls_out = Vec::new();
    for (i, tls) in spec
        .and_then(|s| s.tls.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let mut block = TlsBlock {
            hosts: Vec::new(),
            secret: tls.secret_name.clone().filter(|s| !s.is_empty()),
        };
        for (j, raw) in tls.hosts.iter().flatten().enumerate() {
            let field = format!("spec.tls[{i}].hosts[{j}]");
            match check_our_host(raw, cfg) {
                Ok((h, _)) => {
                    if !rule_hosts.contains(h.as_str()) {
                        problems.push(Problem::deny(
                            &field,
                            format!("TLS host {h:?} ({field}) does not appear in spec.rules; add a rule for it or remove it from spec.tls"),
                        ));
                        continue;
                    }
                    block.hosts.push(h);
                }
                Err(e) => problems.push(Problem::deny(&field, e.describe(Some(&field)))),
            }
        }
        tls_out.push(block);
    }

    let default_backend = spec
        .and_then(|s| s.default_backend.as_ref())
        .and_then(backend_of);
    let has_rules = spec
        .and_then(|s| s.rules.as_ref())
        .is_some_and(|r| !r.is_empty());
    match (&default_backend, has_rules) {
        // An Ingress of only a default backend gets a virtual service of its own: every request to its address
        // goes there, whatever the host (the Kubernetes contract). It is planned as one more "host", under a key
        // that can never be a DNS name.
        (Some(b), false) => hosts_out.push(HostRoutes {
            host: default_backend_key(&namespace, &name),
            generated: true,
            rule: 0,
            routes: vec![Route {
                path: "/".into(),
                path_type: "Prefix".into(),
                backend: Some(b.clone()),
            }],
        }),
        (Some(_), true) => problems.push(Problem::warn(
            "spec.defaultBackend",
            "spec.defaultBackend is served only for an Ingress without rules (on an address of its own); a \
             request to this Ingress's hosts that matches none of its paths gets 404. Move it into a rule \
             (path / with pathType Prefix) to serve it on these hosts",
        )),
        (None, false) if spec.and_then(|s| s.default_backend.as_ref()).is_some() => problems.push(Problem::warn(
            "spec.defaultBackend",
            "spec.defaultBackend is not a Service; ako routes only to Services, so this Ingress serves nothing",
        )),
        (None, false) if problems.is_empty() => problems.push(Problem::warn(
            "spec",
            "the Ingress has no rules and no defaultBackend: there is nothing to serve",
        )),
        (None, _) => {}
    }
    let intent = IngressIntent {
        namespace,
        name,
        class: classify(ing),
        hosts: hosts_out,
        tls: tls_out,
        default_backend,
    };
    (intent, problems)
}

/// Where an L4 FQDN came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FqdnSource {
    ExternalDnsAnnotation,
    Auto,
}

/// What ako builds for one `type: LoadBalancer` Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceIntent {
    pub namespace: String,
    pub name: String,
    pub fqdns: Vec<String>,
    pub fqdn_source: FqdnSource,
    /// Preferred VIP from `spec.loadBalancerIP` or `ako.vmware.com/load-balancer-ip`.
    pub requested_ip: Option<IpAddr>,
    /// `ako.vmware.com/enable-shared-vip`: Services with the same key share one VIP.
    pub shared_vip: Option<String>,
}

/// Whether a Service is a LoadBalancer Service that ako handles.
pub fn service_is_ours(svc: &Service, cfg: &Config) -> bool {
    let Some(spec) = svc.spec.as_ref() else {
        return false;
    };
    if spec.type_.as_deref() != Some("LoadBalancer") {
        return false;
    }
    match spec.load_balancer_class.as_deref() {
        None => cfg.default_lb_controller,
        Some(c) => c == config::LB_CLASS,
    }
}

/// AKO's autoFQDN for a Service, if the mode produces one, with AKO's fix-ups so that the name is the one AKO
/// published: a name or namespace that is not an RFC 1035 label (a namespace may start with a digit) gets the
/// prefix `s` or `n` when that makes it one; in flat mode `<name>-<namespace>` is shortened to 63 characters
/// ([`shorten_flat_label`]).
pub fn auto_fqdn(name: &str, namespace: &str, domain: &str, mode: AutoFqdn) -> Option<String> {
    let name = rfc1035_fixed(name, "s");
    let namespace = rfc1035_fixed(namespace, "n");
    match mode {
        AutoFqdn::Default => Some(format!("{name}.{namespace}.{domain}")),
        AutoFqdn::Flat => {
            let (name, namespace) = shorten_flat_label(&name, &namespace);
            Some(format!("{name}-{namespace}.{domain}"))
        }
        AutoFqdn::Disabled => None,
    }
}

/// Whether `label` is an RFC 1035 label: `^[a-z]([-a-z0-9]*[a-z0-9])?$`, at most 63 characters.
fn is_rfc1035_label(label: &str) -> bool {
    let b = label.as_bytes();
    !b.is_empty()
        && b.len() <= hosts::MAX_LABEL
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[b.len() - 1] != b'-'
}

/// AKO's fix of a label that is not RFC 1035: `prefix` in front when that makes it one, else as it is.
fn rfc1035_fixed(label: &str, prefix: &str) -> String {
    if is_rfc1035_label(label) {
        return label.to_string();
    }
    let prefixed = format!("{prefix}{label}");
    if is_rfc1035_label(&prefixed) {
        prefixed
    } else {
        label.to_string()
    }
}

/// AKO's shortening of a flat autoFQDN label `<name>-<namespace>` to 63 characters: the name is cut to what the
/// namespace leaves; a namespace too long to leave any room is cut first (to what the name leaves, or to 48
/// characters when the name is as long), without trailing hyphens.
pub fn shorten_flat_label(name: &str, namespace: &str) -> (String, String) {
    const MAX: usize = hosts::MAX_LABEL;
    let (mut name, mut namespace) = (name.to_string(), namespace.to_string());
    if name.len() + namespace.len() < MAX {
        return (name, namespace);
    }
    if MAX <= namespace.len() + 1 {
        let keep = MAX
            .checked_sub(name.len() + 1)
            .filter(|k| *k > 0)
            .unwrap_or(48);
        namespace.truncate(keep.min(namespace.len()));
        while namespace.ends_with('-') {
            namespace.pop();
        }
    }
    let room = MAX.saturating_sub(namespace.len() + 1);
    name.truncate(room.min(name.len()));
    (name, namespace)
}

/// Converts a LoadBalancer Service into what ako builds, with every problem found.
pub fn translate_service(svc: &Service, cfg: &Config) -> (ServiceIntent, Vec<Problem>) {
    let namespace = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let annotations = svc.metadata.annotations.as_ref();
    let mut problems = Vec::new();
    let mut fqdns = Vec::new();
    let mut fqdn_source = FqdnSource::Auto;

    if let Some(list) = annotations.and_then(|a| a.get(config::EXTERNAL_DNS_HOSTNAME)) {
        fqdn_source = FqdnSource::ExternalDnsAnnotation;
        let field = format!("metadata.annotations[{}]", config::EXTERNAL_DNS_HOSTNAME);
        let mut seen: HashSet<String> = HashSet::new();
        for raw in list.split(',').map(str::trim).filter(|h| !h.is_empty()) {
            match check_our_host(raw, cfg) {
                // Without a delegated subdomain nothing is published for a Service: say so.
                Ok((h, true)) if seen.insert(h.clone()) => {
                    problems.push(no_dns_record(&h, "external-dns hostname"))
                }
                Ok((h, false)) if seen.insert(h.clone()) => fqdns.push(h),
                Ok(_) => {}
                Err(e) => problems.push(Problem::deny(&field, e.describe(Some(&field)))),
            }
        }
    } else if cfg.auto_fqdn != AutoFqdn::Disabled {
        match cfg.generated_name_domain() {
            None => problems.push(Problem::warn(
                "",
                "no FQDN will be published: no DNS subdomain is configured",
            )),
            Some(domain) => {
                if let Some(fqdn) = auto_fqdn(&name, &namespace, domain, cfg.auto_fqdn) {
                    match hosts::validate_dns_name(&fqdn) {
                        Ok(()) => fqdns.push(fqdn),
                        Err(reason) => problems.push(Problem::warn(
                            "metadata.name",
                            format!("no FQDN will be published: autoFQDN name {fqdn:?} is not valid ({reason})"),
                        )),
                    }
                }
            }
        }
    }

    let spec_ip = svc
        .spec
        .as_ref()
        .and_then(|s| s.load_balancer_ip.as_deref())
        .filter(|s| !s.is_empty());
    let ann_ip = annotations
        .and_then(|a| a.get(config::LB_IP_ANNOTATION))
        .map(String::as_str)
        .filter(|s| !s.is_empty());
    let parse_ip =
        |raw: &str, field: &str, problems: &mut Vec<Problem>| match raw.trim().parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                problems.push(Problem::deny(
                    field,
                    format!("{raw:?} ({field}) is not an IP address"),
                ));
                None
            }
        };
    let spec_parsed = spec_ip.and_then(|r| parse_ip(r, "spec.loadBalancerIP", &mut problems));
    let ann_field = format!("metadata.annotations[{}]", config::LB_IP_ANNOTATION);
    let ann_parsed = ann_ip.and_then(|r| parse_ip(r, &ann_field, &mut problems));
    let requested_ip = match (spec_parsed, ann_parsed) {
        (Some(a), Some(b)) if a != b => {
            problems.push(Problem::deny(
                "spec.loadBalancerIP",
                format!(
                    "spec.loadBalancerIP {a} and annotation {} {b} disagree; set only one",
                    config::LB_IP_ANNOTATION
                ),
            ));
            None
        }
        (a, b) => a.or(b),
    };
    if let Some(ip) = requested_ip {
        let cidrs: Vec<ipnet::IpNet> = cfg
            .vip_networks
            .iter()
            .flat_map(|n| n.cidr.iter().chain(n.v6cidr.iter()))
            .copied()
            .collect();
        if !cidrs.is_empty() && !cidrs.iter().any(|c| c.contains(&ip)) {
            let list: Vec<String> = cidrs.iter().map(ToString::to_string).collect();
            let field = if spec_parsed.is_some() {
                "spec.loadBalancerIP".to_string()
            } else {
                ann_field
            };
            problems.push(Problem::deny(
                &field,
                format!("requested VIP {ip} ({field}) is outside the VIP networks [{}]; pick an address inside them", list.join(", ")),
            ));
        }
    }

    let shared_vip = annotations
        .and_then(|a| a.get(config::SHARED_VIP_ANNOTATION))
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty());
    (
        ServiceIntent {
            namespace,
            name,
            fqdns,
            fqdn_source,
            requested_ip,
            shared_vip,
        },
        problems,
    )
}

#[cfg(test)]
mod tests;
