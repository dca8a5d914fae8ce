//! Tests of `plan`.

use super::*;
use serde_json::json;

const OWNER: &str = "ako-veba-of";

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn desired(kind: Kind, name: &str, body: Value) -> Desired {
    let mut b = obj(body);
    b.insert("name".into(), json!(name));
    b.insert("created_by".into(), json!(OWNER));
    Desired {
        kind,
        name: name.into(),
        body: b,
    }
}

fn existing(kind: Kind, name: &str, owner: Option<&str>, body: Value) -> Existing {
    let mut b = obj(body);
    b.insert("name".into(), json!(name));
    b.insert("uuid".into(), json!(format!("{}-{name}", kind.obj_type())));
    b.insert("_last_modified".into(), json!("1595317883685461"));
    if let Some(o) = owner {
        b.insert("created_by".into(), json!(o));
    }
    Existing {
        kind,
        uuid: format!("{}-{name}", kind.obj_type()),
        name: name.into(),
        created_by: owner.map(String::from),
        body: b,
    }
}

#[test]
fn plan_with_reads_a_body_only_to_compare_an_owned_object_that_is_still_wanted() {
    let known = |kind: Kind, name: &str, owner: &str| Known {
        kind,
        uuid: format!("{}-{name}", kind.obj_type()),
        name: name.into(),
        created_by: Some(owner.into()),
    };
    let objects = [
        known(Kind::Pool, "same", OWNER),
        known(Kind::Pool, "changed", OWNER),
        known(Kind::Pool, "gone", OWNER),
        known(Kind::Pool, "theirs", "someone-else"),
    ];
    let desired_objects = vec![
        desired(Kind::Pool, "same", json!({"enabled": true})),
        desired(Kind::Pool, "changed", json!({"enabled": true})),
        desired(Kind::Pool, "theirs", json!({"enabled": true})),
        desired(Kind::Pool, "new", json!({"enabled": true})),
    ];
    let read = std::cell::RefCell::new(Vec::new());
    let steps = plan_with(desired_objects, &objects, true, OWNER, |k| {
        read.borrow_mut().push(k.name.clone());
        let enabled = k.name != "changed";
        Some(obj(
            json!({"name": k.name, "created_by": OWNER, "enabled": enabled, "uuid": k.uuid}),
        ))
    });
    let mut read = read.into_inner();
    read.sort();
    assert_eq!(
        read,
        ["changed", "same"],
        "no body read for a create, a delete or a conflict"
    );
    let kinds: Vec<(&str, &str)> = steps.iter().map(|s| (s.verb(), s.name())).collect();
    assert_eq!(
        kinds,
        [
            ("conflict", "theirs"),
            ("update", "changed"),
            ("create", "new"),
            ("delete", "gone")
        ]
    );
    let Some(Step::Update { body, .. }) = steps.iter().find(|s| s.name() == "changed") else {
        panic!("update")
    };
    assert_eq!(
        body["uuid"], "pool-changed",
        "the update keeps the controller's fields"
    );
}

