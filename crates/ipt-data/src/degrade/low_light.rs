//! Low light imitating LOL (Wei et al. 2018: real short/long exposure pairs) with the usual
//! synthetic protocol (Lv et al. 2021; Brooks et al. 2019, "unprocessing"): in linear light,
//! scale the exposure down and bend the tone curve by a gamma, then add signal-dependent shot
//! noise and signal-independent read noise, and return to sRGB. `cast` tints the exposure per
//! channel (each scaled by `exp(u)`, `u` in `[-cast, cast]`), as a wrong white balance under
//! street or tungsten light does.

use rand::RngExt;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::random::{Span, rng_for};
use crate::{DataRng, Result, Rgb};

/// Exposure and sensor noise to draw from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LowLightSpec {
    /// Linear exposure multiplier (1 = unchanged).
    pub exposure: Span,
    /// Extra gamma on linear light (1 = unchanged).
    pub gamma: Span,
    /// Shot-noise variance per unit of linear signal.
    pub shot_noise: Span,
    /// Read-noise standard deviation in linear units.
    pub read_noise: Span,
    /// Largest per-channel log-exposure deviation (0 = neutral).
    #[serde(default = "neutral")]
    pub cast: Span,
}

fn neutral() -> Span {
    Span::fixed(0.0)
}

fn no_cast() -> [f32; 3] {
    [1.0; 3]
}

impl Default for LowLightSpec {
    fn default() -> Self {
        Self {
            exposure: Span::new(0.02, 0.15),
            gamma: Span::new(1.0, 1.6),
            shot_noise: Span::new(0.0, 0.004),
            read_noise: Span::new(0.0, 0.004),
            cast: neutral(),
        }
    }
}

/// One concrete under-exposure.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct LowLightParams {
    /// Linear exposure multiplier.
    pub exposure: f32,
    /// Gamma on linear light.
    pub gamma: f32,
    /// Shot-noise variance per unit of signal.
    pub shot_noise: f32,
    /// Read-noise standard deviation.
    pub read_noise: f32,
    /// Per-channel exposure factors (1 = neutral).
    #[serde(default = "no_cast")]
    pub cast: [f32; 3],
    /// Seed of the noise realisation.
    pub seed: u64,
}

impl LowLightSpec {
    /// Checks the documented ranges.
    pub fn check(&self) -> Result<()> {
        self.exposure.check("low_light.exposure", 0.001, 1.0)?;
        self.gamma.check("low_light.gamma", 0.5, 3.0)?;
        self.shot_noise.check("low_light.shot_noise", 0.0, 0.1)?;
        self.read_noise.check("low_light.read_noise", 0.0, 0.1)?;
        self.cast.check("low_light.cast", 0.0, 1.0)
    }

    /// Draws one under-exposure.
    pub fn sample(&self, rng: &mut DataRng) -> LowLightParams {
        let (exposure, gamma) = (self.exposure.sample(rng), self.gamma.sample(rng));
        let (shot_noise, read_noise) = (self.shot_noise.sample(rng), self.read_noise.sample(rng));
        let seed = rng.random();
        let cast = self.cast.sample(rng);
        let cast = if cast > 0.0 { std::array::from_fn(|_| rng.random_range(-cast..=cast).exp()) } else { no_cast() };
        LowLightParams { exposure, gamma, shot_noise, read_noise, seed, cast }
    }
}

impl LowLightParams {
    /// Darkens `clean` and adds sensor noise.
    pub fn apply(&self, clean: &Rgb) -> Rgb {
        let mut rng = rng_for(self.seed, &[]);
        let noisy = self.shot_noise > 0.0 || self.read_noise > 0.0;
        let mut dark = clean.clone();
        let pixels = clean.pixels().max(1);
        for (index, value) in dark.data.iter_mut().enumerate() {
            let exposure = self.exposure * self.cast[index / pixels];
            let signal = exposure * srgb_to_linear(*value).powf(self.gamma);
            let signal = if noisy {
                let draw: f32 = rng.sample(StandardNormal);
                signal + (self.shot_noise * signal + self.read_noise * self.read_noise).sqrt() * draw
            } else {
                signal
            };
            *value = linear_to_srgb(signal.clamp(0.0, 1.0));
        }
        dark
    }
}

/// The sRGB transfer function, inverted (IEC 61966-2-1).
pub fn srgb_to_linear(value: f32) -> f32 {
    if value <= 0.040_45 { value / 12.92 } else { ((value + 0.055) / 1.055).powf(2.4) }
}

/// The sRGB transfer function (IEC 61966-2-1).
pub fn linear_to_srgb(value: f32) -> f32 {
    if value <= 0.003_130_8 { value * 12.92 } else { 1.055 * value.powf(1.0 / 2.4) - 0.055 }
}
