//! Errors of the recogniser.

use std::path::PathBuf;

/// Why recognition weights could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecogniseError {
    /// The weight file is unreadable, not safetensors, or not a recogniser's.
    #[error("{path}: not recogniser weights ({reason})")]
    Weights {
        /// The file (or how bundled weights are named).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file system refused.
    #[error("{path}: cannot {action} the recogniser weights")]
    Io {
        /// The file.
        path: PathBuf,
        /// `read` or `write`.
        action: &'static str,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
}
