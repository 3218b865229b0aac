//! [`Restorer`]: load weights once, restore many images.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use burn::tensor::{Device, Tensor, TensorData};
use image::DynamicImage;
use ipt_model::{
    IptModel, ModelError, Task, TaskWeights, TileRect, Tiling, WeightMetadata, load_weights, load_weights_from_bytes, restore_streamed,
    restore_tiled,
};

use crate::picture::sample_format;
use crate::{Error, Planar, Recogniser, Recognition, SampleFormat};

/// Tile side used unless the caller asks otherwise: bounds memory on 4K photos.
pub const DEFAULT_TILE: usize = 512;

/// How errors and `info` name the bundled default weights.
pub const BUNDLED_WEIGHTS: &str = "instruct-ipt-tiny.safetensors (bundled)";

/// The shipped default weights: the `tiny` preset trained on all six tasks (see
/// `crates/instruct-ipt/assets/MODEL_CARD.md`), compiled in so the library works anywhere.
static BUNDLED_BYTES: &[u8] = include_bytes!("../assets/instruct-ipt-tiny.safetensors");

/// A loaded model ready to restore images on one device.
///
/// For a model with task biases, restoring with a task uses the backbone with that task's bias
/// merged in (computed once per task and kept), so inference costs exactly the backbone's. A
/// model with feature conditioning (a peer's method) runs whole, with the task's weights.
#[derive(Debug)]
pub struct Restorer {
    model: IptModel,
    metadata: WeightMetadata,
    device: Device,
    tiling: Option<Tiling>,
    self_ensemble: bool,
    merged: Mutex<BTreeMap<Task, Arc<IptModel>>>,
}

