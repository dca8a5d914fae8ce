//! Status and Events: what each Service and Ingress is told after a pass, written concurrently, with what failed retried.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Status writes done, with the Events of the same pass still to queue.
pub(super) struct Written {
    pub(super) statuses: Vec<StatusWrite>,
    pub(super) events: Vec<QueuedEvent>,
    pub(super) applied_ok: Vec<GroupId>,
}

/// One status write: the groups to retry if it failed, what it was written to, the fingerprint of what it wrote
/// (none: it cleared the status), and how it went.
pub(super) type StatusWrite = (
    Vec<GroupId>,
    Target,
    ObjKey,
    Option<u64>,
    Result<(), String>,
);

/// Restores of an overwritten status done at once before backing off ([`Reconciler::status_restore`]).
pub(super) const STATUS_RESTORES_AT_ONCE: u32 = 2;
/// Overwrites further apart than this start counting again.
pub(super) const STATUS_FIGHT_WINDOW: Duration = Duration::from_secs(60);

/// A part of the Ingress whose inputs could not be read keeps its objects as they are: so does the status, and
/// the Ingress says why (once per distinct reason). Returns whether that is the case.
fn report_unknown(
    state: &mut State,
    key: &ObjKey,
    parts: &[Part],
    uid: &Option<String>,
    out: &mut Outbox,
) -> bool {
    let unknown: Vec<safety::Unknown> = parts
        .iter()
        .filter_map(|p| state.knowledge.unknown(&GroupId::L7(p.clone())))
        .flatten()
        .cloned()
        .collect();
    if unknown.is_empty() {
        return false;
    }
    let text = format!(
        "{}: the Avi objects of this Ingress's hosts are kept as they are (no update, no deletion) and ako \
         retries with backoff",
        join(&unknown)
    );
    if state.l7.reported.get(key) != Some(&vec![text.clone()]) {
        out.events.push((
            Target::Ingress,
            key.clone(),
            uid.clone(),
            Notice::warning("InputUnreadable", text.clone()),
        ));
        state.l7.reported.insert(key.clone(), vec![text]);
    }
    true
}

/// The Ingress's problems and the Avi errors of its parts, announced when they change.
fn announce_problems(
    state: &mut State,
    key: &ObjKey,
    parts: &[Part],
    problems: &[intent::Problem],
    events: &mut Vec<Notice>,
) {
    let mut texts: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
    for p in parts {
        texts.extend(state.l7.part_notices.get(p).into_iter().flatten().cloned());
    }
    if state.l7.reported.get(key) == Some(&texts) {
        return;
    }
    let before: HashSet<String> = state
        .l7
        .reported
        .get(key)
        .map(|v| v.iter().cloned().collect())
        .unwrap_or_default();
    for p in problems {
        if !before.contains(&p.message) {
            events.push(problem_notice(p, Target::Ingress));
        }
    }
    for p in parts {
        for t in state.l7.part_notices.get(p).into_iter().flatten() {
            if !before.contains(t) {
                events.push(Notice::warning("AviError", t.clone()));
            }
        }
    }
    state.l7.reported.insert(key.clone(), texts);
}

/// The Warning Event of a translation problem: AKO's reason where AKO has one for the condition, else `Invalid*`
/// for what the webhook would deny and `*Warning` otherwise; with the field when there is one.
pub(super) fn problem_notice(p: &intent::Problem, target: Target) -> Notice {
    let reason = p
        .reason
        .unwrap_or(match (p.severity == Severity::Deny, target) {
            (true, Target::Service) => "InvalidService",
            (false, Target::Service) => "ServiceWarning",
            (true, Target::Ingress) => "InvalidIngress",
            (false, Target::Ingress) => "IngressWarning",
            (true, Target::Rule(_)) => "Rejected",
            (false, Target::Rule(_)) => "RuleWarning",
        });
    let field = if p.field.is_empty() {
        String::new()
    } else {
        format!(" ({})", p.field)
    };
    Notice::warning(reason, format!("{}{field}", p.message))
}

