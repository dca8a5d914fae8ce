//! Re-encryption: how a pool with an SSL profile reaches its servers over TLS.

use serde_json::Value;

use super::{Obj, Store, bool_or, target};

/// How a pool re-encrypts to its servers: SNI (the request's host) when `sni_enabled`, and the CA certificates of
/// its PKI profile to check them with (none: the server's certificate is not checked, as Avi does without one).
/// The client configuration is built once per configuration change, not per connection.
#[derive(Clone)]
pub struct BackendTls {
    pub sni: bool,
    pub ca_pems: Vec<String>,
    pub client: std::sync::Arc<rustls::ClientConfig>,
}

impl PartialEq for BackendTls {
    fn eq(&self, other: &Self) -> bool {
        (self.sni, &self.ca_pems) == (other.sni, &other.ca_pems)
    }
}

impl Eq for BackendTls {}

impl std::fmt::Debug for BackendTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendTls")
            .field("sni", &self.sni)
            .field("ca_certs", &self.ca_pems.len())
            .finish()
    }
}

/// A pool's re-encryption settings.
pub(super) fn backend_tls(store: &Store, obj: &Obj) -> Option<BackendTls> {
    obj.body.get("ssl_profile_ref").filter(|v| !v.is_null())?;
    let ca_pems: Vec<String> = target(store, obj.body.get("pki_profile_ref"))
        .and_then(|pki| pki.body.get("ca_certs"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("certificate")?.as_str().map(str::to_string))
        .collect();
    let client = match backend_tls_config(&ca_pems) {
        Ok(c) => std::sync::Arc::new(c),
        Err(error) => {
            tracing::warn!(pool = %obj.name, %error, "no TLS client for the pool's re-encryption");
            return None;
        }
    };
    Some(BackendTls {
        sni: bool_or(&obj.body, "sni_enabled", true),
        ca_pems,
        client,
    })
}

/// The TLS client of a re-encrypting pool: the PKI profile's CAs check the server; without them the server's
/// certificate is not checked (Avi's behaviour without a PKI profile).
fn backend_tls_config(ca_pems: &[String]) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    if ca_pems.is_empty() {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(std::sync::Arc::new(ako_certs::AnyServerCert::new(
                provider,
            )))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    for pem in ca_pems {
        use rustls::pki_types::pem::PemObject;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()).flatten() {
            let _ = roots.add(cert);
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}
