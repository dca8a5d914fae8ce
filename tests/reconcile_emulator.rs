//! The reconciler's whole pipeline (translate -> plan -> apply -> report) against the embedded Avi emulator, with
//! the Kubernetes side as an in-memory view and a recording sink. The end-to-end tests with a real API server
//! are in e2e_reconcile.rs; these pin the pipeline's behaviour: the seed's demo, zero writes when converged,
//! drift repair, safe deletion, conflicts and faults.

mod avi_support;
mod reconciler_support;

use std::sync::Arc;
use std::time::Duration;

use ako::avi::models::{Pool, VirtualService, VsVip};
use ako::avi::{AviClient, ListQuery};
use ako::core::index::ObjKey;
use ako::core::l4::{LicenseTier, VipFamily};
use ako::emulator::{EmulatorHandle, Faults};
use ako::k8s::observe::{Change, View};
use k8s_openapi::api::core::v1::{LoadBalancerIngress, Service};
use tokio::sync::watch;

use reconciler_support::*;

#[tokio::test]
async fn seed_demo_service_gets_a_vip_inside_the_network_and_its_fqdn() {
    let emu = avi_support::start(None).await;
    let view = Arc::new(View::from_parts(
        vec![service(DEMO)],
        vec![(
            demo_key(),
            endpoints(&[("10.244.0.5", true), ("10.244.0.6", false)]),
        )],
        vec![],
    ));
    let mut r = Running::start(&emu, view, None);
    r.until("converged, events published", |p| {
        p.converged_once && p.events_pending == 0
    })
    .await;

    let status = r.sink.last_status(&demo_key()).expect("status written");
    assert_eq!(status.len(), 1);
    let ip: std::net::IpAddr = status[0]
        .ip
        .as_deref()
        .expect("ip")
        .parse()
        .expect("an address");
    let net: ipnet::IpNet = "10.10.18.0/26".parse().expect("net");
    assert!(net.contains(&ip), "EXTERNAL-IP {ip} outside {net}");
    assert_eq!(
        status[0].hostname.as_deref(),
        Some("avisvc-lb.vmug.avi.jarvis.lab")
    );

    let c = client(&emu);
    let vs: Vec<VirtualService> = list(&c).await;
    assert_eq!(vs.len(), 1);
    assert_eq!(vs[0].name, "veba-of--vmug-avisvc-lb");
    assert_eq!(vs[0].services.as_ref().map(|s| s.len()), Some(1));
    let vips: Vec<VsVip> = list(&c).await;
    let dns: Vec<String> = vips[0]
        .dns_info
        .iter()
        .flatten()
        .filter_map(|d| d.fqdn.clone())
        .collect();
    assert_eq!(dns, ["avisvc-lb.vmug.avi.jarvis.lab"]);
    assert_eq!(avi_support::vip_addr(&vips[0]), ip.to_string());
    let pools: Vec<Pool> = list(&c).await;
    assert_eq!(pools.len(), 1);
    assert_eq!(pools[0].name, "veba-of--vmug-avisvc-lb-TCP-80");
    let servers: Vec<String> = pools[0]
        .servers
        .iter()
        .flatten()
        .filter_map(|s| s.ip.as_ref().and_then(|i| i.addr.clone()))
        .collect();
    assert_eq!(servers, ["10.244.0.5"], "only the ready endpoint");

    let events = r.sink.events_for(&demo_key());
    assert!(
        events.iter().any(|n| !n.warning
            && n.reason == "Synced"
            && n.message.contains("veba-of--vmug-avisvc-lb")),
        "{events:?}"
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sync_writes_a_batchs_statuses_while_the_next_batchs_avi_writes_run() {
    // More Services than one full-sync batch holds (256 groups), so the cold start runs two batches. The first
    // status write is held until the controller has seen writes beyond the first batch's 4 per Service: it is
    // released only if the second batch's Avi writes run while the first batch's statuses are being written.
    let n = 300;
    let emu = Arc::new(
        ako::emulator::spawn(ako::emulator::EmulatorConfig {
            seed: ako::emulator::seed_with_vip_network(
                "many-vips",
                "10.200.0.0/16".parse().expect("subnet"),
            )
            .expect("seed"),
            ..avi_support::config(None)
        })
        .await
        .expect("emulator starts"),
    );
    let services: Vec<Service> = (0..n)
        .map(|i| {
            service(&format!(
                r#"
metadata: {{name: svc-{i:03}, namespace: batch, uid: u-{i}, creationTimestamp: "2026-01-01T00:00:00Z"}}
spec:
  type: LoadBalancer
  ports: [{{name: tcp, port: 80, targetPort: 8080, protocol: TCP}}]
"#
            ))
        })
        .collect();
    let view = Arc::new(View::from_parts(services, vec![], vec![]));
    let first_batch_writes = 256 * 4;
    let mut r = Running::start_with(&emu, view, |s| {
        s.placement.vip_network = Some(("many-vips".into(), "10.200.0.0/16".parse().ok()));
    });
    let counters = Arc::clone(&emu);
    *r.sink.hold_first_status.lock() = Some(Box::new(move || {
        counters.counters().writes > first_batch_writes
    }));
    let p = r.until("converged", |p| p.converged_once).await;
    assert_eq!(p.stats.creates, n * 4, "{p:?}");
    assert_eq!(
        *r.sink.first_status_released.lock(),
        Some(true),
        "the second batch's Avi writes ran while the first batch's statuses were being written"
    );
    assert_eq!(
        r.sink.status.lock().len(),
        n as usize,
        "one status per Service"
    );
    r.stop().await;
}

#[tokio::test]
async fn converged_state_makes_no_writes_after_a_restart_or_a_resync() {
    let emu = avi_support::start(None).await;
    let view = Arc::new(View::from_parts(
        vec![service(DEMO)],
        vec![(demo_key(), endpoints(&[("10.244.0.5", true)]))],
        vec![],
    ));
    let mut r = Running::start(&emu, view.clone(), None);
    r.until("converged", |p| p.converged_once).await;
    assert_eq!(
        r.progress.borrow().stats.creates,
        4,
        "VsVip, Pool, L4PolicySet, VirtualService"
    );
    let before = writes(&emu);
    let p = r.change(Change::Resync).await;
    assert_eq!(
        writes(&emu),
        before,
        "a resync of a converged system writes nothing: {p:?}"
    );
    r.stop().await;

    let mut again = Running::start(&emu, view, None);
    let p = again.until("converged", |p| p.converged_once).await;
    assert_eq!(
        writes(&emu),
        before,
        "a restart with nothing changed writes nothing: {p:?}"
    );
    assert_eq!(
        again.sink.status.lock().len(),
        0,
        "the status is already right"
    );
    again.stop().await;
}

#[tokio::test]
async fn members_follow_readiness_and_a_port_edit_touches_only_its_objects() {
    let emu = avi_support::start(None).await;
    let view = Arc::new(View::from_parts(
        vec![service(DEMO)],
        vec![(demo_key(), endpoints(&[("10.244.0.5", true)]))],
        vec![],
    ));
    let mut r = Running::start(&emu, view.clone(), None);
    r.until("converged", |p| p.converged_once).await;
    let c = client(&emu);

    emu.reset_counters();
    r.change(view.set_endpoints(
        &demo_key(),
        vec![endpoints(&[("10.244.0.5", false), ("10.244.0.7", true)])],
    ))
    .await;
    let pools: Vec<Pool> = list(&c).await;
    let servers: Vec<String> = pools[0]
        .servers
        .iter()
        .flatten()
        .filter_map(|s| s.ip.as_ref().and_then(|i| i.addr.clone()))
        .collect();
    assert_eq!(servers, ["10.244.0.7"]);
    assert_eq!(
        emu.counters().writes,
        1,
        "one pool update: {:?}",
        emu.counters().by_method
    );
    assert_eq!(emu.counters().get("PUT", "pool"), 1);

    // Add a port: a new pool, and the policy set and virtual service change; the VsVip does not.
    emu.reset_counters();
    let mut svc = service(DEMO);
    if let Some(ports) = svc.spec.as_mut().and_then(|s| s.ports.as_mut()) {
        ports.push(
            serde_json::from_value(
                serde_json::json!({"name": "https", "port": 443, "targetPort": 8443}),
            )
            .expect("port"),
        );
    }
    r.change(view.upsert_service(svc)).await;
    let counts = emu.counters();
    assert_eq!(counts.get("POST", "pool"), 1, "{:?}", counts.by_method);
    assert_eq!(
        counts.get("PUT", "l4policyset"),
        1,
        "{:?}",
        counts.by_method
    );
    assert_eq!(
        counts.get("PUT", "virtualservice"),
        1,
        "{:?}",
        counts.by_method
    );
    assert_eq!(counts.get("PUT", "vsvip"), 0, "{:?}", counts.by_method);
    assert_eq!(counts.writes, 3, "{:?}", counts.by_method);

    // Remove it again: the pool goes after the virtual service and policy set stop naming it.
    emu.reset_counters();
    r.change(view.upsert_service(service(DEMO))).await;
    let counts = emu.counters();
    assert_eq!(counts.get("DELETE", "pool"), 1, "{:?}", counts.by_method);
    assert_eq!(counts.writes, 3, "{:?}", counts.by_method);
    r.stop().await;
}

#[tokio::test]
async fn a_status_overwritten_by_someone_else_is_written_again_at_once_and_akos_own_coming_back_costs_nothing()
 {
    let (emu, view, mut r) = demo_converged().await;
    let wrote = r.last_status_write().expect("a status written");
    assert_eq!(wrote.0, demo_key());
    assert!(!wrote.1.is_empty(), "{wrote:?}");

    // ako's own write coming back through the watch (the recorder put it into the view): no pass, no write.
    let before = (r.sink.status.lock().len(), r.progress.borrow().stats.passes);
    r.taken(Change::ServiceStatus(vec![demo_key()])).await;
    let after = (r.sink.status.lock().len(), r.progress.borrow().stats.passes);
    assert_eq!(after, before, "nothing to do for ako's own status");

    // Someone else writes another address into the status: ako writes its own again, with no full sync and no
    // Avi write.
    overwrite_service_status(&view, &demo_key(), "192.0.2.1");
    emu.reset_counters();
    let p = r.change(Change::ServiceStatus(vec![demo_key()])).await;
    assert_eq!(p.stats.full_syncs, 1, "no full sync was needed");
    assert_eq!(r.last_status_write().as_ref(), Some(&wrote));
    assert_eq!(emu.counters().writes, 0, "{:?}", emu.counters().by_method);
    r.stop().await;
}

#[tokio::test]
async fn a_status_another_writer_keeps_overwriting_is_restored_with_backoff_and_a_warning() {
    let emu = avi_support::start(None).await;
    let view = Arc::new(View::from_parts(vec![service(DEMO)], vec![], vec![]));
    let mut r = Running::start_with(&emu, view.clone(), |s| {
        s.retry_base = Duration::from_secs(1)
    });
    r.until("converged", |p| p.converged_once).await;
    let wrote = r.last_status_write().expect("a status written");
    let overwrite = |ip: &str| overwrite_service_status(&view, &demo_key(), ip);
    // The first two overwrites are undone at once.
    for ip in ["192.0.2.1", "192.0.2.2"] {
        overwrite(ip);
        r.change(Change::ServiceStatus(vec![demo_key()])).await;
        assert_eq!(r.last_status_write().as_ref(), Some(&wrote), "{ip}");
    }
    // The third in a row: a fight with another writer. Undone after a backoff, not at API speed, and announced.
    let writes_before = r.sink.status.lock().len();
    overwrite("192.0.2.3");
    r.taken(Change::ServiceStatus(vec![demo_key()])).await;
    assert_eq!(r.sink.status.lock().len(), writes_before, "not at once");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while r.sink.status.lock().len() == writes_before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "restored after the backoff"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(r.last_status_write().as_ref(), Some(&wrote));
    r.until("events published", |p| p.events_pending == 0).await;
    let warned = r
        .sink
        .events
        .lock()
        .iter()
        .filter(|(k, n)| *k == demo_key() && n.reason == "StatusOverwritten")
        .count();
    assert_eq!(warned, 1, "announced once");
    r.stop().await;
}

#[tokio::test]
async fn deleting_the_service_removes_its_objects_and_nothing_else() {
    let emu = avi_support::start(None).await;
    let other = service(
        "metadata: {name: other, namespace: vmug}\nspec: {type: LoadBalancer, ports: [{port: 8080}]}",
    );
    let view = Arc::new(View::from_parts(vec![service(DEMO), other], vec![], vec![]));
    let mut r = Running::start(&emu, view.clone(), None);
    r.until("converged", |p| p.converged_once).await;
    let objects = emu.object_count();
    r.change(view.remove_service(&demo_key())).await;
    let c = client(&emu);
    let vs: Vec<VirtualService> = list(&c).await;
    assert_eq!(
        vs.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
        ["veba-of--vmug-other"]
    );
    assert_eq!(emu.object_count(), objects - 4);
    r.stop().await;
}

#[tokio::test]
async fn a_virtual_service_deleted_or_edited_on_the_controller_is_restored_by_a_full_sync() {
    let emu = avi_support::start(None).await;
    let view = Arc::new(View::from_parts(vec![service(DEMO)], vec![], vec![]));
    let mut r = Running::start(&emu, view, Some(Duration::from_secs(3600)));
    r.until("converged", |p| p.converged_once).await;
    let c = client(&emu);
    let vs: Vec<VirtualService> = list(&c).await;
    let uuid = vs[0].uuid.clone().expect("uuid");
    c.delete_if_exists::<VirtualService>(&uuid)
        .await
        .expect("deleted by hand");
    let pools: Vec<Pool> = list(&c).await;
    let mut edited = pools[0].clone();
    edited.health_monitor_refs = Some(vec![]);
    // What rules manage (the algorithm) is ako's again; a field nothing of ako's sets stays as edited.
    edited.lb_algorithm = Some("LB_ALGORITHM_ROUND_ROBIN".into());
    edited
        .extra
        .insert("connection_ramp_duration".into(), serde_json::json!(42));
    c.update(&edited).await.expect("edited by hand");

    r.change(Change::Resync).await;
    let vs: Vec<VirtualService> = list(&c).await;
    assert_eq!(vs.len(), 1, "the virtual service is back");
    let pools: Vec<Pool> = list(&c).await;
    let monitors = pools[0].health_monitor_refs.clone().unwrap_or_default();
    assert_eq!(
        monitors.len(),
        1,
        "the health monitor ako sets is back: {monitors:?}"
    );
    assert_eq!(
        pools[0].lb_algorithm.as_deref(),
        Some("LB_ALGORITHM_LEAST_CONNECTIONS"),
        "the algorithm (an L4Rule's field) is back at its default"
    );
    assert_eq!(
        pools[0].extra.get("connection_ramp_duration"),
        Some(&serde_json::json!(42)),
        "a field ako does not manage is kept"
    );
    r.stop().await;
}

/// The demo Service programmed, then deleted while ako was down; ako starts again while every request to the
/// controller fails with `status` and makes its first full sync. Returns the emulator, the running reconciler
/// and the object count before the deletion (checked unchanged: nothing is deleted on an incomplete read).
async fn restarted_after_a_deletion_while_the_controller_fails(
    status: u16,
) -> (EmulatorHandle, Running, usize) {
    let (emu, view, r) = demo_converged().await;
    r.stop().await;
    let objects = emu.object_count();
    view.remove_service(&demo_key());
    emu.set_faults(Faults {
        error_rates: [(status, 1.0)].into(),
        ..Faults::default()
    });
    let mut r = Running::start(&emu, view, None);
    r.until("a full sync attempt", |p| p.stats.full_syncs >= 1)
        .await;
    assert_eq!(
        emu.object_count(),
        objects,
        "no deletion on an incomplete read"
    );
    (emu, r, objects)
}

#[tokio::test]
async fn nothing_is_deleted_while_the_controller_cannot_be_read() {
    let (emu, mut r, objects) = restarted_after_a_deletion_while_the_controller_fails(500).await;
    assert_eq!(emu.counters().get("DELETE", "virtualservice"), 0);

    // Once the controller answers, the orphans go.
    emu.set_faults(Faults::default());
    r.change(Change::Resync).await;
    assert_eq!(emu.object_count(), objects - 4);
    r.stop().await;
}

#[tokio::test]
async fn a_full_sync_that_could_not_read_the_controller_reads_it_again_soon_and_then_deletes_orphans()
 {
    // Periodic full syncs are off: nothing but the retried read can bring the deletion.
    let (emu, r, objects) = restarted_after_a_deletion_while_the_controller_fails(503).await;
    emu.set_faults(Faults::default());
    let deleted = tokio::time::timeout(Duration::from_secs(15), async {
        while emu.object_count() != objects - 4 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        deleted.is_ok(),
        "the orphans went once the controller answered again, without a resync: {:?}",
        r.progress.borrow()
    );
    assert!(r.progress.borrow().stats.full_syncs >= 2);
    r.stop().await;
}

#[tokio::test]
async fn an_object_of_someone_else_with_our_name_is_reported_and_left_alone() {
    let emu = avi_support::start(None).await;
    // Someone created a VsVip with the name ako wants, without created_by.
    let c = AviClient::new(avi_support::client_config(&emu)).expect("client");
    c.create(&VsVip {
        name: "veba-of--vmug-avisvc-lb".into(),
        ..VsVip::default()
    })
    .await
    .expect("foreign vsvip");
    let view = Arc::new(View::from_parts(vec![service(DEMO)], vec![], vec![]));
    let mut r = Running::start(&emu, view, None);
    r.until("converged, events published", |p| {
        p.converged_once && p.events_pending == 0
    })
    .await;
    let events = r.sink.events_for(&demo_key());
    assert!(
        events.iter().any(|n| n.warning
            && n.message.contains("veba-of--vmug-avisvc-lb")
            && n.message.contains("not created by")),
        "{events:?}"
    );
    let theirs: Vec<VsVip> = c
        .list(&ListQuery::by_name("veba-of--vmug-avisvc-lb"))
        .await
        .expect("list");
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].created_by, None, "not adopted, not overwritten");
    assert!(
        r.sink.last_status(&demo_key()).is_none(),
        "no VIP of someone else's object is published"
    );
    r.stop().await;
}

#[tokio::test]
async fn injected_errors_latency_and_session_expiry_still_converge_without_duplicates() {
    let emu = avi_support::start(None).await;
    emu.set_faults(Faults {
        latency_ms: 5,
        error_rates: [(503, 0.2), (429, 0.1)].into(),
        retry_after_secs: 0,
        ..Faults::default()
    });
    let services: Vec<Service> = (0..10)
        .map(|i| service(&format!("metadata: {{name: s{i}, namespace: vmug}}\nspec: {{type: LoadBalancer, ports: [{{port: 80}}]}}")))
        .collect();
    let view = Arc::new(View::from_parts(services, vec![], vec![]));
    let mut r = Running::start(&emu, view, None);
    r.until("converged, the controller read and every retry done", |p| {
        p.converged_once && p.controller_read && p.retrying == 0
    })
    .await;
    emu.expire_sessions();
    r.change(Change::Resync).await;
    // A full sync whose read failed after the client's retries is repeated with backoff: wait for one that read
    // the controller (through the expired session) and for every group's retry.
    r.until("the controller read again and every retry done", |p| {
        p.controller_read && p.retrying == 0
    })
    .await;
    let fired = emu.counters().faults;
    assert!(
        fired.injected.values().sum::<u64>() > 0,
        "faults fired: {fired:?}"
    );
    assert!(fired.sessions_expired > 0, "{fired:?}");
    emu.set_faults(Faults::default());
    let c = client(&emu);
    let vs: Vec<VirtualService> = list(&c).await;
    assert_eq!(
        vs.len(),
        10,
        "one virtual service per Service, no duplicate"
    );
    let pools: Vec<Pool> = list(&c).await;
    assert_eq!(pools.len(), 10);
    for i in 0..10 {
        assert!(
            r.sink
                .last_status(&ObjKey::new("vmug", format!("s{i}")))
                .is_some_and(|s| s.len() == 1)
        );
    }
    r.stop().await;
}

#[tokio::test]
async fn a_follower_writes_nothing_until_it_leads() {
    let (emu, view, mut r) = demo_converged().await;
    let before = writes(&emu);
    r.leader.send(false).expect("leader flag");
    // Changes arrive while following: nothing is written.
    view.remove_service(&demo_key());
    r.taken(Change::Services(vec![demo_key()])).await;
    assert_eq!(writes(&emu), before);
    r.leader.send(true).expect("leader flag");
    r.until("the full sync on leading", |p| p.stats.full_syncs >= 2)
        .await;
    assert!(writes(&emu) > before, "the leader deletes the orphans");
    r.stop().await;
}

#[tokio::test]
async fn a_leader_that_loses_the_lease_with_a_retry_pending_sleeps_instead_of_spinning() {
    let (emu, view, mut r) = demo_converged().await;
    // Every write fails from now on: the edit leaves a retry pending.
    emu.set_faults(Faults {
        error_rates: [(503, 1.0)].into(),
        retry_after_secs: 0,
        ..Faults::default()
    });
    let mut edited = service(DEMO);
    if let Some(p) = edited.spec.as_mut().and_then(|s| s.ports.as_mut()) {
        p[0].port = 81;
    }
    r.change(view.upsert_service(edited)).await;
    r.until("a retry pending", |p| p.retrying > 0).await;
    let waits = r.progress.borrow().stats.waits;
    r.leader.send(false).expect("leader flag");
    r.until("demoted, waiting", |p| p.stats.waits > waits).await;
    // Demoted with a retry due: the worker must wait for leadership, not loop on a past deadline (which burns a
    // whole core, going back to waiting thousands of times a second). In a second it waits once or not at all.
    let waits = r.progress.borrow().stats.waits;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let woke = r.progress.borrow().stats.waits - waits;
    assert!(
        woke <= 2,
        "the worker woke {woke} times in 1 s while following"
    );
    emu.set_faults(Faults::default());
    r.leader.send(true).expect("leader flag");
    r.until("the retry done once leading", |p| p.retrying == 0)
        .await;
    r.stop().await;
}

#[tokio::test]
async fn environment_check_reads_the_dns_profile_and_the_licence_tier_and_names_what_is_missing() {
    let emu = avi_support::start(None).await;
    let c = client(&emu);
    let (env, problems) = ako::reconcile::env::check(&c, &placement())
        .await
        .expect("controller answers");
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(env.dns_domains, ["avi.jarvis.lab"]);

    let mut wrong = placement();
    wrong.se_group = "no-such-group".into();
    wrong.vip_network = Some(("no-such-net".into(), None));
    let (_, problems) = ako::reconcile::env::check(&c, &wrong)
        .await
        .expect("controller answers");
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].contains("serviceEngineGroupName \"no-such-group\" does not exist"),
        "{problems:?}"
    );
    assert!(problems[1].contains("\"no-such-net\""), "{problems:?}");

    let mut no_subnet = placement();
    no_subnet.vip_network = Some(("dpg-sedatapath-18".into(), None));
    let (env, _) = ako::reconcile::env::check(&c, &no_subnet)
        .await
        .expect("controller answers");
    assert_eq!(
        env.vip_subnet,
        "10.10.18.0/26".parse().ok(),
        "the subnet is read from the network"
    );

    // The licence tier (it decides the TCP profile of L4 virtual services).
    assert_eq!(env.license_tier, Some(LicenseTier::Enterprise));
    let mut sys: serde_json::Value = c
        .get_json("/api/systemconfiguration")
        .await
        .expect("system configuration");
    sys["default_license_tier"] = serde_json::json!("ESSENTIALS");
    c.send(reqwest::Method::PUT, "/api/systemconfiguration", Some(&sys))
        .await
        .expect("tier changed");
    let (env, _) = ako::reconcile::env::check(&c, &placement())
        .await
        .expect("controller answers");
    assert_eq!(env.license_tier, Some(LicenseTier::EssentialsOrBasic));
}

