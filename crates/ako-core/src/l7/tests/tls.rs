//! TLS: SNI children, certificates from Secrets and the default certificate, bad or missing Secrets.

#[allow(clippy::wildcard_imports)]
use super::*;

#[test]
fn secure_host_gets_an_sni_child_with_its_certificate_and_a_redirect_on_the_parent() {
    let mut w = World::new(&[SHOP_TLS, HACKAZON]);
    let tls = pair();
    w.secrets
        .insert(ObjKey::new("vmug", "shop-tls"), Some(tls.clone()));
    let d = w.run(ShardSize::Medium, &cfg());
    let h = "shop.avi.jarvis.lab";
    // shop hashes to shard 1 of 4, hackazon to 0.
    let parent = "veba-of--Shared-L7-1";
    assert_eq!(
        names(&d, Kind::VirtualService),
        vec!["veba-of--Shared-L7-0", parent]
    );
    let child = find(
        &d,
        Kind::VirtualServiceChild,
        "veba-of--shop.avi.jarvis.lab",
    );
    assert_eq!(child["type"], json!("VS_TYPE_VH_CHILD"));
    assert_eq!(
        child["vh_parent_vs_ref"],
        json!(format!("/api/virtualservice/?name={parent}"))
    );
    assert_eq!(child["vh_domain_name"], json!([h]));
    assert!(child.get("vsvip_ref").is_none() && child.get("services").is_none());
    assert_eq!(
        child["ssl_key_and_certificate_refs"],
        json!(["/api/sslkeyandcertificate/?name=veba-of--shop.avi.jarvis.lab"])
    );
    let cert = find(
        &d,
        Kind::SslKeyAndCertificate,
        "veba-of--shop.avi.jarvis.lab",
    );
    assert_eq!(cert["type"], json!("SSL_CERTIFICATE_TYPE_VIRTUALSERVICE"));
    assert_eq!(cert["certificate"]["certificate"], json!(tls.cert_pem));
    assert_eq!(cert["key"], json!(tls.key_pem));
    let pool = "veba-of--vmug-shop.avi.jarvis.lab_-shop";
    find(&d, Kind::Pool, pool);
    find(&d, Kind::PoolGroup, pool);
    let child_policy = find(&d, Kind::HttpPolicySet, "veba-of--vmug-shop.avi.jarvis.lab");
    assert_eq!(route(child_policy, h, "/cart", 443), pool);
    assert_eq!(
        child["http_policies"][0]["http_policy_set_ref"],
        json!("/api/httppolicyset/?name=veba-of--vmug-shop.avi.jarvis.lab")
    );
    let parent_policy = &parent_routes(&d, parent);
    assert_eq!(route(parent_policy, h, "/cart", 80), "redirect");
    let rule = &parent_policy["http_request_policy"]["rules"][0];
    assert_eq!(rule["redirect_action"]["protocol"], json!("HTTPS"));
    assert_eq!(rule["redirect_action"]["port"], json!(443));
    assert_eq!(
        find(&d, Kind::VsVip, parent)["dns_info"],
        json!([{"fqdn": h}])
    );
    let o = outcome(&d, "shop");
    assert!(o.problems.is_empty(), "{:?}", o.problems);
    assert_eq!(
        o.hosts,
        vec![HostOutcome {
            host: h.into(),
            vs_name: "veba-of--shop.avi.jarvis.lab".into(),
            vip_name: parent.into(),
            tls: true
        }]
    );
}

#[test]
fn a_missing_or_bad_secret_leaves_the_host_unserved_with_a_warning_not_downgraded_to_http() {
    let good = pair();
    let other = pair();
    let cases: Vec<(&str, Option<Option<TlsPair>>, &str)> = vec![
        (
            "missing",
            None,
            "TLS Secret \"shop-tls\" (spec.tls[0]) not found in \"vmug\"",
        ),
        ("no data", Some(None), "has no tls.crt and tls.key"),
        (
            "garbage",
            Some(Some(tls("nope", good.key_pem.clone()))),
            "tls.crt holds no PEM certificate",
        ),
        (
            "mismatched key",
            Some(Some(tls(good.cert_pem.clone(), other.key_pem.clone()))),
            "tls.key does not belong to the certificate",
        ),
    ];
    for (name, secret, want) in cases {
        let mut w = World::new(&[SHOP_TLS]);
        if let Some(s) = secret {
            w.secrets.insert(ObjKey::new("vmug", "shop-tls"), s);
        }
        let d = w.run(ShardSize::Small, &cfg());
        assert!(names(&d, Kind::VirtualServiceChild).is_empty(), "{name}");
        assert!(names(&d, Kind::SslKeyAndCertificate).is_empty(), "{name}");
        let o = outcome(&d, "shop");
        assert_eq!(o.problems.len(), 1, "{name}: {:?}", o.problems);
        assert_eq!(o.problems[0].severity, Severity::Warn);
        assert!(
            o.problems[0].message.contains(want),
            "{name}: {}",
            o.problems[0]
        );
        assert!(
            o.problems[0]
                .message
                .contains("is not served until it is fixed"),
            "{name}"
        );
        // No route, no address: nothing of the host exists, and no parent is made for it alone.
        assert!(o.hosts.is_empty(), "{name}: {:?}", o.hosts);
        assert!(d.objects.is_empty(), "{name}: {:?}", names(&d, Kind::Pool));
    }
}

