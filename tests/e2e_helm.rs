//! The Helm chart `charts/ako`, proven with real Helm v4 (PyPI helm-python-sdk: Helm's Go SDK, driven by
//! tests/helm/helm.py with the helm CLI's arguments) and the real kube-apiserver 1.20.2 (+ kube-controller-manager).
//!
//! - Offline: lint; render with the defaults, with the seed's `helm show values` > edit > `-f values.yaml` method and
//!   with the seed's exact `--set` list; the rendered ConfigMap and Secret, mounted as directories the way the
//!   kubelet mounts them, are read by ako's own parsers (`ako::core::config`, `ako::core::settings`). The schema
//!   and the templates refuse bad values naming the key.
//! - Installed: `--generate-name` into avi-system, every object accepted, `helm list` deployed, IngressClass avi-lb
//!   default, caBundles, RBAC (`kubectl auth can-i --as` the chart's ServiceAccount), upgrade, uninstall leaving
//!   nothing behind.
//! - Running: no kubelet runs here, so ako runs on this machine exactly as the chart's StatefulSet describes it (its
//!   args and env, its volumes as local directories filled from the installed ConfigMap and Secrets), with a token
//!   of the chart's ServiceAccount, against the API server and `ako emulator`; the chart's webhook configurations
//!   point at it (webhook.url, the one override a webhook outside the cluster needs).
//!
//! Only loopback addresses are dialled.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ako::cli::{ConfigArgs, ControllerArgs};
use ako::core::config::{Config, VipNetwork};
use ako::core::l4::MemberMode;
use ako::core::settings::{ControllerSettings, Login};
use base64::Engine;
use common::Cluster;
use serde_json::Value;

const CHART: &str = "charts/ako";
const NS: &str = "avi-system";
const WAIT: Duration = Duration::from_secs(60);

/// The seed's `helm install ako/ako --generate-name --set ...` list, as the shell passes it (quotes removed).
const SEED_SET: [&str; 12] = [
    "ControllerSettings.controllerHost=avi-ctrl.jarvis.lab",
    "ControllerSettings.controllerVersion=20.1.5",
    "AKOSettings.logLevel=WARNING",
    "avicredentials.username=admin",
    "avicredentials.password=VMware1!",
    "NetworkSettings.subnetIP=10.10.18.0",
    "NetworkSettings.subnetPrefix=26",
    "NetworkSettings.networkName=dpg-sedatapath-18",
    "ControllerSettings.cloudName=Default-Cloud",
    "ControllerSettings.serviceEngineGroupName=vmug-se-group",
    "AKOSettings.clusterName=veba-of",
    "L7Settings.serviceType=NodePort",
];

/// What a person edits in `helm show values` output for the seed's lab: (line as shown, line as edited).
const SEED_EDITS: [(&str, &str); 9] = [
    (
        "  clusterName: \"my-cluster\"",
        "  clusterName: \"veba-of\"",
    ),
    ("  logLevel: \"WARN\"", "  logLevel: \"WARNING\""),
    (
        "  vipNetworkList: []",
        "  vipNetworkList:\n  - networkName: dpg-sedatapath-18\n    cidr: 10.10.18.0/26",
    ),
    ("  serviceType: ClusterIP", "  serviceType: NodePort"),
    (
        "  serviceEngineGroupName: \"Default-Group\"",
        "  serviceEngineGroupName: \"vmug-se-group\"",
    ),
    (
        "  controllerVersion: \"\"",
        "  controllerVersion: \"20.1.5\"",
    ),
    (
        "  controllerHost: \"\"",
        "  controllerHost: \"avi-ctrl.jarvis.lab\"",
    ),
    ("  username: \"\"", "  username: \"admin\""),
    ("  password: \"\"", "  password: \"VMware1!\""),
];

// ---------------------------------------------------------------------------------------------------------------
// Helm and rendering helpers

/// The venv python with helm-python-sdk (installed once per machine by scripts/install-helm.sh).
fn python() -> &'static str {
    static PY: OnceLock<String> = OnceLock::new();
    PY.get_or_init(|| {
        let out = Command::new(common::repo().join("scripts/install-helm.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("running scripts/install-helm.sh");
        assert!(out.status.success(), "scripts/install-helm.sh failed");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    })
}

/// `helm ARGS` (tests/helm/helm.py) in the repository, with KUBECONFIG when given.
fn helm(args: &[&str], kubeconfig: Option<&Path>) -> Output {
    let mut cmd = Command::new(python());
    cmd.current_dir(common::repo())
        .arg(common::repo().join("tests/helm/helm.py"))
        .args(args);
    if let Some(k) = kubeconfig {
        cmd.env("KUBECONFIG", k);
    }
    cmd.output().expect("running tests/helm/helm.py")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `helm ARGS` that must succeed; its stdout.
fn helm_ok(args: &[&str], kubeconfig: Option<&Path>) -> String {
    let o = helm(args, kubeconfig);
    assert!(
        o.status.success(),
        "helm {args:?} failed:\n{}{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// `--set X` for each entry.
fn set_args<'a>(sets: &[&'a str]) -> Vec<&'a str> {
    sets.iter().flat_map(|s| ["--set", *s]).collect()
}

/// The rendered objects of `helm template CHART --namespace avi-system EXTRA...`.
fn render(extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["template", CHART, "--namespace", NS];
    args.extend_from_slice(extra);
    parse_docs(&helm_ok(&args, None))
}

fn parse_docs(yaml: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .filter_map(|de| {
            let v: serde_yaml_ng::Value =
                serde::Deserialize::deserialize(de).expect("rendered YAML");
            (!v.is_null()).then(|| serde_json::to_value(v).expect("as JSON"))
        })
        .collect()
}

/// The rendered object of this kind and name.
fn object<'a>(docs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
}

fn must<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    object(docs, kind, name).unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

/// A ConfigMap's or Secret's data written as a directory, one file per key (what the kubelet mounts).
fn mount(obj: &Value, dir: &Path, base64: bool) {
    std::fs::create_dir_all(dir).expect("mount dir");
    for (k, v) in obj["data"].as_object().cloned().unwrap_or_default() {
        let text = v.as_str().expect("string data");
        let bytes = if base64 {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .expect("base64 data")
        } else {
            text.as_bytes().to_vec()
        };
        std::fs::write(dir.join(&k), bytes).expect("write key");
    }
}

