//! What ako deletes, changes or writes when something goes wrong: the reconciler against the embedded emulator with
//! an in-memory view (tests/reconciler_support). Each test names one rule of issue "Safe to point at a production
//! controller"; the end-to-end versions against the real API server are in e2e_safety.rs.

mod avi_support;
mod reconciler_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ako::avi::AviError;
use ako::core::index::ObjKey;
use ako::emulator::{EmulatorHandle, Faults};
use ako::k8s::observe::{Change, View};
use ako::reconcile::live::Live;
use tokio::sync::watch;

use reconciler_support::*;

/// (type, name) -> uuid of every object ako owns.
async fn owned_by_name(emu: &EmulatorHandle) -> BTreeMap<(String, String), String> {
    let c = client(emu);
    ako::reconcile::apply::list_owned(&c, &ako::core::ownership::Identity::new("veba-of", None))
        .await
        .expect("list owned")
        .into_iter()
        .filter(|e| e.created_by.as_deref() == Some(OWNER))
        .map(|e| ((e.kind.obj_type().to_string(), e.name), e.uuid))
        .collect()
}

/// DELETE requests the emulator answered since `since`.
fn deletes_since(emu: &EmulatorHandle, since: u64) -> Vec<String> {
    emu.requests(since)
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| format!("{} {}", r.kind, r.name.unwrap_or_default()))
        .collect()
}

fn next_seq(emu: &EmulatorHandle) -> u64 {
    emu.requests(0).last().map_or(0, |r| r.seq + 1)
}

#[tokio::test]
async fn an_unreadable_tls_secret_at_restart_keeps_its_shard_says_why_and_converges_with_no_deletion()
 {
    let emu = avi_support::start(None).await;
    let view = l7_view(&[HACKAZON_ING, SHOP_ING]);
    let secret = ObjKey::new("shop", "shop-tls");
    view.set_tls_secret(&secret, Some(Some(tls_pair("shop.avi.jarvis.lab"))));
    let mut r = Running::start(&emu, view.clone(), None);
    r.until("converged", |p| p.converged_once && p.events_pending == 0)
        .await;
    r.stop().await;
    let before = owned_by_name(&emu).await;
    assert!(
        before.contains_key(&("virtualservice".into(), "veba-of--Shared-L7-1".into())),
        "the shop's shard: {before:?}"
    );

    // ako restarts under an identity that may list Secrets but not read them.
    view.set_secret_unreadable(
        &secret,
        Some("secrets \"shop-tls\" is forbidden: User \"system:serviceaccount:avi-system:ako-sa\" cannot get resource \"secrets\""),
    );
    let seq = next_seq(&emu);
    let mut r = Running::start(&emu, view.clone(), None);
    r.until("the full sync, with the shard unknown", |p| {
        p.converged_once && p.unknown_groups == 1 && p.events_pending == 0
    })
    .await;
    assert_eq!(
        deletes_since(&emu, seq),
        Vec::<String>::new(),
        "nothing deleted"
    );
    assert_eq!(
        owned_by_name(&emu).await,
        before,
        "every object kept, same uuids"
    );
    let shop = ObjKey::new("shop", "shop");
    let events = r.sink.ingress_events_for(&shop);
    assert!(
        events.iter().any(|e| e.reason == "InputUnreadable"
            && e.message.contains("Secret shop/shop-tls")
            && e.message.contains("forbidden")),
        "the Ingress says which Secret and why: {events:?}"
    );
    assert!(
        r.sink.last_ingress_status(&shop).is_none(),
        "the status is left as it was"
    );

    // The right comes back: the part is read again and converges, deleting nothing.
    r.change(view.set_secret_unreadable(&secret, None)).await;
    r.until("everything known", |p| {
        p.unknown_groups == 0 && p.retrying == 0
    })
    .await;
    assert_eq!(deletes_since(&emu, seq), Vec::<String>::new());
    assert_eq!(owned_by_name(&emu).await, before);
    r.stop().await;
}

