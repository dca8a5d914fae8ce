//! Tests of `intent`.

use super::*;
use crate::config::VipNetwork;

fn cfg() -> Config {
    Config {
        dns_domains: vec!["avi.jarvis.lab".into()],
        vip_networks: vec![VipNetwork {
            network_name: Some("dpg-sedatapath-18".into()),
            network_uuid: None,
            cidr: Some("10.10.18.0/26".parse().expect("cidr")),
            v6cidr: None,
        }],
        ..Config::default()
    }
}

fn ingress(yaml: &str) -> Ingress {
    serde_yaml_ng::from_str(yaml).expect("ingress yaml")
}

fn service(yaml: &str) -> Service {
    serde_yaml_ng::from_str(yaml).expect("service yaml")
}

#[test]
fn class_resolution_table() {
    let mut view = ClassView::default();
    let c = cfg();
    assert!(
        view.is_ours(&ClassRef::Name("avi-lb".into()), &c),
        "our class name before the class object exists"
    );
    assert!(!view.is_ours(&ClassRef::Name("nginx".into()), &c));
    assert!(view.is_ours(&ClassRef::Legacy("avi".into()), &c));
    assert!(!view.is_ours(&ClassRef::Legacy("nginx".into()), &c));
    assert!(
        view.is_ours(&ClassRef::Unset, &c),
        "defaultIngController=true and no default class"
    );
    view.classes.insert(
        "nginx".into(),
        ClassInfo {
            infra: None,
            controller: Some("k8s.io/ingress-nginx".into()),
            is_default: true,
        },
    );
    assert!(
        !view.is_ours(&ClassRef::Unset, &c),
        "another class is the default"
    );
    view.classes.insert(
        "avi-lb".into(),
        ClassInfo {
            infra: None,
            controller: Some(config::INGRESS_CONTROLLER.into()),
            is_default: true,
        },
    );
    assert!(
        view.is_ours(&ClassRef::Unset, &c),
        "our class is marked default"
    );
    view.classes.insert(
        "mine".into(),
        ClassInfo {
            infra: None,
            controller: Some(config::INGRESS_CONTROLLER.into()),
            is_default: false,
        },
    );
    assert!(
        view.is_ours(&ClassRef::Name("mine".into()), &c),
        "any class with our controller"
    );
    view.classes.insert(
        "avi-lb".into(),
        ClassInfo {
            infra: None,
            controller: Some("other".into()),
            is_default: false,
        },
    );
    assert!(
        !view.is_ours(&ClassRef::Name("avi-lb".into()), &c),
        "the class object decides over the name"
    );
    let no_default = Config {
        default_ing_controller: false,
        ..cfg()
    };
    assert!(!ClassView::default().is_ours(&ClassRef::Unset, &no_default));
}

#[test]
fn ingress_field_wins_over_legacy_annotation() {
    let ing = ingress(
        "metadata: {name: a, namespace: n, annotations: {kubernetes.io/ingress.class: avi}}\nspec: {ingressClassName: nginx}",
    );
    assert_eq!(classify(&ing), ClassRef::Name("nginx".into()));
}

#[test]
fn hackazon_ingress_translates_to_one_host_with_its_route() {
    let ing = ingress(
        r#"
metadata: {name: hackazon, namespace: vmug, annotations: {kubernetes.io/ingress.class: avi}}
spec:
  rules:
  - host: Hackazon.avi.jarvis.lab
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: hackazon, port: {number: 80}}}}
"#,
    );
    let (intent, problems) = translate_ingress(&ing, &cfg());
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(intent.hosts.len(), 1);
    assert_eq!(intent.hosts[0].host, "hackazon.avi.jarvis.lab");
    assert_eq!(
        intent.hosts[0].routes[0].backend,
        Some(Backend {
            service: "hackazon".into(),
            port: BackendPort::Number(80)
        })
    );
    assert_eq!(intent.class, ClassRef::Legacy("avi".into()));
}

#[test]
fn ingress_problem_table() {
    let cases: Vec<(&str, &str, Vec<&str>)> = vec![
        (
            "outside host",
            "rules: [{host: shop.example.com}]",
            vec!["spec.rules[0].host", "outside the delegated"],
        ),
        (
            "label boundary",
            "rules: [{host: evilavi.jarvis.lab}]",
            vec!["outside"],
        ),
        (
            "bad wildcard",
            "rules: [{host: 'a.*.avi.jarvis.lab'}]",
            vec!["wildcard"],
        ),
        (
            "tls host not in rules",
            "rules: [{host: a.avi.jarvis.lab}]\n  tls: [{hosts: [b.avi.jarvis.lab], secretName: s}]",
            vec!["spec.tls[0].hosts[0]", "does not appear in spec.rules"],
        ),
        (
            "tls host outside",
            "tls: [{hosts: [x.example.com]}]",
            vec!["spec.tls[0].hosts[0]", "outside"],
        ),
    ];
    for (name, spec, wants) in cases {
        let ing = ingress(&format!(
            "metadata: {{name: a, namespace: n}}\nspec:\n  {spec}"
        ));
        let (_, problems) = translate_ingress(&ing, &cfg());
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            problems.iter().all(|p| p.severity == Severity::Deny),
            "{name}"
        );
        for w in wants {
            assert!(
                text.iter().any(|t| t.contains(w)),
                "{name}: {w:?} not in {text:?}"
            );
        }
    }
}

