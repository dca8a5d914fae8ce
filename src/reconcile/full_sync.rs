//! The full sync (re-read everything, re-plan every group) and the orphan scan with its deletion guard.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Groups per pass of a full sync.
pub(super) const FULL_SYNC_BATCH: usize = 256;

/// L7 parts per pass of a full sync.
pub(super) const L7_PARTS_PER_BATCH: usize = 1;

/// A full sync's groups in batches, so what a pass holds (plans, steps, answers) stays bounded whatever the
/// cluster's size: at most [`FULL_SYNC_BATCH`] groups, of which at most [`L7_PARTS_PER_BATCH`] L7 parts (a shared
/// parent with a thousand hosts plans thousands of objects), first in their batch so the Services fill the other
/// slots while they run.
fn batches(groups: BTreeSet<GroupId>) -> Vec<BTreeSet<GroupId>> {
    let (l7_parts, services): (Vec<GroupId>, Vec<GroupId>) = groups
        .into_iter()
        .partition(|g| matches!(g, GroupId::L7(_)));
    let mut batches: Vec<BTreeSet<GroupId>> = Vec::new();
    let mut services = services.into_iter();
    for parts in l7_parts.chunks(L7_PARTS_PER_BATCH) {
        let mut batch: BTreeSet<GroupId> = parts.iter().cloned().collect();
        batch.extend(
            services
                .by_ref()
                .take(FULL_SYNC_BATCH.saturating_sub(parts.len())),
        );
        batches.push(batch);
    }
    let rest: Vec<GroupId> = services.collect();
    batches.extend(
        rest.chunks(FULL_SYNC_BATCH)
            .map(|c| c.iter().cloned().collect()),
    );
    batches
}

