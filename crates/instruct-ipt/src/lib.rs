//! Instruct-IPT for Rust: all-in-one image restoration (denoise, deblur, derain, dehaze, desnow,
//! low-light) with one IPT-V2-style transformer.
//!
//! This crate is the inference facade other crates depend on. It enables no Burn backend:
//! the caller picks one with a `burn` feature (`flex` for CPU, `wgpu`/`vulkan`, `cuda`, `tch`)
//! and passes its [`Device`].
//!
//! ```
//! use instruct_ipt::{Device, Preset, Restorer, Task, WeightMetadata, save_weights};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = Device::flex();
//! # let folder = tempfile::tempdir()?;
//! # let weights = folder.path().join("tiny.safetensors");
//! # let config = Preset::Tiny.config();
//! # save_weights(&config.init(&device), &WeightMetadata::new(config, vec![Task::Denoise]), &weights)?;
//! let restorer = Restorer::load(&weights, &device)?;
//! let noisy = image::DynamicImage::new_rgb8(40, 30);
//! let clean = restorer.restore(&noisy, Some(Task::Denoise))?;
//! assert_eq!((clean.width(), clean.height()), (40, 30));
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "mimalloc")]
pub mod allocator;
pub mod backend;
mod error;
mod picture;
mod restorer;

pub use burn::tensor::Device;
pub use error::Error;
pub use image;
pub use ipt_model::{
    FeatureConditioning, FeatureMethod, IptConfig, IptModel, LayerGroup, ModulationConfig, ParameterReport, Preset, RankPolicy, Task,
    Tiling, WeightContent, WeightError, WeightMetadata, config_hash, load_task_biases, option_costs, read_metadata, save_backbone,
    save_task_biases, save_weights,
};
pub use ipt_recognise::{BUNDLED_RECOGNISER, Class, Doubt, RecogniseError, Recogniser, Recognition};
pub use ipt_text::{Decision, Intent, Router, Routing};
pub use picture::{DEFAULT_MAX_MEGAPIXELS, Planar, SampleFormat, decode_image_within, read_image, read_image_within, write_image};
pub use restorer::{BUNDLED_WEIGHTS, BlindRestoration, DEFAULT_TILE, Restorer, application_order, describe_request};
