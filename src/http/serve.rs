//! Accepting connections: hyper's HTTP/1 connection with a timer, so a client that sends
//! its headers slowly (or holds an idle connection open) is cut off after
//! `--header-timeout-secs`, and a graceful shutdown that waits for requests in flight, at
//! most `--shutdown-grace-secs`. `axum::serve` takes neither setting.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower_http::add_extension::AddExtension;

/// How a listener treats its connections.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Time to send a request's headers; an idle keep-alive connection gets as long to
    /// start its next request.
    pub header_timeout: Duration,
    /// Time requests in flight get to finish once shutdown begins.
    pub shutdown_grace: Duration,
}

/// Serves `router` on `listener` until `shutdown` resolves; then accepts nothing more and
/// waits for the requests in flight (each connection closes after its current response),
/// at most `limits.shutdown_grace`.
pub async fn serve_router(
    router: Router,
    listener: TcpListener,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(AddExtension::new(
            router.clone(),
            ConnectInfo::<SocketAddr>(remote),
        ));
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!(
                grace_secs = limits.shutdown_grace.as_secs(),
                "requests still running at the end of the shutdown grace are cut off"
            );
        }
    }
    Ok(())
}
