//! End-to-end tests of the reconciler (Services and Ingresses): a real kube-apiserver 1.20.2 + etcd + kube-controller-manager 1.20.2
//! (scripts/cluster.sh --controller-manager), `ako emulator` and `ako controller` as processes (the binary under
//! test), Pods played by the kubelet stand-in (tests/common/kubelet.rs). The Avi side is read with ako's own
//! client and the emulator's `/admin/counters`.
//!
//! Each test has its own control plane, emulator and controller(s): a controller serves every namespace of its
//! cluster, and the write counters are per emulator, so sharing either would mix the tests' evidence. Waits are
//! bounded polls; the few "nothing happens" checks observe for a bounded time after the controller said it is
//! done. Pod IPs (10.244.0.0/16) are data only: nothing connects to them.

mod common;
#[path = "common/kubelet.rs"]
mod kubelet;
#[path = "common/lab.rs"]
mod lab;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ako::avi::models::VirtualService;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::Api;
use lab::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_demo_service_gets_an_external_ip_in_the_vip_network_its_fqdn_marked_objects_and_a_synced_event()
 {
    let lab = Lab::start().await;
    let _ctl = lab.controller("ako-0", &[], &[]);
    lab.namespace("vmug");
    lab.apply(&demo_service("vmug", "avisvc-lb"));
    let vip = lab.wait_vip("vmug", "avisvc-lb").await;

    // What an operator sees: `kubectl get svc` shows the VIP as EXTERNAL-IP (the column shows an entry's ip,
    // its hostname only when it has no ip), and the hostname is in the status next to it.
    let line = lab.kubectl(&["get", "svc", "-n", "vmug", "avisvc-lb", "--no-headers"]);
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols.get(1), Some(&"LoadBalancer"), "{line}");
    assert_eq!(cols.get(3), Some(&vip.to_string().as_str()), "{line}");
    let fqdn = format!("avisvc-lb.vmug.{DOMAIN}");
    let hostname = lab.kubectl(&[
        "get",
        "svc",
        "-n",
        "vmug",
        "avisvc-lb",
        "-o",
        "jsonpath={.status.loadBalancer.ingress[*].hostname}",
    ]);
    assert_eq!(hostname, fqdn);
    let net: ipnet::IpNet = VIP_NET.parse().expect("net");
    assert!(net.contains(&vip), "{vip} outside {net}");
    assert_eq!(
        lab.ingress("vmug", "avisvc-lb").await,
        [(Some(vip.to_string()), Some(fqdn.clone()))]
    );

    // The Avi objects: exactly the four of the Service, ako's, marked with cluster, namespace and Service.
    assert_eq!(lab.owned().await, objects_of("vmug", "avisvc-lb", 80));
    let vs = vs_name("vmug", "avisvc-lb");
    let pool = pool_name("vmug", "avisvc-lb", "TCP", 80);
    for (ty, name) in [
        ("vsvip", vs.as_str()),
        ("pool", pool.as_str()),
        ("l4policyset", vs.as_str()),
        ("virtualservice", vs.as_str()),
    ] {
        let o = lab
            .object(ty, name)
            .await
            .unwrap_or_else(|| panic!("{ty} {name} missing"));
        if ty == "vsvip" {
            assert!(
                o.get("created_by").is_none(),
                "a VsVip has no created_by: {o}"
            );
        } else {
            assert_eq!(o["created_by"], OWNER, "{ty} {name}");
        }
        assert_eq!(
            marker(&o, "clustername"),
            Some(vec![CLUSTER_NAME.into()]),
            "{ty} {o}"
        );
        assert_eq!(marker(&o, "Namespace"), Some(vec!["vmug".into()]), "{ty}");
        assert_eq!(
            marker(&o, "ServiceName"),
            Some(vec!["avisvc-lb".into()]),
            "{ty}"
        );
    }
    let vsvip = lab.object("vsvip", &vs).await.expect("vsvip");
    let dns: Vec<&str> = vsvip["dns_info"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["fqdn"].as_str())
        .collect();
    assert_eq!(dns, [fqdn.as_str()]);
    assert_eq!(vsvip["vip"][0]["ip_address"]["addr"], vip.to_string());
    let virtual_service = lab.object("virtualservice", &vs).await.expect("vs");
    let se_group = lab
        .object("serviceenginegroup", "vmug-se-group")
        .await
        .expect("SE group of the seed");
    let se_uuid = se_group["uuid"].as_str().expect("uuid");
    assert!(
        virtual_service["se_group_ref"]
            .as_str()
            .is_some_and(|r| r.ends_with(&format!("/{se_uuid}"))),
        "placed in vmug-se-group: {virtual_service}"
    );
    assert_eq!(virtual_service["services"][0]["port"], 80);

    // A Normal `Synced` Event on the Service, as `kubectl get events` shows it.
    let events = lab.synced_events("vmug", "avisvc-lb").await;
    assert!(events.iter().all(|e| e["type"] == "Normal"), "{events:?}");
    assert!(
        events.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains(&vs) && m.contains(&vip.to_string()))),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_members_follow_pods_becoming_ready_and_not_ready_through_the_endpointslice_controller()
 {
    let lab = Lab::start().await;
    let kubelet = kubelet::Kubelet::start(lab.kube.clone());
    kubelet.node("node-1", "127.0.0.2", &[]).await;
    let ctl = lab.controller("ako-0", &[], &[]);
    lab.namespace("vmug");
    let app = [("app", "web")];
    kubelet
        .pod(
            "vmug",
            "web-1",
            &app,
            "web",
            8080,
            "node-1",
            "10.244.1.5",
            true,
        )
        .await;
    kubelet
        .pod(
            "vmug",
            "web-2",
            &app,
            "web",
            8080,
            "node-1",
            "10.244.1.6",
            false,
        )
        .await;
    lab.apply(&demo_service("vmug", "avisvc-lb"));
    lab.wait_vip("vmug", "avisvc-lb").await;
    let pool = pool_name("vmug", "avisvc-lb", "TCP", 80);
    let members = async |want: &[&str]| {
        let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        lab.wait(&format!("pool members {want:?}"), WAIT, async || {
            (lab.pool_servers(&pool).await.as_ref() == Some(&want)).then_some(())
        })
        .await;
    };
    // The named target port resolves to the Pods' containerPort; only the ready Pod is a member.
    members(&["10.244.1.5:8080"]).await;
    assert!(
        ctl.log().contains("SliceV1beta1"),
        "members come from discovery.k8s.io/v1beta1 EndpointSlices on 1.20:\n{}",
        ctl.log()
    );
    kubelet
        .pod_status("vmug", "web-2", "10.244.1.6", true)
        .await;
    members(&["10.244.1.5:8080", "10.244.1.6:8080"]).await;
    kubelet
        .pod_status("vmug", "web-1", "10.244.1.5", false)
        .await;
    members(&["10.244.1.6:8080"]).await;
    kubelet
        .pod_status("vmug", "web-2", "10.244.1.6", false)
        .await;
    members(&[]).await;
    // The VIP stays while the pool is empty.
    assert_eq!(
        lab.owned().await,
        objects_of("vmug", "avisvc-lb", 80),
        "the objects stay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_added_with_kubectl_patch_writes_a_new_pool_and_updates_only_the_policy_set_and_virtual_service()
 {
    let lab = Lab::start().await;
    let _ctl = lab.controller("ako-0", &[], &[]);
    lab.namespace("vmug");
    lab.apply(&demo_service("vmug", "avisvc-lb"));
    let vip = lab.wait_vip("vmug", "avisvc-lb").await;
    lab.settled_counters().await;
    lab.reset_counters().await;

    lab.kubectl(&[
        "patch",
        "svc",
        "-n",
        "vmug",
        "avisvc-lb",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/spec/ports/-","value":{"name":"https","port":443,"targetPort":8443,"protocol":"TCP"}}]"#,
    ]);
    let vs = vs_name("vmug", "avisvc-lb");
    lab.wait("the virtual service serving 80 and 443", WAIT, async || {
        let v = lab.object("virtualservice", &vs).await?;
        let ports: Vec<u64> = v["services"]
            .as_array()?
            .iter()
            .filter_map(|s| s["port"].as_u64())
            .collect();
        (ports == [80, 443]).then_some(())
    })
    .await;
    let c = lab.settled_counters().await;
    assert_eq!(c.get("POST", "pool"), 1, "{:?}", c.by_method);
    assert_eq!(c.get("PUT", "l4policyset"), 1, "{:?}", c.by_method);
    assert_eq!(c.get("PUT", "virtualservice"), 1, "{:?}", c.by_method);
    assert_eq!(c.get("PUT", "vsvip"), 0, "{:?}", c.by_method);
    assert_eq!(c.get("PUT", "pool"), 0, "{:?}", c.by_method);
    assert_eq!(c.writes, 3, "{:?}", c.by_method);
    let mut want = objects_of("vmug", "avisvc-lb", 80);
    want.insert(format!(
        "pool/{}",
        pool_name("vmug", "avisvc-lb", "TCP", 443)
    ));
    assert_eq!(lab.owned().await, want);
    assert_eq!(lab.wait_vip("vmug", "avisvc-lb").await, vip, "same VIP");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_service_or_its_namespace_removes_its_avi_objects_and_nothing_else() {
    let lab = Lab::start().await;
    let kubelet = kubelet::Kubelet::start(lab.kube.clone());
    kubelet.node("node-1", "127.0.0.2", &[]).await;
    let _ctl = lab.controller("ako-0", &[], &[]);
    lab.namespace("vmug");
    lab.namespace("shop");
    lab.apply(&demo_service("vmug", "avisvc-lb"));
    lab.apply(&demo_service("vmug", "keep"));
    lab.apply(&demo_service("shop", "cart"));
    kubelet
        .pod(
            "shop",
            "web-1",
            &[("app", "web")],
            "web",
            8080,
            "node-1",
            "10.244.2.5",
            true,
        )
        .await;
    for (ns, svc) in [("vmug", "avisvc-lb"), ("vmug", "keep"), ("shop", "cart")] {
        lab.wait_vip(ns, svc).await;
    }
    let cart_pool = pool_name("shop", "cart", "TCP", 80);
    lab.wait("the shop Pod as a member", WAIT, async || {
        (lab.pool_servers(&cart_pool).await? == ["10.244.2.5:8080"]).then_some(())
    })
    .await;
    let all: BTreeSet<String> = [
        objects_of("vmug", "avisvc-lb", 80),
        objects_of("vmug", "keep", 80),
        objects_of("shop", "cart", 80),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert_eq!(lab.owned().await, all);

    lab.kubectl(&["delete", "svc", "-n", "vmug", "avisvc-lb"]);
    let mut want: BTreeSet<String> = all
        .difference(&objects_of("vmug", "avisvc-lb", 80))
        .cloned()
        .collect();
    lab.wait("the deleted Service's objects gone", WAIT, async || {
        (lab.owned().await == want).then_some(())
    })
    .await;

    // The namespace: the controller-manager deletes its Service, EndpointSlices and Pod (the kubelet stand-in
    // finishes the Pod), then the namespace itself.
    lab.kubectl(&["delete", "namespace", "shop", "--wait=false"]);
    want = objects_of("vmug", "keep", 80);
    lab.wait("the deleted namespace's objects gone", WAIT, async || {
        (lab.owned().await == want).then_some(())
    })
    .await;
    let namespaces: Api<Namespace> = Api::all(lab.kube.clone());
    lab.wait(
        "namespace shop deleted",
        Duration::from_secs(60),
        async || {
            namespaces
                .get_opt("shop")
                .await
                .expect("read namespace")
                .is_none()
                .then_some(())
        },
    )
    .await;
    assert!(
        !lab.ingress("vmug", "keep").await.is_empty(),
        "the other Service keeps its status"
    );
    let c = lab.settled_counters().await;
    assert_eq!(
        c.by_method
            .get("DELETE")
            .map(|m| m.values().sum::<u64>())
            .unwrap_or(0),
        8,
        "two Services' objects deleted once each: {:?}",
        c.by_method
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_controller_with_nothing_changed_makes_zero_writes() {
    let lab = Lab::start().await;
    let kubelet = kubelet::Kubelet::start(lab.kube.clone());
    kubelet.node("node-1", "127.0.0.2", &[]).await;
    lab.namespace("vmug");
    kubelet
        .pod(
            "vmug",
            "web-1",
            &[("app", "web")],
            "web",
            8080,
            "node-1",
            "10.244.1.5",
            true,
        )
        .await;
    lab.apply(&demo_service("vmug", "avisvc-lb"));
    lab.apply(&demo_service("vmug", "second"));
    let mut first = lab.controller("ako-0", &[], &[]);
    lab.wait_vip("vmug", "avisvc-lb").await;
    lab.wait_vip("vmug", "second").await;
    let pool = pool_name("vmug", "avisvc-lb", "TCP", 80);
    lab.wait("the Pod as a member", WAIT, async || {
        (lab.pool_servers(&pool).await? == ["10.244.1.5:8080"]).then_some(())
    })
    .await;
    let before = lab.settled_counters().await;
    assert_eq!(Lab::posts(&before), 8, "{:?}", before.by_method);
    assert!(first.stop(), "ako controller did not stop on SIGTERM");
    let version = |s: Option<Service>| s.and_then(|s| s.metadata.resource_version);
    let rv = version(lab.service("vmug", "avisvc-lb").await);

    let again = lab.controller("ako-1", &[], &[]);
    lab.wait_log(&again, "full sync done", 1, WAIT).await;
    let after = lab.settled_counters().await;
    assert_eq!(
        after.writes, before.writes,
        "writes after the restart: before {:?}, after {:?}",
        before.by_method, after.by_method
    );
    assert!(
        after.get("GET", "virtualservice") > before.get("GET", "virtualservice"),
        "the restarted controller did read the controller: {:?}",
        after.by_method
    );
    assert_eq!(
        version(lab.service("vmug", "avisvc-lb").await),
        rv,
        "the Service (status) was not written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_service_deleted_on_the_controller_is_restored_within_one_full_sync() {
    let lab = Lab::start().await;
    let ctl = lab.controller("ako-0", &["--full-sync-frequency", "3"], &[]);
    lab.namespace("vmug");
    lab.apply(&demo_service("vmug", "avisvc-lb"));
    let vip = lab.wait_vip("vmug", "avisvc-lb").await;
    lab.settled_counters().await;
    let syncs = ctl.count("full sync done");
    let vs = vs_name("vmug", "avisvc-lb");
    let old = lab.object("virtualservice", &vs).await.expect("vs");
    let old_uuid = old["uuid"].as_str().expect("uuid").to_string();
    lab.avi
        .delete::<VirtualService>(&old_uuid)
        .await
        .expect("deleted by hand");
    let deleted = Instant::now();
    let restored = lab
        .wait("the virtual service restored", WAIT, async || {
            lab.object("virtualservice", &vs).await
        })
        .await;
    let took = deleted.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "restored after {took:?}, more than one full sync (3 s) and slack"
    );
    lab.wait_log(&ctl, "full sync done", syncs + 1, WAIT).await;
    assert_ne!(restored["uuid"], old_uuid, "a new object");
    assert_eq!(restored["created_by"], OWNER);
    assert!(
        restored["vsvip_ref"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{restored}"
    );
    assert_eq!(lab.owned().await, objects_of("vmug", "avisvc-lb", 80));
    assert_eq!(lab.wait_vip("vmug", "avisvc-lb").await, vip, "same VIP");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_port_mode_members_are_the_selected_nodes_internal_ips_with_the_node_port() {
    let lab = Lab::start().await;
    let kubelet = kubelet::Kubelet::start(lab.kube.clone());
    kubelet.node("node-a", "127.0.0.2", &[("lb", "yes")]).await;
    kubelet.node("node-b", "127.0.0.3", &[]).await;
    let _ctl = lab.controller(
        "ako-0",
        &[
            "--service-type",
            "NodePort",
            "--node-key",
            "lb",
            "--node-value",
            "yes",
        ],
        &[],
    );
    lab.namespace("vmug");
    lab.apply(&demo_service("vmug", "avisvc-lb"));
    lab.wait_vip("vmug", "avisvc-lb").await;
    let node_port = lab
        .service("vmug", "avisvc-lb")
        .await
        .and_then(|s| s.spec?.ports?.first()?.node_port)
        .expect("nodePort allocated");
    let pool = pool_name("vmug", "avisvc-lb", "TCP", 80);
    let members = async |want: Vec<String>| {
        lab.wait(&format!("pool members {want:?}"), WAIT, async || {
            (lab.pool_servers(&pool).await.as_ref() == Some(&want)).then_some(())
        })
        .await;
    };
    members(vec![format!("127.0.0.2:{node_port}")]).await;
    // Labelling the other node makes it a member too.
    lab.kubectl(&["label", "node", "node-b", "lb=yes"]);
    members(vec![
        format!("127.0.0.2:{node_port}"),
        format!("127.0.0.3:{node_port}"),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_leader_election_only_the_leader_writes_and_the_other_replica_takes_over_when_it_is_killed()
 {
    let lab = Lab::start().await;
    let leases: Api<Lease> = Api::namespaced(lab.kube.clone(), "default");
    let holder = async || {
        leases
            .get_opt(ako::k8s::lease::LEASE_NAME)
            .await
            .ok()
            .flatten()
            .and_then(|l| l.spec?.holder_identity)
            .filter(|h| !h.is_empty())
    };
    let env = [("POD_NAMESPACE", "default")];
    let mut a = lab.controller("ako-a", &["--leader-election"], &env);
    let mut b = lab.controller("ako-b", &["--leader-election"], &env);
    let first = lab
        .wait("a Lease holder", WAIT, async || holder().await)
        .await;
    let a_leads = first.starts_with("ako-a");
    assert!(a_leads || first.starts_with("ako-b"), "holder {first:?}");
    lab.namespace("vmug");
    lab.apply(&demo_service("vmug", "avisvc-lb"));
    lab.wait_vip("vmug", "avisvc-lb").await;
    let c = lab.settled_counters().await;
    assert_eq!(
        Lab::posts(&c),
        4,
        "one create per object, no duplicate: {:?}",
        c.by_method
    );
    let (leader, follower) = if a_leads {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    assert!(
        leader.count("full sync done") >= 1,
        "the leader synced:\n{}",
        leader.log()
    );
    assert_eq!(
        follower.count("full sync done"),
        0,
        "the follower reconciled:\n{}",
        follower.log()
    );

    // The leader dies without stepping down: the other replica takes over once the Lease expires.
    let reporters = |events: &[Value]| -> BTreeSet<String> {
        events
            .iter()
            .filter_map(|e| e["reportingInstance"].as_str().map(String::from))
            .collect()
    };
    let events = lab.synced_events("vmug", "avisvc-lb").await;
    assert_eq!(
        reporters(&events),
        BTreeSet::from([leader.name.clone()]),
        "{events:?}"
    );
    leader.kill_hard();
    lab.apply(&demo_service("vmug", "after-failover"));
    // The Lease (15 s) expires, the other replica acquires it (retry 2 s) and syncs.
    lab.wait(
        "the new Service programmed after the fail-over",
        Duration::from_secs(60),
        async || (!lab.ingress("vmug", "after-failover").await.is_empty()).then_some(()),
    )
    .await;
    let events = lab.synced_events("vmug", "after-failover").await;
    assert_eq!(
        reporters(&events),
        BTreeSet::from([follower.name.clone()]),
        "{events:?}"
    );
    let now = holder().await.unwrap_or_default();
    assert!(
        now.starts_with(&follower.name),
        "the Lease is held by {now:?}, not {}",
        follower.name
    );
    let c = lab.settled_counters().await;
    assert_eq!(
        Lab::posts(&c),
        8,
        "the new leader created only the new Service's objects: {:?}",
        c.by_method
    );
    assert_eq!(
        c.writes, 8,
        "and rewrote nothing of the first one: {:?}",
        c.by_method
    );
    let mut want = objects_of("vmug", "avisvc-lb", 80);
    want.extend(objects_of("vmug", "after-failover", 80));
    assert_eq!(lab.owned().await, want);
    assert!(follower.count("full sync done") >= 1, "{}", follower.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_whose_service_list_is_forbidden_deletes_nothing_and_recovers_without_writes()
{
    let lab = Lab::start().await;
    lab.namespace("vmug");
    lab.apply(&demo_service("vmug", "avisvc-lb"));
    lab.apply(&demo_service("vmug", "second"));
    let mut first = lab.controller("ako-0", &[], &[]);
    lab.wait_vip("vmug", "avisvc-lb").await;
    lab.wait_vip("vmug", "second").await;
    let programmed = lab.owned().await;
    assert_eq!(programmed.len(), 8, "{programmed:?}");
    lab.settled_counters().await;
    assert!(first.stop(), "ako controller did not stop on SIGTERM");
    lab.reset_counters().await;

    // The restarted controller runs as a ServiceAccount that may not list Services (an RBAC mistake).
    lab.apply(&ako_rbac("ako-limited", None, Some("[get, list, watch]")));
    let limited = lab.service_account_kubeconfig("ako-limited").await;
    let denied = lab.cluster.kubectl(
        &[
            "--kubeconfig",
            limited.to_str().expect("path"),
            "get",
            "services",
            "-A",
        ],
        None,
    );
    assert!(
        !denied.status.success() && String::from_utf8_lossy(&denied.stderr).contains("forbidden"),
        "the token may list Services: {}",
        String::from_utf8_lossy(&denied.stderr)
    );

    let limited_path = limited.display().to_string();
    let ctl = lab.controller(
        "ako-1",
        &["--full-sync-frequency", "1"],
        &[("KUBECONFIG", limited_path.as_str())],
    );
    lab.wait_log(&ctl, "environment validated", 1, WAIT).await;
    lab.wait(
        "the Service list failing in the controller's log",
        WAIT,
        async || {
            let log = ctl.log();
            (log.contains("watch failed") && log.contains("forbidden")).then_some(())
        },
    )
    .await;
    // Bounded observation: the list keeps failing (each retry is logged), nothing is deleted or written.
    let failures = ctl.count("watch failed");
    lab.wait(
        "two more failed lists",
        Duration::from_secs(20),
        async || (ctl.count("watch failed") >= failures + 2).then_some(()),
    )
    .await;
    let c = lab.counters().await;
    assert_eq!(c.writes, 0, "writes while blind: {:?}", c.by_method);
    assert!(!c.by_method.contains_key("DELETE"), "{:?}", c.by_method);
    assert_eq!(lab.owned().await, programmed, "every object is kept");
    assert_eq!(ctl.count("full sync done"), 0, "no sync on a partial view");

    // Once the permission is granted, the controller syncs and finds nothing to do.
    lab.apply(&rbac_grant(
        "ako-limited",
        "ako-limited-services",
        "services",
        "[get, list, watch]",
    ));
    lab.wait_log(&ctl, "full sync done", 1, Duration::from_secs(60))
        .await;
    let c = lab.settled_counters().await;
    assert_eq!(c.writes, 0, "writes after recovery: {:?}", c.by_method);
    assert_eq!(lab.owned().await, programmed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_503_429_latency_and_session_expiry_still_converge_with_no_duplicate_or_leaked_object()
 {
    let lab = Lab::start().await;
    lab.namespace("vmug");
    // Faults before ako starts: a fifth of the API calls fail with 503 or 429, each call is 20 ms slower, and
    // sessions expire every 2 s.
    let faults = serde_json::json!({
        "latency_ms": 20,
        "error_rates": {"503": 0.15, "429": 0.1},
        "retry_after_secs": 0,
        "session_expiry_secs": 2
    });
    let put = lab
        .http
        .put(format!("https://{}/admin/faults", lab.avi_host))
        .json(&faults)
        .send()
        .await
        .expect("set faults");
    assert!(
        put.status().is_success(),
        "faults refused: {}",
        put.status()
    );
    let names: Vec<String> = (0..6).map(|i| format!("svc-{i}")).collect();
    for n in &names {
        lab.apply(&demo_service("vmug", n));
    }
    let _ctl = lab.controller("ako-0", &[], &[]);
    // A group that keeps drawing faults backs off (0.5 s, 1 s, 2 s, ...): allow for a few rounds.
    for n in &names {
        lab.wait_vip_within("vmug", n, Duration::from_secs(120))
            .await;
    }
    // Two Services go while the faults continue: their objects go too. Every session is expired first, so
    // the deletions meet a refused session even when the work above took less than the 2 s expiry.
    let expire = lab
        .http
        .post(format!("https://{}/admin/sessions/expire", lab.avi_host))
        .send()
        .await
        .expect("expire sessions");
    assert!(expire.status().is_success(), "expire: {}", expire.status());
    lab.kubectl(&["-n", "vmug", "delete", "service", "svc-0", "svc-1"]);
    let mut want = BTreeSet::new();
    for n in &names[2..] {
        want.extend(objects_of("vmug", n, 80));
    }
    // Deletions draw faults too and back off the same way: the same allowance as the creations above (one
    // run on a loaded machine needed more than 30 s).
    lab.wait(
        "exactly the objects of the four remaining Services",
        Duration::from_secs(120),
        async || (lab.owned().await == want).then_some(()),
    )
    .await;
    let fired = lab.counters().await.faults;
    assert!(
        fired.injected.values().sum::<u64>() > 0
            && fired.sessions_expired + fired.unauthenticated > 0,
        "the faults fired: {fired:?}"
    );
    // No duplicate: one virtual service per remaining Service, each with one VsVip address.
    let vs = lab.objects("virtualservice").await;
    assert_eq!(vs.len(), 4, "{vs:?}");
    let vips = lab.objects("vsvip").await;
    assert_eq!(vips.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_demo_ingress_gets_an_address_and_a_parent_on_80_and_443_and_a_tls_app_its_own_vip_and_sni_child()
 {
    let lab = Lab::start().await;
    let _ctl = lab.controller("ako-0", &[], &[]);
    lab.apply(DEMO_YAML);
    let host = format!("hackazon.{DOMAIN}");
    let vip = lab.wait_ingress_vip("vmug", "hackazon", &host).await;

    // `kubectl get ingress`: the ADDRESS column shows the VIP.
    let line = lab.kubectl(&["get", "ingress", "-n", "vmug", "hackazon", "--no-headers"]);
    assert!(
        line.split_whitespace().any(|c| c == vip.to_string()),
        "ADDRESS missing: {line}"
    );
    assert_eq!(
        lab.ingress_status("vmug", "hackazon").await,
        [(Some(vip.to_string()), Some(host.clone()))]
    );
    // The shard's parent listens on 80 and, automatically, 443; its VsVip publishes the host.
    let parent = format!("{CLUSTER_NAME}--Shared-L7-0");
    let vs = lab.object("virtualservice", &parent).await.expect("parent");
    assert_eq!(vs["type"], "VS_TYPE_VH_PARENT");
    let ports: Vec<(u64, bool)> = vs["services"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["port"].as_u64().unwrap_or_default(),
                s["enable_ssl"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(ports, [(80, false), (443, true)]);
    let vsvip = lab.object("vsvip", &parent).await.expect("vsvip");
    assert_eq!(vsvip["dns_info"][0]["fqdn"], host);
    assert_eq!(vsvip["vip"][0]["ip_address"]["addr"], vip.to_string());
    let pool = format!("{CLUSTER_NAME}--{host}_-vmug-hackazon");
    assert!(lab.object("pool", &pool).await.is_some(), "{pool}");
    assert!(lab.object("poolgroup", &pool).await.is_some(), "{pool}");
    let synced = lab.events("Ingress", "vmug", "hackazon", "Synced").await;
    assert!(
        synced.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains(&parent) && m.contains(&vip.to_string()))),
        "{synced:?}"
    );

    // The second application, with TLS: another shard, another VIP, an SNI child with its certificate.
    lab.namespace("shop");
    lab.shop_secret();
    lab.apply(SHOP_YAML);
    let shop_host = format!("shop.{DOMAIN}");
    let shop_vip = lab.wait_ingress_vip("shop", "shop", &shop_host).await;
    assert_ne!(shop_vip, vip);
    let child_name = format!("{CLUSTER_NAME}--{shop_host}");
    let child = lab
        .wait("the SNI child", WAIT, async || {
            lab.object("virtualservice", &child_name).await
        })
        .await;
    assert_eq!(child["type"], "VS_TYPE_VH_CHILD");
    let shop_parent = lab
        .object("virtualservice", &format!("{CLUSTER_NAME}--Shared-L7-1"))
        .await
        .expect("the shop's parent");
    let parent_uuid = shop_parent["uuid"].as_str().expect("uuid");
    assert!(
        child["vh_parent_vs_ref"]
            .as_str()
            .is_some_and(|r| r.ends_with(parent_uuid)),
        "{child}"
    );
    let cert = lab
        .object("sslkeyandcertificate", &child_name)
        .await
        .expect("certificate");
    assert!(
        cert["certificate"]["subject"]["common_name"]
            .as_str()
            .is_some_and(|cn| cn.contains("shop")),
        "{cert}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingress_path_edit_and_a_secret_rotation_write_only_their_objects_delete_cleans_up_and_a_restart_writes_nothing()
 {
    let lab = Lab::start().await;
    let mut ctl = lab.controller("ako-0", &[], &[]);
    lab.apply(DEMO_YAML);
    lab.namespace("shop");
    lab.shop_secret();
    lab.apply(SHOP_YAML);
    let host = format!("hackazon.{DOMAIN}");
    lab.wait_ingress_vip("vmug", "hackazon", &host).await;
    lab.wait_ingress_vip("shop", "shop", &format!("shop.{DOMAIN}"))
        .await;
    let child_name = format!("{CLUSTER_NAME}--shop.{DOMAIN}");
    lab.wait("the SNI child", WAIT, async || {
        lab.object("virtualservice", &child_name).await
    })
    .await;
    lab.settled_counters().await;
    let before = lab.owned().await;
    lab.reset_counters().await;

    // A path added: its pool and pool group are created and the parent's policy set is updated; nothing else.
    let edited = DEMO_YAML.replace(
        "        backend: {service: {name: hackazon, port: {number: 80}}}",
        "        backend: {service: {name: hackazon, port: {number: 80}}}\n      - path: /api\n        pathType: Exact\n        backend: {service: {name: hackazon, port: {name: http}}}",
    );
    assert_ne!(edited, DEMO_YAML);
    lab.apply(&edited);
    let new_pool = format!("{CLUSTER_NAME}--{host}_api-vmug-hackazon");
    lab.wait("the new path's pool", WAIT, async || {
        lab.object("pool", &new_pool).await
    })
    .await;
    let c = lab.settled_counters().await;
    assert_eq!(c.get("POST", "pool"), 1, "{:?}", c.by_method);
    assert_eq!(c.get("POST", "poolgroup"), 1, "{:?}", c.by_method);
    assert_eq!(c.get("PUT", "httppolicyset"), 1, "{:?}", c.by_method);
    assert_eq!(c.writes, 3, "{:?}", c.by_method);
    let after = lab.owned().await;
    assert!(before.is_subset(&after));
    assert_eq!(after.len(), before.len() + 2);

    // A rotated certificate: the SSLKeyAndCertificate is updated in place, nothing else is written.
    let cert = lab
        .object("sslkeyandcertificate", &child_name)
        .await
        .expect("certificate");
    lab.reset_counters().await;
    lab.shop_secret();
    let rotated = lab
        .wait("the rotated certificate", WAIT, async || {
            let now = lab.object("sslkeyandcertificate", &child_name).await?;
            (now["certificate"]["certificate"] != cert["certificate"]["certificate"]).then_some(now)
        })
        .await;
    assert_eq!(rotated["uuid"], cert["uuid"]);
    let c = lab.settled_counters().await;
    assert_eq!(c.writes, 1, "{:?}", c.by_method);

    // Deleting the demo Ingress removes everything only it used; the shop's objects stay.
    lab.kubectl(&["delete", "ingress", "-n", "vmug", "hackazon"]);
    lab.wait("the demo's objects removed", WAIT, async || {
        let left = lab.owned().await;
        (!left
            .iter()
            .any(|o| o.contains("hackazon") || o.contains("Shared-L7-0")))
        .then_some(())
    })
    .await;
    let left = lab.owned().await;
    assert!(
        left.iter()
            .any(|o| o == &format!("virtualservice/{child_name}")),
        "{left:?}"
    );

    // A restart with nothing changed writes nothing.
    lab.settled_counters().await;
    assert!(ctl.stop(), "ako controller did not stop on SIGTERM");
    lab.reset_counters().await;
    let ctl = lab.controller("ako-1", &[], &[]);
    lab.wait_log(&ctl, "full sync done", 1, WAIT).await;
    let c = lab.settled_counters().await;
    assert_eq!(c.writes, 0, "{:?}", c.by_method);
    assert_eq!(lab.owned().await, left);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wildcard_ingress_and_a_default_backend_show_their_address_alone_and_another_class_gets_none()
 {
    let lab = Lab::start().await;
    let _ctl = lab.controller("ako-0", &[], &[]);
    lab.apply(DEMO_YAML);
    let ingress = |name: &str, class: &str, spec: &str| {
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name}, namespace: vmug}}\n\
             spec:\n  ingressClassName: {class}\n{spec}"
        )
    };
    let backend = "{service: {name: hackazon, port: {number: 80}}}";
    lab.apply(&ingress(
        "wild",
        "avi-lb",
        &format!(
            "  rules:\n  - host: '*.wild.{DOMAIN}'\n    http:\n      paths:\n      - {{path: /, pathType: Prefix, backend: {backend}}}\n"
        ),
    ));
    lab.apply(&ingress(
        "fallback",
        "avi-lb",
        &format!("  defaultBackend: {backend}\n"),
    ));
    lab.apply(&ingress(
        "elsewhere",
        "some-invalid-class-name",
        &format!(
            "  rules:\n  - host: elsewhere.{DOMAIN}\n    http:\n      paths:\n      - {{path: /, pathType: Prefix, backend: {backend}}}\n"
        ),
    ));
    let net: ipnet::IpNet = VIP_NET.parse().expect("net");
    // The API server refuses a wildcard hostname in the status: the address alone is written (it was a 422
    // and a log line before). So for the default backend, which has no host at all.
    for name in ["wild", "fallback"] {
        let status = lab
            .wait(
                &format!("the address of Ingress {name}"),
                WAIT,
                async || {
                    let st = lab.ingress_status("vmug", name).await;
                    (!st.is_empty()).then_some(st)
                },
            )
            .await;
        assert_eq!(status.len(), 1, "{name}: {status:?}");
        let (ip, hostname) = &status[0];
        assert_eq!(hostname, &None, "{name}: {status:?}");
        let ip: std::net::IpAddr = ip.as_deref().expect("ip").parse().expect("an address");
        assert!(net.contains(&ip), "{name}: {ip}");
        let line = lab.kubectl(&["get", "ingress", "-n", "vmug", name, "--no-headers"]);
        assert!(line.contains(&ip.to_string()), "ADDRESS missing: {line}");
    }
    let vs = format!("{CLUSTER_NAME}--vmug-fallback-default-backend");
    let obj = lab
        .object("virtualservice", &vs)
        .await
        .expect("its own virtual service");
    assert_eq!(obj["type"], "VS_TYPE_NORMAL");
    let synced = lab.events("Ingress", "vmug", "fallback", "Synced").await;
    assert!(
        synced.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("spec.defaultBackend") && m.contains(&vs))),
        "{synced:?}"
    );
    // The suite's ingress_class feature: an Ingress of another class gets no address (checked once ako has
    // written the others, so it had every chance to).
    assert_eq!(lab.ingress_status("vmug", "elsewhere").await, []);
    let owned = lab.owned().await;
    assert!(!owned.iter().any(|o| o.contains("elsewhere")), "{owned:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_ip_mode_keeps_a_static_route_per_node_pod_cidr_on_the_vrf_and_follows_nodes() {
    let lab = Lab::start().await;
    let kubelet = kubelet::Kubelet::start(lab.kube.clone());
    kubelet.node("node-a", "127.0.0.2", &[]).await;
    kubelet.node("node-b", "127.0.0.3", &[]).await;
    // node-a's pod CIDR in its spec (as kube-controller-manager allocates it), node-b's by AKO's annotation.
    lab.kubectl(&[
        "patch",
        "node",
        "node-a",
        "-p",
        r#"{"spec":{"podCIDR":"10.244.1.0/24","podCIDRs":["10.244.1.0/24"]}}"#,
    ]);
    lab.kubectl(&[
        "annotate",
        "node",
        "node-b",
        "ako.vmware.com/pod-cidrs=10.244.2.0/24",
    ]);
    let mut ctl = lab.controller("ako-0", &[], &[]);
    let routes = async || -> Vec<(String, String, String)> {
        let page = lab.read("/api/vrfcontext?name=global").await;
        page["results"][0]["static_routes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["labels"][0]["value"] == CLUSTER_NAME)
            .map(|r| {
                (
                    r["route_id"].as_str().unwrap_or_default().to_string(),
                    format!(
                        "{}/{}",
                        r["prefix"]["ip_addr"]["addr"].as_str().unwrap_or_default(),
                        r["prefix"]["mask"]
                    ),
                    r["next_hop"]["addr"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect()
    };
    let want = |list: &[(&str, &str, &str)]| -> Vec<(String, String, String)> {
        list.iter()
            .map(|(a, b, c)| ((*a).into(), (*b).into(), (*c).into()))
            .collect()
    };
    let both = want(&[
        ("veba-of-node-a-0", "10.244.1.0/24", "127.0.0.2"),
        ("veba-of-node-b-0", "10.244.2.0/24", "127.0.0.3"),
    ]);
    lab.wait("a route per Node", WAIT, async || {
        let mut r = routes().await;
        r.sort();
        (r == both).then_some(())
    })
    .await;

    // A Node deleted: its route goes, without a restart.
    lab.kubectl(&["delete", "node", "node-b"]);
    let one = want(&[("veba-of-node-a-0", "10.244.1.0/24", "127.0.0.2")]);
    lab.wait("node-b's route removed", WAIT, async || {
        (routes().await == one).then_some(())
    })
    .await;

    // A restart with nothing changed writes nothing to the VRF.
    lab.settled_counters().await;
    assert!(ctl.stop(), "ako controller did not stop on SIGTERM");
    lab.reset_counters().await;
    let ctl = lab.controller("ako-1", &[], &[]);
    lab.wait_log(&ctl, "full sync done", 1, WAIT).await;
    let c = lab.settled_counters().await;
    assert_eq!(c.writes, 0, "{:?}", c.by_method);
    assert_eq!(routes().await, one);
}
