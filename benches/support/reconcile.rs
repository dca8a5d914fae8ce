//! The reconciler at scale (benches reconcile_l4 and reconcile_l7): a real kube-apiserver 1.20.2, `ako emulator`
//! adding a latency to each request, and `ako controller` as its own process (so its memory is its own). One
//! run measures:
//!
//! 1. **Cold start**: the workload already in the API server, an empty controller: time until every Service and
//!    Ingress has its status; Avi writes against the minimum; peak RSS of `ako controller`.
//! 2. Two **floors**, same run: the minimum writes alone through the same client and emulator, grouped and
//!    concurrent as the reconciler applies them (16 groups at a time; within a group, waves of one kind 8 at a
//!    time), and the status patches alone (32 at a time, as the reconciler writes them).
//! 3. **Warm restart** with nothing changed: writes (target 0) and time to converge, against the time to list
//!    the owned objects through the same client.
//! 4. **Edit latency**: one object edited with everything loaded (a Service's port, or an Ingress's path); time
//!    from the API server's answer to the emulator counting the write; p50/p99 over `edits` edits.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ako::avi::{AviClient, ClientConfig, Credentials};
use ako::core::index::ObjKey;
use ako::core::l7::{self, L7Input, ShardSize, TlsPair};
use ako::core::plan::{self, Desired, Step};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::json;

pub const PASSWORD: &str = "bench-pw";
pub const NS: &str = "bench";
const OWNER: &str = "ako-bench";

