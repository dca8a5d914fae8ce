//! High availability against a real kube-apiserver 1.20.2 + etcd: two electors on one Lease, hand-over on
//! step-down, fencing by time when the leader is cut off from the API server, and the single-replica mode.
//! Short timings (lease 3 s, renew deadline 2 s, retry 0.5 s); each test uses its own Lease. One control plane
//! is shared by the tests of this file.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ako::k8s::lease::{LEASE_NAME, LeaderElection, LeaderHandle, Timings};
use common::Cluster;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::ListParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const NS: &str = "default";
const SAMPLE: Duration = Duration::from_millis(20);

fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(Cluster::start)
}

fn timings() -> Timings {
    Timings::new(
        Duration::from_secs(3),
        Duration::from_secs(2),
        Duration::from_millis(500),
    )
    .expect("valid timings")
}

async fn config() -> Config {
    let kubeconfig = Kubeconfig::read_from(&cluster().kubeconfig).expect("kubeconfig");
    Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kube config")
}

async fn client() -> Client {
    Client::try_from(config().await).expect("client")
}

fn elector(client: Client, lease: &str, identity: &str) -> LeaderHandle {
    LeaderElection::new(client, NS, lease, identity, timings()).spawn()
}

/// Waits (bounded) until one of `handles` leads; returns its index.
async fn wait_for_a_leader(handles: &[&LeaderHandle], within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        if let Some(i) = handles.iter().position(|h| h.is_leader()) {
            return i;
        }
        assert!(Instant::now() < deadline, "no leader after {within:?}");
        tokio::time::sleep(SAMPLE).await;
    }
}

async fn holder_of(lease: &str) -> Option<String> {
    let api: Api<Lease> = Api::namespaced(client().await, NS);
    api.get(lease)
        .await
        .expect("lease")
        .spec
        .and_then(|s| s.holder_identity)
}

/// A loopback TCP relay to the API server that can be turned into a black hole: once cut, it keeps every
/// connection (old and new) open but forwards nothing, as a network partition does.
struct Relay {
    url: String,
    cut: watch::Sender<bool>,
}

