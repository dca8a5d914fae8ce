//! `webhook.certificates: self`: ako keeps its own webhook CA and serving certificate.
//!
//! The pair lives in a Secret of ako's namespace (`ako-webhook-tls`, made by the Helm chart at install with keys
//! `ca.crt`, `ca.key`, `tls.crt`, `tls.key`, `ca-bundle.crt`). At start and then periodically ako:
//!
//! 1. reads the Secret and decides ([`plan`], pure) whether anything must be renewed: a CA that is missing,
//!    unreadable or too close to its end to sign a full-length serving certificate; a serving certificate that is
//!    missing, unreadable, not from the current CA, not matching its key, missing a wanted name, or within
//!    [`RENEW_BEFORE_DAYS`] of its end. A new CA keeps the previous one in `ca-bundle.crt` while it is valid, so
//!    the API server trusts both during the switch;
//! 2. writes a renewed pair back (optimistic concurrency: with two replicas, the loser re-reads the winner's);
//! 3. writes `tls.crt`/`tls.key` where the webhook server reloads them (key first);
//! 4. sets `caBundle` of every webhook of the Validating- and MutatingWebhookConfiguration to `ca-bundle.crt`
//!    (a strategic merge patch per webhook name; a configuration that does not exist is left alone).
//!
//! Nothing here logs key material.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use x509_parser::prelude::*;

use ako_certs::{GeneratedCa, certified_key_from_pem, generate_ca};

/// Validity of a new CA, in days.
pub const CA_DAYS: i64 = 3650;
/// Validity of a new serving certificate, in days.
pub const SERVING_DAYS: i64 = 365;
/// A serving certificate is renewed this many days before its end.
pub const RENEW_BEFORE_DAYS: i64 = 30;

const CA_CRT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const TLS_CRT: &str = "tls.crt";
const TLS_KEY: &str = "tls.key";
const CA_BUNDLE: &str = "ca-bundle.crt";
const DAY: i64 = 86_400;

/// A Secret's data, decoded.
pub type SecretData = BTreeMap<String, Vec<u8>>;

/// Flags of `webhook.certificates: self` (`ako run`, `ako webhook`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SelfCertArgs {
    /// Keep the webhook's CA and serving certificate in this Secret of ako's namespace, renew them, and keep the
    /// caBundle of the webhook configurations current (off when unset).
    #[arg(long = "webhook-cert-secret", env = "AKO_WEBHOOK_CERT_SECRET")]
    pub secret: Option<String>,
    /// Namespace of that Secret (ako's).
    #[arg(
        long = "webhook-cert-namespace",
        env = "POD_NAMESPACE",
        default_value = "avi-system"
    )]
    pub cert_namespace: String,
    /// Name of the Validating- and MutatingWebhookConfiguration whose caBundle ako keeps current ("" for none).
    #[arg(
        long = "webhook-configuration",
        env = "AKO_WEBHOOK_CONFIGURATION",
        default_value = "ako-webhook"
    )]
    pub configuration: String,
    /// The webhook's Service: the serving certificate is valid for its in-cluster DNS names.
    #[arg(
        long = "webhook-service",
        env = "AKO_WEBHOOK_SERVICE",
        default_value = "ako-webhook"
    )]
    pub service: String,
    /// More names or IP addresses for the serving certificate (repeatable or comma separated).
    #[arg(
        long = "webhook-cert-host",
        env = "AKO_WEBHOOK_CERT_HOSTS",
        value_delimiter = ','
    )]
    pub hosts: Vec<String>,
    /// How often the Secret and the caBundle are checked, in seconds.
    #[arg(
        long = "webhook-cert-check-seconds",
        env = "AKO_WEBHOOK_CERT_CHECK_SECONDS",
        default_value_t = 3600
    )]
    pub check_seconds: u64,
}

/// What the serving certificate must cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
}

impl Wanted {
    /// The Service's in-cluster names and the extra hosts (IP addresses recognised as such).
    pub fn new(service: &str, namespace: &str, hosts: &[String]) -> Self {
        let mut dns_names = ako_certs::service_dns_names(service, namespace);
        let mut ips = Vec::new();
        for h in hosts.iter().map(|h| h.trim()).filter(|h| !h.is_empty()) {
            match h.trim_start_matches('[').trim_end_matches(']').parse() {
                Ok(ip) => ips.push(ip),
                Err(_) => dns_names.push(h.to_ascii_lowercase()),
            }
        }
        dns_names.dedup();
        Self { dns_names, ips }
    }
}

