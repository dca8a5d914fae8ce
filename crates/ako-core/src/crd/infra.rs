//! AviInfraSetting (`ako.vmware.com/v1beta1`, cluster scoped): where the virtual services of the objects bound to
//! it go. Bound as in AKO: Ingresses through their IngressClass's `spec.parameters` (`{apiGroup: ako.vmware.com,
//! kind: AviInfraSetting, name}`; a host is placed by its oldest Ingress's), a LoadBalancer Service or a
//! Namespace's Services and Ingresses by the annotation `aviinfrasetting.ako.vmware.com/name: <name>` (the
//! Service's own annotation, or the Ingress's class, wins over the namespace's).
//!
//! | field | Avi |
//! |---|---|
//! | `seGroup.name` | the virtual service's `se_group_ref` |
//! | `network.vipNetworks[0]` (`networkName`, `cidr`, `v6cidr`) | the VsVip's `vip[].ipam_network_subnet` (`network_ref`, `subnet`, `subnet6`) and `auto_allocate_ip_type` |
//! | `network.enableRhi` | the virtual service's `enable_rhi` (sent only when true, as AKO) |
//! | `network.bgpPeerLabels` | the VsVip's `bgp_peer_labels`, when RHI is enabled |
//! | `l7Settings.shardSize` | the number of the class's own shared parents, `<cluster>--Shared-L7-<name>-<n>` (AKO's names: children, pools and certificates `<cluster>--<name>-...`) |
//!
//! A Namespace's annotation also places its Ingresses whose class names no setting (AKO's fallback); their
//! objects carry the setting's name like a class's (AKO keeps the global names there, which would put two
//! placements on one parent when namespaces differ).
//!
//! Not applied yet (warnings at apply time): `nodeNetworks`, `enablePublicIP` (public clouds), `listeners`,
//! `nsxSettings`, a VIP network given by `networkUUID` only. A Service bound to an AviInfraSetting that is missing or Rejected keeps the
//! global placement and gets a Warning (AKO builds it "without it" too, silently).

use std::collections::BTreeMap;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AviRef, Notes, RuleSet, Verdict, unknown_fields};
use crate::index::ObjKey;
use crate::intent::Problem;
use crate::l4::{Placement, VipFamily};

/// The annotation binding a Service or a Namespace to an AviInfraSetting.
pub const ANNOTATION: &str = "aviinfrasetting.ako.vmware.com/name";