/// AKO's Event for a host no longer served, in AKO's words.
fn removed_notice(host: &str) -> Notice {
    let what = match intent::default_backend_of(host) {
        Some(_) => "spec.defaultBackend",
        None => host,
    };
    Notice::normal(
        intent::reasons::REMOVED,
        format!("Removed virtualservice for {what}"),
    )
}

/// Remembers the addresses of one of ako's VsVips.
pub(super) fn remember_vips(known: &mut HashSet<IpAddr>, c: &Cached, owner: &str) {
    if c.kind == Kind::VsVip && c.created_by.as_deref() == Some(owner) {
        known.extend(c.vips.iter().copied());
    }
}

/// Whether a status may be removed: ako wrote exactly it, or every entry is an address of one of ako's VsVips.
/// Another load balancer's status (or a hand-written one) stays.
pub(super) fn may_clear(
    state: &State,
    written: &HashMap<ObjKey, u64>,
    key: &ObjKey,
    have: &[LoadBalancerIngress],
) -> bool {
    if written.get(key) == Some(&status_print(have)) {
        return true;
    }
    let ours = !have.is_empty()
        && have.iter().all(|i| {
            i.ip.as_deref()
                .and_then(|ip| ip.parse::<IpAddr>().ok())
                .is_some_and(|ip| state.known_vips.contains(&ip))
        });
    if !ours {
        tracing::info!(object = %key, "status not written by ako; left as it is");
    }
    ours
}

/// A Service's `status.loadBalancer.ingress` (empty if it has none).
pub(super) fn service_status(svc: &Service) -> &[LoadBalancerIngress] {
    svc.status
        .as_ref()
        .and_then(|st| st.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_deref())
        .unwrap_or_default()
}

/// Whether ako wrote a status for `key` and the one now shown differs from it (someone else's edit; ako's own
/// write coming back matches).
pub(super) fn overwritten(
    written: &HashMap<ObjKey, u64>,
    key: &ObjKey,
    now: &[LoadBalancerIngress],
) -> bool {
    written.get(key).is_some_and(|w| *w != status_print(now))
}

/// A status's fingerprint, over what [`same_status`] compares (each entry's address and hostname, in order).
pub(super) fn status_print(list: &[LoadBalancerIngress]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    list.len().hash(&mut h);
    for i in list {
        i.ip.hash(&mut h);
        i.hostname.hash(&mut h);
    }
    h.finish()
}

pub(super) fn same_status(have: &[LoadBalancerIngress], want: &[LoadBalancerIngress]) -> bool {
    have.len() == want.len()
        && have
            .iter()
            .zip(want)
            .all(|(h, w)| h.ip == w.ip && h.hostname == w.hostname)
}

