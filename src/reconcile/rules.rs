//! HostRules, HTTPRules, L4Rules and AviInfraSettings: judged (their own checks, the FQDN claims, the controller's names) whenever one
//! changes and at every full sync, so a rule whose WAF policy was deleted on the controller turns Rejected without
//! a restart; the verdict is written to `status` as AKO writes it, and the hosts a rule touches (before or after
//! the change) are translated again.
//!
//! The controller's names are asked once per name and kept for [`NAME_TTL`]; a name that cannot be asked (the
//! controller unreachable) is [`Lookup::Unknown`], which never rejects: the rule applies and the controller's own
//! answer to the write is reported on the Ingress.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::k8s::observe::{RuleKind, RuleObject};
use ako_core::crd::{
    HostRuleEntry, HttpRuleEntry, InfraEntry, L4RuleEntry, Lookup, RuleEntry, RuleSet, Verdict,
    changed, judge_host_rules, judge_http_rules, judge_infra_settings, judge_l4_rules,
    touched_hosts,
};

/// How long an answer about a controller name is trusted.
pub(super) const NAME_TTL: Duration = Duration::from_secs(60);

/// The rules as last judged.
#[derive(Default)]
pub(super) struct RuleState {
    host: Vec<HostRuleEntry>,
    http: Vec<HttpRuleEntry>,
    l4: Vec<L4RuleEntry>,
    infra: Vec<InfraEntry>,
    /// What translation reads.
    pub(super) set: Arc<RuleSet>,
    /// (collection, name) -> whether the controller has it, and when that was asked.
    names: HashMap<(String, String), (bool, Instant)>,
    /// Statuses written (kind, key) -> verdict, so an unchanged verdict is not written again.
    written: HashMap<(RuleKind, ObjKey), Verdict>,
}

