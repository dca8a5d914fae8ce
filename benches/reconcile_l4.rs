//! The L4 reconciler at scale, against a real kube-apiserver 1.20.2 and `ako emulator` adding 2 ms to each
//! request, with `ako controller` as its own process (so its memory is its own). One run measures:
//!
//! 1. **Cold start**: N LoadBalancer Services already in the API server, an empty controller: time until every
//!    Service has its status; Avi writes against the minimum (4 per Service); peak RSS of `ako controller`.
//! 2. Two **floors**, same run, same concurrency: the minimum writes alone through the same client and emulator
//!    (16 groups at a time, 4 creates each, as the reconciler applies them), and the N status patches alone
//!    (32 at a time, as the reconciler writes them).
//! 3. **Warm restart** with nothing changed: writes (target 0) and time to converge, against the time to list
//!    the owned objects through the same client.
//! 4. **Edit latency**: one Service's port edited with everything loaded; time from the API server's answer to
//!    the emulator counting the write; p50/p99 over AKO_BENCH_EDITS edits.
//!
//! Run: `cargo bench --bench reconcile_l4` (needs scripts/install-cluster.sh; `cargo build --release` first so
//! the `ako` binary is the release one). Env: AKO_BENCH_SERVICES (5000), AKO_BENCH_EDITS (50),
//! AKO_BENCH_LATENCY_MS (2).

mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ako::avi::{AviClient, ClientConfig, Credentials};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::json;

const PASSWORD: &str = "bench-pw";
const NS: &str = "bench";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn ako_bin() -> PathBuf {
    let release = repo().join("target/release/ako");
    if release.exists() {
        release
    } else {
        repo().join("target/debug/ako")
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// A child process killed on drop.
struct Proc(Child);
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
    let mut seed: serde_json::Value =
        serde_yaml_ng::from_str(ako::emulator::DEFAULT_SEED).expect("seed");
    let objects = seed["objects"].as_array_mut().expect("objects");
    objects.push(json!({
        "type": "network", "name": "bench-vip", "cloud_ref": "/api/cloud/?name=Default-Cloud", "dhcp_enabled": false,
        "configured_subnets": [{"prefix": {"ip_addr": {"addr": "10.200.0.0", "type": "V4"}, "mask": 16},
            "static_ip_ranges": [{"type": "STATIC_IPS_FOR_VIP",
                "range": {"begin": {"addr": "10.200.0.10", "type": "V4"}, "end": {"addr": "10.200.255.250", "type": "V4"}}}]}]
    }));
    for o in objects.iter_mut() {
        if o["name"] == "ipam-jarvis"
            && let Some(nets) = o["internal_profile"]["usable_networks"].as_array_mut()
        {
            nets.push(json!({"nw_ref": "/api/network/?name=bench-vip"}));
        }
    }
    std::fs::create_dir_all(dir).expect("dir");
    let path = dir.join("seed.yaml");
    std::fs::write(&path, serde_yaml_ng::to_string(&seed).expect("yaml")).expect("write seed");
    path
}

fn start_emulator(dir: &Path, port: u16, latency_ms: u64) -> Proc {
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

fn start_controller(kubeconfig: &Path, emu_dir: &Path, port: u16, log: &Path) -> Proc {
    let child = Command::new(ako_bin())
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

async fn counters(http: &reqwest::Client, port: u16) -> serde_json::Value {
    http.get(format!("https://127.0.0.1:{port}/admin/counters"))
        .send()
        .await
        .expect("counters")
        .json()
        .await
        .expect("json")
}

async fn writes(http: &reqwest::Client, port: u16) -> u64 {
    counters(http, port).await["writes"].as_u64().unwrap_or(0)
}

fn service(i: usize) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": format!("svc-{i}"), "namespace": NS},
        "spec": {"type": "LoadBalancer", "ports": [{"name": "tcp", "port": 80, "targetPort": 8080}]}
    }))
    .expect("service")
}

