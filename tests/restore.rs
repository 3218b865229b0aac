//! End-to-end restoration through the library facade: real photos, tiling, formats.

use std::path::PathBuf;

use instruct_ipt::image::{DynamicImage, ImageBuffer, Luma, Rgb, Rgba};
use instruct_ipt::{Device, ModulationConfig, Planar, Preset, Recogniser, Restorer, Task, WeightMetadata, read_image};

/// The bundled sample photos (in the repository).
fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../datasets/samples/clean")
}

fn tiny_restorer(seed: u64) -> Restorer {
    let device = Device::flex();
    device.seed(seed);
    let config = Preset::Tiny.config();
    let model = config.init(&device);
    Restorer::from_model(model, WeightMetadata::new(config, Task::ALL.to_vec()), &device)
}

/// A smooth colour gradient.
fn smooth_image(width: u32, height: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(ImageBuffer::from_fn(width, height, |x, y| {
        let u = x as f32 / width as f32;
        let v = y as f32 / height as f32;
        Rgb([(40.0 + 160.0 * u) as u8, (60.0 + 120.0 * v) as u8, (90.0 + 80.0 * (u + v) / 2.0) as u8])
    }))
}

#[test]
fn a_real_photo_goes_through_the_tiny_model() {
    let photo = read_image(&samples().join("chelsea.png")).unwrap();
    let restorer = tiny_restorer(1).with_tile(Some(256));
    let restored = restorer.restore(&photo, Some(Task::Denoise)).unwrap();
    assert_eq!((restored.width(), restored.height()), (photo.width(), photo.height()));
    assert_eq!(restored.color(), photo.color());
    // Untrained weights give no quality to check, but the network must have run on every tile.
    let (input, output) = (photo.to_rgb8(), restored.to_rgb8());
    let changed_rows = (0..input.height()).filter(|&y| (0..input.width()).any(|x| input.get_pixel(x, y) != output.get_pixel(x, y))).count();
    assert_eq!(changed_rows, input.height() as usize, "some rows came back untouched");
}

#[test]
fn one_covering_tile_equals_whole_image_inference() {
    let image = smooth_image(90, 70);
    let restorer = tiny_restorer(2).with_tile(None);
    let whole = restorer.restore(&image, None).unwrap();
    let tiled = restorer.with_tile(Some(128)).restore(&image, None).unwrap();
    assert!(whole == tiled, "tiled and whole-image restorations differ");
}

#[test]
fn images_restored_tile_by_tile_equal_the_planar_restoration_in_their_own_format() {
    // Streaming writes each finished band into the output's own format; the planar path blends
    // whole-image floats. Both must give the same pixels, for every layout.
    let restorer = tiny_restorer(3).with_tile(Some(32));
    let rgba16 = DynamicImage::ImageRgba16(ImageBuffer::from_fn(75, 61, |x, y| {
        Rgba([(x * 800) as u16, (y * 1000) as u16, ((x + y) * 450) as u16, (65535 - x * 300) as u16])
    }));
    let gray8 = DynamicImage::ImageLuma8(ImageBuffer::from_fn(45, 80, |x, y| Luma([((x * 5 + y * 3) % 256) as u8])));
    for image in [rgba16, gray8, smooth_image(70, 33)] {
        let restored = restorer.restore(&image, Some(Task::Denoise)).unwrap();
        let mut planar = Planar::from_image(&image);
        planar.rgb = restorer.restore_planar(planar.rgb.clone(), planar.height, planar.width, Some(Task::Denoise)).unwrap();
        assert_eq!(restored.color(), image.color());
        assert!(restored == planar.to_image(), "{:?}: streamed and planar restorations differ", image.color());
    }
}

#[test]
fn compound_requests_keep_the_format_and_differ_from_either_task_alone() {
    let restorer = tiny_restorer(4).with_tile(Some(48));
    let image = smooth_image(64, 50);
    let tasks = [(Task::Dehaze, 0.5), (Task::Denoise, 0.5)];
    let both = restorer.restore_requested(&image, &tasks).unwrap();
    assert_eq!(both.color(), image.color());
    // Denoising first, then dehazing (the application order), on the 16-bit intermediate.
    let denoised = restorer.restore(&DynamicImage::ImageRgb16(image.to_rgb16()), Some(Task::Denoise)).unwrap();
    let expected = restorer.restore(&denoised, Some(Task::Dehaze)).unwrap().to_rgb8();
    // Rounding 16 to 8 bits after the fact may differ by one level from rounding once.
    let worst = both.to_rgb8().iter().zip(expected.iter()).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
    assert!(worst <= 1, "the tasks were not applied in turn: {worst} levels apart");
    assert!(both != restorer.restore(&image, Some(Task::Dehaze)).unwrap());
}

