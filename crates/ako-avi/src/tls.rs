//! rustls client configuration for the controller connection: verification on by default, trusting the
//! configured CA bundle or the system roots; skipping verification is an explicit, logged opt-in.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;

use rustls::pki_types::pem::PemObject;

use super::error::AviError;

/// Builds the TLS configuration. `ca_pem` (PEM, one or more certificates) replaces the system roots.
pub fn client_tls_config(
    ca_pem: Option<&str>,
    insecure_skip_verify: bool,
) -> Result<rustls::ClientConfig, AviError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| AviError::Config(format!("TLS protocol versions: {e}")))?;
    let mut config = if insecure_skip_verify {
        tracing::warn!(
            "TLS certificate verification of the Avi Controller is DISABLED (explicit opt-in); \
             the connection can be intercepted"
        );
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ako_certs::AnyServerCert::new(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        match ca_pem.map(str::trim).filter(|p| !p.is_empty()) {
            Some(pem) => {
                let certs: Vec<CertificateDer<'static>> =
                    CertificateDer::pem_slice_iter(pem.as_bytes())
                        .collect::<Result<_, _>>()
                        .map_err(|e| {
                            AviError::Config(format!(
                                "certificateAuthorityData is not valid PEM: {e:?}"
                            ))
                        })?;
                if certs.is_empty() {
                    return Err(AviError::Config(
                        "certificateAuthorityData holds no PEM certificate".into(),
                    ));
                }
                for cert in certs {
                    roots.add(cert).map_err(|e| {
                        AviError::Config(format!(
                            "certificateAuthorityData certificate rejected: {e}"
                        ))
                    })?;
                }
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                for error in &native.errors {
                    tracing::warn!(%error, "could not load some system root certificates");
                }
                let (added, _ignored) = roots.add_parsable_certificates(native.certs);
                if added == 0 {
                    return Err(AviError::Config(
                        "no system root certificates found; set certificateAuthorityData".into(),
                    ));
                }
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_bundle_without_certificates_is_a_configuration_error() {
        // A PEM block that is not a certificate (a dummy key label with no real key material).
        let key_only = format!(
            "-----BEGIN {0}-----\nAAAA\n-----END {0}-----\n",
            "PRIVATE KEY"
        );
        let cases = ["not pem at all", key_only.as_str()];
        for pem in cases {
            assert!(
                matches!(
                    client_tls_config(Some(pem), false),
                    Err(AviError::Config(_))
                ),
                "{pem}"
            );
        }
    }

    #[test]
    fn a_generated_ca_is_accepted_as_trust_anchor() {
        let ca = ako_certs::generate_ca("test CA", 1).expect("ca");
        let config = client_tls_config(Some(&ca.cert_pem), false).expect("config");
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}
