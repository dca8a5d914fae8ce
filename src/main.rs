//! The `ako` command: webhook, offline check, certificate tooling and the Avi controller emulator.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use ako::cli::ConfigArgs;

/// mimalloc as the process allocator, set here in the binary only (a library never chooses its users'
/// allocator): the admission path is allocation-heavy (JSON), and mimalloc cut the webhook's CPU per request by
/// about a quarter against glibc malloc (BENCHMARKS.md). The `system-alloc` feature keeps the system allocator,
/// for heap profilers that hook malloc (heaptrack).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use ako::telemetry::{self, LogFormat};

#[derive(Debug, Parser)]
#[command(
    name = "ako",
    version,
    about = "Avi Kubernetes Operator: admission webhook, reconciler and Avi emulator"
)]
struct Cli {
    /// Log format: json (production) or text.
    #[arg(
        long,
        global = true,
        env = "AKO_LOG_FORMAT",
        value_enum,
        default_value = "json"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the validating and mutating admission webhook over HTTPS.
    Webhook(Box<WebhookArgs>),
    /// Check manifests offline with the webhook's rules; exit 1 if anything would be denied.
    Check(CheckArgs),
    /// Generate a CA and a serving certificate for the webhook; print the caBundle.
    Certs(CertsArgs),
    /// Run the embedded Avi controller emulator.
    #[cfg(feature = "emulator")]
    Emulator(ako::emulator::EmulatorArgs),
    /// Run the reconciler alone: LoadBalancer Services become Avi virtual services.
    Controller(Box<ControllerCmd>),
    /// Run the webhook and the reconciler in one process (what the Helm chart starts).
    Run(Box<RunCmd>),
}

#[derive(Debug, clap::Args)]
struct RunCmd {
    #[command(flatten)]
    webhook: WebhookArgs,
    #[command(flatten)]
    controller: ako::cli::ControllerArgs,
    #[command(flatten)]
    process: ProcessArgs,
}

#[derive(Debug, clap::Args)]
struct ControllerCmd {
    #[command(flatten)]
    config: ConfigArgs,
    /// Plain-HTTP listener for /healthz (fails when the reconciler is stalled or stopped), /readyz and /metrics.
    #[arg(long, env = "AKO_HEALTH_LISTEN", default_value = "0.0.0.0:8080")]
    health_listen: SocketAddr,
    #[command(flatten)]
    controller: ako::cli::ControllerArgs,
    #[command(flatten)]
    process: ProcessArgs,
}

/// How this replica runs among others.
#[derive(Debug, clap::Args)]
struct ProcessArgs {
    /// Elect one writer among replicas with the Lease ako-lease-lock (off: this replica always writes).
    #[arg(long, env = "AKO_LEADER_ELECTION", default_value_t = false)]
    leader_election: bool,
    /// ako's namespace (where the Lease lives).
    #[arg(long, env = "POD_NAMESPACE", default_value = "avi-system")]
    namespace: String,
    /// This pod's name (Event source, Lease holder).
    #[arg(long, env = "POD_NAME")]
    pod_name: Option<String>,
    /// How often the configuration (--config) is re-read for live settings, in seconds.
    #[arg(long, env = "AKO_CONFIG_POLL_SECONDS", default_value_t = 5)]
    config_poll_seconds: u64,
    /// /healthz fails when a reconciler pass has run, or changes have waited for the reconciler, this long.
    #[arg(long, env = "AKO_RECONCILE_STALL_SECONDS", default_value_t = 900,
          value_parser = clap::value_parser!(u64).range(1..))]
    reconcile_stall_seconds: u64,
}

