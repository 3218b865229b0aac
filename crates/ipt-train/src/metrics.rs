//! `metrics.jsonl`: one JSON object per line (training, validation and skipped-step records),
//! appended and flushed as training goes so a killed run keeps its history.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::TrainError;

/// An append-only JSON-lines log.
pub struct MetricsLog {
    path: PathBuf,
    file: File,
}

impl MetricsLog {
    /// Opens (creating or appending to) `path`.
    pub fn open(path: &Path) -> Result<Self, TrainError> {
        Self::with(path, std::fs::OpenOptions::new().create(true).append(true).open(path))
    }

    /// Creates `path` empty (a run starting from step 0 drops the records of an earlier try
    /// that never reached a checkpoint).
    pub fn create(path: &Path) -> Result<Self, TrainError> {
        Self::with(path, File::create(path))
    }

    /// The log writing to `opened`, or the error naming `path`.
    fn with(path: &Path, opened: std::io::Result<File>) -> Result<Self, TrainError> {
        let file = opened.map_err(|source| TrainError::Io { path: path.into(), source })?;
        Ok(Self { path: path.into(), file })
    }

    /// Appends one record.
    pub fn write(&mut self, record: serde_json::Value) -> Result<(), TrainError> {
        writeln!(self.file, "{record}")
            .and_then(|()| self.file.flush())
            .map_err(|source| TrainError::Io { path: self.path.clone(), source })
    }
}
