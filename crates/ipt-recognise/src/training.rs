//! Training the recogniser (feature `training`): examples synthesized on the fly from clean
//! photos by the restorer's own degradations (`ipt-data`), binary cross-entropy per class,
//! AdamW. Held-out photos (the dataset spec's validation split, never `eval/`) measure it.
//!
//! An example is a random square window of a photo (96 to 320 px, so the views see photos of
//! many scales): clean (1 in 8), with one degradation (5 in 8) or with two (2 in 8), the
//! scene-wide one (darkness, haze) applied first and the one on top (noise, rain, snow, blur)
//! after, as photos get them. A degradation is labelled present only when it is visible
//! ([`visible`]): the mixtures draw strengths from 0, and an invisible draw labelled "noisy"
//! would teach the network that clean photos are noisy.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;
use ipt_data::random::rng_for;
use ipt_data::sampler::degrade_window;
use ipt_data::{Degradation, Rgb};
use rand::RngExt;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::network::RecogniserNet;
use crate::recogniser::stack;
use crate::{Class, Recogniser, Recognition, Task, Views};

/// How the recogniser is trained (`configs/recogniser/`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RecogniserConfig {
    /// Optimiser steps.
    pub steps: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// AdamW learning rate, reached after a linear warm-up of a tenth of the steps.
    pub lr: f64,
    /// Where the learning rate ends, by a cosine decay after the warm-up; without it the rate
    /// stays at [`RecogniserConfig::lr`].
    #[serde(default)]
    pub min_lr: Option<f64>,
    /// A recogniser weight file to start from (relative to the config file), instead of the
    /// seeded random initialisation: a longer training continues the shipped weights.
    #[serde(default)]
    pub init_weights: Option<std::path::PathBuf>,
    /// Seed of the examples and the initial weights.
    pub seed: u64,
    /// Held-out examples scored at the end (drawn from the validation photos).
    pub validation_examples: usize,
}

/// One synthesized example.
#[derive(Clone, Debug)]
pub struct Example {
    /// What the network sees.
    pub views: Views,
    /// 1 for each class present, in [`Class::ALL`] order.
    pub labels: [f32; 7],
    /// PSNR (dB) of what the network sees against the clean window: how strong the
    /// degradation is (at least [`VISIBLE_BELOW_DB`] for an example labelled clean).
    pub input_psnr: f64,
}

/// Bands of degradation strength by [`Example::input_psnr`]: name, and the PSNR range (dB)
/// from inclusive to exclusive. Noise of σ 25 (8-bit) is about 20 dB, σ 10 about 28 dB.
pub const STRENGTHS: [(&str, f64, f64); 3] = [("strong", 0.0, 20.0), ("moderate", 20.0, 30.0), ("faint", 30.0, VISIBLE_BELOW_DB)];

/// The index in [`STRENGTHS`] of a degradation whose input scores `psnr`.
pub fn strength(psnr: f64) -> usize {
    STRENGTHS.iter().position(|(_, from, to)| (*from..*to).contains(&psnr)).unwrap_or(STRENGTHS.len() - 1)
}

/// Mixed into the seed of the held-out examples, so they never repeat a training example.
const HELD_OUT_STREAM: u64 = 0x05ee_d0f4_e1d0;

/// Order in which two degradations are laid on a photo: the scene-wide ones first.
const LAYERING: [Task; 6] = [Task::LowLight, Task::Dehaze, Task::Deblur, Task::Desnow, Task::Derain, Task::Denoise];

/// Example `index` of the stream `seed` over `photos`, degraded with `tasks`' degradations.
pub fn example(photos: &[RgbImage], tasks: &BTreeMap<Task, Degradation>, seed: u64, index: u64) -> Example {
    let window = example_window(photos, tasks, seed, index);
    let degraded = &window.degraded;
    Example { views: Views::of(&degraded.data, degraded.height, degraded.width), labels: window.labels, input_psnr: window.input_psnr() }
}

/// The pixels of one example ([`example_window`]): the clean window and what degrading it made.
#[derive(Clone, Debug)]
pub struct ExampleWindow {
    /// The window of the photo before degrading.
    pub clean: Rgb,
    /// The window after degrading: what the recogniser looks at.
    pub degraded: Rgb,
    /// 1 for each class present, in [`Class::ALL`] order.
    pub labels: [f32; 7],
}

