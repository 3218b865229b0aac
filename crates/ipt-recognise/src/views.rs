//! What the recogniser looks at: the whole photo shrunk to [`GLOBAL_SIDE`] pixels (haze, low
//! light, colour casts, the layout of rain and snow) and [`LOCAL_CROPS`] crops of
//! [`LOCAL_SIDE`] pixels at full resolution (noise, streaks, flakes, the sharpness of edges,
//! which shrinking would hide).
//!
//! Making the views reads a bounded number of pixels whatever the photo's size (at most
//! [`CELL_SAMPLES`]² per view pixel, plus the crops), so recognising a 12-MP photo costs about
//! what recognising a small one does.

use image::{DynamicImage, GenericImageView};

/// Side of the shrunk whole-photo view.
pub const GLOBAL_SIDE: usize = 64;

/// Side of each full-resolution crop.
pub const LOCAL_SIDE: usize = 48;

/// Full-resolution crops per photo: centred on a 3x3 grid over the photo, the centre first.
pub const LOCAL_CROPS: usize = 9;

/// Most rows (and columns) of a view pixel's cell that are averaged: a larger cell is sampled
/// on an even grid of this many rows and columns. The training windows (96-320 px) have cells
/// of at most 5 px, which are averaged whole.
pub const CELL_SAMPLES: usize = 8;

/// The two views of one photo, as planar RGB in `[0, 1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Views {
    /// `[3, GLOBAL_SIDE, GLOBAL_SIDE]`: the photo averaged over equal areas.
    pub global: Vec<f32>,
    /// `[LOCAL_CROPS, 3, LOCAL_SIDE, LOCAL_SIDE]`: the crops, clamped at the photo's edges when
    /// it is smaller than a crop.
    pub local: Vec<f32>,
}

impl Views {
    /// The views of `[3, height, width]` planar RGB samples; panics if the length disagrees.
    pub fn of(rgb: &[f32], height: usize, width: usize) -> Self {
        assert_eq!(rgb.len(), 3 * height * width, "planar RGB of {height}x{width}");
        let plane = height * width;
        Self::sampled(height, width, |y, x| {
            let at = y * width + x;
            [rgb[at], rgb[plane + at], rgb[2 * plane + at]]
        })
    }

    /// The views of a decoded image of any format (alpha ignored, grey as equal channels).
    pub fn of_image(image: &DynamicImage) -> Self {
        let (width, height) = (image.width() as usize, image.height() as usize);
        match image {
            // The common case reads the buffer directly; the others convert pixel by pixel.
            DynamicImage::ImageRgb8(rgb) => {
                let bytes = rgb.as_raw();
                Self::sampled(height, width, |y, x| {
                    let at = 3 * (y * width + x);
                    [bytes[at], bytes[at + 1], bytes[at + 2]].map(|value| f32::from(value) / 255.0)
                })
            }
            other => Self::sampled(height, width, |y, x| {
                let pixel = other.get_pixel(x as u32, y as u32).0;
                [pixel[0], pixel[1], pixel[2]].map(|value| f32::from(value) / 255.0)
            }),
        }
    }

    /// The views of a `height x width` photo whose pixel at (`y`, `x`) is `pixel(y, x)`, RGB in
    /// `[0, 1]`: a large photo needs no float copy.
    pub fn sampled(height: usize, width: usize, pixel: impl Fn(usize, usize) -> [f32; 3]) -> Self {
        assert!(height > 0 && width > 0, "an empty image has no views");
        Self { global: shrink(height, width, &pixel), local: crops(height, width, &pixel) }
    }
}

/// Box-filtered `[3, GLOBAL_SIDE, GLOBAL_SIDE]` view: each output pixel is the mean of the
/// input pixels whose centres fall in its cell (the nearest one for images smaller than the
/// view), sampled on a grid of at most [`CELL_SAMPLES`] rows and columns for large cells.
fn shrink(height: usize, width: usize, pixel: &impl Fn(usize, usize) -> [f32; 3]) -> Vec<f32> {
    let cell = |index: usize, length: usize| -> Vec<usize> {
        let start = (index * length / GLOBAL_SIDE).min(length - 1);
        let end = ((index + 1) * length / GLOBAL_SIDE).max(start + 1).min(length);
        let span = end - start;
        let count = span.min(CELL_SAMPLES);
        (0..count).map(|i| start + (2 * i + 1) * span / (2 * count)).collect()
    };
    let columns: Vec<Vec<usize>> = (0..GLOBAL_SIDE).map(|x| cell(x, width)).collect();
    let plane = GLOBAL_SIDE * GLOBAL_SIDE;
    let mut out = vec![0.0; 3 * plane];
    for y in 0..GLOBAL_SIDE {
        let rows = cell(y, height);
        for (x, columns) in columns.iter().enumerate() {
            let mut sum = [0.0f32; 3];
            for &row in &rows {
                for &column in columns {
                    let value = pixel(row, column);
                    (0..3).for_each(|channel| sum[channel] += value[channel]);
                }
            }
            let count = (rows.len() * columns.len()) as f32;
            (0..3).for_each(|channel| out[channel * plane + y * GLOBAL_SIDE + x] = sum[channel] / count);
        }
    }
    out
}

