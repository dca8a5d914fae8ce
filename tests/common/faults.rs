//! The fault-injection suite: two ako replicas (leader election) against a real API server and the emulator,
//! driven by a seeded random sequence of Kubernetes changes (Services, Ingresses, TLS Secrets, Nodes) and faults
//! (Avi 5xx, 429 with Retry-After, timeouts, dropped connections, expired sessions, a controller refusing every
//! write; RBAC taken away and given back; the API server restarted; `kill -9` of an ako replica). The emulator's
//! request journal is checked after every step:
//!
//! 1. no Avi object is deleted while a source object that claims it exists (its name is one the test's own model
//!    of the cluster says is wanted, and was wanted for longer than [`GRACE`]);
//! 2. no replica writes unless it is the last one to have acquired the lease (from the replicas' logs);
//! 3. while the controller refuses every write, the request rate stays bounded;
//!
//! and once faults stop:
//!
//! 4. every object the model wants exists, nothing else of ako's does (no leak), every status shows the VIP of
//!    its VsVip, and a full sync after that makes no write.
//!
//! `tests/e2e_faults.rs` runs a short sequence; `scripts/faults.sh` a long one (RELIABILITY.md).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::lab::*;

/// A claim must have held this long before a deletion of its object counts as a violation: a pass planned just
/// before the change that made the claim may still be running.
pub const GRACE: Duration = Duration::from_secs(5);
const NAMESPACES: [&str; 3] = ["red", "green", "blue"];
const DOMAIN: &str = "avi.jarvis.lab";

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

/// An Ingress as the suite made it: its host, paths and TLS Secret.
type IngressModel = (String, Vec<String>, Option<String>);

/// What the suite believes exists in the cluster.
#[derive(Debug, Default, Clone)]
struct Model {
    /// LoadBalancer Services: (ns, name) -> ports.
    services: BTreeMap<(String, String), Vec<u16>>,
    /// Ingresses: (ns, name) -> (host, paths, TLS Secret name).
    ingresses: BTreeMap<(String, String), IngressModel>,
    /// TLS Secrets: (ns, name).
    secrets: BTreeSet<(String, String)>,
    nodes: BTreeSet<String>,
}

impl Model {
    /// The Avi objects the model's sources claim, as `type/name`.
    fn claimed(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for ((ns, name), ports) in &self.services {
            let base = vs_name(ns, name);
            for t in ["vsvip", "virtualservice", "l4policyset"] {
                out.insert(format!("{t}/{base}"));
            }
            for p in ports {
                out.insert(format!("pool/{}", pool_name(ns, name, "TCP", *p)));
            }
        }
        for ((ns, _), (host, _, tls)) in &self.ingresses {
            let part = ako::core::l7::part_of(host, ako::core::l7::ShardSize::Large);
            let ako::core::l7::Part::Shard { index, .. } = part else {
                continue;
            };
            // A host asking for TLS whose Secret does not exist is not served at all.
            let secure = match tls {
                None => false,
                Some(secret) if self.secrets.contains(&(ns.clone(), secret.clone())) => true,
                Some(_) => continue,
            };
            let parent = ako::core::l7::shared_vs_name(CLUSTER_NAME, index);
            out.insert(format!("vsvip/{parent}"));
            out.insert(format!("virtualservice/{parent}"));
            out.insert(format!("httppolicyset/{parent}"));
            out.insert(format!("httppolicyset/{parent}--{host}"));
            if secure {
                out.insert(format!("virtualservice/{CLUSTER_NAME}--{host}"));
                out.insert(format!("sslkeyandcertificate/{CLUSTER_NAME}--{host}"));
                out.insert(format!("httppolicyset/{CLUSTER_NAME}--{ns}-{host}"));
            }
        }
        out
    }
}

/// When each object name was claimed: (from, to) in Unix ms, `to` open while claimed.
#[derive(Debug, Default)]
struct Claims {
    intervals: BTreeMap<String, Vec<(u64, Option<u64>)>>,
}

