use super::*;
use crate::crd::spec_of;
use crate::index::ObjKey;

fn host_rule(ns: &str, name: &str, created: i64, yaml: &str) -> HostRuleEntry {
    let v: serde_json::Value = serde_yaml_ng::from_str(yaml).expect("yaml");
    HostRuleEntry {
        id: RuleId {
            created: Some(created),
            key: ObjKey::new(ns, name),
        },
        spec: spec_of(&serde_json::json!({ "spec": v })),
        verdict: Verdict::Accepted,
    }
}

fn found(_: &str, _: &str) -> Lookup {
    Lookup::Found
}

#[test]
fn the_oldest_acceptable_rule_owns_an_fqdn_and_younger_ones_are_rejected_in_akos_words() {
    let mut entries = vec![
        host_rule("b", "young", 30, "virtualhost: {fqdn: shop.avi.lab}"),
        host_rule(
            "a",
            "old-but-broken",
            10,
            "virtualhost: {fqdn: shop.avi.lab, wafPolicy: gone}",
        ),
        host_rule("a", "old", 20, "virtualhost: {fqdn: Shop.avi.lab}"),
        host_rule("c", "other", 5, "virtualhost: {fqdn: other.avi.lab}"),
    ];
    let lookup = |t: &str, n: &str| {
        if (t, n) == ("wafpolicy", "gone") {
            Lookup::Missing
        } else {
            Lookup::Found
        }
    };
    judge_host_rules(&mut entries, &[], &lookup);
    let verdicts: Vec<(&str, Verdict)> = entries
        .iter()
        .map(|e| (e.id.key.name.as_str(), e.verdict.clone()))
        .collect();
    assert_eq!(
        verdicts,
        [
            (
                "young",
                Verdict::Rejected("duplicate fqdn shop.avi.lab found in a/old".into())
            ),
            (
                "old-but-broken",
                Verdict::Rejected(
                    "wafpolicy \"gone\" not found on controller (spec.virtualhost.wafPolicy)"
                        .into()
                )
            ),
            ("old", Verdict::Accepted),
            ("other", Verdict::Accepted),
        ]
    );
}

#[test]
fn an_exact_fqdn_outside_the_delegated_subdomains_is_rejected() {
    let mut entries = vec![
        host_rule("a", "out", 1, "virtualhost: {fqdn: shop.example.org}"),
        host_rule("a", "in", 2, "virtualhost: {fqdn: shop.avi.lab}"),
        host_rule(
            "a",
            "pattern",
            3,
            "virtualhost: {fqdn: shop, fqdnType: Contains}",
        ),
    ];
    judge_host_rules(&mut entries, &["avi.lab".to_string()], &found);
    assert!(
        matches!(&entries[0].verdict, Verdict::Rejected(e) if e.contains("outside the delegated DNS subdomains"))
    );
    assert_eq!(entries[1].verdict, Verdict::Accepted);
    assert_eq!(entries[2].verdict, Verdict::Accepted);
}

#[test]
fn an_unreadable_spec_is_rejected_with_the_reason() {
    let mut entries = vec![host_rule(
        "a",
        "bad",
        1,
        "virtualhost: {fqdn: a.avi.lab, fqdnType: Regex}",
    )];
    judge_host_rules(&mut entries, &[], &found);
    assert!(
        matches!(&entries[0].verdict, Verdict::Rejected(e) if e.starts_with("spec is not valid")),
        "{:?}",
        entries[0].verdict
    );
}

#[test]
fn the_most_specific_accepted_host_rule_applies_to_a_host() {
    let mut entries = vec![
        host_rule(
            "a",
            "contains",
            1,
            "virtualhost: {fqdn: shop, fqdnType: Contains}",
        ),
        host_rule(
            "a",
            "wide",
            2,
            "virtualhost: {fqdn: '*.avi.lab', fqdnType: Wildcard}",
        ),
        host_rule(
            "a",
            "narrow",
            3,
            "virtualhost: {fqdn: '*.shop.avi.lab', fqdnType: Wildcard}",
        ),
        host_rule("a", "exact", 4, "virtualhost: {fqdn: www.shop.avi.lab}"),
        host_rule(
            "a",
            "rejected",
            5,
            "virtualhost: {fqdn: api.shop.avi.lab, wafPolicy: gone}",
        ),
    ];
    let lookup = |t: &str, _: &str| {
        if t == "wafpolicy" {
            Lookup::Missing
        } else {
            Lookup::Found
        }
    };
    judge_host_rules(&mut entries, &[], &lookup);
    let set = RuleSet::new(&entries, &[]);
    let cases = [
        ("www.shop.avi.lab", Some("exact")),
        ("api.shop.avi.lab", Some("narrow")),
        ("web.avi.lab", Some("wide")),
        ("shop.example.org", Some("contains")),
        ("web.example.org", None),
    ];
    for (host, want) in cases {
        assert_eq!(
            set.host_rule(host).map(|(id, _)| id.key.name.as_str()),
            want,
            "{host}"
        );
    }
}

