//! Tests of `admission`.

use super::*;
use crate::intent::ClassInfo;

fn cfg() -> Config {
    Config {
        dns_domains: vec!["avi.jarvis.lab".into()],
        ..Config::default()
    }
}

fn ingress(yaml: &str) -> Ingress {
    serde_yaml_ng::from_str(yaml).expect("ingress yaml")
}

fn ing(ns: &str, name: &str, created: Option<&str>, host: &str, path: &str) -> Ingress {
    let ts = created
        .map(|t| format!(", creationTimestamp: '{t}'"))
        .unwrap_or_default();
    ingress(&format!(
        "metadata: {{name: {name}, namespace: {ns}{ts}}}\nspec:\n  ingressClassName: avi-lb\n  rules:\n  - host: {host}\n    http: {{paths: [{{path: '{path}', pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}]}}"
    ))
}

fn snapshot_with(c: &Config, existing: &[Ingress]) -> Snapshot {
    let mut s = Snapshot::default();
    for i in existing {
        s.upsert_ingress(IngressClaims::of(i, c));
    }
    s
}

#[test]
fn review_json_speaks_admission_v1_for_each_outcome() {
    // The real API server reading these answers is covered by tests/e2e_webhook.rs.
    use base64::Engine;
    let patch = vec![PatchOperation::Add(AddOperation {
        path: pointer(&["spec", "ingressClassName"]),
        value: serde_json::json!("avi-lb"),
    })];
    let cases = [
        ("not-ours", Decision::allow(), false, false),
        (
            "allowed",
            Decision {
                in_scope: true,
                ..Decision::allow()
            },
            false,
            false,
        ),
        (
            "denied",
            Decision {
                allowed: false,
                in_scope: true,
                reasons: vec!["host \"a\" is outside".into(), "second".into()],
                ..Decision::default()
            },
            true,
            false,
        ),
        (
            "mutated",
            Decision {
                allowed: true,
                in_scope: true,
                patch,
                patch_summary: vec!["spec.ingressClassName: avi-lb".into()],
                warnings: vec!["backend web not found".into()],
                ..Decision::default()
            },
            false,
            true,
        ),
    ];
    for (want, d, denied, patched) in cases {
        let bytes = d.review_json("uid-1");
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        let r = &v["response"];
        assert_eq!(v["apiVersion"], "admission.k8s.io/v1", "{want}");
        assert_eq!(v["kind"], "AdmissionReview", "{want}");
        assert_eq!(r["uid"], "uid-1", "{want}");
        assert_eq!(r["allowed"], !denied, "{want}");
        assert_eq!(r["auditAnnotations"]["decision"], want);
        if denied {
            assert_eq!(r["status"]["code"], 403);
            assert_eq!(r["status"]["reason"], "Forbidden");
            assert_eq!(r["status"]["message"], "host \"a\" is outside; second");
            assert_eq!(r["auditAnnotations"]["reasons"], r["status"]["message"]);
        } else {
            assert!(r.get("status").is_none(), "{want}: {r}");
        }
        if patched {
            assert_eq!(r["patchType"], "JSONPatch");
            let raw = base64::engine::general_purpose::STANDARD
                .decode(r["patch"].as_str().expect("base64 string"))
                .expect("base64");
            let ops: serde_json::Value = serde_json::from_slice(&raw).expect("patch");
            assert_eq!(
                ops,
                serde_json::json!([{"op": "add", "path": "/spec/ingressClassName", "value": "avi-lb"}])
            );
            assert_eq!(
                r["auditAnnotations"]["mutations"],
                "spec.ingressClassName: avi-lb"
            );
            assert_eq!(r["warnings"], serde_json::json!(["backend web not found"]));
        } else {
            assert!(
                r.get("patch").is_none() && r.get("patchType").is_none(),
                "{want}"
            );
        }
    }
}

