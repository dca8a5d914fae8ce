//! One pass: translate and plan the groups touched, apply their writes (groups concurrently, a group's steps in waves), and record what happened.

#[allow(clippy::wildcard_imports)]
use super::*;

use tracing::Instrument;

/// The result of applying one group's plan.
pub(super) struct GroupResult {
    pub(super) group: GroupId,
    /// Each write done, without its body, with what the controller now holds (`None`: deleted).
    pub(super) applied: Vec<(Step, Option<Cached>)>,
    pub(super) error: Option<(Step, AviError)>,
}

/// A group planned: its steps (only the conflicts once applied) and its translation.
pub(super) type Planned = (GroupId, Vec<Step>, Translated);

/// What planning one L7 part reads besides the state.
struct PartWork<'a> {
    hosts: &'a BTreeSet<String>,
    all: bool,
    secrets: &'a SecretReads,
    nodes: &'a [l4::NodeInfo],
    can_delete: bool,
}

/// A Warning for each object ako would not write over (someone else's, of the wanted name); a log line for each
/// write held back because it would refer to one.
fn conflict_notices(g: &GroupId, steps: &[Step], notices: &mut Vec<Notice>) {
    for step in steps {
        match step {
            Step::Conflict { kind, name, owner } => {
                notices.push(Notice::warning(
                    "NameConflict",
                    format!(
                        "{} {name} already exists on the controller and was not created by ako ({}); ako does not overwrite it or write anything that would refer to it: rename or delete it there",
                        kind.obj_type(),
                        owner.as_deref().map_or("created_by unset".to_string(), |o| format!("created_by {o}"))
                    ),
                ));
            }
            Step::Blocked { kind, name, by } => {
                tracing::info!(group = %group_name(g), kind = kind.obj_type(), name = %name, blocked_by = %by, "not written: it would refer to an object ako does not own");
            }
            _ => {}
        }
    }
}

/// Records how an L7 part's pass went: re-planned whole after a failure, its Avi errors kept for its Ingresses'
/// reports, forgotten once it serves no host and produced nothing.
fn record_part(state: &mut State, g: &GroupId, part: &Part, failed: bool, notices: &[Notice]) {
    if failed {
        state.l7.replan(part);
    }
    state.l7.applied.insert(part.clone(), !failed);
    let texts: Vec<String> = notices.iter().map(|n| n.message.clone()).collect();
    if texts.is_empty() {
        state.l7.part_notices.remove(part);
    } else {
        state.l7.part_notices.insert(part.clone(), texts);
    }
    if state.l7.hosts_of_part(part).is_empty() && !state.produced.contains_key(g) {
        state.l7.applied.remove(part);
        state.l7.part_notices.remove(part);
    }
}

/// A step without its body (what is kept of a write once it is done).
pub(super) fn lighten(step: Step) -> Step {
    match step {
        Step::Create { kind, name, .. } => Step::Create {
            kind,
            name,
            body: Map::new(),
        },
        Step::Update {
            kind, name, uuid, ..
        } => Step::Update {
            kind,
            name,
            uuid,
            body: Map::new(),
        },
        other => other,
    }
}

/// Writes of one kind applied at the same time within a group (an L7 part creates thousands of pools).
pub(super) const WAVE_CONCURRENCY: usize = 8;