/// ako's two configurations, read by its own parsers from the mounted ConfigMap (and Secret, if any).
fn parse_with_ako(docs: &[Value]) -> (Config, Result<ControllerSettings, String>) {
    let dir = tempfile::tempdir().expect("tmp");
    let cm = dir.path().join("config");
    mount(must(docs, "ConfigMap", "avi-k8s-config"), &cm, false);
    let secret = object(docs, "Secret", "avi-secret").map(|s| {
        let d = dir.path().join("avi-secret");
        mount(s, &d, true);
        d
    });
    let cfg = ConfigArgs {
        config_file: Some(cm.clone()),
        ..ConfigArgs::default()
    }
    .resolve()
    .unwrap_or_else(|e| panic!("ako refuses the rendered ConfigMap: {e}"));
    let settings = ControllerArgs {
        credentials_dir: secret,
        ..ControllerArgs::default()
    }
    .resolve(Some(&cm))
    .map_err(|e| e.to_string());
    (cfg, settings)
}

/// The configuration the seed's values describe.
fn seed_config() -> Config {
    Config {
        cluster_name: "veba-of".into(),
        log_level: "WARN".into(),
        vip_networks: vec![VipNetwork {
            network_name: Some("dpg-sedatapath-18".into()),
            network_uuid: None,
            cidr: Some("10.10.18.0/26".parse().expect("cidr")),
            v6cidr: None,
        }],
        ..Config::default()
    }
}

fn assert_seed_settings(s: &ControllerSettings) {
    assert_eq!(s.controller_host, "avi-ctrl.jarvis.lab");
    assert_eq!(s.controller_version.as_deref(), Some("20.1.5"));
    assert_eq!(s.cloud, "Default-Cloud");
    assert_eq!(s.se_group, "vmug-se-group");
    assert_eq!(s.tenant, "admin");
    assert_eq!(s.vrf, "global");
    assert_eq!(s.member_mode, MemberMode::NodePort { selector: None });
    assert_eq!(s.full_sync, Some(Duration::from_secs(1800)));
    assert!(!s.delete_config);
    assert_eq!(
        s.login,
        Login::Password {
            username: "admin".into(),
            password: "VMware1!".into()
        }
    );
    assert_eq!(s.ca_pem, None);
}

/// The seed's `helm show values` > edit > values.yaml, in `dir`.
fn seed_values_file(dir: &Path) -> PathBuf {
    let mut text = helm_ok(&["show", "values", CHART], None);
    for (before, after) in SEED_EDITS {
        assert_eq!(
            text.lines().filter(|l| *l == before).count(),
            1,
            "`helm show values` should show the line {before:?} once"
        );
        text = text.replacen(&format!("{before}\n"), &format!("{after}\n"), 1);
    }
    let path = dir.join("values.yaml");
    std::fs::write(&path, text).expect("values.yaml");
    path
}

// ---------------------------------------------------------------------------------------------------------------
// Offline: lint, render, schema

