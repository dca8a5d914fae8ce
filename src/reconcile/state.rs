//! What the worker owns between passes, and what one pass collects: the cached objects, the groups and what each produced, the retries, and the changes still to look at.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) struct State {
    pub(super) cache: HashMap<ObjId, Cached>,
    /// Whether `cache` holds every owned object (the last full read succeeded).
    pub(super) cache_complete: bool,
    pub(super) members: HashMap<GroupId, BTreeSet<ObjKey>>,
    pub(super) group_of: HashMap<ObjKey, GroupId>,
    /// Objects each group wanted at its last pass (kept while a pass fails, so a later one still cleans up); for
    /// an L7 part, its parent's objects (its hosts' are in `produced_host`).
    pub(super) produced: HashMap<GroupId, HashSet<ObjId>>,
    pub(super) retries: retry::Retries<GroupId>,
    /// Groups whose last translation could not read an input: not planned, and no orphan scan until known.
    pub(super) knowledge: safety::Knowledge<GroupId>,
    /// Deletions held until an operator releases them.
    pub(super) guard: safety::Guard<ObjId>,
    /// An orphan scan could not run (a group was unknown): it runs after the next pass that knows everything.
    pub(super) orphan_scan_due: bool,
    /// Objects of AKO's conventions for features ako does not model, last reported as left alone, with why.
    pub(super) left_alone: BTreeMap<ObjId, &'static str>,
    /// ClusterIP mode's static routes: retry and what was reported.
    pub(super) routes: super::routes::RouteState,
    /// Hosts reported as moving to another virtual service (host, new virtual service), so a move is said once.
    pub(super) moves_reported: HashSet<(String, String)>,
    /// Every address seen on a VsVip of ako's: a status is removed only if its addresses are among them (or ako
    /// wrote it), never another load balancer's.
    pub(super) known_vips: HashSet<IpAddr>,
    /// Cached objects whose body did not read back at planning: read again from the controller before the
    /// group's next pass (their update was not planned).
    pub(super) unreadable: Vec<(ObjId, GroupId)>,
    /// Problems last reported per Service, so an unchanged problem is not re-announced at every pass.
    pub(super) reported: HashMap<ObjKey, Vec<String>>,
    /// Services whose status ako wrote, with the fingerprint of what it wrote ([`status_print`]).
    pub(super) status_written: HashMap<ObjKey, u64>,
    /// Statuses written again after someone else overwrote them: restores in a row and when the last one was due.
    pub(super) status_fights: HashMap<ObjKey, (u32, Instant)>,
    /// deleteConfig's completion was announced.
    pub(super) delete_reported: bool,
    /// Ingresses: what they name, their hosts' translations, what was reported.
    pub(super) l7: ingress::L7State,
    /// Host -> the objects it produced (wanted, or still to delete), sorted (a host has a handful: a set's table
    /// would cost more than its items).
    pub(super) produced_host: HashMap<String, Vec<ObjId>>,
    /// HostRules and HTTPRules as last judged.
    pub(super) rules: super::rules::RuleState,
    pub(super) stats: Stats,
}

impl State {
    /// Of what a producer (a Service group, an L7 host) made before, the objects it no longer wants that still
    /// exist. When this pass may delete, they are returned, to stay in what it produces until deleted (so a
    /// failed pass deletes them later); when it may not, nothing is returned and the orphan scan, with its guard,
    /// is asked for.
    pub(super) fn stale_to_keep(
        &mut self,
        before: impl IntoIterator<Item = ObjId>,
        wanted: impl Fn(&ObjId) -> bool,
        can_delete: bool,
    ) -> Vec<ObjId> {
        let stale: Vec<ObjId> = before
            .into_iter()
            .filter(|id| self.cache.contains_key(id) && !wanted(id))
            .collect();
        if can_delete {
            return stale;
        }
        if !stale.is_empty() {
            self.orphan_scan_due = true;
        }
        Vec::new()
    }

    pub(super) fn new(settings: &Settings) -> Self {
        let mut guard = safety::Guard::new(settings.guard);
        guard.set_release(settings.release_held.clone());
        Self {
            cache: HashMap::new(),
            cache_complete: false,
            members: HashMap::new(),
            group_of: HashMap::new(),
            produced: HashMap::new(),
            retries: retry::Retries::new(settings.retry_base, settings.retry_max),
            knowledge: safety::Knowledge::default(),
            guard,
            orphan_scan_due: false,
            left_alone: BTreeMap::new(),
            routes: Default::default(),
            moves_reported: HashSet::new(),
            known_vips: HashSet::new(),
            unreadable: Vec::new(),
            reported: HashMap::new(),
            status_written: HashMap::new(),
            status_fights: HashMap::new(),
            delete_reported: false,
            l7: ingress::L7State::new(settings.shard),
            produced_host: HashMap::new(),
            rules: Default::default(),
            stats: Stats::default(),
        }
    }
}

/// What changed since the last pass (the watches' merged changes).
pub(super) type Dirty = crate::k8s::changes::Pending;

/// Status writes and Events produced by a pass.
#[derive(Default)]
pub(super) struct Outbox {
    /// Groups whose Avi writes all succeeded: their failures are forgotten once their statuses are written too.
    pub(super) applied_ok: Vec<GroupId>,
    /// The groups to retry if the write fails (none: the next full sync writes it).
    pub(super) statuses: Vec<(Vec<GroupId>, Target, ObjKey, Vec<LoadBalancerIngress>)>,
    pub(super) events: Vec<QueuedEvent>,
}

pub(super) type QueuedEvent = (Target, ObjKey, Option<String>, Notice);

/// A group's translation.
pub(super) enum Translated {
    L4(L4Desired),
    /// A part, and whether every object of it was compared.
    L7(Part, bool),
}