/// Errors of the certificate keeper.
#[derive(Debug, thiserror::Error)]
pub enum CertSyncError {
    #[error("Secret {0} not found: it is made by the Helm chart (webhook.certificates=self)")]
    SecretMissing(String),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Cert(#[from] ako_certs::CertError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A parsed certificate's facts that matter here.
#[derive(Debug)]
struct Facts {
    not_after: i64,
    subject: Vec<u8>,
    issuer: Vec<u8>,
    dns_names: Vec<String>,
    ips: Vec<IpAddr>,
}

fn facts(pem: &[u8]) -> Option<Facts> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).ok()?;
    let cert = pem.parse_x509().ok()?;
    let mut dns_names = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns_names.push(d.to_ascii_lowercase()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).ok()?)),
                    16 => ips.push(IpAddr::from(<[u8; 16]>::try_from(*b).ok()?)),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Some(Facts {
        not_after: cert.validity().not_after.timestamp(),
        subject: cert.subject().as_raw().to_vec(),
        issuer: cert.issuer().as_raw().to_vec(),
        dns_names,
        ips,
    })
}

/// Why a renewal happens (logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewal {
    pub new_ca: bool,
    pub reason: String,
}

/// Decides from the Secret's data (decoded) what must change. `None`: nothing; otherwise the new data.
pub fn plan(
    data: &BTreeMap<String, Vec<u8>>,
    wanted: &Wanted,
    now: i64,
) -> Result<Option<(SecretData, Renewal)>, ako_certs::CertError> {
    let text = |k: &str| data.get(k).map(|v| String::from_utf8_lossy(v).into_owned());
    let old_ca = text(CA_CRT).zip(text(CA_KEY));
    let old_ca_facts = data.get(CA_CRT).and_then(|c| facts(c));
    // A CA must outlive every serving certificate it signs.
    let ca_reason = match (&old_ca, &old_ca_facts) {
        (None, _) => Some("the CA is missing"),
        (Some(_), None) => Some("the CA certificate cannot be read"),
        (Some(_), Some(f)) if f.not_after - now < (SERVING_DAYS + RENEW_BEFORE_DAYS) * DAY => {
            Some("the CA is close to its end")
        }
        _ => None,
    };
    let loaded_ca = match (&old_ca, ca_reason) {
        (Some((c, k)), None) => GeneratedCa::from_pem(c, k).ok(),
        _ => None,
    };
    let (ca, mut reason) = match loaded_ca {
        Some(ca) => (ca, None),
        None => (
            generate_ca("ako webhook CA", CA_DAYS)?,
            Some(ca_reason.unwrap_or("the CA key cannot be used").to_string()),
        ),
    };
    let new_ca = reason.is_some();
    let ca_facts = facts(ca.cert_pem.as_bytes());

    if reason.is_none() {
        reason = serving_problem(data, wanted, ca_facts.as_ref(), now);
    }
    let mut out = data.clone();
    let mut bundle = ca.cert_pem.clone();
    if new_ca
        && let (Some(old), Some(f)) = (data.get(CA_CRT), &old_ca_facts)
        && f.not_after > now
    {
        // The API server keeps trusting the old CA until the new serving certificate is in service everywhere.
        bundle.push_str(&String::from_utf8_lossy(old));
    } else if !new_ca && let Some(b) = text(CA_BUNDLE) {
        bundle = b;
    }
    if !bundle.contains(ca.cert_pem.trim()) {
        bundle = ca.cert_pem.clone();
    }
    if let Some(why) = reason {
        let serving = ca.issue(&wanted.dns_names, &wanted.ips, SERVING_DAYS)?;
        out.insert(CA_CRT.into(), ca.cert_pem.clone().into_bytes());
        out.insert(CA_KEY.into(), ca.key_pem.clone().into_bytes());
        out.insert(TLS_CRT.into(), serving.cert_pem.into_bytes());
        out.insert(TLS_KEY.into(), serving.key_pem.into_bytes());
        out.insert(CA_BUNDLE.into(), bundle.into_bytes());
        return Ok(Some((
            out,
            Renewal {
                new_ca,
                reason: why,
            },
        )));
    }
    if text(CA_BUNDLE).as_deref() != Some(bundle.as_str()) {
        out.insert(CA_BUNDLE.into(), bundle.into_bytes());
        return Ok(Some((
            out,
            Renewal {
                new_ca: false,
                reason: "ca-bundle.crt does not hold the CA".into(),
            },
        )));
    }
    Ok(None)
}

