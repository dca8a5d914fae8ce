//! AKO's HostRules and HTTPRules in the view: one watch per kind (`ako.vmware.com/v1beta1`, read as dynamic
//! objects and kept slim: creation time, spec, status). A cluster without the CRD has none of these objects: the
//! API server's 404 for the kind is read as an empty list, so a cluster installed without ako's CRDs is complete
//! (never "possibly stale") and gains the kind when the CRD is applied (the watch keeps asking, with backoff).

use super::*;
use ako_core::crd::{self, HostRuleEntry, HttpRuleEntry, RuleId, Verdict};

/// Which of AKO's rule kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleKind {
    HostRule,
    HttpRule,
}

impl RuleKind {
    pub const ALL: [RuleKind; 2] = [RuleKind::HostRule, RuleKind::HttpRule];

    pub fn kind(self) -> &'static str {
        match self {
            RuleKind::HostRule => "HostRule",
            RuleKind::HttpRule => "HTTPRule",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            RuleKind::HostRule => "hostrules",
            RuleKind::HttpRule => "httprules",
        }
    }

    /// The stored version AKO's CRDs serve (and ako's chart installs).
    pub fn api_resource(self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(crd::GROUP, crd::RULE_VERSIONS[0], self.kind()),
            self.plural(),
        )
    }

    pub fn api_version(self) -> String {
        format!("{}/{}", crd::GROUP, crd::RULE_VERSIONS[0])
    }
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

    pub fn host_rule(&self, key: &ObjKey) -> HostRuleEntry {
        HostRuleEntry {
            id: self.id(key),
            spec: serde_json::from_value(self.spec.clone())
                .map_err(|e| format!("spec is not valid: {e}")),
            verdict: Verdict::Accepted,
        }
    }

    pub fn http_rule(&self, key: &ObjKey) -> HttpRuleEntry {
        HttpRuleEntry {
            id: self.id(key),
            spec: serde_json::from_value(self.spec.clone())
                .map_err(|e| format!("spec is not valid: {e}")),
            verdict: Verdict::Accepted,
        }
    }
}

/// A rule kind's feed.
pub(super) struct RulesFeed<const HOST: bool>;

impl<const HOST: bool> RulesFeed<HOST> {
    const RULE: RuleKind = if HOST {
        RuleKind::HostRule
    } else {
        RuleKind::HttpRule
    };
}

impl<const HOST: bool> watches::Feed<DynamicObject> for RulesFeed<HOST> {
    const KIND: &'static str = if HOST { "HostRule" } else { "HTTPRule" };
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
        if HOST {
            &view.host_rules_synced
        } else {
            &view.http_rules_synced
        }
    }
    type Entry = ();
}

/// The watch of a rule kind, with the API server's "no such kind" (404: the CRD is not installed) read as an
/// empty list once, and quietly after that until the kind appears.
pub(super) fn rule_events(
    client: Client,
    kind: RuleKind,
) -> impl Stream<Item = Result<Event<DynamicObject>, watcher::Error>> + Send {
    let api = Api::<DynamicObject>::all_with(client, &kind.api_resource());
    let mut absent = false;
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
                other => {
                    if other.is_ok() {
                        absent = false;
                    }
                    Some(other)
                }
            };
            std::future::ready(out)
        })
}
