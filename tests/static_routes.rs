//! AKO's default mode, ClusterIP with static route sync: pool members are pod addresses, and the Service Engines
//! reach them through one route per Node pod CIDR on the VRF. The emulator's data plane forwards to a pod address
//! only through such a route (pods live on loopback addresses of the lab's pod network, 127.244.0.0/16; Nodes on
//! 127.0.0.x), so traffic proves the routes.
//!
//! Also AKO's known failures here, each checked: another cluster whose name starts with this one's keeps its
//! routes; an id someone else already uses is never written twice; a Node added or removed changes its route
//! without a restart; a new leader finds the routes in place and writes nothing; AKO's own route (random id) is
//! kept, not rewritten.

mod avi_support;
mod reconciler_support;
mod traffic;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ako::avi::models::VrfContext;
use ako::core::index::ObjKey;
use ako::core::l4::{EndpointAddress, EndpointGroup, MemberMode, NodeInfo};
use ako::k8s::observe::View;
use reconciler_support::{Running, service};
use serde_json::{Value, json};
use traffic::{Backend, Lab, http_get, start_lab_tuned, vip_of, wait_for};

const C: &str = "veba-of";

fn node(name: &str, ip: [u8; 4], cidr: &str) -> NodeInfo {
    let ip = IpAddr::from(ip);
    NodeInfo {
        name: name.into(),
        internal_ip: Some(ip),
        addresses: vec![ip],
        pod_cidrs: vec![cidr.parse().expect("cidr")],
        ..NodeInfo::default()
    }
}

fn route(id: &str, prefix: &str, mask: u8, hop: &str, cluster: Option<&str>) -> Value {
    let mut r = json!({
        "route_id": id,
        "prefix": {"ip_addr": {"addr": prefix, "type": "V4"}, "mask": mask},
        "next_hop": {"addr": hop, "type": "V4"},
    });
    if let Some(c) = cluster {
        r["labels"] = json!([{"key": "clustername", "value": c}]);
    }
    r
}

async fn vrf(lab: &Lab) -> VrfContext {
    lab.client
        .get_by_name::<VrfContext>("global")
        .await
        .expect("read")
        .expect("the VRF global")
}