/// Why the serving certificate must be re-issued under the (kept) CA, if it must.
fn serving_problem(
    data: &BTreeMap<String, Vec<u8>>,
    wanted: &Wanted,
    ca: Option<&Facts>,
    now: i64,
) -> Option<String> {
    let (Some(crt), Some(key)) = (data.get(TLS_CRT), data.get(TLS_KEY)) else {
        return Some("the serving certificate is missing".into());
    };
    let Some(f) = facts(crt) else {
        return Some("the serving certificate cannot be read".into());
    };
    if certified_key_from_pem(crt, key, Path::new(TLS_CRT)).is_err() {
        return Some("the serving key does not match its certificate".into());
    }
    if ca.is_none_or(|ca| ca.subject != f.issuer) {
        return Some("the serving certificate is not from the CA".into());
    }
    if f.not_after - now < RENEW_BEFORE_DAYS * DAY {
        return Some("the serving certificate is close to its end".into());
    }
    if let Some(missing) = wanted.dns_names.iter().find(|d| !f.dns_names.contains(d)) {
        return Some(format!("the serving certificate lacks the name {missing}"));
    }
    if let Some(missing) = wanted.ips.iter().find(|ip| !f.ips.contains(ip)) {
        return Some(format!(
            "the serving certificate lacks the address {missing}"
        ));
    }
    None
}

/// The keeper of one Secret.
#[derive(Clone)]
pub struct Keeper {
    client: Client,
    namespace: String,
    secret: String,
    configuration: String,
    wanted: Wanted,
    cert_path: PathBuf,
    key_path: PathBuf,
}

impl Keeper {
    /// `None` when `args` do not ask for self-managed certificates.
    pub fn new(
        client: Client,
        args: &SelfCertArgs,
        cert_path: &Path,
        key_path: &Path,
    ) -> Option<Self> {
        let secret = args.secret.clone().filter(|s| !s.is_empty())?;
        Some(Self {
            client,
            wanted: Wanted::new(&args.service, &args.cert_namespace, &args.hosts),
            namespace: args.cert_namespace.clone(),
            secret,
            configuration: args.configuration.clone(),
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
        })
    }

    /// One round: renew if needed, write the files, set the caBundles. Returns whether the Secret was renewed.
    pub async fn sync(&self) -> Result<bool, CertSyncError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let Some(secret) = api.get_opt(&self.secret).await? else {
            return Err(CertSyncError::SecretMissing(format!(
                "{}/{}",
                self.namespace, self.secret
            )));
        };
        let data: BTreeMap<String, Vec<u8>> = secret
            .data
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        let now = jiff::Timestamp::now().as_second();
        let (data, renewed) = match plan(&data, &self.wanted, now)? {
            None => (data, false),
            Some((new, why)) => {
                let mut updated = secret.clone();
                updated.data = Some(
                    new.iter()
                        .map(|(k, v)| (k.clone(), ByteString(v.clone())))
                        .collect(),
                );
                // resourceVersion stays set: a concurrent writer makes this a 409, and the next round re-reads.
                api.replace(&self.secret, &PostParams::default(), &updated)
                    .await?;
                tracing::warn!(secret = %self.secret, reason = %why.reason, new_ca = why.new_ca, "webhook certificate renewed");
                (new, true)
            }
        };
        if let (Some(crt), Some(key)) = (data.get(TLS_CRT), data.get(TLS_KEY)) {
            // Key first: a reloader that sees the new certificate also finds its key.
            write_if_changed(&self.key_path, key, true)?;
            write_if_changed(&self.cert_path, crt, false)?;
        }
        if let Some(bundle) = data.get(CA_BUNDLE).or_else(|| data.get(CA_CRT))
            && !self.configuration.is_empty()
        {
            let b64 = base64::engine::general_purpose::STANDARD.encode(bundle);
            let validating: Api<ValidatingWebhookConfiguration> = Api::all(self.client.clone());
            let names = validating
                .get_opt(&self.configuration)
                .await?
                .map(|c| {
                    stale(
                        c.webhooks
                            .unwrap_or_default()
                            .into_iter()
                            .map(|w| (w.name, w.client_config.ca_bundle)),
                        &b64,
                    )
                })
                .unwrap_or_default();
            patch_bundles(&validating, &self.configuration, &names, &b64).await?;
            let mutating: Api<MutatingWebhookConfiguration> = Api::all(self.client.clone());
            let names = mutating
                .get_opt(&self.configuration)
                .await?
                .map(|c| {
                    stale(
                        c.webhooks
                            .unwrap_or_default()
                            .into_iter()
                            .map(|w| (w.name, w.client_config.ca_bundle)),
                        &b64,
                    )
                })
                .unwrap_or_default();
            patch_bundles(&mutating, &self.configuration, &names, &b64).await?;
        }
        Ok(renewed)
    }

    /// The first round, retried with backoff for up to about a minute (the webhook cannot serve without it).
    pub async fn first_sync(&self) -> Result<(), CertSyncError> {
        let mut delay = Duration::from_millis(500);
        let mut waited = Duration::ZERO;
        loop {
            match self.sync().await {
                Ok(_) => return Ok(()),
                Err(error) if waited < Duration::from_secs(60) => {
                    tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "webhook certificate not ready");
                    tokio::time::sleep(delay).await;
                    waited += delay;
                    delay = (delay * 2).min(Duration::from_secs(15));
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Checks every `every` (10 s after a failure) until the task is aborted.
    pub fn spawn(self, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let wait = match self.sync().await {
                    Ok(_) => every,
                    Err(error) => {
                        tracing::warn!(%error, "webhook certificate check failed; retrying");
                        Duration::from_secs(10).min(every)
                    }
                };
                tokio::time::sleep(wait).await;
            }
        })
    }
}