impl Claims {
    /// The claims from `at` on are `now` (an object claimed before and not now ends at `at`; a new one starts).
    fn set(&mut self, now: &BTreeSet<String>, at: u64) {
        for (name, list) in &mut self.intervals {
            if let Some((_, to @ None)) = list.last_mut()
                && !now.contains(name)
            {
                *to = Some(at);
            }
        }
        for name in now {
            let list = self.intervals.entry(name.clone()).or_default();
            if !matches!(list.last(), Some((_, None))) {
                list.push((at, None));
            }
        }
    }

    /// Whether `name` was claimed, for at least [`GRACE`], at `t`.
    fn held_at(&self, name: &str, t: u64) -> bool {
        let grace = u64::try_from(GRACE.as_millis()).unwrap_or(u64::MAX);
        self.intervals.get(name).is_some_and(|list| {
            list.iter()
                .any(|(from, to)| from.saturating_add(grace) <= t && to.is_none_or(|to| t < to))
        })
    }
}

/// How many of each fault were injected.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct FaultCounts {
    pub avi_5xx_windows: u32,
    pub avi_429_windows: u32,
    pub avi_timeout_windows: u32,
    pub avi_reset_windows: u32,
    pub avi_all_writes_fail_windows: u32,
    pub session_expiries: u32,
    pub rbac_removals: u32,
    pub apiserver_restarts: u32,
    pub ako_kills: u32,
    /// What the emulator says actually fired.
    pub emulator_fired: Value,
}

/// The suite's outcome.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    pub seed: u64,
    pub steps: u32,
    pub operations: BTreeMap<String, u32>,
    pub faults: FaultCounts,
    pub violations: Vec<String>,
    pub avi_requests: u64,
    pub avi_deletes: u64,
    /// Most refused requests (429, 5xx) in one second while the controller refused every write (from 10 s into
    /// such a window): the load ako's retries add to a controller in trouble.
    pub max_rps_while_failing: u64,
    /// Most requests of any kind in one second in the same windows (a restarted replica's full sync reads
    /// every object it owns, and the controller answers those).
    pub max_all_rps_while_failing: u64,
    /// From the end of faults to a full sync that found the Avi state as the model wants it.
    pub converge_ms: u64,
    pub objects_at_end: usize,
}

/// A replica: its current incarnation's process and log.
struct Replica {
    base: &'static str,
    incarnation: u32,
    proc: Option<Proc>,
}

impl Replica {
    fn id(&self) -> String {
        format!("{}-{}", self.base, self.incarnation)
    }
}

pub struct Suite {
    pub lab: Lab,
    rng: StdRng,
    kubeconfig: String,
    model: Model,
    claims: Claims,
    replicas: Vec<Replica>,
    /// Every incarnation that ran, for reading the leadership from logs.
    logs: Vec<(String, PathBuf)>,
    checked: u64,
    report: Report,
    next: u32,
    /// While set: the controller refuses every write, since this time (Unix ms).
    failing_since: Option<u64>,
    failing_windows: Vec<(u64, u64)>,
    /// When the current Avi fault ends, and steps left of the current RBAC removal.
    avi_fault_until: Option<Instant>,
    rbac_left: u32,
}

/// The rights the suite takes away and gives back, one at a time: reading Secrets, and reading Services.
const RBAC_REMOVABLE: [(&str, &str); 2] = [
    ("ako-faults-secrets", "secrets"),
    ("ako-faults-services", "services"),
];

/// The removable right `name` on `resource`, for the suite's ServiceAccount.
fn grant(name: &str, resource: &str) -> String {
    let verbs = if resource == "secrets" {
        "[get]"
    } else {
        "[get, list, watch]"
    };
    rbac_grant("ako-faults", name, resource, verbs)
}

