//! End-to-end: real kube-apiserver 1.20.2 + etcd, `ako webhook` registered through webhook-config/, and real
//! `kubectl apply`. One control plane and one webhook (fqdnReusePolicy Strict) are shared by the tests of this
//! file; each test works in its own namespaces.

mod common;

use std::sync::OnceLock;

use common::{Cluster, Webhook};

struct Env {
    cluster: Cluster,
    webhook: Webhook,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let cluster = Cluster::start();
        // AKO's CRDs first, so the webhook's watches of HostRules find the kind at once.
        let crds = common::repo().join("charts/ako/crds");
        cluster.must(&["apply", "-f", &crds.display().to_string()], None);
        cluster.must(
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd/hostrules.ako.vmware.com",
                "crd/httprules.ako.vmware.com",
                "crd/l4rules.ako.vmware.com",
                "crd/aviinfrasettings.ako.vmware.com",
            ],
            None,
        );
        let webhook = Webhook::start(
            &cluster,
            &[
                "--dns-domain=avi.jarvis.lab",
                "--fqdn-reuse-policy=Strict",
                "--expose-claims",
                "--vip-network-list=[{\"networkName\":\"dpg-sedatapath-18\",\"cidr\":\"10.10.18.0/26\"}]",
            ],
        );
        Env { cluster, webhook }
    })
}

fn ingress(ns: &str, name: &str, class: &str, host: &str, path: &str) -> String {
    format!(
        r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: {name}, namespace: {ns}}}
spec:
  ingressClassName: {class}
  rules:
  - host: {host}
    http:
      paths:
      - path: {path}
        pathType: Prefix
        backend: {{service: {{name: web, port: {{number: 80}}}}}}
"#
    )
}

#[test]
fn demo_service_and_legacy_ingress_are_admitted_and_the_class_is_rewritten() {
    let e = env();
    let demo =
        std::fs::read_to_string(common::repo().join("examples/demo/demo.yaml")).expect("demo.yaml");
    let (ok, out, err) = e.cluster.apply(&demo, &[]);
    assert!(ok, "demo rejected: {out}{err}");
    let class = e.cluster.must(
        &[
            "get",
            "ingress",
            "-n",
            "vmug",
            "hackazon",
            "-o",
            "jsonpath={.spec.ingressClassName}",
        ],
        None,
    );
    assert_eq!(class, "avi-lb");
    let legacy = e.cluster.must(
        &[
            "get",
            "ingress",
            "-n",
            "vmug",
            "hackazon",
            "-o",
            "jsonpath={.metadata.annotations.kubernetes\\.io/ingress\\.class}",
        ],
        None,
    );
    assert_eq!(legacy, "", "the legacy annotation is still stored");
    let svc_type = e.cluster.must(
        &[
            "get",
            "service",
            "-n",
            "vmug",
            "avisvc-lb",
            "-o",
            "jsonpath={.spec.type}",
        ],
        None,
    );
    assert_eq!(svc_type, "LoadBalancer");
    // Re-applying the same manifests is a no-op, not a denial.
    let (ok, out, err) = e.cluster.apply(&demo, &[]);
    assert!(ok, "re-apply rejected: {out}{err}");
}

#[test]
fn a_host_outside_the_delegated_subdomain_is_denied_with_an_actionable_message() {
    let e = env();
    e.cluster.namespace("e2e-outside");
    let (ok, _, err) = e.cluster.apply(
        &ingress("e2e-outside", "shop", "avi-lb", "shop.example.com", "/"),
        &[],
    );
    assert!(!ok, "an outside host was admitted");
    assert!(
        err.contains(
            "admission webhook \"ingress.ako.vmware.com\" denied the request: host \"shop.example.com\" (spec.rules[0].host) is outside the delegated DNS subdomains [avi.jarvis.lab]; use a host ending in .avi.jarvis.lab"
        ),
        "kubectl said: {err}"
    );
    let got = e
        .cluster
        .kubectl(&["get", "ingress", "-n", "e2e-outside", "shop"], None);
    assert!(!got.status.success(), "a denied Ingress was stored");
}