impl Restorer {
    /// Loads the weight file at `path` onto `device`.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self, Error> {
        let (model, metadata) = load_weights(path.as_ref(), device)?;
        Ok(Self::from_model(model, metadata, device))
    }

    /// Loads the shipped default weights (see [`BUNDLED_WEIGHTS`]) onto `device`.
    pub fn bundled(device: &Device) -> Result<Self, Error> {
        let (model, metadata) = load_weights_from_bytes(BUNDLED_BYTES.to_vec(), Path::new(BUNDLED_WEIGHTS), device)?;
        Ok(Self::from_model(model, metadata, device))
    }

    /// Loads the weight file at `path`, or the bundled default weights when there is none.
    pub fn load_or_bundled(path: Option<&Path>, device: &Device) -> Result<Self, Error> {
        match path {
            Some(path) => Self::load(path, device),
            None => Self::bundled(device),
        }
    }

    /// Wraps an in-memory model (for example one just trained).
    pub fn from_model(model: IptModel, metadata: WeightMetadata, device: &Device) -> Self {
        Self {
            model,
            metadata,
            device: device.clone(),
            tiling: Some(Tiling::new(DEFAULT_TILE)),
            self_ensemble: false,
            merged: Mutex::new(BTreeMap::new()),
        }
    }

    /// Restores in tiles of `tile` pixels, or the whole image at once with `None`.
    pub fn with_tile(mut self, tile: Option<usize>) -> Self {
        self.tiling = tile.map(Tiling::new);
        self
    }

    /// With `on`, every tile is restored in its eight flips and transposes and the eight results,
    /// turned back, averaged (the self-ensemble of EDSR+ and its successors): eight times the
    /// time, for a small gain on every task.
    pub fn with_self_ensemble(mut self, on: bool) -> Self {
        self.self_ensemble = on;
        self
    }

    /// What the weight file says about itself.
    pub fn metadata(&self) -> &WeightMetadata {
        &self.metadata
    }

    /// The whole model (with its task biases, if any), for callers that work on tensors directly.
    pub fn model(&self) -> &IptModel {
        &self.model
    }

    /// Restores `image`, keeping its size, bit depth, alpha and grayscale-ness.
    ///
    /// `task` must be one the weights were trained for; `None` uses the general (shared) weights.
    /// The image is restored tile by tile into an output of its own format: besides the two
    /// images, memory holds only a band of floats about two tiles high (see [`restore_streamed`]).
    pub fn restore(&self, image: &DynamicImage, task: Option<Task>) -> Result<DynamicImage, Error> {
        self.restore_into(image, task, sample_format(image))
    }

    /// [`Restorer::restore`] with the output written in `samples`.
    fn restore_into(&self, image: &DynamicImage, task: Option<Task>, samples: SampleFormat) -> Result<DynamicImage, Error> {
        let (model, tasks) = self.network_for(task)?;
        Ok(self.run_image(image, samples, &model, tasks.as_ref()))
    }

    /// Restores `[3, height, width]` planar RGB samples in `[0, 1]` for `task`.
    pub fn restore_planar(&self, rgb: Vec<f32>, height: usize, width: usize, task: Option<Task>) -> Result<Vec<f32>, Error> {
        let (model, tasks) = self.network_for(task)?;
        Ok(self.run(rgb, height, width, &model, tasks.as_ref()))
    }

    /// The network that restores `task`, with the task weights it runs with: a model with
    /// feature conditioning runs whole with the task's one-hot weights, any other as the plain
    /// network of [`Restorer::model_for`].
    fn network_for(&self, task: Option<Task>) -> Result<(Arc<IptModel>, Option<TaskWeights>), Error> {
        if self.model.feature_conditioning().is_some() {
            let weights = task.map(|task| self.one_hot(task)).transpose()?;
            return Ok((Arc::new(self.model.clone()), weights));
        }
        Ok((self.model_for(task)?, None))
    }

    /// Task weights selecting `task` alone.
    fn one_hot(&self, task: Task) -> Result<TaskWeights, Error> {
        self.model.task_weights(&[task], &self.device).map_err(|error| self.task_error(error))
    }

    /// Runs `model` (whole or in tiles) on planar samples.
    fn run(&self, rgb: Vec<f32>, height: usize, width: usize, model: &IptModel, tasks: Option<&TaskWeights>) -> Vec<f32> {
        let input = Tensor::<4>::from_data(TensorData::new(rgb, [1, 3, height, width]), &self.device);
        let restore = |tile: Tensor<4>| self.pass(model, tile, tasks);
        let output = match self.tiling {
            Some(tiling) => restore_tiled(input, tiling, restore),
            None => restore(input),
        };
        output.into_data().try_into_vec().expect("the model outputs f32 samples")
    }

    /// `model` on one tile: as it is, or with the self-ensemble.
    fn pass(&self, model: &IptModel, tile: Tensor<4>, tasks: Option<&TaskWeights>) -> Tensor<4> {
        if !self.self_ensemble {
            return model.restore(tile, tasks);
        }
        // Flips along height (bit 0) and width (bit 1) commute and undo themselves.
        let flip = |x: Tensor<4>, flips: usize| {
            let x = if flips & 1 != 0 { x.flip([2]) } else { x };
            if flips & 2 != 0 { x.flip([3]) } else { x }
        };
        let transpose = |x: Tensor<4>, on: bool| if on { x.swap_dims(2, 3) } else { x };
        let views = [false, true].into_iter().flat_map(|transposed| (0..4).map(move |flips| (transposed, flips)));
        let restored = views.map(|(transposed, flips)| {
            let output = model.restore(flip(transpose(tile.clone(), transposed), flips), tasks);
            transpose(flip(output, flips), transposed)
        });
        restored.reduce(|sum, output| sum + output).expect("eight views").div_scalar(8.0)
    }

    /// Runs `model` on `image` tile by tile (or whole, without tiling), writing the restored
    /// rows into an image of `samples` as they are finished, with `image`'s alpha.
    fn run_image(&self, image: &DynamicImage, samples: SampleFormat, model: &IptModel, tasks: Option<&TaskWeights>) -> DynamicImage {
        let (width, height) = (image.width(), image.height());
        if width == 0 || height == 0 {
            return image.clone();
        }
        let tiling = self.tiling.unwrap_or(Tiling { tile: width.max(height) as usize, overlap: 0 });
        let read_tile = |rect: TileRect| Planar::from_image(&crop(image, rect.top, rect.left, rect.height, rect.width)).rgb;
        let mut output: Option<DynamicImage> = None;
        let write_rows = |first: usize, rgb: Vec<f32>| {
            let rows = rgb.len() / (3 * width as usize);
            // Only the source's alpha and layout are needed: its colours are the restored ones.
            let source = crop(image, first, 0, rows, width as usize);
            let alpha = source.color().has_alpha().then(|| source.to_rgba32f().pixels().map(|pixel| pixel.0[3]).collect());
            let grayscale = !source.color().has_color();
            let band = Planar { width: width as usize, height: rows, rgb, alpha, grayscale, samples }.to_image();
            let output = output.get_or_insert_with(|| DynamicImage::new(width, height, band.color()));
            paste_rows(output, &band, first);
        };
        let restore = |tile: Tensor<4>| self.pass(model, tile, tasks);
        restore_streamed([3, height as usize, width as usize], tiling, &self.device, read_tile, restore, write_rows);
        output.expect("restoration writes every row")
    }

    /// Restores `image` as a routed instruction asks: nothing given, the general weights; one
    /// task, that task; several, each task in turn, in [`application_order`]. Sequential
    /// application beat a soft 50/50 mix by 0.7-6 dB on doubly-degraded photos
    /// (`cargo xtask compound`), so compound requests run one task after the other.
    pub fn restore_requested(&self, image: &DynamicImage, tasks: &[(Task, f32)]) -> Result<DynamicImage, Error> {
        let order = application_order(tasks);
        let Some((last, first)) = order.split_last() else {
            return self.restore(image, None);
        };
        // Between tasks the image is kept in at least 16 bits, so only the output is rounded
        // to the source's depth.
        let between = match sample_format(image) {
            SampleFormat::F32 => SampleFormat::F32,
            SampleFormat::U8 | SampleFormat::U16 => SampleFormat::U16,
        };
        let mut current = Cow::Borrowed(image);
        for &task in first {
            current = Cow::Owned(self.restore_into(&current, Some(task), between)?);
        }
        self.restore_into(&current, Some(*last), sample_format(image))
    }

    /// Restores `image` without being told what is wrong: `recogniser` looks at it, and the
    /// degradations it sees that these weights were trained for are removed one after the
    /// other ([`Recognition::blind_tasks`], applied in [`application_order`]). A photo that
    /// looks clean is left as it is ([`BlindRestoration::image`] is `None`).
    pub fn restore_blind(&self, image: &DynamicImage, recogniser: &Recogniser) -> Result<BlindRestoration, Error> {
        let recognition = recogniser.recognise_image(image);
        let weights = self.blind_request(&recognition)?;
        let restored = if weights.is_empty() { None } else { Some(self.restore_requested(image, &weights)?) };
        Ok(BlindRestoration { tasks: application_order(&weights), recognition, image: restored })
    }

    /// The request blind restoration makes of `recognition`: its [`Recognition::blind_tasks`]
    /// that these weights were trained for, equally weighted; empty for a photo that looks
    /// clean. Fails when every degradation seen is one the weights cannot remove.
    pub fn blind_request(&self, recognition: &Recognition) -> Result<Vec<(Task, f32)>, Error> {
        let recognised = recognition.blind_tasks();
        let trained: Vec<Task> = recognised.iter().copied().filter(|task| self.metadata.tasks.contains(task)).collect();
        if let (Some(&task), true) = (recognised.first(), trained.is_empty()) {
            return Err(Error::TaskNotTrained { task, trained: self.metadata.tasks.clone() });
        }
        Ok(trained.iter().map(|&task| (task, 1.0 / trained.len() as f32)).collect())
    }

    /// [`Restorer::restore_requested`] on `[3, height, width]` planar RGB samples in `[0, 1]`.
    pub fn restore_planar_requested(
        &self,
        mut rgb: Vec<f32>,
        height: usize,
        width: usize,
        tasks: &[(Task, f32)],
    ) -> Result<Vec<f32>, Error> {
        if tasks.is_empty() {
            return self.restore_planar(rgb, height, width, None);
        }
        for task in application_order(tasks) {
            rgb = self.restore_planar(rgb, height, width, Some(task))?;
        }
        Ok(rgb)
    }

    /// Restores `image` with a soft mix of tasks (weights summing to 1, e.g. a compound
    /// instruction's), running the task conditioning on the fly. A single task, or a model
    /// without task conditioning, fall back to [`Restorer::restore`] with the heaviest task.
    pub fn restore_mixed(&self, image: &DynamicImage, weights: &[(Task, f32)]) -> Result<DynamicImage, Error> {
        match self.mixture(weights)? {
            Mixture::Soft(tasks) => Ok(self.run_image(image, sample_format(image), &self.model, Some(&tasks))),
            Mixture::Single(heaviest) => self.restore(image, heaviest),
        }
    }

    /// [`Restorer::restore_mixed`] on `[3, height, width]` planar RGB samples in `[0, 1]`.
    pub fn restore_planar_mixed(&self, rgb: Vec<f32>, height: usize, width: usize, weights: &[(Task, f32)]) -> Result<Vec<f32>, Error> {
        match self.mixture(weights)? {
            Mixture::Soft(tasks) => Ok(self.run(rgb, height, width, &self.model, Some(&tasks))),
            Mixture::Single(heaviest) => self.restore_planar(rgb, height, width, heaviest),
        }
    }

    /// How `weights` are restored: as a soft mix, or with the heaviest task alone when there is
    /// nothing to mix (a single task, or a model without task conditioning).
    fn mixture(&self, weights: &[(Task, f32)]) -> Result<Mixture, Error> {
        let heaviest = weights.iter().max_by(|a, b| a.1.total_cmp(&b.1)).map(|(task, _)| *task);
        let own = self.model.tasks();
        if own.is_empty() || weights.len() < 2 {
            return Ok(Mixture::Single(heaviest));
        }
        let mut row = vec![0f32; own.len()];
        for (task, weight) in weights {
            let index = own
                .iter()
                .position(|t| t == task)
                .ok_or_else(|| Error::TaskNotTrained { task: *task, trained: self.metadata.tasks.clone() })?;
            row[index] += weight;
        }
        Ok(Mixture::Soft(Box::new(TaskWeights::new(Tensor::<2>::from_data(TensorData::new(row, [1, own.len()]), &self.device)))))
    }

    /// A task the weights lack as [`Error::TaskNotTrained`] (naming the tasks they have); any
    /// other refusal as it is.
    fn task_error(&self, error: ModelError) -> Error {
        match error {
            ModelError::TaskNotConditioned { task, .. } => Error::TaskNotTrained { task, trained: self.metadata.tasks.clone() },
            other => Error::Model(other),
        }
    }

    /// The plain network that restores `task`: the backbone with the task's bias merged in, the
    /// general weights for `None`, or the backbone itself when the weights have no task biases.
    fn model_for(&self, task: Option<Task>) -> Result<Arc<IptModel>, Error> {
        let Some(task) = task else {
            // Without task weights the layers use their general weights only.
            return Ok(Arc::new(self.model.clone()));
        };
        let not_trained = || Error::TaskNotTrained { task, trained: self.metadata.tasks.clone() };
        if self.model.tasks().is_empty() {
            return if self.metadata.tasks.contains(&task) { Ok(Arc::new(self.model.clone())) } else { Err(not_trained()) };
        }
        let mut merged = self.merged.lock().expect("no panic while merging");
        if let Some(model) = merged.get(&task) {
            return Ok(model.clone());
        }
        let model = Arc::new(self.model.merge_task(task).map_err(|error| self.task_error(error))?);
        merged.insert(task, model.clone());
        Ok(model)
    }
}

