//! The `ako` command line as users and CI pipelines call it: exit codes and messages.

use std::process::Command;

fn ako(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ako"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .output()
        .expect("running ako");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_exits_1_and_names_file_object_and_reason_when_something_would_be_denied() {
    let (code, out, _) = ako(&[
        "check",
        "-f",
        "examples/demo",
        "--dns-domain",
        "avi.jarvis.lab",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("examples/demo/outside.yaml: Ingress vmug/shop: DENIED: host \"shop.example.com\" (spec.rules[0].host) is outside"),
        "{out}"
    );
    assert!(
        out.contains(
            "would mutate: kubernetes.io/ingress.class: avi -> spec.ingressClassName: avi-lb"
        ),
        "{out}"
    );
}

#[test]
fn check_exits_0_when_every_object_would_be_admitted() {
    let (code, out, _) = ako(&[
        "check",
        "-f",
        "examples/demo/demo.yaml",
        "--dns-domain",
        "avi.jarvis.lab",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 would be denied"), "{out}");
}

#[test]
fn every_bad_configuration_value_is_reported_before_anything_runs() {
    let (code, _, err) = ako(&[
        "check",
        "-f",
        "examples/demo",
        "--dns-domain",
        "avi.jarvis.lab",
        "--fqdn-reuse-policy",
        "strict",
        "--auto-fqdn",
        "short",
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("fqdnReusePolicy: \"strict\" is not Strict or InterNamespaceAllowed"),
        "{err}"
    );
    assert!(
        err.contains("autoFQDN: \"short\" is not default, flat or disabled"),
        "{err}"
    );
}

#[test]
fn check_without_a_dns_domain_says_how_to_give_one() {
    let (code, _, err) = ako(&["check", "-f", "examples/demo"]);
    assert_ne!(code, 0);
    assert!(err.contains("pass --dns-domain"), "{err}");
}

#[test]
fn certs_render_fills_the_ca_bundle_of_every_webhook() {
    let dir = tempfile::tempdir().expect("tmp");
    let out_dir = dir.path().to_str().expect("path");
    let (code, out, err) = ako(&[
        "certs",
        "--out-dir",
        out_dir,
        "--render",
        "webhook-config/webhooks.yaml",
        "--webhook-url",
        "https://127.0.0.1:8443",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches("caBundle: ").count(), 6, "{out}");
    assert!(!out.contains("caBundle: ''"), "{out}");
    assert!(
        out.contains("url: https://127.0.0.1:8443/validate"),
        "{out}"
    );
    assert!(out.contains("url: https://127.0.0.1:8443/mutate"), "{out}");
    // Before 1.28 the Service webhook fails open (every Service would otherwise need ako up), the Ingress one
    // closed; the 1.28+ file limits both by matchConditions and fails closed.
    let policies = |text: &str| -> Vec<(String, String)> {
        text.split("\n---\n")
            .filter_map(|doc| serde_yaml_ng::from_str::<serde_json::Value>(doc).ok())
            .flat_map(|d| d["webhooks"].as_array().cloned().unwrap_or_default())
            .map(|h| {
                (
                    h["name"].as_str().unwrap_or_default().to_string(),
                    h["failurePolicy"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        policies(&out),
        [
            ("ingress.ako.vmware.com".to_string(), "Fail".to_string()),
            ("service.ako.vmware.com".into(), "Ignore".into()),
            ("rules.ako.vmware.com".into(), "Fail".into()),
            ("infra.ako.vmware.com".into(), "Fail".into()),
            ("ingress.mutate.ako.vmware.com".into(), "Ignore".into()),
            ("service.mutate.ako.vmware.com".into(), "Ignore".into()),
        ]
    );
    let (code, out128, err) = ako(&[
        "certs",
        "--out-dir",
        out_dir,
        "--render",
        "webhook-config/webhooks-match-conditions.yaml",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        policies(&out128)[1],
        ("service.ako.vmware.com".into(), "Fail".into())
    );
    assert_eq!(out128.matches("matchConditions:").count(), 4, "{out128}");
    assert!(
        out128.contains("object.spec.type == 'LoadBalancer'"),
        "{out128}"
    );
    let key = std::fs::metadata(dir.path().join("tls.key")).expect("key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        key.permissions().mode() & 0o777,
        0o600,
        "the private key is readable by others"
    );
}

#[test]
fn certs_with_an_out_of_range_validity_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("tmp");
    let out_dir = dir.path().to_str().expect("path");
    for days in ["99999999999999", "0", "-5", "36501"] {
        let (code, _, err) = ako(&["certs", "--out-dir", out_dir, &format!("--days={days}")]);
        assert_eq!(code, 2, "{days}: {err}");
        assert!(
            err.contains(&format!("invalid value '{days}' for '--days <DAYS>'"))
                && err.contains("1..=36500"),
            "{days}: {err}"
        );
        assert!(!err.contains("panicked"), "{days}: {err}");
    }
    let (code, _, err) = ako(&["certs", "--out-dir", out_dir, "--days=36500"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn the_avi_password_is_not_a_flag_so_it_never_shows_in_the_process_list() {
    let (code, _, err) = ako(&["controller", "--avi-password", "VMware1!"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--avi-password"), "{err}");
}
