//! Blur families with closed-form kernels, beside the camera trajectories of [`super::blur`], so
//! that a deblurring model meets more than one kind of blur:
//!
//! - [`LinearMotionSpec`]: a straight, uniform-speed motion of `length` pixels at `angle` (the
//!   classic synthetic motion kernel, e.g. Levin et al. 2009's benchmark lines);
//! - [`DefocusSpec`]: an out-of-focus disk of `radius` pixels (a thin lens's circle of
//!   confusion), anti-aliased;
//! - [`GaussianBlurSpec`]: an anisotropic Gaussian with standard deviation `sigma` along its
//!   major axis, `sigma / anisotropy` across it, rotated by `angle` (the lens/sensor blur of
//!   BSRGAN and Real-ESRGAN's degradation models).
//!
//! Every kernel is point-symmetric about its centre pixel, so its centre of mass is the centre
//! and blurring never shifts the image.

use serde::{Deserialize, Serialize};

use crate::degrade::blur::blur_image;
use crate::filter::{Kernel, splat};
use crate::random::Span;
use crate::{DataRng, Result, Rgb};

/// Sub-samples per pixel side when a disk's coverage of a pixel is estimated.
const DISK_SUBSAMPLES: usize = 8;
/// Splats per pixel of a line's length (dense enough for a smooth kernel).
const LINE_SPLATS_PER_PIXEL: f32 = 8.0;

/// Straight motion: lengths and angles to draw from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LinearMotionSpec {
    /// Length of the motion in pixels (1 = none).
    pub length: Span,
    /// Direction in degrees from horizontal.
    pub angle: Span,
}

/// One straight motion.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct LinearMotionParams {
    /// Length in pixels.
    pub length: f32,
    /// Direction in degrees from horizontal.
    pub angle: f32,
}

impl Default for LinearMotionSpec {
    fn default() -> Self {
        Self { length: Span::new(3.0, 21.0), angle: Span::new(0.0, 180.0) }
    }
}

impl LinearMotionSpec {
    /// Checks `1 <= length <= 101` and `-360 <= angle <= 360`.
    pub fn check(&self) -> Result<()> {
        self.length.check("linear_motion_blur.length", 1.0, 101.0)?;
        self.angle.check("linear_motion_blur.angle", -360.0, 360.0)
    }

    /// Draws a length and a direction.
    pub fn sample(&self, rng: &mut DataRng) -> LinearMotionParams {
        LinearMotionParams { length: self.length.sample(rng), angle: self.angle.sample(rng) }
    }
}

impl LinearMotionParams {
    /// The normalised line kernel, centred.
    pub fn kernel(&self) -> Kernel {
        let size = odd_side(self.length);
        let centre = (size - 1) as f32 / 2.0;
        let (dx, dy) = (self.angle.to_radians().cos(), self.angle.to_radians().sin());
        let splats = (self.length * LINE_SPLATS_PER_PIXEL).ceil().max(1.0) as usize;
        let mut weights = vec![0.0; size * size];
        for index in 0..=splats {
            let along = (index as f32 / splats as f32 - 0.5) * (self.length - 1.0).max(0.0);
            splat(&mut weights, size, size, centre + along * dx, centre + along * dy, 1.0);
        }
        Kernel { size, weights }.normalised()
    }

    /// Pixels of context the blur reads beyond an output pixel.
    pub fn margin(&self) -> usize {
        odd_side(self.length) / 2
    }

    /// Blurs every channel (reflect borders).
    pub fn apply(&self, clean: &Rgb) -> Rgb {
        blur_image(clean, &self.kernel())
    }
}

/// Defocus: disk radii to draw from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DefocusSpec {
    /// Radius of the circle of confusion in pixels (0 = sharp).
    pub radius: Span,
}

/// One defocus disk.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct DefocusParams {
    /// Radius in pixels.
    pub radius: f32,
}

impl Default for DefocusSpec {
    fn default() -> Self {
        Self { radius: Span::new(1.0, 6.0) }
    }
}

impl DefocusSpec {
    /// Checks `0 <= radius <= 50`.
    pub fn check(&self) -> Result<()> {
        self.radius.check("defocus_blur.radius", 0.0, 50.0)
    }