impl Suite {
    pub async fn start(seed: u64) -> Suite {
        let lab = Lab::start().await;
        for ns in NAMESPACES {
            lab.namespace(ns);
            lab.apply(&format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: {ns}}}\nspec: {{ports: [{{port: 80, targetPort: 8080}}]}}\n"
            ));
        }
        // Everything ako needs, except what RBAC_REMOVABLE grants.
        lab.apply(&ako_rbac("ako-faults", None, Some("[list, watch]")));
        for (name, res) in RBAC_REMOVABLE {
            lab.apply(&grant(name, res));
        }
        let kubeconfig = lab
            .service_account_kubeconfig("ako-faults")
            .await
            .display()
            .to_string();
        let mut s = Suite {
            lab,
            rng: StdRng::seed_from_u64(seed),
            kubeconfig,
            model: Model::default(),
            claims: Claims::default(),
            replicas: vec![
                Replica {
                    base: "ako-a",
                    incarnation: 0,
                    proc: None,
                },
                Replica {
                    base: "ako-b",
                    incarnation: 0,
                    proc: None,
                },
            ],
            logs: Vec::new(),
            checked: 0,
            report: Report {
                seed,
                ..Report::default()
            },
            next: 0,
            failing_since: None,
            failing_windows: Vec::new(),
            avi_fault_until: None,
            rbac_left: 0,
        };
        for i in 0..2 {
            s.launch(i);
        }
        s
    }

    /// Starts the next incarnation of replica `i`.
    fn launch(&mut self, i: usize) {
        let r = &mut self.replicas[i];
        r.incarnation += 1;
        let id = r.id();
        let proc = self.lab.controller(
            &id,
            &[
                "--leader-election",
                "--full-sync-frequency",
                "15",
                "--deletion-guard-max-percent",
                "100",
                "--avi-request-timeout-seconds",
                "3",
            ],
            &[
                ("KUBECONFIG", self.kubeconfig.as_str()),
                ("POD_NAMESPACE", "default"),
            ],
        );
        self.logs.push((id, proc.log.clone()));
        self.replicas[i].proc = Some(proc);
    }

    fn count(&mut self, op: &str) {
        *self.report.operations.entry(op.to_string()).or_default() += 1;
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{}", self.next)
    }

    fn apply_ok(&self, yaml: &str) -> bool {
        self.lab.cluster.apply(yaml, &[]).0
    }

    fn service_yaml(ns: &str, name: &str, ports: &[u16]) -> String {
        let ports: Vec<String> = ports
            .iter()
            .map(|p| format!("{{name: p{p}, port: {p}, targetPort: 8080}}"))
            .collect();
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{type: LoadBalancer, ports: [{}]}}\n",
            ports.join(", ")
        )
    }

    fn ingress_yaml(
        ns: &str,
        name: &str,
        host: &str,
        paths: &[String],
        tls: &Option<String>,
    ) -> String {
        let paths: Vec<String> = paths
            .iter()
            .map(|p| format!("      - {{path: {p}, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}"))
            .collect();
        let tls = tls
            .as_ref()
            .map(|s| format!("  tls: [{{hosts: [{host}], secretName: {s}}}]\n"))
            .unwrap_or_default();
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  ingressClassName: avi-lb\n{tls}  rules:\n  - host: {host}\n    http:\n      paths:\n{}\n",
            paths.join("\n")
        )
    }

    fn secret_yaml(&self, ns: &str, name: &str, host: &str) -> String {
        let ca = ako::certs::generate_ca(host, 30).expect("certificate");
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
        format!(
            "apiVersion: v1\nkind: Secret\ntype: kubernetes.io/tls\nmetadata: {{name: {name}, namespace: {ns}}}\ndata:\n  tls.crt: {}\n  tls.key: {}\n",
            b64(&ca.cert_pem),
            b64(&ca.key_pem)
        )
    }

    /// The model changed (after the change was acknowledged: claims start now).
    fn claims_grow(&mut self) {
        let claimed = self.model.claimed();
        self.claims.set(&claimed, now_ms());
    }

    /// Runs `steps` random steps, checking the journal after each.
    pub async fn run(&mut self, steps: u32) {
        for _ in 0..steps {
            self.step().await;
            self.report.steps += 1;
            self.check().await;
            let pause = self.rng.random_range(50..400);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }

    async fn step(&mut self) {
        // Faults first: their windows open and close between changes.
        if let Some(until) = self.avi_fault_until {
            if Instant::now() >= until {
                self.avi_fault_until = None;
                self.clear_avi_faults().await;
            }
        } else if self.rng.random_bool(0.12) {
            self.avi_fault().await;
        }
        if self.rbac_left > 0 {
            self.rbac_left -= 1;
            if self.rbac_left == 0 {
                for (name, res) in RBAC_REMOVABLE {
                    self.lab.apply(&grant(name, res));
                }
            }
        } else if self.rng.random_bool(0.05) {
            let (name, _) = RBAC_REMOVABLE[self.rng.random_range(0..RBAC_REMOVABLE.len())];
            self.lab.kubectl(&["delete", "clusterrolebinding", name]);
            self.rbac_left = self.rng.random_range(3..8);
            self.report.faults.rbac_removals += 1;
        }
        if self.rng.random_bool(0.03) {
            self.restart_apiserver().await;
        }
        if self.rng.random_bool(0.04) {
            self.kill_a_replica().await;
        }
        if self.rng.random_bool(0.05) {
            self.expire_sessions().await;
        }
        self.change().await;
    }

    /// One random change of the cluster.
    async fn change(&mut self) {
        let ns = NAMESPACES[self.rng.random_range(0..NAMESPACES.len())].to_string();
        let roll = self.rng.random_range(0..100);
        match roll {
            0..=19 => {
                let name = self.fresh("s");
                let ports = vec![80];
                if self.apply_ok(&Self::service_yaml(&ns, &name, &ports)) {
                    self.model.services.insert((ns, name), ports);
                    self.claims_grow();
                    self.count("service create");
                }
            }
            20..=29 => {
                let Some(((ns, name), ports)) = self.pick(&self.model.services.clone()) else {
                    return;
                };
                // A port never used by this Service before: names are never reused.
                let mut new = ports.clone();
                new.push(ports.iter().max().copied().unwrap_or(80) + 1);
                if new.len() > 3 {
                    new.remove(0);
                }
                let before = self.model.clone();
                self.model
                    .services
                    .insert((ns.clone(), name.clone()), new.clone());
                // Claims the update ends, end before it is sent.
                self.claims.set(
                    &self
                        .model
                        .claimed()
                        .intersection(&before.claimed())
                        .cloned()
                        .collect(),
                    now_ms(),
                );
                if self.apply_ok(&Self::service_yaml(&ns, &name, &new)) {
                    self.claims_grow();
                    self.count("service update");
                } else {
                    self.model = before;
                    self.claims_grow();
                }
            }
            30..=41 => {
                let Some(((ns, name), _)) = self.pick(&self.model.services.clone()) else {
                    return;
                };
                self.model.services.remove(&(ns.clone(), name.clone()));
                self.claims.set(&self.model.claimed(), now_ms());
                self.lab
                    .kubectl(&["delete", "service", "-n", &ns, &name, "--ignore-not-found"]);
                self.count("service delete");
            }
            42..=59 => {
                let name = self.fresh("i");
                let host = format!("{name}.{ns}.{DOMAIN}");
                let tls = self.rng.random_bool(0.4).then(|| format!("{name}-tls"));
                if let Some(secret) = &tls
                    && self.apply_ok(&self.secret_yaml(&ns, secret, &host))
                {
                    self.model.secrets.insert((ns.clone(), secret.clone()));
                    self.count("secret create");
                }
                let paths = vec![format!("/p{}", self.next)];
                if self.apply_ok(&Self::ingress_yaml(&ns, &name, &host, &paths, &tls)) {
                    self.model.ingresses.insert((ns, name), (host, paths, tls));
                    self.claims_grow();
                    self.count("ingress create");
                }
            }
            60..=69 => {
                let Some(((ns, name), (host, mut paths, tls))) =
                    self.pick(&self.model.ingresses.clone())
                else {
                    return;
                };
                self.next += 1;
                paths.push(format!("/q{}", self.next));
                if paths.len() > 3 {
                    paths.remove(0);
                }
                if self.apply_ok(&Self::ingress_yaml(&ns, &name, &host, &paths, &tls)) {
                    self.model.ingresses.insert((ns, name), (host, paths, tls));
                    self.count("ingress update");
                }
            }
            70..=79 => {
                let Some(((ns, name), _)) = self.pick(&self.model.ingresses.clone()) else {
                    return;
                };
                self.model.ingresses.remove(&(ns.clone(), name.clone()));
                self.claims.set(&self.model.claimed(), now_ms());
                self.lab
                    .kubectl(&["delete", "ingress", "-n", &ns, &name, "--ignore-not-found"]);
                self.count("ingress delete");
            }
            80..=87 => {
                // Rotate or delete a TLS Secret.
                let secrets: BTreeMap<(String, String), ()> =
                    self.model.secrets.iter().map(|k| (k.clone(), ())).collect();
                let Some(((ns, name), ())) = self.pick(&secrets) else {
                    return;
                };
                if self.rng.random_bool(0.7) {
                    let host = format!("rotated.{DOMAIN}");
                    if self.apply_ok(&self.secret_yaml(&ns, &name, &host)) {
                        self.count("secret rotate");
                    }
                } else {
                    self.model.secrets.remove(&(ns.clone(), name.clone()));
                    self.claims.set(&self.model.claimed(), now_ms());
                    self.lab
                        .kubectl(&["delete", "secret", "-n", &ns, &name, "--ignore-not-found"]);
                    self.count("secret delete");
                }
            }
            _ => {
                if self.model.nodes.is_empty() || self.rng.random_bool(0.6) {
                    let name = self.fresh("node");
                    if self.apply_ok(&format!(
                        "apiVersion: v1\nkind: Node\nmetadata: {{name: {name}, labels: {{kubernetes.io/hostname: {name}}}}}\n"
                    )) {
                        self.model.nodes.insert(name);
                        self.count("node create");
                    }
                } else {
                    let nodes: BTreeMap<String, ()> =
                        self.model.nodes.iter().map(|n| (n.clone(), ())).collect();
                    if let Some((name, ())) = self.pick(&nodes) {
                        self.model.nodes.remove(&name);
                        self.lab
                            .kubectl(&["delete", "node", &name, "--ignore-not-found"]);
                        self.count("node delete");
                    }
                }
            }
        }
    }

    fn pick<K: Clone, V: Clone>(&mut self, map: &BTreeMap<K, V>) -> Option<(K, V)> {
        if map.is_empty() {
            return None;
        }
        let i = self.rng.random_range(0..map.len());
        map.iter().nth(i).map(|(k, v)| (k.clone(), v.clone()))
    }

    async fn put_faults(&self, faults: Value) {
        let url = format!("https://{}/admin/faults", self.lab.avi_host);
        let r = self
            .lab
            .http
            .put(url)
            .json(&faults)
            .send()
            .await
            .expect("set faults");
        assert!(r.status().is_success(), "faults refused: {faults}");
    }

    async fn avi_fault(&mut self) {
        let kind = self.rng.random_range(0..5);
        let faults = match kind {
            0 => {
                self.report.faults.avi_5xx_windows += 1;
                json!({"error_rates": {"500": 0.15, "503": 0.15}})
            }
            1 => {
                self.report.faults.avi_429_windows += 1;
                json!({"error_rates": {"429": 0.3}, "retry_after_secs": 1})
            }
            2 => {
                self.report.faults.avi_timeout_windows += 1;
                json!({"slow_rate": 0.15, "slow_ms": 4000})
            }
            3 => {
                self.report.faults.avi_reset_windows += 1;
                json!({"drop_rate": 0.15})
            }
            _ => {
                self.report.faults.avi_all_writes_fail_windows += 1;
                self.failing_since = Some(now_ms());
                json!({"error_rates": {"503": 1.0}, "writes_only": true, "retry_after_secs": 1})
            }
        };
        self.put_faults(faults).await;
        // A window long enough for ako to back off (the rate check starts 10 s into it).
        let secs = if kind == 4 {
            self.rng.random_range(25..45)
        } else {
            self.rng.random_range(4..15)
        };
        self.avi_fault_until = Some(Instant::now() + Duration::from_secs(secs));
    }

    async fn clear_avi_faults(&mut self) {
        self.put_faults(json!({})).await;
        if let Some(since) = self.failing_since.take() {
            self.failing_windows.push((since, now_ms()));
        }
    }

    async fn expire_sessions(&mut self) {
        let url = format!("https://{}/admin/sessions/expire", self.lab.avi_host);
        let _ = self.lab.http.post(url).send().await;
        self.report.faults.session_expiries += 1;
    }

    async fn restart_apiserver(&mut self) {
        let out = std::process::Command::new(crate::common::repo().join("scripts/cluster.sh"))
            .arg("restart-apiserver")
            .arg(self.lab.cluster.dir.path())
            .output()
            .expect("cluster.sh");
        assert!(
            out.status.success(),
            "API server restart: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.report.faults.apiserver_restarts += 1;
    }

    async fn kill_a_replica(&mut self) {
        let i = self.rng.random_range(0..self.replicas.len());
        if let Some(mut p) = self.replicas[i].proc.take() {
            p.kill_hard();
        }
        self.report.faults.ako_kills += 1;
        tokio::time::sleep(Duration::from_millis(self.rng.random_range(100..2000))).await;
        self.launch(i);
    }

    /// When each incarnation acquired the lease (Unix ms), in time order.
    fn acquisitions(&self) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        for (id, path) in &self.logs {
            let log = std::fs::read_to_string(path).unwrap_or_default();
            for line in log.lines().filter(|l| l.contains("acquired leadership")) {
                if let Some(t) = log_time(line) {
                    out.push((t, id.clone()));
                }
            }
        }
        out.sort();
        out
    }

    /// Checks invariants 1 and 2 on the journal records not checked yet.
    async fn check(&mut self) {
        let records = self.lab.requests(self.checked).await;
        let Some(last) = records.last() else {
            return;
        };
        self.checked = last.seq + 1;
        let acquisitions = self.acquisitions();
        for r in &records {
            self.report.avi_requests += 1;
            if !r.is_write() {
                continue;
            }
            if r.method == "DELETE" && r.status < 300 {
                self.report.avi_deletes += 1;
                let key = format!("{}/{}", r.kind, r.name.clone().unwrap_or_default());
                // A virtual service's kind in the journal is `virtualservice` for parents and children alike.
                if self.claims.held_at(&key, r.at_ms) {
                    self.report.violations.push(format!(
                        "deleted {key} at {} while a source claimed it",
                        r.at_ms
                    ));
                }
            }
            // Writes only by the last replica to have acquired the lease.
            let writer = acquisitions
                .iter()
                .rev()
                .find(|(t, _)| *t <= r.at_ms)
                .map(|(_, id)| id.clone());
            let by = r.agent.split('(').nth(1).map(|s| s.trim_end_matches(')'));
            if by.is_some() && by != writer.as_deref() {
                self.report.violations.push(format!(
                    "{} {} {} at {} by {:?} while {:?} held the lease",
                    r.method,
                    r.kind,
                    r.name.clone().unwrap_or_default(),
                    r.at_ms,
                    by,
                    writer
                ));
            }
        }
    }

    /// Stops every fault, waits for a full sync that finds everything as the model wants, and checks invariants
    /// 3 and 4.
    pub async fn finish(mut self) -> Report {
        self.clear_avi_faults().await;
        for (name, res) in RBAC_REMOVABLE {
            self.lab.apply(&grant(name, res));
        }
        for i in 0..self.replicas.len() {
            if self.replicas[i].proc.is_none() {
                self.launch(i);
            }
        }
        let stopped = Instant::now();
        let want = self.model.claimed();
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            let have: BTreeSet<String> = self.lab.owned().await;
            let missing: Vec<String> = want.difference(&have).cloned().collect();
            let leaked = self.leaked(&have).await;
            if missing.is_empty() && leaked.is_empty() && self.statuses_right().await.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                self.report.violations.push(format!(
                    "not converged 240 s after faults stopped: missing {missing:?}, leaked {leaked:?}, statuses {:?}",
                    self.statuses_right().await
                ));
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        self.report.converge_ms = u64::try_from(stopped.elapsed().as_millis()).unwrap_or(u64::MAX);
        // A full sync after that writes nothing.
        let leader = self.acquisitions().last().map(|(_, id)| id.clone());
        if let Some(path) = self
            .logs
            .iter()
            .find(|(id, _)| Some(id) == leader.as_ref())
            .map(|(_, p)| p.clone())
        {
            let syncs = |p: &PathBuf| {
                std::fs::read_to_string(p)
                    .unwrap_or_default()
                    .matches("full sync done")
                    .count()
            };
            let before = syncs(&path);
            let seq = self.lab.request_seq().await;
            let deadline = Instant::now() + Duration::from_secs(60);
            while syncs(&path) < before + 1 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            let writes: Vec<String> = self
                .lab
                .requests(seq)
                .await
                .into_iter()
                .filter(|r| r.is_write())
                .map(|r| format!("{} {} {}", r.method, r.kind, r.name.unwrap_or_default()))
                .collect();
            if !writes.is_empty() {
                self.report
                    .violations
                    .push(format!("a full sync after convergence wrote: {writes:?}"));
            }
        }
        self.check().await;
        // Invariant 3: requests per second while every write was refused, from 10 s into each window.
        let journal = self.lab.requests(0).await;
        let (mut max_failed, mut max_all) = (0, 0);
        for (from, to) in &self.failing_windows {
            let start = from + 10_000;
            let mut failed: BTreeMap<u64, u64> = BTreeMap::new();
            let mut all: BTreeMap<u64, u64> = BTreeMap::new();
            for r in journal.iter().filter(|r| r.at_ms >= start && r.at_ms < *to) {
                *all.entry(r.at_ms / 1000).or_default() += 1;
                if r.status == 429 || r.status >= 500 {
                    *failed.entry(r.at_ms / 1000).or_default() += 1;
                }
            }
            max_failed = max_failed.max(failed.values().copied().max().unwrap_or(0));
            max_all = max_all.max(all.values().copied().max().unwrap_or(0));
        }
        self.report.max_rps_while_failing = max_failed;
        self.report.max_all_rps_while_failing = max_all;
        self.report.objects_at_end = self.lab.owned().await.len();
        self.report.faults.emulator_fired =
            serde_json::to_value(self.lab.counters().await.faults).unwrap_or_default();
        self.report
    }

    /// ako's objects no source wants: key objects outside the model, pools and pool groups nothing refers to.
    async fn leaked(&self, have: &BTreeSet<String>) -> Vec<String> {
        let want = self.model.claimed();
        let mut referenced: BTreeSet<String> = BTreeSet::new();
        for ty in [
            "virtualservice",
            "httppolicyset",
            "poolgroup",
            "l4policyset",
        ] {
            let page = self
                .lab
                .read(&format!(
                    "/api/{ty}?created_by={OWNER}&include_name&page_size=200"
                ))
                .await;
            for o in page["results"].as_array().cloned().unwrap_or_default() {
                let mut refs = Vec::new();
                ako::core::plan::references(&o, "", &mut refs);
                referenced.extend(refs.into_iter().map(|r| r.replace(':', "/")));
            }
        }
        have.iter()
            .filter(|o| !want.contains(*o))
            .filter(|o| {
                let (ty, _) = o.split_once('/').unwrap_or_default();
                // L7 pools and pool groups are named by host and path: kept if something of ako's uses them.
                !(matches!(ty, "pool" | "poolgroup") && referenced.contains(*o))
            })
            .cloned()
            .collect()
    }

    /// Services and Ingresses whose status is not the VIP of their VsVip.
    async fn statuses_right(&self) -> Vec<String> {
        let mut wrong = Vec::new();
        let vip_of = async |name: &str| -> Option<String> {
            let o = self.lab.object("vsvip", name).await?;
            o["vip"][0]["ip_address"]["addr"].as_str().map(String::from)
        };
        for (ns, name) in self.model.services.keys() {
            let want = vip_of(&format!("{CLUSTER_NAME}--{ns}-{name}")).await;
            let have = self
                .lab
                .service(ns, name)
                .await
                .and_then(|s| s.status?.load_balancer?.ingress)
                .and_then(|i| i.first().and_then(|i| i.ip.clone()));
            if want.is_none() || have != want {
                wrong.push(format!("Service {ns}/{name}: {have:?} != {want:?}"));
            }
        }
        for ((ns, name), (host, _, tls)) in &self.model.ingresses {
            let ako::core::l7::Part::Shard { index, .. } =
                ako::core::l7::part_of(host, ako::core::l7::ShardSize::Large)
            else {
                continue;
            };
            let served = tls
                .as_ref()
                .is_none_or(|s| self.model.secrets.contains(&(ns.clone(), s.clone())));
            let want = if served {
                vip_of(&ako::core::l7::shared_vs_name(CLUSTER_NAME, index)).await
            } else {
                None
            };
            let have = self
                .lab
                .ingress_status(ns, name)
                .await
                .into_iter()
                .find(|(_, h)| h.as_deref() == Some(host.as_str()))
                .and_then(|(ip, _)| ip);
            if (served && want.is_none()) || have != want {
                wrong.push(format!("Ingress {ns}/{name} {host}: {have:?} != {want:?}"));
            }
        }
        wrong
    }
}

