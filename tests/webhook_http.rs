//! The webhook server over real TLS on loopback, without a cluster: the index is fed directly.
//! Covers the HTTP contract: AdmissionReview in/out, 400 on malformed bodies, 413 over 3 MiB, 503 when
//! overloaded, metrics, health, `/claims` being opt-in, and certificate rotation without restart.

use std::sync::Arc;
use std::time::Duration;

use ako::core::config::{Config, FqdnReusePolicy};
use ako::core::index::{Index, IngressClaims};
use ako::webhook::{AppState, Limits, Workers, metrics::Metrics};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Server {
    base: String,
    health: String,
    ca_pem: String,
    dir: tempfile::TempDir,
    index: Arc<Index>,
    metrics: Arc<Metrics>,
    running: ako::webhook::Running,
}

async fn start() -> Server {
    start_with(Workers::Dedicated(1)).await
}

async fn start_with(workers: Workers) -> Server {
    start_full(workers, Limits::default(), true).await
}

async fn start_full(workers: Workers, limits: Limits, expose_claims: bool) -> Server {
    ako::certs::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tmp");
    let (files, ca_pem) = ako::certs::write_dev_certs(
        dir.path(),
        &["localhost".into()],
        &["127.0.0.1".parse().expect("ip")],
        1,
    )
    .expect("certs");
    let resolver =
        Arc::new(ako::certs::ReloadingResolver::load(&files.cert, &files.key).expect("load"));
    resolver.spawn_reloader(Duration::from_millis(50));
    let tls = Arc::new(ako::certs::server_config(resolver).expect("tls"));
    let cfg = Config {
        dns_domains: vec!["avi.jarvis.lab".into()],
        fqdn_reuse_policy: FqdnReusePolicy::Strict,
        ..Config::default()
    };
    let index = Arc::new(Index::new(Arc::new(cfg)));
    let metrics = Arc::new(Metrics::new());
    let state = AppState::new(index.clone(), metrics.clone())
        .with_limits(limits)
        .with_claims(expose_claims);
    let https = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let health = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let running = ako::webhook::serve(state, https, health, tls, workers)
        .await
        .expect("serve");
    Server {
        base: format!("https://127.0.0.1:{}", running.https.port()),
        health: format!("http://127.0.0.1:{}", running.health.port()),
        ca_pem,
        dir,
        index,
        metrics,
        running,
    }
}

fn client(ca_pem: &str) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    for c in ako::certs::parse_certs(ca_pem.as_bytes(), std::path::Path::new("ca")).expect("ca") {
        roots.add(c).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .expect("client")
}

fn review(op: &str, object: Value) -> Value {
    let ns = object["metadata"]["namespace"].clone();
    let name = object["metadata"]["name"].clone();
    let (group, kind, resource) = match object["kind"].as_str() {
        Some("Service") => ("", "Service", "services"),
        _ => ("networking.k8s.io", "Ingress", "ingresses"),
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "3b7a9e0c-0000-4000-8000-000000000001",
            "kind": {"group": group, "version": "v1", "kind": kind},
            "resource": {"group": group, "version": "v1", "resource": resource},
            "name": name, "namespace": ns, "operation": op,
            "userInfo": {"username": "alice"},
            "object": object, "oldObject": null, "dryRun": false
        }
    })
}

fn ingress(ns: &str, name: &str, host: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": ns, "annotations": {"kubernetes.io/ingress.class": "avi"}},
        "spec": {"rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}
    })
}

