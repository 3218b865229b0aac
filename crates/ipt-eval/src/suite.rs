//! Evaluation suites (`configs/eval/*.toml`): which benchmarks, built how, scored how.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ipt_data::benchmarks::{NameKey, pair_folders};
use ipt_data::spec::resolve_data_root;
use ipt_data::{Benchmark, BenchmarkSet, EvalSetSpec};
use ipt_model::Task;
use serde::Deserialize;

use crate::EvalError;
use crate::metrics::Protocol;

/// A list of benchmarks evaluated together.
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// Name of the suite (the default output folder is `out/eval/<name>`).
    pub name: String,
    /// Data root for `folder`s; unset: `$INSTRUCT_IPT_DATA`, else `../shared/data` found upwards.
    #[serde(default)]
    pub root: Option<PathBuf>,
    /// Base seed of the noise added to denoising sets (per image: seed, file name, sigma).
    #[serde(default)]
    pub seed: u64,
    /// Images per benchmark shown in its PNG grid.
    #[serde(default = "default_grid_images")]
    pub grid_images: usize,
    /// The benchmarks, in table order.
    #[serde(rename = "benchmark")]
    pub benchmarks: Vec<BenchmarkEntry>,
    /// Folder of the suite file: relative paths in it are relative to this folder.
    #[serde(skip)]
    pub dir: PathBuf,
}

fn default_grid_images() -> usize {
    3
}

/// One column of the results table.
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct BenchmarkEntry {
    /// Column name, e.g. "CBSD68 σ25".
    pub name: String,
    /// Where the images come from.
    pub source: Source,
    /// How outputs are scored (default: RGB, 8-bit, no crop).
    #[serde(default)]
    pub protocol: Protocol,
    /// Score only the first `limit` images (all when unset).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Where a benchmark's input/target pairs come from.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    /// Clean photos with seeded Gaussian noise of `sigma` (on `[0, 255]`) added on loading.
    Noisy {
        /// Which benchmark (cbsd68, kodak24, mcmaster).
        set: Benchmark,
        /// Folder of clean photos, under the data root.
        folder: PathBuf,
        /// Noise level.
        sigma: f32,
    },
    /// A paired benchmark in one of its published layouts.
    Paired {
        /// Which benchmark (rain100l, sots, csd, gopro, lol).
        set: Benchmark,
        /// Its folder, under the data root.
        folder: PathBuf,
    },
    /// One task of a fixed synthetic set (`ipt_data::EvalSetSpec`), built on first use.
    Synthetic {
        /// The eval-set spec, relative to the suite file.
        spec: PathBuf,
        /// Which of its tasks.
        task: Task,
    },
    /// One degradation family of a training dataset spec (`ipt_data::DatasetSpec`) on that
    /// spec's validation photos, whole, degraded with the suite's `seed`
    /// (`ipt_data::EvalSetSpec::family_of`); built on first use.
    Family {
        /// The dataset spec, relative to the suite file.
        spec: PathBuf,
        /// Which of its tasks.
        task: Task,
        /// Which of the task's `families`, counted from 0.
        family: usize,
    },
}

impl Suite {
    /// Reads and checks the suite at `path`; errors name the file and the key.
    pub fn load(path: &Path) -> Result<Self, EvalError> {
        let text = std::fs::read_to_string(path).map_err(crate::io_error(path))?;
        let mut suite: Suite = toml::from_str(&text).map_err(|error| EvalError::Suite { path: path.into(), message: error.to_string() })?;
        suite.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        suite.check().map_err(|message| EvalError::Suite { path: path.into(), message })?;
        Ok(suite)
    }

