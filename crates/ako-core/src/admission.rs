//! The admission decision: a pure function of the request, the configuration and the index snapshot.
//!
//! ```text
//! AdmissionRequest ─► subject (Ingress | Service | other) ─► in scope? ── no ──► allow untouched
//!                                                                │ yes
//!                      Mutate: minimal JSON patch ◄──────────────┤
//!                      Validate: intent problems + cross-object checks (index) ─► allow / deny + warnings
//! ```
//! Mutation never denies (its webhook uses failurePolicy Ignore; the validator re-checks everything).

use std::collections::{HashMap, HashSet};

use json_patch::{AddOperation, Patch, PatchOperation, RemoveOperation};
use jsonptr::PointerBuf;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube_core::admission::Operation;

use crate::config::{self, Config, FqdnReusePolicy};
use crate::crd::Lookup;
use crate::index::{self, IngressClaims, ObjKey, Snapshot, VipClaim};
use crate::intent::{self, ClassRef, Problem, Severity};
use crate::ownership::{self, Claim, Order, Verdict};

/// Which webhook is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Validate,
    Mutate,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Validate => "validate",
            Mode::Mutate => "mutate",
        }
    }
}

/// The kind of object under review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Ingress,
    Service,
    Rule(crate::crd::RuleKind),
    Other,
}

impl Subject {
    pub fn as_str(self) -> &'static str {
        match self {
            Subject::Ingress => "Ingress",
            Subject::Service => "Service",
            Subject::Rule(k) => k.kind(),
            Subject::Other => "other",
        }
    }
}

/// Kubernetes asks warnings to stay within 120 characters.
pub const MAX_WARNING: usize = 120;
/// Most reasons in one denial; the last says how many more there were (kubectl prints them all on one line).
pub const MAX_REASONS: usize = 20;
/// Most warnings in one answer; the last says how many more there were.
pub const MAX_WARNINGS: usize = 20;

/// The outcome of one review.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    /// Whether ako handles this object (otherwise it was allowed untouched).
    pub in_scope: bool,
    pub reasons: Vec<String>,
    pub warnings: Vec<String>,
    pub patch: Vec<PatchOperation>,
    /// One line per patch operation, for the audit log.
    pub patch_summary: Vec<String>,
}

impl Decision {
    fn allow() -> Self {
        Self {
            allowed: true,
            ..Self::default()
        }
    }

    fn warn(&mut self, w: String) {
        self.warnings.push(shorten(w));
    }

    /// Sets `allowed` from the reasons, and keeps the answer readable and small however many problems a hostile
    /// object has: at most [`MAX_REASONS`] reasons and [`MAX_WARNINGS`] warnings, the last one saying how many
    /// more there were.
    fn finish(&mut self) {
        self.allowed = self.reasons.is_empty();
        if self.reasons.len() > MAX_REASONS {
            let more = self.reasons.len() - (MAX_REASONS - 1);
            self.reasons.truncate(MAX_REASONS - 1);
            self.reasons
                .push(format!("and {more} more problems of the same kind"));
        }
        if self.warnings.len() > MAX_WARNINGS {
            let more = self.warnings.len() - (MAX_WARNINGS - 1);
            self.warnings.truncate(MAX_WARNINGS - 1);
            self.warnings.push(format!("and {more} more warnings"));
        }
    }

    /// An answer for the mutating webhook when the object cannot be read: allowed unpatched, since mutation never
    /// denies (its webhook fails open and the validator reads the object again and denies, saying why).
    pub fn unreadable_for_mutation() -> Self {
        Self {
            in_scope: true,
            ..Self::allow()
        }
    }

    /// A denial for a request whose object cannot be read; the reason tells the user what is wrong with it.
    pub fn unreadable(e: &ReviewError) -> Self {
        Self {
            allowed: false,
            in_scope: true,
            reasons: vec![e.to_string()],
            ..Self::default()
        }
    }

