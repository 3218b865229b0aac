//! Errors of loading and saving router heads and embedding tables.

use std::path::PathBuf;

use crate::MiniLmError;

/// Why a router, its head or an embedding table could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// MiniLM's weights could not be loaded.
    #[error(transparent)]
    MiniLm(#[from] MiniLmError),
    /// A file could not be read.
    #[error("{path}: cannot read it ({hint})")]
    Read {
        /// The file.
        path: PathBuf,
        /// How to make it.
        hint: &'static str,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// A file's contents were refused; the source says why.
    #[error("{path}")]
    InFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: Box<TextError>,
    },
    /// The bytes are not a safetensors file, or lack a tensor.
    #[error("not a valid safetensors file")]
    Format(#[from] safetensors::SafeTensorError),
    /// A metadata entry is missing or malformed.
    #[error("metadata '{key}' {problem}")]
    Metadata {
        /// The metadata key.
        key: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The head was trained on another encoder's features.
    #[error("the head was trained for the '{trained}' encoder, not '{encoder}'")]
    WrongEncoder {
        /// The encoder named in the head file.
        trained: String,
        /// The encoder it was loaded with.
        encoder: &'static str,
    },
    /// The head reads another number of features than this version's encoder makes.
    #[error(
        "the head reads {inputs} features but this version's '{encoder}' encoder makes {features}: the head is stale, retrain it with `cargo xtask train-router --encoder {encoder}`"
    )]
    StaleHead {
        /// Features the head reads.
        inputs: usize,
        /// Features the encoder makes.
        features: usize,
        /// The encoder.
        encoder: &'static str,
    },
    /// The tensors do not fit the expected layout.
    #[error("unexpected tensors: {0}")]
    Layout(String),
}

impl TextError {
    /// This error, said of `path`.
    pub fn in_file(self, path: impl Into<PathBuf>) -> Self {
        Self::InFile { path: path.into(), source: Box::new(self) }
    }
}
