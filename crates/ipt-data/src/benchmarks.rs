//! Loaders for the public benchmark folder layouts. Denoising sets (CBSD68, Kodak24, McMaster)
//! hold clean photos only: noise is added on loading with a seed per image, so every method
//! sees identical noisy inputs. Paired sets (Rain100L, SOTS, CSD, GoPro, LOL) are matched
//! input-to-target by a naming rule per layout; any unmatched, ambiguous or size-mismatched
//! file is an error naming it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ipt_core::Task;
use serde::{Deserialize, Serialize};

use crate::Rgb;
use crate::degrade::noise::GaussianNoiseParams;
use crate::error::{DataError, Result, io_error};
use crate::random::{label, mix};
use crate::spec::{file_name, list_images};

/// A public restoration benchmark; in config files by its lower-case name (`cbsd68`, `mcmaster`,
/// `rain100l`, `gopro`, ...).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Benchmark {
    /// Colour BSD68 (denoising; clean photos, noise added on loading).
    Cbsd68,
    /// Kodak PhotoCD 24 (denoising; clean).
    Kodak24,
    /// McMaster 18 (denoising; clean).
    McMaster,
    /// Rain100L test pairs (deraining).
    Rain100L,
    /// RESIDE SOTS outdoor (dehazing).
    Sots,
    /// CSD test set (desnowing).
    Csd,
    /// GoPro test set (motion deblurring).
    GoPro,
    /// LOL eval15 (low-light enhancement).
    Lol,
}

/// How an input's file stem is turned into the key that finds its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKey {
    /// The whole stem (`0001.png` -> `0001`).
    Stem,
    /// The stem up to the first underscore (SOTS `0001_0.8_0.2.jpg` -> `0001`).
    BeforeUnderscore,
    /// The first number in the stem (`rain-001.png` and `norain-1.png` -> `1`).
    Number,
}

/// One folder layout of a paired benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairLayout {
    /// Sub-folder of degraded inputs.
    pub input: &'static str,
    /// Sub-folder of clean targets.
    pub target: &'static str,
    /// How inputs find their targets.
    pub key: NameKey,
    /// Whether the pair of folders sits in every sub-folder of the root (GoPro's sequences).
    pub per_sequence: bool,
}

fn layout(input: &'static str, target: &'static str, key: NameKey) -> PairLayout {
    PairLayout { input, target, key, per_sequence: false }
}

impl Benchmark {
    /// Every benchmark.
    pub const ALL: [Benchmark; 8] = [
        Benchmark::Cbsd68,
        Benchmark::Kodak24,
        Benchmark::McMaster,
        Benchmark::Rain100L,
        Benchmark::Sots,
        Benchmark::Csd,
        Benchmark::GoPro,
        Benchmark::Lol,
    ];