    /// One word for logs, metrics and audit annotations: denied, not-ours, mutated or allowed.
    pub fn result(&self) -> &'static str {
        match (self.allowed, self.in_scope, self.patch.is_empty()) {
            (false, _, _) => "denied",
            (true, false, _) => "not-ours",
            (true, true, false) => "mutated",
            (true, true, true) => "allowed",
        }
    }

    /// The message kubectl shows on denial.
    pub fn message(&self) -> String {
        self.reasons.join("; ")
    }

    /// The admission.k8s.io/v1 AdmissionReview answering the request with this uid, as JSON.
    ///
    /// Denials carry a Failure status with code 403 (kubectl prints its message); mutations a base64 JSON patch;
    /// every answer carries `auditAnnotations` (decision, and the reasons or mutations) for the API server's
    /// audit log.
    pub fn review_json(&self, uid: &str) -> Vec<u8> {
        let message = (!self.allowed).then(|| self.message());
        let patch = if self.allowed && !self.patch.is_empty() {
            match serde_json::to_vec(&Patch(self.patch.clone())) {
                Ok(bytes) => Some(base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    bytes,
                )),
                Err(e) => {
                    tracing::error!(error = %e, "could not serialize a JSON patch; allowing without it");
                    None
                }
            }
        } else {
            None
        };
        let mutations = patch.as_ref().map(|_| self.patch_summary.join("; "));
        let review = wire::Review {
            api_version: "admission.k8s.io/v1",
            kind: "AdmissionReview",
            response: wire::Response {
                uid,
                allowed: self.allowed,
                status: message.as_deref().map(|message| wire::Status {
                    metadata: wire::Empty {},
                    status: "Failure",
                    message,
                    reason: "Forbidden",
                    code: 403,
                }),
                patch_type: patch.as_ref().map(|_| "JSONPatch"),
                patch: patch.as_deref(),
                audit_annotations: wire::AuditAnnotations {
                    decision: self.result(),
                    reasons: message.as_deref(),
                    mutations: mutations.as_deref(),
                },
                warnings: (!self.warnings.is_empty()).then_some(self.warnings.as_slice()),
            },
        };
        // Serializing these plain borrowed fields cannot fail; an empty body would be a 200 the API server rejects.
        serde_json::to_vec(&review).unwrap_or_default()
    }
}

/// The response half of admission.k8s.io/v1 on the wire.
mod wire {
    use serde::Serialize;

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Review<'a> {
        pub api_version: &'static str,
        pub kind: &'static str,
        pub response: Response<'a>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Response<'a> {
        pub uid: &'a str,
        pub allowed: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub status: Option<Status<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub patch_type: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub patch: Option<&'a str>,
        pub audit_annotations: AuditAnnotations<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub warnings: Option<&'a [String]>,
    }

    #[derive(Serialize)]
    pub struct Empty {}

    #[derive(Serialize)]
    pub struct Status<'a> {
        pub metadata: Empty,
        pub status: &'static str,
        pub message: &'a str,
        pub reason: &'static str,
        pub code: u16,
    }

    #[derive(Serialize)]
    pub struct AuditAnnotations<'a> {
        pub decision: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub reasons: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub mutations: Option<&'a str>,
    }
}

/// Cuts a warning to [`MAX_WARNING`] characters on a char boundary.
pub fn shorten(mut w: String) -> String {
    if w.chars().count() > MAX_WARNING {
        let cut: String = w.chars().take(MAX_WARNING - 1).collect();
        w = cut + "…";
    }
    w
}

/// Why a request could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("the {kind} in the request cannot be read: {source}")]
    Object {
        kind: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl Subject {
    /// The subject of an object of this API group and kind.
    pub fn of(group: &str, kind: &str) -> Subject {
        match (group, kind) {
            ("networking.k8s.io", "Ingress") => Subject::Ingress,
            ("", "Service") => Subject::Service,
            (g, k) => crate::crd::RuleKind::of(g, k).map_or(Subject::Other, Subject::Rule),
        }
    }
}

/// What a decision needs of the request besides the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewMeta {
    pub operation: Operation,
    pub subject: Subject,
}

/// The object under review, already typed. The namespace of the request is filled in when the object has none.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    Ingress(Box<Ingress>),
    Service(Box<Service>),
    /// A HostRule or an HTTPRule.
    Rule(Box<RuleReview>),
    /// A kind ako does not handle.
    Other,
    /// No object in the request.
    None,
}

