//! The `instruct-ipt` binary as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use instruct_ipt::image::{DynamicImage, GrayImage, ImageBuffer, Rgb};
use instruct_ipt::{Device, Preset, Task, WeightMetadata, read_image, save_weights};

fn instruct_ipt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_instruct-ipt")).args(args).output().expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Random tiny weights for denoising and deraining, written into `folder`.
fn tiny_weights(folder: &Path) -> PathBuf {
    let path = folder.join("tiny.safetensors");
    let device = Device::flex();
    let config = Preset::Tiny.config();
    let metadata = WeightMetadata::new(config.clone(), vec![Task::Denoise, Task::Derain]).with_provenance("data", "cli test");
    save_weights(&config.init(&device), &metadata, &path).unwrap();
    path
}

fn colour_image(width: u32, height: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(ImageBuffer::from_fn(width, height, |x, y| Rgb([(x * 3) as u8, (y * 5) as u8, 128])))
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A bundled sample degraded for `task`: (input, target).
fn sample(task: &str, photo: &str) -> (PathBuf, PathBuf) {
    let set = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/samples/degraded").join(task);
    (set.join("input").join(photo), set.join("target").join(photo))
}

fn psnr(image: &Path, target: &Path) -> f64 {
    let read = |path: &Path| ipt_data::Rgb::read(path).unwrap();
    ipt_eval::metrics::score(&read(image), &read(target), &ipt_eval::metrics::Protocol::default()).unwrap().psnr
}

#[test]
fn the_bundled_weights_restore_a_bundled_sample_from_an_instruction() {
    let folder = tempfile::tempdir().unwrap();
    let output = folder.path().join("restored.png");
    for (task, instruction) in [("low_light", "way too dark, brighten it please"), ("denoise", "pls remove the nois")] {
        let (input, target) = sample(task, "chelsea.png");
        let result = instruct_ipt(&["restore", path_str(&input), "-o", path_str(&output), "--instruction", instruction]);
        assert!(result.status.success(), "{}", stderr(&result));
        let (before, after) = (psnr(&input, &target), psnr(&output, &target));
        assert!(after > before + 2.0, "{task}: {before:.2} dB degraded, {after:.2} dB restored");
    }
}

#[test]
fn the_self_ensemble_restores_a_sample_better_than_one_pass() {
    let folder = tempfile::tempdir().unwrap();
    let (input, target) = sample("denoise", "chelsea.png");
    let mut scores = Vec::new();
    for extra in [&[][..], &["--ensemble"][..]] {
        let output = folder.path().join(format!("restored{}.png", extra.len()));
        let result = instruct_ipt(&[&["restore", path_str(&input), "-o", path_str(&output), "--task", "denoise"][..], extra].concat());
        assert!(result.status.success(), "{}", stderr(&result));
        scores.push(psnr(&output, &target));
    }
    assert!(scores[1] > scores[0], "one pass {:.3} dB, eight averaged {:.3} dB", scores[0], scores[1]);
}

#[test]
fn info_without_a_file_describes_the_bundled_weights() {
    let result = instruct_ipt(&["info"]);
    assert!(result.status.success(), "{}", stderr(&result));
    let text = String::from_utf8_lossy(&result.stdout);
    assert!(text.contains("(bundled)") && text.contains("tasks:           denoise, deblur, derain, dehaze, desnow, low_light"), "{text}");
}

/// Restores `image` with random tiny weights for `task`, returning the run and the output path.
fn restore_one(folder: &Path, image: DynamicImage, task: &str) -> (Output, PathBuf) {
    let weights = tiny_weights(folder);
    let input = folder.join("input.png");
    image.save(&input).unwrap();
    let output = folder.join("restored.png");
    let args = ["restore", path_str(&input), "-o", path_str(&output), "--weights", path_str(&weights), "--task", task];
    (instruct_ipt(&args), output)
}

#[test]
fn restore_keeps_size_and_grayscale() {
    let folder = tempfile::tempdir().unwrap();
    let gray = DynamicImage::ImageLuma8(GrayImage::from_fn(37, 53, |x, y| [(x + y) as u8].into()));
    let (result, output) = restore_one(folder.path(), gray, "denoise");
    assert!(result.status.success(), "{}", stderr(&result));
    let restored = read_image(&output).unwrap();
    assert_eq!((restored.width(), restored.height()), (37, 53));
    assert_eq!(restored.color(), instruct_ipt::image::ColorType::L8);
}

#[test]
fn a_task_the_weights_lack_is_refused() {
    let folder = tempfile::tempdir().unwrap();
    let (result, output) = restore_one(folder.path(), colour_image(16, 16), "dehaze");
    assert!(!result.status.success());
    assert!(stderr(&result).contains("not trained for 'dehaze'"), "{}", stderr(&result));
    assert!(!output.exists());
}

#[test]
fn an_image_above_the_pixel_limit_is_refused_and_nothing_is_written() {
    let folder = tempfile::tempdir().unwrap();
    let weights = tiny_weights(folder.path());
    let input = folder.path().join("wide.png");
    colour_image(40, 30).save(&input).unwrap();
    let output = folder.path().join("restored.png");
    let args = ["restore", path_str(&input), "-o", path_str(&output), "--weights", path_str(&weights), "--task", "denoise"];
    let result = instruct_ipt(&[&args[..], &["--max-megapixels", "0.001"]].concat());
    assert!(!result.status.success());
    let message = stderr(&result);
    assert!(message.contains("wide.png: 40x30 = 0.0012 MP is above the 0.001 MP limit (--max-megapixels)"), "{message}");
    assert!(!output.exists());
    // Refused before any weights are read: missing weight files are not even noticed.
    let missing = [
        "restore",
        path_str(&input),
        "-o",
        path_str(&output),
        "--weights",
        "absent.safetensors",
        "--recogniser",
        "absent-recogniser.safetensors",
        "--max-megapixels",
        "0.001",
    ];
    let message = stderr(&instruct_ipt(&missing));
    assert!(message.contains("above the 0.001 MP limit") && !message.contains("absent"), "{message}");
    let allowed = instruct_ipt(&[&args[..], &["--max-megapixels", "0.0012"]].concat());
    assert!(allowed.status.success(), "{}", stderr(&allowed));
}

#[test]
fn two_processes_restoring_into_one_output_leave_one_whole_image() {
    let folder = tempfile::tempdir().unwrap();
    let weights = tiny_weights(folder.path());
    let (first, second) = (folder.path().join("first.png"), folder.path().join("second.png"));
    colour_image(160, 120).save(&first).unwrap();
    DynamicImage::ImageRgb8(ImageBuffer::from_fn(160, 120, |x, y| Rgb([200 - x as u8, (x + y) as u8, 30]))).save(&second).unwrap();
    let restore = |input: &Path, output: &Path| {
        Command::new(env!("CARGO_BIN_EXE_instruct-ipt"))
            .args(["restore", path_str(input), "-o", path_str(output), "--task", "denoise", "--weights", path_str(&weights)])
            .spawn()
            .unwrap()
    };
    let alone = |input: &Path, name: &str| {
        let output = folder.path().join(name);
        assert!(restore(input, &output).wait().unwrap().success());
        read_image(&output).unwrap()
    };
    let expected = [alone(&first, "first-alone.png"), alone(&second, "second-alone.png")];
    let shared = folder.path().join("shared.png");
    for _ in 0..3 {
        let (mut a, mut b) = (restore(&first, &shared), restore(&second, &shared));
        assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
        assert!(expected.contains(&read_image(&shared).unwrap()), "a mix of both");
    }
    let names: Vec<String> =
        std::fs::read_dir(folder.path()).unwrap().map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|name| !name.starts_with(".tmp")), "temporary files left: {names:?}");
}

