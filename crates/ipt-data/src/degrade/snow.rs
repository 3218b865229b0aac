//! Snow imitating CSD (Chen et al. 2021) and Snow100K (Liu et al. 2018): several layers of
//! flakes, nearer layers larger, sparser, blurrier (out of focus) and slightly streaked along
//! the fall direction, composited over the photo with per-flake opacity, over a faint veil of
//! snow-scattered light.

use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::filter::gaussian_blur;
use crate::random::{Span, rng_for};
use crate::{DataRng, Result, Rgb};

/// Snowfall statistics to draw from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SnowSpec {
    /// Number of depth layers.
    pub layers: Span,
    /// Flakes per 1,000 pixels in the farthest layer (0 = no flakes).
    pub density: Span,
    /// Flake radius in pixels in the nearest layer.
    pub size: Span,
    /// Peak opacity of a flake.
    pub opacity: Span,
    /// Defocus blur of the nearest layer, in pixels.
    pub blur: Span,
    /// Fall direction in degrees from vertical.
    pub angle: Span,
    /// Elongation of flakes along the fall direction (1 = round).
    pub streak: Span,
    /// Strength of the veil of scattered light (0 = none).
    pub veil: Span,
}

impl Default for SnowSpec {
    fn default() -> Self {
        Self {
            layers: Span::new(2.0, 4.0),
            density: Span::new(2.0, 10.0),
            size: Span::new(1.5, 4.0),
            opacity: Span::new(0.6, 1.0),
            blur: Span::new(0.0, 1.5),
            angle: Span::new(-30.0, 30.0),
            streak: Span::new(1.0, 2.5),
            veil: Span::new(0.0, 0.2),
        }
    }
}

/// One concrete snowfall.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct SnowParams {
    /// Number of depth layers.
    pub layers: usize,
    /// Flakes per 1,000 pixels in the farthest layer.
    pub density: f32,
    /// Flake radius in the nearest layer.
    pub size: f32,
    /// Peak opacity.
    pub opacity: f32,
    /// Blur of the nearest layer.
    pub blur: f32,
    /// Fall direction in degrees.
    pub angle: f32,
    /// Elongation along the fall direction.
    pub streak: f32,
    /// Veil strength.
    pub veil: f32,
    /// Seed of the flake positions.
    pub seed: u64,
}

impl SnowSpec {
    /// Checks the documented ranges.
    pub fn check(&self) -> Result<()> {
        self.layers.check("snow.layers", 1.0, 8.0)?;
        self.density.check("snow.density", 0.0, 100.0)?;
        self.size.check("snow.size", 0.3, 20.0)?;
        self.opacity.check("snow.opacity", 0.0, 1.0)?;
        self.blur.check("snow.blur", 0.0, 10.0)?;
        self.angle.check("snow.angle", -90.0, 90.0)?;
        self.streak.check("snow.streak", 1.0, 10.0)?;
        self.veil.check("snow.veil", 0.0, 1.0)
    }

    /// Draws one snowfall.
    pub fn sample(&self, rng: &mut DataRng) -> SnowParams {
        SnowParams {
            layers: self.layers.sample_int(rng).max(1),
            density: self.density.sample(rng),
            size: self.size.sample(rng),
            opacity: self.opacity.sample(rng),
            blur: self.blur.sample(rng),
            angle: self.angle.sample(rng),
            streak: self.streak.sample(rng),
            veil: self.veil.sample(rng),
            seed: rng.random(),
        }
    }
}

impl SnowParams {
    /// Pixels of context a flake or its blur reaches beyond an output pixel.
    pub fn margin(&self) -> usize {
        (self.size * self.streak + 3.0 * self.blur).ceil() as usize + 1
    }

    /// The opacity map of one layer (`nearness` in `(0, 1]`, 1 = nearest).
    fn layer(&self, width: usize, height: usize, nearness: f32, rng: &mut crate::DataRng) -> Vec<f32> {
        let mut alpha = vec![0.0f32; width * height];
        let radius = self.size * (0.3 + 0.7 * nearness);
        let count = (self.density * (1.0 - 0.7 * nearness) * (width * height) as f32 / 1000.0).round() as usize;
        let (dx, dy) = (self.angle.to_radians().sin(), self.angle.to_radians().cos());
        let reach = radius * self.streak;
        for _ in 0..count {
            let (cx, cy) = (rng.random_range(0.0..width as f32), rng.random_range(0.0..height as f32));
            let flake_radius = radius * rng.random_range(0.6..1.2);
            let peak = self.opacity * rng.random_range(0.6..1.0);
            let (x0, x1) = ((cx - reach).floor().max(0.0) as usize, ((cx + reach).ceil() as usize).min(width - 1));
            let (y0, y1) = ((cy - reach).floor().max(0.0) as usize, ((cy + reach).ceil() as usize).min(height - 1));
            for y in y0..=y1 {
                for x in x0..=x1 {
                    let (ox, oy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
                    let along = (ox * dx + oy * dy) / self.streak;
                    let across = ox * dy - oy * dx;
                    let distance = (along * along + across * across).sqrt() / flake_radius.max(0.3);
                    let coverage = (1.0 - distance).clamp(0.0, 1.0).sqrt();
                    let pixel = &mut alpha[y * width + x];
                    *pixel = 1.0 - (1.0 - *pixel) * (1.0 - peak * coverage);
                }
            }
        }
        gaussian_blur(&alpha, width, height, self.blur * nearness)
    }

    /// Composites the veil and the flake layers (far to near) onto `clean`.
    pub fn apply(&self, clean: &Rgb) -> Rgb {
        let mut snowy = clean.clone();
        let white = 0.97;
        snowy.data.iter_mut().for_each(|value| *value = *value * (1.0 - self.veil) + self.veil * white);
        if clean.width == 0 || clean.height == 0 {
            return snowy;
        }
        let mut rng = rng_for(self.seed, &[]);
        for layer in 0..self.layers {
            let nearness = (layer + 1) as f32 / self.layers as f32;
            let alpha = self.layer(clean.width, clean.height, nearness, &mut rng);
            for channel in 0..3 {
                for (value, &a) in snowy.channel_mut(channel).iter_mut().zip(&alpha) {
                    *value = *value * (1.0 - a) + a * white;
                }
            }
        }
        snowy.clamp_unit()
    }
}
