//! Haze by the atmospheric scattering model `I = J t + A (1 - t)`, `t = exp(-beta d)`, as RESIDE
//! (Li et al. 2019) made SOTS: outdoor photos, depth estimated from the image, gray airlight
//! `A` in `[0.8, 1]`. Photos here have no depth, so `d` is a proxy: the mean of a
//! "farther towards the top of the frame" prior and the colour attenuation prior (Zhu et al.
//! 2015: haze-like distance grows with brightness and falls with saturation,
//! `d = 0.1218 + 0.9597 v - 0.7802 s`, made robust by a minimum filter and smoothed), lifted so
//! the nearest surface sits at a tenth of the farthest. It depends on the whole photo, so
//! patches are cut after hazing. `cargo xtask data` checks both priors against real Middlebury
//! depth.
//!
//! Beyond SOTS: `tint` colours the airlight (each channel scaled by a factor in `[1 - tint, 1 +
//! tint]`: yellow smog, blue dusk haze), and `depth_variation` blends the depth proxy towards
//! its mean (0 = uniform haze of one transmission, as fog over a flat scene; 1 = the proxy).

use rand::RngExt;
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
    /// Largest relative deviation of a channel's airlight from gray (0 = gray).
    #[serde(default = "no_tint")]
    pub tint: Span,
    /// How much of the depth proxy's variation is kept (0 = uniform haze, 1 = all).
    #[serde(default = "full_depth")]
    pub depth_variation: Span,
}

fn no_tint() -> Span {
    Span::fixed(0.0)
}

fn full_depth() -> Span {
    Span::fixed(1.0)
}

fn full_depth_value() -> f32 {
    1.0
}

impl Default for HazeSpec {
    fn default() -> Self {
        Self { beta: Span::new(0.6, 2.4), airlight: Span::new(0.7, 1.0), tint: no_tint(), depth_variation: full_depth() }
    }
}

/// One concrete haze.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct HazeParams {
    /// Scattering coefficient.
    pub beta: f32,
    /// Atmospheric light.
    pub airlight: f32,
    /// Per-channel airlight factors (1 = gray).
    #[serde(default = "gray")]
    pub tint: [f32; 3],
    /// Share of the depth proxy's variation kept.
    #[serde(default = "full_depth_value")]
    pub depth_variation: f32,
}

fn gray() -> [f32; 3] {
    [1.0; 3]
}

impl HazeSpec {
    /// Checks `0 <= beta <= 10`, `0 <= airlight <= 1`, `0 <= tint <= 0.5` and
    /// `0 <= depth_variation <= 1`.
    pub fn check(&self) -> Result<()> {
        self.beta.check("haze.beta", 0.0, 10.0)?;
        self.airlight.check("haze.airlight", 0.0, 1.0)?;
        self.tint.check("haze.tint", 0.0, 0.5)?;
        self.depth_variation.check("haze.depth_variation", 0.0, 1.0)
    }

    /// Draws a haze.
    pub fn sample(&self, rng: &mut DataRng) -> HazeParams {
        let (beta, airlight) = (self.beta.sample(rng), self.airlight.sample(rng));
        let tint = self.tint.sample(rng);
        let tint = if tint > 0.0 { std::array::from_fn(|_| 1.0 + rng.random_range(-tint..=tint)) } else { gray() };
        HazeParams { beta, airlight, tint, depth_variation: self.depth_variation.sample(rng) }
    }
}

impl HazeParams {
    /// Per-pixel transmission `exp(-beta d)`, in `(0, 1]`.
    pub fn transmission(&self, clean: &Rgb) -> Vec<f32> {
        let depth = depth_proxy(clean);
        let mean = depth.iter().sum::<f32>() / depth.len().max(1) as f32;
        let kept = self.depth_variation;
        depth.into_iter().map(|depth| (-self.beta * (mean + kept * (depth - mean))).exp()).collect()
    }

    /// Applies the scattering model.
    pub fn apply(&self, clean: &Rgb) -> Rgb {
        let transmission = self.transmission(clean);
        let mut hazy = clean.clone();
        for channel in 0..3 {
            let airlight = (self.airlight * self.tint[channel]).min(1.0);
            for (value, &t) in hazy.channel_mut(channel).iter_mut().zip(&transmission) {
                *value = *value * t + airlight * (1.0 - t);
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