#[test]
fn ownership_and_duplicate_table() {
    let owner = ing(
        "team-a",
        "shop",
        Some("2026-01-01T00:00:00Z"),
        "shop.avi.jarvis.lab",
        "/",
    );
    let strict = Config {
        fqdn_reuse_policy: FqdnReusePolicy::Strict,
        ..cfg()
    };
    struct Case {
        name: &'static str,
        cfg: Config,
        candidate: Ingress,
        allowed: bool,
        reason: &'static str,
        warning: &'static str,
    }
    let cases = vec![
        Case {
            name: "strict: other namespace, other path is a hijack",
            cfg: strict.clone(),
            candidate: ing("team-b", "steal", None, "shop.avi.jarvis.lab", "/b"),
            allowed: false,
            reason: "belongs to namespace \"team-a\" (Ingress team-a/shop",
            warning: "",
        },
        Case {
            name: "inter-namespace allowed: warn only",
            cfg: cfg(),
            candidate: ing("team-b", "share", None, "shop.avi.jarvis.lab", "/b"),
            allowed: true,
            reason: "",
            warning: "also used by Ingress team-a/shop",
        },
        Case {
            name: "same host+path+type in the same namespace is denied",
            cfg: cfg(),
            candidate: ing("team-a", "dup", None, "shop.avi.jarvis.lab", "/"),
            allowed: false,
            reason: "already routed by Ingress team-a/shop",
            warning: "",
        },
        Case {
            name: "same namespace, different path is fine",
            cfg: strict.clone(),
            candidate: ing("team-a", "more", None, "shop.avi.jarvis.lab", "/api"),
            allowed: true,
            reason: "",
            warning: "",
        },
        Case {
            name: "the owner itself may be updated",
            cfg: strict.clone(),
            candidate: owner.clone(),
            allowed: true,
            reason: "",
            warning: "",
        },
        Case {
            name: "hosts are compared normalized",
            cfg: strict.clone(),
            candidate: ing("team-b", "steal", None, "SHOP.avi.jarvis.lab.", "/x"),
            allowed: false,
            reason: "belongs to namespace",
            warning: "",
        },
        Case {
            name: "an older object is not denied by a newer claim",
            cfg: strict,
            candidate: ing(
                "team-b",
                "old",
                Some("2025-01-01T00:00:00Z"),
                "shop.avi.jarvis.lab",
                "/",
            ),
            allowed: true,
            reason: "",
            warning: "",
        },
    ];
    for c in cases {
        let snap = snapshot_with(&c.cfg, std::slice::from_ref(&owner));
        let d = validate_ingress(&c.candidate, &c.cfg, &snap);
        assert_eq!(d.allowed, c.allowed, "{}: {:?}", c.name, d);
        if !c.reason.is_empty() {
            assert!(
                d.message().contains(c.reason),
                "{}: {}",
                c.name,
                d.message()
            );
        }
        if !c.warning.is_empty() {
            assert!(
                d.warnings.iter().any(|w| w.contains(c.warning)),
                "{}: {:?}",
                c.name,
                d.warnings
            );
        }
        assert!(
            d.warnings.iter().all(|w| w.chars().count() <= MAX_WARNING),
            "{}",
            c.name
        );
    }
}

#[test]
fn until_the_subdomains_are_known_ako_objects_are_denied_as_not_ready_and_others_pass() {
    let pending = Config {
        dns_domains: Vec::new(),
        domains_pending: true,
        ..cfg()
    };
    let mine = ing("shop", "web", None, "anything.example.com", "/");
    let d = validate_ingress(&mine, &pending, &Snapshot::default());
    assert!(!d.allowed);
    assert!(d.reasons[0].contains("not ready"), "{:?}", d.reasons);
    let lb: Service = serde_yaml_ng::from_str(
        "metadata: {name: lb, namespace: shop}\nspec: {type: LoadBalancer}",
    )
    .expect("service");
    assert!(!validate_service(&lb, &pending, &Snapshot::default()).allowed);
    let plain: Service =
        serde_yaml_ng::from_str("metadata: {name: web, namespace: shop}\nspec: {type: ClusterIP}")
            .expect("service");
    assert!(
        validate_service(&plain, &pending, &Snapshot::default()).allowed,
        "a Service that is not ako's never waits"
    );
}

#[test]
fn claims_of_other_classes_do_not_count() {
    let c = Config {
        fqdn_reuse_policy: FqdnReusePolicy::Strict,
        ..cfg()
    };
    let mut other = ing(
        "team-a",
        "nginx",
        Some("2026-01-01T00:00:00Z"),
        "shop.avi.jarvis.lab",
        "/",
    );
    if let Some(s) = other.spec.as_mut() {
        s.ingress_class_name = Some("nginx".into());
    }
    let snap = snapshot_with(&c, &[other]);
    let d = validate_ingress(
        &ing("team-b", "x", None, "shop.avi.jarvis.lab", "/"),
        &c,
        &snap,
    );
    assert!(d.allowed, "{d:?}");
}