#[test]
fn a_folder_is_restored_and_a_broken_file_is_named_without_harming_existing_outputs() {
    let folder = tempfile::tempdir().unwrap();
    let weights = tiny_weights(folder.path());
    let inputs = folder.path().join("inputs");
    let outputs = folder.path().join("outputs");
    std::fs::create_dir_all(&inputs).unwrap();
    std::fs::create_dir_all(&outputs).unwrap();
    colour_image(30, 20).save(inputs.join("a.png")).unwrap();
    std::fs::write(inputs.join("b.jpg"), b"not a jpeg").unwrap();
    std::fs::write(outputs.join("b.jpg"), b"an earlier result").unwrap();
    let result =
        instruct_ipt(&["restore", path_str(&inputs), "-o", path_str(&outputs), "--weights", path_str(&weights), "--task", "denoise"]);
    assert!(!result.status.success());
    let message = stderr(&result);
    assert!(message.contains("b.jpg") && message.contains("1 of 2 images"), "{message}");
    assert_eq!(read_image(&outputs.join("a.png")).unwrap().width(), 30);
    assert_eq!(std::fs::read(outputs.join("b.jpg")).unwrap(), b"an earlier result");
}

#[test]
fn info_prints_metadata_and_parameter_groups() {
    let folder = tempfile::tempdir().unwrap();
    let weights = tiny_weights(folder.path());
    let result = instruct_ipt(&["info", path_str(&weights)]);
    assert!(result.status.success(), "{}", stderr(&result));
    let text = String::from_utf8_lossy(&result.stdout);
    for expected in ["tasks:           denoise, derain", "provenance.data: cli test", "qkv", "channel_reduction", "embedder"] {
        assert!(text.contains(expected), "missing '{expected}' in:\n{text}");
    }
    // One line per conditioning option with the parameters it would add for the file's tasks.
    for kind in ["weight_modulation", "instruct_ir_icb", "prompt_ir", "external_control", "pip", "adapt_ir", "weight_replacement"] {
        let line = text.lines().find(|line| line.trim_start().starts_with(kind)).unwrap_or_else(|| panic!("no '{kind}' line in:\n{text}"));
        let extra: i64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(extra > 0, "{line}");
    }
}