#[tokio::test]
async fn a_group_failing_again_and_again_waits_longer_each_time() {
    let emu = avi_support::start(None).await;
    let view = Arc::new(View::from_parts(vec![service(DEMO)], vec![], vec![]));
    emu.set_faults(Faults {
        error_rates: [(503, 1.0)].into_iter().collect(),
        writes_only: true,
        ..Faults::default()
    });
    let mut r = Running::start_with(&emu, view, |s| {
        s.retry_base = Duration::from_millis(20);
        s.retry_max = Duration::from_secs(60);
    });
    let p = r
        .until("seven failures in a row", |p| p.max_attempts >= 7)
        .await;
    // Unjittered, the 7th delay is 20 ms * 2^6 = 1.28 s; with jitter it is at least half of that. Before the
    // fix every retry was scheduled 20 ms later.
    assert!(
        p.longest_retry >= Duration::from_millis(640),
        "the delay grows with the failures: {p:?}"
    );
    emu.set_faults(Faults::default());
    r.until("recovered", |p| p.retrying == 0 && p.max_attempts == 0)
        .await;
    assert_eq!(
        owned_by_name(&emu).await.len(),
        4,
        "programmed once faults stop"
    );
    r.stop().await;
}

#[tokio::test]
async fn a_network_without_free_addresses_is_announced_and_retried_on_a_slow_cadence() {
    let subnet: ipnet::Ipv4Net = "10.20.0.0/28".parse().expect("subnet");
    let emu = ako::emulator::spawn(ako::emulator::EmulatorConfig {
        seed: ako::emulator::seed_with_vip_network("tiny-net", subnet).expect("seed"),
        ..avi_support::config(None)
    })
    .await
    .expect("emulator");
    // The network has one free address: the second Service gets none.
    let second = DEMO
        .replace("avisvc-lb", "second")
        .replace("u-1", "u-2")
        .replace("2026-01-01", "2026-01-02");
    let view = Arc::new(View::from_parts(
        vec![service(DEMO), service(&second)],
        vec![],
        vec![],
    ));
    let mut r = Running::start_with(&emu, view, |s| {
        s.placement.vip_network = Some(("tiny-net".into(), Some(subnet.into())));
    });
    let p = r
        .until("the second Service failed", |p| {
            p.converged_once && p.max_attempts >= 1 && p.events_pending == 0
        })
        .await;
    assert!(
        p.longest_retry >= Duration::from_secs(30),
        "retried on a slow cadence, not every half second: {p:?}"
    );
    let events = r.sink.events_for(&ObjKey::new("vmug", "second"));
    assert!(
        events.iter().any(|e| e.reason == "AviConfigurationNeeded"
            && e.message.contains("network tiny-net has no free address")),
        "the user is told what to fix: {events:?}"
    );
    r.stop().await;
}

/// `n` LoadBalancer Services s0..s{n-1} in namespace vmug.
fn services(n: usize) -> Vec<k8s_openapi::api::core::v1::Service> {
    (0..n)
        .map(|i| {
            service(&format!(
                "metadata: {{name: s{i}, namespace: vmug, uid: u-{i}}}\nspec: {{type: LoadBalancer, ports: [{{port: 80}}]}}"
            ))
        })
        .collect()
}

#[tokio::test]
async fn objects_found_orphaned_at_a_restart_are_held_when_too_many_and_go_once_released() {
    let emu = avi_support::start(None).await;
    let view = Arc::new(View::from_parts(services(10), vec![], vec![]));
    let mut r = Running::start(&emu, view.clone(), None);
    r.until("converged", |p| p.converged_once && p.retrying == 0)
        .await;
    r.stop().await;
    assert_eq!(owned_by_name(&emu).await.len(), 40);

    // A restart against a cluster where 2 of them are gone: 8 objects, not more than 10: deleted.
    for i in 8..10 {
        view.remove_service(&ObjKey::new("vmug", format!("s{i}")));
    }
    let seq = next_seq(&emu);
    let mut r = Running::start(&emu, view.clone(), None);
    r.until("converged", |p| p.converged_once).await;
    assert_eq!(deletes_since(&emu, seq).len(), 8, "a small orphan set goes");
    r.stop().await;

    // A restart against a cluster restored from an old backup: 6 more gone, 24 of 32 objects. Held.
    for i in 2..8 {
        view.remove_service(&ObjKey::new("vmug", format!("s{i}")));
    }
    let seq = next_seq(&emu);
    let (tx, rx) = watch::channel(Live::default());
    let mut r = Running::start_live(&emu, view.clone(), |s| s.full_sync = None, Some(rx));
    let p = r
        .until("held", |p| p.converged_once && p.held.is_some())
        .await;
    let (id, count) = p.held.clone().expect("a hold");
    assert_eq!(count, 24);
    assert_eq!(
        deletes_since(&emu, seq),
        Vec::<String>::new(),
        "nothing deleted"
    );
    let told = r.sink.operator.lock().clone();
    assert!(
        told.iter().any(|n| n.reason == "DeletionsHeld"
            && n.message.contains(&id)
            && n.message.contains("releaseHeldDeletions")),
        "the operator is told how to release exactly this set: {told:?}"
    );

    // Released with this hold's id (another id releases nothing: the guard's unit test): deleted.
    tx.send(Live {
        release_held: Some(id),
        ..Live::default()
    })
    .expect("live");
    r.until("released", |p| p.held.is_none()).await;
    assert_eq!(deletes_since(&emu, seq).len(), 24);
    assert_eq!(owned_by_name(&emu).await.len(), 8, "s0 and s1 remain");
    r.stop().await;
}

