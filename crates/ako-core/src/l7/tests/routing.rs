//! Routing: shards, paths, merged Ingresses, wildcard and generated hosts, dedicated mode, backend problems, names.

#[allow(clippy::wildcard_imports)]
use super::*;

#[test]
fn shared_insecure_host_is_routed_on_its_shards_parent() {
    let w = World::new(&[HACKAZON]);
    let d = w.run(ShardSize::Large, &cfg());
    let parent = "veba-of--Shared-L7-0";
    assert_eq!(names(&d, Kind::VirtualService), vec![parent]);
    assert!(names(&d, Kind::VirtualServiceChild).is_empty());
    let vs = find(&d, Kind::VirtualService, parent);
    assert_eq!(vs["type"], json!("VS_TYPE_VH_PARENT"));
    assert_eq!(
        vs["services"],
        json!([{"port": 80, "enable_ssl": false}, {"port": 443, "enable_ssl": true}])
    );
    assert_eq!(
        vs["application_profile_ref"],
        json!("/api/applicationprofile/?name=System-HTTP")
    );
    assert_eq!(
        vs["network_profile_ref"],
        json!("/api/networkprofile/?name=System-TCP-Proxy")
    );
    assert_eq!(
        vs["se_group_ref"],
        json!("/api/serviceenginegroup/?name=vmug-se-group")
    );
    assert_eq!(vs["vsvip_ref"], json!(format!("/api/vsvip/?name={parent}")));
    assert_eq!(
        vs["http_policies"],
        json!([
            {"index": 11, "http_policy_set_ref": format!("/api/httppolicyset/?name={parent}--hackazon.avi.jarvis.lab")},
            {"index": 12, "http_policy_set_ref": format!("/api/httppolicyset/?name={parent}")},
        ])
    );
    assert_eq!(vs["created_by"], json!("ako-veba-of"));
    let vip = find(&d, Kind::VsVip, parent);
    assert_eq!(
        vip["dns_info"],
        json!([{"fqdn": "hackazon.avi.jarvis.lab"}])
    );
    assert_eq!(
        vip["vip"][0]["ipam_network_subnet"]["network_ref"],
        json!("/api/network/?name=dpg-sedatapath-18")
    );
    // AKO's insecure pool names: <cluster>--<host>_<path>-<ns>-<ing>; Exact /foo collides with Prefix /foo.
    let pools = names(&d, Kind::Pool);
    assert_eq!(
        pools,
        vec![
            "veba-of--hackazon.avi.jarvis.lab_-vmug-hackazon",
            "veba-of--hackazon.avi.jarvis.lab_foo-vmug-hackazon",
            "veba-of--hackazon.avi.jarvis.lab_foo-vmug-hackazon-exact",
            "veba-of--hackazon.avi.jarvis.lab_foo_bar_-vmug-hackazon",
        ]
    );
    assert_eq!(names(&d, Kind::PoolGroup), pools);
    let pool = find(&d, Kind::Pool, pools[0]);
    assert_eq!(
        pool["servers"],
        json!([{"ip": {"addr": "10.244.0.5", "type": "V4"}, "port": 8080, "enabled": true}])
    );
    assert_eq!(
        pool["health_monitor_refs"],
        json!(["/api/healthmonitor/?name=System-TCP"]),
        "AKO's monitor of Ingress pools"
    );
    let markers = pool["markers"].as_array().expect("markers");
    for (k, v) in [
        ("clustername", C),
        ("Namespace", "vmug"),
        ("IngressName", "hackazon"),
        ("Host", "hackazon.avi.jarvis.lab"),
        ("Path", "/"),
        ("ServiceName", "web"),
    ] {
        assert!(markers.contains(&marker(k, v)), "{k}");
    }
    let pg = find(&d, Kind::PoolGroup, pools[1]);
    assert_eq!(
        pg["members"],
        json!([{"pool_ref": format!("/api/pool/?name={}", pools[1]), "ratio": 100}])
    );

    let policy = &parent_routes(&d, parent);
    let h = "hackazon.avi.jarvis.lab";
    let table = [
        ("/", pools[0]),
        ("/index.php", pools[0]),
        ("/foo", pools[2]),
        ("/foo/", pools[1]),
        ("/foobar", pools[0]),
        ("/foo/bar", pools[3]),
        ("/foo/bar/baz", pools[3]),
        ("/foo/barn", pools[1]),
    ];
    for (path, want) in table {
        assert_eq!(route(policy, h, path, 80), want, "{path}");
    }
    // A host the parent does not serve: 404 from its own policy set, listed last.
    assert_eq!(route(policy, "other.avi.jarvis.lab", "/", 80), "404");
    let o = outcome(&d, "hackazon");
    assert!(o.problems.is_empty(), "{:?}", o.problems);
    assert_eq!(
        o.hosts,
        vec![HostOutcome {
            host: h.into(),
            vs_name: parent.into(),
            vip_name: parent.into(),
            tls: false
        }]
    );
}

