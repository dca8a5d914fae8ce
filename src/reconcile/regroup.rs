//! From changes to groups: which group a Service or Ingress belongs to, and which groups a batch of changes touches.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn in_scope(ns: &str, scope: &Scope, view: &View) -> bool {
    (scope.selector.is_none() && scope.blocked.is_empty())
        || scope.contains(ns, view.namespace_labels(ns).as_ref())
}

/// The group a Service belongs to, if it is a LoadBalancer Service of ako in a namespace ako serves.
pub(super) fn group_of(svc: &Service, cfg: &Config, scope: &Scope, view: &View) -> Option<GroupId> {
    if !intent::service_is_ours(svc, cfg) {
        return None;
    }
    let ns = svc.metadata.namespace.as_deref().unwrap_or_default();
    if !in_scope(ns, scope, view) {
        return None;
    }
    let key = ObjKey::of(&svc.metadata);
    let shared = svc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ako_core::config::SHARED_VIP_ANNOTATION))
        .map(|v| v.trim())
        .filter(|v| !v.is_empty());
    Some(GroupId::Service(match shared {
        Some(k) => ServiceGroup {
            namespace: key.namespace,
            base: k.to_string(),
            shared: true,
        },
        None => ServiceGroup {
            namespace: key.namespace,
            base: key.name,
            shared: false,
        },
    }))
}

/// Whether an Ingress is ako's (its class) in a namespace ako serves.
pub(super) fn ingress_is_ours(ing: &Ingress, cfg: &Config, scope: &Scope, view: &View) -> bool {
    let ns = ing.metadata.namespace.as_deref().unwrap_or_default();
    view.classes().is_ours(&intent::classify(ing), cfg) && in_scope(ns, scope, view)
}