#[tokio::test]
async fn delete_config_removes_every_owned_object_and_the_status() {
    let (emu, view, r) = demo_converged().await;
    r.stop().await;
    let seeded = emu.object_count() - 4;
    let mut r = Running::start_with(&emu, view.clone(), |s| s.delete_all = true);
    r.until("converged", |p| p.converged_once).await;
    assert_eq!(
        emu.object_count(),
        seeded,
        "only the seed's objects are left"
    );
    assert_eq!(
        r.sink.last_status(&demo_key()),
        Some(vec![]),
        "the EXTERNAL-IP is removed"
    );
    r.stop().await;
    // deleteConfig back to false: everything is rebuilt.
    let mut r = Running::start(&emu, view, None);
    r.until("converged", |p| p.converged_once).await;
    assert_eq!(emu.object_count(), seeded + 4);
    assert!(
        r.sink
            .last_status(&demo_key())
            .is_some_and(|s| s.len() == 1)
    );
    r.stop().await;
}

#[tokio::test]
async fn a_namespace_leaving_the_selector_has_its_objects_removed() {
    let emu = avi_support::start(None).await;
    let view = Arc::new(View::from_parts(vec![service(DEMO)], vec![], vec![]));
    view.set_namespace("vmug", [("ako".to_string(), "on".to_string())].into());
    let mut r = Running::start_with(&emu, view.clone(), |s| {
        s.scope = ako::core::settings::Scope {
            selector: Some(("ako".into(), "on".into())),
            blocked: vec![],
        }
    });
    r.until("converged", |p| p.converged_once).await;
    let seeded = emu.object_count() - 4;
    assert!(
        r.sink
            .last_status(&demo_key())
            .is_some_and(|s| s.len() == 1)
    );

    r.change(view.set_namespace("vmug", Default::default()))
        .await;
    assert_eq!(
        emu.object_count(),
        seeded,
        "the namespace left the selector"
    );
    assert_eq!(
        r.sink.last_status(&demo_key()),
        Some(vec![]),
        "its EXTERNAL-IP is removed"
    );

    r.change(view.set_namespace("vmug", [("ako".to_string(), "on".to_string())].into()))
        .await;
    assert_eq!(emu.object_count(), seeded + 4, "back in scope, rebuilt");
    r.stop().await;
}