#[test]
fn outside_host_denial_names_field_and_fix() {
    let d = validate_ingress(
        &ing("vmug", "shop", None, "shop.example.com", "/"),
        &cfg(),
        &Snapshot::default(),
    );
    assert!(!d.allowed);
    assert_eq!(
        d.message(),
        "host \"shop.example.com\" (spec.rules[0].host) is outside the delegated DNS subdomains [avi.jarvis.lab]; use a host ending in .avi.jarvis.lab"
    );
}

#[test]
fn ingresses_of_other_classes_pass_untouched() {
    let mut other = ing("n", "x", None, "shop.example.com", "/");
    if let Some(s) = other.spec.as_mut() {
        s.ingress_class_name = Some("nginx".into());
    }
    let d = validate_ingress(&other, &cfg(), &Snapshot::default());
    assert!(d.allowed && !d.in_scope);
    let m = mutate_ingress(&other, &cfg(), &Snapshot::default());
    assert!(m.patch.is_empty());
}

#[test]
fn legacy_annotation_becomes_class_name_idempotently() {
    let legacy = ingress(
        "metadata: {name: hackazon, namespace: vmug, annotations: {kubernetes.io/ingress.class: avi}}\nspec: {rules: [{host: hackazon.avi.jarvis.lab}]}",
    );
    let d = mutate_ingress(&legacy, &cfg(), &Snapshot::default());
    assert_eq!(d.patch.len(), 2);
    let mut value = serde_json::to_value(&legacy).expect("json");
    json_patch::patch(&mut value, &d.patch).expect("patch applies");
    assert_eq!(value["spec"]["ingressClassName"], "avi-lb");
    assert!(
        value["metadata"]["annotations"]
            .get("kubernetes.io/ingress.class")
            .is_none()
    );
    let patched: Ingress = serde_json::from_value(value).expect("ingress");
    assert!(
        mutate_ingress(&patched, &cfg(), &Snapshot::default())
            .patch
            .is_empty(),
        "second pass changes nothing"
    );
    let nginx = ingress(
        "metadata: {name: a, namespace: b, annotations: {kubernetes.io/ingress.class: nginx}}\nspec: {}",
    );
    assert!(
        mutate_ingress(&nginx, &cfg(), &Snapshot::default())
            .patch
            .is_empty()
    );
}

fn lb_service(
    ns: &str,
    name: &str,
    created: Option<&str>,
    ip: &str,
    shared: Option<&str>,
) -> Service {
    let ts = created
        .map(|t| format!(", creationTimestamp: '{t}'"))
        .unwrap_or_default();
    let ann = shared
        .map(|k| format!(", annotations: {{ako.vmware.com/enable-shared-vip: {k}}}"))
        .unwrap_or_default();
    serde_yaml_ng::from_str(&format!(
            "metadata: {{name: {name}, namespace: {ns}{ts}{ann}}}\nspec: {{type: LoadBalancer, loadBalancerIP: '{ip}', ports: [{{port: 80}}]}}"
        ))
        .expect("service yaml")
}

