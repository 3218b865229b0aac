//! `cargo xtask bench-serve`: requests per second and latency of `instruct-ipt serve`'s
//! `/api/restore` on localhost, at several photo sizes and numbers of concurrent clients.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use instruct_ipt::image::{DynamicImage, ImageFormat, imageops::FilterType};
use instruct_ipt::{BUNDLED_WEIGHTS, Device, Recogniser, Restorer, Router};
use ipt_serve::{Limits, Models};

use crate::parity::workspace_root;
use crate::timing::median;

/// Options of `cargo xtask bench-serve`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Square photo sides in pixels.
    #[arg(long, value_delimiter = ',', default_value = "256,512")]
    sizes: Vec<u32>,
    /// Numbers of concurrent clients.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,4")]
    clients: Vec<usize>,
    /// Requests each client sends, one after the other (after one warm-up request per size).
    #[arg(long, default_value_t = 4)]
    requests: usize,
    /// Restorations the server runs at once.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Where the Markdown table is written.
    #[arg(long, default_value = "reports/serve/bench.md")]
    out: PathBuf,
}

/// Starts the server with the bundled models on a free localhost port, measures, writes the table.
pub fn run(args: Args) -> Result<()> {
    if args.requests == 0 || args.clients.contains(&0) {
        bail!("--requests and every --clients count must be at least 1");
    }
    let device = Device::flex();
    let models = Models {
        restorer: Restorer::bundled(&device)?,
        router: Router::bundled(&device),
        recogniser: Recogniser::bundled(&device)?,
        weights: BUNDLED_WEIGHTS.into(),
    };
    let most_clients = args.clients.iter().copied().max().unwrap_or(1);
    let limits = Limits {
        workers: args.workers,
        queue: most_clients,
        timeout: Duration::from_secs(600),
        connections: most_clients.max(Limits::default().connections),
        ..Limits::default()
    };
    let photo = instruct_ipt::image::open(workspace_root().join("datasets/samples/degraded/denoise/input/astronaut.png"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let rows = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/api/restore", listener.local_addr()?);
        tokio::spawn(ipt_serve::serve(listener, Arc::new(models), limits, std::future::pending()));
        let mut rows = Vec::new();
        for &side in &args.sizes {
            let png = Arc::new(encode(&photo.resize_exact(side, side, FilterType::Triangle))?);
            send(&url, &png).await?;
            for &clients in &args.clients {
                let row = measure(&url, &png, clients, args.requests).await?;
                let line = format!("| {side}x{side} | {clients} | {:.2} | {:.0} | {:.0} |", row.per_second, row.median_ms, row.slowest_ms);
                println!("{line}");
                rows.push(line);
            }
        }
        anyhow::Ok(rows)
    })?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let text = format!(
        "# `instruct-ipt serve`: throughput and latency\n\n`cargo xtask bench-serve --sizes {} --clients {} --requests {} --workers {}` \
         on {threads} CPU threads (bundled weights, task denoise, localhost; each client sends its requests one after the \
         other, after one warm-up request per size).\n\n| photo | clients | requests/s | median latency ms | slowest ms |\n\
         |---|---|---|---|---|\n{}\n",
        join(&args.sizes),
        join(&args.clients),
        args.requests,
        args.workers,
        rows.join("\n")
    );
    let out = workspace_root().join(&args.out);
    if let Some(folder) = out.parent() {
        std::fs::create_dir_all(folder).with_context(|| format!("{}: cannot create", folder.display()))?;
    }
    ipt_core::write_atomically(&out, text.as_bytes())?;
    println!("wrote {}", out.display());
    Ok(())
}

/// Throughput and latency of one configuration.
struct Row {
    per_second: f64,
    median_ms: f64,
    slowest_ms: f64,
}

/// `clients` clients at once, each sending `requests` restorations of `png` in turn.
async fn measure(url: &str, png: &Arc<Vec<u8>>, clients: usize, requests: usize) -> Result<Row> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (url, png) = (url.to_string(), png.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(requests);
                for _ in 0..requests {
                    let sent = Instant::now();
                    send(&url, &png).await?;
                    latencies.push(sent.elapsed().as_secs_f64() * 1e3);
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let wall = started.elapsed().as_secs_f64();
    let slowest_ms = latencies.iter().copied().fold(0.0, f64::max);
    Ok(Row { per_second: latencies.len() as f64 / wall, median_ms: median(&mut latencies), slowest_ms })
}

/// One restoration request; fails unless the server answers a PNG.
async fn send(url: &str, png: &[u8]) -> Result<()> {
    let image = reqwest::multipart::Part::bytes(png.to_vec()).file_name("photo.png");
    let form = reqwest::multipart::Form::new().part("image", image).text("task", "denoise");
    let response = reqwest::Client::new().post(url).multipart(form).send().await?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() || !body.starts_with(b"\x89PNG") {
        bail!("the server answered {status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)]));
    }
    Ok(())
}

/// `image` as PNG bytes.
fn encode(image: &DynamicImage) -> Result<Vec<u8>> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, ImageFormat::Png)?;
    Ok(bytes.into_inner())
}

/// `values` comma-separated.
fn join<T: ToString>(values: &[T]) -> String {
    values.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}
