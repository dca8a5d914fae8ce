//! Planning: the Avi objects that should exist (from translation) against the Avi objects that do (read from the
//! controller) -> an ordered list of writes. Pure: the apply step is the only one that talks to the controller.
//!
//! - Comparison is after normalisation: a desired object names its references by name (`/api/pool/?name=x`),
//!   the controller answers with URLs (`https://host/api/pool/pool-1#x` with `include_name`); both become
//!   `pool:x`. Only the fields ako sets are compared, so what the controller adds (defaults, `_last_modified`,
//!   allocated addresses) never makes a converged object look changed.
//! - An update keeps what the controller holds and overlays ako's fields on it ([`overlay`]), so an allocated VIP
//!   or a field another tool set survives a PUT.
//! - Ownership: only objects whose `created_by` is ako's are updated or deleted; a same-named object of someone
//!   else is a [`Step::Conflict`], never an overwrite.
//! - Order: creates and updates bottom-up (children first), deletes top-down (parents first), so no write ever
//!   names an object that does not exist yet or removes one still referenced.
//! - Deletions only happen when the caller says the observed state is complete ([`Observed::complete`]); a failed
//!   list or watch must never turn into deletions.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value};

/// The Avi object types ako writes, in creation order (a type only references types before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    VsVip,
    SslKeyAndCertificate,
    Pool,
    PoolGroup,
    L4PolicySet,
    HttpPolicySet,
    VirtualService,
    /// SNI children reference their parent virtual service, so they come after it.
    VirtualServiceChild,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::VsVip,
        Kind::SslKeyAndCertificate,
        Kind::Pool,
        Kind::PoolGroup,
        Kind::L4PolicySet,
        Kind::HttpPolicySet,
        Kind::VirtualService,
        Kind::VirtualServiceChild,
    ];

    /// The REST collection (`/api/<obj_type>`).
    pub fn obj_type(self) -> &'static str {
        match self {
            Kind::VsVip => "vsvip",
            Kind::SslKeyAndCertificate => "sslkeyandcertificate",
            Kind::Pool => "pool",
            Kind::PoolGroup => "poolgroup",
            Kind::L4PolicySet => "l4policyset",
            Kind::HttpPolicySet => "httppolicyset",
            Kind::VirtualService | Kind::VirtualServiceChild => "virtualservice",
        }
    }
}

/// A by-name reference as ako writes it: `/api/<type>/?name=<name>` (AKO's form, accepted by every controller),
/// the name URL-encoded. The one function for it, shared with the Avi client.
pub fn name_ref(obj_type: &str, name: &str) -> String {
    crate::refs::name_ref(obj_type, name)
}

/// A body in `Debug` output: a certificate's private key (and any other secret field) redacted.
struct Body<'a>(&'a Map<String, Value>);

impl std::fmt::Debug for Body<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", crate::redact::redact_map(self.0))
    }
}

/// One object ako wants on the controller.
#[derive(Clone, PartialEq)]
pub struct Desired {
    pub kind: Kind,
    pub name: String,
    /// The fields ako sets, references by name. Includes `name` and `created_by`.
    pub body: Map<String, Value>,
}

impl std::fmt::Debug for Desired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desired")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("body", &Body(&self.body))
            .finish()
    }
}

/// One object read from the controller (GET with `include_name`, so references carry `#name`).
#[derive(Clone, PartialEq)]
pub struct Existing {
    pub kind: Kind,
    pub uuid: String,
    pub name: String,
    pub created_by: Option<String>,
    pub body: Map<String, Value>,
}

impl std::fmt::Debug for Existing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Existing")
            .field("kind", &self.kind)
            .field("uuid", &self.uuid)
            .field("name", &self.name)
            .field("created_by", &self.created_by)
            .field("body", &Body(&self.body))
            .finish()
    }
}

/// What is known of the controller.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Objects ako owns, plus any object found with a name ako wants.
    pub objects: Vec<Existing>,
    /// Whether every owned object of every kind was read (all pages, all tenants). Only then may the plan delete.
    pub complete: bool,
}

