//! Emulator throughput over the real client (HTTPS on loopback, fsynced journal): creates/s and GETs/s
//! for VsVip + Pool + VirtualService triples. Run: `cargo bench --bench emulator` (env: TRIPLES,
//! CONCURRENCY, FSYNC=0 to skip fsync, EMULATOR=process to run the emulator as a separate `ako emulator`
//! process so the CPU of the client and of the emulator are measured apart).

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ako::avi::models::{
    IpAddr, IpamNetworkSubnet, Pool, Server, Service, Vip, VirtualService, VsVip,
};
use ako::avi::refs::name_ref;
use ako::avi::{AviClient, ClientConfig, Credentials};
use ako::emulator::{self, EmulatorConfig, EmulatorHandle};
use serde_json::json;

/// The emulator under test: in this process, or a child `ako emulator`.
enum Target {
    InProcess(EmulatorHandle),
    Process(KillOnDrop),
}

/// A child process killed (and reaped) when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// CPU seconds (user + system) of a process so far, from `/proc/<pid>/stat` (100 ticks/s).
fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the command: state is field 0, utime 11, stime 12.
    (ticks(11) + ticks(12)) / 100.0
}

/// Starts `ako emulator` on an ephemeral port; returns the child, its base URL and CA.
fn spawn_process(dir: &Path, fsync: bool) -> (Child, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ako"));
    cmd.args([
        "emulator",
        "--listen",
        "127.0.0.1:0",
        "--admin-password",
        "bench",
    ])
    .arg("--state-dir")
    .arg(dir)
    .env("RUST_LOG", "warn")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    if !fsync {
        cmd.arg("--no-fsync");
    }
    let mut child = cmd.spawn().expect("ako emulator spawns");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(url) = line.strip_prefix("ako emulator listening on ") {
                    break url.trim().to_string();
                }
            }
            _ => panic!("ako emulator exited: {:?}", child.try_wait()),
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    let ca = std::fs::read_to_string(dir.join("ca.crt")).expect("CA");
    (child, url, ca)
}

fn main() {
    let triples = support::env_num::<usize>("TRIPLES", 4000);
    let concurrency = support::env_num::<usize>("CONCURRENCY", 64);
    let fsync = std::env::var("FSYNC").map_or(true, |v| v != "0");
    let separate = std::env::var("EMULATOR").is_ok_and(|v| v == "process");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(triples, concurrency, fsync, separate));
}

