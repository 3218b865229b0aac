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
    /// Opens `path` to continue a run resumed at `step`: the records of later steps (written
    /// after the checkpoint by a session that was then killed, and about to be redone) and a
    /// last line cut short by the kill are dropped, so the log reads as if the run had never
    /// stopped.
    pub fn resume(path: &Path, step: usize) -> Result<Self, TrainError> {
        let io = |source| TrainError::Io { path: path.into(), source };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(error) => return Err(io(error)),
        };
        let kept: String = text
            .split_inclusive('\n')
            .filter(|line| line.ends_with('\n'))
            .filter(|line| {
                serde_json::from_str::<serde_json::Value>(line)
                    .is_ok_and(|record| record.get("step").and_then(serde_json::Value::as_u64).is_some_and(|at| at as usize <= step))
            })
            .collect();
        if kept != text {
            ipt_core::write_atomically(path, kept.as_bytes()).map_err(io)?;
        }
        Self::with(path, std::fs::OpenOptions::new().append(true).open(path))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resuming_drops_records_after_the_checkpoint_and_a_line_cut_short() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("metrics.jsonl");
        std::fs::write(&path, "{\"step\":0}\n{\"step\":4,\"loss\":1}\n{\"step\":5,\"loss\":2}\n{\"step\":6,\"lo").unwrap();
        let mut log = MetricsLog::resume(&path, 4).unwrap();
        log.write(serde_json::json!({"step": 5, "loss": 3})).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"step\":0}\n{\"step\":4,\"loss\":1}\n{\"loss\":3,\"step\":5}\n");
    }
}