impl Object {
    /// The object may arrive without namespace on CREATE; the request carries it.
    pub fn fill_namespace(mut self, request_namespace: Option<&str>) -> Object {
        let meta = match &mut self {
            Object::Ingress(i) => &mut i.metadata,
            Object::Service(s) => &mut s.metadata,
            Object::Rule(r) => {
                if r.key.namespace.is_empty() {
                    r.key.namespace = request_namespace.unwrap_or_default().to_string();
                }
                return self;
            }
            Object::Other | Object::None => return self,
        };
        if meta.namespace.is_none() {
            meta.namespace = request_namespace.map(str::to_string);
        }
        self
    }
}

/// Decides one admission request (the controller's names unknown: see [`decide_with`]).
pub fn decide(
    meta: &ReviewMeta,
    object: Object,
    mode: Mode,
    cfg: &Config,
    snap: &Snapshot,
) -> Decision {
    decide_with(meta, object, mode, cfg, snap, &|_: &str, _: &str| {
        Lookup::Unknown
    })
}

/// Decides one admission request, asking `names` whether the controller has the objects a rule names.
pub fn decide_with(
    meta: &ReviewMeta,
    object: Object,
    mode: Mode,
    cfg: &Config,
    snap: &Snapshot,
    names: &dyn crate::crd::ControllerView,
) -> Decision {
    if !matches!(meta.operation, Operation::Create | Operation::Update) {
        return Decision::allow();
    }
    match (object, mode) {
        (Object::Rule(r), Mode::Validate) => validate_rule(&r, cfg, snap, names),
        (Object::Rule(_), Mode::Mutate) => Decision::allow(),
        (Object::Ingress(ing), Mode::Mutate) => mutate_ingress(&ing, cfg, snap),
        (Object::Ingress(ing), Mode::Validate) => validate_ingress(&ing, cfg, snap),
        (Object::Service(svc), Mode::Mutate) => {
            mutate_service(&svc, meta.operation == Operation::Create, cfg)
        }
        (Object::Service(svc), Mode::Validate) => validate_service(&svc, cfg, snap),
        (Object::Other | Object::None, _) => Decision::allow(),
    }
}

fn pointer(tokens: &[&str]) -> PointerBuf {
    PointerBuf::from_tokens(tokens.iter().copied())
}

/// Legacy annotation `kubernetes.io/ingress.class: avi` -> `spec.ingressClassName: avi-lb`, annotation removed
/// (Kubernetes rejects both at once).
pub fn mutate_ingress(ing: &Ingress, cfg: &Config, snap: &Snapshot) -> Decision {
    let class = intent::classify(ing);
    let mut d = Decision {
        in_scope: snap.classes.is_ours(&class, cfg),
        ..Decision::allow()
    };
    if let ClassRef::Legacy(v) = &class
        && *v == cfg.legacy_class_value
    {
        let name = serde_json::Value::String(cfg.ingress_class_name.clone());
        if ing.spec.is_some() {
            d.patch.push(PatchOperation::Add(AddOperation {
                path: pointer(&["spec", "ingressClassName"]),
                value: name,
            }));
        } else {
            let spec = serde_json::json!({ "ingressClassName": cfg.ingress_class_name });
            d.patch.push(PatchOperation::Add(AddOperation {
                path: pointer(&["spec"]),
                value: spec,
            }));
        }
        d.patch.push(PatchOperation::Remove(RemoveOperation {
            path: pointer(&["metadata", "annotations", config::LEGACY_CLASS_ANNOTATION]),
        }));
        d.patch_summary.push(format!(
            "{}: {v} -> spec.ingressClassName: {} (annotation removed)",
            config::LEGACY_CLASS_ANNOTATION,
            cfg.ingress_class_name
        ));
    }
    d
}