/// One write. `Debug` redacts the bodies' secrets (a certificate's private key).
#[derive(Clone, PartialEq)]
pub enum Step {
    Create {
        kind: Kind,
        name: String,
        body: Map<String, Value>,
    },
    /// `body` is the existing object with ako's fields laid over it, ready for a PUT.
    Update {
        kind: Kind,
        name: String,
        uuid: String,
        body: Map<String, Value>,
    },
    Delete {
        kind: Kind,
        name: String,
        uuid: String,
    },
    /// An object with a name ako wants belongs to someone else: reported, not touched.
    Conflict {
        kind: Kind,
        name: String,
        owner: Option<String>,
    },
    /// Not written: it refers, directly or through other objects of the plan, to an object of a conflict
    /// (`by`, `<type>:<name>`), and ako never binds its objects to what it does not own.
    Blocked {
        kind: Kind,
        name: String,
        by: String,
    },
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Create { kind, name, body } => f
                .debug_struct("Create")
                .field("kind", kind)
                .field("name", name)
                .field("body", &Body(body))
                .finish(),
            Step::Update {
                kind,
                name,
                uuid,
                body,
            } => f
                .debug_struct("Update")
                .field("kind", kind)
                .field("name", name)
                .field("uuid", uuid)
                .field("body", &Body(body))
                .finish(),
            Step::Delete { kind, name, uuid } => f
                .debug_struct("Delete")
                .field("kind", kind)
                .field("name", name)
                .field("uuid", uuid)
                .finish(),
            Step::Conflict { kind, name, owner } => f
                .debug_struct("Conflict")
                .field("kind", kind)
                .field("name", name)
                .field("owner", owner)
                .finish(),
            Step::Blocked { kind, name, by } => f
                .debug_struct("Blocked")
                .field("kind", kind)
                .field("name", name)
                .field("by", by)
                .finish(),
        }
    }
}

impl Step {
    pub fn kind(&self) -> Kind {
        match self {
            Step::Create { kind, .. }
            | Step::Update { kind, .. }
            | Step::Delete { kind, .. }
            | Step::Conflict { kind, .. }
            | Step::Blocked { kind, .. } => *kind,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Step::Create { name, .. }
            | Step::Update { name, .. }
            | Step::Delete { name, .. }
            | Step::Conflict { name, .. }
            | Step::Blocked { name, .. } => name,
        }
    }

    /// What the step does, in one word.
    pub fn verb(&self) -> &'static str {
        match self {
            Step::Create { .. } => "create",
            Step::Update { .. } => "update",
            Step::Delete { .. } => "delete",
            Step::Conflict { .. } => "conflict",
            Step::Blocked { .. } => "blocked",
        }
    }

    /// Whether the step writes to the controller.
    pub fn is_write(&self) -> bool {
        !matches!(self, Step::Conflict { .. } | Step::Blocked { .. })
    }
}

/// Compares desired and observed objects and returns the writes that make them equal, in a safe order:
/// conflicts first (nothing to do), then creates and updates bottom-up, then deletes top-down.
pub fn plan(desired: &[Desired], observed: &Observed, owner: &str) -> Vec<Step> {
    plan_owned(desired.to_vec(), observed, owner)
}