impl<A: AviApi + Clone + 'static> Reconciler<A> {
    /// Every Service of a namespace, in the view or in a group.
    pub(super) fn service_keys_in(&self, ns: &str, state: &State) -> Vec<ObjKey> {
        let mut keys: HashSet<ObjKey> = self
            .view
            .service_keys()
            .into_iter()
            .filter(|k| k.namespace == ns)
            .collect();
        keys.extend(state.group_of.keys().filter(|k| k.namespace == ns).cloned());
        keys.into_iter().collect()
    }

    /// Every Ingress of a namespace, in the view or known as ako's.
    pub(super) fn ingress_keys_in(&self, ns: &str, state: &State) -> Vec<ObjKey> {
        let mut keys: HashSet<ObjKey> = self
            .view
            .ingress_keys()
            .into_iter()
            .filter(|k| k.namespace == ns)
            .collect();
        keys.extend(state.l7.refs.keys().filter(|k| k.namespace == ns).cloned());
        keys.into_iter().collect()
    }

    pub(super) fn group(&self, svc: &Service) -> Option<GroupId> {
        group_of(svc, &self.cfg, &self.settings.scope, &self.view)
    }

    /// What an Ingress names, if it is ako's.
    pub(super) fn ingress_refs(&self, key: &ObjKey) -> Option<ingress::IngressRefs> {
        let ing = self.view.ingress(key)?;
        ingress_is_ours(&ing, &self.cfg, &self.settings.scope, &self.view).then(|| {
            let ns_infra = self.view.namespace_infra(&key.namespace);
            ingress::refs_of(&ing, &self.cfg, &self.view.classes(), ns_infra.as_deref())
        })
    }

    /// Turns what changed into the groups to pass and the Ingresses to report on.
    pub(super) fn regroup_all(
        &self,
        state: &mut State,
        d: Dirty,
    ) -> (BTreeSet<GroupId>, BTreeSet<ObjKey>) {
        // A namespace change arrives as a key with an empty name: every object of the namespace.
        let mut services: Vec<ObjKey> = Vec::new();
        // A status ako wrote that is no longer there (someone else's edit) is written again by its group's pass;
        // ako's own write coming back matches and costs nothing.
        for k in d.service_status {
            let Some(svc) = self.view.service(&k) else {
                continue;
            };
            if !overwritten(&state.status_written, &k, service_status(&svc)) {
                continue;
            }
            match self.status_restore(state, Target::Service, &k, svc.metadata.uid.clone()) {
                None => services.push(k),
                Some(at) => {
                    if let Some(g) = state.group_of.get(&k).cloned() {
                        state.retries.retry_at(&g, at);
                    }
                }
            }
        }
        for k in d.services {
            if k.name.is_empty() {
                services.extend(self.service_keys_in(&k.namespace, state));
            } else {
                services.push(k);
            }
        }
        let mut ingresses: BTreeSet<ObjKey> = BTreeSet::new();
        if d.classes {
            ingresses.extend(self.view.ingress_keys());
            ingresses.extend(state.l7.refs.keys().cloned());
        }
        for k in d.ingresses {
            if k.name.is_empty() {
                ingresses.extend(self.ingress_keys_in(&k.namespace, state));
            } else {
                ingresses.insert(k);
            }
        }
        let mut groups = self.regroup(state, &services);
        // Backend Services of Ingresses (a Service, its endpoints).
        for k in &services {
            groups.extend(state.l7.touch_service(k).into_iter().map(GroupId::L7));
        }
        for k in &ingresses {
            let refs = self.ingress_refs(k);
            groups.extend(state.l7.set(k, refs).into_iter().map(GroupId::L7));
        }
        for k in &d.secrets {
            if self.settings.default_cert.as_ref() == Some(k) {
                for p in state.l7.parts() {
                    state.l7.mark_all(&p);
                    groups.insert(GroupId::L7(p));
                }
            }
            groups.extend(state.l7.touch_secret(k).into_iter().map(GroupId::L7));
            // Hosts whose HostRule takes its certificate from this Secret.
            let rules = rules::rule_set(state);
            let named = rules.hosts_with_secret(k, state.l7.hosts().map(|(h, _)| h));
            groups.extend(state.l7.mark_hosts(&named).into_iter().map(GroupId::L7));
        }
        if d.nodes
            && matches!(
                self.settings.placement.member_mode,
                l4::MemberMode::NodePort { .. }
            )
        {
            groups.extend(state.members.keys().cloned());
            for p in state.l7.parts() {
                state.l7.mark_all(&p);
                groups.insert(GroupId::L7(p));
            }
        }
        // The same for Ingresses: an overwritten status is reported on again (nothing to re-plan).
        for k in d.ingress_status {
            let Some(ing) = self.view.ingress(&k) else {
                continue;
            };
            if !overwritten(&state.l7.status_written, &k, &ingress::current_status(&ing)) {
                continue;
            }
            match self.status_restore(state, Target::Ingress, &k, ing.metadata.uid.clone()) {
                None => {
                    ingresses.insert(k);
                }
                Some(at) => {
                    for p in state.l7.parts_of(&k) {
                        state.retries.retry_at(&GroupId::L7(p), at);
                    }
                }
            }
        }
        (groups, ingresses)
    }

    /// Decides when a status someone else overwrote is written again: at once the first two times, then, while
    /// the overwrites go on (another controller writing the same status), with backoff from `retry_base`, so two
    /// writers never race each other at API speed; the fight is announced once with a Warning. Returns `None`
    /// for now, or when it is due.
    pub(super) fn status_restore(
        &self,
        state: &mut State,
        target: Target,
        key: &ObjKey,
        uid: Option<String>,
    ) -> Option<Instant> {
        let now = Instant::now();
        if state.status_fights.len() > 4096 {
            state
                .status_fights
                .retain(|_, (_, last)| now.saturating_duration_since(*last) <= STATUS_FIGHT_WINDOW);
        }
        let (restores, last) = state.status_fights.entry(key.clone()).or_insert((0, now));
        if now.saturating_duration_since(*last) > STATUS_FIGHT_WINDOW {
            *restores = 0;
        }
        *restores += 1;
        let wait = match restores.checked_sub(STATUS_RESTORES_AT_ONCE) {
            None | Some(0) => Duration::ZERO,
            Some(n) => backoff(self.settings.retry_base, self.settings.retry_max, n),
        };
        *last = now + wait;
        tracing::info!(kind = ?target, object = %key, wait_ms = wait.as_millis() as u64,
            "status changed by someone else; writing it again");
        if *restores == STATUS_RESTORES_AT_ONCE + 1 {
            self.events.send((
                target,
                key.clone(),
                uid,
                Notice::warning(
                    "StatusOverwritten",
                    "status.loadBalancer keeps being overwritten by another writer (another load balancer \
                     controller?); ako writes its own again with backoff",
                ),
            ));
        }
        (!wait.is_zero()).then_some(now + wait)
    }

    /// Moves changed Services between groups; returns every group touched.
    pub(super) fn regroup(&self, state: &mut State, keys: &[ObjKey]) -> BTreeSet<GroupId> {
        let mut touched = BTreeSet::new();
        for key in keys {
            let new = self.view.service(key).and_then(|s| self.group(&s));
            let old = state.group_of.get(key).cloned();
            if let Some(o) = &old
                && Some(o) != new.as_ref()
            {
                if let Some(m) = state.members.get_mut(o) {
                    m.remove(key);
                }
                state.group_of.remove(key);
            }
            if let Some(n) = &new {
                state
                    .members
                    .entry(n.clone())
                    .or_default()
                    .insert(key.clone());
                state.group_of.insert(key.clone(), n.clone());
                touched.insert(n.clone());
            } else if state.status_written.contains_key(key) || old.is_some() {
                // Left ako (or deleted): its status goes with it.
                touched.extend(old.clone());
            }
            touched.extend(old);
            if new.is_none() {
                state.reported.remove(key);
            }
        }
        touched
    }
}