async fn post(c: &reqwest::Client, url: &str, body: Vec<u8>) -> (u16, Value) {
    let r = c
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_listener_layout_answers_concurrent_reviews() {
    for workers in [
        Workers::Shared,
        Workers::Dedicated(1),
        Workers::Dedicated(3),
    ] {
        let s = start_with(workers).await;
        let c = client(&s.ca_pem);
        let url = format!("{}/validate", s.base);
        let calls = (0..24).map(|i| {
            let (c, url) = (c.clone(), url.clone());
            async move {
                let host = if i % 2 == 0 {
                    "shop.example.com"
                } else {
                    "shop.avi.jarvis.lab"
                };
                let body =
                    serde_json::to_vec(&review("CREATE", ingress("vmug", &format!("i{i}"), host)))
                        .expect("json");
                let (status, v) = post(&c, &url, body).await;
                (i, status, v["response"]["allowed"].clone())
            }
        });
        for (i, status, allowed) in futures::future::join_all(calls).await {
            assert_eq!(status, 200, "{workers:?} call {i}");
            assert_eq!(allowed, json!(i % 2 == 1), "{workers:?} call {i}");
        }
    }
}

#[tokio::test]
async fn shutdown_stops_every_listener_layout_and_reports_its_end() {
    for workers in [Workers::Shared, Workers::Dedicated(2)] {
        let s = start_with(workers).await;
        let c = client(&s.ca_pem);
        let body = serde_json::to_vec(&review("CREATE", ingress("vmug", "a", "a.avi.jarvis.lab")))
            .expect("json");
        let (status, _) = post(&c, &format!("{}/validate", s.base), body.clone()).await;
        assert_eq!(status, 200, "{workers:?}");
        s.running.shutdown(Duration::ZERO);
        tokio::time::timeout(Duration::from_secs(5), s.running.ended())
            .await
            .expect("the end of a listener is reported");
        let started = std::time::Instant::now();
        s.running.wait(Duration::from_secs(30)).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{workers:?}: listeners took {:?} to end",
            started.elapsed()
        );
        let refused = c
            .post(format!("{}/validate", s.base))
            .body(body)
            .send()
            .await;
        assert!(
            refused.is_err(),
            "{workers:?}: still served after shutdown: {refused:?}"
        );
    }
}

/// The listener reads at most 8 KiB from a connection at a time (BENCHMARKS.md section 2b), which also bounds a
/// request's head: the API server's (with a service-account bearer token) fits; a head beyond it gets 431.
#[tokio::test]
async fn a_request_head_with_a_bearer_token_fits_and_an_oversized_head_gets_431() {
    let s = start().await;
    let c = client(&s.ca_pem);
    let body = serde_json::to_vec(&review(
        "CREATE",
        ingress("vmug", "shop", "shop.avi.jarvis.lab"),
    ))
    .expect("json");
    let send = |token_len: usize| {
        c.post(format!("{}/validate", s.base))
            .header("content-type", "application/json")
            .header("accept", "application/json, */*")
            .header("user-agent", "kube-apiserver-admission")
            .header("authorization", format!("Bearer {}", "t".repeat(token_len)))
            .body(body.clone())
            .send()
    };
    // A projected service-account token is a JWT of about 1 KiB; four times that still fits.
    let r = send(4096).await.expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["response"]["allowed"], true);
    let r = send(16 * 1024).await.expect("send");
    assert_eq!(r.status().as_u16(), 431);
}

