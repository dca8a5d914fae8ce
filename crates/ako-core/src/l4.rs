//! L4 translation: LoadBalancer Services of ako -> the Avi objects that should exist, with AKO's names and wire
//! conventions so a cluster moving from AKO keeps its virtual services. Pure: Services, their endpoints and the
//! nodes come in as values; [`crate::plan`] compares the result with the controller.
//!
//! Per Service (or per group of Services sharing a VIP through `ako.vmware.com/enable-shared-vip`):
//!
//! ```text
//!  VsVip          <cluster>--<ns>-<svc>            VIP from IPAM (vipNetworkList) or the requested one; dns_info
//!  Pool           <cluster>--<ns>-<svc>-<PROTO>-<port>   one per port: ready endpoints, or nodes and the nodePort
//!  L4PolicySet    <cluster>--<ns>-<svc>            port+protocol -> pool
//!  VirtualService <cluster>--<ns>-<svc>            System-L4-Application, one services[] entry per port
//! ```
//! A shared group is named `<cluster>--<ns>-<key>`, its pools `<cluster>--<ns>-<svc>-<key>-<PROTO>-<port>` (AKO's
//! names, so a takeover renames nothing). The FQDNs and the requested VIP come from
//! [`intent::translate_service`], the conversion the webhook uses, so what the webhook admits is what is built.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Endpoints, LoadBalancerIngress, Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{Map, Value, json};

use crate::config::Config;
use crate::index::ObjKey;
use crate::intent::{self, Problem};
use crate::ownership::{self, Order};
use crate::plan::{Desired, Kind, name_ref};

mod nodes; // what ako reads of a Node: addresses, labels, pod CIDRs
mod profiles; // what ako chooses as AKO does: profiles and monitors by protocol and tier
mod rhi; // route health injection on virtual services and VsVips
pub use nodes::*;
pub use profiles::*;
pub use rhi::Rhi;

/// Longest object name the controller accepts.
pub const MAX_NAME: usize = 255;

/// Where ako's objects go on the controller (AKO's `ControllerSettings` and `NetworkSettings`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub cluster_name: String,
    pub tenant: String,
    pub cloud: String,
    pub se_group: String,
    pub vrf: String,
    /// The VIP network (`vipNetworkList[0]`): its name and, if known, its subnet.
    pub vip_network: Option<(String, Option<IpNet>)>,
    pub member_mode: MemberMode,
    /// The controller's licence tier: it decides the TCP network profile of L4 virtual services.
    pub license_tier: LicenseTier,
    /// The address families of VIPs (the VIP network's `cidr` and `v6cidr`).
    pub vip_family: VipFamily,
    /// Route health injection (an AviInfraSetting's `enableRhi`, `bgpPeerLabels`).
    pub rhi: Rhi,
}

/// Which addresses a VIP gets, as AKO asks for them: IPv4 only; both (a `v6cidr` next to the `cidr`: IPAM
/// allocates an IPv6 address from that subnet too); IPv6 only (a `v6cidr` without a `cidr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VipFamily {
    #[default]
    V4,
    DualStack(IpNet),
    V6Only(IpNet),
}

impl VipFamily {
    /// From a VIP network's configured `cidr` and `v6cidr`.
    pub fn of(cidr: Option<IpNet>, v6cidr: Option<IpNet>) -> Self {
        match (cidr, v6cidr) {
            (_, None) => Self::V4,
            (Some(_), Some(v6)) => Self::DualStack(v6),
            (None, Some(v6)) => Self::V6Only(v6),
        }
    }
}

impl Placement {
    /// `created_by` of every object ako owns.
    pub fn owner(&self) -> String {
        format!("ako-{}", self.cluster_name)
    }
}

/// How pool members are found (`L7Settings.serviceType`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MemberMode {
    /// Ready endpoint addresses and the target port.
    #[default]
    ClusterIp,
    /// Node InternalIPs (optionally filtered by one label, `nodePortSelector`) and the nodePort.
    NodePort { selector: Option<(String, String)> },
}

/// One group of endpoints with the ports they serve: an EndpointSlice, or a subset of v1 Endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EndpointGroup {
    /// `(name, port, protocol)`.
    pub ports: Vec<(Option<String>, u16, String)>,
    pub addresses: Vec<EndpointAddress>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointAddress {
    pub ip: IpAddr,
    pub ready: bool,
    pub terminating: bool,
}

