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
//! - `GET /api/info`: the model, its tasks, the version and the limits. `GET /healthz`: `ok`.
//!
//! Every error is JSON `{"error", "code"}` with a fitting status, and the server keeps serving
//! after it. Restorations run on blocking threads, at most [`Limits::workers`] at once with at
//! most [`Limits::queue`] more waiting; beyond that a request is answered 503 with
//! `Retry-After` at once, and each has [`Limits::timeout`].

mod api;
mod error;
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
    /// How long a restoration request may take, waiting included.
    pub timeout: Duration,
}

impl Default for Limits {
    /// 32 MiB uploads, 16 MP images, one worker, four waiting, two minutes per request.
    fn default() -> Self {
        Self { max_upload_bytes: 32 << 20, max_megapixels: 16.0, workers: 1, queue: 4, timeout: Duration::from_secs(120) }
    }
}

/// Serves `models` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    models: Arc<Models>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(models, limits)).with_graceful_shutdown(shutdown).await
}
