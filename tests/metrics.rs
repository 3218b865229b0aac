//! PSNR and SSIM against scikit-image 0.25.2 on small fixtures. The constants are printed by
//! `tests/fixtures/metrics/make_golden.py`, which also made the fixture PNGs.

use std::path::PathBuf;

use ipt_data::rgb::Rgb;
use ipt_eval::metrics::{Channels, MetricError, PSNR_CAP_DB, Protocol, score};

fn fixture(name: &str) -> Rgb {
    Rgb::read(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/metrics").join(name)).unwrap()
}

/// The 8-bit target plus the smooth wave of `make_golden.py`, clipped to `[0, 1]`.
fn float_output(target: &Rgb) -> Rgb {
    let mut output = target.clone();
    for channel in 0..3 {
        let width = target.width;
        for (index, value) in output.channel_mut(channel).iter_mut().enumerate() {
            let (x, y) = ((index % width) as f64, (index / width) as f64);
            let wave = 0.03 * (0.37 * x + 0.91 * y + 1.7 * channel as f64).sin();
            *value = (f64::from(*value) + wave).clamp(0.0, 1.0) as f32;
        }
    }
    output
}

fn protocol(channels: Channels, quantize: bool, crop_border: usize, multiple: usize) -> Protocol {
    Protocol { channels, quantize, crop_border, multiple }
}

/// (protocol, float output?, skimage PSNR, skimage SSIM)
fn golden() -> Vec<(&'static str, Protocol, bool, f64, f64)> {
    vec![
        ("rgb_u8", protocol(Channels::Rgb, true, 0, 1), false, 26.8803470886, 0.9305818581),
        ("rgb_u8_crop4", protocol(Channels::Rgb, true, 4, 1), false, 26.8426525399, 0.9304790424),
        ("y_u8", protocol(Channels::Y, true, 0, 1), false, 31.7064088660, 0.9466849222),
        ("y_u8_crop4", protocol(Channels::Y, true, 4, 1), false, 31.6681669966, 0.9491265918),
        ("rgb_float", protocol(Channels::Rgb, false, 0, 1), true, 33.5609995781, 0.9851043880),
        ("y_float_crop2", protocol(Channels::Y, false, 2, 1), true, 39.8143911243, 0.9919084380),
        ("rgb_u8_multiple16", protocol(Channels::Rgb, true, 0, 16), false, 26.8912243824, 0.9313125631),
    ]
}

#[test]
fn psnr_and_ssim_match_scikit_image() {
    let target = fixture("target.png");
    let eight_bit = fixture("output.png");
    let float = float_output(&target);
    for (name, protocol, use_float, psnr, ssim) in golden() {
        let output = if use_float { &float } else { &eight_bit };
        let scored = score(output, &target, &protocol).unwrap();
        // f32 storage of the float output limits agreement to about 1e-6 dB.
        assert!((scored.psnr - psnr).abs() < 1e-5, "{name} ({protocol}): PSNR {} vs skimage {psnr}", scored.psnr);
        assert!((scored.ssim - ssim).abs() < 1e-7, "{name} ({protocol}): SSIM {} vs skimage {ssim}", scored.ssim);
    }
}

#[test]
fn quantising_changes_float_scores_only() {
    let target = fixture("target.png");
    let eight_bit = fixture("output.png");
    let float = float_output(&target);
    let rgb = |quantize| protocol(Channels::Rgb, quantize, 0, 1);
    let (quantised, float_scored) = (score(&eight_bit, &target, &rgb(true)).unwrap(), score(&eight_bit, &target, &rgb(false)).unwrap());
    assert!((quantised.psnr - float_scored.psnr).abs() < 1e-6, "8-bit outputs are already quantised");
    assert!((quantised.ssim - float_scored.ssim).abs() < 1e-9);
    assert_ne!(score(&float, &target, &rgb(true)).unwrap().psnr, score(&float, &target, &rgb(false)).unwrap().psnr);
}

#[test]
fn identical_images_score_the_cap_and_one() {
    let target = fixture("target.png");
    for protocol in golden().into_iter().map(|(_, protocol, ..)| protocol) {
        let scored = score(&target, &target, &protocol).unwrap();
        assert_eq!(scored.psnr, PSNR_CAP_DB, "{protocol}");
        assert!((scored.ssim - 1.0).abs() < 1e-12, "{protocol}: {}", scored.ssim);
    }
}

#[test]
fn scores_are_symmetric_in_psnr_and_bounded() {
    let target = fixture("target.png");
    let output = fixture("output.png");
    let forward = score(&output, &target, &Protocol::default()).unwrap();
    let backward = score(&target, &output, &Protocol::default()).unwrap();
    assert!((forward.psnr - backward.psnr).abs() < 1e-12);
    assert!(forward.ssim > 0.0 && forward.ssim < 1.0);
}

#[test]
fn bad_sizes_are_refused_with_the_sizes() {
    let target = fixture("target.png");
    let smaller = Rgb::zeros(target.width - 1, target.height);
    let error = score(&smaller, &target, &Protocol::default()).unwrap_err();
    assert_eq!(error, MetricError::SizeMismatch { output: (39, 33), target: (40, 33) });
    assert!(error.to_string().contains("(39, 33)"));
    let cropped = protocol(Channels::Rgb, true, 12, 1);
    assert_eq!(score(&target, &target, &cropped).unwrap_err(), MetricError::TooSmall { width: 16, height: 9 });
}
