//! Motion blur from random camera trajectories, imitating GoPro (Nah et al. 2017), whose blur
//! comes from averaging frames along a real hand-held camera path. The trajectory is a random
//! walk with inertia, a pull back to the start and rare sharp jerks (after Boracchi and Foi
//! 2012, the generator behind DeblurGAN's synthetic kernels), rasterised with bilinear splats
//! onto a `size x size` grid and normalised; a mild Gaussian defocus is then convolved in.
//!
//! Every kernel has its centre of mass on its centre pixel. A kernel whose mass sits off
//! centre also shifts the image, by a sub-pixel to several pixels in a direction only the
//! (unknown) kernel tells: the target is then unreachable from the input and a network learns
//! to average instead of to sharpen. Until December 2026 the trajectory was centred on its
//! bounding box instead: the mass sat 1.5 px off centre at the median (3.6 px at the 90th
//! percentile of the 7-35 px kernels), and the six-task model learnt no deblurring at all.

use rand::RngExt;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::filter::{Kernel, convolve, gaussian_kernel, splat};
use crate::random::{Span, rng_for};
use crate::{DataRng, Result, Rgb};

/// Points along a trajectory (dense enough that splats overlap at the largest size).
const TRAJECTORY_POINTS: usize = 512;

/// Kernel sizes and defocus to draw from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MotionBlurSpec {
    /// Kernel side in pixels (rounded to odd): GoPro-like 7–35.
    pub size: Span,
    /// Standard deviation of the added Gaussian defocus, in pixels (0 = none).
    pub defocus: Span,
}

impl Default for MotionBlurSpec {
    fn default() -> Self {
        Self { size: Span::new(7.0, 35.0), defocus: Span::new(0.0, 1.0) }
    }
}

/// One concrete blur: the kernel is a pure function of these fields.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct MotionBlurParams {
    /// Side of the trajectory kernel (odd; 1 = no motion).
    pub size: usize,
    /// Defocus standard deviation in pixels.
    pub defocus: f32,
    /// Seed of the trajectory.
    pub seed: u64,
}

impl MotionBlurSpec {
    /// Checks `1 <= size <= 101` and `0 <= defocus <= 10`.
    pub fn check(&self) -> Result<()> {
        self.size.check("motion_blur.size", 1.0, 101.0)?;
        self.defocus.check("motion_blur.defocus", 0.0, 10.0)
    }

    /// Draws a kernel size, defocus and trajectory seed.
    pub fn sample(&self, rng: &mut DataRng) -> MotionBlurParams {
        let size = self.size.sample_int(rng) | 1;
        MotionBlurParams { size, defocus: self.defocus.sample(rng), seed: rng.random() }
    }
}

impl MotionBlurParams {
    /// The normalised, non-negative blur kernel.
    pub fn kernel(&self) -> Kernel {
        let motion = if self.size <= 1 { Kernel::identity() } else { trajectory_kernel(self.size, self.seed) };
        if self.defocus > 0.0 { motion.convolve(&gaussian_kernel(self.defocus)).normalised() } else { motion }
    }

    /// Pixels of context the blur reads beyond an output pixel.
    pub fn margin(&self) -> usize {
        self.kernel().size / 2
    }

    /// Blurs every channel (reflect borders).
    pub fn apply(&self, clean: &Rgb) -> Rgb {
        blur_image(clean, &self.kernel())
    }
}

/// Rasterises a random camera path into a normalised `size x size` kernel whose centre of mass
/// is its centre: the path's mean point goes to the centre and the point farthest from it (in
/// either axis) to the border.
fn trajectory_kernel(size: usize, seed: u64) -> Kernel {
    let path = camera_path(&mut rng_for(seed, &[]));
    let count = path.len() as f32;
    let mean_x = path.iter().map(|point| point.0).sum::<f32>() / count;
    let mean_y = path.iter().map(|point| point.1).sum::<f32>() / count;
    let reach = path.iter().map(|&(x, y)| (x - mean_x).abs().max((y - mean_y).abs())).fold(1e-6, f32::max);
    let centre = (size - 1) as f32 / 2.0;
    let scale = centre / reach;
    let mut weights = vec![0.0; size * size];
    for &(x, y) in &path {
        splat(&mut weights, size, size, centre + (x - mean_x) * scale, centre + (y - mean_y) * scale, 1.0);
    }
    Kernel { size, weights }.normalised()
}

/// Convolves every channel of `clean` with `kernel` (reflect borders).
pub(crate) fn blur_image(clean: &Rgb, kernel: &Kernel) -> Rgb {
    let mut blurred = clean.clone();
    for channel in 0..3 {
        let plane = convolve(clean.channel(channel), clean.width, clean.height, kernel);
        blurred.channel_mut(channel).copy_from_slice(&plane);
    }
    blurred.clamp_unit()
}

/// A random walk with inertia: unit steps whose direction drifts with Gaussian jitter, is
/// pulled back towards the origin, and sometimes jerks.
fn camera_path(rng: &mut DataRng) -> Vec<(f32, f32)> {
    let anxiety: f32 = rng.random_range(0.0..0.3);
    let centripetal: f32 = rng.random_range(0.0..0.05);
    let jerk_probability: f32 = rng.random_range(0.0..0.02);
    let angle: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    let (mut vx, mut vy) = (angle.cos(), angle.sin());
    let (mut x, mut y) = (0.0f32, 0.0f32);
    let mut path = Vec::with_capacity(TRAJECTORY_POINTS);
    for _ in 0..TRAJECTORY_POINTS {
        let (gx, gy): (f32, f32) = (rng.sample(StandardNormal), rng.sample(StandardNormal));
        vx += anxiety * gx - centripetal * x / TRAJECTORY_POINTS as f32;
        vy += anxiety * gy - centripetal * y / TRAJECTORY_POINTS as f32;
        if rng.random::<f32>() < jerk_probability {
            let jerk: f32 = rng.random_range(0.0..std::f32::consts::TAU);
            vx += 2.0 * jerk.cos();
            vy += 2.0 * jerk.sin();
        }
        let speed = (vx * vx + vy * vy).sqrt().max(1e-6);
        (vx, vy) = (vx / speed, vy / speed);
        x += vx;
        y += vy;
        path.push((x, y));
    }
    path
}
