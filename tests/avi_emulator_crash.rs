//! Durability of the `ako emulator` process under SIGKILL: every write the client saw acknowledged,
//! and every VIP address handed out with it, is there after a restart on the same state directory;
//! a VsVip created after the restart never gets an address that was handed out before the crash.

mod avi_support;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ako::avi::models::{IpamNetworkSubnet, Network, Pool, Vip, VirtualService, VsVip};
use ako::avi::refs::name_ref;
use ako::avi::{AviClient, ClientConfig, Credentials, ListQuery, RetryPolicy};
use avi_support::{PASSWORD, pool, vip_addr};
use serde_json::json;

const VIP_NETWORK: &str = "crash-vip";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A child `ako emulator` process; killed (SIGKILL) and reaped when dropped, so it never outlives
/// the test, even when an assertion fails.
struct EmulatorProcess {
    child: Child,
    base_url: String,
    ca_pem: String,
}

impl EmulatorProcess {
    /// Starts `ako emulator` on an ephemeral loopback port and waits until it answers.
    async fn start(state_dir: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ako"))
            .arg("emulator")
            .args(["--listen", "127.0.0.1:0"])
            .arg("--state-dir")
            .arg(state_dir)
            .args(["--admin-password", PASSWORD])
            .env_remove("AKO_EMULATOR_LISTEN")
            .env_remove("AKO_EMULATOR_STATE_DIR")
            .env_remove("AKO_EMULATOR_PASSWORD")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ako emulator spawns");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut process = Self {
            child,
            base_url: String::new(),
            ca_pem: String::new(),
        };
        // The port is only known from the banner; a thread keeps draining stdout afterwards so the
        // child never blocks on a full pipe.
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("ako emulator listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = tokio::task::spawn_blocking(move || rx.recv_timeout(STARTUP_TIMEOUT))
            .await
            .expect("banner reader");
        process.base_url = match url {
            Ok(url) => url,
            Err(_) => panic!(
                "ako emulator printed no listening banner (exit status: {:?})",
                process.child.try_wait()
            ),
        };
        process.ca_pem =
            std::fs::read_to_string(state_dir.join("ca.crt")).expect("CA in the state dir");
        process.wait_ready().await;
        process
    }

    /// Polls the unauthenticated `/api/cluster/status` until it answers 200.
    async fn wait_ready(&mut self) {
        ako::certs::install_crypto_provider();
        let probe = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).expect("CA parses"),
            )
            .timeout(Duration::from_secs(2))
            .build()
            .expect("probe client");
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("ako emulator exited during startup: {status}");
            }
            let answer = probe
                .get(format!("{}/api/cluster/status", self.base_url))
                .send()
                .await;
            if matches!(&answer, Ok(r) if r.status().is_success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "ako emulator not ready after {STARTUP_TIMEOUT:?}: {answer:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn client(&self, sessions: usize) -> AviClient {
        let mut c = ClientConfig::new(&self.base_url, Credentials::password("admin", PASSWORD));
        c.ca_pem = Some(self.ca_pem.clone());
        c.sessions = sessions;
        c.controller_version = Some("22.1.5".into());
        // No retries: once the process is killed every request must fail at once, and a retried POST
        // must never hide which attempt was acknowledged.
        c.retry = RetryPolicy {
            max_retries: 0,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(10),
        };
        c.request_timeout = Duration::from_secs(20);
        AviClient::new(c).expect("client builds")
    }

    /// SIGKILL, then reap.
    fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        let status = self.child.wait().expect("reaped");
        assert!(!status.success(), "killed, not exited: {status}");
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn vip_network() -> Network {
    serde_json::from_value(json!({
        "name": VIP_NETWORK,
        "configured_subnets": [{"prefix": {"ip_addr": {"addr": "10.77.0.0", "type": "V4"}, "mask": 16},
            "static_ip_ranges": [{"type": "STATIC_IPS_FOR_VIP", "range": {
                "begin": {"addr": "10.77.0.1", "type": "V4"}, "end": {"addr": "10.77.255.254", "type": "V4"}}}]}]
    }))
    .expect("network")
}

