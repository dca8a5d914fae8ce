//! The running operator (`ako controller`, and the reconciler half of `ako run`): connects to the API server and
//! the Avi Controller, checks the environment until it is usable (reporting what is missing instead of
//! crash-looping), starts the watches, the leader election and the reconciler, and stops cleanly on shutdown
//! (stepping down so another replica takes over at once).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::k8s::lease::{self, Timings};
use crate::k8s::observe::{self, View};
use crate::k8s::report::{KubeSink, Notice, Sink};
use crate::reconcile::health::ControllerHealth;
use crate::reconcile::{Progress, Reconciler, Settings, env};
use ako_avi::{AviClient, ClientConfig, Credentials};
use ako_core::config::Config;
use ako_core::index::ObjKey;
use ako_core::l4::{LicenseTier, Placement, VipFamily};
use ako_core::settings::{ControllerSettings, Login};

/// Errors that stop the operator before it runs.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("Kubernetes client: {0}")]
    Kube(#[from] kube::Error),
    #[error("Avi client: {0}")]
    Avi(#[from] ako_avi::AviError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Stopped(String),
}

/// Process-level options.
#[derive(Debug)]
pub struct Options {
    /// ako's namespace (the Lease lives there).
    pub namespace: String,
    pub leader_election: bool,
    /// `POD_NAME`, for Event reporting.
    pub instance: Option<String>,
    /// Live settings from the watched configuration, if any.
    pub live: Option<watch::Receiver<crate::reconcile::live::Live>>,
    /// Told the configuration in force once the environment is validated (with the DNS profile's subdomains):
    /// the webhook of `ako run` then uses the same list.
    pub resolved: Option<tokio::sync::oneshot::Sender<Config>>,
    /// Metrics and liveness, served by the health port.
    pub health: Arc<ControllerHealth>,
    /// The watches already running in this process (`ako run`: the webhook's, one set for both); `None`: the
    /// reconciler starts its own.
    pub observed: Option<Observed>,
}

/// A running observation layer the reconciler attaches to: its view and the queue of changes it reports.
pub struct Observed {
    pub view: Arc<View>,
    pub changes: crate::k8s::changes::ChangeReceiver,
}

impl std::fmt::Debug for Observed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observed")
            .field("view_synced", &self.view.synced())
            .finish_non_exhaustive()
    }
}

/// The Avi client for these settings.
pub fn avi_client(cfg: &Config, s: &ControllerSettings) -> Result<AviClient, RuntimeError> {
    avi_client_with(cfg, s, |_| {})
}

/// The Avi client for these settings, with `adjust` applied to its configuration (metrics, fence, user agent).
pub fn avi_client_with(
    cfg: &Config,
    s: &ControllerSettings,
    adjust: impl FnOnce(&mut ClientConfig),
) -> Result<AviClient, RuntimeError> {
    let credentials = match &s.login {
        Login::Password { username, password } => Credentials::password(username, password),
        Login::Token { username, token } => Credentials::token(username, token),
    };
    let mut c = ClientConfig::new(s.controller_host.clone(), credentials)
        .with_cluster_name(&cfg.cluster_name);
    c.tenant = s.tenant.clone();
    c.controller_version = s.controller_version.clone();
    c.ca_pem = s.ca_pem.clone();
    c.insecure_skip_verify = s.insecure_skip_verify;
    c.request_timeout = s.avi_request_timeout;
    c.budget.ceiling = f64::from(s.avi_max_rps);
    adjust(&mut c);
    Ok(AviClient::new(c)?)
}

