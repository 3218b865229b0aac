//! Tiled inference for large images: overlapping tiles blended with linear ramps, so memory is
//! bounded by the tile size and no seams appear.

use burn::tensor::{Device, Tensor, TensorData};

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

/// A tile's place in the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileRect {
    /// First row.
    pub top: usize,
    /// First column.
    pub left: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

/// Runs `restore` on overlapping tiles of `image` and blends the results.
///
/// When one tile covers the image this is exactly `restore(image)`.
///
/// # Shapes
/// - image: `[1, C, H, W]`
/// - output: `[1, C, H, W]`
pub fn restore_tiled(image: Tensor<4>, tiling: Tiling, restore: impl Fn(Tensor<4>) -> Tensor<4>) -> Tensor<4> {
    let [batch, channels, height, width] = image.dims();
    assert_eq!(batch, 1, "tiled restoration takes one image at a time");
    let device = image.device();
    let mut output = vec![0.0f32; channels * height * width];
    let read_tile = |rect: TileRect| -> Vec<f32> {
        let (rows, cols) = (rect.top..rect.top + rect.height, rect.left..rect.left + rect.width);
        image.clone().slice([0..1, 0..channels, rows, cols]).into_data().try_into_vec().expect("images are f32")
    };
    let write_rows = |first: usize, rows: Vec<f32>| {
        let band = rows.len() / channels;
        for (c, plane) in rows.chunks_exact(band).enumerate() {
            let start = (c * height + first) * width;
            output[start..start + band].copy_from_slice(plane);
        }
    };
    restore_streamed([channels, height, width], tiling, &device, read_tile, restore, write_rows);
    Tensor::from_data(TensorData::new(output, [1, channels, height, width]), &device)
}