#[test]
fn a_modulated_model_restores_its_tasks_and_refuses_others() {
    let device = Device::flex();
    let config = Preset::Tiny.config();
    let tasks = vec![Task::Denoise, Task::Derain];
    let model = config.init_modulated(&ModulationConfig::new(tasks.clone()), &device);
    let restorer = Restorer::from_model(model, WeightMetadata::new(config, tasks), &device).with_tile(None);
    let image = smooth_image(40, 30);
    let derained = restorer.restore(&image, Some(Task::Derain)).unwrap();
    let general = restorer.restore(&image, None).unwrap();
    assert!(derained == general, "a zero-initialised bias leaves the general model unchanged");
    let error = restorer.restore(&image, Some(Task::Dehaze)).unwrap_err().to_string();
    assert!(error.contains("dehaze"), "{error}");
}

#[test]
fn a_soft_task_mix_of_zero_biases_is_the_backbone_and_a_single_task_is_the_merged_model() {
    // Fresh task biases are zero: any mix of them leaves the backbone unchanged.
    let device = Device::flex();
    device.seed(4);
    let config = Preset::Tiny.config();
    let modulation = ModulationConfig::new(Task::ALL.to_vec());
    let model = config.init_modulated(&modulation, &device);
    let restorer = Restorer::from_model(model, WeightMetadata::new(config, Task::ALL.to_vec()), &device);
    let image = smooth_image(70, 45);
    let backbone = restorer.restore(&image, None).unwrap().to_rgb8();
    let mixed = restorer.restore_mixed(&image, &[(Task::Denoise, 0.6), (Task::LowLight, 0.4)]).unwrap().to_rgb8();
    let differing = backbone.as_raw().iter().zip(mixed.as_raw()).filter(|(a, b)| a.abs_diff(**b) > 1).count();
    assert_eq!(differing, 0, "zero biases mixed must equal the backbone");
    let single = restorer.restore_mixed(&image, &[(Task::Derain, 1.0)]).unwrap();
    assert_eq!(single.to_rgb8(), restorer.restore(&image, Some(Task::Derain)).unwrap().to_rgb8());
}

/// PSNR (dB) of two 8-bit images of the same size.
fn psnr(a: &DynamicImage, b: &DynamicImage) -> f64 {
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    let mse =
        a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2)).sum::<f64>() / a.as_raw().len() as f64;
    10.0 * (255.0 * 255.0 / mse).log10()
}

#[test]
fn blind_restoration_of_the_bundled_samples_finds_their_task_and_leaves_clean_photos_alone() {
    let device = Device::flex();
    let (restorer, recogniser) = (Restorer::bundled(&device).unwrap(), Recogniser::bundled(&device).unwrap());
    for photo in ["astronaut.png", "coffee.png"] {
        let clean = read_image(&samples().join(photo)).unwrap();
        let blind = restorer.restore_blind(&clean, &recogniser).unwrap();
        assert!(blind.image.is_none() && blind.tasks.is_empty(), "{photo} looks degraded: {:?}", blind.recognition);
    }
    // Chelsea's background is out of focus, which the recogniser may take for blur: whatever it
    // decides, a clean photo must come out nearly as it went in.
    let chelsea = read_image(&samples().join("chelsea.png")).unwrap();
    if let Some(restored) = restorer.restore_blind(&chelsea, &recogniser).unwrap().image {
        let kept = psnr(&restored, &chelsea);
        assert!(kept > 30.0, "a clean photo changed: {kept:.2} dB from what it was");
    }
    let degraded = samples().join("../degraded");
    for task in Task::ALL {
        let (input, target) = (
            read_image(&degraded.join(task.name()).join("input/chelsea.png")).unwrap(),
            read_image(&degraded.join(task.name()).join("target/chelsea.png")).unwrap(),
        );
        let blind = restorer.restore_blind(&input, &recogniser).unwrap();
        assert!(blind.tasks.contains(&task), "{task}: recognised {:?} ({:?})", blind.tasks, blind.recognition);
        let oracle = psnr(&restorer.restore(&input, Some(task)).unwrap(), &target);
        let unaided = psnr(blind.image.as_ref().unwrap(), &target);
        assert!(unaided > oracle - 0.3, "{task}: blind {unaided:.2} dB, oracle {oracle:.2} dB");
    }
}

#[test]
fn recognition_is_deterministic_and_a_contradicting_request_is_doubted() {
    let device = Device::flex();
    let recogniser = Recogniser::bundled(&device).unwrap();
    let noisy = read_image(&samples().join("../degraded/denoise/input/coffee.png")).unwrap();
    let recognition = recogniser.recognise_image(&noisy);
    assert_eq!(recognition, Recogniser::bundled(&device).unwrap().recognise_image(&noisy));
    let doubt = recognition.doubt(&[Task::Derain]).expect("a noisy photo has no rain");
    assert!(doubt.to_string().contains("noise"), "{doubt}");
    assert_eq!(recognition.doubt(&[Task::Denoise]), None);
}
