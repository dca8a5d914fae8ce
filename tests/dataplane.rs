//! The emulator's data plane carries real requests through the objects ako's translations produce (written
//! through the REST API): routing by host and path as Avi evaluates the policies, TLS by SNI with the Secret's
//! certificate, passive failure detection, the L4 TCP proxy, and the loopback-only rule.

mod traffic;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use ako::core::index::ObjKey;
use ako::core::l4::{self, EndpointAddress, EndpointGroup, NodeInfo, ServiceInput};
use ako::core::l7::{self, L7Input, ShardSize, TlsPair};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use serde_json::{Value, json};
use traffic::{
    Backend, Lab, NODE_IP, apply, config, der_of, get_json, http_get, http_get_with, https_get,
    nodes, placement, start_lab, uuid_of, vip_of, wait_for,
};

fn backend_service(name: &str, node_port: u16) -> Service {
    serde_yaml_ng::from_str(&format!(
        "metadata: {{name: {name}, namespace: vmug}}\n\
         spec: {{type: NodePort, ports: [{{name: http, port: 80, targetPort: 8080, nodePort: {node_port}}}]}}"
    ))
    .expect("service")
}

fn ingress(yaml: &str) -> Ingress {
    serde_yaml_ng::from_str(yaml).expect("ingress")
}

/// Translates Ingresses the way the reconciler does (shared mode, one parent) and writes the objects.
async fn create_l7(
    lab: &Lab,
    ingresses: &[Ingress],
    services: &[Service],
    nodes: &[NodeInfo],
    secrets: &BTreeMap<ObjKey, Option<TlsPair>>,
) -> l7::L7Desired {
    create_l7_ruled(lab, ingresses, services, nodes, secrets, None).await
}

/// [`create_l7`] with HostRules and HTTPRules.
async fn create_l7_ruled(
    lab: &Lab,
    ingresses: &[Ingress],
    services: &[Service],
    nodes: &[NodeInfo],
    secrets: &BTreeMap<ObjKey, Option<TlsPair>>,
    rules: Option<&ako::core::crd::RuleSet>,
) -> l7::L7Desired {
    let refs: Vec<&Ingress> = ingresses.iter().collect();
    let inputs: Vec<ServiceInput<'_>> = services
        .iter()
        .map(|s| ServiceInput {
            service: s,
            endpoints: &[],
        })
        .collect();
    let input = L7Input {
        classes: None,
        namespace_infra: None,
        ingresses: &refs,
        services: &inputs,
        nodes,
        secrets,
        default_cert: None,
        part: None,
        rules,
    };
    let desired = l7::translate(&input, &config(), &placement(lab), ShardSize::Small);
    for o in &desired.outcomes {
        assert!(
            o.problems.is_empty(),
            "translation problems: {:?}",
            o.problems
        );
    }
    apply(&lab.client, &desired.objects).await;
    desired
}

async fn runtime(lab: &Lab) -> Value {
    let plane = lab.emu.dataplane().expect("data plane runs");
    plane.runtime()
}

/// The runtime entry of a virtual service by name.
fn vs_entry<'a>(rt: &'a Value, name: &str) -> &'a Value {
    rt["virtualservices"]
        .as_array()
        .and_then(|a| a.iter().find(|v| v["name"] == name))
        .unwrap_or_else(|| panic!("no runtime for {name}: {rt}"))
}

