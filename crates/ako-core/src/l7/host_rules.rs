//! AKO's rules on a host's translated objects: what a HostRule sets on the virtual service serving the host
//! (and its aliases everywhere the host is named), what an HTTPRule sets on its pools, and the defaults those
//! fields return to when a rule goes.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::crd::RuleSet;

/// What a HostRule may set on the virtual service of a host, at the controller's defaults (`ssl`: it serves
/// HTTPS, where the controller's SSL profile default applies).
pub(super) fn vs_rule_defaults(ssl: bool) -> Map<String, Value> {
    let mut m = Map::new();
    for field in [
        "waf_policy_ref",
        "error_page_profile_ref",
        "network_security_policy_ref",
    ] {
        m.insert(field.into(), Value::Null);
    }
    m.insert("icap_request_profile_refs".into(), json!([]));
    m.insert("vs_datascripts".into(), json!([]));
    m.insert(
        "analytics_profile_ref".into(),
        json!(name_ref("analyticsprofile", "System-Analytics-Profile")),
    );
    m.insert(
        "ssl_profile_ref".into(),
        if ssl {
            json!(name_ref("sslprofile", "System-Standard-PFS"))
        } else {
            Value::Null
        },
    );
    m.insert(
        "analytics_policy".into(),
        json!({"full_client_logs": {"enabled": false}, "all_headers": false}),
    );
    m
}

/// The HTTPRules of the host in the Ingress's namespace on one of its pools: of every rule's paths, the longest
/// target that prefixes the Ingress path decides (the oldest rule on a tie).
/// Applies the HTTPRule path deciding a pool; returns the CA (PEM) its `tls.destinationCA` gives, for which the
/// caller makes the pool's PKI profile.
pub(super) fn apply_http_rules(
    rules: &RuleSet,
    host: &str,
    namespace: &str,
    path: &str,
    pool: &mut Map<String, Value>,
) -> Option<String> {
    let mut best: Option<&crate::crd::httprule::HttpRulePath> = None;
    for (_, spec) in rules.http_rules(host, namespace) {
        if let Some(p) = spec.path_for(path)
            && best.is_none_or(|b| p.target.len() > b.target.len())
        {
            best = Some(p);
        }
    }
    let p = best?;
    p.apply(pool);
    p.tls.as_ref()?.destination_ca.clone()
}

/// The aliases the host's HostRule gives it.
pub(super) fn host_aliases(ctx: &Ctx<'_>, host: &str) -> Vec<String> {
    ctx.rules
        .and_then(|r| r.host_rule(host))
        .map(|(_, s)| s.virtualhost.aliases.clone())
        .unwrap_or_default()
}

/// Serves more names like the host: its virtual service answers them (`vh_domain_name`), its policy sets match
/// them where they match the host, and (`publish`: aliases; not a GSLB name, which the GSLB service answers for)
/// a dedicated VsVip publishes them.
fn serve_aliases(ctx: &mut Ctx<'_>, host: &str, aliases: &[String], publish: bool) {
    if aliases.is_empty() {
        return;
    }
    let domains = ctx.cfg.dns_domains.clone();
    for o in &mut ctx.objects {
        match o.kind {
            Kind::VirtualServiceChild => {
                if let Some(names) = o
                    .body
                    .get_mut("vh_domain_name")
                    .and_then(Value::as_array_mut)
                {
                    names.extend(aliases.iter().map(|a| json!(a)));
                }
            }
            Kind::HttpPolicySet => {
                let rules = o
                    .body
                    .get_mut("http_request_policy")
                    .and_then(|p| p.get_mut("rules"))
                    .and_then(Value::as_array_mut);
                for rule in rules.into_iter().flatten() {
                    let m = rule.get_mut("match").and_then(|m| m.get_mut("host_hdr"));
                    if let Some(Value::Object(hdr)) = m
                        && hdr.get("match_criteria") == Some(&json!("HDR_EQUALS"))
                        && let Some(values) = hdr.get_mut("value").and_then(Value::as_array_mut)
                        && values.iter().any(|v| v.as_str() == Some(host))
                    {
                        values.extend(aliases.iter().map(|a| json!(a)));
                    }
                }
            }
            Kind::VsVip if publish => {
                if let Some(dns) = o.body.get_mut("dns_info").and_then(Value::as_array_mut) {
                    dns.extend(
                        aliases
                            .iter()
                            .filter(|a| hosts::delegated_domain(a, &domains).is_some())
                            .map(|a| json!({"fqdn": a})),
                    );
                }
            }
            _ => {}
        }
    }
}