#[test]
fn translating_part_by_part_gives_the_same_objects_and_hosts_as_translating_everything() {
    let two_hosts = r#"
metadata: {name: two, namespace: other, creationTimestamp: "2026-02-01T00:00:00Z"}
spec:
  rules:
  - host: a.avi.jarvis.lab
    http: {paths: [{path: /x, pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}]}
  - host: hackazon.avi.jarvis.lab
    http: {paths: [{path: /y, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}]}
"#;
    let mut w = World::new(&[SHOP_TLS, HACKAZON, two_hosts]);
    w.secrets
        .insert(ObjKey::new("vmug", "shop-tls"), Some(pair()));
    for shard in [
        ShardSize::Large,
        ShardSize::Medium,
        ShardSize::Small,
        ShardSize::Dedicated,
    ] {
        let whole = w.run(shard, &cfg());
        let merged = w.run_by_part(shard, &cfg());
        let sorted = |d: &L7Desired| {
            let mut v: Vec<(Kind, String, Value)> = d
                .objects
                .iter()
                .map(|o| (o.kind, o.name.clone(), Value::Object(o.body.clone())))
                .collect();
            v.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
            v
        };
        assert_eq!(sorted(&whole), sorted(&merged), "{shard:?}");
        for o in &whole.outcomes {
            let mut hosts: Vec<HostOutcome> = merged
                .outcomes
                .iter()
                .filter(|m| m.key == o.key)
                .flat_map(|m| m.hosts.clone())
                .collect();
            hosts.sort_by(|a, b| a.host.cmp(&b.host));
            assert_eq!(hosts, o.hosts, "{shard:?} {}", o.key);
        }
    }
    // A part holds only its hosts: with LARGE, shop (shard 1) is not in shard 0's translation.
    assert_eq!(
        part_of("shop.avi.jarvis.lab", ShardSize::Large),
        Part::Shard {
            index: 1,
            of: 8,
            infra: None
        }
    );
    assert_eq!(
        part_of("x.avi.jarvis.lab", ShardSize::Dedicated),
        Part::Host("x.avi.jarvis.lab".into())
    );
}

