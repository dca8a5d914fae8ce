//! The emulator's Avi DNS answered by a real resolver (`dig`, over UDP and TCP): records of enabled virtual
//! services with their TTL, NXDOMAIN inside the DNS profile's domain, REFUSED outside, SOA and NS at the apex,
//! and records following the virtual services live.

mod traffic;

use std::net::SocketAddr;

use ako::core::l4;
use k8s_openapi::api::core::v1::Service;
use serde_json::json;
use traffic::{Lab, apply, config, nodes, placement, start_lab, uuid_of, vip_of, wait_for};

/// What `dig` printed: the status and the answer records as (ttl, type, data).
#[derive(Debug)]
struct Dig {
    status: String,
    authoritative: bool,
    answers: Vec<(u32, String, String)>,
    authority: Vec<String>,
}

async fn dig(server: SocketAddr, name: &str, qtype: &str, tcp: bool) -> Dig {
    let mut args = vec![
        format!("@{}", server.ip()),
        "-p".into(),
        server.port().to_string(),
        name.into(),
        qtype.into(),
        "+norecurse".into(),
        "+noall".into(),
        "+comments".into(),
        "+answer".into(),
        "+authority".into(),
        "+time=2".into(),
        "+tries=2".into(),
    ];
    if tcp {
        args.push("+tcp".into());
    }
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("dig")
            .args(&args)
            .output()
            .expect("dig runs (scripts/install-tools.sh installs bind9-dnsutils)")
    })
    .await
    .expect("join");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = text
        .split("status: ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or_else(|| panic!("no status in dig output:\n{text}"))
        .to_string();
    let authoritative = text
        .lines()
        .find(|l| l.contains(";; flags:"))
        .is_some_and(|l| l.contains(" aa"));
    let mut answers = Vec::new();
    let mut authority = Vec::new();
    let mut section = "";
    for line in text.lines() {
        if line.starts_with(";; ANSWER SECTION") {
            section = "answer";
            continue;
        }
        if line.starts_with(";; AUTHORITY SECTION") {
            section = "authority";
            continue;
        }
        if line.starts_with(';') || line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        match (section, f.as_slice()) {
            ("answer", [_, ttl, _, t, data @ ..]) => {
                answers.push((ttl.parse().expect("ttl"), (*t).to_string(), data.join(" ")))
            }
            ("authority", [_, _, _, t, ..]) => authority.push((*t).to_string()),
            _ => {}
        }
    }
    Dig {
        status,
        authoritative,
        answers,
        authority,
    }
}

fn service(name: &str) -> Service {
    serde_yaml_ng::from_str(&format!(
        "metadata: {{name: {name}, namespace: vmug}}\n\
         spec: {{type: LoadBalancer, ports: [{{name: http, port: 80, targetPort: 8080, nodePort: 30080}}]}}"
    ))
    .expect("service")
}