/// What is in the API server before the controller starts.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    pub services: usize,
    /// Ingresses with two paths each (to LoadBalancer Services of the workload); every tenth has TLS.
    pub ingresses: usize,
    pub edits: usize,
    pub latency_ms: u64,
    /// TLS Secrets no Ingress names (ako's Secret watch sees every TLS-typed Secret: the worst case for it).
    pub unrelated_secrets: usize,
    /// Nodes in the cluster (ClusterIP mode: watched, not pool members).
    pub nodes: usize,
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn ako_bin() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo().join("target"), PathBuf::from);
    let release = target.join("release/ako");
    if release.exists() {
        release
    } else {
        target.join("debug/ako")
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// A child process killed on drop.
pub struct Proc(pub Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    fn peak_rss_mib(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }
}

/// The lab seed plus a VIP network large enough for every Service (`bench-vip`, 10.200.0.0/16: data only).
fn bench_seed(dir: &Path) -> PathBuf {
    let seed =
        ako::emulator::seed_with_vip_network("bench-vip", "10.200.0.0/16".parse().expect("subnet"))
            .expect("seed");
    std::fs::create_dir_all(dir).expect("dir");
    let path = dir.join("seed.yaml");
    std::fs::write(&path, seed).expect("write seed");
    path
}

pub fn start_emulator(dir: &Path, port: u16, latency_ms: u64) -> Proc {
    start_emulator_with(dir, port, latency_ms, &[])
}

/// [`start_emulator`] with more flags (faults, a request log).
pub fn start_emulator_with(dir: &Path, port: u16, latency_ms: u64, extra: &[&str]) -> Proc {
    let seed = bench_seed(&dir.with_extension("seed"));
    let child = Command::new(ako_bin())
        .args([
            "--log-format",
            "text",
            "emulator",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--state-dir")
        .arg(dir)
        .args([
            "--admin-password",
            PASSWORD,
            "--no-fsync",
            "--fault-latency-ms",
            &latency_ms.to_string(),
        ])
        .args(extra)
        .arg("--seed")
        .arg(&seed)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ako emulator");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dir.join("ca.crt").exists() || std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    {
        assert!(Instant::now() < deadline, "the emulator did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Proc(child)
}

/// `ako controller`, or `AKO_BENCH_CONTROLLER_WRAP` (a profiler such as `heaptrack`) running it; its binary is
/// `AKO_BENCH_AKO_BIN` when set (say, a build with `--features system-alloc` for a heap profiler).
pub fn start_controller(kubeconfig: &Path, emu_dir: &Path, port: u16, log: &Path) -> Proc {
    let bin = std::env::var_os("AKO_BENCH_AKO_BIN").map_or_else(ako_bin, PathBuf::from);
    let mut cmd = match std::env::var_os("AKO_BENCH_CONTROLLER_WRAP") {
        Some(wrap) => {
            let mut c = Command::new(wrap);
            c.arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let child = cmd
        .args([
            "--log-format",
            "json",
            "controller",
            "--controller-host",
            &format!("127.0.0.1:{port}"),
        ])
        .args([
            "--se-group",
            "vmug-se-group",
            "--log-level",
            "INFO",
            "--full-sync-frequency",
            "0",
        ])
        .args([
            "--vip-network-list",
            r#"[{"networkName":"bench-vip","cidr":"10.200.0.0/16"}]"#,
        ])
        .env("KUBECONFIG", kubeconfig)
        .env("CLUSTER_NAME", "bench")
        .env("AKO_HEALTH_LISTEN", "127.0.0.1:0")
        .env("AVI_USERNAME", "admin")
        .env("AVI_PASSWORD", PASSWORD)
        .env("AVI_CA_DATA", emu_dir.join("ca.crt"))
        .stdout(std::fs::File::create(log).expect("log"))
        .stderr(Stdio::null())
        .spawn()
        .expect("ako controller");
    Proc(child)
}

fn avi_client(emu_dir: &Path, port: u16) -> AviClient {
    let mut c = ClientConfig::new(
        format!("127.0.0.1:{port}"),
        Credentials::password("admin", PASSWORD),
    )
    .with_cluster_name("bench");
    c.ca_pem = std::fs::read_to_string(emu_dir.join("ca.crt")).ok();
    AviClient::new(c).expect("client")
}

async fn writes(http: &reqwest::Client, port: u16) -> u64 {
    let v: serde_json::Value = http
        .get(format!("https://127.0.0.1:{port}/admin/counters"))
        .send()
        .await
        .expect("counters")
        .json()
        .await
        .expect("json");
    v["writes"].as_u64().unwrap_or(0)
}

pub fn service(i: usize) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": format!("svc-{i}"), "namespace": NS},
        "spec": {"type": "LoadBalancer", "ports": [{"name": "tcp", "port": 80, "targetPort": 8080}]}
    }))
    .expect("service")
}

pub fn tls_secret_name(i: usize) -> Option<String> {
    i.is_multiple_of(10).then(|| format!("tls-{i}"))
}

/// Ingress `i`: host `ing-<i>.avi.jarvis.lab`, a Prefix and an Exact path to two Services of the workload.
pub fn ingress(i: usize, services: usize, exact_path: &str) -> Ingress {
    let backend = |k: usize| json!({"service": {"name": format!("svc-{}", k % services.max(1)), "port": {"number": 80}}});
    let host = format!("ing-{i}.avi.jarvis.lab");
    let mut spec = json!({
        "ingressClassName": "avi-lb",
        "rules": [{"host": host, "http": {"paths": [
            {"path": "/app", "pathType": "Prefix", "backend": backend(i)},
            {"path": exact_path, "pathType": "Exact", "backend": backend(i + 1)},
        ]}}]
    });
    if let Some(secret) = tls_secret_name(i) {
        spec["tls"] = json!([{"hosts": [host], "secretName": secret}]);
    }
    serde_json::from_value(json!({
        "metadata": {"name": format!("ing-{i}"), "namespace": NS, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": spec
    }))
    .expect("ingress")
}

pub fn tls_pair() -> TlsPair {
    let ca = ako::certs::generate_ca("bench.avi.jarvis.lab", 30).expect("certificate");
    TlsPair {
        cert_pem: ca.cert_pem,
        key_pem: ca.key_pem,
        problem: None,
    }
}

/// Node `i`: data only (an address in 127.64.0.0/10's loopback range, never dialled).
fn node(i: usize) -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": format!("node-{i}"), "labels": {"kubernetes.io/hostname": format!("node-{i}")}},
        "spec": {"podCIDR": format!("10.{}.{}.0/24", 100 + i / 256, i % 256)},
        "status": {"addresses": [{"type": "InternalIP", "address": format!("127.64.{}.{}", i / 250, 1 + i % 250)}]}
    }))
    .expect("node")
}

