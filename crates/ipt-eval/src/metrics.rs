//! PSNR and SSIM as the restoration papers compute them, with the protocol spelled out.
//!
//! SSIM is the Gaussian-window SSIM of Wang et al. (11x11 window, sigma 1.5, K1 = 0.01,
//! K2 = 0.03, population covariances), averaged over the positions where the window fits and,
//! on RGB, over the channels: what scikit-image's `structural_similarity(gaussian_weights=True,
//! sigma=1.5, use_sample_covariance=False)` and MATLAB's `ssim` give. The Y channel is BT.601
//! luma on the studio range (`16 + 65.481 R + 128.553 G + 24.966 B`, as skimage's `rgb2ycbcr`
//! and BasicSR's `rgb2ycbcr(y_only=True)`).

use std::fmt;

use ipt_data::rgb::Rgb;
use serde::{Deserialize, Serialize};

pub use ipt_core::{PSNR_CAP_DB, psnr_from_mse};

/// Side of the SSIM window.
const SSIM_WINDOW: usize = 11;
/// Standard deviation of the SSIM window's Gaussian.
const SSIM_SIGMA: f64 = 1.5;

/// Which samples are scored.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Channels {
    /// The three RGB channels.
    #[default]
    Rgb,
    /// BT.601 luma (Y of YCbCr), as deraining and super-resolution papers report.
    Y,
}

/// How outputs are scored: every number the evaluation reports names its protocol.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Protocol {
    /// RGB or Y.
    pub channels: Channels,
    /// Round to 8 bits first (what a saved PNG holds); otherwise score the floats.
    pub quantize: bool,
    /// Pixels removed from every border before scoring.
    pub crop_border: usize,
    /// Crop both images (from the top-left) to a multiple of this size first; 1 = no crop.
    pub multiple: usize,
}

impl Default for Protocol {
    fn default() -> Self {
        Self { channels: Channels::Rgb, quantize: true, crop_border: 0, multiple: 1 }
    }
}

impl fmt::Display for Protocol {
    /// A short label such as `RGB, 8-bit` or `Y, float, border 4, multiple 8`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let channels = match self.channels {
            Channels::Rgb => "RGB",
            Channels::Y => "Y",
        };
        write!(f, "{channels}, {}", if self.quantize { "8-bit" } else { "float" })?;
        if self.crop_border > 0 {
            write!(f, ", border {}", self.crop_border)?;
        }
        if self.multiple > 1 {
            write!(f, ", multiple {}", self.multiple)?;
        }
        Ok(())
    }
}

/// PSNR (dB) and SSIM of one output against its target.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// Peak signal-to-noise ratio in dB, capped at [`PSNR_CAP_DB`].
    pub psnr: f64,
    /// Structural similarity in `[-1, 1]`.
    pub ssim: f64,
}

/// Why two images cannot be scored.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetricError {
    /// Output and target differ in size.
    #[error("output is {output:?} but target is {target:?} (width, height)")]
    SizeMismatch {
        /// Output width and height.
        output: (usize, usize),
        /// Target width and height.
        target: (usize, usize),
    },
    /// After the protocol's crops the image is smaller than the SSIM window.
    #[error("{width}x{height} left after cropping is smaller than the {SSIM_WINDOW}x{SSIM_WINDOW} SSIM window")]
    TooSmall {
        /// Width left.
        width: usize,
        /// Height left.
        height: usize,
    },
}

/// Scores `output` against `target` under `protocol`. Outputs are clamped to `[0, 1]`; with
/// `quantize` both images are rounded to 8 bits (a no-op on targets read from 8-bit files,
/// which it keeps exact).
pub fn score(output: &Rgb, target: &Rgb, protocol: &Protocol) -> Result<Score, MetricError> {
    if (output.width, output.height) != (target.width, target.height) {
        return Err(MetricError::SizeMismatch { output: (output.width, output.height), target: (target.width, target.height) });
    }
    let output = prepare(&output.clone().clamp_unit(), protocol);
    let target = prepare(target, protocol);
    let (width, height) = (output.width, output.height);
    if width < SSIM_WINDOW || height < SSIM_WINDOW {
        return Err(MetricError::TooSmall { width, height });
    }
    let mse = output.planes.iter().zip(&target.planes).flat_map(|(a, b)| a.iter().zip(b)).map(|(a, b)| (a - b).powi(2)).sum::<f64>()
        / (output.planes.len() * width * height) as f64;
    let ssim =
        output.planes.iter().zip(&target.planes).map(|(a, b)| ssim_plane(a, b, width, height)).sum::<f64>() / output.planes.len() as f64;
    Ok(Score { psnr: psnr_from_mse(mse), ssim })
}

