//! `ipt_eval::evaluate` end to end on two images per benchmark: every output file is written,
//! the identity row is the floor, and checkpoints are scored or skipped per task.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::Device;
use ipt_eval::{Candidate, EvalOptions, Instructions, Routing, Suite, evaluate};
use ipt_model::{Preset, Task, WeightMetadata, save_weights};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/metrics").join(name)
}

/// A data root with two clean photos and two Rain100L-style pairs, plus a suite over them.
fn suite_in(root: &Path) -> Suite {
    let copy = |name: &str, to: &str| {
        let path = root.join(to);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(fixture(name), path).unwrap();
    };
    copy("target.png", "clean/a.png");
    copy("output.png", "clean/b.png");
    copy("output.png", "rain/input/1.png");
    copy("target.png", "rain/target/1.png");
    copy("target.png", "rain/input/2.png");
    copy("output.png", "rain/target/2.png");
    std::fs::write(
        root.join("sets.toml"),
        "name = \"tiny-sets\"\nroot = \".\"\nsources = [\"clean\"]\nseed = 5\n[tasks.dehaze]\nkind = \"haze\"\nbeta = 1.2\nairlight = 0.9\n",
    )
    .unwrap();
    std::fs::write(
        root.join("suite.toml"),
        r#"name = "two-images"
root = "."
[[benchmark]]
name = "Noisy σ25"
source = { kind = "noisy", set = "cbsd68", folder = "clean", sigma = 25 }
[[benchmark]]
name = "Rain pairs"
source = { kind = "paired", set = "rain100l", folder = "rain" }
protocol = { channels = "y", crop_border = 2 }
[[benchmark]]
name = "Haze"
source = { kind = "synthetic", spec = "sets.toml", task = "dehaze" }
"#,
    )
    .unwrap();
    Suite::load(&root.join("suite.toml")).unwrap()
}

/// Random tiny weights (no task biases) that declare `tasks` trained.
fn weights(dir: &Path, tasks: Vec<Task>) -> PathBuf {
    let path = dir.join(format!("tiny-{}.safetensors", tasks.len()));
    let config = Preset::Tiny.config();
    save_weights(&config.init(&Device::flex()), &WeightMetadata::new(config.clone(), tasks), &path).unwrap();
    path
}

#[test]
fn evaluation_writes_every_output_with_the_identity_floor_first() {
    let dir = tempfile::tempdir().unwrap();
    let suite = suite_in(dir.path());
    let device = Device::flex();
    let all = Candidate::load(&weights(dir.path(), Task::ALL.to_vec()), &device, None).unwrap();
    let denoise_only = Candidate::load(&weights(dir.path(), vec![Task::Denoise]), &device, None).unwrap();
    let out = dir.path().join("out");
    let options = EvalOptions { sets_dir: dir.path().join("sets"), limit: None, progress: false, grids: Some(out.join("grids")) };
    let instructions = Arc::new(
        Instructions::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../datasets/instructions/heldout"), &device).unwrap(),
    );
    let rows = vec![all.clone(), all.routed(Routing::Instruction(instructions)), all.routed(Routing::Shared), denoise_only];
    let report = evaluate(&suite, rows, &options).unwrap();
    let files = report.write(&out).unwrap();

    let names: Vec<String> = files.iter().map(|file| file.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["results.json", "results.md", "per_image.csv"]);
    for grid in ["noisy-25.png", "rain-pairs.png", "haze.png"] {
        let image = image::open(out.join("grids").join(grid)).unwrap();
        assert!(image.width() >= 3 * 33 && image.height() >= 2 * 33, "{grid}: two rows of input / output(s) / target");
    }

    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let rows = json["checkpoints"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0]["label"], "identity (input)");
    let routings: Vec<&str> = rows.iter().map(|row| row["routing"].as_str().unwrap()).collect();
    assert_eq!(routings, ["oracle", "oracle", "instruction", "shared", "oracle"]);
    assert!(rows[2]["label"].as_str().unwrap().ends_with(" · instruction"));
    // These weights have no task biases: the oracle, a routed instruction and the shared row
    // all run the same network, so they score the same where the router picks a trained task.
    assert_eq!(report.checkpoints[1].results[0].psnr, report.checkpoints[3].results[0].psnr);
    assert_eq!(json["benchmarks"][1]["protocol_label"], "Y, 8-bit, border 2");
    assert_eq!(json["benchmarks"][2]["images"], 2);

    // The identity row scores the inputs themselves: the rain inputs are the other pair's targets.
    let identity_rain = report.checkpoints[0].results[1].psnr.unwrap();
    assert!(identity_rain > 20.0 && identity_rain < 40.0, "identity PSNR on the swapped pairs: {identity_rain}");
    let noisy = report.checkpoints[0].results[0].psnr.unwrap();
    assert!((18.0..24.0).contains(&noisy), "σ25 noise on an 8-bit image is ~20.2 dB, got {noisy}");

    // The denoise-only weights are scored on the noisy set and skipped elsewhere, with the reason.
    let limited = &report.checkpoints[4].results;
    assert!(limited[0].psnr.is_some() && limited[0].seconds_per_megapixel.is_some());
    assert_eq!(limited[1].skipped.as_deref(), Some("not trained for derain"));
    assert!(limited[1].psnr.is_none());

    let csv = std::fs::read_to_string(out.join("per_image.csv")).unwrap();
    // 3 benchmarks x 2 images for four rows, plus 2 images for the denoise-only row, plus header.
    assert_eq!(csv.lines().count(), 1 + 4 * 6 + 2, "{csv}");
    let markdown = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(markdown.contains("| checkpoint | Noisy σ25 | Rain pairs | Haze |"), "{markdown}");
    assert!(markdown.contains("not trained for derain"));
}

#[test]
fn a_limit_scores_the_first_images_only_and_bad_suites_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let suite = suite_in(dir.path());
    let options = EvalOptions { sets_dir: dir.path().join("sets"), limit: Some(1), progress: false, grids: None };
    let report = evaluate(&suite, Vec::new(), &options).unwrap();
    assert!(report.benchmarks.iter().all(|benchmark| benchmark.images == 1));
    assert_eq!(report.images.len(), 3);
    assert!(!dir.path().join("out").exists(), "no grids without a grid folder");

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "name = \"x\"\n[[benchmark]]\nname = \"a\"\nsource = { kind = \"noisy\", set = \"cbsd68\", folder = \"clean\", sigma = 25, colour = true }\n").unwrap();
    let message = Suite::load(&bad).unwrap_err().to_string();
    assert!(message.contains("bad.toml") && message.contains("colour"), "{message}");
}

#[test]
fn a_missing_or_broken_weight_file_is_named_once() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.safetensors");
    std::fs::write(&broken, b"not a weight file").unwrap();
    for path in [dir.path().join("missing.safetensors"), broken] {
        let message = Candidate::load(&path, &Device::flex(), None).err().expect("refused").to_string();
        assert_eq!(message.matches(path.to_str().unwrap()).count(), 1, "{message}");
    }
}
