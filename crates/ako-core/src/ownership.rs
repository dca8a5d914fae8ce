//! The ownership rule, written once: when several objects claim the same thing (a host, a VIP), the oldest claim
//! owns it: oldest `creationTimestamp` first, then namespace/name. An object not stored yet (no creationTimestamp,
//! as in an admission request for a create) is the newest. Admission applies it to deny, the reconciler to pick
//! the winner of a conflict that slipped past admission, `ako check` to order files.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Where a claim stands in the ownership order (smaller is older, and wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Order<'a> {
    created: i64,
    namespace: &'a str,
    name: &'a str,
}

impl<'a> Order<'a> {
    /// `created` in seconds; `None` for an object not stored yet, which sorts after every stored one.
    pub fn new(created: Option<i64>, namespace: &'a str, name: &'a str) -> Self {
        Self {
            created: created.unwrap_or(i64::MAX),
            namespace,
            name,
        }
    }
}

/// creationTimestamp in seconds, the first part of the ownership order (`None`: not stored yet).
pub fn created(meta: &ObjectMeta) -> Option<i64> {
    meta.creation_timestamp.as_ref().map(|t| t.0.as_second())
}

/// Anything that claims a resource and takes part in the ownership order.
pub trait Claim {
    fn order(&self) -> Order<'_>;
}

impl<C: Claim> Claim for std::sync::Arc<C> {
    fn order(&self) -> Order<'_> {
        (**self).order()
    }
}

/// The outcome of the rule for one claimant against the other claims of the same resource.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict<'a, C> {
    /// Nobody else claims it.
    Free,
    /// An older claim holds it (the oldest of the others).
    Taken(&'a C),
    /// The claimant holds it; `C` is the oldest of the newer claims, which lose.
    Held(&'a C),
}

impl<'a, C> Verdict<'a, C> {
    /// The oldest other claim, whichever side of the claimant it is on.
    pub fn other(&self) -> Option<&'a C> {
        match *self {
            Verdict::Free => None,
            Verdict::Taken(c) | Verdict::Held(c) => Some(c),
        }
    }
}

/// Applies the rule: `me` against `others` (which must not include `me`).
pub fn verdict<'a, C: Claim>(
    me: Order<'_>,
    others: impl IntoIterator<Item = &'a C>,
) -> Verdict<'a, C> {
    match others.into_iter().min_by(|a, b| a.order().cmp(&b.order())) {
        None => Verdict::Free,
        Some(oldest) if oldest.order() < me => Verdict::Taken(oldest),
        Some(oldest) => Verdict::Held(oldest),
    }
}

/// The owner among all claims of one resource (the oldest), if any.
pub fn owner<'a, C: Claim>(claims: impl IntoIterator<Item = &'a C>) -> Option<&'a C> {
    claims.into_iter().min_by(|a, b| a.order().cmp(&b.order()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    struct C(Option<i64>, &'static str, &'static str);
    impl Claim for C {
        fn order(&self) -> Order<'_> {
            Order::new(self.0, self.1, self.2)
        }
    }

    #[test]
    fn verdict_table() {
        let me = C(Some(10), "b", "me");
        let older = C(Some(5), "z", "z");
        let same_second_smaller_ns = C(Some(10), "a", "x");
        let same_second_bigger_ns = C(Some(10), "c", "x");
        let newer = C(Some(11), "a", "a");
        let unstored = C(None, "a", "a");
        let cases: Vec<(&str, Vec<&C>, Verdict<'_, C>)> = vec![
            ("nobody else", vec![], Verdict::Free),
            ("older wins", vec![&newer, &older], Verdict::Taken(&older)),
            (
                "same second: namespace decides",
                vec![&same_second_smaller_ns],
                Verdict::Taken(&same_second_smaller_ns),
            ),
            (
                "same second, later namespace loses",
                vec![&same_second_bigger_ns],
                Verdict::Held(&same_second_bigger_ns),
            ),
            (
                "newest other reported when held",
                vec![&unstored, &newer],
                Verdict::Held(&newer),
            ),
        ];
        for (name, others, want) in cases {
            assert_eq!(verdict(me.order(), others), want, "{name}");
        }
    }

    #[test]
    fn unstored_object_is_the_newest() {
        let unstored = C(None, "a", "a");
        let stored = C(Some(i64::MAX - 1), "z", "z");
        assert_eq!(
            verdict(unstored.order(), [&stored]),
            Verdict::Taken(&stored)
        );
        assert_eq!(owner([&unstored, &stored]), Some(&stored));
        assert_eq!(owner::<C>([]), None);
    }
}

