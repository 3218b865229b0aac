//! The training loss: L1 and/or Charbonnier, plus optional PSNR and frequency (FFT) terms.

use burn::tensor::Tensor;
use burn::tensor::signal::{cfft, rfft};

use crate::config::LossConfig;

/// The weighted loss of `output` against `target`, both `[batch, 3, H, W]`.
pub fn restoration_loss(output: Tensor<4>, target: Tensor<4>, weights: &LossConfig) -> Tensor<1> {
    let difference = output.clone() - target.clone();
    let mut loss = difference.clone().abs().mean().mul_scalar(weights.l1);
    if weights.charbonnier != 0.0 {
        loss = loss + charbonnier_loss(difference.clone()).mul_scalar(weights.charbonnier);
    }
    if weights.psnr != 0.0 {
        loss = loss + psnr_loss(difference).mul_scalar(weights.psnr);
    }
    if weights.fft != 0.0 {
        loss = loss + fft_loss(output, target).mul_scalar(weights.fft);
    }
    loss
}

/// ε of the Charbonnier loss (the value of Restormer and MPRNet, on signals in `[0, 1]`).
const CHARBONNIER_EPSILON: f32 = 1e-3;

/// Mean of `sqrt(d² + ε²)`: L1 away from zero, smooth at zero.
fn charbonnier_loss(difference: Tensor<4>) -> Tensor<1> {
    difference.powi_scalar(2).add_scalar(CHARBONNIER_EPSILON * CHARBONNIER_EPSILON).sqrt().mean()
}

/// Mean over patches of `-PSNR = 10 log10(MSE)` for signals in `[0, 1]`.
fn psnr_loss(difference: Tensor<4>) -> Tensor<1> {
    let [batch, ..] = difference.dims();
    let mse = difference.powi_scalar(2).reshape([batch as i32, -1]).mean_dim(1).add_scalar(1e-8);
    mse.log().mul_scalar(10.0 / std::f32::consts::LN_10).mean()
}

/// Mean absolute difference of the real and imaginary 2-D spectra.
fn fft_loss(output: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    let spectrum = |x: Tensor<4>| {
        let (real, imaginary) = rfft(x, 3, None);
        cfft(real, imaginary, 2, None)
    };
    let ((out_re, out_im), (target_re, target_im)) = (spectrum(output), spectrum(target));
    (out_re - target_re).abs().mean() + (out_im - target_im).abs().mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn every_term_is_zero_for_a_perfect_output_and_positive_otherwise() {
        let device = Device::default();
        // Fixed values, not `Tensor::random`: the seeded-initialisation test shares the generator.
        let values: Vec<f32> = (0..2 * 3 * 8 * 8).map(|index| ((index * 37) % 101) as f32 / 101.0).collect();
        let target = Tensor::<4>::from_data(TensorData::new(values, [2, 3, 8, 8]), &device);
        let all = LossConfig { l1: 1.0, fft: 1.0, ..LossConfig::default() };
        let perfect: f32 = restoration_loss(target.clone(), target.clone(), &all).into_scalar();
        assert!(perfect.abs() < 1e-5, "{perfect}");
        let charbonnier = LossConfig { l1: 0.0, charbonnier: 1.0, ..LossConfig::default() };
        let floor: f32 = restoration_loss(target.clone(), target.clone(), &charbonnier).into_scalar();
        assert!((floor - CHARBONNIER_EPSILON).abs() < 1e-6, "a perfect output costs ε: {floor}");
        let smooth: f32 = restoration_loss(target.clone().add_scalar(0.1), target.clone(), &charbonnier).into_scalar();
        assert!((smooth - (0.01f32 + 1e-6).sqrt()).abs() < 1e-5, "{smooth}");
        let off: f32 = restoration_loss(target.clone().add_scalar(0.1), target.clone(), &all).into_scalar();
        // L1 is 0.1; a constant offset's spectrum is 0.1 * 64 at DC only, averaged over the
        // 8 x 5 half-spectrum bins.
        assert!((off - (0.1 + 0.1 * 64.0 / 40.0)).abs() < 1e-3, "{off}");
        let psnr: f32 =
            restoration_loss(target.clone().add_scalar(0.1), target, &LossConfig { l1: 0.0, psnr: 1.0, ..LossConfig::default() })
                .into_scalar();
        assert!((psnr - (-20.0)).abs() < 1e-2, "an error of 0.1 is 20 dB: {psnr}");
    }
}
