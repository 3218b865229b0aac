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
    let mut all: Vec<Degradation> = Task::ALL.into_iter().map(Degradation::default_for).collect();
    all.extend([
        Degradation::PoissonGaussianNoise(Default::default()),
        Degradation::CorrelatedNoise(Default::default()),
        Degradation::JpegNoise(Default::default()),
        Degradation::LinearMotionBlur(Default::default()),
        Degradation::DefocusBlur(Default::default()),
        Degradation::GaussianBlur(Default::default()),
    ]);
    all
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
        DegradationParams::Haze(haze::HazeParams { beta: 0.0, airlight: 0.9, tint: [1.1, 1.0, 0.9], depth_variation: 0.5 }),
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
            cast: [1.0; 3],
            seed: 1,
        }),
        DegradationParams::PoissonGaussianNoise(camera_noise::PoissonGaussianParams { shot: 0.0, read: 0.0, seed: 1 }),
        DegradationParams::CorrelatedNoise(camera_noise::CorrelatedNoiseParams { sigma: 0.0, spread: 1.0, luminance: 0.5, seed: 1 }),
        DegradationParams::LinearMotionBlur(kernel_blur::LinearMotionParams { length: 1.0, angle: 30.0 }),
        DegradationParams::DefocusBlur(kernel_blur::DefocusParams { radius: 0.0 }),
        DegradationParams::GaussianBlur(kernel_blur::GaussianBlurParams { sigma: 0.0, anisotropy: 2.0, angle: 10.0 }),
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
    let thin = haze::HazeParams { beta: 0.5, airlight: 0.9, tint: [1.0; 3], depth_variation: 1.0 }.transmission(&clean);
    let thick = haze::HazeParams { beta: 3.0, airlight: 0.9, tint: [1.0; 3], depth_variation: 1.0 }.transmission(&clean);
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

/// The centre of mass of a kernel, relative to its centre pixel, in pixels.
fn centre_of_mass(kernel: &crate::filter::Kernel) -> (f32, f32) {
    let centre = (kernel.size / 2) as f32;
    kernel.weights.iter().enumerate().fold((0.0, 0.0), |(x, y), (index, &weight)| {
        let (row, column) = ((index / kernel.size) as f32, (index % kernel.size) as f32);
        (x + weight * (column - centre), y + weight * (row - centre))
    })
}

#[test]
fn every_blur_kernel_is_normalised_and_centred_on_its_mass() {
    let mut rng = rng_for(5, &[]);
    for _ in 0..60 {
        let kernels = [
            blur::MotionBlurSpec::default().sample(&mut rng).kernel(),
            kernel_blur::LinearMotionSpec::default().sample(&mut rng).kernel(),
            kernel_blur::DefocusSpec::default().sample(&mut rng).kernel(),
            kernel_blur::GaussianBlurSpec::default().sample(&mut rng).kernel(),
        ];
        for (family, kernel) in kernels.iter().enumerate() {
            assert!(kernel.size % 2 == 1 && (kernel.sum() - 1.0).abs() < 1e-4, "family {family}: size {}", kernel.size);
            assert!(kernel.weights.iter().all(|&weight| weight >= 0.0));
            let (x, y) = centre_of_mass(kernel);
            // A shifted kernel shifts the image: the target would be out of reach.
            assert!(x.abs() < 0.02 && y.abs() < 0.02, "family {family}: mass at ({x}, {y}) px from the centre");
        }
    }
}

