use super::*;

fn ing(yaml: &str) -> Ingress {
    serde_yaml_ng::from_str(yaml).expect("ingress yaml")
}

fn cfg() -> Config {
    Config {
        cluster_name: "veba-of".into(),
        dns_domains: vec!["avi.jarvis.lab".into()],
        ..Config::default()
    }
}

const TWO_HOSTS: &str = r#"
metadata: {name: shop, namespace: vmug}
spec:
  tls: [{hosts: [shop.avi.jarvis.lab], secretName: shop-tls}]
  rules:
  - host: shop.avi.jarvis.lab
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
  - host: hackazon.avi.jarvis.lab
    http: {paths: [{path: /api, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}]}
  - host: outside.example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
"#;

#[test]
fn refs_name_the_parts_services_and_secrets_of_valid_hosts_only() {
    let r = refs_of(&ing(TWO_HOSTS), &cfg(), &ClassView::default(), None);
    let mut s = L7State::new(ShardSize::Large);
    let key = ObjKey::new("vmug", "shop");
    s.set(&key, Some(r.clone()));
    assert_eq!(
        s.parts_of(&key),
        vec![
            Part::Shard {
                index: 0,
                of: 8,
                infra: None
            },
            Part::Shard {
                index: 1,
                of: 8,
                infra: None
            }
        ]
    );
    assert_eq!(
        r.services,
        vec![ObjKey::new("vmug", "api"), ObjKey::new("vmug", "web")]
    );
    assert_eq!(r.secrets, vec![ObjKey::new("vmug", "shop-tls")]);
    assert!(
        r.problems
            .iter()
            .any(|p| p.message.contains("outside.example.com")),
        "{:?}",
        r.problems
    );
    let mut dedicated = L7State::new(ShardSize::Dedicated);
    dedicated.set(&key, Some(r));
    assert_eq!(dedicated.parts_of(&key).len(), 2);
}

#[test]
fn indexes_follow_an_ingress_as_it_changes_and_goes() {
    let mut s = L7State::new(ShardSize::Large);
    let key = ObjKey::new("vmug", "shop");
    let r = refs_of(&ing(TWO_HOSTS), &cfg(), &ClassView::default(), None);
    let touched = s.set(&key, Some(r));
    assert_eq!(touched.len(), 2);
    let shard1 = Part::Shard {
        index: 1,
        of: 8,
        infra: None,
    };
    assert_eq!(
        s.take_work(&shard1),
        (BTreeSet::from(["shop.avi.jarvis.lab".to_string()]), false)
    );
    let web = ObjKey::new("vmug", "web");
    let tls = ObjKey::new("vmug", "shop-tls");
    assert_eq!(s.touch_service(&web).len(), 2);
    // A Secret change re-translates the hosts of the Ingresses naming it.
    assert_eq!(s.touch_secret(&tls).len(), 2);
    let (ingresses, services, secrets) =
        s.claimants_of(&BTreeSet::from(["shop.avi.jarvis.lab".to_string()]));
    assert!(ingresses.contains(&key) && services.contains(&web) && secrets.contains(&tls));
    // Gone: every host it had is marked, and nothing names it any more.
    let touched = s.set(&key, None);
    assert_eq!(touched.len(), 2);
    assert!(s.touch_service(&web).is_empty());
    assert!(s.touch_secret(&tls).is_empty());
    assert!(s.ingresses_of_part(&shard1).is_empty());
    s.mark_all(&shard1);
    assert_eq!(s.take_work(&shard1), (BTreeSet::new(), true));
}

#[test]
fn merged_outcome_joins_hosts_of_every_fragment_and_names_each_problem_once() {
    let mut s = L7State::new(ShardSize::Large);
    let key = ObjKey::new("vmug", "shop");
    s.set(
        &key,
        Some(refs_of(
            &ing(TWO_HOSTS),
            &cfg(),
            &ClassView::default(),
            None,
        )),
    );
    let host = |h: &str, vs: &str| HostOutcome {
        host: h.into(),
        vs_name: vs.into(),
        vip_name: vs.into(),
        tls: false,
    };
    let warn = Problem::warn("spec.rules[1]", "backend Service \"api\" not found");
    let fragment = |h: &str, vs: &str, index: u32| HostFragment {
        host: h.into(),
        part: Part::Shard {
            index,
            of: 8,
            infra: None,
        },
        objects: Vec::new(),
        parent_policy: Some(format!("veba-of--Shared-L7-{index}--{h}")),
        aliases: Vec::new(),
        outcomes: vec![ako_core::l7::IngressOutcome {
            key: key.clone(),
            hosts: vec![host(h, vs)],
            problems: vec![warn.clone()],
        }],
    };
    let hosts = BTreeSet::from([
        "shop.avi.jarvis.lab".to_string(),
        "hackazon.avi.jarvis.lab".to_string(),
    ]);
    let (touched, parent_changed, _) = s.store(
        &hosts,
        vec![
            fragment("shop.avi.jarvis.lab", "p1", 1),
            fragment("hackazon.avi.jarvis.lab", "p0", 0),
        ],
    );
    assert_eq!(touched, BTreeSet::from([key.clone()]));
    assert!(parent_changed, "two hosts appeared on their parents");
    let again = vec![fragment("shop.avi.jarvis.lab", "p1", 1)];
    let shop: BTreeSet<String> = ["shop.avi.jarvis.lab".to_string()].into();
    assert!(
        !s.store(&shop, again).1,
        "the same fragment again leaves the parent as it is"
    );
    let (hosts, problems) = s.merged(&key);
    assert_eq!(
        hosts.iter().map(|h| h.host.as_str()).collect::<Vec<_>>(),
        ["hackazon.avi.jarvis.lab", "shop.avi.jarvis.lab"]
    );
    assert_eq!(problems.iter().filter(|p| **p == warn).count(), 1);
    assert!(
        problems
            .iter()
            .any(|p| p.message.contains("outside.example.com"))
    );
    assert_eq!(
        s.serving_hosts(&Part::Shard {
            index: 0,
            of: 8,
            infra: None
        })
        .len(),
        1
    );

    let vips = BTreeMap::from([
        ("p0".to_string(), vec!["10.10.18.19".parse().expect("ip")]),
        ("p1".to_string(), Vec::new()),
    ]);
    let st = status_of(&hosts, &vips);
    assert_eq!(st.len(), 1, "a host without a known VIP is left out");
    assert_eq!(st[0].ip.as_deref(), Some("10.10.18.19"));
    assert_eq!(st[0].hostname.as_deref(), Some("hackazon.avi.jarvis.lab"));
}
