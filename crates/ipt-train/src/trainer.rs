//! The training loop: synchronous multi-task training on task-balanced (or lagging-weighted)
//! mixed batches, phases,
//! EMA, validation, checkpoints, resume, and the final export.
//!
//! Our own loop rather than `burn-train`'s Learner: every batch carries per-sample task weights
//! into the modulated layers, phases switch which parameters learn and which tasks are sampled,
//! and exact resume needs the sampler's batch index, which the Learner does not expose.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use image::RgbImage;
use indicatif::{ProgressBar, ProgressStyle};
use ipt_data::random::mix;
use ipt_data::sampler::{BatchStream, read_photos, validation_samples};
use ipt_data::{DatasetSpec, PatchSampler, SamplerConfig};
use ipt_model::{FeatureConditioning, IptConfig, IptModel, ModulationConfig, Task, TrainableSet, WeightMetadata, save_weights};
use serde_json::json;

use crate::TrainError;
use crate::adamw::{AdamWSettings, FlatAdamW};
use crate::checkpoint::{self, TrainState};
use crate::config::{Conditioning, Phase, TaskSampling, TrainConfig, Trainable};
use crate::flat::FlatLayout;
use crate::metrics::MetricsLog;
use crate::params::{seeded_init, seeded_try_init};
use crate::plot;
use crate::step::{PendingLosses, PhaseClock, Stepper, Trainee};
use crate::task_shares::lagging_shares;
use crate::validate::{input_psnr, validation_psnr};

/// How a run is driven (not part of the config, so not part of the run's identity).
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Parent of the run folders.
    pub runs_dir: PathBuf,
    /// Continue from the run's latest checkpoint.
    pub resume: bool,
    /// Show a progress bar.
    pub progress: bool,
    /// Stop (with a checkpoint) after this many steps in total; `None` = the schedule's end.
    pub stop_after: Option<usize>,
}

/// What a finished (or stopped) run reports.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Steps done in total.
    pub steps: usize,
    /// Loss of every step done in this session (`NaN` for skipped steps).
    pub losses: Vec<f32>,
    /// Validation PSNR per task after the first validation of this session and at the end.
    pub validations: Vec<(usize, BTreeMap<Task, f64>)>,
    /// The exported EMA weights (`None` if stopped early).
    pub weights: Option<PathBuf>,
    /// Wall time over all sessions, seconds.
    pub wall_seconds: f64,
    /// Median seconds per step in this session.
    pub seconds_per_step: f64,
    /// The step of the checkpoint this session resumed from (`None`: it started from step 0).
    pub resumed_from: Option<usize>,
}

