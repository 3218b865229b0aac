//! Noise families beyond the benchmarks' white Gaussian noise, so that a denoiser also meets
//! noise as cameras and files make it:
//!
//! - [`PoissonGaussianSpec`]: signal-dependent shot noise plus read noise, `y = x + sqrt(a x +
//!   b^2) n` (Foi et al. 2008's raw-sensor model, applied here to sRGB values);
//! - [`CorrelatedNoiseSpec`]: noise after a camera's processing: demosaicking and denoising
//!   spread it over neighbouring pixels (a Gaussian of `spread` pixels) and mix it across
//!   channels (a luminance share common to R, G and B, the rest per channel), rescaled so the
//!   standard deviation is still `sigma`;
//! - [`JpegNoiseSpec`]: white Gaussian noise, then JPEG compression at `quality`, which turns
//!   the noise into 8x8 block and ringing artefacts (the blocks align with the degraded
//!   window's corner).

use std::io::Cursor;

use image::codecs::jpeg::{JpegDecoder, JpegEncoder};
use image::{DynamicImage, ExtendedColorType, RgbImage};
use rand::RngExt;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use super::noise::GaussianNoiseParams;
use crate::filter::{gaussian_1d, gaussian_blur};
use crate::random::{Span, rng_for};
use crate::{DataRng, Result, Rgb};

/// Shot and read noise levels to draw from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PoissonGaussianSpec {
    /// Shot-noise variance per unit of signal (`a`, signal in `[0, 1]`).
    pub shot: Span,
    /// Read-noise standard deviation on `[0, 255]` (`255 b`).
    pub read: Span,
}

/// One shot-and-read noise draw.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct PoissonGaussianParams {
    /// Shot-noise variance per unit of signal.
    pub shot: f32,
    /// Read-noise standard deviation on `[0, 255]`.
    pub read: f32,
    /// Seed of the noise realisation.
    pub seed: u64,
}

impl Default for PoissonGaussianSpec {
    fn default() -> Self {
        Self { shot: Span::new(0.0, 0.04), read: Span::new(0.0, 25.0) }
    }
}

impl PoissonGaussianSpec {
    /// Checks `0 <= shot <= 1` and `0 <= read <= 255`.
    pub fn check(&self) -> Result<()> {
        self.shot.check("poisson_gaussian_noise.shot", 0.0, 1.0)?;
        self.read.check("poisson_gaussian_noise.read", 0.0, 255.0)
    }

    /// Draws noise levels.
    pub fn sample(&self, rng: &mut DataRng) -> PoissonGaussianParams {
        PoissonGaussianParams { shot: self.shot.sample(rng), read: self.read.sample(rng), seed: rng.random() }
    }
}

impl PoissonGaussianParams {
    /// Adds the noise and clips to `[0, 1]`.
    pub fn apply(&self, clean: &Rgb) -> Rgb {
        let mut rng = rng_for(self.seed, &[]);
        let read = self.read / 255.0;
        let mut noisy = clean.clone();
        for value in &mut noisy.data {
            let draw: f32 = rng.sample(StandardNormal);
            let deviation = (self.shot * *value + read * read).sqrt();
            *value = (*value + deviation * draw).clamp(0.0, 1.0);
        }
        noisy
    }
}

/// Processed-camera noise levels, spreads and channel mixes to draw from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CorrelatedNoiseSpec {
    /// Standard deviation on `[0, 255]` after spreading.
    pub sigma: Span,
    /// Standard deviation in pixels of the Gaussian that spreads the noise (0 = white).
    pub spread: Span,
    /// Share of the noise variance common to the three channels (0 = independent, 1 = gray).
    pub luminance: Span,
}

/// One processed-camera noise draw.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct CorrelatedNoiseParams {
    /// Standard deviation on `[0, 255]`.
    pub sigma: f32,
    /// Spatial spread in pixels.
    pub spread: f32,
    /// Variance share common to the channels.
    pub luminance: f32,
    /// Seed of the noise realisation.
    pub seed: u64,
}

impl Default for CorrelatedNoiseSpec {
    fn default() -> Self {
        Self { sigma: Span::new(3.0, 30.0), spread: Span::new(0.4, 1.5), luminance: Span::new(0.0, 0.8) }
    }
}

impl CorrelatedNoiseSpec {
    /// Checks `0 <= sigma <= 255`, `0 <= spread <= 5` and `0 <= luminance <= 1`.
    pub fn check(&self) -> Result<()> {
        self.sigma.check("correlated_noise.sigma", 0.0, 255.0)?;
        self.spread.check("correlated_noise.spread", 0.0, 5.0)?;
        self.luminance.check("correlated_noise.luminance", 0.0, 1.0)
    }

    /// Draws a level, spread and channel mix.
    pub fn sample(&self, rng: &mut DataRng) -> CorrelatedNoiseParams {
        CorrelatedNoiseParams {
            sigma: self.sigma.sample(rng),
            spread: self.spread.sample(rng),
            luminance: self.luminance.sample(rng),
            seed: rng.random(),
        }
    }
}