impl EndpointGroup {
    /// From an EndpointSlice. `discovery.k8s.io/v1beta1` slices (the 1.20 API server) read into the v1 type: the
    /// fields used here have the same names. A missing `ready` means ready (the API's documented default).
    pub fn from_slice(slice: &EndpointSlice) -> Self {
        let ports = slice
            .ports
            .iter()
            .flatten()
            .filter_map(|p| {
                let port = u16::try_from(p.port?).ok()?;
                Some((
                    p.name.clone().filter(|n| !n.is_empty()),
                    port,
                    p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                ))
            })
            .collect();
        let addresses = slice
            .endpoints
            .iter()
            .flat_map(|e| {
                let c = e.conditions.as_ref();
                let ready = c.and_then(|c| c.ready).unwrap_or(true);
                let terminating = c.and_then(|c| c.terminating).unwrap_or(false);
                e.addresses.iter().filter_map(move |a| {
                    Some(EndpointAddress {
                        ip: a.parse().ok()?,
                        ready,
                        terminating,
                    })
                })
            })
            .collect();
        Self { ports, addresses }
    }

    /// From v1 Endpoints (API servers without EndpointSlices): one group per subset.
    pub fn from_endpoints(ep: &Endpoints) -> Vec<Self> {
        ep.subsets
            .iter()
            .flatten()
            .map(|s| {
                let ports = s
                    .ports
                    .iter()
                    .flatten()
                    .filter_map(|p| {
                        let port = u16::try_from(p.port).ok()?;
                        Some((
                            p.name.clone().filter(|n| !n.is_empty()),
                            port,
                            p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                        ))
                    })
                    .collect();
                let addr = |ready: bool| {
                    move |a: &k8s_openapi::api::core::v1::EndpointAddress| {
                        Some(EndpointAddress {
                            ip: a.ip.parse().ok()?,
                            ready,
                            terminating: false,
                        })
                    }
                };
                let addresses = s
                    .addresses
                    .iter()
                    .flatten()
                    .filter_map(addr(true))
                    .chain(
                        s.not_ready_addresses
                            .iter()
                            .flatten()
                            .filter_map(addr(false)),
                    )
                    .collect();
                Self { ports, addresses }
            })
            .collect()
    }
}

/// Reads an EndpointSlice of `discovery.k8s.io/v1` or `v1beta1` (the 1.20 API server serves only v1beta1) into
/// the v1 type: the fields ako reads have the same names and meaning in both.
pub fn slice_from_json(mut value: Value) -> Result<EndpointSlice, serde_json::Error> {
    if let Some(m) = value.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
    }
    serde_json::from_value(value)
}

/// A Service and what it routes to.
#[derive(Debug, Clone, Copy)]
pub struct ServiceInput<'a> {
    pub service: &'a Service,
    /// The Service's EndpointSlices (or v1 Endpoints subsets).
    pub endpoints: &'a [EndpointGroup],
}

/// What translation says about one Service: the objects that carry it and every problem found.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceOutcome {
    pub key: ObjKey,
    /// The virtual service and VsVip (same name) carrying it, if any.
    pub vs_name: Option<String>,
    pub fqdns: Vec<String>,
    pub problems: Vec<Problem>,
}

impl ServiceOutcome {
    /// A Service that gets no virtual service, and why.
    pub fn left_out(key: ObjKey, problems: Vec<Problem>) -> Self {
        Self {
            key,
            vs_name: None,
            fqdns: Vec::new(),
            problems,
        }
    }
}

/// The desired objects of all Services, and one outcome per Service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct L4Desired {
    pub objects: Vec<Desired>,
    pub outcomes: Vec<ServiceOutcome>,
}

/// Shortens a name over [`MAX_NAME`] deterministically: a prefix and a hash of the whole name.
pub fn avi_name(name: String) -> String {
    if name.len() <= MAX_NAME {
        return name;
    }
    let hash = format!("{:016x}", fnv1a64(name.as_bytes()));
    let mut cut = MAX_NAME - hash.len() - 1;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}-{hash}", &name[..cut])
}

/// FNV-1a, 64 bits.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `<cluster>--<ns>-<svc>`: the VsVip, L4PolicySet and VirtualService of a Service.
pub fn vs_name(cluster: &str, namespace: &str, name: &str) -> String {
    avi_name(format!("{cluster}--{namespace}-{name}"))
}

/// `<cluster>--<ns>-<svc>-<PROTO>-<port>`: the pool of one Service port.
pub fn pool_name(cluster: &str, namespace: &str, name: &str, protocol: &str, port: u16) -> String {
    avi_name(format!("{cluster}--{namespace}-{name}-{protocol}-{port}"))
}