#[test]
fn a_corrupt_weight_file_is_named() {
    let folder = tempfile::tempdir().unwrap();
    let weights = folder.path().join("broken.safetensors");
    std::fs::write(&weights, b"garbage").unwrap();
    let result = instruct_ipt(&["info", path_str(&weights)]);
    assert!(!result.status.success());
    let message = stderr(&result);
    assert!(message.contains("broken.safetensors") && message.lines().count() == 1, "{message}");
}

#[test]
fn parse_shows_the_distribution_and_the_decision() {
    let output = instruct_ipt(&["parse", "it was pouring when I took this"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(text.contains("derain") && text.contains("none") && text.contains("decision: restore with derain"), "{text}");
}

#[test]
fn an_instruction_routes_the_restoration_and_an_off_topic_one_writes_nothing() {
    let folder = tempfile::tempdir().unwrap();
    let weights = tiny_weights(folder.path());
    let input = folder.path().join("in.png");
    colour_image(30, 20).save(&input).unwrap();
    let output = folder.path().join("out.png");
    let run = |instruction: &str| {
        instruct_ipt(&["restore", path_str(&input), "-o", path_str(&output), "--weights", path_str(&weights), "--instruction", instruction])
    };

    let refused = run("make the cat a dog");
    assert!(refused.status.success(), "{}", stderr(&refused));
    assert!(String::from_utf8_lossy(&refused.stdout).contains("left unchanged"));
    assert!(!output.exists(), "an off-topic request writes nothing");

    let restored = run("please get rid of the rain");
    assert!(restored.status.success(), "{}", stderr(&restored));
    assert!(String::from_utf8_lossy(&restored.stdout).contains("derain"));
    assert_eq!(read_image(&output).unwrap().width(), 30);
}

#[test]
fn a_missing_minilm_encoder_names_the_fix() {
    let output = instruct_ipt(&["parse", "remove the rain", "--text-encoder", "minilm", "--minilm-dir", "no/such/folder"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no/such/folder/model.safetensors") && stderr(&output).contains("cargo xtask fetch-minilm"),
        "{}",
        stderr(&output)
    );
    let unknown = instruct_ipt(&["parse", "remove the rain", "--text-encoder", "bert"]);
    assert!(stderr(&unknown).contains("unknown text encoder 'bert'"), "{}", stderr(&unknown));
}

#[test]
fn a_feature_conditioned_model_is_described_and_restores_with_a_task() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("pip.safetensors");
    let device = Device::flex();
    let config = Preset::Tiny.config();
    let conditioning = instruct_ipt::FeatureConditioning {
        tasks: vec![Task::Denoise, Task::Derain],
        method: instruct_ipt::FeatureMethod::all()[3].clone(),
    };
    let metadata = WeightMetadata::new(config.clone(), conditioning.tasks.clone());
    save_weights(&config.init_conditioned(&conditioning, &device), &metadata, &path).unwrap();
    let result = instruct_ipt(&["info", path_str(&path)]);
    assert!(result.status.success(), "{}", stderr(&result));
    let text = String::from_utf8_lossy(&result.stdout);
    assert!(text.contains("conditioning:    Pip") && text.contains("conditioning parameters:"), "{text}");

    let input = folder.path().join("input.png");
    colour_image(70, 50).save(&input).unwrap();
    let output = folder.path().join("out.png");
    let result = instruct_ipt(&["restore", path_str(&input), "-o", path_str(&output), "--weights", path_str(&path), "--task", "derain"]);
    assert!(result.status.success(), "{}", stderr(&result));
    let restored = read_image(&output).unwrap();
    assert_eq!((restored.width(), restored.height()), (70, 50));
    let refused = instruct_ipt(&["restore", path_str(&input), "-o", path_str(&output), "--weights", path_str(&path), "--task", "dehaze"]);
    assert!(!refused.status.success() && stderr(&refused).contains("dehaze"), "{}", stderr(&refused));
}

#[test]
fn inspect_lists_every_class_and_the_blind_verdict() {
    let (input, _) = sample("low_light", "coffee.png");
    let result = instruct_ipt(&["inspect", path_str(&input)]);
    assert!(result.status.success(), "{}", stderr(&result));
    let text = String::from_utf8_lossy(&result.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8, "seven classes and a verdict:\n{text}");
    assert!(lines[0].trim_start().starts_with("low_light"), "the likeliest first:\n{text}");
    assert!(lines[7].starts_with("verdict:") && lines[7].contains("applies low_light"), "{text}");
}

#[test]
fn without_a_task_or_instruction_a_degraded_photo_is_restored_blind_and_a_clean_one_left_alone() {
    let folder = tempfile::tempdir().unwrap();
    let output = folder.path().join("restored.png");
    let (input, target) = sample("derain", "astronaut.png");
    let result = instruct_ipt(&["restore", path_str(&input), "-o", path_str(&output)]);
    assert!(result.status.success(), "{}", stderr(&result));
    assert!(String::from_utf8_lossy(&result.stdout).contains("restored with derain"), "{}", String::from_utf8_lossy(&result.stdout));
    assert!(psnr(&output, &target) > psnr(&input, &target) + 1.5);

    let untouched = folder.path().join("untouched.png");
    let clean = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/samples/clean/coffee.png");
    let result = instruct_ipt(&["restore", path_str(&clean), "-o", path_str(&untouched)]);
    assert!(result.status.success(), "{}", stderr(&result));
    assert!(String::from_utf8_lossy(&result.stdout).contains("looks clean"), "{}", String::from_utf8_lossy(&result.stdout));
    assert!(!untouched.exists(), "a clean photo is left alone: nothing written");
}

#[test]
fn a_request_the_photo_contradicts_is_warned_about_and_refused_with_strict() {
    let folder = tempfile::tempdir().unwrap();
    let (input, _) = sample("denoise", "coffee.png");
    let warned = folder.path().join("warned.png");
    let result = instruct_ipt(&["restore", path_str(&input), "-o", path_str(&warned), "--instruction", "please remove the rain"]);
    assert!(result.status.success(), "{}", stderr(&result));
    let message = stderr(&result);
    assert!(message.contains("warning") && message.contains("no rain") && message.contains("noise"), "{message}");
    assert!(warned.exists(), "restored as asked despite the warning");

    let refused = folder.path().join("refused.png");
    let result = instruct_ipt(&["restore", path_str(&input), "-o", path_str(&refused), "--task", "derain", "--strict"]);
    assert!(!result.status.success());
    assert!(stderr(&result).contains("--strict"), "{}", stderr(&result));
    assert!(!refused.exists(), "nothing written under --strict");

    // A request the photo agrees with goes through silently.
    let agreed = instruct_ipt(&["restore", path_str(&input), "-o", path_str(&refused), "--task", "denoise", "--strict"]);
    assert!(agreed.status.success() && !stderr(&agreed).contains("warning"), "{}", stderr(&agreed));
}

#[test]
fn a_file_that_is_not_a_recogniser_is_named() {
    let folder = tempfile::tempdir().unwrap();
    let weights = tiny_weights(folder.path());
    let (input, _) = sample("denoise", "coffee.png");
    let result = instruct_ipt(&["inspect", path_str(&input), "--recogniser", path_str(&weights)]);
    assert!(!result.status.success());
    let message = stderr(&result);
    assert!(message.contains("tiny.safetensors") && message.contains("not recogniser weights"), "{message}");
}
