//! The six degradation synthesizers. A [`Degradation`] holds parameter ranges (what a dataset
//! spec says); [`Degradation::sample`] draws a [`DegradationParams`], which fully determines the
//! degraded image (its random parts carry their own seed), so a manifest of parameters
//! reproduces an evaluation set exactly.
//!
//! A task's degradation may be a [`Mixture`] of several families (say trajectory, linear,
//! defocus and Gaussian blur), one drawn per patch, so that a model learns the task rather
//! than one synthesizer's look.

pub mod blur;
pub mod camera_noise;
pub mod haze;
pub mod kernel_blur;
pub mod low_light;
mod mixture;
pub mod noise;
pub mod rain;
pub mod snow;

use ipt_core::Task;
use serde::{Deserialize, Serialize};

use crate::{DataRng, Result, Rgb};
use blur::{MotionBlurParams, MotionBlurSpec};
use camera_noise::{
    CorrelatedNoiseParams, CorrelatedNoiseSpec, JpegNoiseParams, JpegNoiseSpec, PoissonGaussianParams, PoissonGaussianSpec,
};
use haze::{HazeParams, HazeSpec};
use kernel_blur::{DefocusParams, DefocusSpec, GaussianBlurParams, GaussianBlurSpec, LinearMotionParams, LinearMotionSpec};
use low_light::{LowLightParams, LowLightSpec};
pub use mixture::{Family, Mixture};
use noise::{GaussianNoiseParams, GaussianNoiseSpec};
use rain::{RainParams, RainSpec};
use snow::{SnowParams, SnowSpec};

/// A degradation with parameter ranges, as written in a dataset spec (`kind = ".."`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Degradation {
    /// Additive Gaussian noise (denoising).
    GaussianNoise(GaussianNoiseSpec),
    /// Camera-motion blur plus mild defocus (deblurring).
    MotionBlur(MotionBlurSpec),
    /// Rain streaks (deraining).
    Rain(RainSpec),
    /// Atmospheric haze (dehazing).
    Haze(HazeSpec),
    /// Snowflakes (desnowing).
    Snow(SnowSpec),
    /// Under-exposure with sensor noise (low-light enhancement).
    LowLight(LowLightSpec),
    /// Shot plus read noise (denoising).
    PoissonGaussianNoise(PoissonGaussianSpec),
    /// Spatially and cross-channel correlated noise, as after a camera's processing (denoising).
    CorrelatedNoise(CorrelatedNoiseSpec),
    /// Gaussian noise, then JPEG compression (denoising).
    JpegNoise(JpegNoiseSpec),
    /// Straight uniform motion (deblurring).
    LinearMotionBlur(LinearMotionSpec),
    /// An out-of-focus disk (deblurring).
    DefocusBlur(DefocusSpec),
    /// An anisotropic Gaussian (deblurring).
    GaussianBlur(GaussianBlurSpec),
    /// One of several degradations of the same task, drawn by weight per patch.
    Mixture(Mixture),
}

/// One concrete degradation: a pure function from a clean image to a degraded one.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DegradationParams {
    /// See [`GaussianNoiseParams`].
    GaussianNoise(GaussianNoiseParams),
    /// See [`MotionBlurParams`].
    MotionBlur(MotionBlurParams),
    /// See [`RainParams`].
    Rain(RainParams),
    /// See [`HazeParams`].
    Haze(HazeParams),
    /// See [`SnowParams`].
    Snow(SnowParams),
    /// See [`LowLightParams`].
    LowLight(LowLightParams),
    /// See [`PoissonGaussianParams`].
    PoissonGaussianNoise(PoissonGaussianParams),
    /// See [`CorrelatedNoiseParams`].
    CorrelatedNoise(CorrelatedNoiseParams),
    /// See [`JpegNoiseParams`].
    JpegNoise(JpegNoiseParams),
    /// See [`LinearMotionParams`].
    LinearMotionBlur(LinearMotionParams),
    /// See [`DefocusParams`].
    DefocusBlur(DefocusParams),
    /// See [`GaussianBlurParams`].
    GaussianBlur(GaussianBlurParams),
}

impl Degradation {
    /// The default training ranges for `task`.
    pub fn default_for(task: Task) -> Self {
        match task {
            Task::Denoise => Self::GaussianNoise(GaussianNoiseSpec::default()),
            Task::Deblur => Self::MotionBlur(MotionBlurSpec::default()),
            Task::Derain => Self::Rain(RainSpec::default()),
            Task::Dehaze => Self::Haze(HazeSpec::default()),
            Task::Desnow => Self::Snow(SnowSpec::default()),
            Task::LowLight => Self::LowLight(LowLightSpec::default()),
        }
    }

    /// The task that removes this degradation (a mixture's: its first family's).
    pub fn task(&self) -> Task {
        match self {
            Self::GaussianNoise(_) | Self::PoissonGaussianNoise(_) | Self::CorrelatedNoise(_) | Self::JpegNoise(_) => Task::Denoise,
            Self::MotionBlur(_) | Self::LinearMotionBlur(_) | Self::DefocusBlur(_) | Self::GaussianBlur(_) => Task::Deblur,
            Self::Rain(_) => Task::Derain,
            Self::Haze(_) => Task::Dehaze,
            Self::Snow(_) => Task::Desnow,
            Self::LowLight(_) => Task::LowLight,
            Self::Mixture(mixture) => mixture.task(),
        }
    }