/// [`plan`], taking the desired objects: a create moves its body into its step instead of copying it (a cold
/// start creates every object).
pub fn plan_owned(desired: Vec<Desired>, observed: &Observed, owner: &str) -> Vec<Step> {
    let known: Vec<Known> = observed
        .objects
        .iter()
        .map(|e| Known {
            kind: e.kind,
            uuid: e.uuid.clone(),
            name: e.name.clone(),
            created_by: e.created_by.clone(),
        })
        .collect();
    let bodies: HashMap<(&'static str, &str), &Map<String, Value>> = observed
        .objects
        .iter()
        .map(|e| ((e.kind.obj_type(), e.name.as_str()), &e.body))
        .collect();
    plan_with(desired, &known, observed.complete, owner, |k| {
        Some(
            bodies
                .get(&(k.kind.obj_type(), k.name.as_str()))
                .map(|b| (*b).clone())
                .unwrap_or_default(),
        )
    })
}

/// What is known of an object on the controller without its body.
#[derive(Debug, Clone, PartialEq)]
pub struct Known {
    pub kind: Kind,
    pub uuid: String,
    pub name: String,
    pub created_by: Option<String>,
}

/// [`plan_owned`] over objects whose bodies are fetched one at a time (`body_of`) when a desired object is compared
/// with them, and dropped right after: a caller keeping bodies in a compact form never holds a group's parsed
/// bodies at once. `complete` is [`Observed::complete`]. A wanted object whose body `body_of` cannot give
/// (`None`) is not updated: the caller reads it again first.
pub fn plan_with(
    desired: Vec<Desired>,
    known: &[Known],
    complete: bool,
    owner: &str,
    body_of: impl Fn(&Known) -> Option<Map<String, Value>>,
) -> Vec<Step> {
    let mut existing: HashMap<(&'static str, &str), &Known> = HashMap::new();
    for e in known {
        existing.insert((e.kind.obj_type(), e.name.as_str()), e);
    }
    let mut conflicts = Vec::new();
    let mut writes: BTreeMap<(Kind, String), Step> = BTreeMap::new();
    let mut wanted: HashSet<(&'static str, String)> = HashSet::new();
    for d in desired {
        wanted.insert((d.kind.obj_type(), d.name.clone()));
        match existing.get(&(d.kind.obj_type(), d.name.as_str())) {
            None => {
                writes.insert(
                    (d.kind, d.name.clone()),
                    Step::Create {
                        kind: d.kind,
                        name: d.name,
                        body: d.body,
                    },
                );
            }
            Some(e) if e.created_by.as_deref() != Some(owner) => conflicts.push(Step::Conflict {
                kind: d.kind,
                name: d.name.clone(),
                owner: e.created_by.clone(),
            }),
            Some(e) => {
                // Unknown body: no update now (it would overlay ako's fields on nothing and drop the rest).
                let Some(body) = body_of(e) else {
                    continue;
                };
                if !converged(&d.body, &body) {
                    writes.insert(
                        (d.kind, d.name.clone()),
                        Step::Update {
                            kind: d.kind,
                            uuid: e.uuid.clone(),
                            body: overlay(&body, &d.body),
                            name: d.name,
                        },
                    );
                }
            }
        }
    }
    let blocked = block_references(&mut writes, &conflicts);
    let mut steps = conflicts;
    steps.extend(blocked);
    steps.extend(writes.into_values());
    if complete {
        let mut deletes: Vec<&Known> = known
            .iter()
            .filter(|e| e.created_by.as_deref() == Some(owner))
            .filter(|e| !wanted.contains(&(e.kind.obj_type(), e.name.clone())))
            .collect();
        deletes.sort_by(|a, b| b.kind.cmp(&a.kind).then_with(|| a.name.cmp(&b.name)));
        steps.extend(deletes.into_iter().map(|e| Step::Delete {
            kind: e.kind,
            name: e.name.clone(),
            uuid: e.uuid.clone(),
        }));
    }
    steps
}

/// Takes out of `writes` every create or update whose body refers to an object of a conflict, or to an object
/// taken out that way, and returns them as [`Step::Blocked`]: a virtual service is never pointed at someone
/// else's VsVip, nor a pool group at someone else's pool.
fn block_references(writes: &mut BTreeMap<(Kind, String), Step>, conflicts: &[Step]) -> Vec<Step> {
    let mut foreign: HashSet<String> = conflicts
        .iter()
        .map(|c| format!("{}:{}", c.kind().obj_type(), c.name()))
        .collect();
    let mut blocked = Vec::new();
    loop {
        let hit: Vec<((Kind, String), String)> = writes
            .iter()
            .filter_map(|(key, step)| {
                let body = match step {
                    Step::Create { body, .. } | Step::Update { body, .. } => body,
                    _ => return None,
                };
                let mut refs = Vec::new();
                references(&Value::Object(body.clone()), "", &mut refs);
                refs.into_iter()
                    .find(|r| foreign.contains(r))
                    .map(|r| (key.clone(), r))
            })
            .collect();
        if hit.is_empty() {
            return blocked;
        }
        for ((kind, name), by) in hit {
            writes.remove(&(kind, name.clone()));
            foreign.insert(format!("{}:{name}", kind.obj_type()));
            blocked.push(Step::Blocked { kind, name, by });
        }
    }
}

/// Every reference in a body (fields named `*_ref` or `*_refs`, at any depth), normalised.
pub fn references(value: &Value, key: &str, out: &mut Vec<String>) {
    match value {
        Value::String(s) if is_ref_key(key) => out.push(normalize_ref(s)),
        Value::Array(items) => {
            for v in items {
                references(v, key, out);
            }
        }
        Value::Object(m) => {
            for (k, v) in m {
                references(v, k, out);
            }
        }
        _ => {}
    }
}

/// The identity of a reference, whatever its form: `/api/pool/?name=x`, `/api/pool?name=x`,
/// `https://h/api/pool/pool-1#x` all become `pool:x`; a URL without `#name` keeps its uuid (`pool/pool-1`).
pub fn normalize_ref(r: &str) -> String {
    let path = match r.find("/api/") {
        Some(i) => &r[i + 5..],
        None => return r.to_string(),
    };
    let (path, fragment) = match path.split_once('#') {
        Some((p, f)) => (p, Some(f)),
        None => (path, None),
    };
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let obj_type = path.split('/').next().unwrap_or_default();
    if let Some(name) = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "name")
            .map(|(_, v)| v.into_owned())
    }) {
        return format!("{obj_type}:{name}");
    }
    match fragment {
        Some(name) => format!("{obj_type}:{name}"),
        None => path.trim_end_matches('/').to_string(),
    }
}

