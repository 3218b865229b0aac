//! Rain streaks imitating Rain100L (Yang et al. 2017, JORDER): light rain, thin streaks of one
//! dominant orientation rendered on a black layer and blended onto the photo with a screen or
//! additive blend, as the synthetic rain datasets were made.

use rand::RngExt;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::filter::{gaussian_blur, splat};
use crate::random::{Span, rng_for};
use crate::{DataRng, Result, Rgb};

/// How the streak layer is combined with the photo.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RainBlend {
    /// `1 - (1 - x)(1 - s)`: brightens without clipping highlights.
    Screen,
    /// `min(x + s, 1)`.
    Additive,
}

/// Which blend a spec allows.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RainBlendChoice {
    /// Always screen.
    Screen,
    /// Always additive.
    Additive,
    /// Either, with equal probability.
    Either,
}

/// Streak statistics to draw from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RainSpec {
    /// Streaks per 1,000 pixels (0 = no rain).
    pub density: Span,
    /// Streak length in pixels.
    pub length: Span,
    /// Streak width in pixels.
    pub width: Span,
    /// Orientation in degrees from vertical.
    pub angle: Span,
    /// Peak brightness a streak adds, in `[0, 1]`.
    pub intensity: Span,
    /// Blend mode.
    pub blend: RainBlendChoice,
}

impl Default for RainSpec {
    fn default() -> Self {
        Self {
            density: Span::new(2.0, 8.0),
            length: Span::new(8.0, 30.0),
            width: Span::new(0.8, 1.5),
            angle: Span::new(-25.0, 25.0),
            intensity: Span::new(0.35, 0.8),
            blend: RainBlendChoice::Either,
        }
    }
}

/// One concrete rain layer.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct RainParams {
    /// Streaks per 1,000 pixels.
    pub density: f32,
    /// Mean streak length in pixels.
    pub length: f32,
    /// Streak width in pixels.
    pub width: f32,
    /// Orientation in degrees from vertical.
    pub angle: f32,
    /// Peak brightness of a streak.
    pub intensity: f32,
    /// Blend mode.
    pub blend: RainBlend,
    /// Seed of the streak positions.
    pub seed: u64,
}

impl RainSpec {
    /// Checks the documented ranges.
    pub fn check(&self) -> Result<()> {
        self.density.check("rain.density", 0.0, 100.0)?;
        self.length.check("rain.length", 1.0, 200.0)?;
        self.width.check("rain.width", 0.5, 8.0)?;
        self.angle.check("rain.angle", -90.0, 90.0)?;
        self.intensity.check("rain.intensity", 0.0, 1.0)
    }

    /// Draws one rain layer's statistics.
    pub fn sample(&self, rng: &mut DataRng) -> RainParams {
        let blend = match self.blend {
            RainBlendChoice::Screen => RainBlend::Screen,
            RainBlendChoice::Additive => RainBlend::Additive,
            RainBlendChoice::Either if rng.random_bool(0.5) => RainBlend::Screen,
            RainBlendChoice::Either => RainBlend::Additive,
        };
        RainParams {
            density: self.density.sample(rng),
            length: self.length.sample(rng),
            width: self.width.sample(rng),
            angle: self.angle.sample(rng),
            intensity: self.intensity.sample(rng),
            blend,
            seed: rng.random(),
        }
    }
}

impl RainParams {
    /// Renders the streak layer for a `width x height` image, values in `[0, 1]`.
    pub fn streaks(&self, width: usize, height: usize) -> Vec<f32> {
        let mut layer = vec![0.0f32; width * height];
        let mut rng = rng_for(self.seed, &[]);
        let reach = self.length * 0.65;
        let area = (width as f32 + 2.0 * reach) * (height as f32 + 2.0 * reach);
        let count = (self.density * area / 1000.0).round() as usize;
        let across = (2.0 * self.width).round().max(1.0) as usize;
        for _ in 0..count {
            let x0 = rng.random_range(-reach..width as f32 + reach);
            let y0 = rng.random_range(-reach..height as f32 + reach);
            let length = self.length * rng.random_range(0.7..1.3);
            let brightness = self.intensity * rng.random_range(0.6..1.0);
            let jitter: f32 = rng.sample(StandardNormal);
            let angle = (self.angle + 2.0 * jitter).to_radians();
            let (dx, dy) = (angle.sin(), angle.cos());
            let steps = (2.0 * length).ceil() as usize;
            for step in 0..=steps {
                let t = step as f32 / steps as f32;
                let along = (t - 0.5) * length;
                let taper = (std::f32::consts::PI * t).sin();
                for lane in 0..across {
                    let offset = (lane as f32 + 0.5) / across as f32 * self.width - self.width / 2.0;
                    let (x, y) = (x0 + along * dx + offset * dy, y0 + along * dy - offset * dx);
                    // Points are 0.5 px apart along the streak and width/across apart across it.
                    let amount = 0.5 * brightness * taper * self.width / across as f32;
                    splat(&mut layer, width, height, x, y, amount);
                }
            }
        }
        layer.iter_mut().for_each(|value| *value = value.min(1.0));
        gaussian_blur(&layer, width, height, 0.6)
    }

    /// Blends the streaks onto `clean`.
    pub fn apply(&self, clean: &Rgb) -> Rgb {
        let layer = self.streaks(clean.width, clean.height);
        let mut rainy = clean.clone();
        for channel in 0..3 {
            for (value, &streak) in rainy.channel_mut(channel).iter_mut().zip(&layer) {
                *value = match self.blend {
                    RainBlend::Screen => 1.0 - (1.0 - *value) * (1.0 - streak),
                    RainBlend::Additive => (*value + streak).min(1.0),
                };
            }
        }
        rainy.clamp_unit()
    }
}