#[test]
fn a_rule_without_host_gets_akos_generated_name() {
    let ing =
        ingress("metadata: {name: web, namespace: shop}\nspec: {rules: [{http: {paths: []}}]}");
    let (intent, problems) = translate_ingress(&ing, &cfg());
    assert!(problems.is_empty());
    assert_eq!(intent.hosts[0].host, "web.shop.avi.jarvis.lab");
    assert!(intent.hosts[0].generated);
}

#[test]
fn a_generated_name_that_is_not_dns_is_denied_with_the_reason() {
    let long = "x".repeat(64);
    let ing = ingress(&format!(
        "metadata: {{name: {long}, namespace: shop}}\nspec: {{rules: [{{}}]}}"
    ));
    let (_, problems) = translate_ingress(&ing, &cfg());
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].message.contains("64 characters"),
        "{}",
        problems[0]
    );
    let (_, problems) = translate_ingress(&ing, &Config::default());
    assert!(
        problems[0].message.contains("no DNS subdomain"),
        "{}",
        problems[0]
    );
}

#[test]
fn without_a_delegated_subdomain_hosts_are_served_with_a_no_dns_record_warning() {
    let none = Config::default();
    // (spec, allowed hosts, problems as "Severity:text")
    let cases: Vec<(&str, Vec<&str>, Vec<&str>)> = vec![
        (
            "rules: [{host: Shop.Example.com.}]",
            vec!["shop.example.com"],
            vec![
                "Warn:no DNS record for host \"shop.example.com\" (spec.rules[0].host): no DNS subdomain is configured",
            ],
        ),
        (
            "rules: [{host: a.example.com}, {host: a.example.com}, {host: b.example.com}]\n  tls: [{hosts: [a.example.com], secretName: s}]",
            vec!["a.example.com", "a.example.com", "b.example.com"],
            vec![
                "Warn:no DNS record for host \"a.example.com\" (spec.rules[0].host)",
                "Warn:no DNS record for host \"b.example.com\" (spec.rules[2].host)",
            ],
        ),
        (
            "rules: [{host: 'a..example.com'}]",
            vec![],
            vec!["Deny:not a valid DNS name"],
        ),
        (
            "rules: [{host: a.example.com}]\n  tls: [{hosts: [b.example.com]}]",
            vec!["a.example.com"],
            vec!["Warn:no DNS record", "Deny:does not appear in spec.rules"],
        ),
        (
            "rules: [{http: {paths: []}}]",
            vec![],
            vec!["Deny:no DNS subdomain is configured to generate"],
        ),
    ];
    for (spec, hosts, wants) in cases {
        let ing = ingress(&format!(
            "metadata: {{name: a, namespace: n}}\nspec:\n  {spec}"
        ));
        let (intent, problems) = translate_ingress(&ing, &none);
        let got: Vec<&str> = intent.hosts.iter().map(|h| h.host.as_str()).collect();
        assert_eq!(got, hosts, "{spec}");
        assert_eq!(problems.len(), wants.len(), "{spec}: {problems:?}");
        for (p, want) in problems.iter().zip(wants) {
            let (sev, text) = want.split_once(':').expect("sev:text");
            assert_eq!(format!("{:?}", p.severity), sev, "{spec}");
            assert!(
                p.message.contains(text),
                "{spec}: {} lacks {text}",
                p.message
            );
            if p.severity == Severity::Warn {
                assert!(p.message.chars().count() <= 120, "{}", p.message);
            }
        }
    }
    let svc = service(
        "metadata: {name: s, namespace: n, annotations: {external-dns.alpha.kubernetes.io/hostname: 'a.example.com,a.example.com'}}\nspec: {type: LoadBalancer}",
    );
    let (intent, problems) = translate_service(&svc, &none);
    assert!(intent.fqdns.is_empty());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].severity, Severity::Warn);
    assert!(
        problems[0]
            .message
            .contains("no DNS record for host \"a.example.com\"")
    );
}