/// `<cluster>--<ns>-<svc>-<key>-<PROTO>-<port>`: the pool of one port of a Service on the shared VIP `key`
/// (AKO's GetSvcApiL4PoolName).
pub fn shared_pool_name(
    cluster: &str,
    namespace: &str,
    name: &str,
    key: &str,
    protocol: &str,
    port: u16,
) -> String {
    avi_name(format!(
        "{cluster}--{namespace}-{name}-{key}-{protocol}-{port}"
    ))
}

/// An Avi marker `{key, values: [value]}` (AKO labels every object with them).
pub(crate) fn marker(key: &str, value: &str) -> Value {
    json!({"key": key, "values": [value]})
}

/// An Avi `IpAddr`: `{addr, type: V4|V6}`.
pub(crate) fn ip_json(ip: IpAddr) -> Value {
    json!({"addr": ip.to_string(), "type": if ip.is_ipv4() { "V4" } else { "V6" }})
}

fn ports_of(svc: &Service) -> Vec<ServicePort> {
    svc.spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default()
}

fn protocol_of(port: &ServicePort) -> String {
    port.protocol
        .clone()
        .unwrap_or_else(|| "TCP".into())
        .to_ascii_uppercase()
}

/// The members of one Service port: ready, not terminating endpoint addresses with the target port (by name or
/// number), or the selected nodes with the nodePort. Sorted and without duplicates.
pub fn members(
    port: &ServicePort,
    endpoints: &[EndpointGroup],
    nodes: &[NodeInfo],
    mode: &MemberMode,
) -> Result<Vec<(IpAddr, u16)>, String> {
    let proto = protocol_of(port);
    let mut out = BTreeSet::new();
    match mode {
        MemberMode::ClusterIp => {
            for g in endpoints {
                let matching = g.ports.iter().find(|(name, _, p)| {
                    p.eq_ignore_ascii_case(&proto)
                        && match (&port.name, name) {
                            (Some(want), Some(have)) => want == have,
                            (None, _) | (Some(_), None) => g.ports.len() == 1,
                        }
                });
                let Some((_, target, _)) = matching else {
                    continue;
                };
                for a in g.addresses.iter().filter(|a| a.ready && !a.terminating) {
                    out.insert((a.ip, *target));
                }
            }
        }
        MemberMode::NodePort { selector } => {
            let node_port = port
                .node_port
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p > 0)
                .ok_or_else(|| {
                    format!(
                        "port {} has no nodePort yet (serviceType NodePort)",
                        port.port
                    )
                })?;
            for n in nodes {
                if let Some((k, v)) = selector
                    && n.labels.get(k) != Some(v)
                {
                    continue;
                }
                if let Some(ip) = n.internal_ip {
                    out.insert((ip, node_port));
                }
            }
        }
    }
    Ok(out.into_iter().collect())
}

struct Member<'a> {
    input: ServiceInput<'a>,
    key: ObjKey,
    intent: intent::ServiceIntent,
    problems: Vec<Problem>,
    created: Option<i64>,
}

impl Member<'_> {
    fn order(&self) -> Order<'_> {
        Order::new(self.created, &self.key.namespace, &self.key.name)
    }
}

