use super::*;
use crate::crd::{InfraEntry, RuleId, check_infra_setting, judge_infra_settings};
use crate::crd::{Lookup, RuleSet};
use crate::l4::{LicenseTier, MemberMode};

fn spec(yaml: &str) -> InfraSettingSpec {
    serde_yaml_ng::from_str(yaml).expect("spec")
}

fn base() -> Placement {
    Placement {
        cluster_name: "vmug".into(),
        tenant: "admin".into(),
        cloud: "Default-Cloud".into(),
        se_group: "vmug-se-group".into(),
        vrf: "global".into(),
        vip_network: Some(("dpg-sedatapath-18".into(), "10.10.18.0/26".parse().ok())),
        member_mode: MemberMode::NodePort { selector: None },
        license_tier: LicenseTier::default(),
        vip_family: VipFamily::V4,
        rhi: Default::default(),
    }
}

/// AKO's documentation sample (docs/crds/avinfrasetting.md), unchanged.
const AKO_SAMPLE: &str = r"
seGroup:
  name: compact-se-group
network:
  vipNetworks:
    - networkUUID: dvportgroup-2167-cloud-d4b24fc7-a435-408d-af9f-150229a6fea6f
      cidr: 10.10.10.0/24
      v6cidr: 2002::1234:abcd:ffff:c0a8:101/64
  nodeNetworks:
    - networkName: node-network-10-10-20-0-24
      cidrs:
      - 10.10.20.0/24
  enableRhi: true
  listeners:
    - port: 8081
      enableHTTP2: false
      enableSSL: false
    - port: 6443
      enableSSL: true
  bgpPeerLabels:
    - peer1
    - peer2
l7Settings:
  shardSize: MEDIUM
nsxSettings:
  t1lr: /infra/tier1/tier1_974b13d5-9f68-4be8-8149-a48a5686a3ef
";

#[test]
fn ako_checks_reject_with_akos_words() {
    let cases: [(&str, &str); 7] = [
        (
            "network: {bgpPeerLabels: [peer1]}",
            "BGPPeerLabels cannot be set if EnableRhi is false.",
        ),
        (
            "network: {enableRhi: false, bgpPeerLabels: [peer1]}",
            "BGPPeerLabels cannot be set if EnableRhi is false.",
        ),
        (
            "network: {vipNetworks: [{networkName: net1, cidr: 10.10.10.0/33}]}",
            "invalid CIDR configuration 10.10.10.0/33 detected for networkName net1 in vipNetworkList",
        ),
        (
            "network: {vipNetworks: [{networkName: net1, v6cidr: 10.0.0.0/8}]}",
            "invalid IPv6 CIDR configuration 10.0.0.0/8 detected for networkName net1 in vipNetworkList",
        ),
        (
            "network: {listeners: [{port: 8081}, {port: 8443, enableSSL: false}]}",
            "One of the port in aviInfraSetting must have SSL enabled",
        ),
        (
            "network: {vipNetworks: [{networkName: a, networkUUID: b}]}",
            "spec.network.vipNetworks[0] must give exactly one of networkName and networkUUID",
        ),
        (
            "l7Settings: {shardSize: HUGE}",
            "spec.l7Settings.shardSize \"HUGE\" is not one of SMALL, MEDIUM, LARGE, DEDICATED",
        ),
    ];
    for (yaml, want) in cases {
        assert_eq!(spec(yaml).check(), Err(want.to_string()), "{yaml}");
    }
    assert_eq!(spec(AKO_SAMPLE).check(), Ok(()));
    assert_eq!(
        spec("network: {enableRhi: true, bgpPeerLabels: [peer1]}").check(),
        Ok(())
    );
}

#[test]
fn the_se_group_and_vip_networks_must_exist_on_the_controller() {
    let s =
        spec("seGroup: {name: Default-Group}\nnetwork: {vipNetworks: [{networkName: infra-net}]}");
    let missing = |t: &str, n: &str| {
        if (t, n) == ("network", "infra-net") {
            Lookup::Missing
        } else {
            Lookup::Found
        }
    };
    assert_eq!(
        check_infra_setting(&s, &missing),
        Err(
            "network \"infra-net\" not found on controller (spec.network.vipNetworks[0].networkName)"
                .into()
        )
    );
    let no_seg = |t: &str, _: &str| {
        if t == "serviceenginegroup" {
            Lookup::Missing
        } else {
            Lookup::Found
        }
    };
    assert_eq!(
        check_infra_setting(&s, &no_seg),
        Err(
            "serviceenginegroup \"Default-Group\" not found on controller (spec.seGroup.name)"
                .into()
        )
    );
    // The controller cannot be asked: never a rejection for it.
    assert_eq!(check_infra_setting(&s, &|_, _| Lookup::Unknown), Ok(()));
}