#[tokio::test]
async fn a_relist_that_comes_back_short_deletes_nothing_and_what_returns_is_untouched() {
    let emu = avi_support::start(None).await;
    let view = Arc::new(View::from_parts(services(10), vec![], vec![]));
    let mut r = Running::start(&emu, view.clone(), None);
    r.until("converged", |p| p.converged_once && p.retrying == 0)
        .await;
    let before = owned_by_name(&emu).await;
    let seq = next_seq(&emu);

    // A watch re-lists and its list lacks 8 Services (an API server answering short): the keys it changed,
    // then the re-list itself.
    let gone: Vec<ObjKey> = (2..10)
        .map(|i| ObjKey::new("vmug", format!("s{i}")))
        .collect();
    for k in &gone {
        view.remove_service(k);
    }
    r.tx.send(Change::Services(gone.clone())).expect("send");
    r.change(Change::Listed).await;
    let p = r.until("held", |p| p.held.is_some()).await;
    assert_eq!(p.held.map(|(_, n)| n), Some(32));
    assert_eq!(
        deletes_since(&emu, seq),
        Vec::<String>::new(),
        "nothing deleted"
    );

    // The next list has them again: nothing to delete, nothing rewritten, the hold is over.
    let writes_before = emu.counters().writes;
    for s in services(10).into_iter().skip(2) {
        view.upsert_service(s);
    }
    r.tx.send(Change::Services(gone)).expect("send");
    r.change(Change::Listed).await;
    r.until("hold over", |p| p.held.is_none()).await;
    assert_eq!(deletes_since(&emu, seq), Vec::<String>::new());
    assert_eq!(owned_by_name(&emu).await, before);
    assert_eq!(emu.counters().writes, writes_before, "converged: no write");
    r.stop().await;
}

#[tokio::test]
async fn an_object_of_another_cluster_with_the_same_created_by_is_neither_changed_nor_deleted() {
    let emu = avi_support::start(None).await;
    let c = client(&emu);
    // Another cluster left at the same clusterName made a pool ako would take for an orphan of its own, and the
    // virtual service ako wants for the demo.
    for (kind, name) in [
        ("pool", "veba-of--vmug-gone-TCP-80"),
        ("pool", "veba-of--vmug-avisvc-lb-TCP-80"),
    ] {
        let body = serde_json::json!({
            "name": name, "created_by": OWNER,
            "markers": [{"key": "clustername", "values": ["veba-of"]}, {"key": "clusteruid", "values": ["uid-other"]}],
        });
        c.send(reqwest::Method::POST, &format!("/api/{kind}"), Some(&body))
            .await
            .expect("their object");
    }
    let view = Arc::new(View::from_parts(vec![service(DEMO)], vec![], vec![]));
    let seq = next_seq(&emu);
    let mut r = Running::start_with(&emu, view, |s| s.cluster_uid = Some("uid-this".into()));
    r.until("converged", |p| p.converged_once && p.events_pending == 0)
        .await;
    let writes: Vec<String> = emu
        .requests(seq)
        .into_iter()
        .filter(|r| r.method != "GET" && r.method != "POST")
        .map(|r| format!("{} {} {}", r.method, r.kind, r.name.unwrap_or_default()))
        .collect();
    assert!(
        writes.is_empty(),
        "the other cluster's objects are neither updated nor deleted: {writes:?}"
    );
    let events = r.sink.events_for(&demo_key());
    assert!(
        events.iter().any(|e| e.reason == "NameConflict"
            && e.message.contains("another cluster (clusteruid uid-other)")),
        "{events:?}"
    );
    r.stop().await;
}