#[test]
fn a_requested_vip_belongs_to_the_oldest_service_unless_they_share_it() {
    let c = cfg();
    let existing = [
        lb_service(
            "team-a",
            "web",
            Some("2026-01-01T00:00:00Z"),
            "10.10.18.5",
            None,
        ),
        lb_service(
            "team-a",
            "dns",
            Some("2026-01-02T00:00:00Z"),
            "10.10.18.6",
            Some("pair"),
        ),
        lb_service(
            "team-b",
            "late",
            Some("2026-03-01T00:00:00Z"),
            "10.10.18.7",
            None,
        ),
    ];
    let mut snap = Snapshot::default();
    for svc in &existing {
        snap.upsert_service(index::ServiceEntry::of(svc, &c));
    }
    // (candidate, allowed, expected text in the reason or warning)
    let cases = [
        (
            lb_service("team-b", "grab", None, "10.10.18.5", None),
            false,
            "VIP 10.10.18.5 is already requested by Service team-a/web",
        ),
        (
            lb_service("team-a", "dns-udp", None, "10.10.18.6", Some("pair")),
            true,
            "",
        ),
        (
            lb_service("team-a", "other", None, "10.10.18.6", Some("other-key")),
            false,
            "team-a/dns",
        ),
        (
            lb_service("team-a", "plain", None, "10.10.18.6", None),
            false,
            "team-a/dns",
        ),
        // Updating the owner itself is fine.
        (
            lb_service(
                "team-a",
                "web",
                Some("2026-01-01T00:00:00Z"),
                "10.10.18.5",
                None,
            ),
            true,
            "",
        ),
        // An older Service asking for an address a newer one holds keeps it; the newer one is named.
        (
            lb_service(
                "team-c",
                "old",
                Some("2025-06-01T00:00:00Z"),
                "10.10.18.7",
                None,
            ),
            true,
            "also requested by Service team-b/late",
        ),
        (
            lb_service("team-b", "free", None, "10.10.18.8", None),
            true,
            "",
        ),
    ];
    for (svc, allowed, text) in cases {
        let d = validate_service(&svc, &c, &snap);
        let name = svc.metadata.name.clone().unwrap_or_default();
        assert_eq!(d.allowed, allowed, "{name}: {d:?}");
        let all = [d.reasons.join("; "), d.warnings.join("; ")].join(" | ");
        assert!(all.contains(text), "{name}: {all}");
        if !allowed {
            assert!(
                d.message().contains("ako.vmware.com/enable-shared-vip"),
                "{name}: the fix is named"
            );
        }
    }
    // Once the owner is gone, the address is free.
    snap.remove_service(&ObjKey::new("team-a", "web"));
    let d = validate_service(
        &lb_service("team-b", "grab", None, "10.10.18.5", None),
        &c,
        &snap,
    );
    assert!(d.allowed, "{d:?}");
}

#[test]
fn service_gets_class_only_on_create_when_we_are_default() {
    let svc: Service =
        serde_yaml_ng::from_str("metadata: {name: s, namespace: n}\nspec: {type: LoadBalancer}")
            .expect("svc");
    assert_eq!(mutate_service(&svc, true, &cfg()).patch.len(), 1);
    assert!(mutate_service(&svc, false, &cfg()).patch.is_empty());
    let not_default = Config {
        default_lb_controller: false,
        ..cfg()
    };
    assert!(mutate_service(&svc, true, &not_default).patch.is_empty());
}

#[test]
fn missing_references_warn_but_allow() {
    let c = cfg();
    let mut snap = Snapshot::default();
    snap.refs_synced = true;
    let tls = ingress(
        "metadata: {name: a, namespace: n}\nspec:\n  ingressClassName: avi-lb\n  tls: [{hosts: [a.avi.jarvis.lab], secretName: missing}]\n  rules: [{host: a.avi.jarvis.lab, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: gone, port: {number: 80}}}}]}}]",
    );
    let d = validate_ingress(&tls, &c, &snap);
    assert!(d.allowed);
    assert_eq!(d.warnings.len(), 2, "{:?}", d.warnings);
    snap.refs_synced = false;
    assert!(
        validate_ingress(&tls, &c, &snap).warnings.is_empty(),
        "unknown until synced"
    );
}

#[test]
fn default_class_lands_on_us_only_when_no_other_default() {
    let c = cfg();
    let classless =
        ingress("metadata: {name: a, namespace: n}\nspec: {rules: [{host: x.example.com}]}");
    assert!(!validate_ingress(&classless, &c, &Snapshot::default()).allowed);
    let mut snap = Snapshot::default();
    snap.classes.classes.insert(
        "nginx".into(),
        ClassInfo {
            infra: None,
            controller: Some("nginx".into()),
            is_default: true,
        },
    );
    assert!(validate_ingress(&classless, &c, &snap).allowed);
}

/// An Ingress of ours with `rules` rules on `hosts` distinct hosts (rule i on host i % hosts), `paths` paths
/// per rule (`/p<j>`, or `/<prefix><j>`), and one TLS entry per host.
fn wide_ingress(
    ns: &str,
    name: &str,
    created: Option<&str>,
    rules: usize,
    hosts: usize,
    paths: usize,
    prefix: &str,
) -> Ingress {
    let rules: Vec<serde_json::Value> = (0..rules)
            .map(|i| {
                let paths: Vec<serde_json::Value> = (0..paths)
                    .map(|j| serde_json::json!({"path": format!("/{prefix}{i}-{j}"), "pathType": "Prefix",
                        "backend": {"service": {"name": format!("svc-{}", j % 3), "port": {"number": 80}}}}))
                    .collect();
                serde_json::json!({"host": format!("h{}.avi.jarvis.lab", i % hosts), "http": {"paths": paths}})
            })
            .collect();
    let tls: Vec<serde_json::Value> = (0..hosts)
        .map(
            |i| serde_json::json!({"hosts": [format!("h{i}.avi.jarvis.lab")], "secretName": "tls"}),
        )
        .collect();
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": created},
        "spec": {"ingressClassName": "avi-lb", "rules": rules, "tls": tls},
    }))
    .expect("ingress")
}

