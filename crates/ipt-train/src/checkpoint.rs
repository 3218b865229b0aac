//! Checkpoints: `checkpoints/step-NNNNNNN/` holds the model, the EMA, the optimiser state, the
//! loss scale of `f16` training and `state.json`; it is written under a temporary name and renamed, then `checkpoints/latest`
//! (a one-line pointer, itself replaced atomically) is moved to it. A killed run therefore
//! always finds a complete checkpoint, and a checkpoint damaged later is skipped for the one
//! before it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use ipt_model::{IptModel, Task};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::adamw::FlatAdamW;
use crate::flat::FlatLayout;
use crate::precision::LossScale;

/// The optimiser state's file in a checkpoint folder.
const OPTIMIZER: &str = "adamw.bpk";

/// The loss scale's file in a checkpoint folder (`f16` training only).
const LOSS_SCALE: &str = "loss_scale.bpk";

/// Checkpoints kept on disk (older ones are deleted).
const KEEP: usize = 2;

/// Progress that is not in the tensors.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TrainState {
    /// Optimiser steps done.
    pub step: usize,
    /// Best mean validation PSNR so far (dB).
    pub best_psnr: Option<f64>,
    /// Seconds of training so far, over all sessions.
    pub wall_seconds: f64,
    /// The sampler's batch index is the step within the phase, and every random choice is a
    /// function of (seed, index): recorded so a reader of the checkpoint knows no RNG state is
    /// missing.
    pub rng: String,
    /// The sampler's task shares since the last validation, when `data.task_sampling` is
    /// `lagging` (`None` = balanced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_shares: Option<BTreeMap<Task, f64>>,
}

/// The trained state at one step.
pub(crate) struct Checkpoint {
    /// Weights being trained.
    pub model: IptModel,
    /// Their moving average.
    pub ema: IptModel,
    /// AdamW moments.
    pub optimizer: FlatAdamW,
    /// The loss scale, when the run trained in `f16`.
    pub loss_scale: Option<LossScale>,
    /// Step, best score, time.
    pub state: TrainState,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io { path: path.into(), source }
}

fn record(path: &Path) -> impl FnOnce(burn::store::RecordError) -> TrainError + '_ {
    move |error| TrainError::Checkpoint { path: path.into(), message: format!("{error:?}") }
}

/// Writes a checkpoint of `model`, `ema`, `optimizer`, `loss_scale`, `state` under `dir` and
/// points `dir/latest` at it.
pub(crate) fn save(
    dir: &Path,
    model: &IptModel,
    ema: &IptModel,
    optimizer: &FlatAdamW,
    loss_scale: Option<&LossScale>,
    state: &TrainState,
) -> Result<(), TrainError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let name = format!("step-{:07}", state.step);
    let temp = ipt_core::staging_folder(dir, &name).map_err(io(dir))?;
    model.clone().save_file(temp.path().join("model.bpk")).map_err(record(temp.path()))?;
    ema.clone().save_file(temp.path().join("ema.bpk")).map_err(record(temp.path()))?;
    optimizer.save(&temp.path().join(OPTIMIZER)).map_err(record(temp.path()))?;
    if let Some(scale) = loss_scale {
        scale.clone().save_file(temp.path().join(LOSS_SCALE)).map_err(record(temp.path()))?;
    }
    let state_text = serde_json::to_string_pretty(state).expect("train state serialises");
    std::fs::write(temp.path().join("state.json"), state_text).map_err(io(temp.path()))?;
    let final_dir = dir.join(&name);
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(io(&final_dir))?;
    }
    std::fs::rename(temp.keep(), &final_dir).map_err(io(&final_dir))?;
    ipt_core::write_atomically(&dir.join("latest"), name.as_bytes()).map_err(io(dir))?;
    prune(dir, &name)
}

