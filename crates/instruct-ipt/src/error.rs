//! Errors of the inference facade: each names the file or the task at fault.

use std::path::PathBuf;

use ipt_model::{ModelError, Task, WeightError};

/// Why a restoration could not be done.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The weight file is missing, malformed or does not fit its config.
    #[error(transparent)]
    Weights(#[from] WeightError),
    /// The model refused the operation (e.g. merging a task into feature conditioning).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// An input image could not be opened or decoded.
    #[error("{path}: cannot read image: {reason}")]
    ReadImage {
        /// The input file.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// An input image's header declares more pixels than the limit allows.
    #[error(
        "{path}: {width}x{height} = {} MP is above the {max_megapixels} MP limit (--max-megapixels)",
        megapixels(*width, *height)
    )]
    TooLarge {
        /// The input file.
        path: PathBuf,
        /// Width its header declares.
        width: u32,
        /// Height its header declares.
        height: u32,
        /// The limit it exceeds.
        max_megapixels: f64,
    },
    /// An output image could not be encoded or written.
    #[error("{path}: cannot write image: {reason}")]
    WriteImage {
        /// The output file.
        path: PathBuf,
        /// What the encoder or the file system said.
        reason: String,
    },
    /// The weights were not trained for the requested task.
    #[error("these weights were not trained for '{task}' (trained for: {})", Task::list(trained))]
    TaskNotTrained {
        /// The requested task.
        task: Task,
        /// The tasks in the weight file.
        trained: Vec<Task>,
    },
}

/// `width * height` in megapixels, to four decimals without trailing zeros (`400`, `0.0012`).
fn megapixels(width: u32, height: u32) -> String {
    let text = format!("{:.4}", f64::from(width) * f64::from(height) / 1e6);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}
