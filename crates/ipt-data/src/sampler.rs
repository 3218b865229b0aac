//! The training sampler: random patches of clean photos, degraded on the fly, flipped and
//! rotated, in task-balanced batches, produced by worker threads while the model trains.
//!
//! Batch `i` is a pure function of the seed and `i` (workers may finish out of order; the
//! stream hands batches over in order), so a resumed run sees exactly the batches an
//! uninterrupted run would have seen.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};

use image::RgbImage;
use ipt_core::Task;
use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::degrade::Context;
use crate::error::{DataError, Result, io_error};
use crate::random::{label, rng_for, task_label};
use crate::rgb::reflect;
use crate::spec::file_name;
use crate::{Degradation, DegradationParams, Rgb};

/// Stream labels that keep the sampler's random choices independent of each other.
const TASK_ORDER_STREAM: u64 = 1;
const SAMPLE_STREAM: u64 = 2;
const TASK_SHARE_STREAM: u64 = 3;

/// Patch and batch settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SamplerConfig {
    /// Side of the square training patches.
    pub patch_size: usize,
    /// Patches per batch.
    pub batch_size: usize,
    /// Random flips and 90-degree rotations (the 8 symmetries of the square).
    pub augment: bool,
    /// Worker threads producing batches.
    pub workers: usize,
    /// Finished batches kept ready ahead of the trainer.
    pub prefetch: usize,
    /// Seed of every choice.
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self { patch_size: 64, batch_size: 8, augment: true, workers: 1, prefetch: 4, seed: 0 }
    }
}

/// A batch of degraded/clean patch pairs in `[batch, 3, patch, patch]` layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Position of the batch in the stream.
    pub index: u64,
    /// Side of each patch.
    pub patch_size: usize,
    /// Degraded patches, `[batch, 3, patch, patch]`.
    pub degraded: Vec<f32>,
    /// Clean patches, same layout.
    pub clean: Vec<f32>,
    /// The task of each patch.
    pub tasks: Vec<Task>,
}

/// One degraded/clean pair.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The task whose degradation was applied.
    pub task: Task,
    /// The degraded image.
    pub degraded: Rgb,
    /// The clean image.
    pub clean: Rgb,
}

/// Clean photos in memory (8-bit) plus the degradation per task.
#[derive(Debug)]
pub struct PatchSampler {
    photos: Vec<RgbImage>,
    tasks: Vec<(Task, Degradation)>,
    config: SamplerConfig,
    /// Cumulative shares of `tasks` (last = 1) when tasks are drawn by weight, not balanced.
    cumulative_shares: Option<Vec<f64>>,
}

impl PatchSampler {
    /// A sampler over decoded photos and a non-empty task map.
    pub fn new(photos: Vec<RgbImage>, tasks: &BTreeMap<Task, Degradation>, config: SamplerConfig) -> Result<Self> {
        let invalid = |message: &str| Err(DataError::Invalid { what: "sampler".into(), message: message.into() });
        if photos.is_empty() {
            return invalid("no photos");
        }
        if tasks.is_empty() {
            return invalid("no tasks");
        }
        if config.patch_size == 0 || config.batch_size == 0 || config.workers == 0 {
            return invalid("patch_size, batch_size and workers must be positive");
        }
        Ok(Self {
            photos,
            tasks: tasks.iter().map(|(task, degradation)| (*task, degradation.clone())).collect(),
            config,
            cumulative_shares: None,
        })
    }

    /// The same sampler drawing each sample's task independently with probability
    /// proportional to `shares` (one positive, finite weight per task of the sampler) instead
    /// of in balanced runs; e.g. to favour tasks that lag behind.
    pub fn with_task_shares(mut self, shares: &BTreeMap<Task, f64>) -> Result<Self> {
        let invalid = |message: String| DataError::Invalid { what: "sampler".into(), message };
        let mut cumulative = Vec::with_capacity(self.tasks.len());
        let mut total = 0.0;
        for (task, _) in &self.tasks {
            let share = shares.get(task).copied().ok_or_else(|| invalid(format!("no task share for '{task}'")))?;
            if !(share.is_finite() && share > 0.0) {
                return Err(invalid(format!("the share of '{task}' must be positive and finite, got {share}")));
            }
            total += share;
            cumulative.push(total);
        }
        if let Some(extra) = shares.keys().find(|task| !self.tasks.iter().any(|(listed, _)| listed == *task)) {
            return Err(invalid(format!("a share is given for '{extra}', which the sampler does not sample")));
        }
        cumulative.iter_mut().for_each(|value| *value /= total);
        self.cumulative_shares = Some(cumulative);
        Ok(self)
    }