impl<A: AviApi + Clone + 'static> Reconciler<A> {
    /// Judges every rule again (`fresh`: ask the controller again about every name), writes the statuses that
    /// changed, and marks for translation the hosts whose rules changed; returns the parts to pass.
    pub(super) async fn sync_rules(&self, state: &mut State, fresh: bool) -> BTreeSet<GroupId> {
        let host_objs = self.view.rules(RuleKind::HostRule);
        let http_objs = self.view.rules(RuleKind::HttpRule);
        let l4_objs = self.view.rules(RuleKind::L4Rule);
        let infra_objs = self.view.rules(RuleKind::AviInfraSetting);
        let mut infra: Vec<InfraEntry> = infra_objs.iter().map(|(k, o)| o.entry(k)).collect();
        let mut host: Vec<HostRuleEntry> = host_objs.iter().map(|(k, o)| o.entry(k)).collect();
        let mut http: Vec<HttpRuleEntry> = http_objs.iter().map(|(k, o)| o.entry(k)).collect();
        let mut l4: Vec<L4RuleEntry> = l4_objs.iter().map(|(k, o)| o.entry(k)).collect();
        let mut wanted: BTreeSet<(&'static str, String)> = BTreeSet::new();
        for spec in host.iter().filter_map(|e| e.spec.as_ref().ok()) {
            wanted.extend(spec.refs().into_iter().map(|r| (r.obj_type, r.name)));
        }
        for spec in http.iter().filter_map(|e| e.spec.as_ref().ok()) {
            wanted.extend(spec.refs().into_iter().map(|r| (r.obj_type, r.name)));
        }
        for spec in l4.iter().filter_map(|e| e.spec.as_ref().ok()) {
            wanted.extend(spec.refs().into_iter().map(|r| (r.obj_type, r.name)));
        }
        for spec in infra.iter().filter_map(|e| e.spec.as_ref().ok()) {
            wanted.extend(spec.refs().into_iter().map(|r| (r.obj_type, r.name)));
        }
        self.ask_names(&mut state.rules, wanted, fresh).await;
        let (set, hosts) = {
            let names = &state.rules.names;
            let lookup = |t: &str, n: &str| match names.get(&(t.to_string(), n.to_string())) {
                Some((true, _)) => Lookup::Found,
                Some((false, _)) => Lookup::Missing,
                None => Lookup::Unknown,
            };
            judge_host_rules(&mut host, &self.cfg.dns_domains, &lookup);
            ako_core::crd::reject_missing_secrets(&mut host, &|k| self.view.has_tls_secret(k));
            judge_http_rules(&mut http, &lookup);
            judge_l4_rules(&mut l4, &lookup);
            judge_infra_settings(&mut infra, &lookup);
            let set = RuleSet::new(&host, &http).with_l4(&l4).with_infra(&infra);

            // The hosts to translate again: those any changed rule matches, before or after.
            let known: Vec<String> = state.l7.hosts().map(|(h, _)| h.clone()).collect();
            let hosts = touched_hosts(
                (&state.rules.host, &host),
                (&state.rules.http, &http),
                &known,
            );
            (set, hosts)
        };
        self.write_rule_statuses(state, RuleKind::HostRule, &host_objs, verdicts(&host))
            .await;
        self.write_rule_statuses(state, RuleKind::HttpRule, &http_objs, verdicts(&http))
            .await;
        self.write_rule_statuses(state, RuleKind::L4Rule, &l4_objs, verdicts(&l4))
            .await;
        self.write_rule_statuses(
            state,
            RuleKind::AviInfraSetting,
            &infra_objs,
            verdicts(&infra),
        )
        .await;
        // The Service groups whose members name an L4Rule or an AviInfraSetting that changed, appeared or went.
        let changed_l4: HashSet<ObjKey> = changed(&state.rules.l4, &l4)
            .into_iter()
            .map(|e| e.id.key.clone())
            .collect();
        let changed_infra: HashSet<String> = changed(&state.rules.infra, &infra)
            .into_iter()
            .map(|e| e.id.key.name.clone())
            .collect();
        let mut groups = self.service_groups_naming(state, &changed_l4, &changed_infra);
        let set = Arc::new(set);
        // Hosts an AviInfraSetting places follow its verdict and shard size; its other changes re-plan its parts.
        groups.extend(
            state
                .l7
                .set_rules(set.clone(), &changed_infra)
                .into_iter()
                .map(GroupId::L7),
        );
        state.rules.host = host;
        state.rules.http = http;
        state.rules.l4 = l4;
        state.rules.infra = infra;
        state.rules.set = set;
        groups.extend(
            state
                .l7
                .mark_hosts(hosts.iter())
                .into_iter()
                .map(GroupId::L7),
        );
        groups
    }

    /// The Service groups whose members name one of these L4Rules or AviInfraSettings (their own, or their
    /// namespace's setting).
    fn service_groups_naming(
        &self,
        state: &State,
        l4: &HashSet<ObjKey>,
        infra: &HashSet<String>,
    ) -> BTreeSet<GroupId> {
        let mut groups = BTreeSet::new();
        if l4.is_empty() && infra.is_empty() {
            return groups;
        }
        for (svc, g) in &state.group_of {
            let Some(s) = self.view.service(svc) else {
                continue;
            };
            let own = s.metadata.annotations.as_ref();
            let rule = ako_core::crd::l4rule::bound(&svc.namespace, own);
            let placed = ako_core::crd::infra::bound(
                own,
                self.view.namespace_infra(&svc.namespace).as_deref(),
            );
            if rule.is_some_and(|k| l4.contains(&k)) || placed.is_some_and(|n| infra.contains(&n)) {
                groups.insert(g.clone());
            }
        }
        groups
    }

    /// Whether a HostRule takes its certificate from one of these Secrets (a change of one judges the rules
    /// again: a Secret created after its HostRule makes it Accepted).
    pub(super) fn secrets_named_by_rules(state: &State, secrets: &HashSet<ObjKey>) -> bool {
        ako_core::crd::secrets_named(&state.rules.host, secrets)
    }

    /// Asks the controller about the names not known (or all, when `fresh`), concurrently.
    async fn ask_names(
        &self,
        rules: &mut RuleState,
        wanted: BTreeSet<(&'static str, String)>,
        fresh: bool,
    ) {
        let now = Instant::now();
        // Names no rule uses any more are forgotten.
        rules
            .names
            .retain(|(t, n), _| wanted.iter().any(|(wt, wn)| wt == t && wn == n));
        let ask: Vec<(&'static str, String)> = wanted
            .into_iter()
            .filter(|(t, n)| {
                let known = rules
                    .names
                    .get(&((*t).to_string(), n.clone()))
                    .is_some_and(|(_, at)| now.saturating_duration_since(*at) < NAME_TTL);
                fresh || !known
            })
            .collect();
        type Answer = ((&'static str, String), Result<bool, AviError>);
        let mut answers: Vec<Answer> = Vec::new();
        for chunk in ask.chunks(self.settings.concurrency.max(1)) {
            let asked: Vec<_> = chunk.iter().map(|(t, n)| self.avi.exists(t, n)).collect();
            let got = futures::future::join_all(asked).await;
            answers.extend(chunk.iter().cloned().zip(got));
        }
        for ((t, n), r) in answers {
            match r {
                Ok(found) => {
                    rules
                        .names
                        .insert((t.to_string(), n), (found, Instant::now()));
                }
                Err(error) => {
                    // Not known is not absent: the rule is not rejected for it.
                    tracing::warn!(collection = t, name = %n, %error, "could not ask the controller whether a name a rule uses exists");
                    rules.names.remove(&(t.to_string(), n));
                }
            }
        }
    }

    async fn write_rule_statuses(
        &self,
        state: &mut State,
        kind: RuleKind,
        objects: &BTreeMap<ObjKey, RuleObject>,
        verdicts: Vec<(ObjKey, Verdict)>,
    ) {
        for (key, verdict) in verdicts {
            let Some(obj) = objects.get(&key) else {
                continue;
            };
            let slot = (kind, key.clone());
            if obj.says(&verdict) {
                state.rules.written.insert(slot, verdict);
                continue;
            }
            let status = verdict.status_json();
            let uid = obj.uid.clone();
            let res = self.sink.rule_status(kind, &key, &status).await;
            match res {
                Ok(()) => {
                    tracing::info!(kind = kind.kind(), object = %key, status = verdict.status(), error = verdict.error(), "rule status written");
                    let before = state.rules.written.insert(slot, verdict.clone());
                    if let Verdict::Rejected(why) = verdict
                        && before.as_ref().is_none_or(|b| b.error() != why)
                    {
                        self.events.send((
                            Target::Rule(kind),
                            key.clone(),
                            uid,
                            Notice::warning("Rejected", why),
                        ));
                    }
                }
                Err(error) => {
                    tracing::warn!(kind = kind.kind(), object = %key, %error, "could not write a rule's status; written again at the next change or full sync");
                }
            }
        }
        state
            .rules
            .written
            .retain(|(k, key), _| *k != kind || objects.contains_key(key));
    }
}

/// Each rule's key and verdict.
fn verdicts<S>(entries: &[RuleEntry<S>]) -> Vec<(ObjKey, Verdict)> {
    entries
        .iter()
        .map(|e| (e.id.key.clone(), e.verdict.clone()))
        .collect()
}

/// The rule set translation reads.
pub(super) fn rule_set(state: &State) -> Arc<RuleSet> {
    state.rules.set.clone()
}
