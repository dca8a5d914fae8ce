//! Normal admission latency while other connections flood the webhook with the largest hostile Ingress reviews
//! the body limit allows, beside the same normal load with no hostile traffic, in one run.
//!
//! - Server: ako's webhook as `ako webhook` runs it (one admission thread, default [`ako::webhook::Limits`]),
//!   10,000 Ingresses indexed, JSON audit logging to a discarding writer. AKO_WEBHOOK_WORKERS: a number of
//!   admission threads, or `shared` for the benchmark's 2-worker runtime (work stealing between connections).
//! - Normal load: AKO_NORMAL_CONNS connections (default 4), each sending the API-server-shaped 2.1 KB Ingress
//!   review every AKO_NORMAL_PERIOD_US microseconds (default 4000: 250/s per connection, 1,000/s in all). The
//!   load is open loop: when an answer comes so late that the next request is overdue, that request's latency
//!   is measured from the time it was due, so a stalled server is not hidden by a client that waits (no
//!   coordinated omission); otherwise from its send, so the timer's wake-up slack is not counted.
//! - Hostile load: AKO_HOSTILE_CONNS connections (default 4), each sending hostile reviews back to back: just
//!   under 3 MiB each, alternating an Ingress beyond the size limits (about 16,000 rules and TLS hosts) and one
//!   at the limits (2,000 rules, 10,000 long paths, 2,000 TLS entries), which is translated and checked in full.
//! - The hostile senders run on one thread at AKO_HOSTILE_PRIORITY: `normal` (default) or `idle` (Linux
//!   `SCHED_IDLE`: they use only CPU nobody else wants, as attackers on other machines would), to tell the
//!   webhook's own share of the tail from the senders' encryption competing for the same two cores.
//! - The hostile senders write at most AKO_HOSTILE_WRITE_BYTES (default 16384) per system call, as the API server
//!   does (Go's TLS writes one record of at most 16 KiB per call); 0 for no cap (rustls then hands the kernel up
//!   to 64 records at once). On a kernel without preemption (`preempt=none`), one large loopback write holds a
//!   core for the whole send, whatever the sender's priority: a load generator sharing the webhook's cores, which
//!   the API server on its own machine never is.
//! - AKO_PHASES (default 16) phases of AKO_PHASE_SECONDS (default 2) after a 1 s warm-up, in the order quiet,
//!   hostile, hostile, quiet, repeated, so both kinds meet the same drift of the machine; a quiet phase starts
//!   only once the hostile reviews in flight are answered. Bounded: at most normal rate x phase length normal
//!   requests per phase.
//!
//! Run: `cargo bench --bench webhook_hostile`. Loopback only.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ako::webhook::Workers;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

fn ako_server(tls: Arc<rustls::ServerConfig>) -> std::net::SocketAddr {
    support::on_runtime("multi", move || async move {
        let state = support::indexed_state(10_000);
        let https = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let health = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let workers = match std::env::var("AKO_WEBHOOK_WORKERS").as_deref() {
            Ok("shared") => Workers::Shared,
            Ok(n) => {
                Workers::Dedicated(n.parse().expect("AKO_WEBHOOK_WORKERS: shared or a number"))
            }
            Err(_) => Workers::Dedicated(1),
        };
        let running = ako::webhook::serve(state, https, health, tls, workers)
            .await
            .expect("serve");
        let addr = running.https;
        std::mem::forget(running);
        addr
    })
}

/// A review of `object` as the API server sends it.
fn wrap(object: serde_json::Value) -> String {
    json!({
        "kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "networking.k8s.io", "version": "v1", "kind": "Ingress"},
            "resource": {"group": "networking.k8s.io", "version": "v1", "resource": "ingresses"},
            "name": "hostile", "namespace": "evil", "operation": "CREATE",
            "userInfo": {"username": "mallory", "groups": ["system:authenticated"]},
            "object": object, "oldObject": null, "dryRun": false
        }
    })
    .to_string()
}