    /// Decodes `paths` on `threads` threads, then builds the sampler.
    pub fn load(paths: &[PathBuf], tasks: &BTreeMap<Task, Degradation>, config: SamplerConfig) -> Result<Self> {
        let photos = read_photos(paths, config.workers.max(2))?;
        Self::new(photos, tasks, config)
    }

    /// The settings.
    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// Number of photos.
    pub fn photo_count(&self) -> usize {
        self.photos.len()
    }

    /// The task of global sample `index`: every run of `tasks` consecutive samples holds each
    /// task once, in a seeded random order (task-balanced mixing), unless task shares are set
    /// ([`Self::with_task_shares`]): then a seeded draw by share.
    pub fn task_of(&self, index: u64) -> Task {
        if let Some(cumulative) = &self.cumulative_shares {
            let draw: f64 = rng_for(self.config.seed, &[TASK_SHARE_STREAM, index]).random();
            let slot = cumulative.iter().position(|&bound| draw < bound).unwrap_or(cumulative.len() - 1);
            return self.tasks[slot].0;
        }
        let count = self.tasks.len() as u64;
        let mut order: Vec<usize> = (0..self.tasks.len()).collect();
        let mut rng = rng_for(self.config.seed, &[TASK_ORDER_STREAM, index / count]);
        for slot in (1..order.len()).rev() {
            order.swap(slot, rng.random_range(0..=slot));
        }
        self.tasks[order[(index % count) as usize]].0
    }

    /// Global sample `index`: a random photo, window and degradation of its task, augmented.
    pub fn sample(&self, index: u64) -> Sample {
        let task = self.task_of(index);
        let degradation = &self.tasks.iter().find(|(t, _)| *t == task).expect("task_of returns a listed task").1;
        let mut rng = rng_for(self.config.seed, &[SAMPLE_STREAM, index]);
        let photo = &self.photos[rng.random_range(0..self.photos.len())];
        let params = degradation.sample(&mut rng);
        let size = self.config.patch_size;
        let left = rng.random_range(0..=photo.width().saturating_sub(size as u32) as usize);
        let top = rng.random_range(0..=photo.height().saturating_sub(size as u32) as usize);
        let (degraded, clean) = degrade_window(photo, left, top, size, &params);
        if self.config.augment {
            let symmetry = rng.random_range(0..8u8);
            Sample { task, degraded: transform(&degraded, symmetry), clean: transform(&clean, symmetry) }
        } else {
            Sample { task, degraded, clean }
        }
    }

    /// Batch `index`: samples `index * batch_size ..` stacked.
    pub fn batch(&self, index: u64) -> Batch {
        let (size, count) = (self.config.patch_size, self.config.batch_size);
        let mut batch = Batch {
            index,
            patch_size: size,
            degraded: Vec::with_capacity(count * 3 * size * size),
            clean: Vec::with_capacity(count * 3 * size * size),
            tasks: Vec::with_capacity(count),
        };
        for offset in 0..count as u64 {
            let sample = self.sample(index * count as u64 + offset);
            batch.degraded.extend_from_slice(&sample.degraded.data);
            batch.clean.extend_from_slice(&sample.clean.data);
            batch.tasks.push(sample.task);
        }
        batch
    }

    /// Batches `start, start + 1, ..` produced by `workers` background threads, in order.
    pub fn stream(self: Arc<Self>, start: u64) -> BatchStream {
        let next = Arc::new(AtomicU64::new(start));
        let (sender, receiver) = sync_channel(self.config.prefetch.max(1));
        for _ in 0..self.config.workers {
            let (sampler, next, sender) = (Arc::clone(&self), Arc::clone(&next), sender.clone());
            std::thread::spawn(move || {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if sender.send(sampler.batch(index)).is_err() {
                        break;
                    }
                }
            });
        }
        BatchStream { receiver, expected: start, early: BTreeMap::new() }
    }
}

/// Batches from the worker threads, handed over in index order; dropping it stops the workers.
pub struct BatchStream {
    receiver: Receiver<Batch>,
    expected: u64,
    early: BTreeMap<u64, Batch>,
}

impl Iterator for BatchStream {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let batch = loop {
            if let Some(batch) = self.early.remove(&self.expected) {
                break batch;
            }
            let batch = self.receiver.recv().ok()?;
            self.early.insert(batch.index, batch);
        };
        self.expected += 1;
        Some(batch)
    }
}

