//! Training for Instruct-IPT (`cargo xtask train`): synchronous training of the backbone and
//! the task biases on task-balanced (or lagging-task-weighted) mixed batches (docs/design.md §1), with an optional phased
//! schedule (backbone-only, bias-only phases), L1 or Charbonnier (+ PSNR, FFT) loss, AdamW with warm-up and
//! cosine decay, gradient clipping, an EMA of the weights, validation PSNR per task, atomic
//! checkpoints and exact resume.

mod adamw;
pub mod bench;
pub mod checkpoint;
pub mod config;
mod flat;
pub mod loss;
pub mod metrics;
pub mod params;
pub mod plot;
pub mod precision;
pub mod runs;
mod step;
pub mod task_shares;
pub mod trainer;
pub mod validate;

pub use bench::{StepBenchmark, bench_steps};
pub use config::TrainConfig;
pub use precision::Precision;
pub use runs::{RUNS_VARIABLE, runs_home};
pub use step::PhaseMillis;
pub use trainer::{RunOptions, RunSummary, train};

use std::path::PathBuf;

/// What can stop a training run; every variant says where and why.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The config is malformed; the message names the key.
    #[error("{path}: {message}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
    /// A checkpoint or weight file could not be written or read.
    #[error("{path}: {message}")]
    Checkpoint {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The model refused an operation (e.g. a phase trains the bias of a task it lacks).
    #[error(transparent)]
    Model(#[from] ipt_model::ModelError),
    /// A weight file to start from could not be loaded.
    #[error(transparent)]
    Weights(#[from] ipt_model::WeightError),
    /// Data could not be prepared.
    #[error(transparent)]
    Data(#[from] ipt_data::DataError),
    /// The loss was not finite too many steps in a row.
    #[error(
        "training diverged: {count} non-finite losses in a row at step {step}; lower optim.lr or raise optim.grad_clip's strictness, then resume"
    )]
    Diverged {
        /// The step of the last failure.
        step: usize,
        /// How many in a row.
        count: usize,
    },
    /// An inconsistent setting or run folder.
    #[error("{0}")]
    Invalid(String),
}
