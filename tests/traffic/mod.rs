//! Shared pieces of the traffic tests: an emulator with the loopback lab, its DNS and its data plane; objects
//! written through the REST API in plan order; small HTTP backends on loopback; raw HTTP(S) clients that set
//! Host and SNI themselves.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ako::avi::{AviClient, ClientConfig, Credentials};
use ako::core::config::Config;
use ako::core::l4::{MemberMode, NodeInfo, Placement};
use ako::core::plan::{Desired, Kind};
use ako::emulator::dataplane::DataPlaneConfig;
use ako::emulator::{EmulatorConfig, EmulatorHandle, LOOPBACK_SEED};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::task::JoinSet;

/// The same as the avi_support tests' (a test may drive the lab's emulator with the reconciler's client).
pub const PASSWORD: &str = "emulator-test-pw";
/// The Node InternalIP of the NodePort lab: backends listen on it.
pub const NODE_IP: [u8; 4] = [127, 0, 0, 2];

pub struct Lab {
    pub emu: EmulatorHandle,
    pub client: AviClient,
    /// This lab's VIP subnet (`dpg-sedatapath-18`): one per lab, so labs running at once never share a VIP.
    pub vip_net: ipnet::IpNet,
}

/// A loopback /26 no other lab of this machine uses at the same time (by process and counter).
fn vip_subnet() -> [u8; 2] {
    static NEXT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pid = std::process::id();
    [
        100 + u8::try_from(pid % 150).unwrap_or(0),
        n.wrapping_mul(7)
            .wrapping_add(u8::try_from(pid / 150 % 256).unwrap_or(0)),
    ]
}

/// The emulator with the loopback lab (its VIP network moved to a subnet of its own), the Avi DNS on an
/// ephemeral port and the data plane (health checks every `health_ms`).
pub async fn start_lab(health_ms: u64) -> Lab {
    start_lab_with(health_ms, DataPlaneConfig::default().threads).await
}

/// [`start_lab`] with the data plane on `threads` threads.
pub async fn start_lab_with(health_ms: u64, threads: usize) -> Lab {
    start_lab_tuned(health_ms, |d| d.threads = threads).await
}

