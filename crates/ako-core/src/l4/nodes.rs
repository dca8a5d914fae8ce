//! What ako reads of a Node: its addresses (for NodePort members and static routes' next hops), its labels
//! (nodePortSelector) and its pod CIDRs (ClusterIP mode's static routes).

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Node;
use serde_json::Value;

/// A node as NodePort mode (its address and labels) and ClusterIP mode's static routes (its addresses and pod
/// CIDRs) need it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeInfo {
    pub name: String,
    /// The first InternalIP.
    pub internal_ip: Option<IpAddr>,
    /// The addresses a static route to the Node's pods may use as next hop, best first: the CNI's own (Calico's
    /// `projectcalico.org/IPv4Address`/`IPv6Address`, Antrea's `node.antrea.io/transport-addresses`), then every
    /// InternalIP (dual-stack Nodes have one per family).
    pub addresses: Vec<IpAddr>,
    pub labels: BTreeMap<String, String>,
    /// The Node's pod CIDRs ([`pod_cidrs_of`]).
    pub pod_cidrs: Vec<IpNet>,
}

/// The annotation giving a Node's pod CIDRs when `spec.podCIDRs` does not (AKO reads it for CNIs that allocate
/// pod addresses themselves), comma-separated.
pub const POD_CIDRS_ANNOTATION: &str = "ako.vmware.com/pod-cidrs";
/// OVN-Kubernetes' per-Node subnet annotation: `{"default": "10.244.0.0/24"}` (or a list).
pub const OVN_SUBNETS_ANNOTATION: &str = "k8s.ovn.org/node-subnets";

/// A Node's pod CIDRs: the annotation ako.vmware.com/pod-cidrs, else OVN-Kubernetes' node-subnets, else
/// `spec.podCIDRs` (`spec.podCIDR` on older API servers). Entries that do not parse are skipped.
pub fn pod_cidrs_of(node: &Node) -> Vec<IpNet> {
    let annotations = node.metadata.annotations.as_ref();
    let parse = |list: &mut dyn Iterator<Item = &str>| -> Vec<IpNet> {
        list.filter_map(|c| c.trim().parse::<IpNet>().ok())
            .collect()
    };
    if let Some(v) = annotations.and_then(|a| a.get(POD_CIDRS_ANNOTATION)) {
        return parse(&mut v.split(','));
    }
    if let Some(v) = annotations.and_then(|a| a.get(OVN_SUBNETS_ANNOTATION))
        && let Ok(json) = serde_json::from_str::<Value>(v)
        && let Some(d) = json.get("default")
    {
        return match d {
            Value::String(s) => parse(&mut std::iter::once(s.as_str())),
            Value::Array(a) => parse(&mut a.iter().filter_map(Value::as_str)),
            _ => Vec::new(),
        };
    }
    let spec = node.spec.as_ref();
    match spec.and_then(|s| s.pod_cidrs.as_ref()) {
        Some(list) if !list.is_empty() => parse(&mut list.iter().map(String::as_str)),
        _ => parse(&mut spec.and_then(|s| s.pod_cidr.as_deref()).into_iter()),
    }
}

/// The CNIs' annotations naming a Node's address for pod traffic (read as AKO reads them for its routes).
pub const CNI_ADDRESS_ANNOTATIONS: [&str; 3] = [
    "projectcalico.org/IPv4Address",
    "projectcalico.org/IPv6Address",
    "node.antrea.io/transport-addresses",
];

impl NodeInfo {
    pub fn from_node(node: &Node) -> Self {
        let internal: Vec<IpAddr> = node
            .status
            .as_ref()
            .and_then(|s| s.addresses.as_ref())
            .into_iter()
            .flatten()
            .filter(|a| a.type_ == "InternalIP")
            .filter_map(|a| a.address.parse().ok())
            .collect();
        let annotations = node.metadata.annotations.as_ref();
        // Calico's carry a mask ("10.0.0.5/24"); Antrea's is a comma-separated list.
        let mut addresses: Vec<IpAddr> = CNI_ADDRESS_ANNOTATIONS
            .iter()
            .filter_map(|k| annotations.and_then(|a| a.get(*k)))
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().split('/').next()?.parse().ok())
            .collect();
        for ip in &internal {
            if !addresses.contains(ip) {
                addresses.push(*ip);
            }
        }
        Self {
            name: node.metadata.name.clone().unwrap_or_default(),
            internal_ip: internal.first().copied(),
            addresses,
            labels: node.metadata.labels.clone().unwrap_or_default(),
            pod_cidrs: pod_cidrs_of(node),
        }
    }
}
