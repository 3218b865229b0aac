//! [`Restorer`]: load weights once, restore many images.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use burn::tensor::{Device, Tensor, TensorData};
use image::DynamicImage;
use ipt_model::{IptModel, ModelError, Task, TaskWeights, Tiling, WeightMetadata, load_weights, load_weights_from_bytes, restore_tiled};

use crate::{Error, Planar};

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
        Self { model, metadata, device: device.clone(), tiling: Some(Tiling::new(DEFAULT_TILE)), merged: Mutex::new(BTreeMap::new()) }
    }

    /// Restores in tiles of `tile` pixels, or the whole image at once with `None`.
    pub fn with_tile(mut self, tile: Option<usize>) -> Self {
        self.tiling = tile.map(Tiling::new);
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
    pub fn restore(&self, image: &DynamicImage, task: Option<Task>) -> Result<DynamicImage, Error> {
        let mut planar = Planar::from_image(image);
        planar.rgb = self.restore_planar(planar.rgb, planar.height, planar.width, task)?;
        Ok(planar.to_image())
    }

    /// Restores `[3, height, width]` planar RGB samples in `[0, 1]` for `task`.
    pub fn restore_planar(&self, rgb: Vec<f32>, height: usize, width: usize, task: Option<Task>) -> Result<Vec<f32>, Error> {
        if self.model.feature_conditioning().is_some() {
            let weights = task.map(|task| self.one_hot(task)).transpose()?;
            return Ok(self.run(rgb, height, width, &self.model, weights.as_ref()));
        }
        let model = self.model_for(task)?;
        Ok(self.run(rgb, height, width, &model, None))
    }

    /// Task weights selecting `task` alone.
    fn one_hot(&self, task: Task) -> Result<TaskWeights, Error> {
        self.model.task_weights(&[task], &self.device).map_err(|error| self.task_error(error))
    }

    /// Runs `model` (whole or in tiles) on planar samples.
    fn run(&self, rgb: Vec<f32>, height: usize, width: usize, model: &IptModel, tasks: Option<&TaskWeights>) -> Vec<f32> {
        let input = Tensor::<4>::from_data(TensorData::new(rgb, [1, 3, height, width]), &self.device);
        let restore = |tile: Tensor<4>| model.restore(tile, tasks);
        let output = match self.tiling {
            Some(tiling) => restore_tiled(input, tiling, restore),
            None => restore(input),
        };
        output.into_data().try_into_vec().expect("the model outputs f32 samples")
    }

    /// Restores `image` as a routed instruction asks: nothing given, the general weights; one
    /// task, that task; several, each task in turn, in [`application_order`]. Sequential
    /// application beat a soft 50/50 mix by 0.7-6 dB on doubly-degraded photos
    /// (`cargo xtask compound`), so compound requests run one task after the other.
    pub fn restore_requested(&self, image: &DynamicImage, tasks: &[(Task, f32)]) -> Result<DynamicImage, Error> {
        let mut planar = Planar::from_image(image);
        planar.rgb = self.restore_planar_requested(std::mem::take(&mut planar.rgb), planar.height, planar.width, tasks)?;
        Ok(planar.to_image())
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
        let mut planar = Planar::from_image(image);
        planar.rgb = self.restore_planar_mixed(std::mem::take(&mut planar.rgb), planar.height, planar.width, weights)?;
        Ok(planar.to_image())
    }

    /// [`Restorer::restore_mixed`] on `[3, height, width]` planar RGB samples in `[0, 1]`.
    pub fn restore_planar_mixed(&self, rgb: Vec<f32>, height: usize, width: usize, weights: &[(Task, f32)]) -> Result<Vec<f32>, Error> {
        let heaviest = weights.iter().max_by(|a, b| a.1.total_cmp(&b.1)).map(|(task, _)| *task);
        let own = self.model.tasks();
        if own.is_empty() || weights.len() < 2 {
            return self.restore_planar(rgb, height, width, heaviest);
        }
        let mut row = vec![0f32; own.len()];
        for (task, weight) in weights {
            let index = own
                .iter()
                .position(|t| t == task)
                .ok_or_else(|| Error::TaskNotTrained { task: *task, trained: self.metadata.tasks.clone() })?;
            row[index] += weight;
        }
        let tasks = TaskWeights::new(Tensor::<2>::from_data(TensorData::new(row, [1, own.len()]), &self.device));
        Ok(self.run(rgb, height, width, &self.model, Some(&tasks)))
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

/// The order in which several requested tasks are applied: degradations that sit on top of the
/// scene (noise, rain, snow, blur) before those that change it as a whole (haze, darkness).
/// Undoing the top layer first scored 0.0-0.2 dB better on `cargo xtask compound`'s pairs.
pub fn application_order(tasks: &[(Task, f32)]) -> Vec<Task> {
    const ORDER: [Task; 6] = [Task::Denoise, Task::Derain, Task::Desnow, Task::Deblur, Task::Dehaze, Task::LowLight];
    ORDER.into_iter().filter(|task| tasks.iter().any(|(requested, _)| requested == task)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipt_model::{FeatureConditioning, FeatureMethod, IptConfig, Preset};

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
