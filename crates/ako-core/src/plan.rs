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
    /// The CA a pool re-encrypting to its servers checks them with (an HTTPRule's `tls.destinationCA`).
    PkiProfile,
    Pool,
    PoolGroup,
    L4PolicySet,
    HttpPolicySet,
    VirtualService,
    /// SNI children reference their parent virtual service, so they come after it.
    VirtualServiceChild,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::VsVip,
        Kind::SslKeyAndCertificate,
        Kind::PkiProfile,
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
            Kind::PkiProfile => "pkiprofile",
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
        // The controller leaves empty lists out of what it shows: an empty list ako sets is an absent one.
        None => want.is_null() || want.as_array().is_some_and(Vec::is_empty),
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

/// The body of an update: `actual` with `desired` laid over it; a field desired `null` is left out (unset).
/// Objects merge field by field; the `vip` list of
/// the same length merges element by element (so a VIP keeps its allocated address); every other list is
/// replaced whole, so an adopted object (AKO's policy set, rules and all) keeps nothing of its old entries.
pub fn overlay(actual: &Map<String, Value>, desired: &Map<String, Value>) -> Map<String, Value> {
    let mut out = actual.clone();
    for (k, want) in desired {
        // null: ako wants the field unset (a rule that set it is gone); a PUT without it clears it.
        if want.is_null() {
            out.remove(k);
            continue;
        }
        let merged = match (out.get(k), want) {
            (Some(have), want) => overlay_value(k, have, want),
            (None, want) => want.clone(),
        };
        out.insert(k.clone(), merged);
    }
    out
}

/// The lists whose entries the controller completes (an allocated address): merged entry by entry.
const MERGED_LISTS: &[&str] = &["vip"];

fn overlay_value(key: &str, have: &Value, want: &Value) -> Value {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => Value::Object(overlay(h, w)),
        (Value::Array(h), Value::Array(w)) if h.len() == w.len() && MERGED_LISTS.contains(&key) => {
            Value::Array(
                h.iter()
                    .zip(w)
                    .map(|(h, w)| overlay_value("", h, w))
                    .collect(),
            )
        }
        _ => want.clone(),
    }
}

#[cfg(test)]
mod tests;