impl<A: AviApi + Clone + 'static> Reconciler<A> {
    /// Reads every owned object from the controller, re-plans every group and deletes orphans.
    /// Events found meanwhile wait for it to end (see [`EventQueue::open`]).
    /// `explained`: a settings change asked for it (deleteConfig, the namespace scope), so what its passes stop
    /// wanting they delete themselves; otherwise that is left to the orphan scan and its guard.
    pub(super) async fn full_sync(&self, state: &mut State, explained: bool) {
        struct Release<'a>(&'a EventQueue);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.gate(true);
            }
        }
        self.events.gate(false);
        let _release = Release(&self.events);
        self.full_sync_inner(state, !explained).await;
    }

    #[tracing::instrument(name = "full_sync", skip_all, fields(number = state.stats.full_syncs + 1, unexplained))]
    async fn full_sync_inner(&self, state: &mut State, unexplained: bool) {
        state.stats.full_syncs += 1;
        let started = Instant::now();
        self.read_owned(state).await;
        // Every rule judged again, its names asked again: drift on the controller shows in its status.
        self.sync_rules(state, true).await;
        let (groups, report) = self.rebuild_groups(state);
        self.report_moves(state).await;
        if !self
            .run_batches(state, batches(groups), report, unexplained)
            .await
        {
            return;
        }
        self.scan_orphans(state).await;
        self.report_delete_config(state).await;
        tracing::info!(
            groups = state.members.len(),
            ingresses = state.l7.refs.len(),
            objects = state.cache.len(),
            complete = state.cache_complete,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "full sync done"
        );
    }

    /// Reads every object ako owns from the controller into the cache. Each object read replaces its cached
    /// entry, which is dropped as it arrives: a periodic full sync holds the cache once, not an old and a new
    /// copy side by side. A read that fails part way leaves the cache incomplete (nothing is deleted then).
    async fn read_owned(&self, state: &mut State) {
        let mut read: HashMap<ObjId, Cached> = HashMap::new();
        let old = &mut state.cache;
        let known_vips = &mut state.known_vips;
        match apply::for_each_owned(&self.avi, &self.identity, |e| {
            let id = (e.kind.obj_type(), e.name.clone());
            old.remove(&id);
            let c = Cached::of(&e, &self.owner);
            remember_vips(known_vips, &c, &self.owner);
            read.insert(id, c);
        })
        .await
        {
            Ok(()) => {
                // What was cached and not read again is no longer on the controller.
                state.cache = read;
                state.cache_complete = true;
            }
            Err(error) => {
                tracing::warn!(%error, "could not read ako's objects from the controller; nothing will be deleted until they can be read");
                // The objects read so far are newer than what was cached; the rest stays as it was.
                state.cache.extend(read);
                state.cache_complete = false;
            }
        }
    }

    /// Rebuilds the groups from the whole view; returns every group to pass (those with members, those that
    /// produced objects, every L7 part with all its hosts marked) and every Ingress to report on.
    fn rebuild_groups(&self, state: &mut State) -> (BTreeSet<GroupId>, BTreeSet<ObjKey>) {
        state.members.clear();
        state.group_of.clear();
        for svc in self.view.services() {
            if let Some(g) = self.group(&svc) {
                let key = ObjKey::of(&svc.metadata);
                state
                    .members
                    .entry(g.clone())
                    .or_default()
                    .insert(key.clone());
                state.group_of.insert(key, g);
            }
        }
        state.l7.clear_refs();
        let mut report: BTreeSet<ObjKey> = state.l7.status_written.keys().cloned().collect();
        for key in self.view.ingress_keys() {
            let refs = self.ingress_refs(&key);
            state.l7.set(&key, refs);
            report.insert(key);
        }
        let mut groups: BTreeSet<GroupId> = state.members.keys().cloned().collect();
        groups.extend(state.produced.keys().cloned());
        let mut parts = state.l7.parts();
        parts.extend(groups.iter().filter_map(|g| match g {
            GroupId::L7(p) => Some(p.clone()),
            GroupId::Service(_) => None,
        }));
        for p in parts {
            state.l7.mark_all(&p);
            groups.insert(GroupId::L7(p));
        }
        groups.extend(
            state
                .status_written
                .keys()
                .filter_map(|k| state.group_of.get(k).cloned()),
        );
        (groups, report)
    }

    /// Passes the batches one after the other, reporting on `report` with the last; returns false if the lease
    /// was lost on the way (the full sync stops at once: the next leader runs its own).
    async fn run_batches(
        &self,
        state: &mut State,
        batches: Vec<BTreeSet<GroupId>>,
        report: BTreeSet<ObjKey>,
        unexplained: bool,
    ) -> bool {
        let last = batches.len().saturating_sub(1);
        let mut report = Some(report);
        // A batch's statuses are written while the next batch's Avi writes run: the two go to different
        // servers, and one after the other a cold start took the sum of both.
        let mut unwritten: Option<Outbox> = None;
        for (i, batch) in batches.into_iter().enumerate() {
            if !(self.fence)() {
                tracing::info!("no longer leading: the full sync stops");
                return false;
            }
            let r = if i == last {
                report.take().unwrap_or_default()
            } else {
                BTreeSet::new()
            };
            let out = match unwritten.take() {
                // The batch that reports every Ingress compares their statuses with the view: the writes before
                // it must have landed, or it would write again what is on its way.
                Some(previous) if !r.is_empty() => {
                    self.publish(state, previous).await;
                    self.plan_and_apply(state, batch, r, unexplained).await
                }
                Some(previous) => {
                    let (out, written) = tokio::join!(
                        self.plan_and_apply(state, batch, r, unexplained),
                        self.write_statuses(previous)
                    );
                    self.settle(state, written);
                    out
                }
                None => self.plan_and_apply(state, batch, r, unexplained).await,
            };
            unwritten = Some(out);
        }
        if let Some(out) = unwritten {
            self.publish(state, out).await;
        }
        if let Some(r) = report {
            self.pass(state, BTreeSet::new(), r, unexplained).await;
        }
        true
    }

    /// Under deleteConfig, tells the operator once that every object ako created is gone.
    async fn report_delete_config(&self, state: &mut State) {
        let none_left = !state
            .cache
            .values()
            .any(|c| c.created_by.as_deref() == Some(&*self.owner));
        if self.settings.delete_all && state.cache_complete && none_left {
            if !state.delete_reported {
                state.delete_reported = true;
                let msg = format!(
                    "deleteConfig: every Avi object created by {} is deleted",
                    self.owner
                );
                self.sink
                    .operator_event(&Notice::normal("DeleteConfigDone", msg))
                    .await;
            }
        } else if !self.settings.delete_all {
            state.delete_reported = false;
        }
    }

    /// Runs an orphan scan that is due, once everything is known.
    pub(super) async fn scan_if_due(&self, state: &mut State) {
        if state.orphan_scan_due {
            self.scan_orphans(state).await;
        }
    }

    /// Deletes the objects ako owns that no group wants, if everything they could depend on was read (else the
    /// scan stays due), through the deletion guard (unless deleteConfig asked for everything to go).
    #[tracing::instrument(name = "orphan_scan", skip_all)]
    pub(super) async fn scan_orphans(&self, state: &mut State) {
        let Some(proof) = state
            .knowledge
            .complete(state.cache_complete, self.view.complete())
        else {
            if !state.orphan_scan_due {
                let unknown: Vec<String> = state
                    .knowledge
                    .unknown_groups()
                    .into_iter()
                    .map(|(g, u)| format!("{}: {}", group_name(g), join(u)))
                    .collect();
                tracing::warn!(
                    controller_read = state.cache_complete,
                    watches_complete = self.view.complete(),
                    ?unknown,
                    "orphan scan postponed: nothing is deleted until every input is known"
                );
            }
            state.orphan_scan_due = true;
            return;
        };
        state.orphan_scan_due = false;
        let wanted: BTreeSet<&ObjId> = state
            .produced
            .values()
            .flatten()
            .chain(state.produced_host.values().flatten())
            .collect();
        // Only ako's objects count: the cache also holds objects found with a name ako wants (someone else's,
        // another cluster's), which are never deleted.
        let ours: Vec<&ObjId> = state
            .cache
            .iter()
            .filter(|(_, c)| c.created_by.as_deref() == Some(&*self.owner))
            .map(|(id, _)| id)
            .collect();
        let owned = ours.len();
        // AKO's objects for features ako does not model (same created_by after a takeover): no input of ako can
        // claim them, so "nothing wants them" proves nothing; listed and left alone (deleteConfig removes them).
        let mut foreign: BTreeMap<ObjId, &'static str> = BTreeMap::new();
        let ours: Vec<&ObjId> = ours
            .into_iter()
            .filter(|id| {
                let why = (!self.settings.delete_all)
                    .then(|| ako_core::ako_objects::left_alone(id.0, &id.1, &self.cfg.cluster_name))
                    .flatten();
                if let Some(why) = why {
                    foreign.insert((*id).clone(), why);
                }
                why.is_none()
            })
            .collect();
        if foreign != state.left_alone {
            self.announce_left_alone(&foreign).await;
            state.left_alone = foreign;
        }
        let orphans: Vec<ObjId> = safety::orphans(ours, &wanted, &proof)
            .into_iter()
            .cloned()
            .collect();
        let orphans = if self.settings.delete_all {
            state.guard.clear();
            orphans
        } else {
            match state.guard.check(orphans, owned) {
                safety::Verdict::Proceed(o) => o,
                safety::Verdict::Held { hold, new } => {
                    self.announce_hold(&hold, new).await;
                    self.metrics.deletions_held.set(hold.objects.len() as i64);
                    return;
                }
            }
        };
        self.metrics.deletions_held.set(0);
        if orphans.is_empty() {
            return;
        }
        tracing::info!(
            objects = orphans.len(),
            "deleting objects no Service or Ingress wants any more"
        );
        let objects: Vec<Existing> = orphans
            .iter()
            .filter_map(|id| state.cache.get(id).map(|c| c.existing(&id.1)))
            .collect();
        let steps = plan::plan(
            &[],
            &Observed {
                objects,
                complete: true,
            },
            &self.owner,
        );
        for step in steps {
            match apply::execute(&self.avi, &step, &self.identity).await {
                Ok(_) => {
                    state.stats.deletes += 1;
                    state.cache.remove(&obj_id(step.kind(), step.name()));
                }
                Err(error) => {
                    state.stats.failures += 1;
                    tracing::warn!(kind = step.kind().obj_type(), name = step.name(), %error, "orphan not deleted; the next full sync tries again");
                }
            }
        }
    }

    /// Hosts whose virtual service changes with the configuration in force (`shardVSSize` changed, or shared <->
    /// dedicated): their address changes. Said before the writes that move them: a Warning on each Ingress naming
    /// the host, and one Event on ako's Pod with the count and a sample.
    async fn report_moves(&self, state: &mut State) {
        let cluster = &self.cfg.cluster_name;
        let shard = format!("{:?}", self.settings.shard).to_uppercase();
        let has = |kind: Kind, name: &str| state.cache.contains_key(&obj_id(kind, name));
        let vip_of = |vs: &str| -> Option<String> {
            let c = state.cache.get(&obj_id(Kind::VsVip, vs))?;
            (!c.vips.is_empty()).then(|| {
                c.vips
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
        };
        let mut moves: Vec<(String, Vec<ObjKey>, String)> = Vec::new();
        for (host, members) in state.l7.hosts() {
            // (A host an AviInfraSetting places moves when its class's setting changes, not with shardVSSize.)
            if intent::default_backend_of(host).is_some() || state.l7.infra_label(host).is_some() {
                continue;
            }
            let (new_vs, here) = match state.l7.part_of_host(host) {
                Part::Shard { index, .. } => (
                    l7::shared_vs_name(cluster, index),
                    has(
                        Kind::HttpPolicySet,
                        &l7::parent_policy_name(cluster, index, host),
                    ),
                ),
                Part::Host(_) => {
                    let name = l7::dedicated_vs_name(cluster, host);
                    let here = has(Kind::VirtualService, &name);
                    (name, here)
                }
            };
            if here
                || state
                    .moves_reported
                    .contains(&(host.clone(), new_vs.clone()))
            {
                continue;
            }
            let old_vs = (0..8u32)
                .find(|m| {
                    has(
                        Kind::HttpPolicySet,
                        &l7::parent_policy_name(cluster, *m, host),
                    )
                })
                .map(|m| l7::shared_vs_name(cluster, m))
                .or_else(|| {
                    let d = l7::dedicated_vs_name(cluster, host);
                    has(Kind::VirtualService, &d).then_some(d)
                });
            let Some(old_vs) = old_vs.filter(|o| *o != new_vs) else {
                continue;
            };
            let from = vip_of(&old_vs).map_or_else(String::new, |v| format!(" (VIP {v})"));
            let to =
                vip_of(&new_vs).map_or_else(|| "a new VIP".to_string(), |v| format!("VIP {v}"));
            let text = format!(
                "host {host} moves from virtual service {old_vs}{from} to {new_vs} ({to}) because shardVSSize is \
                 {shard} now: its address changes; clients resolving it through DNS follow, anything pinned to \
                 the old address must change (set shardVSSize back to keep it)"
            );
            state.moves_reported.insert((host.clone(), new_vs));
            moves.push((host.clone(), members.clone(), text));
        }
        if moves.is_empty() {
            return;
        }
        for (_, members, text) in &moves {
            for key in members {
                self.events.send((
                    Target::Ingress,
                    key.clone(),
                    None,
                    Notice::warning("AddressChanging", text.clone()),
                ));
            }
        }
        let sample: Vec<&str> = moves.iter().take(5).map(|(h, _, _)| h.as_str()).collect();
        self.sink
            .operator_event(&Notice::warning(
                "AddressChanging",
                format!(
                    "{} host(s) move to another virtual service and get another address with shardVSSize {shard} \
                     (e.g. {}); each Ingress concerned has a Warning naming the old and the new address",
                    moves.len(),
                    sample.join(", ")
                ),
            ))
            .await;
    }

    /// Tells the operator which of AKO's objects ako leaves alone and why (a log line each, one Event on ako's
    /// Pod with a sample), when that set changes.
    async fn announce_left_alone(&self, objects: &BTreeMap<ObjId, &'static str>) {
        if objects.is_empty() {
            return;
        }
        let mut why: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        for ((t, n), reason) in objects {
            tracing::info!(kind = %t, name = %n, reason, "AKO's object left alone");
            why.entry(*reason).or_default().push(format!("{t} {n}"));
        }
        let parts: Vec<String> = why
            .iter()
            .map(|(reason, list)| {
                let more = list.len().saturating_sub(5);
                let sample = list.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
                let more = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                format!("{} ({sample}{more}): {reason}", list.len())
            })
            .collect();
        self.sink
            .operator_event(&Notice::normal(
                "AKOObjectsLeftAlone",
                format!(
                    "ako leaves {} objects of AKO's alone (never updated or deleted; deleteConfig removes them): {}",
                    objects.len(),
                    parts.join("; ")
                ),
            ))
            .await;
    }

    /// Tells the operator about held deletions (a new hold: an Event on ako's Pod; the same hold again: a log line).
    pub(super) async fn announce_hold(&self, hold: &safety::Hold<ObjId>, new: bool) {
        let sample: Vec<String> = hold
            .objects
            .iter()
            .take(5)
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        let share = hold.objects.len() * 100 / hold.owned.max(1);
        let msg = format!(
            "ako holds the deletion of {} Avi objects ({share}% of the {} it owns) that no Service or Ingress \
             deleted while ako watched explains (e.g. {}); this protects VIPs after a restore, a re-list that came \
             back short or a cluster emptied by mistake. If they should go, release exactly this set with \
             releaseHeldDeletions: \"{}\" in ako's ConfigMap (helm: --set AKOSettings.releaseHeldDeletions={}); \
             to keep them, restore their Services and Ingresses",
            hold.objects.len(),
            hold.owned,
            sample.join(", "),
            hold.id,
            hold.id
        );
        if new {
            self.sink
                .operator_event(&Notice::warning("DeletionsHeld", msg))
                .await;
        } else {
            tracing::warn!(objects = hold.objects.len(), id = %hold.id, "deletions still held");
        }
    }
}
