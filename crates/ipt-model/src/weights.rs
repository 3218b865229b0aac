//! The project's weight files: safetensors (readable from PyTorch) whose header carries the
//! format version, the model config, the task list and provenance.
//!
//! Metadata keys (all JSON strings, so `safe_open(...).metadata()` in Python reads them):
//! `instruct_ipt.format_version`, `instruct_ipt.config`, `instruct_ipt.config_hash`,
//! `instruct_ipt.tasks`, `instruct_ipt.provenance`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use burn_store::{ApplyError, ModuleSnapshot, SafetensorsStore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{IptConfig, IptModel, Task};

/// Version of the weight-file layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

const KEY_VERSION: &str = "instruct_ipt.format_version";
const KEY_CONFIG: &str = "instruct_ipt.config";
const KEY_CONFIG_HASH: &str = "instruct_ipt.config_hash";
const KEY_TASKS: &str = "instruct_ipt.tasks";
const KEY_PROVENANCE: &str = "instruct_ipt.provenance";

/// What a weight file says about itself, besides its tensors.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct WeightMetadata {
    /// Layout version ([`FORMAT_VERSION`] when written by this build).
    pub format_version: u32,
    /// The architecture the tensors belong to.
    pub config: IptConfig,
    /// The tasks the weights were trained for.
    pub tasks: Vec<Task>,
    /// Where the weights come from: free-form key/values (config, data, steps, wall time, hardware).
    pub provenance: BTreeMap<String, String>,
}

impl WeightMetadata {
    /// Metadata for `config` and `tasks` with empty provenance.
    pub fn new(config: IptConfig, tasks: Vec<Task>) -> Self {
        Self { format_version: FORMAT_VERSION, config, tasks, provenance: BTreeMap::new() }
    }

    /// Adds one provenance entry.
    pub fn with_provenance(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.provenance.insert(key.into(), value.into());
        self
    }
}

