//! The HostRules and HTTPRules of a cluster with their verdicts, and which of them applies to a host.
//!
//! Judging ([`judge_host_rules`], [`judge_http_rules`]) is one function for the reconciler (the status it
//! writes) and the webhook (the denial): the rule's own checks, the delegated subdomains, the controller's names,
//! then for HostRules the FQDN claim (the oldest rule that is otherwise acceptable owns its FQDN).

use std::collections::{BTreeMap, HashMap};

use super::hostrule::FqdnType;
use super::infra::InfraSettingSpec;
use super::l4rule::{self, L4RuleSpec};
use super::{HostRuleSpec, HttpRuleSpec, Lookup, RuleId, Verdict, check_refs};
use crate::hosts;
use crate::index::ObjKey;
use crate::intent::Problem;
use crate::l4::L4Desired;
use crate::plan::Kind;

/// A rule as read from the cluster: its spec (or why it could not be read) and its verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleEntry<S> {
    pub id: RuleId,
    pub spec: Result<S, String>,
    pub verdict: Verdict,
}

pub type HostRuleEntry = RuleEntry<HostRuleSpec>;
pub type HttpRuleEntry = RuleEntry<HttpRuleSpec>;
pub type L4RuleEntry = RuleEntry<L4RuleSpec>;
pub type InfraEntry = RuleEntry<InfraSettingSpec>;

/// The entries that differ between two judgements of a kind (new, changed or gone), each side's version: what
/// a change of rules re-plans. By key, so the cost is linear in the number of rules.
pub fn changed<'a, S: PartialEq>(
    old: &'a [RuleEntry<S>],
    new: &'a [RuleEntry<S>],
) -> Vec<&'a RuleEntry<S>> {
    let before: HashMap<&ObjKey, &RuleEntry<S>> = old.iter().map(|e| (&e.id.key, e)).collect();
    let after: HashMap<&ObjKey, &RuleEntry<S>> = new.iter().map(|e| (&e.id.key, e)).collect();
    let mut out: Vec<&RuleEntry<S>> = new
        .iter()
        .filter(|e| before.get(&e.id.key) != Some(e))
        .collect();
    out.extend(old.iter().filter(|o| after.get(&o.id.key) != Some(o)));
    out
}

/// The hosts among `known` whose translation a change of HostRules or HTTPRules touches: those a changed
/// HostRule matches (before or after the change) and the FQDNs of changed HTTPRules.
pub fn touched_hosts(
    host: (&[HostRuleEntry], &[HostRuleEntry]),
    http: (&[HttpRuleEntry], &[HttpRuleEntry]),
    known: &[String],
) -> std::collections::BTreeSet<String> {
    let mut hosts = std::collections::BTreeSet::new();
    for e in changed(host.0, host.1) {
        if let Ok(spec) = &e.spec {
            hosts.extend(RuleSet::hosts_matching(spec, known));
        }
    }
    for e in changed(http.0, http.1) {
        if let Ok(spec) = &e.spec {
            hosts.insert(spec.fqdn.to_ascii_lowercase());
        }
    }
    hosts
}

/// Sets each entry's verdict from its own check (an unreadable spec is rejected with why).
fn judge<S>(entries: &mut [RuleEntry<S>], check: impl Fn(&S) -> Result<(), String>) {
    for e in entries.iter_mut() {
        e.verdict = match &e.spec {
            Err(why) => Verdict::Rejected(why.clone()),
            Ok(spec) => match check(spec) {
                Ok(()) => Verdict::Accepted,
                Err(why) => Verdict::Rejected(why),
            },
        };
    }
}

/// Checks an L4Rule on its own: the spec and the controller's names.
pub fn check_l4_rule(
    spec: &L4RuleSpec,
    lookup: &dyn Fn(&str, &str) -> Lookup,
) -> Result<(), String> {
    spec.check()?;
    check_refs(&spec.refs(), lookup)
}

/// Sets every L4Rule's verdict (its own checks).
pub fn judge_l4_rules(entries: &mut [L4RuleEntry], lookup: &dyn Fn(&str, &str) -> Lookup) {
    judge(entries, |spec| check_l4_rule(spec, lookup));
}