/// Trains `config` on `device` (a CPU or GPU device; gradients use its autodiff twin). Setting
/// `stop` (e.g. from Ctrl-C) ends the run after the current step, with a checkpoint.
pub fn train(config: &TrainConfig, options: &RunOptions, device: &Device, stop: &AtomicBool) -> Result<RunSummary, TrainError> {
    let mut spec = DatasetSpec::load(&config.data.spec)?;
    if !config.data.photos.is_empty() {
        spec = spec.with_clean_folders(&config.data.photos);
    }
    let phases = effective_phases(config, &spec)?;
    config.precision.check(device)?;
    let run_dir = options.runs_dir.join(&config.name);
    let checkpoints = run_dir.join("checkpoints");
    // A checkpoint holds every weight: resuming one needs no starting file (it may be gone).
    let from_checkpoint = options.resume && checkpoint::exists(&checkpoints);
    if !from_checkpoint {
        config.check_init_files()?;
    }
    prepare_run_dir(&run_dir, config, options.resume)?;

    let (training, validation) = spec.split()?;
    let photos = read_photos(&training, 2)?;
    let validation = validation_samples(&validation, &spec.validation_tasks(), spec.validation.crop, spec.validation.seed)?;

    let initial =
        if from_checkpoint { seeded_model(config, &config.model.config(), &spec, device) } else { initial_model(config, &spec, device)? };
    let autodiff = device.clone().autodiff();
    let fresh = TrainState { step: 0, best_psnr: None, wall_seconds: 0.0, rng: RNG_NOTE.into(), task_shares: None };
    let layout = FlatLayout::of(&initial, device);
    let resumed = if options.resume {
        checkpoint::load_latest(
            &checkpoints,
            initial.clone().fork(&autodiff),
            initial.clone(),
            optimizer(config, &layout, device),
            &layout,
        )?
    } else {
        None
    };
    let started_fresh = resumed.is_none();
    let (model, ema, optimizer, loss_scale, mut state) = match resumed {
        Some(loaded) => (loaded.model, loaded.ema, loaded.optimizer, loaded.loss_scale, loaded.state),
        None => (initial.clone().fork(&autodiff), initial, optimizer(config, &layout, device), None, fresh),
    };
    // Forking onto the autodiff device keeps the validation state; `train` turns gradients on.
    let mut trainee = Trainee::new(model.train(), &ema, optimizer, layout, config.precision, loss_scale);
    // A fresh start (also `--resume` before the first checkpoint) redoes every logged step.
    let metrics_path = run_dir.join("metrics.jsonl");
    let mut metrics = if started_fresh { MetricsLog::create(&metrics_path)? } else { MetricsLog::resume(&metrics_path, state.step)? };
    let inputs = input_psnr(&validation);
    if state.step == 0 {
        // What every curve is read against: the degraded inputs scored as they are, and the
        // starting weights (which matter when they come from `init_weights`).
        metrics.write(json!({"step": 0, "input_psnr": per_task(&inputs)}))?;
        let scores = validation_psnr(&trainee.ema_model(), &validation, device);
        metrics.write(json!({"step": 0, "validation_psnr": per_task(&scores), "mean_psnr": mean_of(&scores), "wall_s": 0.0}))?;
        if config.data.task_sampling == TaskSampling::Lagging {
            state.task_shares = Some(lagging_shares(&scores, &inputs));
        }
    }
    let end = options.stop_after.unwrap_or(config.schedule.steps).min(config.schedule.steps);
    let bar = progress_bar(options.progress, config.schedule.steps, state.step);
    let mut summary = RunSummary {
        run_dir: run_dir.clone(),
        steps: state.step,
        losses: Vec::new(),
        validations: Vec::new(),
        weights: None,
        wall_seconds: state.wall_seconds,
        seconds_per_step: 0.0,
        resumed_from: (!started_fresh).then_some(state.step),
    };
    let session = Instant::now();
    let wall_before = state.wall_seconds;
    let mut step_times = Vec::new();
    let mut pending = PendingLosses::default();
    let mut interval = LossInterval::new();
    let mut nonfinite_in_a_row = 0;
    let stepper = Stepper { device: autodiff.clone(), loss: &config.loss, max_norm: max_norm(config) };
    let mut clock = PhaseClock::off();

    while state.step < end && !stop.load(Ordering::Relaxed) {
        let (phase_index, phase_start) = phase_at(&phases, state.step);
        let phase = &phases[phase_index];
        trainee.model = set_trainable(trainee.model, phase)?;
        let phase_end = (phase_start + phase.steps).min(end);
        let stream_from = |state: &TrainState| {
            batch_stream(&photos, &spec, config, (phase_index, phase), state.task_shares.as_ref(), state.step - phase_start)
        };
        let mut batches = stream_from(&state)?;
        while state.step < phase_end && !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            let batch = batches.next().expect("the sampler streams without end");
            let lr = config.optim.lr_at(state.step, config.schedule.steps);
            let decay = config.ema.decay.min((1.0 + state.step as f32) / (10.0 + state.step as f32));
            let loss;
            (trainee, loss) = stepper.step(trainee, batch, lr, decay, &mut clock);
            pending.push(state.step, loss);
            state.step += 1;
            step_times.push(started.elapsed().as_secs_f64());
            bar.set_position(state.step as u64);

            let finished = state.step == end;
            let on_log = state.step % config.intervals.log == 0;
            let on_validation = state.step % config.intervals.validation == 0 || finished;
            let on_checkpoint = state.step % config.intervals.checkpoint == 0 || finished || stop.load(Ordering::Relaxed);
            if on_log || on_validation || on_checkpoint {
                // The only read-back of the step: the losses since the last one, in one transfer.
                for (step, value) in pending.read() {
                    summary.losses.push(value);
                    if value.is_finite() {
                        nonfinite_in_a_row = 0;
                        interval.add(value);
                    } else {
                        nonfinite_in_a_row += 1;
                        metrics.write(json!({"step": step, "skipped": format!("non-finite loss {value}")}))?;
                        if nonfinite_in_a_row >= config.max_consecutive_nonfinite {
                            return Err(TrainError::Diverged { step, count: nonfinite_in_a_row });
                        }
                    }
                    bar.set_message(format!("loss {value:.4} lr {lr:.2e}"));
                }
            }
            if on_log && let Some((loss, steps_per_second)) = interval.take(config.intervals.log) {
                let mut line = json!({
                    "step": state.step, "phase": phase_index, "loss": loss, "lr": lr,
                    "steps_per_s": steps_per_second, "patches_per_s": steps_per_second * config.data.batch_size as f64,
                });
                if let Some(scale) = &trainee.loss_scale {
                    line["loss_scale"] = json!(scale.value().into_scalar::<f32>());
                }
                metrics.write(line)?;
                refresh_plot(&run_dir, config, &bar);
            }
            // The EMA weights as a model, once for this step's validation, export and checkpoint.
            let ema = (on_validation || on_checkpoint).then(|| trainee.ema_model());
            if let Some(ema) = ema.as_ref().filter(|_| on_validation) {
                let scores = validation_psnr(ema, &validation, device);
                let mean = mean_of(&scores);
                let wall = wall_before + session.elapsed().as_secs_f64();
                metrics.write(json!({"step": state.step, "validation_psnr": per_task(&scores), "mean_psnr": mean, "wall_s": wall}))?;
                // Only at the interval's validations, so a run stopped between them (by
                // `stop_after` or Ctrl-C) keeps the shares an uninterrupted run would have.
                let on_interval = state.step % config.intervals.validation == 0 && state.step < config.schedule.steps;
                if config.data.task_sampling == TaskSampling::Lagging && on_interval {
                    let shares = lagging_shares(&scores, &inputs);
                    metrics.write(json!({"step": state.step, "task_shares": per_task(&shares)}))?;
                    state.task_shares = Some(shares);
                    batches = stream_from(&state)?;
                }
                bar.println(format!("step {}: validation PSNR {mean:.2} dB ({})", state.step, describe(&scores)));
                if state.best_psnr.is_none_or(|best| mean > best) {
                    state.best_psnr = Some(mean);
                    export(ema, config, &spec, &state, &run_dir.join("best.safetensors"), &scores)?;
                }
                summary.validations.push((state.step, scores));
                refresh_plot(&run_dir, config, &bar);
            }
            if let Some(ema) = ema.as_ref().filter(|_| on_checkpoint) {
                state.wall_seconds = wall_before + session.elapsed().as_secs_f64();
                let model = trainee.master_model();
                checkpoint::save(&checkpoints, &model, ema, &trainee.optimizer, trainee.loss_scale.as_ref(), &state)?;
            }
        }
    }
    bar.finish_and_clear();
    state.wall_seconds = wall_before + session.elapsed().as_secs_f64();
    if state.step == config.schedule.steps {
        let scores = summary.validations.last().map(|(_, scores)| scores.clone()).unwrap_or_default();
        let path = run_dir.join("final.safetensors");
        export(&trainee.ema_model(), config, &spec, &state, &path, &scores)?;
        summary.weights = Some(path);
    }
    step_times.sort_by(f64::total_cmp);
    summary.seconds_per_step = step_times.get(step_times.len() / 2).copied().unwrap_or(0.0);
    summary.steps = state.step;
    summary.wall_seconds = state.wall_seconds;
    Ok(summary)
}

