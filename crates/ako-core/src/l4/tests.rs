//! Tests of `l4`.

use super::*;
use crate::intent::Severity;
use k8s_openapi::api::core::v1::Node;

/// [`super::translate`], with every body it builds checked against the controller's schema.
fn translate(
    services: &[ServiceInput<'_>],
    nodes: &[NodeInfo],
    cfg: &Config,
    place: &Placement,
) -> L4Desired {
    let d = super::translate(services, nodes, cfg, place);
    crate::schema_check::assert_valid(&d.objects);
    d
}

fn cfg() -> Config {
    Config {
        cluster_name: "veba-of".into(),
        dns_domains: vec!["avi.jarvis.lab".into()],
        ..Config::default()
    }
}

fn place(mode: MemberMode) -> Placement {
    Placement {
        rhi: Default::default(),
        cluster_name: "veba-of".into(),
        tenant: "admin".into(),
        cloud: "Default-Cloud".into(),
        se_group: "vmug-se-group".into(),
        vrf: "global".into(),
        vip_network: Some(("dpg-sedatapath-18".into(), "10.10.18.0/26".parse().ok())),
        member_mode: mode,
        license_tier: Default::default(),
        vip_family: Default::default(),
    }
}

fn svc(yaml: &str) -> Service {
    serde_yaml_ng::from_str(yaml).expect("service yaml")
}

const DEMO: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: avisvc-lb, namespace: vmug, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: web, protocol: TCP, nodePort: 30080}
"#;

fn slice(ports: &[(Option<&str>, u16)], addrs: &[(&str, bool, bool)]) -> EndpointGroup {
    EndpointGroup {
        ports: ports
            .iter()
            .map(|(n, p)| (n.map(String::from), *p, "TCP".to_string()))
            .collect(),
        addresses: addrs
            .iter()
            .map(|(ip, ready, terminating)| EndpointAddress {
                ip: ip.parse().expect("ip"),
                ready: *ready,
                terminating: *terminating,
            })
            .collect(),
    }
}

fn find<'a>(d: &'a L4Desired, kind: Kind, name: &str) -> &'a Map<String, Value> {
    &d.objects
        .iter()
        .find(|o| o.kind == kind && o.name == name)
        .unwrap_or_else(|| {
            panic!(
                "no {kind:?} {name} in {:?}",
                d.objects.iter().map(|o| &o.name).collect::<Vec<_>>()
            )
        })
        .body
}