/// Names of the webhooks whose caBundle is not `b64`.
fn stale(hooks: impl Iterator<Item = (String, Option<ByteString>)>, b64: &str) -> Vec<String> {
    let want = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap_or_default();
    hooks
        .filter(|(_, have)| have.as_ref().map(|b| &b.0) != Some(&want))
        .map(|(name, _)| name)
        .collect()
}

async fn patch_bundles<K>(
    api: &Api<K>,
    config: &str,
    names: &[String],
    b64: &str,
) -> Result<(), CertSyncError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    if names.is_empty() {
        return Ok(());
    }
    // webhooks is a list merged by name: each entry's caBundle changes, nothing else does.
    let hooks: Vec<serde_json::Value> = names
        .iter()
        .map(|n| serde_json::json!({"name": n, "clientConfig": {"caBundle": b64}}))
        .collect();
    api.patch(
        config,
        &PatchParams::default(),
        &Patch::Strategic(serde_json::json!({ "webhooks": hooks })),
    )
    .await?;
    tracing::info!(configuration = %config, webhooks = ?names, "webhook caBundle updated");
    Ok(())
}

fn write_if_changed(path: &Path, data: &[u8], private: bool) -> Result<(), CertSyncError> {
    let io = |source| CertSyncError::Io {
        path: path.to_path_buf(),
        source,
    };
    if std::fs::read(path).is_ok_and(|have| have == data) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).map_err(io)?;
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted() -> Wanted {
        Wanted::new("ako-webhook", "avi-system", &["127.0.0.1".into()])
    }

    fn now() -> i64 {
        jiff::Timestamp::now().as_second()
    }

    fn apply(data: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
        plan(data, &wanted(), now())
            .expect("plan")
            .map(|(d, _)| d)
            .unwrap_or_else(|| data.clone())
    }

    fn text(d: &BTreeMap<String, Vec<u8>>, k: &str) -> String {
        String::from_utf8_lossy(&d[k]).into_owned()
    }

    #[test]
    fn an_empty_secret_gets_a_ca_and_a_serving_certificate_and_a_second_plan_changes_nothing() {
        let (data, why) = plan(&BTreeMap::new(), &wanted(), now())
            .expect("plan")
            .expect("renewal");
        assert!(why.new_ca, "{why:?}");
        assert_eq!(text(&data, CA_BUNDLE), text(&data, CA_CRT));
        let f = facts(&data[TLS_CRT]).expect("serving cert");
        assert!(
            f.dns_names
                .contains(&"ako-webhook.avi-system.svc".to_string())
        );
        assert_eq!(f.ips, vec!["127.0.0.1".parse::<IpAddr>().expect("ip")]);
        assert!(plan(&data, &wanted(), now()).expect("plan").is_none());
    }

    #[test]
    fn renewal_table() {
        let base = apply(&BTreeMap::new());
        let ca = GeneratedCa::from_pem(&text(&base, CA_CRT), &text(&base, CA_KEY)).expect("ca");
        let short = ca
            .issue(&wanted().dns_names, &wanted().ips, 2)
            .expect("short");
        let other_ca = generate_ca("other", 30).expect("other");
        let foreign = other_ca
            .issue(&wanted().dns_names, &wanted().ips, 300)
            .expect("foreign");
        let narrow = ca.issue(&wanted().dns_names, &[], 300).expect("narrow");
        let with = |k: &str, v: &str| {
            let mut d = base.clone();
            d.insert(k.into(), v.as_bytes().to_vec());
            d
        };
        let with_pair = |c: &str, k: &str| {
            let mut d = with(TLS_CRT, c);
            d.insert(TLS_KEY.into(), k.as_bytes().to_vec());
            d
        };
        let mut no_key = base.clone();
        no_key.remove(TLS_KEY);
        type Case<'a> = (&'a str, SecretData, Option<(bool, &'a str)>);
        let cases: Vec<Case<'_>> = vec![
            ("current pair", base.clone(), None),
            ("missing key", no_key, Some((false, "missing"))),
            (
                "expiring in 2 days",
                with_pair(&short.cert_pem, &short.key_pem),
                Some((false, "close to its end")),
            ),
            (
                "from another CA",
                with_pair(&foreign.cert_pem, &foreign.key_pem),
                Some((false, "not from the CA")),
            ),
            (
                "key of another certificate",
                with(TLS_KEY, &short.key_pem),
                Some((false, "does not match")),
            ),
            (
                "without the URL's address",
                with_pair(&narrow.cert_pem, &narrow.key_pem),
                Some((false, "127.0.0.1")),
            ),
            (
                "CA ending in 30 days",
                {
                    let mut d = with(CA_CRT, &other_ca.cert_pem);
                    d.insert(CA_KEY.into(), other_ca.key_pem.clone().into_bytes());
                    d
                },
                Some((true, "close to its end")),
            ),
            (
                "unreadable CA",
                with(CA_CRT, "junk"),
                Some((true, "cannot be read")),
            ),
            (
                "stale bundle",
                with(CA_BUNDLE, &other_ca.cert_pem),
                Some((false, "ca-bundle.crt")),
            ),
        ];
        for (name, data, want) in cases {
            let got = plan(&data, &wanted(), now()).expect("plan");
            match (got, want) {
                (None, None) => {}
                (Some((new, why)), Some((new_ca, needle))) => {
                    assert_eq!(why.new_ca, new_ca, "{name}: {why:?}");
                    assert!(why.reason.contains(needle), "{name}: {why:?}");
                    assert!(
                        plan(&new, &wanted(), now()).expect("plan").is_none(),
                        "{name}: renewal is stable"
                    );
                }
                (got, want) => panic!("{name}: got {:?}, want {want:?}", got.map(|(_, w)| w)),
            }
        }
    }

    #[test]
    fn a_new_ca_keeps_the_previous_valid_ca_in_the_bundle() {
        let base = apply(&BTreeMap::new());
        let mut data = base.clone();
        data.insert(CA_KEY.into(), b"not a key".to_vec());
        let (new, why) = plan(&data, &wanted(), now())
            .expect("plan")
            .expect("renewal");
        assert!(why.new_ca);
        let bundle = text(&new, CA_BUNDLE);
        assert!(bundle.contains(text(&new, CA_CRT).trim()));
        assert!(
            bundle.contains(text(&base, CA_CRT).trim()),
            "the old CA stays trusted"
        );
    }

    #[test]
    fn wanted_names_split_ips_from_dns_names() {
        let w = Wanted::new(
            "svc",
            "ns",
            &[
                "10.0.0.1".into(),
                "[::1]".into(),
                "Hook.Example".into(),
                " ".into(),
            ],
        );
        assert_eq!(w.ips.len(), 2);
        assert!(w.dns_names.contains(&"hook.example".to_string()));
        assert!(w.dns_names.contains(&"svc.ns.svc".to_string()));
    }
}
