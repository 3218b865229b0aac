//! Spatial filters on single `[height, width]` planes with reflect borders.

use crate::rgb::reflect;

/// A square, odd-sized 2-D kernel, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    /// Side length (odd).
    pub size: usize,
    /// `size * size` weights.
    pub weights: Vec<f32>,
}

impl Kernel {
    /// The 1x1 identity kernel.
    pub fn identity() -> Self {
        Self { size: 1, weights: vec![1.0] }
    }

    /// Sum of the weights.
    pub fn sum(&self) -> f32 {
        self.weights.iter().sum()
    }

    /// Scales the weights to sum to one (a kernel of zeros becomes the identity).
    pub fn normalised(mut self) -> Self {
        let sum = self.sum();
        if sum <= 0.0 {
            return Self::identity();
        }
        self.weights.iter_mut().for_each(|weight| *weight /= sum);
        self
    }

    /// The full 2-D convolution of two kernels (used to add defocus to a motion kernel).
    pub fn convolve(&self, other: &Kernel) -> Kernel {
        let size = self.size + other.size - 1;
        let mut weights = vec![0.0; size * size];
        for (a_index, &a) in self.weights.iter().enumerate() {
            let (ay, ax) = (a_index / self.size, a_index % self.size);
            for (b_index, &b) in other.weights.iter().enumerate() {
                let (by, bx) = (b_index / other.size, b_index % other.size);
                weights[(ay + by) * size + ax + bx] += a * b;
            }
        }
        Kernel { size, weights }
    }
}

/// The normalised 1-D Gaussian of standard deviation `sigma`, truncated at 3 sigma.
pub fn gaussian_1d(sigma: f32) -> Vec<f32> {
    if sigma <= 0.0 {
        return vec![1.0];
    }
    let radius = (3.0 * sigma).ceil() as isize;
    let taps: Vec<f32> = (-radius..=radius).map(|x| (-(x * x) as f32 / (2.0 * sigma * sigma)).exp()).collect();
    let sum: f32 = taps.iter().sum();
    taps.into_iter().map(|tap| tap / sum).collect()
}

/// The normalised 2-D Gaussian kernel of standard deviation `sigma`.
pub fn gaussian_kernel(sigma: f32) -> Kernel {
    let taps = gaussian_1d(sigma);
    let size = taps.len();
    let weights = (0..size * size).map(|index| taps[index / size] * taps[index % size]).collect();
    Kernel { size, weights }
}

/// Correlates `plane` with `kernel` (centred), mirroring samples beyond the border.
pub fn convolve(plane: &[f32], width: usize, height: usize, kernel: &Kernel) -> Vec<f32> {
    if kernel.size == 1 {
        return plane.iter().map(|value| value * kernel.weights[0]).collect();
    }
    let radius = (kernel.size / 2) as isize;
    let padded_width = width + 2 * radius as usize;
    let padded_height = height + 2 * radius as usize;
    let mut padded = vec![0.0; padded_width * padded_height];
    for y in 0..padded_height {
        let source_row = reflect(y as isize - radius, height) * width;
        for x in 0..padded_width {
            padded[y * padded_width + x] = plane[source_row + reflect(x as isize - radius, width)];
        }
    }
    let mut out = vec![0.0; width * height];
    for (tap, &weight) in kernel.weights.iter().enumerate() {
        if weight == 0.0 {
            continue;
        }
        let (ky, kx) = (tap / kernel.size, tap % kernel.size);
        for y in 0..height {
            let source = &padded[(y + ky) * padded_width + kx..][..width];
            let target = &mut out[y * width..][..width];
            target.iter_mut().zip(source).for_each(|(acc, &value)| *acc += weight * value);
        }
    }
    out
}

/// Separable correlation with the same 1-D kernel along rows and columns.
pub fn separable(plane: &[f32], width: usize, height: usize, taps: &[f32]) -> Vec<f32> {
    let radius = (taps.len() / 2) as isize;
    let mut rows = vec![0.0; width * height];
    for y in 0..height {
        for x in 0..width {
            rows[y * width + x] =
                taps.iter().enumerate().map(|(k, &t)| t * plane[y * width + reflect(x as isize + k as isize - radius, width)]).sum();
        }
    }
    let mut out = vec![0.0; width * height];
    for y in 0..height {
        for (k, &t) in taps.iter().enumerate() {
            let source = &rows[reflect(y as isize + k as isize - radius, height) * width..][..width];
            out[y * width..][..width].iter_mut().zip(source).for_each(|(acc, &value)| *acc += t * value);
        }
    }
    out
}

