//! The Avi client against the in-process emulator: CRUD of every object type, pagination, re-login,
//! retries, concurrency, TLS and persistence across restarts.

mod avi_support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use ako::avi::models::{
    Cloud, DnsInfo, HttpPolicies, HttpPolicySet, IpamDnsProviderProfile, IpamNetworkSubnet,
    Network, Pool, PoolGroup, PoolGroupMember, Service, ServiceEngineGroup, SslCertificate,
    SslKeyAndCertificate, Tenant, Vip, VirtualService, VrfContext, VsVip,
};
use ako::avi::refs::{name_ref, ref_name, ref_uuid};
use ako::avi::{AviClient, AviError, ListQuery, PatchOp};
use ako::emulator::Faults;
use avi_support::{Raw, client, client_config, pool, start, vip_addr};
use serde_json::{Value, json};

fn auto_vsvip(name: &str, fqdn: Option<&str>) -> VsVip {
    VsVip {
        name: name.into(),
        cloud_ref: Some("/api/cloud?name=Default-Cloud".into()),
        vip: Some(vec![Vip {
            vip_id: Some("0".into()),
            auto_allocate_ip: Some(true),
            ipam_network_subnet: Some(IpamNetworkSubnet {
                network_ref: Some(name_ref("network", "dpg-sedatapath-18")),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        dns_info: fqdn.map(|f| {
            vec![DnsInfo {
                fqdn: Some(f.into()),
                ..Default::default()
            }]
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn crud_of_vsvip_pool_and_virtualservice_with_refs_by_name() {
    let emu = start(None).await;
    let api = client(&emu);

    let vip = api
        .create(&auto_vsvip("vip-1", Some("app.avi.jarvis.lab")))
        .await
        .expect("vsvip")
        .object;
    assert_eq!(
        vip_addr(&vip),
        "10.10.18.10",
        "first address of the lab range, in the POST answer"
    );
    let dns = &vip.dns_info.as_ref().expect("dns_info")[0];
    assert_eq!(
        (dns.ttl, dns.record_type.as_deref()),
        (Some(30), Some("DNS_RECORD_A"))
    );
    let p = api
        .create(&pool("pool-1", "127.0.0.1"))
        .await
        .expect("pool")
        .object;
    assert_eq!(
        p.servers.as_ref().expect("servers")[0].hostname.as_deref(),
        Some("127.0.0.1")
    );

    let vs = VirtualService {
        name: "vs-1".into(),
        vsvip_ref: Some(name_ref("vsvip", "vip-1")),
        pool_ref: Some(name_ref("pool", "pool-1")),
        services: Some(vec![Service {
            port: Some(80),
            ..Default::default()
        }]),
        created_by: Some("ako-test".into()),
        ..Default::default()
    };
    let vs = api.create(&vs).await.expect("vs").object;
    let uuid = vs.uuid.clone().expect("uuid");
    assert!(uuid.starts_with("virtualservice-"));
    assert_eq!(
        ref_name(vs.pool_ref.as_deref().expect("pool_ref")).as_deref(),
        Some("pool-1"),
        "#name in POST answer"
    );
    assert_eq!(ref_uuid(vs.pool_ref.as_deref().expect("pool_ref")), p.uuid);
    assert_eq!(
        ref_name(vs.application_profile_ref.as_deref().expect("default")).as_deref(),
        Some("System-HTTP")
    );
    assert_eq!(
        vs.services.as_ref().expect("services")[0].port_range_end,
        Some(80)
    );

    // GET: bare refs unless include_name.
    let got: VirtualService = api.get(&uuid).await.expect("get");
    assert_eq!(ref_name(got.pool_ref.as_deref().expect("pool_ref")), None);
    assert_eq!(got.extra.get("cloud_type"), Some(&json!("CLOUD_NONE")));
    let by_name = api
        .get_by_name::<VirtualService>("vs-1")
        .await
        .expect("by name")
        .expect("found");
    assert_eq!(by_name.uuid.as_deref(), Some(uuid.as_str()));
    let listed: Vec<VirtualService> = api
        .list(&ListQuery {
            created_by: Some("ako-test".into()),
            include_name: true,
            cloud_name: Some("Default-Cloud".into()),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert!(ref_name(listed[0].pool_ref.as_deref().expect("ref")).is_some());
    let fields = api
        .list_page::<VirtualService>(&ListQuery {
            fields: vec!["enabled".into()],
            ..Default::default()
        })
        .await
        .expect("fields");
    assert!(fields.results[0].pool_ref.is_none() && fields.results[0].enabled == Some(true));

    // PUT keeps fields the model does not name (round trip through `extra`); the field is one the controller's
    // schema has, since the emulator refuses one it does not (as `invalid_bodies_are_refused...` shows).
    let mut edit = got.clone();
    edit.enabled = Some(false);
    edit.extra.insert("delay_fairness".into(), json!(true));
    let put = api.update(&edit).await.expect("put");
    assert_eq!(put.enabled, Some(false));
    let again: VirtualService = api.get(&uuid).await.expect("get");
    assert_eq!(again.extra.get("delay_fairness"), Some(&json!(true)));
    assert_eq!(
        again.extra.get("weight"),
        Some(&json!(1)),
        "controller default kept across PUT"
    );
    let runtime = api.vs_runtime(&uuid).await.expect("runtime");
    assert_eq!(runtime["oper_status"]["state"], json!("OPER_DISABLED"));

    // PATCH add / replace / delete on a list.
    let hps = api
        .create(&HttpPolicySet {
            name: "hps-1".into(),
            ..Default::default()
        })
        .await
        .expect("hps")
        .object;
    let add = json!({"http_policies": [{"index": 11, "http_policy_set_ref": name_ref("httppolicyset", "hps-1")}]});
    let patched: VirtualService = api
        .patch(&uuid, PatchOp::Add, add.clone())
        .await
        .expect("patch add");
    let policies = patched.http_policies.clone().expect("policies");
    assert_eq!(policies.len(), 1);
    assert_eq!(
        ref_uuid(policies[0].http_policy_set_ref.as_deref().expect("ref")),
        hps.uuid
    );
    let patched: VirtualService = api
        .patch(&uuid, PatchOp::Replace, json!({"enabled": true}))
        .await
        .expect("patch replace");
    assert_eq!(patched.enabled, Some(true));
    assert_eq!(
        api.vs_runtime(&uuid).await.expect("runtime")["oper_status"]["state"],
        json!("OPER_UP")
    );
    let patched: VirtualService = api
        .patch(&uuid, PatchOp::Delete, add)
        .await
        .expect("patch delete");
    assert_eq!(patched.http_policies, Some(Vec::<HttpPolicies>::new()));

    // Referenced objects cannot go; order VS → VsVip/Pool works; a second delete is a 404.
    let err = api
        .delete::<Pool>(p.uuid.as_deref().expect("uuid"))
        .await
        .expect_err("referenced");
    assert_eq!(err.status(), Some(400));
    assert!(
        err.message()
            .expect("message")
            .contains("Cannot delete, object is referred by: [VirtualService vs-1]")
    );
    api.delete::<VirtualService>(&uuid)
        .await
        .expect("delete vs");
    api.delete::<Pool>(p.uuid.as_deref().expect("uuid"))
        .await
        .expect("delete pool");
    api.delete::<VsVip>(vip.uuid.as_deref().expect("uuid"))
        .await
        .expect("delete vsvip");
    assert!(
        !api.delete_if_exists::<VsVip>(vip.uuid.as_deref().expect("uuid"))
            .await
            .expect("gone")
    );
    let missing = api.get::<VirtualService>(&uuid).await.expect_err("404");
    assert_eq!(
        (missing.status(), missing.message()),
        (Some(404), Some("VirtualService object not found!"))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn poolgroup_ssl_certificate_and_infrastructure_reads() {
    let emu = start(None).await;
    let api = client(&emu);
    for n in ["pa", "pb"] {
        api.create(&pool(n, "127.0.0.2")).await.expect("pool");
    }
    let pg = PoolGroup {
        name: "pg-1".into(),
        members: Some(vec![
            PoolGroupMember {
                pool_ref: Some(name_ref("pool", "pa")),
                ratio: Some(100),
                priority_label: Some("10".into()),
                ..Default::default()
            },
            PoolGroupMember {
                pool_ref: Some(name_ref("pool", "pb")),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    let pg = api.create(&pg).await.expect("pg").object;
    assert_eq!(
        pg.members.as_ref().expect("members")[1].ratio,
        Some(1),
        "default ratio"
    );

    let ca = ako::certs::generate_ca("test", 1).expect("ca");
    let leaf = ca
        .issue(&["app.avi.jarvis.lab".into()], &[], 1)
        .expect("leaf");
    let cert = SslKeyAndCertificate {
        name: "cert-1".into(),
        key: Some(leaf.key_pem.clone()),
        certificate: Some(SslCertificate {
            certificate: Some(leaf.cert_pem.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = api.create(&cert).await.expect("cert").object;
    assert!(created.key.is_none(), "the 201 answer carries no key");
    let read: SslKeyAndCertificate = api
        .get(created.uuid.as_deref().expect("uuid"))
        .await
        .expect("get");
    assert_eq!(read.key.as_deref(), Some("<sensitive>"));
    assert_eq!(read.status.as_deref(), Some("SSL_CERTIFICATE_FINISHED"));

    let clouds: Vec<Cloud> = api
        .list(&ListQuery::by_name("Default-Cloud"))
        .await
        .expect("clouds");
    let cloud_uuid = clouds[0].uuid.clone().expect("uuid");
    let segs: Vec<ServiceEngineGroup> = api
        .list(&ListQuery {
            cloud_name: Some("Default-Cloud".into()),
            ..Default::default()
        })
        .await
        .expect("seg");
    let seg_names: HashSet<String> = segs.into_iter().map(|s| s.name).collect();
    assert!(seg_names.contains("Default-Group") && seg_names.contains("vmug-se-group"));
    let nets: Vec<Network> = api
        .list(&ListQuery::by_name("dpg-sedatapath-18"))
        .await
        .expect("net");
    assert_eq!(
        nets[0].configured_subnets.as_ref().expect("subnets")[0]
            .prefix
            .as_ref()
            .and_then(|p| p.mask),
        Some(26)
    );
    let profiles: Vec<IpamDnsProviderProfile> =
        api.list(&ListQuery::default()).await.expect("profiles");
    assert_eq!(profiles.len(), 2);
    let vrfs: Vec<VrfContext> = api.list(&ListQuery::by_name("global")).await.expect("vrf");
    assert_eq!(vrfs[0].system_default, Some(true));
    assert_eq!(
        api.dns_domains(&cloud_uuid).await.expect("domains").domains,
        vec!["avi.jarvis.lab".to_string()]
    );

    // Tenancy: an object of tenant t1 is invisible from admin, visible from t1 and from `*`.
    let t = api
        .create(&Tenant {
            name: "t1".into(),
            ..Default::default()
        })
        .await
        .expect("tenant")
        .object;
    assert_eq!(t.extra.get("local"), Some(&json!(true)));
    let t1 = api.with_tenant("t1");
    t1.create(&pool("tenant-pool", "127.0.0.3"))
        .await
        .expect("tenant pool");
    assert!(
        api.get_by_name::<Pool>("tenant-pool")
            .await
            .expect("admin")
            .is_none()
    );
    assert!(
        t1.get_by_name::<Pool>("tenant-pool")
            .await
            .expect("t1")
            .is_some()
    );
    assert!(
        api.with_tenant("*")
            .get_by_name::<Pool>("tenant-pool")
            .await
            .expect("all")
            .is_some()
    );
    let err = api
        .with_tenant("nope")
        .list::<Pool>(&ListQuery::default())
        .await
        .expect_err("unknown tenant");
    assert_eq!(err.status(), Some(403));
    emu.shutdown().await;
}

#[tokio::test]
async fn create_conflict_reads_the_existing_object_back() {
    let emu = start(None).await;
    let mut cfg = client_config(&emu);
    cfg.created_by = Some("ako-conflict-test".into());
    let api = AviClient::new(cfg).expect("client");
    let first = api.create(&pool("dup", "127.0.0.4")).await.expect("first");
    let second = api
        .create(&pool("dup", "127.0.0.4"))
        .await
        .expect("409 → read back");
    assert!(!first.already_existed && second.already_existed);
    assert_eq!(first.object.uuid, second.object.uuid);
    assert_eq!(emu.counters().get("POST", "pool"), 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn ipam_exhaustion_is_a_transient_400_and_a_freed_address_is_reused() {
    let emu = start(None).await;
    let api = client(&emu);
    let mut allocated = Vec::new();
    for i in 0..53 {
        allocated.push(
            api.create(&auto_vsvip(&format!("v{i}"), None))
                .await
                .expect("alloc")
                .object,
        );
    }
    let addrs: HashSet<String> = allocated.iter().map(vip_addr).collect();
    assert_eq!(addrs.len(), 53, "10.10.18.10-62 all distinct");
    let err = api
        .create(&auto_vsvip("one-too-many", None))
        .await
        .expect_err("exhausted");
    assert_eq!(
        (err.status(), err.message()),
        (Some(400), Some("No available free IPs"))
    );
    assert!(err.is_transient() && !err.is_retryable_by_client());
    api.delete::<VsVip>(allocated[7].uuid.as_deref().expect("uuid"))
        .await
        .expect("free one");
    let again = api
        .create(&auto_vsvip("reuse", None))
        .await
        .expect("reuse")
        .object;
    assert_eq!(vip_addr(&again), vip_addr(&allocated[7]));
    emu.shutdown().await;
}

#[tokio::test]
async fn fqdn_outside_the_dns_profile_is_rejected_without_retry() {
    let emu = start(None).await;
    let api = client(&emu);
    let err = api
        .create(&auto_vsvip("bad-dns", Some("app.example.com")))
        .await
        .expect_err("400");
    assert_eq!(err.status(), Some(400));
    assert_eq!(
        err.message(),
        Some(
            "FQDN app.example.com is not in any DNS service domain of DNS profile dns-jarvis; configured domains: [avi.jarvis.lab]"
        )
    );
    assert_eq!(
        emu.counters().get("POST", "vsvip"),
        1,
        "a 400 is not retried"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn pagination_follows_next_across_pages() {
    let emu = start(None).await;
    let api = client(&emu);
    for i in 0..57 {
        api.create(&pool(&format!("page-{i:02}"), "127.0.0.5"))
            .await
            .expect("pool");
    }
    emu.reset_counters();
    let q = ListQuery {
        page_size: Some(20),
        extra: vec![("name.contains".into(), "page-".into())],
        ..Default::default()
    };
    let all: Vec<Pool> = api.list(&q).await.expect("list");
    let names: Vec<String> = all.iter().map(|p| p.name.clone()).collect();
    let want: Vec<String> = (0..57).map(|i| format!("page-{i:02}")).collect();
    assert_eq!(names, want, "all pages, in creation order");
    assert_eq!(emu.counters().get("GET", "pool"), 3);
    let first = api.list_page::<Pool>(&q).await.expect("page");
    assert_eq!((first.count, first.results.len()), (57, 20));
    assert!(first.next.as_deref().expect("next").contains("page=2"));
    emu.shutdown().await;
}

#[tokio::test]
async fn session_expiry_triggers_one_relogin() {
    let emu = start(None).await;
    let api = client(&emu);
    api.list::<Pool>(&ListQuery::default())
        .await
        .expect("first");
    emu.reset_counters();
    emu.expire_sessions();
    api.create(&pool("after-expiry", "127.0.0.6"))
        .await
        .expect("re-login and retry");
    let c = emu.counters();
    assert_eq!(
        (c.faults.sessions_expired, c.faults.unauthenticated),
        (1, 1),
        "the expired session was presented and refused once"
    );
    assert_eq!(c.get("POST", "login"), 1, "one re-login");
    assert_eq!(
        c.get("POST", "pool"),
        2,
        "refused once with 401, then accepted"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn wrong_password_is_a_login_error() {
    let emu = start(None).await;
    let mut cfg = client_config(&emu);
    cfg.credentials = ako::avi::Credentials::password("admin", "wrong");
    let api = AviClient::new(cfg).expect("client");
    let err = api
        .list::<Pool>(&ListQuery::default())
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, AviError::Login { status: 401, message } if message == "Invalid credentials"),
        "{err}"
    );
    assert_eq!(
        emu.counters().get("POST", "login"),
        1,
        "bad credentials are not retried"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn injected_503_and_429_are_retried_honouring_retry_after() {
    let emu = start(None).await;
    let api = client(&emu);
    api.list::<Pool>(&ListQuery::default())
        .await
        .expect("warm up");
    emu.reset_counters();
    emu.set_faults(Faults {
        fail_next: vec![503, 429],
        retry_after_secs: 1,
        ..Default::default()
    });
    let started = Instant::now();
    api.create(&pool("retried", "127.0.0.7"))
        .await
        .expect("succeeds after retries");
    let elapsed = started.elapsed();
    let c = emu.counters();
    assert_eq!(
        c.faults.injected,
        [(503, 1), (429, 1)].into(),
        "both injected answers were served"
    );
    assert!(
        elapsed >= Duration::from_secs(2),
        "two Retry-After: 1 waits, took {elapsed:?}"
    );
    assert_eq!(
        api.list::<Pool>(&ListQuery::by_name("retried"))
            .await
            .expect("list")
            .len(),
        1,
        "created exactly once"
    );

    emu.set_faults(Faults {
        error_rates: [(500, 1.0)].into(),
        ..Default::default()
    });
    emu.reset_counters();
    let err = api
        .get_by_name::<Pool>("retried")
        .await
        .expect_err("gives up");
    assert_eq!(err.status(), Some(500));
    assert_eq!(emu.counters().faults.injected, [(500, 5)].into());
    assert_eq!(
        emu.counters().get("GET", "pool"),
        5,
        "1 attempt + max_retries 4"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn dropped_connections_are_retried() {
    let emu = start(None).await;
    let api = client(&emu);
    api.list::<Pool>(&ListQuery::default())
        .await
        .expect("warm up");
    emu.set_faults(Faults {
        drop_next: 2,
        ..Default::default()
    });
    emu.reset_counters();
    let got: Vec<Pool> = api
        .list(&ListQuery::default())
        .await
        .expect("retried after drops");
    assert!(got.is_empty());
    let c = emu.counters();
    assert_eq!(c.faults.dropped, 2, "both connections were dropped");
    assert_eq!(c.get("GET", "pool"), 1, "the third attempt got an answer");
    emu.shutdown().await;
}

#[tokio::test]
async fn concurrent_use_is_bounded_by_the_session_pool() {
    let emu = start(None).await;
    let mut cfg = client_config(&emu);
    cfg.sessions = 4;
    let api = AviClient::new(cfg).expect("client");
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let api = api.clone();
            tokio::spawn(async move { api.create(&pool(&format!("c{i}"), "127.0.0.8")).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("join").expect("create");
    }
    let c = emu.counters();
    assert_eq!(c.get("POST", "pool"), 40);
    assert!(
        c.get("POST", "login") <= 4,
        "one login per session at most: {}",
        c.get("POST", "login")
    );
    assert_eq!(
        api.list::<Pool>(&ListQuery {
            page_size: Some(7),
            ..Default::default()
        })
        .await
        .expect("list")
        .len(),
        40
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn tls_verification_is_on_by_default_and_insecure_is_an_opt_in() {
    let emu = start(None).await;
    let mut cfg = client_config(&emu);
    cfg.ca_pem = Some(
        ako::certs::generate_ca("someone else", 1)
            .expect("ca")
            .cert_pem,
    );
    cfg.retry.max_retries = 0;
    let untrusted = AviClient::new(cfg.clone()).expect("client");
    let err = untrusted
        .list::<Pool>(&ListQuery::default())
        .await
        .expect_err("unknown CA");
    assert!(matches!(err, AviError::Transport { .. }), "{err}");
    cfg.ca_pem = None;
    cfg.insecure_skip_verify = true;
    let insecure = AviClient::new(cfg).expect("client");
    insecure
        .list::<Pool>(&ListQuery::default())
        .await
        .expect("insecure opt-in connects");
    emu.shutdown().await;
}

#[tokio::test]
async fn version_is_discovered_from_initial_data_when_not_configured() {
    let emu = start(None).await;
    let api = client(&emu);
    assert_eq!(api.api_version(), None);
    api.list::<Pool>(&ListQuery::default()).await.expect("list");
    assert_eq!(api.api_version().as_deref(), Some("22.1.5"));
    emu.shutdown().await;
}

#[tokio::test]
async fn restart_keeps_every_object_and_allocated_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let emu = start(Some(dir.path())).await;
    let api = client(&emu);
    let vips: Vec<VsVip> = {
        let mut v = Vec::new();
        for i in 0..5 {
            v.push(
                api.create(&auto_vsvip(&format!("keep-{i}"), None))
                    .await
                    .expect("vsvip")
                    .object,
            );
        }
        v
    };
    api.delete::<VsVip>(vips[1].uuid.as_deref().expect("uuid"))
        .await
        .expect("delete");
    let p = api
        .create(&pool("keep-pool", "127.0.0.9"))
        .await
        .expect("pool")
        .object;
    let objects = emu.object_count();
    emu.shutdown().await;

    let emu = start(Some(dir.path())).await;
    assert_eq!(emu.object_count(), objects);
    let api = client(&emu);
    for v in [&vips[0], &vips[2], &vips[3], &vips[4]] {
        let read: VsVip = api
            .get(v.uuid.as_deref().expect("uuid"))
            .await
            .expect("kept");
        assert_eq!(vip_addr(&read), vip_addr(v));
    }
    assert!(
        api.get_opt::<VsVip>(vips[1].uuid.as_deref().expect("uuid"))
            .await
            .expect("get")
            .is_none()
    );
    let read: Pool = api
        .get(p.uuid.as_deref().expect("uuid"))
        .await
        .expect("pool kept");
    assert_eq!(read.last_modified, p.last_modified);
    // Allocation after the restart never hands out an address that is still held.
    let kept: HashSet<String> = [&vips[0], &vips[2], &vips[3], &vips[4]]
        .iter()
        .map(|v| vip_addr(v))
        .collect();
    for i in 0..10 {
        let next = api
            .create(&auto_vsvip(&format!("after-restart-{i}"), None))
            .await
            .expect("alloc")
            .object;
        assert!(
            !kept.contains(&vip_addr(&next)),
            "{} reallocated",
            vip_addr(&next)
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn a_corrupt_state_file_stops_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    start(Some(dir.path())).await.shutdown().await;
    let journal = dir.path().join(ako::emulator::journal::JOURNAL_FILE);
    let mut data = std::fs::read(&journal).expect("journal");
    let i = data.len() / 2;
    data[i] = data[i].wrapping_add(1);
    std::fs::write(&journal, data).expect("write");
    let err = ako::emulator::spawn(avi_support::config(Some(dir.path())))
        .await
        .expect_err("refuses");
    let text = err.to_string();
    assert!(
        text.contains("corrupt") && text.contains("refusing to start"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------------
// Strictness: filters, validation, tenants, certificates, restore.

#[tokio::test]
async fn a_field_filter_matches_only_objects_that_have_the_field() {
    let emu = start(None).await;
    let raw = Raw::login(&emu).await;
    let (status, seed) = raw.send("GET", "/api/network", None, None).await;
    assert_eq!(status, 200);
    assert!(seed["count"].as_u64() >= Some(2), "the seed has networks");
    let (_, mine) = raw
        .send("GET", "/api/network?created_by=ako-x", None, None)
        .await;
    assert_eq!(mine["count"], json!(0), "seed networks have no created_by");
    let (status, _) = raw
        .send(
            "POST",
            "/api/network",
            None,
            Some(&json!({"name": "ako-net", "created_by": "ako-x"})),
        )
        .await;
    assert_eq!(status, 201);
    let (_, mine) = raw
        .send(
            "GET",
            "/api/network/?created_by=ako-x&include_name",
            None,
            None,
        )
        .await;
    assert_eq!(mine["count"], json!(1));
    assert_eq!(mine["results"][0]["name"], json!("ako-net"));
    let (_, none) = raw
        .send("GET", "/api/network?no_such_field=1", None, None)
        .await;
    assert_eq!(none["count"], json!(0));
    emu.shutdown().await;
}

#[tokio::test]
async fn invalid_bodies_are_refused_with_400_naming_the_field() {
    let emu = start(None).await;
    let raw = Raw::login(&emu).await;
    let (_, vip) = raw
        .send(
            "POST",
            "/api/vsvip",
            None,
            Some(&json!({"name": "v-ok", "vip": [{"ip_address": {"addr": "10.99.0.1", "type": "V4"}}]})),
        )
        .await;
    let vip_uuid = vip["uuid"].as_str().expect("uuid").to_string();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "virtualservice",
            json!({"name": "a", "services": [{"enable_ssl": false}]}),
            r#"{"services":"{"port":"This field is required."}"}"#,
        ),
        (
            "virtualservice",
            json!({"name": "b", "services": [{"port": 70000}]}),
            "less than or equal to 65535",
        ),
        (
            "virtualservice",
            json!({"name": "c", "type": "VS_TYPE_OTHER"}),
            r#""VS_TYPE_OTHER" is not a valid choice."#,
        ),
        (
            "virtualservice",
            json!({"name": "d", "pool_ref": format!("/api/vsvip/{vip_uuid}")}),
            r#"{"pool_ref":"Refers to a VsVip object"#,
        ),
        (
            "virtualservice",
            json!({"name": "e", "http_policies": [{"index": 11}]}),
            "http_policy_set_ref",
        ),
        (
            "vsvip",
            json!({"name": "f", "vip": [{"ip_address": {"addr": "10.0.0.256", "type": "V4"}}]}),
            "not a valid IPv4 address",
        ),
        (
            "vsvip",
            json!({"name": "g", "vip": [{"ip_address": {"addr": "::1", "type": "V4"}}]}),
            "not a valid IPv4 address",
        ),
        (
            "vsvip",
            json!({"name": "h", "vip": [{"ip_address": {"addr": "10.0.0.1"}}]}),
            r#"{"type":"This field is required."}"#,
        ),
        (
            "vsvip",
            json!({"name": "i", "vip": [{"auto_allocate_ip": true, "auto_allocate_ip_type": "V5"}]}),
            "auto_allocate_ip_type",
        ),
        (
            "pool",
            json!({"name": "j", "servers": [{"port": 80}]}),
            r#"{"servers":"{"ip":"This field is required."}"}"#,
        ),
        (
            "pool",
            json!({"name": "k", "default_server_port": 0}),
            "default_server_port",
        ),
        (
            "pool",
            json!({"name": "l", "lb_algorithm": "LB_ALGORITHM_MAGIC"}),
            "lb_algorithm",
        ),
        (
            "poolgroup",
            json!({"name": "m", "members": [{"ratio": 1}]}),
            "pool_ref",
        ),
        (
            "httppolicyset",
            json!({"name": "n", "http_request_policy": {"rules": [{"name": "r", "index": 0, "enable": true, "switching_action": {"action": "SELECT_NOTHING"}}]}}),
            "action",
        ),
        (
            "sslkeyandcertificate",
            json!({"name": "o", "certificate": {"certificate": "not a certificate"}, "key": "x"}),
            "Import error",
        ),
        (
            "l4policyset",
            json!({"name": "p", "l4_connection_policy": {"rules": [{"name": "r", "index": 0, "action": {"select_pool": {"action_type": "L4_RULE_ACTION_SELECT_POOL"}}, "match": {"port": {"match_criteria": "IS_IN", "ports": [0]}}}]}}),
            "ports",
        ),
        // From the controller's published schema (ako-model): an enumeration value it does not know, a field the
        // kind does not have, a JSON type it would not parse, a required field of a nested object.
        (
            "pool",
            json!({"name": "t", "lb_algorithm": "LB_ALGORITHM_NOPE"}),
            "\"LB_ALGORITHM_NOPE\" is not a valid choice.",
        ),
        (
            "virtualservice",
            json!({"name": "u", "not_a_virtualservice_field": 1}),
            "{\"not_a_virtualservice_field\":\"Unknown field.\"}",
        ),
        (
            "pool",
            json!({"name": "v", "enabled": 3}),
            "Must be a valid boolean.",
        ),
        (
            "httppolicyset",
            json!({"name": "w", "http_request_policy": {"rules": [{"index": 1, "enable": true}]}}),
            "{\"http_request_policy\":\"{\"rules\":\"{\"name\":\"This field is required.\"}\"}\"}",
        ),
        (
            "network",
            json!({"name": "q", "configured_subnets": [{"prefix": {"ip_addr": {"addr": "10.1.0.0", "type": "V4"}, "mask": 40}}]}),
            "mask",
        ),
        (
            "ipamdnsproviderprofile",
            json!({"name": "r", "type": "IPAMDNS_TYPE_NOPE"}),
            "type",
        ),
        (
            "ipamdnsproviderprofile",
            json!({"name": "s", "type": "IPAMDNS_TYPE_INTERNAL", "internal_profile": {"usable_networks": [{"nw_ref": format!("/api/vsvip/{vip_uuid}")}]}}),
            "nw_ref",
        ),
    ];
    for (t, body, want) in cases {
        let (status, answer) = raw
            .send("POST", &format!("/api/{t}"), None, Some(&body))
            .await;
        let error = answer["error"].as_str().unwrap_or_default();
        assert_eq!(status, 400, "{t} {body}: {answer}");
        assert!(error.contains(want), "{t} {body}: {error:?} lacks {want:?}");
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn refs_by_uuid_obey_the_tenant_rule_and_wildcard_writes_are_refused() {
    let emu = start(None).await;
    let raw = Raw::login(&emu).await;
    for t in ["ta", "tb"] {
        let (status, _) = raw
            .send("POST", "/api/tenant", None, Some(&json!({"name": t})))
            .await;
        assert_eq!(status, 201);
    }
    let (_, b_pool) = raw
        .send(
            "POST",
            "/api/pool",
            Some("tb"),
            Some(&json!({"name": "b-pool"})),
        )
        .await;
    let b_uuid = b_pool["uuid"].as_str().expect("uuid");
    let (_, admin_pool) = raw
        .send(
            "POST",
            "/api/pool",
            None,
            Some(&json!({"name": "shared-pool"})),
        )
        .await;
    let admin_uuid = admin_pool["uuid"].as_str().expect("uuid");
    let cases = [
        (format!("/api/pool/{b_uuid}"), 400),
        (b_uuid.to_string(), 400),
        ("/api/pool/?name=b-pool".to_string(), 400),
        (format!("/api/pool/{admin_uuid}"), 201),
        ("/api/pool/?name=shared-pool".to_string(), 201),
    ];
    for (i, (pool_ref, want)) in cases.iter().enumerate() {
        let (status, answer) = raw
            .send(
                "POST",
                "/api/virtualservice",
                Some("ta"),
                Some(&json!({"name": format!("vs-{i}"), "pool_ref": pool_ref})),
            )
            .await;
        assert_eq!(status, *want, "{pool_ref}: {answer}");
    }
    // The owning tenant may refer to it by uuid.
    let (status, _) = raw
        .send(
            "POST",
            "/api/virtualservice",
            Some("tb"),
            Some(&json!({"name": "vs-b", "pool_ref": format!("/api/pool/{b_uuid}")})),
        )
        .await;
    assert_eq!(status, 201);
    // `*` reads across tenants but never writes.
    let (status, all) = raw.send("GET", "/api/pool", Some("*"), None).await;
    assert_eq!((status, all["count"].as_u64()), (200, Some(2)));
    let before = emu.object_count();
    let (status, answer) = raw
        .send(
            "POST",
            "/api/pool",
            Some("*"),
            Some(&json!({"name": "anywhere"})),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("X-Avi-Tenant: *")
    );
    let (status, _) = raw
        .send(
            "PUT",
            &format!("/api/pool/{admin_uuid}"),
            Some("*"),
            Some(&json!({"name": "shared-pool", "enabled": false})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = raw
        .send("DELETE", &format!("/api/pool/{b_uuid}"), Some("*"), None)
        .await;
    assert_eq!(status, 400);
    assert_eq!(emu.object_count(), before, "nothing was written");
    emu.shutdown().await;
}

#[tokio::test]
async fn an_uploaded_certificate_is_parsed_and_its_key_never_comes_back() {
    let emu = start(None).await;
    let raw = Raw::login(&emu).await;
    let ca = ako::certs::generate_ca("ako-test-ca", 90).expect("ca");
    let leaf = ca
        .issue(&["app.avi.jarvis.lab".into()], &[], 90)
        .expect("leaf");
    let body =
        json!({"name": "c1", "key": leaf.key_pem, "certificate": {"certificate": leaf.cert_pem}});
    let (status, created) = raw
        .send("POST", "/api/sslkeyandcertificate", None, Some(&body))
        .await;
    assert_eq!(status, 201, "{created}");
    let cert = &created["certificate"];
    assert_eq!(cert["issuer"]["common_name"], json!("ako-test-ca"));
    assert_eq!(cert["self_signed"], json!(false));
    assert_eq!(cert["expiry_status"], json!("SSL_CERTIFICATE_GOOD"));
    assert!(
        cert["days_until_expire"]
            .as_i64()
            .is_some_and(|d| (88..=90).contains(&d))
    );
    let not_after = cert["not_after"].as_str().expect("not_after");
    assert!(jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", not_after).is_ok());
    assert!(
        cert["fingerprint"]
            .as_str()
            .expect("fp")
            .starts_with("SHA1 Fingerprint=")
    );
    assert!(created["key_params"]["algorithm"].as_str().is_some());
    assert!(created.get("key").is_none() && cert.get("certificate").is_none());
    let uuid = created["uuid"].as_str().expect("uuid");
    let (_, read) = raw
        .send(
            "GET",
            &format!("/api/sslkeyandcertificate/{uuid}"),
            None,
            None,
        )
        .await;
    assert_eq!(read["key"], json!("<sensitive>"));
    assert_eq!(read["certificate"]["not_after"], json!(not_after));
    assert!(
        !read.to_string().contains("PRIVATE KEY"),
        "the key leaks: {read}"
    );
    // Echoing the GET back (key masked) keeps the stored key.
    let (status, _) = raw
        .send(
            "PUT",
            &format!("/api/sslkeyandcertificate/{uuid}"),
            None,
            Some(&read),
        )
        .await;
    assert_eq!(status, 200);
    // A key of another certificate, or no key, is refused.
    let other = ako::certs::generate_ca("other", 1).expect("other");
    for (name, body) in [
        (
            "mismatch",
            json!({"name": "c2", "key": other.key_pem, "certificate": {"certificate": leaf.cert_pem}}),
        ),
        (
            "no key",
            json!({"name": "c3", "certificate": {"certificate": leaf.cert_pem}}),
        ),
    ] {
        let (status, answer) = raw
            .send("POST", "/api/sslkeyandcertificate", None, Some(&body))
            .await;
        assert_eq!(status, 400, "{name}: {answer}");
        assert!(!answer.to_string().contains("PRIVATE KEY"), "{name}");
    }
    emu.shutdown().await;
}

/// One object of every type the operator writes, with the optional fields it may send.
fn every_shape(cert_pem: &str, key_pem: &str) -> Vec<(&'static str, Value)> {
    vec![
        (
            "tenant",
            json!({"name": "shape-t", "description": "d", "local": "true"}),
        ),
        (
            "network",
            json!({"name": "shape-net", "created_by": "ako-shape", "dhcp_enabled": false,
            "configured_subnets": [{"prefix": {"ip_addr": {"addr": "10.77.0.0", "type": "V4"}, "mask": 24},
                "static_ip_ranges": [{"type": "STATIC_IPS_FOR_VIP",
                    "range": {"begin": {"addr": "10.77.0.10", "type": "V4"}, "end": {"addr": "10.77.0.20", "type": "V4"}}}]},
                {"prefix": {"ip_addr": {"addr": "fd77::", "type": "V6"}, "mask": 64}}]}),
        ),
        (
            "ipamdnsproviderprofile",
            json!({"name": "shape-ipam", "type": "IPAMDNS_TYPE_INTERNAL",
            "internal_profile": {"usable_networks": [{"nw_ref": "/api/network/?name=shape-net"}], "ttl": 60}}),
        ),
        (
            "ipamdnsproviderprofile",
            json!({"name": "shape-dns", "type": "IPAMDNS_TYPE_INTERNAL_DNS",
            "internal_profile": {"dns_service_domain": [{"domain_name": "shape.example", "pass_through": true}], "ttl": 30}}),
        ),
        (
            "vrfcontext",
            json!({"name": "shape-vrf", "static_routes": [{"route_id": "1",
            "prefix": {"ip_addr": {"addr": "10.8.0.0", "type": "V4"}, "mask": 16},
            "next_hop": {"addr": "10.77.0.1", "type": "V4"}}]}),
        ),
        (
            "serviceenginegroup",
            json!({"name": "shape-seg", "ha_mode": "HA_MODE_SHARED_PAIR", "max_se": 4}),
        ),
        (
            "vsvip",
            json!({"name": "shape-vip-static", "markers": [{"key": "clustername", "values": ["k8s"]}],
            "vip": [{"vip_id": "0", "ip_address": {"addr": "10.99.1.1", "type": "V4"}},
                    {"vip_id": "1", "ip_address": {"addr": "fd99::1", "type": "V6"}}]}),
        ),
        (
            "vsvip",
            json!({"name": "shape-vip-auto", "vip": [{"auto_allocate_ip": true,
            "ipam_network_subnet": {"network_ref": "/api/network/?name=dpg-sedatapath-18"}}],
            "dns_info": [{"fqdn": "shape.avi.jarvis.lab", "ttl": 45}]}),
        ),
        (
            "pool",
            json!({"name": "shape-pool", "created_by": "ako-shape", "lb_algorithm": "LB_ALGORITHM_ROUND_ROBIN",
            "default_server_port": 8080, "health_monitor_refs": ["/api/healthmonitor/?name=System-TCP"],
            "servers": [{"ip": {"addr": "10.5.0.1", "type": "V4"}, "port": 0, "ratio": 3, "enabled": false},
                        {"ip": {"addr": "fd05::1", "type": "V6"}, "port": 9090}]}),
        ),
        ("pool", json!({"name": "shape-pool-2"})),
        (
            "poolgroup",
            json!({"name": "shape-pg", "min_servers": 1, "members": [
            {"pool_ref": "/api/pool/?name=shape-pool", "ratio": 100, "priority_label": "10"},
            {"pool_ref": "/api/pool/?name=shape-pool-2", "ratio": 0}]}),
        ),
        (
            "sslkeyandcertificate",
            json!({"name": "shape-cert", "type": "SSL_CERTIFICATE_TYPE_VIRTUALSERVICE",
            "key": key_pem, "certificate": {"certificate": cert_pem}}),
        ),
        (
            "sslkeyandcertificate",
            json!({"name": "shape-ca", "type": "SSL_CERTIFICATE_TYPE_CA",
            "certificate": {"certificate": cert_pem}}),
        ),
        (
            "httppolicyset",
            json!({"name": "shape-hps", "created_by": "ako-shape", "http_request_policy": {"rules": [
            {"name": "r0", "index": 0, "enable": true,
             "match": {"host_hdr": {"match_criteria": "HDR_EQUALS", "value": ["a.avi.jarvis.lab"]},
                       "path": {"match_criteria": "BEGINS_WITH", "match_case": "SENSITIVE", "match_str": ["/api"]},
                       "vs_port": {"match_criteria": "IS_IN", "ports": [443]}},
             "switching_action": {"action": "HTTP_SWITCHING_SELECT_POOLGROUP", "pool_group_ref": "/api/poolgroup/?name=shape-pg"}},
            {"name": "r1", "index": 1, "enable": false,
             "redirect_action": {"protocol": "HTTPS", "port": 443, "status_code": "HTTP_REDIRECT_STATUS_CODE_302"}}]},
            "http_security_policy": {}}),
        ),
        (
            "l4policyset",
            json!({"name": "shape-l4", "is_internal_policy": false, "l4_connection_policy": {"rules": [
            {"name": "l0", "index": 0, "enable": true,
             "match": {"port": {"match_criteria": "IS_IN", "ports": [80], "port_ranges": [{"start": 8000, "end": 8010}]},
                       "protocol": {"match_criteria": "IS_IN", "protocol": "PROTOCOL_TCP"}},
             "action": {"select_pool": {"action_type": "L4_RULE_ACTION_SELECT_POOL", "pool_ref": "/api/pool/?name=shape-pool-2"}}}]}}),
        ),
        (
            "virtualservice",
            json!({"name": "shape-parent", "type": "VS_TYPE_VH_PARENT", "created_by": "ako-shape",
            "vsvip_ref": "/api/vsvip/?name=shape-vip-auto",
            "services": [{"port": 80}, {"port": 443, "enable_ssl": true, "port_range_end": 443}],
            "application_profile_ref": "/api/applicationprofile/?name=System-Secure-HTTP",
            "ssl_key_and_certificate_refs": ["/api/sslkeyandcertificate/?name=shape-cert"],
            "ssl_profile_ref": "/api/sslprofile/?name=System-Standard",
            "pool_group_ref": "/api/poolgroup/?name=shape-pg",
            "http_policies": [{"index": 11, "http_policy_set_ref": "/api/httppolicyset/?name=shape-hps"}],
            "markers": [{"key": "clustername", "values": ["k8s"]}], "cloud_config_cksum": "123"}),
        ),
        (
            "virtualservice",
            json!({"name": "shape-child", "type": "VS_TYPE_VH_CHILD",
            "vh_parent_vs_uuid": "/api/virtualservice/?name=shape-parent", "vh_domain_name": ["a.avi.jarvis.lab"],
            "pool_ref": "/api/pool/?name=shape-pool", "east_west_placement": false, "ign_pool_net_reach": false}),
        ),
        (
            "virtualservice",
            json!({"name": "shape-l4vs", "vsvip_ref": "/api/vsvip/?name=shape-vip-static",
            "services": [{"port": 53, "override_network_profile_ref": "/api/networkprofile/?name=System-UDP-Fast-Path"}],
            "application_profile_ref": "/api/applicationprofile/?name=System-L4-Application",
            "l4_policies": [{"index": 0, "l4_policy_set_ref": "/api/l4policyset/?name=shape-l4"}], "enabled": false}),
        ),
    ]
}

#[tokio::test]
async fn every_accepted_shape_reads_back_identically_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let emu = start(Some(dir.path())).await;
    let raw = Raw::login(&emu).await;
    let ca = ako::certs::generate_ca("shape", 30).expect("ca");
    let mut uuids = Vec::new();
    for (t, body) in every_shape(&ca.cert_pem, &ca.key_pem) {
        let (status, answer) = raw
            .send("POST", &format!("/api/{t}"), None, Some(&body))
            .await;
        assert_eq!(status, 201, "{t} {body}: {answer}");
        uuids.push((t, answer["uuid"].as_str().expect("uuid").to_string()));
    }
    // Updates are journaled too: a PATCH and a PUT.
    let (status, _) = raw
        .send(
            "PATCH",
            &format!("/api/pool/{}", uuids[9].1),
            None,
            Some(&json!({"add": {"servers": [{"ip": {"addr": "10.5.0.9", "type": "V4"}}]}})),
        )
        .await;
    assert_eq!(status, 200);
    let before = read_all(&raw, &uuids).await;
    let count = emu.object_count();
    emu.shutdown().await;

    let emu = start(Some(dir.path())).await;
    assert_eq!(emu.object_count(), count);
    let raw = Raw::login(&emu).await;
    let after = read_all(&raw, &uuids).await;
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(strip_port(b), strip_port(a), "changed across the restart");
    }
    emu.shutdown().await;
}

/// Every object by uuid (with `#name` refs) and the cross-tenant VS listing.
async fn read_all(raw: &Raw, uuids: &[(&str, String)]) -> Vec<Value> {
    let mut out = Vec::new();
    for (t, u) in uuids {
        let (status, v) = raw
            .send("GET", &format!("/api/{t}/{u}?include_name"), None, None)
            .await;
        assert_eq!(status, 200, "{t} {u}");
        out.push(v);
    }
    let (_, listed) = raw
        .send("GET", "/api/virtualservice?page_size=200", Some("*"), None)
        .await;
    out.push(listed);
    out
}

/// The two runs listen on different ports: compare with the authority removed.
fn strip_port(v: &Value) -> String {
    let text = v.to_string();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find("https://127.0.0.1:") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + "https://127.0.0.1:".len()..];
        let digits = tail.chars().take_while(char::is_ascii_digit).count();
        out.push_str("https://127.0.0.1:PORT");
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn journal_records_the_api_now_refuses_do_not_stop_the_start() {
    use ako::emulator::journal::{self, Record};
    let dir = tempfile::tempdir().expect("tempdir");
    start(Some(dir.path())).await.shutdown().await;
    let mut records = journal::load(dir.path()).expect("load").expect("journal");
    let vsvip = |name: &str, uuid: &str, addr: &str, family: &str| Record::Put {
        t: "vsvip".into(),
        o: json!({"name": name, "uuid": uuid, "tenant_ref": "/api/tenant/admin",
                  "vip": [{"vip_id": "0", "ip_address": {"addr": addr, "type": family}}]})
        .as_object()
        .cloned()
        .expect("object"),
    };
    // Written by an older, laxer emulator: a bad address, a V6 address, a record without uuid.
    records.push(vsvip("old-bad", "vsvip-old-bad", "not-an-ip", "V4"));
    records.push(vsvip("old-v6", "vsvip-old-v6", "fd00::7", "V6"));
    records.push(Record::Put {
        t: "pool".into(),
        o: json!({"name": "no-uuid"})
            .as_object()
            .cloned()
            .expect("object"),
    });
    journal::compact(dir.path(), records).expect("compact");
    let emu = start(Some(dir.path())).await;
    let raw = Raw::login(&emu).await;
    for (uuid, addr) in [("vsvip-old-bad", "not-an-ip"), ("vsvip-old-v6", "fd00::7")] {
        let (status, v) = raw
            .send("GET", &format!("/api/vsvip/{uuid}"), None, None)
            .await;
        assert_eq!(status, 200, "{uuid} kept");
        assert_eq!(v["vip"][0]["ip_address"]["addr"], json!(addr));
    }
    emu.shutdown().await;
}