/// `spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InfraSettingSpec {
    pub se_group: Option<SeGroup>,
    pub network: Option<InfraNetwork>,
    pub l7_settings: Option<InfraL7Settings>,
    pub nsx_settings: Option<Value>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeGroup {
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InfraNetwork {
    #[serde(default)]
    pub vip_networks: Vec<InfraVipNetwork>,
    #[serde(default)]
    pub node_networks: Vec<Value>,
    pub enable_rhi: Option<bool>,
    #[serde(rename = "enablePublicIP")]
    pub enable_public_ip: Option<bool>,
    #[serde(default)]
    pub listeners: Vec<InfraListener>,
    #[serde(default)]
    pub bgp_peer_labels: Vec<String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InfraVipNetwork {
    pub network_name: Option<String>,
    #[serde(rename = "networkUUID")]
    pub network_uuid: Option<String>,
    pub cidr: Option<String>,
    pub v6cidr: Option<String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InfraListener {
    pub port: u16,
    #[serde(rename = "enableSSL")]
    pub enable_ssl: Option<bool>,
    #[serde(rename = "enableHTTP2")]
    pub enable_http2: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InfraL7Settings {
    pub shard_size: String,
}

/// The AviInfraSetting an object's annotations name (a Service's or a Namespace's).
pub fn named(annotations: Option<&BTreeMap<String, String>>) -> Option<String> {
    annotations
        .and_then(|a| a.get(ANNOTATION))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The AviInfraSetting an object is bound to: its own annotation, else its namespace's setting.
pub fn bound(own: Option<&BTreeMap<String, String>>, namespace: Option<&str>) -> Option<String> {
    named(own).or_else(|| namespace.map(str::to_string))
}

/// The placement of a group of Services sharing a virtual service, from the AviInfraSetting each is bound to
/// (`bindings`, in the group's order: the first bound member's setting is the group's; members bound to another
/// one get a Warning, as one VIP has one placement). A setting that does not exist or is Rejected leaves the
/// global placement, with a Warning on the members naming it: the Service still gets its VIP, where the global
/// settings put it.
pub fn group_placement(
    bindings: &[(ObjKey, Option<String>)],
    rules: Option<&RuleSet>,
    base: &Placement,
) -> (Placement, Vec<(ObjKey, Problem)>) {
    let field = format!("metadata.annotations[{ANNOTATION}]");
    let mut problems = Vec::new();
    let Some(chosen) = bindings.iter().find_map(|(_, b)| b.as_deref()) else {
        return (base.clone(), problems);
    };
    for (key, b) in bindings {
        match b.as_deref() {
            Some(name) if name == chosen => {}
            other => problems.push((
                key.clone(),
                Problem::warn(
                    &field,
                    format!(
                        "bound to AviInfraSetting {}, but the Services sharing its VIP use {chosen}: one VIP has one placement (set the same annotation on each, or on their namespace)",
                        other.map_or_else(|| "none".to_string(), |o| format!("{o:?}"))
                    ),
                ),
            )),
        }
    }
    let why = match rules.and_then(|r| r.infra_setting(chosen)) {
        Some((Verdict::Accepted, Some(spec))) => return (spec.place(base), problems),
        Some((Verdict::Accepted, None)) => return (base.clone(), problems),
        Some((Verdict::Rejected(e), _)) => format!("is Rejected ({e})"),
        None => "does not exist".to_string(),
    };
    for (key, b) in bindings {
        if b.as_deref() == Some(chosen) {
            problems.push((
                key.clone(),
                Problem::warn(
                    &field,
                    format!(
                        "AviInfraSetting {chosen:?} {why}; the virtual service is placed by the global settings (SE group {}, VIP network {})",
                        base.se_group,
                        base.vip_network
                            .as_ref()
                            .map_or("from IPAM", |(n, _)| n.as_str())
                    ),
                ),
            ));
        }
    }
    (base.clone(), problems)
}

impl InfraSettingSpec {
    /// What can be checked without the controller; the first problem, in AKO's words.
    pub fn check(&self) -> Result<(), String> {
        if let Some(g) = &self.se_group
            && g.name.trim().is_empty()
        {
            return Err("spec.seGroup.name must not be empty".into());
        }
        if let Some(s) = &self.l7_settings
            && crate::l7::ShardSize::parse(&s.shard_size).is_none()
        {
            return Err(format!(
                "spec.l7Settings.shardSize {:?} is not one of SMALL, MEDIUM, LARGE, DEDICATED",
                s.shard_size
            ));
        }
        let Some(n) = &self.network else {
            return Ok(());
        };
        if !n.bgp_peer_labels.is_empty() && n.enable_rhi != Some(true) {
            return Err("BGPPeerLabels cannot be set if EnableRhi is false.".into());
        }
        for (i, v) in n.vip_networks.iter().enumerate() {
            let name = match (&v.network_name, &v.network_uuid) {
                (Some(name), None) => name,
                (None, Some(uuid)) => uuid,
                _ => {
                    return Err(format!(
                        "spec.network.vipNetworks[{i}] must give exactly one of networkName and networkUUID"
                    ));
                }
            };
            if let Some(c) = &v.cidr
                && c.parse::<Ipv4Net>().is_err()
            {
                return Err(format!(
                    "invalid CIDR configuration {c} detected for networkName {name} in vipNetworkList"
                ));
            }
            if let Some(c) = &v.v6cidr
                && c.parse::<Ipv6Net>().is_err()
            {
                return Err(format!(
                    "invalid IPv6 CIDR configuration {c} detected for networkName {name} in vipNetworkList"
                ));
            }
        }
        if !n.listeners.is_empty() && !n.listeners.iter().any(|l| l.enable_ssl == Some(true)) {
            return Err("One of the port in aviInfraSetting must have SSL enabled".into());
        }
        Ok(())
    }

    /// The controller objects it names: the SE group and the VIP networks given by name.
    pub fn refs(&self) -> Vec<AviRef> {
        let mut out = Vec::new();
        if let Some(g) = &self.se_group {
            out.push(AviRef::new(
                "serviceenginegroup",
                &g.name,
                "spec.seGroup.name",
            ));
        }
        for (i, v) in self.vip_networks().iter().enumerate() {
            if let Some(n) = &v.network_name {
                out.push(AviRef::new(
                    "network",
                    n,
                    format!("spec.network.vipNetworks[{i}].networkName"),
                ));
            }
        }
        out
    }

    fn vip_networks(&self) -> &[InfraVipNetwork] {
        self.network
            .as_ref()
            .map_or(&[], |n| n.vip_networks.as_slice())
    }

    /// Fields ako reads but does not apply yet, and unknown ones.
    pub fn notes(&self) -> Notes {
        let mut n = Notes::default();
        let mut not_yet = |set: bool, field: &str, why: &'static str| {
            if set {
                n.unimplemented.push((format!("spec.{field}"), why));
            }
        };
        let net = self.network.clone().unwrap_or_default();
        not_yet(
            !net.node_networks.is_empty(),
            "network.nodeNetworks",
            "pools are placed by the cloud's routing",
        );
        not_yet(
            net.enable_public_ip.is_some(),
            "network.enablePublicIP",
            "public clouds are not supported",
        );
        not_yet(
            !net.listeners.is_empty(),
            "network.listeners",
            "shared parents and dedicated virtual services listen on 80 and 443",
        );
        not_yet(
            self.nsx_settings.is_some(),
            "nsxSettings",
            "NSX-T clouds are not supported",
        );
        not_yet(
            net.vip_networks.len() > 1,
            "network.vipNetworks",
            "VIPs are placed on the first network (several are for public clouds)",
        );
        not_yet(
            net.vip_networks
                .first()
                .is_some_and(|v| v.network_name.is_none()),
            "network.vipNetworks[0].networkUUID",
            "give the network by networkName; the global VIP network is used meanwhile",
        );
        unknown_fields("spec", &self.other, &mut n.unknown);
        unknown_fields("spec.network", &net.other, &mut n.unknown);
        for (i, v) in net.vip_networks.iter().enumerate() {
            unknown_fields(
                &format!("spec.network.vipNetworks[{i}]"),
                &v.other,
                &mut n.unknown,
            );
        }
        n
    }

    /// `l7Settings.shardSize`: the number of shared parents of its Ingresses (`None`: the global one).
    pub fn shard_size(&self) -> Option<crate::l7::ShardSize> {
        self.l7_settings
            .as_ref()
            .and_then(|s| crate::l7::ShardSize::parse(&s.shard_size))
    }

    /// The placement of an object bound to this setting: `base` (the global one) with what the setting gives.
    pub fn place(&self, base: &Placement) -> Placement {
        let mut p = base.clone();
        if let Some(g) = &self.se_group {
            p.se_group = g.name.clone();
        }
        if let Some(v) = self.vip_networks().first()
            && let Some(name) = &v.network_name
        {
            let cidr: Option<IpNet> = v
                .cidr
                .as_deref()
                .and_then(|c| c.parse::<Ipv4Net>().ok())
                .map(IpNet::V4);
            let v6: Option<IpNet> = v
                .v6cidr
                .as_deref()
                .and_then(|c| c.parse::<Ipv6Net>().ok())
                .map(IpNet::V6);
            p.vip_network = Some((name.clone(), cidr));
            p.vip_family = VipFamily::of(cidr, v6);
        }
        if let Some(net) = &self.network
            && let Some(rhi) = net.enable_rhi
        {
            p.rhi.enabled = rhi;
            p.rhi.bgp_peer_labels = if rhi {
                net.bgp_peer_labels.clone()
            } else {
                Vec::new()
            };
        }
        p
    }
}

#[cfg(test)]
mod tests;