/// Waits until the data plane serves the configuration written so far and `vs` is up.
async fn wait_listening(lab: &Lab, vs: &str) {
    let generation = lab.emu.generation();
    wait_for(&format!("{vs} to be up"), || async {
        let plane = lab.emu.dataplane().expect("data plane runs");
        plane.generation() >= generation
            && runtime(lab).await["virtualservices"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|v| v["name"] == vs && v["oper_status"]["state"] == "OPER_UP")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_prefix_and_root_paths_on_several_hosts_reach_the_right_backend() {
    let lab = start_lab(100).await;
    let names = ["exact", "prefix", "deep", "root", "other"];
    let mut backends = Vec::new();
    for n in names {
        backends.push(Backend::start(n, NODE_IP).await);
    }
    let services: Vec<Service> = backends
        .iter()
        .map(|b| backend_service(&b.name, b.addr.port()))
        .collect();
    let ing = ingress(
        r#"
metadata: {name: routes, namespace: vmug}
spec:
  rules:
  - host: a.avi.jarvis.lab
    http:
      paths:
      - {path: /foo, pathType: Exact, backend: {service: {name: exact, port: {number: 80}}}}
      - {path: /foo, pathType: Prefix, backend: {service: {name: prefix, port: {number: 80}}}}
      - {path: /foo/bar, pathType: Prefix, backend: {service: {name: deep, port: {number: 80}}}}
      - {path: /, pathType: Prefix, backend: {service: {name: root, port: {number: 80}}}}
  - host: b.avi.jarvis.lab
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: other, port: {number: 80}}}}
"#,
    );
    create_l7(&lab, &[ing], &services, &nodes(), &BTreeMap::new()).await;
    let parent = l7::shared_vs_name("veba-of", 0);
    wait_listening(&lab, &parent).await;
    let vip = SocketAddr::new(vip_of(&lab.client, &parent).await, 80);

    let cases = [
        ("a.avi.jarvis.lab", "/foo", "exact"),
        ("a.avi.jarvis.lab", "/foo/", "prefix"),
        ("a.avi.jarvis.lab", "/foo/x", "prefix"),
        // Prefix /foo must not take /foobar: it falls through to /.
        ("a.avi.jarvis.lab", "/foobar", "root"),
        // The longest path wins.
        ("a.avi.jarvis.lab", "/foo/bar", "deep"),
        ("a.avi.jarvis.lab", "/foo/bar/baz", "deep"),
        ("a.avi.jarvis.lab", "/foo/barn", "prefix"),
        ("a.avi.jarvis.lab", "/", "root"),
        ("A.AVI.JARVIS.LAB:80", "/foo", "exact"),
        ("b.avi.jarvis.lab", "/foo", "other"),
        ("b.avi.jarvis.lab", "/", "other"),
    ];
    for (host, path, want) in cases {
        let a = http_get(vip, host, path).await.expect("request");
        assert_eq!(a.status, 200, "{host}{path}: {a:?}");
        assert_eq!(a.backend(), Some(want), "{host}{path}: {a:?}");
        assert!(a.body.contains(&format!("path={path} ")), "{a:?}");
        assert!(a.body.contains("xff=127.0.0.1 "), "X-Forwarded-For: {a:?}");
        assert!(a.body.contains("xfp=http"), "X-Forwarded-Proto: {a:?}");
    }
    // A host the policies do not know reaches no backend.
    let unknown = http_get(vip, "c.avi.jarvis.lab", "/")
        .await
        .expect("request");
    assert_eq!(unknown.backend(), None, "{unknown:?}");

    // Analytics count what went through.
    let uuid = uuid_of(&lab.client, "virtualservice", &parent).await;
    let m = get_json(
        &lab.client,
        &format!("/api/analytics/metrics/virtualservice/{uuid}"),
    )
    .await;
    assert_eq!(m["metrics"]["requests"], json!(cases.len() + 1), "{m}");
    assert_eq!(m["metrics"]["responses"]["2xx"], json!(cases.len()), "{m}");
    assert!(m["metrics"]["latency_ms"]["p99"].is_number(), "{m}");
    assert!(m["metrics"]["bytes_out"].as_u64().unwrap_or(0) > 0, "{m}");
}

