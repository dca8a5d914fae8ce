//! Admission of HostRules, HTTPRules, L4Rules and AviInfraSettings: what AKO finds out minutes later and writes to a status, denied at
//! `kubectl apply` with the reason. The checks are the reconciler's ([`crate::crd`]), plus what needs the
//! cluster's other objects: an FQDN another HostRule holds, an HTTPRule for a host or path no Ingress of its
//! namespace serves. The controller's names come from `names`; one it cannot tell ([`Lookup::Unknown`]: the
//! controller is unreachable, or `ako check` offline) never denies.

use super::{Decision, not_ready};
use crate::config::Config;
use crate::crd::{
    ControllerView, HostRuleSpec, HttpRuleSpec, InfraSettingSpec, L4RuleSpec, RuleKind,
    check_host_rule, check_http_rule, check_infra_setting, check_l4_rule,
};
use crate::index::{ObjKey, Snapshot};

/// A HostRule or HTTPRule under review.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleReview {
    pub kind: RuleKind,
    pub key: ObjKey,
    /// creationTimestamp (seconds); `None` on CREATE.
    pub created: Option<i64>,
    pub spec: serde_json::Value,
}

/// Decides a rule's admission.
pub fn validate_rule(
    r: &RuleReview,
    cfg: &Config,
    snap: &Snapshot,
    controller: &dyn ControllerView,
) -> Decision {
    let names = &|t: &str, n: &str| controller.lookup(t, n);
    let mut d = Decision {
        in_scope: true,
        ..Decision::allow()
    };
    if not_ready(&mut d, cfg) {
        return d;
    }
    let kind = r.kind.kind();
    match r.kind {
        RuleKind::HostRule => match serde_json::from_value::<HostRuleSpec>(r.spec.clone()) {
            Err(e) => d.reasons.push(format!("{kind} spec is not valid: {e}")),
            Ok(spec) => {
                if let Err(why) = check_host_rule(&spec, &cfg.dns_domains, names)
                    .and_then(|()| spec.check_cert_names(&|c| controller.cert_names(c)))
                {
                    d.reasons.push(why);
                } else if let Some(holder) = snap.host_rule_holding(spec.fqdn(), &r.key)
                    && older(holder.created, &holder.key, r.created, &r.key)
                {
                    d.reasons.push(format!(
                        "duplicate fqdn {} found in {}: that HostRule (the oldest) holds it; edit it, or delete it first",
                        spec.fqdn(),
                        holder.key
                    ));
                }
                for w in spec.notes().warnings(kind) {
                    d.warn(w);
                }
            }
        },
        RuleKind::L4Rule => match serde_json::from_value::<L4RuleSpec>(r.spec.clone()) {
            Err(e) => d.reasons.push(format!("{kind} spec is not valid: {e}")),
            Ok(spec) => {
                if let Err(why) = check_l4_rule(&spec, names) {
                    d.reasons.push(why);
                }
                for w in spec.notes().warnings(kind) {
                    d.warn(w);
                }
            }
        },
        RuleKind::AviInfraSetting => {
            match serde_json::from_value::<InfraSettingSpec>(r.spec.clone()) {
                Err(e) => d.reasons.push(format!("{kind} spec is not valid: {e}")),
                Ok(spec) => {
                    if let Err(why) = check_infra_setting(&spec, names) {
                        d.reasons.push(why);
                    }
                    for w in spec.notes().warnings(kind) {
                        d.warn(w);
                    }
                }
            }
        }
        RuleKind::HttpRule => match serde_json::from_value::<HttpRuleSpec>(r.spec.clone()) {
            Err(e) => d.reasons.push(format!("{kind} spec is not valid: {e}")),
            Ok(spec) => {
                if let Err(why) = check_http_rule(&spec, names) {
                    d.reasons.push(why);
                } else {
                    served_here(&mut d, &spec, &r.key.namespace, snap);
                }
                for w in spec.notes().warnings(kind) {
                    d.warn(w);
                }
            }
        },
    }
    d.finish();
    d
}

/// Whether claim `a` is older than `b` (creation time, then namespace and name; not stored yet is newest).
fn older(a: Option<i64>, ak: &ObjKey, b: Option<i64>, bk: &ObjKey) -> bool {
    (a.is_none(), a, ak) < (b.is_none(), b, bk)
}

/// An HTTPRule applies to the Ingresses of its namespace: the host must be one of theirs, and each target must
/// select at least one of their paths on it.
fn served_here(d: &mut Decision, spec: &HttpRuleSpec, ns: &str, snap: &Snapshot) {
    let host = spec.fqdn.to_ascii_lowercase();
    let paths: Vec<&str> = snap
        .claims_for_host(&host)
        .iter()
        .filter(|c| c.key.namespace == ns)
        .flat_map(|c| c.paths_for(&host).iter().map(|p| p.path.as_str()))
        .collect();
    let here = snap
        .claims_for_host(&host)
        .iter()
        .any(|c| c.key.namespace == ns);
    if !here {
        d.reasons.push(format!(
            "no Ingress in namespace {ns:?} serves host {:?}; an HTTPRule applies to the Ingresses of its own namespace, so create it where the host's Ingress is (or the Ingress first)",
            spec.fqdn
        ));
        return;
    }
    for (i, p) in spec.paths.iter().enumerate() {
        let selects = paths
            .iter()
            .any(|path| (if path.is_empty() { "/" } else { path }).starts_with(p.target.as_str()));
        if !selects {
            let mut known: Vec<&str> = paths.clone();
            known.sort_unstable();
            known.dedup();
            d.reasons.push(format!(
                "spec.paths[{i}].target {:?} selects no path of host {:?} in namespace {ns:?} (its paths: {}); a target selects the paths it begins",
                p.target,
                spec.fqdn,
                known.join(", ")
            ));
        }
    }
}

#[cfg(test)]
mod tests;