#[derive(Debug, clap::Args)]
struct WebhookArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// HTTPS address of the admission endpoints.
    #[arg(long, env = "AKO_WEBHOOK_LISTEN", default_value = "0.0.0.0:8443")]
    listen: SocketAddr,
    /// Plain HTTP address of /healthz, /readyz and /metrics.
    #[arg(long, env = "AKO_HEALTH_LISTEN", default_value = "0.0.0.0:8080")]
    health_listen: SocketAddr,
    /// Serving certificate (PEM).
    #[arg(long, env = "AKO_TLS_CERT", default_value = "certs/out/tls.crt")]
    tls_cert: PathBuf,
    /// Serving key (PEM).
    #[arg(long, env = "AKO_TLS_KEY", default_value = "certs/out/tls.key")]
    tls_key: PathBuf,
    /// How often the certificate files are checked for rotation, in seconds.
    #[arg(long, env = "AKO_CERT_RELOAD_SECONDS", default_value_t = 10)]
    cert_reload_seconds: u64,
    /// Threads of the admission listener's own (each a single-threaded runtime); 0 serves it on the main runtime.
    #[arg(long, env = "AKO_WEBHOOK_THREADS", default_value_t = 1)]
    webhook_threads: usize,
    /// Each admission request is answered within this many milliseconds, or refused with 503 "overloaded".
    /// Keep it below the webhook configuration's timeoutSeconds (5 s in webhook-config/).
    #[arg(long, env = "AKO_WEBHOOK_DEADLINE_MS", default_value_t = 4000,
          value_parser = clap::value_parser!(u64).range(100..=29_000))]
    webhook_deadline_ms: u64,
    /// Admission requests served at once; more wait for a slot until their deadline.
    #[arg(long, env = "AKO_WEBHOOK_MAX_IN_FLIGHT", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    webhook_max_in_flight: u64,
    /// Reviews over 64 KiB read and decided at once (off the listener thread).
    #[arg(long, env = "AKO_WEBHOOK_MAX_LARGE_IN_FLIGHT", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=1_000))]
    webhook_max_large_in_flight: u64,
    /// Serve /claims (who claims a host or a VIP) on the health port. Off by default: it lists namespaces,
    /// names and hosts to anyone who can reach the port, without authentication.
    /// Admission connections open at once; more are closed at once.
    #[arg(long, env = "AKO_WEBHOOK_MAX_CONNECTIONS", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    webhook_max_connections: u64,
    /// Time a connection gets for its TLS handshake and then for each request's head.
    #[arg(long, env = "AKO_WEBHOOK_HEADER_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    webhook_header_timeout_ms: u64,
    #[arg(long, env = "AKO_EXPOSE_CLAIMS", default_value_t = false)]
    expose_claims: bool,
    /// After SIGTERM, keep answering admission requests this many seconds (while the API server and kube-proxy
    /// stop sending new ones) before shutting down.
    #[arg(long, env = "AKO_SHUTDOWN_DELAY_SECONDS", default_value_t = 0)]
    shutdown_delay_seconds: u64,
    #[command(flatten)]
    self_certs: ako::k8s::webhook_certs::SelfCertArgs,
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Manifest files or directories (YAML/JSON, multi-document).
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,
    /// Namespace for objects that name none.
    #[arg(short = 'n', long, default_value = "default")]
    namespace: String,
}

#[derive(Debug, clap::Args)]
struct CertsArgs {
    /// Output directory (keys are never committed: certs/out is ignored by git).
    #[arg(long, default_value = "certs/out")]
    out_dir: PathBuf,
    /// Webhook Service name.
    #[arg(long, default_value = "ako-webhook")]
    service: String,
    /// Namespace of the webhook Service.
    #[arg(long, default_value = "avi-system")]
    namespace: String,
    /// Extra DNS names for the certificate.
    #[arg(long = "dns-name")]
    dns_names: Vec<String>,
    /// IP SANs for local use.
    #[arg(long = "ip", default_value = "127.0.0.1")]
    ips: Vec<IpAddr>,
    /// Validity of the serving certificate in days (1 to 36500).
    #[arg(long, default_value_t = 365,
          value_parser = clap::value_parser!(i64).range(1..=ako::certs::MAX_DAYS))]
    days: i64,
    /// Render these webhook configuration manifests with the caBundle filled in (to stdout).
    #[arg(long = "render")]
    render: Vec<PathBuf>,
    /// With --render: call the webhook at this base URL (e.g. https://127.0.0.1:8443) instead of the Service.
    #[arg(long)]
    webhook_url: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    ako::certs::install_crypto_provider();
    match cli.command {
        Command::Check(args) => run_check(args),
        Command::Certs(args) => run_certs(args),
        Command::Webhook(args) => {
            let cfg = args.config.resolve()?;
            let _guard = telemetry::init(&cfg.log_level, cli.log_format);
            runtime()?.block_on(run_webhook(*args, cfg))
        }
        #[cfg(feature = "emulator")]
        Command::Emulator(args) => {
            let _guard = telemetry::init("info", cli.log_format);
            runtime()?.block_on(ako::emulator::run(args))
        }
        Command::Run(args) => {
            let (cfg, settings) = resolve_controller(&args.webhook.config, &args.controller)?;
            let _guard = telemetry::init(&cfg.log_level, cli.log_format);
            without_huge_pages();
            runtime_with(args.controller.controller_threads)?
                .block_on(run_all(cfg, settings, *args))
        }
        Command::Controller(args) => {
            let (cfg, settings) = resolve_controller(&args.config, &args.controller)?;
            let _guard = telemetry::init(&cfg.log_level, cli.log_format);
            without_huge_pages();
            runtime_with(args.controller.controller_threads)?
                .block_on(run_controller(cfg, settings, *args))
        }
    }
}

