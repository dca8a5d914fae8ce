//! The listeners: L4 TCP proxy and UDP forwarding, and the L7 HTTP/1.1 reverse proxy (hyper) with TLS
//! termination by SNI (rustls). Each connection reads the current model, so configuration changes apply to
//! new connections and requests without rebinding.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use super::Plane;
use super::model::{BackendTls, ListenerSpec, Model, Proto, VsModel};
use super::policy::{self, Action, RequestView, Target};
use super::pool::Lease;

/// Largest request body buffered (bodies are buffered so a request can move to another server when a
/// connection fails).
const MAX_BODY: usize = 64 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const UDP_IDLE: Duration = Duration::from_secs(30);
/// Buffer of each direction of an L4 TCP connection.
const COPY_BUF: usize = 256 << 10;

pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

fn full(status: StatusCode, body: impl Into<Bytes>) -> Response<ProxyBody> {
    let mut r = Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Serves one bound listener until the task is aborted.
pub async fn serve_tcp(plane: Arc<Plane>, spec: ListenerSpec, listener: TcpListener) {
    let tls = if spec.tls {
        let resolver = Arc::new(SniResolver {
            plane: Arc::clone(&plane),
            vs: spec.vs.clone(),
        });
        match ako_certs::server_config(resolver) {
            Ok(c) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(c))),
            Err(e) => {
                tracing::warn!(addr = %spec.addr, error = %e, "TLS listener not started");
                return;
            }
        }
    } else {
        None
    };
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let plane = Arc::clone(&plane);
        let spec = spec.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            plane
                .analytics
                .of(&spec.vs)
                .connections
                .fetch_add(1, Ordering::Relaxed);
            if !spec.http {
                l4_tcp(plane, spec, stream).await;
                return;
            }
            match tls {
                None => serve_http(plane, spec, stream, peer, None).await,
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(tls_stream) => {
                        let sni = tls_stream.get_ref().1.server_name().map(str::to_string);
                        let effective = {
                            let model = plane.model.load();
                            sni.as_deref()
                                .and_then(|s| model.child_for(&spec.vs, s))
                                .map_or_else(|| spec.vs.clone(), |c| c.uuid.clone())
                        };
                        serve_http(plane, spec, tls_stream, peer, Some(effective)).await;
                    }
                    Err(e) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                },
            }
        });
    }
}

/// Picks the certificate: the SNI child's, else the virtual service's own.
#[derive(Debug)]
struct SniResolver {
    plane: Arc<Plane>,
    vs: String,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let model = self.plane.model.load();
        let child = hello
            .server_name()
            .and_then(|sni| model.child_for(&self.vs, sni))
            .and_then(|c| c.cert.as_ref());
        let own = model.vs.get(&self.vs).and_then(|v| v.cert.as_ref());
        child.or(own).and_then(|u| model.certs.get(u)).cloned()
    }
}

async fn serve_http<S>(
    plane: Arc<Plane>,
    spec: ListenerSpec,
    stream: S,
    peer: SocketAddr,
    tls_vs: Option<String>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let https = tls_vs.is_some();
    let vs = tls_vs.unwrap_or_else(|| spec.vs.clone());
    let port = spec.addr.port();
    // Server connections of this client connection, reused from one request to the next.
    let upstreams: Upstreams = Arc::default();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let plane = Arc::clone(&plane);
        let vs = vs.clone();
        let upstreams = Arc::clone(&upstreams);
        async move {
            let ctx = Inbound {
                port,
                https,
                peer,
                upstreams: &upstreams,
            };
            Ok::<_, std::convert::Infallible>(handle(plane, &vs, &ctx, req).await)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    if let Err(e) = conn.await {
        tracing::debug!(%peer, error = %e, "HTTP connection ended");
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;
/// Idle server connections of a client connection, by server and whether they are TLS (re-encryption).
type Upstreams = Arc<parking_lot::Mutex<HashMap<(SocketAddr, bool), Sender>>>;

/// What a request arrived on.
struct Inbound<'a> {
    port: u16,
    https: bool,
    peer: SocketAddr,
    upstreams: &'a Upstreams,
}

/// Opens an HTTP/1.1 connection to a server, over TLS when the pool re-encrypts (`tls`, with the request's host
/// for SNI); its task ends with the connection.
async fn connect(addr: SocketAddr, tls: Option<(&BackendTls, &str)>) -> std::io::Result<Sender> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    let _ = stream.set_nodelay(true);
    let Some((tls, host)) = tls else {
        return handshake(addr, stream).await;
    };
    // SNI: the request's host when the pool sends it and it is a name; else the server's address.
    let name = if tls.sni {
        rustls::pki_types::ServerName::try_from(host.to_string()).ok()
    } else {
        None
    }
    .unwrap_or_else(|| rustls::pki_types::ServerName::IpAddress(addr.ip().into()));
    let stream = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_rustls::TlsConnector::from(Arc::clone(&tls.client)).connect(name, stream),
    )
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
    handshake(addr, stream).await
}