#[tokio::test]
async fn a_blocked_namespace_gets_nothing() {
    let emu = avi_support::start(None).await;
    let seeded = emu.object_count();
    let view = Arc::new(View::from_parts(vec![service(DEMO)], vec![], vec![]));
    let mut r = Running::start_with(&emu, view, |s| {
        s.scope = ako::core::settings::Scope {
            selector: None,
            blocked: vec!["vmug".into()],
        }
    });
    r.until("converged", |p| p.converged_once).await;
    assert_eq!(emu.object_count(), seeded);
    assert!(r.sink.last_status(&demo_key()).is_none());
    r.stop().await;
}

#[tokio::test]
async fn delete_config_switched_live_removes_then_rebuilds() {
    use ako::reconcile::live::Live;
    let emu = avi_support::start(None).await;
    let view = Arc::new(View::from_parts(vec![service(DEMO)], vec![], vec![]));
    let live = |delete_all| Live {
        delete_all,
        scope: Default::default(),
        log_level: "INFO".into(),
        ..Live::default()
    };
    let (tx, rx) = watch::channel(live(false));
    let mut r = Running::start_live(&emu, view, |_| {}, Some(rx));
    r.until("converged", |p| p.converged_once).await;
    let seeded = emu.object_count() - 4;
    let syncs = r.progress.borrow().stats.full_syncs;
    tx.send(live(true)).expect("send");
    r.until("a full sync", |p| p.stats.full_syncs > syncs).await;
    assert_eq!(
        emu.object_count(),
        seeded,
        "deleteConfig: true removed everything"
    );
    tx.send(live(false)).expect("send");
    r.until("another full sync", |p| p.stats.full_syncs > syncs + 1)
        .await;
    assert_eq!(
        emu.object_count(),
        seeded + 4,
        "deleteConfig: false rebuilt it"
    );
    r.stop().await;
}