#[test]
fn size_limits_name_the_field_the_count_and_the_limit() {
    let rules = |n: usize, paths: usize| -> Vec<serde_json::Value> {
        (0..n)
                .map(|i| {
                    let paths: Vec<serde_json::Value> = (0..paths)
                        .map(|j| serde_json::json!({"path": format!("/{j}"), "pathType": "Prefix",
                            "backend": {"service": {"name": "web", "port": {"number": 80}}}}))
                        .collect();
                    serde_json::json!({"host": format!("h{i}.avi.jarvis.lab"), "http": {"paths": paths}})
                })
                .collect()
    };
    let ing = |spec: serde_json::Value| -> Ingress {
        serde_json::from_value(
            serde_json::json!({"metadata": {"name": "a", "namespace": "n"}, "spec": spec}),
        )
        .expect("ingress")
    };
    let at_limits = ing(serde_json::json!({
        "rules": rules(limits::MAX_RULES, limits::MAX_PATHS / limits::MAX_RULES),
        "tls": (0..limits::MAX_TLS).map(|i| serde_json::json!({"hosts": [format!("h{i}.avi.jarvis.lab")]})).collect::<Vec<_>>(),
    }));
    assert!(check_ingress_limits(&at_limits).is_empty());
    let cases = [
        (
            serde_json::json!({"rules": rules(limits::MAX_RULES + 1, 0)}),
            vec![
                "spec.rules has 2001 rules; ako accepts at most 2000 per Ingress; split it into several Ingresses",
            ],
        ),
        (
            serde_json::json!({"rules": [rules(1, 1).remove(0), rules(1, 1001).remove(0)]}),
            vec!["spec.rules[1].http.paths has 1001 paths; ako accepts at most 1000 per rule"],
        ),
        (
            serde_json::json!({"rules": rules(11, 1000)}),
            vec![
                "spec.rules[*].http.paths has 11000 paths in all; ako accepts at most 10000 per Ingress",
            ],
        ),
        (
            serde_json::json!({"tls": vec![serde_json::json!({"hosts": vec!["a.avi.jarvis.lab"; 5001]})]}),
            vec!["spec.tls[*].hosts has 5001 hosts in all; ako accepts at most 5000 per Ingress"],
        ),
        (
            serde_json::json!({"tls": vec![serde_json::json!({}); 2001]}),
            vec!["spec.tls has 2001 entries; ako accepts at most 2000 per Ingress"],
        ),
    ];
    for (spec, wants) in cases {
        let problems = check_ingress_limits(&ing(spec));
        assert_eq!(problems.len(), wants.len(), "{problems:?}");
        for (p, want) in problems.iter().zip(wants) {
            assert_eq!(p.severity, Severity::Deny);
            assert!(p.message.starts_with(want), "{} is not {want}", p.message);
        }
    }
}

#[test]
fn service_ownership_table() {
    let c = cfg();
    let cases = [
        ("{type: LoadBalancer}", true),
        (
            "{type: LoadBalancer, loadBalancerClass: ako.vmware.com/avi-lb}",
            true,
        ),
        ("{type: LoadBalancer, loadBalancerClass: metallb}", false),
        ("{type: ClusterIP}", false),
        ("{}", false),
    ];
    for (spec, want) in cases {
        let svc = service(&format!(
            "metadata: {{name: s, namespace: n}}\nspec: {spec}"
        ));
        assert_eq!(service_is_ours(&svc, &c), want, "{spec}");
    }
    let svc = service("metadata: {name: s, namespace: n}\nspec: {type: LoadBalancer}");
    assert!(!service_is_ours(
        &svc,
        &Config {
            default_lb_controller: false,
            ..cfg()
        }
    ));
}

#[test]
fn service_fqdn_and_vip_table() {
    let long = "n".repeat(64);
    let cases: Vec<(&str, &str, Vec<&str>, Vec<&str>)> = vec![
        (
            "avisvc-lb",
            "",
            vec!["avisvc-lb.vmug.avi.jarvis.lab"],
            vec![],
        ),
        (
            "s",
            "annotations: {external-dns.alpha.kubernetes.io/hostname: 'a.avi.jarvis.lab, B.avi.jarvis.lab'}",
            vec!["a.avi.jarvis.lab", "b.avi.jarvis.lab"],
            vec![],
        ),
        (
            "s",
            "annotations: {external-dns.alpha.kubernetes.io/hostname: 'a.example.com'}",
            vec![],
            vec!["Deny:outside"],
        ),
        (
            "s",
            "annotations: {ako.vmware.com/load-balancer-ip: 10.10.18.5}",
            vec!["s.vmug.avi.jarvis.lab"],
            vec![],
        ),
        (
            "s",
            "annotations: {ako.vmware.com/load-balancer-ip: 10.10.19.5}",
            vec!["s.vmug.avi.jarvis.lab"],
            vec!["Deny:outside the VIP networks [10.10.18.0/26]"],
        ),
        (
            "s",
            "annotations: {ako.vmware.com/load-balancer-ip: nope}",
            vec!["s.vmug.avi.jarvis.lab"],
            vec!["Deny:not an IP"],
        ),
        (&long, "", vec![], vec!["Warn:no FQDN will be published"]),
    ];
    for (name, meta, fqdns, problems) in cases {
        let meta_extra = meta;
        let sep = if meta.is_empty() { "" } else { ", " };
        let svc = service(&format!(
            "metadata: {{name: {name}, namespace: vmug{sep}{meta}}}\nspec: {{type: LoadBalancer}}"
        ));
        let (intent, got) = translate_service(&svc, &cfg());
        assert_eq!(intent.fqdns, fqdns, "{name} {meta_extra}");
        assert_eq!(got.len(), problems.len(), "{name} {meta_extra}: {got:?}");
        for (p, want) in got.iter().zip(problems) {
            let (sev, text) = want.split_once(':').expect("sev:text");
            assert_eq!(format!("{:?}", p.severity), sev);
            assert!(p.message.contains(text), "{} lacks {text}", p.message);
        }
    }
}

