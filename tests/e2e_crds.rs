//! End-to-end tests of AKO's custom resources: a real kube-apiserver 1.20.2 + etcd, `ako emulator` and
//! `ako controller` as processes. ako installs its CRDs itself at start; AKO's own documentation examples
//! (tests/data/ako/crds/) are applied unchanged with kubectl, and what they say is checked on the emulator's
//! objects and in the rules' status. Pod IPs are data only: nothing connects to them.

mod common;
#[path = "common/lab.rs"]
mod lab;

use lab::*;
use reqwest::Method;
use serde_json::{Value, json};

async fn create(lab: &Lab, obj_type: &str, body: Value) {
    let res = lab
        .avi
        .send(Method::POST, &format!("/api/{obj_type}"), Some(&body))
        .await
        .expect("POST");
    assert_eq!(
        res.status,
        201,
        "{obj_type}: {}",
        String::from_utf8_lossy(&res.body)
    );
}

/// AKO's examples use hosts in region1.com and aliases bar.com and baz.com: the controller's DNS profile
/// delegates them too (before ako starts, so ako reads every subdomain from it).
async fn delegate_region1(lab: &Lab) {
    delegate(lab, &["region1.com", "bar.com", "baz.com"]).await;
}

/// Adds subdomains to the controller's DNS profile.
async fn delegate(lab: &Lab, subdomains: &[&str]) {
    let page: Value = lab
        .avi
        .get_json("/api/ipamdnsproviderprofile?name=dns-jarvis")
        .await
        .expect("the DNS profile");
    let mut profile = page["results"][0].clone();
    let uuid = profile["uuid"].as_str().expect("uuid").to_string();
    let domains = profile["internal_profile"]["dns_service_domain"]
        .as_array_mut()
        .expect("domains");
    for d in subdomains {
        domains.push(json!({"domain_name": d, "pass_through": true}));
    }
    let res = lab
        .avi
        .send(
            Method::PUT,
            &format!("/api/ipamdnsproviderprofile/{uuid}"),
            Some(&profile),
        )
        .await
        .expect("PUT");
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
}

/// The controller objects AKO's HostRule example names, made on the controller first (as its docs say).
async fn docs_objects(lab: &Lab) {
    for name in ["avi-ssl-key-cert", "avi-ssl-key-cert2"] {
        let ca = ako::certs::generate_ca("corp-ca", 30).expect("ca");
        let leaf = ca
            .issue(&["foo.region1.com".into()], &[], 30)
            .expect("leaf");
        create(
            lab,
            "sslkeyandcertificate",
            json!({"name": name, "key": leaf.key_pem, "certificate": {"certificate": leaf.cert_pem}}),
        )
        .await;
    }
    create(lab, "sslprofile", json!({"name": "avi-ssl-profile"})).await;
    create(
        lab,
        "httppolicyset",
        json!({"name": "avi-secure-policy-ref"}),
    )
    .await;
    create(
        lab,
        "vsdatascriptset",
        json!({"name": "avi-datascript-redirect-app1"}),
    )
    .await;
    create(lab, "wafpolicy", json!({"name": "avi-waf-policy"})).await;
    create(
        lab,
        "applicationprofile",
        json!({"name": "avi-app-ref", "type": "APPLICATION_PROFILE_TYPE_HTTP"}),
    )
    .await;
    create(
        lab,
        "networksecuritypolicy",
        json!({"name": "avi-network-security-policy-ref"}),
    )
    .await;
    create(lab, "icapprofile", json!({"name": "avi-icap-ref"})).await;
    create(
        lab,
        "analyticsprofile",
        json!({"name": "avi-analytics-ref"}),
    )
    .await;
    create(
        lab,
        "errorpageprofile",
        json!({"name": "avi-errorpage-ref"}),
    )
    .await;
}