/// A new LoadBalancer Service with no class, while ako is the default LB controller, gets
/// `spec.loadBalancerClass: ako.vmware.com/avi-lb`. (API servers before 1.21 drop the field.)
pub fn mutate_service(svc: &Service, create: bool, cfg: &Config) -> Decision {
    let in_scope = intent::service_is_ours(svc, cfg);
    let mut d = Decision {
        in_scope,
        ..Decision::allow()
    };
    let unset = svc
        .spec
        .as_ref()
        .is_some_and(|s| s.load_balancer_class.is_none());
    if in_scope && create && unset {
        d.patch.push(PatchOperation::Add(AddOperation {
            path: pointer(&["spec", "loadBalancerClass"]),
            value: serde_json::Value::String(config::LB_CLASS.into()),
        }));
        d.patch_summary
            .push(format!("spec.loadBalancerClass: {}", config::LB_CLASS));
    }
    d
}

fn apply_problems(d: &mut Decision, problems: Vec<Problem>) {
    for p in problems {
        match p.severity {
            Severity::Deny => d.reasons.push(p.message),
            Severity::Warn => d.warn(p.message),
        }
    }
}

/// All rules for an Ingress of ours: size limits, hosts, TLS, ownership, duplicate paths, references.
///
/// The cost is linear in the size of the Ingress (plus the index's claims on the same hosts): an object beyond
/// [`intent::limits`] is denied before it is translated, repeated hosts are grouped, and paths, TLS hosts and
/// backends are looked up in hash sets rather than rescanned per element.
pub fn validate_ingress(ing: &Ingress, cfg: &Config, snap: &Snapshot) -> Decision {
    let class = intent::classify(ing);
    if !snap.classes.is_ours(&class, cfg) {
        return Decision::allow();
    }
    let mut d = Decision {
        in_scope: true,
        ..Decision::allow()
    };
    if not_ready(&mut d, cfg) {
        return d;
    }
    let too_big = intent::check_ingress_limits(ing);
    if !too_big.is_empty() {
        apply_problems(&mut d, too_big);
        d.finish();
        return d;
    }
    let (intent, problems) = intent::translate_ingress(ing, cfg);
    apply_problems(&mut d, problems);

    let my_order = Order::new(
        index::created(&ing.metadata),
        &intent.namespace,
        &intent.name,
    );
    let is_me = |k: &ObjKey| k.namespace == intent.namespace && k.name == intent.name;
    // Rules naming the same host are checked together, once per host; the first rule names the field.
    let mut groups: Vec<(&intent::HostRoutes, Vec<&intent::Route>)> = Vec::new();
    let mut group_of: HashMap<&str, usize> = HashMap::with_capacity(intent.hosts.len());
    for hr in &intent.hosts {
        let at = *group_of.entry(hr.host.as_str()).or_insert_with(|| {
            groups.push((hr, Vec::new()));
            groups.len() - 1
        });
        groups[at].1.extend(hr.routes.iter());
    }
    for (hr, routes) in &groups {
        let field = if hr.generated {
            format!("spec.rules[{}] (generated host)", hr.rule)
        } else {
            format!("spec.rules[{}].host", hr.rule)
        };
        let others: Vec<&IngressClaims> = snap
            .claims_for_host(&hr.host)
            .iter()
            .filter(|c| !is_me(&c.key) && snap.classes.is_ours(&c.class, cfg))
            .map(|c| &**c)
            .collect();
        // Every path the older claims route on this host, with the oldest claim routing it.
        let mut taken: HashMap<(&str, &str), &IngressClaims> = HashMap::new();
        for other in others.iter().copied().filter(|o| o.order() < my_order) {
            for p in other.paths_for(&hr.host) {
                taken
                    .entry((p.path.as_str(), p.path_type.as_str()))
                    .and_modify(|o| {
                        if other.order() < o.order() {
                            *o = other
                        }
                    })
                    .or_insert(other);
            }
        }
        if !taken.is_empty() {
            let mut reported: HashSet<(&str, &str)> = HashSet::new();
            for route in routes {
                let key = (route.path.as_str(), route.path_type.as_str());
                if let Some(other) = taken.get(&key)
                    && reported.insert(key)
                {
                    d.reasons.push(format!(
                        "host {:?} path {:?} ({}) ({field}) is already routed by Ingress {}; one path cannot go to two backends, change the path or edit that Ingress",
                        hr.host, route.path, route.path_type, other.key
                    ));
                }
            }
        }
        let other_namespaces = others
            .iter()
            .copied()
            .filter(|o| o.key.namespace != intent.namespace);
        match (cfg.fqdn_reuse_policy, ownership::verdict(my_order, other_namespaces)) {
            (FqdnReusePolicy::Strict, Verdict::Taken(o)) => d.reasons.push(format!(
                "host {:?} ({field}) belongs to namespace {:?} (Ingress {}, the oldest claim); fqdnReusePolicy Strict lets only one namespace use a host",
                hr.host, o.key.namespace, o.key
            )),
            (FqdnReusePolicy::InterNamespaceAllowed, v) => {
                if let Some(o) = v.other() {
                    d.warn(format!("host {} is also used by Ingress {} in another namespace", hr.host, o.key))
                }
            }
            _ => {}
        }
    }

    let mut secrets_seen: HashSet<&str> = HashSet::new();
    for tls in &intent.tls {
        if let Some(secret) = &tls.secret
            && secrets_seen.insert(secret.as_str())
            && snap.secret_exists(&ObjKey::new(&intent.namespace, secret)) == Some(false)
        {
            d.warn(format!(
                "TLS Secret {secret:?} not found in {:?}; its hosts get no TLS until it exists",
                intent.namespace
            ));
        }
    }
    let mut seen: HashSet<&str> = HashSet::new();
    for svc in intent.backend_services() {
        if !seen.insert(svc) {
            continue;
        }
        if snap.service_exists(&ObjKey::new(&intent.namespace, svc)) == Some(false) {
            d.warn(format!("backend Service {svc:?} not found in {:?}; its paths get no servers until it exists", intent.namespace));
        }
    }
    d.finish();
    d
}