/// Creates the L4 objects ako produces for Service `name` in namespace vmug.
async fn create_l4(lab: &Lab, name: &str) {
    let svc = service(name);
    let inputs = [l4::ServiceInput {
        service: &svc,
        endpoints: &[],
    }];
    let desired = l4::translate(&inputs, &nodes(), &config(), &placement(lab));
    assert!(!desired.objects.is_empty(), "{:?}", desired.outcomes);
    apply(&lab.client, &desired.objects).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_resolves_the_autofqdn_of_a_service_to_its_vip_over_udp_and_tcp() {
    let lab = start_lab(200).await;
    let dns = lab.emu.dns_addr().expect("dns runs");
    create_l4(&lab, "avisvc-lb").await;
    let vip = vip_of(&lab.client, "veba-of--vmug-avisvc-lb").await;
    for tcp in [false, true] {
        let d = dig(dns, "avisvc-lb.vmug.avi.jarvis.lab", "A", tcp).await;
        assert_eq!(d.status, "NOERROR", "tcp={tcp} {d:?}");
        assert!(d.authoritative, "{d:?}");
        assert_eq!(
            d.answers,
            vec![(30, "A".to_string(), vip.to_string())],
            "tcp={tcp}: the profile's TTL 30 and the VIP"
        );
    }
    // Names are case-insensitive.
    let d = dig(dns, "AviSvc-LB.VMUG.avi.jarvis.lab", "A", false).await;
    assert_eq!(d.answers.len(), 1, "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_names_are_nxdomain_inside_the_domain_and_refused_outside() {
    let lab = start_lab(200).await;
    let dns = lab.emu.dns_addr().expect("dns runs");
    for tcp in [false, true] {
        let nx = dig(dns, "nothing-here.avi.jarvis.lab", "A", tcp).await;
        assert_eq!(nx.status, "NXDOMAIN", "{nx:?}");
        assert_eq!(nx.authority, vec!["SOA".to_string()], "{nx:?}");
        let out = dig(dns, "www.example.com", "A", tcp).await;
        assert_eq!(out.status, "REFUSED", "{out:?}");
        let lookalike = dig(dns, "evilavi.jarvis.lab", "A", tcp).await;
        assert_eq!(lookalike.status, "REFUSED", "{lookalike:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_domain_apex_has_soa_and_ns_for_delegation() {
    let lab = start_lab(200).await;
    let dns = lab.emu.dns_addr().expect("dns runs");
    let soa = dig(dns, "avi.jarvis.lab", "SOA", false).await;
    assert_eq!(soa.status, "NOERROR");
    assert_eq!(soa.answers.len(), 1, "{soa:?}");
    assert_eq!(soa.answers[0].1, "SOA");
    assert!(
        soa.answers[0]
            .2
            .starts_with("ns1.avi.jarvis.lab. hostmaster.avi.jarvis.lab."),
        "{soa:?}"
    );
    let ns = dig(dns, "avi.jarvis.lab", "NS", true).await;
    assert_eq!(ns.answers[0].1, "NS");
    assert_eq!(ns.answers[0].2, "ns1.avi.jarvis.lab.");
    let glue = dig(dns, "ns1.avi.jarvis.lab", "A", false).await;
    assert_eq!(glue.answers[0].2, dns.ip().to_string(), "{glue:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_follow_the_virtual_service_live_with_the_ttl_of_dns_info() {
    let lab = start_lab(200).await;
    let dns = lab.emu.dns_addr().expect("dns runs");
    // A VsVip with its own TTL, used by a virtual service.
    let vsvip = json!({"name": "ttl-vip", "vip": [{"auto_allocate_ip": true,
        "ipam_network_subnet": {"network_ref": "/api/network/?name=dpg-sedatapath-18"}}],
        "dns_info": [{"fqdn": "ttl.avi.jarvis.lab", "ttl": 45}]});
    lab.client
        .send(reqwest::Method::POST, "/api/vsvip", Some(&vsvip))
        .await
        .expect("vsvip");
    let vs = json!({"name": "ttl-vs", "vsvip_ref": "/api/vsvip/?name=ttl-vip",
        "application_profile_ref": "/api/applicationprofile/?name=System-L4-Application",
        "services": [{"port": 9}]});
    lab.client
        .send(reqwest::Method::POST, "/api/virtualservice", Some(&vs))
        .await
        .expect("vs");
    let vip = vip_of(&lab.client, "ttl-vip").await;
    let d = dig(dns, "ttl.avi.jarvis.lab", "A", false).await;
    assert_eq!(d.answers, vec![(45, "A".to_string(), vip.to_string())]);

    // Disabled: the record goes away; enabled again: it comes back; deleted: gone.
    let uuid = uuid_of(&lab.client, "virtualservice", "ttl-vs").await;
    let path = format!("/api/virtualservice/{uuid}");
    lab.client
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(&json!({"replace": {"enabled": false}})),
        )
        .await
        .expect("disable");
    wait_for("the record of a disabled VS to go", || async {
        dig(dns, "ttl.avi.jarvis.lab", "A", false).await.status == "NXDOMAIN"
    })
    .await;
    lab.client
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(&json!({"replace": {"enabled": true}})),
        )
        .await
        .expect("enable");
    wait_for("the record to come back", || async {
        dig(dns, "ttl.avi.jarvis.lab", "A", true)
            .await
            .answers
            .len()
            == 1
    })
    .await;
    lab.client
        .send(reqwest::Method::DELETE, &path, None)
        .await
        .expect("delete");
    wait_for("the record of a deleted VS to go", || async {
        dig(dns, "ttl.avi.jarvis.lab", "A", false).await.status == "NXDOMAIN"
    })
    .await;
    // A VsVip no virtual service uses publishes nothing.
    let d = dig(dns, "ttl.avi.jarvis.lab", "A", true).await;
    assert_eq!(d.status, "NXDOMAIN");
}