/// Who owns an Avi object, as the reconciler decides it: `created_by = ako-<clusterName>` (for a VsVip, which has
/// no `created_by` in the controller's schema: the name prefix `<clusterName>--` and the `clustername` marker, as
/// AKO finds its VsVips), and, when the cluster's identity is known, no `clusteruid` marker naming another
/// cluster. Two clusters left at the same clusterName on one controller therefore never take each other's
/// objects; objects without the marker (made by AKO or an older ako) are adopted by the `created_by` rule and
/// get the marker at their next write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub cluster: String,
    /// `ako-<cluster>`.
    pub created_by: String,
    /// The kube-system Namespace's UID, when it could be read.
    pub cluster_uid: Option<String>,
}

/// The marker key of the cluster's identity.
pub const CLUSTER_UID_MARKER: &str = "clusteruid";

fn marker_values<'a>(
    body: &'a serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Option<Vec<&'a str>> {
    body.get("markers")?
        .as_array()?
        .iter()
        .find(|m| m.get("key").and_then(serde_json::Value::as_str) == Some(key))
        .map(|m| {
            m.get("values")
                .and_then(serde_json::Value::as_array)
                .map(|v| v.iter().filter_map(serde_json::Value::as_str).collect())
                .unwrap_or_default()
        })
}

impl Identity {
    pub fn new(cluster: &str, cluster_uid: Option<String>) -> Self {
        Self {
            cluster: cluster.to_string(),
            created_by: format!("ako-{cluster}"),
            cluster_uid,
        }
    }

    /// The owner of an object as ako compares it with [`Identity::created_by`]: the object's `created_by` (for
    /// a VsVip, ako's when its name and `clustername` marker are this cluster's), or a text naming the other
    /// cluster when its `clusteruid` marker is not ours.
    pub fn owner_of(
        &self,
        is_vsvip: bool,
        name: &str,
        body: &serde_json::Map<String, serde_json::Value>,
    ) -> Option<String> {
        let created_by = body
            .get("created_by")
            .and_then(serde_json::Value::as_str)
            .map(String::from);
        let claimed = if is_vsvip {
            let named = name.starts_with(&format!("{}--", self.cluster));
            let marked = marker_values(body, "clustername")
                .is_some_and(|v| v.contains(&self.cluster.as_str()));
            // An older ako wrote created_by on its VsVips; the controller's schema has no such field.
            if named && (marked || created_by.as_deref() == Some(&self.created_by)) {
                Some(self.created_by.clone())
            } else {
                created_by
            }
        } else {
            created_by
        };
        match (&self.cluster_uid, marker_values(body, CLUSTER_UID_MARKER)) {
            (Some(ours), Some(theirs))
                if !theirs.is_empty() && !theirs.contains(&ours.as_str()) =>
            {
                Some(format!(
                    "{} of another cluster (clusteruid {})",
                    claimed.as_deref().unwrap_or("an object"),
                    theirs.join(",")
                ))
            }
            _ => claimed,
        }
    }

    /// Marks a body ako writes with the cluster's identity (the `clusteruid` marker); a VsVip gets no
    /// `created_by` (its schema has none) and always the `clustername` marker that makes it ako's.
    pub fn stamp(&self, is_vsvip: bool, body: &mut serde_json::Map<String, serde_json::Value>) {
        use serde_json::{Value, json};
        let markers = body
            .entry("markers")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = markers {
            let has = |list: &Vec<Value>, key: &str| {
                list.iter()
                    .any(|m| m.get("key").and_then(Value::as_str) == Some(key))
            };
            if is_vsvip && !has(list, "clustername") {
                list.insert(0, json!({"key": "clustername", "values": [self.cluster]}));
            }
            if let Some(uid) = &self.cluster_uid {
                list.retain(|m| m.get("key").and_then(Value::as_str) != Some(CLUSTER_UID_MARKER));
                list.push(json!({"key": CLUSTER_UID_MARKER, "values": [uid]}));
            }
        }
        if is_vsvip {
            body.remove("created_by");
        }
    }
}