#[tokio::test]
async fn a_review_of_several_reads_below_the_large_threshold_is_decided() {
    let s = start().await;
    let c = client(&s.ca_pem);
    let mut object = ingress("vmug", "many", "h0.avi.jarvis.lab");
    let rules: Vec<Value> = (0..150)
        .map(|i| json!({"host": format!("h{i}.avi.jarvis.lab"), "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}))
        .collect();
    object["spec"]["rules"] = Value::Array(rules);
    let body = serde_json::to_vec(&review("CREATE", object)).expect("json");
    assert!(
        body.len() > 2 * 8192 && body.len() < 64 * 1024,
        "{}",
        body.len()
    );
    let (status, v) = post(&c, &format!("{}/validate", s.base), body).await;
    assert_eq!(status, 200);
    assert_eq!(v["response"]["allowed"], true, "{v}");
}

#[tokio::test]
async fn a_denied_review_carries_uid_message_code_and_audit_annotations() {
    let s = start().await;
    let c = client(&s.ca_pem);
    let body = serde_json::to_vec(&review(
        "CREATE",
        ingress("vmug", "shop", "shop.example.com"),
    ))
    .expect("json");
    let (status, v) = post(&c, &format!("{}/validate", s.base), body).await;
    assert_eq!(status, 200);
    let resp = &v["response"];
    assert_eq!(v["kind"], "AdmissionReview");
    assert_eq!(resp["uid"], "3b7a9e0c-0000-4000-8000-000000000001");
    assert_eq!(resp["allowed"], false);
    assert_eq!(resp["status"]["code"], 403);
    assert!(
        resp["status"]["message"]
            .as_str()
            .expect("msg")
            .contains("outside the delegated DNS subdomains [avi.jarvis.lab]")
    );
    assert_eq!(resp["auditAnnotations"]["decision"], "denied");
}

#[tokio::test]
async fn the_mutating_endpoint_returns_a_json_patch_for_the_legacy_annotation() {
    let s = start().await;
    let c = client(&s.ca_pem);
    let body = serde_json::to_vec(&review(
        "CREATE",
        ingress("vmug", "hackazon", "hackazon.avi.jarvis.lab"),
    ))
    .expect("json");
    let (status, v) = post(&c, &format!("{}/mutate", s.base), body).await;
    assert_eq!(status, 200);
    let resp = &v["response"];
    assert_eq!(resp["allowed"], true);
    assert_eq!(resp["patchType"], "JSONPatch");
    // The patch travels base64-encoded, as Go encodes []byte.
    let patch = {
        use base64::Engine;
        let b64 = resp["patch"].as_str().expect("patch is a base64 string");
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("b64")
    };
    let patch: Value = serde_json::from_slice(&patch).expect("patch json");
    assert_eq!(
        patch,
        json!([
            {"op": "add", "path": "/spec/ingressClassName", "value": "avi-lb"},
            {"op": "remove", "path": "/metadata/annotations/kubernetes.io~1ingress.class"}
        ])
    );
}

#[tokio::test]
async fn malformed_and_oversized_bodies_get_400_and_413_with_a_message() {
    let s = start().await;
    let c = client(&s.ca_pem);
    let url = format!("{}/validate", s.base);
    let (status, v) = post(&c, &url, b"{not json".to_vec()).await;
    assert_eq!(status, 400);
    assert!(
        v["error"]
            .as_str()
            .expect("error")
            .contains("not an admission.k8s.io/v1 AdmissionReview")
    );
    let (status, v) = post(
        &c,
        &url,
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(v["error"], "the AdmissionReview has no request");
    let big = vec![b' '; 3 * 1024 * 1024 + 1];
    let (status, v) = post(&c, &url, big).await;
    assert_eq!(status, 413);
    assert!(v["error"].as_str().expect("error").contains("exceeds"));
    let metrics = reqwest::get(format!("{}/metrics", s.health))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(
            "ako_webhook_rejected_requests_total{webhook=\"validate\",reason=\"too_large\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "ako_webhook_rejected_requests_total{webhook=\"validate\",reason=\"malformed\"} 1"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_unreadable_object_is_denied_with_the_parse_error_and_the_uid() {
    let s = start().await;
    let c = client(&s.ca_pem);
    let mut r = review("CREATE", ingress("vmug", "x", "x.avi.jarvis.lab"));
    r["request"]["object"]["spec"]["rules"] = json!("not a list");
    let (status, v) = post(
        &c,
        &format!("{}/validate", s.base),
        serde_json::to_vec(&r).expect("json"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["response"]["allowed"], false);
    assert_eq!(v["response"]["uid"], "3b7a9e0c-0000-4000-8000-000000000001");
    assert!(
        v["response"]["status"]["message"]
            .as_str()
            .expect("m")
            .contains("the Ingress in the request cannot be read")
    );
}

#[tokio::test]
async fn ownership_is_decided_from_the_index_and_readyz_follows_sync() {
    let s = start().await;
    let c = client(&s.ca_pem);
    let ready = reqwest::get(format!("{}/readyz", s.health))
        .await
        .expect("readyz");
    assert_eq!(ready.status().as_u16(), 503);
    let mut owner = ingress("team-a", "shop", "shop.avi.jarvis.lab");
    owner["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
    let owner: k8s_openapi::api::networking::v1::Ingress =
        serde_json::from_value(owner).expect("ingress");
    let claims = IngressClaims::of(&owner, &s.index.config());
    s.index.write(|snap| snap.upsert_ingress(claims));
    s.index.mark_synced(|st| {
        st.ingresses = true;
        st.classes = true;
        st.secrets = true;
        st.services = true;
    });
    assert_eq!(
        reqwest::get(format!("{}/readyz", s.health))
            .await
            .expect("readyz")
            .status()
            .as_u16(),
        200
    );
    let body = serde_json::to_vec(&review(
        "CREATE",
        ingress("team-b", "steal", "shop.avi.jarvis.lab"),
    ))
    .expect("json");
    let (_, v) = post(&c, &format!("{}/validate", s.base), body).await;
    assert_eq!(v["response"]["allowed"], false);
    assert!(
        v["response"]["status"]["message"]
            .as_str()
            .expect("m")
            .contains("belongs to namespace \"team-a\"")
    );
    let claims = reqwest::get(format!("{}/claims?host=SHOP.avi.jarvis.lab", s.health))
        .await
        .expect("claims");
    let claims: Value = claims.json().await.expect("json");
    assert_eq!(claims["claims"][0]["ingress"], "team-a/shop");
    for bad in ["/claims", "/claims?vip=nope", "/claims?host=a&vip=10.0.0.1"] {
        let r = reqwest::get(format!("{}{bad}", s.health))
            .await
            .expect("get");
        assert_eq!(r.status().as_u16(), 400, "{bad}");
    }
    let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(json!({
        "metadata": {"name": "dns", "namespace": "team-a", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"type": "LoadBalancer", "loadBalancerIP": "10.10.18.20"}
    }))
    .expect("service");
    let entry = ako::core::index::ServiceEntry::of(&svc, &s.index.config());
    s.index.write(|snap| snap.upsert_service(entry));
    let vip: Value = reqwest::get(format!("{}/claims?vip=10.10.18.20", s.health))
        .await
        .expect("claims")
        .json()
        .await
        .expect("json");
    assert_eq!(vip["claims"][0]["service"], "team-a/dns");
}

#[tokio::test]
async fn a_rotated_certificate_is_served_without_restart() {
    let s = start().await;
    let (first, _) = peer_cert(&s).await;
    // Re-issue under the same CA (write_dev_certs reuses ca.crt/ca.key in the directory). No wait before: the
    // reloader compares contents, so a rewrite within the same mtime tick is seen.
    ako::certs::write_dev_certs(
        s.dir.path(),
        &["localhost".into(), "rotated.example".into()],
        &["127.0.0.1".parse().expect("ip")],
        1,
    )
    .expect("reissue");
    // The reloader polls every 50 ms: poll for the observable result, bounded by a generous deadline.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut rotated = false;
    while std::time::Instant::now() < deadline {
        let (cert, ok) = peer_cert(&s).await;
        if ok && cert != first {
            rotated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(rotated, "the new certificate was never served");
}

#[tokio::test]
async fn claims_are_off_unless_turned_on() {
    let s = start_full(Workers::Dedicated(1), Limits::default(), false).await;
    let r = reqwest::get(format!("{}/claims?host=a.avi.jarvis.lab", s.health))
        .await
        .expect("claims");
    assert_eq!(r.status().as_u16(), 404);
    let text = r.text().await.expect("text");
    assert!(text.contains("--expose-claims"), "{text}");
    for ok in ["/healthz", "/metrics"] {
        let r = reqwest::get(format!("{}{ok}", s.health))
            .await
            .expect("get");
        assert_eq!(r.status().as_u16(), 200, "{ok}");
    }
}

#[tokio::test]
async fn the_mutating_endpoint_allows_an_unreadable_object_unpatched() {
    let s = start().await;
    let c = client(&s.ca_pem);
    let mut r = review("CREATE", ingress("vmug", "x", "x.avi.jarvis.lab"));
    // Mutation reads the metadata and the class fields: make those unreadable.
    r["request"]["object"]["metadata"]["annotations"] = json!(["not", "a", "map"]);
    let body = serde_json::to_vec(&r).expect("json");
    let (status, v) = post(&c, &format!("{}/mutate", s.base), body.clone()).await;
    assert_eq!(status, 200);
    let resp = &v["response"];
    assert_eq!(resp["allowed"], true, "{v}");
    assert_eq!(resp["uid"], "3b7a9e0c-0000-4000-8000-000000000001");
    assert!(
        resp.get("patch").is_none() && resp.get("status").is_none(),
        "{v}"
    );
    // The validator still denies it, saying why.
    let (_, v) = post(&c, &format!("{}/validate", s.base), body).await;
    assert_eq!(v["response"]["allowed"], false, "{v}");
}

/// A TLS connection to the admission port that sends the headers of a POST announcing `content_length` bytes,
/// and `sent` bytes of body: a request that holds its slot while the server waits for the rest.
async fn partial_request(
    s: &Server,
    path: &str,
    content_length: usize,
    sent: usize,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut tls = tls_connect(s).await;
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {content_length}\r\n\r\n"
    );
    tls.write_all(head.as_bytes()).await.expect("write head");
    tls.write_all(&vec![b' '; sent]).await.expect("write body");
    tls.flush().await.expect("flush");
    tls
}

/// Reads one HTTP response from a raw connection: (status, body).
async fn read_response(
    tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
) -> (u16, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tls.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_string)
                })
                .and_then(|v| v.trim().parse::<usize>().ok());
            if len.is_some_and(|l| body.len() >= l) {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

async fn metrics(s: &Server) -> String {
    reqwest::get(format!("{}/metrics", s.health))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

/// Waits (bounded) until `n` admission requests hold a slot. Reads the gauge directly: `/metrics` also reads the
/// index, which a test may hold locked.
async fn wait_in_flight(s: &Server, n: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = s.metrics.in_flight.get();
        if now == n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never {n} in flight (now {now})"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn overloaded_status(body: &str) -> Value {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    assert_eq!(v["kind"], "Status", "{body}");
    assert_eq!(v["status"], "Failure", "{body}");
    assert_eq!(v["reason"], "ServiceUnavailable", "{body}");
    assert_eq!(v["code"], 503, "{body}");
    v
}

#[tokio::test]
async fn without_a_free_slot_or_past_the_deadline_a_review_gets_503_overloaded() {
    let limits = Limits {
        deadline: Duration::from_millis(300),
        max_in_flight: 1,
        max_large_in_flight: 1,
        ..Limits::default()
    };
    let s = start_full(Workers::Dedicated(1), limits, false).await;
    let c = client(&s.ca_pem);
    // Stall decisions: hold the index's write lock (as a long watch update would) until told to let go.
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let index = s.index.clone();
    let writer = std::thread::spawn(move || {
        index.write(|_| {
            let _ = locked_tx.send(());
            let _ = release_rx.recv();
        })
    });
    locked_rx.recv().expect("index locked");
    // A large review is decided off the listener thread; it cannot finish, so its answer misses the deadline,
    // and its decision keeps the only slot until it is done.
    let (status, v) = post(&c, &format!("{}/validate", s.base), large_review("big")).await;
    assert_eq!(status, 503, "{v}");
    let v = overloaded_status(&v.to_string());
    assert_eq!(
        v["message"],
        "ako admission webhook is overloaded: the review was not received and decided within its 300 ms deadline; retry shortly"
    );
    wait_in_flight(&s, 1).await;
    // Meanwhile a normal review gets no slot in time.
    let body = serde_json::to_vec(&review("CREATE", ingress("vmug", "a", "a.avi.jarvis.lab")))
        .expect("json");
    let r = c
        .post(format!("{}/validate", s.base))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let v = overloaded_status(&r.text().await.expect("body"));
    assert_eq!(
        v["message"],
        "ako admission webhook is overloaded: no free slot within its 300 ms deadline (at most 1 reviews at once, 1 of them large); retry shortly"
    );
    release_tx.send(()).expect("release");
    writer.join().expect("writer");
    wait_in_flight(&s, 0).await;
    // With the slot free again, reviews are answered.
    let (status, v) = post(&c, &format!("{}/validate", s.base), body).await;
    assert_eq!(status, 200);
    assert_eq!(v["response"]["allowed"], true);
    let m = metrics(&s).await;
    for line in [
        "ako_webhook_overloaded_requests_total{webhook=\"validate\",reason=\"no_slot\"} 1",
        "ako_webhook_overloaded_requests_total{webhook=\"validate\",reason=\"deadline\"} 1",
    ] {
        assert!(m.contains(line), "{line} not in\n{m}");
    }
}

#[tokio::test]
async fn a_slow_large_review_holds_only_the_large_slot_and_is_cut_at_its_deadline() {
    let limits = Limits {
        deadline: Duration::from_millis(400),
        max_in_flight: 8,
        max_large_in_flight: 1,
        ..Limits::default()
    };
    let s = start_full(Workers::Dedicated(1), limits, false).await;
    let c = client(&s.ca_pem);
    // A client announces a large review and sends a little of it.
    let mut holder = partial_request(&s, "/mutate", 2 * ako::webhook::LARGE_BODY, 1000).await;
    wait_in_flight(&s, 1).await;
    // Small reviews are answered meanwhile.
    for i in 0..3 {
        let small = serde_json::to_vec(&review(
            "CREATE",
            ingress("vmug", &format!("s{i}"), "s.avi.jarvis.lab"),
        ))
        .expect("json");
        let (status, v) = post(&c, &format!("{}/validate", s.base), small).await;
        assert_eq!(status, 200);
        assert_eq!(v["response"]["allowed"], true);
    }
    // The slow one is answered 503 at its deadline, and its slots are freed.
    let (status, text) = read_response(&mut holder).await;
    assert_eq!(status, 503, "{text}");
    overloaded_status(&text);
    wait_in_flight(&s, 0).await;
    // A large review is then decided (on the blocking pool) like any other.
    let (status, v) = post(&c, &format!("{}/validate", s.base), large_review("big")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["response"]["allowed"], true, "{v}");
    let m = metrics(&s).await;
    assert!(
        m.contains(
            "ako_webhook_overloaded_requests_total{webhook=\"mutate\",reason=\"deadline\"} 1"
        ),
        "{m}"
    );
}

/// A review of an Ingress padded with an annotation to more than `ako::webhook::LARGE_BODY` bytes.
fn large_review(name: &str) -> Vec<u8> {
    let mut ing = ingress("vmug", name, &format!("{name}.avi.jarvis.lab"));
    ing["metadata"]["annotations"]["example.com/padding"] =
        json!("x".repeat(ako::webhook::LARGE_BODY + 1));
    serde_json::to_vec(&review("CREATE", ing)).expect("json")
}

/// A TLS connection to the admission port, trusting the test CA.
async fn tls_connect(s: &Server) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    tls_handshake(s).await.expect("tls")
}

async fn tls_handshake(
    s: &Server,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in ako::certs::parse_certs(s.ca_pem.as_bytes(), std::path::Path::new("ca")).expect("ca") {
        roots.add(c).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let addr = s.base.trim_start_matches("https://").to_string();
    let tcp = tokio::net::TcpStream::connect(&addr).await?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    connector.connect(name, tcp).await
}

/// DER of the certificate the server presents, via a fresh TLS connection.
async fn peer_cert(s: &Server) -> (Vec<u8>, bool) {
    match tls_handshake(s).await {
        Ok(tls) => {
            let (_, conn) = tls.get_ref();
            let der = conn
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.to_vec())
                .unwrap_or_default();
            (der, true)
        }
        Err(_) => (Vec::new(), false),
    }
}

/// Audit lines as a process-wide subscriber sees them: (thread name, Ingress name, result).
type AuditSeen = Arc<parking_lot::Mutex<Vec<(String, String, String)>>>;

/// Installs (once per test process) a subscriber that records every audit line with the thread that wrote it.
fn audit_recorder() -> AuditSeen {
    use tracing_subscriber::layer::SubscriberExt;
    static SEEN: std::sync::OnceLock<AuditSeen> = std::sync::OnceLock::new();
    struct Record(AuditSeen);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Record {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            struct Fields(String, String);
            impl tracing::field::Visit for Fields {
                fn record_str(&mut self, f: &tracing::field::Field, v: &str) {
                    match f.name() {
                        "name" => self.0 = v.to_string(),
                        "result" => self.1 = v.to_string(),
                        _ => {}
                    }
                }
                fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
            }
            if event.metadata().target() != "audit" {
                return;
            }
            let mut f = Fields(String::new(), String::new());
            event.record(&mut f);
            let thread = std::thread::current().name().unwrap_or("").to_string();
            self.0.lock().push((thread, f.0, f.1));
        }
    }
    SEEN.get_or_init(|| {
        let seen = AuditSeen::default();
        let subscriber = tracing_subscriber::registry().with(Record(seen.clone()));
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        seen
    })
    .clone()
}

#[tokio::test]
async fn a_large_review_is_decided_on_the_idle_lane_but_logged_and_counted_by_the_listener() {
    // The idle-priority lane must never take the log's or the metrics' locks: preempted while holding one, it
    // would stall the listener (priority inversion). So its decision comes back to the listener to be recorded.
    let seen = audit_recorder();
    let s = start_with(Workers::Dedicated(1)).await;
    let c = client(&s.ca_pem);
    let (status, v) = post(
        &c,
        &format!("{}/validate", s.base),
        large_review("lane-big"),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["response"]["allowed"], true, "{v}");
    let lines: Vec<(String, String, String)> = seen
        .lock()
        .iter()
        .filter(|(_, name, _)| name == "lane-big")
        .cloned()
        .collect();
    assert_eq!(
        lines,
        vec![(
            "webhook-0".to_string(),
            "lane-big".to_string(),
            "allowed".to_string()
        )],
        "one audit line, written by the listener thread"
    );
    let m = metrics(&s).await;
    assert!(
        m.contains("ako_webhook_decisions_total{webhook=\"validate\",kind=\"Ingress\",result=\"allowed\"} 1"),
        "{m}"
    );
}

#[tokio::test]
async fn consecutive_large_reviews_of_falling_size_each_get_their_own_decision() {
    // A large review's body buffer is kept for the next large review: nothing of a longer body may remain in it.
    let s = start_with(Workers::Dedicated(1)).await;
    let c = client(&s.ca_pem);
    let padded = |name: &str, host: &str, pad: usize| {
        let mut ing = ingress("vmug", name, host);
        ing["metadata"]["annotations"]["example.com/padding"] = json!("x".repeat(pad));
        serde_json::to_vec(&review("CREATE", ing)).expect("json")
    };
    let url = format!("{}/validate", s.base);
    let big = ako::webhook::LARGE_BODY;
    for (name, host, pad, allowed) in [
        ("first", "first.avi.jarvis.lab", 4 * big, true),
        ("second", "second.example.com", 2 * big, false),
        ("third", "third.avi.jarvis.lab", big + 1, true),
    ] {
        let (status, v) = post(&c, &url, padded(name, host, pad)).await;
        assert_eq!(status, 200, "{name}: {v}");
        assert_eq!(v["response"]["allowed"], allowed, "{name}: {v}");
        if !allowed {
            let msg = v["response"]["status"]["message"]
                .as_str()
                .unwrap_or_default();
            assert!(msg.contains("second.example.com"), "{name}: {v}");
        }
    }
}

#[tokio::test]
async fn a_body_without_a_length_is_read_in_steps_and_cut_at_the_limit_with_413() {
    let s = start().await;
    // Chunked, so no Content-Length announces the size: the body is read as a large one, step by step, and
    // refused as soon as it passes 3 MiB.
    let mut tls = tls_connect(&s).await;
    let head = "POST /validate HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    tls.write_all(head.as_bytes()).await.expect("write head");
    let chunk = vec![b' '; 256 * 1024];
    for _ in 0..13 {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        if tls.write_all(&framed).await.is_err() {
            break; // the server may answer and close before everything is sent
        }
    }
    let _ = tls.write_all(b"0\r\n\r\n").await;
    let _ = tls.flush().await;
    let (status, text) = read_response(&mut tls).await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("exceeds"), "{text}");

    // A chunked review under the limit is decided like any other.
    let body = large_review("chunked-big");
    let mut tls = tls_connect(&s).await;
    tls.write_all(head.as_bytes()).await.expect("write head");
    for part in body.chunks(100 * 1024) {
        let framed = [format!("{:x}\r\n", part.len()).as_bytes(), part, b"\r\n"].concat();
        tls.write_all(&framed).await.expect("write chunk");
    }
    tls.write_all(b"0\r\n\r\n").await.expect("write end");
    tls.flush().await.expect("flush");
    let (status, text) = read_response(&mut tls).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"allowed\":true"), "{text}");
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_and_a_client_trickling_its_head_is_cut_off() {
    let limits = Limits {
        max_connections: 3,
        header_timeout: Duration::from_millis(600),
        ..Limits::default()
    };
    let s = start_full(Workers::Dedicated(1), limits, false).await;
    // Three clients connect and send nothing: they hold every place.
    let addr = s.base.trim_start_matches("https://").to_string();
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(
            tokio::net::TcpStream::connect(&addr)
                .await
                .expect("connect"),
        );
    }
    // The fourth gets no TLS handshake: its connection is closed.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        tls_handshake(&s).await.is_err(),
        "a connection over the cap is refused"
    );
    // Their TLS handshake has a deadline too: once it passes, their places are free again.
    let mut buf = [0u8; 1];
    for c in &mut idle {
        let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
            .await
            .expect("closed by the server within its deadline")
            .unwrap_or(0);
        assert_eq!(n, 0, "closed, not answered");
    }
    drop(idle);
    // A client that completes TLS and then trickles its request head is cut off at the header timeout.
    let mut slow = tls_connect(&s).await;
    slow.write_all(b"POST /validate HTTP/1.1\r\nhost: 127.0.0.1\r\n")
        .await
        .expect("write");
    slow.flush().await.expect("flush");
    let (status, _) = tokio::time::timeout(Duration::from_secs(5), read_response(&mut slow))
        .await
        .expect("the server ends it");
    assert_ne!(status, 200, "no answer to an incomplete head");
    // And ordinary reviews are served.
    let c = client(&s.ca_pem);
    let resp = c
        .post(format!("{}/validate", s.base))
        .json(&review(
            "CREATE",
            ingress("vmug", "ok", "ok.avi.jarvis.lab"),
        ))
        .send()
        .await
        .expect("served");
    assert_eq!(resp.status(), 200);
}