impl ExampleWindow {
    /// PSNR (dB) of the degraded window against the clean one.
    pub fn input_psnr(&self) -> f64 {
        ipt_core::psnr_from_mse(mean_squared_error(&self.clean, &self.degraded))
    }
}

/// The window of [`example`] `index` of the stream `seed`, before and after degrading: a square
/// crop (96-320 px) of one of `photos`, clean (1 in 8), with one degradation of `tasks` (5 in
/// 8) or with two, laid in [`LAYERING`] order.
pub fn example_window(photos: &[RgbImage], tasks: &BTreeMap<Task, Degradation>, seed: u64, index: u64) -> ExampleWindow {
    let mut rng = rng_for(seed, &[index]);
    let photo = &photos[rng.random_range(0..photos.len())];
    let (width, height) = (photo.width() as usize, photo.height() as usize);
    let side = rng.random_range(96..=320).min(width).min(height);
    let (left, top) = (rng.random_range(0..=width - side), rng.random_range(0..=height - side));
    let available: Vec<Task> = LAYERING.into_iter().filter(|task| tasks.contains_key(task)).collect();
    let count = match rng.random_range(0..8) {
        0 => 0,
        1..=5 => 1,
        _ => 2,
    };
    let mut chosen: Vec<Task> = Vec::new();
    while chosen.len() < count.min(available.len()) {
        let task = available[rng.random_range(0..available.len())];
        if !chosen.contains(&task) {
            chosen.push(task);
        }
    }
    chosen.sort_by_key(|task| LAYERING.iter().position(|t| t == task));
    let clean = Rgb::from_rgb8(&image::imageops::crop_imm(photo, left as u32, top as u32, side as u32, side as u32).to_image());
    let mut window = clean.clone();
    let mut labels = [0.0; 7];
    for (step, task) in chosen.iter().enumerate() {
        let params = tasks[task].sample(&mut rng);
        let degraded = if step == 0 { degrade_window(photo, left, top, side, &params).0 } else { params.apply(&window) };
        // A draw too weak to see (noise of σ near 0, say) is no degradation to recognise.
        if visible(&window, &degraded) {
            labels[Class::Degraded(*task).index()] = 1.0;
        }
        window = degraded;
    }
    if labels.iter().all(|&label| label == 0.0) {
        labels[Class::Clean.index()] = 1.0;
    }
    ExampleWindow { clean, degraded: window, labels }
}

/// Below this PSNR (dB) of a degraded window against the window before, the degradation
/// counts as present; above it the change is too small to see, and the example is labelled as
/// if it had not been applied.
pub const VISIBLE_BELOW_DB: f64 = 40.0;

/// Whether `after` differs visibly from `before` (same size): PSNR below [`VISIBLE_BELOW_DB`].
pub fn visible(before: &Rgb, after: &Rgb) -> bool {
    ipt_core::psnr_from_mse(mean_squared_error(before, after)) < VISIBLE_BELOW_DB
}

/// Mean squared difference of two images of the same size.
fn mean_squared_error(a: &Rgb, b: &Rgb) -> f64 {
    a.data.iter().zip(&b.data).map(|(x, y)| f64::from(x - y).powi(2)).sum::<f64>() / a.data.len().max(1) as f64
}

/// Binary cross-entropy of `logits` against 0/1 `labels`, mean over classes and examples,
/// computed stably as `max(x, 0) - x y + log(1 + exp(-|x|))`.
fn binary_cross_entropy(logits: Tensor<2>, labels: Tensor<2>) -> Tensor<1> {
    let positive = logits.clone().clamp_min(0.0);
    let softplus = (logits.clone().abs().neg().exp() + 1.0).log();
    (positive - logits * labels + softplus).mean()
}

/// What training reached.
#[derive(Clone, Debug)]
pub struct TrainingReport {
    /// Mean loss of the first and the last tenth of the steps.
    pub loss_first_and_last: (f64, f64),
    /// Accuracy on the held-out examples.
    pub accuracy: Accuracy,
    /// Accuracy of the starting weights on the same examples, when training started from some.
    pub initial_accuracy: Option<Accuracy>,
}

impl RecogniserConfig {
    /// The learning rate of step `step` (from 0): warm-up, then constant or cosine decay.
    pub fn lr_at(&self, step: usize) -> f64 {
        let warmup = (self.steps / 10).max(1);
        ipt_core::warmup_cosine(self.lr, self.min_lr.unwrap_or(self.lr), warmup, step, self.steps)
    }
}

