use super::*;

#[test]
fn a_full_api_server_review_reads_the_fields_ako_uses_and_skips_the_rest() {
    let body = r#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{
        "uid":"u-1","kind":{"group":"networking.k8s.io","version":"v1","kind":"Ingress"},
        "resource":{"group":"networking.k8s.io","version":"v1","resource":"ingresses"},
        "requestKind":{"group":"networking.k8s.io","version":"v1","kind":"Ingress"},
        "name":"web","namespace":"shop","operation":"UPDATE",
        "userInfo":{"username":"alice","groups":["dev"],"extra":{"k":["v"]}},
        "object":{"kind":"Ingress","apiVersion":"networking.k8s.io/v1","metadata":{"name":"web",
          "namespace":"shop","uid":"x","resourceVersion":"7","creationTimestamp":"2026-01-01T00:00:00Z",
          "annotations":{"kubernetes.io/ingress.class":"avi"},
          "managedFields":[{"manager":"kubectl","operation":"Update","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{}}}]},
          "spec":{"rules":[{"host":"web.avi.jarvis.lab"}]},"status":{"loadBalancer":{}}},
        "oldObject":{"kind":"Ingress","metadata":{"name":"web"},"spec":{"rules":[]}},
        "dryRun":true,"options":{"kind":"UpdateOptions","apiVersion":"meta.k8s.io/v1"}}}"#;
    let review: ReviewIn = serde_json::from_str(body).expect("review");
    let req = review.request.expect("request");
    assert_eq!(req.uid, "u-1");
    assert_eq!(req.operation, Operation::Update);
    assert!(req.dry_run);
    assert_eq!(req.user_info.username.as_deref(), Some("alice"));
    let Object::Ingress(ing) = req.object().expect("object") else {
        panic!("not an Ingress")
    };
    assert_eq!(ing.metadata.name.as_deref(), Some("web"));
    assert_eq!(ing.metadata.namespace.as_deref(), Some("shop"));
    assert!(
        ing.metadata.managed_fields.is_none(),
        "managedFields are skipped"
    );
    assert_eq!(ing.metadata.annotations.as_ref().map(|a| a.len()), Some(1));
    assert!(ing.metadata.creation_timestamp.is_some());
    let host = ing
        .spec
        .as_ref()
        .and_then(|s| s.rules.as_ref())
        .map(|r| r[0].host.clone());
    assert_eq!(host, Some(Some("web.avi.jarvis.lab".to_string())));
}

#[test]
fn the_request_namespace_fills_an_object_without_one_and_other_kinds_are_not_read() {
    let body = r#"{"request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Service"},
        "namespace":"n","operation":"CREATE","object":{"metadata":{"name":"s"},"spec":{"type":"LoadBalancer"}}}}"#;
    let review: ReviewIn = serde_json::from_str(body).expect("review");
    let req = review.request.expect("request");
    let Object::Service(svc) = req.object().expect("object") else {
        panic!("not a Service")
    };
    assert_eq!(svc.metadata.namespace.as_deref(), Some("n"));
    let other = r#"{"request":{"uid":"u","kind":{"group":"apps","version":"v1","kind":"Deployment"},
        "operation":"CREATE","object":{"spec":"anything at all"}}}"#;
    let review: ReviewIn = serde_json::from_str(other).expect("review");
    assert!(matches!(
        review.request.expect("request").object(),
        Ok(Object::Other)
    ));
}

#[test]
fn mutation_reads_only_the_class_fields_and_decides_as_on_the_full_object() {
    use ako_core::admission::{Mode, decide};
    use ako_core::config::Config;
    use ako_core::index::Snapshot;
    let cfg = Config {
        dns_domains: vec!["avi.jarvis.lab".into()],
        ..Config::default()
    };
    let snap = Snapshot::default();
    let cases = [
        (
            r#"{"kind":"Ingress"}"#,
            r#"{"metadata":{"name":"a","annotations":{"kubernetes.io/ingress.class":"avi"}},"spec":{"rules":[{"host":"a.avi.jarvis.lab"}]}}"#,
        ),
        (
            r#"{"kind":"Ingress"}"#,
            r#"{"metadata":{"name":"a","annotations":{"kubernetes.io/ingress.class":"avi"}}}"#,
        ),
        (
            r#"{"kind":"Ingress"}"#,
            r#"{"metadata":{"name":"a"},"spec":{"ingressClassName":"avi-lb","rules":[]}}"#,
        ),
        (
            r#"{"kind":"Service","group":""}"#,
            r#"{"metadata":{"name":"s"},"spec":{"type":"LoadBalancer","ports":[{"port":80}]}}"#,
        ),
        (
            r#"{"kind":"Service","group":""}"#,
            r#"{"metadata":{"name":"s"},"spec":{"type":"LoadBalancer","loadBalancerClass":"x"}}"#,
        ),
    ];
    for (kind, object) in cases {
        let group = if kind.contains("Service") {
            ""
        } else {
            "networking.k8s.io"
        };
        let k = if kind.contains("Service") {
            "Service"
        } else {
            "Ingress"
        };
        let body = format!(
            r#"{{"request":{{"uid":"u","kind":{{"group":"{group}","version":"v1","kind":"{k}"}},"namespace":"n","operation":"CREATE","object":{object}}}}}"#
        );
        let review: ReviewIn = serde_json::from_str(&body).expect("review");
        let req = review.request.expect("request");
        let lean = decide(
            &req.meta(),
            req.object_for(Mode::Mutate).expect("lean"),
            Mode::Mutate,
            &cfg,
            &snap,
        );
        let full = decide(
            &req.meta(),
            req.object().expect("full"),
            Mode::Mutate,
            &cfg,
            &snap,
        );
        assert_eq!(lean, full, "{object}");
    }
}