#[test]
fn nothing_is_written_that_would_refer_to_an_object_of_someone_else() {
    let r = |t: &str, n: &str| json!(name_ref(t, n));
    let wanted = vec![
        desired(Kind::VsVip, "c--web", json!({})),
        desired(Kind::Pool, "c--web-80", json!({})),
        desired(
            Kind::PoolGroup,
            "c--web-pg",
            json!({"members": [{"pool_ref": r("pool", "c--web-80")}]}),
        ),
        desired(Kind::L4PolicySet, "c--web", json!({})),
        desired(
            Kind::VirtualService,
            "c--web",
            json!({"vsvip_ref": r("vsvip", "c--web"), "pool_group_ref": r("poolgroup", "c--web-pg")}),
        ),
        desired(Kind::Pool, "c--other-80", json!({})),
    ];
    // The VsVip of that name is someone else's: the virtual service that would use it is not written; the
    // pool is, and so are the objects that do not lead to the VsVip.
    let observed = Observed {
        objects: vec![existing(
            Kind::VsVip,
            "c--web",
            Some("terraform"),
            json!({}),
        )],
        complete: true,
    };
    let got: Vec<String> = plan(&wanted, &observed, OWNER)
        .iter()
        .map(|s| format!("{} {}", s.verb(), s.name()))
        .collect();
    assert_eq!(
        got,
        [
            "conflict c--web",
            "blocked c--web",
            "create c--other-80",
            "create c--web-80",
            "create c--web-pg",
            "create c--web"
        ]
    );
    // A pool of someone else's blocks its pool group, and through it the virtual service.
    let observed = Observed {
        objects: vec![existing(Kind::Pool, "c--web-80", None, json!({}))],
        complete: true,
    };
    let steps = plan(&wanted, &observed, OWNER);
    let blocked: Vec<(&str, String)> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Blocked { name, by, .. } => Some((name.as_str(), by.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        blocked,
        [
            ("c--web-pg", "pool:c--web-80".to_string()),
            ("c--web", "poolgroup:c--web-pg".to_string())
        ]
    );
    assert!(
        steps
            .iter()
            .any(|s| s.verb() == "create" && s.name() == "c--web" && s.kind() == Kind::VsVip)
    );
}

#[test]
fn an_object_whose_body_is_unknown_is_not_updated_from_an_empty_one() {
    let known = [Known {
        kind: Kind::Pool,
        uuid: "pool-1".into(),
        name: "p".into(),
        created_by: Some(OWNER.into()),
    }];
    let steps = plan_with(
        vec![desired(Kind::Pool, "p", json!({"enabled": true}))],
        &known,
        true,
        OWNER,
        |_| None,
    );
    assert!(steps.is_empty(), "{steps:?}");
}

#[test]
fn debug_output_never_shows_a_private_key() {
    let body = json!({"name": "c--h", "key": "-----BEGIN PRIVATE KEY-----\nMIIE", "certificate": {"certificate": "CERT"}});
    let d = desired(Kind::SslKeyAndCertificate, "c--h", body.clone());
    let e = existing(Kind::SslKeyAndCertificate, "c--h", Some(OWNER), body);
    let steps = plan(std::slice::from_ref(&d), &Observed::default(), OWNER);
    for text in [format!("{d:?}"), format!("{e:?}"), format!("{steps:?}")] {
        assert!(!text.contains("PRIVATE KEY"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
        assert!(text.contains("CERT"), "the rest is shown: {text}");
    }
}

#[test]
fn reference_forms_normalise_to_one_identity() {
    let cases = [
        ("/api/pool/?name=p1", "pool:p1"),
        ("/api/pool?name=p1", "pool:p1"),
        ("https://10.0.0.1/api/pool/pool-6426#p1", "pool:p1"),
        (
            "https://avi-controller:9443/api/cloud/cloud-1#Default-Cloud",
            "cloud:Default-Cloud",
        ),
        ("https://h/api/pool/pool-6426", "pool/pool-6426"),
        ("/api/tenant/?name=admin&x=1", "tenant:admin"),
        ("/api/pool/?name=a%2Fb+c", "pool:a/b c"),
        (
            &name_ref("pool", "c--h.example_/shop path"),
            "pool:c--h.example_/shop path",
        ),
        ("pool-6426", "pool-6426"),
    ];
    for (input, want) in cases {
        assert_eq!(normalize_ref(input), want, "{input}");
    }
}

#[test]
fn convergence_table() {
    let cases: Vec<(&str, Value, Value, bool)> = vec![
        (
            "controller defaults ignored",
            json!({"enabled": true}),
            json!({"enabled": true, "weight": 1}),
            true,
        ),
        (
            "changed scalar",
            json!({"enabled": true}),
            json!({"enabled": false}),
            false,
        ),
        ("missing field", json!({"enabled": true}), json!({}), false),
        (
            "ref by name vs URL with name",
            json!({"pool_ref": "/api/pool/?name=a"}),
            json!({"pool_ref": "https://h/api/pool/pool-1#a"}),
            true,
        ),
        (
            "ref to another object",
            json!({"pool_ref": "/api/pool/?name=a"}),
            json!({"pool_ref": "https://h/api/pool/pool-2#b"}),
            false,
        ),
        (
            "list elements compared as subsets",
            json!({"services": [{"port": 80}]}),
            json!({"services": [{"port": 80, "port_range_end": 80, "enable_ssl": false}]}),
            true,
        ),
        (
            "list of another length",
            json!({"services": [{"port": 80}]}),
            json!({"services": [{"port": 80}, {"port": 443}]}),
            false,
        ),
        (
            "allocated VIP address is the controller's",
            json!({"vip": [{"vip_id": "0", "auto_allocate_ip": true}]}),
            json!({"vip": [{"vip_id": "0", "auto_allocate_ip": true, "ip_address": {"addr": "10.10.18.15", "type": "V4"}}]}),
            true,
        ),
        (
            "number forms",
            json!({"ttl": 30}),
            json!({"ttl": 30.0}),
            true,
        ),
        (
            "a write-only key shown as <sensitive>",
            json!({"key": "the key PEM ako sent", "certificate": {"certificate": "A"}}),
            json!({"key": "<sensitive>", "certificate": {"certificate": "A", "subject": {}}}),
            true,
        ),
        (
            "a rotated certificate",
            json!({"key": "the key PEM ako sent", "certificate": {"certificate": "B"}}),
            json!({"key": "<sensitive>", "certificate": {"certificate": "A"}}),
            false,
        ),
        (
            "ref lists",
            json!({"health_monitor_refs": ["/api/healthmonitor/?name=System-TCP"]}),
            json!({"health_monitor_refs": ["https://h/api/healthmonitor/hm-1#System-TCP"]}),
            true,
        ),
    ];
    for (name, want, have, expect) in cases {
        assert_eq!(converged(&obj(want), &obj(have)), expect, "{name}");
    }
}

#[test]
fn overlay_keeps_what_the_controller_holds() {
    let have = obj(json!({
        "uuid": "vsvip-1", "_last_modified": "1",
        "vip": [{"vip_id": "0", "auto_allocate_ip": true, "ip_address": {"addr": "10.10.18.15", "type": "V4"}}],
        "dns_info": [{"fqdn": "a.avi.jarvis.lab", "ttl": 30}],
        "east_west_placement": false
    }));
    let want = obj(json!({
        "vip": [{"vip_id": "0", "auto_allocate_ip": true}],
        "dns_info": [{"fqdn": "a.avi.jarvis.lab"}, {"fqdn": "b.avi.jarvis.lab"}]
    }));
    let out = overlay(&have, &want);
    assert_eq!(out["vip"][0]["ip_address"]["addr"], json!("10.10.18.15"));
    assert_eq!(
        out["dns_info"], want["dns_info"],
        "a list of another length is replaced"
    );
    assert_eq!(out["uuid"], json!("vsvip-1"));
    assert_eq!(
        out["_last_modified"],
        json!("1"),
        "kept so the controller can detect a concurrent change"
    );
    assert!(converged(&want, &out));
}

#[test]
fn an_adopted_objects_lists_are_replaced_whole_and_an_empty_list_is_an_absent_one() {
    // AKO's redirect set, adopted by the name of the parent's own set: nothing of AKO's rule survives.
    let have = obj(json!({
        "uuid": "httppolicyset-1",
        "http_request_policy": {"rules": [{"name": "r", "index": 0, "enable": true,
            "match": {"host_hdr": {"match_criteria": "HDR_EQUALS", "value": ["a"]}, "vs_port": {"match_criteria": "IS_IN", "ports": [80]}},
            "redirect_action": {"protocol": "HTTPS", "port": 443}}]}
    }));
    let want = obj(json!({
        "http_request_policy": {"rules": [{"name": "any-host-0", "index": 0, "enable": true,
            "switching_action": {"action": "HTTP_SWITCHING_SELECT_LOCAL", "status_code": "HTTP_LOCAL_RESPONSE_STATUS_CODE_404"}}]}
    }));
    let out = overlay(&have, &want);
    assert_eq!(out["http_request_policy"], want["http_request_policy"]);
    assert_eq!(out["uuid"], json!("httppolicyset-1"));
    // A parent whose DataScript ako detaches: [] wanted, absent shown once done.
    let detach = obj(json!({"vs_datascripts": []}));
    assert!(!converged(
        &detach,
        &obj(json!({"vs_datascripts": [{"index": 1, "vs_datascript_set_ref": "x"}]}))
    ));
    assert!(converged(&detach, &obj(json!({}))));
    assert!(converged(&detach, &obj(json!({"vs_datascripts": []}))));
}

#[test]
fn plan_table() {
    let vip = |name: &str| desired(Kind::VsVip, name, json!({"vip": [{"vip_id": "0"}]}));
    let vs = |name: &str| {
        desired(
            Kind::VirtualService,
            name,
            json!({"vsvip_ref": name_ref("vsvip", name)}),
        )
    };
    let pool = |name: &str| desired(Kind::Pool, name, json!({"servers": []}));
    let have_vip = |name: &str, owner| {
        existing(
            Kind::VsVip,
            name,
            owner,
            json!({"vip": [{"vip_id": "0", "enabled": true}]}),
        )
    };
    let have_vs = |name: &str, owner| {
        existing(
            Kind::VirtualService,
            name,
            owner,
            json!({"vsvip_ref": format!("https://h/api/vsvip/vsvip-{name}#{name}")}),
        )
    };
    let have_pool = |name: &str| existing(Kind::Pool, name, Some(OWNER), json!({"servers": []}));
    let summary = |steps: Vec<Step>| -> Vec<String> {
        steps
            .iter()
            .map(|s| format!("{} {} {}", s.verb(), s.kind().obj_type(), s.name()))
            .collect()
    };
    struct Case {
        name: &'static str,
        desired: Vec<Desired>,
        observed: Vec<Existing>,
        complete: bool,
        want: Vec<&'static str>,
    }
    let cases = vec![
        Case {
            name: "empty controller: create bottom-up",
            desired: vec![vs("a"), pool("a-TCP-80"), vip("a")],
            observed: vec![],
            complete: true,
            want: vec![
                "create vsvip a",
                "create pool a-TCP-80",
                "create virtualservice a",
            ],
        },
        Case {
            name: "converged: nothing",
            desired: vec![vip("a"), vs("a")],
            observed: vec![have_vip("a", Some(OWNER)), have_vs("a", Some(OWNER))],
            complete: true,
            want: vec![],
        },
        Case {
            name: "orphans deleted top-down",
            desired: vec![],
            observed: vec![
                have_vip("a", Some(OWNER)),
                have_pool("a-TCP-80"),
                have_vs("a", Some(OWNER)),
            ],
            complete: true,
            want: vec![
                "delete virtualservice a",
                "delete pool a-TCP-80",
                "delete vsvip a",
            ],
        },
        Case {
            name: "incomplete observation never deletes",
            desired: vec![],
            observed: vec![have_vip("a", Some(OWNER)), have_vs("a", Some(OWNER))],
            complete: false,
            want: vec![],
        },
        Case {
            name: "someone else's object is a conflict, not an overwrite nor a delete",
            desired: vec![vip("a")],
            observed: vec![have_vip("a", Some("terraform")), have_vs("b", None)],
            complete: true,
            want: vec!["conflict vsvip a"],
        },
        Case {
            name: "drift repaired by update",
            desired: vec![vip("a"), vs("a")],
            observed: vec![have_vip("a", Some(OWNER)), have_vs("b", Some(OWNER)), {
                let mut e = have_vs("a", Some(OWNER));
                e.body
                    .insert("vsvip_ref".into(), json!("https://h/api/vsvip/vsvip-x#x"));
                e
            }],
            complete: true,
            want: vec!["update virtualservice a", "delete virtualservice b"],
        },
    ];
    for c in cases {
        let observed = Observed {
            objects: c.observed,
            complete: c.complete,
        };
        assert_eq!(
            summary(plan(&c.desired, &observed, OWNER)),
            c.want,
            "{}",
            c.name
        );
    }
}

/// Applies a plan to a simulated controller that adds defaults and renders references as URLs.
fn apply(observed: &mut Vec<Existing>, steps: &[Step]) {
    let render = |kind: Kind, name: &str, body: &Map<String, Value>| {
        let mut b = body.clone();
        for (k, v) in b.iter_mut() {
            if let (true, Value::String(s)) = (is_ref_key(k), &*v) {
                let id = normalize_ref(s);
                if let Some((t, n)) = id.split_once(':') {
                    *v = json!(format!("https://ctrl/api/{t}/{t}-{n}#{n}"));
                }
            }
        }
        b.entry("_last_modified").or_insert(json!("1"));
        b.entry("tenant_ref")
            .or_insert(json!("https://ctrl/api/tenant/admin#admin"));
        existing_from(kind, name, b)
    };
    for s in steps {
        match s {
            Step::Create { kind, name, body } => observed.push(render(*kind, name, body)),
            Step::Update {
                kind, name, body, ..
            } => {
                observed.retain(|e| !(e.kind == *kind && e.name == *name));
                observed.push(render(*kind, name, body));
            }
            Step::Delete { kind, name, .. } => {
                observed.retain(|e| !(e.kind == *kind && e.name == *name))
            }
            Step::Conflict { .. } | Step::Blocked { .. } => {}
        }
    }
}

fn existing_from(kind: Kind, name: &str, body: Map<String, Value>) -> Existing {
    Existing {
        kind,
        uuid: format!("{}-{name}", kind.obj_type()),
        name: name.into(),
        created_by: body
            .get("created_by")
            .and_then(Value::as_str)
            .map(String::from),
        body,
    }
}

/// plan(desired, apply(plan(desired, observed))) is empty, over generated desired and observed states.
#[test]
fn applying_a_plan_converges() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for round in 0..300 {
        let mut desired_set = Vec::new();
        for i in 0..next(6) {
            let name = format!("o{i}");
            let kind = Kind::ALL[next(Kind::ALL.len() as u64) as usize];
            let port = 80 + next(3);
            desired_set.push(desired(
                    kind,
                    &name,
                    json!({"services": [{"port": port}], "pool_ref": name_ref("pool", &format!("p{}", next(3)))}),
                ));
        }
        desired_set.sort_by(|a, b| (a.kind.obj_type(), &a.name).cmp(&(b.kind.obj_type(), &b.name)));
        desired_set.dedup_by(|a, b| a.kind.obj_type() == b.kind.obj_type() && a.name == b.name);
        let mut observed = Vec::new();
        for i in 0..next(6) {
            let name = format!("o{i}");
            let kind = Kind::ALL[next(Kind::ALL.len() as u64) as usize];
            let owner = if next(5) == 0 {
                Some("someone-else")
            } else {
                Some(OWNER)
            };
            let port = 80 + next(3);
            if observed
                .iter()
                .any(|e: &Existing| e.kind.obj_type() == kind.obj_type() && e.name == name)
            {
                continue;
            }
            observed.push(existing(
                kind,
                &name,
                owner,
                json!({"services": [{"port": port, "enable_ssl": false}]}),
            ));
        }
        let first = plan(
            &desired_set,
            &Observed {
                objects: observed.clone(),
                complete: true,
            },
            OWNER,
        );
        apply(&mut observed, &first);
        let second = plan(
            &desired_set,
            &Observed {
                objects: observed.clone(),
                complete: true,
            },
            OWNER,
        );
        assert!(
            second.iter().all(|s| !s.is_write()),
            "round {round}: second plan still writes: {second:?}\nfirst: {first:?}"
        );
    }
}
