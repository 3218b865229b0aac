//! `cargo xtask bench-ops [--device wgpu] [--vs-pytorch]`: single layers of the backbone, forward
//! and backward, in Burn (the modules the model runs) and optionally in PyTorch
//! (`bench/pytorch/ops.py`, on CUDA when Burn runs on a GPU), on one `[batch, channels, size,
//! size]` input: where a training step's or a large inference's time goes, op by op.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::activation::{gelu, gelu_approximate, softmax};
use burn::tensor::{Device, Distribution, Tensor};
use instruct_ipt::backend::{DeviceChoice, select_device};
use ipt_model::{ChannelNorm, ModulatedConv2d, RankPolicy, TaskBiased, TaskWeights};
use serde::Deserialize;

use crate::bench::twin_device;
use crate::parity::workspace_root;
use crate::timing::{median_ms, sync};

/// Options of `cargo xtask bench-ops`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Batch of the input.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Channels of the input.
    #[arg(long, default_value_t = 128)]
    channels: usize,
    /// Side of the input.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Timed repetitions (after one warm-up); medians are reported.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Also time the same ops in PyTorch (`cargo xtask parity` installs the twin's venv).
    #[arg(long)]
    vs_pytorch: bool,
    /// Device: cpu, or a GPU backend compiled in (wgpu / cuda); the twin then runs on CUDA.
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// With --vs-pytorch: the Python that runs the twin, when not the venv `cargo xtask parity`
    /// makes (e.g. a machine's own python3 with PyTorch).
    #[arg(long)]
    python: Option<PathBuf>,
}

/// One op of the comparison, built on a device.
type Op = Box<dyn Fn(Tensor<4>) -> Tensor<4>>;

/// Tasks mixed in a batch by the modulated ops (the six of the all-in-one model).
const MIXED_TASKS: usize = 6;

/// The ops, in the order `ops.py` prints them, built on `device`; then the convolutions with
/// task biases (rank 4) and `batch` samples of the six tasks mixed, as a training batch has them
/// (Burn only).
fn ops(channels: usize, batch: usize, device: &Device) -> Vec<(&'static str, Op)> {
    let conv = |kernel, groups| {
        let layer = ModulatedConv2d::new(channels, channels, kernel, groups, true, device).train();
        Box::new(move |x| layer.forward(x, None)) as Op
    };
    let modulated = |kernel, groups| {
        let layer = ModulatedConv2d::new(channels, channels, kernel, groups, true, device)
            .with_task_biases(MIXED_TASKS, &RankPolicy::default())
            .train();
        let indices: Vec<usize> = (0..batch).map(|sample| sample % MIXED_TASKS).collect();
        let tasks = TaskWeights::one_hot(&indices, MIXED_TASKS, device);
        Box::new(move |x| layer.forward(x, Some(&tasks))) as Op
    };
    let norm = ChannelNorm::new(channels, device).train();
    vec![
        ("conv 3x3", conv(3, 1)),
        ("depthwise conv 3x3", conv(3, channels)),
        ("conv 1x1", conv(1, 1)),
        ("channel LayerNorm", Box::new(move |x| norm.forward(x))),
        ("GELU (tanh)", Box::new(gelu_approximate)),
        ("GELU (erf)", Box::new(gelu)),
        ("attention softmax(QK^T)V", Box::new(attention)),
        ("conv 3x3, 6 tasks mixed", modulated(3, 1)),
        ("depthwise conv 3x3, 6 tasks mixed", modulated(3, channels)),
        ("conv 1x1, 6 tasks mixed", modulated(1, 1)),
    ]
}

/// Channel ("transposed") attention over the whole map, as in `ops.py`.
fn attention(x: Tensor<4>) -> Tensor<4> {
    let [batch, channels, height, width] = x.dims();
    let flat = x.reshape([batch, channels, height * width]);
    let scores = softmax(flat.clone().matmul(flat.clone().swap_dims(1, 2)).div_scalar(((height * width) as f32).sqrt()), 2);
    scores.matmul(flat).reshape([batch, channels, height, width])
}

/// Times every op and prints the table.
pub fn run(args: Args) -> Result<()> {
    let device = select_device(args.device)?;
    let training = device.clone().autodiff();
    let shape = [args.batch, args.channels, args.size, args.size];
    let torch = if args.vs_pytorch { pytorch(&args)? } else { Vec::new() };
    println!(
        "input {shape:?}, {device:?} (PyTorch on {}), medians of {} runs; backward = forward+backward - forward",
        twin_device(args.device),
        args.repeats
    );
    println!("| op | Burn forward (ms) | Burn backward (ms) | PyTorch forward (ms) | PyTorch backward (ms) |\n|---|---|---|---|---|");
    let plain = ops(args.channels, args.batch, &device);
    let tracked = ops(args.channels, args.batch, &training);
    for ((name, op), (_, op_grad)) in plain.iter().zip(&tracked) {
        let x = Tensor::<4>::random(shape, Distribution::Default, &device);
        let forward = median_ms(args.repeats, || sync(op(x.clone())));
        let x = Tensor::<4>::random(shape, Distribution::Default, &training).require_grad();
        let both = median_ms(args.repeats, || {
            let grads = op_grad(x.clone()).sum().backward();
            if let Some(grad) = x.grad(&grads) {
                sync(grad);
            }
        });
        let reference = torch.iter().find(|result| result.op == *name);
        let cell = |value: Option<f64>| value.map_or("—".to_string(), |ms| format!("{ms:.1}"));
        println!(
            "| {name} | {forward:.1} | {:.1} | {} | {} |",
            both - forward,
            cell(reference.map(|result| result.forward_ms)),
            cell(reference.map(|result| result.backward_ms))
        );
    }
    Ok(())
}

/// One op's PyTorch timings.
#[derive(Deserialize)]
struct TorchOp {
    op: String,
    forward_ms: f64,
    backward_ms: f64,
}

fn pytorch(args: &Args) -> Result<Vec<TorchOp>> {
    let python = args.python.clone().unwrap_or_else(|| workspace_root().join("bench/pytorch/.venv/bin/python"));
    if args.python.is_none() && !python.exists() {
        bail!("no PyTorch twin at {}: run `cargo xtask parity` first", python.display());
    }
    let output = Command::new(python)
        .current_dir(workspace_root().join("bench/pytorch"))
        .args(["ops.py", "--batch", &args.batch.to_string(), "--channels", &args.channels.to_string()])
        .args(["--size", &args.size.to_string(), "--repeats", &args.repeats.to_string()])
        .args(["--device", twin_device(args.device)])
        .output()
        .context("cannot start the PyTorch twin")?;
    if !output.status.success() {
        bail!("ops.py failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    String::from_utf8_lossy(&output.stdout).lines().map(|line| serde_json::from_str(line).context("ops.py printed a bad line")).collect()
}