/// Per-task values keyed by task name, for `metrics.jsonl`.
fn per_task(values: &BTreeMap<Task, f64>) -> BTreeMap<String, f64> {
    values.iter().map(|(task, value)| (task.to_string(), *value)).collect()
}

/// Mean over tasks (0 when there are none).
fn mean_of(scores: &BTreeMap<Task, f64>) -> f64 {
    scores.values().sum::<f64>() / scores.len().max(1) as f64
}

/// The model a run starts from: seeded fresh weights, then the config's backbone or whole
/// weight file, if any. A file whose architecture the config's deepens (more blocks per stage,
/// nothing else changed) is loaded as it is and then grown, its new blocks starting as
/// identities ([`IptModel::grown_to`]), so the run starts where the file's model was.
pub(crate) fn initial_model(config: &TrainConfig, spec: &DatasetSpec, device: &Device) -> Result<IptModel, TrainError> {
    let architecture = config.model.config();
    let start = match config.init_backbone.as_ref().or(config.init_weights.as_ref()) {
        Some(file) => Some(ipt_model::read_metadata(file)?.config).filter(|own| *own != architecture && own.grows_into(&architecture)),
        None => None,
    };
    let mut initial = seeded_model(config, start.as_ref().unwrap_or(&architecture), spec, device);
    if let Some(weights) = &config.init_backbone {
        initial = ipt_model::load_backbone_into(initial, weights)?;
    }
    if let Some(weights) = &config.init_weights {
        initial = whole_weights_for(&initial, weights, device)?;
    }
    if start.is_some() {
        initial = seeded_try_init(|| initial.grown_to(&architecture), device, config.seed)?;
    }
    Ok(initial)
}

