//! Reflect-padding to the network's size multiple and cropping back (NAFNet's
//! `check_image_size`), so any input size works.

use burn::tensor::{Device, Int, Tensor, TensorData};

/// Pads the bottom and right edges of `[batch, C, H, W]` by reflection up to multiples of
/// `multiple`. Reflection repeats periodically, so pads longer than the image are fine.
pub fn reflect_pad(x: Tensor<4>, multiple: usize) -> Tensor<4> {
    let [_, _, height, width] = x.dims();
    let device = x.device();
    let x = pad_axis(x, 2, height, height.next_multiple_of(multiple), &device);
    pad_axis(x, 3, width, width.next_multiple_of(multiple), &device)
}

/// Keeps the top-left `height x width` pixels: the inverse of [`reflect_pad`].
pub fn crop(x: Tensor<4>, height: usize, width: usize) -> Tensor<4> {
    let [batch, channels, _, _] = x.dims();
    x.slice([0..batch, 0..channels, 0..height, 0..width])
}

fn pad_axis(x: Tensor<4>, axis: usize, length: usize, padded: usize, device: &Device) -> Tensor<4> {
    if padded == length {
        return x;
    }
    let indices: Vec<i64> = (0..padded).map(|i| reflect_index(i, length) as i64).collect();
    let indices = Tensor::<1, Int>::from_data(TensorData::new(indices, [padded]), device);
    x.select(axis, indices)
}

/// Index into `0..length` of position `i` of the periodic reflection `0 1 .. n-1 n-2 .. 1 0 1 ..`.
fn reflect_index(i: usize, length: usize) -> usize {
    if length == 1 {
        return 0;
    }
    let period = 2 * (length - 1);
    let phase = i % period;
    if phase < length { phase } else { period - phase }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn reflection_matches_numpy_reflect() {
        // numpy.pad(np.arange(3), (0, 7), mode="reflect") = [0 1 2 1 0 1 2 1 0 1]
        let got: Vec<usize> = (0..10).map(|i| reflect_index(i, 3)).collect();
        assert_eq!(got, [0, 1, 2, 1, 0, 1, 2, 1, 0, 1]);
        assert_eq!(reflect_index(5, 1), 0);
    }

    #[test]
    fn pad_then_crop_round_trips() {
        let device = Device::flex();
        let x = Tensor::<4>::random([1, 3, 37, 53], Distribution::Default, &device);
        let padded = reflect_pad(x.clone(), 16);
        assert_eq!(padded.dims(), [1, 3, 48, 64]);
        crop(padded, 37, 53).into_data().assert_eq(&x.into_data(), true);
    }

    #[test]
    fn padding_mirrors_the_edge() {
        let device = Device::flex();
        let x = Tensor::<4>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0], [1, 1, 1, 3]), &device);
        let padded = reflect_pad(x, 8);
        assert_eq!(padded.dims(), [1, 1, 8, 8]);
        // Every row is a copy of the single input row, mirrored past its end.
        let expected = TensorData::new(vec![1.0f32, 2.0, 3.0, 2.0, 1.0, 2.0, 3.0, 2.0], [1, 1, 1, 8]);
        padded.slice([0..1, 0..1, 7..8, 0..8]).into_data().assert_eq(&expected, false);
    }
}
