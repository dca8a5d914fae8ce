//! The emulator's data plane against the backend hit directly, in one run with the same load tools on loopback:
//! L7 requests/s and latency (wrk) through a VIP (HTTPPolicySet routing to a pool group) vs the backend; L4 TCP
//! throughput (a fixed number of bytes pushed over one connection, then over parallel ones) through a VIP vs the
//! backend.
//!
//! Knobs: DP_SECONDS (10), DP_CONNECTIONS (32), DP_L4_MIB in all per measurement (2048), DP_L4_STREAMS
//! (connection counts, "1,4"), DP_ROUNDS (2), DP_THREADS (the data plane's threads, 1).

#[path = "../tests/traffic/mod.rs"]
mod traffic;

mod support;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use ako::core::l4::{self, ServiceInput};
use ako::core::l7::{self, L7Input, ShardSize};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use support::{env_num, on_runtime, parse_wrk};
use traffic::{
    NODE_IP, apply, config, http_get, nodes, placement, start_lab_with, vip_of, wait_for,
};

const HOST: &str = "bench.avi.jarvis.lab";

/// A minimal HTTP backend: 200 with a 13-byte body.
async fn backend() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((NODE_IP, 0)))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                        b"hello, world\n",
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// Reads every connection to its end and closes it.
async fn sink() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((NODE_IP, 0)))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 << 10];
                loop {
                    match tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    addr
}

/// The machine's busy and total CPU time so far, in clock ticks (`/proc/stat`): how many cores a run kept busy,
/// and so whether it was bound by the CPU rather than by the path it measured.
fn cpu_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    let total: u64 = fields.iter().take(8).sum();
    (total - idle, total)
}

/// Runs `f` and returns its result with the cores it kept busy on average and the busy CPU seconds.
fn with_cpu<T>(f: impl FnOnce() -> T) -> (T, f64, f64) {
    let ticks_per_s = 100.0; // USER_HZ
    let cores = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
    let (b0, t0) = cpu_ticks();
    let out = f();
    let (b1, t1) = cpu_ticks();
    let busy_s = (b1 - b0) as f64 / ticks_per_s;
    let wall_cores = (t1 - t0) as f64 / ticks_per_s;
    (out, cores * busy_s / wall_cores.max(1e-9), busy_s)
}

fn wrk(url: &str, seconds: u64, conns: u64) -> support::WrkResult {
    let out = std::process::Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{conns}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-H",
            &format!("Host: {HOST}"),
            url,
        ])
        .output()
        .expect("wrk runs (scripts/bench.sh installs it)");
    parse_wrk(&String::from_utf8_lossy(&out.stdout))
}

/// Pushes `mib` MiB over each of `streams` connections at once; returns Gbit/s (until every peer closed).
fn push(addr: SocketAddr, streams: u64, mib: u64) -> f64 {
    let started = Instant::now();
    let handles: Vec<_> = (0..streams)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).expect("connect");
                let chunk = vec![0x5au8; 64 << 10];
                for _ in 0..mib * 16 {
                    s.write_all(&chunk).expect("write");
                }
                s.shutdown(std::net::Shutdown::Write).expect("shutdown");
                let mut rest = Vec::new();
                let _ = s.read_to_end(&mut rest);
            })
        })
        .collect();
    for h in handles {
        h.join().expect("stream");
    }
    let bits = (streams * mib * 8 * 1024 * 1024) as f64;
    bits / started.elapsed().as_secs_f64() / 1e9
}

