//! The two self-attentions of an IPT-V2 block: focal context (channel attention in shifted
//! windows) and global grid (spatial attention across a sparse grid).

use burn::module::{Module, Param};
use burn::tensor::Tensor;
use ipt_modulation::{ModulatedConv2d, TaskWeights};

use crate::LayerGroup;
use crate::modulation::LayerBuilder;
use ipt_kernels::{matmul, normalized_qkv, permute_contiguous, softmax_last};

/// Focal context self-attention: transposed (channel-to-channel) attention computed inside
/// non-overlapping `window x window` windows, shifted by half a window on alternate blocks.
///
/// q and k are L2-normalised over the window's pixels and scaled by a learned per-head
/// temperature (Restormer's MDTA, restricted to a window as IPT-V2 describes).
#[derive(Module, Debug)]
pub struct FocalContextAttention {
    /// 1x1 conv `C -> 3C` producing q, k, v (paper group: QKV).
    pub qkv: ModulatedConv2d,
    /// Depth-wise 3x3 conv on q, k, v: local context before attention (group: QKV).
    pub qkv_dwconv: ModulatedConv2d,
    /// Learned per-head scale of the attention logits, `[heads]`.
    pub temperature: Param<Tensor<1>>,
    /// 1x1 conv after attention (group: post-attention projection).
    pub attn_proj: ModulatedConv2d,
    heads: usize,
    window: usize,
    shift: usize,
}

impl FocalContextAttention {
    /// Attention over `channels` channels; `shifted` rolls the windows by half a window.
    pub(crate) fn new(channels: usize, heads: usize, window: usize, shifted: bool, layers: &LayerBuilder) -> Self {
        Self {
            qkv: layers.conv(LayerGroup::Qkv, channels, 3 * channels, 1, 1, false),
            qkv_dwconv: layers.conv(LayerGroup::Qkv, 3 * channels, 3 * channels, 3, 3 * channels, false),
            temperature: Param::from_tensor(Tensor::ones([heads], layers.device)),
            attn_proj: layers.conv(LayerGroup::AttnProj, channels, channels, 1, 1, false),
            heads,
            window,
            shift: if shifted { window / 2 } else { 0 },
        }
    }

    /// # Shapes
    /// - input: `[batch, C, H, W]`, `H` and `W` multiples of the window size
    /// - output: `[batch, C, H, W]`
    pub fn forward(&self, x: Tensor<4>, tasks: Option<&TaskWeights>) -> Tensor<4> {
        let [batch, channels, height, width] = x.dims();
        let head_dim = channels / self.heads;
        let qkv = self.qkv_dwconv.forward(self.qkv.forward(x, tasks), tasks); // [B, 3C, H, W]
        let qkv = roll_spatial(qkv, -(self.shift as i64));
        let windows = window_partition(qkv, self.window); // [N, 3C, w*w]
        let [count, _, pixels] = windows.dims();
        // q, k, v stay strided views [N, 1, heads, d, w*w]: on flex a reshape of a view copies it.
        let [q, k, v] = normalized_qkv(windows.reshape([count, 3, self.heads, head_dim, pixels]));
        let temperature = self.temperature.val().reshape([1, 1, self.heads, 1, 1]);
        let logits = matmul(q, k.swap_dims(3, 4)) * temperature; // [N, 1, heads, d, d]
        let out = matmul(softmax_last(logits), v); // [N, 1, heads, d, w*w]
        let out = window_merge(out.reshape([count, channels, pixels]), batch, height, width, self.window);
        self.attn_proj.forward(roll_spatial(out, self.shift as i64), tasks)
    }
}

/// Global grid self-attention: spatial attention among the `grid x grid` pixels that sit at the
/// same offset in each cell of a `grid x grid` partition (MaxViT's grid attention), so every
/// token sees the whole image sparsely.
#[derive(Module, Debug)]
pub struct GridAttention {
    /// 1x1 conv `C -> 3C` producing q, k, v (paper group: QKV).
    pub qkv: ModulatedConv2d,
    /// 1x1 conv after attention (group: post-attention projection).
    pub attn_proj: ModulatedConv2d,
    heads: usize,
    grid: usize,
}

impl GridAttention {
    /// Attention over `channels` channels split into `heads` heads.
    pub(crate) fn new(channels: usize, heads: usize, grid: usize, layers: &LayerBuilder) -> Self {
        Self {
            qkv: layers.conv(LayerGroup::Qkv, channels, 3 * channels, 1, 1, false),
            attn_proj: layers.conv(LayerGroup::AttnProj, channels, channels, 1, 1, false),
            heads,
            grid,
        }
    }

