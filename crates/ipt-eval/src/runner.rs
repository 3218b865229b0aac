//! Runs every checkpoint (and the identity floor) over every benchmark of a suite.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressStyle};
use instruct_ipt::Restorer;
use ipt_data::rgb::Rgb;
use ipt_model::Task;

use crate::grid::{CROP, center_crop, compose};
use crate::memory::{peak_mib, reset_peak};
use crate::metrics::score;
use crate::report::{BenchmarkResult, BenchmarkSummary, CheckpointRow, ImageScore, Report};
use crate::routing::Routing;
use crate::suite::{Opener, Suite};
use crate::{EvalError, io_error};

/// Label of the row that scores the degraded input itself.
pub const IDENTITY: &str = "identity (input)";

/// One row of the results: a loaded checkpoint with a task routing, or the identity floor.
#[derive(Clone)]
pub struct Candidate {
    label: String,
    /// The label without the routing.
    name: String,
    weights: Option<PathBuf>,
    restorer: Option<Arc<Restorer>>,
    routing: Routing,
}

impl Candidate {
    /// The degraded input, unchanged: the floor every checkpoint must beat.
    pub fn identity() -> Self {
        Self { label: IDENTITY.into(), name: IDENTITY.into(), weights: None, restorer: None, routing: Routing::Oracle }
    }

    /// Loads the weight file at `path` onto `device`, restoring in tiles of `tile` pixels
    /// (`None`: whole images), with the oracle routing.
    pub fn load(path: &Path, device: &Device, tile: Option<usize>) -> Result<Self, EvalError> {
        let restorer = Restorer::load(path, device).map_err(EvalError::Load)?;
        Ok(Self::from_restorer(path.display().to_string(), Some(path.into()), restorer.with_tile(tile)))
    }

    /// Wraps a restorer already in memory (a model just trained, a test's model).
    pub fn from_restorer(label: String, weights: Option<PathBuf>, restorer: Restorer) -> Self {
        Self { name: label.clone(), label, weights, restorer: Some(Arc::new(restorer)), routing: Routing::Oracle }
    }

    /// The same checkpoint with another routing (sharing the loaded model); the label names
    /// the routing unless it is the oracle.
    pub fn routed(&self, routing: Routing) -> Self {
        let name = &self.name;
        let label = if matches!(routing, Routing::Oracle) { name.clone() } else { format!("{name} · {routing}") };
        Self { label, name: name.clone(), weights: self.weights.clone(), restorer: self.restorer.clone(), routing }
    }

    /// The row's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Restores image `index` of a `task` benchmark under the row's routing; `Ok(None)` when
    /// the oracle routing asks for a task the weights were not trained for.
    fn restore(&self, input: &Rgb, task: Task, index: usize) -> Result<Option<Rgb>, EvalError> {
        let Some(restorer) = &self.restorer else { return Ok(Some(input.clone())) };
        let (rgb, height, width) = (input.data.clone(), input.height, input.width);
        let result = match &self.routing {
            Routing::Oracle => restorer.restore_planar(rgb, height, width, Some(task)),
            Routing::Shared => restorer.restore_planar(rgb, height, width, None),
            Routing::Blind(recogniser) => {
                let recognition = recogniser.recognise(&rgb, height, width);
                match restorer.blind_request(&recognition) {
                    Ok(weights) if weights.is_empty() => return Ok(Some(input.clone())),
                    Ok(weights) => restorer.restore_planar_requested(rgb, height, width, &weights),
                    // Only degradations these weights lack were seen: the image stays as it is.
                    Err(instruct_ipt::Error::TaskNotTrained { .. }) => return Ok(Some(input.clone())),
                    Err(error) => Err(error),
                }
            }
            Routing::Instruction(instructions) => match instructions.weights(task, index) {
                Some(weights) => match restorer.restore_planar_requested(rgb, height, width, &weights) {
                    // The router chose a task these weights lack: the image stays as it is.
                    Err(instruct_ipt::Error::TaskNotTrained { .. }) => return Ok(Some(input.clone())),
                    other => other,
                },
                None => return Ok(Some(input.clone())),
            },
        };
        match result {
            Ok(data) => Ok(Some(Rgb { width, height, data })),
            Err(instruct_ipt::Error::TaskNotTrained { .. }) => Ok(None),
            Err(source) => Err(EvalError::Restore { checkpoint: self.label.clone(), source }),
        }
    }
}

/// Where synthetic sets live, how many images to score, whether to draw progress bars.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// Folder of the fixed synthetic sets (built there on first use).
    pub sets_dir: PathBuf,
    /// Score at most this many images per benchmark (overrides the suite's limits).
    pub limit: Option<usize>,
    /// Progress bars on the terminal.
    pub progress: bool,
    /// Where the grids are written (`<grids>/<benchmark>.png`); none when unset.
    pub grids: Option<PathBuf>,
}