async fn handshake<S>(addr: SocketAddr, stream: S) -> std::io::Result<Sender>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(server = %addr, error = %e, "server connection ended");
        }
    });
    Ok(sender)
}

/// The client connection's idle connection to `addr` (plain or TLS), or a new one.
async fn sender_for(
    upstreams: &Upstreams,
    addr: SocketAddr,
    tls: Option<(&BackendTls, &str)>,
) -> std::io::Result<Sender> {
    let cached = upstreams.lock().remove(&(addr, tls.is_some()));
    if let Some(mut s) = cached
        && s.ready().await.is_ok()
    {
        return Ok(s);
    }
    connect(addr, tls).await
}

fn host_of(req: &Request<Incoming>) -> Option<String> {
    host_in(req.headers(), req.uri())
}

fn host_of_parts(parts: &http::request::Parts) -> Option<String> {
    host_in(&parts.headers, &parts.uri)
}

/// The request's host: the Host header (or the URI's authority), without the port.
fn host_in(headers: &http::HeaderMap, uri: &http::Uri) -> Option<String> {
    let raw = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| uri.authority().map(|a| a.to_string()))?;
    // Strip the port (an IPv6 literal keeps its brackets).
    let host = match raw.rfind(':') {
        Some(i) if !raw[i..].contains(']') => raw[..i].to_string(),
        _ => raw,
    };
    Some(host)
}

fn redirect(r: &policy::Redirect, host: &str, req: &Request<Incoming>) -> Response<ProxyBody> {
    let scheme = if r.https { "https" } else { "http" };
    let host = r.host.clone().unwrap_or_else(|| host.to_string());
    let default = if r.https { 443 } else { 80 };
    let port = r
        .port
        .filter(|p| *p != default)
        .map_or_else(String::new, |p| format!(":{p}"));
    let path = r.path.as_ref().map_or_else(
        || req.uri().path().to_string(),
        |p| format!("/{}", p.trim_start_matches('/')),
    );
    let query = match (r.keep_query, req.uri().query()) {
        (true, Some(q)) => format!("?{q}"),
        _ => String::new(),
    };
    let location = format!("{scheme}://{host}{port}{path}{query}");
    let mut resp = full(
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::FOUND),
        Bytes::new(),
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

async fn handle(
    plane: Arc<Plane>,
    vs_uuid: &str,
    inbound: &Inbound<'_>,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let (port, https) = (inbound.port, inbound.https);
    let started = Instant::now();
    let model = plane.model.load_full();
    let stats = plane.analytics.of(vs_uuid);
    let Some(vs) = model.vs.get(vs_uuid) else {
        return full(StatusCode::SERVICE_UNAVAILABLE, "virtual service removed\n");
    };
    let host = host_of(&req);
    let decided = {
        let view = RequestView {
            host: host.as_deref(),
            path: req.uri().path(),
            port,
            https,
            method: req.method().as_str(),
        };
        policy::decide(&vs.rules, &view).map(|r| r.action.clone())
    };
    let resp = match decided {
        Some(Action::Redirect(r)) => redirect(&r, host.as_deref().unwrap_or_default(), &req),
        Some(Action::Local(code)) => full(
            StatusCode::from_u16(code).unwrap_or(StatusCode::OK),
            Bytes::new(),
        ),
        Some(Action::Switch(t)) => forward(&plane, &model, vs, &stats, &t, inbound, req).await,
        None => match &vs.default_target {
            Some(t) => forward(&plane, &model, vs, &stats, t, inbound, req).await,
            None => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                full(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "virtual service {}: no policy matched and no default pool\n",
                        vs.name
                    ),
                )
            }
        },
    };
    stats.record(resp.status().as_u16(), started.elapsed());
    let counter = Arc::clone(&stats);
    let (parts, body) = resp.into_parts();
    let body = body
        .map_frame(move |f| {
            if let Some(d) = f.data_ref() {
                counter
                    .bytes_out
                    .fetch_add(d.len() as u64, Ordering::Relaxed);
            }
            f
        })
        .boxed();
    Response::from_parts(parts, body)
}