/// Both configurations of the reconciler, every problem reported at once.
fn resolve_controller(
    config: &ConfigArgs,
    controller: &ako::cli::ControllerArgs,
) -> anyhow::Result<(
    ako::core::config::Config,
    ako::core::settings::ControllerSettings,
)> {
    let mut problems = Vec::new();
    let cfg = config.resolve().map_err(|e| problems.extend(e.0)).ok();
    let settings = controller
        .resolve(config.config_file.as_deref())
        .map_err(|e| problems.extend(e.0))
        .ok();
    match (cfg, settings) {
        (Some(c), Some(s)) => {
            if c.cluster_name == DEFAULT_CLUSTER_NAME && !s.allow_default_cluster_name {
                problems.push(format!(
                    "clusterName is {DEFAULT_CLUSTER_NAME:?}, AKO's chart default: ako owns every Avi object created by \
                     ako-{DEFAULT_CLUSTER_NAME}, so two clusters left at the default on one controller would update \
                     and delete each other's virtual services. Set AKOSettings.clusterName (CLUSTER_NAME) to a name \
                     no other cluster uses on this controller, or set allowDefaultClusterName (ALLOW_DEFAULT_CLUSTER_NAME) \
                     to true if this is the only one"
                ));
                return Err(ako::core::config::ConfigErrors(problems).into());
            }
            Ok((c, s))
        }
        _ => Err(ako::core::config::ConfigErrors(problems).into()),
    }
}

/// The reconciler's options; with a configuration file, the live-settings watcher (kept alive by the guard).
/// AKO's chart default clusterName, which ako refuses to run with unless told otherwise.
const DEFAULT_CLUSTER_NAME: &str = "my-cluster";

fn controller_options(
    cfg: &ako::core::config::Config,
    settings: &ako::core::settings::ControllerSettings,
    config: &ConfigArgs,
    controller: &ako::cli::ControllerArgs,
    process: ProcessArgs,
) -> (
    ako::reconcile::runtime::Options,
    Option<ako::reconcile::AbortOnDrop>,
) {
    // The configuration source is re-read: deleteConfig, logLevel and the namespace scope are live.
    let (live, watcher) = match &config.config_file {
        Some(path) => {
            let first = ako::reconcile::live::Live {
                delete_all: settings.delete_config,
                scope: settings.scope.clone(),
                log_level: cfg.log_level.clone(),
                release_held: settings.release_held.clone(),
                guard: settings.deletion_guard,
            };
            let (tx, rx) = tokio::sync::watch::channel(first);
            let task = ako::reconcile::live::spawn(
                path.clone(),
                config.clone(),
                controller.clone(),
                Duration::from_secs(process.config_poll_seconds.max(1)),
                tx,
            );
            (Some(rx), Some(ako::reconcile::AbortOnDrop(task)))
        }
        None => (None, None),
    };
    let opts = ako::reconcile::runtime::Options {
        namespace: process.namespace,
        leader_election: process.leader_election,
        instance: process.pod_name,
        live,
        resolved: None,
        health: ako::reconcile::health::ControllerHealth::new(Duration::from_secs(
            process.reconcile_stall_seconds,
        )),
        observed: None,
    };
    (opts, watcher)
}