#[test]
fn a_setting_places_the_se_group_the_vip_network_and_route_health_injection() {
    // (spec, SE group, VIP network, families, RHI, BGP peer labels)
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        VipFamily,
        bool,
        Vec<&'a str>,
    );
    let cases: [Case<'_>; 5] = [
        (
            "{}",
            "vmug-se-group",
            Some("dpg-sedatapath-18"),
            VipFamily::V4,
            false,
            vec![],
        ),
        (
            "seGroup: {name: Default-Group}",
            "Default-Group",
            Some("dpg-sedatapath-18"),
            VipFamily::V4,
            false,
            vec![],
        ),
        (
            "network: {vipNetworks: [{networkName: infra-net, cidr: 127.20.0.0/24}]}",
            "vmug-se-group",
            Some("infra-net"),
            VipFamily::V4,
            false,
            vec![],
        ),
        (
            "network: {vipNetworks: [{networkName: v6net, cidr: 127.20.0.0/24, v6cidr: 'fd00:20::/64'}], enableRhi: true, bgpPeerLabels: [peer1, peer2]}",
            "vmug-se-group",
            Some("v6net"),
            VipFamily::DualStack("fd00:20::/64".parse().expect("net")),
            true,
            vec!["peer1", "peer2"],
        ),
        // Given only by UUID (not applied yet): the global network stays.
        (
            "network: {vipNetworks: [{networkUUID: dvportgroup-1}], enableRhi: true}",
            "vmug-se-group",
            Some("dpg-sedatapath-18"),
            VipFamily::V4,
            true,
            vec![],
        ),
    ];
    for (yaml, seg, net, family, rhi, labels) in cases {
        let p = spec(yaml).place(&base());
        assert_eq!(p.se_group, seg, "{yaml}");
        assert_eq!(
            p.vip_network.as_ref().map(|(n, _)| n.as_str()),
            net,
            "{yaml}"
        );
        assert_eq!(p.vip_family, family, "{yaml}");
        assert_eq!(p.rhi.enabled, rhi, "{yaml}");
        assert_eq!(p.rhi.bgp_peer_labels, labels, "{yaml}");
        assert_eq!(
            (p.cloud.as_str(), p.vrf.as_str()),
            ("Default-Cloud", "global")
        );
    }
    let p = spec("network: {vipNetworks: [{networkName: infra-net, cidr: 127.20.0.0/24}]}")
        .place(&base());
    assert_eq!(
        p.vip_network,
        Some(("infra-net".into(), "127.20.0.0/24".parse().ok()))
    );
}

#[test]
fn a_service_is_bound_by_its_own_annotation_before_its_namespaces() {
    let ann =
        |v: &str| -> BTreeMap<String, String> { [(ANNOTATION.to_string(), v.to_string())].into() };
    assert_eq!(
        bound(Some(&ann("svc")), named(Some(&ann("ns"))).as_deref()),
        Some("svc".into())
    );
    assert_eq!(
        bound(None, named(Some(&ann("ns"))).as_deref()),
        Some("ns".into())
    );
    assert_eq!(
        bound(Some(&ann(" ")), named(Some(&ann("ns"))).as_deref()),
        Some("ns".into())
    );
    assert_eq!(bound(Some(&BTreeMap::new()), None), None);
}

fn rules(entries: &[(&str, &str)], lookup: &dyn Fn(&str, &str) -> Lookup) -> RuleSet {
    let mut e: Vec<InfraEntry> = entries
        .iter()
        .map(|(name, yaml)| InfraEntry {
            id: RuleId {
                created: Some(1),
                key: ObjKey::new("", *name),
            },
            spec: Ok(spec(yaml)),
            verdict: Verdict::Accepted,
        })
        .collect();
    judge_infra_settings(&mut e, lookup);
    RuleSet::default().with_infra(&e)
}

#[test]
fn a_group_takes_its_first_bound_members_setting_and_warns_the_others() {
    let set = rules(
        &[
            ("blue", "seGroup: {name: Default-Group}"),
            ("bad", "network: {bgpPeerLabels: [p]}"),
        ],
        &|_, _| Lookup::Found,
    );
    let k = |n: &str| ObjKey::new("vmug", n);
    // Unbound: the global placement, nothing said.
    let (p, problems) = group_placement(&[(k("a"), None)], Some(&set), &base());
    assert_eq!(p, base());
    assert!(problems.is_empty());
    // Bound: the setting's SE group; a member bound otherwise is told.
    let (p, problems) = group_placement(
        &[
            (k("a"), None),
            (k("b"), Some("blue".into())),
            (k("c"), Some("other".into())),
        ],
        Some(&set),
        &base(),
    );
    assert_eq!(p.se_group, "Default-Group");
    let told: Vec<&str> = problems.iter().map(|(k, _)| k.name.as_str()).collect();
    assert_eq!(told, ["a", "c"]);
    assert!(
        problems[1].1.message.contains("use blue"),
        "{:?}",
        problems[1]
    );
    // Rejected or missing: the global placement, and each member bound to it is told why.
    for (name, why) in [
        (
            "bad",
            "is Rejected (BGPPeerLabels cannot be set if EnableRhi is false.)",
        ),
        ("gone", "does not exist"),
    ] {
        let (p, problems) = group_placement(&[(k("a"), Some(name.into()))], Some(&set), &base());
        assert_eq!(p, base());
        assert_eq!(problems.len(), 1);
        assert!(problems[0].1.message.contains(why), "{:?}", problems[0]);
        assert!(
            problems[0]
                .1
                .message
                .contains("SE group vmug-se-group, VIP network dpg-sedatapath-18")
        );
    }
}

#[test]
fn fields_not_applied_yet_are_named_and_unknown_ones_reported() {
    let notes = spec(AKO_SAMPLE).notes();
    let fields: Vec<&str> = notes
        .unimplemented
        .iter()
        .map(|(f, _)| f.as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "spec.network.nodeNetworks",
            "spec.network.listeners",
            "spec.nsxSettings",
            "spec.network.vipNetworks[0].networkUUID",
        ]
    );
    assert!(notes.unknown.is_empty());
    let notes = spec("seGroup: {name: x}\nnetwork: {vipNetwork: []}").notes();
    assert_eq!(notes.unknown, ["spec.network.vipNetwork"]);
}
