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
