//! What the recogniser looks at: the whole photo shrunk to [`GLOBAL_SIDE`] pixels (haze, low
//! light, colour casts, the layout of rain and snow) and [`LOCAL_CROPS`] crops of
//! [`LOCAL_SIDE`] pixels at full resolution (noise, streaks, flakes, the sharpness of edges,
//! which shrinking would hide).

/// Side of the shrunk whole-photo view.
pub const GLOBAL_SIDE: usize = 64;

/// Side of each full-resolution crop.
pub const LOCAL_SIDE: usize = 32;

/// Full-resolution crops per photo: the centre and the centres of the four quadrants.
pub const LOCAL_CROPS: usize = 5;

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
        Self::sampled(height, width, |channel, y, x| rgb[(channel * height + y) * width + x])
    }

    /// The views of a `height x width` photo whose sample of `channel` at (`y`, `x`) is
    /// `sample(channel, y, x)`, in `[0, 1]`: a large photo needs no float copy.
    pub fn sampled(height: usize, width: usize, sample: impl Fn(usize, usize, usize) -> f32) -> Self {
        assert!(height > 0 && width > 0, "an empty image has no views");
        Self { global: shrink(height, width, &sample), local: crops(height, width, &sample) }
    }
}

/// Box-filtered `[3, GLOBAL_SIDE, GLOBAL_SIDE]` view: each output pixel is the mean of the
/// input pixels whose centres fall in its cell (the nearest one for images smaller than the view).
fn shrink(height: usize, width: usize, sample: &impl Fn(usize, usize, usize) -> f32) -> Vec<f32> {
    let cell = |index: usize, length: usize| {
        let start = index * length / GLOBAL_SIDE;
        let end = ((index + 1) * length / GLOBAL_SIDE).max(start + 1).min(length);
        start.min(length - 1)..end
    };
    let mut out = vec![0.0; 3 * GLOBAL_SIDE * GLOBAL_SIDE];
    for channel in 0..3 {
        for y in 0..GLOBAL_SIDE {
            let rows = cell(y, height);
            for x in 0..GLOBAL_SIDE {
                let columns = cell(x, width);
                let count = (rows.len() * columns.len()) as f32;
                let sum: f32 = rows.clone().map(|row| columns.clone().map(|column| sample(channel, row, column)).sum::<f32>()).sum();
                out[(channel * GLOBAL_SIDE + y) * GLOBAL_SIDE + x] = sum / count;
            }
        }
    }
    out
}

/// The [`LOCAL_CROPS`] full-resolution crops, centred at the photo's centre and its quadrants'.
fn crops(height: usize, width: usize, sample: &impl Fn(usize, usize, usize) -> f32) -> Vec<f32> {
    let centres = [(2, 2), (1, 1), (1, 3), (3, 1), (3, 3)].map(|(fy, fx): (usize, usize)| (height * fy / 4, width * fx / 4));
    let mut out = Vec::with_capacity(LOCAL_CROPS * 3 * LOCAL_SIDE * LOCAL_SIDE);
    for (cy, cx) in centres {
        let top = cy.saturating_sub(LOCAL_SIDE / 2).min(height.saturating_sub(LOCAL_SIDE));
        let left = cx.saturating_sub(LOCAL_SIDE / 2).min(width.saturating_sub(LOCAL_SIDE));
        for channel in 0..3 {
            for y in 0..LOCAL_SIDE {
                for x in 0..LOCAL_SIDE {
                    out.push(sample(channel, (top + y).min(height - 1), (left + x).min(width - 1)));
                }
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
        // The centre crop starts at (34, 84) and steps one pixel at a time.
        assert_eq!(views.local[0], (34 * width + 84) as f32);
        assert_eq!(views.local[1] - views.local[0], 1.0);
        let tiny = Views::of(&[0.5; 3 * 4 * 6], 4, 6);
        assert!(tiny.local.iter().chain(&tiny.global).all(|&v| v == 0.5));
    }
}
