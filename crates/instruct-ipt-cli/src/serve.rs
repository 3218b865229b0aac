//! `instruct-ipt serve`: the web demo and HTTP API (`ipt-serve`) on this computer.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use instruct_ipt::backend::{DeviceChoice, select_device};
use instruct_ipt::{BUNDLED_WEIGHTS, Restorer};
use ipt_serve::{Limits, Models};

use crate::RecogniserArgs;
use crate::instruction::EncoderArgs;

/// Arguments of `instruct-ipt serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on; the default answers this computer only. Port 0 picks a free port
    /// (the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Weight file (.safetensors); the bundled default weights when omitted.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Where to run: cpu, libtorch, cuda or wgpu (all but cpu need a build with their feature).
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    #[command(flatten)]
    recogniser: RecogniserArgs,
    #[command(flatten)]
    encoder: EncoderArgs,
    /// Tile side in pixels for large images; 0 restores the whole image at once.
    #[arg(long, default_value_t = instruct_ipt::DEFAULT_TILE)]
    tile: usize,
    /// Largest upload in megabytes (MiB).
    #[arg(long, default_value_t = 32)]
    max_upload_mb: usize,
    /// Largest image in megapixels, checked from its header before decoding.
    #[arg(long, default_value_t = 16.0)]
    max_megapixels: f64,
    /// Restorations run at once.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Restorations waiting for a worker; more requests are answered 503 with Retry-After.
    #[arg(long, default_value_t = 4)]
    queue: usize,
    /// Seconds a restoration may take once its upload is read, waiting included.
    #[arg(long, default_value_t = 120)]
    timeout_s: u64,
    /// Seconds reading an upload may take.
    #[arg(long, default_value_t = 60)]
    upload_timeout_s: u64,
    /// Seconds a connection may take to send a request's headers (and stay open idle).
    #[arg(long, default_value_t = 30)]
    header_timeout_s: u64,
    /// Connections served at once; further ones wait to be accepted.
    #[arg(long, default_value_t = 64)]
    max_connections: usize,
}

/// Loads the models and serves until Ctrl-C.
pub fn run(args: ServeArgs) -> Result<()> {
    let device = select_device(args.device)?;
    let restorer = Restorer::load_or_bundled(args.weights.as_deref(), &device)?.with_tile((args.tile > 0).then_some(args.tile));
    let weights = args.weights.as_ref().map_or(BUNDLED_WEIGHTS.to_string(), |path| path.display().to_string());
    let models = Models { restorer, router: args.encoder.router()?, recogniser: args.recogniser.load()?, weights };
    let limits = Limits {
        max_upload_bytes: args.max_upload_mb << 20,
        max_megapixels: args.max_megapixels,
        workers: args.workers.max(1),
        queue: args.queue,
        timeout: Duration::from_secs(args.timeout_s),
        upload_timeout: Duration::from_secs(args.upload_timeout_s),
        header_timeout: Duration::from_secs(args.header_timeout_s),
        connections: args.max_connections.max(1),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    let stopped_at_once = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr).await.with_context(|| format!("cannot listen on {}", args.addr))?;
        let address = listener.local_addr()?;
        if !address.ip().is_loopback() {
            eprintln!("warning: listening on {address}: other computers on the network can use this server");
        }
        println!("serving on http://{address} (Ctrl-C stops)");
        let stopping = Arc::new(tokio::sync::Notify::new());
        let shutdown = {
            let stopping = stopping.clone();
            async move {
                ctrl_c().await;
                eprintln!("stopping: finishing the requests in flight (Ctrl-C again stops at once)");
                stopping.notify_one();
            }
        };
        let again = async {
            stopping.notified().await;
            ctrl_c().await;
        };
        tokio::select! {
            () = ipt_serve::serve(listener, Arc::new(models), limits, shutdown) => anyhow::Ok(false),
            () = again => anyhow::Ok(true),
        }
    })?;
    if stopped_at_once {
        // Restorations still running on blocking threads are abandoned, not awaited.
        runtime.shutdown_background();
        eprintln!("stopped without finishing the requests in flight");
    }
    Ok(())
}

/// Waits for Ctrl-C; without a Ctrl-C handler, forever (the server then runs until killed).
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
