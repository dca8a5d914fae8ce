//! Emulator throughput over the real client (HTTPS on loopback, fsynced journal): creates/s and GETs/s
//! for VsVip + Pool + VirtualService triples. Run: `cargo bench --bench emulator` (env: TRIPLES,
//! CONCURRENCY, FSYNC=0 to skip fsync).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ako::avi::models::{
    IpAddr, IpamNetworkSubnet, Pool, Server, Service, Vip, VirtualService, VsVip,
};
use ako::avi::refs::name_ref;
use ako::avi::{AviClient, ClientConfig, Credentials};
use ako::emulator::{self, EmulatorConfig};
use serde_json::json;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let triples = env_usize("TRIPLES", 4000);
    let concurrency = env_usize("CONCURRENCY", 64);
    let fsync = std::env::var("FSYNC").map_or(true, |v| v != "0");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(triples, concurrency, fsync));
}

async fn run(triples: usize, concurrency: usize, fsync: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let emu = emulator::spawn(EmulatorConfig {
        state_dir: Some(dir.path().to_path_buf()),
        admin_password: Some("bench".into()),
        fsync,
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator");
    let mut cfg = ClientConfig::new(emu.base_url(), Credentials::password("admin", "bench"));
    cfg.ca_pem = emu.ca_pem().map(str::to_string);
    cfg.sessions = concurrency;
    cfg.controller_version = Some("22.1.5".into());
    let api = AviClient::new(cfg).expect("client");

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
    let writes = emu.counters().writes;

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
        "emulator benchmark: {triples} VsVip+Pool+VS triples, {concurrency} concurrent sessions, fsync={fsync}, HTTPS loopback"
    );
    println!(
        "  creates: {} objects in {:.2?} = {:.0} object writes/s ({:.0} triples/s)",
        uuids.len(),
        write_time,
        rate(uuids.len(), write_time),
        rate(triples, write_time)
    );
    println!("  API writes counted by the emulator: {writes}");
    println!(
        "  GETs:    {} objects in {:.2?} = {:.0} GETs/s",
        uuids.len(),
        read_time,
        rate(uuids.len(), read_time)
    );
    emu.shutdown().await;
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
