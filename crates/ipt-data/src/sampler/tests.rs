use super::*;
use crate::degrade::blur::MotionBlurParams;

fn photo(width: u32, height: u32, seed: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let value = (x * 7 + y * 13 + seed * 31) % 256;
        image::Rgb([value as u8, ((x * y + seed) % 256) as u8, ((x + 2 * y) % 256) as u8])
    })
}

fn sampler(workers: usize) -> PatchSampler {
    let tasks: BTreeMap<Task, Degradation> = Task::ALL.into_iter().map(|task| (task, Degradation::default_for(task))).collect();
    let config = SamplerConfig { patch_size: 24, batch_size: 4, workers, seed: 11, ..SamplerConfig::default() };
    PatchSampler::new(vec![photo(60, 50, 1), photo(40, 70, 2), photo(20, 20, 3)], &tasks, config).unwrap()
}

#[test]
fn batches_are_pure_functions_of_the_index_and_the_stream_keeps_order() {
    let sampler = Arc::new(sampler(2));
    let expected: Vec<Batch> = (5..12).map(|index| sampler.batch(index)).collect();
    let streamed: Vec<Batch> = Arc::clone(&sampler).stream(5).take(7).collect();
    assert_eq!(streamed, expected);
    assert_ne!(expected[0].degraded, expected[1].degraded);
}

#[test]
fn batches_have_the_layout_and_range_the_trainer_expects() {
    let batch = sampler(1).batch(3);
    assert_eq!(batch.degraded.len(), 4 * 3 * 24 * 24);
    assert_eq!(batch.clean.len(), batch.degraded.len());
    assert_eq!(batch.tasks.len(), 4);
    assert!(batch.degraded.iter().chain(&batch.clean).all(|value| (0.0..=1.0).contains(value)));
}

#[test]
fn every_run_of_six_samples_holds_each_task_once() {
    let sampler = sampler(1);
    for group in 0..50u64 {
        let mut tasks: Vec<Task> = (0..6).map(|offset| sampler.task_of(group * 6 + offset)).collect();
        tasks.sort();
        assert_eq!(tasks, Task::ALL.to_vec());
    }
    let orders: std::collections::BTreeSet<Vec<Task>> =
        (0..20u64).map(|group| (0..6).map(|o| sampler.task_of(group * 6 + o)).collect()).collect();
    assert!(orders.len() > 10, "the order within a group is shuffled");
}

#[test]
fn task_shares_set_the_frequency_of_each_task_and_are_checked() {
    let shares: BTreeMap<Task, f64> = Task::ALL.into_iter().enumerate().map(|(index, task)| (task, 1.0 + index as f64)).collect();
    let weighted = sampler(1).with_task_shares(&shares).unwrap();
    let draws = 21_000u64;
    let mut counts: BTreeMap<Task, u64> = BTreeMap::new();
    for index in 0..draws {
        *counts.entry(weighted.task_of(index)).or_default() += 1;
    }
    for (index, task) in Task::ALL.into_iter().enumerate() {
        let expected = draws as f64 * (1.0 + index as f64) / 21.0;
        let seen = counts[&task] as f64;
        assert!((seen - expected).abs() < 4.0 * expected.sqrt(), "{task}: {seen} draws, expected about {expected}");
    }
    assert_eq!(weighted.task_of(77), weighted.task_of(77), "draws are a function of the index");
    let mut missing = shares.clone();
    missing.remove(&Task::Deblur);
    assert!(sampler(1).with_task_shares(&missing).unwrap_err().to_string().contains("deblur"));
    let mut zero = shares;
    zero.insert(Task::Derain, 0.0);
    assert!(sampler(1).with_task_shares(&zero).unwrap_err().to_string().contains("derain"));
}

#[test]
fn the_eight_symmetries_are_distinct_and_keep_the_pixels() {
    let image = Rgb::from_rgb8(&photo(5, 5, 4));
    let variants: Vec<Rgb> = (0..8).map(|symmetry| transform(&image, symmetry)).collect();
    for (i, a) in variants.iter().enumerate() {
        for b in &variants[i + 1..] {
            assert_ne!(a, b);
        }
        let mut sorted_a = a.data.clone();
        let mut sorted_image = image.data.clone();
        sorted_a.sort_by(f32::total_cmp);
        sorted_image.sort_by(f32::total_cmp);
        assert_eq!(sorted_a, sorted_image);
    }
    assert_eq!(variants[0], image);
}

#[test]
fn a_degraded_window_equals_the_same_window_of_the_degraded_photo() {
    let source = photo(80, 70, 5);
    let params = DegradationParams::MotionBlur(MotionBlurParams { size: 9, defocus: 0.5, seed: 3 });
    let whole = params.apply(&Rgb::from_rgb8(&source));
    let (degraded, clean) = degrade_window(&source, 30, 25, 16, &params);
    assert_eq!(clean, Rgb::from_rgb8(&source).crop_reflect(30, 25, 16, 16));
    let expected = whole.crop_reflect(30, 25, 16, 16);
    let worst = degraded.data.iter().zip(&expected.data).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(worst < 1e-5, "{worst}");
}

#[test]
fn validation_samples_are_fixed_per_photo_and_task() {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = (0..2)
        .map(|index| {
            let path = dir.path().join(format!("{index}.png"));
            photo(50, 40, index).save(&path).unwrap();
            path
        })
        .collect();
    let tasks: BTreeMap<Task, Degradation> =
        [Task::Denoise, Task::Dehaze].into_iter().map(|task| (task, Degradation::default_for(task))).collect();
    let first = validation_samples(&paths, &tasks, 32, 9).unwrap();
    assert_eq!(first.len(), 4);
    assert_eq!(first, validation_samples(&paths, &tasks, 32, 9).unwrap());
    for sample in &first {
        assert!(sample.clean.width == 32 && sample.degraded != sample.clean, "{:?} left the photo unchanged", sample.task);
    }
    let broken = dir.path().join("broken.png");
    std::fs::write(&broken, b"not a png").unwrap();
    let message = validation_samples(&[broken], &tasks, 32, 9).unwrap_err().to_string();
    assert!(message.contains("broken.png"), "{message}");
}
