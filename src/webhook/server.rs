//! The listeners: the admission listener on threads of its own or the caller's runtime, with its connection cap
//! and handshake deadline, and the health listener.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Where the admission listener runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    /// On the caller's runtime, next to everything else (tests and embedding).
    Shared,
    /// On `n` threads of its own, each a single-threaded runtime accepting from the same socket. A review costs
    /// microseconds of CPU, so one thread serves tens of thousands a second; a thread of its own keeps admission
    /// latency independent of watch and reconcile work, and saves the cross-thread wake-ups of a work-stealing
    /// runtime on every request (BENCHMARKS.md).
    Dedicated(usize),
}

/// A running webhook: the bound addresses and a handle to stop it.
#[derive(Debug)]
pub struct Running {
    pub https: SocketAddr,
    pub health: SocketAddr,
    handles: Vec<axum_server::Handle<SocketAddr>>,
    health_task: tokio::task::JoinHandle<()>,
    shared_task: Option<tokio::task::JoinHandle<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Notified when an admission listener ends, for whatever reason.
    ended: Arc<tokio::sync::Notify>,
}

impl Running {
    /// Stops both listeners, letting in-flight admission requests finish for up to `grace`.
    pub fn shutdown(&self, grace: Duration) {
        for h in &self.handles {
            h.graceful_shutdown(Some(grace));
        }
        self.health_task.abort();
    }

    /// Completes when an admission listener has ended: it could not start serving, or its thread died. Unless
    /// [`Running::shutdown`] asked for it, the process should then exit, so that Kubernetes restarts it rather
    /// than route reviews to a dead port. (Accept errors such as running out of file descriptors are retried by
    /// the server and do not end it.)
    pub async fn ended(&self) {
        self.ended.notified().await;
    }

    /// After [`Running::shutdown`], waits up to `limit` for the admission listeners to finish their in-flight
    /// requests and end.
    pub async fn wait(self, limit: Duration) {
        let (shared, threads) = (self.shared_task, self.threads);
        let all = async move {
            if let Some(task) = shared {
                let _ = task.await;
            }
            let _ = tokio::task::spawn_blocking(move || {
                for t in threads {
                    let _ = t.join();
                }
            })
            .await;
        };
        if tokio::time::timeout(limit, all).await.is_err() {
            tracing::warn!(
                limit_ms = limit.as_millis() as u64,
                "admission listeners did not end in time"
            );
        }
    }
}

/// The HTTPS server of one admission listener: `TCP_NODELAY` on every connection (without it, an answer written
/// in two segments waits for the client's delayed ACK, up to 40 ms, about once in a thousand reviews) and reads
/// of at most [`READ_BUFFER`].
fn admission_server(
    listener: std::net::TcpListener,
    tls: axum_server::tls_rustls::RustlsConfig,
    connections: Arc<tokio::sync::Semaphore>,
    limits: Limits,
) -> std::io::Result<
    axum_server::Server<SocketAddr, axum_server::tls_rustls::RustlsAcceptor<CappedAcceptor>>,
> {
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(tls)
        .handshake_timeout(limits.header_timeout)
        .acceptor(CappedAcceptor { connections });
    let mut server = axum_server::from_tcp(listener)?.acceptor(acceptor);
    server
        .http_builder()
        .http1()
        .max_buf_size(READ_BUFFER)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    Ok(server)
}

/// Accepts a connection only while fewer than [`Limits::max_connections`] are open (closing it at once
/// otherwise), with `TCP_NODELAY` set.
#[derive(Debug, Clone)]
struct CappedAcceptor {
    connections: Arc<tokio::sync::Semaphore>,
}

impl<S> axum_server::accept::Accept<tokio::net::TcpStream, S> for CappedAcceptor {
    type Stream = Capped;
    type Service = S;
    type Future = std::future::Ready<std::io::Result<(Capped, S)>>;

    fn accept(&self, stream: tokio::net::TcpStream, service: S) -> Self::Future {
        let result = match self.connections.clone().try_acquire_owned() {
            Ok(permit) => stream.set_nodelay(true).map(|()| {
                (
                    Capped {
                        stream,
                        _permit: permit,
                    },
                    service,
                )
            }),
            Err(_) => {
                tracing::warn!(
                    "admission connection refused: too many open (AKO_WEBHOOK_MAX_CONNECTIONS)"
                );
                Err(std::io::Error::other("too many admission connections"))
            }
        };
        std::future::ready(result)
    }
}

/// An admission connection, holding its place among [`Limits::max_connections`] until it closes.
#[derive(Debug)]
struct Capped {
    stream: tokio::net::TcpStream,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl tokio::io::AsyncRead for Capped {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Capped {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Serves the admission router over TLS and the health router over plain HTTP. The health listener always runs
/// on the caller's runtime; the admission listener where `workers` says.
pub async fn serve(
    state: AppState,
    https: std::net::TcpListener,
    health: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    workers: Workers,
) -> std::io::Result<Running> {
    https.set_nonblocking(true)?;
    let https_addr = https.local_addr()?;
    let health_addr = health.local_addr()?;
    let rustls_config = axum_server::tls_rustls::RustlsConfig::from_config(tls);
    let limits = state.limits();
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let app = admission_router(state.clone());
    let mut handles = Vec::new();
    let mut threads = Vec::new();
    let mut shared_task = None;
    let ended = Arc::new(tokio::sync::Notify::new());
    match workers {
        Workers::Shared => {
            let handle = axum_server::Handle::new();
            let server = admission_server(https, rustls_config, connections.clone(), limits)?
                .handle(handle.clone());
            handles.push(handle);
            let ended = NotifyOnDrop(ended.clone());
            shared_task = Some(tokio::spawn(async move {
                let _ended = ended;
                if let Err(e) = server.serve(app.into_make_service()).await {
                    tracing::error!(error = %e, "webhook HTTPS server stopped");
                }
            }));
        }
        Workers::Dedicated(n) => {
            for i in 0..n.max(1) {
                let listener = https.try_clone()?;
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let handle = axum_server::Handle::new();
                handles.push(handle.clone());
                let (app, rustls_config, connections) =
                    (app.clone(), rustls_config.clone(), connections.clone());
                let ended = NotifyOnDrop(ended.clone());
                let thread = std::thread::Builder::new()
                    .name(format!("webhook-{i}"))
                    .spawn(move || {
                        let _ended = ended;
                        rt.block_on(async move {
                            let served = match admission_server(
                                listener,
                                rustls_config,
                                connections,
                                limits,
                            ) {
                                Ok(server) => server.handle(handle).serve(app.into_make_service()).await,
                                Err(e) => Err(e),
                            };
                            if let Err(e) = served {
                                tracing::error!(error = %e, worker = i, "webhook HTTPS server stopped");
                            }
                        })
                    })?;
                threads.push(thread);
            }
        }
    }
    let health_app = health_router(state);
    let health_task = tokio::spawn(async move {
        if let Err(e) = axum::serve(health, health_app).await {
            tracing::error!(error = %e, "health server stopped");
        }
    });
    Ok(Running {
        https: https_addr,
        health: health_addr,
        handles,
        health_task,
        shared_task,
        threads,
        ended,
    })
}

/// Reports the end of a listener when dropped, so that a listener whose thread panics is reported too.
struct NotifyOnDrop(Arc<tokio::sync::Notify>);

impl Drop for NotifyOnDrop {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}