/// The two-step reader, for comparison with the one-pass [`read`].
fn two_step(body: &str, mode: Mode) -> (String, Result<Object, String>) {
    let review: ReviewIn = serde_json::from_str(body).expect("review");
    let req = review.request.expect("request");
    (
        req.uid.to_string(),
        req.object_for(mode).map_err(|e| e.to_string()),
    )
}

#[test]
fn one_pass_reading_matches_the_two_step_reading() {
    let ingress_obj = r#"{"kind":"Ingress","metadata":{"name":"web","creationTimestamp":"2026-01-01T00:00:00Z",
        "annotations":{"kubernetes.io/ingress.class":"avi","kubectl.kubernetes.io/last-applied-configuration":"{\"a\":\"b\"}\n"},
        "managedFields":[{"manager":"kubectl","fieldsV1":{"f:spec":{}}}]},
        "spec":{"ingressClassName":"avi-lb","rules":[{"host":"web.avi.jarvis.lab","http":{"paths":[{"path":"/","pathType":"Prefix",
        "backend":{"service":{"name":"web","port":{"number":80}}}}]}}]},"status":{}}"#;
    let service_obj = r#"{"metadata":{"name":"s","namespace":"own","annotations":{"ako.vmware.com/load-balancer-ip":"10.10.18.5"}},
        "spec":{"type":"LoadBalancer","ports":[{"port":80}]}}"#;
    let ing_kind = r#"{"group":"networking.k8s.io","version":"v1","kind":"Ingress"}"#;
    let svc_kind = r#"{"group":"","version":"v1","kind":"Service"}"#;
    let other_kind = r#"{"group":"apps","version":"v1","kind":"Deployment"}"#;
    let bodies = [
        // As the API server orders the fields: kind before object.
        format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","request":{{"uid":"u1","kind":{ing_kind},"namespace":"n","operation":"CREATE","userInfo":{{"username":"a","groups":["g"]}},"object":{ingress_obj},"oldObject":null,"dryRun":false,"options":{{}}}}}}"#
        ),
        // Object before kind: read after the pass.
        format!(
            r#"{{"request":{{"object":{ingress_obj},"uid":"u2","kind":{ing_kind},"namespace":"n","operation":"UPDATE"}}}}"#
        ),
        format!(
            r#"{{"request":{{"uid":"u3","kind":{svc_kind},"namespace":"n","operation":"CREATE","object":{service_obj}}}}}"#
        ),
        format!(
            r#"{{"request":{{"uid":"u4","kind":{other_kind},"operation":"CREATE","object":{{"spec":[1,2,3]}}}}}}"#
        ),
        format!(
            r#"{{"request":{{"uid":"u5","kind":{ing_kind},"operation":"DELETE","object":null}}}}"#
        ),
        // A malformed spec: the review is still answered, with the reason.
        format!(
            r#"{{"request":{{"uid":"u6","kind":{ing_kind},"operation":"CREATE","object":{{"spec":{{"rules":"no"}}}}}}}}"#
        ),
    ];
    for body in &bodies {
        for mode in [Mode::Validate, Mode::Mutate] {
            let one = read(body.as_bytes(), mode).expect("read");
            let (uid, two) = two_step(body, mode);
            assert_eq!(one.request.uid, uid);
            assert_eq!(
                one.object.map_err(|e| e.to_string()),
                two,
                "{mode:?} {body}"
            );
        }
    }
}