#[test]
fn chart_lints_clean_with_the_seeds_values_and_names_the_missing_controller_host_without_them() {
    let mut args = vec!["lint", CHART];
    args.extend(set_args(&SEED_SET));
    let report: Value = serde_json::from_str(&helm_ok(&args, None)).expect("lint JSON");
    let problems: Vec<&Value> = report["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["severity"].as_u64().unwrap_or(0) >= 2)
        .collect();
    assert!(problems.is_empty(), "lint warnings or errors: {problems:?}");
    assert_eq!(report["total_charts_linted"], 1);

    let bare = helm(&["lint", CHART], None);
    assert!(
        !bare.status.success(),
        "lint with no controllerHost must fail"
    );
    let text = stdout(&bare);
    assert!(
        text.contains("/ControllerSettings/controllerHost"),
        "the error names the key: {text}"
    );
}

#[test]
fn defaults_render_akos_configuration_and_objects() {
    let bare = helm(&["template", CHART, "--namespace", NS], None);
    assert!(!bare.status.success());
    assert!(
        stderr(&bare).contains("/ControllerSettings/controllerHost"),
        "{}",
        stderr(&bare)
    );

    let docs = render(&["--set", "ControllerSettings.controllerHost=avi.example"]);
    let (cfg, settings) = parse_with_ako(&docs);
    assert_eq!(cfg, Config::default(), "AKO's defaults are ako's defaults");
    let err = settings.expect_err("no credentials in the values");
    assert!(err.contains("username"), "{err}");
    // Without credentials no Secret is made: an existing avi-secret is used.
    assert!(object(&docs, "Secret", "avi-secret").is_none());
    let s = ControllerArgs {
        avi_username: Some("u".into()),
        avi_password: Some(ako::core::settings::Redacted("p".into())),
        ..ControllerArgs::default()
    };
    let dir = tempfile::tempdir().expect("tmp");
    mount(
        must(&docs, "ConfigMap", "avi-k8s-config"),
        dir.path(),
        false,
    );
    let s = s.resolve(Some(dir.path())).expect("settings");
    assert_eq!(
        (s.cloud.as_str(), s.se_group.as_str(), s.tenant.as_str()),
        ("Default-Cloud", "Default-Group", "admin")
    );
    assert_eq!(s.member_mode, MemberMode::ClusterIp);

    for (kind, name) in [
        ("ServiceAccount", "ako-sa"),
        ("ClusterRole", "ako-cr"),
        ("ClusterRoleBinding", "ako-crb"),
        ("Role", "ako-role"),
        ("RoleBinding", "ako-rolebinding"),
        ("StatefulSet", "ako"),
        ("Service", "ako-webhook"),
        ("Secret", "ako-webhook-tls"),
        ("ValidatingWebhookConfiguration", "ako-webhook"),
        ("MutatingWebhookConfiguration", "ako-webhook"),
        ("IngressClass", "avi-lb"),
    ] {
        must(&docs, kind, name);
    }
    assert!(object(&docs, "PodDisruptionBudget", "ako").is_none());
    let sts = must(&docs, "StatefulSet", "ako");
    assert_eq!(sts["spec"]["replicas"], 1);
    assert_eq!(
        sts["spec"]["template"]["spec"]["serviceAccountName"],
        "ako-sa"
    );
    let class = must(&docs, "IngressClass", "avi-lb");
    assert_eq!(class["spec"]["controller"], "ako.vmware.com/avi-lb");
    assert_eq!(
        class["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"],
        "true"
    );
}

#[test]
fn seeds_set_list_renders_the_seeds_configuration_for_akos_parser() {
    let docs = render(&set_args(&SEED_SET));
    let (cfg, settings) = parse_with_ako(&docs);
    assert_eq!(cfg, seed_config());
    assert_seed_settings(&settings.expect("settings"));
    let cm = must(&docs, "ConfigMap", "avi-k8s-config");
    assert_eq!(cm["data"]["logLevel"], "WARN", "WARNING is AKO's WARN");
}

#[test]
fn seeds_values_file_method_renders_the_same_configuration() {
    let dir = tempfile::tempdir().expect("tmp");
    let values = seed_values_file(dir.path());
    let docs = render(&["-f", values.to_str().expect("path")]);
    let (cfg, settings) = parse_with_ako(&docs);
    assert_eq!(cfg, seed_config());
    assert_seed_settings(&settings.expect("settings"));
    // Both of the seed's methods give the same ConfigMap.
    let by_set = render(&set_args(&SEED_SET));
    assert_eq!(
        must(&docs, "ConfigMap", "avi-k8s-config")["data"],
        must(&by_set, "ConfigMap", "avi-k8s-config")["data"]
    );
}

#[test]
fn akos_own_values_file_renders_unchanged_with_its_namespace_selector_and_crd_operator_value() {
    let mut docs = render(&["-f", "tests/helm/ako-2.2-values.yaml"]);
    let (cfg, settings) = parse_with_ako(&docs);
    let s = settings.expect("settings from AKO's values");
    assert_eq!(cfg.cluster_name, "veba-of");
    assert_eq!(
        s.member_mode,
        MemberMode::ClusterIp,
        "AKO's default serviceType"
    );
    assert_eq!(s.scope.selector, None);
    // AKO's namespaceSelector reaches ako under AKO's ConfigMap keys.
    docs = render(&[
        "-f",
        "tests/helm/ako-2.2-values.yaml",
        "--set",
        "AKOSettings.namespaceSelector.labelKey=ako",
        "--set",
        "AKOSettings.namespaceSelector.labelValue=yes",
    ]);
    let cm = must(&docs, "ConfigMap", "avi-k8s-config");
    assert_eq!(cm["data"]["nsSyncLabelKey"], "ako", "{cm}");
    let (_, settings) = parse_with_ako(&docs);
    assert_eq!(
        settings.expect("settings").scope.selector,
        Some(("ako".into(), "yes".into()))
    );
    let sts = must(&docs, "StatefulSet", "ako");
    assert!(
        sts["spec"]["podManagementPolicy"].is_null(),
        "AKO's StatefulSet sets none (OrderedReady); it is immutable"
    );
}

#[test]
fn bad_values_are_refused_naming_the_key_and_what_is_accepted() {
    let host = "ControllerSettings.controllerHost=avi.example";
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["AKOSettings.clusterName=veba of"],
            &["/AKOSettings/clusterName", "^[a-zA-Z0-9-_]+$"],
        ),
        (
            &["L4Settings.autoFQDN=short"],
            &["/L4Settings/autoFQDN", "'default', 'flat', 'disabled'"],
        ),
        (
            &["L7Settings.shardVSSize=HUGE"],
            &["/L7Settings/shardVSSize", "'LARGE'", "'DEDICATED'"],
        ),
        (
            &["L7Settings.serviceType=NodePortLocal"],
            &["/L7Settings/serviceType", "'ClusterIP', 'NodePort'"],
        ),
        (&["replicaCount=3"], &["/replicaCount", "want 2"]),
        (
            &["AKOSettings.logLevel=VERBOSE"],
            &["/AKOSettings/logLevel", "'WARN'"],
        ),
        (
            &[
                "NetworkSettings.subnetIP=10.10.18.0",
                "NetworkSettings.subnetPrefix=40",
                "NetworkSettings.networkName=n",
            ],
            &["/NetworkSettings/subnetPrefix"],
        ),
        (
            &[
                "NetworkSettings.subnetIP=10.10.18.0",
                "NetworkSettings.networkName=n",
            ],
            &["NetworkSettings.subnetPrefix is required"],
        ),
        (
            &[
                "NetworkSettings.subnetIP=10.10.18.0",
                "NetworkSettings.subnetPrefix=26",
            ],
            &["NetworkSettings.networkName is required"],
        ),
        (
            &[
                "NetworkSettings.networkName=n",
                "NetworkSettings.vipNetworkList[0].networkName=m",
            ],
            &["either vipNetworkList or the old subnetIP/subnetPrefix/networkName"],
        ),
        (&["AKOSettings.enableEVH=true"], &["/AKOSettings/enableEVH"]),
        (
            &["ControllerSettings.controllerIP=10.0.0.1"],
            &["/ControllerSettings", "'controllerIP' not allowed"],
        ),
        (
            &["webhook.certificates=vault"],
            &["/webhook/certificates", "'self', 'certManager'"],
        ),
        (
            &["nodePortSelector.key=lb"],
            &["nodePortSelector: key and value"],
        ),
    ];
    for (sets, needles) in cases {
        let mut all = vec![host];
        all.extend_from_slice(sets);
        let mut args = vec!["template", CHART, "--namespace", NS];
        args.extend(set_args(&all));
        let o = helm(&args, None);
        assert!(!o.status.success(), "{sets:?} must be refused");
        let err = stderr(&o);
        for n in *needles {
            assert!(err.contains(n), "{sets:?}: {n:?} missing from: {err}");
        }
    }
    let without_host = helm(
        &[
            "template",
            CHART,
            "--set",
            "ControllerSettings.controllerHost=",
        ],
        None,
    );
    assert!(stderr(&without_host).contains("/ControllerSettings/controllerHost"));
}

#[test]
fn two_replicas_elect_a_leader_and_get_a_disruption_budget() {
    let docs = render(&[
        "--set",
        "ControllerSettings.controllerHost=avi.example",
        "--set",
        "replicaCount=2",
    ]);
    let env = container_env(must(&docs, "StatefulSet", "ako"));
    assert_eq!(
        env.get("AKO_LEADER_ELECTION").map(String::as_str),
        Some("true")
    );
    let pdb = must(&docs, "PodDisruptionBudget", "ako");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
}