/// Translates every LoadBalancer Service of ako. Services that are not ako's are skipped; a Service whose intent
/// has a denying problem (the webhook would have refused it) gets no objects and its problems as outcome.
pub fn translate(
    services: &[ServiceInput<'_>],
    nodes: &[NodeInfo],
    cfg: &Config,
    place: &Placement,
) -> L4Desired {
    let mut groups: BTreeMap<(String, String), Vec<Member<'_>>> = BTreeMap::new();
    let mut out = L4Desired::default();
    for input in services {
        let svc = input.service;
        if !intent::service_is_ours(svc, cfg) {
            continue;
        }
        let (intent, problems) = intent::translate_service(svc, cfg);
        let key = ObjKey::new(intent.namespace.clone(), intent.name.clone());
        if problems
            .iter()
            .any(|p| p.severity == intent::Severity::Deny)
        {
            out.outcomes.push(ServiceOutcome::left_out(key, problems));
            continue;
        }
        let group = intent
            .shared_vip
            .clone()
            .unwrap_or_else(|| intent.name.clone());
        let shared = intent.shared_vip.is_some();
        let m = Member {
            input: *input,
            key,
            intent,
            problems,
            created: ownership::created(&svc.metadata),
        };
        // A shared key and a Service name can coincide: keep the two apart.
        groups
            .entry((
                m.key.namespace.clone(),
                format!("{}{group}", if shared { "shared:" } else { "" }),
            ))
            .or_default()
            .push(m);
    }
    for ((namespace, group), mut members) in groups {
        members.sort_by(|a, b| a.order().cmp(&b.order()));
        let shared = group.strip_prefix("shared:");
        let base = shared.unwrap_or(&group);
        translate_group(&namespace, base, shared, members, nodes, place, &mut out);
    }
    out
}

fn translate_group(
    namespace: &str,
    base: &str,
    shared_key: Option<&str>,
    claimants: Vec<Member<'_>>,
    nodes: &[NodeInfo],
    place: &Placement,
    out: &mut L4Desired,
) {
    let name = vs_name(&place.cluster_name, namespace, base);
    // The oldest member decides the VIP; members asking for another one are left out with a Warning.
    let requested = claimants.first().and_then(|m| m.intent.requested_ip);
    let mut accepted = accept_members(claimants, requested, out);
    if accepted.is_empty() {
        return;
    }
    let ports = port_pools(&mut accepted, shared_key, nodes, place, out);
    let (default_net, services) = vs_services(ports.services, place.license_tier);
    let mut fqdns: Vec<String> = Vec::new();
    for f in accepted.iter().flat_map(|m| m.intent.fqdns.iter()) {
        if !fqdns.contains(f) {
            fqdns.push(f.clone());
        }
    }
    let mut markers = vec![
        marker("clustername", &place.cluster_name),
        marker("Namespace", namespace),
    ];
    if accepted.len() == 1 {
        markers.push(marker("ServiceName", &accepted[0].key.name));
    } else {
        markers.push(json!({"key": "ServiceName", "values": accepted.iter().map(|m| m.key.name.clone()).collect::<Vec<_>>()}));
    }
    let group = GroupBodies {
        name: &name,
        place,
        markers: Value::Array(markers),
    };
    out.objects.push(group.vsvip(requested, &fqdns));
    out.objects.push(group.policy_set(ports.rules));
    out.objects
        .push(group.virtual_service(default_net, services));
    for m in accepted {
        out.outcomes.push(ServiceOutcome {
            key: m.key,
            vs_name: Some(name.clone()),
            fqdns: m.intent.fqdns,
            problems: m.problems,
        });
    }
}

/// The members a group's VIP can carry, oldest first: a member asking for another address than the oldest, or
/// for a port another member serves, is left out with a Warning (its outcome pushed to `out`).
fn accept_members<'a>(
    mut claimants: Vec<Member<'a>>,
    requested: Option<IpAddr>,
    out: &mut L4Desired,
) -> Vec<Member<'a>> {
    let mut accepted: Vec<Member<'_>> = Vec::new();
    let mut used_ports: BTreeMap<(String, i32), ObjKey> = BTreeMap::new();
    for mut m in claimants.drain(..) {
        if let (Some(mine), Some(first)) = (m.intent.requested_ip, requested)
            && mine != first
        {
            m.problems.push(Problem::warn(
                "spec.loadBalancerIP",
                format!(
                    "shares a VIP with {} but asks for {mine} where it uses {first}; ask for the same address or none",
                    accepted.first().map_or_else(String::new, |a| a.key.to_string())
                ),
            ));
            out.outcomes
                .push(ServiceOutcome::left_out(m.key, m.problems));
            continue;
        }
        let ports = ports_of(m.input.service);
        let clash = ports
            .iter()
            .find_map(|p| used_ports.get(&(protocol_of(p), p.port)).map(|k| (p, k)));
        if let Some((p, holder)) = clash {
            m.problems.push(Problem::warn(
                "spec.ports",
                format!(
                    "port {}/{} is already served on the shared VIP by Service {holder}; use another port",
                    p.port,
                    protocol_of(p)
                ),
            ));
            out.outcomes
                .push(ServiceOutcome::left_out(m.key, m.problems));
            continue;
        }
        for p in &ports {
            used_ports.insert((protocol_of(p), p.port), m.key.clone());
        }
        accepted.push(m);
    }
    accepted
}

/// What a group's ports produce besides their pools (pushed to `out`): the L4 policy rules, and the
/// (port, protocol) of each, sorted.
struct PortPools {
    rules: Vec<Value>,
    services: Vec<(u16, String)>,
}