fn auto_vsvip(name: &str) -> VsVip {
    VsVip {
        name: name.into(),
        vip: Some(vec![Vip {
            auto_allocate_ip: Some(true),
            ipam_network_subnet: Some(IpamNetworkSubnet {
                network_ref: Some(name_ref("network", VIP_NETWORK)),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

fn uuid_of(uuid: Option<&String>) -> String {
    uuid.cloned().expect("acknowledged object has a uuid")
}

/// What the client saw acknowledged before the crash.
#[derive(Default)]
struct Acked {
    /// VsVip uuid -> (name, address).
    vsvips: HashMap<String, (String, String)>,
    /// Pool uuid -> (name, server address).
    pools: HashMap<String, (String, String)>,
    /// VirtualService uuid -> (name, vsvip uuid, pool uuid).
    virtualservices: HashMap<String, (String, String, String)>,
    /// Acknowledged deletes (VsVip uuids).
    deleted_vsvips: Vec<String>,
}

impl Acked {
    fn handed_out(&self) -> HashSet<String> {
        self.vsvips.values().map(|(_, a)| a.clone()).collect()
    }
}

/// Creates `n` VsVip + Pool + VS triples one after another, updates one pool and deletes one VsVip.
async fn sequential_writes(api: &AviClient, acked: &mut Acked, n: usize) {
    for i in 0..n {
        let vip = api
            .create(&auto_vsvip(&format!("seq-vip-{i}")))
            .await
            .expect("vsvip")
            .object;
        let p = api
            .create(&pool(&format!("seq-pool-{i}"), "127.0.0.1"))
            .await
            .expect("pool")
            .object;
        let vs = api
            .create(&VirtualService {
                name: format!("seq-vs-{i}"),
                vsvip_ref: vip.url.clone(),
                pool_ref: p.url.clone(),
                ..Default::default()
            })
            .await
            .expect("vs")
            .object;
        let (vip_uuid, pool_uuid) = (uuid_of(vip.uuid.as_ref()), uuid_of(p.uuid.as_ref()));
        acked
            .vsvips
            .insert(vip_uuid.clone(), (vip.name.clone(), vip_addr(&vip)));
        acked
            .pools
            .insert(pool_uuid.clone(), (p.name.clone(), "127.0.0.1".into()));
        acked.virtualservices.insert(
            uuid_of(vs.uuid.as_ref()),
            (vs.name.clone(), vip_uuid, pool_uuid),
        );
    }
    // An acknowledged update and an acknowledged delete are durable too.
    let mut p = api
        .create(&pool("seq-updated", "127.0.0.2"))
        .await
        .expect("pool")
        .object;
    p.servers = pool("", "127.0.0.3").servers;
    let p = api.update(&p).await.expect("update");
    acked.pools.insert(
        uuid_of(p.uuid.as_ref()),
        (p.name.clone(), "127.0.0.3".into()),
    );
    let doomed = api
        .create(&auto_vsvip("seq-deleted"))
        .await
        .expect("vsvip")
        .object;
    let doomed = uuid_of(doomed.uuid.as_ref());
    api.delete::<VsVip>(&doomed).await.expect("delete");
    acked.deleted_vsvips.push(doomed);
}

/// Restarts on the same state directory and checks every acknowledged write and address.
async fn assert_acknowledged_state_survived(state_dir: &Path, acked: &Acked) {
    let emu = EmulatorProcess::start(state_dir).await;
    let api = emu.client(8);
    for (uuid, (name, addr)) in &acked.vsvips {
        let v: VsVip = api
            .get(uuid)
            .await
            .unwrap_or_else(|e| panic!("acknowledged VsVip {name} ({uuid}) lost: {e}"));
        assert_eq!(&v.name, name);
        assert_eq!(&vip_addr(&v), addr, "address of acknowledged VsVip {name}");
    }
    for (uuid, (name, server)) in &acked.pools {
        let p: Pool = api
            .get(uuid)
            .await
            .unwrap_or_else(|e| panic!("acknowledged Pool {name} ({uuid}) lost: {e}"));
        assert_eq!(&p.name, name);
        let got = p
            .servers
            .as_ref()
            .and_then(|s| s.first())
            .and_then(|s| s.ip.as_ref())
            .and_then(|ip| ip.addr.clone());
        assert_eq!(got.as_ref(), Some(server), "servers of Pool {name}");
    }
    for (uuid, (name, vip, pool)) in &acked.virtualservices {
        let vs: VirtualService = api
            .get(uuid)
            .await
            .unwrap_or_else(|e| panic!("acknowledged VirtualService {name} ({uuid}) lost: {e}"));
        assert_eq!(&vs.name, name);
        assert!(
            vs.vsvip_ref
                .as_deref()
                .is_some_and(|r| r.contains(vip.as_str())),
            "{name} refers to {vip}: {:?}",
            vs.vsvip_ref
        );
        assert!(
            vs.pool_ref
                .as_deref()
                .is_some_and(|r| r.contains(pool.as_str())),
            "{name} refers to {pool}: {:?}",
            vs.pool_ref
        );
    }
    for uuid in &acked.deleted_vsvips {
        assert!(
            api.get_opt::<VsVip>(uuid).await.expect("get").is_none(),
            "acknowledged delete of {uuid} came back"
        );
    }

    // Whatever else made it to disk (unacknowledged creates of the burst) holds distinct addresses.
    let stored: Vec<VsVip> = api.list(&ListQuery::default()).await.expect("list vsvips");
    let mut held = HashSet::new();
    for v in stored
        .iter()
        .filter(|v| v.vip.as_ref().is_some_and(|x| !x.is_empty()))
    {
        if v.name.starts_with("seq-") || v.name.starts_with("burst-") {
            assert!(held.insert(vip_addr(v)), "{} held twice", vip_addr(v));
        }
    }
    let mut forbidden = acked.handed_out();
    forbidden.extend(held);
    for i in 0..20 {
        let next = api
            .create(&auto_vsvip(&format!("after-crash-{i}")))
            .await
            .expect("allocation after the restart")
            .object;
        let addr = vip_addr(&next);
        assert!(
            forbidden.insert(addr.clone()),
            "{addr} was handed out before the crash (or twice after it)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_right_after_acknowledged_writes_loses_no_object_or_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut acked = Acked::default();
    {
        let mut emu = EmulatorProcess::start(dir.path()).await;
        let api = emu.client(4);
        api.create(&vip_network()).await.expect("network");
        sequential_writes(&api, &mut acked, 10).await;
        emu.kill9();
    }
    assert_acknowledged_state_survived(dir.path(), &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_burst_of_concurrent_creates_loses_no_acknowledged_write() {
    const WORKERS: usize = 32;
    const KILL_AFTER_ACKS: usize = 150;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut acked = Acked::default();
    {
        let mut emu = EmulatorProcess::start(dir.path()).await;
        let api = emu.client(WORKERS);
        api.create(&vip_network()).await.expect("network");
        sequential_writes(&api, &mut acked, 3).await;

        let acks = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let enough = Arc::new(tokio::sync::Notify::new());
        let next = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                let (api, acks, stop, enough, next) = (
                    api.clone(),
                    Arc::clone(&acks),
                    Arc::clone(&stop),
                    Arc::clone(&enough),
                    Arc::clone(&next),
                );
                tokio::spawn(async move {
                    let mut vips = Vec::new();
                    let mut pools = Vec::new();
                    // Runs until the first failure: after the kill every request fails.
                    while !stop.load(Ordering::Acquire) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i % 2 == 0 {
                            match api.create(&auto_vsvip(&format!("burst-vip-{i}"))).await {
                                Ok(c) => vips.push(c.object),
                                Err(_) => break,
                            }
                        } else {
                            match api
                                .create(&pool(&format!("burst-pool-{i}"), "127.0.0.4"))
                                .await
                            {
                                Ok(c) => pools.push(c.object),
                                Err(_) => break,
                            }
                        }
                        if acks.fetch_add(1, Ordering::AcqRel) + 1 == KILL_AFTER_ACKS {
                            enough.notify_one();
                        }
                    }
                    (vips, pools)
                })
            })
            .collect();
        tokio::time::timeout(Duration::from_secs(120), enough.notified())
            .await
            .expect("the burst gets acknowledged writes");
        // Requests of every worker are in flight now.
        emu.kill9();
        stop.store(true, Ordering::Release);
        let mut burst_acks = 0;
        for w in workers {
            let (vips, pools) = w.await.expect("worker");
            burst_acks += vips.len() + pools.len();
            for v in vips {
                acked
                    .vsvips
                    .insert(uuid_of(v.uuid.as_ref()), (v.name.clone(), vip_addr(&v)));
            }
            for p in pools {
                acked.pools.insert(
                    uuid_of(p.uuid.as_ref()),
                    (p.name.clone(), "127.0.0.4".into()),
                );
            }
        }
        assert!(burst_acks >= KILL_AFTER_ACKS, "{burst_acks} acknowledged");
    }
    assert_acknowledged_state_survived(dir.path(), &acked).await;
}
