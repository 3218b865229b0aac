//! Tiled inference for large images: overlapping tiles blended with linear ramps, so memory is
//! bounded by the tile size and no seams appear.

use burn::tensor::{Tensor, TensorData};

/// How to cut an image into tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tiling {
    /// Tile side in pixels (tiles at the image edge keep this size, shifted inwards).
    pub tile: usize,
    /// Pixels shared by neighbouring tiles, blended with linear ramps. Must be below `tile`.
    pub overlap: usize,
}

impl Tiling {
    /// Tiles of `tile` pixels overlapping by an eighth of a tile (at least 16 px).
    pub fn new(tile: usize) -> Self {
        Self { tile, overlap: (tile / 8).max(16).min(tile / 2) }
    }

    /// Start offsets of the tiles along an axis of `length` pixels.
    fn starts(&self, length: usize) -> Vec<usize> {
        if length <= self.tile {
            return vec![0];
        }
        let stride = self.tile - self.overlap;
        let mut starts: Vec<usize> = (0..).map(|i| i * stride).take_while(|s| s + self.tile < length).collect();
        starts.push(length - self.tile);
        starts
    }

    /// Blending weight of each pixel of a tile at `start`, `size` long, on an axis of `length`:
    /// a ramp from ~0 to 1 over `overlap` pixels on each side that borders another tile.
    fn ramp(&self, start: usize, size: usize, length: usize) -> Vec<f32> {
        let overlap = self.overlap.min(size / 2).max(1);
        (0..size)
            .map(|p| {
                let rise = if start > 0 { ((p as f32 + 0.5) / overlap as f32).min(1.0) } else { 1.0 };
                let fall = if start + size < length { ((size - p) as f32 - 0.5).min(overlap as f32) / overlap as f32 } else { 1.0 };
                rise.min(fall)
            })
            .collect()
    }
}

/// Runs `restore` on overlapping tiles of `image` and blends the results.
///
/// When one tile covers the image this is exactly `restore(image)`.
///
/// # Shapes
/// - image: `[1, C, H, W]`
/// - output: `[1, C, H, W]`
pub fn restore_tiled(image: Tensor<4>, tiling: Tiling, restore: impl Fn(Tensor<4>) -> Tensor<4>) -> Tensor<4> {
    assert!(tiling.overlap < tiling.tile, "tile overlap {} must be below the tile size {}", tiling.overlap, tiling.tile);
    let [batch, channels, height, width] = image.dims();
    assert_eq!(batch, 1, "tiled restoration takes one image at a time");
    let (rows, cols) = (tiling.starts(height), tiling.starts(width));
    if rows.len() == 1 && cols.len() == 1 {
        return restore(image);
    }
    let device = image.device();
    let mut sum = vec![0.0f32; channels * height * width];
    let mut total_weight = vec![0.0f32; height * width];
    for &top in &rows {
        let tile_h = tiling.tile.min(height);
        let weight_y = tiling.ramp(top, tile_h, height);
        for &left in &cols {
            let tile_w = tiling.tile.min(width);
            let weight_x = tiling.ramp(left, tile_w, width);
            let tile = image.clone().slice([0..1, 0..channels, top..top + tile_h, left..left + tile_w]);
            let restored: Vec<f32> = restore(tile).into_data().try_into_vec().expect("restored tiles are f32");
            for c in 0..channels {
                for (y, &along_y) in weight_y.iter().enumerate() {
                    let row = (c * height + top + y) * width + left;
                    let tile_row = (c * tile_h + y) * tile_w;
                    for (x, &along_x) in weight_x.iter().enumerate() {
                        sum[row + x] += restored[tile_row + x] * along_y * along_x;
                    }
                }
            }
            for (y, &along_y) in weight_y.iter().enumerate() {
                let row = (top + y) * width + left;
                for (x, &along_x) in weight_x.iter().enumerate() {
                    total_weight[row + x] += along_y * along_x;
                }
            }
        }
    }
    for (index, value) in sum.iter_mut().enumerate() {
        *value /= total_weight[index % (height * width)];
    }
    Tensor::from_data(TensorData::new(sum, [1, channels, height, width]), &device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution};

    #[test]
    fn tiles_cover_the_axis_with_the_requested_overlap() {
        let tiling = Tiling { tile: 64, overlap: 16 };
        assert_eq!(tiling.starts(64), [0]);
        assert_eq!(tiling.starts(50), [0]);
        assert_eq!(tiling.starts(150), [0, 48, 86]);
    }

    #[test]
    fn identity_restoration_survives_blending() {
        let device = Device::flex();
        let image = Tensor::<4>::random([1, 3, 150, 97], Distribution::Default, &device);
        let tiled = restore_tiled(image.clone(), Tiling { tile: 64, overlap: 16 }, |tile| tile);
        tiled.into_data().assert_approx_eq::<f32>(&image.into_data(), burn::tensor::Tolerance::absolute(1e-6));
    }

    #[test]
    fn context_dependent_tiles_leave_no_seam() {
        // A horizontal ramp with slope `s` per pixel, "restored" by adding a fifth of each tile's
        // mean, as global attention makes every output depend on the whole tile. A hard cut
        // between tiles 0..128 and 112..240 would jump by 0.2 * 112 s = 22.4 s in one column;
        // blending must spread it over the 16 px overlap: at most s + 22.4 s / 16 = 2.4 s.
        let device = Device::flex();
        let (width, slope) = (300usize, 1.0f32 / 300.0);
        let values: Vec<f32> = (0..8 * width).map(|i| (i % width) as f32 * slope).collect();
        let image = Tensor::<4>::from_data(TensorData::new(values, [1, 1, 8, width]), &device);
        let restore = |tile: Tensor<4>| tile.clone() + tile.mean().reshape([1, 1, 1, 1]) * 0.2;
        let out: Vec<f32> = restore_tiled(image, Tiling { tile: 128, overlap: 16 }, restore).into_data().try_into_vec().unwrap();
        let largest_step = (0..width - 1).map(|x| out[x + 1] - out[x]).fold(0.0f32, f32::max);
        assert!(largest_step <= 2.45 * slope, "largest step {} slopes", largest_step / slope);
    }

    #[test]
    fn weights_ramp_only_towards_neighbours() {
        let tiling = Tiling { tile: 8, overlap: 4 };
        let first = tiling.ramp(0, 8, 20);
        assert_eq!(first[0], 1.0);
        assert!(first[7] < 0.2);
        let last = tiling.ramp(12, 8, 20);
        assert!(last[0] < 0.2);
        assert_eq!(last[7], 1.0);
    }
}
