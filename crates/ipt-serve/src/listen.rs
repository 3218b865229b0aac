//! The accept loop: a bounded number of connections, each given a deadline for its request
//! headers, and a graceful shutdown that lets the requests in flight finish. `axum::serve`
//! offers neither the bound nor the deadline (it sets no timer, so hyper's header timeout never
//! runs), so a client trickling its headers, or sending none, could hold a connection forever.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Serves `app` on `listener`, at most `connections` at once, until `shutdown` completes; then
/// waits for the connections to finish the requests they are serving.
pub async fn accept(listener: TcpListener, app: Router, connections: usize, header_timeout: Duration, shutdown: impl Future<Output = ()>) {
    let slots = Arc::new(Semaphore::new(connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the connection semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    wait_after(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone())));
        tokio::spawn(async move {
            // A connection ends in an error when its client goes away or is too slow: nothing
            // to do but free its slot.
            let _ = connection.await;
            drop(slot);
        });
    }
    graceful.shutdown().await;
}

/// After a failed accept: nothing for a connection the client dropped, a second for anything
/// else (out of file descriptors, say), so the loop does not spin while it lasts.
async fn wait_after(error: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if !matches!(error.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
