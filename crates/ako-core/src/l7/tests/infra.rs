//! AviInfraSetting on Ingresses through their IngressClass: AKO's names, the setting's placement and shard size.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::crd::{InfraEntry, Lookup, RuleId, RuleSet, Verdict, judge_infra_settings, spec_of};
use crate::intent::{ClassInfo, ClassView};

fn infra_rules(settings: &[(&str, &str)]) -> RuleSet {
    let mut e: Vec<InfraEntry> = settings
        .iter()
        .map(|(name, yaml)| InfraEntry {
            id: RuleId {
                created: Some(1),
                key: ObjKey::new("", *name),
            },
            spec: spec_of(&json!({"spec": serde_yaml_ng::from_str::<Value>(yaml).expect("yaml")})),
            verdict: Verdict::Accepted,
        })
        .collect();
    judge_infra_settings(&mut e, &|t, n| {
        if (t, n) == ("serviceenginegroup", "no-such-group") {
            Lookup::Missing
        } else {
            Lookup::Found
        }
    });
    RuleSet::default().with_infra(&e)
}

/// `avi-lb` (the global placement) and `blue`, whose parameters name the AviInfraSetting `blue`.
fn classes(infra: &str) -> ClassView {
    let ours = |infra: Option<&str>| ClassInfo {
        controller: Some(crate::config::INGRESS_CONTROLLER.into()),
        is_default: false,
        infra: infra.map(str::to_string),
    };
    ClassView {
        classes: [
            ("avi-lb".to_string(), ours(None)),
            ("blue".to_string(), ours(Some(infra))),
        ]
        .into(),
    }
}

const BLUE: &str = "seGroup: {name: Default-Group}
network:
  vipNetworks: [{networkName: infra-net, cidr: 127.20.0.0/24}]
  enableRhi: true
  bgpPeerLabels: [peer1]
l7Settings: {shardSize: SMALL}";

fn of_class(yaml: &str, class: &str) -> String {
    yaml.replace("spec:\n", &format!("spec:\n  ingressClassName: {class}\n"))
}

#[test]
fn a_class_naming_an_infra_setting_gets_akos_names_its_se_group_network_rhi_and_shard_size() {
    let mut w = World::new(&[&of_class(SHOP_TLS, "blue"), &of_class(HACKAZON, "avi-lb")]);
    w.secrets
        .insert(ObjKey::new("vmug", "shop-tls"), Some(pair()));
    w.rules = Some(infra_rules(&[("blue", BLUE)]));
    w.classes = Some(classes("blue"));
    let d = w.run(ShardSize::Large, &cfg());
    // shop (class blue): one shard (SMALL) of its own, AKO's names with the setting's name.
    let parent = find(&d, Kind::VirtualService, "veba-of--Shared-L7-blue-0");
    assert!(
        parent["se_group_ref"]
            .as_str()
            .is_some_and(|r| r.ends_with("=Default-Group")),
        "{parent:?}"
    );
    assert_eq!(parent["enable_rhi"], true);
    let vip = find(&d, Kind::VsVip, "veba-of--Shared-L7-blue-0");
    assert_eq!(
        vip["vip"][0]["ipam_network_subnet"]["network_ref"],
        "/api/network/?name=infra-net"
    );
    assert_eq!(vip["bgp_peer_labels"], json!(["peer1"]));
    find(
        &d,
        Kind::VirtualServiceChild,
        "veba-of--blue-shop.avi.jarvis.lab",
    );
    find(
        &d,
        Kind::SslKeyAndCertificate,
        "veba-of--blue-shop.avi.jarvis.lab",
    );
    find(
        &d,
        Kind::HttpPolicySet,
        "veba-of--blue-vmug-shop.avi.jarvis.lab",
    );
    find(
        &d,
        Kind::Pool,
        "veba-of--blue-vmug-shop.avi.jarvis.lab_-shop",
    );
    find(
        &d,
        Kind::HttpPolicySet,
        "veba-of--Shared-L7-blue-0--shop.avi.jarvis.lab",
    );
    // hackazon (avi-lb): the global parent of its shard, the global SE group, no RHI.
    let global = find(&d, Kind::VirtualService, "veba-of--Shared-L7-0");
    assert!(
        global["se_group_ref"]
            .as_str()
            .is_some_and(|r| r.ends_with("=vmug-se-group"))
    );
    assert!(global["enable_rhi"].is_null());
    let shop = d
        .outcomes
        .iter()
        .find(|o| o.key.name == "shop")
        .expect("shop");
    assert_eq!(shop.hosts[0].vip_name, "veba-of--Shared-L7-blue-0");
    assert!(shop.problems.is_empty(), "{:?}", shop.problems);
    // Every host of the setting is in its own part, as the reconciler plans them.
    assert_eq!(
        host_part(
            "shop.avi.jarvis.lab",
            Some("blue"),
            ShardSize::Large,
            w.rules.as_ref()
        ),
        Part::Shard {
            index: 0,
            of: 1,
            infra: Some("blue".into())
        }
    );
    let by_part = w.run_part(
        ShardSize::Large,
        &cfg(),
        MemberMode::ClusterIp,
        Some(&Part::Shard {
            index: 0,
            of: 1,
            infra: Some("blue".into()),
        }),
    );
    assert!(
        by_part
            .objects
            .iter()
            .any(|o| o.name == "veba-of--blue-shop.avi.jarvis.lab")
    );
    assert!(
        !by_part.objects.iter().any(|o| o.name.contains("hackazon")),
        "only the part's hosts"
    );
}

