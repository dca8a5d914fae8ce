//! AKO's HostRules, HTTPRules, L4Rules and AviInfraSettings in the view: one watch per kind (`ako.vmware.com/v1beta1`, read as dynamic
//! objects and kept slim: creation time, spec, status). A cluster without the CRD has none of these objects: the
//! API server's 404 for the kind is read as an empty list, so a cluster installed without ako's CRDs is complete
//! (never "possibly stale") and gains the kind when the CRD is applied (the watch keeps asking, with backoff).

use super::*;
use ako_core::crd::{self, RuleEntry, RuleId, Verdict};

pub use ako_core::crd::RuleKind;

/// The resource of a rule kind at its stored version.
pub fn api_resource(kind: RuleKind) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(crd::GROUP, kind.version(), kind.kind()),
        kind.plural(),
    )
}

/// What ako keeps of a rule object.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleObject {
    pub uid: Option<String>,
    pub created: Option<i64>,
    pub spec: serde_json::Value,
    /// `status.status` and `status.error` as stored.
    pub status: Option<(String, String)>,
}

impl RuleObject {
    pub fn of(obj: &DynamicObject) -> Self {
        let status = obj.data.get("status").map(|s| {
            let text = |k: &str| {
                s.get(k)
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            (text("status"), text("error"))
        });
        Self {
            uid: obj.metadata.uid.clone(),
            created: ako_core::ownership::created(&obj.metadata),
            spec: obj
                .data
                .get("spec")
                .cloned()
                .unwrap_or(serde_json::Value::Null),
            status,
        }
    }

    fn id(&self, key: &ObjKey) -> RuleId {
        RuleId {
            created: self.created,
            key: key.clone(),
        }
    }

    /// Whether the stored status says this verdict.
    pub fn says(&self, v: &Verdict) -> bool {
        self.status
            .as_ref()
            .is_some_and(|(s, e)| s == v.status() && e == v.error())
    }

    /// The rule as translation reads it: its spec typed (or why it cannot be), not judged yet.
    pub fn entry<S: serde::de::DeserializeOwned>(&self, key: &ObjKey) -> RuleEntry<S> {
        RuleEntry {
            id: self.id(key),
            spec: serde_json::from_value(self.spec.clone())
                .map_err(|e| format!("spec is not valid: {e}")),
            verdict: Verdict::Accepted,
        }
    }
}

/// A rule kind's feed: `K` is the position of the kind in [`RuleKind::ALL`].
pub(super) struct RulesFeed<const K: usize>;

impl<const K: usize> RulesFeed<K> {
    const RULE: RuleKind = RuleKind::ALL[K];
    const HOST: bool = matches!(Self::RULE, RuleKind::HostRule);
}

impl<const K: usize> watches::Feed<DynamicObject> for RulesFeed<K> {
    const KIND: &'static str = match RuleKind::ALL[K] {
        RuleKind::HostRule => "HostRule",
        RuleKind::HttpRule => "HTTPRule",
        RuleKind::L4Rule => "L4Rule",
        RuleKind::AviInfraSetting => "AviInfraSetting",
    };
    fn apply(view: &View, obj: DynamicObject) -> Option<Change> {
        let key = ObjKey::of(&obj.metadata);
        view.upsert_rule(Self::RULE, key, RuleObject::of(&obj))
            .then_some(Change::Rules)
    }
    fn delete(view: &View, obj: DynamicObject) -> Option<Change> {
        let key = ObjKey::of(&obj.metadata);
        let mut r = view.rules.write();
        r.get_mut(&Self::RULE)
            .and_then(|m| m.remove(&key))
            .map(|_| Change::Rules)
    }
    fn replace(view: &View, all: Vec<DynamicObject>) -> Option<Change> {
        let new: BTreeMap<ObjKey, RuleObject> = all
            .iter()
            .map(|o| (ObjKey::of(&o.metadata), RuleObject::of(o)))
            .collect();
        let mut r = view.rules.write();
        let old = r.insert(Self::RULE, new.clone()).unwrap_or_default();
        (old != new).then_some(Change::Rules)
    }
    fn synced(view: &View) -> &AtomicBool {
        match Self::RULE {
            RuleKind::HostRule => &view.host_rules_synced,
            RuleKind::HttpRule => &view.http_rules_synced,
            RuleKind::L4Rule => &view.l4_rules_synced,
            RuleKind::AviInfraSetting => &view.infra_settings_synced,
        }
    }

    // The webhook weighs HostRules' FQDN claims.
    const INDEXED: bool = Self::HOST;
    type Entry = (ako_core::index::HostRuleClaim, Option<String>);
    fn entry(_index: &Index, obj: &DynamicObject) -> Option<Self::Entry> {
        let fqdn = obj.data.get("spec").and_then(crd::hostrule::claimed_fqdn);
        let rejected = obj
            .data
            .pointer("/status/status")
            .and_then(serde_json::Value::as_str)
            == Some(crd::REJECTED);
        Some((
            ako_core::index::HostRuleClaim {
                key: ObjKey::of(&obj.metadata),
                created: ako_core::ownership::created(&obj.metadata),
                rejected,
            },
            fqdn,
        ))
    }
    fn index_key(obj: &DynamicObject) -> Option<ObjKey> {
        Some(ObjKey::of(&obj.metadata))
    }
    fn index_upsert(snap: &mut Snapshot, (claim, fqdn): Self::Entry) {
        snap.upsert_host_rule(claim, fqdn);
    }
    fn index_remove(snap: &mut Snapshot, key: &ObjKey) {
        snap.remove_host_rule(key);
    }
    fn index_replace(snap: &mut Snapshot, all: Vec<Self::Entry>) {
        snap.replace_host_rules(all);
    }
}

/// The watch of a rule kind, with the API server's "no such kind" (404: the CRD is not installed) read as an
/// empty list once, and quietly after that until the kind appears.
pub(super) fn rule_events(
    client: Client,
    kind: RuleKind,
) -> impl Stream<Item = Result<Event<DynamicObject>, watcher::Error>> + Send {
    let api = Api::<DynamicObject>::all_with(client, &api_resource(kind));
    let mut absent = false;
    let mut listed = false;
    watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .filter_map(move |e| {
            let out = match e {
                Err(watcher::Error::InitialListFailed(kube::Error::Api(s))) if s.code == 404 => {
                    if absent {
                        None
                    } else {
                        absent = true;
                        tracing::info!(kind = kind.kind(), "the API server does not serve this kind (its CRD is not installed): none exist; looking again with backoff");
                        Some(Ok(Event::InitDone))
                    }
                }
                // Never read, and not allowed to: the rules are not applied (said loudly), rather than nothing
                // being reconciled at all for want of a right the chart grants. Once read, a later refusal is a
                // failing watch like any other (the last view stays).
                Err(watcher::Error::InitialListFailed(kube::Error::Api(s)))
                    if s.code == 403 && !listed =>
                {
                    if absent {
                        None
                    } else {
                        absent = true;
                        tracing::error!(kind = kind.kind(), error = %s.message, "not allowed to list this kind: its rules are not applied until ako may read them (the chart's ClusterRole grants it); looking again with backoff");
                        Some(Ok(Event::InitDone))
                    }
                }
                other => {
                    if matches!(other, Ok(Event::InitDone)) {
                        listed = true;
                    }
                    if other.is_ok() {
                        absent = false;
                    }
                    Some(other)
                }
            };
            std::future::ready(out)
        })
}
