//! [`Restorer`]: load weights once, restore many images.

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use image::DynamicImage;
use ipt_model::{IptModel, Task, Tiling, WeightMetadata, load_weights, restore_tiled};

use crate::{Error, Planar};

/// Tile side used unless the caller asks otherwise: bounds memory on 4K photos.
pub const DEFAULT_TILE: usize = 512;

/// A loaded model ready to restore images on one device.
#[derive(Debug)]
pub struct Restorer {
    model: IptModel,
    metadata: WeightMetadata,
    device: Device,
    tiling: Option<Tiling>,
}

impl Restorer {
    /// Loads the weight file at `path` onto `device`.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self, Error> {
        let (model, metadata) = load_weights(path.as_ref(), device)?;
        Ok(Self::from_model(model, metadata, device))
    }

    /// Wraps an in-memory model (for example one just trained).
    pub fn from_model(model: IptModel, metadata: WeightMetadata, device: &Device) -> Self {
        Self { model, metadata, device: device.clone(), tiling: Some(Tiling::new(DEFAULT_TILE)) }
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

    /// The backbone, for callers that work on tensors directly.
    pub fn model(&self) -> &IptModel {
        &self.model
    }

    /// Restores `image`, keeping its size, bit depth, alpha and grayscale-ness.
    ///
    /// `task` must be one the weights were trained for; `None` lets the model decide.
    pub fn restore(&self, image: &DynamicImage, task: Option<Task>) -> Result<DynamicImage, Error> {
        if let Some(task) = task {
            if !self.metadata.tasks.contains(&task) {
                return Err(Error::TaskNotTrained { task, trained: self.metadata.tasks.clone() });
            }
        }
        let mut planar = Planar::from_image(image);
        planar.rgb = self.restore_planar(planar.rgb, planar.height, planar.width);
        Ok(planar.to_image())
    }

    /// Restores `[3, height, width]` planar RGB samples in `[0, 1]`.
    pub fn restore_planar(&self, rgb: Vec<f32>, height: usize, width: usize) -> Vec<f32> {
        let input = Tensor::<4>::from_data(TensorData::new(rgb, [1, 3, height, width]), &self.device);
        let restore = |tile: Tensor<4>| self.model.restore(tile);
        let output = match self.tiling {
            Some(tiling) => restore_tiled(input, tiling, restore),
            None => restore(input),
        };
        output.into_data().try_into_vec().expect("the model outputs f32 samples")
    }
}