/// Tiled restoration that never holds the whole image in floats: `read_tile` supplies each
/// tile as planar `[C, h, w]` samples, `restore` runs on it (as `[1, C, h, w]` on `device`),
/// and `write_rows(first_row, samples)` receives the blended rows as planar `[C, n, W]`
/// samples, top to bottom, each row once, as soon as no later tile covers it. Only a band of
/// at most two tiles' height is kept in floats, so memory grows with `W x tile`, not with the
/// image.
///
/// With one tile covering the image the output is exactly `restore` of the whole image.
pub fn restore_streamed(
    [channels, height, width]: [usize; 3],
    tiling: Tiling,
    device: &Device,
    mut read_tile: impl FnMut(TileRect) -> Vec<f32>,
    restore: impl Fn(Tensor<4>) -> Tensor<4>,
    mut write_rows: impl FnMut(usize, Vec<f32>),
) {
    assert!(tiling.overlap < tiling.tile, "tile overlap {} must be below the tile size {}", tiling.overlap, tiling.tile);
    let (rows, cols) = (tiling.starts(height), tiling.starts(width));
    let (tile_h, tile_w) = (tiling.tile.min(height), tiling.tile.min(width));
    // The blending weights are separable, and so is their sum over the tile grid.
    let total = |starts: &[usize], size: usize, length: usize| {
        let mut total = vec![0.0f32; length];
        for &start in starts {
            for (p, weight) in tiling.ramp(start, size, length).into_iter().enumerate() {
                total[start + p] += weight;
            }
        }
        total
    };
    let (total_y, total_x) = (total(&rows, tile_h, height), total(&cols, tile_w, width));
    let weights_x: Vec<Vec<f32>> = cols.iter().map(|&left| tiling.ramp(left, tile_w, width)).collect();
    // Weighted sums of the rows from `band_top` on, laid out `[row, C, W]`.
    let mut band: Vec<f32> = Vec::new();
    let mut band_top = 0;
    let row_len = channels * width;
    let mut emit = |band: &mut Vec<f32>, band_top: &mut usize, until: usize| {
        let count = until - *band_top;
        if count == 0 {
            return;
        }
        let mut planes = vec![0.0f32; count * row_len];
        for (y, row) in band[..count * row_len].chunks_exact(row_len).enumerate() {
            let along_y = total_y[*band_top + y];
            for (c, values) in row.chunks_exact(width).enumerate() {
                let out = &mut planes[(c * count + y) * width..][..width];
                for ((out, value), along_x) in out.iter_mut().zip(values).zip(&total_x) {
                    *out = value / (along_y * along_x);
                }
            }
        }
        band.drain(..count * row_len);
        write_rows(*band_top, planes);
        *band_top = until;
    };
    for &top in &rows {
        emit(&mut band, &mut band_top, top);
        band.resize((top + tile_h - band_top) * row_len, 0.0);
        let weight_y = tiling.ramp(top, tile_h, height);
        for (&left, weight_x) in cols.iter().zip(&weights_x) {
            let rect = TileRect { top, left, height: tile_h, width: tile_w };
            let tile = Tensor::<4>::from_data(TensorData::new(read_tile(rect), [1, channels, tile_h, tile_w]), device);
            let restored: Vec<f32> = restore(tile).into_data().try_into_vec().expect("restored tiles are f32");
            for c in 0..channels {
                for (y, &along_y) in weight_y.iter().enumerate() {
                    let out = &mut band[(top - band_top + y) * row_len + c * width + left..][..tile_w];
                    let values = &restored[(c * tile_h + y) * tile_w..][..tile_w];
                    for ((out, value), along_x) in out.iter_mut().zip(values).zip(weight_x) {
                        *out += value * along_y * along_x;
                    }
                }
            }
        }
    }
    emit(&mut band, &mut band_top, height);
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

    /// Blends every tile into whole-image sums, as tiled restoration did before it streamed.
    fn blended_whole(
        image: &[f32],
        [channels, height, width]: [usize; 3],
        tiling: Tiling,
        restore: impl Fn(Vec<f32>, usize, usize) -> Vec<f32>,
    ) -> Vec<f32> {
        let (mut sum, mut total) = (vec![0.0f32; image.len()], vec![0.0f32; height * width]);
        let (tile_h, tile_w) = (tiling.tile.min(height), tiling.tile.min(width));
        for top in tiling.starts(height) {
            for left in tiling.starts(width) {
                let (wy, wx) = (tiling.ramp(top, tile_h, height), tiling.ramp(left, tile_w, width));
                let tile: Vec<f32> = (0..channels * tile_h * tile_w)
                    .map(|i| image[((i / (tile_h * tile_w)) * height + top + i / tile_w % tile_h) * width + left + i % tile_w])
                    .collect();
                let restored = restore(tile, tile_h, tile_w);
                for (i, value) in restored.iter().enumerate() {
                    let (c, y, x) = (i / (tile_h * tile_w), i / tile_w % tile_h, i % tile_w);
                    sum[(c * height + top + y) * width + left + x] += value * wy[y] * wx[x];
                    if c == 0 {
                        total[(top + y) * width + left + x] += wy[y] * wx[x];
                    }
                }
            }
        }
        sum.iter().enumerate().map(|(i, value)| value / total[i % (height * width)]).collect()
    }

    #[test]
    fn streaming_matches_whole_image_blending_and_hands_out_each_row_once_in_bounded_bands() {
        let device = Device::flex();
        let (shape, tiling) = ([2, 150, 97], Tiling { tile: 64, overlap: 16 });
        let image: Vec<f32> = (0..2 * 150 * 97).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect();
        // Each output depends on the whole tile, as global attention makes it.
        let restore = |tile: Vec<f32>, _h: usize, _w: usize| {
            let mean = tile.iter().sum::<f32>() / tile.len() as f32;
            tile.iter().map(|v| v * 0.5 + mean).collect::<Vec<f32>>()
        };
        let expected = blended_whole(&image, shape, tiling, restore);
        let input = Tensor::<4>::from_data(TensorData::new(image, [1, 2, 150, 97]), &device);
        let (mut next_row, mut largest_band) = (0, 0);
        let mut output = vec![0.0f32; expected.len()];
        let read_tile = |rect: TileRect| -> Vec<f32> {
            let (rows, cols) = (rect.top..rect.top + rect.height, rect.left..rect.left + rect.width);
            input.clone().slice([0..1, 0..2, rows, cols]).into_data().try_into_vec().unwrap()
        };
        let run = |tile: Tensor<4>| {
            let [_, _, h, w] = tile.dims();
            let values = restore(tile.into_data().try_into_vec().unwrap(), h, w);
            Tensor::<4>::from_data(TensorData::new(values, [1, 2, h, w]), &device)
        };
        restore_streamed(shape, tiling, &device, read_tile, run, |first, rows| {
            let count = rows.len() / (2 * 97);
            assert_eq!(first, next_row, "rows come top to bottom, each once");
            (next_row, largest_band) = (first + count, largest_band.max(count));
            for (c, plane) in rows.chunks_exact(count * 97).enumerate() {
                output[(c * 150 + first) * 97..][..count * 97].copy_from_slice(plane);
            }
        });
        assert_eq!(next_row, 150);
        assert!(largest_band <= 2 * 64, "a band of {largest_band} rows");
        let worst = output.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "largest difference {worst}");
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