/// Hex SHA-256 of the config's canonical JSON: ties task biases to the backbone they were trained with.
pub fn config_hash(config: &IptConfig) -> String {
    let json = serde_json::to_string(config).expect("IptConfig always serialises");
    Sha256::digest(json.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Why a weight file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum WeightError {
    /// The file system refused.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error (in the message, not chained, so it is printed once).
        cause: std::io::Error,
    },
    /// The bytes are not a safetensors file.
    #[error("{path}: not a safetensors weight file ({reason})")]
    NotSafetensors {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// A metadata entry is missing or unreadable.
    #[error("{path}: metadata '{key}' {problem}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The metadata key.
        key: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The file's tensors do not fit the model its config describes.
    #[error("{path}: {problem}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// The first mismatching key with the expected and found shapes, or the missing key.
        problem: String,
    },
    /// Serialising the tensors failed.
    #[error("{path}: could not serialise the weights: {reason}")]
    Serialise {
        /// The target file.
        path: PathBuf,
        /// What the store said.
        reason: String,
    },
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, then a rename, so
/// an existing file is never left half-written.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temporary = tempfile::NamedTempFile::new_in(folder)?;
    temporary.write_all(bytes)?;
    temporary.as_file().sync_all()?;
    temporary.persist(path).map_err(|error| error.error)?;
    Ok(())
}

/// Saves `model` with `metadata` to `path` atomically.
pub fn save_weights(model: &IptModel, metadata: &WeightMetadata, path: &Path) -> Result<(), WeightError> {
    let serialise = |reason: String| WeightError::Serialise { path: path.to_owned(), reason };
    let mut store = SafetensorsStore::from_bytes(None)
        .metadata(KEY_VERSION, metadata.format_version.to_string())
        .metadata(KEY_CONFIG, json(&metadata.config))
        .metadata(KEY_CONFIG_HASH, config_hash(&metadata.config))
        .metadata(KEY_TASKS, json(&metadata.tasks))
        .metadata(KEY_PROVENANCE, json(&metadata.provenance));
    model.save_into(&mut store).map_err(|error| serialise(error.to_string()))?;
    let bytes = store.get_bytes().map_err(|error| serialise(error.to_string()))?;
    write_atomically(path, &bytes).map_err(|cause| WeightError::Io { path: path.to_owned(), cause })
}

/// Reads only the metadata of the weight file at `path`.
pub fn read_metadata(path: &Path) -> Result<WeightMetadata, WeightError> {
    let bytes = read(path)?;
    parse_metadata(path, &bytes)
}

/// Loads the model described by the file at `path` onto `device`, checking every key and shape.
pub fn load_weights(path: &Path, device: &Device) -> Result<(IptModel, WeightMetadata), WeightError> {
    let bytes = read(path)?;
    let metadata = parse_metadata(path, &bytes)?;
    let mut model = metadata.config.init(device);
    let mismatch = |problem: String| WeightError::Mismatch { path: path.to_owned(), problem };
    let mut store = SafetensorsStore::from_bytes(Some(bytes)).validate(false).allow_partial(true);
    let result = model.load_from(&mut store).map_err(|error| mismatch(error.to_string()))?;
    if let Some(error) = result.errors.first() {
        return Err(mismatch(describe_apply_error(error)));
    }
    if let Some((key, _)) = result.missing.first() {
        return Err(mismatch(format!("tensor '{key}' is missing ({} missing in all)", result.missing.len())));
    }
    if let Some(key) = result.unused.first() {
        return Err(mismatch(format!("tensor '{key}' does not belong to the model ({} unexpected in all)", result.unused.len())));
    }
    Ok((model, metadata))
}

fn describe_apply_error(error: &ApplyError) -> String {
    match error {
        ApplyError::ShapeMismatch { path, expected, found } => {
            format!("tensor '{path}' has shape {:?}, the model expects {:?}", found.as_slice(), expected.as_slice())
        }
        other => other.to_string(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, WeightError> {
    std::fs::read(path).map_err(|cause| WeightError::Io { path: path.to_owned(), cause })
}

fn parse_metadata(path: &Path, bytes: &[u8]) -> Result<WeightMetadata, WeightError> {
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|error| WeightError::NotSafetensors { path: path.to_owned(), reason: error.to_string() })?;
    let entries = header.metadata().clone().unwrap_or_default();
    let field = |key: &'static str| {
        entries.get(key).ok_or_else(|| WeightError::Metadata {
            path: path.to_owned(),
            key,
            problem: "is missing: not an instruct-ipt weight file".into(),
        })
    };
    let bad = |key: &'static str, problem: String| WeightError::Metadata { path: path.to_owned(), key, problem };
    let format_version: u32 = field(KEY_VERSION)?
        .parse()
        .map_err(|error| bad(KEY_VERSION, format!("is not a number: {error}")))?;
    if format_version > FORMAT_VERSION {
        return Err(bad(KEY_VERSION, format!("is {format_version}; this build reads up to {FORMAT_VERSION}")));
    }
    let config: IptConfig = serde_json::from_str(field(KEY_CONFIG)?)
        .map_err(|error| bad(KEY_CONFIG, format!("is not a valid model config: {error}")))?;
    config.validate().map_err(|problem| bad(KEY_CONFIG, problem))?;
    let tasks = serde_json::from_str(field(KEY_TASKS)?).map_err(|error| bad(KEY_TASKS, error.to_string()))?;
    let provenance = serde_json::from_str(field(KEY_PROVENANCE)?).map_err(|error| bad(KEY_PROVENANCE, error.to_string()))?;
    Ok(WeightMetadata { format_version, config, tasks, provenance })
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("metadata values always serialise")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Preset;
    use burn::module::Module;
    use burn_store::ModuleSnapshot;

    fn metadata() -> WeightMetadata {
        WeightMetadata::new(Preset::Tiny.config(), vec![Task::Denoise, Task::Derain]).with_provenance("data", "unit test")
    }

    #[test]
    fn save_then_load_is_bit_exact() {
        let device = Device::flex();
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("model.safetensors");
        let model = Preset::Tiny.config().init(&device);
        save_weights(&model, &metadata(), &path).unwrap();
        let (loaded, read_back) = load_weights(&path, &device).unwrap();
        assert_eq!(read_back, metadata());
        let original = model.collect(None, None, false);
        let restored = loaded.collect(None, None, false);
        assert_eq!(original.len(), restored.len());
        for (a, b) in original.iter().zip(&restored) {
            assert_eq!(a.name, b.name);
            assert_eq!(a.to_bytes().unwrap(), b.to_bytes().unwrap(), "{}", a.name);
        }
        assert_eq!(loaded.num_params(), model.num_params());
    }

    #[test]
    fn a_shape_mismatch_names_the_key_and_both_shapes() {
        let device = Device::flex();
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("model.safetensors");
        // Tensors of a wider model, but a header that claims the tiny config.
        let wide = IptConfig { width: 24, ..Preset::Tiny.config() }.init(&device);
        save_weights(&wide, &metadata(), &path).unwrap();
        let message = load_weights(&path, &device).unwrap_err().to_string();
        assert!(message.contains("model.safetensors"), "{message}");
        assert!(message.contains("'embedder.weight' has shape [24, 3, 3, 3], the model expects [16, 3, 3, 3]"), "{message}");
    }

    #[test]
    fn foreign_files_are_rejected_with_the_file_name() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("notes.safetensors");
        std::fs::write(&path, b"hello").unwrap();
        let message = read_metadata(&path).unwrap_err().to_string();
        assert!(message.contains("notes.safetensors") && message.contains("not a safetensors"), "{message}");
    }

    #[test]
    fn config_hash_changes_with_the_config() {
        let tiny = Preset::Tiny.config();
        assert_eq!(config_hash(&tiny), config_hash(&tiny.clone()));
        assert_ne!(config_hash(&tiny), config_hash(&Preset::Small.config()));
        assert_eq!(config_hash(&tiny).len(), 64);
    }

    #[test]
    fn atomic_write_replaces_whole_files() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("out.bin");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(folder.path()).unwrap().count(), 1, "no temporary file left behind");
    }
}
