//! The end-to-end lab shared by the reconciler's end-to-end tests: a real control plane (kube-apiserver 1.20.2 +
//! etcd + kube-controller-manager), an `ako emulator` process, `ako controller` processes, and helpers to read
//! both sides. Each test builds its own lab.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ako::avi::{AviClient, ClientConfig, Credentials};
use ako::emulator::CounterSnapshot;
use k8s_openapi::api::core::v1::Service;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use serde_json::Value;

use crate::common::{self, Cluster};

pub const CLUSTER_NAME: &str = "veba-of";
pub const OWNER: &str = "ako-veba-of";
pub const PASSWORD: &str = "e2e-reconcile-pw";
pub const VIP_NETWORKS: &str = r#"[{"networkName":"dpg-sedatapath-18","cidr":"10.10.18.0/26"}]"#;
pub const VIP_NET: &str = "10.10.18.0/26";
pub const DOMAIN: &str = "avi.jarvis.lab";
/// Bound of the waits for an expected state.
pub const WAIT: Duration = Duration::from_secs(30);
/// The object types ako writes for an L4 Service.
pub const L4_TYPES: [&str; 4] = ["vsvip", "pool", "l4policyset", "virtualservice"];
/// Every object type ako writes.
pub const ALL_TYPES: [&str; 7] = [
    "vsvip",
    "sslkeyandcertificate",
    "pool",
    "poolgroup",
    "l4policyset",
    "httppolicyset",
    "virtualservice",
];

pub fn ako() -> &'static str {
    env!("CARGO_BIN_EXE_ako")
}

/// A process started through scripts/run-while.sh (so it never outlives the test process), stopped on drop.
pub struct Proc {
    pub name: String,
    pub wrapper: Child,
    pub log: PathBuf,
    pub pid: Option<u32>,
}

impl Proc {
    pub fn spawn(name: &str, log: PathBuf, args: &[String], env: &[(String, String)]) -> Proc {
        let file = std::fs::File::create(&log).expect("log file");
        let wrapper = Command::new(common::repo().join("scripts/run-while.sh"))
            .arg(std::process::id().to_string())
            .arg(ako())
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {name}: {e}"));
        let mut p = Proc {
            name: name.to_string(),
            wrapper,
            log,
            pid: None,
        };
        p.pid = Some(p.find_pid());
        p
    }

