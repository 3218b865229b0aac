use super::*;
use crate::random::{Span, rng_for};

/// A textured 48x40 test image with values spanning `[0, 1]`.
fn texture() -> Rgb {
    let mut image = Rgb::zeros(48, 40);
    let pixels = image.pixels();
    for (index, value) in image.data.iter_mut().enumerate() {
        let (channel, pixel) = (index / pixels, index % pixels);
        let (x, y) = ((pixel % 48) as f32, (pixel / 48) as f32);
        *value = (0.5 + 0.5 * ((x * 0.37 + channel as f32).sin() * (y * 0.21).cos())).clamp(0.0, 1.0);
    }
    image
}

fn every_default() -> Vec<Degradation> {
    Task::ALL.into_iter().map(Degradation::default_for).collect()
}

#[test]
fn same_seed_same_output_and_another_seed_another() {
    let clean = texture();
    for degradation in every_default() {
        let draw = |seed| degradation.sample(&mut rng_for(seed, &[])).apply(&clean);
        assert_eq!(draw(3), draw(3), "{:?}", degradation.task());
        assert_ne!(draw(3), draw(4), "{:?}", degradation.task());
    }
}

#[test]
fn outputs_stay_in_the_unit_range_and_keep_the_size() {
    let clean = texture();
    for degradation in every_default() {
        for seed in 0..5 {
            let degraded = degradation.sample(&mut rng_for(seed, &[])).apply(&clean);
            assert_eq!((degraded.width, degraded.height), (48, 40));
            assert!(degraded.data.iter().all(|value| (0.0..=1.0).contains(value)), "{:?}", degradation.task());
        }
    }
}

#[test]
fn zero_strength_is_the_identity() {
    let clean = texture();
    let zero = [
        DegradationParams::GaussianNoise(noise::GaussianNoiseParams { sigma: 0.0, seed: 1 }),
        DegradationParams::MotionBlur(blur::MotionBlurParams { size: 1, defocus: 0.0, seed: 1 }),
        DegradationParams::Rain(rain::RainParams {
            density: 0.0,
            length: 20.0,
            width: 1.0,
            angle: 0.0,
            intensity: 0.8,
            blend: rain::RainBlend::Screen,
            seed: 1,
        }),
        DegradationParams::Haze(haze::HazeParams { beta: 0.0, airlight: 0.9 }),
        DegradationParams::Snow(snow::SnowParams {
            layers: 3,
            density: 0.0,
            size: 3.0,
            opacity: 1.0,
            blur: 1.0,
            angle: 0.0,
            streak: 1.0,
            veil: 0.0,
            seed: 1,
        }),
        DegradationParams::LowLight(low_light::LowLightParams {
            exposure: 1.0,
            gamma: 1.0,
            shot_noise: 0.0,
            read_noise: 0.0,
            seed: 1,
        }),
    ];
    for params in zero {
        let degraded = params.apply(&clean);
        let worst = degraded.data.iter().zip(&clean.data).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(worst < 1e-5, "{params:?} changed a sample by {worst}");
    }
}

#[test]
fn noise_std_is_within_two_percent_of_sigma() {
    let clean = Rgb::filled(256, 256, 0.5);
    for sigma in [15.0, 25.0, 50.0] {
        let spec = noise::GaussianNoiseSpec { sigma: Span::fixed(sigma) };
        let noisy = spec.sample(&mut rng_for(9, &[])).apply(&clean);
        let count = noisy.data.len() as f64;
        let mean = noisy.data.iter().map(|&v| f64::from(v)).sum::<f64>() / count;
        let variance = noisy.data.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / count;
        let measured = variance.sqrt() * 255.0;
        assert!((measured / f64::from(sigma) - 1.0).abs() < 0.02, "sigma {sigma}: measured {measured}");
    }
}

#[test]
fn blur_kernels_are_normalised_non_negative_and_sized_as_drawn() {
    let spec = blur::MotionBlurSpec::default();
    for seed in 0..40 {
        let params = spec.sample(&mut rng_for(seed, &[]));
        assert!(params.size % 2 == 1 && (7..=35).contains(&params.size), "{params:?}");
        let kernel = params.kernel();
        assert!((kernel.sum() - 1.0).abs() < 1e-5, "{params:?} sums to {}", kernel.sum());
        assert!(kernel.weights.iter().all(|&weight| weight >= 0.0));
        assert!(kernel.size >= params.size);
        let peak = kernel.weights.iter().cloned().fold(0.0, f32::max);
        assert!(peak < 0.9, "a motion kernel spreads its mass: peak {peak}");
    }
}

#[test]
fn haze_transmission_is_in_the_half_open_unit_interval_and_falls_with_beta() {
    let clean = texture();
    let thin = haze::HazeParams { beta: 0.5, airlight: 0.9 }.transmission(&clean);
    let thick = haze::HazeParams { beta: 3.0, airlight: 0.9 }.transmission(&clean);
    assert!(thin.iter().chain(&thick).all(|&t| t > 0.0 && t <= 1.0));
    assert!(thin.iter().zip(&thick).all(|(a, b)| a >= b));
}

#[test]
fn low_light_darkens_and_the_srgb_curves_invert_each_other() {
    for step in 0..=100 {
        let value = step as f32 / 100.0;
        assert!((low_light::linear_to_srgb(low_light::srgb_to_linear(value)) - value).abs() < 1e-5);
    }
    let clean = texture();
    let dark = Degradation::default_for(Task::LowLight).sample(&mut rng_for(1, &[])).apply(&clean);
    let mean = |image: &Rgb| image.data.iter().sum::<f32>() / image.data.len() as f32;
    assert!(mean(&dark) < 0.6 * mean(&clean));
}

#[test]
fn specs_reject_out_of_range_settings_and_unknown_keys() {
    let spec: Degradation = toml::from_str("kind = \"gaussian_noise\"\nsigma = 25").unwrap();
    assert_eq!(spec.task(), Task::Denoise);
    let negative = Degradation::GaussianNoise(noise::GaussianNoiseSpec { sigma: Span::new(-1.0, 5.0) });
    assert!(negative.check().unwrap_err().to_string().contains("gaussian_noise.sigma"));
    let unknown = toml::from_str::<Degradation>("kind = \"haze\"\nbeta = 1\nairlight = 0.9\ndepth = 3").unwrap_err();
    assert!(unknown.to_string().contains("depth"), "{unknown}");
    every_default().iter().for_each(|spec| spec.check().unwrap());
}