#[test]
fn a_hostile_ingress_beyond_the_limits_is_denied_before_translation() {
    // 20,000 rules of one path on 20,000 hosts, each host also in spec.tls: what fits in a 3 MiB review.
    let hostile = wide_ingress("evil", "big", None, 20_000, 20_000, 1, "p");
    let d = validate_ingress(&hostile, &cfg(), &Snapshot::default());
    assert!(!d.allowed);
    assert_eq!(
        d.reasons,
        [
            "spec.rules has 20000 rules; ako accepts at most 2000 per Ingress; split it into several Ingresses",
            "spec.rules[*].http.paths has 20000 paths in all; ako accepts at most 10000 per Ingress; split it into several Ingresses",
            "spec.tls has 20000 entries; ako accepts at most 2000 per Ingress; split it into several Ingresses",
            "spec.tls[*].hosts has 20000 hosts in all; ako accepts at most 5000 per Ingress; split it into several Ingresses",
        ]
    );
    assert!(d.warnings.is_empty());
}

#[test]
fn a_maximum_size_ingress_clashing_everywhere_is_decided_with_a_bounded_answer() {
    use crate::intent::limits::{MAX_PATHS, MAX_RULES, MAX_TLS};
    // The largest object the limits let through: 2,000 rules on 2,000 hosts, 10,000 paths, 2,000 TLS entries,
    // against an older Ingress of the same size claiming every one of those host + path pairs.
    let per_rule = MAX_PATHS / MAX_RULES;
    let owner = wide_ingress(
        "team-a",
        "owner",
        Some("2026-01-01T00:00:00Z"),
        MAX_RULES,
        MAX_TLS,
        per_rule,
        "p",
    );
    let strict = Config {
        fqdn_reuse_policy: FqdnReusePolicy::Strict,
        ..cfg()
    };
    let mut snap = snapshot_with(&strict, std::slice::from_ref(&owner));
    snap.refs_synced = true;
    let claims = snap.claims_for_host("h7.avi.jarvis.lab");
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].paths_for("h7.avi.jarvis.lab").len(), per_rule);

    let copy = wide_ingress("team-b", "copy", None, MAX_RULES, MAX_TLS, per_rule, "p");
    let d = validate_ingress(&copy, &strict, &snap);
    assert!(!d.allowed);
    // 10,000 duplicate paths and 2,000 hosts owned by team-a: 12,000 problems, told in 20 reasons.
    assert_eq!(d.reasons.len(), MAX_REASONS);
    assert_eq!(
        d.reasons[0],
        "host \"h0.avi.jarvis.lab\" path \"/p0-0\" (Prefix) (spec.rules[0].host) is already routed by Ingress team-a/owner; one path cannot go to two backends, change the path or edit that Ingress"
    );
    assert_eq!(
        d.reasons[MAX_REASONS - 1],
        "and 11981 more problems of the same kind"
    );
    // The TLS Secret and the three backend Services do not exist: one warning each, not one per use.
    assert_eq!(d.warnings.len(), 4, "{:?}", d.warnings);

    // Other paths under fqdnReusePolicy InterNamespaceAllowed: allowed, with 2,000 shared-host warnings told
    // in 20.
    let other_paths = wide_ingress("team-b", "other", None, MAX_RULES, MAX_TLS, per_rule, "q");
    let d = validate_ingress(&other_paths, &cfg(), &snapshot_with(&cfg(), &[owner]));
    assert!(d.allowed, "{:?}", d.reasons);
    assert_eq!(d.warnings.len(), MAX_WARNINGS);
    assert_eq!(
        d.warnings[0],
        "host h0.avi.jarvis.lab is also used by Ingress team-a/owner in another namespace"
    );
    assert_eq!(d.warnings[MAX_WARNINGS - 1], "and 1981 more warnings");
}

#[test]
fn warnings_are_cut_to_120_characters() {
    let w = shorten("x".repeat(300));
    assert_eq!(w.chars().count(), MAX_WARNING);
}