fn secret(name: &str, pair: &TlsPair) -> Secret {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NS},
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": pair.cert_pem, "tls.key": pair.key_pem}
    }))
    .expect("secret")
}

/// Waits until every one of `n` objects of a kind in NS has a status ingress; returns the elapsed time since `t0`.
pub async fn until_all_have_status<K>(
    api: Api<K>,
    n: usize,
    t0: Instant,
    has: fn(&K) -> bool,
) -> Duration
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    if n == 0 {
        return Duration::ZERO;
    }
    let mut done: HashSet<String> = HashSet::new();
    // With backoff, as ako's own watches: an API-server hiccup is retried at a measured pace, not in a tight loop.
    let mut stream =
        std::pin::pin!(watcher::watcher(api, watcher::Config::default()).default_backoff());
    let deadline = t0 + Duration::from_secs(1200);
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline.into(), stream.next()).await {
        let obj = match ev {
            Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) => s,
            _ => continue,
        };
        let name = obj.meta().name.clone().unwrap_or_default();
        if has(&obj) {
            done.insert(name);
        } else {
            done.remove(&name);
        }
        if done.len() >= n {
            return t0.elapsed();
        }
    }
    panic!("only {} of {n} objects got a status", done.len());
}

pub fn service_has_status(s: &Service) -> bool {
    s.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref())
        .is_some_and(|i| !i.is_empty())
}

fn ingress_has_status(s: &Ingress) -> bool {
    s.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref())
        .is_some_and(|i| !i.is_empty())
}

