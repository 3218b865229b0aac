//! The project's weight files: safetensors (readable from PyTorch) whose header carries the
//! format version, the model config, the task list and provenance.
//!
//! Metadata keys (all JSON strings, so `safe_open(...).metadata()` in Python reads them):
//! `instruct_ipt.format_version`, `instruct_ipt.content`, `instruct_ipt.config`,
//! `instruct_ipt.config_hash`, `instruct_ipt.modulation`, `instruct_ipt.tasks`,
//! `instruct_ipt.provenance`, and `instruct_ipt.conditioning` (absent in files written before
//! feature conditioning existed, read as none).
//!
//! A file holds a whole model ([`WeightContent::Full`]), the backbone alone
//! ([`WeightContent::Backbone`]) or some tasks' biases alone ([`WeightContent::TaskBiases`]);
//! task-bias files name their tensors by task (`...task_biases.derain.b1`) and record the config
//! hash of the backbone they were trained with, which loading checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use burn_store::{ApplyError, ApplyResult, ModuleSnapshot, SafetensorsStore};
use ipt_core::write_atomically;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::task_ops::{CONDITIONING, TASK_BIASES, parse_bias_name};
use crate::{FeatureConditioning, IptConfig, IptModel, ModulationConfig, Task};

/// Version of the weight-file layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

const KEY_VERSION: &str = "instruct_ipt.format_version";
const KEY_CONTENT: &str = "instruct_ipt.content";
const KEY_MODULATION: &str = "instruct_ipt.modulation";
const KEY_CONDITIONING: &str = "instruct_ipt.conditioning";
const KEY_CONFIG: &str = "instruct_ipt.config";
const KEY_CONFIG_HASH: &str = "instruct_ipt.config_hash";
const KEY_TASKS: &str = "instruct_ipt.tasks";
const KEY_PROVENANCE: &str = "instruct_ipt.provenance";

/// Which tensors a weight file holds.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WeightContent {
    /// The backbone and every task bias.
    Full,
    /// The general weights only.
    Backbone,
    /// Some tasks' biases only, for a backbone with the recorded config hash.
    TaskBiases,
}

/// What a weight file says about itself, besides its tensors.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct WeightMetadata {
    /// Layout version ([`FORMAT_VERSION`] when written by this build).
    pub format_version: u32,
    /// Which tensors the file holds (set when saving).
    pub content: WeightContent,
    /// The architecture the tensors belong to (taken from the model when saving).
    pub config: IptConfig,
    /// The task biases' set-up, `None` for a plain backbone (taken from the model when saving).
    pub modulation: Option<ModulationConfig>,
    /// The feature-adaptation set-up, `None` without one (taken from the model when saving).
    pub conditioning: Option<FeatureConditioning>,
    /// The tasks the weights were trained for.
    pub tasks: Vec<Task>,
    /// Where the weights come from: free-form key/values (config, data, steps, wall time, hardware).
    pub provenance: BTreeMap<String, String>,
}

