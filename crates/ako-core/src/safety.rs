//! What may be deleted, by construction.
//!
//! - [`Knowledge`] records, per group, whether every input of its last translation was read. An input that could
//!   not be read (a TLS Secret answering 403, a timeout) makes the group *unknown*: it is not planned at all (its
//!   objects stay as they are: no update, no delete) and it is retried. The set of orphans (objects no group
//!   wants) can only be computed with a [`Complete`], and a [`Complete`] can only be had from
//!   [`Knowledge::complete`] when the controller's objects were read completely, the watches are complete and
//!   no group is unknown. A new input added to translation goes through [`Knowledge::record`] the same way, or it
//!   cannot take part in a deletion.
//! - [`Guard`] holds deletions that nothing observed explains. Those are made in one place only, the orphan scan:
//!   a pass that follows a re-list (a watch that came back with fewer objects) or runs in a full sync deletes
//!   nothing itself and leaves what it no longer wants to the scan, while a pass driven by individual watch
//!   events (a Service deleted, an Ingress edited) deletes what its group stopped wanting. Above a threshold (by
//!   default more than 10 objects and more than 20 % of what ako owns) the scan's deletions are held until an
//!   operator releases them with the hold's id, which names exactly that set.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;

/// An input of a group that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unknown {
    /// What it is, as a user names it: `Secret shop/web-tls`.
    pub input: String,
    /// Why it could not be read.
    pub reason: String,
}

impl std::fmt::Display for Unknown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} could not be read ({})", self.input, self.reason)
    }
}

/// Proof that everything a deletion depends on was read: the controller's objects (all pages, all kinds), every
/// watched kind, and every input of every group. Only [`Knowledge::complete`] makes one.
#[derive(Debug)]
pub struct Complete {
    _private: (),
}

/// Which groups were translated from inputs that were all read.
#[derive(Debug)]
pub struct Knowledge<G> {
    unknown: HashMap<G, Vec<Unknown>>,
}

impl<G> Default for Knowledge<G> {
    fn default() -> Self {
        Self {
            unknown: HashMap::new(),
        }
    }
}

impl<G: Clone + Eq + Hash + Ord> Knowledge<G> {
    /// Records how reading `group`'s inputs went in this pass: `Ok` for all read, or what could not be.
    pub fn record(&mut self, group: &G, reads: Result<(), Vec<Unknown>>) {
        match reads {
            Ok(()) => {
                if let Some(was) = self.unknown.remove(group) {
                    tracing::info!(
                        unknown = was.len(),
                        "every input of a group that could not be read is readable again"
                    );
                }
            }
            Err(mut what) => {
                what.sort();
                what.dedup();
                self.unknown.insert(group.clone(), what);
            }
        }
    }

    /// Forgets a group that no longer exists.
    pub fn forget(&mut self, group: &G) {
        self.unknown.remove(group);
    }

    /// The inputs `group` could not read at its last pass.
    pub fn unknown(&self, group: &G) -> Option<&[Unknown]> {
        self.unknown.get(group).map(Vec::as_slice)
    }

    /// The groups that are unknown now, with what they miss.
    pub fn unknown_groups(&self) -> BTreeMap<&G, &[Unknown]> {
        self.unknown
            .iter()
            .map(|(g, u)| (g, u.as_slice()))
            .collect()
    }

    /// A [`Complete`] when the controller's objects (`controller_read`) and the watches (`watches_complete`) are
    /// complete and no group is unknown.
    pub fn complete(&self, controller_read: bool, watches_complete: bool) -> Option<Complete> {
        (controller_read && watches_complete && self.unknown.is_empty())
            .then_some(Complete { _private: () })
    }
}

/// The objects ako owns that no group wants. Needs a [`Complete`].
pub fn orphans<'a, I, K>(owned: I, wanted: &BTreeSet<&K>, _proof: &Complete) -> Vec<&'a K>
where
    I: IntoIterator<Item = &'a K>,
    K: Ord + 'a,
{
    owned
        .into_iter()
        .filter(|id| !wanted.contains(id))
        .collect()
}

/// When deletions are held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardLimits {
    /// Unexplained deletions above this many objects...
    pub max_objects: usize,
    /// ...and above this percentage of the objects ako owns are held. 100 turns the guard off.
    pub max_percent: u32,
}

impl Default for GuardLimits {
    fn default() -> Self {
        Self {
            max_objects: 10,
            max_percent: 20,
        }
    }
}

/// A set of deletions held by the guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold<K> {
    /// Names this exact set: releasing with it releases these deletions and no others.
    pub id: String,
    pub objects: BTreeSet<K>,
    /// Objects ako owned when the hold was made.
    pub owned: usize,
}

/// What the guard decided for a pass's unexplained deletions.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict<K> {
    /// Go ahead with these.
    Proceed(Vec<K>),
    /// Too many: held (a new hold, or the same one as before).
    Held { hold: Hold<K>, new: bool },
}

/// Holds large unexplained deletions until released.
#[derive(Debug, Default)]
pub struct Guard<K> {
    limits: GuardLimits,
    /// The id an operator gave to release a hold.
    release: Option<String>,
    held: Option<Hold<K>>,
}