#[test]
fn cert_manager_mode_renders_an_issuer_a_certificate_and_the_ca_injector() {
    let docs = render(&[
        "--set",
        "ControllerSettings.controllerHost=avi.example",
        "--set",
        "webhook.certificates=certManager",
    ]);
    let cert = must(&docs, "Certificate", "ako-webhook");
    assert_eq!(cert["spec"]["secretName"], "ako-webhook-tls");
    assert!(
        cert["spec"]["dnsNames"]
            .as_array()
            .expect("dnsNames")
            .contains(&Value::from("ako-webhook.avi-system.svc"))
    );
    must(&docs, "Issuer", "ako-ca");
    for kind in [
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    ] {
        let c = must(&docs, kind, "ako-webhook");
        assert_eq!(
            c["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            "avi-system/ako-webhook"
        );
        for hook in c["webhooks"].as_array().expect("webhooks") {
            assert!(hook["clientConfig"].get("caBundle").is_none());
        }
    }
    let sts = must(&docs, "StatefulSet", "ako");
    let env = container_env(sts);
    assert!(
        !env.contains_key("AKO_WEBHOOK_CERT_SECRET"),
        "cert-manager renews, not ako"
    );
    let vols = sts["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .expect("volumes");
    assert!(
        vols.iter()
            .any(|v| v["secret"]["secretName"] == "ako-webhook-tls")
    );
    // The ClusterRole then has no webhook-configuration rights.
    let cr = must(&docs, "ClusterRole", "ako-cr").to_string();
    assert!(!cr.contains("webhookconfigurations"), "{cr}");
}

#[test]
fn webhook_configurations_match_webhook_config_manifests() {
    // `helm template` renders for a current Kubernetes (1.28 and later: matchConditions), so the chart matches
    // the manifests for those; before 1.28 it renders webhooks.yaml's settings (e2e_safety.rs exercises them).
    let docs = render(&["--set", "ControllerSettings.controllerHost=avi.example"]);
    let text = std::fs::read_to_string(
        common::repo().join("webhook-config/webhooks-match-conditions.yaml"),
    )
    .expect("webhooks-match-conditions.yaml");
    let plain = parse_docs(&text);
    for kind in [
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    ] {
        let chart = must(&docs, kind, "ako-webhook");
        let manifest = must(&plain, kind, "ako-webhook");
        let strip = |v: &Value| {
            let mut hooks = v["webhooks"].as_array().expect("webhooks").clone();
            for h in &mut hooks {
                h["clientConfig"]
                    .as_object_mut()
                    .expect("clientConfig")
                    .remove("caBundle");
                h.as_object_mut().expect("webhook").remove("objectSelector");
            }
            hooks
        };
        assert_eq!(
            strip(chart),
            strip(manifest),
            "{kind} differs from webhook-config/"
        );
        // The one addition: the release's own objects are not reviewed (an upgrade never waits for ako itself).
        for h in chart["webhooks"].as_array().expect("webhooks") {
            assert_eq!(
                h["objectSelector"]["matchExpressions"][0],
                serde_json::json!({"key": "app.kubernetes.io/instance", "operator": "NotIn", "values": ["release-name"]})
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Installed into the real API server

/// The env of the chart's ako container, as name -> value (fieldRefs as "fieldRef:<path>").
fn container_env(sts: &Value) -> BTreeMap<String, String> {
    let c = &sts["spec"]["template"]["spec"]["containers"][0];
    c["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| {
            let name = e["name"].as_str().expect("name").to_string();
            let value = match e.get("value") {
                Some(v) => v.as_str().expect("string value").to_string(),
                None => format!(
                    "fieldRef:{}",
                    e["valueFrom"]["fieldRef"]["fieldPath"]
                        .as_str()
                        .expect("fieldRef")
                ),
            };
            (name, value)
        })
        .collect()
}

fn kubectl_json(cluster: &Cluster, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    serde_json::from_str(&cluster.must(&a, None)).expect("kubectl JSON")
}

fn wait_for<T>(what: &str, within: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `kubectl auth can-i VERB RESOURCE[/NAME] [-n NS]` as the chart's ServiceAccount; `RESOURCE#SUB` asks about
/// a subresource.
fn can_i(cluster: &Cluster, verb: &str, resource: &str, ns: Option<&str>) -> bool {
    let (resource, sub) = match resource.split_once('#') {
        Some((r, s)) => (r, Some(format!("--subresource={s}"))),
        None => (resource, None),
    };
    let mut args = vec![
        "auth",
        "can-i",
        verb,
        resource,
        "--as",
        "system:serviceaccount:avi-system:ako-sa",
    ];
    if let Some(s) = &sub {
        args.push(s);
    }
    match ns {
        Some(n) => args.extend(["-n", n]),
        None => args.push("--all-namespaces"),
    }
    let out = cluster.kubectl(&args, None);
    String::from_utf8_lossy(&out.stdout).trim() == "yes"
}

/// The caBundle of every webhook of a configuration.
fn ca_bundles(cluster: &Cluster, kind: &str) -> Vec<String> {
    kubectl_json(cluster, &["get", kind, "ako-webhook"])["webhooks"]
        .as_array()
        .expect("webhooks")
        .iter()
        .map(|h| {
            h["clientConfig"]["caBundle"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

fn secret_key(cluster: &Cluster, name: &str, key: &str) -> String {
    kubectl_json(cluster, &["-n", NS, "get", "secret", name])["data"][key]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn seeds_install_upgrade_and_uninstall_in_the_real_api_server_with_least_privilege() {
    let cluster = Cluster::start_with_controller_manager();
    let k = Some(cluster.kubeconfig.as_path());
    cluster.must(&["create", "ns", NS], None);

    // The seed's command, with the chart path instead of ako/ako.
    let mut args = vec!["install", CHART, "--generate-name"];
    args.extend(set_args(&SEED_SET));
    args.push("--namespace=avi-system");
    let release: Value = serde_json::from_str(&helm_ok(&args, k)).expect("release JSON");
    let name = release["name"].as_str().expect("release name").to_string();
    assert!(
        name.strip_prefix("ako-")
            .is_some_and(|t| t.parse::<u64>().is_ok()),
        "--generate-name gives ako-<unix seconds>: {name}"
    );

    let list: Value = serde_json::from_str(&helm_ok(&["list", "-n", NS], k)).expect("list JSON");
    let listed = list
        .as_array()
        .expect("releases")
        .iter()
        .find(|r| r["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} not in helm list: {list}"));
    assert_eq!(listed["status"], "deployed", "{listed}");

    // What the seed sees: pod ako-0 (made by the StatefulSet controller; no kubelet runs it), avi-secret, avi-k8s-config.
    wait_for("pod ako-0", WAIT, || {
        cluster
            .kubectl(&["-n", NS, "get", "pod", "ako-0"], None)
            .status
            .success()
            .then_some(())
    });
    let listing = cluster.must(
        &["-n", NS, "get", "po,secret,configmap", "-o", "name"],
        None,
    );
    for want in ["pod/ako-0", "secret/avi-secret", "configmap/avi-k8s-config"] {
        assert!(
            listing.lines().any(|l| l == want),
            "{want} missing from:\n{listing}"
        );
    }
    let class = kubectl_json(&cluster, &["get", "ingressclass", "avi-lb"]);
    assert_eq!(
        class["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"],
        "true"
    );
    let ca = secret_key(&cluster, "ako-webhook-tls", "ca-bundle.crt");
    assert!(!ca.is_empty());
    // Validation: Ingresses, Services, HostRules/HTTPRules/L4Rules, AviInfraSettings; mutation: Ingresses,
    // Services.
    for (kind, hooks) in [
        ("validatingwebhookconfiguration", 4),
        ("mutatingwebhookconfiguration", 2),
    ] {
        let bundles = ca_bundles(&cluster, kind);
        assert_eq!(bundles.len(), hooks, "{kind}");
        assert!(
            bundles.iter().all(|b| *b == ca),
            "{kind}: caBundle is the chart's CA"
        );
    }
    // ako's parser reads the installed ConfigMap the same way.
    let cm = kubectl_json(&cluster, &["-n", NS, "get", "configmap", "avi-k8s-config"]);
    let secret = kubectl_json(&cluster, &["-n", NS, "get", "secret", "avi-secret"]);
    let (cfg, settings) = parse_with_ako(&[cm, secret]);
    assert_eq!(cfg, seed_config());
    assert_seed_settings(&settings.expect("settings"));

    // RBAC: every verb ako needs, and no more.
    let needed: &[(&str, &str, Option<&str>)] = &[
        ("list", "services", None),
        ("watch", "services", None),
        ("patch", "services#status", Some("vmug")),
        ("list", "endpointslices.discovery.k8s.io", None),
        ("watch", "endpoints", None),
        ("watch", "nodes", None),
        ("watch", "namespaces", None),
        ("watch", "ingresses.networking.k8s.io", None),
        ("patch", "ingresses.networking.k8s.io#status", Some("vmug")),
        ("watch", "ingressclasses.networking.k8s.io", None),
        ("watch", "secrets", None),
        ("get", "secrets", Some("vmug")),
        ("create", "events.events.k8s.io", Some("vmug")),
        ("patch", "events.events.k8s.io", Some("vmug")),
        ("create", "leases.coordination.k8s.io", Some(NS)),
        ("get", "leases.coordination.k8s.io/ako-lease-lock", Some(NS)),
        (
            "update",
            "leases.coordination.k8s.io/ako-lease-lock",
            Some(NS),
        ),
        ("get", "namespaces/kube-system", None),
        ("watch", "hostrules.ako.vmware.com", None),
        ("watch", "httprules.ako.vmware.com", None),
        ("list", "aviinfrasettings.ako.vmware.com", None),
        ("list", "l4rules.ako.vmware.com", None),
        ("patch", "hostrules.ako.vmware.com#status", Some("vmug")),
        ("patch", "httprules.ako.vmware.com#status", Some("vmug")),
        (
            "patch",
            "customresourcedefinitions.apiextensions.k8s.io/hostrules.ako.vmware.com",
            None,
        ),
        ("update", "secrets/ako-webhook-tls", Some(NS)),
        (
            "patch",
            "validatingwebhookconfigurations.admissionregistration.k8s.io/ako-webhook",
            None,
        ),
        (
            "patch",
            "mutatingwebhookconfigurations.admissionregistration.k8s.io/ako-webhook",
            None,
        ),
    ];
    for (verb, res, ns) in needed {
        assert!(
            can_i(&cluster, verb, res, *ns),
            "ako-sa cannot {verb} {res} ({ns:?})"
        );
    }
    let forbidden: &[(&str, &str, Option<&str>)] = &[
        ("create", "secrets", None),
        ("update", "secrets", Some("vmug")),
        ("delete", "secrets", Some(NS)),
        ("update", "secrets/avi-secret", Some(NS)),
        ("update", "services", Some("vmug")),
        ("delete", "services", Some("vmug")),
        ("update", "ingresses.networking.k8s.io", Some("vmug")),
        ("update", "leases.coordination.k8s.io/other-lock", Some(NS)),
        ("get", "configmaps/avi-k8s-config", Some(NS)),
        ("update", "configmaps/avi-k8s-config", Some(NS)),
        ("list", "configmaps", Some(NS)),
        (
            "patch",
            "validatingwebhookconfigurations.admissionregistration.k8s.io/other",
            None,
        ),
        ("create", "pods", Some(NS)),
        ("patch", "nodes", None),
        ("update", "hostrules.ako.vmware.com", Some("vmug")),
        ("delete", "httprules.ako.vmware.com", Some("vmug")),
        (
            "patch",
            "customresourcedefinitions.apiextensions.k8s.io/gateways.gateway.networking.k8s.io",
            None,
        ),
        (
            "delete",
            "customresourcedefinitions.apiextensions.k8s.io",
            None,
        ),
    ];
    for (verb, res, ns) in forbidden {
        assert!(
            !can_i(&cluster, verb, res, *ns),
            "ako-sa may {verb} {res} ({ns:?}) but must not"
        );
    }

    // Upgrade: a changed value reaches the ConfigMap; the webhook CA is kept.
    let mut up = vec!["upgrade", name.as_str(), CHART];
    let mut sets = SEED_SET.to_vec();
    sets.push("AKOSettings.logLevel=INFO");
    up.extend(set_args(&sets));
    up.extend(["--namespace", NS]);
    let upgraded: Value = serde_json::from_str(&helm_ok(&up, k)).expect("upgrade JSON");
    assert_eq!(upgraded["revision"], 2, "{upgraded}");
    assert_eq!(upgraded["status"], "deployed", "{upgraded}");
    let cm = kubectl_json(&cluster, &["-n", NS, "get", "configmap", "avi-k8s-config"]);
    assert_eq!(cm["data"]["logLevel"], "INFO");
    assert_eq!(
        secret_key(&cluster, "ako-webhook-tls", "ca-bundle.crt"),
        ca,
        "the CA survives an upgrade"
    );
    assert!(
        ca_bundles(&cluster, "validatingwebhookconfiguration")
            .iter()
            .all(|b| *b == ca)
    );

    // Uninstall: nothing of the release is left.
    helm_ok(&["uninstall", &name, "--namespace", NS], k);
    let gone = |args: &[&str]| !cluster.kubectl(args, None).status.success();
    for (kind, n, ns) in [
        ("configmap", "avi-k8s-config", true),
        ("secret", "avi-secret", true),
        ("secret", "ako-webhook-tls", true),
        ("serviceaccount", "ako-sa", true),
        ("role", "ako-role", true),
        ("rolebinding", "ako-rolebinding", true),
        ("statefulset", "ako", true),
        ("service", "ako-webhook", true),
        ("clusterrole", "ako-cr", false),
        ("clusterrolebinding", "ako-crb", false),
        ("validatingwebhookconfiguration", "ako-webhook", false),
        ("mutatingwebhookconfiguration", "ako-webhook", false),
        ("ingressclass", "avi-lb", false),
    ] {
        let mut args = vec!["get", kind, n];
        if ns {
            args.extend(["-n", NS]);
        }
        assert!(gone(&args), "{kind} {n} left behind after uninstall");
    }
    wait_for("pod ako-0 to be garbage collected", WAIT, || {
        gone(&["-n", NS, "get", "pod", "ako-0"]).then_some(())
    });
    let left = cluster.must(
        &[
            "-n",
            NS,
            "get",
            "all,secret,configmap,role,rolebinding,serviceaccount,lease",
            "-o",
            "name",
        ],
        None,
    );
    let left: Vec<&str> = left
        .lines()
        .filter(|l| {
            !l.starts_with("serviceaccount/default")
                && !l.starts_with("secret/default-token-")
                && !l.starts_with("configmap/kube-root-ca.crt")
        })
        .collect();
    assert!(left.is_empty(), "left behind in {NS}: {left:?}");
    let list: Value = serde_json::from_str(&helm_ok(&["list", "-n", NS], k)).expect("list JSON");
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
}

#[test]
fn helm_upgrade_of_an_ako_release_to_ako_keeps_the_statefulsets_immutable_fields_and_succeeds() {
    let cluster = Cluster::start_with_controller_manager();
    let k = Some(cluster.kubeconfig.as_path());
    cluster.must(&["create", "ns", NS], None);
    // An AKO 2.2 release (its objects' names and its StatefulSet's immutable fields), installed as AKO's users do.
    let release = "ako-1700000000";
    helm_ok(
        &[
            "install",
            "tests/helm/ako-2.2-shape",
            release,
            "--namespace",
            NS,
            "--set",
            "controllerHost=avi-ctrl.jarvis.lab",
            "--set",
            "clusterName=veba-of",
            "--set",
            "password=VMware1!",
        ],
        k,
    );
    let before = kubectl_json(&cluster, &["-n", NS, "get", "statefulset", "ako"]);

    // The same release upgraded to ako's chart with the seed's values: accepted by the API server (a change of
    // serviceName, selector, podManagementPolicy or volumeClaimTemplates would be refused as immutable).
    let mut up = vec!["upgrade", release, CHART];
    up.extend(set_args(&SEED_SET));
    up.extend(["--namespace", NS]);
    let upgraded: Value = serde_json::from_str(&helm_ok(&up, k)).expect("upgrade JSON");
    assert_eq!(upgraded["revision"], 2, "{upgraded}");
    assert_eq!(upgraded["status"], "deployed", "{upgraded}");
    let after = kubectl_json(&cluster, &["-n", NS, "get", "statefulset", "ako"]);
    for field in [
        "serviceName",
        "selector",
        "podManagementPolicy",
        "volumeClaimTemplates",
    ] {
        assert_eq!(
            after["spec"][field], before["spec"][field],
            "{field} changed: an upgrade from AKO would fail"
        );
    }
    assert_eq!(after["spec"]["podManagementPolicy"], "OrderedReady");
    // ako's pod template and configuration replaced AKO's.
    let image = after["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default();
    assert!(!image.contains("stand-in"), "{image}");
    let cm = kubectl_json(&cluster, &["-n", NS, "get", "configmap", "avi-k8s-config"]);
    assert_eq!(cm["data"]["clusterName"], "veba-of");
    assert_eq!(cm["data"]["serviceEngineGroupName"], "vmug-se-group");
}

// ---------------------------------------------------------------------------------------------------------------
// ako run as the chart describes it

/// A process under scripts/run-while.sh (never outlives the test), stopped on drop.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(log: PathBuf, args: &[String], env: &BTreeMap<String, String>) -> Proc {
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(common::repo().join("scripts/run-while.sh"))
            .arg(std::process::id().to_string())
            .arg(env!("CARGO_BIN_EXE_ako"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .spawn()
            .expect("spawning ako");
        Proc { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // SIGTERM to the wrapper, whose trap stops the child; a SIGKILL would leave the child running, orphaned.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// A kubeconfig for the chart's ServiceAccount: a token from the TokenRequest API, the API server's CA.
fn service_account_kubeconfig(cluster: &Cluster) -> PathBuf {
    let token = cluster.must(
        &["-n", NS, "create", "token", "ako-sa", "--duration", "1h"],
        None,
    );
    let admin = std::fs::read_to_string(&cluster.kubeconfig).expect("kubeconfig");
    let server = admin
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .expect("server")
        .to_string();
    let ca = cluster.dir.path().join("certs/apiserver.crt");
    let path = cluster.dir.path().join("ako-sa.kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: {server}\n    certificate-authority: {}\n\
             users:\n- name: ako-sa\n  user:\n    token: {}\ncontexts:\n- name: ako-sa\n  context: {{cluster: local, user: ako-sa, namespace: {NS}}}\n\
             current-context: ako-sa\n",
            ca.display(),
            token.trim()
        ),
    )
    .expect("write kubeconfig");
    path
}

fn wait_port(port: u16, what: &str) {
    wait_for(what, WAIT, || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .map(|_| ())
    });
}

fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    Some(buf)
}

#[test]
fn ako_runs_as_the_charts_service_account_and_the_seeds_demos_converge() {
    let cluster = Cluster::start_with_controller_manager();
    let k = Some(cluster.kubeconfig.as_path());
    let dir = cluster.dir.path().to_path_buf();

    // The Avi controller: the emulator, with the seed's admin password.
    let avi_port = common::free_port();
    let state = dir.join("emulator");
    let emulator = Proc::spawn(
        dir.join("emulator.log"),
        &[
            "--log-format",
            "text",
            "emulator",
            "--listen",
            &format!("127.0.0.1:{avi_port}"),
            "--state-dir",
            &state.display().to_string(),
            "--admin-password",
            "VMware1!",
            "--no-fsync",
        ]
        .map(String::from),
        &BTreeMap::new(),
    );
    wait_port(avi_port, "the emulator");
    let avi_ca = wait_for("the emulator's CA", WAIT, || {
        std::fs::read_to_string(state.join("ca.crt"))
            .ok()
            .filter(|c| c.contains("END CERTIFICATE"))
    });

    // The seed's install, with the controller reachable from here, its CA, two replicas (the Lease), and the
    // webhook called at the address where ako listens on this machine.
    let hook_port = common::free_port();
    let health_port = common::free_port();
    cluster.must(&["create", "ns", NS], None);
    let overrides = dir.join("overrides.yaml");
    std::fs::write(
        &overrides,
        serde_json::json!({
            "avicredentials": {"certificateAuthorityData": avi_ca},
            "webhook": {"url": format!("https://127.0.0.1:{hook_port}")},
            "replicaCount": 2,
        })
        .to_string(),
    )
    .expect("overrides");
    let host = format!("ControllerSettings.controllerHost=127.0.0.1:{avi_port}");
    let mut sets: Vec<&str> = SEED_SET
        .iter()
        .copied()
        .filter(|s| !s.starts_with("ControllerSettings.controllerHost="))
        .collect();
    sets.push(&host);
    let mut args = vec![
        "install",
        CHART,
        "--generate-name",
        "-f",
        overrides.to_str().expect("path"),
    ];
    args.extend(set_args(&sets));
    args.push("--namespace=avi-system");
    helm_ok(&args, k);

    // The pod as the chart describes it, its volumes as local directories filled from the installed objects.
    let sts = kubectl_json(&cluster, &["-n", NS, "get", "statefulset", "ako"]);
    let container = &sts["spec"]["template"]["spec"]["containers"][0];
    let mut mounts: BTreeMap<String, PathBuf> = BTreeMap::new();
    for m in container["volumeMounts"].as_array().expect("volumeMounts") {
        let name = m["name"].as_str().expect("name");
        let local = dir.join("pod").join(name);
        let vol = sts["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["name"] == name)
            .expect("volume");
        if let Some(cm) = vol["configMap"]["name"].as_str() {
            mount(
                &kubectl_json(&cluster, &["-n", NS, "get", "configmap", cm]),
                &local,
                false,
            );
        } else if let Some(s) = vol["secret"]["secretName"].as_str() {
            mount(
                &kubectl_json(&cluster, &["-n", NS, "get", "secret", s]),
                &local,
                true,
            );
        } else {
            std::fs::create_dir_all(&local).expect("emptyDir");
        }
        mounts.insert(
            m["mountPath"].as_str().expect("mountPath").to_string(),
            local,
        );
    }
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in container_env(&sts) {
        let value = match value.as_str() {
            "fieldRef:metadata.name" => "ako-0".to_string(),
            "fieldRef:metadata.namespace" => NS.to_string(),
            v => mounts
                .iter()
                .find_map(|(path, local)| {
                    v.strip_prefix(path.as_str())
                        .map(|rest| format!("{}{rest}", local.display()))
                })
                .unwrap_or_else(|| v.to_string()),
        };
        env.insert(name, value);
    }
    // The container's ports, mapped to loopback; a short certificate check to see rotation; text logs.
    assert_eq!(env["AKO_WEBHOOK_LISTEN"], "0.0.0.0:8443");
    env.insert(
        "AKO_WEBHOOK_LISTEN".into(),
        format!("127.0.0.1:{hook_port}"),
    );
    env.insert(
        "AKO_HEALTH_LISTEN".into(),
        format!("127.0.0.1:{health_port}"),
    );
    env.insert("AKO_WEBHOOK_CERT_CHECK_SECONDS".into(), "1".into());
    env.insert("AKO_LOG_FORMAT".into(), "text".into());
    env.insert("LOG_LEVEL".into(), "INFO".into());
    env.insert(
        "KUBECONFIG".into(),
        service_account_kubeconfig(&cluster).display().to_string(),
    );
    let args: Vec<String> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("arg").to_string())
        .collect();
    assert_eq!(args, ["run"]);

    // A node for NodePort members (the kubelet's part, played with kubectl).
    cluster.must(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: Node\nmetadata: {name: node-1}\n"),
    );
    cluster.must(
        &["patch", "node", "node-1", "--subresource=status", "--type=merge", "-p",
          r#"{"status":{"addresses":[{"type":"InternalIP","address":"127.0.0.2"}],"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"test"}]}}"#],
        None,
    );

    let ako = Proc::spawn(dir.join("ako-0.log"), &args, &env);
    let logs = || format!("--- ako-0\n{}\n--- emulator\n{}", ako.log(), emulator.log());
    let deadline = Instant::now() + WAIT;
    while !http_get(health_port, "/readyz").is_some_and(|r| r.contains("ready")) {
        assert!(Instant::now() < deadline, "ako not ready:\n{}", logs());
        std::thread::sleep(Duration::from_millis(200));
    }

    // Demo 1: the LoadBalancer Service gets its VIP from dpg-sedatapath-18 and a Synced Event.
    cluster.must(
        &[
            "apply",
            "-f",
            common::repo()
                .join("examples/demo/demo.yaml")
                .to_str()
                .expect("path"),
        ],
        None,
    );
    let net: ipnet::IpNet = "10.10.18.0/26".parse().expect("net");
    let vip = wait_for("the EXTERNAL-IP of vmug/avisvc-lb", WAIT, || {
        let svc = kubectl_json(&cluster, &["-n", "vmug", "get", "svc", "avisvc-lb"]);
        svc["status"]["loadBalancer"]["ingress"][0]["ip"]
            .as_str()
            .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
            .filter(|ip| net.contains(ip))
    });
    let events = wait_for("a Synced Event on avisvc-lb", WAIT, || {
        let e = cluster.must(
            &[
                "-n",
                "vmug",
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=avisvc-lb,reason=Synced",
                "-o",
                "json",
            ],
            None,
        );
        e.contains("veba-of--vmug-avisvc-lb").then_some(e)
    });
    assert!(events.contains(&vip.to_string()), "{events}");

    // Demo 2: the Ingress is admitted and the chart's mutating webhook rewrote its legacy class.
    let ing = kubectl_json(&cluster, &["-n", "vmug", "get", "ingress", "hackazon"]);
    assert_eq!(ing["spec"]["ingressClassName"], "avi-lb", "{ing}");
    assert!(
        ing["metadata"]["annotations"]
            .get("kubernetes.io/ingress.class")
            .is_none(),
        "{ing}"
    );
    // ...and the reconciler, with the chart's RBAC, programs it: the ADDRESS is in the VIP network, and the
    // Ingress has a Synced Event naming its shared parent.
    let address = wait_for("the ADDRESS of vmug/hackazon", WAIT, || {
        let ing = kubectl_json(&cluster, &["-n", "vmug", "get", "ingress", "hackazon"]);
        let lb = &ing["status"]["loadBalancer"]["ingress"][0];
        (lb["hostname"] == "hackazon.avi.jarvis.lab")
            .then(|| lb["ip"].as_str()?.parse::<std::net::IpAddr>().ok())
            .flatten()
            .filter(|ip| net.contains(ip))
    });
    assert_ne!(address, vip);
    wait_for("a Synced Event on the Ingress hackazon", WAIT, || {
        let e = cluster.must(
            &[
                "-n",
                "vmug",
                "get",
                "events",
                "--field-selector",
                "involvedObject.kind=Ingress,involvedObject.name=hackazon,reason=Synced",
                "-o",
                "json",
            ],
            None,
        );
        e.contains("veba-of--Shared-L7-0").then_some(())
    });
    // The chart's validating webhook answers with ako's rules (the DNS profile's subdomain avi.jarvis.lab).
    let out = cluster.kubectl(
        &[
            "apply",
            "-f",
            common::repo()
                .join("examples/demo/outside.yaml")
                .to_str()
                .expect("path"),
        ],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("ingress.ako.vmware.com")
            && err.contains("avi.jarvis.lab"),
        "{err}"
    );
    // Those answers came from this ako process (its audit lines), over the certificate from the chart's Secret.
    assert!(ako.log().contains("hackazon"), "{}", logs());
    let served = std::fs::read(mounts["/run/ako/tls"].join("tls.crt")).expect("served cert");
    let stored = base64::engine::general_purpose::STANDARD
        .decode(secret_key(&cluster, "ako-webhook-tls", "tls.crt"))
        .expect("b64");
    assert_eq!(served, stored);

    // Two replicas: the Lease, held by ako-0.
    let lease = wait_for("the Lease ako-lease-lock", WAIT, || {
        let o = cluster.kubectl(
            &["-n", NS, "get", "lease", "ako-lease-lock", "-o", "json"],
            None,
        );
        o.status
            .success()
            .then(|| serde_json::from_slice::<Value>(&o.stdout).expect("lease"))
    });
    assert!(
        lease["spec"]["holderIdentity"]
            .as_str()
            .is_some_and(|h| h.starts_with("ako-0_")),
        "{lease}"
    );

    // Rotation (webhook.certificates=self): an unusable CA key makes ako issue a new CA; both configurations get
    // the new bundle (new CA + the old one) and the API server keeps calling the webhook.
    let old_ca = secret_key(&cluster, "ako-webhook-tls", "ca.crt");
    cluster.must(
        &[
            "-n",
            NS,
            "patch",
            "secret",
            "ako-webhook-tls",
            "--type=merge",
            "-p",
            r#"{"data":{"ca.key":"bm90IGEga2V5"}}"#,
        ],
        None,
    );
    let bundle = wait_for("a new webhook CA", WAIT, || {
        let ca = secret_key(&cluster, "ako-webhook-tls", "ca.crt");
        (ca != old_ca).then(|| secret_key(&cluster, "ako-webhook-tls", "ca-bundle.crt"))
    });
    wait_for("the new caBundle on both configurations", WAIT, || {
        [
            "validatingwebhookconfiguration",
            "mutatingwebhookconfiguration",
        ]
        .iter()
        .all(|k| ca_bundles(&cluster, k).iter().all(|b| *b == bundle))
        .then_some(())
    });
    let renewed = base64::engine::general_purpose::STANDARD
        .decode(secret_key(&cluster, "ako-webhook-tls", "tls.crt"))
        .expect("b64");
    wait_for("ako serving the renewed certificate", WAIT, || {
        (std::fs::read(mounts["/run/ako/tls"].join("tls.crt")).ok()? == renewed).then_some(())
    });
    // The webhook reloads the files within its reload period (10 s) and says so.
    wait_for(
        "the webhook reloading the renewed certificate",
        WAIT,
        || {
            ako.log()
                .contains("serving certificate reloaded")
                .then_some(())
        },
    );
    cluster.must(
        &["apply", "-f", "-"],
        Some("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: shop, namespace: vmug, annotations: {kubernetes.io/ingress.class: avi}}\n\
              spec:\n  rules:\n  - host: shop.avi.jarvis.lab\n    http:\n      paths:\n      - {path: /, pathType: Prefix, backend: {service: {name: hackazon, port: {number: 80}}}}\n"),
    );
    let shop = kubectl_json(&cluster, &["-n", "vmug", "get", "ingress", "shop"]);
    assert_eq!(
        shop["spec"]["ingressClassName"], "avi-lb",
        "mutated after the rotation: {shop}"
    );

    let log = ako.log();
    assert!(
        !log.to_ascii_lowercase().contains("forbidden"),
        "ako hit RBAC limits:\n{}",
        logs()
    );
    drop(ako);
    drop(emulator);
}