#[test]
fn seed_demo_service_becomes_vsvip_pool_policy_and_virtual_service() {
    let s = svc(DEMO);
    let eps = [slice(
        &[(Some("http"), 8080)],
        &[("10.244.0.5", true, false), ("10.244.0.6", false, false)],
    )];
    let d = translate(
        &[ServiceInput {
            service: &s,
            endpoints: &eps,
        }],
        &[],
        &cfg(),
        &place(MemberMode::ClusterIp),
    );
    let names: Vec<(Kind, &str)> = d
        .objects
        .iter()
        .map(|o| (o.kind, o.name.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            (Kind::Pool, "veba-of--vmug-avisvc-lb-TCP-80"),
            (Kind::VsVip, "veba-of--vmug-avisvc-lb"),
            (Kind::L4PolicySet, "veba-of--vmug-avisvc-lb"),
            (Kind::VirtualService, "veba-of--vmug-avisvc-lb"),
        ]
    );
    let vsvip = find(&d, Kind::VsVip, "veba-of--vmug-avisvc-lb");
    assert_eq!(
        vsvip["dns_info"],
        json!([{"fqdn": "avisvc-lb.vmug.avi.jarvis.lab"}])
    );
    assert_eq!(
        vsvip["vip"][0]["ipam_network_subnet"]["network_ref"],
        json!("/api/network/?name=dpg-sedatapath-18")
    );
    assert_eq!(
        vsvip["vip"][0]["ipam_network_subnet"]["subnet"]["mask"],
        json!(26)
    );
    assert!(
        vsvip.get("created_by").is_none(),
        "a VsVip has no created_by: its name and clustername marker make it ako's"
    );
    assert_eq!(
        vsvip["markers"][0],
        json!({"key": "clustername", "values": ["veba-of"]})
    );
    let pool = find(&d, Kind::Pool, "veba-of--vmug-avisvc-lb-TCP-80");
    assert_eq!(
        pool["servers"],
        json!([{"ip": {"addr": "10.244.0.5", "type": "V4"}, "port": 8080, "enabled": true}])
    );
    let vs = find(&d, Kind::VirtualService, "veba-of--vmug-avisvc-lb");
    assert_eq!(vs["services"], json!([{"port": 80, "enable_ssl": false}]));
    assert_eq!(
        vs["application_profile_ref"],
        json!("/api/applicationprofile/?name=System-L4-Application")
    );
    assert_eq!(
        vs["network_profile_ref"],
        json!("/api/networkprofile/?name=System-TCP-Proxy")
    );
    assert_eq!(
        vs["se_group_ref"],
        json!("/api/serviceenginegroup/?name=vmug-se-group")
    );
    assert!(
        vs["markers"]
            .as_array()
            .is_some_and(|m| m.contains(&marker("ServiceName", "avisvc-lb")))
    );
    assert_eq!(d.outcomes.len(), 1);
    assert_eq!(
        d.outcomes[0].vs_name.as_deref(),
        Some("veba-of--vmug-avisvc-lb")
    );
    assert!(
        d.outcomes[0].problems.is_empty(),
        "{:?}",
        d.outcomes[0].problems
    );
}