#[test]
fn dedicated_hosts_of_a_setting_carry_its_name() {
    let mut w = World::new(&[&of_class(HACKAZON, "blue")]);
    w.rules = Some(infra_rules(&[(
        "blue",
        "l7Settings: {shardSize: DEDICATED}",
    )]));
    w.classes = Some(classes("blue"));
    let d = w.run(ShardSize::Large, &cfg());
    find(
        &d,
        Kind::VirtualService,
        "veba-of--blue-hackazon.avi.jarvis.lab-L7-dedicated",
    );
    find(
        &d,
        Kind::Pool,
        "veba-of--blue-vmug-hackazon.avi.jarvis.lab_-hackazon-L7-dedicated",
    );
}

#[test]
fn a_missing_or_rejected_setting_leaves_the_global_placement_and_says_why() {
    for (settings, why) in [
        (vec![], "does not exist"),
        (
            vec![("blue", "seGroup: {name: no-such-group}")],
            "is Rejected (serviceenginegroup \"no-such-group\" not found on controller",
        ),
    ] {
        let mut w = World::new(&[&of_class(HACKAZON, "blue")]);
        w.rules = Some(infra_rules(&settings));
        w.classes = Some(classes("blue"));
        let d = w.run(ShardSize::Large, &cfg());
        find(&d, Kind::VirtualService, "veba-of--Shared-L7-0");
        assert!(!d.objects.iter().any(|o| o.name.contains("blue")));
        let o = &d.outcomes[0];
        assert!(
            o.problems.iter().any(|p| p.field == "spec.ingressClassName"
                && p.message.contains(why)
                && p.message.contains("placed by the global settings")),
            "{why}: {:?}",
            o.problems
        );
        assert_eq!(o.hosts[0].vip_name, "veba-of--Shared-L7-0");
    }
}

#[test]
fn a_namespace_annotation_places_its_ingresses_whose_class_names_no_setting() {
    let mut w = World::new(&[
        &of_class(HACKAZON, "avi-lb"),
        &of_class(&SHOP_TLS.replace("name: shop,", "name: shop2,"), "blue"),
    ]);
    w.secrets
        .insert(ObjKey::new("vmug", "shop-tls"), Some(pair()));
    w.rules = Some(infra_rules(&[
        ("blue", BLUE),
        ("green", "seGroup: {name: Default-Group}"),
    ]));
    w.classes = Some(classes("blue"));
    w.namespace_infra = Some([("vmug".to_string(), "green".to_string())].into());
    let d = w.run(ShardSize::Large, &cfg());
    // hackazon's class names none: its namespace's setting places it (its own parents, named after it).
    let green = d
        .outcomes
        .iter()
        .find(|o| o.key.name == "hackazon")
        .expect("hackazon");
    assert!(
        green.hosts[0]
            .vip_name
            .starts_with("veba-of--Shared-L7-green-"),
        "{green:?}"
    );
    // shop2's class names blue: the class wins over the namespace.
    let blue = d
        .outcomes
        .iter()
        .find(|o| o.key.name == "shop2")
        .expect("shop2");
    assert_eq!(blue.hosts[0].vip_name, "veba-of--Shared-L7-blue-0");
}