/// Waits until every one of `n` Services in NS has a status ingress; returns the elapsed time since `t0`.
async fn until_all_have_status(client: &Client, n: usize, t0: Instant) -> Duration {
    let api: Api<Service> = Api::namespaced(client.clone(), NS);
    let mut done: HashSet<String> = HashSet::new();
    let mut stream = std::pin::pin!(watcher::watcher(api, watcher::Config::default()));
    let deadline = t0 + Duration::from_secs(900);
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline.into(), stream.next()).await {
        let svc = match ev {
            Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) => s,
            _ => continue,
        };
        let has = svc
            .status
            .and_then(|s| s.load_balancer)
            .and_then(|l| l.ingress)
            .is_some_and(|i| !i.is_empty());
        let name = svc.metadata.name.unwrap_or_default();
        if has {
            done.insert(name);
        } else {
            done.remove(&name);
        }
        if done.len() >= n {
            return t0.elapsed();
        }
    }
    panic!("only {} of {n} Services got a status", done.len());
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

fn main() {
    let n: usize = support::env_num("AKO_BENCH_SERVICES", 5000);
    let edits: usize = support::env_num("AKO_BENCH_EDITS", 50);
    let latency: u64 = support::env_num("AKO_BENCH_LATENCY_MS", 2);
    ako::certs::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let work = tempfile::tempdir().expect("tmp");
        let cluster_dir = work.path().join("cluster");
        // 5,000 LoadBalancer Services need more node ports than the default range holds.
        let out = Command::new(repo().join("scripts/cluster.sh"))
            .arg("start")
            .arg(&cluster_dir)
            .args(["--watch-pid", &std::process::id().to_string()])
            .env("AKO_APISERVER_EXTRA_ARGS", "--service-node-port-range=30000-45000 --max-requests-inflight=800 --max-mutating-requests-inflight=400")
            .output()
            .expect("cluster.sh");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let kubeconfig = cluster_dir.join("kubeconfig");
        let kc = Kubeconfig::read_from(&kubeconfig).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.expect("config");
        let client = Client::try_from(config).expect("client");
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}})).expect("ns");
        Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.expect("namespace");

        println!("== creating {n} LoadBalancer Services");
        let api: Api<Service> = Api::namespaced(client.clone(), NS);
        let t = Instant::now();
        futures::stream::iter(0..n)
            .for_each_concurrent(32, |i| {
                let api = api.clone();
                async move {
                    api.create(&PostParams::default(), &service(i)).await.expect("create service");
                }
            })
            .await;
        println!("   created in {:.1} s", t.elapsed().as_secs_f64());

        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(ako::avi::tls::client_tls_config(None, true).expect("tls"))
            .build()
            .expect("http");

        // Floor 1: the minimum writes alone, through the same client, same concurrency.
        let floor_dir = work.path().join("emu-floor");
        let port = free_port();
        let floor_writes = {
            let _emu = start_emulator(&floor_dir, port, latency);
            let avi = avi_client(&floor_dir, port);
            let (cfg, place) = {
                let cfg = ako::core::config::Config {
                    cluster_name: "bench".into(),
                    dns_domains: vec!["avi.jarvis.lab".into()],
                    ..Default::default()
                };
                let place = ako::core::l4::Placement {
                    cluster_name: "bench".into(),
                    tenant: "admin".into(),
                    cloud: "Default-Cloud".into(),
                    se_group: "vmug-se-group".into(),
                    vrf: "global".into(),
                    vip_network: Some(("bench-vip".into(), "10.200.0.0/16".parse().ok())),
                    member_mode: ako::core::l4::MemberMode::ClusterIp,
                };
                (cfg, place)
            };
            let steps: Vec<Vec<ako::core::plan::Step>> = (0..n)
                .map(|i| {
                    let svc = service(i);
                    let d = ako::core::l4::translate(
                        &[ako::core::l4::ServiceInput { service: &svc, endpoints: &[] }],
                        &[],
                        &cfg,
                        &place,
                    );
                    ako::core::plan::plan(&d.objects, &ako::core::plan::Observed::default(), "ako-bench")
                })
                .collect();
            let t = Instant::now();
            futures::stream::iter(steps)
                .for_each_concurrent(16, |group| {
                    let avi = avi.clone();
                    async move {
                        for s in &group {
                            ako::reconcile::apply::execute(&avi, s).await.expect("floor write");
                        }
                    }
                })
                .await;
            (t.elapsed(), writes(&http, port).await)
        };
        println!("   floor, minimum Avi writes alone: {} writes in {:.2} s", floor_writes.1, floor_writes.0.as_secs_f64());

        // Floor 2: the status patches alone, same concurrency.
        let t = Instant::now();
        futures::stream::iter(0..n)
            .for_each_concurrent(32, |i| {
                let api = api.clone();
                async move {
                    let patch = json!({"status": {"loadBalancer": {"ingress": [{"ip": "10.10.18.10", "hostname": format!("svc-{i}.bench.avi.jarvis.lab")}]}}});
                    api.patch_status(&format!("svc-{i}"), &PatchParams::default(), &Patch::Merge(&patch)).await.expect("status");
                }
            })
            .await;
        let floor_status = t.elapsed();
        println!("   floor, {n} status patches alone: {:.2} s", floor_status.as_secs_f64());
        // Clear them again, so the cold start has to write every one.
        futures::stream::iter(0..n)
            .for_each_concurrent(32, |i| {
                let api = api.clone();
                async move {
                    let patch = json!({"status": {"loadBalancer": {"ingress": null}}});
                    api.patch_status(&format!("svc-{i}"), &PatchParams::default(), &Patch::Merge(&patch)).await.expect("status");
                }
            })
            .await;

        // 1. Cold start.
        let emu_dir = work.path().join("emu");
        let port = free_port();
        let _emu = start_emulator(&emu_dir, port, latency);
        let log1 = work.path().join("controller-1.log");
        let t0 = Instant::now();
        let ctl = start_controller(&kubeconfig, &emu_dir, port, &log1);
        let cold = until_all_have_status(&client, n, t0).await;
        let cold_writes = writes(&http, port).await;
        let rss_cold = ctl.peak_rss_mib();
        let larger_floor = floor_writes.0.max(floor_status);
        println!("== cold start, {n} Services, +{latency} ms per Avi request");
        println!("   every status written after {:.2} s ({:.2}x the larger floor, {:.2} s)", cold.as_secs_f64(), cold.as_secs_f64() / larger_floor.as_secs_f64(), larger_floor.as_secs_f64());
        println!("   Avi writes: {cold_writes} (minimum {})", 4 * n);
        println!("   peak RSS of ako controller: {rss_cold:.0} MiB");

        // 4. Edit latency, everything loaded.
        until_log(&log1, "full sync done", 1, Duration::from_secs(120));
        let mut lat = Vec::new();
        for e in 0..edits {
            let i = (e * 97) % n;
            let before = writes(&http, port).await;
            let port_no = 81 + (e / n) % 2; // every edit changes the port of a Service
            let patch = json!({"spec": {"ports": [{"name": "tcp", "port": port_no, "targetPort": 8080}]}});
            let t = Instant::now();
            api.patch(&format!("svc-{i}"), &PatchParams::default(), &Patch::Merge(&patch)).await.expect("edit");
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
        let (p50, p99) = (pct(&mut lat, 0.5), pct(&mut lat, 0.99));
        println!("== one Service edit with {n} loaded: API server write -> first Avi write p50 {p50:.1} ms, p99 {p99:.1} ms ({edits} edits)");
        drop(ctl);

        // 3. Warm restart.
        let settle = writes(&http, port).await;
        let log2 = work.path().join("controller-2.log");
        let t0 = Instant::now();
        let ctl2 = start_controller(&kubeconfig, &emu_dir, port, &log2);
        until_log(&log2, "full sync done", 1, Duration::from_secs(300));
        let warm = t0.elapsed();
        let warm_writes = writes(&http, port).await - settle;
        let avi = avi_client(&emu_dir, port);
        let t = Instant::now();
        let listed = ako::reconcile::apply::list_owned(&avi, "ako-bench").await.expect("list");
        let list_time = t.elapsed();
        println!("== warm restart, nothing changed: {warm_writes} Avi writes, converged in {:.2} s; listing the {} owned objects alone takes {:.2} s ({:.2}x)", warm.as_secs_f64(), listed.len(), list_time.as_secs_f64(), warm.as_secs_f64() / list_time.as_secs_f64());
        println!("   peak RSS of ako controller (warm): {:.0} MiB", ctl2.peak_rss_mib());
    });
}
