//! The pure cost of re-planning after one Ingress edit, with N Ingresses under shardVSSize LARGE (a shard holds
//! about N/8 of them): (a) the whole shard, translated and planned against the objects already on the controller
//! (what a full sync does per shard); (b) what the reconciler does for an edit: translate the edited host only,
//! assemble the shard's parent from the hosts' fragments, and plan the parent and that host's objects.
//!
//! Run: `cargo bench --bench l7_part`. Env: AKO_BENCH_INGRESSES (5000), AKO_BENCH_ITERATIONS (30).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;
use std::time::Instant;

use ako::core::index::ObjKey;
use ako::core::l4::{MemberMode, Placement, ServiceInput};
use ako::core::l7::{self, L7Input, Part, ShardSize, TlsPair};
use ako::core::plan::{self, Desired, Existing, Observed};
use k8s_openapi::api::networking::v1::Ingress;
use support::reconcile::{ingress, service, tls_pair, tls_secret_name};

fn main() {
    let n: usize = support::env_num("AKO_BENCH_INGRESSES", 5000);
    let iterations: usize = support::env_num("AKO_BENCH_ITERATIONS", 30);
    let cfg = ako::core::config::Config {
        cluster_name: "bench".into(),
        dns_domains: vec!["avi.jarvis.lab".into()],
        ..Default::default()
    };
    let place = Placement {
        rhi: Default::default(),
        cluster_name: "bench".into(),
        tenant: "admin".into(),
        cloud: "Default-Cloud".into(),
        se_group: "vmug-se-group".into(),
        vrf: "global".into(),
        vip_network: Some(("bench-vip".into(), "10.200.0.0/16".parse().ok())),
        member_mode: MemberMode::ClusterIp,
        license_tier: Default::default(),
        vip_family: Default::default(),
    };
    let pair: TlsPair = tls_pair();
    let part = l7::part_of("ing-0.avi.jarvis.lab", ShardSize::Large);
    let members: Vec<Ingress> = (0..n)
        .filter(|i| l7::part_of(&format!("ing-{i}.avi.jarvis.lab"), ShardSize::Large) == part)
        .map(|i| ingress(i, n, "/exact"))
        .collect();
    let services: Vec<_> = (0..n).map(service).collect();
    let inputs: Vec<ServiceInput<'_>> = services
        .iter()
        .map(|s| ServiceInput {
            service: s,
            endpoints: &[],
        })
        .collect();
    let secrets: BTreeMap<ObjKey, Option<TlsPair>> = (0..n)
        .filter_map(tls_secret_name)
        .map(|s| (ObjKey::new("bench", s), Some(pair.clone())))
        .collect();
    let translate = |ings: &[Ingress], part: &Part| {
        let refs: Vec<&Ingress> = ings.iter().collect();
        let input = L7Input {
            classes: None,
            namespace_infra: None,
            ingresses: &refs,
            services: &inputs,
            nodes: &[],
            secrets: &secrets,
            default_cert: None,
            part: Some(part),
            rules: None,
        };
        l7::translate(&input, &cfg, &place, ShardSize::Large)
    };
    // What the controller holds: the shard as translated, as stored objects.
    let existing: Vec<Existing> = translate(&members, &part)
        .objects
        .into_iter()
        .enumerate()
        .map(|(i, d)| Existing {
            kind: d.kind,
            uuid: format!("{}-{i}", d.kind.obj_type()),
            name: d.name,
            created_by: Some("ako-bench".into()),
            body: d.body,
        })
        .collect();
    let observed = Observed {
        objects: existing,
        complete: true,
    };
    let mut edited = members.clone();
    let (mut t_translate, mut t_plan) = (Vec::new(), Vec::new());
    let mut steps = 0;
    for it in 0..iterations {
        edited[0] = ingress(0, n, &format!("/exact-{it}"));
        let t = Instant::now();
        let d = translate(&edited, &part);
        t_translate.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let s = plan::plan(&d.objects, &observed, "ako-bench");
        t_plan.push(t.elapsed().as_secs_f64() * 1000.0);
        steps = black_box(s).len();
    }
    // (b) The incremental path: fragments of every host kept, the edited host translated again.
    let (mut fragments, _) = {
        let refs: Vec<&Ingress> = members.iter().collect();
        let input = L7Input {
            classes: None,
            namespace_infra: None,
            ingresses: &refs,
            services: &inputs,
            nodes: &[],
            secrets: &secrets,
            default_cert: None,
            part: Some(&part),
            rules: None,
        };
        l7::translate_hosts(&input, &cfg, &place, ShardSize::Large, None)
    };
    let edited_host = "ing-0.avi.jarvis.lab".to_string();
    let only: BTreeSet<String> = [edited_host.clone()].into();
    let (mut t_incr, mut incr_steps) = (Vec::new(), 0);
    for it in 0..iterations {
        let one = [ingress(0, n, &format!("/exact-{it}"))];
        let t = Instant::now();
        let refs: Vec<&Ingress> = one.iter().collect();
        let input = L7Input {
            classes: None,
            namespace_infra: None,
            ingresses: &refs,
            services: &inputs,
            nodes: &[],
            secrets: &secrets,
            default_cert: None,
            part: Some(&part),
            rules: None,
        };
        let (mut new, _) = l7::translate_hosts(&input, &cfg, &place, ShardSize::Large, Some(&only));
        fragments.retain(|f| f.host != edited_host);
        let host_objects: Vec<Desired> = new.iter().flat_map(|f| f.objects.clone()).collect();
        fragments.append(&mut new);
        let serving: Vec<l7::Serving<'_>> = fragments
            .iter()
            .filter(|f| !f.objects.is_empty())
            .map(|f| l7::Serving {
                host: f.host.as_str(),
                policy: f.parent_policy.as_deref(),
                aliases: &f.aliases,
            })
            .collect();
        let mut objects = l7::assemble_parent(&cfg, &place, &part, &serving);
        objects.extend(host_objects);
        let names: BTreeSet<(&'static str, &str)> = objects
            .iter()
            .map(|o| (o.kind.obj_type(), o.name.as_str()))
            .collect();
        let scoped = Observed {
            objects: observed
                .objects
                .iter()
                .filter(|e| names.contains(&(e.kind.obj_type(), e.name.as_str())))
                .cloned()
                .collect(),
            complete: true,
        };
        let s = plan::plan(&objects, &scoped, "ako-bench");
        t_incr.push(t.elapsed().as_secs_f64() * 1000.0);
        incr_steps = black_box(s).len();
    }
    let hosts: BTreeSet<String> = members
        .iter()
        .filter_map(|i| i.spec.as_ref()?.rules.as_ref()?.first()?.host.clone())
        .collect();
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    println!(
        "== one shard of {n} Ingresses (LARGE): {} Ingresses, {} hosts, {} objects",
        members.len(),
        hosts.len(),
        observed.objects.len()
    );
    println!(
        "   (a) whole shard: translate p50 {:.2} ms, plan p50 {:.2} ms ({steps} steps for one edited path)",
        med(&mut t_translate),
        med(&mut t_plan)
    );
    println!(
        "   (b) one host again, parent assembled, parent and host planned: p50 {:.2} ms ({incr_steps} steps)",
        med(&mut t_incr)
    );
}