#[test]
fn members_table() {
    let named: ServicePort = serde_json::from_value(
        json!({"name": "http", "port": 80, "targetPort": "web", "nodePort": 30080}),
    )
    .expect("port");
    let unnamed: ServicePort =
        serde_json::from_value(json!({"port": 53, "protocol": "UDP"})).expect("port");
    let nodes = vec![
        NodeInfo {
            name: "n1".into(),
            internal_ip: "127.0.0.2".parse().ok(),
            labels: BTreeMap::from([("lb".into(), "yes".into())]),
            ..Default::default()
        },
        NodeInfo {
            name: "n2".into(),
            internal_ip: "127.0.0.3".parse().ok(),
            labels: BTreeMap::new(),
            ..Default::default()
        },
        NodeInfo {
            name: "n3".into(),
            internal_ip: None,
            labels: BTreeMap::new(),
            ..Default::default()
        },
    ];
    let two_ports = slice(
        &[(Some("metrics"), 9090), (Some("http"), 8080)],
        &[("10.244.0.5", true, false)],
    );
    let terminating = slice(
        &[(Some("http"), 8080)],
        &[("10.244.0.7", true, true), ("10.244.0.5", true, false)],
    );
    let dup = slice(&[(Some("http"), 8080)], &[("10.244.0.5", true, false)]);
    let udp = EndpointGroup {
        ports: vec![(None, 5353, "UDP".into())],
        addresses: dup.addresses.clone(),
    };
    type Case<'a> = (
        &'a str,
        &'a ServicePort,
        Vec<EndpointGroup>,
        MemberMode,
        Result<Vec<(&'a str, u16)>, ()>,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "port chosen by name among several",
            &named,
            vec![two_ports],
            MemberMode::ClusterIp,
            Ok(vec![("10.244.0.5", 8080)]),
        ),
        (
            "terminating left out, duplicates merged",
            &named,
            vec![terminating, dup.clone()],
            MemberMode::ClusterIp,
            Ok(vec![("10.244.0.5", 8080)]),
        ),
        (
            "unnamed single port, protocol must match",
            &unnamed,
            vec![udp, dup.clone()],
            MemberMode::ClusterIp,
            Ok(vec![("10.244.0.5", 5353)]),
        ),
        (
            "no endpoints yet",
            &named,
            vec![],
            MemberMode::ClusterIp,
            Ok(vec![]),
        ),
        (
            "node port on every node with an address",
            &named,
            vec![],
            MemberMode::NodePort { selector: None },
            Ok(vec![("127.0.0.2", 30080), ("127.0.0.3", 30080)]),
        ),
        (
            "node selector",
            &named,
            vec![],
            MemberMode::NodePort {
                selector: Some(("lb".into(), "yes".into())),
            },
            Ok(vec![("127.0.0.2", 30080)]),
        ),
        (
            "no nodePort allocated",
            &unnamed,
            vec![],
            MemberMode::NodePort { selector: None },
            Err(()),
        ),
    ];
    for (name, port, eps, mode, want) in cases {
        let got = members(port, &eps, &nodes, &mode).map_err(|_| ());
        let want = want.map(|v| {
            v.into_iter()
                .map(|(ip, p)| (ip.parse::<IpAddr>().expect("ip"), p))
                .collect::<Vec<_>>()
        });
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn mixed_protocols_override_the_network_profile_per_port() {
    let s = svc(r#"
metadata: {name: dns, namespace: vmug}
spec:
  type: LoadBalancer
  ports: [{name: udp, port: 53, protocol: UDP}, {name: tcp, port: 53, protocol: TCP}]
"#);
    let d = translate(
        &[ServiceInput {
            service: &s,
            endpoints: &[],
        }],
        &[],
        &cfg(),
        &place(MemberMode::ClusterIp),
    );
    let vs = find(&d, Kind::VirtualService, "veba-of--vmug-dns");
    assert_eq!(
        vs["network_profile_ref"],
        json!("/api/networkprofile/?name=System-TCP-Proxy")
    );
    assert_eq!(
        vs["services"],
        json!([{"port": 53, "enable_ssl": false}, {"port": 53, "enable_ssl": false, "override_network_profile_ref": "/api/networkprofile/?name=System-UDP-Fast-Path"}])
    );
    let rules = &find(&d, Kind::L4PolicySet, "veba-of--vmug-dns")["l4_connection_policy"]["rules"];
    assert_eq!(rules.as_array().map(Vec::len), Some(2));
    assert_eq!(
        rules[0]["action"]["select_pool"]["pool_ref"],
        json!("/api/pool/?name=veba-of--vmug-dns-UDP-53")
    );
    find(&d, Kind::Pool, "veba-of--vmug-dns-UDP-53");
}

#[test]
fn shared_vip_group_is_one_virtual_service_and_conflicts_are_reported() {
    let a = svc(r#"
metadata: {name: a, namespace: vmug, creationTimestamp: "2026-01-01T00:00:00Z", annotations: {ako.vmware.com/enable-shared-vip: web, ako.vmware.com/load-balancer-ip: 10.10.18.20}}
spec: {type: LoadBalancer, ports: [{port: 80}]}
"#);
    let b = svc(r#"
metadata: {name: b, namespace: vmug, creationTimestamp: "2026-01-02T00:00:00Z", annotations: {ako.vmware.com/enable-shared-vip: web}}
spec: {type: LoadBalancer, ports: [{port: 443}]}
"#);
    let clash = svc(r#"
metadata: {name: c, namespace: vmug, creationTimestamp: "2026-01-03T00:00:00Z", annotations: {ako.vmware.com/enable-shared-vip: web}}
spec: {type: LoadBalancer, ports: [{port: 80}]}
"#);
    let other_ip = svc(r#"
metadata: {name: d, namespace: vmug, creationTimestamp: "2026-01-04T00:00:00Z", annotations: {ako.vmware.com/enable-shared-vip: web, ako.vmware.com/load-balancer-ip: 10.10.18.21}}
spec: {type: LoadBalancer, ports: [{port: 8080}]}
"#);
    let inputs: Vec<ServiceInput<'_>> = [&clash, &b, &other_ip, &a]
        .iter()
        .map(|s| ServiceInput {
            service: s,
            endpoints: &[],
        })
        .collect();
    let d = translate(&inputs, &[], &cfg(), &place(MemberMode::ClusterIp));
    let vs = find(&d, Kind::VirtualService, "veba-of--vmug-web");
    assert_eq!(
        vs["services"],
        json!([{"port": 80, "enable_ssl": false}, {"port": 443, "enable_ssl": false}])
    );
    let vsvip = find(&d, Kind::VsVip, "veba-of--vmug-web");
    assert_eq!(
        vsvip["vip"][0]["ip_address"],
        json!({"addr": "10.10.18.20", "type": "V4"})
    );
    assert_eq!(
        vsvip["dns_info"],
        json!([{"fqdn": "a.vmug.avi.jarvis.lab"}, {"fqdn": "b.vmug.avi.jarvis.lab"}])
    );
    let outcome = |n: &str| {
        d.outcomes
            .iter()
            .find(|o| o.key.name == n)
            .expect("outcome")
    };
    assert_eq!(outcome("a").vs_name.as_deref(), Some("veba-of--vmug-web"));
    assert_eq!(outcome("b").vs_name.as_deref(), Some("veba-of--vmug-web"));
    // AKO's shared-VIP pool names: <cluster>--<ns>-<svc>-<key>-<PROTO>-<port>.
    let mut pools: Vec<&str> = d
        .objects
        .iter()
        .filter(|o| o.kind == Kind::Pool)
        .map(|o| o.name.as_str())
        .collect();
    pools.sort_unstable();
    assert_eq!(
        pools,
        ["veba-of--vmug-a-web-TCP-80", "veba-of--vmug-b-web-TCP-443"]
    );
    assert_eq!(outcome("c").vs_name, None);
    assert!(
        outcome("c").problems[0]
            .message
            .contains("port 80/TCP is already served on the shared VIP by Service vmug/a"),
        "{:?}",
        outcome("c").problems
    );
    assert_eq!(outcome("d").vs_name, None);
    assert!(
        outcome("d").problems[0]
            .message
            .contains("asks for 10.10.18.21 where it uses 10.10.18.20"),
        "{:?}",
        outcome("d").problems
    );
}

#[test]
fn services_not_of_ako_or_denied_get_no_objects() {
    let cluster_ip =
        svc("metadata: {name: x, namespace: vmug}\nspec: {type: ClusterIP, ports: [{port: 80}]}");
    let outside = svc(r#"
metadata: {name: y, namespace: vmug, annotations: {external-dns.alpha.kubernetes.io/hostname: y.example.com}}
spec: {type: LoadBalancer, ports: [{port: 80}]}
"#);
    let inputs = [
        ServiceInput {
            service: &cluster_ip,
            endpoints: &[],
        },
        ServiceInput {
            service: &outside,
            endpoints: &[],
        },
    ];
    let d = translate(&inputs, &[], &cfg(), &place(MemberMode::ClusterIp));
    assert!(d.objects.is_empty());
    assert_eq!(d.outcomes.len(), 1, "the ClusterIP Service is not ako's");
    assert_eq!(d.outcomes[0].key.name, "y");
    assert!(
        d.outcomes[0]
            .problems
            .iter()
            .any(|p| p.severity == Severity::Deny)
    );
}

#[test]
fn endpoint_slices_of_both_versions_and_endpoints_read_alike() {
    let v1beta1 = slice_from_json(json!({
            "apiVersion": "discovery.k8s.io/v1beta1", "kind": "EndpointSlice",
            "metadata": {"name": "avisvc-lb-x", "namespace": "vmug"},
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.244.0.5"], "conditions": {"ready": true}, "topology": {"kubernetes.io/hostname": "node1"}},
                {"addresses": ["10.244.0.6"], "conditions": {"ready": false}},
                {"addresses": ["10.244.0.7"]}
            ],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
        }))
        .expect("v1beta1 slice reads as v1");
    let g = EndpointGroup::from_slice(&v1beta1);
    assert_eq!(g.ports, vec![(Some("http".into()), 8080, "TCP".into())]);
    let ready: Vec<String> = g
        .addresses
        .iter()
        .filter(|a| a.ready)
        .map(|a| a.ip.to_string())
        .collect();
    assert_eq!(
        ready,
        ["10.244.0.5", "10.244.0.7"],
        "a missing condition means ready"
    );

    let ep: Endpoints = serde_json::from_value(json!({
        "metadata": {"name": "avisvc-lb", "namespace": "vmug"},
        "subsets": [{
            "addresses": [{"ip": "10.244.0.5"}],
            "notReadyAddresses": [{"ip": "10.244.0.6"}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
        }]
    }))
    .expect("endpoints");
    let groups = EndpointGroup::from_endpoints(&ep);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].ports, g.ports);
    assert_eq!(groups[0].addresses.iter().filter(|a| a.ready).count(), 1);
    assert_eq!(groups[0].addresses.len(), 2);

    let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "node1", "labels": {"lb": "yes"}},
            "status": {"addresses": [{"type": "Hostname", "address": "node1"}, {"type": "InternalIP", "address": "127.0.0.2"}]}
        }))
        .expect("node");
    let n = NodeInfo::from_node(&node);
    assert_eq!(n.internal_ip, "127.0.0.2".parse().ok());
    assert_eq!(n.labels.get("lb").map(String::as_str), Some("yes"));
}

#[test]
fn status_lists_each_vip_with_the_first_fqdn() {
    let vsvip = json!({"vip": [{"vip_id": "0", "ip_address": {"addr": "10.10.18.15", "type": "V4"}}, {"vip_id": "1"}]});
    let vips = vips_of(vsvip.as_object().expect("object"));
    assert_eq!(vips, vec!["10.10.18.15".parse::<IpAddr>().expect("ip")]);
    let outcome = ServiceOutcome {
        key: ObjKey::new("vmug", "avisvc-lb"),
        vs_name: Some("veba-of--vmug-avisvc-lb".into()),
        fqdns: vec!["avisvc-lb.vmug.avi.jarvis.lab".into()],
        problems: vec![],
    };
    let st = load_balancer_ingress(&outcome, &vips);
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].ip.as_deref(), Some("10.10.18.15"));
    assert_eq!(
        st[0].hostname.as_deref(),
        Some("avisvc-lb.vmug.avi.jarvis.lab")
    );
    assert!(
        load_balancer_ingress(&outcome, &[]).is_empty(),
        "no VIP yet: no entry"
    );
}