#[cfg(test)]
mod identity_tests {
    use super::*;
    use serde_json::json;

    fn body(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn ownership_follows_created_by_the_vsvip_markers_and_the_cluster_identity() {
        let id = Identity::new("lab", Some("uid-a".into()));
        let mine = Some("ako-lab".to_string());
        let cases: Vec<(&str, bool, &str, serde_json::Value, Option<String>)> = vec![
            (
                "pool of ours",
                false,
                "lab--p",
                json!({"created_by": "ako-lab"}),
                mine.clone(),
            ),
            (
                "pool of ours, this cluster's marker",
                false,
                "lab--p",
                json!({"created_by": "ako-lab", "markers": [{"key": "clusteruid", "values": ["uid-a"]}]}),
                mine.clone(),
            ),
            (
                "pool of another cluster with the same name",
                false,
                "lab--p",
                json!({"created_by": "ako-lab", "markers": [{"key": "clusteruid", "values": ["uid-b"]}]}),
                Some("ako-lab of another cluster (clusteruid uid-b)".into()),
            ),
            (
                "pool of someone else",
                false,
                "lab--p",
                json!({"created_by": "terraform"}),
                Some("terraform".into()),
            ),
            ("pool of nobody", false, "lab--p", json!({}), None),
            (
                "VsVip by name and marker",
                true,
                "lab--web",
                json!({"markers": [{"key": "clustername", "values": ["lab"]}]}),
                mine.clone(),
            ),
            (
                "VsVip of an older ako (created_by)",
                true,
                "lab--web",
                json!({"created_by": "ako-lab"}),
                mine.clone(),
            ),
            (
                "VsVip with the marker but another prefix",
                true,
                "other--web",
                json!({"markers": [{"key": "clustername", "values": ["lab"]}]}),
                None,
            ),
            (
                "VsVip named like ours without the marker",
                true,
                "lab--web",
                json!({}),
                None,
            ),
            (
                "VsVip of another cluster",
                true,
                "lab--web",
                json!({"markers": [{"key": "clustername", "values": ["lab"]}, {"key": "clusteruid", "values": ["uid-b"]}]}),
                Some("ako-lab of another cluster (clusteruid uid-b)".into()),
            ),
        ];
        for (what, vsvip, name, b, want) in cases {
            assert_eq!(id.owner_of(vsvip, name, &body(b)), want, "{what}");
        }
        let unknown = Identity::new("lab", None);
        assert_eq!(
            unknown.owner_of(false, "lab--p", &body(json!({"created_by": "ako-lab", "markers": [{"key": "clusteruid", "values": ["uid-b"]}]}))),
            mine,
            "without a known identity the created_by rule alone decides"
        );
    }

    #[test]
    fn stamping_marks_the_identity_and_keeps_created_by_off_vsvips() {
        let id = Identity::new("lab", Some("uid-a".into()));
        let mut vip = body(json!({"name": "lab--web", "created_by": "ako-lab"}));
        id.stamp(true, &mut vip);
        assert_eq!(
            serde_json::Value::Object(vip.clone()),
            json!({"name": "lab--web", "markers": [
                {"key": "clustername", "values": ["lab"]}, {"key": "clusteruid", "values": ["uid-a"]}]})
        );
        id.stamp(true, &mut vip);
        assert_eq!(
            vip["markers"].as_array().map(Vec::len),
            Some(2),
            "stamping twice changes nothing"
        );
        let mut pool = body(
            json!({"created_by": "ako-lab", "markers": [{"key": "clustername", "values": ["lab"]}]}),
        );
        id.stamp(false, &mut pool);
        assert_eq!(pool["created_by"], "ako-lab");
        assert_eq!(pool["markers"][1]["key"], "clusteruid");
    }
}