/// Beyond the limits: as many one-path rules, each host also a TLS host, as fit in the body limit.
fn over_limits(room: usize) -> String {
    let build = |n: usize| {
        let rules: Vec<serde_json::Value> = (0..n)
            .map(|i| json!({"host": format!("h{i}.avi.jarvis.lab"), "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}))
            .collect();
        let hosts: Vec<String> = (0..n).map(|i| format!("h{i}.avi.jarvis.lab")).collect();
        wrap(
            json!({"kind": "Ingress", "apiVersion": "networking.k8s.io/v1",
            "metadata": {"name": "hostile", "namespace": "evil"},
            "spec": {"ingressClassName": "avi-lb", "rules": rules, "tls": [{"hosts": hosts, "secretName": "tls"}]}}),
        )
    };
    largest(room, build)
}

/// At the limits: 2,000 rules with 5 paths each (10,000 paths) and 2,000 TLS entries, paths made long enough to
/// fill the body limit. Every host and path is translated and checked.
fn at_limits(room: usize) -> String {
    let build = |pad: usize| {
        let tail = "x".repeat(pad);
        let rules: Vec<serde_json::Value> = (0..2_000)
            .map(|i| {
                let paths: Vec<serde_json::Value> = (0..5)
                    .map(|j| json!({"path": format!("/{j}/{tail}"), "pathType": "Prefix",
                        "backend": {"service": {"name": format!("svc-{j}"), "port": {"number": 80}}}}))
                    .collect();
                json!({"host": format!("h{i}.avi.jarvis.lab"), "http": {"paths": paths}})
            })
            .collect();
        let tls: Vec<serde_json::Value> = (0..2_000)
            .map(|i| json!({"hosts": [format!("h{i}.avi.jarvis.lab")], "secretName": "tls"}))
            .collect();
        wrap(
            json!({"kind": "Ingress", "apiVersion": "networking.k8s.io/v1",
            "metadata": {"name": "hostile", "namespace": "evil"},
            "spec": {"ingressClassName": "avi-lb", "rules": rules, "tls": tls}}),
        )
    };
    largest(room, build)
}

/// The largest `build(n)` that fits in `room` bytes (binary search on n).
fn largest(room: usize, build: impl Fn(usize) -> String) -> String {
    let (mut lo, mut hi) = (1usize, 1usize);
    while build(hi).len() <= room {
        lo = hi;
        hi *= 2;
    }
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if build(mid).len() <= room {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    build(lo)
}

/// A client TLS configuration trusting the webhook's CA (ALPN http/1.1, as the API server uses).
fn tls_client(ca_pem: &str) -> rustls::ClientConfig {
    ako::avi::tls::client_tls_config(Some(ca_pem), false).expect("client TLS configuration")
}

fn client(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls_client(ca_pem))
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// A TCP stream that hands the kernel at most `cap` bytes per write.
struct CappedWrites {
    inner: tokio::net::TcpStream,
    cap: usize,
}

impl AsyncRead for CappedWrites {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CappedWrites {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let n = buf.len().min(self.cap);
        Pin::new(&mut self.inner).poll_write(cx, &buf[..n])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &b[..]);
        self.poll_write(cx, first)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

type HostileSender = hyper::client::conn::http1::SendRequest<Full<bytes::Bytes>>;

/// One hostile connection: TLS over [`CappedWrites`], HTTP/1.1 kept alive.
async fn hostile_connection(
    addr: std::net::SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    cap: usize,
) -> std::io::Result<HostileSender> {
    let inner = tokio::net::TcpStream::connect(addr).await?;
    inner.set_nodelay(true)?;
    let name = rustls::pki_types::ServerName::from(addr.ip());
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, CappedWrites { inner, cap })
        .await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    Ok(sender)
}

/// Sends one hostile review; its status and whether it was denied.
async fn send_hostile(sender: &mut HostileSender, body: bytes::Bytes) -> Option<(u16, bool)> {
    sender.ready().await.ok()?;
    let req = http::Request::post("/validate")
        .header(http::header::HOST, "127.0.0.1")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .ok()?;
    let resp = sender.send_request(req).await.ok()?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    Some((status, body.windows(15).any(|w| w == b"\"allowed\":false")))
}

#[derive(Default)]
struct HostileCount {
    sent: AtomicU64,
    denied: AtomicU64,
    allowed: AtomicU64,
    overloaded: AtomicU64,
    other: AtomicU64,
}

impl HostileCount {
    /// Hostile reviews sent and not answered yet.
    fn in_flight(&self) -> u64 {
        let answered = [&self.denied, &self.allowed, &self.overloaded, &self.other]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum::<u64>();
        self.sent.load(Ordering::Relaxed).saturating_sub(answered)
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let phase = Duration::from_secs(support::env_num::<u64>("AKO_PHASE_SECONDS", 2));
    let phases = support::env_num::<u64>("AKO_PHASES", 16).max(2);
    let normal_conns = support::env_num::<usize>("AKO_NORMAL_CONNS", 4);
    let period = Duration::from_micros(support::env_num::<u64>("AKO_NORMAL_PERIOD_US", 4000));
    let hostile_conns = support::env_num::<usize>("AKO_HOSTILE_CONNS", 4);
    let hostile_idle = std::env::var("AKO_HOSTILE_PRIORITY").is_ok_and(|v| v == "idle");
    let write_cap = match support::env_num::<usize>("AKO_HOSTILE_WRITE_BYTES", 16 << 10) {
        0 => usize::MAX,
        n => n,
    };
    let dir = tempfile::tempdir().expect("tmp");
    let _guard =
        ako::telemetry::init_with("INFO", ako::telemetry::LogFormat::Json, std::io::sink());
    let (tls, ca) = support::tls(dir.path());
    let addr = ako_server(tls);
    let url = format!("https://{addr}/validate");

    let normal = serde_json::to_string(&support::api_server_review(
        "ns-7",
        "candidate",
        "app-5007.avi.jarvis.lab",
        "/shop",
    ))
    .expect("json");
    let room = ako::webhook::MAX_BODY - 256;
    let hostile = [
        bytes::Bytes::from(over_limits(room)),
        bytes::Bytes::from(at_limits(room)),
    ];
    println!(
        "hostile bodies: {} and {} bytes (limit {}); normal body {} bytes",
        hostile[0].len(),
        hostile[1].len(),
        ako::webhook::MAX_BODY,
        normal.len()
    );

    // Hostile senders on a runtime (thread) of their own; switched on and off by `flood`.
    let flood = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(HostileCount::default());
    let hostile_thread = {
        let (flood, stop, count, ca) = (flood.clone(), stop.clone(), count.clone(), ca.clone());
        std::thread::spawn(move || {
            if hostile_idle {
                use thread_priority::unix::{
                    NormalThreadSchedulePolicy, ThreadSchedulePolicy,
                    set_thread_priority_and_policy, thread_native_id,
                };
                set_thread_priority_and_policy(
                    thread_native_id(),
                    thread_priority::ThreadPriority::Min,
                    ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
                )
                .expect("SCHED_IDLE for the hostile senders");
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let tls = Arc::new(tls_client(&ca));
                let tasks = (0..hostile_conns).map(|k| {
                    let (flood, stop, count, tls) =
                        (flood.clone(), stop.clone(), count.clone(), tls.clone());
                    let bodies = hostile.clone();
                    tokio::spawn(async move {
                        let mut n = k;
                        let mut conn = None;
                        while !stop.load(Ordering::Relaxed) {
                            if !flood.load(Ordering::Relaxed) {
                                tokio::time::sleep(Duration::from_millis(5)).await;
                                continue;
                            }
                            n += 1;
                            count.sent.fetch_add(1, Ordering::Relaxed);
                            if conn.is_none() {
                                conn = hostile_connection(addr, tls.clone(), write_cap).await.ok();
                            }
                            let Some(sender) = conn.as_mut() else {
                                // Sent, but it found no connection: a failed review.
                                count.other.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                continue;
                            };
                            let answered = send_hostile(sender, bodies[n % 2].clone()).await;
                            if answered.is_none() {
                                conn = None; // reconnect
                            }
                            match answered {
                                Some((200, true)) => &count.denied,
                                Some((200, false)) => &count.allowed,
                                Some((503, _)) => &count.overloaded,
                                _ => &count.other,
                            }
                            .fetch_add(1, Ordering::Relaxed);
                        }
                    })
                });
                futures::future::join_all(tasks).await;
            })
        })
    };

    // Normal clients on a runtime of their own.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let run_phase = |secs: Duration| -> (Vec<f64>, u64) {
        rt.block_on(async {
            let tasks = (0..normal_conns).map(|k| {
                let c = client(&ca);
                let (url, body) = (url.clone(), normal.clone());
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut errors = 0u64;
                    let offset = period.mul_f64(k as f64 / normal_conns as f64);
                    let start = tokio::time::Instant::now() + offset;
                    let mut due = start;
                    let mut late = false;
                    while due < start + secs {
                        tokio::time::sleep_until(due).await;
                        // From the time the request was due when the previous answer made it late (so a stalled
                        // server is not hidden), else from the send (so timer wake-up slack is not counted).
                        let from = if late {
                            due
                        } else {
                            tokio::time::Instant::now()
                        };
                        let r = c
                            .post(&url)
                            .header("content-type", "application/json")
                            .body(body.clone())
                            .send()
                            .await;
                        let ok = match r {
                            Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                            Err(_) => false,
                        };
                        lat.push(from.elapsed().as_secs_f64() * 1e3);
                        if !ok {
                            errors += 1;
                        }
                        due += period;
                        late = tokio::time::Instant::now() > due;
                    }
                    (lat, errors)
                })
            });
            let mut all = Vec::new();
            let mut errors = 0;
            for r in futures::future::join_all(tasks).await {
                let (l, e) = r.expect("client task");
                all.extend(l);
                errors += e;
            }
            (all, errors)
        })
    };

    run_phase(Duration::from_secs(1)); // warm-up: connections, caches
    let mut quiet = (Vec::new(), 0u64);
    let mut loud = (Vec::new(), 0u64);
    let mut hostile_secs = 0.0;
    let cpu_start = support::process_cpu_seconds();
    // Short phases in the order quiet, hostile, hostile, quiet, repeated: both kinds meet the same drift of the
    // machine (a VM's idle wake-ups, other tenants), which single long phases did not cancel.
    for i in 0..phases {
        let with_flood = matches!(i % 4, 1 | 2);
        if !with_flood && flood.load(Ordering::Relaxed) {
            // A quiet phase starts only once the hostile reviews in flight are answered (not measured).
            flood.store(false, Ordering::Relaxed);
            let settle = Instant::now();
            while count.in_flight() > 0 && settle.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(10));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        flood.store(with_flood, Ordering::Relaxed);
        let started = Instant::now();
        let (lat, errors) = run_phase(phase);
        let target = if with_flood { &mut loud } else { &mut quiet };
        if with_flood {
            hostile_secs += started.elapsed().as_secs_f64();
        }
        let mut sorted = lat.clone();
        sorted.sort_by(f64::total_cmp);
        println!(
            "phase {:>2} ({}): {} normal reviews, p50 {:.3} ms, p99 {:.3} ms, errors {errors}",
            i + 1,
            if with_flood { "hostile" } else { "quiet  " },
            lat.len(),
            percentile(&sorted, 0.5),
            percentile(&sorted, 0.99),
        );
        target.0.extend(lat);
        target.1 += errors;
    }
    flood.store(false, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let cpu = support::process_cpu_seconds() - cpu_start;
    let _ = hostile_thread.join();

    let summary = |name: &str, (lat, errors): &mut (Vec<f64>, u64)| -> f64 {
        lat.sort_by(f64::total_cmp);
        let p99 = percentile(lat, 0.99);
        println!(
            "{name:<28} {:>8} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>7}",
            lat.len(),
            percentile(lat, 0.5),
            p99,
            percentile(lat, 0.999),
            lat.last().copied().unwrap_or(f64::NAN),
            errors
        );
        p99
    };
    println!(
        "\nnormal load: {normal_conns} connections x {:.0}/s, hostile: {hostile_conns} connections back to back (sender at {} priority, at most {} bytes per write), {phases} phases of {}s (quiet, hostile, hostile, quiet, ...)",
        1.0 / period.as_secs_f64(),
        if hostile_idle { "idle" } else { "normal" },
        if write_cap == usize::MAX {
            "any".to_string()
        } else {
            write_cap.to_string()
        },
        phase.as_secs()
    );
    println!(
        "{:<28} {:>8} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "normal reviews", "count", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "errors"
    );
    let q99 = summary("without hostile traffic", &mut quiet);
    let l99 = summary("with hostile traffic", &mut loud);
    let sent = count.sent.load(Ordering::Relaxed);
    println!(
        "hostile reviews: {sent} sent ({:.1}/s): {} denied, {} allowed (at the limits), {} answered 503 overloaded, {} other (errors, timeouts)",
        sent as f64 / hostile_secs.max(1e-9),
        count.denied.load(Ordering::Relaxed),
        count.allowed.load(Ordering::Relaxed),
        count.overloaded.load(Ordering::Relaxed),
        count.other.load(Ordering::Relaxed),
    );
    println!(
        "process CPU over the {phases} phases: {cpu:.1} s (of {:.0} s x 2 cores)",
        phases as f64 * phase.as_secs_f64()
    );
    println!(
        "normal p99 with / without hostile traffic: {:.2}x (target: at most 2x)",
        l99 / q99
    );
}