/// Gaussian blur of standard deviation `sigma` (identity for `sigma <= 0`).
pub fn gaussian_blur(plane: &[f32], width: usize, height: usize, sigma: f32) -> Vec<f32> {
    if sigma <= 0.0 { plane.to_vec() } else { separable(plane, width, height, &gaussian_1d(sigma)) }
}

/// Mean over a `(2 radius + 1)^2` window.
pub fn box_blur(plane: &[f32], width: usize, height: usize, radius: usize) -> Vec<f32> {
    let taps = vec![1.0 / (2 * radius + 1) as f32; 2 * radius + 1];
    separable(plane, width, height, &taps)
}

/// Minimum over a `(2 radius + 1)^2` window (separable: min of mins).
pub fn min_filter(plane: &[f32], width: usize, height: usize, radius: usize) -> Vec<f32> {
    let r = radius as isize;
    let mut rows = vec![0.0; width * height];
    for y in 0..height {
        for x in 0..width {
            rows[y * width + x] = (-r..=r).map(|d| plane[y * width + reflect(x as isize + d, width)]).fold(f32::INFINITY, f32::min);
        }
    }
    let mut out = vec![0.0; width * height];
    for y in 0..height {
        for x in 0..width {
            out[y * width + x] = (-r..=r).map(|d| rows[reflect(y as isize + d, height) * width + x]).fold(f32::INFINITY, f32::min);
        }
    }
    out
}

/// Adds `amount` at the sub-pixel position `(x, y)` of a `width x height` plane with bilinear
/// weights, which keep the point's centre of mass exactly (weights off the plane are dropped).
pub fn splat(layer: &mut [f32], width: usize, height: usize, x: f32, y: f32, amount: f32) {
    let (left, top) = (x.floor(), y.floor());
    let (fx, fy) = (x - left, y - top);
    for (dy, wy) in [(0.0, 1.0 - fy), (1.0, fy)] {
        for (dx, wx) in [(0.0, 1.0 - fx), (1.0, fx)] {
            let (column, row) = (left + dx, top + dy);
            if column >= 0.0 && row >= 0.0 && (column as usize) < width && (row as usize) < height {
                layer[row as usize * width + column as usize] += amount * wx * wy;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_normalised_kernels_preserve_flat_images() {
        let flat = vec![0.25; 6 * 5];
        assert_eq!(convolve(&flat, 6, 5, &Kernel::identity()), flat);
        let blurred = convolve(&flat, 6, 5, &gaussian_kernel(1.0));
        assert!(blurred.iter().all(|&value| (value - 0.25).abs() < 1e-6));
        assert!(box_blur(&flat, 6, 5, 2).iter().all(|&value| (value - 0.25).abs() < 1e-6));
    }

    #[test]
    fn convolution_matches_the_separable_path() {
        let plane: Vec<f32> = (0..7 * 9).map(|index| ((index * 37) % 11) as f32).collect();
        let direct = convolve(&plane, 7, 9, &gaussian_kernel(1.3));
        let separated = gaussian_blur(&plane, 7, 9, 1.3);
        direct.iter().zip(&separated).for_each(|(a, b)| assert!((a - b).abs() < 1e-4, "{a} vs {b}"));
    }

    #[test]
    fn kernel_convolution_keeps_the_sum_and_grows_the_support() {
        let combined = gaussian_kernel(1.0).convolve(&gaussian_kernel(0.5));
        assert_eq!(combined.size, 7 + 5 - 1, "radius 3 sigma: 7 taps at sigma 1, 5 at sigma 0.5");
        assert!((combined.sum() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn min_filter_spreads_the_minimum() {
        let mut plane = vec![1.0; 25];
        plane[12] = 0.0;
        let filtered = min_filter(&plane, 5, 5, 1);
        assert_eq!(filtered.iter().filter(|&&value| value == 0.0).count(), 9);
    }
}