/// A model of `architecture` for the config's conditioning and the spec's tasks, with the run's
/// seeded fresh weights.
fn seeded_model(config: &TrainConfig, architecture: &IptConfig, spec: &DatasetSpec, device: &Device) -> IptModel {
    seeded_init(|| build_model(config, architecture, &spec.task_list(), device), device, config.seed)
}

/// The batches of a phase (its index and itself) from its step `from` on, drawn with `shares`
/// of the phase's tasks when given (lagging-task sampling), else task-balanced.
pub(crate) fn batch_stream(
    photos: &[RgbImage],
    spec: &DatasetSpec,
    config: &TrainConfig,
    (phase_index, phase): (usize, &Phase),
    shares: Option<&BTreeMap<Task, f64>>,
    from: usize,
) -> Result<BatchStream, TrainError> {
    let sampler = PatchSampler::new(photos.to_vec(), &phase_tasks(spec, phase), sampler_config(config, phase_index))?;
    let sampler = match shares {
        Some(shares) => sampler.with_task_shares(
            &shares.iter().filter(|(task, _)| phase.tasks.contains(task)).map(|(task, share)| (*task, *share)).collect(),
        )?,
        None => sampler,
    };
    Ok(Arc::new(sampler).stream(from as u64))
}

/// Mean loss and speed over the steps since the last log line.
struct LossInterval {
    sum: f64,
    count: usize,
    start: Instant,
}

impl LossInterval {
    fn new() -> Self {
        Self { sum: 0.0, count: 0, start: Instant::now() }
    }

    /// Counts a finite loss.
    fn add(&mut self, loss: f32) {
        self.sum += f64::from(loss);
        self.count += 1;
    }

    /// The mean loss and steps per second over an interval of `steps` steps (`None` when every
    /// step of it was skipped), and starts the next interval.
    fn take(&mut self, steps: usize) -> Option<(f64, f64)> {
        let taken = std::mem::replace(self, Self::new());
        (taken.count > 0).then(|| (taken.sum / taken.count as f64, steps as f64 / taken.start.elapsed().as_secs_f64()))
    }
}

