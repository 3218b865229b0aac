//! The 2-D discrete Fourier transform of feature maps as matrix products: any size (Burn's FFT
//! needs powers of two, our features at inference need not be), differentiable on every
//! backend, and cheap on the few channels of an adapter.

use burn::tensor::{Device, Tensor, TensorData};

/// `[1, 1, n, n]` matrices `cos(2 pi j k / n)` and `sin(2 pi j k / n)`.
fn bases(n: usize, device: &Device) -> (Tensor<4>, Tensor<4>) {
    let angle = |j: usize, k: usize| 2.0 * std::f64::consts::PI * ((j * k) % n) as f64 / n as f64;
    let table = |f: fn(f64) -> f64| {
        let values: Vec<f32> = (0..n * n).map(|index| f(angle(index / n, index % n)) as f32).collect();
        Tensor::<4>::from_data(TensorData::new(values, [1, 1, n, n]), device)
    };
    (table(f64::cos), table(f64::sin))
}

/// The spectrum `X = F_H x F_W` (real and imaginary parts) of real `[B, C, H, W]` maps.
pub fn forward(x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
    let [_, _, height, width] = x.dims();
    let device = x.device();
    let ((cos_h, sin_h), (cos_w, sin_w)) = (bases(height, &device), bases(width, &device));
    // e^{-i a} = cos a - i sin a on both sides.
    let (rows_re, rows_im) = (cos_h.clone().matmul(x.clone()), -sin_h.clone().matmul(x));
    let real = rows_re.clone().matmul(cos_w.clone()) + rows_im.clone().matmul(sin_w.clone());
    let imaginary = rows_im.matmul(cos_w) - rows_re.matmul(sin_w);
    (real, imaginary)
}

/// The real part of the inverse transform of a `[B, C, H, W]` spectrum.
pub fn inverse(real: Tensor<4>, imaginary: Tensor<4>) -> Tensor<4> {
    let [_, _, height, width] = real.dims();
    let device = real.device();
    let ((cos_h, sin_h), (cos_w, sin_w)) = (bases(height, &device), bases(width, &device));
    // e^{+i a} = cos a + i sin a on both sides; keep the real part.
    let rows_re = cos_h.clone().matmul(real.clone()) - sin_h.clone().matmul(imaginary.clone());
    let rows_im = sin_h.matmul(real) + cos_h.matmul(imaginary);
    (rows_re.matmul(cos_w) - rows_im.matmul(sin_w)).div_scalar((height * width) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn inverse_undoes_forward_on_any_size() {
        let device = Device::flex();
        let x = Tensor::<4>::random([2, 3, 6, 10], Distribution::Default, &device);
        let (real, imaginary) = forward(x.clone());
        let error = (inverse(real, imaginary) - x).abs().max().into_scalar::<f32>();
        assert!(error < 1e-4, "{error}");
    }

    #[test]
    fn a_constant_map_has_only_a_dc_term() {
        let device = Device::flex();
        let (real, imaginary) = forward(Tensor::<4>::ones([1, 1, 4, 8], &device) * 2.0);
        let real: Vec<f32> = real.into_data().try_into_vec().unwrap();
        assert!((real[0] - 64.0).abs() < 1e-4, "DC = sum of the samples: {}", real[0]);
        assert!(real[1..].iter().all(|value| value.abs() < 1e-4));
        assert!(imaginary.abs().max().into_scalar::<f32>() < 1e-4);
    }
}