#[test]
fn http_rules_apply_to_their_own_namespace_only() {
    let v: serde_json::Value =
        serde_yaml_ng::from_str("fqdn: shop.avi.lab\npaths: [{target: /}]").expect("yaml");
    let mut entries = vec![HttpRuleEntry {
        id: RuleId {
            created: Some(1),
            key: ObjKey::new("a", "r"),
        },
        spec: spec_of(&serde_json::json!({ "spec": v })),
        verdict: Verdict::Accepted,
    }];
    judge_http_rules(&mut entries, &found);
    let set = RuleSet::new(&[], &entries);
    assert_eq!(set.http_rules("shop.avi.lab", "a").count(), 1);
    assert_eq!(set.http_rules("SHOP.avi.lab", "a").count(), 1);
    assert_eq!(set.http_rules("shop.avi.lab", "b").count(), 0);
    assert!(set.has_http_rules("shop.avi.lab"));
}

#[test]
fn a_change_of_rules_touches_the_hosts_its_old_and_new_versions_match() {
    let known: Vec<String> = ["a.avi.lab", "b.avi.lab", "shop.avi.lab", "other.avi.lab"]
        .map(String::from)
        .to_vec();
    let before = vec![
        host_rule("n", "moved", 1, "virtualhost: {fqdn: a.avi.lab}"),
        host_rule("n", "same", 2, "virtualhost: {fqdn: other.avi.lab}"),
        host_rule(
            "n",
            "gone",
            3,
            "virtualhost: {fqdn: shop, fqdnType: Contains}",
        ),
    ];
    let after = vec![
        host_rule("n", "moved", 1, "virtualhost: {fqdn: b.avi.lab}"),
        host_rule("n", "same", 2, "virtualhost: {fqdn: other.avi.lab}"),
    ];
    let touched = touched_hosts((&before, &after), (&[], &[]), &known);
    let want: std::collections::BTreeSet<String> = ["a.avi.lab", "b.avi.lab", "shop.avi.lab"]
        .map(String::from)
        .into();
    assert_eq!(touched, want);
    assert!(touched_hosts((&after, &after), (&[], &[]), &known).is_empty());
}

#[test]
fn a_certificate_secret_that_does_not_exist_rejects_the_rule_in_akos_words() {
    let tls = |main: &str, alt: &str| {
        format!(
            "virtualhost: {{fqdn: shop.avi.lab, tls: {{sslKeyCertificate: {{name: {main}, type: secret, alternateCertificate: {{name: {alt}, type: secret}}}}}}}}"
        )
    };
    let mut entries = vec![
        host_rule("a", "both", 1, &tls("main", "alt")),
        host_rule("a", "no-alt", 2, &tls("main", "gone")),
        host_rule("b", "elsewhere", 3, &tls("main", "alt")),
    ];
    let exists = |k: &ObjKey| k.namespace == "a" && ["main", "alt"].contains(&k.name.as_str());
    reject_missing_secrets(&mut entries, &exists);
    let verdicts: Vec<&Verdict> = entries.iter().map(|e| &e.verdict).collect();
    assert_eq!(
        verdicts,
        [
            &Verdict::Accepted,
            &Verdict::Rejected("secret \"gone\" not found".into()),
            &Verdict::Rejected("secret \"main\" not found".into()),
        ]
    );
    let changed: std::collections::HashSet<ObjKey> = [ObjKey::new("a", "gone")].into();
    assert!(secrets_named(&entries, &changed));
    let other: std::collections::HashSet<ObjKey> = [ObjKey::new("c", "main")].into();
    assert!(!secrets_named(&entries, &other));
}
