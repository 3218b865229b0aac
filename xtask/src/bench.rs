//! `cargo xtask bench`: restore throughput and peak memory per preset and image size, and with
//! `--vs-pytorch` the same network against its PyTorch twin, inference and training step.
//!
//! Each case runs in a child process, so its peak resident memory (`VmHWM`) is its own, and
//! Burn and PyTorch children alternate so that both see the same machine state. The photo-file
//! case goes through a PNG file both ways, as `instruct-ipt restore` does, so its peak memory
//! is what a user restoring a large photo needs.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use instruct_ipt::backend::{DeviceChoice, select_device};
use instruct_ipt::image::DynamicImage;
use instruct_ipt::{Preset, Restorer, Task, WeightMetadata, read_image, write_image};
use serde::{Deserialize, Serialize};

use crate::parity::workspace_root;
use crate::timing::{StepTimes, median, training_step};

/// Options of `cargo xtask bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Presets to measure.
    #[arg(long, value_delimiter = ',', default_value = "tiny,small")]
    presets: Vec<Preset>,
    /// Square image sides restored whole.
    #[arg(long, value_delimiter = ',', default_value = "256,512")]
    sizes: Vec<usize>,
    /// Timed repetitions per case (after one warm-up); the median is reported.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Skip the 3840x2160 tiled case (minutes on 2 cores).
    #[arg(long)]
    skip_4k: bool,
    /// Tile side for the 3840x2160 case and the photo-file case.
    #[arg(long, default_value_t = instruct_ipt::DEFAULT_TILE)]
    tile: usize,
    /// Megapixels of the photo-file case (read a square PNG, restore, write a PNG, as the CLI
    /// does): its peak memory shows what restoring a large photo takes. 0 skips it (about
    /// 10 minutes for 100 MP on 2 cores).
    #[arg(long, default_value_t = 100.0)]
    photo_megapixels: f64,
    /// Compare with the PyTorch twin (bench/pytorch; `cargo xtask parity` installs it).
    #[arg(long)]
    vs_pytorch: bool,
    /// Where Burn runs: `cpu` (flex) or `libtorch` (an xtask built with `--features tch`).
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// With --vs-pytorch: alternating Burn/PyTorch rounds per case.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// With --vs-pytorch: training steps as BATCHxPATCH [default: 8x64 on the CPU; 8x64,
    /// 16x128, 64x128 on a GPU, where the twin runs on CUDA].
    #[arg(long, value_delimiter = ',')]
    train_shapes: Vec<TrainShape>,
    /// With --vs-pytorch: the Python that runs the twin, when not the venv `cargo xtask parity`
    /// makes (e.g. a machine's own python3 with PyTorch).
    #[arg(long)]
    python: Option<PathBuf>,
}

/// A training step's batch size and square patch side, written `8x64`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainShape {
    batch: usize,
    patch: usize,
}

impl std::str::FromStr for TrainShape {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let parse = |part: Option<&str>| part.and_then(|value| value.trim().parse::<usize>().ok()).filter(|&value| value > 0);
        let mut parts = text.split('x');
        match (parse(parts.next()), parse(parts.next()), parts.next()) {
            (Some(batch), Some(patch), None) => Ok(Self { batch, patch }),
            _ => Err(format!("'{text}' is not BATCHxPATCH, e.g. 16x128")),
        }
    }
}

impl Default for TrainShape {
    /// The step the performance issue measures on the CPU.
    fn default() -> Self {
        Self { batch: 8, patch: 64 }
    }
}

/// One case, run by the child process.
#[derive(clap::Args, Debug)]
pub struct CaseArgs {
    #[arg(long)]
    preset: Preset,
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    #[arg(long, default_value_t = 256)]
    width: usize,
    #[arg(long, default_value_t = 256)]
    height: usize,
    /// Tile side; 0 restores the whole image.
    #[arg(long, default_value_t = 0)]
    tile: usize,
    #[arg(long)]
    repeats: usize,
    /// Time an AdamW training step instead of inference.
    #[arg(long)]
    train: bool,
    /// Patches in the training step.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Side of the training step's patches.
    #[arg(long, default_value_t = 64)]
    patch: usize,
    /// Restore this image file into a PNG beside it, read and write included, instead of an
    /// image in memory.
    #[arg(long)]
    photo: Option<PathBuf>,
}

/// What a case measured.
#[derive(Serialize, Deserialize, Debug)]
struct CaseResult {
    median_ms: f64,
    megapixels_per_second: f64,
    peak_memory_mib: f64,
    step: Option<StepTimes>,
}

