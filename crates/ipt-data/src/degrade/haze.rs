//! Haze by the atmospheric scattering model `I = J t + A (1 - t)`, `t = exp(-beta d)`, as RESIDE
//! (Li et al. 2019) made SOTS: outdoor photos, depth estimated from the image, gray airlight
//! `A` in `[0.8, 1]`. Photos here have no depth, so `d` is a proxy: the mean of a
//! "farther towards the top of the frame" prior and the colour attenuation prior (Zhu et al.
//! 2015: haze-like distance grows with brightness and falls with saturation,
//! `d = 0.1218 + 0.9597 v - 0.7802 s`, made robust by a minimum filter and smoothed), lifted so
//! the nearest surface sits at a tenth of the farthest. It depends on the whole photo, so
//! patches are cut after hazing. `cargo xtask data` checks both priors against real Middlebury
//! depth.

use serde::{Deserialize, Serialize};

use crate::filter::{box_blur, min_filter};
use crate::random::Span;
use crate::{DataRng, Result, Rgb};

/// Radius of the minimum filter that removes small bright objects from the depth proxy.
const MIN_FILTER_RADIUS: usize = 4;
/// Radius of the box filter that smooths the depth proxy.
const SMOOTHING_RADIUS: usize = 8;
/// Depth of the nearest surface, as a fraction of the farthest: every pixel gets some haze,
/// even a saturated foreground the prior would put at zero distance.
const NEAREST_DEPTH: f32 = 0.1;
/// Weight of the vertical prior in the depth proxy (the rest is the colour prior).
const VERTICAL_WEIGHT: f32 = 0.5;

/// Haze densities and airlights to draw from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HazeSpec {
    /// Scattering coefficient for normalised depth in `[0, 1]` (0 = clear air).
    pub beta: Span,
    /// Gray atmospheric light.
    pub airlight: Span,
}

impl Default for HazeSpec {
    fn default() -> Self {
        Self { beta: Span::new(0.6, 2.4), airlight: Span::new(0.7, 1.0) }
    }
}

/// One concrete haze.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct HazeParams {
    /// Scattering coefficient.
    pub beta: f32,
    /// Atmospheric light.
    pub airlight: f32,
}

impl HazeSpec {
    /// Checks `0 <= beta <= 10` and `0 <= airlight <= 1`.
    pub fn check(&self) -> Result<()> {
        self.beta.check("haze.beta", 0.0, 10.0)?;
        self.airlight.check("haze.airlight", 0.0, 1.0)
    }

    /// Draws a haze.
    pub fn sample(&self, rng: &mut DataRng) -> HazeParams {
        HazeParams { beta: self.beta.sample(rng), airlight: self.airlight.sample(rng) }
    }
}

impl HazeParams {
    /// Per-pixel transmission `exp(-beta d)`, in `(0, 1]`.
    pub fn transmission(&self, clean: &Rgb) -> Vec<f32> {
        depth_proxy(clean).into_iter().map(|depth| (-self.beta * depth).exp()).collect()
    }

    /// Applies the scattering model.
    pub fn apply(&self, clean: &Rgb) -> Rgb {
        let transmission = self.transmission(clean);
        let mut hazy = clean.clone();
        for channel in 0..3 {
            for (value, &t) in hazy.channel_mut(channel).iter_mut().zip(&transmission) {
                *value = *value * t + self.airlight * (1.0 - t);
            }
        }
        hazy.clamp_unit()
    }
}

/// Relative scene depth in `[0.1, 1]` (larger = farther): the mean of the "farther towards the
/// top of the frame" prior and the colour attenuation prior.
pub fn depth_proxy(image: &Rgb) -> Vec<f32> {
    let colour = colour_attenuation_depth(image);
    let height = image.height.max(2) as f32 - 1.0;
    colour
        .into_iter()
        .enumerate()
        .map(|(index, colour_depth)| {
            let vertical = 1.0 - (index / image.width) as f32 / height;
            let depth = VERTICAL_WEIGHT * vertical + (1.0 - VERTICAL_WEIGHT) * colour_depth;
            NEAREST_DEPTH + (1.0 - NEAREST_DEPTH) * depth.clamp(0.0, 1.0)
        })
        .collect()
}

/// Depth from the colour attenuation prior alone, clamped to `[0, 1]`: hazy-looking (bright,
/// unsaturated) regions are far. Robust to small bright objects by a minimum filter, smoothed.
pub fn colour_attenuation_depth(image: &Rgb) -> Vec<f32> {
    let (red, green, blue) = (image.channel(0), image.channel(1), image.channel(2));
    let raw: Vec<f32> = (0..image.pixels())
        .map(|index| {
            let value = red[index].max(green[index]).max(blue[index]);
            let minimum = red[index].min(green[index]).min(blue[index]);
            let saturation = if value > 0.0 { (value - minimum) / value } else { 0.0 };
            0.121_779 + 0.959_710 * value - 0.780_245 * saturation
        })
        .collect();
    let robust = min_filter(&raw, image.width, image.height, MIN_FILTER_RADIUS);
    box_blur(&robust, image.width, image.height, SMOOTHING_RADIUS).into_iter().map(|depth| depth.clamp(0.0, 1.0)).collect()
}