const RNG_NOTE: &str = "stateless: batch = f(seed, phase, step within phase)";

/// Redraws `curves.png`; a failure is reported and training goes on, since the curves are
/// also in `metrics.jsonl`.
fn refresh_plot(run_dir: &Path, config: &TrainConfig, bar: &ProgressBar) {
    if let Err(error) = plot::refresh(run_dir, &config.name) {
        bar.println(format!("warning: could not draw the training curves: {error}"));
    }
}

/// The phases to run: the config's, or one synchronous phase over every task of the spec.
pub(crate) fn effective_phases(config: &TrainConfig, spec: &DatasetSpec) -> Result<Vec<Phase>, TrainError> {
    if config.schedule.phases.is_empty() {
        return Ok(vec![Phase { steps: config.schedule.steps, tasks: spec.task_list(), trainable: Trainable::Synchronous }]);
    }
    for (index, phase) in config.schedule.phases.iter().enumerate() {
        if let Some(task) = phase.tasks.iter().find(|task| !spec.tasks.contains_key(task)) {
            return Err(TrainError::Invalid(format!(
                "schedule.phases[{index}] samples '{task}', which the data spec '{}' does not define",
                spec.name
            )));
        }
        if phase.tasks.is_empty() {
            return Err(TrainError::Invalid(format!("schedule.phases[{index}] lists no task")));
        }
    }
    Ok(config.schedule.phases.clone())
}

/// Index and first step of the phase that contains `step`.
fn phase_at(phases: &[Phase], step: usize) -> (usize, usize) {
    let mut start = 0;
    for (index, phase) in phases.iter().enumerate() {
        if step < start + phase.steps {
            return (index, start);
        }
        start += phase.steps;
    }
    (phases.len() - 1, start - phases[phases.len() - 1].steps)
}

fn phase_tasks(spec: &DatasetSpec, phase: &Phase) -> BTreeMap<Task, ipt_data::Degradation> {
    phase.tasks.iter().map(|task| (*task, spec.tasks[task].clone())).collect()
}

fn sampler_config(config: &TrainConfig, phase_index: usize) -> SamplerConfig {
    SamplerConfig {
        patch_size: config.data.patch_size,
        batch_size: config.data.batch_size,
        augment: config.data.augment,
        workers: config.data.workers,
        prefetch: 4,
        seed: mix(config.seed, &[phase_index as u64]),
    }
}

/// The backbone of `architecture`, conditioned on every task as the config asks.
fn build_model(config: &TrainConfig, architecture: &IptConfig, tasks: &[Task], device: &Device) -> IptModel {
    match &config.conditioning {
        Conditioning::None => architecture.init(device),
        Conditioning::WeightModulation(choice) => {
            let modulation = ModulationConfig { tasks: tasks.to_vec(), rank: choice.rank, targets: choice.targets.clone() };
            architecture.init_modulated(&modulation, device)
        }
        Conditioning::Feature(method) => {
            architecture.init_conditioned(&FeatureConditioning { tasks: tasks.to_vec(), method: method.clone() }, device)
        }
    }
}

/// The model stored whole at `path`, checked to be a drop-in for `fresh` (same architecture,
/// conditioning and task order), so training continues from it.
fn whole_weights_for(fresh: &IptModel, path: &Path, device: &Device) -> Result<IptModel, TrainError> {
    let invalid = |problem: String| TrainError::Checkpoint { path: path.into(), message: format!("init_weights: {problem}") };
    let (loaded, _) = ipt_model::load_weights(path, device)?;
    if loaded.config() != fresh.config() {
        return Err(invalid("its architecture differs from the config's model".into()));
    }
    if loaded.modulation() != fresh.modulation() || loaded.feature_conditioning() != fresh.feature_conditioning() {
        let tasks = |model: &IptModel| Task::list(model.tasks());
        return Err(invalid(format!(
            "its conditioning differs from the config's (tasks [{}] against [{}], or the rank, targets or method)",
            tasks(&loaded),
            tasks(fresh)
        )));
    }
    Ok(loaded)
}

