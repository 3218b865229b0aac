//! The local web demo and HTTP API of Instruct-IPT (`instruct-ipt serve`).
//!
//! One page (HTML, CSS and JavaScript compiled into the binary: no build step, no CDN) and a
//! JSON API over the inference library:
//! - `POST /api/restore`: a multipart form with the `image` and an `instruction` or a `task`
//!   (neither, or task `auto`: blind restoration; `strict=true` refuses a request the photo
//!   contradicts). Answers the restored PNG with the decision in the `x-instruct-ipt-decision`,
//!   `-tasks` and `-warning` headers, or JSON `{"unchanged": true, "reason"}` when there is
//!   nothing to do.
//! - `POST /api/parse`: JSON `{"instruction"}`; the probability of each intent and the decision.
//! - `GET /api/info`: the model, its tasks, the version, the limits and the load (requests
//!   admitted, restorations running). `GET /healthz`: `ok`.
//!
//! Every error is JSON `{"error", "code"}` with a fitting status, and the server keeps serving
//! after it. Restorations run on blocking threads, at most [`Limits::workers`] at once with at
//! most [`Limits::queue`] more waiting; beyond that a request is answered 503 with
//! `Retry-After` before its upload is kept, and each has [`Limits::timeout`]. The upload is read
//! within [`Limits::upload_timeout`], the headers within [`Limits::header_timeout`], and at most
//! [`Limits::connections`] are served at once, so memory stays bounded (uploads held: workers
//! plus queue) and a client that sends slowly or not at all cannot hold the server.

mod api;
mod error;
mod listen;
mod page;
mod png;
mod queue;
mod request;

use std::sync::Arc;
use std::time::Duration;

use instruct_ipt::{Recogniser, Restorer, Router};

pub use api::app;
pub use error::ApiError;

/// The models a server answers with.
pub struct Models {
    /// Restores the photos.
    pub restorer: Restorer,
    /// Reads instructions.
    pub router: Router,
    /// Looks at photos: blind restoration and the check of a request against the photo.
    pub recogniser: Recogniser,
    /// How `/api/info` names the weights (their file, or the bundled ones).
    pub weights: String,
}

/// What the server accepts and how much work it takes on.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Largest request body (the upload and its form), in bytes.
    pub max_upload_bytes: usize,
    /// Largest image, in megapixels, checked from its header before decoding.
    pub max_megapixels: f64,
    /// Restorations run at once.
    pub workers: usize,
    /// Restorations waiting for a worker before requests are turned away.
    pub queue: usize,
    /// How long a restoration may take once its upload is read, waiting for a worker included.
    pub timeout: Duration,
    /// How long reading a restore request's upload may take.
    pub upload_timeout: Duration,
    /// How long a connection may take to send a request's headers, and how long an idle
    /// connection is kept open.
    pub header_timeout: Duration,
    /// Connections served at once; further ones wait to be accepted.
    pub connections: usize,
}

impl Default for Limits {
    /// 32 MiB uploads, 16 MP images, one worker, four waiting, two minutes per restoration, one
    /// minute per upload, 30 s for headers, 64 connections.
    fn default() -> Self {
        Self {
            max_upload_bytes: 32 << 20,
            max_megapixels: 16.0,
            workers: 1,
            queue: 4,
            timeout: Duration::from_secs(120),
            upload_timeout: Duration::from_secs(60),
            header_timeout: Duration::from_secs(30),
            connections: 64,
        }
    }
}

/// Serves `models` on `listener` until `shutdown` completes, then lets the requests in flight
/// finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    models: Arc<Models>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (connections, header_timeout) = (limits.connections, limits.header_timeout);
    listen::accept(listener, app(models, limits), connections, header_timeout, shutdown).await;
}