/// One pool per port of each member (AKO's names; the monitor by protocol) and the rule selecting it.
fn port_pools(
    accepted: &mut [Member<'_>],
    shared_key: Option<&str>,
    nodes: &[NodeInfo],
    place: &Placement,
    out: &mut L4Desired,
) -> PortPools {
    let cluster = &place.cluster_name;
    let (owner, tenant_ref, cloud_ref) = (
        place.owner(),
        name_ref("tenant", &place.tenant),
        name_ref("cloud", &place.cloud),
    );
    let mut rules = Vec::new();
    let mut services = Vec::new();
    for m in accepted.iter_mut() {
        for p in &ports_of(m.input.service) {
            let proto = protocol_of(p);
            let Ok(port) = u16::try_from(p.port) else {
                continue;
            };
            let pool = match shared_key {
                Some(key) => {
                    shared_pool_name(cluster, &m.key.namespace, &m.key.name, key, &proto, port)
                }
                None => pool_name(cluster, &m.key.namespace, &m.key.name, &proto, port),
            };
            let servers = match members(p, m.input.endpoints, nodes, &place.member_mode) {
                Ok(list) => list,
                Err(reason) => {
                    m.problems.push(Problem::warn("spec.ports", reason));
                    Vec::new()
                }
            };
            let servers: Vec<Value> = servers
                .into_iter()
                .map(|(ip, port)| json!({"ip": ip_json(ip), "port": port, "enabled": true}))
                .collect();
            let body = json!({
                "name": pool,
                "created_by": owner,
                "tenant_ref": tenant_ref,
                "cloud_ref": cloud_ref,
                "servers": servers,
                "health_monitor_refs": [name_ref("healthmonitor", l4_health_monitor(&proto))],
                "markers": [
                    marker("clustername", cluster),
                    marker("Namespace", &m.key.namespace),
                    marker("ServiceName", &m.key.name),
                    marker("Port", &port.to_string()),
                    marker("Protocol", &proto),
                ],
            });
            out.objects.push(desired(Kind::Pool, &pool, body));
            rules.push(json!({
                "name": format!("{proto}-{port}"),
                "index": rules.len(),
                "enable": true,
                "match": {
                    "port": {"match_criteria": "IS_IN", "ports": [port]},
                    "protocol": {"match_criteria": "IS_IN", "protocol": format!("PROTOCOL_{proto}")},
                },
                "action": {"select_pool": {"action_type": "L4_RULE_ACTION_SELECT_POOL", "pool_ref": name_ref("pool", &pool)}},
            }));
            services.push((port, proto));
        }
    }
    services.sort();
    PortPools { rules, services }
}

/// The VS's network profile (AKO's rule: TCP's when any port is TCP, else UDP's when any is UDP, else SCTP's)
/// and its `services`, a port of another protocol overriding the profile.
fn vs_services(services: Vec<(u16, String)>, tier: LicenseTier) -> (&'static str, Vec<Value>) {
    let main = ["TCP", "UDP", "SCTP"]
        .into_iter()
        .find(|p| services.iter().any(|(_, q)| q == p))
        .unwrap_or("TCP");
    let default_net = l4_network_profile(main, tier);
    let services = services
        .iter()
        .map(|(port, proto)| {
            let mut s = json!({"port": port, "enable_ssl": false});
            let net = l4_network_profile(proto, tier);
            if net != default_net
                && let Some(m) = s.as_object_mut()
            {
                m.insert(
                    "override_network_profile_ref".into(),
                    json!(name_ref("networkprofile", net)),
                );
            }
            s
        })
        .collect();
    (default_net, services)
}

/// The objects named after a group: VsVip, L4PolicySet, VirtualService.
struct GroupBodies<'a> {
    name: &'a str,
    place: &'a Placement,
    markers: Value,
}