#[test]
fn long_names_are_shortened_deterministically() {
    let long = "x".repeat(300);
    let a = avi_name(format!("veba-of--vmug-{long}"));
    let b = avi_name(format!("veba-of--vmug-{long}"));
    let c = avi_name(format!("veba-of--vmug-{long}y"));
    assert_eq!(a.len(), MAX_NAME);
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.starts_with("veba-of--vmug-xxx"));
    assert_eq!(avi_name("short".into()), "short");
    let multibyte = avi_name("é".repeat(200));
    assert!(multibyte.len() <= MAX_NAME);
}

#[test]
fn network_profiles_and_health_monitors_follow_the_protocols_and_the_licence_tier_as_ako_chooses_them()
 {
    use LicenseTier::EssentialsOrBasic;
    // (ports, tier, VS profile, per-port overrides in port order, pool monitors in pool order)
    type Case<'a> = (
        &'a str,
        LicenseTier,
        &'a str,
        [Option<&'a str>; 2],
        [&'a str; 2],
    );
    let cases: [Case<'_>; 5] = [
        (
            "[{port: 80, protocol: TCP}, {port: 81, protocol: TCP}]",
            LicenseTier::Enterprise,
            "System-TCP-Proxy",
            [None, None],
            ["System-TCP", "System-TCP"],
        ),
        (
            "[{port: 80, protocol: TCP}, {port: 81, protocol: TCP}]",
            EssentialsOrBasic,
            "System-TCP-Fast-Path",
            [None, None],
            ["System-TCP", "System-TCP"],
        ),
        (
            "[{port: 53, protocol: UDP}, {port: 54, protocol: SCTP}]",
            EssentialsOrBasic,
            "System-UDP-Fast-Path",
            [None, Some("System-SCTP-Proxy")],
            ["System-UDP", "System-SCTP"],
        ),
        (
            "[{port: 80, protocol: TCP}, {port: 90, protocol: SCTP}]",
            EssentialsOrBasic,
            "System-TCP-Fast-Path",
            [None, Some("System-SCTP-Proxy")],
            ["System-TCP", "System-SCTP"],
        ),
        (
            "[{port: 90, protocol: SCTP}, {port: 91, protocol: SCTP}]",
            LicenseTier::Enterprise,
            "System-SCTP-Proxy",
            [None, None],
            ["System-SCTP", "System-SCTP"],
        ),
    ];
    for (ports, tier, profile, overrides, monitors) in cases {
        let s = svc(&format!(
            "metadata: {{name: app, namespace: vmug}}\nspec: {{type: LoadBalancer, ports: {ports}}}\n"
        ));
        let mut p = place(MemberMode::ClusterIp);
        p.license_tier = tier;
        let d = translate(
            &[ServiceInput {
                service: &s,
                endpoints: &[],
            }],
            &[],
            &cfg(),
            &p,
        );
        let vs = find(&d, Kind::VirtualService, "veba-of--vmug-app");
        let name = format!("{ports} {tier:?}");
        assert_eq!(
            vs["network_profile_ref"],
            json!(format!("/api/networkprofile/?name={profile}")),
            "{name}"
        );
        let got: Vec<Option<&str>> = vs["services"]
            .as_array()
            .expect("services")
            .iter()
            .map(|s| {
                s["override_network_profile_ref"]
                    .as_str()
                    .map(|r| r.trim_start_matches("/api/networkprofile/?name="))
            })
            .collect();
        assert_eq!(got, overrides, "{name}");
        // Pools in port order (their names end in the port).
        let mut pools: Vec<&Desired> = d.objects.iter().filter(|o| o.kind == Kind::Pool).collect();
        pools.sort_by_key(|o| o.name.rsplit('-').next().map(str::to_string));
        let got: Vec<&str> = pools
            .iter()
            .map(|o| {
                o.body["health_monitor_refs"][0]
                    .as_str()
                    .unwrap_or_default()
                    .trim_start_matches("/api/healthmonitor/?name=")
            })
            .collect();
        assert_eq!(got, monitors, "{name}");
    }
    assert_eq!(LicenseTier::parse("ENTERPRISE"), LicenseTier::Enterprise);
    assert_eq!(
        LicenseTier::parse("ENTERPRISE_WITH_CLOUD_SERVICES"),
        LicenseTier::Enterprise
    );
    assert_eq!(LicenseTier::parse("ESSENTIALS"), EssentialsOrBasic);
    assert_eq!(LicenseTier::parse("BASIC"), EssentialsOrBasic);
}

#[test]
fn a_nodes_pod_cidrs_come_from_akos_annotation_then_ovn_then_the_spec() {
    let node = |yaml: &str| -> Node { serde_yaml_ng::from_str(yaml).expect("node") };
    let cases = [
        (
            "metadata: {name: n}\nspec: {podCIDR: 10.244.1.0/24, podCIDRs: [10.244.1.0/24, 'fd00:1::/64']}",
            vec!["10.244.1.0/24", "fd00:1::/64"],
        ),
        (
            "metadata: {name: n}\nspec: {podCIDR: 10.244.2.0/24}",
            vec!["10.244.2.0/24"],
        ),
        (
            "metadata: {name: n, annotations: {k8s.ovn.org/node-subnets: '{\"default\":\"10.128.3.0/23\"}'}}\nspec: {podCIDR: 10.244.3.0/24}",
            vec!["10.128.3.0/23"],
        ),
        (
            "metadata: {name: n, annotations: {k8s.ovn.org/node-subnets: '{\"default\":[\"10.128.4.0/23\"]}', ako.vmware.com/pod-cidrs: '192.168.4.0/24, bad'}}\nspec: {podCIDR: 10.244.4.0/24}",
            vec!["192.168.4.0/24"],
        ),
        ("metadata: {name: n}", vec![]),
    ];
    for (yaml, want) in cases {
        let got: Vec<String> = pod_cidrs_of(&node(yaml))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, want, "{yaml}");
    }
    let n: Node = serde_yaml_ng::from_str(
        "metadata: {name: n}\nstatus: {addresses: [{type: Hostname, address: n}, {type: InternalIP, address: 10.0.0.1}, {type: InternalIP, address: 'fd00::1'}]}",
    )
    .expect("node");
    let info = NodeInfo::from_node(&n);
    assert_eq!(info.internal_ip, "10.0.0.1".parse().ok());
    assert_eq!(info.addresses.len(), 2);
    // The CNI's address for pod traffic comes first (a route's next hop); NodePort keeps the InternalIP.
    let calico: Node = serde_yaml_ng::from_str(
        "metadata: {name: n, annotations: {projectcalico.org/IPv4Address: 10.1.0.7/24}}
status: {addresses: [{type: InternalIP, address: 10.0.0.1}]}",
    )
    .expect("node");
    let info = NodeInfo::from_node(&calico);
    assert_eq!(
        info.addresses,
        [
            "10.1.0.7".parse::<IpAddr>().expect("ip"),
            "10.0.0.1".parse().expect("ip")
        ]
    );
    assert_eq!(info.internal_ip, "10.0.0.1".parse().ok());
    let antrea: Node = serde_yaml_ng::from_str(
        "metadata: {name: n, annotations: {node.antrea.io/transport-addresses: '10.2.0.7,fd00::7'}}",
    )
    .expect("node");
    assert_eq!(NodeInfo::from_node(&antrea).addresses.len(), 2);
}

