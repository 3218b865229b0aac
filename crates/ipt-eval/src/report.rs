//! The results of an evaluation and their files: `results.json`, `results.md` (rows =
//! checkpoints, columns = benchmarks, as the paper's Table 4) and `per_image.csv`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ipt_core::write_atomically;
use ipt_model::Task;
use serde::Serialize;

use crate::metrics::{PSNR_CAP_DB, Protocol};
use crate::{EvalError, io_error};

/// What the routings of the rows mean.
const ROUTINGS: &str = "Routing: rows without a suffix get the benchmark's task (oracle); `· instruction` rows read a held-out instruction for it through the text router (a refused request leaves the image unchanged); `· blind` rows restore what the recogniser sees in each input (an input it judges clean is scored unchanged); `· shared` rows get no task (shared weights only).";

/// Everything one evaluation measured.
#[derive(Serialize, Clone, Debug)]
pub struct Report {
    /// The suite's name.
    pub suite: String,
    /// The columns, in order.
    pub benchmarks: Vec<BenchmarkSummary>,
    /// The rows: the identity floor first, then each checkpoint.
    pub checkpoints: Vec<CheckpointRow>,
    /// Every image's scores (written to `per_image.csv`, not to `results.json`).
    #[serde(skip)]
    pub images: Vec<ImageScore>,
}

/// A benchmark column: what it holds and how it was scored.
#[derive(Serialize, Clone, Debug)]
pub struct BenchmarkSummary {
    /// Column name.
    pub name: String,
    /// The task given to the model.
    pub task: Task,
    /// Images scored.
    pub images: usize,
    /// The scoring protocol.
    pub protocol: Protocol,
    /// The protocol in words.
    pub protocol_label: String,
    /// Where the images came from.
    pub source: String,
}

/// One row of the table.
#[derive(Serialize, Clone, Debug)]
pub struct CheckpointRow {
    /// The row's label (the weight file, or the identity).
    pub label: String,
    /// The weight file, if any.
    pub weights: Option<PathBuf>,
    /// How the task reached the model: oracle, instruction or blind.
    pub routing: String,
    /// One result per benchmark, in column order.
    pub results: Vec<BenchmarkResult>,
}

/// A checkpoint's result on one benchmark; the scores are `None` when it was skipped.
#[derive(Serialize, Clone, Debug)]
pub struct BenchmarkResult {
    /// The benchmark's name.
    pub benchmark: String,
    /// Mean PSNR in dB (each image capped at 100 dB).
    pub psnr: Option<f64>,
    /// Mean SSIM.
    pub ssim: Option<f64>,
    /// Restoration time per megapixel of input (seconds), model only.
    pub seconds_per_megapixel: Option<f64>,
    /// Peak resident memory of the process while this benchmark ran (MiB).
    pub peak_memory_mib: Option<f64>,
    /// Why it was not scored.
    pub skipped: Option<String>,
}

/// One image's scores.
#[derive(Serialize, Clone, Debug)]
pub struct ImageScore {
    /// The row's label.
    pub checkpoint: String,
    /// The benchmark.
    pub benchmark: String,
    /// The image's file name.
    pub image: String,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// PSNR in dB.
    pub psnr: f64,
    /// SSIM.
    pub ssim: f64,
    /// Restoration time in seconds.
    pub seconds: f64,
}

impl Report {
    /// Writes `results.json`, `results.md` and `per_image.csv` into `dir` (atomically each);
    /// returns their paths.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, EvalError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let json = serde_json::to_string_pretty(self).expect("reports serialise");
        let files = [("results.json", json), ("results.md", self.markdown()), ("per_image.csv", self.csv())];
        files
            .into_iter()
            .map(|(name, text)| {
                let path = dir.join(name);
                write_atomically(&path, text.as_bytes()).map_err(io_error(&path))?;
                Ok(path)
            })
            .collect()
    }

    /// The Markdown report: PSNR / SSIM table, protocol per column, speed and memory table.
    pub fn markdown(&self) -> String {
        let mut text = format!(
            "# Evaluation: {}\n\n{ROUTINGS}\n\nCells are mean PSNR (dB) / SSIM; identical images score {PSNR_CAP_DB} dB.\n\n",
            self.suite
        );
        let cell = |result: &BenchmarkResult| match (result.psnr, result.ssim) {
            (Some(psnr), Some(ssim)) => format!("{psnr:.2} / {ssim:.4}"),
            _ => "—".into(),
        };
        self.table(&mut text, cell);
        text.push_str("\n| benchmark | task | images | protocol | source |\n|---|---|---|---|---|\n");
        for benchmark in &self.benchmarks {
            let _ = writeln!(
                text,
                "| {} | {} | {} | {} | {} |",
                benchmark.name, benchmark.task, benchmark.images, benchmark.protocol_label, benchmark.source
            );
        }
        text.push_str("\nRestoration time (s per megapixel, model only) and peak resident memory of the process (MiB):\n\n");
        self.table(&mut text, |result| match (result.seconds_per_megapixel, result.peak_memory_mib) {
            (Some(seconds), Some(memory)) => format!("{seconds:.3} s · {memory:.0} MiB"),
            (Some(seconds), None) => format!("{seconds:.3} s"),
            _ => "—".into(),
        });
        let skipped: Vec<String> = self
            .checkpoints
            .iter()
            .flat_map(|row| {
                row.results
                    .iter()
                    .filter_map(move |result| result.skipped.as_ref().map(|why| format!("- {} on {}: {why}", row.label, result.benchmark)))
            })
            .collect();
        if !skipped.is_empty() {
            let _ = write!(text, "\nNot scored:\n{}\n", skipped.join("\n"));
        }
        text.push_str("\nGrids (`grids/<benchmark>.png`): one row per image, columns = input, each checkpoint's output in table order (those trained for the task), target; centre crops.\n");
        text
    }

    fn table(&self, text: &mut String, cell: impl Fn(&BenchmarkResult) -> String) {
        let _ = writeln!(
            text,
            "| checkpoint | {} |",
            self.benchmarks.iter().map(|benchmark| benchmark.name.as_str()).collect::<Vec<_>>().join(" | ")
        );
        let _ = writeln!(text, "|---|{}", "---|".repeat(self.benchmarks.len()));
        for row in &self.checkpoints {
            let _ = writeln!(text, "| {} | {} |", row.label, row.results.iter().map(&cell).collect::<Vec<_>>().join(" | "));
        }
    }

    /// Every image's scores as CSV.
    pub fn csv(&self) -> String {
        let mut text = String::from("checkpoint,benchmark,image,width,height,psnr,ssim,seconds\n");
        for image in &self.images {
            let _ = writeln!(
                text,
                "{},{},{},{},{},{:.4},{:.6},{:.4}",
                csv_field(&image.checkpoint),
                csv_field(&image.benchmark),
                csv_field(&image.image),
                image.width,
                image.height,
                image.psnr,
                image.ssim,
                image.seconds
            );
        }
        text
    }
}

/// Quotes a CSV field when it holds a comma, quote or line break.
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n']) { format!("\"{}\"", value.replace('"', "\"\"")) } else { value.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain.png"), "plain.png");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