fn is_ref_key(key: &str) -> bool {
    key.ends_with("_ref") || key.ends_with("_refs")
}

/// Whether every field ako sets has the same value on the controller (references compared by identity, lists
/// element by element, objects field by field; fields the controller added are ignored).
pub fn converged(desired: &Map<String, Value>, actual: &Map<String, Value>) -> bool {
    desired.iter().all(|(k, want)| match actual.get(k) {
        Some(have) => same(k, want, have),
        None => want.is_null(),
    })
}

/// What the controller shows in place of a write-only secret (an SSLKeyAndCertificate's `key`).
const SENSITIVE: &str = "<sensitive>";

fn same(key: &str, want: &Value, have: &Value) -> bool {
    match (want, have) {
        // Write-only: the controller never shows it back. A rotation changes the certificate too, which is compared.
        (Value::String(_), Value::String(h)) if h == SENSITIVE => true,
        (Value::String(w), Value::String(h)) if is_ref_key(key) => {
            normalize_ref(w) == normalize_ref(h)
        }
        (Value::Object(w), Value::Object(h)) => converged(w, h),
        (Value::Array(w), Value::Array(h)) => {
            w.len() == h.len() && w.iter().zip(h).all(|(w, h)| same(key, w, h))
        }
        (Value::Number(w), Value::Number(h)) => w.as_f64() == h.as_f64(),
        _ => want == have,
    }
}

/// The body of an update: `actual` with `desired` laid over it. Objects merge field by field; a list of the same
/// length merges element by element (so a VIP keeps its allocated address); anything else is replaced.
pub fn overlay(actual: &Map<String, Value>, desired: &Map<String, Value>) -> Map<String, Value> {
    let mut out = actual.clone();
    for (k, want) in desired {
        let merged = match (out.get(k), want) {
            (Some(have), want) => overlay_value(have, want),
            (None, want) => want.clone(),
        };
        out.insert(k.clone(), merged);
    }
    out
}