#[test]
fn damaged_bodies_never_panic_and_one_pass_agrees_with_two_step_whenever_both_read() {
    use rand::{Rng, SeedableRng};
    let body = br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"u-1",
        "kind":{"group":"networking.k8s.io","version":"v1","kind":"Ingress"},"name":"web","namespace":"shop",
        "operation":"CREATE","userInfo":{"username":"alice","groups":["dev"]},"object":{"kind":"Ingress",
        "metadata":{"name":"web","namespace":"shop","creationTimestamp":"2026-01-01T00:00:00Z","annotations":{
        "kubectl.kubernetes.io/last-applied-configuration":"{\"spec\":{\"rules\":[]}}\n","kubernetes.io/ingress.class":"avi"},
        "managedFields":[{"manager":"kubectl","fieldsV1":{"f:spec":{}}}]},"spec":{"ingressClassName":"avi-lb",
        "tls":[{"hosts":["web.avi.jarvis.lab"],"secretName":"tls"}],"rules":[{"host":"web.avi.jarvis.lab","http":{"paths":[
        {"path":"/","pathType":"Prefix","backend":{"service":{"name":"web","port":{"number":80}}}}]}}]}},
        "oldObject":null,"dryRun":false}}"#;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (mut both_read, mut compared) = (0, 0);
    for _ in 0..3000 {
        let mut b = body.to_vec();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..b.len());
            match rng.random_range(0..3) {
                0 => b[at] = rng.random_range(0x20..0x7f),
                1 => {
                    let end = (at + rng.random_range(1..12)).min(b.len());
                    b.drain(at..end);
                }
                _ => b.insert(at, b"\"{}[],:0"[rng.random_range(0..8)]),
            }
            if b.is_empty() {
                b.push(b'{');
            }
        }
        for mode in [Mode::Validate, Mode::Mutate] {
            let one = read(&b, mode);
            let Ok(text) = std::str::from_utf8(&b) else {
                continue;
            };
            let Ok(ReviewIn { request: Some(req) }) = serde_json::from_str::<ReviewIn>(text) else {
                continue;
            };
            both_read += 1;
            let one = one.expect("the two-step reader read it, so read() must");
            compared += 1;
            assert_eq!(one.request.uid, req.uid, "{text}");
            assert_eq!(
                one.object.map_err(|e| e.to_string()),
                req.object_for(mode).map_err(|e| e.to_string()),
                "{mode:?} {text}"
            );
        }
    }
    assert!(
        both_read > 500 && compared == both_read,
        "{both_read} damaged bodies were readable"
    );
}

#[test]
fn the_last_applied_annotation_is_skipped_and_the_others_kept() {
    let body = r#"{"request":{"uid":"u","kind":{"group":"networking.k8s.io","version":"v1","kind":"Ingress"},
        "operation":"CREATE","object":{"metadata":{"name":"a","annotations":{
        "kubectl.kubernetes.io/last-applied-configuration":"{\"huge\":true}","kubernetes.io/ingress.class":"avi","x/y":"z"}}}}}"#;
    let Ok(Object::Ingress(ing)) = read(body.as_bytes(), Mode::Validate).expect("read").object
    else {
        panic!("not an Ingress")
    };
    let keys: Vec<&str> = ing
        .metadata
        .annotations
        .as_ref()
        .map(|a| a.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(keys, ["kubernetes.io/ingress.class", "x/y"]);
}

#[test]
fn bodies_that_are_not_reviews_are_told_apart() {
    let not_utf8 =
        read(b"{\"request\":{\"uid\":\"\xff\"}}", Mode::Validate).expect_err("not UTF-8");
    assert!(
        not_utf8.to_string().starts_with("the body is not UTF-8"),
        "{not_utf8}"
    );
    let cases: [(&str, &str); 6] = [
        (
            r#"{"request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Service"},"kind":{"group":"apps","version":"v1","kind":"Deployment"},"operation":"CREATE"}}"#,
            "duplicate field `kind`",
        ),
        (
            r#"{"kind":"AdmissionReview"}"#,
            "the AdmissionReview has no request",
        ),
        (r#"{"request":null}"#, "the AdmissionReview has no request"),
        ("{not json", "key must be a string"),
        (
            r#"{"request":{"kind":{"group":"","version":"v1","kind":"Service"},"operation":"CREATE"}}"#,
            "missing field `uid`",
        ),
        (
            r#"{"request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Service"},"operation":"EXPLODE"}}"#,
            "unknown variant `EXPLODE`",
        ),
    ];
    for (body, want) in cases {
        let e = read(body.as_bytes(), Mode::Validate).expect_err(body);
        assert!(e.to_string().contains(want), "{body}: {e}");
    }
}

#[test]
fn a_malformed_spec_is_an_error_naming_the_kind() {
    let body = r#"{"request":{"uid":"u","kind":{"group":"networking.k8s.io","version":"v1","kind":"Ingress"},
        "operation":"CREATE","object":{"metadata":{"name":"x"},"spec":{"rules":"no"}}}}"#;
    let review: ReviewIn = serde_json::from_str(body).expect("review");
    let e = review
        .request
        .expect("request")
        .object()
        .expect_err("malformed");
    assert!(
        e.to_string()
            .starts_with("the Ingress in the request cannot be read"),
        "{e}"
    );
}
