//! `cargo xtask eval-recogniser` and `cargo xtask bench-recogniser`: how well and how fast the
//! recogniser of blind restoration sees what is wrong with photos it never trained on.
//!
//! Accuracy is measured on examples synthesized from the evaluation photos (never trained on,
//! never used to choose anything) with the training degradations, single and in pairs, by
//! strength; and on the real pairs of the data folder, whose inputs should show their
//! degradation and whose targets should look clean.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use instruct_ipt::image::{DynamicImage, RgbImage};
use instruct_ipt::{Class, Device, Recogniser, Recognition, Restorer, Task, read_image};
use ipt_data::DatasetSpec;
use ipt_data::Rgb;
use ipt_data::sampler::read_photos;
use ipt_data::spec::{list_images, resolve_data_root};
use ipt_recognise::training::{Example, ExampleWindow, example, example_window, recognise_examples, score};
use rayon::prelude::*;

use crate::parity::workspace_root;
use crate::recogniser::accuracy_table;

/// Options of `cargo xtask eval-recogniser`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Recogniser weights; the bundled recogniser when omitted.
    #[arg(long)]
    recogniser: Option<PathBuf>,
    /// The degradations (the spec the restorer and the recogniser train on).
    #[arg(long, default_value = "datasets/all-in-one.toml")]
    spec: PathBuf,
    /// Folders of clean evaluation photos, relative to the data root.
    #[arg(long, value_delimiter = ',', default_value = "eval/Kodak24,eval/CBSD68,eval/McMaster")]
    photos: Vec<PathBuf>,
    /// Use the spec's validation photos (held out from training) instead of `--photos`: what
    /// the recogniser's decision rules are chosen on, so that `eval/` never steers them.
    #[arg(long)]
    validation: bool,
    /// Synthesized examples to score.
    #[arg(long, default_value_t = 3000)]
    examples: u64,
    /// Seed of the examples (any seed: the photos are never trained on).
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Real pairs as `folder:task`, relative to the data root (`input/` and `target/` inside).
    #[arg(long, value_delimiter = ',', default_value = "pairs/airnet_derain:derain,pairs/airnet_dehaze:dehaze")]
    pairs: Vec<String>,
    /// Where the Markdown table is written.
    #[arg(long, default_value = "reports/recogniser/eval.md")]
    out: PathBuf,
    /// Also write each example's labels, input PSNR and probabilities to this CSV file (and
    /// the PSNR of its restoration, for those restored).
    #[arg(long)]
    probabilities: Option<PathBuf>,
    /// Restore the first this many examples as blind restoration would when it does not judge
    /// them clean, and report what the clean verdict costs or saves.
    #[arg(long, default_value_t = 0)]
    restore: usize,
    /// Restorer weights for `--restore`; the bundled weights when omitted.
    #[arg(long)]
    weights: Option<PathBuf>,
}