fn overlay_value(have: &Value, want: &Value) -> Value {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => Value::Object(overlay(h, w)),
        (Value::Array(h), Value::Array(w)) if h.len() == w.len() => {
            Value::Array(h.iter().zip(w).map(|(h, w)| overlay_value(h, w)).collect())
        }
        _ => want.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const OWNER: &str = "ako-veba-of";

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn desired(kind: Kind, name: &str, body: Value) -> Desired {
        let mut b = obj(body);
        b.insert("name".into(), json!(name));
        b.insert("created_by".into(), json!(OWNER));
        Desired {
            kind,
            name: name.into(),
            body: b,
        }
    }

    fn existing(kind: Kind, name: &str, owner: Option<&str>, body: Value) -> Existing {
        let mut b = obj(body);
        b.insert("name".into(), json!(name));
        b.insert("uuid".into(), json!(format!("{}-{name}", kind.obj_type())));
        b.insert("_last_modified".into(), json!("1595317883685461"));
        if let Some(o) = owner {
            b.insert("created_by".into(), json!(o));
        }
        Existing {
            kind,
            uuid: format!("{}-{name}", kind.obj_type()),
            name: name.into(),
            created_by: owner.map(String::from),
            body: b,
        }
    }

    #[test]
    fn plan_with_reads_a_body_only_to_compare_an_owned_object_that_is_still_wanted() {
        let known = |kind: Kind, name: &str, owner: &str| Known {
            kind,
            uuid: format!("{}-{name}", kind.obj_type()),
            name: name.into(),
            created_by: Some(owner.into()),
        };
        let objects = [
            known(Kind::Pool, "same", OWNER),
            known(Kind::Pool, "changed", OWNER),
            known(Kind::Pool, "gone", OWNER),
            known(Kind::Pool, "theirs", "someone-else"),
        ];
        let desired_objects = vec![
            desired(Kind::Pool, "same", json!({"enabled": true})),
            desired(Kind::Pool, "changed", json!({"enabled": true})),
            desired(Kind::Pool, "theirs", json!({"enabled": true})),
            desired(Kind::Pool, "new", json!({"enabled": true})),
        ];
        let read = std::cell::RefCell::new(Vec::new());
        let steps = plan_with(desired_objects, &objects, true, OWNER, |k| {
            read.borrow_mut().push(k.name.clone());
            let enabled = k.name != "changed";
            Some(obj(
                json!({"name": k.name, "created_by": OWNER, "enabled": enabled, "uuid": k.uuid}),
            ))
        });
        let mut read = read.into_inner();
        read.sort();
        assert_eq!(
            read,
            ["changed", "same"],
            "no body read for a create, a delete or a conflict"
        );
        let kinds: Vec<(&str, &str)> = steps.iter().map(|s| (s.verb(), s.name())).collect();
        assert_eq!(
            kinds,
            [
                ("conflict", "theirs"),
                ("update", "changed"),
                ("create", "new"),
                ("delete", "gone")
            ]
        );
        let Some(Step::Update { body, .. }) = steps.iter().find(|s| s.name() == "changed") else {
            panic!("update")
        };
        assert_eq!(
            body["uuid"], "pool-changed",
            "the update keeps the controller's fields"
        );
    }

    #[test]
    fn nothing_is_written_that_would_refer_to_an_object_of_someone_else() {
        let r = |t: &str, n: &str| json!(name_ref(t, n));
        let wanted = vec![
            desired(Kind::VsVip, "c--web", json!({})),
            desired(Kind::Pool, "c--web-80", json!({})),
            desired(
                Kind::PoolGroup,
                "c--web-pg",
                json!({"members": [{"pool_ref": r("pool", "c--web-80")}]}),
            ),
            desired(Kind::L4PolicySet, "c--web", json!({})),
            desired(
                Kind::VirtualService,
                "c--web",
                json!({"vsvip_ref": r("vsvip", "c--web"), "pool_group_ref": r("poolgroup", "c--web-pg")}),
            ),
            desired(Kind::Pool, "c--other-80", json!({})),
        ];
        // The VsVip of that name is someone else's: the virtual service that would use it is not written; the
        // pool is, and so are the objects that do not lead to the VsVip.
        let observed = Observed {
            objects: vec![existing(
                Kind::VsVip,
                "c--web",
                Some("terraform"),
                json!({}),
            )],
            complete: true,
        };
        let got: Vec<String> = plan(&wanted, &observed, OWNER)
            .iter()
            .map(|s| format!("{} {}", s.verb(), s.name()))
            .collect();
        assert_eq!(
            got,
            [
                "conflict c--web",
                "blocked c--web",
                "create c--other-80",
                "create c--web-80",
                "create c--web-pg",
                "create c--web"
            ]
        );
        // A pool of someone else's blocks its pool group, and through it the virtual service.
        let observed = Observed {
            objects: vec![existing(Kind::Pool, "c--web-80", None, json!({}))],
            complete: true,
        };
        let steps = plan(&wanted, &observed, OWNER);
        let blocked: Vec<(&str, String)> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Blocked { name, by, .. } => Some((name.as_str(), by.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            blocked,
            [
                ("c--web-pg", "pool:c--web-80".to_string()),
                ("c--web", "poolgroup:c--web-pg".to_string())
            ]
        );
        assert!(
            steps
                .iter()
                .any(|s| s.verb() == "create" && s.name() == "c--web" && s.kind() == Kind::VsVip)
        );
    }

    #[test]
    fn an_object_whose_body_is_unknown_is_not_updated_from_an_empty_one() {
        let known = [Known {
            kind: Kind::Pool,
            uuid: "pool-1".into(),
            name: "p".into(),
            created_by: Some(OWNER.into()),
        }];
        let steps = plan_with(
            vec![desired(Kind::Pool, "p", json!({"enabled": true}))],
            &known,
            true,
            OWNER,
            |_| None,
        );
        assert!(steps.is_empty(), "{steps:?}");
    }

    #[test]
    fn debug_output_never_shows_a_private_key() {
        let body = json!({"name": "c--h", "key": "-----BEGIN PRIVATE KEY-----\nMIIE", "certificate": {"certificate": "CERT"}});
        let d = desired(Kind::SslKeyAndCertificate, "c--h", body.clone());
        let e = existing(Kind::SslKeyAndCertificate, "c--h", Some(OWNER), body);
        let steps = plan(std::slice::from_ref(&d), &Observed::default(), OWNER);
        for text in [format!("{d:?}"), format!("{e:?}"), format!("{steps:?}")] {
            assert!(!text.contains("PRIVATE KEY"), "{text}");
            assert!(text.contains("<redacted>"), "{text}");
            assert!(text.contains("CERT"), "the rest is shown: {text}");
        }
    }

    #[test]
    fn reference_forms_normalise_to_one_identity() {
        let cases = [
            ("/api/pool/?name=p1", "pool:p1"),
            ("/api/pool?name=p1", "pool:p1"),
            ("https://10.0.0.1/api/pool/pool-6426#p1", "pool:p1"),
            (
                "https://avi-controller:9443/api/cloud/cloud-1#Default-Cloud",
                "cloud:Default-Cloud",
            ),
            ("https://h/api/pool/pool-6426", "pool/pool-6426"),
            ("/api/tenant/?name=admin&x=1", "tenant:admin"),
            ("/api/pool/?name=a%2Fb+c", "pool:a/b c"),
            (
                &name_ref("pool", "c--h.example_/shop path"),
                "pool:c--h.example_/shop path",
            ),
            ("pool-6426", "pool-6426"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_ref(input), want, "{input}");
        }
    }

    #[test]
    fn convergence_table() {
        let cases: Vec<(&str, Value, Value, bool)> = vec![
            (
                "controller defaults ignored",
                json!({"enabled": true}),
                json!({"enabled": true, "weight": 1}),
                true,
            ),
            (
                "changed scalar",
                json!({"enabled": true}),
                json!({"enabled": false}),
                false,
            ),
            ("missing field", json!({"enabled": true}), json!({}), false),
            (
                "ref by name vs URL with name",
                json!({"pool_ref": "/api/pool/?name=a"}),
                json!({"pool_ref": "https://h/api/pool/pool-1#a"}),
                true,
            ),
            (
                "ref to another object",
                json!({"pool_ref": "/api/pool/?name=a"}),
                json!({"pool_ref": "https://h/api/pool/pool-2#b"}),
                false,
            ),
            (
                "list elements compared as subsets",
                json!({"services": [{"port": 80}]}),
                json!({"services": [{"port": 80, "port_range_end": 80, "enable_ssl": false}]}),
                true,
            ),
            (
                "list of another length",
                json!({"services": [{"port": 80}]}),
                json!({"services": [{"port": 80}, {"port": 443}]}),
                false,
            ),
            (
                "allocated VIP address is the controller's",
                json!({"vip": [{"vip_id": "0", "auto_allocate_ip": true}]}),
                json!({"vip": [{"vip_id": "0", "auto_allocate_ip": true, "ip_address": {"addr": "10.10.18.15", "type": "V4"}}]}),
                true,
            ),
            (
                "number forms",
                json!({"ttl": 30}),
                json!({"ttl": 30.0}),
                true,
            ),
            (
                "a write-only key shown as <sensitive>",
                json!({"key": "the key PEM ako sent", "certificate": {"certificate": "A"}}),
                json!({"key": "<sensitive>", "certificate": {"certificate": "A", "subject": {}}}),
                true,
            ),
            (
                "a rotated certificate",
                json!({"key": "the key PEM ako sent", "certificate": {"certificate": "B"}}),
                json!({"key": "<sensitive>", "certificate": {"certificate": "A"}}),
                false,
            ),
            (
                "ref lists",
                json!({"health_monitor_refs": ["/api/healthmonitor/?name=System-TCP"]}),
                json!({"health_monitor_refs": ["https://h/api/healthmonitor/hm-1#System-TCP"]}),
                true,
            ),
        ];
        for (name, want, have, expect) in cases {
            assert_eq!(converged(&obj(want), &obj(have)), expect, "{name}");
        }
    }

    #[test]
    fn overlay_keeps_what_the_controller_holds() {
        let have = obj(json!({
            "uuid": "vsvip-1", "_last_modified": "1",
            "vip": [{"vip_id": "0", "auto_allocate_ip": true, "ip_address": {"addr": "10.10.18.15", "type": "V4"}}],
            "dns_info": [{"fqdn": "a.avi.jarvis.lab", "ttl": 30}],
            "east_west_placement": false
        }));
        let want = obj(json!({
            "vip": [{"vip_id": "0", "auto_allocate_ip": true}],
            "dns_info": [{"fqdn": "a.avi.jarvis.lab"}, {"fqdn": "b.avi.jarvis.lab"}]
        }));
        let out = overlay(&have, &want);
        assert_eq!(out["vip"][0]["ip_address"]["addr"], json!("10.10.18.15"));
        assert_eq!(
            out["dns_info"], want["dns_info"],
            "a list of another length is replaced"
        );
        assert_eq!(out["uuid"], json!("vsvip-1"));
        assert_eq!(
            out["_last_modified"],
            json!("1"),
            "kept so the controller can detect a concurrent change"
        );
        assert!(converged(&want, &out));
    }

    #[test]
    fn plan_table() {
        let vip = |name: &str| desired(Kind::VsVip, name, json!({"vip": [{"vip_id": "0"}]}));
        let vs = |name: &str| {
            desired(
                Kind::VirtualService,
                name,
                json!({"vsvip_ref": name_ref("vsvip", name)}),
            )
        };
        let pool = |name: &str| desired(Kind::Pool, name, json!({"servers": []}));
        let have_vip = |name: &str, owner| {
            existing(
                Kind::VsVip,
                name,
                owner,
                json!({"vip": [{"vip_id": "0", "enabled": true}]}),
            )
        };
        let have_vs = |name: &str, owner| {
            existing(
                Kind::VirtualService,
                name,
                owner,
                json!({"vsvip_ref": format!("https://h/api/vsvip/vsvip-{name}#{name}")}),
            )
        };
        let have_pool =
            |name: &str| existing(Kind::Pool, name, Some(OWNER), json!({"servers": []}));
        let summary = |steps: Vec<Step>| -> Vec<String> {
            steps
                .iter()
                .map(|s| format!("{} {} {}", s.verb(), s.kind().obj_type(), s.name()))
                .collect()
        };
        struct Case {
            name: &'static str,
            desired: Vec<Desired>,
            observed: Vec<Existing>,
            complete: bool,
            want: Vec<&'static str>,
        }
        let cases = vec![
            Case {
                name: "empty controller: create bottom-up",
                desired: vec![vs("a"), pool("a-TCP-80"), vip("a")],
                observed: vec![],
                complete: true,
                want: vec![
                    "create vsvip a",
                    "create pool a-TCP-80",
                    "create virtualservice a",
                ],
            },
            Case {
                name: "converged: nothing",
                desired: vec![vip("a"), vs("a")],
                observed: vec![have_vip("a", Some(OWNER)), have_vs("a", Some(OWNER))],
                complete: true,
                want: vec![],
            },
            Case {
                name: "orphans deleted top-down",
                desired: vec![],
                observed: vec![
                    have_vip("a", Some(OWNER)),
                    have_pool("a-TCP-80"),
                    have_vs("a", Some(OWNER)),
                ],
                complete: true,
                want: vec![
                    "delete virtualservice a",
                    "delete pool a-TCP-80",
                    "delete vsvip a",
                ],
            },
            Case {
                name: "incomplete observation never deletes",
                desired: vec![],
                observed: vec![have_vip("a", Some(OWNER)), have_vs("a", Some(OWNER))],
                complete: false,
                want: vec![],
            },
            Case {
                name: "someone else's object is a conflict, not an overwrite nor a delete",
                desired: vec![vip("a")],
                observed: vec![have_vip("a", Some("terraform")), have_vs("b", None)],
                complete: true,
                want: vec!["conflict vsvip a"],
            },
            Case {
                name: "drift repaired by update",
                desired: vec![vip("a"), vs("a")],
                observed: vec![have_vip("a", Some(OWNER)), have_vs("b", Some(OWNER)), {
                    let mut e = have_vs("a", Some(OWNER));
                    e.body
                        .insert("vsvip_ref".into(), json!("https://h/api/vsvip/vsvip-x#x"));
                    e
                }],
                complete: true,
                want: vec!["update virtualservice a", "delete virtualservice b"],
            },
        ];
        for c in cases {
            let observed = Observed {
                objects: c.observed,
                complete: c.complete,
            };
            assert_eq!(
                summary(plan(&c.desired, &observed, OWNER)),
                c.want,
                "{}",
                c.name
            );
        }
    }

    /// Applies a plan to a simulated controller that adds defaults and renders references as URLs.
    fn apply(observed: &mut Vec<Existing>, steps: &[Step]) {
        let render = |kind: Kind, name: &str, body: &Map<String, Value>| {
            let mut b = body.clone();
            for (k, v) in b.iter_mut() {
                if let (true, Value::String(s)) = (is_ref_key(k), &*v) {
                    let id = normalize_ref(s);
                    if let Some((t, n)) = id.split_once(':') {
                        *v = json!(format!("https://ctrl/api/{t}/{t}-{n}#{n}"));
                    }
                }
            }
            b.entry("_last_modified").or_insert(json!("1"));
            b.entry("tenant_ref")
                .or_insert(json!("https://ctrl/api/tenant/admin#admin"));
            existing_from(kind, name, b)
        };
        for s in steps {
            match s {
                Step::Create { kind, name, body } => observed.push(render(*kind, name, body)),
                Step::Update {
                    kind, name, body, ..
                } => {
                    observed.retain(|e| !(e.kind == *kind && e.name == *name));
                    observed.push(render(*kind, name, body));
                }
                Step::Delete { kind, name, .. } => {
                    observed.retain(|e| !(e.kind == *kind && e.name == *name))
                }
                Step::Conflict { .. } | Step::Blocked { .. } => {}
            }
        }
    }

    fn existing_from(kind: Kind, name: &str, body: Map<String, Value>) -> Existing {
        Existing {
            kind,
            uuid: format!("{}-{name}", kind.obj_type()),
            name: name.into(),
            created_by: body
                .get("created_by")
                .and_then(Value::as_str)
                .map(String::from),
            body,
        }
    }

    /// plan(desired, apply(plan(desired, observed))) is empty, over generated desired and observed states.
    #[test]
    fn applying_a_plan_converges() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for round in 0..300 {
            let mut desired_set = Vec::new();
            for i in 0..next(6) {
                let name = format!("o{i}");
                let kind = Kind::ALL[next(Kind::ALL.len() as u64) as usize];
                let port = 80 + next(3);
                desired_set.push(desired(
                    kind,
                    &name,
                    json!({"services": [{"port": port}], "pool_ref": name_ref("pool", &format!("p{}", next(3)))}),
                ));
            }
            desired_set
                .sort_by(|a, b| (a.kind.obj_type(), &a.name).cmp(&(b.kind.obj_type(), &b.name)));
            desired_set.dedup_by(|a, b| a.kind.obj_type() == b.kind.obj_type() && a.name == b.name);
            let mut observed = Vec::new();
            for i in 0..next(6) {
                let name = format!("o{i}");
                let kind = Kind::ALL[next(Kind::ALL.len() as u64) as usize];
                let owner = if next(5) == 0 {
                    Some("someone-else")
                } else {
                    Some(OWNER)
                };
                let port = 80 + next(3);
                if observed
                    .iter()
                    .any(|e: &Existing| e.kind.obj_type() == kind.obj_type() && e.name == name)
                {
                    continue;
                }
                observed.push(existing(
                    kind,
                    &name,
                    owner,
                    json!({"services": [{"port": port, "enable_ssl": false}]}),
                ));
            }
            let first = plan(
                &desired_set,
                &Observed {
                    objects: observed.clone(),
                    complete: true,
                },
                OWNER,
            );
            apply(&mut observed, &first);
            let second = plan(
                &desired_set,
                &Observed {
                    objects: observed.clone(),
                    complete: true,
                },
                OWNER,
            );
            assert!(
                second.iter().all(|s| !s.is_write()),
                "round {round}: second plan still writes: {second:?}\nfirst: {first:?}"
            );
        }
    }
}