#[test]
fn a_host_hijack_across_namespaces_is_denied_under_strict_naming_the_owner() {
    let e = env();
    e.cluster.namespace("e2e-owner");
    e.cluster.namespace("e2e-thief");
    let (ok, out, err) = e.cluster.apply(
        &ingress("e2e-owner", "store", "avi-lb", "store.avi.jarvis.lab", "/"),
        &[],
    );
    assert!(ok, "owner rejected: {out}{err}");
    e.webhook
        .wait_claim("store.avi.jarvis.lab", "e2e-owner/store");
    let (ok, _, err) = e.cluster.apply(
        &ingress(
            "e2e-thief",
            "store",
            "avi-lb",
            "store.avi.jarvis.lab",
            "/checkout",
        ),
        &[],
    );
    assert!(!ok, "hijack admitted");
    assert!(
        err.contains("belongs to namespace \"e2e-owner\" (Ingress e2e-owner/store"),
        "kubectl said: {err}"
    );
    // The owner's namespace may add paths on the same host.
    let (ok, out, err) = e.cluster.apply(
        &ingress(
            "e2e-owner",
            "store-api",
            "avi-lb",
            "store.avi.jarvis.lab",
            "/api",
        ),
        &[],
    );
    assert!(ok, "owner namespace rejected: {out}{err}");
}

#[test]
fn server_side_dry_run_gets_the_same_answers_and_stores_nothing() {
    let e = env();
    e.cluster.namespace("e2e-dry");
    let (ok, _, err) = e.cluster.apply(
        &ingress("e2e-dry", "shop", "avi-lb", "shop.example.com", "/"),
        &["--dry-run=server"],
    );
    assert!(!ok);
    assert!(
        err.contains("is outside the delegated DNS subdomains"),
        "kubectl said: {err}"
    );
    let legacy = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: legacy, namespace: e2e-dry, annotations: {kubernetes.io/ingress.class: avi}}\nspec: {rules: [{host: legacy.avi.jarvis.lab}]}\n";
    let out = e.cluster.must(
        &[
            "apply",
            "--dry-run=server",
            "-o",
            "jsonpath={.spec.ingressClassName}",
            "-f",
            "-",
        ],
        Some(legacy),
    );
    assert_eq!(out, "avi-lb", "the mutation shows in the dry-run result");
    let got = e
        .cluster
        .kubectl(&["get", "ingress", "-n", "e2e-dry", "legacy"], None);
    assert!(!got.status.success(), "dry run stored an object");
}

#[test]
fn an_update_that_moves_a_host_outside_is_denied_and_the_stored_object_is_kept() {
    let e = env();
    e.cluster.namespace("e2e-update");
    e.cluster.admitted(
        &ingress("e2e-update", "web", "avi-lb", "web.avi.jarvis.lab", "/"),
        &[],
    );
    let (ok, _, err) = e.cluster.apply(
        &ingress("e2e-update", "web", "avi-lb", "web.example.org", "/"),
        &[],
    );
    assert!(!ok, "update admitted");
    assert!(
        err.contains("host \"web.example.org\" (spec.rules[0].host) is outside"),
        "kubectl said: {err}"
    );
    let host = e.cluster.must(
        &[
            "get",
            "ingress",
            "-n",
            "e2e-update",
            "web",
            "-o",
            "jsonpath={.spec.rules[0].host}",
        ],
        None,
    );
    assert_eq!(host, "web.avi.jarvis.lab");
}

#[test]
fn ingresses_of_other_classes_pass_untouched() {
    let e = env();
    e.cluster.namespace("e2e-other");
    let err = e.cluster.admitted(
        &ingress("e2e-other", "nginx", "nginx", "anything.example.com", "/"),
        &[],
    );
    assert!(!err.contains("Warning"), "unexpected warnings: {err}");
    let legacy_other = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: legacy-nginx, namespace: e2e-other, annotations: {kubernetes.io/ingress.class: nginx}}\nspec: {rules: [{host: x.example.com}]}\n";
    e.cluster.admitted(legacy_other, &[]);
    let class = e.cluster.must(
        &[
            "get",
            "ingress",
            "-n",
            "e2e-other",
            "legacy-nginx",
            "-o",
            "jsonpath={.spec.ingressClassName}",
        ],
        None,
    );
    assert_eq!(class, "", "another controller's Ingress was mutated");
}