/// What [`Restorer::restore_blind`] saw and did.
#[derive(Clone, Debug)]
pub struct BlindRestoration {
    /// What the recogniser saw.
    pub recognition: Recognition,
    /// The tasks restored, in the order they were applied; empty for a photo that looks clean.
    pub tasks: Vec<Task>,
    /// The restored image, or `None` when the photo looked clean and was left as it is.
    pub image: Option<DynamicImage>,
}

/// How a mix of tasks is restored.
enum Mixture {
    /// The task conditioning runs with these weights.
    Soft(Box<TaskWeights>),
    /// One task (or the general weights) restores alone.
    Single(Option<Task>),
}

/// The `height x width` part of `image` whose top-left pixel is at (`top`, `left`).
fn crop(image: &DynamicImage, top: usize, left: usize, height: usize, width: usize) -> DynamicImage {
    image.crop_imm(left as u32, top as u32, width as u32, height as u32)
}

/// Copies the rows of `band` into `output` from row `first` on; both have the same format and
/// width.
fn paste_rows(output: &mut DynamicImage, band: &DynamicImage, first: usize) {
    fn paste<T: Copy>(output: &mut [T], band: &[T], offset: usize) {
        output[offset..offset + band.len()].copy_from_slice(band);
    }
    let offset = first * output.width() as usize * usize::from(output.color().channel_count());
    match (output, band) {
        (DynamicImage::ImageLuma8(output), DynamicImage::ImageLuma8(band)) => paste(output, band, offset),
        (DynamicImage::ImageLumaA8(output), DynamicImage::ImageLumaA8(band)) => paste(output, band, offset),
        (DynamicImage::ImageRgb8(output), DynamicImage::ImageRgb8(band)) => paste(output, band, offset),
        (DynamicImage::ImageRgba8(output), DynamicImage::ImageRgba8(band)) => paste(output, band, offset),
        (DynamicImage::ImageLuma16(output), DynamicImage::ImageLuma16(band)) => paste(output, band, offset),
        (DynamicImage::ImageLumaA16(output), DynamicImage::ImageLumaA16(band)) => paste(output, band, offset),
        (DynamicImage::ImageRgb16(output), DynamicImage::ImageRgb16(band)) => paste(output, band, offset),
        (DynamicImage::ImageRgba16(output), DynamicImage::ImageRgba16(band)) => paste(output, band, offset),
        (DynamicImage::ImageRgb32F(output), DynamicImage::ImageRgb32F(band)) => paste(output, band, offset),
        (DynamicImage::ImageRgba32F(output), DynamicImage::ImageRgba32F(band)) => paste(output, band, offset),
        (output, band) => unreachable!("bands of {:?} pasted into {:?}", band.color(), output.color()),
    }
}

