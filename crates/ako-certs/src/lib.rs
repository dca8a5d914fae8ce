//! Certificates: a development CA and serving certificates (rcgen), and the rustls server configuration
//! whose certificate is re-read when the files change (Kubernetes Secret volumes swap a `..data` symlink,
//! cert-manager rewrites in place), so rotation never needs a restart.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Errors from generating, reading or loading certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificate found")]
    NoCertificate { path: PathBuf },
    #[error("{path}: no PEM private key found (PKCS#8, PKCS#1 or SEC1)")]
    NoKey { path: PathBuf },
    #[error("the private key does not fit rustls: {0}")]
    Key(rustls::Error),
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("a certificate must be valid for 1 to {MAX_DAYS} days, not {0}")]
    Days(i64),
    #[error("{path}: the private key does not belong to the certificate: {source}")]
    Mismatch {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
}

/// Longest validity accepted for a generated certificate, in days (100 years).
pub const MAX_DAYS: i64 = 36_500;

/// A CA (certificate + key), PEM encoded.
pub struct GeneratedCa {
    pub cert_pem: String,
    pub key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for GeneratedCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedCa")
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A serving certificate and its key, PEM encoded.
pub struct ServingCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for ServingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingCert")
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// From an hour ago (clock skew) to `days` days from now; `days` outside 1..=[`MAX_DAYS`] is an error, not a
/// panic in date arithmetic.
fn validity(days: i64) -> Result<(time::OffsetDateTime, time::OffsetDateTime), CertError> {
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(CertError::Days(days));
    }
    let now = time::OffsetDateTime::now_utc();
    let end = now
        .checked_add(time::Duration::days(days))
        .ok_or(CertError::Days(days))?;
    Ok((now - time::Duration::hours(1), end))
}

/// Generates a new CA valid for `days` days.
pub fn generate_ca(common_name: &str, days: i64) -> Result<GeneratedCa, CertError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "ako");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    (params.not_before, params.not_after) = validity(days)?;
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let key_pem = key.serialize_pem();
    Ok(GeneratedCa {
        cert_pem: cert.pem(),
        key_pem,
        issuer: Issuer::new(params, key),
    })
}

impl GeneratedCa {
    /// Loads a CA from PEM (for re-issuing a serving certificate under an existing CA).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CertError> {
        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)?;
        Ok(Self {
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
            issuer,
        })
    }

    /// Issues a serving certificate for the given DNS names and IP addresses.
    pub fn issue(
        &self,
        dns_names: &[String],
        ips: &[IpAddr],
        days: i64,
    ) -> Result<ServingCert, CertError> {
        let mut sans: Vec<String> = dns_names.to_vec();
        sans.extend(ips.iter().map(ToString::to_string));
        let mut params = CertificateParams::new(sans)?;
        let cn = dns_names
            .first()
            .cloned()
            .unwrap_or_else(|| "ako".to_string());
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.use_authority_key_identifier_extension = true;
        (params.not_before, params.not_after) = validity(days)?;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ServingCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The DNS names a webhook Service answers to inside the cluster.
pub fn service_dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// A PEM parse error as an I/O error of invalid data.
fn pem_error(e: rustls::pki_types::pem::Error) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{e:?}"))
}

fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    std::fs::read(path).map_err(|source| CertError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses a PEM certificate chain.
pub fn parse_certs(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| CertError::Io {
            path: path.to_path_buf(),
            source: pem_error(e),
        })?;
    if certs.is_empty() {
        return Err(CertError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn parse_key(pem: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>, CertError> {
    match PrivateKeyDer::from_pem_slice(pem) {
        Ok(key) => Ok(key),
        Err(rustls::pki_types::pem::Error::NoItemsFound) => Err(CertError::NoKey {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(CertError::Io {
            path: path.to_path_buf(),
            source: pem_error(e),
        }),
    }
}

/// Builds a rustls `CertifiedKey` from PEM bytes.
pub fn certified_key_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    origin: &Path,
) -> Result<CertifiedKey, CertError> {
    let certs = parse_certs(cert_pem, origin)?;
    let key = parse_key(key_pem, origin)?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(CertError::Key)?;
    let certified = CertifiedKey::new(certs, signing);
    // A rotation caught between writing the key and the certificate must not be served.
    certified
        .keys_match()
        .map_err(|source| CertError::Mismatch {
            path: origin.to_path_buf(),
            source,
        })?;
    Ok(certified)
}

/// A certificate resolver that serves the current key pair and swaps it when the files change.
#[derive(Debug)]
pub struct ReloadingResolver {
    current: ArcSwap<CertifiedKey>,
    cert_path: PathBuf,
    key_path: PathBuf,
    /// The file contents last loaded. Contents, not modification times: a rewrite within the file system's
    /// timestamp granularity, with the same length, is still a change.
    loaded: parking_lot::Mutex<Pair>,
}

#[derive(PartialEq, Eq)]
struct Pair {
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl std::fmt::Debug for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pair")
            .field("cert_len", &self.cert.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl ReloadingResolver {
    /// Loads the certificate and key; fails if either cannot be read now.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, CertError> {
        let pair = Pair {
            cert: read(cert_path)?,
            key: read(key_path)?,
        };
        let key = certified_key_from_pem(&pair.cert, &pair.key, cert_path)?;
        Ok(Self {
            current: ArcSwap::from_pointee(key),
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            loaded: parking_lot::Mutex::new(pair),
        })
    }

    /// Re-reads the files (following symlinks, so a swapped `..data` link is seen) and swaps in the new pair if
    /// their contents changed. Returns `Ok(true)` when a new certificate was loaded. A broken new pair (a
    /// half-written rotation, or a key that does not match the certificate) keeps the old certificate in service
    /// and reports the error; the next call tries again.
    pub fn reload_if_changed(&self) -> Result<bool, CertError> {
        let now = Pair {
            cert: read(&self.cert_path)?,
            key: read(&self.key_path)?,
        };
        let mut last = self.loaded.lock();
        if *last == now {
            return Ok(false);
        }
        let key = certified_key_from_pem(&now.cert, &now.key, &self.cert_path)?;
        self.current.store(Arc::new(key));
        *last = now;
        Ok(true)
    }

    /// The certificate chain now served (leaf first), DER encoded.
    pub fn current_chain(&self) -> Vec<CertificateDer<'static>> {
        self.current.load().cert.clone()
    }

    /// Polls the files every `every` until the task is dropped.
    pub fn spawn_reloader(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                match this.reload_if_changed() {
                    Ok(true) => {
                        tracing::info!(cert = %this.cert_path.display(), "serving certificate reloaded")
                    }
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(%error, "serving certificate changed but could not be loaded; keeping the previous one")
                    }
                }
            }
        })
    }
}

impl ResolvesServerCert for ReloadingResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// Installs the ring crypto provider as the process default (idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A TLS 1.2+ server configuration, ALPN http/1.1, with the given certificate resolver.
pub fn server_config(
    resolver: Arc<dyn ResolvesServerCert>,
) -> Result<rustls::ServerConfig, CertError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Files written by [`write_dev_certs`].
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CertFiles {
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        }
    }
}

fn write_file(path: &Path, data: &str, private: bool) -> Result<(), CertError> {
    let io = |source| CertError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).map_err(io)?;
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