/// The Unix ms of a text log line (`2026-12-07T14:47:12.134911Z ...`, ANSI colours allowed).
fn log_time(line: &str) -> Option<u64> {
    let plain: String = {
        let mut out = String::new();
        let mut esc = false;
        for c in line.chars() {
            match (esc, c) {
                (false, '\u{1b}') => esc = true,
                (true, 'm') => esc = false,
                (true, _) => {}
                (false, c) => out.push(c),
            }
        }
        out
    };
    let stamp = plain.split_whitespace().next()?;
    let t: jiff::Timestamp = stamp.parse().ok()?;
    u64::try_from(t.as_millisecond()).ok()
}

#[cfg(test)]
mod checker_tests {
    use super::*;

    #[test]
    fn a_deletion_counts_against_a_claim_only_once_the_claim_has_held_for_the_grace() {
        let mut c = Claims::default();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        c.set(&names(&["pool/a"]), 1_000);
        c.set(&names(&[]), 20_000);
        c.set(&names(&["pool/a"]), 30_000);
        let grace = u64::try_from(GRACE.as_millis()).unwrap_or(0);
        let cases = [
            (1_000 + grace - 1, false, "within the grace of the claim"),
            (1_000 + grace, true, "claimed"),
            (19_999, true, "still claimed"),
            (20_000, false, "the source was deleted"),
            (30_000 + grace + 1, true, "claimed again"),
        ];
        for (t, held, what) in cases {
            assert_eq!(c.held_at("pool/a", t), held, "{what} at {t}");
        }
        assert!(!c.held_at("pool/b", 10_000), "never claimed");
    }

    #[test]
    fn log_lines_give_their_time_with_or_without_colours() {
        let plain = "2026-12-07T14:47:12.134Z  INFO acquired leadership identity=ako-a-1_x";
        let coloured = "\u{1b}[2m2026-12-07T14:47:12.134Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m acquired leadership";
        assert_eq!(log_time(plain), Some(1_796_654_832_134));
        assert_eq!(log_time(coloured), log_time(plain));
        assert_eq!(log_time("no time here"), None);
    }
}