#[test]
fn a_load_balancer_service_asking_for_a_vip_outside_the_vip_network_is_denied() {
    let e = env();
    e.cluster.namespace("e2e-svc");
    let svc = |name: &str, ip: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: e2e-svc, annotations: {{ako.vmware.com/load-balancer-ip: '{ip}'}}}}\nspec: {{type: LoadBalancer, ports: [{{port: 80}}]}}\n"
        )
    };
    let (ok, _, err) = e.cluster.apply(&svc("far", "192.0.2.10"), &[]);
    assert!(!ok);
    assert!(err.contains("admission webhook \"service.ako.vmware.com\" denied the request: requested VIP 192.0.2.10"), "{err}");
    assert!(
        err.contains("outside the VIP networks [10.10.18.0/26]"),
        "{err}"
    );
    e.cluster.admitted(&svc("near", "10.10.18.7"), &[]);
    let warn_name = "a-very-long-service-name-for-the-flat-mode-check";
    let (ok, out, err) = e.cluster.apply(&format!("apiVersion: v1\nkind: Service\nmetadata: {{name: {warn_name}, namespace: e2e-svc, annotations: {{external-dns.alpha.kubernetes.io/hostname: 'x.example.com'}}}}\nspec: {{type: LoadBalancer, ports: [{{port: 80}}]}}\n"), &[]);
    assert!(!ok, "{out}");
    assert!(err.contains("host \"x.example.com\" (metadata.annotations[external-dns.alpha.kubernetes.io/hostname]) is outside"), "{err}");
}

#[test]
fn a_vip_requested_by_a_service_in_another_namespace_is_denied_unless_shared() {
    let e = env();
    e.cluster.namespace("e2e-vip-a");
    e.cluster.namespace("e2e-vip-b");
    let svc = |ns: &str, name: &str, extra: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}{extra}}}\nspec: {{type: LoadBalancer, loadBalancerIP: 10.10.18.20, ports: [{{port: 53, protocol: UDP}}]}}\n"
        )
    };
    e.cluster.admitted(&svc("e2e-vip-a", "dns", ""), &[]);
    e.webhook.wait_vip_claim("10.10.18.20", "e2e-vip-a/dns");
    let (ok, _, err) = e.cluster.apply(&svc("e2e-vip-b", "grab", ""), &[]);
    assert!(!ok, "a second Service got the same VIP");
    assert!(
        err.contains("admission webhook \"service.ako.vmware.com\" denied the request: VIP 10.10.18.20 is already requested by Service e2e-vip-a/dns"),
        "{err}"
    );
    assert!(err.contains("ako.vmware.com/enable-shared-vip"), "{err}");
    // Sharing is opt-in on both sides: with the same key on each, the second Service is admitted.
    let shared = ", annotations: {ako.vmware.com/enable-shared-vip: dns}";
    e.cluster.admitted(&svc("e2e-vip-a", "dns", shared), &[]);
    e.webhook
        .wait_body("/claims?vip=10.10.18.20", r#""sharedVip":"dns""#);
    e.cluster
        .admitted(&svc("e2e-vip-a", "dns-tcp", shared), &[]);
}

#[test]
fn missing_backend_service_is_a_warning_not_a_denial() {
    let e = env();
    e.cluster.namespace("e2e-warn");
    let err = e.cluster.admitted(
        &ingress("e2e-warn", "early", "avi-lb", "early.avi.jarvis.lab", "/"),
        &[],
    );
    assert!(
        err.contains("Warning: backend Service \"web\" not found in \"e2e-warn\""),
        "kubectl said: {err}"
    );
}

fn host_rule(ns: &str, name: &str, fqdn: &str) -> String {
    format!(
        "apiVersion: ako.vmware.com/v1beta1\nkind: HostRule\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  virtualhost:\n    fqdn: {fqdn}\n    useRegex: true\n"
    )
}