impl CorrelatedNoiseParams {
    /// The noise field, `[3, height, width]`, standard deviation `sigma / 255` per sample.
    pub fn field(&self, width: usize, height: usize) -> Vec<f32> {
        let mut rng = rng_for(self.seed, &[]);
        let pixels = width * height;
        let mut white = |count: usize| (0..count).map(|_| rng.sample::<f32, _>(StandardNormal)).collect::<Vec<f32>>();
        let common = white(pixels);
        let own = white(3 * pixels);
        let (shared, separate) = (self.luminance.sqrt(), (1.0 - self.luminance).sqrt());
        // A Gaussian spread scales a white field's variance by the sum of its squared 2-D taps.
        let taps = gaussian_1d(self.spread);
        let kept = taps.iter().map(|tap| tap * tap).sum::<f32>();
        let scale = self.sigma / 255.0 / kept;
        let mut field = Vec::with_capacity(3 * pixels);
        for channel in 0..3 {
            let mixed: Vec<f32> = common.iter().zip(&own[channel * pixels..][..pixels]).map(|(c, o)| shared * c + separate * o).collect();
            field.extend(gaussian_blur(&mixed, width, height, self.spread).into_iter().map(|value| value * scale));
        }
        field
    }

    /// Adds the noise and clips to `[0, 1]`.
    pub fn apply(&self, clean: &Rgb) -> Rgb {
        let field = self.field(clean.width, clean.height);
        let mut noisy = clean.clone();
        noisy.data.iter_mut().zip(&field).for_each(|(value, noise)| *value = (*value + noise).clamp(0.0, 1.0));
        noisy
    }
}

/// Noise levels and JPEG qualities to draw from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JpegNoiseSpec {
    /// Standard deviation of the Gaussian noise on `[0, 255]`, before compression.
    pub sigma: Span,
    /// JPEG quality, 1-100.
    pub quality: Span,
}

/// One noise-then-JPEG draw.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct JpegNoiseParams {
    /// Standard deviation on `[0, 255]`.
    pub sigma: f32,
    /// JPEG quality.
    pub quality: u8,
    /// Seed of the noise realisation.
    pub seed: u64,
}

impl Default for JpegNoiseSpec {
    fn default() -> Self {
        Self { sigma: Span::new(0.0, 30.0), quality: Span::new(30.0, 95.0) }
    }
}

impl JpegNoiseSpec {
    /// Checks `0 <= sigma <= 255` and `1 <= quality <= 100`.
    pub fn check(&self) -> Result<()> {
        self.sigma.check("jpeg_noise.sigma", 0.0, 255.0)?;
        self.quality.check("jpeg_noise.quality", 1.0, 100.0)
    }

    /// Draws a noise level and a quality.
    pub fn sample(&self, rng: &mut DataRng) -> JpegNoiseParams {
        JpegNoiseParams { sigma: self.sigma.sample(rng), quality: self.quality.sample_int(rng).clamp(1, 100) as u8, seed: rng.random() }
    }
}

impl JpegNoiseParams {
    /// Adds the noise, then encodes and decodes as JPEG (8-bit, 4:2:0 as cameras write).
    /// Images wider or taller than JPEG allows are compressed in tiles of at most
    /// [`JPEG_TILE`] pixels, aligned on the 16-px blocks, so any size works.
    pub fn apply(&self, clean: &Rgb) -> Rgb {
        let noisy = GaussianNoiseParams { sigma: self.sigma, seed: self.seed }.apply(clean);
        if clean.width == 0 || clean.height == 0 {
            return noisy;
        }
        let pixels = noisy.to_rgb8();
        if pixels.width() <= JPEG_TILE && pixels.height() <= JPEG_TILE {
            return Rgb::from_rgb8(&jpeg_round_trip(&pixels, self.quality));
        }
        let mut out = pixels.clone();
        for top in (0..pixels.height()).step_by(JPEG_TILE as usize) {
            for left in (0..pixels.width()).step_by(JPEG_TILE as usize) {
                let (width, height) = (JPEG_TILE.min(pixels.width() - left), JPEG_TILE.min(pixels.height() - top));
                let tile = image::imageops::crop_imm(&pixels, left, top, width, height).to_image();
                image::imageops::replace(&mut out, &jpeg_round_trip(&tile, self.quality), i64::from(left), i64::from(top));
            }
        }
        Rgb::from_rgb8(&out)
    }
}

/// Side of the tiles large images are JPEG-compressed in: a multiple of the 16-px 4:2:0 blocks
/// within JPEG's 65,535-px limit.
pub const JPEG_TILE: u32 = 65_520;

/// `pixels` encoded as JPEG at `quality` and decoded again.
fn jpeg_round_trip(pixels: &RgbImage, quality: u8) -> RgbImage {
    let mut encoded = Vec::new();
    JpegEncoder::new_with_quality(&mut encoded, quality)
        .encode(pixels.as_raw(), pixels.width(), pixels.height(), ExtendedColorType::Rgb8)
        .expect("an RGB image within JPEG's size limit encodes");
    let decoder = JpegDecoder::new(Cursor::new(encoded)).expect("our own JPEG decodes");
    DynamicImage::from_decoder(decoder).expect("our own JPEG decodes").to_rgb8()
}