/// Writes a CA (reused when `dir` already holds one) and a serving certificate into `dir`.
pub fn write_dev_certs(
    dir: &Path,
    dns_names: &[String],
    ips: &[IpAddr],
    days: i64,
) -> Result<(CertFiles, String), CertError> {
    std::fs::create_dir_all(dir).map_err(|source| CertError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let files = CertFiles::in_dir(dir);
    let ca = if files.ca_cert.exists() && files.ca_key.exists() {
        let cert = String::from_utf8_lossy(&read(&files.ca_cert)?).into_owned();
        let key = String::from_utf8_lossy(&read(&files.ca_key)?).into_owned();
        GeneratedCa::from_pem(&cert, &key)?
    } else {
        let ca = generate_ca("ako webhook CA", 3650)?;
        write_file(&files.ca_cert, &ca.cert_pem, false)?;
        write_file(&files.ca_key, &ca.key_pem, true)?;
        ca
    };
    let serving = ca.issue(dns_names, ips, days)?;
    // Key first: a reloader that sees the new cert also finds its key.
    write_file(&files.key, &serving.key_pem, true)?;
    write_file(&files.cert, &serving.cert_pem, false)?;
    Ok((files, ca.cert_pem.clone()))
}

/// Base64 of a PEM, as a webhook configuration's `caBundle` wants it.
pub fn ca_bundle(ca_pem: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(ca_pem)
}

/// Fills `caBundle` in every webhook of the (multi-document) webhook configuration YAML. With `url`, the
/// webhooks call `url + service.path` instead of the in-cluster Service (for a webhook run outside the cluster).
pub fn render_webhook_config(
    yaml: &str,
    ca_bundle: &str,
    url: Option<&str>,
) -> Result<String, RenderError> {
    use serde_yaml_ng::Value;
    let mut out = String::new();
    for de in serde_yaml_ng::Deserializer::from_str(yaml) {
        let mut doc: Value =
            serde::Deserialize::deserialize(de).map_err(|e| RenderError(e.to_string()))?;
        if doc.is_null() {
            continue;
        }
        if let Some(Value::Sequence(hooks)) = doc.get_mut("webhooks") {
            for hook in hooks {
                let Some(cc) = hook.get_mut("clientConfig").and_then(Value::as_mapping_mut) else {
                    return Err(RenderError("a webhook has no clientConfig".into()));
                };
                cc.insert("caBundle".into(), ca_bundle.into());
                if let Some(base) = url {
                    let path = cc
                        .get("service")
                        .and_then(|s| s.get("path"))
                        .and_then(Value::as_str)
                        .unwrap_or("/")
                        .to_string();
                    cc.remove("service");
                    cc.insert(
                        "url".into(),
                        format!("{}{path}", base.trim_end_matches('/')).into(),
                    );
                }
            }
        }
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(&doc).map_err(|e| RenderError(e.to_string()))?);
    }
    Ok(out)
}

/// A webhook configuration that could not be rendered.
#[derive(Debug, thiserror::Error)]
#[error("rendering the webhook configuration: {0}")]
pub struct RenderError(String);

/// Accepts any server certificate but still checks handshake signatures: a client told not to verify the
/// server (an explicit opt-in for the controller connection; a pool re-encrypting without a PKI profile).
#[derive(Debug)]
pub struct AnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl AnyServerCert {
    pub fn new(provider: Arc<rustls::crypto::CryptoProvider>) -> Self {
        Self(provider)
    }
}

impl rustls::client::danger::ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The DNS names a certificate (PEM, its first) is valid for: its subjectAltName DNS entries, else its subject's
/// common name.
pub fn dns_names(cert_pem: &str) -> Result<Vec<String>, String> {
    let der = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .next()
        .ok_or_else(|| "no PEM certificate".to_string())?
        .map_err(|e| format!("the certificate does not parse as PEM ({e:?})"))?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| format!("not an X.509 certificate ({e})"))?;
    let mut names: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|g| match g {
                    x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok().map(str::to_string)),
        );
    }
    Ok(names)
}

