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
use instruct_ipt::{Class, Device, Recogniser, Task, read_image};
use ipt_data::DatasetSpec;
use ipt_data::sampler::read_photos;
use ipt_data::spec::{list_images, resolve_data_root};
use ipt_recognise::training::{Example, accuracy, example};
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
}

/// Scores the recogniser and writes the table.
pub fn eval(args: EvalArgs) -> Result<()> {
    let root = workspace_root();
    let device = Device::flex();
    let recogniser = Recogniser::load_or_bundled(args.recogniser.as_deref(), &device)?;
    let spec = DatasetSpec::load(&root.join(&args.spec))?;
    let data = resolve_data_root(None)?;
    let mut files = Vec::new();
    for folder in &args.photos {
        files.extend(list_images(&data.join(folder))?);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let photos: Vec<RgbImage> = read_photos(&files, threads)?;
    let examples: Vec<Example> = (0..args.examples).into_par_iter().map(|index| example(&photos, &spec.tasks, args.seed, index)).collect();
    let synthetic = accuracy(&recogniser, &examples);
    let mut report = vec![
        "# Recogniser accuracy".to_string(),
        String::new(),
        format!(
            "`cargo xtask eval-recogniser{}` ({} examples, seed {}, on {} evaluation photos of {})",
            args.recogniser.as_ref().map_or(String::new(), |path| format!(" --recogniser {}", path.display())),
            args.examples,
            args.seed,
            photos.len(),
            args.photos.iter().map(|folder| folder.display().to_string()).collect::<Vec<_>>().join(", ")
        ),
        String::new(),
        accuracy_table(&synthetic),
        String::new(),
        "Real pairs: the likeliest degradation of each input, and the verdict on each target.".to_string(),
        String::new(),
        "| pairs | inputs recognised | targets judged clean |".to_string(),
        "|---|---|---|".to_string(),
    ];
    for entry in &args.pairs {
        let (folder, task) = entry.split_once(':').with_context(|| format!("'{entry}': expected folder:task"))?;
        let task: Task = task.parse().map_err(anyhow::Error::msg)?;
        report.push(real_pairs(&recogniser, &data, folder, task).with_context(|| folder.to_string())?);
    }
    let text = report.join("\n") + "\n";
    println!("{text}");
    let out = root.join(&args.out);
    std::fs::create_dir_all(out.parent().expect("a file in a folder"))?;
    ipt_core::write_atomically(&out, text.as_bytes())?;
    println!("wrote {}", out.display());
    Ok(())
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