/// Accuracy on held-out examples, each entry as (recognised, examples).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Accuracy {
    /// Examples with one degradation whose most likely degradation is it.
    pub single: (usize, usize),
    /// Examples whose clean-or-degraded verdict ([`Recognition::is_clean`]) is right.
    pub clean_vs_degraded: (usize, usize),
    /// Clean examples judged clean: the rest would be restored for nothing.
    pub clean_kept: (usize, usize),
    /// Degraded examples not judged clean: the rest would be left unrestored.
    pub degraded_seen: (usize, usize),
    /// Examples with two degradations whose two most likely degradations are they.
    pub pairs: (usize, usize),
    /// Examples with one degradation, per task in [`Task::ALL`] order.
    pub per_task: [(usize, usize); 6],
    /// Examples with one degradation by [`STRENGTHS`] band.
    pub by_strength: [(usize, usize); 3],
}

/// `hits / total` of a (recognised, examples) entry of [`Accuracy`]; 0 for no examples.
pub fn share((hits, total): (usize, usize)) -> f64 {
    hits as f64 / total.max(1) as f64
}

/// The recogniser's verdict on each of `examples`, in order.
pub fn recognise_examples(recogniser: &Recogniser, examples: &[Example]) -> Vec<Recognition> {
    let views: Vec<Views> = examples.iter().map(|example| example.views.clone()).collect();
    views.chunks(64).flat_map(|chunk| recogniser.recognise_views(chunk)).collect()
}

/// Scores `recogniser` on `examples`.
pub fn accuracy(recogniser: &Recogniser, examples: &[Example]) -> Accuracy {
    score(examples, &recognise_examples(recogniser, examples))
}

/// Scores the verdicts `recognitions` on `examples` (same order).
pub fn score(examples: &[Example], recognitions: &[Recognition]) -> Accuracy {
    let (mut single, mut singles, mut pairs, mut pair_count, mut verdicts) = (0, 0, 0, 0, 0);
    let (mut clean_kept, mut degraded_seen) = ((0, 0), (0, 0));
    let mut per_task = [(0, 0); 6];
    let mut by_strength = [(0, 0); 3];
    for (example, recognition) in examples.iter().zip(recognitions) {
        let truth: Vec<Task> = Task::ALL.into_iter().filter(|task| example.labels[Class::Degraded(*task).index()] > 0.5).collect();
        let mut ranked: Vec<Task> = Task::ALL.to_vec();
        ranked.sort_by(|a, b| recognition.probability(Class::Degraded(*b)).total_cmp(&recognition.probability(Class::Degraded(*a))));
        match truth.len() {
            1 => {
                let hit = usize::from(ranked[0] == truth[0]);
                let task = &mut per_task[Class::Degraded(truth[0]).index()];
                (singles, single, task.0, task.1) = (singles + 1, single + hit, task.0 + hit, task.1 + 1);
                let band = &mut by_strength[strength(example.input_psnr)];
                (band.0, band.1) = (band.0 + hit, band.1 + 1);
            }
            2 => {
                pair_count += 1;
                pairs += usize::from(truth.contains(&ranked[0]) && truth.contains(&ranked[1]));
            }
            _ => {}
        }
        let right = recognition.is_clean() == truth.is_empty();
        verdicts += usize::from(right);
        let kind = if truth.is_empty() { &mut clean_kept } else { &mut degraded_seen };
        (kind.0, kind.1) = (kind.0 + usize::from(right), kind.1 + 1);
    }
    Accuracy {
        single: (single, singles),
        clean_vs_degraded: (verdicts, examples.len()),
        clean_kept,
        degraded_seen,
        pairs: (pairs, pair_count),
        per_task,
        by_strength,
    }
}