#[test]
fn host_rules_and_http_rules_are_reviewed_at_apply_time_with_the_reason() {
    let e = env();
    for ns in ["hr-a", "hr-b"] {
        e.cluster.must(&["create", "namespace", ns], None);
    }
    let (ok, out, err) = e.cluster.apply(
        &ingress("hr-a", "shop", "avi-lb", "hr-shop.avi.jarvis.lab", "/cart"),
        &[],
    );
    assert!(ok, "{out}{err}");
    // The first HostRule for the FQDN is admitted; a field ako does not apply yet is a warning kubectl prints.
    let (ok, out, err) = e
        .cluster
        .apply(&host_rule("hr-a", "first", "hr-shop.avi.jarvis.lab"), &[]);
    assert!(ok, "{out}{err}");
    assert!(err.contains("useRegex"), "warning expected: {err}");
    // kubectl get hr: AKO's short name and columns.
    let got = e.cluster.must(&["get", "hr", "-n", "hr-a"], None);
    assert!(
        got.contains("HOST") && got.contains("hr-shop.avi.jarvis.lab"),
        "{got}"
    );

    // Eventually the index holds it; then a second HostRule for the FQDN is denied, naming the holder.
    let second = host_rule("hr-b", "second", "hr-shop.avi.jarvis.lab");
    let mut last = String::new();
    for _ in 0..100 {
        let (ok, _, err) = e.cluster.apply(&second, &["--dry-run=server"]);
        if !ok {
            last = err;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        last.contains("admission webhook \"rules.ako.vmware.com\" denied the request: duplicate fqdn hr-shop.avi.jarvis.lab found in hr-a/first"),
        "{last}"
    );
    // A host outside the delegated subdomains.
    let (ok, _, err) = e
        .cluster
        .apply(&host_rule("hr-b", "outside", "shop.example.org"), &[]);
    assert!(!ok);
    assert!(
        err.contains("outside the delegated DNS subdomains"),
        "{err}"
    );
    // An HTTPRule for a host no Ingress of its namespace serves, and a target selecting none of its paths.
    let http = |ns: &str, target: &str| {
        format!(
            "apiVersion: ako.vmware.com/v1beta1\nkind: HTTPRule\nmetadata: {{name: pools, namespace: {ns}}}\nspec:\n  fqdn: hr-shop.avi.jarvis.lab\n  paths:\n  - target: {target}\n    loadBalancerPolicy: {{algorithm: LB_ALGORITHM_ROUND_ROBIN}}\n"
        )
    };
    let (ok, _, err) = e.cluster.apply(&http("hr-b", "/cart"), &[]);
    assert!(!ok);
    assert!(
        err.contains("no Ingress in namespace \"hr-b\" serves host"),
        "{err}"
    );
    let (ok, _, err) = e.cluster.apply(&http("hr-a", "/checkout"), &[]);
    assert!(!ok);
    assert!(err.contains("selects no path"), "{err}");
    let (ok, out, err) = e.cluster.apply(&http("hr-a", "/"), &[]);
    assert!(ok, "{out}{err}");
    // An L4Rule's load balancing checked as AKO checks it, at apply time.
    let l4 = "apiVersion: ako.vmware.com/v1alpha2\nkind: L4Rule\nmetadata: {name: fast, namespace: hr-a}\nspec:\n  backendProperties:\n  - {port: 80, protocol: TCP, lbAlgorithm: LB_ALGORITHM_CONSISTENT_HASH}\n";
    let (ok, _, err) = e.cluster.apply(l4, &[]);
    assert!(!ok);
    assert!(
        err.contains(
            "lbAlgorithmHash must be specified when lbAlgorithm is \"LB_ALGORITHM_CONSISTENT_HASH\""
        ),
        "{err}"
    );
    // An AviInfraSetting (cluster scoped): AKO's checks at apply time, fields not applied yet as warnings.
    let infra = |network: &str| {
        format!(
            "apiVersion: ako.vmware.com/v1beta1\nkind: AviInfraSetting\nmetadata: {{name: blue}}\nspec:\n  seGroup: {{name: Default-Group}}\n  network: {network}\n  nsxSettings: {{t1lr: /infra/tier1/t1}}\n"
        )
    };
    let (ok, _, err) = e.cluster.apply(&infra("{bgpPeerLabels: [peer1]}"), &[]);
    assert!(!ok);
    assert!(
        err.contains("admission webhook \"infra.ako.vmware.com\" denied the request: BGPPeerLabels cannot be set if EnableRhi is false."),
        "{err}"
    );
    let (ok, _, err) = e.cluster.apply(
        &infra("{vipNetworks: [{networkName: infra-net, cidr: 10.10.10.0/33}]}"),
        &[],
    );
    assert!(!ok);
    assert!(
        err.contains("invalid CIDR configuration 10.10.10.0/33 detected for networkName infra-net"),
        "{err}"
    );
    let (ok, out, err) = e
        .cluster
        .apply(&infra("{enableRhi: true, bgpPeerLabels: [peer1]}"), &[]);
    assert!(ok, "{out}{err}");
    assert!(err.contains("nsxSettings"), "warning expected: {err}");
    // The API server's own schema (the CRD) refuses what is not AKO's: an unknown algorithm.
    let (ok, _, err) = e
        .cluster
        .apply(&http("hr-a", "/").replace("ROUND_ROBIN", "BEST"), &[]);
    assert!(!ok);
    assert!(
        err.contains("Unsupported value") || err.contains("supported values"),
        "{err}"
    );
}