impl Relay {
    async fn start(upstream: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let port = listener.local_addr().expect("relay addr").port();
        let (cut, cut_rx) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                let Ok((mut down, _)) = listener.accept().await else {
                    return;
                };
                let upstream = upstream.clone();
                let mut cut_rx = cut_rx.clone();
                tokio::spawn(async move {
                    let already_cut = *cut_rx.borrow();
                    if already_cut {
                        // Hold the connection, answer nothing.
                        std::future::pending::<()>().await;
                    }
                    let Ok(mut up) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let cut = tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut down, &mut up) => false,
                        r = cut_rx.wait_for(|c| *c) => r.is_ok(),
                    };
                    if cut {
                        // Keep both sockets open, forward nothing.
                        std::future::pending::<()>().await;
                    }
                });
            }
        });
        Relay {
            url: format!("https://127.0.0.1:{port}"),
            cut,
        }
    }

    fn cut(&self) {
        self.cut.send_replace(true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_electors_on_one_lease_never_lead_at_the_same_time() {
    let lease = "ha-exclusive";
    let a = elector(client().await, lease, "replica-a");
    let b = elector(client().await, lease, "replica-b");
    wait_for_a_leader(&[&a, &b], Duration::from_secs(10)).await;

    let until = Instant::now() + Duration::from_secs(6);
    let mut samples = 0;
    let mut led = [0u32; 2];
    while Instant::now() < until {
        let (la, lb) = (a.is_leader(), b.is_leader());
        assert!(!(la && lb), "both replicas lead at sample {samples}");
        led[0] += u32::from(la);
        led[1] += u32::from(lb);
        samples += 1;
        tokio::time::sleep(SAMPLE).await;
    }
    // A healthy leader keeps the lease: one replica led at every sample, the other at none.
    assert!(
        led.contains(&samples) && led.contains(&0),
        "leadership was not stable over {samples} samples: {led:?}"
    );
    let leader = if led[0] > 0 { &a } else { &b };
    assert_eq!(holder_of(lease).await.as_deref(), Some(leader.identity()));
    a.step_down().await;
    b.step_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_leader_steps_down_the_other_takes_over() {
    let lease = "ha-step-down";
    let a = elector(client().await, lease, "replica-a");
    let b = elector(client().await, lease, "replica-b");
    let first = wait_for_a_leader(&[&a, &b], Duration::from_secs(10)).await;
    let (leader, other) = if first == 0 { (&a, &b) } else { (&b, &a) };
    let mut other_rx = other.clone();

    leader.step_down().await;
    assert!(!leader.is_leader(), "still leader after stepping down");
    assert_ne!(
        holder_of(lease).await.as_deref(),
        Some(leader.identity()),
        "the lease was not released"
    );

    // Released, not expired: the other one takes over at its next retry, well before a lease duration.
    let took_over = tokio::time::timeout(Duration::from_secs(5), other_rx.wait_leader()).await;
    assert!(took_over.is_ok(), "the other replica never took over");
    assert!(other.is_leader());
    assert!(!leader.is_leader(), "a stepped-down replica came back");
    assert_eq!(holder_of(lease).await.as_deref(), Some(other.identity()));
    other.step_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_api_server_stops_leading_before_the_other_takes_over() {
    let lease = "ha-partition";
    let timings = timings();
    let mut cfg = config().await;
    let upstream = format!(
        "{}:{}",
        cfg.cluster_url.host().expect("host"),
        cfg.cluster_url.port_u16().expect("port")
    );
    let relay = Relay::start(upstream).await;
    cfg.cluster_url = relay.url.parse().expect("relay url");
    let cut_off = elector(Client::try_from(cfg).expect("client"), lease, "replica-cut");
    wait_for_a_leader(&[&cut_off], Duration::from_secs(10)).await;
    let healthy = elector(client().await, lease, "replica-healthy");
    let mut lost_rx = cut_off.subscribe();

    // The healthy one watches the lease for a while, then the leader loses the API server.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(cut_off.is_leader() && !healthy.is_leader());
    relay.cut();
    let cut_at = Instant::now();

    // Sample both; track the leader's own deadline (the last accepted renewal's send + renew deadline).
    let mut last_deadline = cut_at;
    let mut old_lost: Option<Instant> = None;
    let mut new_led: Option<Instant> = None;
    let bound = cut_at + Duration::from_secs(15);
    while new_led.is_none() {
        let now = Instant::now();
        assert!(now < bound, "the healthy replica never took over");
        let old = cut_off.remaining();
        let new = healthy.is_leader();
        match old {
            Some(left) => last_deadline = last_deadline.max(now + left),
            None => {
                old_lost.get_or_insert(now);
            }
        }
        if new {
            new_led = Some(now);
            assert!(old.is_none(), "both replicas lead");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (old_lost, new_led) = (old_lost.expect("old lost"), new_led.expect("new led"));

    eprintln!(
        "cut-off leader stopped {:?} after the cut; the other led {:?} after that",
        old_lost - cut_at,
        new_led - old_lost
    );
    // The cut-off leader stopped on its own, before the earliest instant the lease could expire for anyone
    // else (its last accepted renewal was sent at `last_deadline - renew_deadline`)...
    let earliest_expiry = last_deadline + (timings.lease_duration() - timings.renew_deadline());
    assert!(
        old_lost < earliest_expiry,
        "the cut-off leader still led {:?} after the lease could expire",
        old_lost - earliest_expiry
    );
    // ... and the other one led only after that.
    assert!(
        old_lost < new_led,
        "the new leader started {:?} before the old one stopped",
        old_lost - new_led
    );
    // The task also announced the loss on its channel, although its requests hang.
    let announced = tokio::time::timeout(Duration::from_secs(5), lost_rx.wait_for(|l| !*l)).await;
    assert!(announced.is_ok(), "the loss was never published");
    assert_eq!(holder_of(lease).await.as_deref(), Some(healthy.identity()));
    healthy.step_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_leads_without_creating_a_lease() {
    let mut single = LeaderHandle::always();
    assert!(single.is_leader());
    let became = tokio::time::timeout(Duration::from_secs(1), single.changed()).await;
    assert_eq!(became.ok(), Some(true));

    let api: Api<Lease> = Api::all(client().await);
    let leases = api.list(&ListParams::default()).await.expect("list leases");
    let named: Vec<_> = leases
        .items
        .iter()
        .filter(|l| l.metadata.name.as_deref() == Some(LEASE_NAME))
        .collect();
    assert!(named.is_empty(), "a Lease {LEASE_NAME} exists: {named:?}");
    assert!(single.is_leader());

    single.step_down().await;
    assert!(!single.is_leader());
}