/// Trains a recogniser on `training` photos, from `initial` (loaded from the config's
/// `init_weights`) or a seeded random start, and scores it on examples of `validation` photos;
/// `progress(step, loss)` is called every step.
pub fn train(
    config: &RecogniserConfig,
    initial: Option<&Recogniser>,
    training: &[RgbImage],
    validation: &[RgbImage],
    tasks: &BTreeMap<Task, Degradation>,
    device: &Device,
    mut progress: impl FnMut(usize, f64),
) -> (Recogniser, TrainingReport) {
    let autodiff = device.clone().autodiff();
    autodiff.seed(config.seed);
    let mut net = match initial {
        Some(recogniser) => recogniser.net().clone().fork(&autodiff),
        None => RecogniserNet::new(&autodiff),
    }
    .train();
    let mut optimizer = AdamWConfig::new().with_weight_decay(1e-4).init();
    let mut losses = Vec::with_capacity(config.steps);
    for step in 0..config.steps {
        let first = (step * config.batch_size) as u64;
        let batch: Vec<Example> =
            (first..first + config.batch_size as u64).into_par_iter().map(|index| example(training, tasks, config.seed, index)).collect();
        let views: Vec<Views> = batch.iter().map(|example| example.views.clone()).collect();
        let (global, local) = stack(&views, &autodiff);
        let labels: Vec<f32> = batch.iter().flat_map(|example| example.labels).collect();
        let labels = Tensor::<2>::from_data(TensorData::new(labels, [batch.len(), Class::ALL.len()]), &autodiff);
        let loss = binary_cross_entropy(net.forward(global, local), labels);
        let value = f64::from(loss.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optimizer.step(config.lr_at(step), net, grads);
        losses.push(value);
        progress(step + 1, value);
    }
    let recogniser = Recogniser::new(net.valid().fork(device), device);
    // Held-out examples: their own stream, on photos never trained on.
    let held_out: Vec<Example> = (0..config.validation_examples as u64)
        .into_par_iter()
        .map(|index| example(validation, tasks, config.seed ^ HELD_OUT_STREAM, index))
        .collect();
    let tenth = (losses.len() / 10).max(1);
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len().max(1) as f64;
    let report = TrainingReport {
        loss_first_and_last: (mean(&losses[..tenth.min(losses.len())]), mean(&losses[losses.len().saturating_sub(tenth)..])),
        accuracy: accuracy(&recogniser, &held_out),
        initial_accuracy: initial.map(|start| accuracy(start, &held_out)),
    };
    (recogniser, report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn samples() -> (Vec<RgbImage>, BTreeMap<Task, Degradation>) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let photos = ipt_data::spec::list_images(&root.join("datasets/samples/clean")).unwrap();
        let spec = ipt_data::DatasetSpec::load(&root.join("datasets/all-in-one.toml")).unwrap();
        (ipt_data::sampler::read_photos(&photos, 2).unwrap(), spec.tasks)
    }

    #[test]
    fn examples_are_reproducible_and_labelled_clean_or_with_one_or_two_degradations() {
        let (photos, tasks) = samples();
        let mut kinds = [0; 3];
        for index in 0..64 {
            let drawn = example(&photos, &tasks, 3, index);
            let again = example(&photos, &tasks, 3, index);
            assert_eq!((&drawn.views, drawn.labels), (&again.views, again.labels));
            let degradations = drawn.labels[..6].iter().filter(|&&label| label == 1.0).count();
            assert_eq!(drawn.labels[6] == 1.0, degradations == 0, "{:?}", drawn.labels);
            kinds[degradations] += 1;
        }
        assert!(kinds.iter().all(|&count| count > 0), "clean, single and pair examples all occur: {kinds:?}");
    }

    #[test]
    fn an_example_is_the_view_of_its_window() {
        let (photos, tasks) = samples();
        for index in 0..6 {
            let (window, example) = (example_window(&photos, &tasks, 3, index), example(&photos, &tasks, 3, index));
            assert_eq!(example.labels, window.labels);
            assert_eq!(example.input_psnr, window.input_psnr());
            assert_eq!(example.views, Views::of(&window.degraded.data, window.degraded.height, window.degraded.width));
            assert_eq!((window.clean.width, window.clean.height), (window.degraded.width, window.degraded.height));
        }
    }

    #[test]
    fn the_verdict_splits_into_clean_kept_and_degraded_seen() {
        let (photos, tasks) = samples();
        let examples: Vec<Example> = (0..40).map(|index| example(&photos, &tasks, 5, index)).collect();
        let clean = examples.iter().filter(|example| example.labels[Class::Clean.index()] == 1.0).count();
        assert!(clean > 0 && clean < examples.len(), "{clean} clean examples");
        let says_clean = Recognition { probabilities: [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0] };
        let accuracy = score(&examples, &vec![says_clean; examples.len()]);
        assert_eq!(accuracy.clean_kept, (clean, clean));
        assert_eq!(accuracy.degraded_seen, (0, examples.len() - clean));
        assert_eq!(accuracy.clean_vs_degraded, (clean, examples.len()));
        let says_hazy = Recognition { probabilities: [0.0, 0.0, 0.0, 0.3, 0.0, 0.0, 0.9] };
        let accuracy = score(&examples, &vec![says_hazy; examples.len()]);
        assert_eq!((accuracy.clean_kept.0, accuracy.degraded_seen.0), (0, examples.len() - clean));
    }

    #[test]
    fn strength_bands_cover_every_visible_psnr() {
        assert_eq!([5.0, 19.9, 20.0, 29.9, 30.0, 39.9].map(strength), [0, 0, 1, 1, 2, 2]);
        let (photos, tasks) = samples();
        let drawn: Vec<Example> = (0..32).map(|index| example(&photos, &tasks, 5, index)).collect();
        for example in &drawn {
            let clean = example.labels[Class::Clean.index()] == 1.0;
            assert!(clean || example.input_psnr < VISIBLE_BELOW_DB + 1e-9, "{:?}: {}", example.labels, example.input_psnr);
        }
    }

    #[test]
    fn only_visible_changes_count_as_degradations() {
        let before = Rgb::filled(8, 8, 0.5);
        let mut faint = before.clone();
        faint.data[0] += 0.01; // PSNR about 66 dB
        let mut strong = before.clone();
        strong.data.iter_mut().step_by(2).for_each(|value| *value += 0.1); // 23 dB
        assert!(!visible(&before, &faint) && visible(&before, &strong));
    }

    #[test]
    fn the_shipped_recogniser_configs_parse() {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/recogniser");
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let config: RecogniserConfig =
                toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            assert!(config.steps > 0 && config.batch_size > 0, "{}", path.display());
        }
    }

    #[test]
    fn a_short_training_lowers_the_loss() {
        let (photos, tasks) = samples();
        let config = RecogniserConfig { steps: 40, batch_size: 8, lr: 2e-3, seed: 1, validation_examples: 16, ..quick() };
        let (_, report) = train(&config, None, &photos, &photos, &tasks, &Device::flex(), |_, _| {});
        let (first, last) = report.loss_first_and_last;
        assert!(last < 0.8 * first, "loss {first} -> {last}");
        assert_eq!(report.accuracy.clean_vs_degraded.1, 16);
        assert_eq!(report.initial_accuracy, None);
    }

    fn quick() -> RecogniserConfig {
        RecogniserConfig { steps: 1, batch_size: 2, lr: 1e-3, min_lr: None, seed: 2, validation_examples: 8, init_weights: None }
    }

    #[test]
    fn training_from_weights_starts_from_them_and_scores_them_on_the_same_examples() {
        let (photos, tasks) = samples();
        let device = Device::flex();
        let start = Recogniser::bundled(&device).unwrap();
        // A zero learning rate keeps the weights: the result must score exactly as the start.
        let config = RecogniserConfig { lr: 0.0, ..quick() };
        let (kept, report) = train(&config, Some(&start), &photos, &photos, &tasks, &device, |_, _| {});
        assert_eq!(report.initial_accuracy, Some(report.accuracy));
        let views = Views::of(&vec![0.3; 3 * 40 * 50], 40, 50);
        assert_eq!(kept.recognise_views(std::slice::from_ref(&views)), start.recognise_views(&[views]));
    }

    #[test]
    fn the_learning_rate_warms_up_then_decays_to_its_floor_or_stays() {
        let constant = RecogniserConfig { steps: 100, lr: 1e-3, ..quick() };
        assert_eq!([0, 9, 10, 99].map(|step| constant.lr_at(step)), [1e-4, 1e-3, 1e-3, 1e-3]);
        let decaying = RecogniserConfig { min_lr: Some(1e-5), ..constant };
        assert_eq!(decaying.lr_at(10), 1e-3);
        assert!((decaying.lr_at(55) - (1e-5 + 1e-3) / 2.0).abs() < 1e-12);
        assert!((decaying.lr_at(100) - 1e-5).abs() < 1e-12 && decaying.lr_at(99) < decaying.lr_at(98));
    }
}