async fn forward(
    plane: &Plane,
    model: &Model,
    vs: &VsModel,
    stats: &super::analytics::VsStats,
    target: &Target,
    inbound: &Inbound<'_>,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let (peer, https) = (inbound.peer, inbound.https);
    let (parts, body) = req.into_parts();
    let body = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return full(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n"),
    };
    stats
        .bytes_in
        .fetch_add(body.len() as u64, Ordering::Relaxed);
    let mut headers = parts.headers.clone();
    for h in HOP_BY_HOP {
        headers.remove(*h);
    }
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {}", peer.ip()),
        None => peer.ip().to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert(HeaderName::from_static("x-forwarded-for"), v);
    }
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static(if https { "https" } else { "http" }),
    );
    let uri: http::Uri = parts.uri.path_and_query().map_or_else(
        || http::Uri::from_static("/"),
        |pq| http::Uri::from(pq.clone()),
    );
    let mut tried: Vec<SocketAddr> = Vec::new();
    let affinity = super::pool::Affinity {
        peer: Some(peer),
        uri: parts.uri.path(),
        headers: Some(&parts.headers),
    };
    loop {
        let Some(super::pool::Picked {
            pool,
            lease,
            set_cookie,
            tls,
        }) = plane.servers.pick(model, target, &tried, &affinity)
        else {
            stats.errors.fetch_add(1, Ordering::Relaxed);
            return full(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("virtual service {}: no pool server is up\n", vs.name),
            );
        };
        let addr = lease.0.addr;
        tried.push(addr);
        let build = || {
            let mut out = Request::new(Full::new(body.clone()));
            *out.method_mut() = parts.method.clone();
            *out.headers_mut() = headers.clone();
            *out.uri_mut() = uri.clone();
            out
        };
        let host = host_of_parts(&parts).unwrap_or_default();
        let tls = tls.as_ref().map(|t| (t, host.as_str()));
        let mut sender = match sender_for(inbound.upstreams, addr, tls).await {
            Ok(s) => s,
            Err(e) => {
                lease.0.mark_failed(format!(
                    "connection to {addr} failed: {e} (passive detection, pool {pool})"
                ));
                continue;
            }
        };
        let mut sent = sender.try_send_request(build()).await;
        if let Err(e) = &mut sent
            && e.take_message().is_some()
        {
            // The idle connection closed before the request went out: once more on a new one.
            match connect(addr, tls).await {
                Ok(s) => {
                    sender = s;
                    sent = sender.try_send_request(build()).await;
                }
                Err(e) => {
                    lease.0.mark_failed(format!(
                        "connection to {addr} failed: {e} (passive detection, pool {pool})"
                    ));
                    continue;
                }
            }
        }
        match sent {
            Ok(resp) => {
                inbound
                    .upstreams
                    .lock()
                    .insert((addr, tls.is_some()), sender);
                let (mut p, b) = resp.into_parts();
                if let Some(c) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
                    p.headers.append(http::header::SET_COOKIE, c);
                }
                return Response::from_parts(p, hold(b, lease));
            }
            Err(e) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                return full(
                    StatusCode::BAD_GATEWAY,
                    format!("server {addr} of pool {pool}: {}\n", e.error()),
                );
            }
        }
    }
}

/// Keeps the server's connection count (the lease) until the response body is dropped.
fn hold(body: Incoming, lease: Lease) -> ProxyBody {
    body.map_frame(move |f| {
        let _held = &lease;
        f
    })
    .boxed()
}

/// The pool an L4 connection goes to: the first L4 rule for the port and protocol, else the default pool.
fn l4_target(vs: &VsModel, port: u16, proto: Proto) -> Option<Target> {
    vs.l4_rules
        .iter()
        .find(|r| r.matches(port, proto))
        .map(|r| Target::Pool(r.pool.clone()))
        .or_else(|| vs.default_target.clone())
}