/// The VRF's routes: route id -> (prefix/mask, next hop, cluster label).
async fn routes(lab: &Lab) -> BTreeSet<(String, String, String, String)> {
    vrf(lab)
        .await
        .static_routes
        .unwrap_or_default()
        .iter()
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
                r["labels"][0]["value"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

fn slice(b: &Backend) -> EndpointGroup {
    EndpointGroup {
        ports: vec![(Some("http".into()), b.addr.port(), "TCP".into())],
        addresses: vec![EndpointAddress {
            ip: b.addr.ip(),
            ready: true,
            terminating: false,
        }],
    }
}

fn vrf_writes(lab: &Lab, since: u64) -> Vec<String> {
    lab.emu
        .requests(since)
        .into_iter()
        .filter(|q| q.kind == "vrfcontext" && q.method != "GET")
        .map(|q| q.method)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_ip_mode_routes_each_node_pod_cidr_and_traffic_reaches_pods_only_through_the_routes()
 {
    let lab = start_lab_tuned(100, |d| {
        d.pod_networks = vec!["127.244.0.0/16".parse().expect("net")];
    })
    .await;
    // Pods of node-1 and node-2, and the route table another cluster, an administrator and AKO left in the VRF.
    let pod1 = Backend::start("pod-1", [127, 244, 1, 5]).await;
    let pod2 = Backend::start("pod-2", [127, 244, 2, 5]).await;
    let uuid = vrf(&lab).await.uuid.expect("uuid");
    let before = [
        route(
            "veba-of-new-node-1-0",
            "127.245.1.0",
            24,
            "127.0.0.9",
            Some("veba-of-new"),
        ),
        route("veba-of-node-2-0", "192.168.0.0", 16, "127.0.0.254", None),
        route(
            "veba-of-8c1e5f2a-0",
            "127.244.1.0",
            24,
            "127.0.0.2",
            Some(C),
        ),
    ];
    lab.client
        .patch::<VrfContext>(
            &uuid,
            ako::avi::PatchOp::Add,
            json!({"static_routes": before}),
        )
        .await
        .expect("the VRF's routes");

    let svc = service(
        "metadata: {name: web, namespace: vmug, uid: s-1, creationTimestamp: \"2026-01-01T00:00:00Z\"}\n\
         spec: {type: LoadBalancer, ports: [{name: http, port: 80, targetPort: http, protocol: TCP}]}",
    );
    let key = ObjKey::new("vmug", "web");
    let view = Arc::new(View::from_parts(
        vec![svc],
        vec![(key.clone(), slice(&pod1)), (key.clone(), slice(&pod2))],
        vec![
            node("node-1", [127, 0, 0, 2], "127.244.1.0/24"),
            node("node-2", [127, 0, 0, 3], "127.244.2.0/24"),
        ],
    ));
    let place = traffic::placement(&lab);
    let start = |view: Arc<View>| {
        let place = place.clone();
        Running::start_with(&lab.emu, view, move |s| {
            s.placement = place;
            s.placement.member_mode = MemberMode::ClusterIp;
            s.static_routes = true;
        })
    };
    let seq = lab.emu.requests(0).len() as u64;
    let mut run = start(view.clone());
    run.until("converged", |p| p.converged_once && p.events_pending == 0)
        .await;

    // node-2 got its route, with an id nobody uses; every other route is as it was (AKO's for node-1 kept).
    let got = routes(&lab).await;
    let want: BTreeSet<(String, String, String, String)> = [
        (
            "veba-of-new-node-1-0",
            "127.245.1.0/24",
            "127.0.0.9",
            "veba-of-new",
        ),
        ("veba-of-node-2-0", "192.168.0.0/16", "127.0.0.254", ""),
        ("veba-of-8c1e5f2a-0", "127.244.1.0/24", "127.0.0.2", C),
        ("veba-of-node-2-0-2", "127.244.2.0/24", "127.0.0.3", C),
    ]
    .iter()
    .map(|(a, b, c, d)| ((*a).into(), (*b).into(), (*c).into(), (*d).into()))
    .collect();
    assert_eq!(got, want);
    assert_eq!(
        vrf_writes(&lab, seq),
        ["PATCH"],
        "one PATCH add, never a PUT of the VRF"
    );

    // Traffic reaches the pods of both Nodes through the routes.
    let vip = SocketAddr::new(vip_of(&lab.client, &format!("{C}--vmug-web")).await, 80);
    let seen = |want: &'static [&'static str]| async move {
        let mut seen = BTreeSet::new();
        for _ in 0..12 {
            if let Ok(a) = http_get(vip, "web", "/").await
                && let Some(b) = a.backend()
            {
                seen.insert(b.to_string());
            }
        }
        seen == want.iter().map(|s| (*s).to_string()).collect()
    };
    wait_for("both pods served", || seen(&["pod-1", "pod-2"])).await;

    // node-2 goes: its route goes, and its pod is no longer reachable (no route), without a restart.
    let seq = lab.emu.requests(0).len() as u64;
    run.taken(view.remove_node("node-2")).await;
    assert!(
        !routes(&lab).await.iter().any(|r| r.1 == "127.244.2.0/24"),
        "{:?}",
        routes(&lab).await
    );
    assert_eq!(vrf_writes(&lab, seq), ["PATCH"]);
    wait_for("only node-1's pod served", || seen(&["pod-1"])).await;
    let plane = lab.emu.dataplane().expect("data plane");
    let rt = plane.runtime().to_string();
    assert!(
        rt.contains("no static route"),
        "the pod is down for want of a route: {rt}"
    );

    // node-3 comes: its route is added at once.
    run.taken(view.upsert_node(node("node-3", [127, 0, 0, 4], "127.244.3.0/24")))
        .await;
    assert!(
        routes(&lab)
            .await
            .iter()
            .any(|r| r.0 == "veba-of-node-3-0" && r.1 == "127.244.3.0/24" && r.2 == "127.0.0.4"),
        "{:?}",
        routes(&lab).await
    );
    run.stop().await;

    // A new leader: the routes are in place, nothing is written; the other cluster's route is still there.
    let seq = lab.emu.requests(0).len() as u64;
    let mut run = start(view.clone());
    run.until("converged again", |p| {
        p.converged_once && p.events_pending == 0
    })
    .await;
    assert!(
        vrf_writes(&lab, seq).is_empty(),
        "{:?}",
        vrf_writes(&lab, seq)
    );
    assert!(routes(&lab).await.iter().any(|r| r.3 == "veba-of-new"));
    run.stop().await;
}
