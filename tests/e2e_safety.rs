//! End-to-end safety: a real kube-apiserver 1.20.2 (tests/common/lab.rs), `ako emulator` and `ako controller` or
//! `ako webhook` processes. What ako deletes when an RBAC right goes missing, which replica writes when a leader
//! is paused past its lease, and which writes still work while the webhook is down. The emulator's request
//! journal (`/admin/requests`) is the evidence: every request with its object, status and User-Agent (ako's pod).

mod common;
#[path = "common/kubelet.rs"]
#[allow(dead_code)]
mod kubelet;
#[path = "common/lab.rs"]
mod lab;

use std::time::Duration;

use common::{Cluster, Webhook};
use lab::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_get_on_secrets_a_restarted_ako_keeps_the_tls_shard_names_the_secret_and_converges_with_no_deletion()
 {
    let lab = Lab::start().await;
    lab.namespace("vmug");
    lab.namespace("shop");
    lab.apply(DEMO_YAML);
    lab.apply(SHOP_YAML);
    lab.shop_secret();
    let mut first = lab.controller("ako-0", &[], &[]);
    let vip = lab
        .wait_ingress_vip("shop", "shop", "shop.avi.jarvis.lab")
        .await;
    lab.wait("the shop's SNI child", WAIT, async || {
        lab.object("virtualservice", "veba-of--shop.avi.jarvis.lab")
            .await
    })
    .await;
    lab.settled_counters().await;
    let before = lab.owned_uuids().await;
    assert!(first.stop(), "ako controller did not stop on SIGTERM");

    // ako restarts under an identity that may list and watch Secrets but not get them.
    // Everything ako needs, with Secrets listed and watched but never read (get).
    lab.apply(&ako_rbac(
        "ako-nosecret",
        Some("[get, list, watch]"),
        Some("[list, watch]"),
    ));
    let kubeconfig = lab.service_account_kubeconfig("ako-nosecret").await;
    let kubeconfig = kubeconfig.display().to_string();
    let denied = lab.cluster.kubectl(
        &[
            "--kubeconfig",
            &kubeconfig,
            "get",
            "secret",
            "-n",
            "shop",
            "shop-tls",
        ],
        None,
    );
    assert!(!denied.status.success(), "the identity may read the Secret");
    let seq = lab.request_seq().await;
    let ctl = lab.controller("ako-1", &[], &[("KUBECONFIG", kubeconfig.as_str())]);
    lab.wait_log(&ctl, "full sync done", 1, WAIT).await;
    let events = lab
        .events("Ingress", "shop", "shop", "InputUnreadable")
        .await;
    let note = events[0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        note.contains("Secret shop/shop-tls") && note.contains("forbidden"),
        "{note}"
    );
    assert_eq!(
        lab.deletes_since(seq).await,
        Vec::<String>::new(),
        "nothing deleted"
    );
    assert_eq!(lab.owned_uuids().await, before, "every object kept");
    assert_eq!(
        lab.ingress_status("shop", "shop").await,
        vec![(
            Some(vip.to_string()),
            Some("shop.avi.jarvis.lab".to_string())
        )],
        "the address is unchanged"
    );

    // The right comes back: the part is read on its next retry and converges with zero deletions.
    lab.apply(&rbac_grant(
        "ako-nosecret",
        "ako-nosecret-get",
        "secrets",
        "[get]",
    ));
    lab.wait_log(&ctl, "is readable again", 1, Duration::from_secs(90))
        .await;
    lab.settled_counters().await;
    assert_eq!(lab.deletes_since(seq).await, Vec::<String>::new());
    assert_eq!(lab.owned_uuids().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_paused_past_its_lease_writes_nothing_after_it_resumes_and_the_replicas_never_write_at_once()
 {
    let lab = Lab::start().await;
    lab.namespace("vmug");
    lab.apply(&demo_service("vmug", "avisvc-lb"));
    // The Lease lives in the controller's namespace.
    let env = [("POD_NAMESPACE", "default")];
    let a = lab.controller("ako-a", &["--leader-election"], &env);
    lab.wait_vip("vmug", "avisvc-lb").await;
    lab.wait_log(&a, "acquired leadership", 1, WAIT).await;
    let b = lab.controller("ako-b", &["--leader-election"], &env);
    lab.wait_log(&b, "leader election started", 1, WAIT).await;

    // The leader stops (SIGSTOP) past its lease; the other takes over and changes things.
    a.signal("STOP");
    lab.wait_log(&b, "acquired leadership", 1, Duration::from_secs(60))
        .await;
    lab.apply(&demo_service("vmug", "while-paused"));
    lab.wait_vip("vmug", "while-paused").await;
    lab.kubectl(&["delete", "service", "-n", "vmug", "avisvc-lb"]);
    lab.wait("the deleted Service's objects gone", WAIT, async || {
        lab.object("virtualservice", &vs_name("vmug", "avisvc-lb"))
            .await
            .is_none()
            .then_some(())
    })
    .await;

    // The old leader resumes: it notices it lost the lease and writes nothing.
    let resumed = lab.request_seq().await;
    a.signal("CONT");
    lab.wait_log(&a, "lost leadership", 1, WAIT).await;
    lab.apply(&demo_service("vmug", "after-resume"));
    lab.wait_vip("vmug", "after-resume").await;
    lab.settled_counters().await;
    let journal = lab.requests(0).await;
    let writes_by = |who: &str| -> Vec<&ako::emulator::requests::RequestRecord> {
        journal
            .iter()
            .filter(|r| r.is_write() && r.agent.contains(&format!("({who}")))
            .collect()
    };
    let a_after: Vec<String> = writes_by("ako-a")
        .into_iter()
        .filter(|r| r.seq >= resumed)
        .map(|r| {
            format!(
                "{} {} {}",
                r.method,
                r.kind,
                r.name.clone().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(a_after, Vec::<String>::new(), "the resumed replica wrote");
    let last_a = writes_by("ako-a").last().map(|r| r.at_ms);
    let first_b = writes_by("ako-b").first().map(|r| r.at_ms);
    assert!(
        first_b.is_some(),
        "the new leader wrote: {:?}",
        journal
            .iter()
            .map(|r| &r.agent)
            .collect::<std::collections::BTreeSet<_>>()
    );
    assert!(
        last_a < first_b,
        "every write of the first leader came before the second's first: {last_a:?} / {first_b:?}"
    );
    let lease: serde_json::Value = serde_json::from_str(&lab.kubectl(&[
        "get",
        "lease",
        "-n",
        "default",
        "ako-lease-lock",
        "-o",
        "json",
    ]))
    .expect("lease");
    assert!(
        lease["spec"]["holderIdentity"]
            .as_str()
            .is_some_and(|h| h.starts_with("ako-b")),
        "{lease}"
    );
}

#[test]
fn while_the_webhook_is_down_ordinary_services_and_load_balancers_are_still_written_and_ingresses_wait()
 {
    let cluster = Cluster::start();
    let mut webhook = Webhook::start(
        &cluster,
        &[
            "--dns-domain=avi.jarvis.lab",
            "--vip-network-list=[{\"networkName\":\"dpg-sedatapath-18\",\"cidr\":\"10.10.18.0/26\"}]",
        ],
    );
    cluster.must(&["create", "namespace", "shop"], None);
    let svc = |name: &str, ty: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: shop}}\nspec: {{type: {ty}, ports: [{{port: 80}}]}}\n"
        )
    };
    let ing = |name: &str, class: &str| {
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  ingressClassName: {class}\n  rules:\n  - host: {name}.avi.jarvis.lab\n    http:\n      paths:\n      - {{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}\n"
        )
    };
    // Up: an Ingress outside the rules is denied (the webhook answers).
    let (ok, _, err) = cluster.apply(
        &ing("up", "avi-lb").replace("up.avi.jarvis.lab", "up.example.com"),
        &[],
    );
    assert!(
        !ok && err.contains("outside the delegated DNS subdomains"),
        "{err}"
    );

    webhook.stop();
    // Down, on an API server without matchConditions (1.20): Services are reviewed with failurePolicy Ignore, so
    // every Service, ClusterIP or LoadBalancer, is still written; Ingresses are reviewed with Fail, so they wait
    // for ako (whatever their class: before 1.28 the webhook cannot tell them apart).
    let writes = [
        ("ClusterIP Service", svc("plain", "ClusterIP"), true),
        ("LoadBalancer Service", svc("lb", "LoadBalancer"), true),
        ("Ingress of ako's class", ing("mine", "avi-lb"), false),
        ("Ingress of another class", ing("theirs", "nginx"), false),
    ];
    for (what, yaml, expect) in writes {
        let (ok, out, err) = cluster.apply(&yaml, &[]);
        assert_eq!(ok, expect, "{what}: {out}{err}");
        if !ok {
            assert!(
                err.contains("failed calling webhook"),
                "{what}: the API server names the webhook: {err}"
            );
        }
    }
}
