//! Static routes for ClusterIP mode (AKO's default `serviceType`): pool members are pod addresses, and Service
//! Engines reach them through one static route per Node pod CIDR on the cloud's VRF (`vrfName`, `global` by
//! default), next hop the Node's address.
//!
//! The VRF is shared: other clusters' routes and routes an administrator added live there too. ako's routes are
//! the ones labelled `clustername=<clusterName>`, exactly (AKO matched a route-id prefix, so cluster `orange`
//! deleted the routes of `orange-new`). Writes are PATCH `add` / `delete` of single entries, never a PUT of the
//! whole VRF, so nobody else's route is rewritten. A route that already routes a Node's pod CIDR to the Node
//! (AKO's, whose ids were random per start) is kept as it is; a new route gets the id `<cluster>-<node>-<n>`, or a
//! suffixed one when someone else already uses that id (two routes with one id broke AKO with Calico).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Value, json};

use crate::l4::{NodeInfo, ip_json};

/// The label marking ako's routes.
pub const LABEL_KEY: &str = "clustername";

/// One route ako wants: a Node's pod CIDR through the Node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub node: String,
    pub prefix: IpNet,
    pub next_hop: IpAddr,
}

/// The routes the Nodes need, and why a Node gets none (no address, no pod CIDR). A pod CIDR of a family the
/// Node has no address of is skipped with its reason.
pub fn desired(nodes: &[NodeInfo]) -> (Vec<Route>, Vec<String>) {
    let mut out = Vec::new();
    let mut why = Vec::new();
    for n in nodes {
        if n.pod_cidrs.is_empty() {
            why.push(format!(
                "Node {} has no pod CIDR (spec.podCIDRs, or the annotation ako.vmware.com/pod-cidrs): no static route for its pods",
                n.name
            ));
            continue;
        }
        for cidr in &n.pod_cidrs {
            match n
                .addresses
                .iter()
                .find(|a| a.is_ipv4() == cidr.addr().is_ipv4())
            {
                Some(hop) => out.push(Route {
                    node: n.name.clone(),
                    prefix: cidr.trunc(),
                    next_hop: *hop,
                }),
                None => why.push(format!(
                    "Node {} has no {} address for its pod CIDR {cidr}: no static route for it",
                    n.name,
                    if cidr.addr().is_ipv4() {
                        "IPv4"
                    } else {
                        "IPv6"
                    }
                )),
            }
        }
    }
    out.sort();
    out.dedup_by(|a, b| a.prefix == b.prefix && a.next_hop == b.next_hop);
    (out, why)
}

/// Whether a VRF's route is ako's: labelled `clustername=<cluster>`, exactly.
pub fn is_ours(route: &Value, cluster: &str) -> bool {
    route
        .get("labels")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|l| {
            l.get("key").and_then(Value::as_str) == Some(LABEL_KEY)
                && l.get("value").and_then(Value::as_str) == Some(cluster)
        })
}

/// A route's (prefix, next hop), as the controller shows it.
fn key_of(route: &Value) -> Option<(IpNet, IpAddr)> {
    let p = route.get("prefix")?;
    let addr: IpAddr = p.get("ip_addr")?.get("addr")?.as_str()?.parse().ok()?;
    let mask = u8::try_from(p.get("mask")?.as_u64()?).ok()?;
    let prefix = IpNet::new(addr, mask).ok()?.trunc();
    let hop: IpAddr = route.get("next_hop")?.get("addr")?.as_str()?.parse().ok()?;
    Some((prefix, hop))
}

/// The body of a route entry.
pub fn route_json(id: &str, r: &Route, cluster: &str) -> Value {
    json!({
        "route_id": id,
        "prefix": {"ip_addr": ip_json(r.prefix.addr()), "mask": r.prefix.prefix_len()},
        "next_hop": ip_json(r.next_hop),
        "labels": [{"key": LABEL_KEY, "value": cluster}],
    })
}

/// What to write to the VRF: entries to add, and route ids of ako's to delete.
#[derive(Debug, Default, PartialEq)]
pub struct RoutePlan {
    pub add: Vec<Value>,
    pub delete: Vec<String>,
}

impl RoutePlan {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.delete.is_empty()
    }
}