#[test]
fn several_ingresses_on_one_host_merge_and_the_oldest_keeps_a_path() {
    let a = r#"
metadata: {name: a, namespace: vmug, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  rules:
  - host: shop.avi.jarvis.lab
    http: {paths: [{path: /api, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}]}
"#;
    let b = r#"
metadata: {name: b, namespace: vmug, creationTimestamp: "2026-01-02T00:00:00Z"}
spec:
  rules:
  - host: shop.avi.jarvis.lab
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /api/, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /api/v2, pathType: ImplementationSpecific, backend: {service: {name: web, port: {number: 80}}}}
"#;
    let other_ns = r#"
metadata: {name: c, namespace: other, creationTimestamp: "2026-01-03T00:00:00Z"}
spec:
  rules:
  - host: shop.avi.jarvis.lab
    http: {paths: [{path: /other, pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}]}
"#;
    let w = World::new(&[other_ns, b, a]);
    let h = "shop.avi.jarvis.lab";

    // InterNamespaceAllowed (default): all three merge.
    let d = w.run(ShardSize::Small, &cfg());
    let policy = &parent_routes(&d, "veba-of--Shared-L7-0");
    let table = [
        ("/api", "veba-of--shop.avi.jarvis.lab_api-vmug-a"),
        ("/api/v1", "veba-of--shop.avi.jarvis.lab_api-vmug-a"),
        ("/api/v2/x", "veba-of--shop.avi.jarvis.lab_api_v2-vmug-b"),
        ("/apix", "veba-of--shop.avi.jarvis.lab_-vmug-b"),
        ("/other", "veba-of--shop.avi.jarvis.lab_other-other-c"),
        ("/other/x", "veba-of--shop.avi.jarvis.lab_-vmug-b"),
    ];
    for (path, want) in table {
        assert_eq!(route(policy, h, path, 80), want, "{path}");
    }
    let pb = &outcome(&d, "b").problems;
    assert_eq!(pb.len(), 1, "{pb:?}");
    assert!(pb[0].message.contains("path \"/api/\" (Prefix) (spec.rules[0].http.paths[1]) is already routed by Ingress vmug/a"), "{}", pb[0]);
    assert!(outcome(&d, "a").problems.is_empty());
    assert!(outcome(&d, "c").problems.is_empty());
    assert_eq!(outcome(&d, "c").hosts.len(), 1);
    // Outcomes come in input order.
    let order: Vec<&str> = d.outcomes.iter().map(|o| o.key.name.as_str()).collect();
    assert_eq!(order, ["c", "b", "a"]);

    // Strict: the namespace of the oldest claim keeps the host.
    let strict = Config {
        fqdn_reuse_policy: FqdnReusePolicy::Strict,
        ..cfg()
    };
    let d = w.run(ShardSize::Small, &strict);
    let policy = &parent_routes(&d, "veba-of--Shared-L7-0");
    assert_eq!(
        route(policy, h, "/other", 80),
        "veba-of--shop.avi.jarvis.lab_-vmug-b"
    );
    assert!(
        names(&d, Kind::Pool)
            .iter()
            .all(|p| !p.contains("-other-c"))
    );
    let pc = &outcome(&d, "c");
    assert!(pc.hosts.is_empty());
    assert_eq!(pc.problems.len(), 1);
    assert!(
        pc.problems[0]
            .message
            .contains("belongs to namespace \"vmug\" (Ingress vmug/a, the oldest claim)"),
        "{}",
        pc.problems[0]
    );
}

#[test]
fn wildcard_hosts_match_by_suffix_after_exact_hosts_and_get_no_dns_record() {
    let w = World::new(&[r#"
metadata: {name: wild, namespace: vmug}
spec:
  rules:
  - host: '*.shop.avi.jarvis.lab'
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
  - host: eu.shop.avi.jarvis.lab
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}]}
"#]);
    let d = w.run(ShardSize::Small, &cfg());
    let parent = "veba-of--Shared-L7-0";
    let policy = &parent_routes(&d, parent);
    assert_eq!(
        route(policy, "us.shop.avi.jarvis.lab", "/", 80),
        "veba-of--*.shop.avi.jarvis.lab_-vmug-wild"
    );
    assert_eq!(
        route(policy, "EU.shop.avi.jarvis.lab", "/", 80),
        "veba-of--eu.shop.avi.jarvis.lab_-vmug-wild"
    );
    assert_eq!(route(policy, "shop.avi.jarvis.lab", "/", 80), "404");
    assert_eq!(
        find(&d, Kind::VsVip, parent)["dns_info"],
        json!([{"fqdn": "eu.shop.avi.jarvis.lab"}])
    );
}

#[test]
fn a_rule_without_host_is_served_on_the_generated_host() {
    let w = World::new(&[
        "metadata: {name: web, namespace: shop}\nspec: {rules: [{http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}}]}",
    ]);
    let d = w.run(ShardSize::Small, &cfg());
    let o = outcome(&d, "web");
    assert_eq!(o.hosts[0].host, "web.shop.avi.jarvis.lab");
    find(&d, Kind::Pool, "veba-of--web.shop.avi.jarvis.lab_-shop-web");
    assert_eq!(
        find(&d, Kind::VsVip, "veba-of--Shared-L7-0")["dns_info"],
        json!([{"fqdn": "web.shop.avi.jarvis.lab"}])
    );
}