impl GroupBodies<'_> {
    fn vsvip(&self, requested: Option<IpAddr>, fqdns: &[String]) -> Desired {
        let p = self.place;
        // A VsVip has no created_by in the controller's schema: the clustername marker makes it ako's.
        let body = json!({
            "name": self.name,
            "tenant_ref": name_ref("tenant", &p.tenant),
            "cloud_ref": name_ref("cloud", &p.cloud),
            "vrf_context_ref": name_ref("vrfcontext", &p.vrf),
            "east_west_placement": false,
            "vip": [vip_request(requested, p)],
            "dns_info": fqdns.iter().map(|f| json!({"fqdn": f})).collect::<Vec<_>>(),
            "bgp_peer_labels": p.rhi.vsvip_field(),
            "markers": self.markers,
        });
        desired(Kind::VsVip, self.name, body)
    }

    fn policy_set(&self, rules: Vec<Value>) -> Desired {
        let body = json!({
            "name": self.name,
            "created_by": self.place.owner(),
            "tenant_ref": name_ref("tenant", &self.place.tenant),
            "is_internal_policy": false,
            "l4_connection_policy": {"rules": rules},
            "markers": self.markers,
        });
        desired(Kind::L4PolicySet, self.name, body)
    }

    fn virtual_service(&self, network_profile: &str, services: Vec<Value>) -> Desired {
        let p = self.place;
        let body = json!({
            "name": self.name,
            "created_by": p.owner(),
            "tenant_ref": name_ref("tenant", &p.tenant),
            "cloud_ref": name_ref("cloud", &p.cloud),
            "se_group_ref": name_ref("serviceenginegroup", &p.se_group),
            "vrf_context_ref": name_ref("vrfcontext", &p.vrf),
            "vsvip_ref": name_ref("vsvip", self.name),
            "type": "VS_TYPE_NORMAL",
            "enabled": true,
            "traffic_enabled": true,
            "application_profile_ref": name_ref("applicationprofile", "System-L4-Application"),
            "network_profile_ref": name_ref("networkprofile", network_profile),
            "services": services,
            "l4_policies": [{"index": 0, "l4_policy_set_ref": name_ref("l4policyset", self.name)}],
            "enable_rhi": p.rhi.vs_field(),
            "markers": self.markers,
        });
        desired(Kind::VirtualService, self.name, body)
    }
}

/// The addresses a VsVip read from the controller carries (`vip[].ip_address`, `vip[].ip6_address`).
pub fn vips_of(vsvip: &Map<String, Value>) -> Vec<IpAddr> {
    vsvip
        .get("vip")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|v| {
            ["ip_address", "ip6_address"]
                .map(|k| v.get(k).and_then(|a| a.get("addr")).and_then(Value::as_str))
        })
        .flatten()
        .filter_map(|a| a.parse().ok())
        .collect()
}

/// `status.loadBalancer.ingress` of a Service: one `{ip, hostname}` per VIP, the hostname being the first FQDN
/// (AKO's form, so `kubectl get svc` shows the EXTERNAL-IP). Empty while no VIP is known.
pub fn load_balancer_ingress(
    outcome: &ServiceOutcome,
    vips: &[IpAddr],
) -> Vec<LoadBalancerIngress> {
    vips.iter()
        .map(|ip| LoadBalancerIngress {
            ip: Some(ip.to_string()),
            hostname: outcome.fqdns.first().cloned(),
            ..LoadBalancerIngress::default()
        })
        .collect()
}

/// The one VIP of a VsVip as ako asks for it: allocated by IPAM from the VIP network (and its subnet when known),
/// at the `requested` address if any.
pub(crate) fn vip_request(requested: Option<IpAddr>, place: &Placement) -> Value {
    let mut vip = Map::new();
    vip.insert("vip_id".into(), json!("0"));
    vip.insert("auto_allocate_ip".into(), json!(true));
    let (v6, v6_only) = match place.vip_family {
        VipFamily::V4 => (None, false),
        VipFamily::DualStack(n) => (Some(n), false),
        VipFamily::V6Only(n) => (Some(n), true),
    };
    if v6.is_some() {
        let family = if v6_only { "V6_ONLY" } else { "V4_V6" };
        vip.insert("auto_allocate_ip_type".into(), json!(family));
    }
    if let Some(ip) = requested {
        let key = if ip.is_ipv6() {
            "ip6_address"
        } else {
            "ip_address"
        };
        vip.insert(key.into(), ip_json(ip));
    }
    if let Some((net, subnet)) = &place.vip_network {
        let mut ipam = Map::new();
        ipam.insert("network_ref".into(), json!(name_ref("network", net)));
        if let Some(s) = subnet.filter(|_| !v6_only) {
            ipam.insert(
                "subnet".into(),
                json!({"ip_addr": ip_json(s.network()), "mask": s.prefix_len()}),
            );
        }
        if let Some(s) = v6 {
            ipam.insert(
                "subnet6".into(),
                json!({"ip_addr": ip_json(s.network()), "mask": s.prefix_len()}),
            );
        }
        vip.insert("ipam_network_subnet".into(), Value::Object(ipam));
    }
    Value::Object(vip)
}

fn desired(kind: Kind, name: &str, body: Value) -> Desired {
    let body = match body {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    Desired {
        kind,
        name: name.to_string(),
        body,
    }
}

#[cfg(test)]
mod tests;