#[test]
fn a_v6cidr_asks_for_dual_stack_or_ipv6_only_vips_and_a_requested_ipv6_address_is_ip6_address() {
    let v6: IpNet = "fd10:18::/64".parse().expect("v6");
    let s = svc(DEMO);
    // (family, requested, auto_allocate_ip_type, has v4 subnet, address key)
    let cases = [
        (VipFamily::V4, None, None, true, None),
        (VipFamily::DualStack(v6), None, Some("V4_V6"), true, None),
        (VipFamily::V6Only(v6), None, Some("V6_ONLY"), false, None),
        (
            VipFamily::DualStack(v6),
            Some("fd10:18::20"),
            Some("V4_V6"),
            true,
            Some("ip6_address"),
        ),
    ];
    for (family, requested, want_type, v4_subnet, key) in cases {
        let mut p = place(MemberMode::ClusterIp);
        p.vip_family = family;
        let mut annotated = s.clone();
        if let Some(ip) = requested {
            annotated.metadata.annotations = Some(
                [(
                    "ako.vmware.com/load-balancer-ip".to_string(),
                    ip.to_string(),
                )]
                .into(),
            );
        }
        let d = translate(
            &[ServiceInput {
                service: &annotated,
                endpoints: &[],
            }],
            &[],
            &cfg(),
            &p,
        );
        let vip = &find(&d, Kind::VsVip, "veba-of--vmug-avisvc-lb")["vip"][0];
        assert_eq!(
            vip["auto_allocate_ip_type"].as_str(),
            want_type,
            "{family:?}"
        );
        assert_eq!(
            vip["ipam_network_subnet"]["subnet"].is_object(),
            v4_subnet,
            "{family:?}"
        );
        if !matches!(family, VipFamily::V4) {
            assert_eq!(
                vip["ipam_network_subnet"]["subnet6"],
                json!({"ip_addr": {"addr": "fd10:18::", "type": "V6"}, "mask": 64})
            );
        }
        if let (Some(k), Some(ip)) = (key, requested) {
            assert_eq!(vip[k]["addr"], json!(ip), "{vip}");
            assert!(vip["ip_address"].is_null(), "{vip}");
        }
    }
}
