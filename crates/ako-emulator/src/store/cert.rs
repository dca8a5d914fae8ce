//! SSLKeyAndCertificate uploads: the PEM certificate is parsed (x509-parser) and the controller's
//! derived fields are filled in (`certificate.{version, serial_number, self_signed, issuer, subject,
//! signature_algorithm, not_before, not_after, fingerprint, public_key, expiry_status,
//! days_until_expire}`, `key_params`), as the recorded 20.1.1 answer shows (avi-api.md §3.6). The key
//! must parse and belong to the certificate. The key is never logged and never rendered (the output
//! masks it as `<sensitive>`, see `server::render_out`).

use base64::Engine;
use serde_json::{Map, Value, json};
use x509_parser::prelude::*;

use super::{ApiError, Obj};

/// The mask the controller shows instead of a private key; a client echoing it back keeps the key.
pub const SENSITIVE: &str = "<sensitive>";

/// Days before `not_after` from which the controller reports `SSL_CERTIFICATE_EXPIRY_WARNING`
/// (its default first warning threshold).
const EXPIRY_WARNING_DAYS: i64 = 30;

fn import_error(reason: impl std::fmt::Display) -> ApiError {
    ApiError::new(400, format!("Import error: {reason}"))
}

/// Validates the uploaded certificate and key of a prepared body and fills in the parsed fields.
/// `existing` supplies the stored key when the client sends the `<sensitive>` mask back.
pub fn complete(body: &mut Map<String, Value>, existing: Option<&Obj>) -> Result<(), ApiError> {
    if body.get("key").and_then(Value::as_str) == Some(SENSITIVE) {
        match existing.and_then(|e| e.body.get("key")).cloned() {
            Some(k) => body.insert("key".into(), k),
            None => return Err(import_error("the key is the <sensitive> mask, not a key")),
        };
    }
    let pem = body
        .get("certificate")
        .and_then(|c| c.get("certificate"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::new(
                400,
                r#"{"certificate":"{"certificate":"This field is required."}"}"#,
            )
        })?
        .to_string();
    let is_ca = body.get("type").and_then(Value::as_str) == Some("SSL_CERTIFICATE_TYPE_CA");
    let key = body
        .get("key")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty());
    match key {
        Some(key) => check_key(&pem, key)?,
        // A CA certificate is uploaded without its key; a serving certificate needs one.
        None if !is_ca => {
            return Err(ApiError::new(400, r#"{"key":"This field is required."}"#));
        }
        None => {}
    }
    let parsed = parse(&pem, jiff::Timestamp::now())?;
    let cert = body
        .entry("certificate")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(c) = cert {
        c.extend(parsed.certificate);
    }
    body.insert("key_params".into(), parsed.key_params);
    Ok(())
}

fn check_key(cert_pem: &str, key_pem: &str) -> Result<(), ApiError> {
    let origin = std::path::Path::new("<uploaded>");
    // The error of a bad key names the origin only, never the key material.
    let certified =
        ako_certs::certified_key_from_pem(cert_pem.as_bytes(), key_pem.as_bytes(), origin)
            .map_err(|e| import_error(format!("the key or certificate does not parse ({e})")))?;
    certified
        .keys_match()
        .map_err(|_| import_error("the private key does not match the certificate"))
}

/// What the controller derives from a certificate.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// Fields merged into the body's `certificate` object.
    pub certificate: Map<String, Value>,
    pub key_params: Value,
}

