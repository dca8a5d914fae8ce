//! HostRule (`ako.vmware.com/v1beta1` and `v1alpha1`, namespaced): the settings of the virtual service serving a
//! host. It applies to the host's SNI child (shared mode) or its dedicated virtual service, as AKO does:
//!
//! | field | Avi |
//! |---|---|
//! | `enableVirtualHost` | `enabled` |
//! | `tls.sslKeyCertificate` (`type: ref`, with `alternateCertificate`) | `ssl_key_and_certificate_refs`, replacing the Secret's certificate; an insecure host becomes secure |
//! | `tls.sslKeyCertificate` (`type: secret`: a TLS Secret of the rule's namespace) | the host's certificate object `<cluster>--<host>` made from that Secret instead of the Ingress's (AKO's name); an insecure host becomes secure |
//! | `tls.sslProfile` | `ssl_profile_ref` |
//! | `httpPolicy.policySets` / `overwrite` | `http_policies` after ako's (index 11 + ako's + 5 + i, AKO's numbering), or instead of them |
//! | `datascripts` | `vs_datascripts` in order |
//! | `wafPolicy`, `applicationProfile`, `analyticsProfile`, `errorPageProfile` | `waf_policy_ref`, `application_profile_ref`, `analytics_profile_ref`, `error_page_profile_ref` |
//! | `icapProfile` (one) | `icap_request_profile_refs` |
//! | `networkSecurityPolicy` | `network_security_policy_ref` (dedicated virtual services; an SNI child cannot carry one) |
//! | `analyticsPolicy.fullClientLogs`, `logAllHeaders` | `analytics_policy.full_client_logs {enabled, throttle (HIGH 10, MEDIUM 30, LOW 50, DISABLED 0), duration}`, `all_headers` |
//!
//! Matching (`fqdnType`): `Exact` (the default) is the host itself; `Wildcard` (`*.example.com`) any host ending
//! in `.example.com`; `Contains` any host containing the text. Where several accepted HostRules match a host,
//! an `Exact` one wins, then the longest `Wildcard`, then the longest `Contains`, then the oldest (AKO picks one
//! at random). Two HostRules with the same `fqdn`: the oldest is Accepted, the others Rejected with AKO's
//! `duplicate fqdn <fqdn> found in <ns>/<name>`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{AviRef, Notes, name_ref, unknown_fields};
use crate::l7::HTTP_POLICY_INDEX;

/// `spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostRuleSpec {
    pub virtualhost: VirtualHost,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FqdnType {
    #[default]
    Exact,
    Wildcard,
    Contains,
}

