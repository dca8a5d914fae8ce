//! Host names: normalization, RFC 1123 validation and the delegated-subdomain rule.
//!
//! A host is normalized (lowercase, one trailing dot stripped) and then must be a valid DNS name (labels of
//! 1..=63 characters `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 253 characters; Kubernetes checks only the
//! total) with a wildcard allowed only as the whole first label. It lies within subdomain `d` when it equals `d`
//! or ends with `"." + d`, so `evilavi.jarvis.lab` is not within `avi.jarvis.lab`.

use std::fmt;

/// Longest DNS name in presentation form.
pub const MAX_NAME: usize = 253;
/// Longest DNS label.
pub const MAX_LABEL: usize = 63;

/// Why a name is not a valid DNS name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong(usize),
    EmptyLabel,
    LabelTooLong { label: String, len: usize },
    BadLabel(String),
    MisplacedWildcard,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => write!(f, "the name is empty"),
            NameError::TooLong(n) => write!(
                f,
                "the name is {n} characters long; DNS allows at most {MAX_NAME}"
            ),
            NameError::EmptyLabel => {
                write!(f, "the name has an empty label (\"..\" or a leading dot)")
            }
            NameError::LabelTooLong { label, len } => {
                write!(
                    f,
                    "label {label:?} is {len} characters long; DNS allows at most {MAX_LABEL}"
                )
            }
            NameError::BadLabel(l) => write!(
                f,
                "label {l:?} must consist of lowercase letters, digits and '-', and start and end with a letter or digit"
            ),
            NameError::MisplacedWildcard => write!(
                f,
                "a wildcard is allowed only as the whole first label (\"*.example.com\")"
            ),
        }
    }
}

/// Lowercases and strips one trailing dot.
pub fn normalize(host: &str) -> String {
    let h = host.strip_suffix('.').unwrap_or(host);
    h.to_ascii_lowercase()
}

fn valid_label(l: &str) -> bool {
    let b = l.as_bytes();
    let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(&f), Some(&z)) => edge(f) && edge(z) && b.iter().all(|&c| edge(c) || c == b'-'),
        _ => false,
    }
}

/// Validates a normalized name. A wildcard first label (`*`) is accepted.
pub fn validate_dns_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME {
        return Err(NameError::TooLong(name.len()));
    }
    for (i, label) in name.split('.').enumerate() {
        if label.is_empty() {
            return Err(NameError::EmptyLabel);
        }
        if label.len() > MAX_LABEL {
            return Err(NameError::LabelTooLong {
                label: label.to_string(),
                len: label.len(),
            });
        }
        if label.contains('*') {
            if i == 0 && label == "*" && name.len() > 2 {
                continue;
            }
            return Err(NameError::MisplacedWildcard);
        }
        if !valid_label(label) {
            return Err(NameError::BadLabel(label.to_string()));
        }
    }
    Ok(())
}

/// True when normalized `host` is `domain` or lies below it on a label boundary.
pub fn within(host: &str, domain: &str) -> bool {
    let h = host.strip_prefix("*.").unwrap_or(host);
    h == domain
        || (h.len() > domain.len()
            && h.ends_with(domain)
            && h.as_bytes()[h.len() - domain.len() - 1] == b'.')
}

/// The first delegated subdomain containing `host`, if any.
pub fn delegated_domain<'a>(host: &str, domains: &'a [String]) -> Option<&'a str> {
    domains.iter().map(String::as_str).find(|d| within(host, d))
}

/// Why a host may not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    Invalid { host: String, reason: NameError },
    OutsideDomains { host: String, domains: Vec<String> },
    NoDomains { host: String },
}

impl HostError {
    /// The message, naming the field the host came from when given:
    /// `host "a.b" (spec.rules[0].host) is outside ...`.
    pub fn describe(&self, field: Option<&str>) -> String {
        let at = field.map(|f| format!(" ({f})")).unwrap_or_default();
        match self {
            HostError::Invalid { host, reason } => {
                format!("host {host:?}{at} is not a valid DNS name: {reason}")
            }
            HostError::OutsideDomains { host, domains } => {
                let hints: Vec<String> = domains.iter().map(|d| format!(".{d}")).collect();
                format!(
                    "host {host:?}{at} is outside the delegated DNS subdomains [{}]; use a host ending in {}",
                    domains.join(", "),
                    hints.join(" or ")
                )
            }
            HostError::NoDomains { host } => format!(
                "host {host:?}{at} cannot be checked: no delegated DNS subdomain is configured (set --dns-domain or the Avi DNS profile)"
            ),
        }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(None))
    }
}