    /// The families this degradation draws from: a mixture's, else itself alone.
    pub fn families(&self) -> Vec<&Degradation> {
        match self {
            Self::Mixture(mixture) => mixture.families.iter().map(|family| &family.degradation).collect(),
            single => vec![single],
        }
    }

    /// The spec's `kind` name (`"motion_blur"`, `"mixture"`, ...).
    pub fn kind(&self) -> String {
        toml::Value::try_from(self)
            .ok()
            .and_then(|value| value.get("kind").and_then(|kind| kind.as_str().map(String::from)))
            .unwrap_or_default()
    }

    /// Checks every range against its documented bounds.
    pub fn check(&self) -> Result<()> {
        match self {
            Self::GaussianNoise(spec) => spec.check(),
            Self::MotionBlur(spec) => spec.check(),
            Self::Rain(spec) => spec.check(),
            Self::Haze(spec) => spec.check(),
            Self::Snow(spec) => spec.check(),
            Self::LowLight(spec) => spec.check(),
            Self::PoissonGaussianNoise(spec) => spec.check(),
            Self::CorrelatedNoise(spec) => spec.check(),
            Self::JpegNoise(spec) => spec.check(),
            Self::LinearMotionBlur(spec) => spec.check(),
            Self::DefocusBlur(spec) => spec.check(),
            Self::GaussianBlur(spec) => spec.check(),
            Self::Mixture(mixture) => mixture.check(),
        }
    }

    /// Draws concrete parameters.
    pub fn sample(&self, rng: &mut DataRng) -> DegradationParams {
        match self {
            Self::GaussianNoise(spec) => DegradationParams::GaussianNoise(spec.sample(rng)),
            Self::MotionBlur(spec) => DegradationParams::MotionBlur(spec.sample(rng)),
            Self::Rain(spec) => DegradationParams::Rain(spec.sample(rng)),
            Self::Haze(spec) => DegradationParams::Haze(spec.sample(rng)),
            Self::Snow(spec) => DegradationParams::Snow(spec.sample(rng)),
            Self::LowLight(spec) => DegradationParams::LowLight(spec.sample(rng)),
            Self::PoissonGaussianNoise(spec) => DegradationParams::PoissonGaussianNoise(spec.sample(rng)),
            Self::CorrelatedNoise(spec) => DegradationParams::CorrelatedNoise(spec.sample(rng)),
            Self::JpegNoise(spec) => DegradationParams::JpegNoise(spec.sample(rng)),
            Self::LinearMotionBlur(spec) => DegradationParams::LinearMotionBlur(spec.sample(rng)),
            Self::DefocusBlur(spec) => DegradationParams::DefocusBlur(spec.sample(rng)),
            Self::GaussianBlur(spec) => DegradationParams::GaussianBlur(spec.sample(rng)),
            Self::Mixture(mixture) => mixture.choose(rng).sample(rng),
        }
    }
}

impl DegradationParams {
    /// Degrades `clean`; the output has the same size and values in `[0, 1]`.
    pub fn apply(&self, clean: &Rgb) -> Rgb {
        match self {
            Self::GaussianNoise(params) => params.apply(clean),
            Self::MotionBlur(params) => params.apply(clean),
            Self::Rain(params) => params.apply(clean),
            Self::Haze(params) => params.apply(clean),
            Self::Snow(params) => params.apply(clean),
            Self::LowLight(params) => params.apply(clean),
            Self::PoissonGaussianNoise(params) => params.apply(clean),
            Self::CorrelatedNoise(params) => params.apply(clean),
            Self::JpegNoise(params) => params.apply(clean),
            Self::LinearMotionBlur(params) => params.apply(clean),
            Self::DefocusBlur(params) => params.apply(clean),
            Self::GaussianBlur(params) => params.apply(clean),
        }
    }

    /// What the degradation reads around a window: a patch sampler degrades a window this much
    /// larger and keeps its centre, so patches match whole-image degradation.
    pub fn context(&self) -> Context {
        match self {
            Self::MotionBlur(params) => Context::Margin(params.margin()),
            Self::Snow(params) => Context::Margin(params.margin()),
            Self::LinearMotionBlur(params) => Context::Margin(params.margin()),
            Self::DefocusBlur(params) => Context::Margin(params.margin()),
            Self::GaussianBlur(params) => Context::Margin(params.margin()),
            // The spread reaches a few pixels; its noise, like white noise, is drawn per window.
            Self::CorrelatedNoise(_) => Context::Margin(0),
            // The 8x8 blocks align with the window's corner, as with a photo's.
            Self::JpegNoise(_) => Context::Margin(0),
            // The depth proxy depends on where the window sits in the photo.
            Self::Haze(_) => Context::WholeImage,
            // Streaks are scattered beyond the window already; noise and exposure are per pixel.
            Self::Rain(_) | Self::GaussianNoise(_) | Self::PoissonGaussianNoise(_) | Self::LowLight(_) => Context::Margin(0),
        }
    }
}

/// The context a degradation needs to degrade a window of a photo exactly as it would degrade
/// the whole photo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// This many pixels on every side of the window.
    Margin(usize),
    /// The whole photo.
    WholeImage,
}

#[cfg(test)]
mod tests;
