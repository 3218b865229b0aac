//! What the server tests share: the bundled models and a server on an ephemeral localhost port.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use instruct_ipt::{BUNDLED_WEIGHTS, Device, Recogniser, Restorer, Router};
use ipt_serve::{Limits, Models};

/// The bundled sample photos.
pub fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/samples")
}

/// The bundled models, loaded once for every server of a test binary.
pub fn models() -> Arc<Models> {
    static MODELS: OnceLock<Arc<Models>> = OnceLock::new();
    MODELS
        .get_or_init(|| {
            let device = Device::flex();
            Arc::new(Models {
                restorer: Restorer::bundled(&device).unwrap(),
                router: Router::bundled(&device),
                recogniser: Recogniser::bundled(&device).unwrap(),
                weights: BUNDLED_WEIGHTS.into(),
            })
        })
        .clone()
}

/// Starts a server within `limits` on 127.0.0.1 and returns its base URL.
pub async fn start(limits: Limits) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(ipt_serve::serve(listener, models(), limits, std::future::pending()));
    format!("http://{address}")
}