fn rule_status(lab: &Lab, kind: &str, ns: &str, name: &str) -> (String, String) {
    let out = lab.kubectl(&["get", kind, "-n", ns, name, "-o", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap_or_default();
    (
        v["status"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        v["status"]["error"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// Waits until the API server serves a CRD (ako installs them at start).
async fn wait_crd(lab: &Lab, name: &str) {
    lab.wait(&format!("the CRD {name}"), WAIT, async || {
        let out = lab
            .cluster
            .kubectl(&["get", "crd", name, "-o", "name"], None);
        out.status.success().then_some(())
    })
    .await;
}

async fn wait_status(lab: &Lab, kind: &str, ns: &str, name: &str) -> (String, String) {
    lab.wait(&format!("status of {kind} {ns}/{name}"), WAIT, async || {
        let s = rule_status(lab, kind, ns, name);
        (!s.0.is_empty()).then_some(s)
    })
    .await
}

const RED: &str = r#"apiVersion: v1
kind: Namespace
metadata: {name: red}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: red}
spec: {ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: foo, namespace: red}
spec:
  ingressClassName: avi-lb
  rules:
  - host: foo.region1.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn akos_host_rule_example_applies_unchanged_and_sets_what_its_docs_say_then_reverts_when_deleted()
 {
    let lab = Lab::start().await;
    delegate_region1(&lab).await;
    let _ctl = lab.controller("ako-0", &[], &[]);
    // ako installs AKO's CRDs itself.
    wait_crd(&lab, "hostrules.ako.vmware.com").await;
    docs_objects(&lab).await;
    lab.apply(RED);
    let docs = std::fs::read_to_string(common::repo().join("tests/data/ako/crds/hostrule.yaml"))
        .expect("AKO's example");
    lab.apply(&docs);
    assert_eq!(
        wait_status(&lab, "hostrule", "red", "my-host-rule").await,
        ("Accepted".to_string(), String::new())
    );
    // foo.region1.com is insecure in its Ingress: the HostRule's controller certificate makes it an SNI child.
    let child = format!("{CLUSTER_NAME}--foo.region1.com");
    let vs = lab
        .wait(
            "the SNI child with the HostRule's settings",
            WAIT,
            async || {
                lab.object("virtualservice", &child)
                    .await
                    .filter(|v| v.get("waf_policy_ref").is_some())
            },
        )
        .await;
    let refers = |field: &str, kind: &str| {
        vs[field]
            .as_str()
            .is_some_and(|r| r.contains(&format!("/api/{kind}/")))
    };
    for (field, kind) in [
        ("waf_policy_ref", "wafpolicy"),
        ("application_profile_ref", "applicationprofile"),
        ("analytics_profile_ref", "analyticsprofile"),
        ("error_page_profile_ref", "errorpageprofile"),
        ("ssl_profile_ref", "sslprofile"),
    ] {
        assert!(refers(field, kind), "{field}: {vs}");
    }
    assert_eq!(
        vs["ssl_key_and_certificate_refs"].as_array().map(Vec::len),
        Some(2),
        "{vs}"
    );
    assert_eq!(
        vs["vh_domain_name"],
        json!(["foo.region1.com", "bar.com", "baz.com", "foo.com"]),
        "the aliases and the GSLB name are served with the host"
    );
    assert_eq!(vs["enabled"], true);
    assert_eq!(vs["analytics_policy"]["full_client_logs"]["enabled"], true);
    assert_eq!(vs["analytics_policy"]["full_client_logs"]["throttle"], 10);
    assert_eq!(vs["analytics_policy"]["full_client_logs"]["duration"], 30);
    assert_eq!(vs["analytics_policy"]["all_headers"], true);
    assert_eq!(
        vs["vs_datascripts"].as_array().map(Vec::len),
        Some(1),
        "{vs}"
    );
    assert_eq!(
        vs["icap_request_profile_refs"].as_array().map(Vec::len),
        Some(1),
        "{vs}"
    );
    // ako's own policy set at 11, the HostRule's after it (AKO's numbering).
    let indexes: Vec<u64> = vs["http_policies"]
        .as_array()
        .expect("policies")
        .iter()
        .filter_map(|p| p["index"].as_u64())
        .collect();
    assert_eq!(indexes, [11, 17], "{vs}");
    // A network security policy cannot sit on an SNI child (AKO ignores it with the same warning).
    assert!(
        vs.get("network_security_policy_ref")
            .is_none_or(Value::is_null),
        "{vs}"
    );
    let warned = lab.events("Ingress", "red", "foo", "IngressWarning").await;
    assert!(
        warned.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("network security policy"))),
        "{warned:?}"
    );

    // Deleted: the host is served as its Ingress says (plain HTTP on the parent), the SNI child goes.
    lab.kubectl(&["delete", "hostrule", "-n", "red", "my-host-rule"]);
    lab.wait("the SNI child removed", WAIT, async || {
        lab.object("virtualservice", &child)
            .await
            .is_none()
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_rule_sets_its_pools_a_host_rule_naming_a_missing_profile_is_rejected_in_akos_words()
 {
    let lab = Lab::start().await;
    delegate_region1(&lab).await;
    let _ctl = lab.controller("ako-0", &[], &[]);
    wait_crd(&lab, "httprules.ako.vmware.com").await;
    lab.apply(RED);
    lab.apply(
        "apiVersion: ako.vmware.com/v1beta1
kind: HTTPRule
metadata: {name: pools, namespace: red}
spec:
  fqdn: foo.region1.com
  paths:
  - target: /
    loadBalancerPolicy: {algorithm: LB_ALGORITHM_ROUND_ROBIN}
    applicationPersistence: System-Persistence-Http-Cookie
    healthMonitors: [System-HTTP]
---
apiVersion: ako.vmware.com/v1alpha1
kind: HostRule
metadata: {name: strict, namespace: red}
spec:
  virtualhost:
    fqdn: foo.region1.com
    wafPolicy: no-such-waf
",
    );
    assert_eq!(
        wait_status(&lab, "httprule", "red", "pools").await,
        ("Accepted".to_string(), String::new())
    );
    assert_eq!(
        wait_status(&lab, "hostrule", "red", "strict").await,
        (
            "Rejected".to_string(),
            "wafpolicy \"no-such-waf\" not found on controller (spec.virtualhost.wafPolicy)"
                .to_string()
        )
    );
    let rejected = lab.events("HostRule", "red", "strict", "Rejected").await;
    assert!(!rejected.is_empty(), "a Warning Event on the HostRule");
    let pool_name = format!("{CLUSTER_NAME}--foo.region1.com_-red-foo");
    let pool = lab
        .wait("the pool with the HTTPRule's settings", WAIT, async || {
            lab.object("pool", &pool_name)
                .await
                .filter(|p| p["lb_algorithm"] == "LB_ALGORITHM_ROUND_ROBIN")
        })
        .await;
    assert!(
        pool["application_persistence_profile_ref"]
            .as_str()
            .is_some_and(|r| r.contains("applicationpersistenceprofile")),
        "{pool}"
    );
    // The rule removed: the pool goes back to the controller's defaults.
    lab.kubectl(&["delete", "httprule", "-n", "red", "pools"]);
    lab.wait("the pool's defaults back", WAIT, async || {
        lab.object("pool", &pool_name).await.filter(|p| {
            p["lb_algorithm"] == "LB_ALGORITHM_LEAST_CONNECTIONS"
                && p.get("application_persistence_profile_ref")
                    .is_none_or(Value::is_null)
        })
    })
    .await;
}

/// AKO 1.x's HostRule CRD: v1alpha1 only (stored), no revision of ako's.
const OLD_HOSTRULE_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: hostrules.ako.vmware.com}
spec:
  group: ako.vmware.com
  scope: Namespaced
  names: {kind: HostRule, listKind: HostRuleList, plural: hostrules, singular: hostrule, shortNames: [hostrule, hr]}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              virtualhost:
                type: object
                properties:
                  fqdn: {type: string}
                  wafPolicy: {type: string}
          status:
            type: object
            properties:
              status: {type: string}
              error: {type: string}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_v1alpha1_only_crd_is_upgraded_by_ako_at_start_and_its_host_rules_are_kept() {
    let lab = Lab::start().await;
    lab.apply(OLD_HOSTRULE_CRD);
    lab.kubectl(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/hostrules.ako.vmware.com",
    ]);
    lab.apply(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: red}\n---\napiVersion: ako.vmware.com/v1alpha1\nkind: HostRule\nmetadata: {name: old, namespace: red}\nspec:\n  virtualhost: {fqdn: old.avi.jarvis.lab, wafPolicy: System-WAF-Policy}\n",
    );
    let _ctl = lab.controller("ako-0", &[], &[]);
    // ako's copy replaces it: both versions served, v1beta1 stored, no manual step.
    let versions = lab
        .wait("the CRD upgraded to ako's copy", WAIT, async || {
            let out = lab.kubectl(&["get", "crd", "hostrules.ako.vmware.com", "-o", "json"]);
            let v: Value = serde_json::from_str(&out).unwrap_or_default();
            let served: Vec<(String, bool)> = v["spec"]["versions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|x| {
                    (
                        x["name"].as_str().unwrap_or_default().to_string(),
                        x["storage"].as_bool().unwrap_or_default(),
                    )
                })
                .collect();
            (served.len() == 2).then_some(served)
        })
        .await;
    assert_eq!(
        versions,
        [
            ("v1beta1".to_string(), true),
            ("v1alpha1".to_string(), false)
        ]
    );
    // The HostRule made under v1alpha1 is read as v1beta1 and judged.
    let got = lab.kubectl(&[
        "get",
        "hostrules.v1beta1.ako.vmware.com",
        "-n",
        "red",
        "old",
        "-o",
        "name",
    ]);
    assert!(got.contains("old"), "{got}");
    assert_eq!(
        wait_status(&lab, "hostrule", "red", "old").await,
        ("Accepted".to_string(), String::new())
    );
}

async fn seg_uuid(lab: &Lab, name: &str) -> String {
    lab.object("serviceenginegroup", name)
        .await
        .and_then(|g| g["uuid"].as_str().map(str::to_string))
        .expect("SE group")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn akos_infra_setting_example_places_an_annotated_service_and_a_rejected_one_leaves_the_global_placement()
 {
    let lab = Lab::start().await;
    // The SE group AKO's example names, made on the controller first.
    create(
        &lab,
        "serviceenginegroup",
        json!({"name": "compact-se-group", "cloud_ref": "/api/cloud/?name=Default-Cloud"}),
    )
    .await;
    let _ctl = lab.controller("ako-0", &[], &[]);
    wait_crd(&lab, "aviinfrasettings.ako.vmware.com").await;
    // AKO's documentation example, unchanged.
    let example =
        std::fs::read_to_string(common::repo().join("tests/data/ako/crds/aviinfrasetting.yaml"))
            .expect("example");
    lab.apply(&example);
    assert_eq!(
        wait_status(&lab, "aviinfrasetting", "default", "my-infra-setting").await,
        ("Accepted".to_string(), String::new())
    );
    lab.namespace("blue");
    let svc = demo_service("blue", "web").replace(
        "metadata: {name: web, namespace: blue}",
        "metadata: {name: web, namespace: blue, annotations: {aviinfrasetting.ako.vmware.com/name: my-infra-setting}}",
    );
    lab.apply(&svc);
    lab.wait_vip("blue", "web").await;
    let vs_ref = |vs: &Value| vs["se_group_ref"].as_str().unwrap_or_default().to_string();
    let compact = seg_uuid(&lab, "compact-se-group").await;
    let vs = lab
        .wait(
            "the virtual service on the setting's SE group",
            WAIT,
            async || {
                lab.object("virtualservice", &vs_name("blue", "web"))
                    .await
                    .filter(|vs| vs_ref(vs).ends_with(&compact))
            },
        )
        .await;
    assert_eq!(vs["enable_rhi"], true, "{vs}");
    let vsvip = lab
        .object("vsvip", &vs_name("blue", "web"))
        .await
        .expect("vsvip");
    assert_eq!(vsvip["bgp_peer_labels"], json!(["peer1", "peer2"]));

    // A setting naming an SE group the controller lacks: Rejected in AKO's words with a Warning Event, and the
    // Service moved to it is placed by the global settings, told why.
    lab.apply(
        "apiVersion: ako.vmware.com/v1beta1
kind: AviInfraSetting
metadata: {name: missing-seg}
spec:
  seGroup: {name: no-such-group}
",
    );
    assert_eq!(
        wait_status(&lab, "aviinfrasetting", "default", "missing-seg").await,
        (
            "Rejected".to_string(),
            "serviceenginegroup \"no-such-group\" not found on controller (spec.seGroup.name)"
                .to_string()
        )
    );
    // Events of a cluster-scoped object are filed in kube-system (all an API server 1.20 accepts).
    let rejected = lab
        .events("AviInfraSetting", "kube-system", "missing-seg", "Rejected")
        .await;
    assert!(!rejected.is_empty());
    lab.kubectl(&[
        "annotate",
        "service",
        "-n",
        "blue",
        "web",
        "--overwrite",
        "aviinfrasetting.ako.vmware.com/name=missing-seg",
    ]);
    let global = seg_uuid(&lab, "vmug-se-group").await;
    let vs = lab
        .wait(
            "the virtual service back on the global SE group",
            WAIT,
            async || {
                lab.object("virtualservice", &vs_name("blue", "web"))
                    .await
                    .filter(|vs| vs_ref(vs).ends_with(&global))
            },
        )
        .await;
    assert!(vs.get("enable_rhi").is_none_or(|v| v != true), "{vs}");
    let warned = lab.events("Service", "blue", "web", "ServiceWarning").await;
    assert!(
        warned.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("AviInfraSetting \"missing-seg\" is Rejected"))),
        "{warned:?}"
    );
    // Back to the example's setting, then the setting deleted: the global placement again.
    lab.kubectl(&[
        "annotate",
        "service",
        "-n",
        "blue",
        "web",
        "--overwrite",
        "aviinfrasetting.ako.vmware.com/name=my-infra-setting",
    ]);
    lab.wait(
        "the virtual service on the setting's SE group again",
        WAIT,
        async || {
            lab.object("virtualservice", &vs_name("blue", "web"))
                .await
                .filter(|vs| vs_ref(vs).ends_with(&compact))
        },
    )
    .await;
    lab.kubectl(&["delete", "aviinfrasetting", "my-infra-setting"]);
    let vs = lab
        .wait(
            "the global placement after the setting is deleted",
            WAIT,
            async || {
                lab.object("virtualservice", &vs_name("blue", "web"))
                    .await
                    .filter(|vs| vs_ref(vs).ends_with(&global))
            },
        )
        .await;
    assert!(vs.get("enable_rhi").is_none_or(|v| v != true), "{vs}");
    let vsvip = lab
        .object("vsvip", &vs_name("blue", "web"))
        .await
        .expect("vsvip");
    assert!(
        vsvip.get("bgp_peer_labels").is_none_or(Value::is_null),
        "{vsvip}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn akos_http_rule_example_applies_unchanged_and_sets_its_pool_with_a_pki_profile_from_its_ca()
{
    let lab = Lab::start().await;
    // The example's host is in avi.internal; the objects it names are made on the controller first.
    delegate(&lab, &["avi.internal"]).await;
    create(
        &lab,
        "applicationpersistenceprofile",
        json!({"name": "cookie-userid-persistence", "persistence_type": "PERSISTENCE_TYPE_HTTP_COOKIE"}),
    )
    .await;
    for hm in ["my-health-monitor-1", "my-health-monitor-2"] {
        create(
            &lab,
            "healthmonitor",
            json!({"name": hm, "type": "HEALTH_MONITOR_HTTP"}),
        )
        .await;
    }
    create(&lab, "sslprofile", json!({"name": "avi-ssl-profile"})).await;
    let _ctl = lab.controller("ako-0", &[], &[]);
    wait_crd(&lab, "httprules.ako.vmware.com").await;
    lab.apply(
        r#"apiVersion: v1
kind: Namespace
metadata: {name: purple-l7}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: purple-l7}
spec: {ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: foo, namespace: purple-l7}
spec:
  ingressClassName: avi-lb
  rules:
  - host: foo.avi.internal
    http:
      paths:
      - {path: /foo, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#,
    );
    // AKO's documentation example, unchanged.
    let example = std::fs::read_to_string(common::repo().join("tests/data/ako/crds/httprule.yaml"))
        .expect("example");
    lab.apply(&example);
    assert_eq!(
        wait_status(&lab, "httprule", "purple-l7", "my-http-rule").await,
        ("Accepted".to_string(), String::new())
    );
    let pool_name = format!("{CLUSTER_NAME}--foo.avi.internal_foo-purple-l7-foo");
    let pool = lab
        .wait("the pool with the example's settings", WAIT, async || {
            lab.object("pool", &pool_name)
                .await
                .filter(|p| p["lb_algorithm"] == "LB_ALGORITHM_CONSISTENT_HASH")
        })
        .await;
    assert_eq!(
        pool["lb_algorithm_hash"], "LB_ALGORITHM_CONSISTENT_HASH_SOURCE_IP_ADDRESS",
        "{pool}"
    );
    assert_eq!(
        pool["health_monitor_refs"].as_array().map(Vec::len),
        Some(2)
    );
    for (field, kind) in [
        (
            "application_persistence_profile_ref",
            "applicationpersistenceprofile",
        ),
        ("ssl_profile_ref", "sslprofile"),
        ("pki_profile_ref", "pkiprofile"),
    ] {
        assert!(
            pool[field]
                .as_str()
                .is_some_and(|r| r.contains(&format!("/api/{kind}/"))),
            "{field}: {pool}"
        );
    }
    // The re-encryption CA of the example, in the pool's PKI profile (AKO's name).
    let pki = lab
        .object("pkiprofile", &format!("{pool_name}-pkiprofile"))
        .await
        .expect("the pool's PKI profile");
    assert!(
        pki["ca_certs"][0]["certificate"]
            .as_str()
            .is_some_and(|c| c.contains("BEGIN CERTIFICATE")),
        "{pki}"
    );
}

/// A certificate and key on the controller, valid for `host`.
async fn upload_cert(lab: &Lab, name: &str, host: &str) {
    let ca = ako::certs::generate_ca("corp-ca", 30).expect("ca");
    let leaf = ca.issue(&[host.into()], &[], 30).expect("leaf");
    create(
        lab,
        "sslkeyandcertificate",
        json!({"name": name, "key": leaf.key_pem, "certificate": {"certificate": leaf.cert_pem}}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn akos_l4_rule_example_is_accepted_and_as_in_ako_not_applied_since_it_terminates_ssl_without_the_tcp_proxy()
 {
    let lab = Lab::start().await;
    // Every object AKO's example names, made on the controller first.
    for (ty, name, extra) in [
        ("analyticsprofile", "Custom-Analytics-Profile", json!({})),
        (
            "applicationprofile",
            "Custom-L4-Application-Profile",
            json!({"type": "APPLICATION_PROFILE_TYPE_L4"}),
        ),
        ("networkprofile", "Custom-Network-Profile", json!({})),
        (
            "networksecuritypolicy",
            "Custom-Network-Security-Policy",
            json!({}),
        ),
        ("securitypolicy", "Custom-Security-Policy", json!({})),
        ("vsdatascriptset", "Custom-DS-01", json!({})),
        ("vsdatascriptset", "Custom-DS-02", json!({})),
        (
            "applicationpersistenceprofile",
            "Custom-Application-Persistence-Profile",
            json!({"persistence_type": "PERSISTENCE_TYPE_CLIENT_IP_ADDRESS"}),
        ),
        (
            "healthmonitor",
            "Custom-HM-01",
            json!({"type": "HEALTH_MONITOR_TCP"}),
        ),
        (
            "healthmonitor",
            "Custom-HM-02",
            json!({"type": "HEALTH_MONITOR_TCP"}),
        ),
        ("sslprofile", "Custom-SSL-Profile", json!({})),
        ("sslprofile", "Custom-L4-SSL-Profile", json!({})),
        ("pkiprofile", "Custom-PKI-Profile", json!({})),
    ] {
        let mut body = extra;
        body["name"] = json!(name);
        create(&lab, ty, body).await;
    }
    upload_cert(&lab, "Custom-Key-And-Certificate", "backend.green.svc").await;
    upload_cert(
        &lab,
        "Custom-L4-SSL-Key-Cert",
        "my-service.green.avi.jarvis.lab",
    )
    .await;
    let _ctl = lab.controller("ako-0", &[], &[]);
    wait_crd(&lab, "l4rules.ako.vmware.com").await;
    lab.namespace("green");
    let example = std::fs::read_to_string(common::repo().join("tests/data/ako/crds/l4rule.yaml"))
        .expect("example");
    lab.apply(&example);
    assert_eq!(
        wait_status(&lab, "l4rule", "green", "my-l4-rule").await,
        ("Accepted".to_string(), String::new())
    );
    lab.apply(
        "apiVersion: v1
kind: Service
metadata: {name: my-service, namespace: green, annotations: {ako.vmware.com/l4rule: my-l4-rule}}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
",
    );
    // The example asks for SSL on port 80 with its custom network profile: AKO skips the whole rule then (SSL
    // needs the TCP proxy); so does ako, saying so on the Service instead of in a log line.
    let warned = lab
        .events("Service", "green", "my-service", "ServiceWarning")
        .await;
    assert!(
        warned.iter().any(|e| e["message"].as_str().is_some_and(|m| m.contains(
            "L4Rule green/my-l4-rule is not applied (SSL on port 80 needs the network profile System-TCP-Proxy, not Custom-Network-Profile)"
        ))),
        "{warned:?}"
    );
    lab.wait_vip("green", "my-service").await;
    let vs = lab
        .object("virtualservice", &vs_name("green", "my-service"))
        .await
        .expect("vs");
    assert!(
        vs["network_profile_ref"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    assert!(
        vs.get("performance_limits").is_none_or(Value::is_null),
        "{vs}"
    );
    // With the TCP proxy, the example applies: every field on the virtual service and its pool. (Its
    // loadBalancerIP is left out: an address outside the VIP network, and the controller refuses to move a VIP
    // that exists: "If a new preferred IP is needed, please recreate the VIP".)
    lab.apply(
        &example
            .replace(
                "networkProfileRef: Custom-Network-Profile",
                "networkProfileRef: System-TCP-Proxy",
            )
            .replace("  loadBalancerIP: \"49.20.193.207\"\n", ""),
    );
    let vs = lab
        .wait("the example's virtual service", WAIT, async || {
            lab.object("virtualservice", &vs_name("green", "my-service"))
                .await
                .filter(|vs| vs["performance_limits"]["max_concurrent_connections"] == 105)
        })
        .await;
    assert_eq!(vs["services"][0]["enable_ssl"], true, "{vs}");
    assert_eq!(vs["vs_datascripts"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        vs["ssl_key_and_certificate_refs"].as_array().map(Vec::len),
        Some(1)
    );
    assert!(
        vs["pool_ref"]
            .as_str()
            .is_some_and(|r| r.contains("/api/pool/")),
        "{vs}"
    );
    let pool = lab
        .object("pool", &pool_name("green", "my-service", "TCP", 80))
        .await
        .expect("pool");
    assert_eq!(pool["lb_algorithm"], "LB_ALGORITHM_CONSISTENT_HASH");
    assert_eq!(pool["lb_algorithm_consistent_hash_hdr"], "custom-string");
    assert_eq!(pool["min_servers_up"], 1);
    assert_eq!(
        pool["health_monitor_refs"].as_array().map(Vec::len),
        Some(2)
    );
    // The rule deleted: the virtual service and the pool back at the defaults, the L4 policy set back.
    lab.kubectl(&["delete", "l4rule", "-n", "green", "my-l4-rule"]);
    lab.wait("the defaults back", WAIT, async || {
        let vs = lab
            .object("virtualservice", &vs_name("green", "my-service"))
            .await?;
        let pool = lab
            .object("pool", &pool_name("green", "my-service", "TCP", 80))
            .await?;
        (vs.get("performance_limits").is_none_or(Value::is_null)
            && vs.get("pool_ref").is_none_or(Value::is_null)
            && vs["services"][0]["enable_ssl"] == false
            && pool["lb_algorithm"] == "LB_ALGORITHM_LEAST_CONNECTIONS")
            .then_some(())
    })
    .await;
    assert!(
        lab.object("l4policyset", &vs_name("green", "my-service"))
            .await
            .is_some()
    );
}