/// Evaluates the identity row and `candidates` (each with its routing) on every benchmark of
/// `suite`.
pub fn evaluate(suite: &Suite, candidates: Vec<Candidate>, options: &EvalOptions) -> Result<Report, EvalError> {
    let candidates: Vec<Candidate> = std::iter::once(Candidate::identity()).chain(candidates).collect();
    let mut rows: Vec<CheckpointRow> = candidates
        .iter()
        .map(|candidate| CheckpointRow {
            label: candidate.label.clone(),
            weights: candidate.weights.clone(),
            routing: candidate.routing.to_string(),
            results: Vec::new(),
        })
        .collect();
    let mut benchmarks = Vec::new();
    let mut images = Vec::new();
    let mut opener = Opener::new(suite, &options.sets_dir);
    for entry in &suite.benchmarks {
        let set = opener.open(entry)?;
        let count = options.limit.or(entry.limit).map_or(set.len(), |limit| limit.min(set.len()));
        let task = entry.task();
        let mut grid_rows: Vec<Vec<Rgb>> = Vec::new();
        for (candidate, row) in candidates.iter().zip(&mut rows) {
            let bar = progress_bar(options.progress, count, &format!("{} · {}", entry.name, candidate.label));
            reset_peak();
            let (mut psnr, mut ssim, mut seconds, mut megapixels, mut skipped) = (0.0, 0.0, 0.0, 0.0, None);
            for index in 0..count {
                let image = set.load(index)?;
                let started = Instant::now();
                let Some(output) = candidate.restore(&image.input, task, index)? else {
                    skipped = Some(format!("not trained for {task}"));
                    break;
                };
                let elapsed = started.elapsed().as_secs_f64();
                let scored = score(&output, &image.target, &entry.protocol).map_err(|source| EvalError::Metric {
                    benchmark: entry.name.clone(),
                    image: image.name.clone(),
                    source,
                })?;
                (psnr, ssim, seconds) = (psnr + scored.psnr, ssim + scored.ssim, seconds + elapsed);
                megapixels += (image.target.width * image.target.height) as f64 / 1e6;
                images.push(ImageScore {
                    checkpoint: candidate.label.clone(),
                    benchmark: entry.name.clone(),
                    image: image.name.clone(),
                    width: image.target.width,
                    height: image.target.height,
                    psnr: scored.psnr,
                    ssim: scored.ssim,
                    seconds: elapsed,
                });
                if index < suite.grid_images {
                    grid_cell(&mut grid_rows, index, candidate.restorer.is_none(), &image.input, &output, &image.target);
                }
                bar.inc(1);
            }
            bar.finish_and_clear();
            let measured = count > 0 && skipped.is_none();
            row.results.push(BenchmarkResult {
                benchmark: entry.name.clone(),
                psnr: measured.then(|| psnr / count as f64),
                ssim: measured.then(|| ssim / count as f64),
                seconds_per_megapixel: (measured && candidate.restorer.is_some()).then(|| seconds / megapixels),
                peak_memory_mib: (measured && candidate.restorer.is_some()).then(peak_mib).flatten(),
                skipped,
            });
        }
        if let Some(dir) = &options.grids {
            write_grid(dir, &entry.name, grid_rows)?;
        }
        benchmarks.push(BenchmarkSummary {
            name: entry.name.clone(),
            task,
            images: count,
            protocol: entry.protocol,
            protocol_label: entry.protocol.to_string(),
            source: entry.describe(),
        });
    }
    Ok(Report { suite: suite.name.clone(), benchmarks, checkpoints: rows, images })
}

/// Adds one image's crops to the grid: the identity pass starts the row with the input and
/// ends it with the target; each checkpoint inserts its output before the target.
fn grid_cell(rows: &mut Vec<Vec<Rgb>>, index: usize, identity: bool, input: &Rgb, output: &Rgb, target: &Rgb) {
    if identity {
        rows.push(vec![center_crop(input, CROP), center_crop(target, CROP)]);
    } else if let Some(row) = rows.get_mut(index) {
        let target_position = row.len() - 1;
        row.insert(target_position, center_crop(&output.clone().clamp_unit(), CROP));
    }
}

fn write_grid(dir: &Path, benchmark: &str, rows: Vec<Vec<Rgb>>) -> Result<(), EvalError> {
    if rows.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    compose(&rows).write_png(&dir.join(format!("{}.png", slug(benchmark))))?;
    Ok(())
}

/// An ASCII file name for a benchmark ("CBSD68 σ25" -> "cbsd68-25").
pub fn slug(name: &str) -> String {
    let mut slug = String::new();
    for character in name.chars() {
        if character.is_ascii_alphanumeric() {
            slug.extend(character.to_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_string()
}

fn progress_bar(visible: bool, total: usize, message: &str) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg:40} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_file_name_safe() {
        assert_eq!(slug("CBSD68 σ25"), "cbsd68-25");
        assert_eq!(slug("Rain100L (2 real pairs)"), "rain100l-2-real-pairs");
    }
}