    /// # Shapes
    /// - input: `[batch, C, H, W]`, `H` and `W` multiples of the grid size
    /// - output: `[batch, C, H, W]`
    pub fn forward(&self, x: Tensor<4>, tasks: Option<&TaskWeights>) -> Tensor<4> {
        let [batch, channels, height, width] = x.dims();
        let head_dim = channels / self.heads;
        let tokens = grid_partition(self.qkv.forward(x, tasks), self.grid); // [N, 3C, g*g]
        let [count, _, length] = tokens.dims();
        // Channels-first tokens: q, k, v are strided views [N, 1, heads, d, T] and the products
        // read them transposed, so nothing is copied between the partition and the merge.
        let [q, k, v] = tokens
            .reshape([count, 3, self.heads, head_dim, length])
            .chunk(3, 1)
            .try_into()
            .expect("chunk(3) of a dimension of size 3 gives three parts");
        let scale = (head_dim as f64).powf(-0.5);
        let logits = matmul(q.swap_dims(3, 4), k) * scale; // [N, 1, heads, T, T]
        let out = matmul(v, softmax_last(logits).swap_dims(3, 4)); // [N, 1, heads, d, T]
        let out = out.reshape([count, channels, length]);
        self.attn_proj.forward(grid_merge(out, batch, height, width, self.grid), tasks)
    }
}

/// Cyclic shift of both spatial axes by `shift` pixels (no-op for 0).
fn roll_spatial(x: Tensor<4>, shift: i64) -> Tensor<4> {
    if shift == 0 {
        return x;
    }
    x.roll(&[shift, shift], &[2, 3])
}

/// `[B, C, H, W]` -> `[B * H/w * W/w, C, w * w]`, windows in row-major order.
fn window_partition(x: Tensor<4>, window: usize) -> Tensor<3> {
    let [batch, channels, height, width] = x.dims();
    let (rows, cols) = (height / window, width / window);
    permute_contiguous(x.reshape([batch, channels, rows, window, cols, window]), [0, 2, 4, 1, 3, 5]).reshape([
        batch * rows * cols,
        channels,
        window * window,
    ])
}

/// Inverse of [`window_partition`].
fn window_merge(x: Tensor<3>, batch: usize, height: usize, width: usize, window: usize) -> Tensor<4> {
    let [_, channels, _] = x.dims();
    let (rows, cols) = (height / window, width / window);
    permute_contiguous(x.reshape([batch, rows, cols, channels, window, window]), [0, 3, 1, 4, 2, 5])
        .reshape([batch, channels, height, width])
}

/// `[B, C, H, W]` -> `[B * H/g * W/g, C, g * g]`: each group holds the pixels at one offset of
/// every cell of a `g x g` grid.
fn grid_partition(x: Tensor<4>, grid: usize) -> Tensor<3> {
    let [batch, channels, height, width] = x.dims();
    let (cell_h, cell_w) = (height / grid, width / grid);
    permute_contiguous(x.reshape([batch, channels, grid, cell_h, grid, cell_w]), [0, 3, 5, 1, 2, 4]).reshape([
        batch * cell_h * cell_w,
        channels,
        grid * grid,
    ])
}

/// Inverse of [`grid_partition`].
fn grid_merge(x: Tensor<3>, batch: usize, height: usize, width: usize, grid: usize) -> Tensor<4> {
    let [_, channels, _] = x.dims();
    let (cell_h, cell_w) = (height / grid, width / grid);
    permute_contiguous(x.reshape([batch, cell_h, cell_w, channels, grid, grid]), [0, 3, 4, 1, 5, 2])
        .reshape([batch, channels, height, width])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, TensorData};

    fn device() -> Device {
        Device::flex()
    }

    #[test]
    fn window_partition_round_trips() {
        let x = Tensor::<4>::random([2, 3, 16, 8], Distribution::Default, &device());
        let merged = window_merge(window_partition(x.clone(), 4), 2, 16, 8, 4);
        merged.into_data().assert_eq(&x.into_data(), true);
    }

    #[test]
    fn grid_partition_round_trips() {
        let x = Tensor::<4>::random([2, 3, 16, 8], Distribution::Default, &device());
        let merged = grid_merge(grid_partition(x.clone(), 4), 2, 16, 8, 4);
        merged.into_data().assert_eq(&x.into_data(), true);
    }

    #[test]
    fn grid_groups_hold_pixels_one_cell_apart() {
        // One channel whose value is its flat index: the first group is offset (0, 0) of every
        // 2x2 cell of a 4x4 image split by a 2x2 grid: pixels (0,0), (0,2), (2,0), (2,2).
        let values: Vec<f32> = (0..16).map(|i| i as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(values, [1, 1, 4, 4]), &device());
        let groups = grid_partition(x, 2); // [4, 1, 4]
        let first = groups.slice([0..1, 0..1, 0..4]).reshape([4]);
        first.into_data().assert_eq(&TensorData::from([0.0f32, 2.0, 8.0, 10.0]), false);
    }

    #[test]
    fn windows_hold_contiguous_pixels() {
        let values: Vec<f32> = (0..16).map(|i| i as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(values, [1, 1, 4, 4]), &device());
        let windows = window_partition(x, 2); // [4, 1, 4]
        let second = windows.slice([1..2, 0..1, 0..4]).reshape([4]);
        second.into_data().assert_eq(&TensorData::from([2.0f32, 3.0, 6.0, 7.0]), false);
    }
}