#[test]
fn blur_families_have_their_documented_extent() {
    let line = kernel_blur::LinearMotionParams { length: 9.0, angle: 0.0 }.kernel();
    let middle_row = &line.weights[line.size / 2 * line.size..][..line.size];
    assert!((middle_row.iter().sum::<f32>() - 1.0).abs() < 1e-4, "a horizontal line lies on the middle row");
    assert_eq!(middle_row.iter().filter(|&&weight| weight > 0.0).count(), 9);
    let disk = kernel_blur::DefocusParams { radius: 3.0 }.kernel();
    assert_eq!(disk.size, 7);
    let centre = disk.weights[disk.size * disk.size / 2];
    assert!(disk.weights.iter().all(|&weight| weight <= centre + 1e-7) && disk.weights[0] == 0.0, "a disk: flat inside, empty corners");
    let gaussian = kernel_blur::GaussianBlurParams { sigma: 2.0, anisotropy: 4.0, angle: 90.0 }.kernel();
    let (size, half) = (gaussian.size, gaussian.size / 2);
    let (along, across) = (gaussian.weights[(half + 2) * size + half], gaussian.weights[half * size + half + 2]);
    assert!(along > 2.0 * across, "rotated by 90 degrees the major axis is vertical: {along} vs {across}");
}

fn standard_deviation(values: impl Iterator<Item = f32> + Clone) -> f64 {
    let count = values.clone().count() as f64;
    let mean = values.clone().map(f64::from).sum::<f64>() / count;
    (values.map(|value| (f64::from(value) - mean).powi(2)).sum::<f64>() / count).sqrt()
}

#[test]
fn correlated_noise_keeps_its_sigma_and_correlates_neighbours_and_channels() {
    let params = camera_noise::CorrelatedNoiseParams { sigma: 20.0, spread: 1.0, luminance: 0.6, seed: 4 };
    let (width, height) = (128, 128);
    let field = params.field(width, height);
    let measured = standard_deviation(field.iter().copied()) * 255.0;
    assert!((measured / 20.0 - 1.0).abs() < 0.05, "std {measured} for sigma 20");
    let pixels = width * height;
    let correlation = |a: &[f32], b: &[f32]| {
        let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
        dot / (a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() * b.iter().map(|y| f64::from(*y).powi(2)).sum::<f64>()).sqrt()
    };
    let red = &field[..pixels];
    let across_channels = correlation(red, &field[pixels..2 * pixels]);
    assert!((across_channels - 0.6).abs() < 0.05, "channels share 60% of the variance: {across_channels}");
    let neighbours = correlation(&red[..pixels - 1], &red[1..]);
    assert!(neighbours > 0.5, "a 1-px spread correlates neighbours: {neighbours}");
    let white = camera_noise::CorrelatedNoiseParams { spread: 0.0, luminance: 0.0, ..params }.field(width, height);
    assert!(correlation(&white[..pixels - 1], &white[1..]).abs() < 0.05);
}

#[test]
fn poisson_gaussian_noise_grows_with_the_signal() {
    let params = camera_noise::PoissonGaussianParams { shot: 0.02, read: 5.0, seed: 2 };
    for level in [0.1f32, 0.8] {
        let noisy = params.apply(&Rgb::filled(128, 128, level));
        let expected = (0.02 * f64::from(level) + (5.0f64 / 255.0).powi(2)).sqrt();
        let measured = standard_deviation(noisy.data.iter().copied());
        assert!((measured / expected - 1.0).abs() < 0.05, "level {level}: std {measured}, expected {expected}");
    }
}

#[test]
fn jpeg_noise_costs_more_at_low_quality() {
    let clean = texture();
    let error = |quality| {
        let degraded = camera_noise::JpegNoiseParams { sigma: 0.0, quality, seed: 1 }.apply(&clean);
        degraded.data.iter().zip(&clean.data).map(|(a, b)| (a - b).abs()).sum::<f32>() / clean.data.len() as f32
    };
    let (fine, coarse) = (error(98), error(10));
    assert!(fine < 0.01 && coarse > 2.0 * fine, "mean errors: quality 98 {fine}, quality 10 {coarse}");
}