async fn l4_tcp(plane: Arc<Plane>, spec: ListenerSpec, client: TcpStream) {
    let model = plane.model.load_full();
    let stats = plane.analytics.of(&spec.vs);
    let Some(target) = model
        .vs
        .get(&spec.vs)
        .and_then(|vs| l4_target(vs, spec.addr.port(), Proto::Tcp))
    else {
        stats.errors.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let mut tried = Vec::new();
    let (lease, upstream) = loop {
        let affinity = super::pool::Affinity {
            peer: client.peer_addr().ok(),
            ..Default::default()
        };
        let Some(super::pool::Picked { pool, lease, .. }) =
            plane.servers.pick(&model, &target, &tried, &affinity)
        else {
            stats.errors.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let addr = lease.0.addr;
        tried.push(addr);
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => break (lease, s),
            Ok(Err(e)) => lease.0.mark_failed(format!(
                "connection to {addr} failed: {e} (passive detection, pool {pool})"
            )),
            Err(_) => lease.0.mark_failed(format!(
                "connection to {addr} timed out (passive detection, pool {pool})"
            )),
        }
    };
    let _ = upstream.set_nodelay(true);
    match relay(client, upstream).await {
        Ok((up, down)) => {
            stats.bytes_in.fetch_add(up, Ordering::Relaxed);
            stats.bytes_out.fetch_add(down, Ordering::Relaxed);
        }
        Err(e) => tracing::debug!(error = %e, "L4 connection ended"),
    }
    drop(lease);
}

/// Relays both directions of an L4 connection until both ends closed; returns the bytes moved each way.
/// splice(2) through a pipe per direction (no copy through user space; on loopback a single connection through
/// the VIP reached about 1.5x the throughput of a 256 KiB user-space copy, BENCHMARKS.md section 7); the copy
/// remains for when no pipe can be had.
async fn relay(mut client: TcpStream, mut upstream: TcpStream) -> std::io::Result<(u64, u64)> {
    match super::splice::Pipes::new() {
        Ok(pipes) => super::splice::relay(&client, &upstream, &pipes).await,
        Err(e) => {
            tracing::debug!(error = %e, "no pipe for splice(2); copying");
            tokio::io::copy_bidirectional_with_sizes(&mut client, &mut upstream, COPY_BUF, COPY_BUF)
                .await
        }
    }
}

/// Forwards UDP datagrams: one upstream socket per client address, closed after [`UDP_IDLE`].
pub async fn serve_udp(plane: Arc<Plane>, spec: ListenerSpec, socket: UdpSocket) {
    let socket = Arc::new(socket);
    let sessions: Arc<parking_lot::Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, client)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let stats = plane.analytics.of(&spec.vs);
        stats.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
        let existing = sessions.lock().get(&client).cloned();
        let upstream = match existing {
            Some(u) => u,
            None => {
                let model = plane.model.load_full();
                let Some(target) = model
                    .vs
                    .get(&spec.vs)
                    .and_then(|vs| l4_target(vs, spec.addr.port(), Proto::Udp))
                else {
                    continue;
                };
                let affinity = super::pool::Affinity {
                    peer: Some(client),
                    ..Default::default()
                };
                let Some(super::pool::Picked { lease, .. }) =
                    plane.servers.pick(&model, &target, &[], &affinity)
                else {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let server = lease.0.addr;
                let bind: SocketAddr = if server.is_ipv4() {
                    SocketAddr::from(([127, 0, 0, 1], 0))
                } else {
                    SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0))
                };
                let Ok(up) = UdpSocket::bind(bind).await else {
                    continue;
                };
                if up.connect(server).await.is_err() {
                    continue;
                }
                stats.connections.fetch_add(1, Ordering::Relaxed);
                let up = Arc::new(up);
                sessions.lock().insert(client, Arc::clone(&up));
                let (socket, sessions, up2) =
                    (Arc::clone(&socket), Arc::clone(&sessions), Arc::clone(&up));
                let stats = Arc::clone(&stats);
                tokio::spawn(async move {
                    let _lease = lease;
                    let mut rbuf = vec![0u8; 65_536];
                    while let Ok(Ok(n)) = tokio::time::timeout(UDP_IDLE, up2.recv(&mut rbuf)).await
                    {
                        stats.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
                        let _ = socket.send_to(&rbuf[..n], client).await;
                    }
                    sessions.lock().remove(&client);
                });
                up
            }
        };
        let _ = upstream.send(&buf[..n]).await;
    }
}
