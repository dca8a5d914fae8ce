//! The analytics page in a real headless browser (Debian's Chromium): it lists the virtual service with its
//! state, VIP, FQDN, pool member and request numbers, and its screenshot is a rendered page, not a blank one.

mod traffic;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use ako::core::l7::{self, L7Input, ShardSize};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use traffic::{
    Backend, NODE_IP, apply, config, http_get, nodes, placement, start_lab, vip_of, wait_for,
};

/// Runs Chromium headless with a fresh profile; returns stdout.
async fn chromium(profile: &Path, args: Vec<String>) -> String {
    let mut all = vec![
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--ignore-certificate-errors".into(),
        format!("--user-data-dir={}", profile.display()),
    ];
    all.extend(args);
    let home = profile.to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("chromium")
            .args(&all)
            .env("HOME", &home)
            .output()
            .expect("chromium runs (scripts/install-tools.sh installs it)")
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG file");
    assert_eq!(&png[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&png[16..20]), be(&png[20..24]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_analytics_page_shows_the_virtual_service_and_renders_in_chromium() {
    let lab = start_lab(100).await;
    let web = Backend::start("web", NODE_IP).await;
    let svc: Service = serde_yaml_ng::from_str(&format!(
        "metadata: {{name: web, namespace: vmug}}\n\
         spec: {{type: NodePort, ports: [{{name: http, port: 80, nodePort: {}}}]}}",
        web.addr.port()
    ))
    .expect("service");
    let ing: Ingress = serde_yaml_ng::from_str(
        r#"
metadata: {name: hackazon, namespace: vmug}
spec:
  rules:
  - host: hackazon.avi.jarvis.lab
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
"#,
    )
    .expect("ingress");
    let ingresses = [&ing];
    let services = [ako::core::l4::ServiceInput {
        service: &svc,
        endpoints: &[],
    }];
    let node_list = nodes();
    let secrets = BTreeMap::new();
    let input = L7Input {
        classes: None,
        namespace_infra: None,
        ingresses: &ingresses,
        services: &services,
        nodes: &node_list,
        secrets: &secrets,
        default_cert: None,
        part: None,
        rules: None,
    };
    let desired = l7::translate(&input, &config(), &placement(&lab), ShardSize::Small);
    apply(&lab.client, &desired.objects).await;
    let parent = l7::shared_vs_name("veba-of", 0);
    let vip = SocketAddr::new(vip_of(&lab.client, &parent).await, 80);
    wait_for("the VIP to answer", || async {
        http_get(vip, "hackazon.avi.jarvis.lab", "/")
            .await
            .is_ok_and(|a| a.status == 200)
    })
    .await;
    for _ in 0..9 {
        let a = http_get(vip, "hackazon.avi.jarvis.lab", "/")
            .await
            .expect("request");
        assert_eq!(a.status, 200);
    }

    let url = format!("{}/admin/analytics", lab.emu.base_url());
    let dir = tempfile::tempdir().expect("tempdir");
    let dom = chromium(
        &dir.path().join("p1"),
        vec!["--dump-dom".into(), url.clone()],
    )
    .await;
    assert!(dom.contains(&parent), "{dom}");
    assert!(dom.contains("OPER_UP"), "{dom}");
    assert!(dom.contains("hackazon.avi.jarvis.lab"), "{dom}");
    assert!(dom.contains(&format!("{}:80/TCP", vip.ip())), "{dom}");
    assert!(
        dom.contains(&format!("127.0.0.2:{}", web.addr.port())),
        "pool member: {dom}"
    );
    assert!(
        dom.contains(r#"<td class="n">10</td>"#),
        "10 requests: {dom}"
    );

    let shot = dir.path().join("page.png");
    chromium(
        &dir.path().join("p2"),
        vec![
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,720".into(),
            "--hide-scrollbars".into(),
            url,
        ],
    )
    .await;
    let blank = dir.path().join("blank.png");
    chromium(
        &dir.path().join("p3"),
        vec![
            format!("--screenshot={}", blank.display()),
            "--window-size=1280,720".into(),
            "--hide-scrollbars".into(),
            "data:text/html,<html><body></body></html>".into(),
        ],
    )
    .await;
    let page = std::fs::read(&shot).expect("screenshot written");
    let empty = std::fs::read(&blank).expect("blank screenshot written");
    assert_eq!(png_size(&page), (1280, 720));
    assert!(
        page.len() > 2 * empty.len(),
        "the page renders content: {} bytes vs {} for a blank page",
        page.len(),
        empty.len()
    );
}