#[test]
fn flat_auto_fqdn_longer_than_a_label_is_shortened_as_akos_so_the_published_name_is_the_same() {
    let name = "payments-gateway-frontend-service-v2";
    let svc = service(&format!(
        "metadata: {{name: {name}, namespace: team-checkout-production-eu}}\nspec: {{type: LoadBalancer}}"
    ));
    let flat = Config {
        auto_fqdn: AutoFqdn::Flat,
        ..cfg()
    };
    let (intent, problems) = translate_service(&svc, &flat);
    assert!(problems.is_empty(), "{problems:?}");
    // 63 - len("team-checkout-production-eu") - 1 = 35 characters of the name.
    assert_eq!(
        intent.fqdns,
        ["payments-gateway-frontend-service-v-team-checkout-production-eu.avi.jarvis.lab"]
    );
}

#[test]
fn auto_fqdn_fixes_labels_and_lengths_as_ako_does() {
    let long62 = format!("n{}", "a".repeat(61));
    let long63 = "b".repeat(63);
    // (name, namespace, mode, FQDN)
    let cases: Vec<(&str, String, AutoFqdn, String)> = vec![
        (
            "web",
            "shop".into(),
            AutoFqdn::Default,
            "web.shop.d.lab".into(),
        ),
        (
            "web",
            "shop".into(),
            AutoFqdn::Flat,
            "web-shop.d.lab".into(),
        ),
        // A namespace starting with a digit is not an RFC 1035 label: AKO prefixes it with "n".
        (
            "web",
            "42-team".into(),
            AutoFqdn::Default,
            "web.n42-team.d.lab".into(),
        ),
        (
            "web",
            "42-team".into(),
            AutoFqdn::Flat,
            "web-n42-team.d.lab".into(),
        ),
        // 62 characters of namespace: no room for the name, so the namespace gives way to it.
        (
            "web",
            long62.clone(),
            AutoFqdn::Flat,
            format!("web-{}.d.lab", &long62[..59]),
        ),
        // Both at 63: the namespace keeps 48, the name what is left (14).
        (
            "c".repeat(63).leak(),
            long63.clone(),
            AutoFqdn::Flat,
            format!("{}-{}.d.lab", "c".repeat(14), &long63[..48]),
        ),
        ("web", "shop".into(), AutoFqdn::Disabled, String::new()),
    ];
    for (name, ns, mode, want) in cases {
        let got = auto_fqdn(name, &ns, "d.lab", mode).unwrap_or_default();
        assert_eq!(got, want, "{name} {ns} {mode:?}");
        if !got.is_empty() {
            assert!(
                got.split('.').all(|l| l.len() <= 63),
                "{got} has a label over 63"
            );
        }
    }
    // A namespace cut at a hyphen loses the hyphen.
    let ns = format!("{}-{}", "a".repeat(51), "b".repeat(12));
    let (n, s) = shorten_flat_label(&"c".repeat(10), &ns);
    assert_eq!(s, "a".repeat(51), "cut to 52, then its trailing hyphen");
    assert_eq!(n, "c".repeat(10));
}

#[test]
fn spec_ip_and_annotation_must_agree() {
    let svc = service(
        "metadata: {name: s, namespace: n, annotations: {ako.vmware.com/load-balancer-ip: 10.10.18.6}}\nspec: {type: LoadBalancer, loadBalancerIP: 10.10.18.5}",
    );
    let (intent, problems) = translate_service(&svc, &cfg());
    assert!(intent.requested_ip.is_none());
    assert!(problems.iter().any(|p| p.message.contains("disagree")));
    let flat = Config {
        auto_fqdn: AutoFqdn::Flat,
        ..cfg()
    };
    let (intent, _) = translate_service(&svc, &flat);
    assert_eq!(intent.fqdns, vec!["s-n.avi.jarvis.lab".to_string()]);
}