    /// The ako process the wrapper started (a child of the wrapper running the ako binary).
    pub fn find_pid(&self) -> u32 {
        let exe = std::fs::canonicalize(ako()).expect("ako binary");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = Command::new("pgrep")
                .arg("-P")
                .arg(self.wrapper.id().to_string())
                .output()
                .expect("pgrep");
            for pid in String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
            {
                if std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == exe) {
                    return pid;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{} did not start; log:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn count(&self, needle: &str) -> usize {
        self.log().matches(needle).count()
    }

    pub fn signal(&self, sig: &str) {
        if let Some(pid) = self.pid {
            let _ = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(pid.to_string())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Waits (bounded) until the wrapper has exited, which it does once the ako process is gone.
    pub fn wait_exit(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if matches!(self.wrapper.try_wait(), Ok(Some(_))) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// SIGTERM (ako shuts down cleanly), SIGKILL after 15 s; whether it stopped on SIGTERM.
    pub fn stop(&mut self) -> bool {
        if self.pid.is_none() {
            return true;
        }
        self.signal("TERM");
        let clean = self.wait_exit(Duration::from_secs(15));
        if !clean {
            self.signal("KILL");
            let _ = self.wrapper.kill();
            let _ = self.wrapper.wait();
        }
        self.pid = None;
        clean
    }

    /// SIGKILL: no clean shutdown, no step-down.
    pub fn kill_hard(&mut self) {
        self.signal("KILL");
        assert!(
            self.wait_exit(Duration::from_secs(10)),
            "{} still running",
            self.name
        );
        self.pid = None;
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// One test's world: a control plane with controller-manager, an `ako emulator`, and clients of both.
pub struct Lab {
    pub cluster: Cluster,
    pub emulator: Option<Proc>,
    pub avi_host: String,
    pub ca_path: PathBuf,
    pub http: reqwest::Client,
    pub avi: AviClient,
    pub kube: Client,
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut e) = self.emulator.take() {
            let _ = e.stop();
        }
        self.cluster.stop();
    }
}

impl Lab {
    pub async fn start() -> Lab {
        ako::certs::install_crypto_provider();
        let cluster = Cluster::start_with_controller_manager();
        let state = cluster.dir.path().join("emulator");
        let port = common::free_port();
        let avi_host = format!("127.0.0.1:{port}");
        let emulator = Proc::spawn(
            "ako emulator",
            cluster.dir.path().join("emulator.log"),
            &[
                "--log-format".into(),
                "text".into(),
                "emulator".into(),
                "--listen".into(),
                avi_host.clone(),
                "--state-dir".into(),
                state.display().to_string(),
                "--admin-password".into(),
                PASSWORD.into(),
                "--no-fsync".into(),
            ],
            &[],
        );
        let ca_path = state.join("ca.crt");
        let deadline = Instant::now() + WAIT;
        let (http, ca) = loop {
            if let Ok(ca) = std::fs::read_to_string(&ca_path)
                && ca.contains("END CERTIFICATE")
            {
                let tls = ako::avi::tls::client_tls_config(Some(&ca), false).expect("tls");
                let http = reqwest::Client::builder()
                    .tls_backend_preconfigured(tls)
                    .build()
                    .expect("http client");
                if http
                    .get(format!("https://{avi_host}/admin/counters"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
                {
                    break (http, ca);
                }
            }
            assert!(
                Instant::now() < deadline,
                "the emulator did not answer; log:\n{}",
                emulator.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let mut c = ClientConfig::new(avi_host.clone(), Credentials::password("admin", PASSWORD));
        c.ca_pem = Some(ca);
        let avi = AviClient::new(c).expect("avi client");
        let kubeconfig = Kubeconfig::read_from(&cluster.kubeconfig).expect("kubeconfig");
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .expect("kube config");
        let kube = Client::try_from(config).expect("kube client");
        Lab {
            cluster,
            emulator: Some(emulator),
            avi_host,
            ca_path,
            http,
            avi,
            kube,
        }
    }

    /// Starts `ako controller` (id: its POD_NAME and log name) with the lab's configuration plus `extra`
    /// arguments and `env` (which may override KUBECONFIG).
    pub fn controller(&self, id: &str, extra: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut args: Vec<String> = [
            "--log-format",
            "text",
            "controller",
            "--controller-host",
            &self.avi_host,
            "--se-group",
            "vmug-se-group",
            "--vip-network-list",
            VIP_NETWORKS,
            "--log-level",
            "INFO",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut vars: Vec<(String, String)> = vec![
            (
                "KUBECONFIG".into(),
                self.cluster.kubeconfig.display().to_string(),
            ),
            ("CLUSTER_NAME".into(), CLUSTER_NAME.into()),
            ("AVI_USERNAME".into(), "admin".into()),
            ("AVI_PASSWORD".into(), PASSWORD.into()),
            ("AVI_CA_DATA".into(), self.ca_path.display().to_string()),
            ("POD_NAME".into(), id.into()),
            // Loopback, and a free port: several controllers run side by side.
            ("AKO_HEALTH_LISTEN".into(), "127.0.0.1:0".into()),
        ];
        for (k, v) in env {
            vars.retain(|(have, _)| have != k);
            vars.push((k.to_string(), v.to_string()));
        }
        Proc::spawn(
            id,
            self.cluster.dir.path().join(format!("{id}.log")),
            &args,
            &vars,
        )
    }

    /// The last lines of every process log of this lab (for failure messages).
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let Ok(dir) = std::fs::read_dir(self.cluster.dir.path()) else {
            return out;
        };
        let mut files: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .filter(|p| {
                let n = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                n.starts_with("ako") || n == "emulator.log"
            })
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            out.push_str(&format!(
                "--- {} (last {} lines)\n{}\n",
                f.display(),
                tail.len(),
                tail.join("\n")
            ));
        }
        out
    }

    /// Polls `probe` until it yields a value, at most `within`.
    pub async fn wait<T>(
        &self,
        what: &str,
        within: Duration,
        mut probe: impl AsyncFnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + within;
        loop {
            if let Some(v) = probe().await {
                return v;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {within:?} waiting for {what}\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until `p`'s log holds `needle` at least `n` times.
    pub async fn wait_log(&self, p: &Proc, needle: &str, n: usize, within: Duration) {
        self.wait(
            &format!("{n}x {needle:?} in the log of {}", p.name),
            within,
            async || (p.count(needle) >= n).then_some(()),
        )
        .await;
    }

    pub fn kubectl(&self, args: &[&str]) -> String {
        self.cluster.must(args, None)
    }

    pub fn apply(&self, yaml: &str) {
        self.cluster.must(&["apply", "-f", "-"], Some(yaml));
    }

    pub fn namespace(&self, ns: &str) {
        self.cluster.namespace(ns);
    }

    pub async fn service(&self, ns: &str, name: &str) -> Option<Service> {
        Api::<Service>::namespaced(self.kube.clone(), ns)
            .get_opt(name)
            .await
            .expect("read Service")
    }

    /// `status.loadBalancer.ingress` as (ip, hostname) pairs.
    pub async fn ingress(&self, ns: &str, name: &str) -> Vec<(Option<String>, Option<String>)> {
        self.service(ns, name)
            .await
            .and_then(|s| s.status?.load_balancer?.ingress)
            .unwrap_or_default()
            .into_iter()
            .map(|i| (i.ip, i.hostname))
            .collect()
    }

    /// Waits for the Service's VIP (an address inside the VIP network) in its status.
    pub async fn wait_vip(&self, ns: &str, name: &str) -> std::net::IpAddr {
        self.wait_vip_within(ns, name, WAIT).await
    }

    /// Like `wait_vip`, with another bound (injected faults make convergence slower: retries back off).
    pub async fn wait_vip_within(
        &self,
        ns: &str,
        name: &str,
        within: Duration,
    ) -> std::net::IpAddr {
        let net: ipnet::IpNet = VIP_NET.parse().expect("net");
        self.wait(
            &format!("a VIP in the status of Service {ns}/{name}"),
            within,
            async || {
                self.ingress(ns, name)
                    .await
                    .into_iter()
                    .filter_map(|(ip, _)| ip?.parse::<std::net::IpAddr>().ok())
                    .find(|ip| net.contains(ip))
            },
        )
        .await
    }

    /// The `Synced` Events of a Service, as `kubectl get events` lists them (waits until there is one).
    pub async fn synced_events(&self, ns: &str, name: &str) -> Vec<Value> {
        self.events("Service", ns, name, "Synced").await
    }

    /// The Events of an object with this reason, as `kubectl get events` lists them (waits until there is one).
    pub async fn events(&self, kind: &str, ns: &str, name: &str, reason: &str) -> Vec<Value> {
        let selector =
            format!("involvedObject.kind={kind},involvedObject.name={name},reason={reason}");
        self.wait(
            &format!("a {reason} Event on {kind} {ns}/{name}"),
            WAIT,
            async || {
                let out = self.kubectl(&[
                    "get",
                    "events",
                    "-n",
                    ns,
                    "--field-selector",
                    &selector,
                    "-o",
                    "json",
                ]);
                let v: Value = serde_json::from_str(&out).expect("events json");
                let items = v["items"].as_array().cloned().unwrap_or_default();
                (!items.is_empty()).then_some(items)
            },
        )
        .await
    }

    /// A GET of the test's own: while faults are injected, they hit the test's reads too, so a failed read is
    /// tried again (up to 50 times, 20 ms apart) before the test gives up.
    pub async fn read(&self, path: &str) -> Value {
        let mut last = String::new();
        for _ in 0..50 {
            match self.avi.get_json::<Value>(path).await {
                Ok(v) => return v,
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("reading {path}: {last}")
    }

    /// Every object of type `ty` ako created (raw JSON as the controller returns it): by `created_by`, or for a
    /// VsVip (no such field in its schema) by name prefix and `clustername` marker.
    pub async fn objects(&self, ty: &str) -> Vec<Value> {
        if ty == "vsvip" {
            let page = self
                .read(&format!(
                    "/api/vsvip?name.contains={CLUSTER_NAME}--&page_size=200"
                ))
                .await;
            return page["results"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|o| marker(o, "clustername") == Some(vec![CLUSTER_NAME.into()]))
                .collect();
        }
        let page = self
            .read(&format!("/api/{ty}?created_by={OWNER}&page_size=200"))
            .await;
        page["results"].as_array().cloned().unwrap_or_default()
    }

    pub async fn object(&self, ty: &str, name: &str) -> Option<Value> {
        let page = self.read(&format!("/api/{ty}?name={name}")).await;
        page["results"].as_array()?.first().cloned()
    }

    /// Names of every object ako created, as `type/name`.
    pub async fn owned(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for ty in ALL_TYPES {
            for o in self.objects(ty).await {
                out.insert(format!("{ty}/{}", o["name"].as_str().unwrap_or_default()));
            }
        }
        out
    }

    /// A pool's servers as sorted `ip:port`, `None` while the pool does not exist.
    pub async fn pool_servers(&self, name: &str) -> Option<Vec<String>> {
        let pool = self.object("pool", name).await?;
        let mut servers: Vec<String> = pool["servers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| format!("{}:{}", s["ip"]["addr"].as_str().unwrap_or("?"), s["port"]))
            .collect();
        servers.sort();
        Some(servers)
    }

    /// The emulator's request journal from position `since` (every page).
    pub async fn requests(&self, since: u64) -> Vec<ako::emulator::requests::RequestRecord> {
        let mut out = Vec::new();
        let mut next = since;
        loop {
            let page: Value = self
                .http
                .get(format!(
                    "https://{}/admin/requests?since={next}&limit=10000",
                    self.avi_host
                ))
                .send()
                .await
                .expect("requests")
                .json()
                .await
                .expect("requests json");
            let records: Vec<ako::emulator::requests::RequestRecord> =
                serde_json::from_value(page["requests"].clone()).expect("records");
            if records.is_empty() {
                return out;
            }
            next = page["next"].as_u64().expect("next");
            out.extend(records);
        }
    }

    /// The position the emulator's next request will have.
    pub async fn request_seq(&self) -> u64 {
        self.requests(0).await.last().map_or(0, |r| r.seq + 1)
    }

    /// The DELETEs the emulator answered since `since`, as `type name`.
    pub async fn deletes_since(&self, since: u64) -> Vec<String> {
        self.requests(since)
            .await
            .into_iter()
            .filter(|r| r.method == "DELETE")
            .map(|r| format!("{} {}", r.kind, r.name.unwrap_or_default()))
            .collect()
    }

    /// `type/name` -> uuid of every object ako created.
    pub async fn owned_uuids(&self) -> std::collections::BTreeMap<String, String> {
        let mut out = std::collections::BTreeMap::new();
        for ty in ALL_TYPES {
            for o in self.objects(ty).await {
                out.insert(
                    format!("{ty}/{}", o["name"].as_str().unwrap_or_default()),
                    o["uuid"].as_str().unwrap_or_default().to_string(),
                );
            }
        }
        out
    }

    pub async fn counters(&self) -> CounterSnapshot {
        self.http
            .get(format!("https://{}/admin/counters", self.avi_host))
            .send()
            .await
            .expect("counters")
            .json()
            .await
            .expect("counters json")
    }

    pub async fn reset_counters(&self) {
        let r = self
            .http
            .delete(format!("https://{}/admin/counters", self.avi_host))
            .send()
            .await
            .expect("reset counters");
        assert!(r.status().is_success());
    }

    /// The write counters once they stopped moving for 2 s (bounded by 20 s): what a pass wrote, in full.
    pub async fn settled_counters(&self) -> CounterSnapshot {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = self.counters().await;
        let mut since = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = self.counters().await;
            if now.writes == last.writes && since.elapsed() >= Duration::from_secs(2) {
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "the controller kept writing: {:?}\n{}",
                now.by_method,
                self.logs()
            );
            if now.writes != last.writes {
                last = now;
                since = Instant::now();
            }
        }
    }

    /// POSTs of ako's object types (logins left out).
    pub fn posts(c: &CounterSnapshot) -> u64 {
        L4_TYPES.iter().map(|t| c.get("POST", t)).sum()
    }
}

pub fn demo_service(ns: &str, name: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {ns}}}
spec:
  type: LoadBalancer
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: web, protocol: TCP}}]
"#
    )
}

pub fn vs_name(ns: &str, svc: &str) -> String {
    format!("{CLUSTER_NAME}--{ns}-{svc}")
}

pub fn pool_name(ns: &str, svc: &str, proto: &str, port: u16) -> String {
    format!("{CLUSTER_NAME}--{ns}-{svc}-{proto}-{port}")
}

/// The object names of one single-port Service.
pub fn objects_of(ns: &str, svc: &str, port: u16) -> BTreeSet<String> {
    let vs = vs_name(ns, svc);
    [
        format!("vsvip/{vs}"),
        format!("pool/{}", pool_name(ns, svc, "TCP", port)),
        format!("l4policyset/{vs}"),
        format!("virtualservice/{vs}"),
    ]
    .into_iter()
    .collect()
}

pub fn marker(o: &Value, key: &str) -> Option<Vec<String>> {
    o["markers"]
        .as_array()?
        .iter()
        .find(|m| m["key"] == key)
        .and_then(|m| m["values"].as_array())
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
}

impl Lab {
    /// A kubeconfig for the ServiceAccount `default/<name>` (its token Secret, as 1.20 makes one), written into
    /// the lab's directory.
    pub async fn service_account_kubeconfig(&self, name: &str) -> PathBuf {
        let secret = self
            .wait("the ServiceAccount's token Secret", WAIT, async || {
                let jsonpath = "jsonpath={.secrets[0].name}";
                let n = self.kubectl(&[
                    "get",
                    "serviceaccount",
                    "-n",
                    "default",
                    name,
                    "-o",
                    jsonpath,
                ]);
                (!n.trim().is_empty()).then(|| n.trim().to_string())
            })
            .await;
        let token_b64 = self.kubectl(&[
            "get",
            "secret",
            "-n",
            "default",
            &secret,
            "-o",
            "jsonpath={.data.token}",
        ]);
        use base64::Engine;
        let token = String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(token_b64.trim())
                .expect("token base64"),
        )
        .expect("token");
        let path = self.cluster.dir.path().join(format!("{name}.kubeconfig"));
        kubeconfig_with_token(self, &token, &path);
        path
    }
}

/// A kubeconfig like the lab's, authenticating with `token`.
pub fn kubeconfig_with_token(lab: &Lab, token: &str, path: &Path) {
    let admin = std::fs::read_to_string(&lab.cluster.kubeconfig).expect("kubeconfig");
    let text: Vec<String> = admin
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("token:") {
                format!("    token: {token}")
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(path, text.join("\n") + "\n").expect("write kubeconfig");
}

/// ako's rights in Kubernetes for the ServiceAccount `account` (in `default`; its ClusterRole and binding are named
/// after it): what `ako controller` reads and writes, with the verbs on Services and on Secrets given by the test
/// (`None` leaves the resource out, for a test that grants it later with [`rbac_grant`]).
pub fn ako_rbac(account: &str, services: Option<&str>, secrets: Option<&str>) -> String {
    let optional = |resource: &str, verbs: Option<&str>| {
        verbs.map_or_else(String::new, |v| {
            format!("- apiGroups: [\"\"]\n  resources: [{resource}]\n  verbs: {v}\n")
        })
    };
    format!(
        r#"apiVersion: v1
kind: ServiceAccount
metadata: {{name: {account}, namespace: default}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: {account}}}
rules:
- apiGroups: [""]
  resources: [nodes, namespaces, endpoints, pods]
  verbs: [get, list, watch]
{services}- apiGroups: [""]
  resources: [services/status]
  verbs: [get, patch, update]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch, update]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [ingresses, ingressclasses]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [ingresses/status]
  verbs: [get, patch, update]
{secrets}- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, create, update]
- apiGroups: [ako.vmware.com]
  resources: [hostrules, httprules, aviinfrasettings, l4rules]
  verbs: [get, list, watch]
- apiGroups: [ako.vmware.com]
  resources: [hostrules/status, httprules/status, aviinfrasettings/status, l4rules/status]
  verbs: [patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {account}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {account}}}
subjects: [{{kind: ServiceAccount, name: {account}, namespace: default}}]
"#,
        services = optional("services", services),
        secrets = optional("secrets", secrets),
    )
}

/// One more right for `account`: `verbs` on `resource` (core group), as the ClusterRole and binding `role`.
pub fn rbac_grant(account: &str, role: &str, resource: &str, verbs: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {{name: {role}}}\nrules:\n- apiGroups: [\"\"]\n  resources: [{resource}]\n  verbs: {verbs}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: {role}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {role}}}\nsubjects: [{{kind: ServiceAccount, name: {account}, namespace: default}}]\n"
    )
}

pub const DEMO_YAML: &str = include_str!("../../examples/demo/demo.yaml");

/// The second application: its own namespace, a backend Service and an Ingress with a TLS Secret.
pub const SHOP_YAML: &str = r#"apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: shop}
spec:
  ingressClassName: avi-lb
  tls: [{hosts: [shop.avi.jarvis.lab], secretName: shop-tls}]
  rules:
  - host: shop.avi.jarvis.lab
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#;

impl Lab {
    /// `status.loadBalancer.ingress` of an Ingress as (ip, hostname) pairs.
    pub async fn ingress_status(
        &self,
        ns: &str,
        name: &str,
    ) -> Vec<(Option<String>, Option<String>)> {
        let ing =
            Api::<k8s_openapi::api::networking::v1::Ingress>::namespaced(self.kube.clone(), ns)
                .get_opt(name)
                .await
                .expect("read Ingress");
        ing.and_then(|i| i.status?.load_balancer?.ingress)
            .unwrap_or_default()
            .into_iter()
            .map(|i| (i.ip, i.hostname))
            .collect()
    }

    /// Waits for the address of `host` in an Ingress's status (inside the VIP network).
    pub async fn wait_ingress_vip(&self, ns: &str, name: &str, host: &str) -> std::net::IpAddr {
        let net: ipnet::IpNet = VIP_NET.parse().expect("net");
        self.wait(
            &format!("the address of {host} in the status of Ingress {ns}/{name}"),
            WAIT,
            async || {
                self.ingress_status(ns, name)
                    .await
                    .into_iter()
                    .filter(|(_, h)| h.as_deref() == Some(host))
                    .filter_map(|(ip, _)| ip?.parse::<std::net::IpAddr>().ok())
                    .find(|ip| net.contains(ip))
            },
        )
        .await
    }

    /// Creates (or replaces) the TLS Secret `shop/shop-tls` with a new certificate for the shop's host.
    pub fn shop_secret(&self) {
        let ca = ako::certs::generate_ca("shop.avi.jarvis.lab", 30).expect("certificate");
        let dir = self.cluster.dir.path();
        let (crt, key) = (dir.join("shop.crt"), dir.join("shop.key"));
        std::fs::write(&crt, &ca.cert_pem).expect("write crt");
        std::fs::write(&key, &ca.key_pem).expect("write key");
        let yaml = self.kubectl(&[
            "create",
            "secret",
            "tls",
            "shop-tls",
            "-n",
            "shop",
            "--cert",
            crt.to_str().expect("path"),
            "--key",
            key.to_str().expect("path"),
            "--dry-run=client",
            "-o",
            "yaml",
        ]);
        self.apply(&yaml);
    }
}