/// The planes to score, in f64 on a peak of 1, after quantising and cropping.
struct Planes {
    planes: Vec<Vec<f64>>,
    width: usize,
    height: usize,
}

fn prepare(image: &Rgb, protocol: &Protocol) -> Planes {
    let quantize = protocol.quantize;
    let multiple = protocol.multiple.max(1);
    let (width, height) = (image.width - image.width % multiple, image.height - image.height % multiple);
    let border = protocol.crop_border.min(width / 2).min(height / 2);
    let (left, top) = (border, border);
    let (out_width, out_height) = (width - 2 * border, height - 2 * border);
    let sample = |channel: usize, x: usize, y: usize| {
        let value = f64::from(image.channel(channel)[(top + y) * image.width + left + x]);
        if quantize { (value * 255.0).round() / 255.0 } else { value }
    };
    let plane = |weights: &[f64; 3], offset: f64| -> Vec<f64> {
        (0..out_height)
            .flat_map(|y| (0..out_width).map(move |x| (y, x)))
            .map(|(y, x)| offset + (0..3).map(|channel| weights[channel] * sample(channel, x, y)).sum::<f64>())
            .collect()
    };
    let planes = match protocol.channels {
        Channels::Rgb => vec![plane(&[1.0, 0.0, 0.0], 0.0), plane(&[0.0, 1.0, 0.0], 0.0), plane(&[0.0, 0.0, 1.0], 0.0)],
        Channels::Y => vec![plane(&[65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0], 16.0 / 255.0)],
    };
    Planes { planes, width: out_width, height: out_height }
}

/// Mean SSIM of two planes (peak 1) over the positions where the whole window fits.
fn ssim_plane(a: &[f64], b: &[f64], width: usize, height: usize) -> f64 {
    const C1: f64 = 0.01 * 0.01;
    const C2: f64 = 0.03 * 0.03;
    let window = gaussian_window();
    let filter = |values: Vec<f64>| filter_valid(&values, width, height, &window);
    let mean_a = filter(a.to_vec());
    let mean_b = filter(b.to_vec());
    let mean_aa = filter(a.iter().map(|value| value * value).collect());
    let mean_bb = filter(b.iter().map(|value| value * value).collect());
    let mean_ab = filter(a.iter().zip(b).map(|(x, y)| x * y).collect());
    let total: f64 = (0..mean_a.len())
        .map(|index| {
            let (mu_a, mu_b) = (mean_a[index], mean_b[index]);
            let (var_a, var_b, covariance) = (mean_aa[index] - mu_a * mu_a, mean_bb[index] - mu_b * mu_b, mean_ab[index] - mu_a * mu_b);
            ((2.0 * mu_a * mu_b + C1) * (2.0 * covariance + C2)) / ((mu_a * mu_a + mu_b * mu_b + C1) * (var_a + var_b + C2))
        })
        .sum();
    total / mean_a.len() as f64
}

/// The normalised 1-D Gaussian of the SSIM window.
fn gaussian_window() -> [f64; SSIM_WINDOW] {
    let radius = (SSIM_WINDOW / 2) as f64;
    let mut window = [0.0; SSIM_WINDOW];
    window
        .iter_mut()
        .enumerate()
        .for_each(|(index, weight)| *weight = (-(index as f64 - radius).powi(2) / (2.0 * SSIM_SIGMA * SSIM_SIGMA)).exp());
    let sum: f64 = window.iter().sum();
    window.map(|weight| weight / sum)
}

/// Separable filtering keeping only the positions where the window fits ("valid").
fn filter_valid(values: &[f64], width: usize, height: usize, window: &[f64; SSIM_WINDOW]) -> Vec<f64> {
    let out_width = width - SSIM_WINDOW + 1;
    let out_height = height - SSIM_WINDOW + 1;
    let rows: Vec<f64> = (0..height)
        .flat_map(|y| (0..out_width).map(move |x| (y, x)))
        .map(|(y, x)| window.iter().enumerate().map(|(k, weight)| weight * values[y * width + x + k]).sum())
        .collect();
    (0..out_height)
        .flat_map(|y| (0..out_width).map(move |x| (y, x)))
        .map(|(y, x)| window.iter().enumerate().map(|(k, weight)| weight * rows[(y + k) * out_width + x]).sum())
        .collect()
}