/// Waits for a log line containing `needle` in `log` (the controller's JSON log).
fn until_log(log: &Path, needle: &str, count: usize, deadline: Duration) -> Duration {
    let t0 = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.matches(needle).count() >= count {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < deadline,
            "no {needle:?} in {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// The minimum writes of the workload, as groups of steps (one per Service, one per L7 part).
fn minimum_writes(w: &Workload, pair: &TlsPair) -> Vec<Vec<Step>> {
    let cfg = ako::core::config::Config {
        cluster_name: "bench".into(),
        dns_domains: vec!["avi.jarvis.lab".into()],
        ..Default::default()
    };
    let place = ako::core::l4::Placement {
        rhi: Default::default(),
        cluster_name: "bench".into(),
        tenant: "admin".into(),
        cloud: "Default-Cloud".into(),
        se_group: "vmug-se-group".into(),
        vrf: "global".into(),
        vip_network: Some(("bench-vip".into(), "10.200.0.0/16".parse().ok())),
        member_mode: ako::core::l4::MemberMode::ClusterIp,
        license_tier: Default::default(),
        vip_family: Default::default(),
    };
    let empty = plan::Observed::default();
    let mut groups: Vec<Vec<Step>> = Vec::new();
    let services: Vec<Service> = (0..w.services).map(service).collect();
    for svc in &services {
        let d = ako::core::l4::translate(
            &[ako::core::l4::ServiceInput {
                service: svc,
                endpoints: &[],
            }],
            &[],
            &cfg,
            &place,
        );
        groups.push(plan::plan(&d.objects, &empty, OWNER));
    }
    if w.ingresses > 0 {
        let ingresses: Vec<Ingress> = (0..w.ingresses)
            .map(|i| ingress(i, w.services, "/exact"))
            .collect();
        let refs: Vec<&Ingress> = ingresses.iter().collect();
        let inputs: Vec<ako::core::l4::ServiceInput<'_>> = services
            .iter()
            .map(|s| ako::core::l4::ServiceInput {
                service: s,
                endpoints: &[],
            })
            .collect();
        let secrets: BTreeMap<ObjKey, Option<TlsPair>> = (0..w.ingresses)
            .filter_map(tls_secret_name)
            .map(|n| (ObjKey::new(NS, n), Some(pair.clone())))
            .collect();
        let parts: BTreeSet<l7::Part> = (0..w.ingresses)
            .map(|i| l7::part_of(&format!("ing-{i}.avi.jarvis.lab"), ShardSize::Large))
            .collect();
        for part in &parts {
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
            let d = l7::translate(&input, &cfg, &place, ShardSize::Large);
            let objects: Vec<Desired> = d.objects;
            groups.push(plan::plan(&objects, &empty, OWNER));
        }
    }
    groups
}

/// Applies the groups as the reconciler does: 16 groups at a time, each in waves of one kind, 8 at a time.
async fn apply_floor(avi: &AviClient, groups: Vec<Vec<Step>>) {
    futures::stream::iter(groups)
        .for_each_concurrent(16, |group| async move {
            let mut waves: Vec<Vec<Step>> = Vec::new();
            for s in group {
                match waves.last_mut() {
                    Some(w) if w[0].kind() == s.kind() => w.push(s),
                    _ => waves.push(vec![s]),
                }
            }
            for wave in waves {
                futures::stream::iter(wave)
                    .for_each_concurrent(8, |s| async move {
                        ako::reconcile::apply::execute(
                            avi,
                            &s,
                            &ako::core::ownership::Identity::new("bench", None),
                        )
                        .await
                        .expect("floor write");
                    })
                    .await;
            }
        })
        .await;
}

fn patch_status(ip_host: Option<(&str, String)>) -> serde_json::Value {
    match ip_host {
        Some((ip, host)) => {
            json!({"status": {"loadBalancer": {"ingress": [{"ip": ip, "hostname": host}]}}})
        }
        None => json!({"status": {"loadBalancer": {"ingress": null}}}),
    }
}

/// Writes (or clears) every status of the workload, 32 at a time.
async fn all_statuses(client: &Client, w: &Workload, set: bool) -> Duration {
    let svcs: Api<Service> = Api::namespaced(client.clone(), NS);
    let ings: Api<Ingress> = Api::namespaced(client.clone(), NS);
    let t = Instant::now();
    let names = (0..w.services)
        .map(|i| (false, i))
        .chain((0..w.ingresses).map(|i| (true, i)));
    futures::stream::iter(names)
        .for_each_concurrent(32, |(is_ing, i)| {
            let (svcs, ings) = (svcs.clone(), ings.clone());
            async move {
                let pp = PatchParams::default();
                if is_ing {
                    let p = patch_status(
                        set.then(|| ("10.200.0.10", format!("ing-{i}.avi.jarvis.lab"))),
                    );
                    ings.patch_status(&format!("ing-{i}"), &pp, &Patch::Merge(&p))
                        .await
                        .expect("ingress status");
                } else {
                    let p = patch_status(
                        set.then(|| ("10.200.0.10", format!("svc-{i}.bench.avi.jarvis.lab"))),
                    );
                    svcs.patch_status(&format!("svc-{i}"), &pp, &Patch::Merge(&p))
                        .await
                        .expect("service status");
                }
            }
        })
        .await;
    t.elapsed()
}

/// Runs the whole measurement and prints it.
/// Stops a cluster started by `scripts/cluster.sh start` when dropped.
struct StopCluster(PathBuf);

impl Drop for StopCluster {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/cluster.sh"))
            .arg("stop")
            .arg(&self.0)
            .output();
    }
}

pub fn run(w: Workload) {
    ako::certs::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let work = tempfile::tempdir().expect("tmp");
        let cluster_dir = work.path().join("cluster");
        // Thousands of LoadBalancer Services need more node ports than the default range holds.
        let out = Command::new(repo().join("scripts/cluster.sh"))
            .arg("start")
            .arg(&cluster_dir)
            .args(["--watch-pid", &std::process::id().to_string()])
            .env("AKO_APISERVER_EXTRA_ARGS", "--service-node-port-range=30000-60000 --max-requests-inflight=800 --max-mutating-requests-inflight=400")
            .output()
            .expect("cluster.sh");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // Stopped when this run ends (the watchdog of `start` only fires when the whole benchmark exits, and a
        // benchmark of several sizes must not leave a cluster per size running beside the next).
        let _cluster = StopCluster(cluster_dir.clone());
        let kubeconfig = cluster_dir.join("kubeconfig");
        let kc = Kubeconfig::read_from(&kubeconfig).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.expect("config");
        let client = Client::try_from(config).expect("client");
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}})).expect("ns");
        Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.expect("namespace");

        let pair = tls_pair();
        println!("== creating {} LoadBalancer Services, {} Ingresses (2 paths each, a tenth with TLS)", w.services, w.ingresses);
        let svc_api: Api<Service> = Api::namespaced(client.clone(), NS);
        let ing_api: Api<Ingress> = Api::namespaced(client.clone(), NS);
        let sec_api: Api<Secret> = Api::namespaced(client.clone(), NS);
        let t = Instant::now();
        futures::stream::iter(0..w.services)
            .for_each_concurrent(32, |i| {
                let api = svc_api.clone();
                async move {
                    api.create(&PostParams::default(), &service(i)).await.expect("create service");
                }
            })
            .await;
        futures::stream::iter((0..w.ingresses).filter_map(tls_secret_name))
            .for_each_concurrent(32, |name| {
                let api = sec_api.clone();
                let s = secret(&name, &pair);
                async move {
                    api.create(&PostParams::default(), &s).await.expect("create secret");
                }
            })
            .await;
        futures::stream::iter(0..w.ingresses)
            .for_each_concurrent(32, |i| {
                let api = ing_api.clone();
                async move {
                    api.create(&PostParams::default(), &ingress(i, w.services, "/exact")).await.expect("create ingress");
                }
            })
            .await;
        futures::stream::iter(0..w.unrelated_secrets)
            .for_each_concurrent(32, |i| {
                let api = sec_api.clone();
                let s = secret(&format!("unrelated-{i}"), &pair);
                async move {
                    api.create(&PostParams::default(), &s).await.expect("create unrelated secret");
                }
            })
            .await;
        let node_api: Api<Node> = Api::all(client.clone());
        futures::stream::iter(0..w.nodes)
            .for_each_concurrent(32, |i| {
                let api = node_api.clone();
                async move {
                    api.create(&PostParams::default(), &node(i)).await.expect("create node");
                }
            })
            .await;
        println!(
            "   created in {:.1} s (and {} unrelated TLS Secrets, {} Nodes)",
            t.elapsed().as_secs_f64(),
            w.unrelated_secrets,
            w.nodes
        );

        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(ako::avi::tls::client_tls_config(None, true).expect("tls"))
            .build()
            .expect("http");

        // Floor 1: the minimum writes alone, through the same client, grouped as the reconciler groups them.
        let floor_dir = work.path().join("emu-floor");
        let port = free_port();
        let groups = minimum_writes(&w, &pair);
        let minimum: usize = groups.iter().map(Vec::len).sum();
        let floor_writes = {
            let _emu = start_emulator(&floor_dir, port, w.latency_ms);
            let avi = avi_client(&floor_dir, port);
            let t = Instant::now();
            apply_floor(&avi, groups).await;
            (t.elapsed(), writes(&http, port).await)
        };
        println!("   floor, minimum Avi writes alone: {} writes in {:.2} s", floor_writes.1, floor_writes.0.as_secs_f64());

        // Floor 2: the status patches alone, same concurrency; then cleared, so the cold start writes each.
        let floor_status = all_statuses(&client, &w, true).await;
        println!("   floor, {} status patches alone: {:.2} s", w.services + w.ingresses, floor_status.as_secs_f64());
        all_statuses(&client, &w, false).await;

        // 1. Cold start.
        let emu_dir = work.path().join("emu");
        let port = free_port();
        let _emu = start_emulator(&emu_dir, port, w.latency_ms);
        let log1 = work.path().join("controller-1.log");
        let t0 = Instant::now();
        let ctl = start_controller(&kubeconfig, &emu_dir, port, &log1);
        let (svc_done, ing_done) = tokio::join!(
            until_all_have_status(svc_api.clone(), w.services, t0, service_has_status),
            until_all_have_status(ing_api.clone(), w.ingresses, t0, ingress_has_status),
        );
        let cold = svc_done.max(ing_done);
        let cold_writes = writes(&http, port).await;
        let rss_cold = ctl.peak_rss_mib();
        let larger_floor = floor_writes.0.max(floor_status);
        println!("== cold start, {} Services + {} Ingresses, +{} ms per Avi request", w.services, w.ingresses, w.latency_ms);
        println!("   every status written after {:.2} s ({:.2}x the larger floor, {:.2} s)", cold.as_secs_f64(), cold.as_secs_f64() / larger_floor.as_secs_f64(), larger_floor.as_secs_f64());
        println!("   Avi writes: {cold_writes} (minimum {minimum})");
        println!("   peak RSS of ako controller: {rss_cold:.0} MiB");
        if std::env::var_os("AKO_BENCH_COLD_ONLY").is_some() {
            return;
        }

        // 4. Edit latency, everything loaded.
        until_log(&log1, "full sync done", 1, Duration::from_secs(300));
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut lat = Vec::new();
        for e in 0..w.edits {
            let before = writes(&http, port).await;
            let t = Instant::now();
            if w.ingresses > 0 {
                let i = (e * 97) % w.ingresses;
                let edited = ingress(i, w.services, &format!("/exact-{e}"));
                let patch = json!({"spec": edited.spec});
                ing_api.patch(&format!("ing-{i}"), &PatchParams::default(), &Patch::Merge(&patch)).await.expect("edit");
            } else {
                let i = (e * 97) % w.services;
                let port_no = 81 + (e / w.services) % 2; // every edit changes the port of a Service
                let patch = json!({"spec": {"ports": [{"name": "tcp", "port": port_no, "targetPort": 8080}]}});
                svc_api.patch(&format!("svc-{i}"), &PatchParams::default(), &Patch::Merge(&patch)).await.expect("edit");
            }
            let t_api = Instant::now();
            loop {
                if writes(&http, port).await > before {
                    break;
                }
                assert!(t.elapsed() < Duration::from_secs(10), "edit {e} was not written to Avi");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            lat.push(t_api.elapsed().as_secs_f64() * 1000.0);
            // Let the rest of the edit's writes land before the next one.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !lat.is_empty() {
            let (p50, p99) = (pct(&mut lat, 0.5), pct(&mut lat, 0.99));
            let what = if w.ingresses > 0 { "Ingress path" } else { "Service port" };
            println!("== one {what} edit with everything loaded: API server write -> first Avi write p50 {p50:.1} ms, p99 {p99:.1} ms ({} edits)", w.edits);
        }
        // Let the last edits' writes (a shard's policy set is large) land before stopping the controller, so the
        // warm restart finds nothing of them left to do.
        let mut last = writes(&http, port).await;
        let mut quiet_since = Instant::now();
        while quiet_since.elapsed() < Duration::from_secs(3) {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = writes(&http, port).await;
            if now != last {
                last = now;
                quiet_since = Instant::now();
            }
        }
        drop(ctl);

        // 3. Warm restart.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let settle = writes(&http, port).await;
        let log2 = work.path().join("controller-2.log");
        let t0 = Instant::now();
        let ctl2 = start_controller(&kubeconfig, &emu_dir, port, &log2);
        until_log(&log2, "full sync done", 1, Duration::from_secs(300));
        let warm = t0.elapsed();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let warm_writes = writes(&http, port).await - settle;
        let avi = avi_client(&emu_dir, port);
        let t = Instant::now();
        let listed = ako::reconcile::apply::list_owned(&avi, &ako::core::ownership::Identity::new("bench", None)).await.expect("list");
        let list_time = t.elapsed();
        println!("== warm restart, nothing changed: {warm_writes} Avi writes, converged in {:.2} s; listing the {} owned objects alone takes {:.2} s ({:.2}x)", warm.as_secs_f64(), listed.len(), list_time.as_secs_f64(), warm.as_secs_f64() / list_time.as_secs_f64());
        println!("   peak RSS of ako controller (warm): {:.0} MiB", ctl2.peak_rss_mib());
    });
}