/// Degrades a `size`-pixel window at `(left, top)` with the context its degradation reads
/// around it (mirrored beyond the photo), and returns the (degraded, clean) window.
pub fn degrade_window(photo: &RgbImage, left: usize, top: usize, size: usize, params: &DegradationParams) -> (Rgb, Rgb) {
    let (context, x, y) = match params.context() {
        Context::Margin(margin) => {
            let side = size + 2 * margin;
            (crop_u8(photo, left as isize - margin as isize, top as isize - margin as isize, side, side), margin as isize, margin as isize)
        }
        Context::WholeImage => (crop_u8(photo, 0, 0, photo.width() as usize, photo.height() as usize), left as isize, top as isize),
    };
    let degraded = params.apply(&context);
    (degraded.crop_reflect(x, y, size, size), context.crop_reflect(x, y, size, size))
}

/// A `width x height` window of an 8-bit photo as planar floats, mirrored beyond the border.
fn crop_u8(photo: &RgbImage, left: isize, top: isize, width: usize, height: usize) -> Rgb {
    let (photo_width, photo_height) = (photo.width() as usize, photo.height() as usize);
    let raw = photo.as_raw();
    let mut out = Rgb::zeros(width, height);
    let pixels = width * height;
    let columns: Vec<usize> = (0..width).map(|x| reflect(left + x as isize, photo_width)).collect();
    for y in 0..height {
        let row = reflect(top + y as isize, photo_height) * photo_width;
        for (x, &column) in columns.iter().enumerate() {
            let source = 3 * (row + column);
            for channel in 0..3 {
                out.data[channel * pixels + y * width + x] = f32::from(raw[source + channel]) / 255.0;
            }
        }
    }
    out
}

/// One of the 8 symmetries of the square: bit 0 flips horizontally, bit 1 vertically, bit 2
/// transposes.
fn transform(image: &Rgb, symmetry: u8) -> Rgb {
    let size = image.width;
    debug_assert_eq!(image.width, image.height, "patches are square");
    let mut out = Rgb::zeros(size, size);
    let pixels = size * size;
    for channel in 0..3 {
        for y in 0..size {
            for x in 0..size {
                let (mut sx, mut sy) = if symmetry & 4 != 0 { (y, x) } else { (x, y) };
                if symmetry & 1 != 0 {
                    sx = size - 1 - sx;
                }
                if symmetry & 2 != 0 {
                    sy = size - 1 - sy;
                }
                out.data[channel * pixels + y * size + x] = image.data[channel * pixels + sy * size + sx];
            }
        }
    }
    out
}

/// Decodes photos to 8-bit RGB on `threads` threads; an error names the file.
pub fn read_photos(paths: &[PathBuf], threads: usize) -> Result<Vec<RgbImage>> {
    let chunk = paths.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = paths
            .chunks(chunk)
            .map(|chunk| scope.spawn(move || chunk.iter().map(|path| read_rgb8(path)).collect::<Result<Vec<_>>>()))
            .collect();
        let mut photos = Vec::with_capacity(paths.len());
        for handle in handles {
            photos.extend(handle.join().expect("photo decoding threads do not panic")?);
        }
        Ok(photos)
    })
}

fn read_rgb8(path: &Path) -> Result<RgbImage> {
    let reader = image::ImageReader::open(path).map_err(io_error(path))?.with_guessed_format().map_err(io_error(path))?;
    Ok(reader.decode().map_err(|source| DataError::Image { path: path.into(), source })?.to_rgb8())
}

/// The validation set: a centre crop of each held-out photo, degraded once per task with
/// parameters seeded by the photo's name, so every validation pass scores identical inputs.
pub fn validation_samples(photos: &[PathBuf], tasks: &BTreeMap<Task, Degradation>, crop: usize, seed: u64) -> Result<Vec<Sample>> {
    let decoded = read_photos(photos, 2)?;
    let mut samples = Vec::with_capacity(photos.len() * tasks.len());
    for (path, photo) in photos.iter().zip(&decoded) {
        let name = label(&file_name(path));
        for (task, degradation) in tasks {
            let params = degradation.sample(&mut rng_for(seed, &[task_label(*task), name]));
            let left = (photo.width() as usize).saturating_sub(crop) / 2;
            let top = (photo.height() as usize).saturating_sub(crop) / 2;
            let (degraded, clean) = degrade_window(photo, left, top, crop, &params);
            samples.push(Sample { task: *task, degraded, clean });
        }
    }
    Ok(samples)
}

#[cfg(test)]
mod tests;