impl<K: Clone + Ord + Hash + std::fmt::Debug> Guard<K> {
    pub fn new(limits: GuardLimits) -> Self {
        Self {
            limits,
            release: None,
            held: None,
        }
    }

    pub fn set_limits(&mut self, limits: GuardLimits) {
        self.limits = limits;
    }

    /// The release id set by an operator (`releaseHeldDeletions`), if any.
    pub fn set_release(&mut self, id: Option<String>) {
        self.release = id
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().to_string());
    }

    /// The current hold.
    pub fn held(&self) -> Option<&Hold<K>> {
        self.held.as_ref()
    }

    /// Decides on `unexplained` deletions when ako owns `owned` objects. Below the limits, or released with the
    /// id of exactly this set, they proceed; otherwise they are held.
    pub fn check(&mut self, unexplained: Vec<K>, owned: usize) -> Verdict<K> {
        let objects: BTreeSet<K> = unexplained.iter().cloned().collect();
        let n = objects.len();
        let over_count = n > self.limits.max_objects;
        let over_share = (n as u64) * 100 > u64::from(self.limits.max_percent) * (owned as u64);
        if !(over_count && over_share) || self.limits.max_percent >= 100 {
            self.held = None;
            return Verdict::Proceed(unexplained);
        }
        let id = hold_id(&objects);
        if self.release.as_deref() == Some(id.as_str()) {
            tracing::warn!(objects = n, id = %id, "held deletions released by the operator");
            self.held = None;
            return Verdict::Proceed(unexplained);
        }
        let new = self.held.as_ref().map(|h| &h.id) != Some(&id);
        let hold = Hold { id, objects, owned };
        self.held = Some(hold.clone());
        Verdict::Held { hold, new }
    }

    /// The hold is over: nothing is unexplained any more (the sources came back, or the objects went).
    pub fn clear(&mut self) {
        self.held = None;
    }
}

/// A short, stable id of a set of objects (FNV-1a over their debug text, in order).
fn hold_id<K: std::fmt::Debug>(objects: &BTreeSet<K>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for o in objects {
        for b in format!("{o:?}").bytes().chain([0]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{:08x}", (h >> 32) ^ (h & 0xffff_ffff))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphans_need_every_input_of_every_group_read() {
        let mut k: Knowledge<&str> = Knowledge::default();
        assert!(k.complete(true, true).is_some());
        assert!(k.complete(false, true).is_none(), "controller not read");
        assert!(k.complete(true, false).is_none(), "a watch is failing");
        k.record(
            &"shard-3",
            Err(vec![Unknown {
                input: "Secret shop/web-tls".into(),
                reason: "403 Forbidden".into(),
            }]),
        );
        assert!(k.complete(true, true).is_none(), "one group is unknown");
        assert_eq!(
            k.unknown(&"shard-3").map(<[Unknown]>::len),
            Some(1),
            "what it misses is kept for the report"
        );
        k.record(&"shard-3", Ok(()));
        let proof = k.complete(true, true).expect("all read");
        let owned = ["a", "b", "c"];
        let wanted: BTreeSet<&&str> = [&"b"].into_iter().collect();
        assert_eq!(orphans(owned.iter(), &wanted, &proof), [&"a", &"c"]);
    }

    #[test]
    fn the_guard_holds_large_unexplained_deletions_until_released_with_their_id() {
        let mut g: Guard<String> = Guard::new(GuardLimits::default());
        let objs = |n: usize| (0..n).map(|i| format!("pool-{i}")).collect::<Vec<_>>();
        let table: &[(usize, usize, bool, &str)] = &[
            (10, 20, false, "ten objects are allowed whatever the share"),
            (11, 100, false, "11 % of what ako owns is under the share"),
            (21, 100, true, "21 objects, 21 %: held"),
            (50, 50, true, "everything: held"),
        ];
        for (n, owned, held, what) in table {
            let mut g: Guard<String> = Guard::new(GuardLimits::default());
            let v = g.check(objs(*n), *owned);
            assert_eq!(matches!(v, Verdict::Held { .. }), *held, "{what}");
        }
        let Verdict::Held { hold, new } = g.check(objs(30), 40) else {
            panic!("held")
        };
        assert!(new);
        assert_eq!(hold.objects.len(), 30);
        let Verdict::Held { new, .. } = g.check(objs(30), 40) else {
            panic!("still held")
        };
        assert!(
            !new,
            "the same set is the same hold (one Event, not one per pass)"
        );
        g.set_release(Some("not-the-id".into()));
        assert!(matches!(g.check(objs(30), 40), Verdict::Held { .. }));
        g.set_release(Some(hold.id.clone()));
        assert!(
            matches!(g.check(objs(31), 41), Verdict::Held { .. }),
            "a release names one set: a larger one stays held"
        );
        g.set_release(Some(hold.id.clone()));
        assert_eq!(g.check(objs(30), 40), Verdict::Proceed(objs(30)));
        assert!(g.held().is_none());
        let mut off: Guard<String> = Guard::new(GuardLimits {
            max_objects: 10,
            max_percent: 100,
        });
        assert!(
            matches!(off.check(objs(50), 50), Verdict::Proceed(_)),
            "100 % turns it off"
        );
    }
}