/// `spec.virtualhost`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualHost {
    pub fqdn: String,
    #[serde(default)]
    pub fqdn_type: FqdnType,
    pub enable_virtual_host: Option<bool>,
    pub tls: Option<HostTls>,
    pub http_policy: Option<HttpPolicy>,
    #[serde(default)]
    pub datascripts: Vec<String>,
    pub waf_policy: Option<String>,
    pub application_profile: Option<String>,
    pub analytics_profile: Option<String>,
    pub error_page_profile: Option<String>,
    pub network_security_policy: Option<String>,
    #[serde(default)]
    pub icap_profile: Vec<String>,
    pub analytics_policy: Option<AnalyticsPolicy>,
    pub tcp_settings: Option<TcpSettings>,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub gslb: Option<Gslb>,
    pub l7_rule: Option<String>,
    pub use_regex: Option<bool>,
    pub application_root_path: Option<String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostTls {
    pub ssl_key_certificate: CertRef,
    pub ssl_profile: Option<String>,
    pub termination: Option<String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertType {
    /// A certificate on the controller, by name.
    #[default]
    Ref,
    /// A Kubernetes TLS Secret in the HostRule's namespace.
    Secret,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertRef {
    pub name: String,
    #[serde(rename = "type")]
    pub cert_type: CertType,
    pub alternate_certificate: Option<AltCert>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AltCert {
    pub name: String,
    #[serde(rename = "type")]
    pub cert_type: CertType,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpPolicy {
    #[serde(default)]
    pub policy_sets: Vec<String>,
    #[serde(default)]
    pub overwrite: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalyticsPolicy {
    pub full_client_logs: Option<FullClientLogs>,
    pub log_all_headers: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FullClientLogs {
    #[serde(default)]
    pub enabled: bool,
    pub throttle: Option<String>,
    pub duration: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpSettings {
    #[serde(default)]
    pub listeners: Vec<Listener>,
    #[serde(rename = "loadBalancerIP")]
    pub load_balancer_ip: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    pub port: Option<u16>,
    #[serde(default, rename = "enableSSL")]
    pub enable_ssl: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gslb {
    /// The name a GSLB service (AMKO) sends clients with: served like the host (its virtual service answers it,
    /// its routes match it), never published in DNS (the GSLB service answers for it).
    pub fqdn: Option<String>,
    #[serde(default)]
    pub include_aliases: bool,
}

impl HostRuleSpec {
    /// `gslb.fqdn`, if set.
    pub fn gslb_fqdn(&self) -> Option<&str> {
        self.virtualhost
            .gslb
            .as_ref()
            .and_then(|g| g.fqdn.as_deref())
            .filter(|f| !f.is_empty())
    }
}

/// Whether a certificate's name covers a host: the same name, or a wildcard `*.<domain>` for a host one label
/// below `<domain>` (RFC 6125), without case.
pub fn name_covers(name: &str, host: &str) -> bool {
    let (name, host) = (name.to_ascii_lowercase(), host.to_ascii_lowercase());
    if name == host {
        return true;
    }
    match (name.strip_prefix("*."), host.split_once('.')) {
        (Some(domain), Some((label, rest))) => !label.is_empty() && rest == domain,
        _ => false,
    }
}

impl HostRuleSpec {
    /// The controller certificates the rule names (`type: ref`) must be valid for its Exact FQDN: the first
    /// whose names are known and do not cover it is the error. `names_of`: a certificate's names.
    pub fn check_cert_names(
        &self,
        names_of: &dyn Fn(&str) -> Option<Vec<String>>,
    ) -> Result<(), String> {
        let v = &self.virtualhost;
        if v.fqdn_type != FqdnType::Exact {
            return Ok(());
        }
        let Some(tls) = &v.tls else {
            return Ok(());
        };
        let c = &tls.ssl_key_certificate;
        let mut certs = vec![(
            &c.name,
            c.cert_type,
            "spec.virtualhost.tls.sslKeyCertificate.name",
        )];
        if let Some(alt) = &c.alternate_certificate {
            certs.push((
                &alt.name,
                alt.cert_type,
                "spec.virtualhost.tls.sslKeyCertificate.alternateCertificate.name",
            ));
        }
        for (cert, cert_type, field) in certs {
            if cert_type != CertType::Ref {
                continue;
            }
            let Some(names) = names_of(cert) else {
                continue;
            };
            if !names.iter().any(|n| name_covers(n, &v.fqdn)) {
                return Err(format!(
                    "certificate {cert:?} ({field}) is not valid for {}: it names {}; clients would get a name mismatch",
                    v.fqdn,
                    if names.is_empty() {
                        "no DNS name".to_string()
                    } else {
                        names.join(", ")
                    }
                ));
            }
        }
        Ok(())
    }
}

/// The FQDN a HostRule's raw `spec` claims (for the webhook's index, before the spec is typed).
pub fn claimed_fqdn(spec: &Value) -> Option<String> {
    spec.pointer("/virtualhost/fqdn")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// AKO's full client log throttle values.
pub fn throttle_value(throttle: Option<&str>) -> u32 {
    match throttle.unwrap_or("HIGH") {
        "HIGH" => 10,
        "MEDIUM" => 30,
        "LOW" => 50,
        _ => 0,
    }
}

impl HostRuleSpec {
    pub fn fqdn(&self) -> &str {
        &self.virtualhost.fqdn
    }

    /// Whether the rule applies to a host.
    pub fn matches(&self, host: &str) -> bool {
        let v = &self.virtualhost;
        match v.fqdn_type {
            FqdnType::Exact => v.fqdn.eq_ignore_ascii_case(host),
            FqdnType::Wildcard => v
                .fqdn
                .strip_prefix('*')
                .is_some_and(|suffix| !suffix.is_empty() && host.ends_with(suffix)),
            FqdnType::Contains => !v.fqdn.is_empty() && host.contains(v.fqdn.as_str()),
        }
    }

    /// How specific a match is (higher wins): Exact, then the longest Wildcard, then the longest Contains.
    pub fn specificity(&self) -> (u8, usize) {
        let v = &self.virtualhost;
        match v.fqdn_type {
            FqdnType::Exact => (2, v.fqdn.len()),
            FqdnType::Wildcard => (1, v.fqdn.len()),
            FqdnType::Contains => (0, v.fqdn.len()),
        }
    }

    /// The controller certificate names of `tls` (`type: ref`), main first.
    pub fn controller_certs(&self) -> Vec<&str> {
        let Some(tls) = &self.virtualhost.tls else {
            return Vec::new();
        };
        let c = &tls.ssl_key_certificate;
        let mut out = Vec::new();
        if c.cert_type == CertType::Ref && !c.name.is_empty() {
            out.push(c.name.as_str());
        }
        if let Some(alt) = &c.alternate_certificate
            && alt.cert_type == CertType::Ref
            && !alt.name.is_empty()
        {
            out.push(alt.name.as_str());
        }
        out
    }

    /// The Secret (in the rule's namespace) whose certificate serves the host: `tls.sslKeyCertificate` of
    /// `type: secret`.
    pub fn secret_cert(&self) -> Option<&str> {
        let c = &self.virtualhost.tls.as_ref()?.ssl_key_certificate;
        (c.cert_type == CertType::Secret && !c.name.is_empty()).then_some(c.name.as_str())
    }

    /// The alternate certificate's Secret (`alternateCertificate` of `type: secret`; AKO's `-alt` certificate).
    pub fn alternate_secret_cert(&self) -> Option<&str> {
        let alt = self
            .virtualhost
            .tls
            .as_ref()?
            .ssl_key_certificate
            .alternate_certificate
            .as_ref()?;
        (alt.cert_type == CertType::Secret && !alt.name.is_empty()).then_some(alt.name.as_str())
    }

    /// Every Secret the rule takes a certificate from (main, then alternate).
    pub fn secret_certs(&self) -> Vec<&str> {
        self.secret_cert()
            .into_iter()
            .chain(self.alternate_secret_cert())
            .collect()
    }

    /// What can be checked without the controller or other objects; the first problem, in AKO's words where
    /// AKO has them.
    pub fn check(&self) -> Result<(), String> {
        let v = &self.virtualhost;
        if v.fqdn.trim().is_empty() {
            return Err("spec.virtualhost.fqdn is required".into());
        }
        if v.fqdn_type == FqdnType::Wildcard && !v.fqdn.starts_with('*') {
            return Err(format!(
                "fqdn {:?} of fqdnType Wildcard must start with '*' (e.g. *.example.com)",
                v.fqdn
            ));
        }
        if let Some(ip) = v
            .tcp_settings
            .as_ref()
            .and_then(|t| t.load_balancer_ip.as_ref())
            && ip.parse::<std::net::IpAddr>().is_err()
        {
            return Err(format!("loadBalancerIP {ip} is not a valid IP"));
        }
        if let Some(g) = v.gslb.as_ref().and_then(|g| g.fqdn.as_ref())
            && g == &v.fqdn
        {
            return Err("GSLB FQDN and local FQDN are same".into());
        }
        if let Some(t) = &v.tcp_settings
            && !t.listeners.is_empty()
            && !t.listeners.iter().any(|l| l.enable_ssl)
        {
            return Err("Hosting parent virtualservice must have SSL enabled".into());
        }
        if !v.aliases.is_empty() {
            if v.fqdn_type != FqdnType::Exact {
                return Err("Aliases is supported only when FQDN type is set as Exact".into());
            }
            if v.aliases.contains(&v.fqdn) {
                return Err(
                    "Duplicate entry found. Aliases field has same entry as the FQDN field".into(),
                );
            }
            let mut seen = std::collections::BTreeSet::new();
            if !v.aliases.iter().all(|a| seen.insert(a)) {
                return Err("Aliases must be unique".into());
            }
            if let Some(g) = v.gslb.as_ref().and_then(|g| g.fqdn.as_ref())
                && v.aliases.contains(g)
            {
                return Err("Aliases must not contain GSLB FQDN".into());
            }
        }
        if v.icap_profile.len() > 1 {
            return Err("Can only have 1 ICAP profile associated with VS".into());
        }
        if let Some(tls) = &v.tls {
            if tls.ssl_key_certificate.name.trim().is_empty() {
                return Err("spec.virtualhost.tls.sslKeyCertificate.name is required".into());
            }
            if let Some(t) = &tls.termination
                && t != "edge"
            {
                return Err(format!(
                    "tls.termination {t:?} is not supported; the only value is \"edge\""
                ));
            }
        }
        if let Some(p) = &v.application_root_path
            && !p.starts_with('/')
        {
            return Err(format!("applicationRootPath {p:?} must start with '/'"));
        }
        Ok(())
    }

    /// The controller objects the rule names, with the field naming each (what AKO checks exist).
    pub fn refs(&self) -> Vec<AviRef> {
        let v = &self.virtualhost;
        let base = "spec.virtualhost";
        let mut out = Vec::new();
        let mut one = |t: &'static str, name: &Option<String>, field: &str| {
            if let Some(n) = name {
                out.push(AviRef::new(t, n, format!("{base}.{field}")));
            }
        };
        one("wafpolicy", &v.waf_policy, "wafPolicy");
        one(
            "applicationprofile",
            &v.application_profile,
            "applicationProfile",
        );
        one("analyticsprofile", &v.analytics_profile, "analyticsProfile");
        one(
            "errorpageprofile",
            &v.error_page_profile,
            "errorPageProfile",
        );
        one(
            "networksecuritypolicy",
            &v.network_security_policy,
            "networkSecurityPolicy",
        );
        if let Some(tls) = &v.tls {
            one("sslprofile", &tls.ssl_profile, "tls.sslProfile");
            let c = &tls.ssl_key_certificate;
            if c.cert_type == CertType::Ref {
                out.push(AviRef::new(
                    "sslkeyandcertificate",
                    &c.name,
                    format!("{base}.tls.sslKeyCertificate.name"),
                ));
            }
            if let Some(alt) = &c.alternate_certificate
                && alt.cert_type == CertType::Ref
            {
                out.push(AviRef::new(
                    "sslkeyandcertificate",
                    &alt.name,
                    format!("{base}.tls.sslKeyCertificate.alternateCertificate.name"),
                ));
            }
        }
        for (i, p) in v.icap_profile.iter().enumerate() {
            out.push(AviRef::new(
                "icapprofile",
                p,
                format!("{base}.icapProfile[{i}]"),
            ));
        }
        if let Some(hp) = &v.http_policy {
            for (i, p) in hp.policy_sets.iter().enumerate() {
                out.push(AviRef::new(
                    "httppolicyset",
                    p,
                    format!("{base}.httpPolicy.policySets[{i}]"),
                ));
            }
        }
        for (i, d) in v.datascripts.iter().enumerate() {
            out.push(AviRef::new(
                "vsdatascriptset",
                d,
                format!("{base}.datascripts[{i}]"),
            ));
        }
        out
    }

    /// Fields ako reads but does not apply yet, and fields neither AKO nor ako knows.
    pub fn notes(&self) -> Notes {
        let v = &self.virtualhost;
        let mut n = Notes::default();
        let mut not_yet = |set: bool, field: &str, why: &'static str| {
            if set {
                n.unimplemented
                    .push((format!("spec.virtualhost.{field}"), why));
            }
        };
        not_yet(
            v.gslb.as_ref().is_some_and(|g| g.include_aliases),
            "gslb.includeAliases",
            "it is read by AMKO (the GSLB operator), not by AKO or ako",
        );
        not_yet(
            v.fqdn.contains("Shared-") && v.tcp_settings.is_some(),
            "tcpSettings",
            "a shared parent's listeners and address are not configurable yet (a dedicated virtual service's are)",
        );
        not_yet(
            v.l7_rule.is_some(),
            "l7Rule",
            "L7Rule needs EVH, which ako does not have",
        );
        not_yet(
            v.use_regex == Some(true),
            "useRegex",
            "paths are matched as Kubernetes paths",
        );
        not_yet(
            v.application_root_path.is_some(),
            "applicationRootPath",
            "add a redirect HTTPPolicySet through httpPolicy.policySets",
        );
        unknown_fields("spec", &self.other, &mut n.unknown);
        unknown_fields("spec.virtualhost", &v.other, &mut n.unknown);
        if let Some(t) = &v.tls {
            unknown_fields("spec.virtualhost.tls", &t.other, &mut n.unknown);
        }
        n
    }

    /// Applies the rule to the body of the virtual service serving the host (an SNI child when `child`). ako's
    /// own policy sets are those in the body already. Returns the warnings for what cannot apply there.
    pub fn apply(&self, body: &mut Map<String, Value>, child: bool) -> Vec<String> {
        let v = &self.virtualhost;
        let mut warnings = Vec::new();
        if let Some(e) = v.enable_virtual_host {
            body.insert("enabled".into(), Value::Bool(e));
        }
        let certs = self.controller_certs();
        if !certs.is_empty() {
            let refs: Vec<Value> = certs
                .iter()
                .map(|c| name_ref("sslkeyandcertificate", c))
                .collect();
            body.insert("ssl_key_and_certificate_refs".into(), Value::Array(refs));
        }
        if let Some(p) = v.tls.as_ref().and_then(|t| t.ssl_profile.as_ref()) {
            body.insert("ssl_profile_ref".into(), name_ref("sslprofile", p));
        }
        let mut set = |field: &str, t: &str, name: &Option<String>| {
            if let Some(n) = name {
                body.insert(field.into(), name_ref(t, n));
            }
        };
        set("waf_policy_ref", "wafpolicy", &v.waf_policy);
        set(
            "application_profile_ref",
            "applicationprofile",
            &v.application_profile,
        );
        set(
            "analytics_profile_ref",
            "analyticsprofile",
            &v.analytics_profile,
        );
        set(
            "error_page_profile_ref",
            "errorpageprofile",
            &v.error_page_profile,
        );
        if let Some(nsp) = &v.network_security_policy {
            if child {
                warnings.push(
                    "can not associate network security policy with host which is attached to child virtual service. Configuration is ignored".to_string(),
                );
            } else {
                body.insert(
                    "network_security_policy_ref".into(),
                    name_ref("networksecuritypolicy", nsp),
                );
            }
        }
        if let Some(icap) = v.icap_profile.first() {
            body.insert(
                "icap_request_profile_refs".into(),
                json!([name_ref("icapprofile", icap)]),
            );
        }
        if !v.datascripts.is_empty() {
            let ds: Vec<Value> = v
                .datascripts
                .iter()
                .enumerate()
                .map(|(i, d)| json!({"index": i, "vs_datascript_set_ref": name_ref("vsdatascriptset", d)}))
                .collect();
            body.insert("vs_datascripts".into(), Value::Array(ds));
        }
        if let Some(hp) = &v.http_policy
            && (!hp.policy_sets.is_empty() || hp.overwrite)
        {
            let mut policies: Vec<Value> = if hp.overwrite {
                Vec::new()
            } else {
                body.get("http_policies")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            };
            // AKO's numbering: its own sets from 11, a HostRule's after them with a gap of 5.
            let own = u32::try_from(policies.len()).unwrap_or(u32::MAX);
            let first = HTTP_POLICY_INDEX.saturating_add(own).saturating_add(5);
            let mut seen = std::collections::BTreeSet::new();
            for (i, p) in hp
                .policy_sets
                .iter()
                .filter(|p| seen.insert(p.as_str()))
                .enumerate()
            {
                let index = first.saturating_add(u32::try_from(i).unwrap_or(u32::MAX));
                policies.push(
                    json!({"index": index, "http_policy_set_ref": name_ref("httppolicyset", p)}),
                );
            }
            body.insert("http_policies".into(), Value::Array(policies));
        }
        if let Some(t) = &v.tcp_settings {
            if child {
                if !t.listeners.is_empty() || t.load_balancer_ip.is_some() {
                    warnings.push("tcpSettings apply to a dedicated virtual service (shardVSSize DEDICATED), not to an SNI child; ignored".to_string());
                }
            } else if !t.listeners.is_empty() {
                // The listeners replace the default ports (80, and 443 with SSL), as in AKO.
                let services: Vec<Value> = t
                    .listeners
                    .iter()
                    .filter_map(|l| {
                        let port = l.port?;
                        Some(json!({"port": port, "enable_ssl": l.enable_ssl}))
                    })
                    .collect();
                body.insert("services".into(), Value::Array(services));
            }
        }
        if let Some(ap) = &v.analytics_policy {
            let mut policy = Map::new();
            if let Some(fcl) = &ap.full_client_logs {
                policy.insert(
                    "full_client_logs".into(),
                    json!({
                        "enabled": fcl.enabled,
                        "throttle": throttle_value(fcl.throttle.as_deref()),
                        "duration": fcl.duration.unwrap_or(0),
                    }),
                );
            }
            if let Some(all) = ap.log_all_headers {
                policy.insert("all_headers".into(), Value::Bool(all));
            }
            if !policy.is_empty() {
                body.insert("analytics_policy".into(), Value::Object(policy));
            }
        }
        warnings
    }

    /// Applies `tcpSettings.loadBalancerIP` to the VsVip of a dedicated virtual service.
    pub fn apply_vsvip(&self, vsvip: &mut Map<String, Value>) -> Vec<String> {
        let Some(ip) = self
            .virtualhost
            .tcp_settings
            .as_ref()
            .and_then(|t| t.load_balancer_ip.as_deref())
            .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
        else {
            return Vec::new();
        };
        super::request_address(vsvip, ip);
        Vec::new()
    }
}

#[cfg(test)]
mod tests;