/// The [`LOCAL_CROPS`] full-resolution crops, centred at sixths 1, 3 and 5 of the photo's
/// height and width (the centre first).
fn crops(height: usize, width: usize, pixel: &impl Fn(usize, usize) -> [f32; 3]) -> Vec<f32> {
    const GRID: [(usize, usize); LOCAL_CROPS] = [(3, 3), (1, 1), (1, 3), (1, 5), (3, 1), (3, 5), (5, 1), (5, 3), (5, 5)];
    let centres = GRID.map(|(fy, fx)| (height * fy / 6, width * fx / 6));
    let plane = LOCAL_SIDE * LOCAL_SIDE;
    let mut out = vec![0.0; LOCAL_CROPS * 3 * plane];
    for (crop, (cy, cx)) in centres.into_iter().enumerate() {
        let top = cy.saturating_sub(LOCAL_SIDE / 2).min(height.saturating_sub(LOCAL_SIDE));
        let left = cx.saturating_sub(LOCAL_SIDE / 2).min(width.saturating_sub(LOCAL_SIDE));
        let out = &mut out[crop * 3 * plane..(crop + 1) * 3 * plane];
        for y in 0..LOCAL_SIDE {
            for x in 0..LOCAL_SIDE {
                let value = pixel((top + y).min(height - 1), (left + x).min(width - 1));
                (0..3).for_each(|channel| out[channel * plane + y * LOCAL_SIDE + x] = value[channel]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinking_averages_equal_areas() {
        // 128x128: each view pixel averages a 2x2 block.
        let (height, width) = (128, 128);
        let rgb: Vec<f32> = (0..3 * height * width).map(|i| (i % width) as f32).collect();
        let views = Views::of(&rgb, height, width);
        assert_eq!(views.global[0], 0.5);
        assert_eq!(views.global[1], 2.5);
        assert_eq!(views.global.len(), 3 * GLOBAL_SIDE * GLOBAL_SIDE);
    }

    #[test]
    fn crops_keep_full_resolution_and_small_photos_are_clamped() {
        let (height, width) = (100, 200);
        let rgb: Vec<f32> = (0..3 * height * width).map(|i| (i % (height * width)) as f32).collect();
        let views = Views::of(&rgb, height, width);
        assert_eq!(views.local.len(), LOCAL_CROPS * 3 * LOCAL_SIDE * LOCAL_SIDE);
        // The centre crop starts at (26, 76) and steps one pixel at a time.
        assert_eq!(views.local[0], (26 * width + 76) as f32);
        assert_eq!(views.local[1] - views.local[0], 1.0);
        let tiny = Views::of(&[0.5; 3 * 4 * 6], 4, 6);
        assert!(tiny.local.iter().chain(&tiny.global).all(|&v| v == 0.5));
    }

    #[test]
    fn large_cells_are_sampled_evenly_and_images_match_planar_samples() {
        // 6400 px wide: cells of 100 columns, sampled at 8 evenly spread ones (6, 18, ..., 93).
        let (height, width) = (64, 6400);
        let rgb: Vec<f32> = (0..3 * height * width).map(|i| (i % width) as f32).collect();
        let views = Views::of(&rgb, height, width);
        let expected = [6, 18, 31, 43, 56, 68, 81, 93].iter().sum::<usize>() as f32 / 8.0;
        assert_eq!(views.global[0], expected);
        assert_eq!(views.global[1], expected + 100.0);
        // An 8-bit image gives the views of its samples divided by 255, in every format.
        let photo = image::RgbImage::from_fn(300, 200, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 256) as u8]));
        let planar: Vec<f32> = (0..3).flat_map(|channel| photo.pixels().map(move |pixel| f32::from(pixel.0[channel]) / 255.0)).collect();
        let reference = Views::of(&planar, 200, 300);
        let rgb = DynamicImage::ImageRgb8(photo);
        assert_eq!(Views::of_image(&rgb), reference);
        assert_eq!(Views::of_image(&DynamicImage::ImageRgba8(rgb.to_rgba8())), reference);
    }
}