/// Parses one PEM certificate; `now` decides the expiry status.
pub fn parse(pem: &str, now: jiff::Timestamp) -> Result<Parsed, ApiError> {
    let (_, pem) =
        parse_x509_pem(pem.as_bytes()).map_err(|_| import_error("the certificate is not PEM"))?;
    if pem.label != "CERTIFICATE" {
        return Err(import_error(format!(
            "expected a CERTIFICATE, got {}",
            pem.label
        )));
    }
    let (_, x509) = parse_x509_certificate(&pem.contents)
        .map_err(|e| import_error(format!("the certificate does not parse ({e})")))?;
    let when = |t: ASN1Time| jiff::Timestamp::from_second(t.timestamp()).unwrap_or_default();
    let (not_before, not_after) = (
        when(x509.validity().not_before),
        when(x509.validity().not_after),
    );
    let days = (not_after.as_second() - now.as_second()).div_euclid(86_400);
    let expiry_status = if not_after <= now {
        "SSL_CERTIFICATE_EXPIRED"
    } else if days < EXPIRY_WARNING_DAYS {
        "SSL_CERTIFICATE_EXPIRY_WARNING"
    } else {
        "SSL_CERTIFICATE_GOOD"
    };
    let signature_algorithm = x509_parser::objects::oid2sn(
        &x509.signature_algorithm.algorithm,
        x509_parser::objects::oid_registry(),
    )
    .map_or_else(
        |_| x509.signature_algorithm.algorithm.to_id_string(),
        str::to_string,
    );
    let fingerprint = sha1(&pem.contents)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let spki = x509.public_key();
    let mut certificate = Map::new();
    for (k, v) in [
        ("version", json!(x509.version().0.to_string())),
        (
            "serial_number",
            json!(x509.tbs_certificate.serial.to_string()),
        ),
        (
            "self_signed",
            json!(x509.subject().as_raw() == x509.issuer().as_raw()),
        ),
        ("issuer", name_json(x509.issuer())),
        ("subject", name_json(x509.subject())),
        ("signature_algorithm", json!(signature_algorithm)),
        (
            "not_before",
            json!(not_before.strftime("%Y-%m-%d %H:%M:%S").to_string()),
        ),
        (
            "not_after",
            json!(not_after.strftime("%Y-%m-%d %H:%M:%S").to_string()),
        ),
        (
            "fingerprint",
            json!(format!("SHA1 Fingerprint={fingerprint}\n")),
        ),
        ("public_key", json!(public_key_pem(spki.raw))),
        ("expiry_status", json!(expiry_status)),
        ("days_until_expire", json!(days.max(0))),
    ] {
        certificate.insert(k.into(), v);
    }
    Ok(Parsed {
        certificate,
        key_params: key_params(spki),
    })
}

fn name_json(name: &X509Name<'_>) -> Value {
    let mut m = Map::new();
    let mut put = |key: &str, mut it: std::slice::Iter<'_, &AttributeTypeAndValue<'_>>| {
        if let Some(v) = it.next().and_then(|a| a.as_str().ok()) {
            m.insert(key.into(), json!(v));
        }
    };
    put(
        "common_name",
        name.iter_common_name().collect::<Vec<_>>().iter(),
    );
    put("email_id", name.iter_email().collect::<Vec<_>>().iter());
    put(
        "organization_unit",
        name.iter_organizational_unit().collect::<Vec<_>>().iter(),
    );
    put(
        "organization",
        name.iter_organization().collect::<Vec<_>>().iter(),
    );
    put("locality", name.iter_locality().collect::<Vec<_>>().iter());
    put(
        "state",
        name.iter_state_or_province().collect::<Vec<_>>().iter(),
    );
    put("country", name.iter_country().collect::<Vec<_>>().iter());
    m.insert("distinguished_name".into(), json!(name.to_string()));
    Value::Object(m)
}

fn public_key_pem(spki_der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(spki_der);
    let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END PUBLIC KEY-----\n");
    out
}

fn key_params(spki: &SubjectPublicKeyInfo<'_>) -> Value {
    match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => json!({
            "algorithm": "SSL_KEY_ALGORITHM_RSA",
            "rsa_params": {"key_size": format!("SSL_KEY_{}_BITS", rsa.key_size()),
                           "exponent": rsa.try_exponent().unwrap_or_default()}
        }),
        Ok(x509_parser::public_key::PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| match oid.to_id_string().as_str() {
                    "1.2.840.10045.3.1.7" => "SSL_KEY_EC_CURVE_SECP256R1",
                    "1.3.132.0.34" => "SSL_KEY_EC_CURVE_SECP384R1",
                    "1.3.132.0.35" => "SSL_KEY_EC_CURVE_SECP521R1",
                    _ => "SSL_KEY_EC_CURVE_UNKNOWN",
                })
                .unwrap_or("SSL_KEY_EC_CURVE_UNKNOWN");
            json!({"algorithm": "SSL_KEY_ALGORITHM_EC", "ec_params": {"curve": curve}})
        }
        _ => json!({"algorithm": "SSL_KEY_ALGORITHM_UNKNOWN"}),
    }
}