/// Checks that a certificate and key are usable for TLS: the certificate parses (X.509), the key parses, and the
/// key belongs to the certificate. The error names the problem, never the key material.
pub fn check_pair(cert_pem: &str, key_pem: &str) -> Result<(), String> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls.crt does not parse as PEM ({e:?})"))?;
    let Some(leaf) = certs.first() else {
        return Err("tls.crt holds no PEM certificate".into());
    };
    x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| format!("tls.crt is not an X.509 certificate ({e})"))?;
    let key = match PrivateKeyDer::from_pem_slice(key_pem.as_bytes()) {
        Ok(key) => key,
        Err(rustls::pki_types::pem::Error::NoItemsFound) => {
            return Err("tls.key holds no private key".into());
        }
        Err(_) => return Err("tls.key does not parse as PEM".into()),
    };
    let signing = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|_| "tls.key is not a supported private key".to_string())?;
    rustls::sign::CertifiedKey::new(certs, signing)
        .keys_match()
        .map_err(|_| "tls.key does not belong to the certificate in tls.crt".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names_are_the_sans_else_the_common_name() {
        let ca = generate_ca("corp-ca", 30).expect("ca");
        let leaf = ca
            .issue(
                &["shop.example.com".into(), "*.shop.example.com".into()],
                &[],
                30,
            )
            .expect("leaf");
        assert_eq!(
            dns_names(&leaf.cert_pem),
            Ok(vec![
                "shop.example.com".to_string(),
                "*.shop.example.com".to_string()
            ])
        );
        assert!(dns_names("not a certificate").is_err());
    }

    #[test]
    fn rendering_fills_ca_bundle_and_switches_to_url() {
        let yaml = "kind: ValidatingWebhookConfiguration\nwebhooks:\n- name: a\n  clientConfig:\n    service: {name: ako-webhook, namespace: avi-system, path: /validate}\n";
        let out =
            render_webhook_config(yaml, "Q0E=", Some("https://127.0.0.1:8443/")).expect("render");
        assert!(out.contains("caBundle: Q0E="), "{out}");
        assert!(
            out.contains("url: https://127.0.0.1:8443/validate"),
            "{out}"
        );
        assert!(!out.contains("service:"), "{out}");
    }

    #[test]
    fn issued_certificate_loads_into_rustls_and_reload_picks_up_a_new_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (files, ca) = write_dev_certs(
            dir.path(),
            &["ako-webhook.ako.svc".into()],
            &["127.0.0.1".parse().expect("ip")],
            30,
        )
        .expect("certs");
        assert!(ca.contains("BEGIN CERTIFICATE"));
        let resolver = ReloadingResolver::load(&files.cert, &files.key).expect("load");
        assert!(!resolver.reload_if_changed().expect("no change"));
        let before = resolver.current.load_full();
        // No wait: a change is seen from the contents, even within the same mtime tick.
        write_dev_certs(dir.path(), &["other.ako.svc".into()], &[], 30).expect("reissue");
        assert!(resolver.reload_if_changed().expect("reload"));
        assert_ne!(before.cert[0], resolver.current.load_full().cert[0]);
    }

    #[test]
    fn a_key_that_does_not_match_the_certificate_keeps_the_previous_pair() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (files, _) =
            write_dev_certs(dir.path(), &["a.example".into()], &[], 30).expect("certs");
        let resolver = ReloadingResolver::load(&files.cert, &files.key).expect("load");
        let before = resolver.current_chain();
        // Half a rotation: a new key next to the old certificate.
        let other = generate_ca("other", 1).expect("ca");
        std::fs::write(&files.key, &other.key_pem).expect("write key");
        let e = resolver.reload_if_changed().expect_err("mismatch");
        assert!(e.to_string().contains("does not belong"), "{e}");
        assert_eq!(resolver.current_chain(), before);
    }

    #[test]
    fn validity_outside_one_day_to_a_century_is_an_error_not_a_panic() {
        for days in [0, -1, MAX_DAYS + 1, i64::MAX, i64::MIN] {
            let e = generate_ca("x", days).expect_err("out of range");
            assert_eq!(
                e.to_string(),
                format!("a certificate must be valid for 1 to 36500 days, not {days}")
            );
        }
        assert!(generate_ca("x", MAX_DAYS).is_ok());
    }

    #[test]
    fn a_broken_rotation_keeps_the_previous_certificate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (files, _) =
            write_dev_certs(dir.path(), &["a.example".into()], &[], 30).expect("certs");
        let resolver = ReloadingResolver::load(&files.cert, &files.key).expect("load");
        let before = resolver.current.load_full();
        std::fs::write(&files.cert, "not a certificate").expect("write");
        assert!(resolver.reload_if_changed().is_err());
        assert_eq!(before.cert[0], resolver.current.load_full().cert[0]);
    }

    #[test]
    fn check_pair_accepts_a_matching_pair_and_names_each_problem() {
        let ca = generate_ca("test-ca", 1).expect("ca");
        let a = ca.issue(&["a.example".into()], &[], 1).expect("issue");
        let b = ca.issue(&["b.example".into()], &[], 1).expect("issue");
        assert_eq!(check_pair(&a.cert_pem, &a.key_pem), Ok(()));
        let cases = [
            (a.cert_pem.as_str(), b.key_pem.as_str(), "does not belong"),
            ("", a.key_pem.as_str(), "holds no PEM certificate"),
            (a.cert_pem.as_str(), "", "holds no private key"),
        ];
        for (cert, key, want) in cases {
            let err = check_pair(cert, key).expect_err(want);
            assert!(err.contains(want), "{err} should contain {want}");
            assert!(
                !err.contains("PRIVATE KEY"),
                "{err} must not echo key material"
            );
        }
    }
}