async fn run(triples: usize, concurrency: usize, fsync: bool, separate: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (target, base_url, ca_pem) = if separate {
        let (child, url, ca) = spawn_process(dir.path(), fsync);
        (Target::Process(KillOnDrop(child)), url, Some(ca))
    } else {
        let emu = emulator::spawn(EmulatorConfig {
            state_dir: Some(dir.path().to_path_buf()),
            admin_password: Some("bench".into()),
            fsync,
            ..EmulatorConfig::default()
        })
        .await
        .expect("emulator");
        let (url, ca) = (emu.base_url(), emu.ca_pem().map(str::to_string));
        (Target::InProcess(emu), url, ca)
    };
    let mut cfg = ClientConfig::new(base_url, Credentials::password("admin", "bench"));
    cfg.ca_pem = ca_pem;
    cfg.sessions = concurrency;
    cfg.controller_version = Some("22.1.5".into());
    let api = AviClient::new(cfg).expect("client");
    // Readiness of a separate process: the first call retries until it answers.
    let deadline = Instant::now() + Duration::from_secs(30);
    while api
        .get_json::<serde_json::Value>("/api/cluster/status")
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "emulator not ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let emulator_pid = match &target {
        Target::Process(child) => child.0.id().to_string(),
        Target::InProcess(_) => "self".to_string(),
    };
    let (client_cpu0, emulator_cpu0) = (cpu_secs("self"), cpu_secs(&emulator_pid));

    // A VIP network big enough for every triple.
    let net: ako::avi::models::Network = serde_json::from_value(json!({
        "name": "bench-vip", "configured_subnets": [{"prefix": {"ip_addr": {"addr": "10.128.0.0", "type": "V4"}, "mask": 16},
        "static_ip_ranges": [{"type": "STATIC_IPS_FOR_VIP", "range": {"begin": {"addr": "10.128.0.1", "type": "V4"},
        "end": {"addr": "10.128.255.254", "type": "V4"}}}]}]}))
    .expect("network");
    api.create(&net).await.expect("network");

    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let api = api.clone();
            let next = Arc::clone(&next);
            tokio::spawn(async move {
                let mut uuids = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= triples {
                        return uuids;
                    }
                    uuids.extend(triple(&api, i).await);
                }
            })
        })
        .collect();
    let mut uuids = Vec::new();
    for w in workers {
        uuids.extend(w.await.expect("worker"));
    }
    let write_time = started.elapsed();
    let (client_cpu, emulator_cpu) = (
        cpu_secs("self") - client_cpu0,
        cpu_secs(&emulator_pid) - emulator_cpu0,
    );
    let writes = match &target {
        Target::InProcess(emu) => emu.counters().writes.to_string(),
        Target::Process(_) => "n/a (separate process)".to_string(),
    };

    let started = Instant::now();
    let chunks: Vec<Vec<(&'static str, String)>> = uuids
        .chunks(uuids.len().div_ceil(concurrency).max(1))
        .map(<[_]>::to_vec)
        .collect();
    let readers: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let api = api.clone();
            tokio::spawn(async move {
                for (t, uuid) in chunk {
                    let _: serde_json::Value = api
                        .get_json(&format!("/api/{t}/{uuid}"))
                        .await
                        .expect("get");
                }
            })
        })
        .collect();
    for r in readers {
        r.await.expect("reader");
    }
    let read_time = started.elapsed();

    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "emulator benchmark: {triples} VsVip+Pool+VS triples, {concurrency} concurrent sessions, fsync={fsync}, HTTPS loopback, emulator {}",
        if separate {
            "in a separate process"
        } else {
            "in process"
        }
    );
    println!(
        "  creates: {} objects in {:.2?} = {:.0} object writes/s ({:.0} triples/s)",
        uuids.len(),
        write_time,
        rate(uuids.len(), write_time),
        rate(triples, write_time)
    );
    println!("  API writes counted by the emulator: {writes}");
    if separate {
        println!(
            "  CPU during creates: client {client_cpu:.2}s, emulator {emulator_cpu:.2}s ({:.0} µs emulator CPU per write)",
            emulator_cpu * 1e6 / uuids.len().max(1) as f64
        );
    } else {
        println!("  CPU during creates: {client_cpu:.2}s client + emulator (one process)");
    }
    println!(
        "  GETs:    {} objects in {:.2?} = {:.0} GETs/s",
        uuids.len(),
        read_time,
        rate(uuids.len(), read_time)
    );
    if let Target::InProcess(emu) = target {
        emu.shutdown().await;
    }
}

async fn triple(api: &AviClient, i: usize) -> Vec<(&'static str, String)> {
    let vip = VsVip {
        name: format!("bench-vip-{i}"),
        vip: Some(vec![Vip {
            auto_allocate_ip: Some(true),
            ipam_network_subnet: Some(IpamNetworkSubnet {
                network_ref: Some(name_ref("network", "bench-vip")),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        dns_info: Some(vec![ako::avi::models::DnsInfo {
            fqdn: Some(format!("app-{i}.avi.jarvis.lab")),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let vip = api.create(&vip).await.expect("vsvip").object;
    let pool = Pool {
        name: format!("bench-pool-{i}"),
        servers: Some(vec![Server {
            ip: Some(IpAddr::v4("127.0.0.1")),
            port: Some(8080),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let pool = api.create(&pool).await.expect("pool").object;
    let vs = VirtualService {
        name: format!("bench-vs-{i}"),
        vsvip_ref: vip.url.clone(),
        pool_ref: pool.url.clone(),
        services: Some(vec![Service {
            port: Some(80),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let vs = api.create(&vs).await.expect("vs").object;
    vec![
        ("vsvip", vip.uuid.unwrap_or_default()),
        ("pool", pool.uuid.unwrap_or_default()),
        ("virtualservice", vs.uuid.unwrap_or_default()),
    ]
}