    /// Draws a radius.
    pub fn sample(&self, rng: &mut DataRng) -> DefocusParams {
        DefocusParams { radius: self.radius.sample(rng) }
    }
}

impl DefocusParams {
    /// The normalised disk kernel: each tap weighs the share of its pixel inside the disk.
    pub fn kernel(&self) -> Kernel {
        let size = odd_side(2.0 * self.radius + 1.0);
        let centre = (size - 1) as f32 / 2.0;
        let radius = self.radius.max(0.5);
        let weights = (0..size * size)
            .map(|index| {
                let (row, column) = ((index / size) as f32 - centre, (index % size) as f32 - centre);
                let inside = (0..DISK_SUBSAMPLES * DISK_SUBSAMPLES)
                    .filter(|sub| {
                        let offset = |k: usize| (k as f32 + 0.5) / DISK_SUBSAMPLES as f32 - 0.5;
                        let (y, x) = (row + offset(sub / DISK_SUBSAMPLES), column + offset(sub % DISK_SUBSAMPLES));
                        x * x + y * y <= radius * radius
                    })
                    .count();
                inside as f32
            })
            .collect();
        Kernel { size, weights }.normalised()
    }

    /// Pixels of context the blur reads beyond an output pixel.
    pub fn margin(&self) -> usize {
        odd_side(2.0 * self.radius + 1.0) / 2
    }

    /// Blurs every channel (reflect borders).
    pub fn apply(&self, clean: &Rgb) -> Rgb {
        blur_image(clean, &self.kernel())
    }
}

/// Anisotropic Gaussian blur: widths, elongations and orientations to draw from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GaussianBlurSpec {
    /// Standard deviation along the major axis, in pixels.
    pub sigma: Span,
    /// Ratio of the major to the minor standard deviation (1 = isotropic).
    pub anisotropy: Span,
    /// Orientation of the major axis in degrees from horizontal.
    pub angle: Span,
}

/// One Gaussian blur.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct GaussianBlurParams {
    /// Major-axis standard deviation in pixels.
    pub sigma: f32,
    /// Major over minor standard deviation.
    pub anisotropy: f32,
    /// Orientation in degrees.
    pub angle: f32,
}

impl Default for GaussianBlurSpec {
    fn default() -> Self {
        Self { sigma: Span::new(0.8, 4.0), anisotropy: Span::new(1.0, 3.0), angle: Span::new(0.0, 180.0) }
    }
}

impl GaussianBlurSpec {
    /// Checks `0 <= sigma <= 20`, `1 <= anisotropy <= 10` and `-360 <= angle <= 360`.
    pub fn check(&self) -> Result<()> {
        self.sigma.check("gaussian_blur.sigma", 0.0, 20.0)?;
        self.anisotropy.check("gaussian_blur.anisotropy", 1.0, 10.0)?;
        self.angle.check("gaussian_blur.angle", -360.0, 360.0)
    }

    /// Draws a width, elongation and orientation.
    pub fn sample(&self, rng: &mut DataRng) -> GaussianBlurParams {
        GaussianBlurParams { sigma: self.sigma.sample(rng), anisotropy: self.anisotropy.sample(rng), angle: self.angle.sample(rng) }
    }
}

impl GaussianBlurParams {
    /// The normalised kernel, truncated at three major standard deviations.
    pub fn kernel(&self) -> Kernel {
        if self.sigma <= 0.0 {
            return Kernel::identity();
        }
        let size = odd_side(6.0 * self.sigma + 1.0);
        let centre = (size - 1) as f32 / 2.0;
        let (cos, sin) = (self.angle.to_radians().cos(), self.angle.to_radians().sin());
        let minor = (self.sigma / self.anisotropy.max(1.0)).max(0.2);
        let weights = (0..size * size)
            .map(|index| {
                let (y, x) = ((index / size) as f32 - centre, (index % size) as f32 - centre);
                let (along, across) = (x * cos + y * sin, -x * sin + y * cos);
                (-0.5 * ((along / self.sigma).powi(2) + (across / minor).powi(2))).exp()
            })
            .collect();
        Kernel { size, weights }.normalised()
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

/// The smallest odd side holding `extent` pixels.
fn odd_side(extent: f32) -> usize {
    (extent.ceil().max(1.0) as usize) | 1
}