/// Checks an AviInfraSetting: the spec (AKO's checks) and the controller's names (SE group, VIP networks).
pub fn check_infra_setting(
    spec: &InfraSettingSpec,
    lookup: &dyn Fn(&str, &str) -> Lookup,
) -> Result<(), String> {
    spec.check()?;
    check_refs(&spec.refs(), lookup)
}

/// Sets every AviInfraSetting's verdict.
pub fn judge_infra_settings(entries: &mut [InfraEntry], lookup: &dyn Fn(&str, &str) -> Lookup) {
    judge(entries, |spec| check_infra_setting(spec, lookup));
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
        for (i, a) in v.aliases.iter().enumerate() {
            hosts::check_host(a, domains)
                .map_err(|e| e.describe(Some(&format!("spec.virtualhost.aliases[{i}]"))))?;
        }
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
    judge(entries, |spec| check_host_rule(spec, domains, lookup));
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

/// AKO's check of a HostRule's certificates from Secrets (`type: secret`): each must exist in the rule's
/// namespace (`has_secret`); an accepted rule naming one that does not is Rejected, in AKO's words.
pub fn reject_missing_secrets(entries: &mut [HostRuleEntry], has_secret: &dyn Fn(&ObjKey) -> bool) {
    for e in entries.iter_mut().filter(|e| e.verdict.is_accepted()) {
        let missing = e.spec.as_ref().ok().and_then(|spec| {
            spec.secret_certs()
                .into_iter()
                .find(|n| !has_secret(&ObjKey::new(e.id.key.namespace.clone(), *n)))
        });
        if let Some(name) = missing {
            e.verdict = Verdict::Rejected(format!("secret \"{name}\" not found"));
        }
    }
}

/// Whether a HostRule takes a certificate from one of these Secrets: a change of one is a change of the rule's
/// inputs (a Secret created after its HostRule makes it Accepted).
pub fn secrets_named(
    entries: &[HostRuleEntry],
    secrets: &std::collections::HashSet<ObjKey>,
) -> bool {
    !secrets.is_empty()
        && entries.iter().any(|e| {
            e.spec.as_ref().ok().is_some_and(|s| {
                s.secret_certs()
                    .into_iter()
                    .any(|n| secrets.contains(&ObjKey::new(e.id.key.namespace.clone(), n)))
            })
        })
}

/// Sets every HTTPRule's verdict (its own checks).
pub fn judge_http_rules(entries: &mut [HttpRuleEntry], lookup: &dyn Fn(&str, &str) -> Lookup) {
    judge(entries, |spec| check_http_rule(spec, lookup));
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
    /// Every L4Rule by key, with its verdict (a Service naming a rejected one is told why).
    l4: HashMap<ObjKey, (Verdict, Option<L4RuleSpec>)>,
    /// Every AviInfraSetting by name, with its verdict.
    infra: HashMap<String, (Verdict, Option<InfraSettingSpec>)>,
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

    /// Adds the L4Rules (every one, with its verdict).
    pub fn with_l4(mut self, l4: &[L4RuleEntry]) -> Self {
        self.l4 = l4
            .iter()
            .map(|e| (e.id.key.clone(), (e.verdict.clone(), e.spec.clone().ok())))
            .collect();
        self
    }

    /// Adds the AviInfraSettings (every one, with its verdict).
    pub fn with_infra(mut self, infra: &[InfraEntry]) -> Self {
        self.infra = infra
            .iter()
            .map(|e| {
                (
                    e.id.key.name.clone(),
                    (e.verdict.clone(), e.spec.clone().ok()),
                )
            })
            .collect();
        self
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty()
            && self.patterns.is_empty()
            && self.http.is_empty()
            && self.l4.is_empty()
            && self.infra.is_empty()
    }

    /// An AviInfraSetting that is Accepted, by name (what places objects).
    pub fn accepted_infra(&self, name: &str) -> Option<&InfraSettingSpec> {
        match self.infra.get(name) {
            Some((Verdict::Accepted, Some(spec))) => Some(spec),
            _ => None,
        }
    }

    /// An AviInfraSetting: its verdict and spec, or `None` if there is none of that name.
    pub fn infra_setting(&self, name: &str) -> Option<(&Verdict, Option<&InfraSettingSpec>)> {
        self.infra.get(name).map(|(v, s)| (v, s.as_ref()))
    }

    /// An L4Rule: its verdict and spec, or `None` if there is none of that name.
    pub fn l4_rule(&self, key: &ObjKey) -> Option<(&Verdict, Option<&L4RuleSpec>)> {
        self.l4.get(key).map(|(v, s)| (v, s.as_ref()))
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

    /// The TLS Secrets a host's HostRule takes certificates from (`type: secret`: main and alternate).
    pub fn host_rule_secrets(&self, host: &str) -> Vec<ObjKey> {
        let Some((id, spec)) = self.host_rule(host) else {
            return Vec::new();
        };
        spec.secret_certs()
            .into_iter()
            .map(|n| ObjKey::new(id.key.namespace.clone(), n))
            .collect()
    }

    /// The hosts among `hosts` whose HostRule takes its certificate from the Secret `key`.
    pub fn hosts_with_secret<'h>(
        &self,
        key: &ObjKey,
        hosts: impl IntoIterator<Item = &'h String>,
    ) -> Vec<String> {
        let names = |id: &RuleId, s: &HostRuleSpec| {
            id.key.namespace == key.namespace && s.secret_certs().contains(&key.name.as_str())
        };
        if !self.exact.values().any(|(id, s)| names(id, s))
            && !self.patterns.iter().any(|(id, s)| names(id, s))
        {
            return Vec::new();
        }
        hosts
            .into_iter()
            .filter(|h| self.host_rule_secrets(h).contains(key))
            .cloned()
            .collect()
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

/// A Service of a group, as [`apply_l4_rules`] reads it.
#[derive(Debug, Clone, Copy)]
pub struct L4Member<'a> {
    pub key: &'a ObjKey,
    pub annotations: Option<&'a BTreeMap<String, String>>,
}

/// Applies the L4Rules the Services of a group name
/// to the group's translated objects: every virtual service and pool first at the defaults of what a rule may set
/// (so a rule that goes leaves nothing behind), then the rule's fields. A Service naming a rule that does not
/// exist or is rejected gets a Warning and the defaults; Services sharing a VIP must name the same rule (the
/// oldest member's applies).
pub fn apply_l4_rules(d: &mut L4Desired, services: &[L4Member<'_>], rules: Option<&RuleSet>) {
    for o in &mut d.objects {
        match o.kind {
            Kind::Pool => o.body.extend(l4rule::pool_defaults()),
            Kind::VirtualService => o.body.extend(l4rule::vs_defaults()),
            _ => {}
        }
    }
    let Some(rules) = rules else {
        return;
    };
    // By virtual service: its members' rule (the first member's, in outcome order: oldest first).
    let mut by_vs: BTreeMap<String, (ObjKey, Vec<usize>)> = BTreeMap::new();
    let named: Vec<(usize, String, ObjKey)> = d
        .outcomes
        .iter()
        .enumerate()
        .filter_map(|(i, o)| {
            let vs = o.vs_name.clone()?;
            let m = services.iter().find(|m| *m.key == o.key)?;
            Some((i, vs, l4rule::bound(&o.key.namespace, m.annotations)?))
        })
        .collect();
    for (i, vs, rule) in named {
        match by_vs.get_mut(&vs) {
            None => {
                by_vs.insert(vs, (rule, vec![i]));
            }
            Some((first, members)) => {
                if *first != rule {
                    let msg = format!(
                        "annotation {} names L4Rule {rule}, but the Services sharing its VIP use {first}: one virtual service has one rule",
                        l4rule::ANNOTATION
                    );
                    d.outcomes[i].problems.push(Problem::warn(
                        format!("metadata.annotations[{}]", l4rule::ANNOTATION),
                        msg,
                    ));
                } else {
                    members.push(i);
                }
            }
        }
    }
    for (vs, (rule, members)) in by_vs {
        let field = format!("metadata.annotations[{}]", l4rule::ANNOTATION);
        let spec = match rules.l4_rule(&rule) {
            None => {
                for &i in &members {
                    d.outcomes[i].problems.push(Problem::warn(
                        &field,
                        format!(
                            "L4Rule {rule} does not exist; the virtual service has the defaults"
                        ),
                    ));
                }
                continue;
            }
            Some((Verdict::Rejected(why), _)) => {
                for &i in &members {
                    d.outcomes[i].problems.push(Problem::warn(&field, format!("L4Rule {rule} is Rejected ({why}); the virtual service has the defaults")));
                }
                continue;
            }
            Some((Verdict::Accepted, None)) => continue,
            Some((Verdict::Accepted, Some(spec))) => spec,
        };
        // The virtual service's pools (its members'), by port and protocol: AKO checks the listeners against
        // them and the backend properties apply to them.
        let keys: Vec<&ObjKey> = members.iter().map(|&i| &d.outcomes[i].key).collect();
        let pools = member_pools(d, &keys);
        let ports: Vec<(u16, String)> = pools.iter().map(|(_, p, q)| (*p, q.clone())).collect();
        let first = keys.first().map(|k| k.to_string()).unwrap_or_default();
        if let Err(why) = spec.check_listeners(&rule.to_string(), &first, &ports) {
            for &i in &members {
                d.outcomes[i].problems.push(Problem::warn(
                    &field,
                    format!(
                        "L4Rule {rule} is not applied ({why}); the virtual service has the defaults"
                    ),
                ));
            }
            continue;
        }
        apply_l4_rule(d, &vs, spec, &pools);
    }
}

/// A pool of a virtual service: its name, port and protocol (from its markers).
type MemberPool = (String, u16, String);

/// The pools of these Services (their `Namespace`/`ServiceName` markers), with port and protocol.
fn member_pools(d: &L4Desired, keys: &[&ObjKey]) -> Vec<MemberPool> {
    d.objects
        .iter()
        .filter(|o| o.kind == Kind::Pool)
        .filter_map(|o| {
            let m = |k: &str| marker(&o.body, k);
            let mine = keys.iter().any(|k| {
                m("Namespace").as_deref() == Some(k.namespace.as_str())
                    && m("ServiceName").as_deref() == Some(k.name.as_str())
            });
            let port = m("Port")?.parse::<u16>().ok()?;
            mine.then(|| (o.name.clone(), port, m("Protocol").unwrap_or_default()))
        })
        .collect()
}

/// Applies an accepted L4Rule to a virtual service (`vs`), its VsVip and its pools.
fn apply_l4_rule(d: &mut L4Desired, vs: &str, spec: &L4RuleSpec, pools: &[MemberPool]) {
    let ssl_pool = match (spec.terminates_ssl(), pools) {
        (true, [(pool, _, _)]) => Some(pool.clone()),
        _ => None,
    };
    if ssl_pool.is_some() {
        // SSL on the virtual service: the pool directly, as AKO builds it (no L4 policy set).
        d.objects
            .retain(|o| !(o.kind == Kind::L4PolicySet && o.name == vs));
    }
    for o in &mut d.objects {
        match o.kind {
            Kind::VirtualService if o.name == vs => {
                spec.apply_vs(&mut o.body);
                if let Some(pool) = &ssl_pool {
                    spec.apply_ssl(&mut o.body, pool);
                }
            }
            Kind::VsVip if o.name == vs => {
                if let Some(ip) = spec.load_balancer_ip() {
                    super::request_address(&mut o.body, ip);
                }
            }
            Kind::Pool => {
                let backend = pools
                    .iter()
                    .find(|(name, _, _)| *name == o.name)
                    .and_then(|(_, port, proto)| spec.backend(*port, proto));
                if let Some(b) = backend {
                    b.apply(&mut o.body);
                }
            }
            _ => {}
        }
    }
}

/// The first value of a body's marker `key`.
fn marker(body: &serde_json::Map<String, serde_json::Value>, key: &str) -> Option<String> {
    body.get("markers")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .find(|m| m.get("key").and_then(serde_json::Value::as_str) == Some(key))
        .and_then(|m| m.get("values")?.get(0)?.as_str().map(str::to_string))
}

#[cfg(test)]
mod tests;