impl<A: AviApi + Clone + 'static> Reconciler<A> {
    /// Status and Events of one Ingress, from what its parts' last translations said about it.
    pub(super) fn report_ingress(&self, state: &mut State, key: &ObjKey, out: &mut Outbox) {
        let Some(ing) = self.view.ingress(key) else {
            state.l7.forget(key);
            return;
        };
        let have = ingress::current_status(&ing);
        let uid = ing.metadata.uid.clone();
        if !state.l7.refs.contains_key(key) {
            // Not ako's (any more): its status goes if the addresses there are ako's.
            if !have.is_empty() && may_clear(state, &state.l7.status_written, key, &have) {
                out.statuses
                    .push((Vec::new(), Target::Ingress, key.clone(), Vec::new()));
            }
            state.l7.reported.remove(key);
            // It was served and is not any more (another class, or out of scope): AKO's Removed, per host.
            for host in state
                .l7
                .announced
                .remove(key)
                .unwrap_or_default()
                .into_keys()
            {
                out.events.push((
                    Target::Ingress,
                    key.clone(),
                    uid.clone(),
                    removed_notice(&host),
                ));
            }
            return;
        }
        let parts: Vec<Part> = state.l7.parts_of(key);
        if report_unknown(state, key, &parts, &uid, out) {
            return;
        }
        let (hosts, problems) = state.l7.merged(key);
        let mut vips: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        for h in &hosts {
            let ips = state
                .cache
                .get(&(Kind::VsVip.obj_type(), h.vip_name.clone()))
                .filter(|c| c.created_by.as_deref() == Some(&*self.owner))
                .map(|c| c.vips.to_vec())
                .unwrap_or_default();
            vips.insert(h.vip_name.clone(), ips);
        }
        let want = ingress::status_of(&hosts, &vips);
        let groups: Vec<GroupId> = parts.iter().cloned().map(GroupId::L7).collect();
        if !same_status(&have, &want) {
            if !want.is_empty() || may_clear(state, &state.l7.status_written, key, &have) {
                out.statuses
                    .push((groups, Target::Ingress, key.clone(), want.clone()));
            }
        } else if !want.is_empty() {
            state
                .l7
                .status_written
                .insert(key.clone(), status_print(&want));
        }
        let mut events = Vec::new();
        announce_problems(state, key, &parts, &problems, &mut events);
        self.announce_hosts(state, key, &hosts, &vips, &mut events);
        out.events.extend(
            events
                .into_iter()
                .map(|n| (Target::Ingress, key.clone(), uid.clone(), n)),
        );
    }

    /// A Normal Event per host programmed (its part applied and its VIP known) that is new or moved.
    fn announce_hosts(
        &self,
        state: &mut State,
        key: &ObjKey,
        hosts: &[l7::HostOutcome],
        vips: &BTreeMap<String, Vec<IpAddr>>,
        events: &mut Vec<Notice>,
    ) {
        let before = state.l7.announced.remove(key).unwrap_or_default();
        // Host -> the line announcing it. A host still served whose part is being written again keeps its line
        // (no Removed/Synced pair for a transient state).
        let mut lines: BTreeMap<String, String> = BTreeMap::new();
        for h in hosts {
            let part = state.l7.part_of_host(&h.host);
            let ips = vips.get(&h.vip_name).cloned().unwrap_or_default();
            if ips.is_empty() || !state.l7.applied.get(&part).copied().unwrap_or(false) {
                if let Some(line) = before.get(&h.host) {
                    lines.insert(h.host.clone(), line.clone());
                }
                continue;
            }
            let ips: Vec<String> = ips.iter().map(ToString::to_string).collect();
            let proto = if h.tls { "HTTP and HTTPS" } else { "HTTP" };
            let what = match intent::default_backend_of(&h.host) {
                Some(_) => "spec.defaultBackend (every host)".to_string(),
                None => format!("host {}", h.host),
            };
            lines.insert(
                h.host.clone(),
                format!(
                    "{what} is served by virtual service {} on the Avi controller (VIP {}, {proto})",
                    h.vs_name,
                    ips.join(", ")
                ),
            );
        }
        for (host, line) in &lines {
            if before.get(host) != Some(line) {
                events.push(Notice::normal("Synced", line.clone()));
            }
        }
        // A host no longer served: AKO's Removed, with AKO's wording.
        for host in before.keys().filter(|h| !lines.contains_key(*h)) {
            events.push(removed_notice(host));
        }
        if !lines.is_empty() {
            state.l7.announced.insert(key.clone(), lines);
        }
    }

    /// Status and Events for the Services of one group, queued in `out`.
    pub(super) fn report(
        &self,
        state: &mut State,
        g: &GroupId,
        desired: &L4Desired,
        group_notices: &[Notice],
        vs_written: Option<(String, bool)>,
        out: &mut Outbox,
    ) {
        let mut outcomes: Vec<&ServiceOutcome> = desired.outcomes.iter().collect();
        // Services that left ako (or the group) while they had a status from ako: it is removed.
        let in_outcomes: HashSet<&ObjKey> = outcomes.iter().map(|o| &o.key).collect();
        let gone: Vec<ServiceOutcome> = state
            .status_written
            .keys()
            .filter(|k| !in_outcomes.contains(k) && !state.group_of.contains_key(*k))
            .map(|k| ServiceOutcome::left_out(k.clone(), Vec::new()))
            .collect();
        outcomes.extend(gone.iter());

        for o in outcomes {
            let Some(svc) = self.view.service(&o.key) else {
                state.status_written.remove(&o.key);
                continue;
            };
            let vips: Vec<IpAddr> = o
                .vs_name
                .as_ref()
                .and_then(|n| state.cache.get(&(Kind::VsVip.obj_type(), n.clone())))
                .filter(|c| c.created_by.as_deref() == Some(&*self.owner))
                .map(|c| c.vips.to_vec())
                .unwrap_or_default();
            let want = l4::load_balancer_ingress(o, &vips);
            let have = service_status(&svc);
            // Every outcome is a Service ako is the load balancer of, or one it published a status for; an
            // address ako did not write is never removed.
            if !same_status(have, &want) {
                if !want.is_empty() || may_clear(state, &state.status_written, &o.key, have) {
                    out.statuses
                        .push((vec![g.clone()], Target::Service, o.key.clone(), want));
                }
            } else if !want.is_empty() {
                state
                    .status_written
                    .insert(o.key.clone(), status_print(&want));
            }
            let uid = svc.metadata.uid.clone();
            let mut event = |n: Notice| {
                out.events
                    .push((Target::Service, o.key.clone(), uid.clone(), n))
            };
            // Problems: announced when they change, not at every pass.
            let texts: Vec<String> = o.problems.iter().map(|p| p.message.clone()).collect();
            if state.reported.get(&o.key) != Some(&texts) {
                for p in &o.problems {
                    event(problem_notice(p, Target::Service));
                }
                state.reported.insert(o.key.clone(), texts);
            }
            for n in group_notices {
                event(n.clone());
            }
            if let (Some((vs, created)), Some(_)) = (&vs_written, &o.vs_name) {
                let vip = vips
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                let verb = if *created { "created" } else { "updated" };
                event(Notice::normal(
                    "Synced",
                    format!("virtual service {vs} {verb} on the Avi controller (VIP {vip})"),
                ));
            }
        }
    }

    /// Writes an outbox's statuses concurrently (touching no state, so it can run beside the next batch's
    /// writes).
    pub(super) async fn write_statuses(&self, out: Outbox) -> Written {
        let sink = &self.sink;
        let statuses = futures::stream::iter(out.statuses.into_iter().map(
            |(groups, target, key, want)| async move {
                let res = sink.status(target, &key, &want).await;
                let print = (!want.is_empty()).then(|| status_print(&want));
                (groups, target, key, print, res)
            },
        ))
        .buffer_unordered(self.settings.concurrency.max(1) * 2)
        .collect()
        .await;
        Written {
            statuses,
            events: out.events,
            applied_ok: out.applied_ok,
        }
    }

    /// Records what the status writes did (a failed one schedules its groups again) and queues the Events.
    pub(super) fn settle(&self, state: &mut State, written: Written) {
        let mut failed_groups: HashSet<GroupId> = HashSet::new();
        let mut events = written.events;
        for (groups, target, key, print, res) in written.statuses {
            let written = match target {
                Target::Service => &mut state.status_written,
                Target::Ingress => &mut state.l7.status_written,
                Target::Rule(_) => continue,
            };
            match res {
                Ok(()) => {
                    state.stats.status_patches += 1;
                    match print {
                        None => written.remove(&key),
                        Some(p) => written.insert(key, p),
                    };
                }
                Err(error) => {
                    tracing::warn!(kind = ?target, object = %key, %error, "status not written; retrying");
                    if groups.is_empty() {
                        tracing::warn!(kind = ?target, object = %key, "the next full sync writes this status");
                    }
                    // Never only a log line: the object says why its address is not shown.
                    events.push((
                        target,
                        key.clone(),
                        None,
                        Notice::warning(
                            "StatusNotWritten",
                            format!(
                                "status.loadBalancer could not be written: {}; ako retries with backoff",
                                cap_text(&error, 300)
                            ),
                        ),
                    ));
                    for g in groups {
                        if failed_groups.insert(g.clone()) {
                            state.retries.failed(&g, retry::Remedy::Transient, None);
                            self.metrics.retried(retry::Remedy::Transient);
                        }
                    }
                }
            }
        }
        for g in written.applied_ok {
            if !failed_groups.contains(&g) {
                state.retries.succeeded(&g);
            }
        }
        for e in events {
            self.events.send(e);
        }
    }
}