/// Where ako's objects go, from the configuration.
pub fn placement(cfg: &Config, s: &ControllerSettings) -> Placement {
    let vip_network = cfg.vip_networks.first().and_then(|n| {
        let name = n.network_name.clone().or_else(|| n.network_uuid.clone())?;
        Some((name, n.cidr))
    });
    Placement {
        rhi: Default::default(),
        cluster_name: cfg.cluster_name.clone(),
        tenant: s.tenant.clone(),
        cloud: s.cloud.clone(),
        se_group: s.se_group.clone(),
        vrf: s.vrf.clone(),
        vip_network,
        member_mode: s.member_mode.clone(),
        license_tier: LicenseTier::default(),
        vip_family: cfg
            .vip_networks
            .first()
            .map(|n| VipFamily::of(n.cidr, n.v6cidr))
            .unwrap_or_default(),
    }
}

/// Checks the environment until the controller answers and nothing is missing; returns the configuration with
/// the DNS profile's subdomains (unless configured) and the placement with the VIP subnet filled in.
pub async fn wait_for_environment(
    avi: &AviClient,
    sink: &dyn Sink,
    mut cfg: Config,
    mut place: Placement,
) -> (Config, Placement) {
    let mut delay = Duration::from_secs(2);
    loop {
        match env::check(avi, &place).await {
            Ok((found, problems)) if problems.is_empty() => {
                cfg.dns_domains = env::effective_domains(&cfg.dns_domains, &found.dns_domains);
                if let (Some((_, subnet @ None)), Some(s)) =
                    (&mut place.vip_network, found.vip_subnet)
                {
                    *subnet = Some(s);
                }
                if let Some(tier) = found.license_tier {
                    place.license_tier = tier;
                }
                tracing::info!(
                    cloud = %place.cloud,
                    se_group = %place.se_group,
                    license_tier = ?place.license_tier,
                    dns_domains = ?cfg.dns_domains,
                    "environment validated against the Avi controller"
                );
                if cfg.dns_domains.is_empty() {
                    tracing::warn!(
                        "no DNS subdomain is configured or in the cloud's DNS profile: no FQDN will be published"
                    );
                }
                return (cfg, place);
            }
            Ok((_, problems)) => {
                for p in &problems {
                    let msg = format!("{p}; ako retries in {}s", delay.as_secs());
                    sink.operator_event(&Notice::warning("InvalidEnvironment", msg))
                        .await;
                }
            }
            Err(error) => {
                tracing::warn!(%error, retry_in_s = delay.as_secs(), "the Avi controller cannot be reached");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(60));
    }
}

/// The cluster's identity: the kube-system Namespace's UID (the same for the life of the cluster, different for
/// every cluster). Retried for a while; without it ako still runs (objects get no identity marker) and says so.
async fn cluster_uid(client: &kube::Client, sink: &dyn Sink) -> Option<String> {
    let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client.clone());
    let mut delay = Duration::from_millis(500);
    for attempt in 1..=6 {
        match api.get("kube-system").await {
            Ok(ns) => return ns.metadata.uid,
            Err(error) => {
                tracing::warn!(%error, attempt, "reading the kube-system Namespace (the cluster's identity) failed");
                if attempt == 6 {
                    sink.operator_event(&Notice::warning(
                        "ClusterIdentityUnknown",
                        format!(
                            "the kube-system Namespace could not be read ({error}): ako's objects carry no \
                             clusteruid marker, so another cluster using the same clusterName on this controller \
                             could not be told apart; give ako get on namespaces"
                        ),
                    ))
                    .await;
                }
            }
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
    None
}

/// Runs the reconciler until `shutdown` resolves. Returns an error when the reconciler's task ends by itself
/// (after releasing the Lease, so another replica takes over at once): the process should then exit and be
/// restarted rather than keep renewing a lease while nothing is reconciled.
pub async fn run(
    cfg: Config,
    s: ControllerSettings,
    mut opts: Options,
    client: kube::Client,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RuntimeError> {
    let pod = opts
        .instance
        .as_ref()
        .map(|name| ObjKey::new(opts.namespace.clone(), name.clone()));
    let handle = lease::start(
        client.clone(),
        &opts.namespace,
        opts.leader_election,
        Timings::default(),
    );
    let fence_handle = handle.clone();
    let health = opts.health.clone();
    let identity = opts
        .instance
        .clone()
        .unwrap_or_else(|| handle.identity().to_string());
    let avi = avi_client_with(&cfg, &s, |c| {
        c.metrics = Some(health.avi.clone());
        c.user_agent = format!("ako/{} ({identity})", env!("CARGO_PKG_VERSION"));
        let h = fence_handle.clone();
        c.write_fence = Some(ako_avi::WriteFence(Arc::new(move || h.remaining())));
    })?;
    let place = placement(&cfg, &s);
    let sink_fence = fence_handle.clone();
    let sink = Arc::new(
        KubeSink::for_pod(client.clone(), opts.instance.clone(), pod)
            .with_fence(Arc::new(move || sink_fence.remaining())),
    );
    let mut shutdown = std::pin::pin!(shutdown);
    let (cfg, place) = tokio::select! {
        r = wait_for_environment(&avi, sink.as_ref(), cfg, place) => r,
        () = &mut shutdown => {
            handle.step_down().await;
            return Ok(());
        }
    };
    let uid = tokio::select! {
        u = cluster_uid(&client, sink.as_ref()) => u,
        () = &mut shutdown => {
            handle.step_down().await;
            return Ok(());
        }
    };
    tracing::info!(cluster_uid = ?uid, "cluster identity");

    if let Some(tx) = opts.resolved.take() {
        let _ = tx.send(cfg.clone());
    }
    let (view, rx, watches) = match opts.observed.take() {
        Some(o) => (o.view, o.changes, Vec::new()),
        None => {
            let view = Arc::new(View::default());
            let (tx, rx) = crate::k8s::changes::channel();
            crate::k8s::crds::ensure(&client).await;
            let source = observe::endpoint_source(&client).await;
            tracing::info!(?source, "endpoints read from");
            let watches = observe::spawn(
                client.clone(),
                view.clone(),
                observe::Kinds::All(source),
                Some(tx),
            );
            (view, rx, watches)
        }
    };

    let mut settings = Settings::new(place);
    settings.full_sync = s.full_sync;
    settings.delete_all = s.delete_config;
    settings.scope = s.scope.clone();
    settings.shard = s.shard_size;
    settings.static_routes = s.static_routes;
    settings.guard = s.deletion_guard;
    settings.release_held = s.release_held.clone();
    settings.cluster_uid = uid;
    settings.default_cert = Some(ObjKey::new(
        opts.namespace.clone(),
        ako_core::l7::DEFAULT_CERT_SECRET,
    ));
    let reconciler_fence = fence_handle.clone();
    let mut reconciler = Reconciler::new(avi, view, Arc::new(cfg), settings, sink)
        .with_fence(Arc::new(move || reconciler_fence.is_leader()))
        .with_metrics(health.reconcile.clone(), health.heartbeat.clone());
    if let Some(live) = opts.live.clone() {
        reconciler = reconciler.with_live(live);
    }
    let (ptx, _prx) = watch::channel(Progress::default());
    let mut task = tokio::spawn(reconciler.run(rx, handle.subscribe(), ptx));
    health.set_started();

    let ended = tokio::select! {
        () = &mut shutdown => None,
        r = &mut task => Some(r),
    };
    for w in watches {
        w.abort();
    }
    match ended {
        None => {
            tracing::info!("shutting down the reconciler");
            task.abort();
            handle.step_down().await;
            Ok(())
        }
        Some(result) => {
            health.heartbeat.died();
            let why = match result {
                Ok(()) => "the reconciler stopped: its watches ended".to_string(),
                Err(e) => format!("the reconciler failed: {e}"),
            };
            tracing::error!(reason = %why, "releasing the lease so another replica takes over");
            handle.step_down().await;
            Err(RuntimeError::Stopped(why))
        }
    }
}