/// SHA-1 of `data`, for the controller's `SHA1 Fingerprint=` display value only (ring, already the TLS
/// provider, offers it for legacy uses like this one).
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data);
    let mut out = [0u8; 20];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn sha1_matches_the_fips_test_vectors() {
        let cases: [(&[u8], &str); 3] = [
            (b"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
            (b"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(hex(&sha1(input)), want);
        }
    }

    /// The certificate and key of the recorded `test_ssl_vs` upload, and the controller's answer.
    fn recorded() -> (String, String, Value) {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/avi/recordings/test_ssl_vs.json"
        );
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("cassette")).expect("json");
        let i = doc["interactions"]
            .as_array()
            .expect("interactions")
            .iter()
            .find(|i| {
                i["request"]["method"] == "POST"
                    && i["request"]["uri"]
                        .as_str()
                        .is_some_and(|u| u.ends_with("/api/sslkeyandcertificate"))
            })
            .expect("upload");
        let req: Value =
            serde_json::from_str(i["request"]["body"].as_str().expect("body")).expect("req");
        let resp: Value =
            serde_json::from_str(i["response"]["body"]["string"].as_str().expect("resp"))
                .expect("resp");
        (
            req["certificate"]["certificate"]
                .as_str()
                .expect("cert")
                .to_string(),
            req["key"].as_str().expect("key").to_string(),
            resp,
        )
    }

    #[test]
    fn the_recorded_certificate_parses_to_the_recorded_fields() {
        let (cert, key, resp) = recorded();
        let at: jiff::Timestamp = "2020-07-21T07:51:35Z".parse().expect("time");
        let parsed = parse(&cert, at).expect("parses");
        for field in [
            "version",
            "serial_number",
            "self_signed",
            "issuer",
            "subject",
            "signature_algorithm",
            "not_before",
            "not_after",
            "fingerprint",
            "expiry_status",
        ] {
            assert_eq!(
                parsed.certificate.get(field),
                resp["certificate"].get(field),
                "{field}"
            );
        }
        assert_eq!(parsed.key_params, resp["key_params"]);
        let mut body = json!({"name": "c", "key": key, "certificate": {"certificate": cert}});
        complete(body.as_object_mut().expect("o"), None).expect("matching key accepted");
    }

    #[test]
    fn bad_certificates_and_keys_are_refused_with_400() {
        let (cert, key, _) = recorded();
        let other = ako_certs::generate_ca("other", 1).expect("ca");
        let cases: Vec<(&str, Value)> = vec![
            (
                "not pem",
                json!({"key": key, "certificate": {"certificate": "hello"}}),
            ),
            (
                "garbage inside the PEM armour",
                json!({"key": key, "certificate": {"certificate":
                    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}}),
            ),
            ("no key", json!({"certificate": {"certificate": cert}})),
            (
                "bad key",
                json!({"key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "certificate": {"certificate": cert}}),
            ),
            (
                "key of another certificate",
                json!({"key": other.key_pem, "certificate": {"certificate": cert}}),
            ),
            (
                "mask without a stored key",
                json!({"key": SENSITIVE, "certificate": {"certificate": cert}}),
            ),
        ];
        for (what, mut body) in cases {
            let err = complete(body.as_object_mut().expect("o"), None).expect_err(what);
            assert_eq!(err.status, 400, "{what}");
            assert!(
                !err.message.contains("PRIVATE KEY"),
                "{what}: the key leaks into the error: {}",
                err.message
            );
        }
        let mut ca_only = json!({"type": "SSL_CERTIFICATE_TYPE_CA", "certificate": {"certificate": other.cert_pem}});
        complete(ca_only.as_object_mut().expect("o"), None).expect("a CA needs no key");
    }

    #[test]
    fn expiry_status_follows_not_after() {
        let (cert, _, _) = recorded();
        let at = |s: &str| s.parse::<jiff::Timestamp>().expect("time");
        let cases = [
            ("2020-07-21T00:00:00Z", "SSL_CERTIFICATE_GOOD"),
            ("2027-06-01T00:00:00Z", "SSL_CERTIFICATE_EXPIRY_WARNING"),
            ("2027-06-10T00:00:00Z", "SSL_CERTIFICATE_EXPIRED"),
        ];
        for (now, want) in cases {
            let p = parse(&cert, at(now)).expect("parse");
            assert_eq!(p.certificate["expiry_status"], json!(want), "{now}");
        }
    }
}