#[test]
fn dedicated_mode_builds_one_virtual_service_per_host() {
    let mut w = World::new(&[SHOP_TLS, HACKAZON]);
    w.secrets
        .insert(ObjKey::new("vmug", "shop-tls"), Some(pair()));
    let d = w.run(ShardSize::Dedicated, &cfg());
    assert_eq!(
        names(&d, Kind::VirtualService),
        vec![
            "veba-of--hackazon.avi.jarvis.lab-L7-dedicated",
            "veba-of--shop.avi.jarvis.lab-L7-dedicated"
        ]
    );
    assert!(names(&d, Kind::VirtualServiceChild).is_empty());
    let shop = "veba-of--shop.avi.jarvis.lab-L7-dedicated";
    let vs = find(&d, Kind::VirtualService, shop);
    assert_eq!(vs["type"], json!("VS_TYPE_NORMAL"));
    assert_eq!(
        vs["services"],
        json!([{"port": 80, "enable_ssl": false}, {"port": 443, "enable_ssl": true}])
    );
    assert_eq!(vs["vsvip_ref"], json!(format!("/api/vsvip/?name={shop}")));
    assert_eq!(
        vs["ssl_key_and_certificate_refs"],
        json!(["/api/sslkeyandcertificate/?name=veba-of--shop.avi.jarvis.lab"])
    );
    assert_eq!(
        find(&d, Kind::VsVip, shop)["dns_info"],
        json!([{"fqdn": "shop.avi.jarvis.lab"}])
    );
    let policy = find(&d, Kind::HttpPolicySet, shop);
    let pool = "veba-of--vmug-shop.avi.jarvis.lab_-shop-L7-dedicated";
    assert_eq!(route(policy, "shop.avi.jarvis.lab", "/", 80), "redirect");
    assert_eq!(route(policy, "shop.avi.jarvis.lab", "/", 443), pool);
    let hk = "veba-of--hackazon.avi.jarvis.lab-L7-dedicated";
    let vs = find(&d, Kind::VirtualService, hk);
    assert_eq!(vs["services"], json!([{"port": 80, "enable_ssl": false}]));
    assert!(vs.get("ssl_key_and_certificate_refs").is_none());
    assert_eq!(
        route(
            find(&d, Kind::HttpPolicySet, hk),
            "hackazon.avi.jarvis.lab",
            "/foobar",
            80
        ),
        "veba-of--vmug-hackazon.avi.jarvis.lab_-hackazon-L7-dedicated"
    );
    assert_eq!(outcome(&d, "shop").hosts[0].vs_name, shop);
    assert_eq!(outcome(&d, "shop").hosts[0].vip_name, shop);
}

#[test]
fn backend_problems_leave_an_empty_pool_and_a_warning() {
    let yaml = r#"
metadata: {name: app, namespace: vmug}
spec:
  rules:
  - host: app.avi.jarvis.lab
    http:
      paths:
      - {path: /gone, pathType: Prefix, backend: {service: {name: gone, port: {number: 80}}}}
      - {path: /port, pathType: Prefix, backend: {service: {name: web, port: {number: 8443}}}}
      - {path: /named, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}
      - {path: /res, pathType: Prefix, backend: {resource: {kind: Bucket, name: b}}}
"#;
    let w = World::new(&[yaml]);
    let d = w.run(ShardSize::Small, &cfg());
    let empty = |p: &str| find(&d, Kind::Pool, p)["servers"] == json!([]);
    assert!(empty("veba-of--app.avi.jarvis.lab_gone-vmug-app"));
    assert!(empty("veba-of--app.avi.jarvis.lab_port-vmug-app"));
    assert!(!empty("veba-of--app.avi.jarvis.lab_named-vmug-app"));
    let p: Vec<String> = outcome(&d, "app")
        .problems
        .iter()
        .map(|p| p.message.clone())
        .collect();
    assert_eq!(p.len(), 3, "{p:?}");
    for want in [
        "backend Service \"gone\" of host app.avi.jarvis.lab path /gone not found in \"vmug\"",
        "backend Service \"web\" has no port 8443",
        "spec.rules[0].http.paths[3].backend is not a Service",
    ] {
        assert!(p.iter().any(|m| m.contains(want)), "{want} not in {p:?}");
    }
    assert!(
        outcome(&d, "app")
            .problems
            .iter()
            .all(|p| p.severity == Severity::Warn)
    );

    // NodePort mode: nodes and the nodePort.
    let d = w.run_mode(
        ShardSize::Small,
        &cfg(),
        MemberMode::NodePort { selector: None },
    );
    assert_eq!(
        find(&d, Kind::Pool, "veba-of--app.avi.jarvis.lab_named-vmug-app")["servers"],
        json!([{"ip": {"addr": "127.0.0.2", "type": "V4"}, "port": 30080, "enabled": true}])
    );
}