/// Scores the recogniser and writes the table.
pub fn eval(args: EvalArgs) -> Result<()> {
    let root = workspace_root();
    let device = Device::flex();
    let recogniser = Recogniser::load_or_bundled(args.recogniser.as_deref(), &device)?;
    let spec = DatasetSpec::load(&root.join(&args.spec))?;
    let data = resolve_data_root(None)?;
    let (files, source) = if args.validation {
        (spec.split()?.1, format!("validation photos of {}", args.spec.display()))
    } else {
        let mut files = Vec::new();
        for folder in &args.photos {
            files.extend(list_images(&data.join(folder))?);
        }
        let folders: Vec<String> = args.photos.iter().map(|folder| folder.display().to_string()).collect();
        (files, format!("evaluation photos of {}", folders.join(", ")))
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let photos: Vec<RgbImage> = read_photos(&files, threads)?;
    let examples: Vec<Example> = (0..args.examples).into_par_iter().map(|index| example(&photos, &spec.tasks, args.seed, index)).collect();
    let recognitions = recognise_examples(&recogniser, &examples);
    let restored = if args.restore > 0 {
        let restorer = Restorer::load_or_bundled(args.weights.as_deref(), &device)?;
        let count = args.restore.min(examples.len());
        (0..count)
            .map(|index| restored_psnr(&restorer, &photos, &spec, args.seed, index, &recognitions[index]))
            .collect::<Result<Vec<f64>>>()?
    } else {
        Vec::new()
    };
    if let Some(path) = &args.probabilities {
        let path = root.join(path);
        ipt_core::write_atomically(&path, probabilities_csv(&examples, &recognitions, &restored).as_bytes())
            .with_context(|| format!("{}: cannot write the probabilities", path.display()))?;
        println!("wrote {}", path.display());
    }
    let synthetic = score(&examples, &recognitions);
    let mut report = vec![
        "# Recogniser accuracy".to_string(),
        String::new(),
        format!(
            "`cargo xtask eval-recogniser{}{} --examples {} --seed {}{}`: {} examples on {} {source}",
            args.recogniser.as_ref().map_or(String::new(), |path| format!(" --recogniser {}", path.display())),
            if args.validation { " --validation" } else { "" },
            args.examples,
            args.seed,
            if restored.is_empty() { String::new() } else { format!(" --restore {}", restored.len()) },
            args.examples,
            photos.len(),
        ),
        String::new(),
        accuracy_table(&synthetic),
        String::new(),
    ];
    report.extend(verdict_cost_table(&examples, &recognitions, &restored));
    report.extend([
        "Real pairs: the likeliest degradation of each input, and the verdict on each target.".to_string(),
        String::new(),
        "| pairs | inputs recognised | targets judged clean |".to_string(),
        "|---|---|---|".to_string(),
    ]);
    for entry in &args.pairs {
        let (folder, task) = entry.split_once(':').with_context(|| format!("'{entry}': expected folder:task"))?;
        let task: Task = task.parse().map_err(anyhow::Error::msg)?;
        report.push(real_pairs(&recogniser, &data, folder, task).with_context(|| folder.to_string())?);
    }
    let text = report.join("\n") + "\n";
    println!("{text}");
    let out = root.join(&args.out);
    std::fs::create_dir_all(out.parent().expect("a file in a folder"))?;
    ipt_core::write_atomically(&out, text.as_bytes()).with_context(|| format!("{}: cannot write the report", out.display()))?;
    println!("wrote {}", out.display());
    Ok(())
}

/// The PSNR (dB, against the clean window) of example `index` restored with the tasks blind
/// restoration removes when it does not judge the photo clean ([`Recognition::degraded_tasks`]).
fn restored_psnr(
    restorer: &Restorer,
    photos: &[RgbImage],
    spec: &DatasetSpec,
    seed: u64,
    index: usize,
    recognition: &Recognition,
) -> Result<f64> {
    let ExampleWindow { clean, degraded, labels } = example_window(photos, &spec.tasks, seed, index as u64);
    let tasks = recognition.degraded_tasks();
    let weights: Vec<(Task, f32)> = tasks.iter().map(|&task| (task, 1.0 / tasks.len() as f32)).collect();
    let (height, width) = (degraded.height, degraded.width);
    let output = restorer.restore_planar_requested(degraded.data, height, width, &weights)?;
    let restored = Rgb { width, height, data: output.into_iter().map(|value| value.clamp(0.0, 1.0)).collect() };
    Ok(ExampleWindow { clean, degraded: restored, labels }.input_psnr())
}

/// What the clean verdict costs or saves on the restored examples: each kind of example's
/// mean PSNR when blind restoration follows the verdict, when it restores every example, and
/// when the verdict is always right; report lines, none without restored examples.
fn verdict_cost_table(examples: &[Example], recognitions: &[Recognition], restored: &[f64]) -> Vec<String> {
    if restored.is_empty() {
        return Vec::new();
    }
    let rows: Vec<(bool, bool, f64, f64)> = examples
        .iter()
        .zip(recognitions)
        .zip(restored)
        .map(|((example, recognition), &restored)| {
            (example.labels[Class::Clean.index()] > 0.5, recognition.is_clean(), example.input_psnr, restored)
        })
        .collect();
    let mean = |values: Vec<f64>| values.iter().sum::<f64>() / values.len().max(1) as f64;
    let degraded: Vec<&(bool, bool, f64, f64)> = rows.iter().filter(|row| !row.0).collect();
    let clean = rows.len() - degraded.len();
    let followed = mean(degraded.iter().map(|&&(_, judged_clean, input, restored)| if judged_clean { input } else { restored }).collect());
    let always = mean(degraded.iter().map(|row| row.3).collect());
    let clean_restored = match clean {
        0 => String::new(),
        _ => format!(" (restored: {:.2} dB)", mean(rows.iter().filter(|row| row.0).map(|row| row.3).collect())),
    };
    let left_clean = rows.iter().filter(|row| row.0 && row.1).count();
    [
        format!(
            "Blind restoration of the first {} examples ({} degraded, {} clean; PSNR in dB against the clean window):",
            rows.len(),
            degraded.len(),
            clean
        ),
        String::new(),
        "| blind restoration | degraded examples: mean PSNR | clean examples left as they are |".to_string(),
        "|---|---|---|".to_string(),
        format!("| following the clean verdict | {followed:.2} | {left_clean}/{clean} |"),
        format!("| restoring every example | {always:.2} | 0/{clean}{clean_restored} |"),
        format!("| an always-right verdict | {always:.2} | {clean}/{clean} |"),
        String::new(),
    ]
    .into()
}

/// One CSV line per example: the input PSNR, its labels and the recogniser's probabilities in
/// [`Class::ALL`] order, and the PSNR of its restoration when it was restored.
fn probabilities_csv(examples: &[Example], recognitions: &[Recognition], restored: &[f64]) -> String {
    let names: Vec<&str> = Class::ALL.iter().map(|class| class.name()).collect();
    let mut lines = vec![format!(
        "input_psnr,{},{},restored_psnr",
        names.iter().map(|name| format!("label_{name}")).collect::<Vec<_>>().join(","),
        names.iter().map(|name| format!("p_{name}")).collect::<Vec<_>>().join(",")
    )];
    for (index, (example, recognition)) in examples.iter().zip(recognitions).enumerate() {
        let values: Vec<String> = example.labels.iter().chain(&recognition.probabilities).map(|value| format!("{value:.4}")).collect();
        let restored = restored.get(index).map_or(String::new(), |psnr| format!("{psnr:.2}"));
        lines.push(format!("{:.2},{},{restored}", example.input_psnr, values.join(",")));
    }
    lines.join("\n") + "\n"
}

/// One table row: how many inputs of the pairs in `folder` (under the data root `data`) are
/// recognised as `task`, and how many targets are judged clean.
fn real_pairs(recogniser: &Recogniser, data: &std::path::Path, folder: &str, task: Task) -> Result<String> {
    let (inputs, targets) = (list_images(&data.join(folder).join("input"))?, list_images(&data.join(folder).join("target"))?);
    let recognised = inputs
        .iter()
        .map(|path| Ok(recogniser.recognise_image(&read_image(path)?).blind_tasks().first() == Some(&task)))
        .collect::<Result<Vec<bool>>>()?;
    let clean = targets.iter().map(|path| Ok(recogniser.recognise_image(&read_image(path)?).is_clean())).collect::<Result<Vec<bool>>>()?;
    let count = |flags: &[bool]| flags.iter().filter(|&&flag| flag).count();
    Ok(format!("| {folder} ({}) | {}/{} | {}/{} |", task.degradation(), count(&recognised), recognised.len(), count(&clean), clean.len()))
}

/// Options of `cargo xtask bench-recogniser`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Photo sizes in megapixels (4:3).
    #[arg(long, value_delimiter = ',', default_value = "0.25,1,12,48")]
    megapixels: Vec<f64>,
    /// Timed runs per size (after one warm-up); the median is reported.
    #[arg(long, default_value_t = 11)]
    repeats: usize,
}

/// Times recognising photos of each size on the CPU: the views and the network.
pub fn bench(args: BenchArgs) -> Result<()> {
    let device = Device::flex();
    let recogniser = Recogniser::bundled(&device)?;
    println!("| photo | median ms to recognise |");
    println!("|---|---|");
    for megapixels in args.megapixels {
        let width = (megapixels * 1e6 * 4.0 / 3.0).sqrt().round() as u32;
        let height = (width * 3 / 4).max(1);
        let photo = DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
            instruct_ipt::image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x ^ y) % 256) as u8])
        }));
        recogniser.recognise_image(&photo);
        let mut times: Vec<f64> = (0..args.repeats.max(1))
            .map(|_| {
                let started = Instant::now();
                std::hint::black_box(recogniser.recognise_image(&photo).probability(Class::Clean));
                started.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        println!("| {width}x{height} ({megapixels} MP) | {:.1} |", times[times.len() / 2]);
    }
    Ok(())
}