/// Runs the requested comparison.
pub fn run(args: BenchArgs) -> Result<()> {
    println!(
        "device: {} (cpu = flex), {} threads available",
        args.device.name(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if args.vs_pytorch { run_vs_pytorch(&args) } else { run_throughput(&args) }
}

fn run_throughput(args: &BenchArgs) -> Result<()> {
    let photo = (args.photo_megapixels > 0.0).then(|| PhotoFile::write(args.photo_megapixels)).transpose()?;
    println!("{:<7} {:>11} {:>6} {:>12} {:>10} {:>14}", "preset", "image", "tile", "median ms", "MPx/s", "peak MiB");
    for &preset in &args.presets {
        let mut cases: Vec<(usize, usize, usize, usize)> = args.sizes.iter().map(|&size| (size, size, 0, args.repeats)).collect();
        if !args.skip_4k {
            cases.push((3840, 2160, args.tile, 1));
        }
        for (width, height, tile, repeats) in cases {
            let case = ["--width", &width.to_string(), "--height", &height.to_string(), "--tile", &tile.to_string()];
            let result = burn_case(preset, args.device, &case, repeats)?;
            let tile = if tile == 0 { "whole".to_string() } else { tile.to_string() };
            print_row(preset, &format!("{width}x{height}"), &tile, &result);
        }
        if let Some(photo) = &photo {
            let case = ["--photo", photo.path.to_str().context("temporary paths are UTF-8")?, "--tile", &args.tile.to_string()];
            print_row(preset, &format!("{0}x{0} file", photo.side), &args.tile.to_string(), &burn_case(preset, args.device, &case, 1)?);
        }
    }
    Ok(())
}

fn print_row(preset: Preset, image: &str, tile: &str, result: &CaseResult) {
    println!(
        "{:<7} {image:>11} {tile:>6} {:>12.1} {:>10.3} {:>14.1}",
        preset.name(),
        result.median_ms,
        result.megapixels_per_second,
        result.peak_memory_mib
    );
}

/// The square PNG of the photo-file case, in a temporary folder removed when dropped.
struct PhotoFile {
    path: PathBuf,
    side: u32,
    _folder: tempfile::TempDir,
}

impl PhotoFile {
    /// Writes a photo-like square PNG of about `megapixels` (a gradient with fine texture, so
    /// it compresses like a photo rather than like a flat image).
    fn write(megapixels: f64) -> Result<Self> {
        let side = (megapixels * 1e6).sqrt().round() as u32;
        let folder = tempfile::tempdir()?;
        let path = folder.path().join("photo.png");
        let image = image::RgbImage::from_fn(side, side, |x, y| {
            let grain = ((x.wrapping_mul(2654435761) ^ y.wrapping_mul(40503)) >> 7) % 24;
            let channel = |base: u32, scale: u32| (base + (x + 2 * y) / scale % 160 + grain) as u8;
            image::Rgb([channel(30, 97), channel(50, 131), channel(70, 173)])
        });
        instruct_ipt::write_image(&path, &DynamicImage::ImageRgb8(image))?;
        Ok(Self { path, side, _folder: folder })
    }
}

fn run_vs_pytorch(args: &BenchArgs) -> Result<()> {
    let python = args.python.clone().unwrap_or_else(|| workspace_root().join("bench/pytorch/.venv/bin/python"));
    if args.python.is_none() && !python.exists() {
        bail!("no PyTorch twin at {}: run `cargo xtask parity` first", python.display());
    }
    println!("medians over {} alternating rounds of {} repeats; speed = PyTorch ms / Burn ms (>1: Burn faster)", args.rounds, args.repeats);
    println!("{:<7} {:<22} {:>10} {:>12} {:>7}", "preset", "case", "burn ms", "pytorch ms", "speed");
    for &preset in &args.presets {
        let mut cases: Vec<(String, Vec<String>, Vec<String>)> = args
            .sizes
            .iter()
            .map(|&size| {
                let s = size.to_string();
                (
                    format!("inference {size}x{size}"),
                    vec!["--width".into(), s.clone(), "--height".into(), s.clone()],
                    vec!["--kind".into(), "infer".into(), "--size".into(), s],
                )
            })
            .collect();
        for TrainShape { batch, patch } in train_shapes(args) {
            let (batch, patch) = (batch.to_string(), patch.to_string());
            cases.push((
                format!("train step {batch}x{patch}x{patch}"),
                vec!["--train".into(), "--batch".into(), batch.clone(), "--patch".into(), patch.clone()],
                vec!["--kind".into(), "train".into(), "--batch".into(), batch, "--patch".into(), patch],
            ));
        }
        for (label, burn_args, torch_args) in cases {
            let (mut burn_ms, mut torch_ms, mut steps) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..args.rounds.max(1) {
                let burn_args: Vec<&str> = burn_args.iter().map(String::as_str).collect();
                let result = burn_case(preset, args.device, &burn_args, args.repeats)?;
                burn_ms.push(result.median_ms);
                steps.extend(result.step);
                torch_ms.push(torch_case(&python, preset, &torch_args, twin_device(args.device), args.repeats)?);
            }
            let (burn, torch) = (median(&mut burn_ms), median(&mut torch_ms));
            println!("{:<7} {label:<22} {burn:>10.1} {torch:>12.1} {:>7.2}", preset.name(), torch / burn);
            if let Some(step) = steps.get(steps.len() / 2) {
                println!(
                    "{:<7}   burn phases: forward {:.1} ms, backward {:.1} ms, optimiser {:.1} ms",
                    "", step.forward_ms, step.backward_ms, step.optimizer_ms
                );
            }
        }
    }
    Ok(())
}

fn burn_case(preset: Preset, device: DeviceChoice, case: &[&str], repeats: usize) -> Result<CaseResult> {
    let executable = std::env::current_exe().context("cannot find the xtask executable")?;
    let output = Command::new(executable)
        .args(["bench-case", "--preset", preset.name(), "--repeats", &repeats.to_string()])
        .args(["--device", device.name()])
        .args(case)
        .output()
        .context("cannot start a benchmark case")?;
    if !output.status.success() {
        bail!("case {} {case:?} failed: {}", preset.name(), String::from_utf8_lossy(&output.stderr));
    }
    serde_json::from_slice(&output.stdout).context("the benchmark case printed no result")
}

/// The training shapes asked for, else the CPU's one or the GPU's three.
fn train_shapes(args: &BenchArgs) -> Vec<TrainShape> {
    match (args.train_shapes.is_empty(), twin_device(args.device)) {
        (false, _) => args.train_shapes.clone(),
        (true, "cuda") => ["8x64", "16x128", "64x128"].map(|shape| shape.parse().expect("the GPU shapes parse")).to_vec(),
        (true, _) => vec![TrainShape::default()],
    }
}

/// Where the twin runs: on CUDA when Burn runs on a GPU, else on the CPU.
pub(crate) fn twin_device(device: DeviceChoice) -> &'static str {
    match device {
        DeviceChoice::Wgpu | DeviceChoice::Cuda => "cuda",
        DeviceChoice::Cpu | DeviceChoice::LibTorch => "cpu",
    }
}

fn torch_case(python: &std::path::Path, preset: Preset, case: &[String], device: &str, repeats: usize) -> Result<f64> {
    #[derive(Deserialize)]
    struct TorchResult {
        median_ms: f64,
    }
    let output = Command::new(python)
        .current_dir(workspace_root().join("bench/pytorch"))
        .args(["bench.py", "--preset", preset.name(), "--repeats", &repeats.to_string(), "--device", device])
        .args(case)
        .output()
        .context("cannot start the PyTorch twin")?;
    if !output.status.success() {
        bail!("PyTorch case {} {case:?} failed: {}", preset.name(), String::from_utf8_lossy(&output.stderr));
    }
    Ok(serde_json::from_slice::<TorchResult>(&output.stdout).context("the twin printed no result")?.median_ms)
}

/// Runs one case (a restoration or a training step) and prints JSON.
pub fn run_case(args: CaseArgs) -> Result<()> {
    let device = select_device(args.device)?;
    let config = args.preset.config();
    if args.train {
        let step = training_step(config.init(&device), None, args.batch, args.patch, args.repeats, &device.clone().autodiff());
        let pixels = (args.batch * args.patch * args.patch) as f64;
        return print_result(step.total_ms, pixels, Some(step));
    }
    let restorer = Restorer::from_model(config.init(&device), WeightMetadata::new(config, Task::ALL.to_vec()), &device)
        .with_tile((args.tile > 0).then_some(args.tile));
    if let Some(photo) = &args.photo {
        let start = Instant::now();
        let image = read_image(photo)?;
        let pixels = f64::from(image.width()) * f64::from(image.height());
        let restored = restorer.restore(&image, Some(Task::Denoise))?;
        drop(image); // as `instruct-ipt restore` does before encoding
        write_image(&photo.with_file_name("restored.png"), &restored)?;
        return print_result(start.elapsed().as_secs_f64() * 1000.0, pixels, None);
    }
    let pixels = args.width * args.height;
    let image: Vec<f32> = (0..3 * pixels).map(|i| ((i * 2654435761) % 1000) as f32 / 1000.0).collect();
    // A single tiled 4K run warms up on its first tile; whole-image cases get a warm-up run.
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
    print_result(median(&mut times), pixels as f64, None)
}

fn print_result(median_ms: f64, pixels: f64, step: Option<StepTimes>) -> Result<()> {
    let result = CaseResult {
        median_ms,
        megapixels_per_second: pixels / 1e6 / (median_ms / 1000.0),
        peak_memory_mib: ipt_eval::memory::peak_mib().context("no VmHWM in /proc/self/status")?,
        step,
    };
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_shapes_parse_as_batch_x_patch_and_bad_ones_say_why() {
        assert_eq!("16x128".parse::<TrainShape>(), Ok(TrainShape { batch: 16, patch: 128 }));
        assert_eq!(" 8 x 64".parse::<TrainShape>(), Ok(TrainShape::default()));
        for bad in ["16", "16x", "x128", "0x64", "8x64x2", "ax64"] {
            let error = bad.parse::<TrainShape>().expect_err(bad);
            assert!(error.contains(bad) && error.contains("BATCHxPATCH"), "{error}");
        }
    }

    #[test]
    fn the_twin_follows_burn_onto_a_gpu() {
        assert_eq!(twin_device(DeviceChoice::Wgpu), "cuda");
        assert_eq!(twin_device(DeviceChoice::Cuda), "cuda");
        assert_eq!(twin_device(DeviceChoice::Cpu), "cpu");
        assert_eq!(twin_device(DeviceChoice::LibTorch), "cpu");
    }
}