#[test]
fn long_names_are_shortened_and_denied_hosts_are_not_served() {
    let long = "x".repeat(240);
    let w = World::new(&[&format!(
        "metadata: {{name: {long}, namespace: vmug}}\nspec: {{rules: [{{host: a.avi.jarvis.lab, http: {{paths: [{{path: /{long}, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}]}}}}, {{host: evil.example.com}}]}}"
    )]);
    let d = w.run(ShardSize::Small, &cfg());
    assert!(
        d.objects
            .iter()
            .all(|o| o.name.len() <= crate::l4::MAX_NAME)
    );
    let pool = names(&d, Kind::Pool)[0];
    assert!(pool.starts_with("veba-of--a.avi.jarvis.lab_xxx"), "{pool}");
    assert_eq!(names(&d, Kind::PoolGroup)[0], pool);
    let o = &d.outcomes[0];
    assert_eq!(o.hosts.len(), 1);
    assert!(has_denial(o), "the outside host is a deny problem");
    assert!(d.objects.iter().all(|o| !o.name.contains("evil")));
}

#[test]
fn a_path_no_rule_matches_gets_404_from_its_host_on_the_parent_and_on_the_sni_child() {
    let mut w = World::new(&[r#"
metadata: {name: api, namespace: vmug}
spec:
  tls: [{hosts: [secure.avi.jarvis.lab], secretName: s}]
  rules:
  - host: plain.avi.jarvis.lab
    http: {paths: [{path: /api, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}]}
  - host: secure.avi.jarvis.lab
    http: {paths: [{path: /api, pathType: Exact, backend: {service: {name: api, port: {number: 80}}}}]}
"#]);
    w.secrets.insert(ObjKey::new("vmug", "s"), Some(pair()));
    let d = w.run(ShardSize::Small, &cfg());
    let parent = "veba-of--Shared-L7-0";
    let policy = &parent_routes(&d, parent);
    let table = [
        (
            "plain.avi.jarvis.lab",
            "/api/v1",
            80,
            "veba-of--plain.avi.jarvis.lab_api-vmug-api",
        ),
        ("plain.avi.jarvis.lab", "/", 80, "404"),
        ("plain.avi.jarvis.lab", "/apiv1", 80, "404"),
        ("secure.avi.jarvis.lab", "/api", 80, "redirect"),
        ("nobody.avi.jarvis.lab", "/api", 80, "404"),
    ];
    for (host, path, port, want) in table {
        assert_eq!(route(policy, host, path, port), want, "{host}{path}");
    }
    let child = find(
        &d,
        Kind::HttpPolicySet,
        "veba-of--vmug-secure.avi.jarvis.lab",
    );
    assert_eq!(
        route(child, "secure.avi.jarvis.lab", "/api", 443),
        "veba-of--vmug-secure.avi.jarvis.lab_api-api"
    );
    assert_eq!(route(child, "secure.avi.jarvis.lab", "/api/", 443), "404");
    assert!(outcome(&d, "api").problems.is_empty());
}

#[test]
fn a_dedicated_virtual_service_answers_404_for_a_path_or_host_it_does_not_route() {
    let w = World::new(&[r#"
metadata: {name: api, namespace: vmug}
spec:
  rules:
  - host: one.avi.jarvis.lab
    http: {paths: [{path: /v1, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}]}
"#]);
    let d = w.run(ShardSize::Dedicated, &cfg());
    let name = "veba-of--one.avi.jarvis.lab-L7-dedicated";
    let policy = find(&d, Kind::HttpPolicySet, name);
    assert_eq!(
        route(policy, "one.avi.jarvis.lab", "/v1/x", 80),
        "veba-of--vmug-one.avi.jarvis.lab_v1-api-L7-dedicated"
    );
    assert_eq!(route(policy, "one.avi.jarvis.lab", "/v2", 80), "404");
    assert_eq!(route(policy, "two.avi.jarvis.lab", "/v1", 80), "404");
}

#[test]
fn an_ingress_of_only_a_default_backend_gets_a_virtual_service_of_its_own_for_every_host() {
    for shard in [ShardSize::Large, ShardSize::Dedicated] {
        let w = World::new(&[r#"
metadata: {name: fallback, namespace: vmug}
spec: {defaultBackend: {service: {name: web, port: {number: 80}}}}
"#]);
        let d = w.run(shard, &cfg());
        let name = "veba-of--vmug-fallback-default-backend";
        let o = outcome(&d, "fallback");
        assert!(o.problems.is_empty(), "{:?}", o.problems);
        assert_eq!(o.hosts.len(), 1, "{o:?}");
        assert_eq!(o.hosts[0].vs_name, name);
        assert_eq!(o.hosts[0].vip_name, name);
        // The status shows the address alone: there is no host.
        assert_eq!(crate::intent::status_hostname(&o.hosts[0].host), None);
        assert_eq!(
            part_of(&o.hosts[0].host, shard),
            Part::Host("vmug/fallback/default-backend".into())
        );
        let vs = find(&d, Kind::VirtualService, name);
        assert_eq!(vs["type"], "VS_TYPE_NORMAL", "{shard:?}");
        assert_eq!(vs["services"], json!([{"port": 80, "enable_ssl": false}]));
        assert_eq!(find(&d, Kind::VsVip, name)["dns_info"], json!([]));
        let policy = find(&d, Kind::HttpPolicySet, name);
        for host in ["my-host", "some-host.example.com", ""] {
            assert_eq!(route(policy, host, "/sub-path", 80), name, "{host:?}");
        }
        assert!(names(&d, Kind::Pool).contains(&name));
        // No shared parent is made for it.
        assert!(
            !names(&d, Kind::VirtualService)
                .iter()
                .any(|n| n.contains("Shared-L7")),
            "{:?}",
            names(&d, Kind::VirtualService)
        );
    }
}

#[test]
fn a_default_backend_next_to_rules_or_an_ingress_with_nothing_to_serve_is_a_warning() {
    let w = World::new(&[
        r#"
metadata: {name: both, namespace: vmug}
spec:
  defaultBackend: {service: {name: web, port: {number: 80}}}
  rules:
  - host: both.avi.jarvis.lab
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}]}
"#,
        "metadata: {name: empty, namespace: vmug}\nspec: {}\n",
    ]);
    let d = w.run(ShardSize::Small, &cfg());
    let both = outcome(&d, "both");
    assert_eq!(both.problems.len(), 1, "{:?}", both.problems);
    assert_eq!(both.problems[0].field, "spec.defaultBackend");
    assert!(
        both.problems[0].message.contains("404"),
        "{:?}",
        both.problems
    );
    assert_eq!(both.hosts.len(), 1);
    let empty = outcome(&d, "empty");
    assert!(
        empty.problems[0].message.contains("nothing to serve"),
        "{:?}",
        empty.problems
    );
}

#[test]
fn every_marker_carries_a_value_even_on_sets_of_no_host() {
    let w = World::new(&[
        HACKAZON,
        "metadata: {name: fallback, namespace: vmug}\nspec: {defaultBackend: {service: {name: web, port: {number: 80}}}}\n",
    ]);
    let d = w.run(ShardSize::Large, &cfg());
    for o in &d.objects {
        for m in o.body["markers"].as_array().into_iter().flatten() {
            assert!(
                m["values"].as_array().is_some_and(|v| !v.is_empty()),
                "{:?} {}: {m}",
                o.kind,
                o.name
            );
        }
    }
}