#[test]
fn jpeg_noise_takes_images_wider_than_jpeg_allows() {
    // 70,000 px is above JPEG's 65,535-px side: compressed in two tiles, size kept.
    let (width, height) = (70_000, 2);
    let mut clean = Rgb::zeros(width, height);
    clean.data.iter_mut().enumerate().for_each(|(index, value)| *value = (index % 97) as f32 / 97.0);
    let degraded = camera_noise::JpegNoiseParams { sigma: 0.0, quality: 95, seed: 1 }.apply(&clean);
    assert_eq!((degraded.width, degraded.height), (width, height));
    let error = degraded.data.iter().zip(&clean.data).map(|(a, b)| (a - b).abs()).sum::<f32>() / clean.data.len() as f32;
    assert!(error < 0.1, "mean error {error}");
    let beyond_the_first_tile =
        (0..3).all(|channel| degraded.channel(channel)[camera_noise::JPEG_TILE as usize..width].iter().any(|&v| v > 0.0));
    assert!(beyond_the_first_tile, "the second tile came back empty");
}

#[test]
fn uniform_haze_has_one_transmission_and_a_tint_colours_the_airlight() {
    let clean = texture();
    let uniform = haze::HazeParams { beta: 1.0, airlight: 0.9, tint: [1.0; 3], depth_variation: 0.0 }.transmission(&clean);
    assert!(uniform.iter().all(|&t| (t - uniform[0]).abs() < 1e-5));
    let black = Rgb::zeros(16, 16);
    let tinted = haze::HazeParams { beta: 5.0, airlight: 0.8, tint: [1.1, 1.0, 0.8], depth_variation: 1.0 }.apply(&black);
    let means: Vec<f32> = (0..3).map(|channel| tinted.channel(channel).iter().sum::<f32>() / 256.0).collect();
    assert!(means[0] > means[1] && means[1] > means[2], "{means:?}");
}

#[test]
fn a_colour_cast_scales_the_channels_exposure() {
    let clean = Rgb::filled(8, 8, 0.8);
    let params = low_light::LowLightParams { exposure: 0.1, gamma: 1.0, shot_noise: 0.0, read_noise: 0.0, cast: [1.2, 1.0, 0.8], seed: 1 };
    let dark = params.apply(&clean);
    let linear = |channel: usize| low_light::srgb_to_linear(dark.channel(channel)[0]);
    assert!((linear(0) / linear(1) - 1.2).abs() < 1e-3 && (linear(2) / linear(1) - 0.8).abs() < 1e-3);
}

#[test]
fn mixtures_parse_draw_by_weight_and_reject_mixed_tasks() {
    let text = "kind = \"mixture\"\n[[families]]\nweight = 3\nkind = \"gaussian_noise\"\nsigma = 25\n\
                [[families]]\nkind = \"jpeg_noise\"\nsigma = 5\nquality = 50\n";
    let mixture: Degradation = toml::from_str(text).unwrap();
    mixture.check().unwrap();
    assert_eq!(mixture.task(), Task::Denoise);
    let round_trip: Degradation = toml::from_str(&toml::to_string(&mixture).unwrap()).unwrap();
    assert_eq!(round_trip, mixture);
    let mut rng = rng_for(8, &[]);
    let gaussian = (0..4000).filter(|_| matches!(mixture.sample(&mut rng), DegradationParams::GaussianNoise(_))).count();
    assert!((2800..3200).contains(&gaussian), "weight 3 of 4: {gaussian} of 4000");

    let mixed = "kind = \"mixture\"\n[[families]]\nkind = \"gaussian_noise\"\nsigma = 25\n\
                 [[families]]\nkind = \"defocus_blur\"\nradius = 2\n";
    let error = toml::from_str::<Degradation>(mixed).unwrap().check().unwrap_err().to_string();
    assert!(error.contains("family 1 belongs to task deblur"), "{error}");
    let weightless = "kind = \"mixture\"\n[[families]]\nweight = 0\nkind = \"gaussian_noise\"\nsigma = 25\n";
    assert!(toml::from_str::<Degradation>(weightless).unwrap().check().unwrap_err().to_string().contains("weight"));
    let empty = Degradation::Mixture(Mixture { families: Vec::new() });
    assert!(empty.check().unwrap_err().to_string().contains("no family"));
    let typo = "kind = \"mixture\"\n[[families]]\nkind = \"defocus_blur\"\nradius = 2\nradius_px = 3\n";
    assert!(toml::from_str::<Degradation>(typo).unwrap_err().to_string().contains("radius_px"));
}