#[test]
fn enable_tls_adds_https_with_the_default_certificate() {
    let yaml = r#"
metadata: {name: shop, namespace: vmug, annotations: {ako.vmware.com/enable-tls: "true"}}
spec:
  rules:
  - host: shop.avi.jarvis.lab
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
"#;
    let mut w = World::new(&[yaml]);
    let h = "shop.avi.jarvis.lab";
    let pool = "veba-of--shop.avi.jarvis.lab_-vmug-shop";

    // Without the default Secret: HTTP only, with a warning.
    let d = w.run(ShardSize::Small, &cfg());
    assert!(names(&d, Kind::VirtualServiceChild).is_empty());
    let p = &outcome(&d, "shop").problems;
    assert!(
        p.len() == 1 && p[0].message.contains("router-certs-default does not exist"),
        "{p:?}"
    );

    w.default_cert = Some(pair());
    let d = w.run(ShardSize::Small, &cfg());
    assert!(outcome(&d, "shop").problems.is_empty());
    let child = find(
        &d,
        Kind::VirtualServiceChild,
        "veba-of--shop.avi.jarvis.lab",
    );
    assert_eq!(
        child["ssl_key_and_certificate_refs"],
        json!(["/api/sslkeyandcertificate/?name=veba-of--router-certs-default"])
    );
    find(
        &d,
        Kind::SslKeyAndCertificate,
        "veba-of--router-certs-default",
    );
    // HTTP keeps being served (no redirect) and HTTPS reaches the same pool group.
    assert_eq!(
        route(&parent_routes(&d, "veba-of--Shared-L7-0"), h, "/", 80),
        pool
    );
    assert_eq!(
        route(
            find(&d, Kind::HttpPolicySet, "veba-of--vmug-shop.avi.jarvis.lab"),
            h,
            "/",
            443
        ),
        pool
    );
    assert!(outcome(&d, "shop").hosts[0].tls);
}

#[test]
fn tls_without_secret_uses_the_default_certificate_and_the_oldest_secret_wins() {
    let no_secret = r#"
metadata: {name: a, namespace: vmug, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  tls: [{hosts: [shop.avi.jarvis.lab]}]
  rules:
  - host: shop.avi.jarvis.lab
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
"#;
    let newer = r#"
metadata: {name: b, namespace: vmug, creationTimestamp: "2026-01-02T00:00:00Z"}
spec:
  tls: [{hosts: [shop.avi.jarvis.lab], secretName: other-tls}]
  rules:
  - host: shop.avi.jarvis.lab
    http: {paths: [{path: /b, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
"#;
    let mut w = World::new(&[newer, no_secret]);
    w.secrets
        .insert(ObjKey::new("vmug", "other-tls"), Some(pair()));
    let d = w.run(ShardSize::Small, &cfg());
    // No default certificate: the oldest claim decides, so no TLS at all.
    assert!(names(&d, Kind::VirtualServiceChild).is_empty());
    let pa = &outcome(&d, "a").problems;
    assert!(pa.len() == 1 && pa[0].message.contains("names no secretName and the default certificate (Secret router-certs-default) does not exist"), "{pa:?}");
    let pb = &outcome(&d, "b").problems;
    assert!(
        pb.len() == 1
            && pb[0]
                .message
                .contains("served with the TLS Secret of Ingress vmug/a"),
        "{pb:?}"
    );

    w.default_cert = Some(tls("bad", "bad"));
    let d = w.run(ShardSize::Small, &cfg());
    assert!(names(&d, Kind::VirtualServiceChild).is_empty());
    assert!(
        outcome(&d, "a").problems[0]
            .message
            .contains("is not usable")
    );

    w.default_cert = Some(pair());
    let d = w.run(ShardSize::Small, &cfg());
    let child = find(
        &d,
        Kind::VirtualServiceChild,
        "veba-of--shop.avi.jarvis.lab",
    );
    assert_eq!(
        child["ssl_key_and_certificate_refs"],
        json!(["/api/sslkeyandcertificate/?name=veba-of--router-certs-default"])
    );
    // A spec.tls host redirects HTTP to HTTPS; both Ingresses' paths are on the child.
    let h = "shop.avi.jarvis.lab";
    assert_eq!(
        route(&parent_routes(&d, "veba-of--Shared-L7-0"), h, "/b", 80),
        "redirect"
    );
    let child_policy = find(&d, Kind::HttpPolicySet, "veba-of--vmug-shop.avi.jarvis.lab");
    assert_eq!(
        route(child_policy, h, "/b/x", 443),
        "veba-of--vmug-shop.avi.jarvis.lab_b-b"
    );
    assert_eq!(
        route(child_policy, h, "/bx", 443),
        "veba-of--vmug-shop.avi.jarvis.lab_-a"
    );
    assert!(outcome(&d, "b").hosts[0].tls);
}