/// Deletes all but the newest [`KEEP`] checkpoints (never `current`), and the staging folders
/// of checkpoints whose writing was killed.
fn prune(dir: &Path, current: &str) -> Result<(), TrainError> {
    let (staging, steps): (Vec<PathBuf>, Vec<PathBuf>) =
        step_folders(dir)?.into_iter().partition(|path| path.extension().is_some_and(|e| e == "tmp"));
    for old in staging.iter().chain(steps.iter().rev().skip(KEEP)).filter(|path| !path.ends_with(current)) {
        std::fs::remove_dir_all(old).map_err(io(old))?;
    }
    Ok(())
}

/// The `step-*` folders of `dir` (finished checkpoints and staging folders), sorted by name.
fn step_folders(dir: &Path) -> Result<Vec<PathBuf>, TrainError> {
    let mut steps: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.is_dir() && path.file_name().is_some_and(|name| name.to_string_lossy().starts_with("step-")))
        .collect();
    steps.sort();
    Ok(steps)
}

/// Whether `dir` holds a checkpoint to resume from (its `latest` pointer).
pub(crate) fn exists(dir: &Path) -> bool {
    dir.join("latest").is_file()
}

/// Loads the newest readable checkpoint into `model`, `ema` and `optimizer` (fresh ones of the
/// same architecture, on their devices): the one `dir/latest` points at, or, when that one is
/// unreadable (a damaged disk, a file truncated by hand), the next older one, with a warning on
/// standard error naming what was skipped. `None` if there is no checkpoint; the first error if
/// none can be read.
pub(crate) fn load_latest(
    dir: &Path,
    model: IptModel,
    ema: IptModel,
    optimizer: FlatAdamW,
    layout: &FlatLayout,
) -> Result<Option<Checkpoint>, TrainError> {
    if !exists(dir) {
        return Ok(None);
    }
    let pointer = dir.join("latest");
    let name = std::fs::read_to_string(&pointer).map_err(io(&pointer))?;
    let latest = dir.join(name.trim());
    let older = step_folders(dir)?.into_iter().rev().filter(|path| path.extension().is_none_or(|e| e != "tmp") && *path < latest);
    let mut first_error = None;
    for step_dir in std::iter::once(latest.clone()).chain(older) {
        match load(&step_dir, model.clone(), ema.clone(), optimizer.clone(), layout) {
            Ok(checkpoint) => return Ok(Some(checkpoint)),
            Err(error) => {
                eprintln!("warning: {error}; resuming from the checkpoint before it");
                first_error.get_or_insert(error);
            }
        }
    }
    Err(first_error.expect("the latest checkpoint was tried"))
}

/// Loads the checkpoint in `step_dir`.
fn load(step_dir: &Path, model: IptModel, ema: IptModel, optimizer: FlatAdamW, layout: &FlatLayout) -> Result<Checkpoint, TrainError> {
    let state_path = step_dir.join("state.json");
    let state: TrainState = serde_json::from_str(&std::fs::read_to_string(&state_path).map_err(io(&state_path))?)
        .map_err(|error| TrainError::Checkpoint { path: state_path.clone(), message: error.to_string() })?;
    let (ema_path, model_path) = (step_dir.join("ema.bpk"), step_dir.join("model.bpk"));
    let ema = ema.try_load_file(&ema_path).map_err(record(&ema_path))?;
    let model = model.try_load_file(&model_path).map_err(record(&model_path))?;
    let path = step_dir.join(OPTIMIZER);
    if !path.is_file() && step_dir.join("optimizer.bpk").is_file() {
        return Err(TrainError::Checkpoint {
            path,
            message: "missing: this checkpoint holds Burn's per-tensor AdamW state (optimizer.bpk), written before the \
                      flat optimiser; start the run again (e.g. from its best weights with `init_weights`)"
                .into(),
        });
    }
    let optimizer = optimizer.load(layout, &path).map_err(record(&path))?;
    let scale_path = step_dir.join(LOSS_SCALE);
    let loss_scale = match scale_path.is_file() {
        true => Some(LossScale::new(&ema.devices()[0]).try_load_file(&scale_path).map_err(record(&scale_path))?),
        false => None,
    };
    Ok(Checkpoint { model, ema, optimizer, loss_scale, state })
}