fn main() {
    let seconds = env_num("DP_SECONDS", 10u64);
    let conns = env_num("DP_CONNECTIONS", 32u64);
    let mib = env_num("DP_L4_MIB", 2048u64);
    let stream_counts: Vec<u64> = std::env::var("DP_L4_STREAMS")
        .unwrap_or_else(|_| "1,4".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .filter(|n| *n > 0)
        .collect();
    let rounds = env_num("DP_ROUNDS", 2u64);
    let dp_threads = env_num("DP_THREADS", 1usize);

    // Backends on a runtime of their own (one thread), the emulator on the default multi-thread runtime.
    let http_backend = on_runtime("current", backend);
    let tcp_sink = on_runtime("current", sink);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let lab = rt.block_on(start_lab_with(1000, dp_threads));
    let (l7_vip, l4_vip) = rt.block_on(async {
        let svc = |name: &str, kind: &str, port: u16| -> Service {
            serde_yaml_ng::from_str(&format!(
                "metadata: {{name: {name}, namespace: bench}}\n\
                 spec: {{type: {kind}, ports: [{{name: p, port: 80, nodePort: {port}}}]}}"
            ))
            .expect("service")
        };
        let web = svc("web", "NodePort", http_backend.port());
        let ing: Ingress = serde_yaml_ng::from_str(&format!(
            "metadata: {{name: bench, namespace: bench}}\n\
             spec: {{rules: [{{host: {HOST}, http: {{paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}]}}}}]}}"
        ))
        .expect("ingress");
        let ingresses = [&ing];
        let inputs = [ServiceInput {
            service: &web,
            endpoints: &[],
        }];
        let node_list = nodes();
        let secrets = BTreeMap::new();
        let input = L7Input {
            classes: None,
            namespace_infra: None,
            ingresses: &ingresses,
            services: &inputs,
            nodes: &node_list,
            secrets: &secrets,
            default_cert: None,
            part: None,
            rules: None,
        };
        let l7d = l7::translate(&input, &config(), &placement(&lab), ShardSize::Small);
        apply(&lab.client, &l7d.objects).await;
        let lb = svc("sink", "LoadBalancer", tcp_sink.port());
        let lb_inputs = [ServiceInput {
            service: &lb,
            endpoints: &[],
        }];
        let l4d = l4::translate(&lb_inputs, &node_list, &config(), &placement(&lab));
        apply(&lab.client, &l4d.objects).await;
        let l7_vip = SocketAddr::new(vip_of(&lab.client, &l7::shared_vs_name("veba-of", 0)).await, 80);
        let l4_vip = SocketAddr::new(vip_of(&lab.client, "veba-of--bench-sink").await, 80);
        wait_for("the L7 VIP", || async {
            http_get(l7_vip, HOST, "/").await.is_ok_and(|a| a.status == 200)
        })
        .await;
        wait_for("the L4 VIP", || async {
            tokio::net::TcpStream::connect(l4_vip).await.is_ok()
        })
        .await;
        (l7_vip, l4_vip)
    });

    println!("L7: wrk -t1 -c{conns} -d{seconds}s, GET / (13-byte body), Host {HOST}");
    println!(
        "{:<8} {:<10} {:>12} {:>9} {:>9} {:>11} {:>13}  errors",
        "round", "target", "requests/s", "p50 ms", "p99 ms", "cores busy", "CPU us/req"
    );
    let mut l7 = Vec::new();
    let mut l7_cpu: Vec<(&str, f64)> = Vec::new();
    for round in 1..=rounds {
        for (label, url) in [
            ("direct", format!("http://{http_backend}/")),
            ("VIP", format!("http://{l7_vip}/")),
        ] {
            let (r, cores, busy) = with_cpu(|| wrk(&url, seconds, conns));
            let per_req = 1e6 * busy / (r.rps * seconds as f64).max(1.0);
            println!(
                "{round:<8} {label:<10} {:>12.0} {:>9.3} {:>9.3} {cores:>11.2} {per_req:>13.1}  {}",
                r.rps, r.p50_ms, r.p99_ms, r.errors
            );
            l7_cpu.push((label, per_req));
            l7.push((label, r));
        }
    }
    // The mean of the values measured for `label`.
    let mean_of = |v: &[(&str, f64)], label: &str| {
        let x: Vec<f64> = v
            .iter()
            .filter(|(l, _)| *l == label)
            .map(|(_, c)| *c)
            .collect();
        x.iter().sum::<f64>() / x.len().max(1) as f64
    };
    println!(
        "L7 CPU per request (the whole machine: load tool, proxy, backend, kernel): direct {:.1} us, VIP {:.1} us; \
         when both runs keep every core busy, VIP/direct requests/s cannot exceed direct/VIP CPU = {:.1}%",
        mean_of(&l7_cpu, "direct"),
        mean_of(&l7_cpu, "VIP"),
        100.0 * mean_of(&l7_cpu, "direct") / mean_of(&l7_cpu, "VIP").max(1e-9)
    );
    let mean = |label: &str, f: &dyn Fn(&support::WrkResult) -> f64| {
        let v: Vec<f64> = l7
            .iter()
            .filter(|(l, _)| *l == label)
            .map(|(_, r)| f(r))
            .collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    let (d_rps, v_rps) = (mean("direct", &|r| r.rps), mean("VIP", &|r| r.rps));
    let (d_p99, v_p99) = (mean("direct", &|r| r.p99_ms), mean("VIP", &|r| r.p99_ms));
    println!(
        "L7 mean: direct {d_rps:.0} req/s p99 {d_p99:.3} ms; VIP {v_rps:.0} req/s p99 {v_p99:.3} ms; VIP/direct {:.1}% (target >= 50%)",
        100.0 * v_rps / d_rps
    );

    // L4 once per connection count: one connection (a single flow, as iperf3 measures by default) and several
    // in parallel (the aggregate, where on two cores every side competes for the CPU).
    for &streams in &stream_counts {
        let per_conn = (mib / streams).max(1);
        println!("L4: {streams} connection(s) x {per_conn} MiB pushed, until the peer closes");
        let mut l4 = Vec::new();
        let mut l4_cpu: Vec<(&str, f64)> = Vec::new();
        for round in 1..=rounds {
            for (label, addr) in [("direct", tcp_sink), ("VIP", l4_vip)] {
                let (g, cores, busy) = with_cpu(|| push(addr, streams, per_conn));
                let per_gib = busy / (streams * per_conn) as f64 * 1024.0;
                println!(
                    "{round:<8} {label:<10} {g:>9.2} Gbit/s  cores busy {cores:.2}  CPU {per_gib:.3} s/GiB"
                );
                l4_cpu.push((label, per_gib));
                l4.push((label, g));
            }
        }
        println!(
            "L4 x{streams} CPU per GiB (whole machine): direct {:.3} s, VIP {:.3} s; with every core busy, \
             VIP/direct throughput cannot exceed {:.1}%",
            mean_of(&l4_cpu, "direct"),
            mean_of(&l4_cpu, "VIP"),
            100.0 * mean_of(&l4_cpu, "direct") / mean_of(&l4_cpu, "VIP").max(1e-9)
        );
        println!(
            "L4 x{streams} mean: direct {:.2} Gbit/s; VIP {:.2} Gbit/s; VIP/direct {:.1}% (target >= 80%)",
            mean_of(&l4, "direct"),
            mean_of(&l4, "VIP"),
            100.0 * mean_of(&l4, "VIP") / mean_of(&l4, "direct")
        );
    }
    drop(lab);
}