/// Applies the steps of one group in plan order, stopping at the first failure. Consecutive steps of the same
/// kind and direction (a *wave*: say, every pool to create) depend on none of each other and are applied
/// concurrently; the next wave starts only once the previous one fully succeeded, so a reference never names
/// an object not yet written and no object is deleted while still referenced.
pub(super) async fn apply_group<A: AviApi>(
    avi: A,
    owner: Arc<str>,
    identity: ako_core::ownership::Identity,
    group: GroupId,
    steps: Vec<Step>,
    fence: Fence,
) -> GroupResult {
    let mut applied = Vec::new();
    let mut waves: Vec<Vec<Step>> = Vec::new();
    for step in steps.into_iter().filter(Step::is_write) {
        let key = (matches!(step, Step::Delete { .. }), step.kind());
        match waves.last_mut() {
            Some(w)
                if w.first()
                    .is_some_and(|f| (matches!(f, Step::Delete { .. }), f.kind()) == key) =>
            {
                w.push(step);
            }
            _ => waves.push(vec![step]),
        }
    }
    for wave in waves {
        // Each answer is reduced to its cached form as it arrives: a wave of a thousand parsed answers would
        // otherwise be held at once.
        let results: Vec<(Step, Result<Option<Cached>, AviError>)> = futures::stream::iter(wave)
            .map(|step| {
                let avi = &avi;
                let fence = &fence;
                let owner = &owner;
                let identity = &identity;
                async move {
                    if !fence() {
                        return (step, Err(AviError::Fenced));
                    }
                    tracing::debug!(
                        verb = step.verb(),
                        kind = step.kind().obj_type(),
                        name = step.name(),
                        "write"
                    );
                    let r = apply::execute(avi, &step, identity).await.map(|a| match a {
                        Applied::Stored(e) => Some(Cached::of(&e, owner)),
                        Applied::Deleted => None,
                    });
                    (lighten(step), r)
                }
            })
            .buffer_unordered(WAVE_CONCURRENCY)
            .collect()
            .await;
        let mut error = None;
        for (step, r) in results {
            match r {
                Ok(cached) => applied.push((step, cached)),
                Err(e) => {
                    if error.is_none() {
                        error = Some((step, e));
                    }
                }
            }
        }
        if error.is_some() {
            let span = tracing::Span::current();
            span.record("writes", applied.len());
            span.record("outcome", "failed");
            return GroupResult {
                group,
                applied,
                error,
            };
        }
    }
    let span = tracing::Span::current();
    span.record("writes", applied.len());
    span.record(
        "outcome",
        if applied.is_empty() {
            "unchanged"
        } else {
            "applied"
        },
    );
    if !applied.is_empty() {
        tracing::debug!("group applied");
    }
    GroupResult {
        group,
        applied,
        error: None,
    }
}

/// The span of one group's writes: `group` (its name), `kind` (`service`, `shared-vip` or `l7`), `namespace` and
/// `name` where the group is one Service or one shared-VIP key, then `writes` and `outcome` (`applied`,
/// `unchanged`, `failed`) once applied. One Ingress's journey is its part's `group` field in the JSON logs.
fn group_span(g: &GroupId) -> tracing::Span {
    let (kind, namespace, name) = match g {
        GroupId::Service(sg) if sg.shared => {
            ("shared-vip", sg.namespace.as_str(), sg.base.as_str())
        }
        GroupId::Service(sg) => ("service", sg.namespace.as_str(), sg.base.as_str()),
        GroupId::L7(_) => ("l7", "", ""),
    };
    tracing::info_span!(
        "group",
        group = %group_name(g),
        kind,
        namespace = tracing::field::display(namespace),
        name = tracing::field::display(name),
        writes = tracing::field::Empty,
        outcome = tracing::field::Empty,
    )
}