/// The writes that make the VRF's routes of `cluster` the desired ones. `existing`: the VRF's `static_routes`.
/// `may_delete`: every Node was read (a Node list that failed or is incomplete must not remove routes).
pub fn plan(cluster: &str, want: &[Route], existing: &[Value], may_delete: bool) -> RoutePlan {
    let mut out = RoutePlan::default();
    let ours: Vec<&Value> = existing.iter().filter(|r| is_ours(r, cluster)).collect();
    let have: BTreeMap<(IpNet, IpAddr), &str> = ours
        .iter()
        .filter_map(|r| Some((key_of(r)?, r.get("route_id")?.as_str()?)))
        .collect();
    let mut ids: BTreeSet<String> = existing
        .iter()
        .filter_map(|r| r.get("route_id")?.as_str().map(str::to_string))
        .collect();
    let wanted: BTreeSet<(IpNet, IpAddr)> = want.iter().map(|r| (r.prefix, r.next_hop)).collect();
    let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
    for r in want {
        let n = per_node.entry(&r.node).or_default();
        let index = *n;
        *n += 1;
        if have.contains_key(&(r.prefix, r.next_hop)) {
            continue;
        }
        let base = format!("{cluster}-{}-{index}", r.node);
        let id = std::iter::once(base.clone())
            .chain((2..).map(|i| format!("{base}-{i}")))
            .find(|id| !ids.contains(id))
            .unwrap_or(base);
        ids.insert(id.clone());
        out.add.push(route_json(&id, r, cluster));
    }
    if may_delete {
        for r in ours {
            let stale = key_of(r).is_none_or(|k| !wanted.contains(&k));
            if let (true, Some(id)) = (stale, r.get("route_id").and_then(Value::as_str)) {
                out.delete.push(id.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, addrs: &[&str], cidrs: &[&str]) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            internal_ip: addrs.first().and_then(|a| a.parse().ok()),
            addresses: addrs.iter().filter_map(|a| a.parse().ok()).collect(),
            labels: Default::default(),
            pod_cidrs: cidrs.iter().filter_map(|c| c.parse().ok()).collect(),
        }
    }

    fn entry(id: &str, prefix: &str, mask: u8, hop: &str, cluster: Option<&str>) -> Value {
        let mut v = json!({
            "route_id": id,
            "prefix": {"ip_addr": {"addr": prefix, "type": "V4"}, "mask": mask},
            "next_hop": {"addr": hop, "type": "V4"},
        });
        if let Some(c) = cluster {
            v["labels"] = json!([{"key": "clustername", "value": c}]);
        }
        v
    }

    #[test]
    fn each_node_pod_cidr_is_routed_through_the_node_and_a_node_without_one_is_said() {
        let (routes, why) = desired(&[
            node(
                "n1",
                &["10.0.0.1", "fd00::1"],
                &["10.244.1.0/24", "fd10:1::/64"],
            ),
            node("n2", &["10.0.0.2"], &["10.244.2.7/24", "fd10:2::/64"]),
            node("n3", &["10.0.0.3"], &[]),
        ]);
        let got: Vec<(String, String, String)> = routes
            .iter()
            .map(|r| (r.node.clone(), r.prefix.to_string(), r.next_hop.to_string()))
            .collect();
        assert_eq!(
            got,
            [
                ("n1".into(), "10.244.1.0/24".into(), "10.0.0.1".into()),
                ("n1".into(), "fd10:1::/64".into(), "fd00::1".into()),
                ("n2".into(), "10.244.2.0/24".into(), "10.0.0.2".into()),
            ]
        );
        assert_eq!(why.len(), 2, "{why:?}");
        assert!(why[0].contains("n2") && why[0].contains("IPv6"), "{why:?}");
        assert!(why[1].contains("n3"), "{why:?}");
    }

    #[test]
    fn only_routes_labelled_with_exactly_this_cluster_are_touched_and_akos_routes_are_kept() {
        let want = desired(&[
            node("n1", &["10.0.0.1"], &["10.244.1.0/24"]),
            node("n2", &["10.0.0.2"], &["10.244.2.0/24"]),
        ])
        .0;
        let existing = [
            // AKO's route for n1 (a random id): kept as it is.
            entry(
                "orange-3f2a9c-0",
                "10.244.1.0",
                24,
                "10.0.0.1",
                Some("orange"),
            ),
            // A stale route of ours: deleted.
            entry(
                "orange-gone-0",
                "10.244.9.0",
                24,
                "10.0.0.9",
                Some("orange"),
            ),
            // Cluster orange-new shares the prefix "orange": never touched.
            entry(
                "orange-new-n1-0",
                "10.245.1.0",
                24,
                "10.1.0.1",
                Some("orange-new"),
            ),
            // An administrator's route without labels, holding the id ako would give n2: never touched.
            entry("orange-n2-0", "0.0.0.0", 0, "10.0.0.254", None),
        ];
        let p = plan("orange", &want, &existing, true);
        assert_eq!(p.delete, ["orange-gone-0"]);
        assert_eq!(p.add.len(), 1, "{p:?}");
        assert_eq!(
            p.add[0]["route_id"], "orange-n2-0-2",
            "a free id, never a duplicate"
        );
        assert_eq!(p.add[0]["prefix"]["ip_addr"]["addr"], "10.244.2.0");
        assert_eq!(p.add[0]["next_hop"]["addr"], "10.0.0.2");
        assert_eq!(
            p.add[0]["labels"],
            json!([{"key": "clustername", "value": "orange"}])
        );
        // Without a complete Node list nothing is deleted.
        assert!(plan("orange", &want, &existing, false).delete.is_empty());
        // Converged: nothing to write.
        let mut now = existing.to_vec();
        now.retain(|r| r["route_id"] != "orange-gone-0");
        now.extend(p.add.iter().cloned());
        assert!(plan("orange", &want, &now, true).is_empty());
    }
}
