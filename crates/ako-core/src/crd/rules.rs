//! The HostRules and HTTPRules of a cluster with their verdicts, and which of them applies to a host.
//!
//! Judging ([`judge_host_rules`], [`judge_http_rules`]) is one function for the reconciler (the status it
//! writes) and the webhook (the denial): the rule's own checks, the delegated subdomains, the controller's names,
//! then for HostRules the FQDN claim (the oldest rule that is otherwise acceptable owns its FQDN).

use std::collections::{BTreeMap, HashMap};

use super::hostrule::FqdnType;
use super::{HostRuleSpec, HttpRuleSpec, Lookup, RuleId, Verdict, check_refs};
use crate::hosts;

/// A HostRule as read from the cluster: its spec, or why it could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct HostRuleEntry {
    pub id: RuleId,
    pub spec: Result<HostRuleSpec, String>,
    pub verdict: Verdict,
}

/// An HTTPRule as read from the cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRuleEntry {
    pub id: RuleId,
    pub spec: Result<HttpRuleSpec, String>,
    pub verdict: Verdict,
}

/// The FQDN a HostRule claims, compared without case.
fn claim_key(spec: &HostRuleSpec) -> String {
    spec.fqdn().to_ascii_lowercase()
}

/// Checks a HostRule on its own: the spec, the subdomains (an Exact FQDN must lie inside one when any is
/// delegated), and the controller's names.
pub fn check_host_rule(
    spec: &HostRuleSpec,
    domains: &[String],
    lookup: &dyn Fn(&str, &str) -> Lookup,
) -> Result<(), String> {
    spec.check()?;
    let v = &spec.virtualhost;
    if v.fqdn_type == FqdnType::Exact && !domains.is_empty() {
        hosts::check_host(&v.fqdn, domains)
            .map_err(|e| e.describe(Some("spec.virtualhost.fqdn")))?;
    }
    check_refs(&spec.refs(), lookup)
}

/// Checks an HTTPRule on its own: the spec and the controller's names.
pub fn check_http_rule(
    spec: &HttpRuleSpec,
    lookup: &dyn Fn(&str, &str) -> Lookup,
) -> Result<(), String> {
    spec.check()?;
    check_refs(&spec.refs(), lookup)
}

/// Sets every HostRule's verdict: its own checks, then the FQDN claims among those that pass them (oldest
/// first; a younger one is Rejected with AKO's `duplicate fqdn <fqdn> found in <ns>/<name>`).
pub fn judge_host_rules(
    entries: &mut [HostRuleEntry],
    domains: &[String],
    lookup: &dyn Fn(&str, &str) -> Lookup,
) {
    for e in entries.iter_mut() {
        e.verdict = match &e.spec {
            Err(why) => Verdict::Rejected(why.clone()),
            Ok(spec) => match check_host_rule(spec, domains, lookup) {
                Ok(()) => Verdict::Accepted,
                Err(why) => Verdict::Rejected(why),
            },
        };
    }
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|a, b| entries[*a].id.order().cmp(&entries[*b].id.order()));
    let mut owners: HashMap<String, usize> = HashMap::new();
    for i in order {
        let Ok(spec) = &entries[i].spec else {
            continue;
        };
        if !entries[i].verdict.is_accepted() {
            continue;
        }
        let fqdn = claim_key(spec);
        match owners.get(&fqdn) {
            None => {
                owners.insert(fqdn, i);
            }
            Some(&owner) => {
                let by = entries[owner].id.key.to_string();
                entries[i].verdict =
                    Verdict::Rejected(format!("duplicate fqdn {} found in {by}", spec.fqdn()));
            }
        }
    }
}

/// Sets every HTTPRule's verdict (its own checks).
pub fn judge_http_rules(entries: &mut [HttpRuleEntry], lookup: &dyn Fn(&str, &str) -> Lookup) {
    for e in entries.iter_mut() {
        e.verdict = match &e.spec {
            Err(why) => Verdict::Rejected(why.clone()),
            Ok(spec) => match check_http_rule(spec, lookup) {
                Ok(()) => Verdict::Accepted,
                Err(why) => Verdict::Rejected(why),
            },
        };
    }
}

/// The accepted rules, indexed for translation: which HostRule and which HTTPRules apply to a host.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    /// Exact HostRules by lower-case FQDN.
    exact: HashMap<String, (RuleId, HostRuleSpec)>,
    /// Wildcard and Contains HostRules, most specific first.
    patterns: Vec<(RuleId, HostRuleSpec)>,
    /// HTTPRules by FQDN, oldest first.
    http: BTreeMap<String, Vec<(RuleId, HttpRuleSpec)>>,
}

impl RuleSet {
    /// The accepted rules among judged entries.
    pub fn new(host_rules: &[HostRuleEntry], http_rules: &[HttpRuleEntry]) -> Self {
        let mut set = RuleSet::default();
        for e in host_rules {
            let (Ok(spec), Verdict::Accepted) = (&e.spec, &e.verdict) else {
                continue;
            };
            if spec.virtualhost.fqdn_type == FqdnType::Exact {
                set.exact
                    .insert(claim_key(spec), (e.id.clone(), spec.clone()));
            } else {
                set.patterns.push((e.id.clone(), spec.clone()));
            }
        }
        set.patterns.sort_by(|(ia, a), (ib, b)| {
            b.specificity()
                .cmp(&a.specificity())
                .then_with(|| ia.order().cmp(&ib.order()))
        });
        for e in http_rules {
            let (Ok(spec), Verdict::Accepted) = (&e.spec, &e.verdict) else {
                continue;
            };
            set.http
                .entry(spec.fqdn.to_ascii_lowercase())
                .or_default()
                .push((e.id.clone(), spec.clone()));
        }
        for list in set.http.values_mut() {
            list.sort_by(|(a, _), (b, _)| a.order().cmp(&b.order()));
        }
        set
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.patterns.is_empty() && self.http.is_empty()
    }

    /// The HostRule applying to a host, if any.
    pub fn host_rule(&self, host: &str) -> Option<(&RuleId, &HostRuleSpec)> {
        if let Some((id, spec)) = self.exact.get(&host.to_ascii_lowercase()) {
            return Some((id, spec));
        }
        self.patterns
            .iter()
            .find(|(_, s)| s.matches(host))
            .map(|(id, s)| (id, s))
    }

    /// The HTTPRules of a host in a namespace, oldest first.
    pub fn http_rules<'a>(
        &'a self,
        host: &str,
        namespace: &'a str,
    ) -> impl Iterator<Item = (&'a RuleId, &'a HttpRuleSpec)> + 'a {
        self.http
            .get(&host.to_ascii_lowercase())
            .into_iter()
            .flatten()
            .filter(move |(id, _)| id.key.namespace == namespace)
            .map(|(id, s)| (id, s))
    }

    /// Whether any HTTPRule names the host (in any namespace).
    pub fn has_http_rules(&self, host: &str) -> bool {
        self.http.contains_key(&host.to_ascii_lowercase())
    }

    /// The hosts among `hosts` a HostRule with this spec could apply to (to re-plan when it changes).
    pub fn hosts_matching<'h>(
        spec: &HostRuleSpec,
        hosts: impl IntoIterator<Item = &'h String>,
    ) -> Vec<String> {
        hosts
            .into_iter()
            .filter(|h| spec.matches(h))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests;