impl<A: AviApi + Clone + 'static> Reconciler<A> {
    /// Translates, plans, applies and reports the given groups, then reports on `report` and on every Ingress
    /// of the L7 parts passed.
    /// `unexplained`: the pass follows a re-list, so it deletes nothing itself (see [`safety`]).
    pub(super) async fn pass(
        &self,
        state: &mut State,
        groups: BTreeSet<GroupId>,
        report: BTreeSet<ObjKey>,
        unexplained: bool,
    ) {
        let outbox = self
            .plan_and_apply(state, groups, report, unexplained)
            .await;
        self.publish(state, outbox).await;
        if unexplained {
            state.orphan_scan_due = true;
        }
    }

    /// Writes an outbox's statuses, records how that went, and queues its Events.
    pub(super) async fn publish(&self, state: &mut State, out: Outbox) {
        let written = self.write_statuses(out).await;
        self.settle(state, written);
    }

    /// A pass up to its Avi writes: plans the groups, applies them, and returns the statuses and Events to
    /// publish (a full sync writes a batch's statuses while the next batch's Avi writes run). Its span `pass`
    /// carries the pass number, how many groups it plans and whether it follows a re-list; each group's writes
    /// run in a `group` span inside it.
    #[tracing::instrument(name = "pass", skip_all, fields(pass = tracing::field::Empty, groups = groups.len(), unexplained))]
    pub(super) async fn plan_and_apply(
        &self,
        state: &mut State,
        groups: BTreeSet<GroupId>,
        mut report: BTreeSet<ObjKey>,
        unexplained: bool,
    ) -> Outbox {
        if groups.is_empty() && report.is_empty() {
            return Outbox::default();
        }
        if !(self.fence)() {
            // Not leading any more: nothing is planned or written (the next leadership starts with a full sync).
            return Outbox::default();
        }
        state.stats.passes += 1;
        tracing::Span::current().record("pass", state.stats.passes);
        let work = self
            .plan_groups(state, groups, &mut report, unexplained)
            .await;
        self.read_again(state).await;
        let (work, mut results) = self.apply_all(work).await;
        let mut outbox = Outbox::default();
        for (g, conflicts, translated) in work {
            let result = results.remove(&g);
            self.record(
                state,
                &g,
                result,
                &conflicts,
                translated,
                &mut report,
                &mut outbox,
            );
        }
        for key in &report {
            self.report_ingress(state, key, &mut outbox);
        }
        outbox
    }

    /// Translates and plans each group: L7 parts first (they are the longest groups, so their writes start at
    /// once and the Services fill the other slots while they run). A part whose inputs could not be read is not
    /// planned; its Ingresses are added to `report`.
    async fn plan_groups(
        &self,
        state: &mut State,
        groups: BTreeSet<GroupId>,
        report: &mut BTreeSet<ObjKey>,
        unexplained: bool,
    ) -> Vec<Planned> {
        let nodes = self.view.nodes();
        // What a group stops wanting it deletes itself only when the change was observed as it happened; after
        // a re-list or in a full sync, the orphan scan (with its guard) decides.
        let can_delete = state.cache_complete && self.view.complete() && !unexplained;
        // What each L7 part must do: the hosts to translate again, whether to compare every object.
        let mut l7_work: HashMap<Part, (BTreeSet<String>, bool)> = HashMap::new();
        let mut secret_keys: BTreeSet<ObjKey> = BTreeSet::new();
        for g in &groups {
            if let GroupId::L7(part) = g {
                let (hosts, all) = state.l7.take_work(part);
                secret_keys.extend(self.secrets_of_part(state, &hosts));
                l7_work.insert(part.clone(), (hosts, all));
            }
        }
        // The TLS Secrets those hosts need, read once for the pass (unchanged ones come from memory); each part
        // learns below whether the ones it needs were read.
        let secrets = if l7_work.is_empty() {
            SecretReads::default()
        } else {
            self.view.tls_secrets(&secret_keys).await
        };
        let (mut ordered, services): (Vec<GroupId>, Vec<GroupId>) = groups
            .into_iter()
            .partition(|g| matches!(g, GroupId::L7(_)));
        ordered.extend(services);
        let mut work: Vec<Planned> = Vec::new();
        for g in ordered {
            state.retries.started(&g);
            match &g {
                GroupId::Service(_) => {
                    // A Service group reads nothing but the view.
                    state.knowledge.record(&g, Ok(()));
                    let mut d = self.translate_services(state, &g, &nodes);
                    let objects = std::mem::take(&mut d.objects);
                    let ids: HashSet<ObjId> = state.produced.get(&g).cloned().unwrap_or_default();
                    let steps = self.plan_ids(state, &g, objects, ids, can_delete);
                    work.push((g, steps, Translated::L4(d)));
                }
                GroupId::L7(part) => {
                    let part = part.clone();
                    let (hosts, all) = l7_work.remove(&part).unwrap_or_default();
                    let input = PartWork {
                        hosts: &hosts,
                        all,
                        secrets: &secrets,
                        nodes: &nodes,
                        can_delete,
                    };
                    if let Some(steps) = self.plan_part(state, &g, &part, &input, report) {
                        work.push((g, steps, Translated::L7(part, all)));
                    }
                }
            }
        }
        work
    }

    /// Translates the hosts of a part to translate again and plans the part; `None` if an input it needs could
    /// not be read: not knowing a certificate is not its absence, so the part is unknown, its objects stay as
    /// they are, and it is tried again.
    fn plan_part(
        &self,
        state: &mut State,
        g: &GroupId,
        part: &Part,
        input: &PartWork<'_>,
        report: &mut BTreeSet<ObjKey>,
    ) -> Option<Vec<Step>> {
        let (hosts, all) = (input.hosts, input.all);
        let needed = self.secrets_of_part(state, hosts);
        if let Err(unknown) = input.secrets.check(&needed) {
            tracing::warn!(part = %part, unknown = %join(&unknown), "an input of the part could not be read; its objects are kept as they are and the part is retried");
            state.knowledge.record(g, Err(unknown));
            state.l7.mark_hosts(hosts);
            if all {
                state.l7.replan(part);
            }
            state.retries.failed(g, retry::Remedy::Transient, None);
            self.metrics.retried(retry::Remedy::Transient);
            report.extend(state.l7.ingresses_of_part(part));
            return None;
        }
        state.knowledge.record(g, Ok(()));
        state.stats.l7_parts += 1;
        let fragments =
            self.translate_hosts(state, part, hosts, input.nodes, input.secrets.found());
        let (keys, parent_changed, fresh) = state.l7.store(hosts, fragments);
        report.extend(keys);
        let scope = self.plan_scope(state, part, hosts, all);
        let (objects, ids) = self.part_objects(state, part, &scope, all || parent_changed, fresh);
        let steps = self.plan_ids(state, g, objects, ids, input.can_delete);
        self.update_produced_hosts(state, part, &scope, input.can_delete);
        Some(steps)
    }

    /// Applies every group's plan: groups concurrently, the steps of a group in order, stopping at its first
    /// failure. The steps move into the writes; only the conflicts (nothing to write, something to report) stay.
    async fn apply_all(&self, work: Vec<Planned>) -> (Vec<Planned>, HashMap<GroupId, GroupResult>) {
        let mut futures = Vec::with_capacity(work.len());
        let work: Vec<Planned> = work
            .into_iter()
            .map(|(g, steps, translated)| {
                let conflicts: Vec<Step> =
                    steps.iter().filter(|s| !s.is_write()).cloned().collect();
                let span = group_span(&g);
                futures.push(
                    apply_group(
                        self.avi.clone(),
                        Arc::clone(&self.owner),
                        self.identity.clone(),
                        g.clone(),
                        steps,
                        self.fence.clone(),
                    )
                    .instrument(span),
                );
                (g, conflicts, translated)
            })
            .collect();
        let results: Vec<GroupResult> = futures::stream::iter(futures)
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        let results = results.into_iter().map(|r| (r.group.clone(), r)).collect();
        (work, results)
    }

    /// Records what applying a group did (the cache, the counters, a retry) and reports on it.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        state: &mut State,
        g: &GroupId,
        result: Option<GroupResult>,
        conflicts: &[Step],
        translated: Translated,
        report: &mut BTreeSet<ObjKey>,
        outbox: &mut Outbox,
    ) {
        let mut notices: Vec<Notice> = Vec::new();
        let mut vs_written = None;
        let mut failed = false;
        if let Some(r) = &result {
            vs_written = self.record_applied(state, &r.applied);
            if let Some((step, error)) = &r.error {
                failed = true;
                notices.push(self.failed(state, g, step, error));
            }
        }
        let before = notices.len();
        conflict_notices(g, conflicts, &mut notices);
        if notices.len() > before && !failed {
            // Someone must rename or remove the other object; look again now and then.
            state.retries.failed(g, retry::Remedy::Controller, None);
            self.metrics.retried(retry::Remedy::Controller);
            failed = true;
        }
        if !failed {
            outbox.applied_ok.push(g.clone());
        }
        match translated {
            Translated::L4(desired) => {
                self.report(state, g, &desired, &notices, vs_written, outbox);
            }
            Translated::L7(part, all) => {
                // A new or changed VIP (or a full re-plan) concerns every Ingress of the part.
                let vip_written = result.as_ref().is_some_and(|r| {
                    r.applied
                        .iter()
                        .any(|(s, _)| s.kind() == Kind::VsVip && !matches!(s, Step::Delete { .. }))
                });
                if vip_written || all || failed {
                    report.extend(state.l7.ingresses_of_part(&part));
                }
                record_part(state, g, &part, failed, &notices);
            }
        }
    }

    /// Puts what the controller now holds in the cache; returns the virtual service written, if one was, and
    /// whether it was created.
    fn record_applied(
        &self,
        state: &mut State,
        applied: &[(Step, Option<Cached>)],
    ) -> Option<(String, bool)> {
        let mut vs_written = None;
        for (step, a) in applied {
            let id = obj_id(step.kind(), step.name());
            match (step, a) {
                (Step::Create { .. } | Step::Update { .. }, Some(c)) => {
                    if matches!(step, Step::Create { .. }) {
                        state.stats.creates += 1;
                    } else {
                        state.stats.updates += 1;
                    }
                    remember_vips(&mut state.known_vips, c, &self.owner);
                    state.cache.insert(id, c.clone());
                }
                _ => {
                    state.stats.deletes += 1;
                    state.cache.remove(&id);
                }
            }
            if step.kind() == Kind::VirtualService && !matches!(step, Step::Delete { .. }) {
                vs_written = Some((step.name().to_string(), matches!(step, Step::Create { .. })));
            }
        }
        vs_written
    }

    /// Schedules the retry of a group whose write failed; returns the Warning to report. The text stays the same
    /// from one retry to the next (the delay is in the log and the metrics), so retries make one Event series.
    pub(super) fn failed(
        &self,
        state: &mut State,
        g: &GroupId,
        step: &Step,
        error: &AviError,
    ) -> Notice {
        state.stats.failures += 1;
        let remedy = retry::classify(error);
        let delay = state.retries.failed(g, remedy, error.retry_after());
        self.metrics.retried(remedy);
        if let AviError::Conflict { uuid, owner, .. } = error {
            // Remember the stranger's object so the next plans report it without writing.
            state.cache.insert(
                obj_id(step.kind(), step.name()),
                Cached::of(
                    &Existing {
                        kind: step.kind(),
                        uuid: uuid.clone().unwrap_or_default(),
                        name: step.name().to_string(),
                        created_by: owner.clone(),
                        body: Default::default(),
                    },
                    &self.owner,
                ),
            );
        }
        tracing::warn!(group = %group_name(g), kind = step.kind().obj_type(), name = step.name(), %error,
            remedy = remedy.as_str(), attempts = state.retries.attempts(g), retry_in_ms = delay.as_millis() as u64,
            "Avi write failed");
        let what = format!("{} {}", step.kind().obj_type(), step.name());
        let text = match remedy {
            retry::Remedy::Transient => format!("{what}: {error}; ako retries with backoff"),
            retry::Remedy::Controller if retry::is_ipam_exhausted(error) => {
                let network = self
                    .settings
                    .placement
                    .vip_network
                    .as_ref()
                    .map_or("the VIP network", |(n, _)| n.as_str());
                format!(
                    "{what}: network {network} has no free address (the controller answered: {}); free \
                     addresses there or add a network to vipNetworkList; ako retries every few minutes and \
                     when this object changes",
                    error.message().unwrap_or_default()
                )
            }
            retry::Remedy::Controller => format!(
                "{what}: {error}; this needs a change on the Avi controller; ako retries every few minutes \
                 and when this object changes"
            ),
            retry::Remedy::Kubernetes => format!(
                "{what}: the Avi controller refused what this object asks for: {error}; change it and ako \
                 tries again at once (and every few minutes meanwhile)"
            ),
        };
        Notice::warning(remedy.reason(), text)
    }

    /// Reads again from the controller the cached objects whose body did not read back, and has their groups
    /// planned again at once: a plan never works from a body ako lost.
    pub(super) async fn read_again(&self, state: &mut State) {
        for ((kind, name), g) in std::mem::take(&mut state.unreadable) {
            let Some(c) = state.cache.get(&(kind, name.clone())) else {
                continue;
            };
            let (k, uuid) = (c.kind, c.uuid.to_string());
            tracing::warn!(kind, name = %name, "a cached body did not read back; reading the object again");
            match apply::read(&self.avi, k, &uuid, &self.identity).await {
                Ok(Some(e)) => {
                    state
                        .cache
                        .insert((kind, name), Cached::of(&e, &self.owner));
                }
                Ok(None) => {
                    state.cache.remove(&(kind, name));
                }
                Err(error) => {
                    tracing::warn!(kind, %error, "reading it failed; the group is retried");
                }
            }
            state.retries.failed(&g, retry::Remedy::Transient, None);
        }
    }
}
