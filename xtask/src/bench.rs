//! `cargo xtask bench`: restore throughput and peak memory per preset and image size.
//!
//! Each case runs in a child process, so its peak resident memory (`VmHWM`) is its own.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use instruct_ipt::backend::{DeviceChoice, select_device};
use instruct_ipt::{Preset, Restorer, Task, WeightMetadata};
use serde::{Deserialize, Serialize};

/// Options of `cargo xtask bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Presets to measure.
    #[arg(long, value_delimiter = ',', default_value = "tiny,small")]
    presets: Vec<String>,
    /// Square image sides restored whole.
    #[arg(long, value_delimiter = ',', default_value = "256,512")]
    sizes: Vec<usize>,
    /// Timed repetitions per case (after one warm-up); the median is reported.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Skip the 3840x2160 tiled case (it takes minutes on 2 cores).
    #[arg(long)]
    skip_4k: bool,
    /// Tile side for the 3840x2160 case.
    #[arg(long, default_value_t = instruct_ipt::DEFAULT_TILE)]
    tile: usize,
}

/// One case, run by the child process.
#[derive(clap::Args, Debug)]
pub struct CaseArgs {
    #[arg(long)]
    preset: String,
    #[arg(long)]
    width: usize,
    #[arg(long)]
    height: usize,
    /// Tile side; 0 restores the whole image.
    #[arg(long)]
    tile: usize,
    #[arg(long)]
    repeats: usize,
}

/// What a case measured.
#[derive(Serialize, Deserialize, Debug)]
struct CaseResult {
    median_ms: f64,
    megapixels_per_second: f64,
    peak_memory_mib: f64,
}

/// Runs every case in a child process and prints a table.
pub fn run(args: BenchArgs) -> Result<()> {
    let mut cases: Vec<(String, usize, usize, usize, usize)> = Vec::new();
    for preset in &args.presets {
        for &size in &args.sizes {
            cases.push((preset.clone(), size, size, 0, args.repeats));
        }
        if !args.skip_4k {
            cases.push((preset.clone(), 3840, 2160, args.tile, 1));
        }
    }
    println!("backend: flex (CPU), {} threads available", std::thread::available_parallelism().map_or(1, |n| n.get()));
    println!("{:<7} {:>11} {:>6} {:>12} {:>10} {:>14}", "preset", "image", "tile", "median ms", "MPx/s", "peak MiB");
    for (preset, width, height, tile, repeats) in cases {
        let result = run_child(&preset, width, height, tile, repeats)?;
        let tile = if tile == 0 { "whole".to_string() } else { tile.to_string() };
        println!(
            "{preset:<7} {:>11} {tile:>6} {:>12.1} {:>10.3} {:>14.1}",
            format!("{width}x{height}"),
            result.median_ms,
            result.megapixels_per_second,
            result.peak_memory_mib
        );
    }
    Ok(())
}

fn run_child(preset: &str, width: usize, height: usize, tile: usize, repeats: usize) -> Result<CaseResult> {
    let executable = std::env::current_exe().context("cannot find the xtask executable")?;
    let output = Command::new(executable)
        .args(["bench-case", "--preset", preset, "--width", &width.to_string(), "--height", &height.to_string()])
        .args(["--tile", &tile.to_string(), "--repeats", &repeats.to_string()])
        .output()
        .context("cannot start a benchmark case")?;
    if !output.status.success() {
        bail!("case {preset} {width}x{height} failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    serde_json::from_slice(&output.stdout).context("the benchmark case printed no result")
}

/// Times `repeats` restorations of a random image (after a warm-up when `repeats > 1`; a single
/// tiled 4K run warms up on its first tile) and prints JSON.
pub fn run_case(args: CaseArgs) -> Result<()> {
    let preset: Preset = args.preset.parse().map_err(anyhow::Error::msg)?;
    let device = select_device(DeviceChoice::Cpu).map_err(anyhow::Error::msg)?;
    let config = preset.config();
    let restorer = Restorer::from_model(config.init(&device), WeightMetadata::new(config, Task::ALL.to_vec()), &device)
        .with_tile((args.tile > 0).then_some(args.tile));
    let pixels = args.width * args.height;
    let image: Vec<f32> = (0..3 * pixels).map(|i| ((i * 2654435761) % 1000) as f32 / 1000.0).collect();
    if args.repeats > 1 {
        restorer.restore_planar(image.clone(), args.height, args.width, None)?;
    }
    let mut times = (0..args.repeats.max(1))
        .map(|_| -> Result<f64> {
            let start = Instant::now();
            restorer.restore_planar(image.clone(), args.height, args.width, None)?;
            Ok(start.elapsed().as_secs_f64() * 1000.0)
        })
        .collect::<Result<Vec<f64>>>()?;
    times.sort_by(f64::total_cmp);
    let median_ms = times[times.len() / 2];
    let result = CaseResult {
        median_ms,
        megapixels_per_second: pixels as f64 / 1e6 / (median_ms / 1000.0),
        peak_memory_mib: peak_memory_mib()?,
    };
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

/// Peak resident set size of this process (Linux `VmHWM`).
fn peak_memory_mib() -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:")).context("no VmHWM in /proc/self/status")?;
    let kib: f64 = line.split_whitespace().nth(1).context("malformed VmHWM")?.parse()?;
    Ok(kib / 1024.0)
}
