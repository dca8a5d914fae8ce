//! Tests of `observe`.

use super::watches::{Feed, ServicesFeed, drive, write_index};
use super::*;

#[tokio::test]
async fn one_watch_feeds_the_view_the_index_and_the_changes_and_reindexes_on_a_new_configuration() {
    use ako_core::config::Config;
    let svc: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "1",
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"type": "LoadBalancer", "loadBalancerIP": "127.10.18.9", "ports": [{"port": 80}]}
    }))
    .expect("service");
    let vip: std::net::IpAddr = "127.10.18.9".parse().expect("ip");
    // Not ako's Service under this configuration (it is not the default load balancer).
    let index = Arc::new(Index::new(Arc::new(Config {
        default_lb_controller: false,
        ..Config::default()
    })));
    let view = Arc::new(View::with_index(index.clone()));
    let (tx, mut rx) = crate::k8s::changes::channel();
    let events = futures::stream::iter([
        Ok(Event::Init),
        Ok(Event::InitApply(svc)),
        Ok(Event::InitDone),
    ])
    .chain(futures::stream::pending());
    let task = tokio::spawn(drive(view.clone(), ServicesFeed, events, Some(tx)));
    let listed = rx.recv().await.expect("a change");
    assert!(listed.services.contains(&ObjKey::new("shop", "web")) && listed.relisted);
    assert!(
        view.service(&ObjKey::new("shop", "web")).is_some(),
        "the view holds it"
    );
    assert!(
        index.read(|s| s.vip_claims(&vip).is_empty()),
        "not ours: no VIP claim"
    );
    // The configuration changes (as `ako run` learns it): the watch recomputes its entries, no re-list.
    index.set_config(Arc::new(Config {
        default_lb_controller: true,
        ..Config::default()
    }));
    view.reindex();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while index.read(|s| s.vip_claims(&vip).is_empty()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the index was not recomputed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    task.abort();
}
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

#[tokio::test(flavor = "current_thread")]
async fn an_index_update_waiting_for_a_long_read_leaves_its_thread_to_other_tasks() {
    let index = Arc::new(Index::new(Arc::new(ako_core::config::Config::default())));
    // A large review's decision holds a read view on another thread for 300 ms.
    let (held_tx, held) = std::sync::mpsc::channel::<()>();
    let reader = {
        let index = Arc::clone(&index);
        std::thread::spawn(move || {
            index.read(|_| {
                let _ = held_tx.send(());
                std::thread::sleep(Duration::from_millis(300));
            })
        })
    };
    held.recv().expect("the read holds the index");
    // Another task of this (single) thread counts while the update waits.
    let ticks = Arc::new(AtomicUsize::new(0));
    let ticker = {
        let ticks = Arc::clone(&ticks);
        tokio::spawn(async move {
            loop {
                ticks.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let update = tokio::spawn({
        let index = Arc::clone(&index);
        async move { write_index(&index, |s| s.set_secret(ObjKey::new("n", "s"), true)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!update.is_finished(), "the update waits for the read");
    let counted = ticks.load(Ordering::Relaxed);
    assert!(
        counted >= 20,
        "the thread kept running other tasks: {counted} ticks in 100 ms"
    );
    reader.join().expect("reader");
    tokio::time::timeout(Duration::from_secs(2), update)
        .await
        .expect("the update lands once the read ends")
        .expect("update task");
    ticker.abort();
}

fn service(port: i32, vip: Option<&str>) -> Service {
    let mut svc: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "1"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": port}]}
    }))
    .expect("service");
    if let Some(ip) = vip {
        svc.status =
            serde_json::from_value(serde_json::json!({"loadBalancer": {"ingress": [{"ip": ip}]}}))
                .expect("status");
    }
    svc
}

fn keys(c: Option<Change>) -> (&'static str, Vec<ObjKey>) {
    match c {
        Some(Change::Services(k)) => ("spec", k),
        Some(Change::ServiceStatus(k)) => ("status", k),
        None => ("none", Vec::new()),
        Some(_) => ("other", Vec::new()),
    }
}

#[test]
fn a_service_update_is_told_apart_as_new_spec_status_only_or_nothing() {
    let key = ObjKey::new("shop", "web");
    let view = View::from_parts(Vec::new(), Vec::new(), Vec::new());
    let cases = [
        ("first seen", service(80, None), ("spec", vec![key.clone()])),
        ("the same again", service(80, None), ("none", vec![])),
        (
            "a status appears",
            service(80, Some("192.0.2.7")),
            ("status", vec![key.clone()]),
        ),
        (
            "the status changes",
            service(80, Some("192.0.2.8")),
            ("status", vec![key.clone()]),
        ),
        (
            "the spec changes",
            service(81, Some("192.0.2.8")),
            ("spec", vec![key.clone()]),
        ),
    ];
    for (what, svc, want) in cases {
        assert_eq!(keys(ServicesFeed::apply(&view, svc)), want, "{what}");
    }
}
