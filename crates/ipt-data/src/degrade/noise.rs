//! Additive white Gaussian noise: the CBSD68 / Kodak24 / McMaster denoising protocol (DnCNN,
//! Zhang et al. 2017): `y = x + n`, `n ~ N(0, sigma^2)` on `[0, 255]` values, clipped to the
//! valid range as an 8-bit file would be.

use rand::RngExt;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::random::{Span, rng_for};
use crate::{DataRng, Result, Rgb};

/// Noise levels to draw from, on `[0, 255]`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GaussianNoiseSpec {
    /// Standard deviation on `[0, 255]`: fixed 15/25/50 for the benchmarks, `(0, 55]` blind.
    pub sigma: Span,
}

impl Default for GaussianNoiseSpec {
    /// The blind range `[0, 55]` used to train all-in-one denoisers.
    fn default() -> Self {
        Self { sigma: Span::new(0.0, 55.0) }
    }
}

/// One concrete noise draw.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct GaussianNoiseParams {
    /// Standard deviation on `[0, 255]`.
    pub sigma: f32,
    /// Seed of the noise realisation.
    pub seed: u64,
}

impl GaussianNoiseSpec {
    /// Checks `0 <= sigma <= 255`.
    pub fn check(&self) -> Result<()> {
        self.sigma.check("gaussian_noise.sigma", 0.0, 255.0)
    }

    /// Draws a noise level.
    pub fn sample(&self, rng: &mut DataRng) -> GaussianNoiseParams {
        GaussianNoiseParams { sigma: self.sigma.sample(rng), seed: rng.random() }
    }
}

impl GaussianNoiseParams {
    /// Adds the noise and clips to `[0, 1]`.
    pub fn apply(&self, clean: &Rgb) -> Rgb {
        let mut rng = rng_for(self.seed, &[]);
        let scale = self.sigma / 255.0;
        let mut noisy = clean.clone();
        if scale > 0.0 {
            for value in &mut noisy.data {
                let draw: f32 = rng.sample(StandardNormal);
                *value = (*value + scale * draw).clamp(0.0, 1.0);
            }
        }
        noisy
    }
}