impl WeightMetadata {
    /// Metadata for `config` and `tasks` with empty provenance.
    pub fn new(config: IptConfig, tasks: Vec<Task>) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            content: WeightContent::Full,
            config,
            modulation: None,
            conditioning: None,
            tasks,
            provenance: BTreeMap::new(),
        }
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
    #[error("{path}: cannot {action} the weight file")]
    Io {
        /// The file.
        path: PathBuf,
        /// `read` or `write`.
        action: &'static str,
        /// What the file system said.
        #[source]
        source: std::io::Error,
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
    /// A float tensor holds NaN or infinite values.
    #[error("{path}: tensor '{tensor}' holds NaN or infinite values")]
    NotFinite {
        /// The file.
        path: PathBuf,
        /// The tensor's name in the file.
        tensor: String,
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

/// Saves the whole `model` (backbone and task biases) to `path` atomically; the config and
/// modulation in `metadata` are replaced by the model's own.
pub fn save_weights(model: &IptModel, metadata: &WeightMetadata, path: &Path) -> Result<(), WeightError> {
    let metadata = WeightMetadata {
        content: WeightContent::Full,
        config: model.config().clone(),
        modulation: model.modulation().cloned(),
        conditioning: model.feature_conditioning().cloned(),
        ..metadata.clone()
    };
    write_store(model, store_with_metadata(&metadata), path)
}

/// Saves the general weights of `model` alone, as a plain backbone.
pub fn save_backbone(model: &IptModel, metadata: &WeightMetadata, path: &Path) -> Result<(), WeightError> {
    let metadata = WeightMetadata {
        content: WeightContent::Backbone,
        config: model.config().clone(),
        modulation: None,
        conditioning: None,
        ..metadata.clone()
    };
    if model.output.is_none() {
        return Err(mismatch(path, "the model has no shared output layer (weight replacement): it has no backbone of its own".into()));
    }
    let store = store_with_metadata(&metadata).with_predicate(|path, _| !path.contains(TASK_BIASES) && !path.starts_with(CONDITIONING));
    write_store(model, store, path)
}

/// Saves the biases of `tasks` alone, keyed by task name, with the backbone's config hash.
pub fn save_task_biases(model: &IptModel, tasks: &[Task], metadata: &WeightMetadata, path: &Path) -> Result<(), WeightError> {
    let modulation = model.modulation().ok_or_else(|| mismatch(path, "the model has no task biases to save".into()))?;
    if tasks.is_empty() {
        return Err(mismatch(path, "no task named to save".into()));
    }
    let metadata = WeightMetadata {
        content: WeightContent::TaskBiases,
        config: model.config().clone(),
        modulation: Some(ModulationConfig { tasks: tasks.to_vec(), ..modulation.clone() }),
        tasks: tasks.to_vec(),
        ..metadata.clone()
    };
    let mut store = store_with_metadata(&metadata);
    for &task in tasks {
        let index = modulation.index_of(task).ok_or_else(|| mismatch(path, format!("the model has no bias for '{task}'")))?;
        let key = format!(r"\.task_biases\.{index}\.");
        store = store.with_regex(&key).with_key_remapping(&key, format!(".task_biases.{}.", task.name()));
    }
    write_store(model, store, path)
}

fn store_with_metadata(metadata: &WeightMetadata) -> SafetensorsStore {
    SafetensorsStore::from_bytes(None)
        .metadata(KEY_VERSION, metadata.format_version.to_string())
        .metadata(KEY_CONTENT, json(&metadata.content))
        .metadata(KEY_CONFIG, json(&metadata.config))
        .metadata(KEY_CONFIG_HASH, config_hash(&metadata.config))
        .metadata(KEY_MODULATION, json(&metadata.modulation))
        .metadata(KEY_CONDITIONING, json(&metadata.conditioning))
        .metadata(KEY_TASKS, json(&metadata.tasks))
        .metadata(KEY_PROVENANCE, json(&metadata.provenance))
}

fn write_store(model: &IptModel, mut store: SafetensorsStore, path: &Path) -> Result<(), WeightError> {
    let serialise = |reason: String| WeightError::Serialise { path: path.to_owned(), reason };
    model.save_into(&mut store).map_err(|error| serialise(error.to_string()))?;
    let bytes = store.get_bytes().map_err(|error| serialise(error.to_string()))?;
    write_atomically(path, &bytes).map_err(|source| WeightError::Io { path: path.to_owned(), action: "write", source })
}

/// Reads only the metadata of the weight file at `path`.
pub fn read_metadata(path: &Path) -> Result<WeightMetadata, WeightError> {
    let bytes = read(path)?;
    parse_metadata(path, &bytes)
}

/// Loads the model (whole, or a backbone) stored at `path` onto `device`, checking every key
/// and shape.
pub fn load_weights(path: &Path, device: &Device) -> Result<(IptModel, WeightMetadata), WeightError> {
    load_weights_from_bytes(read(path)?, path, device)
}

/// Loads a weight file already in memory (weights embedded in a binary, say); `path` names its
/// origin in errors.
pub fn load_weights_from_bytes(bytes: Vec<u8>, path: &Path, device: &Device) -> Result<(IptModel, WeightMetadata), WeightError> {
    let metadata = parse_metadata(path, &bytes)?;
    if metadata.content == WeightContent::TaskBiases {
        return Err(mismatch(path, "holds task biases only: load its backbone, then these biases with load_task_biases".into()));
    }
    // The model is built from the config before any tensor is read: a config claiming more
    // parameters than the file holds would make it allocate whatever it claims.
    let held = check_tensors(path, &bytes)?;
    let needed = metadata.config.backbone_parameters();
    if needed > held {
        return Err(mismatch(
            path,
            format!("its config describes a backbone of {needed} parameters, but the file holds only {held} values"),
        ));
    }
    let mut model = metadata.config.init_with(metadata.modulation.as_ref(), metadata.conditioning.as_ref(), device);
    let mut store = SafetensorsStore::from_bytes(Some(bytes)).validate(false).allow_partial(true);
    let result = model.load_from(&mut store).map_err(|error| mismatch(path, error.to_string()))?;
    check_complete(path, &result, |_| false)?;
    Ok((model, metadata))
}

/// Adds (or replaces) the task biases stored at `path` to `model`, after checking that they were
/// trained with a backbone of the same config and with the same rank policy and targets.
pub fn load_task_biases(model: &IptModel, path: &Path) -> Result<IptModel, WeightError> {
    let bytes = read(path)?;
    let metadata = parse_metadata(path, &bytes)?;
    check_tensors(path, &bytes)?;
    let modulation = match (&metadata.content, &metadata.modulation) {
        (WeightContent::TaskBiases, Some(modulation)) => modulation,
        _ => return Err(mismatch(path, "holds no task-bias set: use load_weights".into())),
    };
    let (expected, found) = (config_hash(model.config()), config_hash(&metadata.config));
    if expected != found {
        return Err(mismatch(path, format!("biases were trained with a backbone of config hash {found}, this model's is {expected}")));
    }
    if let Some(own) = model.modulation()
        && (own.rank != modulation.rank || own.targets != modulation.targets)
    {
        return Err(mismatch(path, "the biases' rank policy or target groups differ from the model's".into()));
    }
    let mut grown_modulation = model.modulation().cloned().unwrap_or_else(|| ModulationConfig { tasks: Vec::new(), ..modulation.clone() });
    for task in &modulation.tasks {
        if !grown_modulation.tasks.contains(task) {
            grown_modulation.tasks.push(*task);
        }
    }
    let mut grown = model.regrow(&grown_modulation);
    let mut store = SafetensorsStore::from_bytes(Some(bytes)).validate(false).allow_partial(true);
    for task in &modulation.tasks {
        let index = grown_modulation.index_of(*task).expect("every file task was added");
        store = store.with_key_remapping(format!(r"\.task_biases\.{}\.", task.name()), format!(".task_biases.{index}."));
    }
    let result = grown.load_from(&mut store).map_err(|error| mismatch(path, error.to_string()))?;
    check_complete(path, &result, |name| {
        !parse_bias_name(name).is_some_and(|(_, index, _)| modulation.tasks.contains(&grown_modulation.tasks[index]))
    })?;
    Ok(grown)
}

/// Loads the general (backbone) tensors of the weight file at `path` into `model` and keeps
/// the model's own task biases and conditioning layers: training that starts from a trained
/// backbone. The file must hold every backbone tensor of a model of the same config; its task
/// biases or conditioning layers, if any, are left out.
pub fn load_backbone_into(mut model: IptModel, path: &Path) -> Result<IptModel, WeightError> {
    let bytes = read(path)?;
    let metadata = parse_metadata(path, &bytes)?;
    check_tensors(path, &bytes)?;
    if metadata.content == WeightContent::TaskBiases {
        return Err(mismatch(path, "holds task biases only, no backbone".into()));
    }
    let (expected, found) = (config_hash(model.config()), config_hash(&metadata.config));
    if expected != found {
        return Err(mismatch(path, format!("its backbone has config hash {found}, this model's is {expected}")));
    }
    fn general(name: &str) -> bool {
        !name.contains(TASK_BIASES) && !name.starts_with(CONDITIONING)
    }
    let mut store = SafetensorsStore::from_bytes(Some(bytes)).validate(false).allow_partial(true).with_predicate(|name, _| general(name));
    let result = model.load_from(&mut store).map_err(|error| mismatch(path, error.to_string()))?;
    let result = ApplyResult { unused: result.unused.into_iter().filter(|name| general(name)).collect(), ..result };
    check_complete(path, &result, |name| !general(name))?;
    Ok(model)
}

fn mismatch(path: &Path, problem: String) -> WeightError {
    WeightError::Mismatch { path: path.to_owned(), problem }
}

/// Fails on the first shape error, missing tensor (unless `may_be_missing` says it is expected)
/// or tensor the model does not have.
fn check_complete(path: &Path, result: &ApplyResult, may_be_missing: impl Fn(&str) -> bool) -> Result<(), WeightError> {
    if let Some(error) = result.errors.first() {
        return Err(mismatch(path, describe_apply_error(error)));
    }
    let missing: Vec<&String> = result.missing.iter().map(|(key, _)| key).filter(|key| !may_be_missing(key)).collect();
    if let Some(key) = missing.first() {
        return Err(mismatch(path, format!("tensor '{key}' is missing ({} missing in all)", missing.len())));
    }
    if let Some(key) = result.unused.first() {
        return Err(mismatch(path, format!("tensor '{key}' does not belong to the model ({} unexpected in all)", result.unused.len())));
    }
    Ok(())
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
    std::fs::read(path).map_err(|source| WeightError::Io { path: path.to_owned(), action: "read", source })
}

/// Checks that the tensor table agrees with the data (every tensor's bytes in the file, none
/// overlapping) and that no float tensor holds NaN or infinite values, naming the first that
/// does; returns how many values the file holds.
fn check_tensors(path: &Path, bytes: &[u8]) -> Result<u128, WeightError> {
    use safetensors::Dtype;
    let tensors = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|error| WeightError::NotSafetensors { path: path.to_owned(), reason: error.to_string() })?;
    let mut held = 0u128;
    for (name, view) in tensors.iter() {
        held += view.shape().iter().map(|&side| side as u128).product::<u128>();
        let data = view.data();
        let finite = match view.dtype() {
            Dtype::F64 => data.chunks_exact(8).all(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")).is_finite()),
            Dtype::F32 => data.chunks_exact(4).all(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")).is_finite()),
            // All-ones exponents are the infinities and NaNs.
            Dtype::F16 => data.chunks_exact(2).all(|b| u16::from_le_bytes([b[0], b[1]]) & 0x7C00 != 0x7C00),
            Dtype::BF16 => data.chunks_exact(2).all(|b| u16::from_le_bytes([b[0], b[1]]) & 0x7F80 != 0x7F80),
            _ => true,
        };
        if !finite {
            return Err(WeightError::NotFinite { path: path.to_owned(), tensor: name.to_owned() });
        }
    }
    Ok(held)
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
    let format_version: u32 = field(KEY_VERSION)?.parse().map_err(|error| bad(KEY_VERSION, format!("is not a number: {error}")))?;
    if format_version > FORMAT_VERSION {
        return Err(bad(KEY_VERSION, format!("is {format_version}; this build reads up to {FORMAT_VERSION}")));
    }
    let config: IptConfig =
        serde_json::from_str(field(KEY_CONFIG)?).map_err(|error| bad(KEY_CONFIG, format!("is not a valid model config: {error}")))?;
    config.validate().map_err(|problem| bad(KEY_CONFIG, problem.to_string()))?;
    let content = serde_json::from_str(field(KEY_CONTENT)?).map_err(|error| bad(KEY_CONTENT, error.to_string()))?;
    let modulation: Option<ModulationConfig> =
        serde_json::from_str(field(KEY_MODULATION)?).map_err(|error| bad(KEY_MODULATION, error.to_string()))?;
    if let Some(modulation) = &modulation {
        modulation.validate().map_err(|problem| bad(KEY_MODULATION, problem.to_string()))?;
    }
    let conditioning: Option<FeatureConditioning> = match entries.get(KEY_CONDITIONING) {
        Some(text) => serde_json::from_str(text).map_err(|error| bad(KEY_CONDITIONING, error.to_string()))?,
        None => None,
    };
    if let Some(conditioning) = &conditioning {
        conditioning.validate().map_err(|problem| bad(KEY_CONDITIONING, problem.to_string()))?;
    }
    if modulation.is_some() && conditioning.is_some() {
        return Err(bad(KEY_CONDITIONING, "a model has task biases or feature conditioning, not both".into()));
    }
    let tasks = serde_json::from_str(field(KEY_TASKS)?).map_err(|error| bad(KEY_TASKS, error.to_string()))?;
    let provenance = serde_json::from_str(field(KEY_PROVENANCE)?).map_err(|error| bad(KEY_PROVENANCE, error.to_string()))?;
    Ok(WeightMetadata { format_version, content, config, modulation, conditioning, tasks, provenance })
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
        write_store(&wide, store_with_metadata(&metadata()), &path).unwrap();
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

    fn restore_with(model: &IptModel, task: Task, device: &Device) -> burn::tensor::TensorData {
        let x = burn::tensor::Tensor::<4>::ones([1, 3, 16, 16], device) * 0.5;
        model.forward(x, Some(&model.task_weights(&[task], device).unwrap())).into_data()
    }

    #[test]
    fn a_modulated_model_round_trips_whole() {
        let device = Device::flex();
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("full.safetensors");
        let model = crate::test_support::modulated_micro_model(&device);
        save_weights(&model, &metadata(), &path).unwrap();
        let (loaded, read_back) = load_weights(&path, &device).unwrap();
        assert_eq!(read_back.modulation.as_ref(), model.modulation());
        assert_eq!(read_back.content, WeightContent::Full);
        restore_with(&loaded, Task::Derain, &device).assert_eq(&restore_with(&model, Task::Derain, &device), true);
    }

    #[test]
    fn backbone_and_task_biases_round_trip_separately() {
        let device = Device::flex();
        let folder = tempfile::tempdir().unwrap();
        let (backbone_path, biases_path) = (folder.path().join("backbone.safetensors"), folder.path().join("rain.safetensors"));
        let model = crate::test_support::modulated_micro_model(&device);
        save_backbone(&model, &metadata(), &backbone_path).unwrap();
        save_task_biases(&model, &[Task::Derain, Task::Deblur], &metadata(), &biases_path).unwrap();
        let (backbone, _) = load_weights(&backbone_path, &device).unwrap();
        assert!(backbone.tasks().is_empty());
        let restored = load_task_biases(&backbone, &biases_path).unwrap();
        assert_eq!(restored.tasks(), [Task::Derain, Task::Deblur]);
        for task in [Task::Derain, Task::Deblur] {
            restore_with(&restored, task, &device).assert_eq(&restore_with(&model, task, &device), true);
        }
        let message = load_weights(&biases_path, &device).unwrap_err().to_string();
        assert!(message.contains("rain.safetensors") && message.contains("task biases only"), "{message}");
    }

    #[test]
    fn task_biases_refuse_a_different_backbone() {
        let device = Device::flex();
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("biases.safetensors");
        save_task_biases(&crate::test_support::modulated_micro_model(&device), &[Task::Denoise], &metadata(), &path).unwrap();
        let other = IptConfig { width: 8, ..crate::test_support::micro_config() }.init(&device);
        let message = load_task_biases(&other, &path).unwrap_err().to_string();
        assert!(message.contains("config hash"), "{message}");
    }

    #[test]
    fn a_backbone_loads_under_other_conditioning_and_keeps_it() {
        let device = Device::flex();
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("modulated.safetensors");
        let trained = crate::test_support::modulated_micro_model(&device);
        save_weights(&trained, &metadata(), &path).unwrap();
        let conditioning = crate::FeatureConditioning { tasks: vec![Task::Denoise], method: crate::FeatureMethod::ExternalControl };
        let fresh = crate::test_support::micro_config().init_conditioned(&conditioning, &device);
        let control_before = fresh.conditioning.as_ref().unwrap().collect(None, None, false);
        let loaded = load_backbone_into(fresh, &path).unwrap();
        let x = burn::tensor::Tensor::<4>::ones([1, 3, 16, 16], &device) * 0.5;
        // External control starts at zero, so the model now computes the trained backbone.
        loaded
            .forward(x.clone(), None)
            .into_data()
            .assert_approx_eq::<f32>(&trained.forward(x, None).into_data(), burn::tensor::Tolerance::absolute(1e-6));
        let control_after = loaded.conditioning.as_ref().unwrap().collect(None, None, false);
        for (a, b) in control_before.iter().zip(&control_after) {
            assert_eq!(a.to_bytes().unwrap(), b.to_bytes().unwrap(), "{}", a.name);
        }
        let other = IptConfig { width: 8, ..crate::test_support::micro_config() }.init(&device);
        let message = load_backbone_into(other, &path).unwrap_err().to_string();
        assert!(message.contains("modulated.safetensors") && message.contains("config hash"), "{message}");
    }

    #[test]
    fn config_hash_changes_with_the_config() {
        let tiny = Preset::Tiny.config();
        assert_eq!(config_hash(&tiny), config_hash(&tiny.clone()));
        assert_ne!(config_hash(&tiny), config_hash(&Preset::Small.config()));
        assert_eq!(config_hash(&tiny).len(), 64);
    }
}