    /// The benchmark's usual name.
    pub fn name(self) -> &'static str {
        match self {
            Benchmark::Cbsd68 => "CBSD68",
            Benchmark::Kodak24 => "Kodak24",
            Benchmark::McMaster => "McMaster",
            Benchmark::Rain100L => "Rain100L",
            Benchmark::Sots => "SOTS",
            Benchmark::Csd => "CSD",
            Benchmark::GoPro => "GoPro",
            Benchmark::Lol => "LOL",
        }
    }

    /// The task the benchmark scores.
    pub fn task(self) -> Task {
        match self {
            Benchmark::Cbsd68 | Benchmark::Kodak24 | Benchmark::McMaster => Task::Denoise,
            Benchmark::Rain100L => Task::Derain,
            Benchmark::Sots => Task::Dehaze,
            Benchmark::Csd => Task::Desnow,
            Benchmark::GoPro => Task::Deblur,
            Benchmark::Lol => Task::LowLight,
        }
    }

    /// The folder layouts recognised, in the order tried; empty for clean-only sets.
    pub fn layouts(self) -> Vec<PairLayout> {
        use NameKey::*;
        match self {
            Benchmark::Cbsd68 | Benchmark::Kodak24 | Benchmark::McMaster => vec![],
            // Restormer / PromptIR / AirNet: input/ + target/; JORDER: rainy/rain-001 + norain/norain-001.
            Benchmark::Rain100L => vec![layout("input", "target", Number), layout("rainy", "norain", Number)],
            // AirNet: input/ + target/; RESIDE: hazy/0001_0.8_0.2.jpg + gt/ or clear/0001.png.
            Benchmark::Sots => {
                vec![
                    layout("input", "target", BeforeUnderscore),
                    layout("hazy", "gt", BeforeUnderscore),
                    layout("hazy", "clear", BeforeUnderscore),
                ]
            }
            // CSD Test/: Snow/ + Gt/; Snow100K: synthetic/ + gt/.
            Benchmark::Csd => vec![layout("input", "target", Stem), layout("Snow", "Gt", Stem), layout("synthetic", "gt", Stem)],
            // GoPro test/<sequence>/blur + sharp; Restormer's flattened input/ + target/.
            Benchmark::GoPro => vec![
                layout("input", "target", Stem),
                layout("blur", "sharp", Stem),
                PairLayout { input: "blur", target: "sharp", key: Stem, per_sequence: true },
            ],
            // LOL eval15/: low/ + high/.
            Benchmark::Lol => vec![layout("input", "target", Stem), layout("low", "high", Stem)],
        }
    }
}

impl std::fmt::Display for Benchmark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A degraded input and its clean target, on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImagePair {
    /// The degraded image.
    pub input: PathBuf,
    /// The clean image.
    pub target: PathBuf,
}

impl ImagePair {
    /// Reads both images; an error names both files if their sizes differ.
    pub fn load(&self) -> Result<(Rgb, Rgb)> {
        let (input, target) = (Rgb::read(&self.input)?, Rgb::read(&self.target)?);
        if (input.width, input.height) != (target.width, target.height) {
            return Err(DataError::SizeMismatch {
                input: self.input.clone(),
                input_size: (input.width, input.height),
                target: self.target.clone(),
                target_size: (target.width, target.height),
            });
        }
        Ok((input, target))
    }
}

/// Matches every input in `input_dir` to exactly one target in `target_dir`, in key order.
pub fn pair_folders(input_dir: &Path, target_dir: &Path, key: NameKey) -> Result<Vec<ImagePair>> {
    let keyed = |dir: &Path| -> Result<BTreeMap<String, PathBuf>> {
        let mut map: BTreeMap<String, PathBuf> = BTreeMap::new();
        for path in list_images(dir)? {
            let name_key = key_of(&path, key);
            if let Some(first) = map.insert(name_key.clone(), path.clone()) {
                return Err(DataError::AmbiguousPair { first, second: path, key: name_key });
            }
        }
        Ok(map)
    };
    let (inputs, targets) = (keyed(input_dir)?, keyed(target_dir)?);
    let mut pairs = Vec::new();
    for (input_key, input) in inputs.iter() {
        let target = targets.get(input_key).ok_or_else(|| DataError::MissingTarget {
            input: input.clone(),
            target_dir: target_dir.into(),
            key: input_key.clone(),
        })?;
        pairs.push(ImagePair { input: input.clone(), target: target.clone() });
    }
    if let Some((_, target)) = targets.iter().find(|(target_key, _)| !inputs.contains_key(*target_key)) {
        return Err(DataError::UnmatchedTarget { target: target.clone(), input_dir: input_dir.into() });
    }
    Ok(pairs)
}

fn key_of(path: &Path, key: NameKey) -> String {
    let stem = path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
    match key {
        NameKey::Stem => stem,
        NameKey::BeforeUnderscore => stem.split('_').next().unwrap_or_default().to_string(),
        NameKey::Number => {
            let digits: String = stem.chars().skip_while(|c| !c.is_ascii_digit()).take_while(char::is_ascii_digit).collect();
            // Numbers compare by value, so `001` and `1` match; a stem without digits is its own key.
            if digits.is_empty() { stem } else { digits.parse::<u128>().map_or(digits, |number| number.to_string()) }
        }
    }
}

