//! Errors of the data crate: every variant names the file or folder and what is wrong with it.

use std::path::PathBuf;

/// What went wrong while reading, synthesizing or writing data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An image could not be decoded or encoded.
    #[error("{path}: {source}")]
    Image {
        /// The image file.
        path: PathBuf,
        /// The decoder's or encoder's error.
        source: image::ImageError,
    },
    /// A TOML spec is malformed (unknown key, wrong type, ...).
    #[error("{path}: {message}")]
    Spec {
        /// The spec file.
        path: PathBuf,
        /// The parser's message, naming the key.
        message: String,
    },
    /// A folder holds no image files.
    #[error("{dir}: no image files (png, jpg, jpeg, bmp, tif, tiff, webp) found")]
    NoImages {
        /// The folder searched.
        dir: PathBuf,
    },
    /// A paired benchmark's input has no target.
    #[error("{input}: no matching target in {target_dir} (looked for the key '{key}')")]
    MissingTarget {
        /// The input image.
        input: PathBuf,
        /// The folder searched for its target.
        target_dir: PathBuf,
        /// The matching key derived from the input's name.
        key: String,
    },
    /// A paired benchmark's target has no input.
    #[error("{target}: no input image in {input_dir} matches this target")]
    UnmatchedTarget {
        /// The orphaned target image.
        target: PathBuf,
        /// The folder searched for its input.
        input_dir: PathBuf,
    },
    /// Two inputs map to the same target key.
    #[error("{first} and {second} both match the target key '{key}'")]
    AmbiguousPair {
        /// One input.
        first: PathBuf,
        /// The other input.
        second: PathBuf,
        /// The shared key.
        key: String,
    },
    /// An input and its target differ in size.
    #[error("{input} is {input_size:?} but its target {target} is {target_size:?}")]
    SizeMismatch {
        /// The input image.
        input: PathBuf,
        /// Its (width, height).
        input_size: (usize, usize),
        /// The target image.
        target: PathBuf,
        /// Its (width, height).
        target_size: (usize, usize),
    },
    /// No known folder layout was found under a benchmark root.
    #[error("{root}: no {benchmark} layout found (expected one of: {expected})")]
    UnknownLayout {
        /// The benchmark's root folder.
        root: PathBuf,
        /// The benchmark's name.
        benchmark: String,
        /// The layouts tried.
        expected: String,
    },
    /// A setting is out of its documented range.
    #[error("{what}: {message}")]
    Invalid {
        /// The setting or object.
        what: String,
        /// Why it is invalid.
        message: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, DataError>;

/// Wraps an I/O error with the path it concerns.
pub(crate) fn io_error(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> DataError {
    let path = path.into();
    move |source| DataError::Io { path, source }
}