fn tls_pair(ca: &ako::certs::GeneratedCa, host: &str) -> TlsPair {
    let leaf = ca.issue(&[host.to_string()], &[], 30).expect("leaf");
    TlsPair {
        cert_pem: leaf.cert_pem,
        key_pem: leaf.key_pem,
        problem: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_served_by_sni_with_each_secrets_certificate_and_http_redirects() {
    let lab = start_lab(100).await;
    let shop = Backend::start("shop", NODE_IP).await;
    let blog = Backend::start("blog", NODE_IP).await;
    let services = vec![
        backend_service("shop", shop.addr.port()),
        backend_service("blog", blog.addr.port()),
    ];
    let ca = ako::certs::generate_ca("traffic test CA", 30).expect("ca");
    let shop_pair = tls_pair(&ca, "shop.avi.jarvis.lab");
    let blog_pair = tls_pair(&ca, "blog.avi.jarvis.lab");
    let secrets = BTreeMap::from([
        (ObjKey::new("vmug", "shop-tls"), Some(shop_pair.clone())),
        (ObjKey::new("vmug", "blog-tls"), Some(blog_pair.clone())),
    ]);
    let ing = ingress(
        r#"
metadata: {name: secure, namespace: vmug}
spec:
  tls:
  - {hosts: [shop.avi.jarvis.lab], secretName: shop-tls}
  - {hosts: [blog.avi.jarvis.lab], secretName: blog-tls}
  rules:
  - host: shop.avi.jarvis.lab
    http: {paths: [{path: /cart, pathType: Prefix, backend: {service: {name: shop, port: {number: 80}}}}]}
  - host: blog.avi.jarvis.lab
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: blog, port: {number: 80}}}}]}
"#,
    );
    create_l7(&lab, &[ing], &services, &nodes(), &secrets).await;
    let parent = l7::shared_vs_name("veba-of", 0);
    wait_listening(&lab, &parent).await;
    let ip = vip_of(&lab.client, &parent).await;
    let https = SocketAddr::new(ip, 443);

    let (a, leaf) = https_get(https, "shop.avi.jarvis.lab", "/cart/1", &ca.cert_pem)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "https to shop: {e}: {}",
                lab.emu.dataplane().map(|p| p.runtime()).unwrap_or_default()
            )
        });
    assert_eq!(leaf, der_of(&shop_pair.cert_pem), "shop's certificate");
    assert_eq!(a.backend(), Some("shop"), "{a:?}");
    assert!(a.body.contains("xfp=https"), "{a:?}");
    let (b, leaf) = https_get(https, "blog.avi.jarvis.lab", "/post", &ca.cert_pem)
        .await
        .expect("https to blog");
    assert_eq!(leaf, der_of(&blog_pair.cert_pem), "blog's certificate");
    assert_eq!(b.backend(), Some("blog"), "{b:?}");
    // Prefix /cart does not take /cartoon on the SNI child either.
    let (c, _) = https_get(https, "shop.avi.jarvis.lab", "/cartoon", &ca.cert_pem)
        .await
        .expect("https");
    assert_eq!(c.backend(), None, "{c:?}");

    // Plain HTTP to a secure host is redirected to HTTPS, keeping path and query.
    let r = http_get(SocketAddr::new(ip, 80), "shop.avi.jarvis.lab", "/cart?x=1")
        .await
        .expect("http");
    assert_eq!(r.status, 302, "{r:?}");
    assert_eq!(
        r.location.as_deref(),
        Some("https://shop.avi.jarvis.lab/cart?x=1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_stops_is_taken_out_of_rotation_with_no_failed_request_after_detection() {
    let lab = start_lab(100).await;
    // One Service on two loopback nodes: two pool servers with the same nodePort.
    let first = Backend::start("n2", NODE_IP).await;
    let port = first.addr.port();
    let second = Backend::start_on("n3", SocketAddr::from(([127, 0, 0, 3], port))).await;
    let mut two_nodes = nodes();
    two_nodes.push(NodeInfo {
        name: "node-2".into(),
        internal_ip: Some([127, 0, 0, 3].into()),
        labels: Default::default(),
        ..Default::default()
    });
    let services = vec![backend_service("web", port)];
    let ing = ingress(
        r#"
metadata: {name: web, namespace: vmug}
spec:
  rules:
  - host: web.avi.jarvis.lab
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
"#,
    );
    create_l7(&lab, &[ing], &services, &two_nodes, &BTreeMap::new()).await;
    let parent = l7::shared_vs_name("veba-of", 0);
    wait_listening(&lab, &parent).await;
    let vip = SocketAddr::new(vip_of(&lab.client, &parent).await, 80);

    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..8 {
        let a = http_get(vip, "web.avi.jarvis.lab", "/")
            .await
            .expect("request");
        assert_eq!(a.status, 200, "{a:?}");
        seen.insert(a.backend().map(str::to_string));
    }
    assert_eq!(seen.len(), 2, "both servers take traffic: {seen:?}");

    second.stop().await;
    // Even the requests that find the server gone are answered by the other one.
    for _ in 0..8 {
        let a = http_get(vip, "web.avi.jarvis.lab", "/")
            .await
            .expect("request");
        assert_eq!((a.status, a.backend()), (200, Some("n2")), "{a:?}");
    }
    wait_for("127.0.0.3 to be shown down", || async {
        let rt = runtime(&lab).await;
        vs_entry(&rt, &parent)["pools"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|p| p["servers"].as_array().cloned().unwrap_or_default())
            .any(|s| s["ip"]["addr"] == "127.0.0.3" && s["oper_status"]["state"] == "OPER_DOWN")
    })
    .await;
    for _ in 0..20 {
        let a = http_get(vip, "web.avi.jarvis.lab", "/")
            .await
            .expect("request");
        assert_eq!((a.status, a.backend()), (200, Some("n2")), "{a:?}");
    }
    let rt = runtime(&lab).await;
    let reason = vs_entry(&rt, &parent)["pools"][0]["servers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["ip"]["addr"] == "127.0.0.3")
        .map(|s| s["oper_status"]["reason"][0].to_string())
        .unwrap_or_default();
    assert!(reason.contains("127.0.0.3"), "{reason}");

    // Back on its address, it is checked again and returns to rotation.
    let _again = Backend::start_on("n3", SocketAddr::from(([127, 0, 0, 3], port))).await;
    wait_for("127.0.0.3 to take traffic again", || async {
        let mut hit = false;
        for _ in 0..4 {
            if let Ok(a) = http_get(vip, "web.avi.jarvis.lab", "/").await {
                hit |= a.backend() == Some("n3");
            }
        }
        hit
    })
    .await;
}

fn lb_service(name: &str, node_port: u16) -> Service {
    serde_yaml_ng::from_str(&format!(
        "metadata: {{name: {name}, namespace: vmug}}\n\
         spec: {{type: LoadBalancer, ports: [{{name: http, port: 80, targetPort: 8080, nodePort: {node_port}}}]}}"
    ))
    .expect("service")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_l4_tcp_proxy_carries_a_loadbalancer_service_to_its_nodeport() {
    let lab = start_lab(100).await;
    let web = Backend::start("web", NODE_IP).await;
    let svc = lb_service("avisvc-lb", web.addr.port());
    let inputs = [ServiceInput {
        service: &svc,
        endpoints: &[],
    }];
    let desired = l4::translate(&inputs, &nodes(), &config(), &placement(&lab));
    apply(&lab.client, &desired.objects).await;
    let name = "veba-of--vmug-avisvc-lb";
    wait_listening(&lab, name).await;
    let vip = SocketAddr::new(vip_of(&lab.client, name).await, 80);
    for _ in 0..3 {
        let a = http_get(vip, "avisvc-lb.vmug.avi.jarvis.lab", "/")
            .await
            .expect("request through L4");
        assert_eq!((a.status, a.backend()), (200, Some("web")), "{a:?}");
        // L4: no HTTP headers are added.
        assert!(a.body.contains("xff=- "), "{a:?}");
    }
    let rt = runtime(&lab).await;
    let a = &vs_entry(&rt, name)["analytics"];
    assert!(a["connections"].as_u64().unwrap_or(0) >= 3, "{a}");
    assert!(a["bytes_out"].as_u64().unwrap_or(0) > 0, "{a}");

    // Disabled, the listener closes; enabled again, it serves.
    let uuid = uuid_of(&lab.client, "virtualservice", name).await;
    let path = format!("/api/virtualservice/{uuid}");
    lab.client
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(&json!({"replace": {"enabled": false}})),
        )
        .await
        .expect("disable");
    wait_for("the VIP to stop listening", || async {
        tokio::net::TcpStream::connect(vip).await.is_err()
    })
    .await;
    let rt = get_json(&lab.client, &format!("{path}/runtime")).await;
    assert_eq!(rt["oper_status"]["state"], "OPER_DISABLED", "{rt}");
    lab.client
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(&json!({"replace": {"enabled": true}})),
        )
        .await
        .expect("enable");
    wait_for("the VIP to serve again", || async {
        http_get(vip, "x", "/").await.is_ok_and(|a| a.status == 200)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_off_loopback_is_never_dialed_and_shown_down_with_the_reason() {
    let lab = start_lab(100).await;
    // ClusterIP mode: the pool member is a pod IP.
    let svc = lb_service("podnet", 30080);
    let endpoints = vec![EndpointGroup {
        ports: vec![(Some("http".into()), 8080, "TCP".into())],
        addresses: vec![EndpointAddress {
            ip: "10.244.0.5".parse().expect("ip"),
            ready: true,
            terminating: false,
        }],
    }];
    let inputs = [ServiceInput {
        service: &svc,
        endpoints: &endpoints,
    }];
    let mut place = placement(&lab);
    place.member_mode = l4::MemberMode::ClusterIp;
    let desired = l4::translate(&inputs, &nodes(), &config(), &place);
    apply(&lab.client, &desired.objects).await;
    let name = "veba-of--vmug-podnet";
    let vs = uuid_of(&lab.client, "virtualservice", name).await;
    wait_for("the runtime to show the pool down", || async {
        let rt = get_json(&lab.client, &format!("/api/virtualservice/{vs}/runtime")).await;
        rt["oper_status"]["state"] == "OPER_DOWN"
    })
    .await;
    let rt = get_json(&lab.client, &format!("/api/virtualservice/{vs}/runtime")).await;
    assert!(
        rt["oper_status"]["reason"]
            .to_string()
            .contains("no pool server is up"),
        "{rt}"
    );
    // A connection to the VIP is accepted and closed: nothing is dialed.
    let vip = SocketAddr::new(vip_of(&lab.client, name).await, 80);
    assert!(http_get(vip, "x", "/").await.is_err());
    let pool = uuid_of(&lab.client, "pool", "veba-of--vmug-podnet-TCP-80").await;
    let detail = get_json(&lab.client, &format!("/api/pool/{pool}/runtime/detail")).await;
    let server = &detail[0]["servers"][0];
    assert_eq!(server["ip"]["addr"], "10.244.0.5");
    assert_eq!(server["oper_status"]["state"], "OPER_DOWN");
    assert!(
        server["oper_status"]["reason"][0]
            .as_str()
            .is_some_and(|r| r.contains("not a loopback address") && r.contains("never connects")),
        "{server}"
    );
    assert_eq!(server["requests"], json!(0), "never chosen: {server}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vip_off_loopback_is_not_bound_and_the_runtime_says_why() {
    let lab = start_lab(100).await;
    let vsvip =
        json!({"name": "lab-vip", "vip": [{"ip_address": {"addr": "10.10.18.20", "type": "V4"}}]});
    lab.client
        .send(reqwest::Method::POST, "/api/vsvip", Some(&vsvip))
        .await
        .expect("vsvip");
    let vs = json!({"name": "lab-vs", "vsvip_ref": "/api/vsvip/?name=lab-vip",
        "services": [{"port": 80}]});
    lab.client
        .send(reqwest::Method::POST, "/api/virtualservice", Some(&vs))
        .await
        .expect("vs");
    let uuid = uuid_of(&lab.client, "virtualservice", "lab-vs").await;
    wait_for("the runtime to explain the VIP", || async {
        let rt = get_json(&lab.client, &format!("/api/virtualservice/{uuid}/runtime")).await;
        rt["oper_status"]["state"] == "OPER_DOWN"
            && rt["oper_status"]["reason"]
                .to_string()
                .contains("VIP 10.10.18.20 is not served")
    })
    .await;
    let rt = runtime(&lab).await;
    assert!(
        rt["listeners"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|l| !l["address"].as_str().unwrap_or_default().starts_with("10.")),
        "{rt}"
    );
}

/// An HTTPRule's pool settings as seen in traffic: two Nodes serve the NodePort, so the pool has two servers.
fn http_rule(yaml: &str) -> ako::core::crd::RuleSet {
    use ako::core::crd::{HttpRuleEntry, Lookup, RuleId, RuleSet, Verdict, judge_http_rules};
    let spec: Value = serde_yaml_ng::from_str(yaml).expect("spec");
    let mut entries = vec![HttpRuleEntry {
        id: RuleId {
            created: Some(1),
            key: ObjKey::new("vmug", "pools"),
        },
        spec: serde_json::from_value(spec).map_err(|e| e.to_string()),
        verdict: Verdict::Accepted,
    }];
    judge_http_rules(&mut entries, &|_, _| Lookup::Found);
    RuleSet::new(&[], &entries)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_rules_cookie_persistence_and_consistent_hash_are_seen_in_traffic() {
    let lab = start_lab(100).await;
    let one = Backend::start("node-a", NODE_IP).await;
    let port = one.addr.port();
    let two = Backend::start_on("node-b", SocketAddr::from(([127, 0, 0, 3], port))).await;
    let nodes = vec![
        NodeInfo {
            name: "node-a".into(),
            internal_ip: Some(std::net::IpAddr::from(NODE_IP)),
            ..Default::default()
        },
        NodeInfo {
            name: "node-b".into(),
            internal_ip: Some(std::net::IpAddr::from([127, 0, 0, 3])),
            ..Default::default()
        },
    ];
    let services = [backend_service("web", port)];
    let ing = ingress(
        r#"
metadata: {name: sticky, namespace: vmug}
spec:
  rules:
  - host: sticky.avi.jarvis.lab
    http:
      paths:
      - {path: /cart, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /hash, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /plain, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#,
    );
    let rules = http_rule(
        "fqdn: sticky.avi.jarvis.lab
paths:
- {target: /cart, loadBalancerPolicy: {algorithm: LB_ALGORITHM_ROUND_ROBIN}, applicationPersistence: System-Persistence-Http-Cookie}
- {target: /hash, loadBalancerPolicy: {algorithm: LB_ALGORITHM_CONSISTENT_HASH, hash: LB_ALGORITHM_CONSISTENT_HASH_SOURCE_IP_ADDRESS}}
- {target: /plain, loadBalancerPolicy: {algorithm: LB_ALGORITHM_ROUND_ROBIN}}",
    );
    create_l7_ruled(
        &lab,
        &[ing],
        &services,
        &nodes,
        &BTreeMap::new(),
        Some(&rules),
    )
    .await;
    let parent = l7::shared_vs_name("veba-of", 0);
    wait_listening(&lab, &parent).await;
    let vip = SocketAddr::new(vip_of(&lab.client, &parent).await, 80);
    let host = "sticky.avi.jarvis.lab";
    let backend = |a: &traffic::Answer| a.backend().unwrap_or_default().to_string();

    // Round robin alone alternates between the two Nodes.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let a = http_get(vip, host, "/plain").await.expect("request");
        assert_eq!(a.status, 200, "{a:?}");
        assert!(a.set_cookie.is_none());
        seen.insert(backend(&a));
    }
    assert_eq!(seen.len(), 2, "{seen:?}");

    // Cookie persistence: the first answer sets the cookie; with it every request stays on that server.
    let first = http_get(vip, host, "/cart").await.expect("request");
    let cookie = first
        .set_cookie
        .clone()
        .expect("Set-Cookie on the first answer");
    let pair = cookie.split(';').next().expect("name=value").to_string();
    for _ in 0..6 {
        let a = http_get_with(vip, host, "/cart", &[("cookie", &pair)])
            .await
            .expect("request");
        assert_eq!(backend(&a), backend(&first), "{a:?}");
        assert!(a.set_cookie.is_none());
    }

    // Consistent hash on the client address: one client, one server.
    let hashed = backend(&http_get(vip, host, "/hash").await.expect("request"));
    for _ in 0..6 {
        assert_eq!(
            backend(&http_get(vip, host, "/hash").await.expect("request")),
            hashed
        );
    }
    drop((one, two));
}

/// A TLS server configuration for a backend, with a certificate for `host` issued by `ca`.
fn backend_tls(ca: &ako::certs::GeneratedCa, host: &str) -> std::sync::Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let leaf = ca.issue(&[host.into()], &[], 30).expect("leaf");
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .expect("certificate");
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server config");
    std::sync::Arc::new(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_rule_re_encrypts_to_a_tls_backend_checked_with_its_destination_ca() {
    let lab = start_lab(110).await;
    let ca = ako::certs::generate_ca("backend CA", 30).expect("ca");
    let host = "secure.avi.jarvis.lab";
    let tls = Backend::start_tls(
        "tls-node",
        SocketAddr::from((NODE_IP, 0)),
        backend_tls(&ca, host),
    )
    .await;
    let port = tls.addr.port();
    let nodes = vec![NodeInfo {
        name: "tls-node".into(),
        internal_ip: Some(std::net::IpAddr::from(NODE_IP)),
        ..Default::default()
    }];
    let services = [backend_service("web", port)];
    let ing = ingress(&format!(
        r#"
metadata: {{name: secure, namespace: vmug}}
spec:
  rules:
  - host: {host}
    http:
      paths:
      - {{path: /ok, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}
      - {{path: /wrong-ca, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}
"#
    ));
    let indent = |pem: &str| {
        pem.lines()
            .map(|l| format!("      {l}\n"))
            .collect::<String>()
    };
    let other_ca = ako::certs::generate_ca("another CA", 30).expect("ca");
    let rules = http_rule(&format!(
        "fqdn: {host}\npaths:\n- target: /ok\n  tls:\n    type: reencrypt\n    destinationCA: |\n{}- target: /wrong-ca\n  tls:\n    type: reencrypt\n    destinationCA: |\n{}",
        indent(&ca.cert_pem),
        indent(&other_ca.cert_pem)
    ));
    create_l7_ruled(
        &lab,
        &[ing],
        &services,
        &nodes,
        &BTreeMap::new(),
        Some(&rules),
    )
    .await;
    let parent = l7::shared_vs_name("veba-of", 0);
    wait_listening(&lab, &parent).await;
    let vip = SocketAddr::new(vip_of(&lab.client, &parent).await, 80);
    // Plain HTTP from the client, TLS to the server: the server saw the request over TLS with the host as SNI,
    // its certificate checked against the HTTPRule's CA.
    let a = http_get(vip, host, "/ok").await.expect("request");
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.body.contains(&format!("sni={host}")), "{a:?}");
    // A server whose certificate the pool's CA did not issue is not trusted: no answer from it.
    let a = http_get(vip, host, "/wrong-ca").await.expect("request");
    assert_ne!(a.status, 200, "{a:?}");
    assert!(!a.body.contains("backend=tls-node"), "{a:?}");
}