#[tokio::test]
async fn a_foreign_vsvip_stops_the_virtual_service_that_would_use_it() {
    let emu = avi_support::start(None).await;
    let c = client(&emu);
    let body = serde_json::json!({"name": "veba-of--vmug-avisvc-lb", "vip": [{"vip_id": "0", "auto_allocate_ip": true,
        "ipam_network_subnet": {"network_ref": "/api/network/?name=dpg-sedatapath-18"}}]});
    c.send(reqwest::Method::POST, "/api/vsvip", Some(&body))
        .await
        .expect("someone's VsVip");
    let view = Arc::new(View::from_parts(vec![service(DEMO)], vec![], vec![]));
    let mut r = Running::start(&emu, view, None);
    r.until("converged", |p| p.converged_once && p.events_pending == 0)
        .await;
    assert!(
        get_named(&c, "virtualservice", "veba-of--vmug-avisvc-lb")
            .await
            .is_none(),
        "no virtual service bound to someone else's VsVip"
    );
    let events = r.sink.events_for(&demo_key());
    assert!(
        events
            .iter()
            .any(|e| e.reason == "NameConflict"
                && e.message.contains("vsvip veba-of--vmug-avisvc-lb")),
        "{events:?}"
    );
    assert!(
        r.sink.last_status(&demo_key()).is_none_or(|s| s.is_empty()),
        "no address published from a VsVip that is not ako's"
    );
    r.stop().await;
}

#[tokio::test]
async fn a_status_another_load_balancer_wrote_is_never_cleared() {
    let (_emu, view, mut r) = demo_converged().await;
    // The Service moves to another load balancer class; that controller writes its address first.
    let mut svc = (*view.service(&demo_key()).expect("demo")).clone();
    if let Some(spec) = svc.spec.as_mut() {
        spec.load_balancer_class = Some("metallb.io/metallb".into());
    }
    svc.status = serde_json::from_value(
        serde_json::json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.50"}]}}),
    )
    .expect("status");
    let before = r.sink.status.lock().len();
    r.change(view.upsert_service(svc)).await;
    r.until("settled", |p| p.retrying == 0).await;
    let written: Vec<_> = r.sink.status.lock()[before..].to_vec();
    assert!(
        written.is_empty(),
        "the other controller's address stays: {written:?}"
    );
    r.stop().await;
}

#[tokio::test]
async fn the_client_sends_no_write_once_the_fence_closes() {
    let emu = avi_support::start(None).await;
    let open = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let gate = open.clone();
    let mut cfg = avi_support::client_config(&emu).with_cluster_name("veba-of");
    cfg.write_fence = Some(ako::avi::WriteFence(Arc::new(move || {
        gate.load(std::sync::atomic::Ordering::Acquire)
            .then_some(Duration::from_secs(5))
    })));
    let c = ako::avi::AviClient::new(cfg).expect("client");
    c.create(&avi_support::pool("veba-of--a", "10.244.0.5"))
        .await
        .expect("a write while leading");
    open.store(false, std::sync::atomic::Ordering::Release);
    let seq = next_seq(&emu);
    let err = c
        .create(&avi_support::pool("veba-of--b", "10.244.0.6"))
        .await
        .expect_err("refused");
    assert!(matches!(err, AviError::Fenced), "{err}");
    let reads: Vec<_> = c
        .list::<ako::avi::models::Pool>(&ako::avi::ListQuery::default())
        .await
        .expect("reads still work");
    assert!(!reads.is_empty());
    assert!(
        emu.requests(seq).iter().all(|r| !r.is_write()),
        "no write reached the controller: {:?}",
        emu.requests(seq)
    );
}