/// A fresh AdamW as the config sets it, for `layout`'s parameters on `device` ([`Stepper`]
/// clips the gradients itself).
pub(crate) fn optimizer(config: &TrainConfig, layout: &FlatLayout, device: &Device) -> FlatAdamW {
    let optim = &config.optim;
    FlatAdamW::new(AdamWSettings { beta_1: optim.beta1, beta_2: optim.beta2, weight_decay: optim.weight_decay }, layout, device)
}

/// The per-parameter gradient-norm limit, `None` when `optim.grad_clip` is 0.
pub(crate) fn max_norm(config: &TrainConfig) -> Option<f32> {
    (config.optim.grad_clip > 0.0).then_some(config.optim.grad_clip)
}

fn set_trainable(model: IptModel, phase: &Phase) -> Result<IptModel, TrainError> {
    let set = match phase.trainable {
        Trainable::Synchronous => TrainableSet::Synchronous,
        Trainable::BiasOnly => TrainableSet::BiasOnly { tasks: phase.tasks.clone() },
        Trainable::BackboneOnly => TrainableSet::BackboneOnly,
        Trainable::ConditioningOnly => TrainableSet::ConditioningOnly,
    };
    Ok(model.with_trainable(&set)?)
}

/// Creates the run folder and writes the resolved config, or checks it against a resumed run's.
fn prepare_run_dir(run_dir: &Path, config: &TrainConfig, resume: bool) -> Result<(), TrainError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TrainError::Io { path, source }
    };
    std::fs::create_dir_all(run_dir).map_err(io(run_dir))?;
    let config_path = run_dir.join("config.toml");
    let resolved = config.to_toml();
    if config_path.is_file() {
        let existing = std::fs::read_to_string(&config_path).map_err(io(&config_path))?;
        if !resume {
            return Err(TrainError::Invalid(format!(
                "{} already holds a run: pass --resume to continue it, or choose another name",
                run_dir.display()
            )));
        }
        if existing != resolved {
            return Err(TrainError::Invalid(format!("{}: the resumed run was started with a different config", config_path.display())));
        }
        return Ok(());
    }
    ipt_core::write_atomically(&config_path, resolved.as_bytes()).map_err(io(&config_path))
}

/// Saves the EMA weights with provenance metadata.
fn export(
    ema: &IptModel,
    config: &TrainConfig,
    spec: &DatasetSpec,
    state: &TrainState,
    path: &Path,
    scores: &BTreeMap<Task, f64>,
) -> Result<(), TrainError> {
    let metadata = WeightMetadata::new(ema.config().clone(), spec.task_list())
        .with_provenance("train_config", config.to_toml())
        .with_provenance(
            "data",
            format!(
                "{} ({}) on {}",
                spec.name,
                config.data.spec.display(),
                spec.clean.iter().map(|folder| folder.display().to_string()).collect::<Vec<_>>().join(", ")
            ),
        )
        .with_provenance("steps", state.step.to_string())
        .with_provenance("wall_seconds", format!("{:.0}", state.wall_seconds))
        .with_provenance("hardware", hardware())
        .with_provenance("validation_psnr", describe(scores))
        .with_provenance("weights", "exponential moving average".to_string());
    save_weights(ema, &metadata, path).map_err(|error| TrainError::Checkpoint { path: path.into(), message: error.to_string() })
}

fn describe(scores: &BTreeMap<Task, f64>) -> String {
    scores.iter().map(|(task, psnr)| format!("{task} {psnr:.2}")).collect::<Vec<_>>().join(", ")
}

/// CPU model and thread count (for provenance).
fn hardware() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|name| name.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let threads = std::thread::available_parallelism().map_or(1, |count| count.get());
    format!("{cpu}, {threads} threads")
}

fn progress_bar(visible: bool, total: usize, position: usize) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64).with_position(position as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {per_sec}  ETA {eta}  {msg}").expect("the progress template is valid"),
    );
    bar
}