// ---------------------------------------------------------------------------------------------------------------
// Ingresses (L7): the same pipeline with core::l7, parts planned independently.

/// (kind, name, uuid) of every object ako owns.
async fn owned(c: &AviClient) -> std::collections::BTreeSet<(String, String, String)> {
    ako::reconcile::apply::list_owned(c, &ako::core::ownership::Identity::new("veba-of", None))
        .await
        .expect("list owned")
        .into_iter()
        .map(|e| (e.kind.obj_type().to_string(), e.name, e.uuid))
        .collect()
}

fn addr_of(status: &[LoadBalancerIngress], host: &str) -> std::net::IpAddr {
    status
        .iter()
        .find(|s| s.hostname.as_deref() == Some(host))
        .and_then(|s| s.ip.as_deref())
        .unwrap_or_else(|| panic!("no address for {host} in {status:?}"))
        .parse()
        .expect("an address")
}

#[tokio::test]
async fn seed_ingress_gets_a_shared_parent_on_80_and_443_and_a_second_app_another_vip() {
    let emu = avi_support::start(None).await;
    let view = l7_view(&[HACKAZON_ING, SHOP_ING]);
    let mut r = Running::start(&emu, view.clone(), None);
    r.until("converged, events published", |p| {
        p.converged_once && p.events_pending == 0
    })
    .await;

    let hack = ObjKey::new("vmug", "hackazon");
    let status = r.sink.last_ingress_status(&hack).expect("status written");
    assert_eq!(status.len(), 1, "{status:?}");
    let ip = addr_of(&status, "hackazon.avi.jarvis.lab");
    let net: ipnet::IpNet = "10.10.18.0/26".parse().expect("net");
    assert!(net.contains(&ip), "ADDRESS {ip} outside {net}");

    let c = client(&emu);
    let parent = get_named(&c, "virtualservice", "veba-of--Shared-L7-0")
        .await
        .expect("the shard's parent");
    assert_eq!(parent["type"], "VS_TYPE_VH_PARENT");
    let ports: Vec<(u64, bool)> = parent["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| {
            (
                s["port"].as_u64().unwrap_or_default(),
                s["enable_ssl"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(ports, [(80, false), (443, true)]);
    let vsvip = get_named(&c, "vsvip", "veba-of--Shared-L7-0")
        .await
        .expect("vsvip");
    assert_eq!(vsvip["dns_info"][0]["fqdn"], "hackazon.avi.jarvis.lab");
    assert_eq!(
        vsvip["vip"][0]["ip_address"]["addr"].as_str(),
        Some(ip.to_string().as_str())
    );
    let pool = get_named(
        &c,
        "pool",
        "veba-of--hackazon.avi.jarvis.lab_-vmug-hackazon",
    )
    .await
    .expect("the route's pool");
    assert_eq!(pool["servers"][0]["ip"]["addr"], "10.244.0.5");
    assert_eq!(pool["servers"][0]["port"], 8080);
    let events = r.sink.ingress_events_for(&hack);
    assert!(
        events.iter().any(|e| e.reason == "Synced"
            && e.message.contains("veba-of--Shared-L7-0")
            && e.message.contains(&ip.to_string())),
        "{events:?}"
    );

    // The second application asks for TLS and its Secret is missing: not served at all (no downgrade to plain
    // HTTP), no address, and a Warning saying why.
    let shop = ObjKey::new("shop", "shop");
    assert!(r.sink.last_ingress_status(&shop).is_none());
    assert!(
        get_named(&c, "virtualservice", "veba-of--Shared-L7-1")
            .await
            .is_none()
    );
    let warn = r.sink.ingress_events_for(&shop);
    assert!(
        warn.iter().any(|e| e.warning
            && e.message.contains("TLS Secret \"shop-tls\"")
            && e.message.contains("not served until it is fixed")),
        "{warn:?}"
    );
    // Its Secret arrives: another shard, another virtual service, another VIP.
    r.change(view.set_tls_secret(
        &ObjKey::new("shop", "shop-tls"),
        Some(Some(tls_pair("shop.avi.jarvis.lab"))),
    ))
    .await;
    r.until("events published", |p| p.events_pending == 0).await;
    let shop_ip = addr_of(
        &r.sink.last_ingress_status(&shop).expect("status"),
        "shop.avi.jarvis.lab",
    );
    assert_ne!(shop_ip, ip);
    assert!(
        get_named(&c, "virtualservice", "veba-of--Shared-L7-1")
            .await
            .is_some()
    );
    r.stop().await;
}

#[tokio::test]
async fn a_path_edit_touches_only_its_objects_and_a_restart_writes_nothing() {
    let (emu, view, mut r) = l7_demo_converged().await;
    let c = client(&emu);
    let before = owned(&c).await;
    let w0 = writes(&emu);

    // Add a path: a pool and a pool group appear, the parent's policy set changes; nothing else is written.
    let edited = HACKAZON_ING.replace(
        "      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}",
        "      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}\n      - {path: /api, pathType: Exact, backend: {service: {name: web, port: {name: http}}}}",
    );
    let p = r.change(view.upsert_ingress(ingress(&edited))).await;
    assert_eq!(p.stats.failures, 0);
    assert_eq!(
        writes(&emu) - w0,
        3,
        "pool + pool group + policy set update"
    );
    let after = owned(&c).await;
    let added: Vec<_> = after.difference(&before).collect();
    assert_eq!(added.len(), 2, "{added:?}");
    assert!(before.is_subset(&after), "nothing replaced");
    let policy = get_named(
        &c,
        "httppolicyset",
        "veba-of--Shared-L7-0--hackazon.avi.jarvis.lab",
    )
    .await
    .expect("the host's policy set on its parent");
    let rules = policy["http_request_policy"]["rules"]
        .as_array()
        .expect("rules");
    assert_eq!(
        rules[0]["match"]["path"]["match_criteria"], "EQUALS",
        "the Exact path comes before Prefix /"
    );
    r.stop().await;

    // A restart with nothing changed: zero writes.
    let w1 = writes(&emu);
    let mut r = Running::start(&emu, view, None);
    r.until("converged again", |p| p.converged_once).await;
    assert_eq!(writes(&emu), w1, "a converged restart writes nothing");
    r.stop().await;
}

#[tokio::test]
async fn an_ingress_status_overwritten_by_someone_else_is_written_again_with_no_avi_write() {
    let (emu, view, mut r) = l7_demo_converged().await;
    let key = ObjKey::new("vmug", "hackazon");
    let wrote = (
        key.clone(),
        r.sink.last_ingress_status(&key).expect("a status written"),
    );
    assert!(!wrote.1.is_empty(), "{wrote:?}");

    let mut ing = (*view.ingress(&key).expect("ingress")).clone();
    ing.status = Some(
        serde_json::from_value(
            serde_json::json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}),
        )
        .expect("status"),
    );
    view.upsert_ingress(ing);
    let w0 = writes(&emu);
    r.change(Change::IngressStatus(vec![key.clone()])).await;
    assert_eq!(r.sink.ingress_status.lock().last(), Some(&wrote));
    assert_eq!(writes(&emu), w0, "no Avi write");
    r.stop().await;
}

#[tokio::test]
async fn tls_secret_makes_an_sni_child_and_rotation_updates_the_certificate_in_place() {
    let emu = avi_support::start(None).await;
    let view = l7_view(&[HACKAZON_ING, SHOP_ING]);
    let secret = ObjKey::new("shop", "shop-tls");
    view.set_tls_secret(&secret, Some(Some(tls_pair("shop.avi.jarvis.lab"))));
    let mut r = Running::start(&emu, view.clone(), None);
    r.until("converged", |p| p.converged_once && p.events_pending == 0)
        .await;
    let c = client(&emu);
    let child = get_named(&c, "virtualservice", "veba-of--shop.avi.jarvis.lab")
        .await
        .expect("SNI child");
    assert_eq!(child["type"], "VS_TYPE_VH_CHILD");
    assert_eq!(child["vh_domain_name"][0], "shop.avi.jarvis.lab");
    let cert = get_named(&c, "sslkeyandcertificate", "veba-of--shop.avi.jarvis.lab")
        .await
        .expect("certificate");
    let parent_policy = get_named(
        &c,
        "httppolicyset",
        "veba-of--Shared-L7-1--shop.avi.jarvis.lab",
    )
    .await
    .expect("the host's policy set on its parent");
    assert_eq!(
        parent_policy["http_request_policy"]["rules"][0]["redirect_action"]["protocol"],
        "HTTPS"
    );
    let shop = ObjKey::new("shop", "shop");
    assert!(
        !r.sink.ingress_events_for(&shop).iter().any(|e| e.warning),
        "{:?}",
        r.sink.ingress_events_for(&shop)
    );

    // Rotation: one write, the certificate keeps its uuid.
    let w0 = writes(&emu);
    r.change(view.set_tls_secret(&secret, Some(Some(tls_pair("shop.avi.jarvis.lab")))))
        .await;
    assert_eq!(writes(&emu) - w0, 1, "only the certificate is written");
    let rotated = get_named(&c, "sslkeyandcertificate", "veba-of--shop.avi.jarvis.lab")
        .await
        .expect("certificate");
    assert_eq!(rotated["uuid"], cert["uuid"]);
    assert_ne!(
        rotated["certificate"]["certificate"],
        cert["certificate"]["certificate"]
    );

    // A Secret that stops being a usable pair: the host is not served any more (no downgrade to HTTP), with a
    // Warning; the child goes.
    r.change(view.set_tls_secret(&secret, Some(None))).await;
    r.until("events published", |p| p.events_pending == 0).await;
    assert!(
        get_named(&c, "virtualservice", "veba-of--shop.avi.jarvis.lab")
            .await
            .is_none()
    );
    assert!(
        r.sink
            .ingress_events_for(&shop)
            .iter()
            .any(|e| e.warning && e.message.contains("no tls.crt and tls.key")),
        "{:?}",
        r.sink.ingress_events_for(&shop)
    );
    r.stop().await;
}

#[tokio::test]
async fn deleting_an_ingress_removes_what_only_it_used_and_its_status_goes_with_a_class_change() {
    let emu = avi_support::start(None).await;
    let second_on_shard0 = r#"
metadata: {name: other, namespace: vmug, uid: i-3, creationTimestamp: "2026-01-03T00:00:00Z"}
spec:
  ingressClassName: avi-lb
  rules:
  - host: hackazon.avi.jarvis.lab
    http:
      paths:
      - {path: /other, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#;
    let view = l7_view(&[HACKAZON_ING, SHOP_ING, second_on_shard0]);
    view.set_tls_secret(
        &ObjKey::new("shop", "shop-tls"),
        Some(Some(tls_pair("shop.avi.jarvis.lab"))),
    );
    let mut r = Running::start(&emu, view.clone(), None);
    r.until("converged", |p| p.converged_once && p.events_pending == 0)
        .await;
    let c = client(&emu);
    let with_all = owned(&c).await;

    // Two Ingresses on one host merge; deleting one removes its route only, the parent stays.
    let other = ObjKey::new("vmug", "other");
    r.change(view.remove_ingress(&other)).await;
    let after = owned(&c).await;
    let gone: Vec<_> = with_all
        .difference(&after)
        .map(|(k, n, _)| (k.as_str(), n.as_str()))
        .collect();
    assert_eq!(
        gone,
        [
            ("pool", "veba-of--hackazon.avi.jarvis.lab_other-vmug-other"),
            (
                "poolgroup",
                "veba-of--hackazon.avi.jarvis.lab_other-vmug-other"
            )
        ]
    );

    // Moving hackazon to another class: its objects go (the shard has no other host), its status is cleared.
    let hack = ObjKey::new("vmug", "hackazon");
    let mut moved =
        ingress(&HACKAZON_ING.replace("ingressClassName: avi-lb", "ingressClassName: nginx"));
    // As the API server does, the status survives a spec edit.
    moved.status = view.ingress(&hack).and_then(|i| i.status.clone());
    r.change(view.upsert_ingress(moved)).await;
    let left = owned(&c).await;
    assert!(
        left.iter()
            .all(|(_, n, _)| !n.contains("Shared-L7-0") && !n.contains("hackazon")),
        "{left:?}"
    );
    assert!(
        left.iter().any(|(_, n, _)| n == "veba-of--Shared-L7-1"),
        "shop's parent stays"
    );
    assert_eq!(r.sink.last_ingress_status(&hack), Some(vec![]));
    r.until("events published", |p| p.events_pending == 0).await;
    let removed: Vec<_> = r
        .sink
        .ingress_events_for(&hack)
        .into_iter()
        .filter(|e| e.reason == "Removed")
        .collect();
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert_eq!(
        removed[0].message,
        "Removed virtualservice for hackazon.avi.jarvis.lab"
    );
    r.stop().await;
}

#[tokio::test]
async fn a_missing_backend_is_a_warning_and_an_empty_pool_that_fills_when_it_appears() {
    let emu = avi_support::start(None).await;
    let view = l7_view(&[&HACKAZON_ING.replace("name: web,", "name: later,")]);
    let mut r = Running::start(&emu, view.clone(), None);
    r.until("converged", |p| p.converged_once && p.events_pending == 0)
        .await;
    let hack = ObjKey::new("vmug", "hackazon");
    assert!(
        r.sink
            .ingress_events_for(&hack)
            .iter()
            .any(|e| e.warning && e.message.contains("backend Service \"later\"")),
        "{:?}",
        r.sink.ingress_events_for(&hack)
    );
    let c = client(&emu);
    let pool_name = "veba-of--hackazon.avi.jarvis.lab_-vmug-hackazon";
    let pool = get_named(&c, "pool", pool_name).await.expect("pool");
    assert!(pool["servers"].as_array().is_none_or(Vec::is_empty));

    let mut later = web_service("vmug");
    later.metadata.name = Some("later".into());
    view.upsert_service(later);
    r.change(view.set_endpoints(
        &ObjKey::new("vmug", "later"),
        vec![endpoints(&[("10.244.0.9", true)])],
    ))
    .await;
    let pool = get_named(&c, "pool", pool_name).await.expect("pool");
    assert_eq!(pool["servers"][0]["ip"]["addr"], "10.244.0.9");
    r.stop().await;
}

#[tokio::test]
async fn a_path_conflict_that_slipped_past_admission_goes_to_the_oldest_and_the_other_is_told() {
    let emu = avi_support::start(None).await;
    // Another namespace routes the same host and path (fqdnReusePolicy InterNamespaceAllowed lets namespaces
    // share a host, not a path): the oldest Ingress keeps it.
    let thief = r#"
metadata: {name: thief, namespace: shop, uid: i-9, creationTimestamp: "2026-03-01T00:00:00Z"}
spec:
  ingressClassName: avi-lb
  rules:
  - host: hackazon.avi.jarvis.lab
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#;
    let view = l7_view(&[HACKAZON_ING, thief]);
    let mut r = Running::start(&emu, view, None);
    r.until("converged", |p| p.converged_once && p.events_pending == 0)
        .await;
    let loser = ObjKey::new("shop", "thief");
    let events = r.sink.ingress_events_for(&loser);
    assert!(
        events.iter().any(|e| e.warning
            && e.reason == "DuplicateHostPath"
            && e.message.contains("vmug/hackazon")),
        "AKO's reason for the condition: {events:?}"
    );
    assert!(
        !events.iter().any(|e| e.reason == "Synced"),
        "not served: {events:?}"
    );
    assert!(
        r.sink
            .last_ingress_status(&loser)
            .unwrap_or_default()
            .is_empty()
    );
    let c = client(&emu);
    assert!(
        get_named(&c, "pool", "veba-of--hackazon.avi.jarvis.lab_-shop-thief")
            .await
            .is_none()
    );
    assert!(
        get_named(
            &c,
            "pool",
            "veba-of--hackazon.avi.jarvis.lab_-vmug-hackazon"
        )
        .await
        .is_some()
    );
    r.stop().await;
}

#[tokio::test]
async fn hosts_of_one_shard_are_planned_one_by_one_and_a_full_sync_agrees_with_every_increment() {
    let emu = avi_support::start(None).await;
    // g.avi.jarvis.lab hashes to shard 0 of 8, like hackazon: both on veba-of--Shared-L7-0.
    let g_ing = r#"
metadata: {name: g, namespace: vmug, uid: i-4, creationTimestamp: "2026-01-04T00:00:00Z"}
spec:
  ingressClassName: avi-lb
  tls: [{hosts: [g.avi.jarvis.lab], secretName: g-tls}]
  rules:
  - host: g.avi.jarvis.lab
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#;
    let view = l7_view(&[HACKAZON_ING, g_ing, SHOP_ING]);
    view.set_tls_secret(
        &ObjKey::new("vmug", "g-tls"),
        Some(Some(tls_pair("g.avi.jarvis.lab"))),
    );
    let mut r = Running::start(&emu, view.clone(), None);
    r.until("converged", |p| p.converged_once && p.events_pending == 0)
        .await;
    let c = client(&emu);
    let parent = get_named(&c, "virtualservice", "veba-of--Shared-L7-0")
        .await
        .expect("parent");
    let g_on_parent = get_named(
        &c,
        "httppolicyset",
        "veba-of--Shared-L7-0--g.avi.jarvis.lab",
    )
    .await
    .expect("g's policy set on the parent");

    // A path added to the TLS host: its pool, pool group and SNI child policy; the parent is not rewritten.
    let before = emu.counters();
    r.change(view.upsert_ingress(ingress(&g_ing.replace(
        "      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}",
        "      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}\n      - {path: /x, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}",
    ))))
    .await;
    let after = emu.counters();
    assert_eq!(after.writes - before.writes, 3, "{:?}", after.by_method);
    for (obj_type, name, before) in [
        ("virtualservice", "veba-of--Shared-L7-0", &parent),
        (
            "httppolicyset",
            "veba-of--Shared-L7-0--g.avi.jarvis.lab",
            &g_on_parent,
        ),
    ] {
        assert_eq!(
            get_named(&c, obj_type, name).await.expect(name)["_last_modified"],
            before["_last_modified"],
            "{name} is untouched"
        );
    }
    assert!(
        get_named(&c, "pool", "veba-of--vmug-g.avi.jarvis.lab_x-g")
            .await
            .is_some()
    );

    // The other host of the shard goes: its policy set leaves the parent (and the controller), the parent stays
    // for g.
    r.change(view.remove_ingress(&ObjKey::new("vmug", "hackazon")))
        .await;
    let parent = get_named(&c, "virtualservice", "veba-of--Shared-L7-0")
        .await
        .expect("parent");
    let policies = parent["http_policies"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let g_uuid = g_on_parent["uuid"].as_str().expect("uuid");
    // g's set, then the parent's own (404 for other hosts).
    assert!(
        policies.len() == 2
            && policies[0]["http_policy_set_ref"]
                .as_str()
                .is_some_and(|r| r.ends_with(g_uuid)),
        "{policies:?}"
    );
    assert!(
        get_named(
            &c,
            "httppolicyset",
            "veba-of--Shared-L7-0--hackazon.avi.jarvis.lab"
        )
        .await
        .is_none()
    );
    let vsvip = get_named(&c, "vsvip", "veba-of--Shared-L7-0")
        .await
        .expect("vsvip");
    assert_eq!(
        vsvip["dns_info"].as_array().map(Vec::len),
        Some(1),
        "{vsvip}"
    );

    // A full sync translates everything from scratch: it finds nothing to write.
    let w = writes(&emu);
    r.change(Change::Resync).await;
    assert_eq!(
        writes(&emu),
        w,
        "the increments left the same state as a full translation"
    );
    r.stop().await;
}

#[tokio::test]
async fn a_parent_with_the_single_policy_set_of_an_earlier_ako_moves_to_per_host_sets_and_the_set_answers_404()
 {
    use ako::core::plan::{Kind, Step};
    use ako::reconcile::apply;
    let emu = avi_support::start(None).await;
    let view = l7_view(&[HACKAZON_ING]);
    let mut r = Running::start(&emu, view.clone(), None);
    r.until("converged", |p| p.converged_once).await;
    r.stop().await;

    // What an earlier ako left: one policy set named after the parent, holding the host's rule, and the parent
    // naming only that set.
    let c = client(&emu);
    let per_host = "veba-of--Shared-L7-0--hackazon.avi.jarvis.lab";
    let rules = get_named(&c, "httppolicyset", per_host)
        .await
        .expect("the host's set")["http_request_policy"]
        .clone();
    let old = serde_json::json!({
        "name": "veba-of--Shared-L7-0",
        "created_by": OWNER,
        "tenant_ref": "/api/tenant/?name=admin",
        "http_request_policy": rules,
    });
    apply::execute(
        &c,
        &Step::Create {
            kind: Kind::HttpPolicySet,
            name: "veba-of--Shared-L7-0".into(),
            body: old.as_object().cloned().expect("object"),
        },
        &ako::core::ownership::Identity::new("veba-of", None),
    )
    .await
    .expect("the earlier set");
    let mut parent = get_named(&c, "virtualservice", "veba-of--Shared-L7-0")
        .await
        .expect("parent");
    parent["http_policies"] = serde_json::json!([
        {"index": 11, "http_policy_set_ref": "/api/httppolicyset/?name=veba-of--Shared-L7-0"}
    ]);
    apply::execute(
        &c,
        &Step::Update {
            kind: Kind::VirtualService,
            name: "veba-of--Shared-L7-0".into(),
            uuid: parent["uuid"].as_str().expect("uuid").into(),
            body: parent.as_object().cloned().expect("object"),
        },
        &ako::core::ownership::Identity::new("veba-of", None),
    )
    .await
    .expect("parent naming the earlier set");

    // The next start: the parent names the host's own set again, then its own set (by the earlier set's name),
    // which now only answers 404 for a host the parent does not serve.
    let mut r = Running::start(&emu, view, None);
    r.until("converged again", |p| p.converged_once).await;
    let host_set = get_named(&c, "httppolicyset", per_host)
        .await
        .expect("the host's set");
    let parent = get_named(&c, "virtualservice", "veba-of--Shared-L7-0")
        .await
        .expect("parent");
    let refs: Vec<&str> = parent["http_policies"]
        .as_array()
        .expect("policies")
        .iter()
        .filter_map(|p| p["http_policy_set_ref"].as_str())
        .collect();
    let uuid = host_set["uuid"].as_str().expect("uuid");
    let own = get_named(&c, "httppolicyset", "veba-of--Shared-L7-0")
        .await
        .expect("the parent's own set");
    let own_uuid = own["uuid"].as_str().expect("uuid");
    assert!(
        refs.len() == 2 && refs[0].ends_with(uuid) && refs[1].ends_with(own_uuid),
        "{refs:?} should name {uuid} then {own_uuid}"
    );
    let rules = own["http_request_policy"]["rules"]
        .as_array()
        .expect("rules");
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(
        rules[0]["switching_action"]["status_code"],
        "HTTP_LOCAL_RESPONSE_STATUS_CODE_404"
    );
    assert!(rules[0]["match"].is_null(), "{rules:?}");
    r.stop().await;
}

#[tokio::test]
async fn a_full_sync_that_cannot_read_the_controller_keeps_what_was_cached_and_writes_nothing() {
    let (emu, _view, mut r) = demo_converged().await;
    let objects = emu.object_count();
    let posts = |emu: &EmulatorHandle| {
        ["vsvip", "pool", "l4policyset", "virtualservice"]
            .iter()
            .map(|t| emu.counters().get("POST", t))
            .sum::<u64>()
    };
    let created = posts(&emu);

    // A full sync whose every read fails: each object read replaces its cached entry as it arrives, so a read
    // that stops early must leave the rest of the cache as it was.
    emu.set_faults(Faults {
        error_rates: [(500, 1.0)].into(),
        ..Faults::default()
    });
    r.change(Change::Resync).await;
    emu.set_faults(Faults::default());

    // The Service is planned again against what is still cached: nothing to create, nothing to delete.
    r.change(Change::Services(vec![demo_key()])).await;
    assert_eq!(posts(&emu), created, "no object created again");
    assert_eq!(emu.counters().get("DELETE", "virtualservice"), 0);
    assert_eq!(emu.object_count(), objects);
    // And the next full sync that reads everything finds nothing to do either.
    r.change(Change::Resync).await;
    assert_eq!(posts(&emu), created);
    assert_eq!(emu.object_count(), objects);
    r.stop().await;
}

#[tokio::test]
async fn a_vip_network_with_a_v6cidr_gives_a_dual_stack_vip_in_both_subnets_and_a_restart_writes_nothing()
 {
    let emu = avi_support::start(None).await;
    let c = client(&emu);
    // The VIP network gets an IPv6 subnet with a VIP range (as an administrator adds one).
    let net = get_named(&c, "network", "dpg-sedatapath-18")
        .await
        .expect("network");
    let uuid = net["uuid"].as_str().expect("uuid");
    c.send(
        reqwest::Method::PATCH,
        &format!("/api/network/{uuid}"),
        Some(&serde_json::json!({"add": {"configured_subnets": [{
            "prefix": {"ip_addr": {"addr": "fd10:18::", "type": "V6"}, "mask": 64},
            "static_ip_ranges": [{"type": "STATIC_IPS_FOR_VIP", "range": {
                "begin": {"addr": "fd10:18::10", "type": "V6"}, "end": {"addr": "fd10:18::ff", "type": "V6"}}}]
        }]}})),
    )
    .await
    .expect("an IPv6 subnet");
    let view = Arc::new(View::from_parts(vec![service(DEMO)], vec![], vec![]));
    let dual = |s: &mut ako::reconcile::Settings| {
        s.placement.vip_family = VipFamily::DualStack("fd10:18::/64".parse().expect("v6"));
    };
    let mut r = Running::start_with(&emu, view.clone(), dual);
    r.until("converged", |p| p.converged_once).await;
    let status = r.sink.last_status(&demo_key()).expect("status");
    let ips: Vec<std::net::IpAddr> = status
        .iter()
        .filter_map(|i| i.ip.as_deref()?.parse().ok())
        .collect();
    assert_eq!(ips.len(), 2, "{status:?}");
    let v4: ipnet::IpNet = "10.10.18.0/26".parse().expect("v4");
    let v6: ipnet::IpNet = "fd10:18::/64".parse().expect("v6");
    assert!(ips.iter().any(|ip| v4.contains(ip)), "{ips:?}");
    assert!(ips.iter().any(|ip| v6.contains(ip)), "{ips:?}");
    let vsvip = get_named(&c, "vsvip", "veba-of--vmug-avisvc-lb")
        .await
        .expect("vsvip");
    assert_eq!(vsvip["vip"][0]["auto_allocate_ip_type"], "V4_V6", "{vsvip}");
    r.stop().await;

    // Converged: a new start writes nothing, and the addresses stay.
    let w0 = writes(&emu);
    let mut r = Running::start_with(&emu, view, dual);
    r.until("converged again", |p| p.converged_once).await;
    assert_eq!(writes(&emu), w0, "a converged restart writes nothing");
    let again = get_named(&c, "vsvip", "veba-of--vmug-avisvc-lb")
        .await
        .expect("vsvip");
    assert_eq!(
        again["vip"][0]["ip6_address"],
        vsvip["vip"][0]["ip6_address"]
    );
    r.stop().await;
}

#[tokio::test]
async fn a_shard_size_change_says_which_hosts_get_another_address_before_moving_them() {
    let emu = avi_support::start(None).await;
    let view = l7_view(&[HACKAZON_ING, SHOP_ING]);
    view.set_tls_secret(
        &ObjKey::new("shop", "shop-tls"),
        Some(Some(tls_pair("shop.avi.jarvis.lab"))),
    );
    let mut r = Running::start(&emu, view.clone(), None);
    r.until("converged", |p| p.converged_once && p.events_pending == 0)
        .await;
    let c = client(&emu);
    let old_vip = get_named(&c, "vsvip", "veba-of--Shared-L7-1")
        .await
        .expect("shop's parent")["vip"][0]["ip_address"]["addr"]
        .as_str()
        .expect("address")
        .to_string();
    r.stop().await;

    // The same cluster with shardVSSize SMALL: shop's host leaves shard 1 for shard 0; hackazon stays.
    let mut r = Running::start_with(&emu, view, |s| {
        s.shard = ako::core::l7::ShardSize::Small;
    });
    r.until("converged", |p| p.converged_once && p.events_pending == 0)
        .await;
    let shop = r.sink.ingress_events_for(&ObjKey::new("shop", "shop"));
    let moving: Vec<_> = shop
        .iter()
        .filter(|e| e.reason == "AddressChanging")
        .collect();
    assert_eq!(moving.len(), 1, "{shop:?}");
    assert!(moving[0].warning);
    for want in [
        "host shop.avi.jarvis.lab",
        "veba-of--Shared-L7-1",
        &*old_vip,
        "veba-of--Shared-L7-0",
        "SMALL",
    ] {
        assert!(
            moving[0].message.contains(want),
            "{want}: {}",
            moving[0].message
        );
    }
    let hack = r.sink.ingress_events_for(&ObjKey::new("vmug", "hackazon"));
    assert!(
        !hack.iter().any(|e| e.reason == "AddressChanging"),
        "{hack:?}"
    );
    assert!(
        r.sink
            .operator
            .lock()
            .iter()
            .any(|n| n.reason == "AddressChanging" && n.message.starts_with("1 host(s)")),
        "one Event on ako's Pod"
    );
    r.stop().await;
}