    fn check(&self) -> Result<(), String> {
        if self.benchmarks.is_empty() {
            return Err("no [[benchmark]] entries".into());
        }
        let mut seen = BTreeMap::new();
        for entry in &self.benchmarks {
            if seen.insert(entry.name.as_str(), ()).is_some() {
                return Err(format!("benchmark name '{}' is used twice", entry.name));
            }
            match &entry.source {
                Source::Noisy { set, sigma, .. } if !set.layouts().is_empty() || !(0.0..=255.0).contains(sigma) => {
                    return Err(format!(
                        "benchmark '{}': a noisy source needs a clean set (cbsd68, kodak24, mcmaster) and sigma in [0, 255]",
                        entry.name
                    ));
                }
                Source::Paired { set, .. } if set.layouts().is_empty() => {
                    return Err(format!("benchmark '{}': {} has no pairs; use kind = \"noisy\"", entry.name, set.name()));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The data root that `folder`s are relative to.
    pub fn data_root(&self) -> Result<PathBuf, EvalError> {
        let explicit = self.root.as_ref().map(|root| self.dir.join(root));
        Ok(resolve_data_root(explicit.as_deref())?)
    }
}

impl BenchmarkEntry {
    /// The task this benchmark scores (the oracle routing gives it to the model).
    pub fn task(&self) -> Task {
        match &self.source {
            Source::Noisy { set, .. } | Source::Paired { set, .. } => set.task(),
            Source::Synthetic { task, .. } | Source::Family { task, .. } => *task,
        }
    }

    /// Where the images come from, in words (for the report).
    pub fn describe(&self) -> String {
        match &self.source {
            Source::Noisy { set, folder, sigma } => {
                format!("{} ({}), Gaussian noise σ={sigma} added on loading", set.name(), folder.display())
            }
            Source::Paired { set, folder } => format!("{} pairs ({})", set.name(), folder.display()),
            Source::Synthetic { spec, task } => format!("synthetic {task} set of {}", spec.display()),
            Source::Family { spec, task, family } => {
                format!("{task} family {family} of {} on its validation photos", spec.display())
            }
        }
    }
}

/// Opens the benchmarks of a suite, building synthetic sets once per spec.
pub struct Opener<'a> {
    suite: &'a Suite,
    sets_dir: PathBuf,
    built: BTreeMap<PathBuf, Vec<(PathBuf, ipt_data::EvalSetManifest)>>,
}

impl<'a> Opener<'a> {
    /// Synthetic sets are written to (or reused from) `sets_dir/<set name>/<task>/`.
    pub fn new(suite: &'a Suite, sets_dir: &Path) -> Self {
        Self { suite, sets_dir: sets_dir.into(), built: BTreeMap::new() }
    }

    /// The images of `entry`.
    pub fn open(&mut self, entry: &BenchmarkEntry) -> Result<BenchmarkSet, EvalError> {
        match &entry.source {
            Source::Noisy { set, folder, sigma } => {
                Ok(BenchmarkSet::open(&self.suite.data_root()?.join(folder), *set, Some(*sigma), self.suite.seed)?)
            }
            Source::Paired { set, folder } => Ok(BenchmarkSet::open(&self.suite.data_root()?.join(folder), *set, None, self.suite.seed)?),
            Source::Synthetic { spec, task } => {
                let spec_path = self.suite.dir.join(spec);
                if !self.built.contains_key(&spec_path) {
                    let sets = EvalSetSpec::load(&spec_path)?.build(&self.sets_dir)?;
                    self.built.insert(spec_path.clone(), sets);
                }
                let (dir, _) =
                    self.built[&spec_path].iter().find(|(_, manifest)| manifest.task == *task).ok_or_else(|| EvalError::Suite {
                        path: spec_path.clone(),
                        message: format!("benchmark '{}' asks for task '{task}', which this eval-set spec does not define", entry.name),
                    })?;
                paired_set(dir)
            }
            Source::Family { spec, task, family } => {
                let set = EvalSetSpec::family_of(&self.suite.dir.join(spec), *task, *family, self.suite.seed)?;
                let (dir, _) = set.build(&self.sets_dir)?.remove(0);
                paired_set(&dir)
            }
        }
    }
}

/// The degraded/clean pairs of a built synthetic set's folder.
fn paired_set(dir: &Path) -> Result<BenchmarkSet, EvalError> {
    Ok(BenchmarkSet::Paired(pair_folders(&dir.join("input"), &dir.join("target"), NameKey::Stem)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipt_core::fuzz::{FuzzRandom, fuzz_files, mutate_toml};

    #[test]
    fn every_shipped_suite_loads() {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/eval");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&folder).unwrap() {
            let suite = Suite::load(&entry.unwrap().path()).unwrap();
            assert!(!suite.benchmarks.is_empty(), "{}", suite.name);
            for benchmark in &suite.benchmarks {
                if let Source::Family { spec, task, family } = &benchmark.source {
                    let set = EvalSetSpec::family_of(&suite.dir.join(spec), *task, *family, suite.seed).unwrap();
                    assert_eq!(set.tasks.len(), 1, "{}", benchmark.name);
                }
            }
            names.push(suite.name);
        }
        names.sort();
        assert_eq!(names, ["blind", "default", "denoise-deblur", "validation-deblur", "validation-families"]);
    }

    /// `validation-families` scores every family of the training spec once, so a family added
    /// to training is not silently left out of the per-family check.
    #[test]
    fn the_family_suite_covers_every_family_of_the_training_spec() {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/eval");
        let suite = Suite::load(&folder.join("validation-families.toml")).unwrap();
        let dataset = ipt_data::DatasetSpec::load(&folder.join("../../datasets/all-in-one.toml")).unwrap();
        let every: Vec<(Task, usize)> =
            dataset.tasks.iter().flat_map(|(task, degradation)| (0..degradation.families().len()).map(|family| (*task, family))).collect();
        let mut listed = Vec::new();
        for benchmark in &suite.benchmarks {
            let Source::Family { spec, task, family } = &benchmark.source else { panic!("{} is not a family", benchmark.name) };
            assert!(spec.ends_with("all-in-one.toml"), "{}", benchmark.name);
            listed.push((*task, *family));
        }
        listed.sort();
        assert_eq!(listed, every);
    }

    #[test]
    fn fuzzed_suites_load_checked_or_fail_naming_the_file() {
        let valid = include_str!("../../../configs/eval/default.toml");
        let folder = tempfile::tempdir().unwrap();
        fuzz_files(
            folder.path(),
            "toml",
            300,
            &mut FuzzRandom::new(19),
            |random| mutate_toml(valid, random),
            |path| {
                let suite = Suite::load(path).map_err(|error| error.to_string())?;
                suite.check().expect("a loaded suite is checked");
                Ok(())
            },
        );
    }
}