/// Finds the first layout of `benchmark` present under `root` and pairs its files.
pub fn open_pairs(root: &Path, benchmark: Benchmark) -> Result<Vec<ImagePair>> {
    for layout in benchmark.layouts() {
        if layout.per_sequence {
            let sequences = sequence_dirs(root, &layout)?;
            if !sequences.is_empty() {
                let mut pairs = Vec::new();
                for sequence in sequences {
                    pairs.extend(pair_folders(&sequence.join(layout.input), &sequence.join(layout.target), layout.key)?);
                }
                return Ok(pairs);
            }
        } else if root.join(layout.input).is_dir() || root.join(layout.target).is_dir() {
            return pair_folders(&root.join(layout.input), &root.join(layout.target), layout.key);
        }
    }
    let expected: Vec<String> = benchmark
        .layouts()
        .iter()
        .map(|layout| {
            if layout.per_sequence {
                format!("<sequence>/{}/ + <sequence>/{}/", layout.input, layout.target)
            } else {
                format!("{}/ + {}/", layout.input, layout.target)
            }
        })
        .collect();
    Err(DataError::UnknownLayout { root: root.into(), benchmark: benchmark.name().into(), expected: expected.join(", ") })
}

fn sequence_dirs(root: &Path, layout: &PairLayout) -> Result<Vec<PathBuf>> {
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(io_error(root))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|dir| dir.join(layout.input).is_dir())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// One scored image of a benchmark: name, degraded input, clean target.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchmarkImage {
    /// File name of the input (the clean file for denoising sets).
    pub name: String,
    /// The degraded image.
    pub input: Rgb,
    /// The clean image.
    pub target: Rgb,
}

/// A benchmark opened on disk, loaded image by image.
#[derive(Clone, Debug)]
pub enum BenchmarkSet {
    /// Clean photos degraded on loading by Gaussian noise of `sigma`, seeded per image.
    Noisy {
        /// The clean photos.
        clean: Vec<PathBuf>,
        /// Noise level on `[0, 255]`.
        sigma: f32,
        /// Base seed.
        seed: u64,
    },
    /// Input/target pairs.
    Paired(Vec<ImagePair>),
}

impl BenchmarkSet {
    /// Opens `benchmark` under `root`; denoising sets need `sigma`.
    pub fn open(root: &Path, benchmark: Benchmark, sigma: Option<f32>, seed: u64) -> Result<Self> {
        if benchmark.layouts().is_empty() {
            let sigma = sigma
                .ok_or_else(|| DataError::Invalid { what: benchmark.name().into(), message: "a noise level (sigma) is required".into() })?;
            Ok(Self::Noisy { clean: list_images(root)?, sigma, seed })
        } else {
            Ok(Self::Paired(open_pairs(root, benchmark)?))
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        match self {
            Self::Noisy { clean, .. } => clean.len(),
            Self::Paired(pairs) => pairs.len(),
        }
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads (and for denoising sets, degrades) image `index`.
    pub fn load(&self, index: usize) -> Result<BenchmarkImage> {
        match self {
            Self::Noisy { clean, sigma, seed } => {
                let path = &clean[index];
                let name = file_name(path);
                let target = Rgb::read(path)?;
                let noise = GaussianNoiseParams { sigma: *sigma, seed: mix(*seed, &[label(&name), sigma.to_bits().into()]) };
                Ok(BenchmarkImage { input: noise.apply(&target), target, name })
            }
            Self::Paired(pairs) => {
                let (input, target) = pairs[index].load()?;
                Ok(BenchmarkImage { name: file_name(&pairs[index].input), input, target })
            }
        }
    }
}

#[cfg(test)]
mod tests;
