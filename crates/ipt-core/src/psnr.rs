//! Peak signal-to-noise ratio, the restoration papers' headline metric.

/// PSNR reported for identical images (and anything closer than this): a cap, not infinity,
/// so that means over a benchmark stay finite and comparable.
pub const PSNR_CAP_DB: f64 = 100.0;

/// PSNR in dB of a mean squared error between signals of peak 1, capped at [`PSNR_CAP_DB`].
pub fn psnr_from_mse(mse: f64) -> f64 {
    if mse <= 10f64.powf(-PSNR_CAP_DB / 10.0) { PSNR_CAP_DB } else { -10.0 * mse.log10() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psnr_is_minus_ten_log_mse_and_capped() {
        assert!((psnr_from_mse(0.01) - 20.0).abs() < 1e-12);
        assert!((psnr_from_mse(1.0)).abs() < 1e-12);
        assert_eq!(psnr_from_mse(0.0), PSNR_CAP_DB);
        assert_eq!(psnr_from_mse(1e-12), PSNR_CAP_DB);
    }
}