/// Checks a raw host against the delegated subdomains; returns the normalized host.
pub fn check_host(raw: &str, domains: &[String]) -> Result<String, HostError> {
    let host = normalize(raw);
    validate_dns_name(&host).map_err(|reason| HostError::Invalid {
        host: host.clone(),
        reason,
    })?;
    if domains.is_empty() {
        return Err(HostError::NoDomains { host });
    }
    if delegated_domain(&host, domains).is_none() {
        return Err(HostError::OutsideDomains {
            host,
            domains: domains.to_vec(),
        });
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains() -> Vec<String> {
        vec!["avi.jarvis.lab".to_string(), "apps.example.com".to_string()]
    }

    #[test]
    fn host_rule_table() {
        let long_label = "a".repeat(64);
        let label63 = "a".repeat(63);
        let too_long_total = format!("{0}.{0}.{0}.{0}.avi.jarvis.lab", label63); // 4*64 + 14 > 253
        let cases: Vec<(&str, Result<&str, &str>)> = vec![
            ("hackazon.avi.jarvis.lab", Ok("hackazon.avi.jarvis.lab")),
            ("Hackazon.AVI.jarvis.lab.", Ok("hackazon.avi.jarvis.lab")),
            ("avi.jarvis.lab", Ok("avi.jarvis.lab")),
            ("*.shop.avi.jarvis.lab", Ok("*.shop.avi.jarvis.lab")),
            ("*.avi.jarvis.lab", Ok("*.avi.jarvis.lab")),
            ("a.b.apps.example.com", Ok("a.b.apps.example.com")),
            ("evilavi.jarvis.lab", Err("outside")),
            ("shop.example.com", Err("outside")),
            ("jarvis.lab", Err("outside")),
            ("avi.jarvis.lab.evil.com", Err("outside")),
            ("a.*.avi.jarvis.lab", Err("wildcard")),
            ("*x.avi.jarvis.lab", Err("wildcard")),
            ("x*.avi.jarvis.lab", Err("wildcard")),
            ("a..avi.jarvis.lab", Err("empty label")),
            ("-a.avi.jarvis.lab", Err("must consist")),
            ("a_b.avi.jarvis.lab", Err("must consist")),
            ("", Err("empty")),
        ];
        for (input, want) in cases {
            let got = check_host(input, &domains());
            match (want, got) {
                (Ok(w), Ok(g)) => assert_eq!(g, w, "{input}"),
                (Err(w), Err(e)) => assert!(e.to_string().contains(w), "{input}: {e} lacks {w}"),
                (w, g) => panic!("{input}: want {w:?} got {g:?}"),
            }
        }
        let e = check_host(&format!("{long_label}.avi.jarvis.lab"), &domains())
            .expect_err("long label");
        assert!(e.to_string().contains("64 characters"), "{e}");
        let e = check_host(&too_long_total, &domains()).expect_err("long name");
        assert!(e.to_string().contains("at most 253"), "{e}");
    }

    #[test]
    fn denial_message_names_the_domains_and_the_fix() {
        let e =
            check_host("shop.example.com", &["avi.jarvis.lab".to_string()]).expect_err("outside");
        assert_eq!(
            e.to_string(),
            "host \"shop.example.com\" is outside the delegated DNS subdomains [avi.jarvis.lab]; use a host ending in .avi.jarvis.lab"
        );
    }

    #[test]
    fn no_configured_domain_is_an_explicit_error() {
        assert!(matches!(
            check_host("a.b", &[]),
            Err(HostError::NoDomains { .. })
        ));
    }

    #[test]
    fn within_respects_label_boundaries() {
        assert!(within("a.avi.jarvis.lab", "avi.jarvis.lab"));
        assert!(!within("aavi.jarvis.lab", "avi.jarvis.lab"));
        assert!(!within("vi.jarvis.lab", "avi.jarvis.lab"));
    }
}
