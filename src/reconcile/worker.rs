//! The worker loop: waits for the view, leadership, changes, retries and the next full sync, and runs them one
//! at a time. It alone owns the [`State`].

#[allow(clippy::wildcard_imports)]
use super::*;

/// What the loop keeps between iterations besides the state.
struct Loop {
    dirty: Dirty,
    /// When the next periodic full sync is due (`None`: not scheduled, or already asked for in `dirty`).
    next_full: Option<Instant>,
    /// Full syncs in a row that could not read ako's objects from the controller.
    unread: u32,
    /// The next full sync was asked for by a settings change (deleteConfig, the namespace scope).
    settings_changed: bool,
}

/// What one iteration of the loop does, once the worker may write.
enum Work {
    FullSync,
    Changes,
    OrphanScan,
    Retries(Vec<GroupId>),
    /// The static routes' sync failed earlier and is due again.
    Routes,
}

impl<A: AviApi + Clone + 'static> Reconciler<A> {
    /// Runs until `changes` closes. Writes only while `leader` is true; on becoming leader, a full sync.
    pub async fn run(
        mut self,
        mut changes: ChangeReceiver,
        mut leader: watch::Receiver<bool>,
        progress: watch::Sender<Progress>,
    ) {
        let progress = Arc::new(progress);
        let publisher = self.events.spawn(self.sink.clone(), progress.clone());
        let _publisher = publisher.map(AbortOnDrop);
        // `/healthz` sees changes waiting on a stalled worker.
        self.heartbeat.track_queue(changes.waiting());
        self.heartbeat.beat();
        let mut state = State::new(&self.settings);
        let mut lp = Loop {
            dirty: Dirty {
                full: true,
                ..Dirty::default()
            },
            next_full: None,
            unread: 0,
            settings_changed: false,
        };
        let mut live = self.live.take();
        // Namespaces carry the scope's labels and the AviInfraSetting binding: nothing is placed before they are
        // read (a Service placed on the global network first would move once its namespace is known).
        self.view.require_namespaces(true);
        loop {
            // The fence turns false at the renew deadline even before the election task says so.
            let elected = *leader.borrow();
            let is_leader = elected && (self.fence)();
            let can_run = is_leader && self.view.synced();
            if let Some(work) = can_run.then(|| self.next_work(&state, &lp)).flatten() {
                self.heartbeat.busy();
                let converged = self.work(&mut state, &mut lp, work).await;
                self.heartbeat.idle();
                let _ = progress.send(self.progress(&state, converged));
                continue;
            }
            // Idle now: what was taken has been dealt with (tests wait on this instead of sleeping).
            state.stats.waits += 1;
            let (taken, waits) = (state.stats.changes_taken, state.stats.waits);
            progress.send_modify(|p| {
                p.stats.changes_taken = taken;
                p.stats.waits = waits;
            });
            let wake = Self::wake_at(&state, &lp, can_run, elected && !is_leader);
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                pending = changes.recv() => match pending {
                    Some(p) => {
                        self.heartbeat.beat();
                        state.stats.changes_taken += 1;
                        lp.dirty.merge(p);
                    }
                    None => return,
                },
                res = async {
                    match live.as_mut() {
                        Some(l) => l.changed().await,
                        None => std::future::pending().await,
                    }
                } => {
                    let now = match (&res, &live) {
                        (Ok(()), Some(l)) => Some(l.borrow().clone()),
                        _ => None,
                    };
                    match now {
                        Some(now) => self.apply_live(now, &mut state, &mut lp),
                        None => live = None,
                    }
                }
                res = leader.changed() => {
                    if res.is_err() {
                        return;
                    }
                    if *leader.borrow() {
                        tracing::info!("leading: full sync");
                        lp.dirty.full = true;
                    } else {
                        tracing::info!("no longer leading: writes stop");
                    }
                }
                () = sleep => {
                    if lp.next_full.is_some_and(|at| at <= Instant::now()) {
                        // Due: it runs once leading and synced, and sets the next deadline then.
                        lp.dirty.full = true;
                        lp.next_full = None;
                    }
                }
            }
            // Take what else came meanwhile, so a burst becomes one pass.
            if let Some(p) = changes.try_recv() {
                self.heartbeat.beat();
                state.stats.changes_taken += 1;
                lp.dirty.merge(p);
            }
        }
    }

    /// What to do now, in order of precedence: a full sync asked for, changes, a due orphan scan that can run,
    /// due retries.
    fn next_work(&self, state: &State, lp: &Loop) -> Option<Work> {
        if lp.dirty.full {
            return Some(Work::FullSync);
        }
        if lp.dirty.pending() {
            return Some(Work::Changes);
        }
        if state.orphan_scan_due
            && state
                .knowledge
                .complete(state.cache_complete, self.view.complete())
                .is_some()
        {
            return Some(Work::OrphanScan);
        }
        if state
            .routes
            .retry
            .is_some_and(|(at, _)| at <= Instant::now())
        {
            return Some(Work::Routes);
        }
        let due = state.retries.due(Instant::now());
        (!due.is_empty()).then(|| Work::Retries(due.into_iter().collect()))
    }

    /// Does one piece of work; returns whether the progress published after it counts as converged.
    async fn work(&self, state: &mut State, lp: &mut Loop, work: Work) -> bool {
        let started = Instant::now();
        match work {
            Work::FullSync => {
                self.full_sync(state, std::mem::take(&mut lp.settings_changed))
                    .await;
                // A new leader (every leadership starts with a full sync) and the periodic check: the routes too.
                self.sync_routes(state).await;
                self.metrics.pass(true, started.elapsed());
                if state.cache_complete {
                    self.metrics.full_sync_complete();
                }
                lp.dirty = Dirty::default();
                lp.next_full = self.next_full_sync(state, &mut lp.unread);
                true
            }
            Work::Changes => {
                let d = std::mem::take(&mut lp.dirty);
                let unexplained = d.relisted;
                let nodes = d.nodes;
                let rules = d.rules || Self::secrets_named_by_rules(state, &d.secrets);
                let (mut groups, report) = self.regroup_all(state, d);
                if rules {
                    groups.extend(self.sync_rules(state, false).await);
                }
                self.pass(state, groups, report, unexplained).await;
                if nodes {
                    self.sync_routes(state).await;
                }
                self.scan_if_due(state).await;
                self.metrics.pass(false, started.elapsed());
                true
            }
            Work::OrphanScan => {
                self.scan_orphans(state).await;
                true
            }
            Work::Routes => {
                self.sync_routes(state).await;
                state.routes.retry.is_none()
            }
            Work::Retries(due) => {
                self.pass(state, due.into_iter().collect(), BTreeSet::new(), false)
                    .await;
                self.scan_if_due(state).await;
                self.metrics.pass(false, started.elapsed());
                !lp.dirty.full
            }
        }
    }

    /// When the next full sync is due after one that just ran: the periodic one, or (if ako's objects could not
    /// be read, so nothing is deleted) soon, with backoff, so deletions wait seconds, not minutes.
    fn next_full_sync(&self, state: &State, unread: &mut u32) -> Option<Instant> {
        if state.cache_complete {
            *unread = 0;
            return self.settings.full_sync.map(|d| Instant::now() + d);
        }
        *unread += 1;
        let soon = backoff(self.settings.retry_base, self.settings.retry_max, *unread);
        Some(Instant::now() + self.settings.full_sync.map_or(soon, |d| d.min(soon)))
    }

    /// When to wake without a change. Retries count only when they could run (leading, view synced): a
    /// follower, or a leader that lost its lease with retries pending, sleeps until something changes rather
    /// than spin on deadlines already past. Elected but past the renew deadline (a renewal running late): look
    /// again shortly, the election task may extend the lease without the flag changing.
    fn wake_at(state: &State, lp: &Loop, can_run: bool, late: bool) -> Option<Instant> {
        let recheck = late.then(|| Instant::now() + Duration::from_secs(1));
        state
            .retries
            .next_due()
            .into_iter()
            .chain(state.routes.retry.map(|(at, _)| at))
            .filter(|_| can_run)
            .chain(lp.next_full)
            .chain(recheck)
            .min()
    }

    /// Takes a change of the live settings: a released hold or new guard limits at once, deleteConfig or the
    /// namespace scope with a full sync.
    fn apply_live(&mut self, now: live::Live, state: &mut State, lp: &mut Loop) {
        if now.release_held != self.settings.release_held {
            self.settings.release_held = now.release_held.clone();
            state.guard.set_release(now.release_held.clone());
            // A release takes effect at the next orphan scan: now.
            state.orphan_scan_due = true;
        }
        if now.guard != self.settings.guard {
            self.settings.guard = now.guard;
            state.guard.set_limits(now.guard);
        }
        if now.delete_all != self.settings.delete_all || now.scope != self.settings.scope {
            self.settings.delete_all = now.delete_all;
            self.settings.scope = now.scope;
            lp.dirty.full = true;
            lp.settings_changed = true;
        }
    }

    pub(super) fn progress(&self, state: &State, converged: bool) -> Progress {
        self.metrics
            .groups_retrying
            .set(state.retries.waiting() as i64);
        self.metrics
            .retry_backoff
            .set(state.retries.longest_delay().as_secs_f64());
        self.metrics
            .unknown_groups
            .set(state.knowledge.unknown_groups().len() as i64);
        self.metrics.queue_depth.set(self.heartbeat.depth() as i64);
        Progress {
            stats: state.stats.clone(),
            converged_once: converged,
            controller_read: state.cache_complete,
            retrying: state.retries.waiting(),
            events_pending: self.events.pending.load(Ordering::Acquire),
            max_attempts: state.retries.max_attempts(),
            longest_retry: state.retries.longest_delay(),
            unknown_groups: state.knowledge.unknown_groups().len(),
            held: state.guard.held().map(|h| (h.id.clone(), h.objects.len())),
        }
    }
}