/// All rules for a LoadBalancer Service of ours: FQDNs and the requested VIP.
pub fn validate_service(svc: &Service, cfg: &Config, snap: &Snapshot) -> Decision {
    if !intent::service_is_ours(svc, cfg) {
        return Decision::allow();
    }
    let mut d = Decision {
        in_scope: true,
        ..Decision::allow()
    };
    if not_ready(&mut d, cfg) {
        return d;
    }
    let (intent, problems) = intent::translate_service(svc, cfg);
    apply_problems(&mut d, problems);
    if let Some(me) = VipClaim::from_intent(&intent, index::created(&svc.metadata)) {
        check_vip(&mut d, &me, snap);
    }
    d.finish();
    d
}

/// Denies an object of ako's while the delegated subdomains are not known yet (the DNS profile is still to be
/// read): admitting it would let any host through. Returns whether it did.
fn not_ready(d: &mut Decision, cfg: &Config) -> bool {
    if !cfg.domains_pending {
        return false;
    }
    d.reasons.push(
        "ako is not ready yet: the delegated DNS subdomains are still being read from the Avi controller's DNS \
         profile, and hosts cannot be checked without them; try again in a few seconds (if this lasts, see \
         ako's Events: the controller may be unreachable), or set dnsDomains to skip the lookup"
            .to_string(),
    );
    d.finish();
    true
}

/// One VIP cannot front two Services unless they share it under the same `ako.vmware.com/enable-shared-vip`
/// key. The oldest Service asking for an address keeps it (oldest creationTimestamp, then namespace/name).
fn check_vip(d: &mut Decision, me: &VipClaim, snap: &Snapshot) {
    let others = snap
        .vip_claims(&me.ip)
        .iter()
        .filter(|o| !me.compatible_with(o));
    match ownership::verdict(me.order(), others) {
        Verdict::Taken(owner) => d.reasons.push(format!(
            "VIP {} is already requested by Service {}; request another address, or set annotation {} to the same key on both Services to share it",
            me.ip,
            owner.key,
            config::SHARED_VIP_ANNOTATION
        )),
        Verdict::Held(newer) => d.warn(format!(
            "VIP {} is also requested by Service {}, which will not get it",
            me.ip, newer.key
        )),
        Verdict::Free => {}
    }
}

mod rules;
pub use rules::{RuleReview, validate_rule};

#[cfg(test)]
mod tests;
