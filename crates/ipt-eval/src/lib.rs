//! Evaluation of Instruct-IPT (`cargo xtask eval`): PSNR and SSIM under an explicit protocol
//! (RGB or Y, 8-bit or float, border crop), benchmark suites described in TOML, several
//! checkpoints side by side with the degraded input as the floor, and the reports: a JSON file,
//! a Markdown table in the layout of the paper's Table 4, a per-image CSV and a PNG grid of
//! crops per benchmark.

pub mod grid;
pub mod memory;
pub mod metrics;
pub mod report;
pub mod routing;
pub mod runner;
pub mod suite;

pub use metrics::{Channels, Protocol, Score};
pub use report::Report;
pub use routing::{Instructions, Routing};
pub use runner::{Candidate, EvalOptions, evaluate};
pub use suite::{BenchmarkEntry, Source, Suite};

use std::path::PathBuf;

/// What can stop an evaluation; every variant names the file or benchmark at fault.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The suite file is malformed; the message names the key.
    #[error("{path}: {message}")]
    Suite {
        /// The suite file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A benchmark's images could not be found or read.
    #[error(transparent)]
    Data(#[from] ipt_data::DataError),
    /// An output could not be scored against its target.
    #[error("{benchmark} / {image}: {source}")]
    Metric {
        /// The benchmark.
        benchmark: String,
        /// The image.
        image: String,
        /// Why.
        source: metrics::MetricError,
    },
    /// A weight file could not be loaded (the message names it).
    #[error(transparent)]
    Load(instruct_ipt::Error),
    /// A checkpoint failed to restore.
    #[error("{checkpoint}: {source}")]
    Restore {
        /// The checkpoint's label (its weight file).
        checkpoint: String,
        /// Why.
        source: instruct_ipt::Error,
    },
}

/// Shorthand for I/O errors on `path`.
pub(crate) fn io_error(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> EvalError {
    let path = path.into();
    move |source| EvalError::Io { path, source }
}