/// Applies the host's HostRule to the virtual service serving it (`vs`, pushed to `ctx` already); returns what
/// could not apply.
pub(super) fn apply_host_rule(ctx: &mut Ctx<'_>, host: &str, vs: &str, child: bool) -> Vec<String> {
    let Some((_, spec)) = ctx.rules.and_then(|r| r.host_rule(host)) else {
        return Vec::new();
    };
    let aliases = spec.virtualhost.aliases.clone();
    serve_aliases(ctx, host, &aliases, true);
    // AKO's GSLB name (AMKO sends clients with it): answered and routed like the host, not in DNS.
    if let Some(gslb) = spec.gslb_fqdn() {
        serve_aliases(ctx, host, &[gslb.to_string()], false);
    }
    let kind = if child {
        Kind::VirtualServiceChild
    } else {
        Kind::VirtualService
    };
    let mut notes = match ctx
        .objects
        .iter_mut()
        .find(|o| o.kind == kind && o.name == vs)
    {
        Some(o) => spec.apply(&mut o.body, child),
        None => Vec::new(),
    };
    // A dedicated virtual service has its own VsVip (same name): the HostRule's address goes there.
    if !child
        && let Some(o) = ctx
            .objects
            .iter_mut()
            .find(|o| o.kind == Kind::VsVip && o.name == vs)
    {
        notes.extend(spec.apply_vsvip(&mut o.body));
    }
    notes
}

/// A HostRule's alternate certificate from a Secret of its namespace (AKO's `<certificate>-alt`): made from the
/// Secret and listed after the main one on the virtual service serving the host (`vs`). Returns why it could not
/// be, if so.
pub(super) fn add_alternate_secret(
    ctx: &mut Ctx<'_>,
    host_rule: Option<(&crate::crd::RuleId, &crate::crd::HostRuleSpec)>,
    host: &str,
    vs: &str,
    secrets: &BTreeMap<ObjKey, Option<TlsPair>>,
) -> Option<String> {
    let (id, spec) = host_rule?;
    let secret = spec.alternate_secret_cert()?;
    // Only next to a main certificate (a host served over HTTPS).
    let secure = ctx.objects.iter().any(|o| {
        o.name == vs
            && matches!(o.kind, Kind::VirtualService | Kind::VirtualServiceChild)
            && o.body
                .get("ssl_key_and_certificate_refs")
                .and_then(Value::as_array)
                .is_some_and(|r| !r.is_empty())
    });
    if !secure {
        return None;
    }
    let key = ObjKey::new(id.key.namespace.clone(), secret);
    let pair = match secrets.get(&key) {
        Some(Some(pair)) if pair.problem.is_none() => pair.clone(),
        Some(Some(pair)) => {
            return Some(format!(
                "tls.sslKeyCertificate.alternateCertificate: Secret {key} is not usable: {}",
                pair.problem.clone().unwrap_or_default()
            ));
        }
        Some(None) => {
            return Some(format!(
                "tls.sslKeyCertificate.alternateCertificate: Secret {key} has no tls.crt and tls.key"
            ));
        }
        None => {
            return Some(format!(
                "tls.sslKeyCertificate.alternateCertificate: Secret {key} does not exist"
            ));
        }
    };
    let name = avi_name(format!(
        "{}-alt",
        sni_child_name(ctx.cluster, &in_infra(ctx.infra, host))
    ));
    let markers = json!([
        marker("clustername", ctx.cluster),
        marker("Namespace", &key.namespace),
        marker("Host", host),
    ]);
    ctx.certificate(&name, &pair, markers);
    let refs = ctx
        .objects
        .iter_mut()
        .find(|o| {
            o.name == vs && matches!(o.kind, Kind::VirtualService | Kind::VirtualServiceChild)
        })
        .and_then(|o| o.body.get_mut("ssl_key_and_certificate_refs"))
        .and_then(Value::as_array_mut);
    if let Some(refs) = refs {
        refs.push(json!(name_ref("sslkeyandcertificate", &name)));
    }
    None
}