/// Turns transparent huge pages off for this process (Linux `PR_SET_THP_DISABLE`). The controller's heap is
/// many small objects spread over the allocator's regions; backed by 2 MiB pages, a sparsely used region counts
/// in full, which made the peak RSS about a fifth larger at 10,000 objects (BENCHMARKS.md, section 6). Best
/// effort: where refused, the process runs as before.
fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(error) = nix::sys::prctl::set_thp_disable(true) {
        tracing::debug!(%error, "transparent huge pages stay enabled");
    }
}

async fn run_controller(
    cfg: ako::core::config::Config,
    settings: ako::core::settings::ControllerSettings,
    args: ControllerCmd,
) -> anyhow::Result<()> {
    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API (KUBECONFIG or in-cluster)")?;
    let (opts, _watcher) = controller_options(
        &cfg,
        &settings,
        &args.config,
        &args.controller,
        args.process,
    );
    tracing::info!(cluster = %cfg.cluster_name, controller = %settings.controller_host, "ako controller starting");
    let health = tokio::net::TcpListener::bind(args.health_listen)
        .await
        .with_context(|| format!("binding {}", args.health_listen))?;
    let router = ako::reconcile::health::router(opts.health.clone());
    let health_task = ako::reconcile::AbortOnDrop(tokio::spawn(async move {
        if let Err(error) = axum::serve(health, router).await {
            tracing::error!(%error, "health server stopped");
        }
    }));
    let result = ako::reconcile::runtime::run(cfg, settings, opts, client, shutdown_signal()).await;
    drop(health_task);
    result?;
    Ok(())
}

/// `ako run`: the webhook and the reconciler in one process. The webhook serves at once with the configured
/// subdomains; once the reconciler has read the cloud's DNS profile, the webhook uses the same list.
async fn run_all(
    cfg: ako::core::config::Config,
    settings: ako::core::settings::ControllerSettings,
    args: RunCmd,
) -> anyhow::Result<()> {
    // Until the DNS profile is read, the webhook cannot check hosts: it answers "not ready" for ako's objects
    // instead of admitting any host (unless dnsDomains is configured, which skips the lookup).
    let mut webhook_cfg = cfg.clone();
    webhook_cfg.domains_pending = cfg.dns_domains.is_empty();
    let (mut opts, _watcher) = controller_options(
        &cfg,
        &settings,
        &args.webhook.config,
        &args.controller,
        args.process,
    );
    // One set of watches for both: the webhook's index and the reconciler's view and changes.
    // The webhook asks the controller whether what HostRules and HTTPRules name exists.
    let names = ako::reconcile::runtime::avi_client(&cfg, &settings)
        .map(|c| Arc::new(ako::webhook::names::Names::new(c)))
        .map_err(|error| tracing::warn!(%error, "the webhook cannot ask the controller about the names rules use; it admits them and the reconciler reports"))
        .ok();
    let mut webhook = start_webhook_with(
        &args.webhook,
        webhook_cfg.clone(),
        Some(opts.health.clone()),
        names,
    )
    .await?;
    opts.observed = webhook
        .changes
        .take()
        .map(|changes| ako::reconcile::runtime::Observed {
            view: webhook.view.clone(),
            changes,
        });
    let (resolved_tx, resolved_rx) = tokio::sync::oneshot::channel();
    opts.resolved = Some(resolved_tx);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(ako::reconcile::runtime::run(
        cfg.clone(),
        settings,
        opts,
        webhook.client.clone(),
        async move {
            let _ = stop_rx.await;
        },
    ));
    let index = webhook.index.clone();
    let view = webhook.view.clone();
    let configured = webhook_cfg;
    let follow = tokio::spawn(async move {
        let Ok(resolved) = resolved_rx.await else {
            return;
        };
        if resolved.dns_domains == configured.dns_domains && !configured.domains_pending {
            return;
        }
        tracing::info!(dns_domains = ?resolved.dns_domains, "the webhook now uses the DNS profile's subdomains");
        index.set_config(Arc::new(resolved));
        // Every claim recomputed with them, by the watches, from what they hold.
        view.reindex();
    });
    let mut controller = controller;
    let mut controller_done = None;
    let failed = tokio::select! {
        () = shutdown_signal() => None,
        () = webhook.running.ended() => Some("the admission listener stopped (see the error above)"),
        r = &mut controller => {
            controller_done = Some(r);
            Some("the reconciler stopped (see the error above); exiting so the pod is restarted")
        }
    };
    let _ = stop_tx.send(());
    let done = match controller_done {
        Some(r) => r,
        None => controller.await,
    };
    match done {
        Ok(Err(e)) => tracing::error!(error = %e, "the reconciler stopped"),
        Err(e) => tracing::error!(error = %e, "the reconciler task failed"),
        Ok(Ok(())) => {}
    }
    follow.abort();
    if failed.is_none() {
        drain_delay(args.webhook.shutdown_delay_seconds).await;
    }
    webhook.stop().await;
    if let Some(why) = failed {
        anyhow::bail!(why);
    }
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    runtime_with(0)
}

