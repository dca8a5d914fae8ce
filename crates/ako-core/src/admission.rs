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
    Other,
}

impl Subject {
    pub fn as_str(self) -> &'static str {
        match self {
            Subject::Ingress => "Ingress",
            Subject::Service => "Service",
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
            _ => Subject::Other,
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
            Object::Other | Object::None => return self,
        };
        if meta.namespace.is_none() {
            meta.namespace = request_namespace.map(str::to_string);
        }
        self
    }
}

/// Decides one admission request.
pub fn decide(
    meta: &ReviewMeta,
    object: Object,
    mode: Mode,
    cfg: &Config,
    snap: &Snapshot,
) -> Decision {
    if !matches!(meta.operation, Operation::Create | Operation::Update) {
        return Decision::allow();
    }
    match (object, mode) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::ClassInfo;

    fn cfg() -> Config {
        Config {
            dns_domains: vec!["avi.jarvis.lab".into()],
            ..Config::default()
        }
    }

    fn ingress(yaml: &str) -> Ingress {
        serde_yaml_ng::from_str(yaml).expect("ingress yaml")
    }

    fn ing(ns: &str, name: &str, created: Option<&str>, host: &str, path: &str) -> Ingress {
        let ts = created
            .map(|t| format!(", creationTimestamp: '{t}'"))
            .unwrap_or_default();
        ingress(&format!(
            "metadata: {{name: {name}, namespace: {ns}{ts}}}\nspec:\n  ingressClassName: avi-lb\n  rules:\n  - host: {host}\n    http: {{paths: [{{path: '{path}', pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}]}}"
        ))
    }

    fn snapshot_with(c: &Config, existing: &[Ingress]) -> Snapshot {
        let mut s = Snapshot::default();
        for i in existing {
            s.upsert_ingress(IngressClaims::of(i, c));
        }
        s
    }

    #[test]
    fn review_json_speaks_admission_v1_for_each_outcome() {
        // The real API server reading these answers is covered by tests/e2e_webhook.rs.
        use base64::Engine;
        let patch = vec![PatchOperation::Add(AddOperation {
            path: pointer(&["spec", "ingressClassName"]),
            value: serde_json::json!("avi-lb"),
        })];
        let cases = [
            ("not-ours", Decision::allow(), false, false),
            (
                "allowed",
                Decision {
                    in_scope: true,
                    ..Decision::allow()
                },
                false,
                false,
            ),
            (
                "denied",
                Decision {
                    allowed: false,
                    in_scope: true,
                    reasons: vec!["host \"a\" is outside".into(), "second".into()],
                    ..Decision::default()
                },
                true,
                false,
            ),
            (
                "mutated",
                Decision {
                    allowed: true,
                    in_scope: true,
                    patch,
                    patch_summary: vec!["spec.ingressClassName: avi-lb".into()],
                    warnings: vec!["backend web not found".into()],
                    ..Decision::default()
                },
                false,
                true,
            ),
        ];
        for (want, d, denied, patched) in cases {
            let bytes = d.review_json("uid-1");
            let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
            let r = &v["response"];
            assert_eq!(v["apiVersion"], "admission.k8s.io/v1", "{want}");
            assert_eq!(v["kind"], "AdmissionReview", "{want}");
            assert_eq!(r["uid"], "uid-1", "{want}");
            assert_eq!(r["allowed"], !denied, "{want}");
            assert_eq!(r["auditAnnotations"]["decision"], want);
            if denied {
                assert_eq!(r["status"]["code"], 403);
                assert_eq!(r["status"]["reason"], "Forbidden");
                assert_eq!(r["status"]["message"], "host \"a\" is outside; second");
                assert_eq!(r["auditAnnotations"]["reasons"], r["status"]["message"]);
            } else {
                assert!(r.get("status").is_none(), "{want}: {r}");
            }
            if patched {
                assert_eq!(r["patchType"], "JSONPatch");
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(r["patch"].as_str().expect("base64 string"))
                    .expect("base64");
                let ops: serde_json::Value = serde_json::from_slice(&raw).expect("patch");
                assert_eq!(
                    ops,
                    serde_json::json!([{"op": "add", "path": "/spec/ingressClassName", "value": "avi-lb"}])
                );
                assert_eq!(
                    r["auditAnnotations"]["mutations"],
                    "spec.ingressClassName: avi-lb"
                );
                assert_eq!(r["warnings"], serde_json::json!(["backend web not found"]));
            } else {
                assert!(
                    r.get("patch").is_none() && r.get("patchType").is_none(),
                    "{want}"
                );
            }
        }
    }

    #[test]
    fn ownership_and_duplicate_table() {
        let owner = ing(
            "team-a",
            "shop",
            Some("2026-01-01T00:00:00Z"),
            "shop.avi.jarvis.lab",
            "/",
        );
        let strict = Config {
            fqdn_reuse_policy: FqdnReusePolicy::Strict,
            ..cfg()
        };
        struct Case {
            name: &'static str,
            cfg: Config,
            candidate: Ingress,
            allowed: bool,
            reason: &'static str,
            warning: &'static str,
        }
        let cases = vec![
            Case {
                name: "strict: other namespace, other path is a hijack",
                cfg: strict.clone(),
                candidate: ing("team-b", "steal", None, "shop.avi.jarvis.lab", "/b"),
                allowed: false,
                reason: "belongs to namespace \"team-a\" (Ingress team-a/shop",
                warning: "",
            },
            Case {
                name: "inter-namespace allowed: warn only",
                cfg: cfg(),
                candidate: ing("team-b", "share", None, "shop.avi.jarvis.lab", "/b"),
                allowed: true,
                reason: "",
                warning: "also used by Ingress team-a/shop",
            },
            Case {
                name: "same host+path+type in the same namespace is denied",
                cfg: cfg(),
                candidate: ing("team-a", "dup", None, "shop.avi.jarvis.lab", "/"),
                allowed: false,
                reason: "already routed by Ingress team-a/shop",
                warning: "",
            },
            Case {
                name: "same namespace, different path is fine",
                cfg: strict.clone(),
                candidate: ing("team-a", "more", None, "shop.avi.jarvis.lab", "/api"),
                allowed: true,
                reason: "",
                warning: "",
            },
            Case {
                name: "the owner itself may be updated",
                cfg: strict.clone(),
                candidate: owner.clone(),
                allowed: true,
                reason: "",
                warning: "",
            },
            Case {
                name: "hosts are compared normalized",
                cfg: strict.clone(),
                candidate: ing("team-b", "steal", None, "SHOP.avi.jarvis.lab.", "/x"),
                allowed: false,
                reason: "belongs to namespace",
                warning: "",
            },
            Case {
                name: "an older object is not denied by a newer claim",
                cfg: strict,
                candidate: ing(
                    "team-b",
                    "old",
                    Some("2025-01-01T00:00:00Z"),
                    "shop.avi.jarvis.lab",
                    "/",
                ),
                allowed: true,
                reason: "",
                warning: "",
            },
        ];
        for c in cases {
            let snap = snapshot_with(&c.cfg, std::slice::from_ref(&owner));
            let d = validate_ingress(&c.candidate, &c.cfg, &snap);
            assert_eq!(d.allowed, c.allowed, "{}: {:?}", c.name, d);
            if !c.reason.is_empty() {
                assert!(
                    d.message().contains(c.reason),
                    "{}: {}",
                    c.name,
                    d.message()
                );
            }
            if !c.warning.is_empty() {
                assert!(
                    d.warnings.iter().any(|w| w.contains(c.warning)),
                    "{}: {:?}",
                    c.name,
                    d.warnings
                );
            }
            assert!(
                d.warnings.iter().all(|w| w.chars().count() <= MAX_WARNING),
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn until_the_subdomains_are_known_ako_objects_are_denied_as_not_ready_and_others_pass() {
        let pending = Config {
            dns_domains: Vec::new(),
            domains_pending: true,
            ..cfg()
        };
        let mine = ing("shop", "web", None, "anything.example.com", "/");
        let d = validate_ingress(&mine, &pending, &Snapshot::default());
        assert!(!d.allowed);
        assert!(d.reasons[0].contains("not ready"), "{:?}", d.reasons);
        let lb: Service = serde_yaml_ng::from_str(
            "metadata: {name: lb, namespace: shop}\nspec: {type: LoadBalancer}",
        )
        .expect("service");
        assert!(!validate_service(&lb, &pending, &Snapshot::default()).allowed);
        let plain: Service = serde_yaml_ng::from_str(
            "metadata: {name: web, namespace: shop}\nspec: {type: ClusterIP}",
        )
        .expect("service");
        assert!(
            validate_service(&plain, &pending, &Snapshot::default()).allowed,
            "a Service that is not ako's never waits"
        );
    }

    #[test]
    fn claims_of_other_classes_do_not_count() {
        let c = Config {
            fqdn_reuse_policy: FqdnReusePolicy::Strict,
            ..cfg()
        };
        let mut other = ing(
            "team-a",
            "nginx",
            Some("2026-01-01T00:00:00Z"),
            "shop.avi.jarvis.lab",
            "/",
        );
        if let Some(s) = other.spec.as_mut() {
            s.ingress_class_name = Some("nginx".into());
        }
        let snap = snapshot_with(&c, &[other]);
        let d = validate_ingress(
            &ing("team-b", "x", None, "shop.avi.jarvis.lab", "/"),
            &c,
            &snap,
        );
        assert!(d.allowed, "{d:?}");
    }

    #[test]
    fn outside_host_denial_names_field_and_fix() {
        let d = validate_ingress(
            &ing("vmug", "shop", None, "shop.example.com", "/"),
            &cfg(),
            &Snapshot::default(),
        );
        assert!(!d.allowed);
        assert_eq!(
            d.message(),
            "host \"shop.example.com\" (spec.rules[0].host) is outside the delegated DNS subdomains [avi.jarvis.lab]; use a host ending in .avi.jarvis.lab"
        );
    }

    #[test]
    fn ingresses_of_other_classes_pass_untouched() {
        let mut other = ing("n", "x", None, "shop.example.com", "/");
        if let Some(s) = other.spec.as_mut() {
            s.ingress_class_name = Some("nginx".into());
        }
        let d = validate_ingress(&other, &cfg(), &Snapshot::default());
        assert!(d.allowed && !d.in_scope);
        let m = mutate_ingress(&other, &cfg(), &Snapshot::default());
        assert!(m.patch.is_empty());
    }

    #[test]
    fn legacy_annotation_becomes_class_name_idempotently() {
        let legacy = ingress(
            "metadata: {name: hackazon, namespace: vmug, annotations: {kubernetes.io/ingress.class: avi}}\nspec: {rules: [{host: hackazon.avi.jarvis.lab}]}",
        );
        let d = mutate_ingress(&legacy, &cfg(), &Snapshot::default());
        assert_eq!(d.patch.len(), 2);
        let mut value = serde_json::to_value(&legacy).expect("json");
        json_patch::patch(&mut value, &d.patch).expect("patch applies");
        assert_eq!(value["spec"]["ingressClassName"], "avi-lb");
        assert!(
            value["metadata"]["annotations"]
                .get("kubernetes.io/ingress.class")
                .is_none()
        );
        let patched: Ingress = serde_json::from_value(value).expect("ingress");
        assert!(
            mutate_ingress(&patched, &cfg(), &Snapshot::default())
                .patch
                .is_empty(),
            "second pass changes nothing"
        );
        let nginx = ingress(
            "metadata: {name: a, namespace: b, annotations: {kubernetes.io/ingress.class: nginx}}\nspec: {}",
        );
        assert!(
            mutate_ingress(&nginx, &cfg(), &Snapshot::default())
                .patch
                .is_empty()
        );
    }

    fn lb_service(
        ns: &str,
        name: &str,
        created: Option<&str>,
        ip: &str,
        shared: Option<&str>,
    ) -> Service {
        let ts = created
            .map(|t| format!(", creationTimestamp: '{t}'"))
            .unwrap_or_default();
        let ann = shared
            .map(|k| format!(", annotations: {{ako.vmware.com/enable-shared-vip: {k}}}"))
            .unwrap_or_default();
        serde_yaml_ng::from_str(&format!(
            "metadata: {{name: {name}, namespace: {ns}{ts}{ann}}}\nspec: {{type: LoadBalancer, loadBalancerIP: '{ip}', ports: [{{port: 80}}]}}"
        ))
        .expect("service yaml")
    }

    #[test]
    fn a_requested_vip_belongs_to_the_oldest_service_unless_they_share_it() {
        let c = cfg();
        let existing = [
            lb_service(
                "team-a",
                "web",
                Some("2026-01-01T00:00:00Z"),
                "10.10.18.5",
                None,
            ),
            lb_service(
                "team-a",
                "dns",
                Some("2026-01-02T00:00:00Z"),
                "10.10.18.6",
                Some("pair"),
            ),
            lb_service(
                "team-b",
                "late",
                Some("2026-03-01T00:00:00Z"),
                "10.10.18.7",
                None,
            ),
        ];
        let mut snap = Snapshot::default();
        for svc in &existing {
            snap.upsert_service(index::ServiceEntry::of(svc, &c));
        }
        // (candidate, allowed, expected text in the reason or warning)
        let cases = [
            (
                lb_service("team-b", "grab", None, "10.10.18.5", None),
                false,
                "VIP 10.10.18.5 is already requested by Service team-a/web",
            ),
            (
                lb_service("team-a", "dns-udp", None, "10.10.18.6", Some("pair")),
                true,
                "",
            ),
            (
                lb_service("team-a", "other", None, "10.10.18.6", Some("other-key")),
                false,
                "team-a/dns",
            ),
            (
                lb_service("team-a", "plain", None, "10.10.18.6", None),
                false,
                "team-a/dns",
            ),
            // Updating the owner itself is fine.
            (
                lb_service(
                    "team-a",
                    "web",
                    Some("2026-01-01T00:00:00Z"),
                    "10.10.18.5",
                    None,
                ),
                true,
                "",
            ),
            // An older Service asking for an address a newer one holds keeps it; the newer one is named.
            (
                lb_service(
                    "team-c",
                    "old",
                    Some("2025-06-01T00:00:00Z"),
                    "10.10.18.7",
                    None,
                ),
                true,
                "also requested by Service team-b/late",
            ),
            (
                lb_service("team-b", "free", None, "10.10.18.8", None),
                true,
                "",
            ),
        ];
        for (svc, allowed, text) in cases {
            let d = validate_service(&svc, &c, &snap);
            let name = svc.metadata.name.clone().unwrap_or_default();
            assert_eq!(d.allowed, allowed, "{name}: {d:?}");
            let all = [d.reasons.join("; "), d.warnings.join("; ")].join(" | ");
            assert!(all.contains(text), "{name}: {all}");
            if !allowed {
                assert!(
                    d.message().contains("ako.vmware.com/enable-shared-vip"),
                    "{name}: the fix is named"
                );
            }
        }
        // Once the owner is gone, the address is free.
        snap.remove_service(&ObjKey::new("team-a", "web"));
        let d = validate_service(
            &lb_service("team-b", "grab", None, "10.10.18.5", None),
            &c,
            &snap,
        );
        assert!(d.allowed, "{d:?}");
    }

    #[test]
    fn service_gets_class_only_on_create_when_we_are_default() {
        let svc: Service = serde_yaml_ng::from_str(
            "metadata: {name: s, namespace: n}\nspec: {type: LoadBalancer}",
        )
        .expect("svc");
        assert_eq!(mutate_service(&svc, true, &cfg()).patch.len(), 1);
        assert!(mutate_service(&svc, false, &cfg()).patch.is_empty());
        let not_default = Config {
            default_lb_controller: false,
            ..cfg()
        };
        assert!(mutate_service(&svc, true, &not_default).patch.is_empty());
    }

    #[test]
    fn missing_references_warn_but_allow() {
        let c = cfg();
        let mut snap = Snapshot::default();
        snap.refs_synced = true;
        let tls = ingress(
            "metadata: {name: a, namespace: n}\nspec:\n  ingressClassName: avi-lb\n  tls: [{hosts: [a.avi.jarvis.lab], secretName: missing}]\n  rules: [{host: a.avi.jarvis.lab, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: gone, port: {number: 80}}}}]}}]",
        );
        let d = validate_ingress(&tls, &c, &snap);
        assert!(d.allowed);
        assert_eq!(d.warnings.len(), 2, "{:?}", d.warnings);
        snap.refs_synced = false;
        assert!(
            validate_ingress(&tls, &c, &snap).warnings.is_empty(),
            "unknown until synced"
        );
    }

    #[test]
    fn default_class_lands_on_us_only_when_no_other_default() {
        let c = cfg();
        let classless =
            ingress("metadata: {name: a, namespace: n}\nspec: {rules: [{host: x.example.com}]}");
        assert!(!validate_ingress(&classless, &c, &Snapshot::default()).allowed);
        let mut snap = Snapshot::default();
        snap.classes.classes.insert(
            "nginx".into(),
            ClassInfo {
                controller: Some("nginx".into()),
                is_default: true,
            },
        );
        assert!(validate_ingress(&classless, &c, &snap).allowed);
    }

    /// An Ingress of ours with `rules` rules on `hosts` distinct hosts (rule i on host i % hosts), `paths` paths
    /// per rule (`/p<j>`, or `/<prefix><j>`), and one TLS entry per host.
    fn wide_ingress(
        ns: &str,
        name: &str,
        created: Option<&str>,
        rules: usize,
        hosts: usize,
        paths: usize,
        prefix: &str,
    ) -> Ingress {
        let rules: Vec<serde_json::Value> = (0..rules)
            .map(|i| {
                let paths: Vec<serde_json::Value> = (0..paths)
                    .map(|j| serde_json::json!({"path": format!("/{prefix}{i}-{j}"), "pathType": "Prefix",
                        "backend": {"service": {"name": format!("svc-{}", j % 3), "port": {"number": 80}}}}))
                    .collect();
                serde_json::json!({"host": format!("h{}.avi.jarvis.lab", i % hosts), "http": {"paths": paths}})
            })
            .collect();
        let tls: Vec<serde_json::Value> = (0..hosts)
            .map(|i| serde_json::json!({"hosts": [format!("h{i}.avi.jarvis.lab")], "secretName": "tls"}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": created},
            "spec": {"ingressClassName": "avi-lb", "rules": rules, "tls": tls},
        }))
        .expect("ingress")
    }

    #[test]
    fn a_hostile_ingress_beyond_the_limits_is_denied_before_translation() {
        // 20,000 rules of one path on 20,000 hosts, each host also in spec.tls: what fits in a 3 MiB review.
        let hostile = wide_ingress("evil", "big", None, 20_000, 20_000, 1, "p");
        let d = validate_ingress(&hostile, &cfg(), &Snapshot::default());
        assert!(!d.allowed);
        assert_eq!(
            d.reasons,
            [
                "spec.rules has 20000 rules; ako accepts at most 2000 per Ingress; split it into several Ingresses",
                "spec.rules[*].http.paths has 20000 paths in all; ako accepts at most 10000 per Ingress; split it into several Ingresses",
                "spec.tls has 20000 entries; ako accepts at most 2000 per Ingress; split it into several Ingresses",
                "spec.tls[*].hosts has 20000 hosts in all; ako accepts at most 5000 per Ingress; split it into several Ingresses",
            ]
        );
        assert!(d.warnings.is_empty());
    }

    #[test]
    fn a_maximum_size_ingress_clashing_everywhere_is_decided_with_a_bounded_answer() {
        use crate::intent::limits::{MAX_PATHS, MAX_RULES, MAX_TLS};
        // The largest object the limits let through: 2,000 rules on 2,000 hosts, 10,000 paths, 2,000 TLS entries,
        // against an older Ingress of the same size claiming every one of those host + path pairs.
        let per_rule = MAX_PATHS / MAX_RULES;
        let owner = wide_ingress(
            "team-a",
            "owner",
            Some("2026-01-01T00:00:00Z"),
            MAX_RULES,
            MAX_TLS,
            per_rule,
            "p",
        );
        let strict = Config {
            fqdn_reuse_policy: FqdnReusePolicy::Strict,
            ..cfg()
        };
        let mut snap = snapshot_with(&strict, std::slice::from_ref(&owner));
        snap.refs_synced = true;
        let claims = snap.claims_for_host("h7.avi.jarvis.lab");
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].paths_for("h7.avi.jarvis.lab").len(), per_rule);

        let copy = wide_ingress("team-b", "copy", None, MAX_RULES, MAX_TLS, per_rule, "p");
        let d = validate_ingress(&copy, &strict, &snap);
        assert!(!d.allowed);
        // 10,000 duplicate paths and 2,000 hosts owned by team-a: 12,000 problems, told in 20 reasons.
        assert_eq!(d.reasons.len(), MAX_REASONS);
        assert_eq!(
            d.reasons[0],
            "host \"h0.avi.jarvis.lab\" path \"/p0-0\" (Prefix) (spec.rules[0].host) is already routed by Ingress team-a/owner; one path cannot go to two backends, change the path or edit that Ingress"
        );
        assert_eq!(
            d.reasons[MAX_REASONS - 1],
            "and 11981 more problems of the same kind"
        );
        // The TLS Secret and the three backend Services do not exist: one warning each, not one per use.
        assert_eq!(d.warnings.len(), 4, "{:?}", d.warnings);

        // Other paths under fqdnReusePolicy InterNamespaceAllowed: allowed, with 2,000 shared-host warnings told
        // in 20.
        let other_paths = wide_ingress("team-b", "other", None, MAX_RULES, MAX_TLS, per_rule, "q");
        let d = validate_ingress(&other_paths, &cfg(), &snapshot_with(&cfg(), &[owner]));
        assert!(d.allowed, "{:?}", d.reasons);
        assert_eq!(d.warnings.len(), MAX_WARNINGS);
        assert_eq!(
            d.warnings[0],
            "host h0.avi.jarvis.lab is also used by Ingress team-a/owner in another namespace"
        );
        assert_eq!(d.warnings[MAX_WARNINGS - 1], "and 1981 more warnings");
    }

    #[test]
    fn warnings_are_cut_to_120_characters() {
        let w = shorten("x".repeat(300));
        assert_eq!(w.chars().count(), MAX_WARNING);
    }
}