/// The order in which several requested tasks are applied: degradations that sit on top of the
/// scene (noise, rain, snow, blur) before those that change it as a whole (haze, darkness).
/// Undoing the top layer first scored 0.0-0.2 dB better on `cargo xtask compound`'s pairs.
pub fn application_order(tasks: &[(Task, f32)]) -> Vec<Task> {
    const ORDER: [Task; 6] = [Task::Denoise, Task::Derain, Task::Desnow, Task::Deblur, Task::Dehaze, Task::LowLight];
    ORDER.into_iter().filter(|task| tasks.iter().any(|(requested, _)| requested == task)).collect()
}

/// A request in words: "derain (100%)", or for a compound request the tasks in the order they
/// are applied ("denoise then dehaze, one after the other").
pub fn describe_request(tasks: &[(Task, f32)]) -> String {
    match tasks {
        [(task, weight)] => format!("{task} ({:.0}%)", 100.0 * weight),
        _ => {
            let order: Vec<&str> = application_order(tasks).iter().map(|task| task.name()).collect();
            format!("{}, one after the other", order.join(" then "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipt_model::{FeatureConditioning, FeatureMethod, IptConfig, Preset};

    #[test]
    fn requests_are_described_in_the_order_they_are_applied() {
        assert_eq!(describe_request(&[(Task::Derain, 0.97)]), "derain (97%)");
        assert_eq!(describe_request(&[(Task::Dehaze, 0.5), (Task::Denoise, 0.5)]), "denoise then dehaze, one after the other");
    }

    /// `[3, height, width]` planar samples mirrored left to right.
    fn mirrored(rgb: &[f32], height: usize, width: usize) -> Vec<f32> {
        (0..3 * height * width).map(|index| rgb[index - index % width + width - 1 - index % width]).collect()
    }

    /// `[3, height, width]` planar samples transposed to `[3, width, height]`.
    fn transposed(rgb: &[f32], height: usize, width: usize) -> Vec<f32> {
        let plane = height * width;
        (0..3 * plane)
            .map(|index| (index / plane, index % plane))
            .map(|(c, at)| rgb[c * plane + (at % height) * width + at / height])
            .collect()
    }

    fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
    }

    /// Averaged over the eight flips and transposes, restoration commutes with them exactly
    /// (the average runs over a group), which the bundled model alone does not.
    #[test]
    fn the_self_ensemble_commutes_with_flips_and_transposes() {
        let device = Device::flex();
        let (height, width) = (20, 28);
        let rgb: Vec<f32> = (0..3 * height * width).map(|index| ((index * 7919) % 97) as f32 / 97.0).collect();
        let plain = Restorer::bundled(&device).unwrap().with_tile(None);
        let restore = |restorer: &Restorer, rgb: &[f32], height, width| {
            restorer.restore_planar(rgb.to_vec(), height, width, Some(Task::Denoise)).unwrap()
        };
        let before = mirrored(&restore(&plain, &rgb, height, width), height, width);
        let after = restore(&plain, &mirrored(&rgb, height, width), height, width);
        assert!(largest_difference(&before, &after) > 1e-3, "the plain model is not exactly equivariant");

        let ensemble = Restorer::bundled(&device).unwrap().with_tile(None).with_self_ensemble(true);
        let restored = restore(&ensemble, &rgb, height, width);
        let mirrored_input = restore(&ensemble, &mirrored(&rgb, height, width), height, width);
        assert!(largest_difference(&mirrored(&restored, height, width), &mirrored_input) < 1e-5);
        let transposed_input = restore(&ensemble, &transposed(&rgb, height, width), width, height);
        assert!(largest_difference(&transposed(&restored, height, width), &transposed_input) < 1e-5);
        assert!(largest_difference(&restored, &restore(&plain, &rgb, height, width)) > 1e-4, "the ensemble differs from one pass");
    }

    #[test]
    fn a_feature_conditioned_model_restores_with_its_task_and_refuses_others() {
        let device = Device::flex();
        let config = IptConfig { width: 8, heads: [1, 1, 2, 2], window_size: 2, grid_size: 2, ..Preset::Tiny.config() };
        let tasks = vec![Task::Denoise, Task::Derain];
        let conditioning = FeatureConditioning { tasks: tasks.clone(), method: FeatureMethod::WeightReplacement };
        let model = config.init_conditioned(&conditioning, &device);
        let restorer = Restorer::from_model(model, WeightMetadata::new(config, tasks), &device).with_tile(None);
        let rgb: Vec<f32> = (0..3 * 20 * 24).map(|index| (index % 17) as f32 / 17.0).collect();
        // Without a task no per-task output layer speaks: the image passes unchanged.
        let general = restorer.restore_planar(rgb.clone(), 20, 24, None).unwrap();
        assert!(general.iter().zip(&rgb).all(|(a, b)| (a - b).abs() < 1e-6));
        let denoised = restorer.restore_planar(rgb.clone(), 20, 24, Some(Task::Denoise)).unwrap();
        assert!(denoised.iter().zip(&rgb).any(|(a, b)| (a - b).abs() > 1e-4));
        let refused = restorer.restore_planar(rgb, 20, 24, Some(Task::Dehaze)).unwrap_err();
        assert!(matches!(refused, Error::TaskNotTrained { task: Task::Dehaze, .. }), "{refused}");
    }

    #[test]
    fn top_layer_degradations_are_undone_before_global_ones_whatever_the_request_order() {
        let requested = [(Task::LowLight, 0.6), (Task::Denoise, 0.4)];
        assert_eq!(application_order(&requested), [Task::Denoise, Task::LowLight]);
        assert_eq!(application_order(&[(Task::Dehaze, 0.5), (Task::Desnow, 0.5)]), [Task::Desnow, Task::Dehaze]);
        assert_eq!(application_order(&[(Task::Deblur, 1.0)]), [Task::Deblur]);
        assert!(application_order(&[]).is_empty());
    }
}