/// [`start_lab`] with the data plane's configuration adjusted by `tune`.
pub async fn start_lab_tuned(health_ms: u64, tune: impl FnOnce(&mut DataPlaneConfig)) -> Lab {
    ako::certs::install_crypto_provider();
    let [a, b] = vip_subnet();
    let seed = LOOPBACK_SEED.replace("127.10.18.", &format!("127.{a}.{b}."));
    let vip_net: ipnet::IpNet = format!("127.{a}.{b}.0/26").parse().expect("subnet");
    let emu = ako::emulator::spawn(EmulatorConfig {
        seed,
        admin_password: Some(PASSWORD.into()),
        dns_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        dataplane: Some({
            let mut d = DataPlaneConfig {
                health_interval: Some(Duration::from_millis(health_ms)),
                ..DataPlaneConfig::default()
            };
            tune(&mut d);
            d
        }),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts");
    let mut cfg = ClientConfig::new(emu.base_url(), Credentials::password("admin", PASSWORD));
    cfg.ca_pem = emu.ca_pem().map(str::to_string);
    cfg.controller_version = Some("22.1.5".into());
    let client = AviClient::new(cfg).expect("client");
    Lab {
        emu,
        client,
        vip_net,
    }
}

/// ako's configuration of the seed: clusterName veba-of, the lab's DNS domain.
pub fn config() -> Config {
    Config {
        cluster_name: "veba-of".into(),
        dns_domains: vec!["avi.jarvis.lab".into()],
        ..Config::default()
    }
}

/// ako's placement of the seed, NodePort mode, on the lab's VIP subnet.
pub fn placement(lab: &Lab) -> Placement {
    Placement {
        rhi: Default::default(),
        cluster_name: "veba-of".into(),
        tenant: "admin".into(),
        cloud: "Default-Cloud".into(),
        se_group: "vmug-se-group".into(),
        vrf: "global".into(),
        vip_network: Some(("dpg-sedatapath-18".into(), Some(lab.vip_net))),
        member_mode: MemberMode::NodePort { selector: None },
        license_tier: Default::default(),
        vip_family: Default::default(),
    }
}

/// The lab's one Node, on loopback.
pub fn nodes() -> Vec<NodeInfo> {
    vec![NodeInfo {
        name: "node-1".into(),
        internal_ip: Some(IpAddr::from(NODE_IP)),
        labels: Default::default(),
        ..Default::default()
    }]
}

/// Creates the objects in dependency order (ako's plan order), through the REST API.
pub async fn apply(client: &AviClient, objects: &[Desired]) {
    let mut sorted: Vec<&Desired> = objects.iter().collect();
    sorted.sort_by_key(|d| Kind::ALL.iter().position(|k| *k == d.kind));
    for d in sorted {
        let path = format!("/api/{}", d.kind.obj_type());
        let body = Value::Object(d.body.clone());
        client
            .send(reqwest::Method::POST, &path, Some(&body))
            .await
            .unwrap_or_else(|e| panic!("{:?} {} refused: {e}", d.kind, d.name));
    }
}

/// GET through the typed client's session.
pub async fn get_json(client: &AviClient, path: &str) -> Value {
    client
        .get_json(path)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Finds an object's uuid by name.
pub async fn uuid_of(client: &AviClient, obj_type: &str, name: &str) -> String {
    let v = get_json(client, &format!("/api/{obj_type}?name={name}")).await;
    v["results"][0]["uuid"]
        .as_str()
        .unwrap_or_else(|| panic!("{obj_type} {name} not found"))
        .to_string()
}

/// The VIP address of a VsVip.
pub async fn vip_of(client: &AviClient, vsvip: &str) -> IpAddr {
    let v = get_json(client, &format!("/api/vsvip?name={vsvip}")).await;
    v["results"][0]["vip"][0]["ip_address"]["addr"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("VsVip {vsvip} has no address"))
}

/// Polls `cond` every 50 ms until it holds; panics naming `what` after 30 s.
pub async fn wait_for<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("gave up waiting for {what}");
}

/// A connection a backend serves: plain TCP or TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// A small HTTP backend: answers `backend=<name> path=<path> xff=<X-Forwarded-For> xfp=<X-Forwarded-Proto>
/// method=<method> host=<Host>`.
/// Stopping it closes the listener and every connection.
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Backend {
    pub async fn start(name: &str, ip: [u8; 4]) -> Self {
        Self::start_on(name, SocketAddr::from((ip, 0))).await
    }

    pub async fn start_on(name: &str, addr: SocketAddr) -> Self {
        Self::start_with(name, addr, None).await
    }

    /// A backend serving HTTPS with `tls` (a pool re-encrypting reaches it); its answers add `sni=<name>`.
    pub async fn start_tls(name: &str, addr: SocketAddr, tls: Arc<rustls::ServerConfig>) -> Self {
        Self::start_with(name, addr, Some(tokio_rustls::TlsAcceptor::from(tls))).await
    }

    async fn start_with(
        name: &str,
        addr: SocketAddr,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("backend binds");
        let addr = listener.local_addr().expect("addr");
        let label = name.to_string();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let label = label.clone();
                let tls = tls.clone();
                conns.spawn(async move {
                    let (stream, sni): (Box<dyn Io>, Option<String>) = match tls {
                        None => (Box::new(stream), None),
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(s) => {
                                let sni = s.get_ref().1.server_name().map(str::to_string);
                                (Box::new(s), Some(sni.unwrap_or_else(|| "-".into())))
                            }
                            Err(_) => return,
                        },
                    };
                    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                        let label = label.clone();
                        let sni = sni.clone();
                        async move {
                            let h = |k: &str| {
                                req.headers()
                                    .get(k)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or("-")
                                    .to_string()
                            };
                            let mut body = format!(
                                "backend={label} path={} xff={} xfp={} method={} host={}",
                                req.uri().path(),
                                h("x-forwarded-for"),
                                h("x-forwarded-proto"),
                                req.method(),
                                h("host")
                            );
                            if let Some(sni) = &sni {
                                body.push_str(&format!(" sni={sni}"));
                            }
                            body.push('\n');
                            Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(body))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self {
            name: name.to_string(),
            addr,
            task,
        }
    }

    /// Stops serving: the listener and all connections close.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// A response: status, `Location` and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
    /// The `Set-Cookie` header, if any.
    pub set_cookie: Option<String>,
}

impl Answer {
    /// The backend that answered (from the body), if any.
    pub fn backend(&self) -> Option<&str> {
        self.body
            .strip_prefix("backend=")
            .and_then(|r| r.split_whitespace().next())
    }
}

async fn exchange<S>(stream: S, method: &str, host: &str, path: &str) -> std::io::Result<Answer>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    exchange_with(stream, method, host, path, &[]).await
}

/// One HTTP/1.1 GET with extra request headers (a cookie), on a new connection.
pub async fn http_get_with(
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Answer> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    exchange_with(stream, "GET", host, path, headers).await
}

async fn exchange_with<S>(
    stream: S,
    method: &str,
    host: &str,
    path: &str,
    extra: &[(&str, &str)],
) -> std::io::Result<Answer>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(Bytes::new()))
        .map_err(std::io::Error::other)?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(std::io::Error::other)?;
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let set_cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    Ok(Answer {
        status,
        location,
        body: String::from_utf8_lossy(&body).into_owned(),
        set_cookie,
    })
}

/// One HTTP/1.1 GET to `addr` with the given Host header, on a new connection.
pub async fn http_get(addr: SocketAddr, host: &str, path: &str) -> std::io::Result<Answer> {
    http_request(addr, "GET", host, path).await
}

/// One HTTP/1.1 request with the given method and Host header, on a new connection.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
) -> std::io::Result<Answer> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    exchange(stream, method, host, path).await
}

/// One HTTPS GET to `addr` with SNI and Host `host`, trusting `ca_pem`; also returns the server's leaf
/// certificate (DER).
pub async fn https_get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    ca_pem: &str,
) -> std::io::Result<(Answer, Vec<u8>)> {
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let c = c.map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        roots.add(c).map_err(std::io::Error::other)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(std::io::Error::other)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name =
        rustls::pki_types::ServerName::try_from(host.to_string()).map_err(std::io::Error::other)?;
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let tls = connector.connect(name, tcp).await?;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .unwrap_or_default();
    Ok((exchange(tls, "GET", host, path).await?, leaf))
}

/// The DER of the first certificate of a PEM.
pub fn der_of(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .and_then(Result::ok)
        .map(|c| c.as_ref().to_vec())
        .expect("a PEM certificate")
}