/// A multi-threaded runtime with this many workers (0: one per CPU core).
fn runtime_with(workers: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if workers > 0 {
        builder.worker_threads(workers);
    }
    builder
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn run_check(args: CheckArgs) -> anyhow::Result<()> {
    let cfg = args.config.resolve()?;
    if cfg.dns_domains.is_empty() {
        anyhow::bail!(
            "no delegated DNS subdomain: pass --dns-domain (repeatable) or set dnsDomains in --config"
        );
    }
    let manifests = ako::tools::check::load(&args.files, &args.namespace)?;
    let findings = ako::tools::check::check(&manifests, &cfg);
    let (text, denied) = ako::tools::check::report(&findings);
    print!("{text}");
    if denied {
        std::process::exit(1);
    }
    Ok(())
}

fn run_certs(args: CertsArgs) -> anyhow::Result<()> {
    let mut names = ako::certs::service_dns_names(&args.service, &args.namespace);
    names.extend(args.dns_names.iter().cloned());
    names.push("localhost".into());
    let (files, ca_pem) = ako::certs::write_dev_certs(&args.out_dir, &names, &args.ips, args.days)?;
    let bundle = ako::certs::ca_bundle(&ca_pem);
    if args.render.is_empty() {
        eprintln!(
            "wrote {} and {} (CA {}); caBundle:",
            files.cert.display(),
            files.key.display(),
            files.ca_cert.display()
        );
        println!("{bundle}");
        return Ok(());
    }
    for path in &args.render {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        print!(
            "{}",
            ako::certs::render_webhook_config(&text, &bundle, args.webhook_url.as_deref())?
        );
    }
    Ok(())
}

/// Keeps answering admission requests for `seconds` after SIGTERM.
async fn drain_delay(seconds: u64) {
    if seconds > 0 {
        tracing::info!(
            seconds,
            "terminating: still answering admission requests before shutting down"
        );
        tokio::time::sleep(Duration::from_secs(seconds)).await;
    }
}

/// The webhook, serving.
struct Webhook {
    running: ako::webhook::Running,
    watches: Vec<tokio::task::JoinHandle<()>>,
    /// `webhook.certificates: self`: renews the certificate and keeps the caBundles current.
    cert_keeper: Option<tokio::task::JoinHandle<()>>,
    index: Arc<ako::core::index::Index>,
    /// What the watches hold; in `ako run`, the reconciler's view too.
    view: Arc<ako::k8s::observe::View>,
    client: kube::Client,
    /// The changes the watches report, for the reconciler of `ako run` (`None` for `ako webhook`).
    changes: Option<ako::k8s::changes::ChangeReceiver>,
}

impl Webhook {
    async fn stop(self) {
        tracing::info!("shutting down");
        self.running.shutdown(Duration::from_secs(5));
        for w in self.watches {
            w.abort();
        }
        if let Some(k) = self.cert_keeper {
            k.abort();
        }
        self.running.wait(Duration::from_secs(6)).await;
    }
}

async fn start_webhook(
    args: &WebhookArgs,
    cfg: ako::core::config::Config,
) -> anyhow::Result<Webhook> {
    start_webhook_with(args, cfg, None, None).await
}

/// The webhook, with the reconciler's health and metrics on its health port when `controller` is given.
async fn start_webhook_with(
    args: &WebhookArgs,
    cfg: ako::core::config::Config,
    controller: Option<Arc<ako::reconcile::health::ControllerHealth>>,
    names: Option<Arc<ako::webhook::names::Names>>,
) -> anyhow::Result<Webhook> {
    if cfg.dns_domains.is_empty() && !cfg.domains_pending {
        tracing::warn!(
            "no delegated DNS subdomain configured: hosts are served but get no DNS record, and rules without a host are denied; pass --dns-domain"
        );
    }
    let cfg = Arc::new(cfg);
    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API (KUBECONFIG or in-cluster)")?;
    let cert_keeper = match ako::k8s::webhook_certs::Keeper::new(
        client.clone(),
        &args.self_certs,
        &args.tls_cert,
        &args.tls_key,
    ) {
        Some(keeper) => {
            keeper
                .first_sync()
                .await
                .context("preparing the webhook certificate (webhook.certificates=self)")?;
            Some(keeper.spawn(Duration::from_secs(args.self_certs.check_seconds.max(1))))
        }
        None => None,
    };
    let resolver = Arc::new(
        ako::certs::ReloadingResolver::load(&args.tls_cert, &args.tls_key)
            .context("loading the serving certificate")?,
    );
    let _reloader = resolver.spawn_reloader(Duration::from_secs(args.cert_reload_seconds.max(1)));
    let tls = Arc::new(ako::certs::server_config(resolver)?);

    let index = Arc::new(ako::core::index::Index::new(cfg.clone()));
    let view = Arc::new(ako::k8s::observe::View::with_index(index.clone()));
    // `ako run`: every kind, with the reconciler's changes; `ako webhook`: what admission decides on.
    let (watches, changes) = if controller.is_some() {
        let (tx, rx) = ako::k8s::changes::channel();
        ako::k8s::crds::ensure(&client).await;
        let source = ako::k8s::observe::endpoint_source(&client).await;
        tracing::info!(?source, "endpoints read from");
        let kinds = ako::k8s::observe::Kinds::All(source);
        (
            ako::k8s::observe::spawn(client.clone(), view.clone(), kinds, Some(tx)),
            Some(rx),
        )
    } else {
        let kinds = ako::k8s::observe::Kinds::Admission;
        (
            ako::k8s::observe::spawn(client.clone(), view.clone(), kinds, None),
            None,
        )
    };

    let limits = ako::webhook::Limits {
        deadline: Duration::from_millis(args.webhook_deadline_ms),
        max_in_flight: usize::try_from(args.webhook_max_in_flight).unwrap_or(usize::MAX),
        max_large_in_flight: usize::try_from(args.webhook_max_large_in_flight)
            .unwrap_or(usize::MAX),
        max_connections: usize::try_from(args.webhook_max_connections).unwrap_or(usize::MAX),
        header_timeout: Duration::from_millis(args.webhook_header_timeout_ms),
    };
    let state = ako::webhook::AppState::new(
        index.clone(),
        Arc::new(ako::webhook::metrics::Metrics::new()),
    )
    .with_limits(limits)
    .with_claims(args.expose_claims);
    let state = match controller {
        Some(c) => state.with_controller(c),
        None => state,
    };
    let state = match names {
        Some(n) => state.with_names(n),
        None => state,
    };
    let https = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("binding {}", args.listen))?;
    let health = tokio::net::TcpListener::bind(args.health_listen)
        .await
        .with_context(|| format!("binding {}", args.health_listen))?;
    let workers = match args.webhook_threads {
        0 => ako::webhook::Workers::Shared,
        n => ako::webhook::Workers::Dedicated(n),
    };
    let running = ako::webhook::serve(state, https, health, tls, workers).await?;
    tracing::info!(
        https = %running.https,
        health = %running.health,
        domains = ?cfg.dns_domains,
        fqdn_reuse_policy = ?cfg.fqdn_reuse_policy,
        "ako webhook serving"
    );
    Ok(Webhook {
        running,
        watches,
        cert_keeper,
        index,
        view,
        client,
        changes,
    })
}

async fn run_webhook(args: WebhookArgs, cfg: ako::core::config::Config) -> anyhow::Result<()> {
    let webhook = start_webhook(&args, cfg).await?;
    let listener_failed = tokio::select! {
        () = shutdown_signal() => false,
        () = webhook.running.ended() => true,
    };
    if !listener_failed {
        drain_delay(args.shutdown_delay_seconds).await;
    }
    webhook.stop().await;
    if listener_failed {
        anyhow::bail!("the admission listener stopped (see the error above)");
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
