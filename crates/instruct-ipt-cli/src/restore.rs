//! `instruct-ipt restore`: one file, or every image of a folder with a progress bar.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use instruct_ipt::backend::select_device;
use instruct_ipt::image::DynamicImage;
use instruct_ipt::{Class, Recogniser, Restorer, Task, read_image_within, write_image};

use crate::RestoreArgs;

/// File extensions read from input folders.
const IMAGE_EXTENSIONS: [&str; 7] = ["png", "jpg", "jpeg", "tif", "tiff", "bmp", "webp"];

/// What is asked of every image.
enum Request {
    /// These tasks (from `--task` or `--instruction`), checked against what each photo shows.
    Asked(Vec<(Task, f32)>),
    /// Neither: the recogniser looks at each photo and the restorer removes what it sees.
    Blind,
}

/// Everything one image's restoration needs besides the image.
struct Job<'a> {
    restorer: &'a Restorer,
    recogniser: &'a Recogniser,
    request: &'a Request,
    strict: bool,
}

/// What became of one image: lines for the user, and whether an output was written.
struct Outcome {
    notes: Vec<String>,
    warnings: Vec<String>,
    written: bool,
}

impl Outcome {
    /// Prints the notes on stdout and the warnings on stderr.
    fn print(&self) {
        self.notes.iter().for_each(|note| println!("{note}"));
        self.warnings.iter().for_each(|warning| eprintln!("warning: {warning}"));
    }
}

/// Restores `args.input` into `args.output`.
pub fn run(args: RestoreArgs) -> Result<()> {
    let request = match (&args.instruction, args.task) {
        (Some(instruction), _) => match crate::instruction::route(&args.encoder.router()?, instruction) {
            Some(tasks) => Request::Asked(tasks),
            None => return Ok(()),
        },
        (None, Some(task)) => Request::Asked(vec![(task, 1.0)]),
        (None, None) => Request::Blind,
    };
    let device = select_device(args.device)?;
    let tile = (args.tile > 0).then_some(args.tile);
    let load = || -> Result<Restorer> {
        Ok(Restorer::load_or_bundled(args.weights.as_deref(), &device)?.with_tile(tile).with_self_ensemble(args.ensemble))
    };
    if args.input.is_dir() {
        let (restorer, recogniser) = (load()?, args.recogniser.load()?);
        let job = Job { restorer: &restorer, recogniser: &recogniser, request: &request, strict: args.strict };
        restore_folder(&job, &args.input, &args.output, args.max_megapixels)
    } else {
        let output = if args.output.is_dir() { args.output.join(file_name(&args.input)?) } else { args.output.clone() };
        // The image first: a file that cannot be restored fails before any weights are loaded.
        let image = read_image_within(&args.input, args.max_megapixels)?;
        let (restorer, recogniser) = (load()?, args.recogniser.load()?);
        let job = Job { restorer: &restorer, recogniser: &recogniser, request: &request, strict: args.strict };
        let outcome = restore_image(&job, image, &args.input, &output)?;
        outcome.print();
        if outcome.written {
            println!("restored {} -> {}", args.input.display(), output.display());
        }
        Ok(())
    }
}

/// Restores one file as `job` asks.
fn restore_file(job: &Job, input: &Path, output: &Path, max_megapixels: f64) -> Result<Outcome> {
    restore_image(job, read_image_within(input, max_megapixels)?, input, output)
}

/// Restores `image`, read from `input`, into `output`: blind, or as asked after checking the
/// request against what the photo shows (a contradiction is a warning, or with `--strict` an
/// error and nothing written).
fn restore_image(job: &Job, image: DynamicImage, input: &Path, output: &Path) -> Result<Outcome> {
    let name = input.display();
    let mut outcome = Outcome { notes: Vec::new(), warnings: Vec::new(), written: false };
    let restored = match job.request {
        Request::Blind => {
            let blind = job.restorer.restore_blind(&image, job.recogniser).with_context(|| format!("{name}"))?;
            let Some(restored) = blind.image else {
                let clean = blind.recognition.probability(Class::Clean);
                outcome.notes.push(format!("{name}: looks clean ({:.0}%), left unchanged, nothing written", 100.0 * clean));
                return Ok(outcome);
            };
            let order: Vec<&str> = blind.tasks.iter().map(|task| task.name()).collect();
            outcome.notes.push(format!("{name}: {}; restored with {}", blind.recognition.summary(), order.join(" then ")));
            restored
        }
        Request::Asked(tasks) => {
            let requested: Vec<Task> = tasks.iter().map(|(task, _)| *task).collect();
            if let Some(doubt) = job.recogniser.recognise_image(&image).doubt(&requested) {
                if job.strict {
                    bail!("{name}: {doubt} (--strict: nothing written)");
                }
                outcome.warnings.push(format!("{name}: {doubt}; restored as asked"));
            }
            job.restorer.restore_requested(&image, tasks).with_context(|| format!("{name}"))?
        }
    };
    // The input's pixels are not needed while the output is encoded.
    drop(image);
    write_image(output, &restored)?;
    outcome.written = true;
    Ok(outcome)
}

/// Restores every image of `input` into `output` (created if needed); a file that fails is
/// reported and skipped, and the command fails at the end if any did.
fn restore_folder(job: &Job, input: &Path, output: &Path, max_megapixels: f64) -> Result<()> {
    let files = images_in(input)?;
    if files.is_empty() {
        bail!("{}: no images found (looked for {})", input.display(), IMAGE_EXTENSIONS.join(", "));
    }
    std::fs::create_dir_all(output).with_context(|| format!("{}: cannot create the output folder", output.display()))?;
    let progress = ProgressBar::new(files.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images, {elapsed} elapsed, ETA {eta} {msg}")
            .expect("the progress template is valid"),
    );
    let (mut failures, mut written) = (0, 0);
    for file in &files {
        progress.set_message(file_name(file)?.to_string_lossy().into_owned());
        match restore_file(job, file, &output.join(file_name(file)?), max_megapixels) {
            Ok(outcome) => {
                progress.suspend(|| outcome.print());
                written += usize::from(outcome.written);
            }
            Err(error) => {
                progress.suspend(|| eprintln!("error: {error:#}"));
                failures += 1;
            }
        }
        progress.inc(1);
    }
    progress.finish_with_message("done");
    if failures > 0 {
        bail!("{failures} of {} images could not be restored", files.len());
    }
    println!("restored {written} of {} images from {} into {}", files.len(), input.display(), output.display());
    Ok(())
}

fn images_in(folder: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(folder).with_context(|| format!("{}: cannot list the folder", folder.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.with_context(|| format!("{}: cannot list the folder", folder.display()))?.path();
        let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if path.is_file() && extension.is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str())) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn file_name(path: &Path) -> Result<&std::ffi::OsStr> {
    path.file_name().with_context(|| format!("{}: not a file name", path.display()))
}
